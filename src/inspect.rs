//! What a snapshot's Kubernetes content says (issue #22, `etcdguard inspect`): markers of a
//! freshly seeded cluster, and what changed between two snapshots. Pure: the counts come from
//! the verification pass ([`crate::snapshot::inventory`]).
//!
//! ```
//! use etcdguard::inspect::{diff, Change};
//! use etcdguard::snapshot::inventory::{Inventory, ResourceCount};
//!
//! let inv = |pods| Inventory {
//!     resources: vec![ResourceCount { resource: "pods".into(), objects: Some(pods), revisions: pods, bytes: None }],
//!     namespaces: None,
//!     oldest_revision: Some(1),
//! };
//! let d = diff(&inv(40), &inv(10));
//! assert_eq!(d.resources[0].change, Change::Shrank);
//! ```

use crate::snapshot::inventory::Inventory;
use crate::snapshot::SnapshotReport;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The namespaces kube-apiserver creates in every cluster (`pkg/controlplane`: the system
/// namespaces controller and `default`).
pub const BUILT_IN_NAMESPACES: [&str; 4] =
    ["default", "kube-node-lease", "kube-public", "kube-system"];

/// A sign, seen in the snapshot, that it holds a freshly seeded cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Marker {
    /// `no-kubernetes-objects`, `never-compacted` or `built-in-namespaces-only`.
    pub id: &'static str,
    pub detail: String,
}

/// The markers of a fresh cluster that `r` shows. Each alone is weak (a small test cluster
/// has only built-in namespaces); together they describe a cluster minutes old.
pub fn fresh_markers(r: &SnapshotReport) -> Vec<Marker> {
    let Some(inv) = &r.inventory else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let kubernetes = inv.resources.iter().any(|c| !c.resource.starts_with('/'));
    if !kubernetes {
        out.push(Marker {
            id: "no-kubernetes-objects",
            detail: "no key below /registry/: no Kubernetes object at all".into(),
        });
    }
    if r.finished_compact_revision.is_none() {
        out.push(Marker {
            id: "never-compacted",
            detail: format!(
                "never compacted (kube-apiserver compacts every 5 minutes by default); the history reaches back to revision {}",
                inv.oldest_revision.map_or_else(|| "-".into(), |r| r.to_string())
            ),
        });
    }
    if let (true, Some(ns)) = (kubernetes, &inv.namespaces) {
        let live = |n: &&crate::snapshot::inventory::NamespaceCount| n.objects != Some(0);
        if ns
            .iter()
            .filter(live)
            .all(|n| BUILT_IN_NAMESPACES.contains(&n.namespace.as_str()))
        {
            out.push(Marker {
                id: "built-in-namespaces-only",
                detail: format!(
                    "objects only in the namespaces every cluster has ({})",
                    BUILT_IN_NAMESPACES.join(", ")
                ),
            });
        }
    }
    out
}

/// How one resource or namespace changed between two snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    Appeared,
    Vanished,
    Grew,
    Shrank,
}

/// Objects and bytes on one side of a diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Side {
    pub objects: Option<u64>,
    pub bytes: Option<u64>,
}

/// One changed resource or namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delta {
    /// The resource (storage prefix) or the namespace.
    pub name: String,
    pub change: Change,
    /// In the first snapshot (the one inspected).
    pub before: Side,
    /// In the other snapshot (`--diff OTHER`).
    pub after: Side,
}

/// What changed from `before` to `after`; unchanged entries are left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub resources: Vec<Delta>,
    pub namespaces: Vec<Delta>,
}

fn deltas(before: Vec<(String, Side)>, after: Vec<(String, Side)>) -> Vec<Delta> {
    let before: BTreeMap<String, Side> = before.into_iter().collect();
    let after: BTreeMap<String, Side> = after.into_iter().collect();
    let names: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let gone = |s: Option<Side>| s.is_none_or(|s| s.objects == Some(0));
    names
        .into_iter()
        .filter_map(|n| {
            let (b, a) = (before.get(n).copied(), after.get(n).copied());
            let change = match (gone(b), gone(a)) {
                (true, true) => return None,
                (true, false) => Change::Appeared,
                (false, true) => Change::Vanished,
                (false, false) => {
                    let (b, a) = (b.unwrap_or_default(), a.unwrap_or_default());
                    match (b.objects, a.objects) {
                        (Some(x), Some(y)) if y > x => Change::Grew,
                        (Some(x), Some(y)) if y < x => Change::Shrank,
                        _ => match (b.bytes, a.bytes) {
                            (Some(x), Some(y)) if y > x => Change::Grew,
                            (Some(x), Some(y)) if y < x => Change::Shrank,
                            _ => return None,
                        },
                    }
                }
            };
            Some(Delta {
                name: n.clone(),
                change,
                before: b.unwrap_or_default(),
                after: a.unwrap_or_default(),
            })
        })
        .collect()
}

