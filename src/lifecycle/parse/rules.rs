//! One lenient walker for the rule shapes of S3 XML, AWS JSON, Terraform, ACK, Upbound and
//! crossplane. Their field names differ only in case, underscores and plural/singular, and
//! Terraform/Upbound wrap single blocks in one-element lists; the walker normalises all that.
//! Numbers may be JSON numbers, integral floats (Upbound) or strings (XML).

use super::{json_kind, FieldError};
use crate::lifecycle::model::{
    Expiration, Filter, NoncurrentExpiration, NoncurrentTransition, Rule, Schedule, Status,
    StorageClass, Tag, Transition,
};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;

/// Input dialect: Terraform keeps "legacy values" (`0`, `""`, `false`) for unset attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Aws,
    Terraform,
}

impl Dialect {
    fn zero_unset(self) -> bool {
        self == Dialect::Terraform
    }
}

fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// The value of the first key of `v` matching one of `names` (ignoring case, `_` and `-`).
/// `null` counts as absent.
pub(crate) fn get<'a>(v: &'a Value, names: &[&str]) -> Option<&'a Value> {
    let Value::Object(m) = v else { return None };
    let wanted: Vec<String> = names.iter().map(|n| norm(n)).collect();
    m.iter()
        .find(|(k, _)| wanted.contains(&norm(k)))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

/// Like [`get`], unwrapping a Terraform/Upbound one-element list (`[]` = absent).
pub(crate) fn one<'a>(v: &'a Value, names: &[&str]) -> Option<&'a Value> {
    match get(v, names)? {
        Value::Array(items) => items.first().filter(|x| !x.is_null()),
        other => Some(other),
    }
}

/// Like [`get`], as a list: a single object becomes a one-item list.
pub(crate) fn many<'a>(v: &'a Value, names: &[&str]) -> Vec<&'a Value> {
    match get(v, names) {
        Some(Value::Array(items)) => items.iter().filter(|x| !x.is_null()).collect(),
        Some(other) => vec![other],
        None => Vec::new(),
    }
}

fn sub(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// An optional non-negative integer (number, integral float or numeric string).
pub(crate) fn opt_u64(
    v: &Value,
    names: &[&str],
    path: &str,
    zero_unset: bool,
) -> Result<Option<u64>, FieldError> {
    let Some(x) = get(v, names) else {
        return Ok(None);
    };
    let n = match x {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 9.0e15)
                .map(|f| f as u64)
        }),
        Value::String(s) if s.trim().is_empty() && zero_unset => return Ok(None),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match n {
        Some(0) if zero_unset => Ok(None),
        Some(n) => Ok(Some(n)),
        None => Err(FieldError::new(path, "a non-negative integer", x)),
    }
}

pub(crate) fn opt_u32(
    v: &Value,
    names: &[&str],
    path: &str,
    zero_unset: bool,
) -> Result<Option<u32>, FieldError> {
    match opt_u64(v, names, path, zero_unset)? {
        None => Ok(None),
        Some(n) => u32::try_from(n).map(Some).map_err(|_| {
            FieldError::new(
                path,
                "an integer below 4294967296",
                get(v, names).unwrap_or(&Value::Null),
            )
        }),
    }
}

/// An optional string; with `empty_unset`, `""` counts as absent.
pub(crate) fn opt_str(
    v: &Value,
    names: &[&str],
    path: &str,
    empty_unset: bool,
) -> Result<Option<String>, FieldError> {
    match get(v, names) {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() && empty_unset => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Object(m))
            if m.keys()
                .any(|k| k.starts_with('!') || k.starts_with("Fn::") || k == "Ref") =>
        {
            // CloudFormation intrinsic function: value unknown before deployment.
            Ok(None)
        }
        Some(x) => Err(FieldError::new(path, "a string", x)),
    }
}

fn opt_bool(v: &Value, names: &[&str], path: &str) -> Result<Option<bool>, FieldError> {
    match get(v, names) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(x) => Err(FieldError::new(path, "true or false", x)),
    }
}

/// Parse an ISO 8601 date: RFC 3339, a zone-less date-time (UTC), or a bare `YYYY-MM-DD`
/// (midnight UTC).
pub(crate) fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(d.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
}

