//! Kubernetes object changes (old vs new), classified by `(apiGroup, kind)`.
//!
//! The pair is parsed once and dispatched by kind to one typed classifier per kind (the
//! linkerd2 admission pattern); a classifier compares the fields it knows and lists the
//! json-patch operations (`json_patch::diff`) under them. Kinds not in [`KINDS`] are "not a
//! gated change": an empty [`ChangeSet`] with a note.

use super::{show, Change, ChangeError, ChangeKind, ChangeSet};
use crate::json::under;
use serde_json::Value;
use std::cell::OnceCell;
use std::collections::BTreeMap;

/// Parse one Kubernetes object from YAML or JSON bytes. `name` names the input in errors.
///
/// JSON is assumed when the first non-blank byte is `{`, YAML otherwise (YAML is a superset,
/// but JSON errors are clearer for JSON input). The object must be a mapping with string
/// `apiVersion` and `kind`. A multi-document YAML stream is an error.
pub fn load_object(bytes: &[u8], name: &str) -> Result<Value, ChangeError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let doc = match first {
        None => {
            return Err(ChangeError::InvalidObject {
                input: name.to_string(),
                detail: "input is empty; expected one Kubernetes object in YAML or JSON"
                    .to_string(),
            })
        }
        Some(b'{') => crate::json::value_from_slice(bytes).map_err(|e| ChangeError::Syntax {
            input: name.to_string(),
            format: "JSON",
            detail: e.to_string(),
        })?,
        Some(_) => {
            crate::json::value_from_deserializer(serde_yaml_ng::Deserializer::from_slice(bytes))
                .map_err(|e| ChangeError::Syntax {
                    input: name.to_string(),
                    format: "YAML",
                    detail: e.to_string(),
                })?
        }
    };
    gvk(&doc, name)?;
    Ok(doc)
}

/// Group, version and kind of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Gvk {
    group: String,
    kind: String,
}

fn gvk(v: &Value, input: &str) -> Result<Gvk, ChangeError> {
    let invalid = |detail: &str| ChangeError::InvalidObject {
        input: input.to_string(),
        detail: detail.to_string(),
    };
    if !v.is_object() {
        return Err(invalid("expected a mapping (a Kubernetes object)"));
    }
    let api_version = v
        .get("apiVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("missing string `apiVersion`"))?;
    let kind = v
        .get("kind")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("missing string `kind`"))?;
    let group = match api_version.rsplit_once('/') {
        Some((g, _)) => g.to_string(),
        None => String::new(), // core group: "v1"
    };
    Ok(Gvk {
        group,
        kind: kind.to_string(),
    })
}

