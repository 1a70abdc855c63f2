//! Read-only proof (issue #8). S3: every request `status`, `check` and `serve` send goes through
//! a recording proxy in front of the real moto server, and none may be a write (PUT, POST,
//! DELETE, PATCH). etcd: `check --etcd-endpoints` against a real etcd leaves its revision
//! unchanged (any write RPC would bump it), and `src/live` calls no write API of etcd-client.

mod common;

use common::gate::{moto_env, upload_dir};
use common::hardening::{writes, Mode, Proxy};
use common::serve::Serve;
use std::process::Command;
use std::time::Duration;

const BUCKET: &str = "kops-state";
const PREFIX: &str = "prod.example.com/backups/etcd/main";

fn moto_store() -> common::Moto {
    common::gate::moto_etcd_manager_store(200)
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(common::etcdguard_bin())
        .args(args)
        .envs(moto_env())
        .env_remove("AWS_ENDPOINT_URL")
        .env("ETCDGUARD_LOG", "warn")
        .output()
        .unwrap()
}

fn url() -> String {
    format!("s3://{BUCKET}/{PREFIX}")
}

fn assert_reads_only(proxy: &Proxy, what: &str) {
    let reqs = proxy.requests();
    // not vacuous: the command did reach S3 through the proxy and read objects
    assert!(
        reqs.iter().any(|r| r.starts_with("GET ")),
        "{what}: no GET seen: {reqs:?}"
    );
    assert!(
        reqs.iter().any(|r| r.contains("etcd.backup.gz")),
        "{what}: no backup object read: {reqs:?}"
    );
    assert!(
        writes(&reqs).is_empty(),
        "{what} wrote to S3: {:?}",
        writes(&reqs)
    );
}

#[test]
fn status_and_check_send_only_reads_to_s3() {
    let moto = moto_store();
    let proxy = Proxy::start(&moto.endpoint, Mode::Forward);
    let u = url();
    let s3 = ["--s3-endpoint", &proxy.endpoint, "--s3-path-style"];
    let out = run(&[&["status", "--output", "json", "--store", &u][..], &s3[..]].concat());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_reads_only(&proxy, "status");
    let before = proxy.requests().len();
    let out = run(&[&["check", "--output", "json", "--store", &u][..], &s3[..]].concat());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        proxy.requests().len() > before,
        "check sent nothing through the proxy"
    );
    assert_reads_only(&proxy, "status + check");
    // the check also reads the bucket's lifecycle configuration (a GET with ?lifecycle)
    assert!(
        proxy
            .requests()
            .iter()
            .any(|r| r.starts_with("GET ") && r.contains("lifecycle")),
        "{:?}",
        proxy.requests()
    );
}

#[test]
fn serve_sends_only_reads_to_s3() {
    let moto = moto_store();
    let proxy = Proxy::start(&moto.endpoint, Mode::Forward);
    let mut s = Serve::start(
        &[
            "--refresh-interval",
            "1s",
            "--store",
            &url(),
            "--s3-endpoint",
            &proxy.endpoint,
            "--s3-path-style",
        ],
        |c| {
            c.envs(moto_env()).env_remove("AWS_ENDPOINT_URL");
        },
    );
    s.wait_ready(Duration::from_secs(60));
    // let several refreshes run
    std::thread::sleep(Duration::from_secs(4));
    s.stop();
    assert_reads_only(&proxy, "serve");
    let listings = proxy
        .requests()
        .iter()
        .filter(|r| r.contains("list-type"))
        .count();
    assert!(
        listings >= 2,
        "expected several refreshes: {:?}",
        proxy.requests()
    );
}

#[test]
fn check_against_live_etcd_does_not_write() {
    let etcd = common::Etcd::start();
    for i in 0..20 {
        etcd.put(&format!("/registry/k{i}"), "v");
    }
    let before = etcd.revision();
    let store = tempfile::tempdir().unwrap();
    let out = run(&[
        "check",
        "--output",
        "json",
        "--store",
        store.path().to_str().unwrap(),
        "--etcd-endpoints",
        &etcd.endpoint,
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    // the live facts were really read (healthy member, revision seen)
    let healthy = v["findings"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["check"] == "etcd.healthy"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(healthy["severity"], "info", "{v:#}");
    assert_eq!(
        etcd.revision(),
        before,
        "etcd revision moved: etcdguard wrote to etcd"
    );
}

#[test]
fn live_module_calls_no_etcd_write_api() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/live");
    let forbidden = [
        ".put(",
        ".delete(",
        ".txn(",
        ".compact(",
        ".defragment(",
        "alarm_disarm",
        "AlarmAction::Deactivate",
        "member_add",
        "member_remove",
        "member_update",
        "member_promote",
        ".lease_grant(",
        ".lease_revoke(",
        "move_leader",
        "auth_enable",
        "user_add",
        "role_add",
    ];
    let mut seen = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "rs") {
            continue;
        }
        seen += 1;
        let text = std::fs::read_to_string(&p).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for f in forbidden {
                assert!(
                    !code.contains(f),
                    "{}:{}: forbidden etcd call `{f}`: {line}",
                    p.display(),
                    n + 1
                );
            }
        }
    }
    assert!(seen > 0, "no source files under {}", dir.display());
}

/// The proof can fail: an upload through the same proxy is recorded as writes.
#[test]
fn proxy_records_writes() {
    let moto = common::Moto::start();
    let proxy = Proxy::start(&moto.endpoint, Mode::Forward);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x"), b"hello").unwrap();
    upload_dir(&proxy.endpoint, "write-probe", "p", dir.path());
    let w = writes(&proxy.requests());
    assert!(
        w.iter().any(|r| r.starts_with("PUT /write-probe/p/x")),
        "{:?}",
        proxy.requests()
    );
}
