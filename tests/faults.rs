//! Faults against real servers (issue #8). The S3 side is the real moto server, behind a
//! loopback proxy that injects the fault (refused connection, HTTP 500/503, a server that never
//! answers, object bodies cut short of their `Content-Length`). The etcd side is real etcd
//! members, killed or left without quorum. Each fault must make `check` refuse (exit 1) within
//! the configured deadline, with the deny naming the fault; `serve` must keep answering when
//! the store goes away after its first refresh.
//!
//! Elapsed times are printed (`--nocapture`) for docs/reliability.md; the only time bounds
//! asserted are the tool's own configured deadlines plus generous slack for a loaded machine.

mod common;

use common::gate::moto_env;
use common::hardening::{Mode, Proxy};
use common::serve::Serve;
use serde_json::Value;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const URL: &str = "s3://kops-state/prod.example.com/backups/etcd/main";

fn moto_store() -> common::Moto {
    common::gate::moto_etcd_manager_store(300)
}

/// Run `check --output json` with the given extra args; returns output, JSON and elapsed time.
fn check(args: &[&str]) -> (Output, Value, Duration) {
    let t = Instant::now();
    let out = Command::new(common::etcdguard_bin())
        .args(["check", "--output", "json"])
        .args(args)
        .envs(moto_env())
        .env_remove("AWS_ENDPOINT_URL")
        .env("ETCDGUARD_LOG", "warn")
        .output()
        .unwrap();
    let elapsed = t.elapsed();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, v, elapsed)
}

fn finding(v: &Value, check: &str) -> Value {
    v["findings"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["check"] == check))
        .cloned()
        .unwrap_or(Value::Null)
}

