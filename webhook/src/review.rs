//! AdmissionReview v1 parsing and response building, plus the sanitizers that keep a response
//! within what the apiserver accepts. Pure functions: no I/O.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::core::DynamicObject;

use crate::gate::{Decision, RawObject, ReviewRequest};
use serde_json::value::RawValue;

/// `apiVersion` of the only AdmissionReview version served.
pub const ADMISSION_API_VERSION: &str = "admission.k8s.io/v1";
/// `kind` of an AdmissionReview.
pub const ADMISSION_KIND: &str = "AdmissionReview";
/// Total rune budget for warnings in one response (apiserver `pkg/endpoints/filters/warning.go`).
pub const MAX_WARNINGS_TOTAL_CHARS: usize = 4096;
/// Per-warning rune limit the apiserver applies once the total budget is exceeded.
pub const MAX_WARNING_CHARS_WHEN_OVER: usize = 256;
/// Maximum length of the name part of an audit-annotation key (a qualified name).
pub const MAX_ANNOTATION_KEY_CHARS: usize = 63;

/// Why a request body is not a usable AdmissionReview. Answered with HTTP 400.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReviewError {
    /// Empty body.
    #[error("request body is empty; expected an admission.k8s.io/v1 AdmissionReview JSON object")]
    Empty,
    /// Body is not JSON or not the AdmissionReview shape.
    #[error("request body is not a valid admission.k8s.io/v1 AdmissionReview: {0}")]
    Json(String),
    /// Wrong `apiVersion`.
    #[error("AdmissionReview apiVersion is {found:?}; expected \"admission.k8s.io/v1\"")]
    ApiVersion {
        /// What the body said.
        found: String,
    },
    /// Wrong `kind`.
    #[error("body kind is {found:?}; expected \"AdmissionReview\"")]
    Kind {
        /// What the body said.
        found: String,
    },
    /// No `request` field.
    #[error("AdmissionReview has no request")]
    MissingRequest,
    /// Empty `request.uid`.
    #[error("AdmissionReview request has an empty uid")]
    MissingUid,
}

/// The wire shape of an AdmissionReview v1 request, deserialized in one pass.
///
/// kube's `AdmissionReview<DynamicObject>` uses `#[serde(flatten)]` at the top level and inside
/// `DynamicObject`, which makes serde buffer the whole body into an intermediate tree and walk it
/// again. Measured on the benchmark (`scripts/bench-webhook`) that doubled the cost of a review,
/// so the body is read into this struct (same field names and types as kube's
/// `AdmissionRequest`) and kube's types are still used for everything on the response side.
/// The objects are kept as their JSON text: building `serde_json::Value` trees for them was a
/// third of a review's CPU time, and a gate reads a few of their fields.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireReview<'a> {
    #[serde(default, borrow)]
    api_version: Cow<'a, str>,
    #[serde(default, borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    request: Option<WireRequest<'a>>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireRequest<'a> {
    uid: String,
    kind: kube::core::GroupVersionKind,
    resource: kube::core::GroupVersionResource,
    #[serde(default)]
    sub_resource: Option<String>,
    // Read only to refuse what kube's types refuse (the view does not use them), borrowed.
    #[serde(default, borrow)]
    #[allow(dead_code)]
    request_kind: Option<CheckedGvk<'a>>,
    #[serde(default, borrow)]
    #[allow(dead_code)]
    request_resource: Option<CheckedGvr<'a>>,
    #[serde(default, borrow)]
    #[allow(dead_code)]
    request_sub_resource: Option<Cow<'a, str>>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    operation: kube::core::admission::Operation,
    user_info: k8s_openapi::api::authentication::v1::UserInfo,
    #[serde(default, borrow)]
    object: Option<&'a RawValue>,
    #[serde(default, borrow)]
    old_object: Option<&'a RawValue>,
    #[serde(default)]
    dry_run: Option<bool>,
}

/// What kube's `GroupVersionKind` accepts (three required strings), without keeping it.
#[derive(serde::Deserialize)]
#[serde(rename = "GroupVersionKind")]
#[allow(dead_code)]
struct CheckedGvk<'a> {
    #[serde(borrow)]
    group: Cow<'a, str>,
    #[serde(borrow)]
    version: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
}

