//! Parse lifecycle rules from every supported source into [`Configuration`]s, detecting the
//! format from the content:
//!
//! - S3 XML (`<LifecycleConfiguration>`, the `GET ?lifecycle` body and PUT input);
//! - AWS JSON (`aws s3api get/put-bucket-lifecycle-configuration`: `{"Rules": [...]}`, a bare
//!   list of rules, or `--cli-input-json` with `Bucket` + `LifecycleConfiguration`);
//! - Terraform `terraform show -json` plans (`aws_s3_bucket_lifecycle_configuration`, and the
//!   inline `lifecycle_rule` of `aws_s3_bucket`);
//! - CloudFormation templates (`AWS::S3::Bucket` `LifecycleConfiguration`, JSON or YAML);
//! - Kubernetes objects (ACK `s3.services.k8s.aws` `Bucket`, Upbound `s3.aws.upbound.io` /
//!   `s3.aws.m.upbound.io` `BucketLifecycleConfiguration`, crossplane `s3.aws.crossplane.io`
//!   `Bucket`), one or many YAML documents or a `List`.
//!
//! XML and YAML are first turned into a `serde_json::Value`; one lenient walker (module `rules`) then
//! reads the rule shapes of AWS JSON, XML, Terraform, ACK, Upbound and crossplane, whose field names
//! differ only in case, underscores, and list-wrapping. CloudFormation has its own walker.

mod cfn;
mod k8s;
mod rules;
mod terraform;
mod xml;

use super::model::Configuration;
use serde::Serialize;
use serde_json::Value;

/// The input format [`parse`] detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// `aws s3api` JSON (`Rules`, bare list, or `--cli-input-json`).
    AwsJson,
    /// S3 `LifecycleConfiguration` XML.
    S3Xml,
    /// `terraform show -json` plan.
    TerraformPlan,
    /// CloudFormation template (JSON or YAML).
    CloudFormation,
    /// Kubernetes manifests (ACK, Upbound, crossplane).
    Kubernetes,
}

impl Format {
    /// Human name used in messages.
    pub fn name(&self) -> &'static str {
        match self {
            Format::AwsJson => "AWS JSON",
            Format::S3Xml => "S3 XML",
            Format::TerraformPlan => "Terraform plan JSON",
            Format::CloudFormation => "CloudFormation template",
            Format::Kubernetes => "Kubernetes manifest",
        }
    }
}

/// The lifecycle configuration one input assigns to one bucket.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketRules {
    /// The bucket name; `None` when the input does not say (plain AWS JSON/XML without a hint,
    /// or a Terraform/CloudFormation/Kubernetes reference that cannot be resolved).
    pub bucket: Option<String>,
    /// True when `bucket` came from the caller's `bucket_hint` rather than the input.
    pub bucket_from_hint: bool,
    /// Where in the input the rules came from, e.g. `aws_s3_bucket_lifecycle_configuration.logs`,
    /// `Resources.StateBucket`, `Bucket/default/state`, or the source name.
    pub origin: String,
    /// The detected format.
    pub format: Format,
    /// The configuration after this input is applied. Empty when the input deletes the bucket's
    /// lifecycle configuration (see `deletes_configuration`).
    pub configuration: Configuration,
    /// True when applying the input removes every lifecycle rule of the bucket (Terraform
    /// delete, ACK `Bucket` without `spec.lifecycle`).
    pub deletes_configuration: bool,
    /// The configuration before the change when the input carries it (Terraform `before`).
    pub previous: Option<Configuration>,
}