pub(crate) fn opt_date(
    v: &Value,
    names: &[&str],
    path: &str,
    empty_unset: bool,
) -> Result<Option<DateTime<Utc>>, FieldError> {
    match get(v, names) {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() && empty_unset => Ok(None),
        Some(x @ Value::String(s)) => parse_date(s).map(Some).ok_or_else(|| {
            FieldError::new(path, "an ISO 8601 date (e.g. 2024-01-01T00:00:00Z)", x)
        }),
        Some(x) => Err(FieldError::new(path, "an ISO 8601 date string", x)),
    }
}

/// A list of rules (`null` = no rules).
pub(crate) fn rule_list(v: &Value, path: &str, dialect: Dialect) -> Result<Vec<Rule>, FieldError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, r)| rule(r, &format!("{path}[{i}]"), dialect))
            .collect(),
        // XML with a single <Rule> element.
        Value::Object(_) => Ok(vec![rule(v, &format!("{path}[0]"), dialect)?]),
        other => Err(FieldError::new(path, "a list of rules", other)),
    }
}

/// One rule object.
pub(crate) fn rule(v: &Value, path: &str, dialect: Dialect) -> Result<Rule, FieldError> {
    if !v.is_object() {
        return Err(FieldError::new(path, "a rule object", v));
    }
    let zu = dialect.zero_unset();
    let mut r = Rule::new(opt_str(v, &["ID"], &sub(path, "ID"), false)?);
    r.status = status(v, path)?;
    r.filter = rule_filter(v, path, zu)?;
    r.expiration = expiration(v, path, zu)?;
    r.transitions = transitions(v, path, zu)?;
    r.noncurrent_expiration = noncurrent_expiration(v, path, zu)?;
    r.noncurrent_transitions = noncurrent_transitions(v, path, zu)?;
    r.abort_incomplete_multipart_days = abort_days(v, path, zu)?;
    Ok(r)
}

/// `Status` (`Enabled`/`Disabled`), or Terraform's `enabled` boolean.
fn status(v: &Value, path: &str) -> Result<Status, FieldError> {
    Ok(match get(v, &["Status"]) {
        Some(Value::String(s)) if s.eq_ignore_ascii_case("enabled") => Status::Enabled,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("disabled") => Status::Disabled,
        Some(Value::String(s)) => Status::Unknown(s.clone()),
        Some(x) => {
            return Err(FieldError::new(
                &sub(path, "Status"),
                "\"Enabled\" or \"Disabled\"",
                x,
            ))
        }
        None => match opt_bool(v, &["enabled"], &sub(path, "enabled"))? {
            Some(true) => Status::Enabled,
            Some(false) => Status::Disabled,
            None => Status::Unknown("(missing)".to_string()),
        },
    })
}

/// `Filter`, or the legacy rule-level `Prefix` (plus Terraform inline `tags`).
fn rule_filter(v: &Value, path: &str, zu: bool) -> Result<Filter, FieldError> {
    let filter_raw = get(v, &["Filter"]);
    let filter_val = match filter_raw {
        Some(Value::Array(items)) => items.first(),
        other => other,
    };
    Ok(match filter_val {
        Some(f @ Value::Object(_)) => filter(f, &sub(path, "Filter"), zu)?,
        // `<Filter/>` from XML, or an empty Terraform filter block.
        Some(Value::String(s)) if s.trim().is_empty() => Filter::default(),
        Some(other) => {
            return Err(FieldError::new(
                &sub(path, "Filter"),
                "a filter object",
                other,
            ))
        }
        None => {
            let mut f = Filter {
                prefix: opt_str(v, &["Prefix"], &sub(path, "Prefix"), zu)?.unwrap_or_default(),
                ..Filter::default()
            };
            if let Some(tags) = get(v, &["tags"]) {
                f.tags = tag_list(tags, &sub(path, "tags"))?;
            }
            f
        }
    })
}