/// What kube's `GroupVersionResource` accepts (three required strings and an optional
/// `api_version` string), without keeping it.
#[derive(serde::Deserialize)]
#[serde(rename = "GroupVersionResource")]
#[allow(dead_code)]
struct CheckedGvr<'a> {
    #[serde(borrow)]
    group: Cow<'a, str>,
    #[serde(borrow)]
    version: Cow<'a, str>,
    #[serde(borrow)]
    resource: Cow<'a, str>,
    #[serde(default, borrow)]
    api_version: Cow<'a, str>,
}

/// A Kubernetes object's text as a JSON value without `metadata.managedFields` (and an error
/// when `metadata` is not an object): [`RawObject::to_value`].
pub(crate) fn object_value(json: &str) -> Result<serde_json::Value, serde_json::Error> {
    serde_json::from_str::<KubeObject>(json).map(|o| o.0)
}

/// An object of a review (JSON text serde has checked), after checking that it is a JSON
/// object. Its content (`metadata` and the rest) is the gate's to read.
fn read_object(raw: &RawValue, field: &str) -> Result<RawObject, ReviewError> {
    let text = raw.get();
    if !text.starts_with('{') {
        let found = match text.as_bytes().first() {
            Some(b'[') => "an array",
            Some(b'"') => "a string",
            Some(b't' | b'f') => "a boolean",
            _ => "a number",
        };
        return Err(ReviewError::Json(format!(
            "request.{field} is {found}; expected a Kubernetes object (a JSON object) or null"
        )));
    }
    Ok(RawObject::new(text))
}

/// A Kubernetes object from a review, as a JSON value without `metadata.managedFields`.
///
/// The apiserver sends every object with its server-side-apply bookkeeping
/// (`metadata.managedFields`: one entry per field manager with a `fieldsV1` tree), often half
/// the object's size. No gate reads it, and it changes on every update (timestamps), so it is
/// skipped while parsing instead of being built into the value. `null` stays `null`; anything
/// but an object or `null`, or `metadata` that is not an object, fails the parse.
struct KubeObject(serde_json::Value);

impl<'de> serde::Deserialize<'de> for KubeObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ObjectVisitor { top: true })
            .map(KubeObject)
    }
}

/// Builds an object map; at the top level, `metadata` is read by a nested visitor that drops
/// `managedFields`.
struct ObjectVisitor {
    top: bool,
}

impl<'de> serde::de::Visitor<'de> for ObjectVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(if self.top {
            "a Kubernetes object (a JSON object) or null"
        } else {
            "object metadata (a JSON object)"
        })
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if self.top && key == "metadata" {
                let meta = map.next_value_seed(MetadataSeed)?;
                out.insert(key, meta);
            } else if !self.top && key == "managedFields" {
                map.next_value::<serde::de::IgnoredAny>()?;
            } else {
                out.insert(key, map.next_value_seed(Plain)?);
            }
        }
        Ok(serde_json::Value::Object(out))
    }
}

/// `metadata` without `managedFields`. Kubernetes metadata is always an object; anything else
/// fails the parse like any other malformed review.
struct MetadataSeed;

impl<'de> serde::de::DeserializeSeed<'de> for MetadataSeed {
    type Value = serde_json::Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(ObjectVisitor { top: false })
    }
}

/// Any JSON value, built without `serde_json::Value`'s own `Deserialize`: with serde_json's
/// `raw_value` feature (which axum enables) that impl reads an object whose only key is
/// `$serde_json::private::RawValue` as the JSON text in its string, where the apiserver sees an
/// object with that key. Here every key is just a key.
struct Plain;

impl<'de> serde::de::DeserializeSeed<'de> for Plain {
    type Value = serde_json::Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Plain {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Plain)? {
            out.push(v);
        }
        Ok(serde_json::Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            out.insert(key, map.next_value_seed(Plain)?);
        }
        Ok(serde_json::Value::Object(out))
    }
}