/// Why an input could not be read. Every variant names the input and what was expected.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParseError {
    /// Not XML, JSON or YAML at all.
    #[error("{source_name}: not a lifecycle configuration: {detail}; expected S3 XML, AWS JSON ({{\"Rules\": [...]}}), a `terraform show -json` plan, a CloudFormation template, or Kubernetes (ACK/Upbound) YAML")]
    Syntax { source_name: String, detail: String },
    /// Valid syntax, but no known lifecycle shape.
    #[error("{source_name}: {detail}; expected S3 XML, AWS JSON ({{\"Rules\": [...]}}), a `terraform show -json` plan, a CloudFormation template, or Kubernetes (ACK/Upbound) YAML")]
    Unrecognized { source_name: String, detail: String },
    /// A recognised format (e.g. a Terraform plan or Kubernetes manifests) that carries no
    /// lifecycle configuration at all. Callers judging arbitrary change sets may treat this as
    /// "nothing to check".
    #[error("{source_name} ({format}): {detail}")]
    NoLifecycle {
        source_name: String,
        format: &'static str,
        detail: String,
    },
    /// A recognised format with a field of the wrong shape.
    #[error("{source_name} ({format}): at {path}: expected {expected}, found {found}")]
    Field {
        source_name: String,
        format: &'static str,
        path: String,
        expected: String,
        found: String,
    },
}

/// A field error before the source name and format are attached.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldError {
    pub path: String,
    pub expected: String,
    pub found: String,
}

impl FieldError {
    pub(crate) fn new(path: &str, expected: &str, found: &Value) -> FieldError {
        let mut found = found.to_string();
        if found.len() > 80 {
            let mut cut = 77;
            while !found.is_char_boundary(cut) {
                cut -= 1;
            }
            found.truncate(cut);
            found.push_str("...");
        }
        FieldError {
            path: path.to_string(),
            expected: expected.to_string(),
            found,
        }
    }

    fn into_parse(self, source_name: &str, format: Format) -> ParseError {
        ParseError::Field {
            source_name: source_name.to_string(),
            format: format.name(),
            path: self.path,
            expected: self.expected,
            found: self.found,
        }
    }
}

/// Parse lifecycle rules from `input`, detecting the format from the content.
///
/// `source_name` names the input in errors (a path, `-` for stdin). `bucket_hint` fills in the
/// bucket when the input does not name one (plain AWS JSON/XML) or names it only through an
/// unresolvable reference (Terraform `after_unknown`, CloudFormation `!Ref`, Upbound
/// `bucketRef`); such results have `bucket_from_hint = true`.
///
/// Returns one [`BucketRules`] per bucket configuration found, in input order (never empty on
/// success: an input with no lifecycle configuration at all is an error, except a Terraform plan
/// or Kubernetes object that explicitly removes one).
pub fn parse(
    input: &[u8],
    source_name: &str,
    bucket_hint: Option<&str>,
) -> Result<Vec<BucketRules>, ParseError> {
    let text = std::str::from_utf8(input).map_err(|e| ParseError::Syntax {
        source_name: source_name.to_string(),
        detail: format!("not UTF-8 text ({e})"),
    })?;
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.is_empty() {
        return Err(ParseError::Syntax {
            source_name: source_name.to_string(),
            detail: "the input is empty".to_string(),
        });
    }
    let (docs, was_xml) = if trimmed.starts_with('<') {
        let v = xml::to_value(trimmed).map_err(|detail| ParseError::Syntax {
            source_name: source_name.to_string(),
            detail: format!("invalid XML: {detail}"),
        })?;
        (vec![v], true)
    } else {
        match crate::json::value_from_str(trimmed) {
            Ok(v) => (vec![v], false),
            Err(json_err) => {
                let docs = yaml_documents(trimmed).map_err(|yaml_err| {
                    let looks_json = trimmed.starts_with('{') || trimmed.starts_with('[');
                    ParseError::Syntax {
                        source_name: source_name.to_string(),
                        detail: if looks_json {
                            format!("invalid JSON: {json_err}")
                        } else {
                            format!("invalid YAML: {yaml_err}")
                        },
                    }
                })?;
                (docs, false)
            }
        }
    };
    let mut out = Vec::new();
    let mut seen_k8s = false;
    for doc in &docs {
        if was_xml {
            out.push(from_xml(doc, source_name)?);
            continue;
        }
        let format = detect(doc).ok_or_else(|| ParseError::Unrecognized {
            source_name: source_name.to_string(),
            detail: describe_unrecognized(doc),
        })?;
        let found = match format {
            Format::AwsJson => vec![aws_json(doc).map_err(|e| e.into_parse(source_name, format))?],
            Format::TerraformPlan => {
                terraform::parse(doc).map_err(|e| e.into_parse(source_name, format))?
            }
            Format::CloudFormation => {
                cfn::parse(doc).map_err(|e| e.into_parse(source_name, format))?
            }
            Format::Kubernetes => {
                seen_k8s = true;
                k8s::parse(doc).map_err(|e| e.into_parse(source_name, format))?
            }
            Format::S3Xml => Vec::new(),
        };
        out.extend(found);
    }
    if out.is_empty() {
        let (format, detail) = if seen_k8s {
            (Format::Kubernetes, "no ACK s3.services.k8s.aws Bucket, Upbound BucketLifecycleConfiguration or crossplane Bucket in the Kubernetes objects")
        } else if docs.first().is_some_and(terraform::is_plan) {
            (Format::TerraformPlan, "the Terraform plan has no aws_s3_bucket_lifecycle_configuration and no aws_s3_bucket with lifecycle_rule")
        } else {
            (
                Format::CloudFormation,
                "the template has no AWS::S3::Bucket",
            )
        };
        return Err(ParseError::NoLifecycle {
            source_name: source_name.to_string(),
            format: format.name(),
            detail: detail.to_string(),
        });
    }
    for b in &mut out {
        if b.origin.is_empty() {
            b.origin = source_name.to_string();
        }
        if b.bucket.is_none() {
            if let Some(h) = bucket_hint {
                b.bucket = Some(h.to_string());
                b.bucket_from_hint = true;
            }
        }
    }
    Ok(out)
}

