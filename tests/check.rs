//! `etcdguard check` end to end: real etcd snapshots in real stores (a directory and the moto S3
//! server), a real live etcd, real kops dry-run fixtures; the built binary, its exit code and
//! its JSON.

mod common;

use common::gate::{etcd_manager_store, real_snapshot, Control, BOTH};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const T1: &str = "2026-11-23T06:00:00Z";
const T2: &str = "2026-11-23T07:00:00Z";
const T3: &str = "2026-11-23T08:00:00Z";
/// One hour after the newest backup.
const FRESH: &str = "2026-11-23T09:00:00Z";
/// Five hours after the newest backup (max age 3h by default).
const STALE: &str = "2026-11-23T13:00:00Z";

/// One real snapshot shared by the tests (500 keys), with its revision.
fn snapshot() -> &'static (PathBuf, i64) {
    static SNAP: OnceLock<(PathBuf, i64)> = OnceLock::new();
    SNAP.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        real_snapshot(&dir, 500)
    })
}

fn store(control: Control) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    etcd_manager_store(dir.path(), &snapshot().0, &[T1, T2, T3], control);
    dir
}

fn check(args: &[&str]) -> (Output, Value) {
    let out = common::etcdguard(&[&["check", "--output", "json"][..], args].concat());
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, v)
}

fn finding<'a>(v: &'a Value, check: &str) -> Vec<&'a Value> {
    v["findings"]
        .as_array()
        .map(|a| a.iter().filter(|f| f["check"] == check).collect())
        .unwrap_or_default()
}

