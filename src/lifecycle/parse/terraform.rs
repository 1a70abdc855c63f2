//! `terraform show -json` plans: `aws_s3_bucket_lifecycle_configuration` resources and the
//! deprecated inline `lifecycle_rule` of `aws_s3_bucket` (s3-lifecycle.md §3.1).
//!
//! - Nested blocks are one-element lists; `0`, `""` and `false` are the provider's "legacy values"
//!   for unset attributes and read as unset.
//! - A bucket created in the same plan has an unknown name (`after_unknown.bucket`); it is resolved
//!   through `configuration.*.resources[].expressions.bucket.references` to the referenced
//!   `aws_s3_bucket`'s planned `bucket`.
//! - Values unknown until apply are recorded in [`Rule::unknown_fields`](crate::lifecycle::model::Rule).
//! - When both forms target one bucket, the standalone resource wins (the provider says they
//!   must not be mixed).

use super::rules::{self, Dialect};
use super::{BucketRules, FieldError, Format};
use crate::lifecycle::model::{Configuration, Rule, Status};
use serde_json::Value;

/// Whether `doc` looks like a `terraform show -json` plan or state.
pub(crate) fn is_plan(doc: &Value) -> bool {
    let Value::Object(m) = doc else { return false };
    m.contains_key("format_version")
        && (m.contains_key("resource_changes")
            || m.contains_key("planned_values")
            || m.contains_key("terraform_version"))
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Paths under `v` whose value is `true` (Terraform's "known after apply").
fn unknown_paths(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Bool(true) => out.push(path.to_string()),
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                unknown_paths(x, &format!("{path}[{i}]"), out);
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                unknown_paths(x, &p, out);
            }
        }
        _ => {}
    }
}

/// The configuration module for a `module_address` such as `module.a.module.b`.
fn config_module<'a>(doc: &'a Value, module_address: Option<&str>) -> Option<&'a Value> {
    let mut m = doc.get("configuration")?.get("root_module")?;
    if let Some(addr) = module_address {
        let parts: Vec<&str> = addr.split('.').collect();
        for pair in parts.chunks(2) {
            let [kind, name] = pair else { return None };
            if *kind != "module" {
                return None;
            }
            // Strip an instance key: module.x["a"] / module.x[0].
            let name = name.split('[').next().unwrap_or(name);
            m = m.get("module_calls")?.get(name)?.get("module")?;
        }
    }
    Some(m)
}