/// Parse a request body into the gate's view, checking it is an `admission.k8s.io/v1`
/// AdmissionReview with a request and a uid. serde reads the body once; the objects are kept
/// as their text ([`RawObject`]).
pub fn parse_review(body: &[u8]) -> Result<ReviewRequest, ReviewError> {
    let review: WireReview =
        serde_json::from_str(body_text(body)?).map_err(|e| ReviewError::Json(e.to_string()))?;
    let req = checked_request(review)?;
    let object = req.object.map(|o| read_object(o, "object")).transpose()?;
    let old_object = req
        .old_object
        .map(|o| read_object(o, "oldObject"))
        .transpose()?;
    Ok(view_of(req, object, old_object))
}

/// The body as text: not empty, and UTF-8, as JSON text is (RFC 8259), with the offset of the
/// first invalid byte in the error.
fn body_text(body: &[u8]) -> Result<&str, ReviewError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ReviewError::Empty);
    }
    std::str::from_utf8(body).map_err(|e| {
        ReviewError::Json(format!(
            "the body is not UTF-8 text (invalid byte at offset {}); JSON must be UTF-8",
            e.valid_up_to()
        ))
    })
}

/// The request of a review that is an `admission.k8s.io/v1` AdmissionReview with a request
/// that has a uid.
fn checked_request(review: WireReview<'_>) -> Result<WireRequest<'_>, ReviewError> {
    if review.api_version != ADMISSION_API_VERSION {
        return Err(ReviewError::ApiVersion {
            found: review.api_version.into_owned(),
        });
    }
    if review.kind != ADMISSION_KIND {
        return Err(ReviewError::Kind {
            found: review.kind.into_owned(),
        });
    }
    let req = review.request.ok_or(ReviewError::MissingRequest)?;
    if req.uid.is_empty() {
        return Err(ReviewError::MissingUid);
    }
    Ok(req)
}

/// The gate's view of a checked request (the same view `ReviewRequest::from_admission` makes
/// of kube's request; tested).
fn view_of(
    req: WireRequest<'_>,
    object: Option<RawObject>,
    old_object: Option<RawObject>,
) -> ReviewRequest {
    ReviewRequest {
        uid: req.uid,
        kind: req.kind,
        resource: req.resource,
        sub_resource: req.sub_resource.filter(|s| !s.is_empty()),
        operation: req.operation.clone(),
        namespace: req.namespace.filter(|s| !s.is_empty()),
        name: req.name.unwrap_or_default(),
        username: req.user_info.username.unwrap_or_default(),
        groups: req.user_info.groups.unwrap_or_default(),
        object,
        old_object,
        dry_run: req.dry_run.unwrap_or(false),
    }
}

/// Parse a body with kube's own `AdmissionReview<DynamicObject>` (the slower reference path;
/// [`parse_review`] must agree with it).
pub fn parse_review_with_kube(body: &[u8]) -> Result<AdmissionRequest<DynamicObject>, ReviewError> {
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_slice(body).map_err(|e| ReviewError::Json(e.to_string()))?;
    review.try_into().map_err(|_| ReviewError::MissingRequest)
}

/// The allowing response kube's `AdmissionResponse::from(&request)` makes for a request with
/// this `uid` (an `admission.k8s.io/v1` review; tested against it).
fn response_for(uid: &str) -> AdmissionResponse {
    // `invalid` is kube's other constructor (its `patch_type` field is private); every field
    // it sets differently from `from(&request)` is set here.
    let mut res = AdmissionResponse::invalid("");
    res.types = kube::core::TypeMeta {
        api_version: ADMISSION_API_VERSION.to_string(),
        kind: ADMISSION_KIND.to_string(),
    };
    res.uid = uid.to_string();
    res.allowed = true;
    res.result = Default::default();
    res
}

/// Build the response review for the request `uid` from a gate decision, sanitizing it on the
/// way. `base_annotations` are added first (the gate's own keys win on a clash).
pub fn build_response(
    uid: &str,
    decision: &Decision,
    base_annotations: &[(&str, &str)],
) -> AdmissionReview<DynamicObject> {
    let mut res = response_for(uid);
    if !decision.allowed {
        let message = if decision.message.trim().is_empty() {
            "denied by etcdguard (no message given)".to_string()
        } else {
            decision.message.clone()
        };
        res = res.deny(message);
        res.result.code = if decision.code < 400 {
            403
        } else {
            decision.code
        };
        res.result.reason = if decision.reason.is_empty() {
            "Forbidden".to_string()
        } else {
            decision.reason.clone()
        };
    }
    let warnings = sanitize_warnings(&decision.warnings);
    if !warnings.is_empty() {
        res.warnings = Some(warnings);
    }
    // Inserted in order, so the gate's keys replace clashing base keys.
    let mut annotations: HashMap<String, String> =
        HashMap::with_capacity(base_annotations.len() + decision.audit_annotations.len());
    for (k, v) in base_annotations {
        if let Some(key) = sanitize_annotation_key(k) {
            annotations.insert(key, (*v).to_string());
        }
    }
    for (k, v) in &decision.audit_annotations {
        if let Some(key) = sanitize_annotation_key(k) {
            annotations.insert(key, v.clone());
        }
    }
    res.audit_annotations = annotations;
    res.into_review()
}

/// Make warnings acceptable to the apiserver, which silently drops any warning containing a
/// control character and enforces a 4096-rune total:
/// - control characters (newlines, tabs, ...) become single spaces, runs of whitespace collapse,
///   empty and duplicate warnings are dropped;
/// - if the total exceeds [`MAX_WARNINGS_TOTAL_CHARS`], each warning is cut to
///   [`MAX_WARNING_CHARS_WHEN_OVER`] runes (ending in `…`), and warnings that still do not fit
///   are replaced by one final "N more warnings omitted" note (which always fits).
pub fn sanitize_warnings(warnings: &[String]) -> Vec<String> {
    let mut clean: Vec<String> = Vec::with_capacity(warnings.len());
    for w in warnings {
        let one = w
            .split(|c: char| c.is_control() || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if !one.is_empty() && !clean.contains(&one) {
            clean.push(one);
        }
    }
    let total: usize = clean.iter().map(|w| w.chars().count()).sum();
    if total <= MAX_WARNINGS_TOTAL_CHARS {
        return clean;
    }
    // Reserve room for the omission note.
    let budget = MAX_WARNINGS_TOTAL_CHARS - 64;
    let mut out = Vec::new();
    let mut used = 0;
    let mut omitted = 0usize;
    for w in clean {
        let cut = truncate_chars(&w, MAX_WARNING_CHARS_WHEN_OVER);
        let n = cut.chars().count();
        if omitted == 0 && used + n <= budget {
            used += n;
            out.push(cut);
        } else {
            omitted += 1;
        }
    }
    if omitted > 0 {
        out.push(format!(
            "{omitted} more etcdguard warning(s) omitted (apiserver warning size limit)"
        ));
    }
    out
}

/// Cut `s` to at most `max` chars, ending in `…` when cut.
pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Turn a key into a valid audit-annotation name part: `[A-Za-z0-9][-A-Za-z0-9_.]*[A-Za-z0-9]`,
/// at most 63 chars, no `/` (the apiserver adds `<webhook name>/`). Invalid characters become
/// `-`; a key with no alphanumeric character gives `None`.
pub fn sanitize_annotation_key(key: &str) -> Option<String> {
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if key.len() <= MAX_ANNOTATION_KEY_CHARS
        && key.chars().all(valid)
        && edge_ok(key.chars().next())
        && edge_ok(key.chars().last())
    {
        return Some(key.to_string());
    }
    let mapped: String = key
        .chars()
        .map(|c| if valid(c) { c } else { '-' })
        .take(MAX_ANNOTATION_KEY_CHARS)
        .collect();
    let trimmed = mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if trimmed.is_empty() {
        None
    } else {
        Some(trimmed.to_string())
    }
}

/// Parse a Go duration string as sent by the apiserver in `?timeout=` (`10s`, `1m30s`, `500ms`,
/// `2.5s`). Returns `None` for anything else (the caller then uses its default budget).
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let (num, tail) = rest.split_at(num_len);
        let value: f64 = num.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let scale = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += value * scale;
        rest = next;
    }
    if total.is_finite() && total > 0.0 && total < 86_400.0 {
        Some(Duration::from_secs_f64(total))
    } else {
        None
    }
}

