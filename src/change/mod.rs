//! What a proposed change does: kops dry-run, Terraform plans, Kubernetes object diffs (issue #5).
//!
//! This module is pure: no network, no clock, no file system. Callers read the input (a kops
//! `update cluster` dry-run report, `terraform show -json <planfile>` output, or old/new
//! Kubernetes objects) and pass the bytes in; every parser returns a [`ChangeSet`] listing the
//! changes that matter to an etcd safety gate, each with the exact evidence that produced it.
//!
//! Entry points:
//! - [`from_kops_dry_run`]: `kops update cluster` without `--yes` (stdout).
//! - [`from_terraform_plan`]: `kops update cluster --target terraform` followed by
//!   `terraform plan -out p && terraform show -json p`.
//! - [`from_objects`] (with [`load_object`]): an old/new pair of Kubernetes objects (CREATE has no
//!   old object, DELETE no new one), classified by `(apiGroup, kind)`.
//!
//! The gate decides what to do with a change; this module only says what it is.
//! [`ChangeSet::seeds_new_cluster`] and [`ChangeSet::is_gated`] are the two summary questions.

use serde::Serialize;

mod kops;
mod kops_spec;
mod objects;
mod spec;
mod terraform;

pub use kops::from_kops_dry_run;
pub use kops_spec::{
    check_store_scheme, stores_from_cluster_spec, KopsBackupStore, StoreOrigin, UnsupportedScheme,
};
pub use objects::{
    from_objects, from_objects_with, from_request, from_request_with, is_known_kind, known_kinds,
    load_object, Detail,
};
pub use terraform::from_terraform_plan;

/// Text with every run of whitespace written as one space, trimmed: evidence and messages on
/// one line. Written in place, so a caller that formats it allocates once.
pub(crate) struct OneLine<'a>(pub(crate) &'a str);

impl std::fmt::Display for OneLine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, word) in self.0.split_whitespace().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(word)?;
        }
        Ok(())
    }
}

/// Errors from the change parsers. Every variant names the input it could not read and what
/// was expected instead.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The input is not the kind of document the parser expects.
    #[error("{input}: not {expected}: {detail}")]
    NotRecognized {
        /// Name of the input (a file name, `-` for stdin, or a caller-chosen label).
        input: String,
        /// What the parser expected, e.g. "a kops `update cluster` dry-run report".
        expected: &'static str,
        /// Why the input was rejected.
        detail: String,
    },
    /// The input could not be parsed as JSON or YAML.
    #[error("{input}: cannot parse as {format}: {detail}")]
    Syntax {
        /// Name of the input.
        input: String,
        /// The format tried ("JSON", "YAML").
        format: &'static str,
        /// The parser's message (with line/column where the parser gives one).
        detail: String,
    },
    /// A Kubernetes object is structurally wrong (no `apiVersion`/`kind`, old and new disagree, ...).
    #[error("{input}: invalid Kubernetes object: {detail}")]
    InvalidObject {
        /// Name of the object or input ("old object", "new object", a file name).
        input: String,
        /// What is wrong.
        detail: String,
    },
}

/// The changes a proposed update makes that matter to the etcd gate.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeSet {
    /// Every classified change, in input order.
    pub changes: Vec<Change>,
    /// True when the input creates the whole cluster, not just a part of it: kops creates
    /// `cluster-completed.spec` too (dry-run or Terraform), or a cluster object is created.
    /// A [`ChangeKind::SeedsNewCluster`] is then expected; for an existing cluster it means its
    /// control files are gone (kops#16416).
    pub creates_cluster: bool,
    /// Remarks about the parse that the reader should know (e.g. a diff was partial), never
    /// errors: errors are returned as [`ChangeError`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl ChangeSet {
    /// True when a change makes etcd-manager (or the platform) seed a **new, empty** etcd cluster
    /// for a cluster that may already hold data: a [`ChangeKind::SeedsNewCluster`] change.
    ///
    /// [`ChangeKind::BackupStoreMoved`] does not count here although it seeds a new cluster
    /// unless control files exist at the new location: the gate must check that store.
    pub fn seeds_new_cluster(&self) -> bool {
        self.changes
            .iter()
            .any(|c| matches!(c.kind, ChangeKind::SeedsNewCluster { .. }))
    }

    /// True when at least one change is gated (see [`ChangeKind::is_gated`]): the update must
    /// only proceed with a recent, restorable backup.
    pub fn is_gated(&self) -> bool {
        self.changes.iter().any(|c| c.kind.is_gated())
    }

    /// Only the gated changes.
    pub fn gated(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.kind.is_gated())
    }
}

/// One classified change.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// What the change does.
    pub kind: ChangeKind,
    /// The resource changed: `ManagedFile/etcd-cluster-spec-main` (kops dry-run), a Terraform
    /// address (`aws_s3_object.etcd-cluster-spec-main`), or `group/Kind namespace/name`.
    pub resource: String,
    /// The exact evidence: dry-run lines, plan attribute values, or `pointer: old -> new`.
    pub evidence: String,
    /// JSON pointers (RFC 6901) of the fields touched, for object and Terraform changes;
    /// empty for the kops text report.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub json_pointers: Vec<String>,
}