/// Compare the inventories of two snapshots.
pub fn diff(before: &Inventory, after: &Inventory) -> Diff {
    let resources = |i: &Inventory| {
        i.resources
            .iter()
            .map(|c| {
                (
                    c.resource.clone(),
                    Side {
                        objects: c.objects,
                        bytes: c.bytes,
                    },
                )
            })
            .collect()
    };
    let namespaces = |i: &Inventory| {
        i.namespaces
            .iter()
            .flatten()
            .map(|c| {
                (
                    c.namespace.clone(),
                    Side {
                        objects: c.objects,
                        bytes: Some(c.bytes),
                    },
                )
            })
            .collect()
    };
    Diff {
        resources: deltas(resources(before), resources(after)),
        namespaces: deltas(namespaces(before), namespaces(after)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::inventory::{NamespaceCount, ResourceCount};

    fn inv(resources: &[(&str, u64)], namespaces: &[(&str, u64)]) -> Inventory {
        Inventory {
            resources: resources
                .iter()
                .map(|&(r, n)| ResourceCount {
                    resource: r.into(),
                    objects: Some(n),
                    revisions: n,
                    bytes: Some(n * 100),
                })
                .collect(),
            namespaces: Some(
                namespaces
                    .iter()
                    .map(|&(ns, n)| NamespaceCount {
                        namespace: ns.into(),
                        objects: Some(n),
                        bytes: n * 100,
                    })
                    .collect(),
            ),
            oldest_revision: Some(2),
        }
    }

    #[test]
    fn a_diff_names_what_appeared_vanished_grew_and_shrank() {
        let a = inv(
            &[
                ("pods", 10),
                ("secrets", 5),
                ("configmaps", 3),
                ("leases", 2),
            ],
            &[("apps", 10)],
        );
        let b = inv(
            &[
                ("pods", 4),
                ("secrets", 5),
                ("configmaps", 0),
                ("leases", 3),
                ("jobs", 1),
            ],
            &[("web", 4)],
        );
        let d = diff(&a, &b);
        let got: Vec<(&str, Change)> = d
            .resources
            .iter()
            .map(|x| (x.name.as_str(), x.change))
            .collect();
        assert_eq!(
            got,
            [
                ("configmaps", Change::Vanished),
                ("jobs", Change::Appeared),
                ("leases", Change::Grew),
                ("pods", Change::Shrank)
            ]
        );
        let ns: Vec<(&str, Change)> = d
            .namespaces
            .iter()
            .map(|x| (x.name.as_str(), x.change))
            .collect();
        assert_eq!(ns, [("apps", Change::Vanished), ("web", Change::Appeared)]);
    }

    #[test]
    fn a_fresh_cluster_shows_its_markers_and_a_used_one_does_not() {
        let fresh = inv(
            &[("namespaces", 4), ("pods", 8)],
            &[("kube-system", 8), ("default", 1)],
        );
        let mut r = crate::snapshot::verify_reader(&[][..], "t", &Default::default()).unwrap();
        r.inventory = Some(fresh);
        let ids: Vec<&str> = fresh_markers(&r).iter().map(|m| m.id).collect();
        assert_eq!(ids, ["never-compacted", "built-in-namespaces-only"]);
        r.finished_compact_revision = Some(1200);
        r.inventory = Some(inv(&[("pods", 8)], &[("kube-system", 8), ("shop", 3)]));
        assert!(fresh_markers(&r).is_empty());
        r.inventory = Some(inv(&[("/calico", 8)], &[]));
        let ids: Vec<&str> = fresh_markers(&r).iter().map(|m| m.id).collect();
        assert_eq!(ids, ["no-kubernetes-objects"]);
    }
}
