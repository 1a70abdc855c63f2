//! Issue #19, fail closed: the built binary never proceeds without the evidence its policies
//! require, reads every input it is given, and gives one coherent plan. The store is the shipped
//! sample (`samples/kops-store`, real etcd snapshots written as etcd-manager writes them; newest
//! backup 2026-11-23T08:30:00Z).

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

const SAMPLE: &str = "samples/kops-store/backups/etcd/main";
/// Ten minutes after the sample's newest backup.
const FRESH: &str = "2026-11-23T08:40:00Z";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn path(rel: &str) -> String {
    root().join(rel).display().to_string()
}

fn run(args: &[&str]) -> (Output, Value) {
    let out = common::etcdguard(args);
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, v)
}

fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn findings<'a>(v: &'a Value, check: &str) -> Vec<&'a Value> {
    v["findings"]
        .as_array()
        .map(|a| a.iter().filter(|f| f["check"] == check).collect())
        .unwrap_or_default()
}

fn severities(v: &Value, check: &str) -> Vec<String> {
    findings(v, check)
        .iter()
        .map(|f| f["severity"].as_str().unwrap_or("").to_string())
        .collect()
}

/// A copy of the sample store (control files can then be removed).
fn sample_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("main");
    copy_dir(&root().join(SAMPLE), &main);
    (dir, main)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Observation 1: a gated change with no store is refused, naming the flag.
