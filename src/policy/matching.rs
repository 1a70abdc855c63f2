//! Which policies a request matches, and why.

use super::model::{ChangeSource, Operation, PathPattern, ResourceRule, Segment};
use super::Policy;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

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
    pub old: Option<Value>,
    /// The object after the change (CREATE, UPDATE).
    #[serde(skip)]
    pub new: Option<Value>,
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
}

impl Request {
    /// A request for a Kubernetes object change. Group and kind are read from `apiVersion` and
    /// `kind` of `new` (or `old`); annotations from its `metadata.annotations`.
    /// Missing or malformed `apiVersion`/`kind` leave the fields empty (nothing will match).
    pub fn from_objects(operation: Operation, old: Option<Value>, new: Option<Value>) -> Request {
        let subject = new.as_ref().or(old.as_ref());
        let api_version = subject
            .and_then(|o| o.get("apiVersion"))
            .and_then(Value::as_str)
            .unwrap_or("");
        // `group/version`, or just `version` for the core group.
        let api_group = match api_version.rsplit_once('/') {
            Some((g, _)) => g.to_string(),
            None => String::new(),
        };
        let kind = subject
            .and_then(|o| o.get("kind"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
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

    /// The json-patch diff of `old` → `new` (an absent side counts as `null`).
    pub fn changes(&self) -> Vec<Change> {
        let null = Value::Null;
        let old = self.old.as_ref().unwrap_or(&null);
        let new = self.new.as_ref().unwrap_or(&null);
        diff(old, new)
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

/// The json-patch (RFC 6902) diff of two documents, as (op, path) pairs.
pub fn diff(old: &Value, new: &Value) -> Vec<Change> {
    json_patch::diff(old, new)
        .0
        .iter()
        .filter_map(|op| {
            use json_patch::PatchOperation as P;
            let (name, path) = match op {
                P::Add(o) => ("add", &o.path),
                P::Remove(o) => ("remove", &o.path),
                P::Replace(o) => ("replace", &o.path),
                // `diff` emits only add/remove/replace.
                _ => return None,
            };
            Some(Change {
                op: name,
                path: path.as_str().to_string(),
            })
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
        /// The watched pointers that changed, with the diff operations that touched them.
        /// Empty when the rule watches no paths (any change matches).
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
    /// `changes` is the request's diff (computed once by the caller).
    pub fn check(&self, req: &Request, changes: &[Change]) -> PolicyMatch {
        let spec = &self.doc.spec;
        let explain = |reason| {
            PolicyMatch::Matched(MatchExplanation {
                policy: self.name().to_string(),
                mode: spec.mode,
                defined_at: format!("{}:{}", self.file, self.line),
                reason,
            })
        };
        let mut reasons = Vec::new();
        if let Some(source) = req.source {
            if spec.match_.sources.contains(&source) {
                return explain(MatchReason::Source { source });
            }
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
        } else {
            for (i, rule) in spec.match_.resources.iter().enumerate() {
                match rule_matches(rule, req, changes) {
                    Ok(changed) => return explain(MatchReason::Resource { rule: i, changed }),
                    Err(why) => reasons.push(format!("resources[{i}]: {why}")),
                }
            }
            if spec.match_.resources.is_empty() {
                reasons.push("matches no Kubernetes resources (only CLI sources)".into());
            }
        }
        PolicyMatch::NotMatched(Mismatch {
            policy: self.name().to_string(),
            reasons,
        })
    }
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `Ok(hits)` when the rule matches; `Err(reason)` otherwise.
fn rule_matches(
    rule: &ResourceRule,
    req: &Request,
    changes: &[Change],
) -> Result<Vec<PathHit>, String> {
    if !rule
        .api_groups
        .iter()
        .any(|g| g == "*" || *g == req.api_group)
    {
        return Err(format!(
            "apiGroup `{}` is not in [{}]",
            req.api_group,
            rule.api_groups.join(", ")
        ));
    }
    if !rule
        .kinds
        .iter()
        .any(|k| k.covers(&req.kind, req.resource.as_deref()))
    {
        return Err(format!(
            "kind `{}` is not in [{}]",
            req.kind,
            rule.kinds
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let Some(op) = req.operation else {
        return Err("the request has no operation".into());
    };
    if !rule.operations.iter().any(|o| o.covers(op)) {
        return Err(format!(
            "operation {op} is not in [{}]",
            list(&rule.operations)
        ));
    }
    if let Some(sub) = req.subresource.as_deref().filter(|s| !s.is_empty()) {
        if !rule.subresources.iter().any(|s| s.covers(sub)) {
            return Err(format!("subresource `{sub}` is not matched by this rule"));
        }
    }
    if rule.paths.is_empty() {
        return Ok(Vec::new());
    }
    let null = Value::Null;
    let old = req.old.as_ref().unwrap_or(&null);
    let new = req.new.as_ref().unwrap_or(&null);
    let hits: Vec<PathHit> = rule
        .paths
        .iter()
        .filter_map(|p| {
            let touching: Vec<Change> = changes
                .iter()
                .filter(|c| touches(p, &c.path, old, new))
                .cloned()
                .collect();
            (!touching.is_empty()).then(|| PathHit {
                watched: p.as_str().to_string(),
                changes: touching,
            })
        })
        .collect();
    if hits.is_empty() {
        Err(format!(
            "none of the watched paths changed ({})",
            list(&rule.paths)
        ))
    } else {
        Ok(hits)
    }
}

/// Split a JSON pointer string into unescaped tokens.
fn tokens(pointer: &str) -> Vec<String> {
    if pointer.is_empty() {
        return Vec::new();
    }
    pointer
        .trim_start_matches('/')
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect()
}

fn seg_matches(seg: &Segment, token: &str) -> bool {
    match seg {
        Segment::Any => true,
        Segment::Key(k) => k == token,
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
    let toks = tokens(changed);
    let segs = pattern.segments();
    let common = segs.len().min(toks.len());
    let prefix_ok = segs
        .iter()
        .zip(toks.iter())
        .take(common)
        .all(|(s, t)| seg_matches(s, t));
    if !prefix_ok {
        return false;
    }
    if toks.len() >= segs.len() {
        return true;
    }
    // Ancestor: compare what the remainder of the pattern selects below `changed`.
    let at = |doc: &Value| -> Vec<Value> {
        let base = if changed.is_empty() {
            Some(doc)
        } else {
            doc.pointer(changed)
        };
        let mut out = Vec::new();
        if let Some(b) = base {
            select(b, segs.get(toks.len()..).unwrap_or(&[]), &mut out);
        }
        out
    };
    at(old) != at(new)
}

/// Collect the values selected by `segs` under `v` (wildcards expand, in document order).
fn select(v: &Value, segs: &[Segment], out: &mut Vec<Value>) {
    let Some((first, rest)) = segs.split_first() else {
        out.push(v.clone());
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