/// What a change does. Serialized with a `type` tag, e.g.
/// `{"type":"etcdScale","cluster":"main","from":3,"to":5}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ChangeKind {
    /// The update writes etcd-manager's `control/etcd-cluster-spec` where none exists: once
    /// etcd-manager's leader restarts it seeds a new, empty etcd cluster unless the
    /// `etcd-cluster-created` marker is present (kops#16416). Expected for a brand-new cluster
    /// (see [`ChangeSet::creates_cluster`]); for an existing one, the control files are gone or
    /// the backup store moved.
    SeedsNewCluster {
        /// The etcd cluster name (`main`, `events`, ...).
        cluster: String,
        /// Where the spec is written (`Base` + `Location`, or the Terraform bucket/key), if shown.
        location: Option<String>,
    },
    /// The etcd cluster's backup store path changes: etcd-manager reads control files from the
    /// new path and seeds a new cluster there unless they were copied over.
    BackupStoreMoved {
        cluster: String,
        from: Option<String>,
        to: Option<String>,
    },
    /// etcd-manager's `etcd-cluster-spec` is deleted: no backups after the next leader restart.
    EtcdSpecRemoved { cluster: String },
    /// Number of etcd members changes.
    EtcdScale {
        /// The etcd cluster (kops `main`), object name, or machine pool; `None` when unknown.
        cluster: Option<String>,
        from: Option<i64>,
        to: Option<i64>,
    },
    /// etcd version (or etcd image tag) changes.
    EtcdUpgrade {
        cluster: Option<String>,
        from: Option<String>,
        to: Option<String>,
    },
    /// Other etcd configuration changes (image registry, snapshot settings, external etcd, ...).
    EtcdConfigChange { detail: String },
    /// A restore of etcd from a backup is requested (replaces the data).
    EtcdRestore { detail: String },
    /// The Kubernetes (or k3s/RKE2) version changes: a control-plane rollout.
    KubernetesUpgrade {
        from: Option<String>,
        to: Option<String>,
    },
    /// A platform upgrade that is not a plain Kubernetes version (OpenShift `desiredUpdate`).
    PlatformUpgrade {
        from: Option<String>,
        to: Option<String>,
    },
    /// An upgrade channel changes and no version is pinned: the controller resolves and applies
    /// the channel's latest version.
    UpgradeChannelChange {
        from: Option<String>,
        to: Option<String>,
    },
    /// The number of control-plane machines (stacked etcd members) changes.
    ControlPlaneScale { from: Option<i64>, to: Option<i64> },
    /// Every control-plane machine is replaced (rollout, template or class change).
    ControlPlaneRollout { detail: String },
    /// A cluster (and so a new etcd cluster) is created. Expected for new clusters; no data at risk.
    ClusterCreation { detail: String },
    /// A cluster or etcd cluster is deleted: its etcd data goes with it.
    ClusterDeletion { detail: String },
    /// Something worth reporting that does not by itself put etcd data at risk.
    Other { detail: String },
}

impl ChangeKind {
    /// The gating contract: true for every kind that can lose etcd data or changes etcd or the
    /// control plane (everything except [`ChangeKind::ClusterCreation`] and [`ChangeKind::Other`]).
    pub fn is_gated(&self) -> bool {
        !matches!(
            self,
            ChangeKind::ClusterCreation { .. } | ChangeKind::Other { .. }
        )
    }

    /// A short, stable identifier of the kind (the serialized `type` tag).
    pub fn id(&self) -> &'static str {
        match self {
            ChangeKind::SeedsNewCluster { .. } => "seedsNewCluster",
            ChangeKind::BackupStoreMoved { .. } => "backupStoreMoved",
            ChangeKind::EtcdSpecRemoved { .. } => "etcdSpecRemoved",
            ChangeKind::EtcdScale { .. } => "etcdScale",
            ChangeKind::EtcdUpgrade { .. } => "etcdUpgrade",
            ChangeKind::EtcdConfigChange { .. } => "etcdConfigChange",
            ChangeKind::EtcdRestore { .. } => "etcdRestore",
            ChangeKind::KubernetesUpgrade { .. } => "kubernetesUpgrade",
            ChangeKind::PlatformUpgrade { .. } => "platformUpgrade",
            ChangeKind::UpgradeChannelChange { .. } => "upgradeChannelChange",
            ChangeKind::ControlPlaneScale { .. } => "controlPlaneScale",
            ChangeKind::ControlPlaneRollout { .. } => "controlPlaneRollout",
            ChangeKind::ClusterCreation { .. } => "clusterCreation",
            ChangeKind::ClusterDeletion { .. } => "clusterDeletion",
            ChangeKind::Other { .. } => "other",
        }
    }
}

/// Render an optional value for evidence strings (`<none>` when absent).
pub(crate) fn show<T: std::fmt::Display>(v: &Option<T>) -> String {
    match v {
        Some(v) => v.to_string(),
        None => "<none>".to_string(),
    }
}