/// `check` against `endpoint` must refuse with a deny on one of `checks` whose message
/// contains one of `words`, within `bound`.
fn s3_fault(name: &str, endpoint: &str, checks: &[&str], words: &[&str], bound: Duration) {
    let (out, v, elapsed) = check(&[
        "--store",
        URL,
        "--s3-endpoint",
        endpoint,
        "--s3-path-style",
        "--s3-timeout",
        "3s",
        "--deadline",
        "10s",
    ]);
    eprintln!(
        "FAULT {name}: exit {:?} in {:.1}s",
        out.status.code(),
        elapsed.as_secs_f64()
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{name}: {v:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(v["verdict"], "refuse", "{name}: {v:#}");
    let denies: Vec<Value> = checks
        .iter()
        .map(|c| finding(&v, c))
        .filter(|f| f["severity"] == "deny")
        .collect();
    assert!(!denies.is_empty(), "{name}: no deny on {checks:?}: {v:#}");
    let named = denies.iter().any(|f| {
        let m = f["message"].as_str().unwrap_or("").to_lowercase();
        words.iter().any(|w| m.contains(&w.to_lowercase()))
    });
    assert!(
        named,
        "{name}: deny does not name the fault ({words:?}): {denies:#?}"
    );
    for d in &denies {
        eprintln!("  {}: {}", d["check"], d["message"]);
    }
    assert!(
        elapsed < bound,
        "{name}: took {elapsed:?}, configured bound {bound:?}"
    );
}

#[test]
fn s3_refused_connection() {
    let port = common::free_port();
    s3_fault(
        "connection refused",
        &format!("http://127.0.0.1:{port}"),
        &["store.reachable"],
        &[
            &format!("127.0.0.1:{port}"),
            "connect",
            "dispatch",
            "refused",
        ],
        Duration::from_secs(20),
    );
}

#[test]
fn s3_http_500_and_503() {
    let moto = common::Moto::start();
    for code in [500u16, 503] {
        let proxy = Proxy::start(&moto.endpoint, Mode::Status(code));
        s3_fault(
            &format!("HTTP {code}"),
            &proxy.endpoint,
            &["store.reachable"],
            &[&code.to_string(), "InjectedFault", "injected"],
            Duration::from_secs(20),
        );
        assert!(!proxy.requests().is_empty());
    }
}

#[test]
fn s3_server_never_answers() {
    let moto = common::Moto::start();
    let proxy = Proxy::start(&moto.endpoint, Mode::Hang);
    // --s3-timeout 3s, --deadline 10s: must end well before the proxy's 120 s hang
    s3_fault(
        "no answer",
        &proxy.endpoint,
        &["store.reachable"],
        &["timed out", "timeout", "deadline"],
        Duration::from_secs(20),
    );
}

#[test]
fn s3_object_bodies_cut_short() {
    let moto = moto_store();
    let proxy = Proxy::start(&moto.endpoint, Mode::Truncate);
    s3_fault(
        "truncated bodies",
        &proxy.endpoint,
        &["snapshot.valid", "store.reachable", "snapshot.recent"],
        &["etcd.backup.gz", "read", "body", "truncat", "valid"],
        Duration::from_secs(30),
    );
    assert!(
        proxy
            .requests()
            .iter()
            .any(|r| r.contains("etcd.backup.gz")),
        "{:?}",
        proxy.requests()
    );
}

/// The `store.reachable` deny of a `check` answer, checked for the form issue #19 asks of a
/// store error: one line, under 200 characters, naming the store, and no SDK debug text
/// (`Some(`, `{`, struct names).
fn store_error(v: &Value, url: &str) -> String {
    let f = finding(v, "store.reachable");
    assert_eq!(f["severity"], "deny", "{v:#}");
    let reason = f["details"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let message = f["message"].as_str().unwrap_or_default();
    assert!(!message.contains('\n'), "not one line: {message}");
    assert!(
        reason.chars().count() < 200,
        "{} characters: {reason}",
        reason.len()
    );
    assert!(
        reason.contains(url.trim_end_matches('/')),
        "names no store: {reason}"
    );
    for debug in ["{", "Some(", "DispatchFailure", "ConnectorError", "Error {"] {
        assert!(!reason.contains(debug), "debug text {debug:?}: {reason}");
    }
    eprintln!("  store.reachable: {message}");
    reason
}

/// Every finding's next step.
fn next_steps(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["nextStep"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn lifecycle_next(v: &Value) -> String {
    finding(v, "lifecycle.deletes-control-files")["nextStep"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn s3_store_errors_are_one_line_each() {
    let moto = moto_store();
    // A missing bucket: said so, and the lifecycle read does not ask for a permission.
    let (_, v, _) = check(&[
        "--store",
        "s3://no-such-bucket/prod.example.com/backups/etcd/main",
        "--s3-endpoint",
        &moto.endpoint,
        "--s3-path-style",
    ]);
    let r = store_error(&v, "s3://no-such-bucket/prod.example.com/backups/etcd/main");
    assert!(r.contains("does not exist (NoSuchBucket)"), "{r}");
    let next = lifecycle_next(&v);
    assert!(!next.contains("GetLifecycleConfiguration"), "{next}");

    // Access denied (a 403 AccessDenied answer to everything): one line, and only here does
    // the lifecycle finding ask for s3:GetLifecycleConfiguration.
    let proxy = Proxy::start(&moto.endpoint, Mode::S3Error(403, "AccessDenied"));
    let (_, v, _) = check(&[
        "--store",
        URL,
        "--s3-endpoint",
        &proxy.endpoint,
        "--s3-path-style",
    ]);
    let r = store_error(&v, URL);
    assert!(
        r.contains("access denied (403 AccessDenied)") && r.contains("s3:ListBucket"),
        "{r}"
    );
    let next = lifecycle_next(&v);
    assert!(
        next.contains("grant s3:GetLifecycleConfiguration"),
        "{next}"
    );

    // A host name that does not resolve (`.invalid` never does, RFC 2606).
    let (_, v, _) = check(&[
        "--store",
        URL,
        "--s3-endpoint",
        "http://nonexistent.invalid:9000",
        "--s3-path-style",
    ]);
    let r = store_error(&v, URL);
    assert!(
        r.contains("DNS failure") && r.contains("nonexistent.invalid"),
        "{r}"
    );
    assert!(!lifecycle_next(&v).contains("GetLifecycleConfiguration"));

    // A server that never answers.
    let hang = Proxy::start(&moto.endpoint, Mode::Hang);
    let (_, v, _) = check(&[
        "--store",
        URL,
        "--s3-endpoint",
        &hang.endpoint,
        "--s3-path-style",
        "--s3-timeout",
        "3s",
    ]);
    let r = store_error(&v, URL);
    assert!(r.contains("no answer within 3s (timed out"), "{r}");
}

/// No AWS credentials anywhere, and IMDS reachable but silent (a loopback server that never
/// answers stands in for the metadata address of a machine off EC2). Without
/// `AWS_EC2_METADATA_DISABLED`, at the default log level: one line saying so, no IMDS
/// warnings, and no hang.
#[test]
fn s3_without_credentials_says_so_in_one_line() {
    let moto = moto_store();
    let imds = Proxy::start("http://127.0.0.1:1", Mode::Hang);
    let empty = tempfile::NamedTempFile::new().unwrap();
    let empty = empty.path().to_str().unwrap();
    let t = Instant::now();
    let out = Command::new(common::etcdguard_bin())
        .args(["check", "--output", "json", "--store", URL])
        .args(["--s3-endpoint", &moto.endpoint, "--s3-path-style"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent")
        .env("AWS_CONFIG_FILE", empty)
        .env("AWS_SHARED_CREDENTIALS_FILE", empty)
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.endpoint)
        .output()
        .unwrap();
    let elapsed = t.elapsed();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{v:#}\n{stderr}");
    let r = store_error(&v, URL);
    assert!(r.contains("no AWS credentials found"), "{r}");
    assert!(
        !stderr.to_lowercase().contains("imds") && !stderr.contains("WARN"),
        "warnings at the default log level:\n{stderr}"
    );
    assert!(
        imds.requests()
            .iter()
            .any(|r| r.contains("/latest/api/token")),
        "IMDS was not asked, so this proves nothing: {:?}",
        imds.requests()
    );
    // One IMDS attempt of at most a second or two per chain, not the SDK's four (or a hang).
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
}

/// Issue #24: a 403 on the snapshot object is "could not read", not "invalid".
#[test]
fn s3_denied_snapshot_object_is_unread_not_invalid() {
    let moto = moto_store();
    let proxy = Proxy::start(&moto.endpoint, Mode::DenyObjects("etcd.backup.gz"));
    let (out, v, _) = check(&[
        "--store",
        URL,
        "--s3-endpoint",
        &proxy.endpoint,
        "--s3-path-style",
    ]);
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    let f = finding(&v, "snapshot.valid");
    assert_eq!(f["severity"], "deny", "{v:#}");
    let m = f["message"].as_str().unwrap();
    assert!(
        m.starts_with("could not read the newest backup ")
            && m.contains("access denied (403 AccessDenied)")
            && !m.contains("invalid"),
        "{m}"
    );
    assert!(
        f["nextStep"].as_str().unwrap().contains("s3:GetObject"),
        "{f:#}"
    );
}

/// Issue #19: a store URL one level too high, or with a typo in the prefix, says "no backups
/// found at URL" first, with what it saw and where the backups are; no etcd-manager advice.
#[test]
fn s3_wrong_place_is_said_first() {
    let moto = moto_store();
    let high = "s3://kops-state/prod.example.com/backups/etcd";
    let (out, v, _) = check(&[
        "--store",
        high,
        "--s3-endpoint",
        &moto.endpoint,
        "--s3-path-style",
    ]);
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    let f = finding(&v, "store.reachable");
    assert_eq!(f["severity"], "deny", "{v:#}");
    let m = f["message"].as_str().unwrap();
    assert!(
        m.starts_with(&format!(
            "no backups found at {high}/: tried layouts etcd-manager,"
        )),
        "{m}"
    );
    assert!(
        m.contains("8 keys seen: main/") && m.contains("/etcd.backup.gz"),
        "{m}"
    );
    let next = f["nextStep"].as_str().unwrap();
    assert!(next.contains(&format!("--store {high}/main/")), "{next}");
    assert!(finding(&v, "control-files.present").is_null(), "{v:#}");
    for n in next_steps(&v) {
        assert!(!n.contains("restart the leader's etcd-manager"), "{n}");
    }

    let typo = "s3://kops-state/prod.example.com/backup/etcd/main";
    let (_, v, _) = check(&[
        "--store",
        typo,
        "--s3-endpoint",
        &moto.endpoint,
        "--s3-path-style",
    ]);
    let f = finding(&v, "store.reachable");
    assert_eq!(f["severity"], "deny", "{v:#}");
    let m = f["message"].as_str().unwrap();
    assert!(
        m.starts_with(&format!("no backups found at {typo}/:")) && m.contains("the store is empty"),
        "{m}"
    );
    assert!(
        f["nextStep"]
            .as_str()
            .unwrap()
            .contains("check the store URL"),
        "{f:#}"
    );
    assert!(finding(&v, "control-files.present").is_null(), "{v:#}");
}

#[test]
fn etcd_member_killed() {
    let store = tempfile::tempdir().unwrap();
    let mut etcd = common::Etcd::start();
    let ep = etcd.endpoint.clone();
    etcd.kill();
    let (out, v, elapsed) = check(&[
        "--store",
        store.path().to_str().unwrap(),
        "--etcd-endpoints",
        &ep,
        "--etcd-timeout",
        "3s",
    ]);
    eprintln!(
        "FAULT etcd killed: exit {:?} in {:.1}s",
        out.status.code(),
        elapsed.as_secs_f64()
    );
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    let f = finding(&v, "etcd.healthy");
    assert_eq!(f["severity"], "deny", "{v:#}");
    let port = ep.rsplit(':').next().unwrap();
    assert!(f["message"].as_str().unwrap_or("").contains(port), "{f:#}");
    eprintln!("  etcd.healthy: {}", f["message"]);
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");
}

#[test]
fn etcd_cluster_without_quorum() {
    let store = tempfile::tempdir().unwrap();
    let mut cluster = common::live::EtcdCluster::start(3);
    let eps = cluster.endpoints.join(",");
    cluster.kill(0);
    cluster.kill(1);
    let (out, v, elapsed) = check(&[
        "--store",
        store.path().to_str().unwrap(),
        "--etcd-endpoints",
        &eps,
        "--etcd-timeout",
        "3s",
    ]);
    eprintln!(
        "FAULT etcd 2 of 3 stopped: exit {:?} in {:.1}s",
        out.status.code(),
        elapsed.as_secs_f64()
    );
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    let f = finding(&v, "etcd.healthy");
    assert_eq!(f["severity"], "deny", "{v:#}");
    eprintln!("  etcd.healthy: {}", f["message"]);
    let m = f["message"].as_str().unwrap_or("").to_lowercase();
    assert!(
        m.contains("quorum") || m.contains("1 of 3") || m.contains("1/3"),
        "{f:#}"
    );
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
}

#[test]
fn serve_keeps_answering_when_the_store_goes_away() {
    let moto = moto_store();
    let proxy = Proxy::start(&moto.endpoint, Mode::Forward);
    let s = Serve::start(
        &[
            "--refresh-interval",
            "1s",
            "--store",
            URL,
            "--s3-endpoint",
            &proxy.endpoint,
            "--s3-path-style",
            "--s3-timeout",
            "2s",
        ],
        |c| {
            c.envs(moto_env()).env_remove("AWS_ENDPOINT_URL");
        },
    );
    s.wait_ready(Duration::from_secs(60));
    let kcp = |v: &str| {
        serde_json::json!({"apiVersion": "controlplane.cluster.x-k8s.io/v1beta1", "kind": "KubeadmControlPlane",
            "metadata": {"name": "prod-cp", "namespace": "default"}, "spec": {"replicas": 3, "version": v}})
    };
    let review = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "0b0b0b0b-1111-2222-3333-444444444444",
            "kind": {"group": "controlplane.cluster.x-k8s.io", "version": "v1beta1", "kind": "KubeadmControlPlane"},
            "resource": {"group": "controlplane.cluster.x-k8s.io", "version": "v1beta1", "resource": "kubeadmcontrolplanes"},
            "name": "prod-cp", "namespace": "default", "operation": "UPDATE",
            "userInfo": {"username": "alice"},
            "object": kcp("v1.31.1"), "oldObject": kcp("v1.30.4"), "dryRun": false
        }
    });
    let ask = || s.review(&review);
    let (code, v) = ask();
    assert_eq!(code, 200);
    assert_eq!(v["response"]["allowed"], true, "{v:#}");
    // the store goes away: every S3 request now fails with 503, then moto is stopped too
    proxy.set_mode(Mode::Status(503));
    drop(moto);
    std::thread::sleep(Duration::from_secs(5));
    for i in 0..5 {
        let t = Instant::now();
        let (code, v) = ask();
        eprintln!(
            "serve after store loss #{i}: HTTP {code} allowed={} in {:.2}s: {}",
            v["response"]["allowed"],
            t.elapsed().as_secs_f64(),
            v["response"]["status"]["message"]
        );
        assert_eq!(code, 200, "{v:#}");
        assert_eq!(v["response"]["uid"], "0b0b0b0b-1111-2222-3333-444444444444");
        // answered from the cached facts (allowed) or refused as unknown; never an error
        assert!(v["response"]["allowed"].is_boolean(), "{v:#}");
    }
    assert_eq!(s.get("/healthz").0, 200);
}

/// A KubeadmControlPlane upgrade review (gated by the embedded CAPI policy: backup ≤ 3h).
fn kcp_upgrade() -> Value {
    let kcp = |v: &str| {
        serde_json::json!({"apiVersion": "controlplane.cluster.x-k8s.io/v1beta1", "kind": "KubeadmControlPlane",
            "metadata": {"name": "prod-cp", "namespace": "default"}, "spec": {"replicas": 3, "version": v}})
    };
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "0c0c0c0c-1111-2222-3333-444444444444",
            "kind": {"group": "controlplane.cluster.x-k8s.io", "version": "v1beta1", "kind": "KubeadmControlPlane"},
            "resource": {"group": "controlplane.cluster.x-k8s.io", "version": "v1beta1", "resource": "kubeadmcontrolplanes"},
            "name": "prod-cp", "namespace": "default", "operation": "UPDATE",
            "userInfo": {"username": "alice"},
            "object": kcp("v1.31.1"), "oldObject": kcp("v1.30.4"), "dryRun": false
        }
    })
}

fn serve_through(proxy: &Proxy, extra: &[&str]) -> Serve {
    let args = [
        &[
            "--store",
            URL,
            "--s3-endpoint",
            &proxy.endpoint,
            "--s3-path-style",
            "--s3-timeout",
            "5s",
        ][..],
        extra,
    ]
    .concat();
    Serve::start(&args, |c| {
        c.envs(moto_env()).env_remove("AWS_ENDPOINT_URL");
    })
}

/// Issue #24, observation 2: facts are as old as the refresh that read them *completed*. Every
/// S3 request is delayed, so one refresh takes R seconds (measured first with `status` through
/// the same proxy), and `--stale-after` is 1 s + 1.6 R: facts stamped at completion are at most
/// interval + R old, so every review is allowed; stamped at the start they would reach
/// interval + 2 R, and reviews would be refused in every cycle.
#[test]
fn slow_successful_refreshes_never_make_serve_refuse() {
    let moto = moto_store();
    let proxy = Proxy::start(&moto.endpoint, Mode::Delay(Duration::from_millis(300)));
    let t = Instant::now();
    let out = Command::new(common::etcdguard_bin())
        .args(["status", "--store", URL, "--s3-path-style", "--s3-endpoint"])
        .arg(&proxy.endpoint)
        .envs(moto_env())
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // serve also reads the bucket's lifecycle rules: one more delayed request.
    let r = t.elapsed().as_secs_f64() + 0.3;
    eprintln!("one refresh through the slow proxy: ~{r:.1} s");
    let secs = |x: f64| format!("{}ms", (x * 1000.0) as u64);
    proxy.set_mode(Mode::Forward);
    let s = serve_through(
        &proxy,
        &[
            "--refresh-interval",
            "1s",
            "--refresh-timeout",
            &secs(1.4 * r),
            "--stale-after",
            &secs(1.0 + 1.6 * r),
        ],
    );
    s.wait_ready(Duration::from_secs(60));
    proxy.set_mode(Mode::Delay(Duration::from_millis(300)));
    let review = kcp_upgrade();
    let until = Instant::now() + Duration::from_secs_f64(4.0 * (r + 1.0));
    let mut asked = 0;
    while Instant::now() < until {
        let (code, v) = s.review(&review);
        assert_eq!(code, 200, "{v:#}");
        assert_eq!(v["response"]["allowed"], true, "review #{asked}: {v:#}");
        asked += 1;
        std::thread::sleep(Duration::from_millis(250));
    }
    let (_, metrics) = s.get("/metrics");
    assert!(!metrics.contains("refresh-timeout"), "{metrics}");
    drop(moto);
}

/// Issue #24, observation 4: the lifecycle fact keeps its last good reading within the
/// staleness bound like the store does (a warning naming the failure), then goes unknown.
#[test]
fn a_failed_lifecycle_read_keeps_the_last_good_rules_until_stale() {
    let moto = moto_store();
    let proxy = Proxy::start(&moto.endpoint, Mode::Forward);
    let s = serve_through(
        &proxy,
        &[
            "--refresh-interval",
            "1s",
            "--refresh-timeout",
            "3s",
            "--stale-after",
            "6s",
        ],
    );
    s.wait_ready(Duration::from_secs(60));
    let review = kcp_upgrade();
    let (_, v) = s.review(&review);
    assert_eq!(v["response"]["allowed"], true, "{v:#}");
    proxy.set_mode(Mode::StatusFor("lifecycle", 503));
    // Within the bound: allowed, with a warning naming the failure (polled: the SDK retries).
    let until = Instant::now() + Duration::from_secs(5);
    let mut cached = None;
    while cached.is_none() && Instant::now() < until {
        let (_, v) = s.review(&review);
        assert_eq!(v["response"]["allowed"], true, "{v:#}");
        if v["response"]["warnings"]
            .to_string()
            .contains("cached facts")
        {
            cached = Some(v);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let v = cached.expect("a warning about cached lifecycle facts within 5 s");
    assert!(
        v["response"]["warnings"].to_string().contains("503"),
        "{v:#}"
    );
    // Past the bound: the rules are unknown, and the change is refused.
    let until = Instant::now() + Duration::from_secs(15);
    let mut refused = false;
    while !refused && Instant::now() < until {
        let (_, v) = s.review(&review);
        refused = v["response"]["allowed"] == false;
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        refused,
        "still allowed 15 s after the lifecycle reads began to fail"
    );
    drop(moto);
}

/// `--stale-after` must exceed the refresh bound plus the interval: otherwise facts would go
/// stale while every refresh succeeds. Rejected at start, naming the flags.
#[test]
fn inconsistent_refresh_bounds_are_rejected_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--refresh-interval", "60s", "--stale-after", "30s"][..],
        &[
            "--refresh-timeout",
            "10s",
            "--refresh-interval",
            "5s",
            "--stale-after",
            "15s",
        ][..],
        // The default refresh bound is --deadline (5m): a 4m staleness bound cannot hold.
        &["--stale-after", "4m"][..],
    ] {
        let out = Command::new(common::etcdguard_bin())
            .args([
                "serve",
                "--self-signed",
                "--listen",
                "127.0.0.1:0",
                "--store",
            ])
            .arg(dir.path())
            .args(args)
            .env("ETCDGUARD_LOG", "warn")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--stale-after"), "{args:?}: {err}");
        assert!(err.contains("--refresh-interval"), "{args:?}: {err}");
    }
}

/// Issue #24, observation 1: one deadline covers every read of a `check` run, and a longer
/// per-request S3 timeout never extends it: the whole endpoint hanging, or only the bucket's
/// `?lifecycle` (after the store was read), ends within `--deadline` plus slack.
#[test]
fn one_deadline_covers_every_read() {
    let moto = moto_store();
    for (name, mode) in [
        ("everything hangs", Mode::Hang),
        ("only ?lifecycle hangs", Mode::HangFor("lifecycle")),
    ] {
        let proxy = Proxy::start(&moto.endpoint, mode);
        let (out, v, elapsed) = check(&[
            "--store",
            URL,
            "--s3-endpoint",
            &proxy.endpoint,
            "--s3-path-style",
            "--s3-timeout",
            "60s",
            "--deadline",
            "4s",
        ]);
        eprintln!(
            "DEADLINE {name}: exit {:?} in {:.1}s",
            out.status.code(),
            elapsed.as_secs_f64()
        );
        assert_eq!(out.status.code(), Some(1), "{name}: {v:#}");
        assert!(
            elapsed < Duration::from_secs(12),
            "{name}: took {elapsed:?} with --deadline 4s"
        );
        let lifecycle = finding(&v, "lifecycle.deletes-control-files");
        assert_eq!(lifecycle["severity"], "deny", "{name}: {v:#}");
        assert!(
            lifecycle["message"]
                .as_str()
                .unwrap_or("")
                .contains("--deadline"),
            "{name}: {lifecycle:#}"
        );
    }
}
