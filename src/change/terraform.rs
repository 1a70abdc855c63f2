//! Terraform plans of kops' `--target terraform` output (`terraform show -json <planfile>`).
//!
//! kops renders `control/etcd-cluster-spec` as `aws_s3_object "etcd-cluster-spec-<name>"`
//! (older providers: `aws_s3_bucket_object`; GCE: `google_storage_bucket_object`) whose
//! `content` is the spec JSON. A plan that **creates** that object means the spec is absent
//! from the store: etcd-manager seeds a new cluster. An **update** of its content is an etcd
//! scale or upgrade, compared by value.
//!
//! Caveat: Terraform plans a create when the object is not in Terraform **state**. After a
//! switch from `--target direct` to `--target terraform` (or with a lost state) the object may
//! still exist in the bucket; a note on the [`ChangeSet`] says so, and the gate should confirm
//! the spec's absence in the store before calling the cluster re-seeded.

use super::spec::{self, EtcdClusterSpec};
use super::{Change, ChangeError, ChangeKind, ChangeSet};
use serde_json::Value;

const EXPECTED: &str = "a Terraform JSON plan (`terraform show -json <planfile>`)";

const OBJECT_TYPES: &[&str] = &[
    "aws_s3_object",
    "aws_s3_bucket_object",
    "google_storage_bucket_object",
];

/// Classify a Terraform JSON plan. `input` names the plan in errors.
///
/// Recognized resources (by `type` and `name`, so module addresses work):
/// - `etcd-cluster-spec-<cluster>` objects: create ⇒ [`ChangeKind::SeedsNewCluster`]; replace
///   to a different bucket/key ⇒ [`ChangeKind::SeedsNewCluster`] at the new location; update
///   (or in-place replace) ⇒ [`ChangeKind::EtcdScale`]/[`ChangeKind::EtcdUpgrade`] by value, or
///   [`ChangeKind::EtcdConfigChange`] when the content is unknown until apply; delete ⇒
///   [`ChangeKind::EtcdSpecRemoved`];
/// - `cluster-completed.spec` objects: a `spec.kubernetesVersion` change ⇒
///   [`ChangeKind::KubernetesUpgrade`];
/// - updated control-plane `aws_launch_template`s ⇒ [`ChangeKind::Other`].
///
/// Errors when the input is not JSON, or is JSON without `format_version` and
/// `resource_changes` (for example a state file rather than a plan).
pub fn from_terraform_plan(json: &[u8], input: &str) -> Result<ChangeSet, ChangeError> {
    let plan: Value = crate::json::value_from_slice(json).map_err(|e| ChangeError::Syntax {
        input: input.to_string(),
        format: "JSON",
        detail: e.to_string(),
    })?;
    let Some(obj) = plan.as_object() else {
        return Err(ChangeError::NotRecognized {
            input: input.to_string(),
            expected: EXPECTED,
            detail: "top level is not a JSON object".to_string(),
        });
    };
    if !obj.contains_key("format_version") {
        return Err(ChangeError::NotRecognized {
            input: input.to_string(),
            expected: EXPECTED,
            detail: "no `format_version` key".to_string(),
        });
    }
    let changes = match obj.get("resource_changes") {
        Some(Value::Array(a)) => a.as_slice(),
        Some(_) => {
            return Err(ChangeError::NotRecognized {
                input: input.to_string(),
                expected: EXPECTED,
                detail: "`resource_changes` is not an array".to_string(),
            })
        }
        None if obj.contains_key("values") && !obj.contains_key("planned_values") => {
            return Err(ChangeError::NotRecognized {
                input: input.to_string(),
                expected: EXPECTED,
                detail: "this is a state (`values` without `resource_changes`); run \
                         `terraform plan -out p` and `terraform show -json p`"
                    .to_string(),
            })
        }
        None => &[],
    };
    let mut set = ChangeSet::default();
    for (i, rc) in changes.iter().enumerate() {
        classify(i, rc, &mut set);
    }
    Ok(set)
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn location(v: &Value) -> Option<String> {
    let bucket = str_at(v, "bucket")?;
    let key = str_at(v, "key").or_else(|| str_at(v, "name"))?;
    let scheme = if v.get("key").is_some() { "s3" } else { "gs" };
    Some(format!("{scheme}://{bucket}/{key}"))
}

/// One `resource_changes[i]` entry of a plan, as the classifiers read it.
struct PlannedChange<'a> {
    i: usize,
    address: String,
    /// The actions, joined (`create,delete`), for evidence.
    acts: String,
    change: &'a Value,
    before: Option<&'a Value>,
    after: Option<&'a Value>,
    creates: bool,
    deletes: bool,
    updates: bool,
}

impl PlannedChange<'_> {
    /// The JSON pointer of `field` on one side (`before`, `after`) of this change.
    fn ptr(&self, side: &str, field: &str) -> String {
        format!("/resource_changes/{}/change/{side}/{field}", self.i)
    }

    fn push(&self, set: &mut ChangeSet, kind: ChangeKind, evidence: String, pointers: Vec<String>) {
        set.changes.push(Change {
            kind,
            resource: self.address.clone(),
            evidence,
            json_pointers: pointers,
        })
    }
}