type Classifier = fn(&mut Ctx<'_>);

/// The kinds this module classifies: `(apiGroup, kind, classifier)`.
const KINDS: &[(&str, &str, Classifier)] = &[
    ("cluster.x-k8s.io", "Cluster", capi_cluster),
    (
        "controlplane.cluster.x-k8s.io",
        "KubeadmControlPlane",
        kubeadm_control_plane,
    ),
    (
        "config.openshift.io",
        "ClusterVersion",
        openshift_cluster_version,
    ),
    ("kops.k8s.io", "Cluster", kops_cluster),
    ("kops.k8s.io", "InstanceGroup", kops_instance_group),
    ("upgrade.cattle.io", "Plan", suc_plan),
    ("etcd.database.coreos.com", "EtcdCluster", etcd_cluster),
    ("operator.etcd.io", "EtcdCluster", etcd_cluster),
    ("provisioning.cattle.io", "Cluster", rancher_cluster),
];

/// True when `(api_group, kind)` is classified by [`from_objects`] (for webhook rules).
/// `api_group` is the group without version (`cluster.x-k8s.io`; `""` for core).
pub fn is_known_kind(api_group: &str, kind: &str) -> bool {
    KINDS.iter().any(|(g, k, _)| *g == api_group && *k == kind)
}

/// Every `(apiGroup, kind)` pair [`from_objects`] classifies.
pub fn known_kinds() -> impl Iterator<Item = (&'static str, &'static str)> {
    KINDS.iter().map(|(g, k, _)| (*g, *k))
}

/// Classify the change from `old` to `new` (CREATE: `old` is `None`; DELETE: `new` is `None`).
///
/// Both objects must carry `apiVersion` and `kind`; when both are given they must have the same
/// API group, kind and name. Setting `metadata.deletionTimestamp` counts as a deletion.
/// Unknown kinds give an empty set with a note ("not a gated change").
///
/// Classified fields per kind:
/// - Cluster API `Cluster`: `spec.topology.version` ⇒ KubernetesUpgrade,
///   `spec.topology.controlPlane.replicas` ⇒ ControlPlaneScale, `spec.topology.classRef` /
///   `class` ⇒ ControlPlaneRollout;
/// - `KubeadmControlPlane`: `spec.version` ⇒ KubernetesUpgrade, `spec.replicas` ⇒
///   ControlPlaneScale, `kubeadmConfigSpec.clusterConfiguration.etcd.local.imageTag` ⇒
///   EtcdUpgrade, other `...etcd` fields ⇒ EtcdConfigChange, `rollout.after`/`rolloutAfter`/
///   `machineTemplate` ⇒ ControlPlaneRollout;
/// - OpenShift `ClusterVersion`: `spec.desiredUpdate.{version,image}` ⇒ PlatformUpgrade
///   (Other when `mode: Preflight`);
/// - kops `Cluster`: `spec.kubernetesVersion` ⇒ KubernetesUpgrade; per `spec.etcdClusters[]`
///   (matched by name): member count ⇒ EtcdScale, `version` ⇒ EtcdUpgrade,
///   a change of the effective backup store (`backups.backupStore`, default
///   `<spec.configBase>/backups/etcd/<name>`) ⇒ BackupStoreMoved, other fields ⇒
///   EtcdConfigChange, added/removed
///   etcd clusters ⇒ ClusterCreation/ClusterDeletion;
/// - kops control-plane `InstanceGroup`: size/image/machine type ⇒ Other;
/// - system-upgrade-controller `Plan`: `spec.version` ⇒ KubernetesUpgrade (also on CREATE),
///   `spec.channel` without a pinned version ⇒ UpgradeChannelChange;
/// - etcd-operator `EtcdCluster` (both API groups): `spec.size` ⇒ EtcdScale, `spec.version` ⇒
///   EtcdUpgrade, image/storage/options ⇒ EtcdConfigChange;
/// - Rancher `provisioning.cattle.io` `Cluster`: `spec.kubernetesVersion` ⇒ KubernetesUpgrade,
///   `rkeConfig.etcd` snapshot settings ⇒ EtcdConfigChange, `rkeConfig.etcdSnapshotRestore` ⇒
///   EtcdRestore, total `quantity` of `etcdRole` machine pools (absent quantity counts as 1,
///   the Cluster API default) ⇒ EtcdScale.
///
/// CREATE of a cluster kind ⇒ ClusterCreation (not gated); DELETE ⇒ ClusterDeletion (gated).
pub fn from_objects(old: Option<&Value>, new: Option<&Value>) -> Result<ChangeSet, ChangeError> {
    from_objects_with(old, new, Detail::Full)
}

/// Classify the object change of a policy request (`check --object-old/--object-new`, an
/// admission review).
pub fn from_request(req: &crate::policy::Request) -> Result<ChangeSet, ChangeError> {
    from_request_with(req, Detail::Full)
}

/// How much of each change to write down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Detail {
    /// Everything: evidence (`pointer: old -> new`) and the json-patch pointers touched.
    #[default]
    Full,
    /// Only what a decision depends on: each change's kind (with its values) and resource, the
    /// notes and [`ChangeSet::creates_cluster`]. `evidence` is empty and `json_pointers` is
    /// empty. The same changes are found in the same order as with [`Detail::Full`] (tested);
    /// the admission webhook, which shows neither, skips building them.
    KindsOnly,
}

/// [`from_request`] with the given [`Detail`].
pub fn from_request_with(
    req: &crate::policy::Request,
    detail: Detail,
) -> Result<ChangeSet, ChangeError> {
    from_objects_with(req.old.as_deref(), req.new.as_deref(), detail)
}

/// [`from_objects`] with the given [`Detail`].
pub fn from_objects_with(
    old: Option<&Value>,
    new: Option<&Value>,
    detail: Detail,
) -> Result<ChangeSet, ChangeError> {
    let (gvk_old, gvk_new) = (
        old.map(|o| gvk(o, "old object")).transpose()?,
        new.map(|n| gvk(n, "new object")).transpose()?,
    );
    let g = match (&gvk_old, &gvk_new) {
        (Some(a), Some(b)) if a != b => {
            return Err(ChangeError::InvalidObject {
                input: "old/new objects".to_string(),
                detail: format!(
                    "old is {}/{} but new is {}/{}; both must be the same kind",
                    a.group, a.kind, b.group, b.kind
                ),
            })
        }
        (_, Some(g)) | (Some(g), None) => g.clone(),
        (None, None) => {
            return Err(ChangeError::InvalidObject {
                input: "old/new objects".to_string(),
                detail: "neither an old nor a new object was given".to_string(),
            })
        }
    };
    if let (Some(o), Some(n)) = (old, new) {
        let (a, b) = (meta_name(o), meta_name(n));
        if a.is_some() && b.is_some() && a != b {
            return Err(ChangeError::InvalidObject {
                input: "old/new objects".to_string(),
                detail: format!(
                    "old is named `{}` but new is named `{}`",
                    a.unwrap_or_default(),
                    b.unwrap_or_default()
                ),
            });
        }
    }
    let resource = resource_name(&g, new.or(old).unwrap_or(&Value::Null));
    let Some((_, _, classify)) = KINDS
        .iter()
        .find(|(group, kind, _)| *group == g.group && *kind == g.kind)
    else {
        return Ok(ChangeSet {
            changes: Vec::new(),
            notes: vec![format!(
                "{resource}: not a gated kind; no change classified"
            )],
            ..ChangeSet::default()
        });
    };
    // A deletionTimestamp appearing on an UPDATE is a deletion in progress.
    let deleting = match (old, new) {
        (Some(o), Some(n)) => {
            o.pointer("/metadata/deletionTimestamp").is_none()
                && n.pointer("/metadata/deletionTimestamp").is_some()
        }
        _ => false,
    };
    let (old, new) = if deleting { (old, None) } else { (old, new) };
    let mut ctx = Ctx {
        old,
        new,
        resource,
        set: ChangeSet::default(),
        full: detail == Detail::Full,
        diff: OnceCell::new(),
    };
    classify(&mut ctx);
    // CREATE of a cluster kind (its classifier reports ClusterCreation when old is absent).
    ctx.set.creates_cluster = old.is_none()
        && ctx
            .set
            .changes
            .iter()
            .any(|c| matches!(c.kind, ChangeKind::ClusterCreation { .. }));
    Ok(ctx.set)
}

