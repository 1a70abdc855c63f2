//! The contract between the protocol adapter and whatever decides: [`Gate`], its input
//! [`ReviewRequest`] and its output [`Decision`].

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::core::admission::AdmissionRequest;
use kube::core::{DynamicObject, GroupVersionKind, GroupVersionResource};
use prometheus_client::registry::Registry;
use serde_json::Value;

/// The decision maker behind the webhook. The root crate implements it; this crate only calls it.
///
/// Implementations decide from facts they cache and refresh in the background (snapshot age,
/// control-file presence, ...): the webhook calls [`Gate::review`] on the request path, where
/// the apiserver waits with a deadline of a few seconds. Do no I/O in `review`.
pub trait Gate: Send + Sync + 'static {
    /// Decide one admission request.
    ///
    /// Contract:
    /// - called once per well-formed AdmissionReview (malformed ones never reach the gate);
    /// - must be synchronous, CPU-bound and fast (micro- to milliseconds). It runs on a
    ///   blocking-pool thread, raced against the request's budget (derived from the apiserver's
    ///   `?timeout=`) so that a late gate is answered "gate timed out" (deny) on time;
    /// - a panic is caught and answered as a denial (fail closed);
    /// - when the gate cannot know (facts missing or stale) it must say so in the decision:
    ///   deny in enforce mode, or allow with a warning in warn mode. Never silently allow.
    fn review(&self, request: &ReviewRequest) -> Decision;

    /// Whether the gate has the facts it needs to decide. `/readyz` answers 200 only while this
    /// is `true`, so Kubernetes sends no traffic to a replica that has not loaded its facts yet.
    /// Must be cheap (an atomic load); it is called on every readiness probe.
    fn ready(&self) -> bool;

    /// Register the gate's own metrics (fact gauges such as
    /// [`crate::metrics::SNAPSHOT_AGE_SECONDS`]) in the registry served at `/metrics`.
    /// Called exactly once, before the server accepts connections. The default registers nothing.
    fn register_metrics(&self, registry: &mut Registry) {
        let _ = registry;
    }
}

/// The operation of an admission request (kube's type: the apiserver's spelling is
/// `CREATE`, `UPDATE`, `DELETE`, `CONNECT`; CONNECT is never registered by etcdguard).
pub use kube::core::admission::Operation;

/// A typed, owned view of one admission request, built once per review.
#[derive(Debug, Clone)]
pub struct ReviewRequest {
    /// The review uid; the response always echoes it.
    pub uid: String,
    /// Kind of the object as sent to the webhook (after `matchPolicy: Equivalent` conversion).
    pub kind: GroupVersionKind,
    /// The resource (plural) addressed.
    pub resource: GroupVersionResource,
    /// The subresource, e.g. `scale`; `None` for the main resource.
    pub sub_resource: Option<String>,
    /// CREATE, UPDATE, DELETE or CONNECT.
    pub operation: Operation,
    /// Namespace of the object; `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    /// Name of the object; empty on a CREATE that relies on `generateName`.
    pub name: String,
    /// The requesting user's name (e.g. `system:serviceaccount:capi-system:capi-manager`).
    pub username: String,
    /// The requesting user's groups.
    pub groups: Vec<String>,
    /// The new object (`None` for DELETE): the text of a JSON object as the apiserver sent it;
    /// a gate parses what it needs ([`RawObject::to_value`]) and must refuse what it cannot
    /// read.
    pub object: Option<RawObject>,
    /// The old object (UPDATE and DELETE only), like `object`.
    pub old_object: Option<RawObject>,
    /// `true` for `--dry-run=server`; the gate decides the same way (sideEffects: None).
    pub dry_run: bool,
}

/// Why an [`AdmissionRequest`] could not become a [`ReviewRequest`].
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The embedded object could not be represented as JSON.
    #[error("request {field} is not representable as JSON: {source}")]
    Object {
        /// `object` or `oldObject`.
        field: &'static str,
        /// The serializer error.
        source: serde_json::Error,
    },
}