/// `Expiration`: days or a date, and/or `ExpiredObjectDeleteMarker`.
fn expiration(v: &Value, path: &str, zu: bool) -> Result<Option<Expiration>, FieldError> {
    if let Some(e) = one(v, &["Expiration"]) {
        let p = sub(path, "Expiration");
        let days = opt_u32(e, &["Days"], &sub(&p, "Days"), zu)?;
        let date = opt_date(e, &["Date"], &sub(&p, "Date"), zu)?;
        let eodm = opt_bool(
            e,
            &["ExpiredObjectDeleteMarker"],
            &sub(&p, "ExpiredObjectDeleteMarker"),
        )?
        .unwrap_or(false);
        let schedule = match (days, date) {
            (Some(d), _) => Some(Schedule::Days(d)),
            (None, Some(d)) => Some(Schedule::Date(d)),
            (None, None) => None,
        };
        if schedule.is_some() || eodm {
            return Ok(Some(Expiration {
                schedule,
                expired_object_delete_marker: eodm,
            }));
        }
    }
    Ok(None)
}

/// `Transitions` (XML `Transition` elements).
fn transitions(v: &Value, path: &str, zu: bool) -> Result<Vec<Transition>, FieldError> {
    let mut out = Vec::new();
    for (i, t) in many(v, &["Transitions", "Transition"])
        .into_iter()
        .enumerate()
    {
        let p = format!("{}[{i}]", sub(path, "Transitions"));
        let date = opt_date(t, &["Date"], &sub(&p, "Date"), zu)?;
        // Transition Days 0 is legal (archive at the next midnight); Terraform's legacy 0 only
        // means "unset" when a date is given.
        let days = opt_u32(t, &["Days"], &sub(&p, "Days"), false)?;
        let schedule = match (date, days) {
            (Some(d), _) => Schedule::Date(d),
            (None, Some(d)) => Schedule::Days(d),
            (None, None) => return Err(FieldError::new(&p, "a transition with Days or Date", t)),
        };
        let class = opt_str(t, &["StorageClass"], &sub(&p, "StorageClass"), zu)?
            .unwrap_or_else(|| "(missing)".to_string());
        out.push(Transition {
            schedule,
            storage_class: StorageClass::parse(&class),
        });
    }
    Ok(out)
}

/// `NoncurrentVersionExpiration` (`NoncurrentDays`, `NewerNoncurrentVersions`).
fn noncurrent_expiration(
    v: &Value,
    path: &str,
    zu: bool,
) -> Result<Option<NoncurrentExpiration>, FieldError> {
    if let Some(n) = one(v, &["NoncurrentVersionExpiration"]) {
        let p = sub(path, "NoncurrentVersionExpiration");
        let days = opt_u32(
            n,
            &["NoncurrentDays", "days"],
            &sub(&p, "NoncurrentDays"),
            zu,
        )?;
        let newer = opt_u32(
            n,
            &["NewerNoncurrentVersions"],
            &sub(&p, "NewerNoncurrentVersions"),
            zu,
        )?;
        match days {
            Some(d) => {
                return Ok(Some(NoncurrentExpiration {
                    noncurrent_days: d,
                    newer_noncurrent_versions: newer,
                }))
            }
            None if zu => {}
            None => {
                return Err(FieldError::new(
                    &p,
                    "NoncurrentDays (a positive integer)",
                    n,
                ))
            }
        }
    }
    Ok(None)
}

/// `NoncurrentVersionTransitions` (XML `NoncurrentVersionTransition` elements).
fn noncurrent_transitions(
    v: &Value,
    path: &str,
    zu: bool,
) -> Result<Vec<NoncurrentTransition>, FieldError> {
    let mut out = Vec::new();
    for (i, t) in many(
        v,
        &[
            "NoncurrentVersionTransitions",
            "NoncurrentVersionTransition",
        ],
    )
    .into_iter()
    .enumerate()
    {
        let p = format!("{}[{i}]", sub(path, "NoncurrentVersionTransitions"));
        let days = opt_u32(
            t,
            &["NoncurrentDays", "days"],
            &sub(&p, "NoncurrentDays"),
            false,
        )?
        .unwrap_or(0);
        let class = opt_str(t, &["StorageClass"], &sub(&p, "StorageClass"), zu)?
            .unwrap_or_else(|| "(missing)".to_string());
        out.push(NoncurrentTransition {
            noncurrent_days: days,
            storage_class: StorageClass::parse(&class),
            newer_noncurrent_versions: opt_u32(
                t,
                &["NewerNoncurrentVersions"],
                &sub(&p, "NewerNoncurrentVersions"),
                zu,
            )?,
        });
    }
    Ok(out)
}