/// The paths of the json-patch diff of `old` → `new`, in `json_patch::diff` order.
fn diff_paths(old: &Value, new: &Value) -> Vec<String> {
    crate::policy::diff(old, new)
        .into_iter()
        .map(|c| c.path)
        .collect()
}

fn meta_name(v: &Value) -> Option<&str> {
    v.pointer("/metadata/name").and_then(Value::as_str)
}

fn resource_name(g: &Gvk, v: &Value) -> String {
    let kind = if g.group.is_empty() {
        g.kind.clone()
    } else {
        format!("{}/{}", g.group, g.kind)
    };
    let name = meta_name(v).unwrap_or("<unnamed>");
    match v.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// One classification in progress.
struct Ctx<'a> {
    old: Option<&'a Value>,
    new: Option<&'a Value>,
    resource: String,
    set: ChangeSet,
    /// [`Detail::Full`]: write evidence and pointers; otherwise leave them empty.
    full: bool,
    /// The paths of the diff of old → new, computed on first use.
    diff: OnceCell<Vec<String>>,
}

/// Dotted form of a JSON pointer for evidence (`/spec/topology/version` → `spec.topology.version`):
/// leading `/`s dropped, the others written as `.`.
struct Dotted<'p>(&'p str);

impl std::fmt::Display for Dotted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, seg) in self.0.trim_start_matches('/').split('/').enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            f.write_str(seg)?;
        }
        Ok(())
    }
}

/// A value for a person: a string without quotes, `<none>` for absent or null, else JSON.
struct Shown<'a>(Option<&'a Value>);

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            None => f.write_str("<none>"),
            Some(Value::Null) => f.write_str("<none>"),
            Some(Value::String(s)) => f.write_str(s),
            Some(n) => std::fmt::Display::fmt(n, f),
        }
    }
}

/// A present value as text for a change (`None` stays `None`; see [`Shown`]).
fn text_of(v: Option<&Value>) -> Option<String> {
    v.map(|v| Shown(Some(v)).to_string())
}

/// `a.b.c: old -> new`.
fn evidence(ptr: &str, old: Option<&Value>, new: Option<&Value>) -> String {
    format!("{}: {} -> {}", Dotted(ptr), Shown(old), Shown(new))
}