/// Find `timeout` in a raw query string and parse it.
pub fn timeout_from_query(query: Option<&str>) -> Option<Duration> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "timeout")
        .and_then(|(_, v)| parse_go_duration(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("2.5s"), Some(Duration::from_millis(2500)));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("s"), None);
        assert_eq!(parse_go_duration("-1s"), None);
        assert_eq!(parse_go_duration("0s"), None);
        assert_eq!(
            timeout_from_query(Some("a=b&timeout=5s")),
            Some(Duration::from_secs(5))
        );
        assert_eq!(timeout_from_query(None), None);
    }

    #[test]
    fn warnings_single_line_and_bounded() {
        let w = sanitize_warnings(&["a\nb\r\n\tc".into(), "a b c".into(), "".into()]);
        assert_eq!(w, vec!["a b c".to_string()]);
        let long: Vec<String> = (0..40)
            .map(|i| format!("{i}:{}", "x".repeat(300)))
            .collect();
        let w = sanitize_warnings(&long);
        let total: usize = w.iter().map(|s| s.chars().count()).sum();
        assert!(total <= MAX_WARNINGS_TOTAL_CHARS, "{total}");
        assert!(w
            .iter()
            .all(|s| s.chars().count() <= MAX_WARNING_CHARS_WHEN_OVER));
        assert!(w[0].ends_with('…'));
        assert!(w.last().is_some_and(|s| s.contains("omitted")));
    }

    #[test]
    fn annotation_keys() {
        assert_eq!(
            sanitize_annotation_key("snapshot-age"),
            Some("snapshot-age".into())
        );
        assert_eq!(sanitize_annotation_key("a/b c"), Some("a-b-c".into()));
        assert_eq!(sanitize_annotation_key("--x--"), Some("x".into()));
        assert_eq!(sanitize_annotation_key("//"), None);
        assert_eq!(
            sanitize_annotation_key(&"k".repeat(100)).map(|k| k.len()),
            Some(63)
        );
        // Around the already-valid shortcut: the limit, edges, non-ASCII.
        let k63 = format!("a{}b", "-".repeat(61));
        assert_eq!(sanitize_annotation_key(&k63), Some(k63.clone()));
        assert_eq!(
            sanitize_annotation_key(&format!("a{}b", "-".repeat(62))),
            Some("a".into())
        );
        assert_eq!(sanitize_annotation_key("a."), Some("a".into()));
        assert_eq!(sanitize_annotation_key(".a"), Some("a".into()));
        assert_eq!(sanitize_annotation_key("b_c.d"), Some("b_c.d".into()));
        assert_eq!(sanitize_annotation_key("zé1"), Some("z-1".into()));
    }

    #[test]
    fn request_kind_and_resource_are_refused_where_kube_refuses_them() {
        let body = include_bytes!("../tests/fixtures/kcp-update.json");
        let base: serde_json::Value = serde_json::from_slice(body).unwrap();
        let gvk = serde_json::json!({"group": "g", "version": "v1", "kind": "K"});
        let gvr = serde_json::json!({"group": "g", "version": "v1", "resource": "ks"});
        let with = |field: &str, value: serde_json::Value| {
            let mut v = base.clone();
            v["request"][field] = value;
            serde_json::to_vec(&v).unwrap()
        };
        let mut cases = vec![
            with("requestKind", gvk.clone()),
            with("requestKind", serde_json::Value::Null),
            with(
                "requestKind",
                serde_json::json!({"group": "g", "version": "v1"}),
            ),
            with(
                "requestKind",
                serde_json::json!({"group": 1, "version": "v1", "kind": "K"}),
            ),
            with(
                "requestKind",
                serde_json::json!({"group": "é", "version": "v1", "kind": "K"}),
            ),
            with("requestKind", serde_json::json!("g/v1/K")),
            with("requestResource", gvr.clone()),
            with(
                "requestResource",
                serde_json::json!({"group": "", "version": "v1", "resource": "r", "api_version": "v1"}),
            ),
            with(
                "requestResource",
                serde_json::json!({"group": "", "version": "v1", "resource": "r", "api_version": 2}),
            ),
            with(
                "requestResource",
                serde_json::json!({"group": "", "version": "v1"}),
            ),
            with("requestSubResource", serde_json::json!("status")),
            with("requestSubResource", serde_json::json!(7)),
        ];
        cases.push(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"","version":"v1","kind":"K"},"resource":{"group":"","version":"v1","resource":"ks"},"requestKind":{"group":"a\"b","version":"v1","kind":"K"},"operation":"CREATE","userInfo":{}}}"#.to_vec());
        let mut refused = 0;
        for body in &cases {
            let ours = parse_review(body).is_ok();
            let kube = parse_review_with_kube(body).is_ok();
            assert_eq!(ours, kube, "{}", String::from_utf8_lossy(body));
            refused += usize::from(!ours);
        }
        assert_eq!(refused, 6, "the malformed cases are refused");
    }

    #[test]
    fn responses_are_the_ones_kube_builds_from_the_request() {
        let body = include_bytes!("../tests/fixtures/kcp-update.json");
        let kube = parse_review_with_kube(body).expect("kube parse");
        let uid = parse_review(body).expect("parse").uid;
        assert_eq!(uid, kube.uid);
        let json = |r: AdmissionResponse| serde_json::to_value(r.into_review()).unwrap();
        assert_eq!(
            json(response_for(&uid)),
            json(AdmissionResponse::from(&kube))
        );
        for decision in [
            Decision::allow()
                .with_warning("w")
                .with_annotation("k", "v"),
            Decision::deny("no").with_code(503, "ServiceUnavailable"),
        ] {
            let ours = serde_json::to_value(build_response(&uid, &decision, &[])).unwrap();
            let mut theirs = AdmissionResponse::from(&kube);
            if !decision.allowed {
                theirs = theirs.deny("no");
                theirs.result.code = 503;
                theirs.result.reason = "ServiceUnavailable".into();
            } else {
                theirs.warnings = Some(vec!["w".into()]);
                theirs.audit_annotations = [("k".to_string(), "v".to_string())].into();
            }
            assert_eq!(ours, json(theirs));
        }
    }

    #[test]
    fn fast_parse_agrees_with_kube_types() {
        let body = include_bytes!("../tests/fixtures/kcp-update.json");
        let fast = parse_review(body).expect("fast parse");
        let kube =
            ReviewRequest::from_admission(&parse_review_with_kube(body).expect("kube parse"))
                .expect("view");
        assert_eq!(fast.uid, kube.uid);
        assert_eq!(fast.kind, kube.kind);
        assert_eq!(fast.resource, kube.resource);
        assert_eq!(fast.operation, kube.operation);
        assert_eq!(fast.namespace, kube.namespace);
        assert_eq!(fast.name, kube.name);
        assert_eq!(fast.username, kube.username);
        assert_eq!(fast.groups, kube.groups);
        let value = |o: &Option<RawObject>| o.as_ref().map(|o| o.to_value().expect("object"));
        assert_eq!(value(&fast.object), value(&kube.object));
        assert_eq!(value(&fast.old_object), value(&kube.old_object));
        assert!(value(&fast.object).is_some() && value(&fast.old_object).is_some());
        // The text is the body's, as sent.
        let text = std::str::from_utf8(body).unwrap();
        assert!(text.contains(fast.object.as_ref().unwrap().json()));
        assert_eq!(fast.dry_run, kube.dry_run);
        // DELETE: object null.
        let mut v: serde_json::Value = serde_json::from_slice(body).unwrap();
        v["request"]["object"] = serde_json::Value::Null;
        let b = serde_json::to_vec(&v).unwrap();
        assert_eq!(parse_review(&b).unwrap().object, None);
        assert!(parse_review(&b).unwrap().old_object.is_some());
    }

    #[test]
    fn managed_fields_are_left_out_of_the_objects_and_nothing_else() {
        let body = include_bytes!("../tests/fixtures/kcp-update.json");
        let mut v: serde_json::Value = serde_json::from_slice(body).unwrap();
        let plain = parse_review(body).unwrap();
        let managed = serde_json::json!([{
            "manager": "clusterctl", "operation": "Apply", "apiVersion": "v1",
            "time": "2026-11-23T08:00:00Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:version": {}, "f:replicas": {}}}
        }]);
        for side in ["object", "oldObject"] {
            v["request"][side]["metadata"]["managedFields"] = managed.clone();
            // A field named managedFields elsewhere is data, not bookkeeping: kept.
            v["request"][side]["spec"]["managedFields"] = serde_json::json!("kept");
        }
        let with = parse_review(&serde_json::to_vec(&v).unwrap()).unwrap();
        for (a, b) in [
            (&with.object, &plain.object),
            (&with.old_object, &plain.old_object),
        ] {
            let (a, b) = (
                a.as_ref().unwrap().to_value().unwrap(),
                b.as_ref().unwrap().to_value().unwrap(),
            );
            assert!(a.pointer("/metadata/managedFields").is_none(), "{a}");
            assert_eq!(
                a.pointer("/spec/managedFields"),
                Some(&serde_json::json!("kept"))
            );
            let mut a = a.clone();
            a["spec"].as_object_mut().unwrap().remove("managedFields");
            assert_eq!(a, b);
        }
        // An object that is not a JSON object is a bad review.
        for (ptr, bad, found) in [
            (
                "/request/object",
                serde_json::json!("text"),
                "request.object is a string",
            ),
            (
                "/request/object",
                serde_json::json!([1]),
                "request.object is an array",
            ),
            (
                "/request/oldObject",
                serde_json::json!(7),
                "request.oldObject is a number",
            ),
            (
                "/request/oldObject",
                serde_json::json!(true),
                "request.oldObject is a boolean",
            ),
        ] {
            let mut v: serde_json::Value = serde_json::from_slice(body).unwrap();
            *v.pointer_mut(ptr).unwrap() = bad;
            let e = parse_review(&serde_json::to_vec(&v).unwrap()).unwrap_err();
            assert!(
                matches!(&e, ReviewError::Json(m) if m.contains(found) && m.contains("expected")),
                "{e}"
            );
        }
        // What is inside an object is the gate's to read: metadata that is not an object
        // passes the adapter, and reading the object as a value names the problem.
        let mut v: serde_json::Value = serde_json::from_slice(body).unwrap();
        v["request"]["oldObject"]["metadata"] = serde_json::json!(7);
        let r = parse_review(&serde_json::to_vec(&v).unwrap()).unwrap();
        let e = r.old_object.unwrap().to_value().unwrap_err().to_string();
        assert!(e.contains("object metadata"), "{e}");
        // serde_json's raw-value key is an ordinary key in an object's value, at any depth.
        let token = "$serde_json::private::RawValue";
        let mut v: serde_json::Value = serde_json::from_slice(body).unwrap();
        v["request"]["object"]["spec"]["x"] = serde_json::json!({ token: "[1]" });
        v["request"]["object"]["metadata"]["labels"] = serde_json::json!({ token: "2" });
        let text = serde_json::to_vec(&v).unwrap();
        let r = parse_review(&text).unwrap();
        let o = r.object.unwrap().to_value().unwrap();
        assert_eq!(o["spec"]["x"][token], "[1]", "{o}");
        assert_eq!(o["metadata"]["labels"][token], "2", "{o}");
    }

    #[test]
    fn malformed_bodies() {
        assert_eq!(parse_review(b" ").unwrap_err(), ReviewError::Empty);
        assert!(matches!(parse_review(b"{"), Err(ReviewError::Json(_))));
        assert!(matches!(
            parse_review(br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview"}"#),
            Err(ReviewError::ApiVersion { .. })
        ));
        assert!(matches!(
            parse_review(br#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod"}"#),
            Err(ReviewError::Kind { .. })
        ));
        assert_eq!(
            parse_review(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#)
                .unwrap_err(),
            ReviewError::MissingRequest
        );
        // Invalid UTF-8 anywhere, inside a string or an object, is refused and located.
        let body = include_bytes!("../tests/fixtures/kcp-update.json");
        let text = std::str::from_utf8(body).unwrap();
        for at in [text.find("prod-eu1").unwrap(), text.rfind("v1.33").unwrap()] {
            let mut bad = body.to_vec();
            bad[at] = 0xff;
            let err = parse_review(&bad).unwrap_err().to_string();
            assert!(
                err.contains(&format!("not UTF-8 text (invalid byte at offset {at})")),
                "{err}"
            );
            assert!(parse_review_with_kube(&bad).is_err());
        }
    }
}
