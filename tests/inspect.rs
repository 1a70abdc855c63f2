//! `etcdguard inspect` (issue #22) against real etcd: the counts per resource and namespace are
//! what `etcdctl get --prefix --keys-only` lists on the live cluster the snapshot came from,
//! through creates, updates, deletes, a compaction and writes after it.

mod common;

use common::gate::{etcd_manager_store, BOTH};
use common::Etcd;
use serde_json::Value;
use std::collections::BTreeMap;

/// Kubernetes-shaped keys of every storage shape: namespaced and cluster-scoped resources,
/// `services/specs`, a custom resource of a group, keys outside `/registry/`.
fn write_cluster(etcd: &Etcd, pods: usize) {
    let mut ops = Vec::new();
    for ns in [
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "shop",
    ] {
        ops.push(format!(
            r#"put /registry/namespaces/{ns} {{"kind":"Namespace","metadata":{{"name":"{ns}"}}}}"#
        ));
    }
    for i in 0..pods {
        let ns = ["default", "kube-system", "shop"][i % 3];
        ops.push(format!(
            r#"put /registry/pods/{ns}/web-{i:04} {{"kind":"Pod","metadata":{{"name":"web-{i:04}","namespace":"{ns}"}},"spec":{{"nodeName":"node-{}"}}}}"#,
            i % 4
        ));
        if i % 5 == 0 {
            ops.push(format!(r#"put /registry/secrets/{ns}/s-{i:04} {{"kind":"Secret","data":{{"k":"dmFsdWU="}}}}"#));
        }
    }
    for n in 0..4 {
        ops.push(format!(
            r#"put /registry/minions/node-{n} {{"kind":"Node","metadata":{{"name":"node-{n}"}}}}"#
        ));
        ops.push(format!(
            r#"put /registry/leases/kube-node-lease/node-{n} {{"kind":"Lease"}}"#
        ));
        ops.push(format!(
            r#"put /registry/cilium.io/ciliumendpoints/shop/ep-{n} {{"kind":"CiliumEndpoint"}}"#
        ));
    }
    ops.push(r#"put /registry/services/specs/default/kubernetes {"kind":"Service"}"#.into());
    ops.push(r#"put /registry/services/endpoints/default/kubernetes {"kind":"Endpoints"}"#.into());
    ops.push(r#"put /registry/ranges/serviceips {"kind":"RangeAllocation"}"#.into());
    ops.push("put /calico/ipam/v2/host/node-0 x".into());
    ops.push("put compact_rev_key 1".into());
    for chunk in ops.chunks(50) {
        etcd.txn(chunk);
    }
}

/// Keys the live cluster holds, from `etcdctl get "" --prefix --keys-only`.
fn live_keys(etcd: &Etcd) -> Vec<String> {
    etcd.ctl_ok(&["get", "", "--prefix", "--keys-only"])
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn inspect(args: &[&str]) -> (Option<i32>, Value) {
    let mut all = vec!["inspect"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--output", "json"]);
    let out = common::etcdguard(&all);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), v)
}

/// `name → objects` of an inventory list.
fn objects(list: &Value, field: &str) -> BTreeMap<String, u64> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r[field].as_str().unwrap().to_string(),
                r["objects"].as_u64().unwrap(),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// The count `etcdctl get PREFIX --prefix --keys-only` gives for each resource reported.
fn etcdctl_counts(etcd: &Etcd, resources: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    resources
        .keys()
        .map(|r| {
            let prefix = match r.strip_prefix('/') {
                Some(_) => format!("{r}/"),
                None if r == "compact_rev_key" => r.clone(),
                None => format!("/registry/{r}/"),
            };
            let out = etcd.ctl_ok(&["get", &prefix, "--prefix", "--keys-only"]);
            (
                r.clone(),
                out.lines().filter(|l| !l.is_empty()).count() as u64,
            )
        })
        .collect()
}

/// Namespaced objects per namespace of the live cluster, read off its keys by hand.
fn namespace_counts(keys: &[String]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for k in keys {
        let Some(rest) = k.strip_prefix("/registry/") else {
            continue;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let ns = match parts.as_slice() {
            [group, _, ns, _] if group.contains('.') || *group == "services" => ns,
            [_, ns, _] => ns,
            _ => continue,
        };
        *out.entry(ns.to_string()).or_insert(0) += 1;
    }
    out
}

#[test]
fn counts_equal_etcdctl_on_the_live_cluster_through_updates_deletes_and_a_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start();
    write_cluster(&etcd, 300);
    // Updates (the pods again), deletes, then a compaction at the current revision, then more
    // of each after it.
    write_cluster(&etcd, 120);
    assert_eq!(
        etcd.ctl_ok(&["del", "/registry/pods/shop/", "--prefix"])
            .trim(),
        "100"
    );
    etcd.ctl_ok(&["del", "/registry/secrets/default/s-0000"]);
    let rev = etcd.revision();
    etcd.ctl_ok(&["compaction", &rev.to_string()]);
    write_cluster(&etcd, 30);
    etcd.ctl_ok(&["del", "/registry/minions/node-3"]);
    etcd.ctl_ok(&["del", "/registry/cilium.io/ciliumendpoints/", "--prefix"]);
    let snap = dir.path().join("a.db");
    etcd.snapshot_save(&snap);

    let (code, v) = inspect(&[snap.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{v:#}");
    let s = &v["snapshot"];
    let inv = &s["inventory"];
    let resources = objects(&inv["resources"], "resource");
    assert_eq!(resources, etcdctl_counts(&etcd, &resources), "{inv:#}");
    let keys = live_keys(&etcd);
    assert_eq!(
        resources.values().sum::<u64>(),
        keys.len() as u64,
        "{inv:#}"
    );
    assert_eq!(s["liveKeys"], keys.len(), "{s:#}");
    // Every shape is there: a group's resource, services/specs, outside /registry/.
    for r in [
        "pods",
        "minions",
        "services/specs",
        "/calico",
        "compact_rev_key",
        "ranges",
    ] {
        assert!(resources.contains_key(r), "{r} missing: {resources:?}");
    }
    // All endpoints were deleted: the resource is listed with 0 objects and its revisions.
    let eps = inv["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "cilium.io/ciliumendpoints")
        .unwrap();
    assert_eq!(eps["objects"], 0, "{eps:#}");
    assert!(eps["revisions"].as_u64().unwrap() >= 4, "{eps:#}");
    assert_eq!(
        objects(&inv["namespaces"], "namespace"),
        namespace_counts(&keys),
        "{inv:#}"
    );
    assert!(
        inv["oldestRevision"].as_i64().unwrap() > 1,
        "compacted: {inv:#}"
    );
    assert_eq!(s["freshClusterMarkers"], serde_json::json!([]), "{s:#}");
    let bytes: u64 = inv["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["bytes"].as_u64().unwrap())
        .sum();
    assert!(bytes > 300 * 60, "{inv:#}");
}

#[test]
fn a_fresh_cluster_shows_its_markers() {
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start();
    let mut ops = Vec::new();
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        ops.push(format!("put /registry/namespaces/{ns} x"));
    }
    ops.push("put /registry/pods/kube-system/etcd-0 x".into());
    ops.push("put /registry/configmaps/default/kube-root-ca.crt x".into());
    etcd.txn(&ops);
    let snap = dir.path().join("fresh.db");
    etcd.snapshot_save(&snap);
    let (code, v) = inspect(&[snap.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{v:#}");
    let ids: Vec<&str> = v["snapshot"]["freshClusterMarkers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["never-compacted", "built-in-namespaces-only"],
        "{v:#}"
    );
}

/// Two backups of one cluster in an etcd-manager store; `inspect --store` reads the newest valid
/// one, `--backup` another, `--diff` names what changed between them.
#[test]
fn a_store_backup_and_a_diff_between_two() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("main");
    std::fs::create_dir_all(&store).unwrap();
    let etcd = Etcd::start();
    write_cluster(&etcd, 90);
    let a = dir.path().join("a.db");
    etcd.snapshot_save(&a);
    etcd_manager_store(&store, &a, &["2026-11-23T06:00:00Z"], BOTH);
    assert_eq!(
        etcd.ctl_ok(&["del", "/registry/pods/shop/", "--prefix"])
            .trim(),
        "30"
    );
    etcd.ctl_ok(&["del", "/registry/namespaces/shop"]);
    etcd.ctl_ok(&["put", "/registry/jobs/default/j", "x"]);
    let b = dir.path().join("b.db");
    etcd.snapshot_save(&b);
    etcd_manager_store(&store, &b, &["2026-11-23T07:00:00Z"], BOTH);
    let st = store.to_str().unwrap();

    let (code, newest) = inspect(&["--store", st]);
    assert_eq!(code, Some(0), "{newest:#}");
    assert!(
        newest["snapshot"]["snapshot"]
            .as_str()
            .unwrap()
            .ends_with("2026-11-23T07:00:00Z-000001"),
        "{newest:#}"
    );
    let pods = objects(&newest["snapshot"]["inventory"]["resources"], "resource")["pods"];
    assert_eq!(pods, 60);

    let (code, v) = inspect(&[
        "--store",
        st,
        "--backup",
        "2026-11-23T06:00:00Z-000001",
        "--diff",
        "2026-11-23T07:00:00Z-000001",
    ]);
    assert_eq!(code, Some(0), "{v:#}");
    let changes: BTreeMap<String, String> = v["diff"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap().into(),
                d["change"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        changes.get("pods").map(String::as_str),
        Some("shrank"),
        "{v:#}"
    );
    assert_eq!(
        changes.get("namespaces").map(String::as_str),
        Some("shrank"),
        "{v:#}"
    );
    assert_eq!(
        changes.get("jobs").map(String::as_str),
        Some("appeared"),
        "{v:#}"
    );
    let ns: Vec<(&str, &str)> = v["diff"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["name"].as_str().unwrap(), d["change"].as_str().unwrap()))
        .collect();
    assert!(ns.contains(&("shop", "shrank")), "{v:#}");

    // The same diff between the two files, and the text form names the changes.
    let out = common::etcdguard(&[
        "inspect",
        a.to_str().unwrap(),
        "--diff",
        b.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("RESOURCE") && text.contains("NAMESPACE"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("pods") && l.contains("shrank")),
        "{text}"
    );

    // A name the store does not hold is a one-line error naming the newest backup.
    let (code, v) = inspect(&["--store", st, "--backup", "nope"]);
    assert_eq!(code, Some(2), "{v:#}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("holds no backup named \"nope\""),
        "{v:#}"
    );
}

#[test]
fn a_broken_snapshot_has_no_counts_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start();
    write_cluster(&etcd, 30);
    let snap = dir.path().join("a.db");
    etcd.snapshot_save(&snap);
    let mut bytes = std::fs::read(&snap).unwrap();
    let n = bytes.len();
    bytes[n - 100] ^= 0xff; // inside the sha256 trailer's coverage
    let bad = dir.path().join("bad.db");
    std::fs::write(&bad, &bytes).unwrap();
    let (code, v) = inspect(&[bad.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(v["snapshot"]["valid"], false);
    assert!(
        !v["snapshot"]["problems"].as_array().unwrap().is_empty(),
        "{v:#}"
    );
}
