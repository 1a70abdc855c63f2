//! Declarative gate policies (issue #6), used identically by `check` and `serve`.
//!
//! A policy is a Kubernetes-style YAML document (`apiVersion: etcdguard.dev/v1alpha1`,
//! `kind: GatePolicy`) saying **what** to gate (`spec.match`: Kubernetes resources with the
//! JSON pointers whose change triggers the gate, or CLI change sources), **how strictly**
//! (`spec.mode`: enforce | warn | audit), **what must hold** (`spec.require`) and **who may
//! override** (`spec.exceptions`: a break-glass annotation for listed users/groups, optionally
//! expiring).
//!
//! This module is pure: no network, no clock (`now` is always a parameter), no file I/O except
//! in [`PolicySet::load`].
//!
//! Typical use by the gate:
//! ```
//! use etcdguard::policy::{PolicySet, Request, Operation, EffectiveRequire};
//! let set = PolicySet::embedded().expect("shipped policies are valid");
//! let old = serde_json::json!({"apiVersion": "config.openshift.io/v1", "kind": "ClusterVersion",
//!     "metadata": {"name": "version"}, "spec": {"desiredUpdate": {"version": "4.15.20"}}});
//! let mut new = old.clone();
//! new["spec"]["desiredUpdate"]["version"] = "4.16.3".into();
//! let req = Request::from_objects(Operation::Update, Some(old), Some(new));
//! let matches = set.matching(&req);
//! assert_eq!(matches.len(), 1);
//! let effective = set.effective(&matches);
//! assert!(effective.snapshot_max_age.is_some());
//! ```

mod exception;
mod load;
mod matching;
mod mode;
mod model;

pub use exception::{ExceptionDecision, ExceptionUse};
pub use load::{from_sources, parse_str, LoadError, PolicyError};
pub use matching::{
    diff, touches, Change, MatchExplanation, MatchReason, Mismatch, PathHit, PolicyMatch, Request,
};
pub use mode::{apply_exception, apply_mode, Decision, Effect, EffectiveRequire, Severity};
pub use model::{
    operation_name, parse_operation, ChangeSource, Exceptions, Expiry, KindName, Match, MaxAge,
    Metadata, Mode, Operation, OperationRule, PathPattern, PolicyDocument, PolicyName, PolicySpec,
    Require, ResourceRule, Segment, StoreLayout, StoreSpec, StoreUrl, Subresource, ValueError,
    Verification, API_VERSION, DEFAULT_BREAK_GLASS_ANNOTATION, KIND,
};

use std::path::Path;

/// The default policies shipped in `policies/`, embedded in the binary: (file name, text).
pub const EMBEDDED: &[(&str, &str)] = &[
    ("kops.yaml", include_str!("../../policies/kops.yaml")),
    (
        "cluster-api.yaml",
        include_str!("../../policies/cluster-api.yaml"),
    ),
    (
        "openshift.yaml",
        include_str!("../../policies/openshift.yaml"),
    ),
    (
        "k3s-rke2.yaml",
        include_str!("../../policies/k3s-rke2.yaml"),
    ),
    (
        "etcd-operator.yaml",
        include_str!("../../policies/etcd-operator.yaml"),
    ),
    (
        "s3-lifecycle.yaml",
        include_str!("../../policies/s3-lifecycle.yaml"),
    ),
];

/// One loaded, validated policy and where it came from.
#[derive(Debug, Clone)]
pub struct Policy {
    /// File it was read from (`embedded:<file>` for built-ins).
    pub file: String,
    /// 1-based line where its document starts.
    pub line: usize,
    /// 1-based line of `metadata.name` (for errors about the name, e.g. duplicates).
    pub name_line: usize,
    /// The document.
    pub doc: PolicyDocument,
}

impl Policy {
    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.doc.metadata.name.as_str()
    }

    /// `spec.mode`.
    pub fn mode(&self) -> Mode {
        self.doc.spec.mode
    }

    /// `spec.require`.
    pub fn require(&self) -> &Require {
        &self.doc.spec.require
    }
}

/// A validated set of policies with unique names. A user's set replaces the embedded one.
#[derive(Debug, Clone)]
pub struct PolicySet {
    policies: Vec<Policy>,
}

impl PolicySet {
    /// The shipped default policies. They are checked by tests, so an `Err` here is a bug in
    /// the binary; callers should still report it rather than panic.
    pub fn embedded() -> Result<PolicySet, LoadError> {
        let named: Vec<(String, &str)> = EMBEDDED
            .iter()
            .map(|(f, t)| (format!("embedded:{f}"), *t))
            .collect();
        from_sources(named.iter().map(|(f, t)| (f.as_str(), *t)))
    }

    /// Load policies from a YAML file (several documents allowed) or a folder of `*.yaml` /
    /// `*.yml` files. `Err(Io)` when the path cannot be read; `Err(Invalid)` with every
    /// error found (file, line, field, message) otherwise.
    pub fn load(path: &Path) -> Result<PolicySet, LoadError> {
        load::load_path(path)
    }

    /// `--policy PATH` when given, else the embedded defaults.
    pub fn load_or_embedded(path: Option<&Path>) -> Result<PolicySet, LoadError> {
        match path {
            Some(p) => PolicySet::load(p),
            None => PolicySet::embedded(),
        }
    }

    /// All policies, in load order.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// A policy by name.
    pub fn get(&self, name: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.name() == name)
    }

    /// Every policy matching the request, with why (which rule, which pointer changed).
    ///
    /// Only the watched paths of rules that select the request are compared (never the whole
    /// objects); no mismatch reasons are built (see [`PolicySet::explain`]).
    pub fn matching(&self, req: &Request) -> Vec<MatchExplanation> {
        self.policies
            .iter()
            .filter_map(|p| p.check_with(req, false).ok())
            .collect()
    }

    /// [`PolicySet::matching`] plus each matching policy's break-glass decision at `now`.
    pub fn matching_with_exceptions(
        &self,
        req: &Request,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Vec<(MatchExplanation, ExceptionDecision)> {
        self.matching(req)
            .into_iter()
            .filter_map(|m| {
                let decision = self.get(&m.policy)?.exception(req, now);
                Some((m, decision))
            })
            .collect()
    }

    /// Every policy checked against the request, matching or not, with reasons.
    pub fn explain(&self, req: &Request) -> Vec<PolicyMatch> {
        self.policies.iter().map(|p| p.check(req)).collect()
    }

    /// Merge the `require` of the matched policies, strictest wins (see [`EffectiveRequire`]).
    pub fn effective(&self, matches: &[MatchExplanation]) -> EffectiveRequire {
        EffectiveRequire::merge(
            matches
                .iter()
                .filter_map(|m| self.get(&m.policy))
                .map(|p| (p.name(), p.mode(), p.require())),
        )
    }
}