impl<'a> Ctx<'a> {
    fn is_update(&self) -> bool {
        self.old.is_some() && self.new.is_some()
    }
    fn old_at(&self, ptr: &str) -> Option<&'a Value> {
        self.old
            .and_then(|o| o.pointer(ptr))
            .filter(|v| !v.is_null())
    }
    fn new_at(&self, ptr: &str) -> Option<&'a Value> {
        self.new
            .and_then(|n| n.pointer(ptr))
            .filter(|v| !v.is_null())
    }
    fn old_str(&self, ptr: &str) -> Option<String> {
        text_of(self.old_at(ptr))
    }
    fn new_str(&self, ptr: &str) -> Option<String> {
        text_of(self.new_at(ptr))
    }
    /// The paths of the json-patch diff of old → new (UPDATE only) at or under `prefix`, or
    /// ancestors of `prefix` that were added, removed or replaced whole, in diff order.
    fn touched_under(&self, prefix: &str) -> Vec<String> {
        let (Some(old), Some(new)) = (self.old, self.new) else {
            return Vec::new();
        };
        self.diff
            .get_or_init(|| diff_paths(old, new))
            .iter()
            .filter(|p| under(p, prefix) || under(prefix, p))
            .cloned()
            .collect()
    }
    /// Whether the value at `ptr` differs between old and new (UPDATE only).
    fn changed(&self, ptr: &str) -> bool {
        self.is_update() && self.old_at(ptr) != self.new_at(ptr)
    }
    /// [`touched_under`](Self::touched_under) when the pointers are written down (only
    /// [`Detail::Full`]); use `touched_under` itself where the answer decides a change.
    fn pointers_under(&self, prefix: &str) -> Vec<String> {
        if self.full {
            self.touched_under(prefix)
        } else {
            Vec::new()
        }
    }
    /// `pointer: old -> new` (empty unless [`Detail::Full`]).
    fn evidence(&self, ptr: &str) -> String {
        if self.full {
            evidence(ptr, self.old_at(ptr), self.new_at(ptr))
        } else {
            String::new()
        }
    }
    /// The evidence of each pointer, joined with `; ` (empty unless [`Detail::Full`]).
    fn evidence_of(&self, ptrs: &[String]) -> String {
        if self.full {
            ptrs.iter()
                .map(|p| self.evidence(p))
                .collect::<Vec<_>>()
                .join("; ")
        } else {
            String::new()
        }
    }
    /// Record a change; without [`Detail::Full`] its evidence and pointers are dropped.
    fn push(&mut self, kind: ChangeKind, evidence: String, pointers: Vec<String>) {
        let (evidence, json_pointers) = if self.full {
            (evidence, pointers)
        } else {
            (String::new(), Vec::new())
        };
        self.set.changes.push(Change {
            kind,
            resource: self.resource.clone(),
            evidence,
            json_pointers,
        });
    }
    /// Push a change for a scalar field at `ptr` if it changed. `make` gets the old and new
    /// values at `ptr` (`None`: absent or null), looked up once.
    fn field(
        &mut self,
        ptr: &str,
        make: impl FnOnce(&Self, Option<&'a Value>, Option<&'a Value>) -> ChangeKind,
    ) {
        if !self.is_update() {
            return;
        }
        let (old, new) = (self.old_at(ptr), self.new_at(ptr));
        if old != new {
            let kind = make(self, old, new);
            if !self.full {
                self.push(kind, String::new(), Vec::new());
                return;
            }
            let ev = evidence(ptr, old, new);
            let mut ptrs = self.touched_under(ptr);
            if ptrs.is_empty() {
                ptrs.push(ptr.to_string());
            }
            self.push(kind, ev, ptrs);
        }
    }
    /// CREATE ⇒ ClusterCreation, DELETE ⇒ ClusterDeletion. Returns true when handled.
    fn lifecycle(&mut self, what: &str) -> bool {
        match (self.old, self.new) {
            (None, Some(_)) => {
                let detail = format!("{what} is created: a new etcd cluster is seeded");
                self.push(
                    ChangeKind::ClusterCreation { detail },
                    "CREATE".to_string(),
                    Vec::new(),
                );
                true
            }
            (Some(_), None) => {
                let detail = format!("{what} is deleted: its etcd data goes with it");
                self.push(
                    ChangeKind::ClusterDeletion { detail },
                    "DELETE".to_string(),
                    Vec::new(),
                );
                true
            }
            _ => false,
        }
    }
    fn name(&self) -> Option<String> {
        self.new
            .or(self.old)
            .and_then(meta_name)
            .map(str::to_string)
    }
}

fn version_change<'a>(_: &Ctx<'a>, old: Option<&'a Value>, new: Option<&'a Value>) -> ChangeKind {
    ChangeKind::KubernetesUpgrade {
        from: text_of(old),
        to: text_of(new),
    }
}

fn replicas_change<'a>(_: &Ctx<'a>, old: Option<&'a Value>, new: Option<&'a Value>) -> ChangeKind {
    ChangeKind::ControlPlaneScale {
        from: old.and_then(Value::as_i64),
        to: new.and_then(Value::as_i64),
    }
}

fn capi_cluster(c: &mut Ctx<'_>) {
    if c.lifecycle("Cluster API Cluster") {
        return;
    }
    c.field("/spec/topology/version", version_change);
    c.field("/spec/topology/controlPlane/replicas", replicas_change);
    for ptr in ["/spec/topology/classRef", "/spec/topology/class"] {
        c.field(ptr, |_, _, _| ChangeKind::ControlPlaneRollout {
            detail: "ClusterClass changes: control-plane machines may be replaced".to_string(),
        });
    }
}

const KCP_ETCD: &str = "/spec/kubeadmConfigSpec/clusterConfiguration/etcd";
const KCP_ETCD_TAG: &str = "/spec/kubeadmConfigSpec/clusterConfiguration/etcd/local/imageTag";

fn kubeadm_control_plane(c: &mut Ctx<'_>) {
    if c.lifecycle("KubeadmControlPlane") {
        return;
    }
    c.field("/spec/version", version_change);
    c.field("/spec/replicas", replicas_change);
    let name = c.name();
    c.field(KCP_ETCD_TAG, |_, old, new| ChangeKind::EtcdUpgrade {
        cluster: name,
        from: text_of(old),
        to: text_of(new),
    });
    let other: Vec<String> = c
        .touched_under(KCP_ETCD)
        .into_iter()
        .filter(|p| !under(p, KCP_ETCD_TAG))
        .collect();
    if !other.is_empty() {
        let ev = c.evidence_of(&other);
        c.push(
            ChangeKind::EtcdConfigChange {
                detail: "kubeadm etcd configuration changes (local/external); control-plane \
                         machines are replaced"
                    .to_string(),
            },
            ev,
            other,
        );
    }
    for ptr in ["/spec/rollout/after", "/spec/rolloutAfter"] {
        c.field(ptr, |_, _, _| ChangeKind::ControlPlaneRollout {
            detail: "rollout requested: every control-plane machine is replaced".to_string(),
        });
    }
    let tmpl = c.touched_under("/spec/machineTemplate");
    if !tmpl.is_empty() {
        let ev = c.evidence_of(&tmpl);
        c.push(
            ChangeKind::ControlPlaneRollout {
                detail: "machine template changes: control-plane machines are replaced".to_string(),
            },
            ev,
            tmpl,
        );
    }
}

