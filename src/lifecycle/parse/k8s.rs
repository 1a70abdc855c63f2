//! Lifecycle rules carried by Kubernetes objects (admission-webhook.md §3.8):
//!
//! - ACK `s3.services.k8s.aws/*` `Bucket`: `spec.name` is the bucket, `spec.lifecycle.rules` the
//!   rules. The controller calls `DeleteBucketLifecycle` when `spec.lifecycle` (or its `rules`) is
//!   absent, so such an object deletes every rule of the bucket.
//! - Upbound `s3.aws.upbound.io/*` and namespaced `s3.aws.m.upbound.io/*`
//!   `BucketLifecycleConfiguration`: `spec.forProvider.rule[]` with one-element-list blocks.
//! - crossplane-contrib `s3.aws.crossplane.io/*` `Bucket`:
//!   `spec.forProvider.lifecycleConfiguration.rules`.
//!
//! Other kinds are skipped; a `List` is walked item by item.

use super::rules::{self, Dialect};
use super::{BucketRules, FieldError, Format};
use crate::lifecycle::model::Configuration;
use serde_json::Value;

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str()
}

fn object_name(doc: &Value) -> String {
    let kind = s(doc, &["kind"]).unwrap_or("?");
    let name = s(doc, &["metadata", "name"]).unwrap_or("?");
    match s(doc, &["metadata", "namespace"]) {
        Some(ns) => format!("{kind}/{ns}/{name}"),
        None => format!("{kind}/{name}"),
    }
}

fn group(doc: &Value) -> &str {
    s(doc, &["apiVersion"])
        .and_then(|a| a.split('/').next())
        .unwrap_or_default()
}

pub(crate) fn parse(doc: &Value) -> Result<Vec<BucketRules>, FieldError> {
    let mut out = Vec::new();
    walk(doc, "", &mut out)?;
    Ok(out)
}

fn walk(doc: &Value, path: &str, out: &mut Vec<BucketRules>) -> Result<(), FieldError> {
    let kind = s(doc, &["kind"]).unwrap_or_default();
    if kind == "List" || kind.ends_with("List") {
        if let Some(Value::Array(items)) = doc.get("items") {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{path}items[{i}]."), out)?;
            }
        }
        return Ok(());
    }
    let origin = object_name(doc);
    match (group(doc), kind) {
        ("s3.services.k8s.aws", "Bucket") => {
            let spec = doc.get("spec").unwrap_or(&Value::Null);
            let bucket = s(spec, &["name"]).map(str::to_string);
            let rules_val = spec.get("lifecycle").and_then(|l| l.get("rules"));
            let deletes = rules_val.is_none_or(Value::is_null);
            let rules = match rules_val {
                Some(r) => {
                    rules::rule_list(r, &format!("{path}spec.lifecycle.rules"), Dialect::Aws)?
                }
                None => Vec::new(),
            };
            out.push(BucketRules {
                bucket,
                bucket_from_hint: false,
                origin,
                format: Format::Kubernetes,
                configuration: Configuration {
                    rules,
                    transition_default_minimum_object_size: None,
                },
                deletes_configuration: deletes,
                previous: None,
            });
        }
        ("s3.aws.upbound.io" | "s3.aws.m.upbound.io", "BucketLifecycleConfiguration") => {
            let fp = doc
                .get("spec")
                .and_then(|x| x.get("forProvider"))
                .unwrap_or(&Value::Null);
            let rule_val = fp.get("rule").unwrap_or(&Value::Null);
            let rules = rules::rule_list(
                rule_val,
                &format!("{path}spec.forProvider.rule"),
                Dialect::Aws,
            )?;
            let bucket = s(fp, &["bucket"]).map(str::to_string);
            let origin = match (&bucket, s(fp, &["bucketRef", "name"])) {
                (None, Some(r)) => format!("{origin} (bucketRef {r})"),
                _ => origin,
            };
            out.push(BucketRules {
                bucket,
                bucket_from_hint: false,
                origin,
                format: Format::Kubernetes,
                configuration: Configuration {
                    rules,
                    transition_default_minimum_object_size: s(
                        fp,
                        &["transitionDefaultMinimumObjectSize"],
                    )
                    .map(str::to_string),
                },
                deletes_configuration: false,
                previous: None,
            });
        }
        ("s3.aws.crossplane.io", "Bucket") => {
            let lc = doc
                .get("spec")
                .and_then(|x| x.get("forProvider"))
                .and_then(|x| x.get("lifecycleConfiguration"));
            let rules_val = lc.and_then(|l| l.get("rules"));
            let rules = match rules_val {
                Some(r) => rules::rule_list(
                    r,
                    &format!("{path}spec.forProvider.lifecycleConfiguration.rules"),
                    Dialect::Aws,
                )?,
                None => Vec::new(),
            };
            let bucket = s(
                doc,
                &["metadata", "annotations", "crossplane.io/external-name"],
            )
            .or_else(|| s(doc, &["metadata", "name"]))
            .map(str::to_string);
            out.push(BucketRules {
                bucket,
                bucket_from_hint: false,
                origin,
                format: Format::Kubernetes,
                configuration: Configuration {
                    rules,
                    transition_default_minimum_object_size: None,
                },
                deletes_configuration: rules_val.is_none_or(Value::is_null),
                previous: None,
            });
        }
        _ => {}
    }
    Ok(())
}