fn severities(v: &Value, check: &str) -> Vec<String> {
    finding(v, check)
        .iter()
        .map(|f| f["severity"].as_str().unwrap_or("").to_string())
        .collect()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn healthy_store_proceeds() {
    let s = store(BOTH);
    let (out, v) = check(&["--store", p(s.path()), "--now", FRESH]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{v:#}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(v["verdict"], "proceed");
    assert_eq!(severities(&v, "snapshot.recent"), ["info"]);
    assert_eq!(severities(&v, "snapshot.valid"), ["info"]);
    assert_eq!(severities(&v, "control-files.present"), ["info"]);
    assert_eq!(v["snapshot"]["newestValid"]["revision"], snapshot().1);
    assert_eq!(v["snapshot"]["ageSeconds"], 3600);
    // sources not given are reported, not refused
    let etcd = finding(&v, "etcd.healthy");
    assert_eq!(etcd.len(), 1);
    assert!(etcd[0]["message"]
        .as_str()
        .unwrap()
        .contains("--etcd-endpoints"));
}

#[test]
fn stale_store_refuses_with_snapshot_recent() {
    let s = store(BOTH);
    let (out, v) = check(&["--store", p(s.path()), "--now", STALE]);
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    assert_eq!(v["verdict"], "refuse");
    let f = finding(&v, "snapshot.recent");
    assert_eq!(f[0]["severity"], "deny");
    assert!(
        f[0]["message"].as_str().unwrap().contains("5h 0m old"),
        "{}",
        f[0]["message"]
    );
    // --max-age widens the bound
    let (out, _) = check(&["--store", p(s.path()), "--now", STALE, "--max-age", "6h"]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn missing_cluster_created_refuses() {
    let s = store(Control {
        spec: true,
        created: false,
    });
    let (out, v) = check(&["--store", p(s.path()), "--now", FRESH]);
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    let f = finding(&v, "control-files.present");
    assert_eq!(f[0]["severity"], "deny", "{v:#}");
    let msg = f[0]["message"].as_str().unwrap().to_lowercase();
    assert!(msg.contains("new") && msg.contains("cluster"), "{msg}");
    assert_eq!(v["controlFiles"]["createdPresent"], false);
}

#[test]
fn missing_spec_refuses_backups_stopped() {
    let s = store(Control {
        spec: false,
        created: true,
    });
    let (out, v) = check(&["--store", p(s.path()), "--now", FRESH]);
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    assert_eq!(v["controlFiles"]["outcome"], "backups-stopped");
}

#[test]
fn corrupt_newest_backup_walks_back_and_warns() {
    let s = store(BOTH);
    // Truncate the newest backup's gzip: the one before it is still valid.
    let newest = s.path().join(format!("{T3}-000003")).join("etcd.backup.gz");
    let bytes = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, &bytes[..bytes.len() / 2]).unwrap();
    let (out, v) = check(&["--store", p(s.path()), "--now", FRESH]);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(v["verdict"], "warn");
    assert_eq!(severities(&v, "snapshot.valid"), ["warn"]);
    assert_eq!(v["snapshot"]["newestValid"]["name"], format!("{T2}-000002"));
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn kops_dry_run_creating_the_spec_refuses() {
    let s = store(BOTH);
    let (out, v) = check(&[
        "--store",
        p(s.path()),
        "--now",
        FRESH,
        "--kops-dry-run",
        &fixture("kops/create-spec-current.txt"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    assert_eq!(severities(&v, "change.seeds-new-cluster"), ["deny"]);
    // a harmless update passes with the same store
    let (out, v) = check(&[
        "--store",
        p(s.path()),
        "--now",
        FRESH,
        "--kops-dry-run",
        &fixture("kops/harmless-update.txt"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(severities(&v, "change.seeds-new-cluster"), ["info"]);
}

#[test]
fn kops_dry_run_from_stdin() {
    let s = store(BOTH);
    let text = std::fs::read(fixture("kops/create-spec-legacy.txt")).unwrap();
    let mut child = Command::new(common::etcdguard_bin())
        .args([
            "check",
            "--output",
            "json",
            "--store",
            p(s.path()),
            "--now",
            FRESH,
            "--kops-dry-run",
            "-",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&text).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(severities(&v, "change.seeds-new-cluster"), ["deny"]);
}

#[test]
fn live_etcd_behind_the_snapshot_refuses() {
    let s = store(BOTH);
    // A brand-new, empty etcd: what a re-seeded cluster looks like.
    let fresh = common::Etcd::start_named("reseeded");
    let (out, v) = check(&[
        "--store",
        p(s.path()),
        "--now",
        FRESH,
        "--etcd-endpoints",
        &fresh.endpoint,
    ]);
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    let f = finding(&v, "etcd.revision-behind-snapshot");
    assert_eq!(f[0]["severity"], "deny", "{v:#}");
    assert_eq!(f[0]["details"]["snapshotRevision"], snapshot().1);
    assert_eq!(severities(&v, "etcd.healthy"), ["info"]);
}

#[test]
fn live_etcd_ahead_of_the_snapshot_proceeds() {
    let s = store(BOTH);
    let etcd = common::Etcd::start();
    let ops: Vec<String> = (0..snapshot().1 as usize + 5)
        .map(|i| format!("put /k{i} v"))
        .collect();
    for chunk in ops.chunks(200) {
        etcd.txn(chunk);
    }
    // each txn is one revision: write single puts until the revision passes the snapshot's
    while etcd.revision() <= snapshot().1 {
        etcd.put("/bump", "x");
    }
    let (out, v) = check(&[
        "--store",
        p(s.path()),
        "--now",
        FRESH,
        "--etcd-endpoints",
        &etcd.endpoint,
    ]);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(severities(&v, "etcd.revision-behind-snapshot"), ["info"]);
}

#[test]
fn unreachable_etcd_refuses_with_reason() {
    let s = store(BOTH);
    let port = common::free_port();
    let ep = format!("http://127.0.0.1:{port}");
    let (out, v) = check(&[
        "--store",
        p(s.path()),
        "--now",
        FRESH,
        "--etcd-endpoints",
        &ep,
        "--etcd-timeout",
        "3s",
    ]);
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    let f = finding(&v, "etcd.healthy");
    assert_eq!(f[0]["severity"], "deny");
    assert!(
        f[0]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("127.0.0.1:{port}")),
        "{}",
        f[0]["message"]
    );
}

#[test]
fn unreadable_store_refuses_with_store_reachable() {
    let (out, v) = check(&["--store", "/nonexistent/etcdguard/store", "--now", FRESH]);
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    assert_eq!(severities(&v, "store.reachable"), ["deny"]);
}

#[test]
fn bad_flags_and_inputs_exit_2() {
    let (out, _) = check(&["--now", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));
    let (out, _) = check(&["--max-age", "-3h"]);
    assert_eq!(out.status.code(), Some(2));
    let (out, _) = check(&["--kops-dry-run", "/nonexistent.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.txt"));
    let (out, _) = check(&["--kops-dry-run", &fixture("kops/not-a-report.txt")]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let (out, _) = check(&["--policy", "/nonexistent/policies"]);
    assert_eq!(out.status.code(), Some(2));
    let (out, _) = check(&["--object-old", "a.yaml"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--object-old needs --object-new"
    );
}

#[test]
fn output_formats() {
    let s = store(BOTH);
    let base = ["check", "--store", p(s.path()), "--now", STALE];
    let out = common::etcdguard(&[&base[..], &["--output", "text"]].concat());
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("verdict: REFUSE"), "{text}");
    assert!(text.contains("next: take a backup"), "{text}");
    let out = common::etcdguard(&[&base[..], &["--output", "junit"]].concat());
    let xml = String::from_utf8_lossy(&out.stdout);
    assert!(xml.contains("<failure type=\"snapshot.recent\""), "{xml}");
    let out = common::etcdguard(&[&base[..], &["--output", "github"]].concat());
    let gh = String::from_utf8_lossy(&out.stdout);
    assert!(
        gh.contains("::error title=etcdguard snapshot.recent::"),
        "{gh}"
    );
}

#[test]
fn s3_store_on_moto() {
    let moto = common::Moto::start();
    let s = store(BOTH);
    common::gate::upload_dir(
        &moto.endpoint,
        "kops-state",
        "prod.example.com/backups/etcd/main",
        s.path(),
    );
    let url = "s3://kops-state/prod.example.com/backups/etcd/main";
    let run = |now: &str| {
        let out = Command::new(common::etcdguard_bin())
            .args([
                "check",
                "--output",
                "json",
                "--store",
                url,
                "--s3-endpoint",
                &moto.endpoint,
                "--s3-path-style",
                "--now",
                now,
            ])
            .envs(common::gate::moto_env())
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out, v)
    };
    let (out, v) = run(FRESH);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{v:#}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(v["snapshot"]["newestValid"]["revision"], snapshot().1);
    // an s3:// store's live lifecycle rules are read (none set: nothing affects the store)
    assert_eq!(severities(&v, "lifecycle.deletes-control-files"), ["info"]);
    let (out, v) = run(STALE);
    assert_eq!(out.status.code(), Some(1), "{v:#}");
}

#[test]
fn lifecycle_file_deleting_control_files_refuses() {
    let s = store(BOTH);
    let rules = r#"{"Rules":[{"ID":"cost-saving","Status":"Enabled","Filter":{"Prefix":"prod.example.com/backups/etcd/main"},"Expiration":{"Days":90}}]}"#;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("rules.json");
    std::fs::write(&f, rules).unwrap();
    // the store URL only names bucket and prefix for the lifecycle analysis; a local store
    // cannot carry lifecycle rules, so use the directory for backups and s3 for the rules.
    let moto = common::Moto::start();
    common::gate::upload_dir(
        &moto.endpoint,
        "kops-state",
        "prod.example.com/backups/etcd/main",
        s.path(),
    );
    let out = Command::new(common::etcdguard_bin())
        .args([
            "check",
            "--output",
            "json",
            "--store",
            "s3://kops-state/prod.example.com/backups/etcd/main",
            "--s3-endpoint",
            &moto.endpoint,
            "--s3-path-style",
            "--now",
            FRESH,
            "--lifecycle",
            p(&f),
        ])
        .envs(common::gate::moto_env())
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{v:#}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        severities(&v, "lifecycle.deletes-control-files")
            .first()
            .map(String::as_str),
        Some("deny"),
        "{v:#}"
    );
}

#[test]
fn object_changes_are_classified_like_the_webhook() {
    let s = store(BOTH);
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.yaml");
    let new = dir.path().join("new.yaml");
    let kcp = |v: &str| {
        format!(
            "apiVersion: controlplane.cluster.x-k8s.io/v1beta1\nkind: KubeadmControlPlane\nmetadata:\n  name: prod-cp\n  namespace: default\nspec:\n  replicas: 3\n  version: {v}\n"
        )
    };
    std::fs::write(&old, kcp("v1.30.4")).unwrap();
    std::fs::write(&new, kcp("v1.31.1")).unwrap();
    let args = [
        "--store",
        p(s.path()),
        "--object-old",
        p(&old),
        "--object-new",
        p(&new),
    ];
    let (out, v) = check(&[&args[..], &["--now", STALE]].concat());
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    let (out, _) = check(&[&args[..], &["--now", FRESH]].concat());
    assert_eq!(out.status.code(), Some(0));
    // an unrelated kind is not gated, even with a stale store
    std::fs::write(
        &old,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: '1'\n",
    )
    .unwrap();
    std::fs::write(
        &new,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: '2'\n",
    )
    .unwrap();
    let (out, v) = check(&[&args[..], &["--now", STALE]].concat());
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(v["verdict"], "proceed");
}

#[test]
fn terraform_plan_creating_the_spec_refuses() {
    let s = store(BOTH);
    let (out, v) = check(&[
        "--store",
        p(s.path()),
        "--now",
        FRESH,
        "--terraform-plan",
        &fixture("kops/terraform/create-spec.json"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    assert_eq!(severities(&v, "change.seeds-new-cluster"), ["deny"]);
    let (out, v) = check(&[
        "--store",
        p(s.path()),
        "--now",
        FRESH,
        "--terraform-plan",
        &fixture("kops/terraform/update-spec-whitespace.json"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
}

#[test]
fn wrong_s3_credentials_refuse_with_a_clear_reason() {
    // moto with request authentication on: these credentials belong to no user.
    let moto = common::Moto::start_with_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]);
    let out = Command::new(common::etcdguard_bin())
        .args([
            "check",
            "--output",
            "json",
            "--store",
            "s3://kops-state/prod.example.com/backups/etcd/main",
            "--s3-endpoint",
            &moto.endpoint,
            "--s3-path-style",
            "--s3-timeout",
            "5s",
            "--now",
            FRESH,
        ])
        .envs(common::gate::moto_env())
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{v:#}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f = finding(&v, "store.reachable");
    assert_eq!(f[0]["severity"], "deny", "{v:#}");
    let msg = f[0]["message"].as_str().unwrap();
    assert!(
        msg.contains("InvalidAccessKeyId") && msg.contains("check the AWS credentials"),
        "{msg}"
    );
    // status says the same with exit 2
    let out = Command::new(common::etcdguard_bin())
        .args([
            "status",
            "--store",
            "s3://kops-state/x",
            "--s3-endpoint",
            &moto.endpoint,
            "--s3-path-style",
            "--s3-timeout",
            "5s",
        ])
        .envs(common::gate::moto_env())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Issue #19: a store that is the wrong place says "no backups found at URL" first, with the
/// layouts tried, a few keys seen and what to do, and gives no etcd-manager advice. The
/// backups sit at `<tmp>/backups/etcd/main`, as kops writes them.
#[test]
fn wrong_place_is_said_first() {
    let root = tempfile::tempdir().unwrap();
    let main = root.path().join("backups/etcd/main");
    etcd_manager_store(&main, &snapshot().0, &[T1, T2, T3], BOTH);
    let no_em_advice = |v: &Value| {
        assert!(finding(v, "control-files.present").is_empty(), "{v:#}");
        for f in v["findings"].as_array().unwrap() {
            let next = f["nextStep"].as_str().unwrap_or_default();
            assert!(!next.contains("etcd-manager has no trigger"), "{next}");
        }
    };
    let first_deny = |v: &Value| -> Value {
        let f = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["severity"] == "deny")
            .cloned()
            .unwrap();
        assert_eq!(f["check"], "store.reachable", "{v:#}");
        f
    };

    // One level too high.
    let high = root.path().join("backups/etcd");
    let (out, v) = check(&["--store", p(&high), "--now", FRESH]);
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    let f = first_deny(&v);
    let m = f["message"].as_str().unwrap();
    assert!(
        m.starts_with(&format!(
            "no backups found at {}: tried layouts etcd-manager, openshift",
            p(&high)
        )) && m.contains("8 keys seen: main/2026-11-23T06:00:00Z-000001/_etcd_backup.meta"),
        "{m}"
    );
    let next = f["nextStep"].as_str().unwrap();
    assert!(
        next.contains(&format!("pass --store {}/main/", p(&high))),
        "{next}"
    );
    no_em_advice(&v);
    // `status` says the same.
    let out = common::etcdguard(&["status", "--store", p(&high)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "  no backups found at {}: tried layouts",
            p(&high)
        )) && text.contains("  next: the store URL is too high: etcd-manager backups are at "),
        "{text}"
    );

    // A typo in the path.
    let typo = root.path().join("backup/etcd/main");
    let (_, v) = check(&["--store", p(&typo), "--now", FRESH]);
    let f = first_deny(&v);
    let m = f["message"].as_str().unwrap();
    assert!(
        m.contains(&format!("store directory {} does not exist", p(&typo))),
        "{m}"
    );

    // `--layout plain` forced on an etcd-manager store: said, and the layout the keys match.
    let (_, v) = check(&["--store", p(&main), "--layout", "plain", "--now", FRESH]);
    let f = first_deny(&v);
    let m = f["message"].as_str().unwrap();
    assert!(
        m.starts_with(&format!(
            "no backups found at {}: tried layout plain (forced by --layout)",
            p(&main)
        )),
        "{m}"
    );
    let next = f["nextStep"].as_str().unwrap();
    assert!(
        next.contains("look like etcd-manager backups") && next.contains("--layout etcd-manager"),
        "{next}"
    );
    no_em_advice(&v);

    // An etcd-manager store whose backups are all gone but whose control files remain is the
    // right place: the reachable check passes and etcd-manager's own advice follows.
    let bare = tempfile::tempdir().unwrap();
    etcd_manager_store(bare.path(), &snapshot().0, &[], BOTH);
    let (_, v) = check(&["--store", p(bare.path()), "--now", FRESH]);
    assert_eq!(severities(&v, "store.reachable"), ["info"], "{v:#}");
    let f = &finding(&v, "snapshot.valid")[0];
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .starts_with("no backups found at ")
            && f["nextStep"].as_str().unwrap().contains("etcd-manager"),
        "{f:#}"
    );
}