fn openshift_cluster_version(c: &mut Ctx<'_>) {
    if !c.is_update() {
        let detail = if c.new.is_some() {
            "ClusterVersion created (installer); no update requested by this change"
        } else {
            "ClusterVersion deleted; the cluster-version operator recreates it"
        };
        c.push(
            ChangeKind::Other {
                detail: detail.to_string(),
            },
            if c.new.is_some() { "CREATE" } else { "DELETE" }.to_string(),
            Vec::new(),
        );
        return;
    }
    const VERSION: &str = "/spec/desiredUpdate/version";
    const IMAGE: &str = "/spec/desiredUpdate/image";
    if c.changed(VERSION) || c.changed(IMAGE) {
        let target = |c: &Ctx<'_>, old: bool| {
            let get = |p: &str| if old { c.old_str(p) } else { c.new_str(p) };
            get(VERSION).or_else(|| get(IMAGE))
        };
        let from = target(c, true).or_else(|| c.old_str("/status/desired/version"));
        let to = target(c, false);
        let mut ptrs = c.pointers_under(VERSION);
        ptrs.extend(c.pointers_under(IMAGE));
        let ev = format!("{}; {}", c.evidence(VERSION), c.evidence(IMAGE));
        let preflight = c.new_str("/spec/desiredUpdate/mode").as_deref() == Some("Preflight");
        let kind = if preflight {
            ChangeKind::Other {
                detail: format!(
                    "desiredUpdate with mode Preflight to {}: compatibility checks only, no update",
                    show(&to)
                ),
            }
        } else {
            ChangeKind::PlatformUpgrade { from, to }
        };
        c.push(kind, ev, ptrs);
    }
    c.field("/spec/channel", |_, _, _| ChangeKind::Other {
        detail: "update channel changes (no update by itself)".to_string(),
    });
}

