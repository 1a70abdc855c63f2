//! Secrets never leak (issue #8): recognisable fake AWS credentials are given to `status`,
//! `check` and `serve` (with debug and trace logging) against the real moto server and against
//! an unreachable endpoint; neither the secret key nor the session token may appear in stdout,
//! stderr or the JSON report.

mod common;

use common::gate::{etcd_manager_store, real_snapshot, upload_dir, BOTH};
use common::serve::Serve;
use std::process::{Command, Output};
use std::time::Duration;

const SECRET: &str = "etcdguardFAKEsecretDONOTLEAK0123456789abcd";
const TOKEN: &str = "etcdguardFAKEtokenDONOTLEAKsessionTOKEN0123456789";
const KEY_ID: &str = "AKIAETCDGUARDFAKEKEY";
const URL: &str = "s3://kops-state/prod.example.com/backups/etcd/main";

fn env(cmd: &mut Command) -> &mut Command {
    cmd.env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_SESSION_TOKEN", TOKEN)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("ETCDGUARD_LOG")
}

fn run(args: &[&str]) -> Output {
    env(&mut Command::new(common::etcdguard_bin()))
        .args(args)
        .output()
        .unwrap()
}

fn assert_no_secret(out: &Output, what: &str) {
    for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        for s in [SECRET, TOKEN, "DONOTLEAK"] {
            assert!(!text.contains(s), "{what}: {stream} contains {s}:\n{text}");
        }
    }
}

fn moto_store() -> common::Moto {
    let moto = common::Moto::start();
    let snap = tempfile::tempdir().unwrap();
    let (path, _) = real_snapshot(snap.path(), 50);
    let t = (chrono::Utc::now() - chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let store = tempfile::tempdir().unwrap();
    etcd_manager_store(store.path(), &path, &[&t], BOTH);
    upload_dir(
        &moto.endpoint,
        "kops-state",
        "prod.example.com/backups/etcd/main",
        store.path(),
    );
    moto
}

#[test]
fn fake_credentials_never_printed_on_success() {
    let moto = moto_store();
    for log in ["debug", "trace"] {
        let s3 = [
            "--s3-endpoint",
            &moto.endpoint,
            "--s3-path-style",
            "--log",
            log,
        ];
        let out = run(&[&["status", "--output", "json", "--store", URL][..], &s3[..]].concat());
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // not vacuous: debug logging really produced output
        assert!(!out.stderr.is_empty(), "--log {log} printed nothing");
        assert_no_secret(&out, &format!("status --log {log}"));
        let out = run(&[&["check", "--output", "json", "--store", URL][..], &s3[..]].concat());
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["verdict"], "proceed");
        assert_no_secret(&out, &format!("check --log {log}"));
    }
}

#[test]
fn fake_credentials_never_printed_on_errors() {
    let port = common::free_port();
    let ep = format!("http://127.0.0.1:{port}");
    let s3 = [
        "--s3-endpoint",
        &ep,
        "--s3-path-style",
        "--s3-timeout",
        "1s",
        "--log",
        "debug",
    ];
    let out = run(&[&["status", "--output", "json", "--store", URL][..], &s3[..]].concat());
    assert_ne!(out.status.code(), Some(0));
    assert!(!out.stderr.is_empty());
    assert_no_secret(&out, "status on an unreachable endpoint");
    let out = run(&[&["check", "--output", "json", "--store", URL][..], &s3[..]].concat());
    assert_eq!(out.status.code(), Some(1));
    assert_no_secret(&out, "check on an unreachable endpoint");
    // a server that denies access: moto with the bucket missing
    let moto = common::Moto::start();
    let s3 = [
        "--s3-endpoint",
        &moto.endpoint,
        "--s3-path-style",
        "--log",
        "trace",
    ];
    let out = run(&[&["check", "--output", "json", "--store", URL][..], &s3[..]].concat());
    assert_eq!(out.status.code(), Some(1));
    assert_no_secret(&out, "check on a missing bucket");
}

#[test]
fn serve_never_prints_credentials() {
    let moto = moto_store();
    let mut s = Serve::start(
        &[
            "--refresh-interval",
            "1s",
            "--store",
            URL,
            "--s3-endpoint",
            &moto.endpoint,
            "--s3-path-style",
            "--log",
            "debug",
        ],
        |c| {
            env(c);
        },
    );
    std::thread::sleep(Duration::from_secs(5));
    // SIGTERM after a few refreshes, then read everything it printed
    s.stop();
    let out = Output {
        status: Default::default(),
        stdout: s.stdout().into_bytes(),
        stderr: s.stderr().into_bytes(),
    };
    assert!(!out.stderr.is_empty(), "serve --log debug printed nothing");
    assert_no_secret(&out, "serve --log debug");
}