fn classify(i: usize, rc: &Value, set: &mut ChangeSet) {
    let (Some(ty), Some(name)) = (str_at(rc, "type"), str_at(rc, "name")) else {
        return;
    };
    let change = rc.get("change").unwrap_or(&Value::Null);
    let actions: Vec<&str> = change
        .get("actions")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let planned = PlannedChange {
        i,
        address: str_at(rc, "address").unwrap_or(name).to_string(),
        acts: actions.join(","),
        change,
        before: change.get("before").filter(|v| !v.is_null()),
        after: change.get("after").filter(|v| !v.is_null()),
        creates: actions.contains(&"create"),
        deletes: actions.contains(&"delete"),
        updates: actions.contains(&"update"),
    };
    let rc = &planned;
    if !(rc.creates || rc.deletes || rc.updates) {
        return; // no-op, read
    }
    if OBJECT_TYPES.contains(&ty) {
        if let Some(cluster) = spec::cluster_of(name) {
            etcd_cluster_spec(rc, cluster, set);
            return;
        }
        if name.contains("cluster-completed") && rc.creates && rc.before.is_none() {
            set.creates_cluster = true;
        }
        if name.contains("cluster-completed") && rc.updates {
            cluster_completed(rc, set);
        }
        return;
    }
    if ty == "aws_launch_template"
        && rc.updates
        && (name.contains("master") || name.contains("control-plane"))
    {
        rc.push(
            set,
            ChangeKind::Other {
                detail: "control-plane launch template changes; applied by `kops rolling-update \
                         cluster`"
                    .to_string(),
            },
            format!("{}: actions [{}]", rc.address, rc.acts),
            vec![format!("/resource_changes/{i}/change")],
        );
    }
}

/// A change of etcd-manager's `etcd-cluster-spec` object for etcd cluster `cluster`: created
/// where none was (seeds a new cluster), deleted, or its content changed.
fn etcd_cluster_spec(rc: &PlannedChange<'_>, cluster: &str, set: &mut ChangeSet) {
    let (address, acts) = (&rc.address, &rc.acts);
    let (before, after, change) = (rc.before, rc.after, rc.change);
    let (creates, deletes) = (rc.creates, rc.deletes);
    let before_loc = before.and_then(location);
    let after_loc = after.and_then(location);
    if creates && (before.is_none() || before_loc != after_loc) {
        let evidence = match &before_loc {
            Some(b) => format!(
                "{address}: actions [{acts}], {} -> {}",
                b,
                super::show(&after_loc)
            ),
            None => format!(
                "{address}: actions [{acts}], creates {}",
                super::show(&after_loc)
            ),
        };
        set.notes.push(format!(
            "{address}: Terraform creates objects missing from its state; confirm that \
             {} is absent from the store",
            super::show(&after_loc)
        ));
        rc.push(
            set,
            ChangeKind::SeedsNewCluster {
                cluster: cluster.to_string(),
                location: after_loc,
            },
            evidence,
            vec![rc.ptr("after", "key")],
        );
        return;
    }
    if deletes && !creates {
        rc.push(
            set,
            ChangeKind::EtcdSpecRemoved {
                cluster: cluster.to_string(),
            },
            format!(
                "{address}: actions [{acts}], deletes {}",
                super::show(&before_loc)
            ),
            vec![rc.ptr("before", "key")],
        );
        return;
    }
    // Update, or replace in place: compare contents by value.
    let content_unknown = change
        .get("after_unknown")
        .and_then(|u| u.get("content"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let old = before.and_then(|b| str_at(b, "content"));
    let new = after.and_then(|a| str_at(a, "content"));
    let pointers = vec![rc.ptr("before", "content"), rc.ptr("after", "content")];
    match (
        old.map(EtcdClusterSpec::parse),
        new.map(EtcdClusterSpec::parse),
    ) {
        (Some(Some(o)), Some(Some(n))) => {
            let evidence = format!(
                "{address}: actions [{acts}], content {} -> {}",
                compact(old.unwrap_or("")),
                compact(new.unwrap_or(""))
            );
            let found = spec::compare(cluster, &o, &n, address, &evidence, &pointers);
            if found.is_empty() {
                rc.push(
                    set,
                    ChangeKind::Other {
                        detail: "etcd-cluster-spec content differs only in formatting; \
                                 values are unchanged"
                            .to_string(),
                    },
                    evidence,
                    pointers,
                );
            } else {
                set.changes.extend(found);
            }
        }
        _ => {
            let why = if content_unknown {
                "content is known only after apply"
            } else {
                "content is missing or not JSON"
            };
            rc.push(
                set,
                ChangeKind::EtcdConfigChange {
                    detail: format!(
                        "etcd-cluster-spec for `{cluster}` changes; {why}: cannot tell \
                         whether member count or etcd version change"
                    ),
                },
                format!("{address}: actions [{acts}]"),
                pointers,
            );
        }
    }
}

/// `cluster-completed.spec` updated: a Kubernetes version change is a control-plane upgrade.
fn cluster_completed(rc: &PlannedChange<'_>, set: &mut ChangeSet) {
    let (address, before, after) = (&rc.address, rc.before, rc.after);
    let version = |side: Option<&Value>| -> Option<String> {
        let text = side.and_then(|s| str_at(s, "content"))?;
        let doc: Value =
            crate::json::value_from_deserializer(serde_yaml_ng::Deserializer::from_str(text))
                .ok()?;
        doc.pointer("/spec/kubernetesVersion")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let (from, to) = (version(before), version(after));
    if from != to && (from.is_some() || to.is_some()) {
        let evidence = format!(
            "{address}: spec.kubernetesVersion {} -> {}",
            super::show(&from),
            super::show(&to)
        );
        rc.push(
            set,
            ChangeKind::KubernetesUpgrade { from, to },
            evidence,
            vec![rc.ptr("before", "content"), rc.ptr("after", "content")],
        );
    }
}

/// The JSON text on one line (for evidence), or the raw text when it is not JSON.
fn compact(text: &str) -> String {
    crate::json::value_from_str(text)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| super::OneLine(text).to_string())
}
