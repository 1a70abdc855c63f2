//! `snapshot.continuity` end to end (issue #22): real etcd clusters with Kubernetes-shaped keys,
//! backed up into a local etcd-manager store; the built binary's `status` and `check`.

mod common;

use common::gate::{etcd_manager_store, BOTH};
use common::Etcd;
use serde_json::Value;
use std::path::Path;

const A1: &str = "2026-11-23T06:00:00Z";
const A2: &str = "2026-11-23T07:00:00Z";
const LATER: &str = "2026-11-23T08:15:00Z";
const NOW: &str = "2026-11-23T08:30:00Z";

/// The folder etcd-manager names a backup taken at `t` (first of its run).
fn folder(t: &str) -> String {
    format!("{t}-000001")
}

/// What a small Kubernetes cluster writes: namespaces, pods, deployments, config maps, leases
/// and API services, as JSON values of realistic size.
fn kubernetes_keys(etcd: &Etcd, pods: usize) {
    let mut ops: Vec<String> = ["default", "kube-system", "kube-public", "kube-node-lease", "apps"]
        .iter()
        .map(|ns| {
            format!(
                r#"put /registry/namespaces/{ns} {{"kind":"Namespace","apiVersion":"v1","metadata":{{"name":"{ns}"}},"status":{{"phase":"Active"}}}}"#
            )
        })
        .collect();
    for i in 0..pods {
        let ns = ["default", "kube-system", "apps"][i % 3];
        ops.push(format!(
            r#"put /registry/pods/{ns}/web-{i:04} {{"kind":"Pod","apiVersion":"v1","metadata":{{"name":"web-{i:04}","namespace":"{ns}","labels":{{"app":"web"}}}},"spec":{{"containers":[{{"name":"web","image":"nginx:1.27"}}],"nodeName":"node-{}"}},"status":{{"phase":"Running"}}}}"#,
            i % 5
        ));
        if i % 4 == 0 {
            ops.push(format!(
                r#"put /registry/configmaps/{ns}/cm-{i:04} {{"kind":"ConfigMap","apiVersion":"v1","metadata":{{"name":"cm-{i:04}"}},"data":{{"key":"value-{i}"}}}}"#
            ));
        }
    }
    for n in 0..5 {
        ops.push(format!(
            r#"put /registry/leases/kube-node-lease/node-{n} {{"kind":"Lease","apiVersion":"coordination.k8s.io/v1","spec":{{"holderIdentity":"node-{n}"}}}}"#
        ));
    }
    ops.push(r#"put /registry/deployments/apps/web {"kind":"Deployment","apiVersion":"apps/v1","spec":{"replicas":3}}"#.to_string());
    ops.push(r#"put /registry/apiregistration.k8s.io/apiservices/v1.apps {"kind":"APIService","spec":{"group":"apps","version":"v1"}}"#.to_string());
    for chunk in ops.chunks(100) {
        etcd.txn(chunk);
    }
}

/// `etcdctl snapshot save` of `etcd` into the store as the etcd-manager backup taken at `t`.
fn backup(etcd: &Etcd, store: &Path, t: &str) -> std::path::PathBuf {
    let snap = store
        .parent()
        .unwrap()
        .join(format!("{}.db", t.replace(':', "")));
    etcd.snapshot_save(&snap);
    etcd_manager_store(store, &snap, &[t], BOTH);
    snap
}

/// A fresh store directory (beside it, the raw snapshots).
fn new_store() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("main");
    std::fs::create_dir_all(&store).unwrap();
    (dir, store)
}

fn status(store: &Path) -> Value {
    let out = common::etcdguard(&[
        "status",
        "--store",
        store.to_str().unwrap(),
        "--now",
        NOW,
        "--output",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn check(store: &Path, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec![
        "check",
        "--store",
        store.to_str().unwrap(),
        "--now",
        NOW,
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    let out = common::etcdguard(&args);
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
    )
}

fn continuity_findings(v: &Value) -> Vec<&Value> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "snapshot.continuity")
        .collect()
}

#[test]
fn a_new_cluster_backed_up_into_the_store_is_denied_naming_both_backups() {
    let (_dir, store) = new_store();
    let a = Etcd::start_named("etcd-a");
    kubernetes_keys(&a, 300);
    backup(&a, &store, A1);
    kubernetes_keys(&a, 320);
    backup(&a, &store, A2);
    // A new etcd with a new data dir: what etcd-manager seeds without etcd-cluster-created.
    let b = Etcd::start_named("etcd-a");
    kubernetes_keys(&b, 3);
    backup(&b, &store, LATER);

    let s = status(&store);
    let c = &s["continuity"];
    assert_eq!(c["state"], "new-cluster", "{c:#}");
    let msg = c["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!(
            "the newest backups hold a NEW cluster seeded around {LATER} (revision {}, ",
            c["newest"]["revision"]
        )),
        "{msg}"
    );
    assert!(msg.contains(&folder(LATER)), "{msg}");
    assert!(
        msg.contains(&format!(
            "the last backup of the previous cluster is {} (revision",
            folder(A2)
        )),
        "{msg}"
    );
    assert!(msg.contains("age 1h 30m"), "{msg}");
    // A2 is not the first backup of its UTC day: kept 7 days as its hour's oldest.
    assert_eq!(
        c["retention"]["deletedAround"], "2026-11-30T07:00:00Z",
        "{c:#}"
    );
    assert_eq!(c["before"]["name"], folder(A2));
    assert_eq!(c["after"]["name"], folder(LATER));

    let (code, v) = check(&store, &[]);
    assert_eq!(code, Some(1), "{v:#}");
    let f = continuity_findings(&v);
    assert_eq!(f.len(), 1, "{v:#}");
    assert_eq!(f[0]["severity"], "deny");
    let m = f[0]["message"].as_str().unwrap();
    assert!(m.contains(&folder(A2)) && m.contains(&folder(LATER)), "{m}");

    // The new cluster, live, compared with a store that holds only cluster A's backups.
    let (_dir2, only_a) = new_store();
    backup(&a, &only_a, A1);
    backup(&a, &only_a, A2);
    let (code, v) = check(&only_a, &["--etcd-endpoints", &b.endpoint]);
    assert_eq!(code, Some(1), "{v:#}");
    let live: Vec<_> = continuity_findings(&v)
        .into_iter()
        .filter(|f| f["message"].as_str().unwrap().starts_with("live etcd"))
        .collect();
    assert_eq!(live.len(), 1, "{v:#}");
    assert_eq!(live[0]["severity"], "deny");
    assert!(
        live[0]["message"]
            .as_str()
            .unwrap()
            .contains("NOT the cluster in the backups"),
        "{v:#}"
    );
    // Cluster A itself, live, continues its backups.
    let (code, v) = check(&only_a, &["--etcd-endpoints", &a.endpoint]);
    assert_eq!(code, Some(0), "{v:#}");
    assert!(
        continuity_findings(&v)
            .iter()
            .all(|f| f["severity"] == "info"),
        "{v:#}"
    );
}