fn kops_cluster<'a>(c: &mut Ctx<'a>) {
    if c.lifecycle("kops Cluster") {
        return;
    }
    c.field("/spec/kubernetesVersion", version_change);
    let index = |v: Option<&'a Value>| -> BTreeMap<String, (usize, &'a Value)> {
        v.and_then(|v| v.pointer("/spec/etcdClusters"))
            .map(|a| {
                a.as_array()
                    .into_iter()
                    .flatten()
                    .enumerate()
                    .filter_map(|(i, e)| {
                        let name = e.get("name").and_then(Value::as_str)?;
                        Some((name.to_string(), (i, e)))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (old, new) = (index(c.old), index(c.new));
    for (name, (oi, o)) in &old {
        let Some((ni, n)) = new.get(name) else {
            c.push(
                ChangeKind::ClusterDeletion {
                    detail: format!("etcd cluster `{name}` removed from spec.etcdClusters"),
                },
                format!("spec.etcdClusters[{oi}] (name {name}) removed"),
                vec![format!("/spec/etcdClusters/{oi}")],
            );
            continue;
        };
        kops_etcd_cluster(c, name, *ni, o, n);
    }
    for (name, (ni, _)) in &new {
        if !old.contains_key(name) {
            c.push(
                ChangeKind::ClusterCreation {
                    detail: format!("etcd cluster `{name}` added to spec.etcdClusters"),
                },
                format!("spec.etcdClusters[{ni}] (name {name}) added"),
                vec![format!("/spec/etcdClusters/{ni}")],
            );
        }
    }
}

/// One etcd cluster present in both objects (`o` before, `n` after, at index `ni` after):
/// member count, etcd version, the effective backup store, and any other setting.
fn kops_etcd_cluster(c: &mut Ctx<'_>, name: &str, ni: usize, o: &Value, n: &Value) {
    let base = format!("/spec/etcdClusters/{ni}");
    let ptrs = |c: &Ctx<'_>, field: &str| {
        if !c.full {
            return Vec::new();
        }
        let mut p = c.touched_under(&format!("{base}{field}"));
        if p.is_empty() {
            p.push(format!("{base}{field}"));
        }
        p
    };
    let members = |v: &Value| {
        v.get("etcdMembers")
            .and_then(Value::as_array)
            .map(|a| a.len() as i64)
    };
    if members(o) != members(n) {
        c.push(
            ChangeKind::EtcdScale {
                cluster: Some(name.to_string()),
                from: members(o),
                to: members(n),
            },
            format!(
                "spec.etcdClusters[{ni}] ({name}) etcdMembers: {} -> {} members",
                show(&members(o)),
                show(&members(n))
            ),
            ptrs(c, "/etcdMembers"),
        );
    }
    let s = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
    if s(o, "/version") != s(n, "/version") {
        c.push(
            ChangeKind::EtcdUpgrade {
                cluster: Some(name.to_string()),
                from: s(o, "/version"),
                to: s(n, "/version"),
            },
            format!(
                "spec.etcdClusters[{ni}] ({name}) version: {} -> {}",
                show(&s(o, "/version")),
                show(&s(n, "/version"))
            ),
            ptrs(c, "/version"),
        );
    }
    let store = "/backups/backupStore";
    // The effective store: backups.backupStore, else `<configBase>/backups/etcd/<name>`
    // (kops `etcdmanager/options.go`), so spelling out the default is not a move.
    let effective = |side: Option<&Value>, entry: &Value| {
        s(entry, store).or_else(|| {
            let base = side?.pointer("/spec/configBase")?.as_str()?;
            Some(format!(
                "{}/backups/etcd/{name}",
                base.trim_end_matches('/')
            ))
        })
    };
    let (from, to) = (effective(c.old, o), effective(c.new, n));
    if from != to {
        c.push(
            ChangeKind::BackupStoreMoved {
                cluster: name.to_string(),
                from: from.clone(),
                to: to.clone(),
            },
            format!(
                "spec.etcdClusters[{ni}] ({name}) backups.backupStore: {} -> {} \
                 (effective store {} -> {})",
                show(&s(o, store)),
                show(&s(n, store)),
                show(&from),
                show(&to)
            ),
            ptrs(c, store),
        );
    }
    if o != n {
        let mut rest_o = o.clone();
        let mut rest_n = n.clone();
        for v in [&mut rest_o, &mut rest_n] {
            if let Some(m) = v.as_object_mut() {
                m.remove("etcdMembers");
                m.remove("version");
                if let Some(b) = m.get_mut("backups").and_then(Value::as_object_mut) {
                    b.remove("backupStore");
                }
                if m.get("backups")
                    .and_then(Value::as_object)
                    .is_some_and(|b| b.is_empty())
                {
                    m.remove("backups");
                }
            }
        }
        if rest_o != rest_n {
            let rel = diff_paths(&rest_o, &rest_n);
            // Evidence from each side's own entry (indices may differ between old and new).
            let ev = rel
                .iter()
                .map(|p| {
                    format!(
                        "spec.etcdClusters[{ni}] ({name}) {}: {} -> {}",
                        Dotted(p),
                        Shown(rest_o.pointer(p)),
                        Shown(rest_n.pointer(p))
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            let fields: Vec<String> = rel.iter().map(|p| format!("{base}{p}")).collect();
            c.push(
                ChangeKind::EtcdConfigChange {
                    detail: format!(
                        "etcd cluster `{name}` settings change (manager, image, resources)"
                    ),
                },
                ev,
                fields,
            );
        }
    }
}

fn kops_instance_group(c: &mut Ctx<'_>) {
    let role = |v: Option<&Value>| {
        v.and_then(|v| v.pointer("/spec/role"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let is_cp = |r: Option<String>| matches!(r.as_deref(), Some("ControlPlane" | "Master"));
    if !(is_cp(role(c.old)) || is_cp(role(c.new))) {
        return;
    }
    if !c.is_update() {
        let what = if c.new.is_some() {
            "created"
        } else {
            "deleted"
        };
        c.push(
            ChangeKind::Other {
                detail: format!("control-plane instance group {what}"),
            },
            what.to_string(),
            Vec::new(),
        );
        return;
    }
    let mut ptrs = Vec::new();
    let mut ev = Vec::new();
    for p in [
        "/spec/role",
        "/spec/minSize",
        "/spec/maxSize",
        "/spec/image",
        "/spec/machineType",
    ] {
        if c.changed(p) {
            ptrs.push(p.to_string());
            ev.push(c.evidence(p));
        }
    }
    if !ptrs.is_empty() {
        c.push(
            ChangeKind::Other {
                detail: "control-plane instance group changes; applied by `kops update cluster` \
                         and `kops rolling-update cluster`"
                    .to_string(),
            },
            ev.join("; "),
            ptrs,
        );
    }
}

fn suc_plan(c: &mut Ctx<'_>) {
    const VERSION: &str = "/spec/version";
    const CHANNEL: &str = "/spec/channel";
    if c.new.is_none() {
        c.push(
            ChangeKind::Other {
                detail: "upgrade Plan deleted: no further upgrades from it".to_string(),
            },
            "DELETE".to_string(),
            Vec::new(),
        );
        return;
    }
    let (ov, nv) = (c.old_str(VERSION), c.new_str(VERSION));
    let (oc, nc) = (c.old_str(CHANNEL), c.new_str(CHANNEL));
    let ptr_list = |c: &Ctx<'_>, p: &str| {
        if !c.full {
            return Vec::new();
        }
        let mut v = c.touched_under(p);
        if v.is_empty() {
            v.push(p.to_string());
        }
        v
    };
    if nv.is_some() && ov != nv {
        let ev = c.evidence(VERSION);
        let ptrs = ptr_list(c, VERSION);
        c.push(ChangeKind::KubernetesUpgrade { from: ov, to: nv }, ev, ptrs);
    } else if nv.is_none() && nc.is_some() && (oc != nc || ov.is_some()) {
        // No pinned version: the controller resolves the channel's latest release.
        let mut ptrs = ptr_list(c, CHANNEL);
        if ov.is_some() {
            ptrs.extend(ptr_list(c, VERSION));
        }
        let ev = format!("{}; {}", c.evidence(CHANNEL), c.evidence(VERSION));
        c.push(
            ChangeKind::UpgradeChannelChange {
                from: ov.or(oc),
                to: nc,
            },
            ev,
            ptrs,
        );
    }
}

fn etcd_cluster(c: &mut Ctx<'_>) {
    if c.lifecycle("EtcdCluster") {
        return;
    }
    let name = c.name();
    let n1 = name.clone();
    c.field("/spec/size", move |_, old, new| ChangeKind::EtcdScale {
        cluster: n1,
        from: old.and_then(Value::as_i64),
        to: new.and_then(Value::as_i64),
    });
    c.field("/spec/version", move |_, old, new| {
        ChangeKind::EtcdUpgrade {
            cluster: name,
            from: text_of(old),
            to: text_of(new),
        }
    });
    for p in [
        "/spec/repository",
        "/spec/imageRegistry",
        "/spec/storageSpec",
        "/spec/etcdOptions",
    ] {
        c.field(p, |_, _, _| ChangeKind::EtcdConfigChange {
            detail: format!("{} changes: members are recreated", Dotted(p)),
        });
    }
}

fn rancher_cluster(c: &mut Ctx<'_>) {
    if c.lifecycle("Rancher provisioning Cluster") {
        return;
    }
    c.field("/spec/kubernetesVersion", version_change);
    const DISABLE: &str = "/spec/rkeConfig/etcd/disableSnapshots";
    if c.changed(DISABLE) {
        let disabled = c.new_at(DISABLE).and_then(Value::as_bool) == Some(true);
        let kind = if disabled {
            ChangeKind::EtcdConfigChange {
                detail: "etcd snapshots are disabled".to_string(),
            }
        } else {
            ChangeKind::Other {
                detail: "etcd snapshots are (re-)enabled".to_string(),
            }
        };
        let ev = c.evidence(DISABLE);
        c.push(kind, ev, vec![DISABLE.to_string()]);
    }
    for (p, what) in [
        (
            "/spec/rkeConfig/etcd/s3",
            "etcd snapshot S3 target changes or is removed",
        ),
        (
            "/spec/rkeConfig/etcd/snapshotScheduleCron",
            "etcd snapshot schedule changes",
        ),
        (
            "/spec/rkeConfig/etcd/snapshotRetention",
            "etcd snapshot retention changes",
        ),
    ] {
        c.field(p, |_, _, _| ChangeKind::EtcdConfigChange {
            detail: what.to_string(),
        });
    }
    const RESTORE: &str = "/spec/rkeConfig/etcdSnapshotRestore";
    if c.changed(RESTORE) && c.new_at(&format!("{RESTORE}/name")).is_some() {
        let ev = c.evidence(RESTORE);
        let ptrs = c.pointers_under(RESTORE);
        let detail = format!(
            "restore of etcd snapshot `{}` requested",
            show(&c.new_str(&format!("{RESTORE}/name")))
        );
        c.push(ChangeKind::EtcdRestore { detail }, ev, ptrs);
    }
    let etcd_nodes = |v: Option<&Value>| -> Option<i64> {
        let pools = v?.pointer("/spec/rkeConfig/machinePools")?.as_array()?;
        Some(
            pools
                .iter()
                .filter(|p| p.get("etcdRole").and_then(Value::as_bool) == Some(true))
                .map(|p| p.get("quantity").and_then(Value::as_i64).unwrap_or(1))
                .sum(),
        )
    };
    let (from, to) = (etcd_nodes(c.old), etcd_nodes(c.new));
    if from != to {
        let ptrs = c.pointers_under("/spec/rkeConfig/machinePools");
        let cluster = c.name();
        c.push(
            ChangeKind::EtcdScale { cluster, from, to },
            format!(
                "spec.rkeConfig.machinePools (etcdRole) total quantity: {} -> {}",
                show(&from),
                show(&to)
            ),
            ptrs,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn under_matches_whole_segments() {
        assert!(under("/spec/version", "/spec/version"));
        assert!(under("/spec", ""));
        assert!(under("/spec/version/x", "/spec/version"));
        assert!(!under("/spec/versionX", "/spec/version"));
    }

    #[test]
    fn unknown_kind_is_not_gated() {
        let a = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "1"}});
        let b = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "2"}});
        let set = from_objects(Some(&a), Some(&b)).unwrap();
        assert!(set.changes.is_empty());
        assert!(!set.is_gated());
        assert!(set.notes[0].contains("ConfigMap x"), "{:?}", set.notes);
    }

    #[test]
    fn mismatched_kinds_and_names_are_errors() {
        let a = json!({"apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Cluster", "metadata": {"name": "a"}});
        let b = json!({"apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Cluster", "metadata": {"name": "b"}});
        let k = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
        assert!(from_objects(Some(&a), Some(&b)).is_err());
        assert!(from_objects(Some(&a), Some(&k)).is_err());
        assert!(from_objects(None, None).is_err());
        let err = from_objects(Some(&json!({"kind": "Cluster"})), None).unwrap_err();
        assert!(err.to_string().contains("old object"), "{err}");
        assert!(err.to_string().contains("apiVersion"), "{err}");
    }

    /// Every pair of fixture objects of one kind classifies without error.
    #[test]
    fn every_fixture_pair_of_a_kind_classifies() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/objects");
        let mut objects: Vec<(String, Value)> = Vec::new();
        for e in std::fs::read_dir(dir).expect("fixtures") {
            let path = e.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            if let Ok(v) = load_object(&bytes, &path.display().to_string()) {
                objects.push((path.display().to_string(), v));
            }
        }
        let mut pairs = 0;
        for (na, a) in &objects {
            for (nb, b) in &objects {
                if a["kind"] == b["kind"] && a["apiVersion"] == b["apiVersion"] {
                    let mut b = b.clone();
                    b["metadata"]["name"] = a["metadata"]["name"].clone();
                    from_objects(Some(a), Some(&b)).unwrap_or_else(|e| panic!("{na} -> {nb}: {e}"));
                    pairs += 1;
                }
            }
        }
        assert!(pairs > 20, "only {pairs} pairs");
    }

    #[test]
    fn deletion_timestamp_counts_as_deletion() {
        let a = json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "metadata": {"name": "a", "namespace": "ns"}});
        let mut b = a.clone();
        b["metadata"]["deletionTimestamp"] = json!("2026-11-23T10:00:00Z");
        let set = from_objects(Some(&a), Some(&b)).unwrap();
        assert!(matches!(
            set.changes[0].kind,
            ChangeKind::ClusterDeletion { .. }
        ));
        assert_eq!(set.changes[0].resource, "cluster.x-k8s.io/Cluster ns/a");
    }

    /// Every leaf of `v` changed (string, number, bool, null each to something else) and every
    /// object key removed, one edit per variant.
    fn variants(v: &Value) -> Vec<Value> {
        fn paths(v: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
            match v {
                Value::Object(m) => {
                    for (k, x) in m {
                        at.push(k.clone());
                        out.push(at.clone());
                        paths(x, at, out);
                        at.pop();
                    }
                }
                Value::Array(a) => {
                    for (i, x) in a.iter().enumerate() {
                        at.push(i.to_string());
                        paths(x, at, out);
                        at.pop();
                    }
                }
                _ => {}
            }
        }
        let mut all = Vec::new();
        paths(v, &mut Vec::new(), &mut all);
        let mut out = Vec::new();
        for path in all {
            let ptr: String = path
                .iter()
                .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
                .collect();
            if ptr == "/apiVersion" || ptr == "/kind" {
                continue;
            }
            let mut changed = v.clone();
            if let Some(x) = changed.pointer_mut(&ptr) {
                *x = match x {
                    Value::String(s) => Value::String(format!("{s}-changed")),
                    Value::Number(n) => json!(n.as_i64().unwrap_or(0) + 7),
                    Value::Bool(b) => Value::Bool(!*b),
                    Value::Null => json!("set"),
                    Value::Array(_) => json!([]),
                    Value::Object(_) => json!({"added": true}),
                };
                out.push(changed);
            }
            let (parent, key) = ptr.rsplit_once('/').unwrap();
            let mut removed = v.clone();
            if let Some(Value::Object(m)) = removed.pointer_mut(parent) {
                m.remove(&crate::json::unescape(key));
                out.push(removed);
            }
        }
        out
    }

    /// `KindsOnly` finds exactly the changes `Full` finds (kinds, values, resources, order,
    /// notes, creates_cluster), with empty evidence and pointers: on every fixture pair, on
    /// CREATE and DELETE of each fixture, and on every one-edit variant of each fixture.
    #[test]
    fn kinds_only_finds_what_full_finds() {
        let objects = crate::json::object_fixtures();
        let mut pairs: Vec<(Option<Value>, Option<Value>)> = Vec::new();
        for a in &objects {
            pairs.push((None, Some(a.clone())));
            pairs.push((Some(a.clone()), None));
            for b in &objects {
                pairs.push((Some(a.clone()), Some(b.clone())));
            }
            for v in variants(a) {
                pairs.push((Some(a.clone()), Some(v.clone())));
                pairs.push((Some(v), Some(a.clone())));
            }
        }
        let mut classified = 0;
        for (old, new) in &pairs {
            let (o, n) = (old.as_ref(), new.as_ref());
            let full = from_objects_with(o, n, Detail::Full);
            let lean = from_objects_with(o, n, Detail::KindsOnly);
            match (full, lean) {
                (Ok(mut full), Ok(lean)) => {
                    for c in &mut full.changes {
                        c.evidence.clear();
                        c.json_pointers.clear();
                    }
                    classified += usize::from(!full.changes.is_empty());
                    assert_eq!(full, lean, "{old:?} -> {new:?}");
                }
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                (a, b) => panic!("{old:?} -> {new:?}: {a:?} vs {b:?}"),
            }
        }
        assert!(
            classified > 300,
            "only {classified} of {} pairs had changes",
            pairs.len()
        );
    }
}