/// Split a YAML stream into documents, converted to JSON values (tags such as CloudFormation's
/// `!Ref` become `{"!Ref": value}`). Empty documents are skipped.
fn yaml_documents(text: &str) -> Result<Vec<Value>, String> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for de in serde_yaml_ng::Deserializer::from_str(text) {
        let v = serde_yaml_ng::Value::deserialize(de).map_err(|e| e.to_string())?;
        let j = yaml_to_json(v);
        if !j.is_null() {
            out.push(j);
        }
    }
    if out.is_empty() {
        return Err("no YAML document".to_string());
    }
    Ok(out)
}

fn yaml_to_json(v: serde_yaml_ng::Value) -> Value {
    use serde_yaml_ng::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(Value::Null, Value::Number)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(s) => Value::Array(s.into_iter().map(yaml_to_json).collect()),
        Y::Mapping(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    other => serde_yaml_ng::to_string(&other)
                        .map(|s| s.trim().to_string())
                        .unwrap_or_default(),
                };
                out.insert(key, yaml_to_json(v));
            }
            Value::Object(out)
        }
        Y::Tagged(t) => {
            let mut out = serde_json::Map::new();
            out.insert(t.tag.to_string(), yaml_to_json(t.value));
            Value::Object(out)
        }
    }
}

/// Classify a JSON/YAML document.
fn detect(doc: &Value) -> Option<Format> {
    if terraform::is_plan(doc) {
        return Some(Format::TerraformPlan);
    }
    match doc {
        Value::Array(items) => {
            if items.iter().all(|i| i.is_object()) {
                Some(Format::AwsJson)
            } else {
                None
            }
        }
        Value::Object(m) => {
            if m.contains_key("apiVersion") && m.contains_key("kind") {
                Some(Format::Kubernetes)
            } else if m.contains_key("Resources") || m.contains_key("AWSTemplateFormatVersion") {
                Some(Format::CloudFormation)
            } else if rules::get(doc, &["Rules"]).is_some()
                || m.contains_key("LifecycleConfiguration")
            {
                Some(Format::AwsJson)
            } else {
                None
            }
        }
        _ => None,
    }
}

