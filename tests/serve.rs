//! `etcdguard serve` end to end: the real binary with `--self-signed`, real backup stores made
//! from real etcd snapshots, and real HTTPS requests (curl) carrying AdmissionReview v1 JSON.

mod common;

use common::gate::{etcd_manager_store, real_snapshot, BOTH};
use common::serve::Serve;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// `etcdguard serve` with a 1 s refresh interval, on the shared test harness.
fn start(args: &[&str]) -> Serve {
    Serve::start(&[&["--refresh-interval", "1s"][..], args].concat(), |_| {})
}

/// A TLS handshake sending the IP address as SNI (which RFC 6066 forbids; load generators and
/// some probes do it). Returns openssl's report.
fn handshake_with_ip_sni(s: &Serve) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{}", s.port)])
        .args(["-servername", "127.0.0.1", "-brief"])
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn kcp(version: &str, annotations: Value) -> Value {
    json!({
        "apiVersion": "controlplane.cluster.x-k8s.io/v1beta1",
        "kind": "KubeadmControlPlane",
        "metadata": {"name": "prod-cp", "namespace": "default", "annotations": annotations},
        "spec": {"replicas": 3, "version": version}
    })
}

fn review(old: Value, new: Value, groups: &[&str]) -> Value {
    let (group, kind) = {
        let av = new["apiVersion"].as_str().unwrap_or("v1");
        let g = av.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        (
            g.to_string(),
            new["kind"].as_str().unwrap_or("").to_string(),
        )
    };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": group, "version": "v1beta1", "kind": kind},
            "resource": {"group": group, "version": "v1beta1", "resource": format!("{}s", kind.to_lowercase())},
            "requestKind": {"group": group, "version": "v1beta1", "kind": kind},
            "requestResource": {"group": group, "version": "v1beta1", "resource": format!("{}s", kind.to_lowercase())},
            "name": "prod-cp",
            "namespace": "default",
            "operation": "UPDATE",
            "userInfo": {"username": "alice", "groups": groups},
            "object": new,
            "oldObject": old,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions"}
        }
    })
}

fn store_with_age(hours_ago: i64) -> tempfile::TempDir {
    let snap_dir = tempfile::tempdir().unwrap();
    let (snap, _) = real_snapshot(snap_dir.path(), 50);
    let t = (chrono::Utc::now() - chrono::Duration::hours(hours_ago))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    etcd_manager_store(dir.path(), &snap, &[&t], BOTH);
    dir
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn fresh_backups_allow_stale_deny_with_age_and_metrics() {
    let fresh = store_with_age(1);
    let s = start(&["--store", p(fresh.path())]);
    s.wait_ready(Duration::from_secs(30));
    let (code, v) = s.review(&review(
        kcp("v1.30.4", json!({})),
        kcp("v1.31.1", json!({})),
        &[],
    ));
    assert_eq!(code, 200);
    assert_eq!(v["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(v["response"]["allowed"], true, "{v:#}");
    assert_eq!(
        v["response"]["auditAnnotations"]["decision"], "proceed",
        "{v:#}"
    );

    let (code, metrics) = s.get("/metrics");
    assert_eq!(code, 200);
    let age_line = metrics
        .lines()
        .find(|l| l.starts_with("etcdguard_snapshot_age_seconds{"))
        .unwrap_or_else(|| panic!("no age gauge in:\n{metrics}"));
    let age: f64 = age_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((3600.0..3700.0).contains(&age), "{age_line}");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("etcdguard_snapshot_valid{") && l.ends_with(" 1")),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("etcdguard_control_files_present{") && l.ends_with(" 1")),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("etcdguard_snapshot_continuity{")
                && l.contains("state=\"not-checked\"")
                && l.ends_with(" 1")),
        "{metrics}"
    );
    assert!(
        metrics.contains("etcdguard_admission_requests_total"),
        "{metrics}"
    );
    // every metric the alert rules in deploy/ use is exported (as a sample or a TYPE line)
    for name in etcdguard_webhook::metrics::ALL {
        if *name == etcdguard_webhook::metrics::TLS_RELOADS_TOTAL {
            continue; // only with --tls-cert files
        }
        let base = etcdguard_webhook::metrics::counter_base_name(name);
        assert!(
            metrics.contains(base),
            "{name} missing from /metrics:\n{metrics}"
        );
    }

    let stale = store_with_age(10);
    let s = start(&["--store", p(stale.path())]);
    s.wait_ready(Duration::from_secs(30));
    let (code, v) = s.review(&review(
        kcp("v1.30.4", json!({})),
        kcp("v1.31.1", json!({})),
        &[],
    ));
    assert_eq!(code, 200);
    assert_eq!(v["response"]["allowed"], false, "{v:#}");
    let msg = v["response"]["status"]["message"].as_str().unwrap();
    assert!(msg.contains("10h 0m old"), "{msg}");
    assert!(msg.contains("etcdguard.dev/break-glass"), "{msg}");
    assert!(v["response"]["status"]["code"].as_u64().unwrap() >= 400);
    assert_eq!(v["response"]["auditAnnotations"]["decision"], "refuse");
}

