//! Which policies a request matches, and why.

use super::model::{ChangeSource, Operation, PathPattern, ResourceRule, Segment};
use super::Policy;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A proposed change as the gate sees it: a Kubernetes object change (admission or `explain`)
/// or a CLI change source.
///
/// For subresource requests (`/scale`), `api_group` and `kind` should name the *parent*
/// resource (e.g. `controlplane.cluster.x-k8s.io` / `KubeadmControlPlane`). An admission
/// adapter that only knows the `resource` (plural, e.g. `kubeadmcontrolplanes`) may set
/// `resource` instead; a rule kind `K` also matches resource `lowercase(K)+"s"`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Request {
    /// API group of the object (`""` for core).
    pub api_group: String,
    /// Kind of the object (or of the parent for subresources).
    pub kind: String,
    /// Plural resource name, when known (admission `request.resource.resource`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The operation; `None` for CLI sources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
    /// Subresource (`scale`, `status`), `None` for the main resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subresource: Option<String>,
    /// The object before the change (UPDATE, DELETE).
    #[serde(skip)]
    pub old: Option<Arc<Value>>,
    /// The object after the change (CREATE, UPDATE).
    #[serde(skip)]
    pub new: Option<Arc<Value>>,
    /// Requesting user name.
    pub user: String,
    /// Requesting user's groups.
    pub groups: Vec<String>,
    /// Annotations of the request's object (the new object, or the old one on DELETE), or
    /// given on the CLI; the break-glass annotation is read from here.
    pub annotations: BTreeMap<String, String>,
    /// A CLI change source; when set, only `match.sources` rules apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<ChangeSource>,
    /// The diff of `old` → `new`, computed on first use by [`Request::changes`].
    #[serde(skip)]
    diff: DiffCache,
}

/// A computed-once diff. Never part of a request's identity: two requests with the same fields
/// are equal whether or not either has computed its diff yet.
#[derive(Debug, Clone, Default)]
struct DiffCache(std::sync::OnceLock<Vec<Change>>);

impl PartialEq for DiffCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Request {
    /// A request for a Kubernetes object change. Group and kind are read from `apiVersion` and
    /// `kind` of `new` (or `old`); annotations from its `metadata.annotations`.
    /// Missing or malformed `apiVersion`/`kind` leave the fields empty (nothing will match).
    pub fn from_objects(operation: Operation, old: Option<Value>, new: Option<Value>) -> Request {
        Request::from_shared(operation, old.map(Arc::new), new.map(Arc::new))
    }

    /// [`Request::from_objects`] for objects already parsed and shared: no copy is made.
    pub fn from_shared(
        operation: Operation,
        old: Option<Arc<Value>>,
        new: Option<Arc<Value>>,
    ) -> Request {
        let subject = new.as_deref().or(old.as_deref());
        let text = |key: &str| subject.and_then(|o| o.get(key)).and_then(Value::as_str);
        let api_version = text("apiVersion").unwrap_or("");
        // `group/version`, or just `version` for the core group.
        let api_group = match api_version.rsplit_once('/') {
            Some((g, _)) => g.to_string(),
            None => String::new(),
        };
        let kind = text("kind").unwrap_or("").to_string();
        let annotations = subject
            .and_then(|o| o.pointer("/metadata/annotations"))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Request {
            api_group,
            kind,
            operation: Some(operation),
            old,
            new,
            annotations,
            ..Request::default()
        }
    }

    /// A request for a CLI change source.
    pub fn cli(source: ChangeSource) -> Request {
        Request {
            source: Some(source),
            ..Request::default()
        }
    }

    /// Set the requester.
    pub fn by(mut self, user: impl Into<String>, groups: Vec<String>) -> Request {
        self.user = user.into();
        self.groups = groups;
        self
    }

    /// The json-patch diff of `old` → `new` (an absent side counts as `null`), computed once
    /// (policy matching and change classification both read it). `old`/`new` are not expected
    /// to change after the first call; a CLI-source request has no objects, so no changes.
    pub fn changes(&self) -> &[Change] {
        self.diff.0.get_or_init(|| {
            if self.source.is_some() {
                return Vec::new();
            }
            let (old, new) = self.objects();
            diff(old, new)
        })
    }

    /// `old` and `new`, an absent side as `null`.
    fn objects(&self) -> (&Value, &Value) {
        static NULL: Value = Value::Null;
        (
            self.old.as_deref().unwrap_or(&NULL),
            self.new.as_deref().unwrap_or(&NULL),
        )
    }
}