#[test]
fn a_restore_of_the_last_backup_is_reported_as_a_restore_without_deny() {
    let (_dir, store) = new_store();
    let a = Etcd::start_named("etcd-a");
    kubernetes_keys(&a, 200);
    backup(&a, &store, A1);
    kubernetes_keys(&a, 220);
    let last = backup(&a, &store, A2);
    drop(a);
    // `etcdctl snapshot restore` of A's last backup into a new data dir, started, backed up.
    let r = Etcd::start_restored("etcd-r", &last);
    assert!(r
        .ctl_ok(&["get", "/registry/namespaces/default", "--print-value-only"])
        .contains("Namespace"));
    r.put("/registry/leases/kube-node-lease/node-0", "renewed");
    backup(&r, &store, LATER);

    let c = status(&store)["continuity"].clone();
    assert_eq!(c["state"], "restored", "{c:#}");
    assert_eq!(c["before"]["name"], folder(A2), "{c:#}");
    assert_eq!(c["after"]["name"], folder(LATER), "{c:#}");
    let msg = c["message"].as_str().unwrap();
    // etcd 3.4's restore adds the new member beside the old ones (its delete of the old
    // members goes to the key space, not the members bucket).
    assert!(
        msg.contains("RESTORED") && msg.contains("members etcd-a → etcd-a,etcd-r"),
        "{msg}"
    );

    let (code, v) = check(&store, &[]);
    assert_eq!(code, Some(0), "{v:#}");
    let f = continuity_findings(&v);
    assert_eq!(f.len(), 1, "{v:#}");
    assert_eq!(f[0]["severity"], "info");
}

/// A store with a backup of a small cluster, then one after deleting the `deleted` keys below
/// `prefix`.
fn store_after_deleting(prefix: &str, deleted: usize) -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, store) = new_store();
    let a = Etcd::start_named("etcd-a");
    kubernetes_keys(&a, 300);
    backup(&a, &store, A2);
    let out = a.ctl_ok(&["del", prefix, "--prefix"]);
    assert_eq!(out.trim(), deleted.to_string());
    backup(&a, &store, LATER);
    (dir, store)
}

#[test]
fn most_keys_deleted_warns() {
    let (_dir, store) = store_after_deleting("/registry/pods/", 300);

    let c = status(&store)["continuity"].clone();
    assert_eq!(c["state"], "collapsed", "{c:#}");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .starts_with("live keys fell from "),
        "{c:#}"
    );
    assert_eq!(c["shrunk"][0]["resource"], "pods", "{c:#}");
    assert_eq!(
        (&c["shrunk"][0]["before"], &c["shrunk"][0]["after"]),
        (&Value::from(300), &Value::from(0)),
        "{c:#}"
    );

    let (code, v) = check(&store, &[]);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["verdict"], "warn", "{v:#}");
    let f = continuity_findings(&v);
    assert_eq!(f[0]["severity"], "warn", "{v:#}");
}