#[test]
fn warn_mode_allows_with_warnings_and_unrelated_kinds_pass() {
    let stale = store_with_age(10);
    let s = start(&["--store", p(stale.path()), "--mode", "warn"]);
    s.wait_ready(Duration::from_secs(30));
    let (_, v) = s.review(&review(
        kcp("v1.30.4", json!({})),
        kcp("v1.31.1", json!({})),
        &[],
    ));
    assert_eq!(v["response"]["allowed"], true, "{v:#}");
    let warnings = v["response"]["warnings"].as_array().expect("warnings");
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("snapshot.recent")),
        "{v:#}"
    );
    for w in warnings {
        assert!(!w.as_str().unwrap().contains('\n'));
    }
    let cm = |d: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": d}});
    let (_, v) = s.review(&review(cm("1"), cm("2"), &[]));
    assert_eq!(v["response"]["allowed"], true);
    assert!(
        v["response"]
            .get("warnings")
            .is_none_or(|w| w.is_null() || w.as_array().is_some_and(|a| a.is_empty())),
        "{v:#}"
    );
    // An object the gate cannot read is refused, even in warn mode (fail closed), with a
    // status code of 400 and a message naming the object: metadata that is not an object, and
    // nesting deeper than the JSON reader's limit of 128 levels.
    let mut bad_metadata = kcp("v1.31.1", json!({}));
    bad_metadata["metadata"] = json!(7);
    let mut deep = json!("bottom");
    for _ in 0..200 {
        deep = json!([deep]);
    }
    let mut too_deep = kcp("v1.31.1", json!({}));
    too_deep["spec"]["extra"] = deep;
    for (new, expect) in [(bad_metadata, "object metadata"), (too_deep, "recursion")] {
        let (code, v) = s.review(&review(kcp("v1.30.4", json!({})), new, &[]));
        assert_eq!(code, 200);
        let r = &v["response"];
        assert_eq!(r["allowed"], false, "{v:#}");
        assert_eq!(r["status"]["code"], 400, "{v:#}");
        let msg = r["status"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains("object is not a Kubernetes object"), "{v:#}");
        assert!(msg.contains(expect), "{v:#}");
    }
}