/// One operation of the json-patch diff of old → new.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `add`, `remove` or `replace`.
    pub op: &'static str,
    /// The JSON pointer the operation touches.
    pub path: String,
}

/// The json-patch (RFC 6902) diff of two documents, as (op, path) pairs in
/// `json_patch::diff`'s order.
pub fn diff(old: &Value, new: &Value) -> Vec<Change> {
    use json_patch::PatchOperation as P;
    json_patch::diff(old, new)
        .0
        .iter()
        .map(|op| Change {
            op: match op {
                P::Add(_) => "add",
                P::Remove(_) => "remove",
                P::Replace(_) => "replace",
                P::Move(_) => "move",
                P::Copy(_) => "copy",
                P::Test(_) => "test",
            },
            path: op.path().as_str().to_string(),
        })
        .collect()
}

/// Why a policy matched a request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchExplanation {
    /// The matching policy's name.
    pub policy: String,
    /// Its mode.
    pub mode: super::Mode,
    /// Where it was defined (`file:line`).
    pub defined_at: String,
    /// What matched.
    pub reason: MatchReason,
}

/// The rule that matched.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum MatchReason {
    /// `spec.match.sources` lists the request's CLI source.
    Source { source: ChangeSource },
    /// `spec.match.resources[rule]` matched the object.
    Resource {
        /// Index in `spec.match.resources`.
        rule: usize,
        /// The watched pointers that changed, with the diff operations that touched them:
        /// all of them from [`Policy::check`] and `policy explain`; from
        /// [`super::PolicySet::matching`] (the gate's hot path) only the first one, which is
        /// enough to match. Empty when the rule watches no paths (any change matches).
        changed: Vec<PathHit>,
    },
}

/// A watched pointer and the diff operations that changed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathHit {
    /// The watched pointer as written in the policy.
    pub watched: String,
    /// The diff operations touching it.
    pub changes: Vec<Change>,
}

/// Why a policy did not match (for `policy explain`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub policy: String,
    /// One reason per rule (or for the sources list).
    pub reasons: Vec<String>,
}

/// The outcome of checking one policy against a request.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyMatch {
    Matched(MatchExplanation),
    NotMatched(Mismatch),
}

impl Policy {
    /// Check this policy against a request, explaining the result either way.
    pub fn check(&self, req: &Request) -> PolicyMatch {
        match self.check_with(req, true) {
            Ok(m) => PolicyMatch::Matched(m),
            Err(reasons) => PolicyMatch::NotMatched(Mismatch {
                policy: self.name().to_string(),
                reasons,
            }),
        }
    }