#[test]
fn no_store_no_proceed() {
    let (out, v) = run(&[
        "check",
        "--kops-dry-run",
        &path("tests/fixtures/kops/harmless-update.txt"),
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(v["verdict"], "refuse");
    let f = findings(&v, "snapshot.recent");
    assert_eq!(f.len(), 1, "{v:#}");
    assert_eq!(f[0]["severity"], "deny");
    assert!(f[0]["message"]
        .as_str()
        .unwrap()
        .contains("kops-cli-changes"));
    assert!(f[0]["nextStep"].as_str().unwrap().contains("--store"));
    assert!(f[0]["nextStep"]
        .as_str()
        .unwrap()
        .contains("ETCDGUARD_STORE"));

    // The same for an object change (KubeadmControlPlane upgrade).
    let (out, v) = run(&[
        "check",
        "--object-old",
        &path("tests/fixtures/objects/kcp-old.yaml"),
        "--object-new",
        &path("tests/fixtures/objects/kcp-new.yaml"),
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(severities(&v, "snapshot.recent"), ["deny"]);

    // Overridable as any refusal: --mode warn proceeds with the warning.
    let (out, v) = run(&[
        "check",
        "--kops-dry-run",
        &path("tests/fixtures/kops/harmless-update.txt"),
        "--mode",
        "warn",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(v["verdict"], "warn");
}

/// Observation 1, webhook: `serve` refuses to start without the store its policies need.
#[test]
fn serve_without_a_store_does_not_start() {
    let out = common::etcdguard(&["serve", "--self-signed", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--store"), "{err}");
    assert!(err.contains("ETCDGUARD_STORE"), "{err}");
    assert!(err.contains("kops-cli-changes"), "{err}");
}

/// A policy that needs live etcd makes `serve` require endpoints as well.
#[test]
fn serve_without_required_etcd_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.yaml");
    std::fs::write(
        &policy,
        "apiVersion: etcdguard.dev/v1alpha1\nkind: GatePolicy\nmetadata:\n  name: needs-etcd\n\
         spec:\n  mode: enforce\n  match:\n    sources: [kops-dry-run]\n  require:\n    liveEtcd: true\n",
    )
    .unwrap();
    let out = common::etcdguard(&[
        "serve",
        "--self-signed",
        "--listen",
        "127.0.0.1:0",
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--etcd-endpoints"), "{err}");
    assert!(err.contains("needs-etcd"), "{err}");
    // And `check` refuses a change that policy matches when no endpoint is given.
    let (out, v) = run(&[
        "check",
        "--store",
        &path(SAMPLE),
        "--kops-dry-run",
        &path("tests/fixtures/kops/harmless-update.txt"),
        "--policy",
        policy.to_str().unwrap(),
        "--now",
        FRESH,
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(severities(&v, "etcd.healthy"), ["deny"]);
}

/// Observation 2: `--lifecycle FILE` with a local store is judged (with the S3 location the
/// store mirrors) or the run fails; it is never ignored.
#[test]
fn lifecycle_file_with_a_local_store_is_judged_or_refused() {
    let rules = path("tests/fixtures/lifecycle/kops-16416.xml");
    // No S3 location known: a configuration error naming the flag.
    let (out, _) = run(&[
        "check",
        "--store",
        &path(SAMPLE),
        "--lifecycle",
        &rules,
        "--now",
        FRESH,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--lifecycle-prefix"));
    // With it: the kops#16416 rule deletes the control files.
    let (out, v) = run(&[
        "check",
        "--store",
        &path(SAMPLE),
        "--lifecycle",
        &rules,
        "--lifecycle-prefix",
        "s3://kops-state/prod.example.com/backups/etcd/main",
        "--now",
        FRESH,
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(severities(&v, "lifecycle.deletes-control-files"), ["deny"]);
    assert_eq!(severities(&v, "lifecycle.expires-snapshots"), ["deny"]);
    // An unreadable rules file is an error whatever the store.
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("random.bin");
    std::fs::write(&junk, [0x8b_u8, 0xff, 0x00, 0x13, 0x37, 0xfe]).unwrap();
    let (out, _) = run(&[
        "check",
        "--store",
        &path(SAMPLE),
        "--lifecycle",
        junk.to_str().unwrap(),
        "--now",
        FRESH,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("random.bin"));
}

/// Observation 3: the shipped CI examples do not loosen the shipped policies, and `--max-age`
/// tightens a policy's age but never loosens it.
#[test]
fn ci_examples_never_weaken_the_policies() {
    for f in ["deploy/ci/github-actions.yml", "deploy/ci/gitlab-ci.yml"] {
        let text = std::fs::read_to_string(root().join(f)).unwrap();
        assert!(!text.contains("--max-age"), "{f} passes --max-age");
        assert!(!text.contains("--mode"), "{f} passes --mode");
    }
    let gh = std::fs::read_to_string(root().join("deploy/ci/github-actions.yml")).unwrap();
    let protoc = gh.find("protobuf-compiler").expect("installs protoc");
    assert!(protoc < gh.find("cargo install").unwrap());

    // The sample's newest backup is 2h old at this time: the kops policy (1h) refuses, with
    // or without --max-age 3h.
    let two_hours = "2026-11-23T10:30:00Z";
    let dry_run = path("tests/fixtures/kops/harmless-update.txt");
    let sample = path(SAMPLE);
    for extra in [&[][..], &["--max-age", "3h"][..]] {
        let args = [
            &[
                "check",
                "--store",
                &sample,
                "--kops-dry-run",
                &dry_run,
                "--now",
                two_hours,
                "--output",
                "json",
            ][..],
            extra,
        ]
        .concat();
        let (out, v) = run(&args);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {}", text(&out));
        assert_eq!(severities(&v, "snapshot.recent"), ["deny"], "{extra:?}");
    }
    // A stricter --max-age is honoured.
    let (out, v) = run(&[
        "check",
        "--store",
        &path(SAMPLE),
        "--kops-dry-run",
        &dry_run,
        "--now",
        "2026-11-23T08:55:00Z",
        "--max-age",
        "20m",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(severities(&v, "snapshot.recent"), ["deny"]);
}

/// Observation 4: a backup dated beyond the clock skew is refused, not called recent.
#[test]
fn a_future_backup_is_refused() {
    let (out, v) = run(&[
        "check",
        "--store",
        &path(SAMPLE),
        "--now",
        "2026-11-22T08:42:00Z",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let f = findings(&v, "snapshot.recent");
    assert_eq!(f[0]["severity"], "deny");
    let msg = f[0]["message"].as_str().unwrap();
    assert!(msg.contains("ahead of now"), "{msg}");
    assert!(!msg.contains("future old"), "{msg}");
}

/// Observation 5: `status` judges the age and says when backups appear to have stopped; its
/// exit code stays 0 for a readable store.
#[test]
fn status_judges_age() {
    let out = common::etcdguard(&[
        "status",
        "--store",
        &path(SAMPLE),
        "--now",
        "2027-02-21T08:30:00Z",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(t.contains("OLDER than --max-age 3h"), "{t}");
    assert!(t.contains("backups appear to have stopped"), "{t}");
    assert!(t.contains("find out why"), "{t}");

    let (out, v) = run(&[
        "status",
        "--store",
        &path(SAMPLE),
        "--now",
        FRESH,
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(v["recency"]["withinMaxAge"], true, "{v:#}");
    assert_eq!(v["recency"]["backupsStopped"], false);
    let (_, v) = run(&[
        "status",
        "--store",
        &path(SAMPLE),
        "--now",
        FRESH,
        "--max-age",
        "5m",
        "--output",
        "json",
    ]);
    assert_eq!(v["recency"]["withinMaxAge"], false, "{v:#}");
}

/// Observation 6 (second part): a dry-run that names its state store is compared with --store.
#[test]
fn a_store_of_another_cluster_is_refused() {
    let dry_run = path("tests/fixtures/kops/create-spec-current.txt");
    let (out, v) = run(&[
        "check",
        "--store",
        "s3://other-state/prod.k8s.acme.example/backups/etcd/main",
        "--s3-endpoint",
        "http://127.0.0.1:9",
        "--kops-dry-run",
        &dry_run,
        "--now",
        FRESH,
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let f = findings(&v, "store.matches-change");
    assert_eq!(f.len(), 1, "{v:#}");
    assert_eq!(f[0]["severity"], "deny");
    assert!(f[0]["message"]
        .as_str()
        .unwrap()
        .contains("s3://acme-kops-state/prod.k8s.acme.example/backups/etcd/main"));
}

/// Observation 7: one coherent plan. With the spec deleted and a dry-run that re-creates it,
/// no step says "restore it instead of letting kops recreate it"; on a healthy store, no step
/// says the store has no spec.
#[test]
fn next_steps_do_not_contradict() {
    let dry_run = path("tests/fixtures/kops/create-spec-current.txt");
    let (_dir, main) = sample_copy();
    std::fs::remove_file(main.join("control/etcd-cluster-spec")).unwrap();
    let (out, v) = run(&[
        "check",
        "--store",
        main.to_str().unwrap(),
        "--kops-dry-run",
        &dry_run,
        "--now",
        FRESH,
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let steps: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["nextStep"].as_str())
        .collect();
    assert!(
        steps.iter().any(|s| s.contains("this change re-creates")),
        "{steps:#?}"
    );
    assert!(
        !steps.iter().any(|s| s.contains("instead of letting kops")),
        "{steps:#?}"
    );

    let (_, v) = run(&[
        "check",
        "--store",
        &path(SAMPLE),
        "--kops-dry-run",
        &dry_run,
        "--now",
        FRESH,
        "--output",
        "json",
    ]);
    for f in v["findings"].as_array().unwrap() {
        let all = format!("{} {}", f["message"], f["nextStep"]);
        assert!(!all.contains("has no etcd-cluster-spec"), "{f:#}");
    }
    // kops creates a spec that main's store has: the dry-run and the store disagree (refused,
    // saying so); events' store was not given, so that one is refused as unknown.
    let seeds = findings(&v, "change.seeds-new-cluster");
    assert!(seeds
        .iter()
        .any(|f| f["severity"] == "deny" && f["message"].as_str().unwrap().contains("disagree")));
    assert!(seeds.iter().any(|f| f["severity"] == "deny"
        && f["message"]
            .as_str()
            .unwrap()
            .contains("which was not read")));
}

/// Observation 8: break-glass on the CLI, honoured by the same rules as the webhook; `check`
/// and `policy explain` agree.
#[test]
fn break_glass_on_the_cli() {
    let dry_run = path("tests/fixtures/kops/harmless-update.txt");
    let stale = "2026-11-23T12:00:00Z";
    let sample = path(SAMPLE);
    let base = [
        "check",
        "--store",
        &sample,
        "--kops-dry-run",
        &dry_run,
        "--now",
        stale,
        "--output",
        "json",
    ];
    // Refused without it.
    let (out, _) = run(&base);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // Honoured for a listed group.
    let args = [
        &base[..],
        &[
            "--annotation",
            "etcdguard.dev/break-glass=INC-42 restore drill",
            "--user",
            "alice",
            "--group",
            "system:masters",
        ][..],
    ]
    .concat();
    let (out, v) = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(v["verdict"], "warn");
    assert_eq!(v["exception"]["reason"], "INC-42 restore drill", "{v:#}");
    // Refused for a user the policy does not list, saying why.
    let args = [
        &base[..],
        &[
            "--annotation",
            "etcdguard.dev/break-glass=INC-42",
            "--user",
            "mallory",
        ][..],
    ]
    .concat();
    let (out, _) = run(&args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // `policy explain` says the same for both requesters.
    for (who, honoured) in [
        (&["--group", "system:masters"][..], true),
        (&["--user", "mallory"][..], false),
    ] {
        let (out, v) = run(&[
            &[
                "policy",
                "explain",
                "--source",
                "kops-dry-run",
                "--annotation",
                "etcdguard.dev/break-glass=INC-42",
                "--output",
                "json",
            ][..],
            who,
        ]
        .concat());
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let kops = v["policies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["policy"] == "kops-cli-changes")
            .unwrap();
        let decision = kops["exception"]["decision"].as_str().unwrap();
        assert_eq!(decision == "honoured", honoured, "{who:?}: {kops:#}");
    }
    // Not KEY=VALUE, or no change to break glass for: usage errors.
    let (out, _) = run(&[&base[..], &["--annotation", "novalue"][..]].concat());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let (out, _) = run(&[
        "check",
        "--store",
        &path(SAMPLE),
        "--annotation",
        "etcdguard.dev/break-glass=x",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// Issue #24, observation 7: local stores follow symbolic links (with loop protection) and
/// report entries that are not regular files under `ignored` with what they are, never as
/// "missing".
#[test]
fn local_stores_follow_links_and_name_special_files() {
    let status = |store: &Path| {
        let (out, v) = run(&[
            "status",
            "--store",
            store.to_str().unwrap(),
            "--now",
            FRESH,
            "--output",
            "json",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        v
    };
    let ignored = |v: &Value| -> Vec<String> {
        v["ignored"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                format!(
                    "{} {}",
                    i["key"].as_str().unwrap(),
                    i["reason"].as_str().unwrap()
                )
            })
            .collect()
    };
    // The newest backup's etcd.backup.gz is a symbolic link to a valid file elsewhere: valid.
    let (dir, main) = sample_copy();
    let newest = main.join("2026-11-23T08:30:00Z-000003/etcd.backup.gz");
    let elsewhere = dir.path().join("elsewhere.gz");
    std::fs::rename(&newest, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &newest).unwrap();
    // A folder link back to the store root: a loop, not followed twice.
    std::os::unix::fs::symlink(&main, main.join("loop")).unwrap();
    let v = status(&main);
    assert_eq!(
        v["newestValid"]["name"], "2026-11-23T08:30:00Z-000003",
        "{v:#}"
    );

    // control/etcd-cluster-spec as a self-looping link: unreadable, not "missing".
    let spec = main.join("control/etcd-cluster-spec");
    std::fs::remove_file(&spec).unwrap();
    std::os::unix::fs::symlink(&spec, &spec).unwrap();
    let v = status(&main);
    let state = v["control"]["spec"].to_string();
    assert!(!state.contains("missing"), "{state}");
    assert!(state.contains("loop"), "{state}");

    // A FIFO as the newest backup's data file: named, the backup is not restorable, and the
    // FIFO is listed under `ignored`; a folder whose meta is a FIFO is listed there too.
    let (_dir2, main2) = sample_copy();
    let data = main2.join("2026-11-23T08:30:00Z-000003/etcd.backup.gz");
    std::fs::remove_file(&data).unwrap();
    assert!(std::process::Command::new("mkfifo")
        .arg(&data)
        .status()
        .unwrap()
        .success());
    let meta = main2.join("2026-11-23T08:15:00Z-000002/_etcd_backup.meta");
    std::fs::remove_file(&meta).unwrap();
    assert!(std::process::Command::new("mkfifo")
        .arg(&meta)
        .status()
        .unwrap()
        .success());
    let v = status(&main2);
    let newest = v["newest"].to_string();
    assert!(newest.contains("FIFO"), "{v:#}");
    assert!(!newest.contains("missing"), "{v:#}");
    let ign = ignored(&v);
    assert!(
        ign.iter()
            .any(|i| i.contains("000003/etcd.backup.gz") && i.contains("FIFO")),
        "{ign:?}"
    );
    assert!(
        ign.iter()
            .any(|i| i.contains("000002/_etcd_backup.meta") && i.contains("FIFO")),
        "{ign:?}"
    );
}