#[test]
fn break_glass_honoured_for_allowed_group_only() {
    let stale = store_with_age(10);
    let s = start(&["--store", p(stale.path())]);
    s.wait_ready(Duration::from_secs(30));
    let ann = json!({"etcdguard.dev/break-glass": "INC-1234 restore drill"});
    let (_, v) = s.review(&review(
        kcp("v1.30.4", ann.clone()),
        kcp("v1.31.1", ann.clone()),
        &["system:masters"],
    ));
    assert_eq!(v["response"]["allowed"], true, "{v:#}");
    let audit = &v["response"]["auditAnnotations"];
    assert!(
        audit["break-glass"]
            .as_str()
            .unwrap_or("")
            .contains("INC-1234"),
        "{v:#}"
    );
    let (_, v) = s.review(&review(
        kcp("v1.30.4", ann.clone()),
        kcp("v1.31.1", ann),
        &["developers"],
    ));
    assert_eq!(v["response"]["allowed"], false, "{v:#}");
    assert!(
        v["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("Break-glass refused"),
        "{v:#}"
    );
}

#[test]
fn malformed_reviews_get_400_and_unready_until_facts() {
    // A store on an S3 endpoint where nothing listens: facts never complete, never ready.
    let port = common::free_port();
    let s = start(&[
        "--store",
        "s3://bucket/prefix",
        "--s3-endpoint",
        &format!("http://127.0.0.1:{port}"),
        "--s3-path-style",
        "--s3-timeout",
        "1s",
    ]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(s.get("/readyz").0, 503);
    // a review while facts are unknown is denied in enforce mode, never allowed
    let (code, v) = s.review(&review(
        kcp("v1.30.4", json!({})),
        kcp("v1.31.1", json!({})),
        &[],
    ));
    assert_eq!(code, 200);
    assert_eq!(v["response"]["allowed"], false, "{v:#}");
    let (code, _) = s.curl(&[
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        "{not json",
        &format!("https://localhost:{}/validate", s.port),
    ]);
    assert_eq!(code, 400);
}

#[test]
fn store_loss_uses_cached_facts_with_a_warning_until_they_are_stale() {
    let store = store_with_age(1);
    let s = start(&[
        "--store",
        p(store.path()),
        "--refresh-timeout",
        "2s",
        "--stale-after",
        "5s",
    ]);
    s.wait_ready(Duration::from_secs(30));
    let upgrade = review(kcp("v1.30.4", json!({})), kcp("v1.31.1", json!({})), &[]);
    let (_, v) = s.review(&upgrade);
    assert_eq!(v["response"]["allowed"], true, "{v:#}");
    // The store disappears: the next refreshes fail.
    let moved = store.path().with_extension("gone");
    std::fs::rename(store.path(), &moved).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let (_, v) = s.review(&upgrade);
    assert_eq!(v["response"]["allowed"], true, "{v:#}");
    let warnings = v["response"]["warnings"].to_string();
    assert!(warnings.contains("cached facts"), "{v:#}");
    // Past the staleness bound the cached reading is no longer used: refuse.
    std::thread::sleep(Duration::from_secs(5));
    let (_, v) = s.review(&upgrade);
    assert_eq!(v["response"]["allowed"], false, "{v:#}");
    assert!(
        v["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("store.reachable"),
        "{v:#}"
    );
    std::fs::rename(&moved, store.path()).unwrap();
}

#[test]
fn clients_cannot_flood_the_log_through_rustls_warnings() {
    let store = store_with_age(1);
    let quiet = start(&["--store", p(store.path())]);
    for _ in 0..5 {
        let report = handshake_with_ip_sni(&quiet);
        assert!(report.contains("CONNECTION ESTABLISHED"), "{report}");
    }
    // The same handshakes with rustls' warnings let through show what is being held back.
    let loud = start(&["--store", p(store.path()), "--log", "warn,rustls=warn"]);
    for _ in 0..5 {
        handshake_with_ip_sni(&loud);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        loud.stderr().matches("Illegal SNI").count() >= 5,
        "with rustls=warn: {}",
        loud.stderr()
    );
    let held = quiet.stderr();
    assert!(!held.contains("Illegal SNI"), "default filter: {held}");
    // Not a terminal: no colour codes in the log.
    assert!(
        !loud.stderr().contains('\u{1b}'),
        "ANSI escapes in a piped log"
    );
}

#[test]
fn an_unparsable_log_filter_falls_back_to_warn_and_says_so() {
    let out = Command::new(common::etcdguard_bin())
        .args([
            "--log",
            "etcdguard=loudest",
            "verify",
            "/nonexistent/snapshot.db",
        ])
        .output()
        .expect("run etcdguard");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("log filter not understood"), "{err}");
    assert!(err.contains("/nonexistent/snapshot.db"), "{err}");
}