    /// [`Policy::check`]; `Err` holds the mismatch reasons, none when `explain` is `false`
    /// (the webhook's hot path wants only the matches and builds nothing for the rest).
    pub(crate) fn check_with(
        &self,
        req: &Request,
        explain: bool,
    ) -> Result<MatchExplanation, Vec<String>> {
        let spec = &self.doc.spec;
        let matched = |reason| {
            Ok(MatchExplanation {
                policy: self.name().to_string(),
                mode: spec.mode,
                defined_at: format!("{}:{}", self.file, self.line),
                reason,
            })
        };
        let mut reasons = Vec::new();
        if let Some(source) = req.source {
            if spec.match_.sources.contains(&source) {
                return matched(MatchReason::Source { source });
            }
            if explain {
                reasons.push(if spec.match_.sources.is_empty() {
                    format!("matches no CLI sources (request source: {source})")
                } else {
                    format!(
                        "source {source} is not in [{}]",
                        spec.match_
                            .sources
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                });
            }
        } else {
            for (i, rule) in spec.match_.resources.iter().enumerate() {
                let outcome = match rule_selects(rule, req) {
                    Ok(()) => path_hits(rule, req, explain),
                    Err(miss) => Err(miss),
                };
                match outcome {
                    Ok(changed) => return matched(MatchReason::Resource { rule: i, changed }),
                    Err(miss) if explain => {
                        reasons.push(format!("resources[{i}]: {}", miss.describe(rule, req)))
                    }
                    Err(_) => {}
                }
            }
            if explain && spec.match_.resources.is_empty() {
                reasons.push("matches no Kubernetes resources (only CLI sources)".into());
            }
        }
        Err(reasons)
    }
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a resource rule does not match; rendered into words only by `policy explain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Miss {
    ApiGroup,
    Kind,
    NoOperation,
    Operation,
    Subresource,
    NoWatchedPathChanged,
}

impl Miss {
    fn describe(self, rule: &ResourceRule, req: &Request) -> String {
        match self {
            Miss::ApiGroup => format!(
                "apiGroup `{}` is not in [{}]",
                req.api_group,
                rule.api_groups.join(", ")
            ),
            Miss::Kind => format!(
                "kind `{}` is not in [{}]",
                req.kind,
                rule.kinds
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Miss::NoOperation => "the request has no operation".into(),
            Miss::Operation => format!(
                "operation {} is not in [{}]",
                req.operation
                    .as_ref()
                    .map(super::model::operation_name)
                    .unwrap_or_default(),
                list(&rule.operations)
            ),
            Miss::Subresource => format!(
                "subresource `{}` is not matched by this rule",
                req.subresource.as_deref().unwrap_or_default()
            ),
            Miss::NoWatchedPathChanged => {
                format!("none of the watched paths changed ({})", list(&rule.paths))
            }
        }
    }
}

/// Group, kind, operation and subresource: everything but the watched paths (cheap, no diff).
fn rule_selects(rule: &ResourceRule, req: &Request) -> Result<(), Miss> {
    if !rule
        .api_groups
        .iter()
        .any(|g| g == "*" || *g == req.api_group)
    {
        return Err(Miss::ApiGroup);
    }
    if !rule
        .kinds
        .iter()
        .any(|k| k.covers(&req.kind, req.resource.as_deref()))
    {
        return Err(Miss::Kind);
    }
    let Some(op) = &req.operation else {
        return Err(Miss::NoOperation);
    };
    if !rule.operations.iter().any(|o| o.covers(op)) {
        return Err(Miss::Operation);
    }
    if let Some(sub) = req.subresource.as_deref().filter(|s| !s.is_empty()) {
        if !rule.subresources.iter().any(|s| s.covers(sub)) {
            return Err(Miss::Subresource);
        }
    }
    Ok(())
}

/// The watched paths a selecting rule sees changed (empty when it watches none: any change
/// matches), every one with `all`, else the first; `Err` when it watches paths and none changed.
fn path_hits(rule: &ResourceRule, req: &Request, all: bool) -> Result<Vec<PathHit>, Miss> {
    if rule.paths.is_empty() {
        return Ok(Vec::new());
    }
    let (old, new) = req.objects();
    let hits = rule.paths.iter().filter_map(|p| {
        let touching: Vec<Change> = req
            .changes()
            .iter()
            .filter(|c| touches(p, &c.path, old, new))
            .cloned()
            .collect();
        (!touching.is_empty()).then(|| PathHit {
            watched: p.as_str().to_string(),
            changes: touching,
        })
    });
    let hits: Vec<PathHit> = if all {
        hits.collect()
    } else {
        hits.take(1).collect()
    };
    if hits.is_empty() {
        Err(Miss::NoWatchedPathChanged)
    } else {
        Ok(hits)
    }
}

/// Split a JSON pointer string into its tokens, still escaped (`~0`, `~1`): most tokens have
/// no escape, so they are compared in place (see [`seg_matches`]) without allocating.
fn raw_tokens(pointer: &str) -> impl Iterator<Item = &str> {
    (!pointer.is_empty())
        .then(|| pointer.strip_prefix('/').unwrap_or(pointer).split('/'))
        .into_iter()
        .flatten()
}

/// Whether a pattern segment matches an escaped pointer token.
fn seg_matches(seg: &Segment, raw: &str) -> bool {
    match seg {
        Segment::Any => true,
        Segment::Key(k) if !raw.contains('~') => k == raw,
        Segment::Key(k) => *k == crate::json::unescape(raw),
    }
}

/// Whether a diff operation at `changed` changes something under the watched pattern.
///
/// - `changed` at or below the pattern (pattern is a prefix): yes.
/// - `changed` above the pattern (an ancestor was added, removed or replaced as a whole):
///   only if the values selected by the rest of the pattern differ between old and new,
///   so replacing `/spec/desiredUpdate` without changing `version` does not trigger
///   a rule watching `/spec/desiredUpdate/version`.
pub fn touches(pattern: &PathPattern, changed: &str, old: &Value, new: &Value) -> bool {
    let segs = pattern.segments();
    let mut depth = 0;
    for (i, tok) in raw_tokens(changed).enumerate() {
        if i >= segs.len() {
            // `changed` is below the pattern: the prefix matched.
            return true;
        }
        if !seg_matches(&segs[i], tok) {
            return false;
        }
        depth = i + 1;
    }
    if depth >= segs.len() {
        return true;
    }
    // Ancestor: compare what the remainder of the pattern selects below `changed`.
    let rest = &segs[depth..];
    selected(old, changed, rest) != selected(new, changed, rest)
}

/// The values `rest` selects below the pointer `at` in `doc` (`at` empty: the root).
fn selected<'a>(doc: &'a Value, at: &str, rest: &[Segment]) -> Vec<&'a Value> {
    let mut out = Vec::new();
    if let Some(b) = doc.pointer(at) {
        select(b, rest, &mut out);
    }
    out
}

/// Collect the values selected by `segs` under `v` (wildcards expand, in key or index order).
fn select<'a>(v: &'a Value, segs: &[Segment], out: &mut Vec<&'a Value>) {
    let Some((first, rest)) = segs.split_first() else {
        out.push(v);
        return;
    };
    match (first, v) {
        (Segment::Key(k), Value::Object(m)) => {
            if let Some(c) = m.get(k) {
                select(c, rest, out);
            }
        }
        (Segment::Key(k), Value::Array(a)) => {
            if let Some(c) = k.parse::<usize>().ok().and_then(|i| a.get(i)) {
                select(c, rest, out);
            }
        }
        (Segment::Any, Value::Object(m)) => m.values().for_each(|c| select(c, rest, out)),
        (Segment::Any, Value::Array(a)) => a.iter().for_each(|c| select(c, rest, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> PathPattern {
        PathPattern::parse(s).unwrap()
    }

    #[test]
    fn descendant_and_exact_changes_touch() {
        let old = json!({"spec": {"version": "v1.30.1"}});
        let new = json!({"spec": {"version": "v1.31.0"}});
        let changes = diff(&old, &new);
        assert_eq!(
            changes,
            vec![Change {
                op: "replace",
                path: "/spec/version".into()
            }]
        );
        assert!(touches(&p("/spec/version"), "/spec/version", &old, &new));
        assert!(touches(&p("/spec"), "/spec/version", &old, &new));
        assert!(!touches(&p("/spec/replicas"), "/spec/version", &old, &new));
    }

    #[test]
    fn ancestor_change_touches_only_if_the_watched_value_differs() {
        let old = json!({"spec": {}});
        let new = json!({"spec": {"desiredUpdate": {"version": "4.16.3"}}});
        assert!(touches(
            &p("/spec/desiredUpdate/version"),
            "/spec/desiredUpdate",
            &old,
            &new
        ));
        assert!(!touches(
            &p("/spec/desiredUpdate/image"),
            "/spec/desiredUpdate",
            &old,
            &new
        ));
        // CREATE: the diff against null replaces the root.
        assert!(touches(
            &p("/spec/desiredUpdate/version"),
            "",
            &Value::Null,
            &new
        ));
    }

    #[test]
    fn wildcards_match_any_segment() {
        let old = json!({"spec": {"pools": [{"quantity": 1}, {"quantity": 3}]}});
        let new = json!({"spec": {"pools": [{"quantity": 1}, {"quantity": 5}]}});
        let changes = diff(&old, &new);
        assert_eq!(changes[0].path, "/spec/pools/1/quantity");
        assert!(touches(
            &p("/spec/pools/*/quantity"),
            &changes[0].path,
            &old,
            &new
        ));
        assert!(!touches(
            &p("/spec/pools/*/name"),
            &changes[0].path,
            &old,
            &new
        ));
    }

    #[test]
    fn escaped_keys_are_compared_unescaped() {
        let old = json!({"metadata": {"annotations": {"a/b": "1"}}});
        let new = json!({"metadata": {"annotations": {"a/b": "2"}}});
        let changes = diff(&old, &new);
        assert_eq!(changes[0].path, "/metadata/annotations/a~1b");
        assert!(touches(
            &p("/metadata/annotations/a~1b"),
            &changes[0].path,
            &old,
            &new
        ));
    }

    #[test]
    fn request_from_objects_reads_group_kind_and_annotations() {
        let new = json!({"apiVersion": "config.openshift.io/v1", "kind": "ClusterVersion",
            "metadata": {"name": "version", "annotations": {"etcdguard.dev/break-glass": "INC-1"}}});
        let r = Request::from_objects(Operation::Update, None, Some(new));
        assert_eq!(r.api_group, "config.openshift.io");
        assert_eq!(r.kind, "ClusterVersion");
        assert_eq!(
            r.annotations
                .get("etcdguard.dev/break-glass")
                .map(String::as_str),
            Some("INC-1")
        );
        let core = Request::from_objects(
            Operation::Create,
            None,
            Some(json!({"apiVersion": "v1", "kind": "ConfigMap"})),
        );
        assert_eq!(core.api_group, "");
    }
}
