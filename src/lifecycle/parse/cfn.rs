//! CloudFormation `AWS::S3::Bucket` → `LifecycleConfiguration` (s3-lifecycle.md §3.2).
//!
//! CloudFormation has no `Filter` object: `Prefix`, `TagFilters` and the (string-typed) size
//! properties together form the filter; no prefix means the whole bucket. Legacy single
//! `Transition` / `NoncurrentVersionTransition` and `NoncurrentVersionExpirationInDays` are read
//! alongside the list forms. Intrinsic functions (`!Ref`, `Fn::If`, ...) cannot be resolved
//! without deploying; fields holding one are recorded as unknown.

use super::rules::{get, many, one, opt_date, opt_str, opt_u32, opt_u64, tag_list};
use super::{BucketRules, FieldError, Format};
use crate::lifecycle::model::{
    Configuration, Expiration, Filter, NoncurrentExpiration, NoncurrentTransition, Rule, Schedule,
    Status, StorageClass, Transition,
};
use serde_json::Value;

fn is_intrinsic(v: &Value) -> bool {
    match v {
        Value::Object(m) => {
            m.len() == 1
                && m.keys()
                    .all(|k| k == "Ref" || k.starts_with("Fn::") || k.starts_with('!'))
        }
        _ => false,
    }
}

/// An optional field; intrinsic functions are recorded in `unknown` and read as absent.
fn known<'a>(v: &'a Value, name: &str, unknown: &mut Vec<String>) -> Option<&'a Value> {
    let x = get(v, &[name])?;
    if is_intrinsic(x) {
        unknown.push(name.to_string());
        return None;
    }
    Some(x)
}

fn u32_field(
    v: &Value,
    name: &str,
    path: &str,
    unknown: &mut Vec<String>,
) -> Result<Option<u32>, FieldError> {
    match known(v, name, unknown) {
        None => Ok(None),
        Some(_) => opt_u32(v, &[name], &format!("{path}.{name}"), false),
    }
}

