//! Several backup series under one prefix (issue #20), against real parts: real etcd snapshots,
//! a temp dir and the real moto S3 server.
//!
//! The shape is Cray-HPE CSM's `etcd-backup` bucket (`Cray-HPE/docs-csm`,
//! `operations/kubernetes/Restore_Bare-Metal_etcd_Clusters_from_an_S3_Snapshot.md`: the bare
//! metal etcd backups are `bare-metal/etcd-backup-<%Y-%m-%d-%H-%M-%S>.tar.gz`, each a tar.gz of
//! `etcd-backup-<ts>/etcd-dump.bin`), beside one folder per etcd-operator cluster, each backed up
//! as `<cluster>/etcd.backup_v<rev>_<UTC 2006-01-02-15:04:05>` (`coreos/etcd-operator`
//! `pkg/backup/backup_manager.go`: the raw snapshot stream). Each series is judged on its own.

mod common;

use common::store::{etcdguard_env, moto_env, put, s3_client, snaps, upload_dir};
use etcdguard::store::{self, InspectOptions, Layout, S3Options, StoreUrl, Validity};
use serde_json::Value;
use std::path::Path;

const NOW: &str = "2026-11-23T08:20:00Z";

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(NOW)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// `etcd-backup-<ts>.tar.gz` holding `etcd-backup-<ts>/etcd-dump.bin`, as CSM's
/// kube-etcdbackup writes it.
fn csm_tarball(stamp: &str, snapshot: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut h = tar::Header::new_gnu();
    h.set_size(snapshot.len() as u64);
    h.set_mode(0o600);
    h.set_cksum();
    b.append_data(
        &mut h,
        format!("etcd-backup-{stamp}/etcd-dump.bin"),
        snapshot,
    )
    .unwrap();
    b.into_inner().unwrap().finish().unwrap()
}

/// The CSM bucket: `bare-metal/` (fresh), `cray-bss/` (fresh) and `cray-bos/` (a day old).
fn csm_bucket(root: &Path) {
    let raw = std::fs::read(&snaps().new.0).unwrap();
    let rev = snaps().new.1;
    for m in [30, 20, 10] {
        let t = now() - chrono::Duration::minutes(m);
        let stamp = t.format("%Y-%m-%d-%H-%M-%S").to_string();
        put(
            root,
            &format!("bare-metal/etcd-backup-{stamp}.tar.gz"),
            &csm_tarball(&stamp, &raw),
        );
    }
    for (cluster, hours) in [("cray-bss", [3, 2, 1]), ("cray-bos", [26, 25, 24])] {
        for h in hours {
            let t = now() - chrono::Duration::hours(h) + chrono::Duration::minutes(10);
            let stamp = t.format("%Y-%m-%d-%H:%M:%S");
            put(root, &format!("{cluster}/etcd.backup_v{rev}_{stamp}"), &raw);
        }
    }
}

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, Value, String) {
    let out = etcdguard_env(args, env);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn recent_denials(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "snapshot.recent" && f["severity"] == "deny")
        .map(|f| f["details"]["store"].as_str().unwrap_or("").to_string())
        .collect()
}