fn describe_unrecognized(doc: &Value) -> String {
    match doc {
        Value::Object(m) => {
            let keys: Vec<&str> = m.keys().take(8).map(String::as_str).collect();
            format!(
                "no lifecycle shape recognised (top-level keys: {})",
                keys.join(", ")
            )
        }
        Value::Array(_) => "a list whose items are not all rule objects".to_string(),
        other => format!("a bare {} value", json_kind(other)),
    }
}

pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// `{"Rules": [...]}`, a bare list, or `{"Bucket": ..., "LifecycleConfiguration": {...}}`.
fn aws_json(doc: &Value) -> Result<BucketRules, FieldError> {
    let (bucket, body, base) = match rules::get(doc, &["LifecycleConfiguration"]) {
        Some(lc) => (
            rules::opt_str(doc, &["Bucket"], "Bucket", false)?,
            lc,
            "LifecycleConfiguration.",
        ),
        None => (None, doc, ""),
    };
    let list = match body {
        Value::Array(_) => body,
        _ => rules::get(body, &["Rules"]).unwrap_or(&Value::Null),
    };
    let path = if matches!(body, Value::Array(_)) {
        String::new()
    } else {
        format!("{base}Rules")
    };
    let configuration = Configuration {
        rules: rules::rule_list(list, &path, rules::Dialect::Aws)?,
        transition_default_minimum_object_size: rules::opt_str(
            body,
            &["TransitionDefaultMinimumObjectSize"],
            "TransitionDefaultMinimumObjectSize",
            false,
        )?,
    };
    Ok(BucketRules {
        bucket,
        bucket_from_hint: false,
        origin: String::new(),
        format: Format::AwsJson,
        configuration,
        deletes_configuration: false,
        previous: None,
    })
}

fn from_xml(doc: &Value, source_name: &str) -> Result<BucketRules, ParseError> {
    // `doc` is {"LifecycleConfiguration": {...}} (or the GET output wrapper).
    let body = match doc {
        Value::Object(m) if m.len() == 1 => m.values().next().unwrap_or(&Value::Null),
        _ => doc,
    };
    let root = match doc {
        Value::Object(m) => m.keys().next().cloned().unwrap_or_default(),
        _ => String::new(),
    };
    if !root.ends_with("LifecycleConfiguration") {
        return Err(ParseError::Unrecognized {
            source_name: source_name.to_string(),
            detail: format!("XML root element is <{root}>, not <LifecycleConfiguration>"),
        });
    }
    let rule_list = rules::get(body, &["Rule"]).unwrap_or(&Value::Null);
    let rules = rules::rule_list(
        rule_list,
        "LifecycleConfiguration.Rule",
        rules::Dialect::Aws,
    )
    .map_err(|e| e.into_parse(source_name, Format::S3Xml))?;
    Ok(BucketRules {
        bucket: None,
        bucket_from_hint: false,
        origin: String::new(),
        format: Format::S3Xml,
        configuration: Configuration {
            rules,
            transition_default_minimum_object_size: None,
        },
        deletes_configuration: false,
        previous: None,
    })
}

/// The rules that apply to `bucket` among parsed results: entries naming this bucket, plus
/// entries whose bucket is unknown (they may be this bucket). Rules of several entries are
/// merged (S3 keeps one configuration per bucket, so duplicates mean conflicting sources, and
/// the union is the conservative reading). Also returns the origins used.
pub fn select_for_bucket(parsed: &[BucketRules], bucket: &str) -> (Configuration, Vec<String>) {
    let mut config = Configuration::default();
    let mut origins = Vec::new();
    for b in parsed {
        let applies = match &b.bucket {
            Some(name) => name == bucket,
            None => true,
        };
        if applies {
            config.rules.extend(b.configuration.rules.iter().cloned());
            if config.transition_default_minimum_object_size.is_none() {
                config.transition_default_minimum_object_size = b
                    .configuration
                    .transition_default_minimum_object_size
                    .clone();
            }
            origins.push(format!("{} ({})", b.origin, b.format.name()));
        }
    }
    (config, origins)
}
