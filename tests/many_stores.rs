//! Many clusters (issue #21): `status`, `check` and `serve` read a stores file (one store URL
//! per line) as well as repeatable `--store`; a bad file is a one-line exit 2 naming the file
//! and line. Real stores: etcd-manager layouts of real etcd snapshots, on disk and in moto.

mod common;

use common::store::{em_store, etcdguard_env, moto_env, s3_client, upload_dir};
use serde_json::Value;
use std::path::Path;

fn run(args: &[&str]) -> (i32, Value, String, String) {
    let out = etcdguard_env(args, &moto_env());
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let v = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        v,
        stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn a_bad_stores_file_is_exit_2_naming_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("absent.txt").display().to_string();
    let bad = write(
        d.path(),
        "bad.txt",
        "# clusters\ns3://b/prod/backups/etcd/main\n\ngs://b/staging\n",
    );
    let empty = write(d.path(), "empty.txt", "# none yet\n\n");
    let cases = [
        (missing.as_str(), "No such file"),
        (
            bad.as_str(),
            "line 4: invalid store location \"gs://b/staging\"",
        ),
        (empty.as_str(), "no store listed"),
    ];
    for cmd in ["status", "check", "serve"] {
        for (file, want) in cases {
            let (code, _, _, err) = run(&[cmd, "--stores-file", file]);
            assert_eq!(code, 2, "{cmd} {file}: {err}");
            let line = err.trim_end();
            assert!(!line.contains('\n'), "{cmd}: not one line: {err}");
            assert!(
                line.contains(&format!("--stores-file {file}")) && line.contains(want),
                "{cmd} {file}: {err}"
            );
        }
    }
    // JSON callers get the error as JSON too.
    let (code, v, _, _) = run(&["status", "--stores-file", &bad, "--output", "json"]);
    assert_eq!(code, 2);
    assert!(v["error"].as_str().unwrap().contains("line 4"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_check_read_every_store_of_the_file() {
    let moto = common::Moto::start();
    let d = tempfile::tempdir().unwrap();
    let local = d.path().join("local");
    em_store(&local);
    let client = s3_client(&moto.endpoint);
    for cluster in ["a", "b"] {
        upload_dir(
            &client,
            "kops-state",
            &format!("{cluster}/backups/etcd/main"),
            &local,
        )
        .await;
    }
    let local = local.display().to_string();
    let file = write(
        d.path(),
        "stores.txt",
        &format!(
            "# one line per cluster\ns3://kops-state/a/backups/etcd/main  # cluster a\n\n{local}\ns3://kops-state/b/backups/etcd/main\n"
        ),
    );
    let s3 = ["--s3-endpoint", &moto.endpoint, "--s3-path-style"];
    let now = ["--now", "2026-11-23T08:20:00Z"];

    let mut args = vec!["status", "--output", "json", "--stores-file", &file];
    args.extend(s3);
    args.extend(now);
    let (code, v, _, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    let stores = v["stores"].as_array().expect("{\"stores\": [...]}");
    let urls: Vec<&str> = stores
        .iter()
        .map(|s| s["store"].as_str().unwrap())
        .collect();
    assert_eq!(
        urls,
        [
            "s3://kops-state/a/backups/etcd/main/",
            local.as_str(),
            "s3://kops-state/b/backups/etcd/main/"
        ]
    );
    for s in stores {
        assert_eq!(
            s["newestValid"]["name"], "2026-11-23T08:15:00Z-000002",
            "{s}"
        );
    }

    // `--store` comes first; a store named twice is read once; one unreadable store is said
    // under its name and makes the run exit 2, the others are still shown.
    let gone = d.path().join("gone").display().to_string();
    let mut args = vec![
        "status",
        "--store",
        &gone,
        "--store",
        &local,
        "--stores-file",
        &file,
    ];
    args.extend(s3);
    args.extend(now);
    let (code, _, text, err) = run(&args);
    assert_eq!(code, 2, "{text}");
    assert_eq!(text.matches("== ").count(), 4, "{text}");
    assert!(
        text.starts_with(&format!("== {gone} ==\n{gone}: cannot read")),
        "{text}"
    );
    let said: Vec<&str> = err.lines().filter(|l| l.contains("cannot read")).collect();
    assert_eq!(said.len(), 1, "{err}");
    assert!(said[0].contains(&gone), "{err}");

    let mut args = vec!["check", "--output", "json", "--stores-file", &file];
    args.extend(s3);
    args.extend(now);
    let (code, v, _, err) = run(&args);
    assert_eq!(code, 0, "{v:#}\n{err}");
    let doc = v.to_string();
    for url in [
        "s3://kops-state/a/backups/etcd/main",
        &local,
        "s3://kops-state/b/backups/etcd/main",
    ] {
        assert!(doc.contains(url), "check did not read {url}: {v:#}");
    }
}