#[test]
fn one_resource_losing_most_objects_warns_naming_it() {
    // 75 config maps of 397 keys: live keys fall by a fifth, config maps to none.
    let (_dir, store) = store_after_deleting("/registry/configmaps/", 75);

    let c = status(&store)["continuity"].clone();
    assert_eq!(c["state"], "collapsed", "{c:#}");
    let msg = c["message"].as_str().unwrap();
    assert!(
        msg.starts_with("objects of 1 resource(s) fell by more than half")
            && msg.contains("shrank: configmaps 75 → 0"),
        "{c:#}"
    );
    assert_eq!(c["shrunk"].as_array().unwrap().len(), 1, "{c:#}");
}

#[test]
fn one_valid_backup_is_not_checked() {
    let (_dir, store) = new_store();
    let a = Etcd::start_named("etcd-a");
    kubernetes_keys(&a, 10);
    backup(&a, &store, LATER);
    let c = status(&store)["continuity"].clone();
    assert_eq!(c["state"], "not-checked", "{c:#}");
    let out = common::etcdguard(&["status", "--store", store.to_str().unwrap(), "--now", NOW]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("continuity: not checked: fewer than two valid backups"),
        "{text}"
    );
}

#[test]
fn a_backup_older_than_the_etcd_version_the_change_sets_warns() {
    let (_dir, store) = new_store();
    let a = Etcd::start_named("etcd-a");
    kubernetes_keys(&a, 20);
    backup(&a, &store, A2);
    kubernetes_keys(&a, 25);
    backup(&a, &store, LATER);
    // etcd 3.4 writes cluster version 3.4.0; the kops dry-run moves etcd to 3.6.12.
    let dry_run =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kops/modify-etcd-version.txt");
    let (code, v) = check(&store, &["--kops-dry-run", dry_run.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{v:#}");
    let fit: Vec<_> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "snapshot.version-fit")
        .collect();
    assert_eq!(fit.len(), 1, "{v:#}");
    assert_eq!(fit[0]["severity"], "warn", "{v:#}");
    let m = fit[0]["message"].as_str().unwrap();
    assert!(
        m.contains("cluster version 3.4.0") && m.contains("but the change sets etcd 3.6.12"),
        "{m}"
    );
    // The live cluster runs the backup's minor: it fits.
    let (code, v) = check(&store, &["--etcd-endpoints", &a.endpoint]);
    assert_eq!(code, Some(0), "{v:#}");
    let fit: Vec<_> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "snapshot.version-fit")
        .collect();
    assert_eq!(fit[0]["severity"], "info", "{v:#}");
    assert!(
        fit[0]["message"]
            .as_str()
            .unwrap()
            .contains("fits etcd 3.4."),
        "{v:#}"
    );
}

#[test]
fn a_new_cluster_backed_up_for_hours_is_still_denied() {
    let (_dir, store) = new_store();
    let a = Etcd::start_named("etcd-a");
    kubernetes_keys(&a, 200);
    // A cluster that has run for a while: its revision is far above a new one's.
    for i in 0..40 {
        a.put(
            "/registry/leases/kube-node-lease/node-0",
            &format!("renew-{i}"),
        );
    }
    backup(&a, &store, "2026-11-23T03:00:00Z");
    kubernetes_keys(&a, 210);
    backup(&a, &store, "2026-11-23T04:00:00Z");
    // kops#16416: etcd-manager keeps backing up the new, empty cluster every 15 minutes.
    let b = Etcd::start_named("etcd-a");
    let times = [
        "2026-11-23T05:00:00Z",
        "2026-11-23T05:15:00Z",
        "2026-11-23T05:30:00Z",
        "2026-11-23T05:45:00Z",
        "2026-11-23T06:00:00Z",
        "2026-11-23T08:15:00Z",
    ];
    for t in times {
        kubernetes_keys(&b, 2);
        backup(&b, &store, t);
    }
    let c = status(&store)["continuity"].clone();
    assert_eq!(c["state"], "new-cluster", "{c:#}");
    assert_eq!(c["before"]["name"], folder("2026-11-23T04:00:00Z"), "{c:#}");
    assert_eq!(c["after"]["name"], folder("2026-11-23T05:00:00Z"), "{c:#}");
    assert!(c["reads"].as_u64().unwrap() <= 8, "{c:#}");
    let (code, v) = check(&store, &[]);
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(continuity_findings(&v)[0]["severity"], "deny", "{v:#}");
}