/// A Kubernetes object of a review: its JSON text, exactly as sent (shared, never copied
/// again). Parsing is left to the gate, which usually needs a few fields, not a whole tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawObject(Arc<str>);

impl RawObject {
    /// Wrap JSON text. The webhook only builds these from valid JSON text of an object; other
    /// callers (tests, other adapters) should do the same.
    pub fn new(json: impl Into<Arc<str>>) -> Self {
        RawObject(json.into())
    }

    /// The JSON text.
    pub fn json(&self) -> &str {
        &self.0
    }

    /// The JSON text, shared (no copy).
    pub fn shared(&self) -> Arc<str> {
        self.0.clone()
    }

    /// The whole object as a `serde_json::Value`, without `metadata.managedFields` (the
    /// apiserver's server-side-apply bookkeeping, which no gate reads). Parses on every call.
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        crate::review::object_value(&self.0)
    }
}

impl ReviewRequest {
    /// Build the view from kube's parsed request.
    pub fn from_admission(req: &AdmissionRequest<DynamicObject>) -> Result<Self, RequestError> {
        let raw = |field: &'static str, obj: &Option<DynamicObject>| {
            obj.as_ref()
                .map(|o| serde_json::to_string(o).map(RawObject::new))
                .transpose()
                .map_err(|source| RequestError::Object { field, source })
        };
        Ok(ReviewRequest {
            uid: req.uid.clone(),
            kind: req.kind.clone(),
            resource: req.resource.clone(),
            sub_resource: req.sub_resource.clone().filter(|s| !s.is_empty()),
            operation: req.operation.clone(),
            namespace: req.namespace.clone().filter(|s| !s.is_empty()),
            name: req.name.clone(),
            username: req.user_info.username.clone().unwrap_or_default(),
            groups: req.user_info.groups.clone().unwrap_or_default(),
            object: raw("object", &req.object)?,
            old_object: raw("oldObject", &req.old_object)?,
            dry_run: req.dry_run,
        })
    }
}

/// The gate's answer to one request.
///
/// Build it with [`Decision::allow`] or [`Decision::deny`] and the `with_*` methods. The webhook
/// sanitizes it to what the apiserver accepts (warnings single-line and within the 4096-rune
/// budget, audit-annotation keys valid, a denial code ≥ 400) before sending it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request is admitted.
    pub allowed: bool,
    /// HTTP-style status code reported to the client on a denial (default 403; values below
    /// 400 are raised to 403). Ignored by the apiserver when `allowed`.
    pub code: u16,
    /// Human-readable explanation; shown to the user on a denial.
    pub message: String,
    /// Machine-readable reason on a denial (default `Forbidden`).
    pub reason: String,
    /// Warnings shown by kubectl (`Warning: ...`), delivered on allows and denials alike.
    pub warnings: Vec<String>,
    /// Audit annotations (key → value). The apiserver prefixes each key with the webhook name,
    /// so keys must be a single DNS-label-like name (no `/`); invalid characters are replaced.
    pub audit_annotations: BTreeMap<String, String>,
}

impl Decision {
    /// Admit the request.
    pub fn allow() -> Self {
        Decision {
            allowed: true,
            code: 200,
            message: String::new(),
            reason: String::new(),
            warnings: Vec::new(),
            audit_annotations: BTreeMap::new(),
        }
    }

    /// Refuse the request with `message` (code 403, reason `Forbidden`).
    pub fn deny(message: impl Into<String>) -> Self {
        Decision {
            allowed: false,
            code: 403,
            message: message.into(),
            reason: "Forbidden".to_string(),
            warnings: Vec::new(),
            audit_annotations: BTreeMap::new(),
        }
    }

    /// Set the status code and reason reported with a denial.
    pub fn with_code(mut self, code: u16, reason: impl Into<String>) -> Self {
        self.code = code;
        self.reason = reason.into();
        self
    }

    /// Add a warning.
    pub fn with_warning(mut self, warning: impl Into<String>) -> Self {
        self.warnings.push(warning.into());
        self
    }

    /// Add an audit annotation.
    pub fn with_annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.audit_annotations.insert(key.into(), value.into());
        self
    }
}