/// `check`, `status` and `--series` on one store given at the bucket root.
fn series_cli(store: &str, env: &[(&str, &str)], extra: &[&str]) {
    let check = |more: &[&str]| {
        let mut a = vec!["check", "--output", "json", "--store", store, "--now", NOW];
        a.extend_from_slice(extra);
        a.extend_from_slice(more);
        run(&a, env)
    };
    // The stale cluster refuses although the other two series are fresh.
    let (code, v, err) = check(&[]);
    assert_eq!(code, 1, "{err}\n{v:#}");
    assert_eq!(v["verdict"], "refuse");
    let denied = recent_denials(&v);
    assert_eq!(denied.len(), 1, "{v:#}");
    assert!(denied[0].ends_with("/cray-bos/"), "{denied:?}");
    let msg = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "snapshot.recent" && f["severity"] == "deny")
        .unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("cray-bos/"), "{msg}");

    // --series picks: the fresh ones proceed, the stale one refuses.
    let (code, v, err) = check(&["--series", "cray-bss"]);
    assert_eq!(code, 0, "{err}\n{v:#}");
    let (code, _, err) = check(&["--series", "bare-metal,cray-bss"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = check(&["--series", "cray-bos"]);
    assert_eq!(code, 1);
    // An unknown series is a usage error naming the series found.
    let (code, _, err) = check(&["--series", "cray-nope"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cray-nope"), "{err}");
    assert!(err.contains("bare-metal, cray-bos, cray-bss"), "{err}");

    // status lists each series.
    let mut a = vec!["status", "--output", "json", "--store", store, "--now", NOW];
    a.extend_from_slice(extra);
    let (code, v, err) = run(&a, env);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        v["seriesFound"],
        serde_json::json!(["bare-metal", "cray-bos", "cray-bss"])
    );
    let series = v["series"].as_array().expect("series array");
    let got: Vec<(&str, &str, bool)> = series
        .iter()
        .map(|s| {
            (
                s["series"].as_str().unwrap(),
                s["layout"].as_str().unwrap(),
                s["recency"]["withinMaxAge"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("bare-metal", "csm", true),
            ("cray-bos", "etcd-operator", false),
            ("cray-bss", "etcd-operator", true),
        ]
    );
    for s in series {
        assert_eq!(s["newestValid"]["validity"], "valid", "{s:#}");
        assert_eq!(s["backups"]["count"], 3, "{s:#}");
        let name = s["series"].as_str().unwrap();
        assert!(s["store"].as_str().unwrap().ends_with(&format!("/{name}/")));
    }
    // Text: one block per series.
    let mut a = vec!["status", "--store", store, "--now", NOW];
    a.extend_from_slice(extra);
    let out = etcdguard_env(&a, env);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(text.contains("holds 3 backup series (bare-metal, cray-bos, cray-bss)"));
    assert_eq!(text.matches("\nseries:  ").count(), 3, "{text}");
    // One series selected: the single-store document, naming its series.
    a.extend_from_slice(&["--series", "bare-metal", "--output", "json"]);
    let (code, v, _) = run(&a, env);
    assert_eq!(code, 0);
    assert_eq!(v["series"], "bare-metal");
    assert_eq!(v["layout"], "csm");
    // Unknown series on status: exit 2.
    let mut a = vec!["status", "--store", store, "--series", "x"];
    a.extend_from_slice(extra);
    let (code, _, err) = run(&a, env);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bare-metal, cray-bos, cray-bss"), "{err}");
}

#[test]
fn csm_bucket_in_a_directory_is_three_series() {
    let d = tempfile::tempdir().unwrap();
    csm_bucket(d.path());
    series_cli(d.path().to_str().unwrap(), &[], &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csm_bucket_on_s3_is_three_series_from_one_listing() {
    let moto = common::Moto::start();
    let d = tempfile::tempdir().unwrap();
    csm_bucket(d.path());
    upload_dir(&s3_client(&moto.endpoint), "etcd-backup", "", d.path()).await;

    for (k, v) in moto_env() {
        std::env::set_var(k, v);
    }
    std::env::remove_var("AWS_ENDPOINT_URL");
    let url = StoreUrl::parse("s3://etcd-backup").unwrap();
    let s3 = S3Options {
        endpoint: Some(moto.endpoint.clone()),
        path_style: true,
        ..S3Options::default()
    };
    let backend = store::Backend::open(&url, &s3).await.unwrap();
    let all = store::inspect_backend_all(&backend, &url.to_string(), &InspectOptions::new(now()))
        .await
        .unwrap();
    assert_eq!(all.series_found, ["bare-metal", "cray-bos", "cray-bss"]);
    let layouts: Vec<_> = all.facts.iter().map(|f| f.layout).collect();
    assert_eq!(
        layouts,
        [
            Some(Layout::Csm),
            Some(Layout::EtcdOperator),
            Some(Layout::EtcdOperator)
        ]
    );
    for f in &all.facts {
        let v = f.newest_valid.as_ref().expect("valid backup");
        assert_eq!(v.validity, Validity::Valid);
        assert_eq!(v.report.as_ref().unwrap().revision, Some(snaps().new.1));
    }
    // Listing cost does not grow with the series: the etcd-manager window listing and one
    // full listing, as for one series; then one GET per newest backup, and two per series for
    // the continuity check (the backup before the newest, and the oldest of the window).
    let log = backend.request_log().unwrap().requests();
    let lists = log.iter().filter(|r| r.path.contains("list-type")).count();
    assert_eq!(lists, 2, "{log:#?}");
    assert_eq!(log.len(), 2 + 3 + 3 * 2, "{log:#?}");
    // Without --series, the single-store API refuses to pick one.
    let err = store::inspect_backend(&backend, "s3://etcd-backup/", &InspectOptions::new(now()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("several backup series"), "{err}");

    let env = moto_env();
    series_cli(
        "s3://etcd-backup",
        &env,
        &["--s3-endpoint", &moto.endpoint, "--s3-path-style"],
    );
}