/// Resolve an unknown bucket name through the configuration's `bucket` references.
/// Returns (bucket name if known, referenced address).
fn resolve_bucket(doc: &Value, rc: &Value, changes: &[Value]) -> (Option<String>, Option<String>) {
    let module_address = str_field(rc, "module_address");
    let (Some(ty), Some(name)) = (str_field(rc, "type"), str_field(rc, "name")) else {
        return (None, None);
    };
    let local = format!("{ty}.{name}");
    let Some(module) = config_module(doc, module_address) else {
        return (None, None);
    };
    let resources = module.get("resources").and_then(Value::as_array);
    let Some(res) =
        resources.and_then(|rs| rs.iter().find(|r| str_field(r, "address") == Some(&local)))
    else {
        return (None, None);
    };
    let expr = res.get("expressions").and_then(|e| e.get("bucket"));
    if let Some(c) = expr
        .and_then(|e| e.get("constant_value"))
        .and_then(Value::as_str)
    {
        return (Some(c.to_string()), None);
    }
    let refs = expr
        .and_then(|e| e.get("references"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let target = refs.iter().filter_map(Value::as_str).find_map(|r| {
        let mut it = r.split('.');
        match (it.next(), it.next()) {
            (Some("aws_s3_bucket"), Some(n)) => Some(format!("aws_s3_bucket.{n}")),
            _ => None,
        }
    });
    let Some(target) = target else {
        return (None, None);
    };
    let full = match module_address {
        Some(m) => format!("{m}.{target}"),
        None => target.clone(),
    };
    // Same instance key as the lifecycle resource, if any (count/for_each pairs).
    let index_suffix = str_field(rc, "address")
        .filter(|a| a.ends_with(']'))
        .and_then(|a| a.rfind('[').map(|i| a[i..].to_string()))
        .unwrap_or_default();
    let candidates = [format!("{full}{index_suffix}"), full.clone()];
    for cand in &candidates {
        if let Some(b) = changes
            .iter()
            .find(|c| str_field(c, "address") == Some(cand.as_str()))
        {
            let change = b.get("change");
            let name = change
                .and_then(|c| c.get("after"))
                .and_then(|a| str_field(a, "bucket"))
                .or_else(|| {
                    change
                        .and_then(|c| c.get("before"))
                        .and_then(|a| str_field(a, "bucket"))
                });
            return (name.map(str::to_string), Some(cand.clone()));
        }
    }
    (None, Some(full))
}

fn config_from(
    obj: &Value,
    rules_key: &str,
    path: &str,
    unknown: Option<&Value>,
) -> Result<Configuration, FieldError> {
    let list = obj.get(rules_key).unwrap_or(&Value::Null);
    let mut rules = rules::rule_list(list, &format!("{path}.{rules_key}"), Dialect::Terraform)?;
    match unknown.and_then(|u| u.get(rules_key)) {
        Some(Value::Array(unk)) => {
            for (rule, u) in rules.iter_mut().zip(unk) {
                unknown_paths(u, "", &mut rule.unknown_fields);
            }
        }
        // The whole rule list is known only after apply: never read that as "no rules".
        Some(Value::Bool(true)) => {
            let mut r = Rule::new(Some("(unknown until apply)".to_string()));
            r.status = Status::Unknown("(unknown until apply)".to_string());
            r.unknown_fields.push(rules_key.to_string());
            rules.push(r);
        }
        _ => {}
    }
    Ok(Configuration {
        rules,
        transition_default_minimum_object_size: obj
            .get("transition_default_minimum_object_size")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    })
}

pub(crate) fn parse(doc: &Value) -> Result<Vec<BucketRules>, FieldError> {
    let empty = Vec::new();
    let changes = doc
        .get("resource_changes")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let mut standalone: Vec<BucketRules> = Vec::new();
    let mut inline: Vec<BucketRules> = Vec::new();
    for (i, rc) in changes.iter().enumerate() {
        if str_field(rc, "mode").is_some_and(|m| m != "managed") {
            continue;
        }
        let ty = str_field(rc, "type").unwrap_or_default();
        let address = str_field(rc, "address").unwrap_or_default().to_string();
        let Some(change) = rc.get("change") else {
            continue;
        };
        let after = change.get("after").filter(|a| a.is_object());
        let before = change.get("before").filter(|b| b.is_object());
        let after_unknown = change.get("after_unknown");
        let path = format!("resource_changes[{i}].change");
        match ty {
            "aws_s3_bucket_lifecycle_configuration" => {
                let configuration = match after {
                    Some(a) => config_from(a, "rule", &format!("{path}.after"), after_unknown)?,
                    None => Configuration::default(),
                };
                let previous = match before {
                    Some(b) => Some(config_from(b, "rule", &format!("{path}.before"), None)?),
                    None => None,
                };
                let mut bucket = after
                    .and_then(|a| str_field(a, "bucket"))
                    .or_else(|| before.and_then(|b| str_field(b, "bucket")))
                    .map(str::to_string);
                let mut origin = address.clone();
                if bucket.is_none() {
                    let (name, via) = resolve_bucket(doc, rc, changes);
                    bucket = name;
                    if let Some(via) = via {
                        origin = match &bucket {
                            Some(_) => format!("{address} (bucket of {via})"),
                            None => {
                                format!("{address} (bucket of {via}, name unknown until apply)")
                            }
                        };
                    }
                }
                standalone.push(BucketRules {
                    bucket,
                    bucket_from_hint: false,
                    origin,
                    format: Format::TerraformPlan,
                    deletes_configuration: after.is_none(),
                    configuration,
                    previous,
                });
            }
            "aws_s3_bucket" => {
                let has_rules = |v: Option<&Value>| {
                    v.and_then(|x| x.get("lifecycle_rule"))
                        .and_then(Value::as_array)
                        .is_some_and(|a| !a.is_empty())
                };
                if !has_rules(after) && !has_rules(before) {
                    continue;
                }
                let configuration = match after {
                    Some(a) if has_rules(Some(a)) => {
                        config_from(a, "lifecycle_rule", &format!("{path}.after"), after_unknown)?
                    }
                    _ => Configuration::default(),
                };
                let previous = match before {
                    Some(b) if has_rules(Some(b)) => Some(config_from(
                        b,
                        "lifecycle_rule",
                        &format!("{path}.before"),
                        None,
                    )?),
                    _ => None,
                };
                let bucket = after
                    .and_then(|a| str_field(a, "bucket"))
                    .or_else(|| before.and_then(|b| str_field(b, "bucket")))
                    .map(str::to_string);
                inline.push(BucketRules {
                    bucket,
                    bucket_from_hint: false,
                    origin: format!("{address}.lifecycle_rule"),
                    format: Format::TerraformPlan,
                    deletes_configuration: after.is_none(),
                    configuration,
                    previous,
                });
            }
            _ => {}
        }
    }
    // The standalone resource wins over inline rules of the same bucket.
    inline.retain(|b| {
        !standalone
            .iter()
            .any(|s| s.bucket.is_some() && s.bucket == b.bucket)
    });
    standalone.extend(inline);
    Ok(standalone)
}