/// `AbortIncompleteMultipartUpload.DaysAfterInitiation`, or Terraform's flat attribute.
fn abort_days(v: &Value, path: &str, zu: bool) -> Result<Option<u32>, FieldError> {
    if let Some(a) = one(v, &["AbortIncompleteMultipartUpload"]) {
        let p = sub(path, "AbortIncompleteMultipartUpload");
        opt_u32(
            a,
            &["DaysAfterInitiation"],
            &sub(&p, "DaysAfterInitiation"),
            zu,
        )
    } else {
        opt_u32(
            v,
            &["abort_incomplete_multipart_upload_days"],
            &sub(path, "abort_incomplete_multipart_upload_days"),
            true,
        )
    }
}

fn filter(f: &Value, path: &str, zu: bool) -> Result<Filter, FieldError> {
    let mut out = Filter {
        prefix: opt_str(f, &["Prefix"], &sub(path, "Prefix"), true)?.unwrap_or_default(),
        ..Filter::default()
    };
    if let Some(t) = one(f, &["Tag"]) {
        out.tags.extend(tag_list(t, &sub(path, "Tag"))?);
    }
    out.size_greater_than = opt_u64(
        f,
        &["ObjectSizeGreaterThan"],
        &sub(path, "ObjectSizeGreaterThan"),
        zu,
    )?;
    out.size_less_than = opt_u64(
        f,
        &["ObjectSizeLessThan"],
        &sub(path, "ObjectSizeLessThan"),
        zu,
    )?;
    if let Some(and) = one(f, &["And"]) {
        let p = sub(path, "And");
        if !and.is_object() {
            if matches!(and, Value::String(s) if s.trim().is_empty()) {
                return Ok(out);
            }
            return Err(FieldError::new(&p, "an And object", and));
        }
        if let Some(prefix) = opt_str(and, &["Prefix"], &sub(&p, "Prefix"), true)? {
            out.prefix = prefix;
        }
        if let Some(t) = get(and, &["Tags", "Tag"]) {
            out.tags.extend(tag_list(t, &sub(&p, "Tags"))?);
        }
        if let Some(gt) = opt_u64(
            and,
            &["ObjectSizeGreaterThan"],
            &sub(&p, "ObjectSizeGreaterThan"),
            zu,
        )? {
            out.size_greater_than = Some(gt);
        }
        if let Some(lt) = opt_u64(
            and,
            &["ObjectSizeLessThan"],
            &sub(&p, "ObjectSizeLessThan"),
            zu,
        )? {
            out.size_less_than = Some(lt);
        }
    }
    Ok(out)
}

/// Tags as `[{Key, Value}]`, a single `{Key, Value}`, or a map `{k: v}` (Terraform, Upbound).
pub(crate) fn tag_list(v: &Value, path: &str) -> Result<Vec<Tag>, FieldError> {
    let one_tag = |t: &Value, p: &str| -> Result<Tag, FieldError> {
        let key = opt_str(t, &["Key"], &sub(p, "Key"), false)?
            .ok_or_else(|| FieldError::new(p, "a tag with Key", t))?;
        let value = opt_str(t, &["Value"], &sub(p, "Value"), false)?.unwrap_or_default();
        Ok(Tag { key, value })
    };
    match v {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, t)| one_tag(t, &format!("{path}[{i}]")))
            .collect(),
        Value::Object(m) if get(v, &["Key"]).is_some() && m.len() <= 2 => {
            Ok(vec![one_tag(v, path)?])
        }
        Value::Object(m) => m
            .iter()
            .map(|(k, val)| match val {
                Value::String(s) => Ok(Tag {
                    key: k.clone(),
                    value: s.clone(),
                }),
                Value::Null => Ok(Tag {
                    key: k.clone(),
                    value: String::new(),
                }),
                other => Err(FieldError::new(&sub(path, k), "a tag value string", other)),
            })
            .collect(),
        other => Err(FieldError::new(
            path,
            &format!(
                "tags as a list of {{Key, Value}} or a map, not a {}",
                json_kind(other)
            ),
            other,
        )),
    }
}