fn rule(v: &Value, path: &str) -> Result<Rule, FieldError> {
    if !v.is_object() {
        return Err(FieldError::new(path, "a rule object", v));
    }
    let mut unknown = Vec::new();
    let mut r = Rule::new(opt_str(v, &["Id"], &format!("{path}.Id"), false)?);
    r.status = match known(v, "Status", &mut unknown) {
        Some(Value::String(s)) if s.eq_ignore_ascii_case("enabled") => Status::Enabled,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("disabled") => Status::Disabled,
        Some(Value::String(s)) => Status::Unknown(s.clone()),
        Some(x) => {
            return Err(FieldError::new(
                &format!("{path}.Status"),
                "\"Enabled\" or \"Disabled\"",
                x,
            ))
        }
        None => Status::Unknown("(missing or intrinsic)".to_string()),
    };
    let mut filter = Filter::default();
    if known(v, "Prefix", &mut unknown).is_some() {
        filter.prefix =
            opt_str(v, &["Prefix"], &format!("{path}.Prefix"), true)?.unwrap_or_default();
    }
    if let Some(t) = known(v, "TagFilters", &mut unknown) {
        filter.tags = tag_list(t, &format!("{path}.TagFilters"))?;
    }
    if known(v, "ObjectSizeGreaterThan", &mut unknown).is_some() {
        filter.size_greater_than = opt_u64(
            v,
            &["ObjectSizeGreaterThan"],
            &format!("{path}.ObjectSizeGreaterThan"),
            false,
        )?;
    }
    if known(v, "ObjectSizeLessThan", &mut unknown).is_some() {
        filter.size_less_than = opt_u64(
            v,
            &["ObjectSizeLessThan"],
            &format!("{path}.ObjectSizeLessThan"),
            false,
        )?;
    }
    r.filter = filter;

    let days = u32_field(v, "ExpirationInDays", path, &mut unknown)?;
    let date = match known(v, "ExpirationDate", &mut unknown) {
        Some(_) => opt_date(
            v,
            &["ExpirationDate"],
            &format!("{path}.ExpirationDate"),
            false,
        )?,
        None => None,
    };
    let eodm = matches!(
        get(v, &["ExpiredObjectDeleteMarker"]),
        Some(Value::Bool(true))
    ) || matches!(get(v, &["ExpiredObjectDeleteMarker"]), Some(Value::String(s)) if s.eq_ignore_ascii_case("true"));
    let schedule = days.map(Schedule::Days).or(date.map(Schedule::Date));
    if schedule.is_some() || eodm {
        r.expiration = Some(Expiration {
            schedule,
            expired_object_delete_marker: eodm,
        });
    }

    let mut transitions: Vec<&Value> = many(v, &["Transitions"]);
    transitions.extend(one(v, &["Transition"]));
    for (i, t) in transitions.into_iter().enumerate() {
        let p = format!("{path}.Transitions[{i}]");
        let date = match known(t, "TransitionDate", &mut unknown) {
            Some(_) => opt_date(
                t,
                &["TransitionDate"],
                &format!("{p}.TransitionDate"),
                false,
            )?,
            None => None,
        };
        let days = u32_field(t, "TransitionInDays", &p, &mut unknown)?;
        let schedule = match (date, days) {
            (Some(d), _) => Schedule::Date(d),
            (None, Some(d)) => Schedule::Days(d),
            // Unknown (intrinsic) timing: assume the earliest, next midnight.
            (None, None) if !unknown.is_empty() => Schedule::Days(0),
            (None, None) => {
                return Err(FieldError::new(&p, "TransitionInDays or TransitionDate", t))
            }
        };
        let class = opt_str(t, &["StorageClass"], &format!("{p}.StorageClass"), true)?
            .unwrap_or_else(|| "(missing)".to_string());
        r.transitions.push(Transition {
            schedule,
            storage_class: StorageClass::parse(&class),
        });
    }

    if let Some(n) = one(v, &["NoncurrentVersionExpiration"]) {
        let p = format!("{path}.NoncurrentVersionExpiration");
        if let Some(d) = u32_field(n, "NoncurrentDays", &p, &mut unknown)? {
            r.noncurrent_expiration = Some(NoncurrentExpiration {
                noncurrent_days: d,
                newer_noncurrent_versions: u32_field(
                    n,
                    "NewerNoncurrentVersions",
                    &p,
                    &mut unknown,
                )?,
            });
        }
    } else if let Some(d) = u32_field(v, "NoncurrentVersionExpirationInDays", path, &mut unknown)? {
        r.noncurrent_expiration = Some(NoncurrentExpiration {
            noncurrent_days: d,
            newer_noncurrent_versions: None,
        });
    }

    let mut nct: Vec<&Value> = many(v, &["NoncurrentVersionTransitions"]);
    nct.extend(one(v, &["NoncurrentVersionTransition"]));
    for (i, t) in nct.into_iter().enumerate() {
        let p = format!("{path}.NoncurrentVersionTransitions[{i}]");
        let days = u32_field(t, "TransitionInDays", &p, &mut unknown)?.unwrap_or(0);
        let class = opt_str(t, &["StorageClass"], &format!("{p}.StorageClass"), true)?
            .unwrap_or_else(|| "(missing)".to_string());
        r.noncurrent_transitions.push(NoncurrentTransition {
            noncurrent_days: days,
            storage_class: StorageClass::parse(&class),
            newer_noncurrent_versions: u32_field(t, "NewerNoncurrentVersions", &p, &mut unknown)?,
        });
    }
    if let Some(a) = one(v, &["AbortIncompleteMultipartUpload"]) {
        r.abort_incomplete_multipart_days = u32_field(
            a,
            "DaysAfterInitiation",
            &format!("{path}.AbortIncompleteMultipartUpload"),
            &mut unknown,
        )?;
    }
    r.unknown_fields = unknown;
    Ok(r)
}

pub(crate) fn parse(doc: &Value) -> Result<Vec<BucketRules>, FieldError> {
    let mut out = Vec::new();
    let Some(Value::Object(resources)) = get(doc, &["Resources"]) else {
        return Ok(out);
    };
    for (logical, res) in resources {
        let ty = res.get("Type").and_then(Value::as_str).unwrap_or_default();
        if ty != "AWS::S3::Bucket" {
            continue;
        }
        let props = res.get("Properties").unwrap_or(&Value::Null);
        let bucket = match props.get("BucketName") {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        let Some(lc) = props.get("LifecycleConfiguration").filter(|v| !v.is_null()) else {
            // CloudFormation owns the whole property: a bucket without it has no rules.
            out.push(BucketRules {
                bucket,
                bucket_from_hint: false,
                origin: format!("Resources.{logical}"),
                format: Format::CloudFormation,
                configuration: Configuration::default(),
                deletes_configuration: true,
                previous: None,
            });
            continue;
        };
        let path = format!("Resources.{logical}.Properties.LifecycleConfiguration");
        let rules = match lc.get("Rules") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, r)| rule(r, &format!("{path}.Rules[{i}]")))
                .collect::<Result<Vec<_>, _>>()?,
            Some(other) => {
                return Err(FieldError::new(
                    &format!("{path}.Rules"),
                    "a list of rules",
                    other,
                ))
            }
        };
        out.push(BucketRules {
            bucket,
            bucket_from_hint: false,
            origin: format!("Resources.{logical}"),
            format: Format::CloudFormation,
            configuration: Configuration {
                rules,
                transition_default_minimum_object_size: lc
                    .get("TransitionDefaultMinimumObjectSize")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            },
            deletes_configuration: false,
            previous: None,
        });
    }
    Ok(out)
}
