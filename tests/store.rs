//! Backup stores against real parts: snapshots from a real etcd, a temp dir, and the real moto
//! S3 server. Issue #3.

mod common;

use common::store::{
    em_backup, em_control, em_store, etcdguard_env, gzip, moto_env, put, s3_client, snaps,
    upload_dir,
};
use etcdguard::store::{
    self, ControlOutcome, InspectOptions, Layout, S3Options, StoreUrl, Validity,
};
use serde_json::Value;
use std::time::{Duration, Instant};

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-11-23T08:20:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// A `static_kuberesources_*.tar.gz` as cluster-backup.sh writes it (gzip tar of
/// `static-pod-resources/<component>-pod-<N>/…`).
fn static_resources() -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    let body = b"apiVersion: v1\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(body.len() as u64);
    h.set_mode(0o600);
    h.set_cksum();
    b.append_data(
        &mut h,
        "static-pod-resources/etcd-pod-3/etcd-pod.yaml",
        &body[..],
    )
    .unwrap();
    b.into_inner().unwrap().finish().unwrap()
}

fn set_moto_env() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for (k, v) in moto_env() {
            std::env::set_var(k, v);
        }
        std::env::remove_var("AWS_ENDPOINT_URL");
    });
}

async fn inspect_local(dir: &std::path::Path, opts: &InspectOptions) -> store::StoreFacts {
    let url = StoreUrl::parse(dir.to_str().unwrap()).unwrap();
    store::inspect(&url, &S3Options::default(), opts)
        .await
        .expect("inspect local store")
}

fn status_json(args: &[&str], env: &[(&str, &str)]) -> (i32, Value, String) {
    let mut all = vec!["status", "--output", "json"];
    all.extend_from_slice(args);
    let out = etcdguard_env(&all, env);
    let code = out.status.code().unwrap_or(-1);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (code, v, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_manager_local_store_newest_valid_with_control_files() {
    let d = tempfile::tempdir().unwrap();
    em_store(d.path());
    let f = inspect_local(d.path(), &InspectOptions::new(now())).await;
    assert_eq!(f.layout, Some(Layout::EtcdManager));
    let newest = f.newest.as_ref().expect("newest");
    assert_eq!(newest.name, "2026-11-23T08:15:00Z-000002");
    assert_eq!(newest.age_seconds, 300);
    assert_eq!(newest.validity, Validity::Valid, "{:?}", newest.reason);
    let report = newest.report.as_ref().unwrap();
    assert_eq!(report.revision, Some(snaps().new.1));
    assert_eq!(f.newest_valid.as_ref().unwrap().name, newest.name);
    assert_eq!(f.backups.count, 2);
    assert_eq!(f.backups.median_interval_seconds, Some(900));
    let c = f.control.as_ref().unwrap();
    assert_eq!(c.outcome, ControlOutcome::Normal);
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    assert!(f.ignored.is_empty(), "{:?}", f.ignored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_newest_walks_back_to_older_valid() {
    let d = tempfile::tempdir().unwrap();
    em_store(d.path());
    let mut bad = gzip(&snaps().new.0);
    let mid = bad.len() / 2;
    bad.truncate(mid); // a cut upload
    em_backup(d.path(), "2026-11-23T08:18:00Z-000003", Some(&bad), true);
    let f = inspect_local(d.path(), &InspectOptions::new(now())).await;
    let newest = f.newest.as_ref().unwrap();
    assert_eq!(newest.name, "2026-11-23T08:18:00Z-000003");
    assert_ne!(newest.validity, Validity::Valid);
    let valid = f.newest_valid.as_ref().unwrap();
    assert_eq!(valid.name, "2026-11-23T08:15:00Z-000002");
    assert_eq!(f.walk_back.checked, 2);

    // A walk-back limit of 1 stops at the corrupt one and says so.
    let mut o = InspectOptions::new(now());
    o.max_walk_back = 1;
    let f = inspect_local(d.path(), &o).await;
    assert!(f.newest_valid.is_none());
    assert!(f.walk_back.limit_reached);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meta_without_data_and_data_without_meta() {
    let d = tempfile::tempdir().unwrap();
    em_store(d.path());
    // Data without meta: an unfinished upload; etcd-manager does not count it.
    em_backup(
        d.path(),
        "2026-11-23T08:19:00Z-000004",
        Some(&gzip(&snaps().new.0)),
        false,
    );
    // Meta without data: counted by etcd-manager, but not restorable.
    em_backup(d.path(), "2026-11-23T08:17:00Z-000003", None, true);
    let f = inspect_local(d.path(), &InspectOptions::new(now())).await;
    let newest = f.newest.as_ref().unwrap();
    assert_eq!(newest.name, "2026-11-23T08:17:00Z-000003");
    assert_eq!(newest.validity, Validity::Invalid);
    assert!(
        newest.reason.as_ref().unwrap().contains("missing"),
        "{:?}",
        newest.reason
    );
    assert_eq!(
        f.newest_valid.as_ref().unwrap().name,
        "2026-11-23T08:15:00Z-000002"
    );
    assert!(f
        .ignored
        .iter()
        .any(|i| i.key.starts_with("2026-11-23T08:19:00Z-000004/")));
}

#[test]
fn control_file_combinations_via_cli() {
    type Case<'a> = (&'a str, bool, bool, Option<&'a [u8]>, &'a str);
    let cases: [Case; 5] = [
        ("normal", true, true, None, "normal"),
        ("spec missing", false, true, None, "backups-stopped"),
        (
            "created missing",
            true,
            false,
            None,
            "will-seed-new-cluster",
        ),
        (
            "both missing",
            false,
            false,
            None,
            "idle-will-seed-when-spec-written",
        ),
        (
            "garbled spec",
            false,
            true,
            Some(b"{\"memberCount\": 3,"),
            "controller-error",
        ),
    ];
    for (what, spec, created, garbled, expect) in cases {
        let d = tempfile::tempdir().unwrap();
        let s = snaps();
        em_backup(
            d.path(),
            "2026-11-23T08:15:00Z-000002",
            Some(&gzip(&s.new.0)),
            true,
        );
        em_control(d.path(), spec, created);
        if let Some(g) = garbled {
            put(d.path(), "control/etcd-cluster-spec", g);
        }
        let (code, v, err) = status_json(
            &[
                "--store",
                d.path().to_str().unwrap(),
                "--now",
                "2026-11-23T08:20:00Z",
            ],
            &[],
        );
        assert_eq!(code, 0, "{what}: {err}");
        assert_eq!(v["control"]["outcome"], expect, "{what}: {v}");
        assert!(v["control"]["meaning"].as_str().unwrap().len() > 20);
    }
}

#[test]
fn stale_vs_fresh_text_output() {
    let d = tempfile::tempdir().unwrap();
    em_store(d.path());
    let dir = d.path().to_str().unwrap();
    let out = etcdguard_env(
        &["status", "--store", dir, "--now", "2026-11-23T12:27:00Z"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("4h 12m old"), "{text}");
    assert!(text.contains("VALID"), "{text}");
    // Three days later the 48 h window is empty; it widens and still finds the backups.
    let (code, v, _) = status_json(&["--store", dir, "--now", "2026-11-26T08:15:00Z"], &[]);
    assert_eq!(code, 0);
    assert_eq!(v["newest"]["ageSeconds"], 3 * 86400);
    assert_eq!(v["newest"]["validity"], "valid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_layouts_with_real_snapshots() {
    let s = snaps();
    let raw = std::fs::read(&s.new.0).unwrap();
    let old = std::fs::read(&s.old.0).unwrap();
    let gz = gzip(&s.new.0);
    let tgz = {
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        let mut h = tar::Header::new_gnu();
        h.set_size(raw.len() as u64);
        h.set_mode(0o600);
        h.set_cksum();
        b.append_data(
            &mut h,
            "etcd-backup-2026-11-23-08-10-00/etcd-dump.bin",
            raw.as_slice(),
        )
        .unwrap();
        b.into_inner().unwrap().finish().unwrap()
    };
    type Files<'a> = Vec<(&'a str, Vec<u8>)>;
    let cases: Vec<(Layout, Files, &str)> = vec![
        (
            Layout::Openshift,
            vec![
                ("snapshot_2026-11-23_080000.db", old.clone()),
                (
                    "static_kuberesources_2026-11-23_080000.tar.gz",
                    static_resources(),
                ),
                (
                    "snapshot_2026-11-23_081000__POSSIBLY_DIRTY__.db",
                    raw.clone(),
                ),
                // cluster-restore.sh needs the tarball beside the snapshot (issue #20).
                (
                    "static_kuberesources_2026-11-23_081000__POSSIBLY_DIRTY__.tar.gz",
                    static_resources(),
                ),
            ],
            "snapshot_2026-11-23_081000__POSSIBLY_DIRTY__.db",
        ),
        (
            Layout::K3s,
            vec![
                ("etcd-snapshot-node-1-1763885400", old.clone()),
                ("etcd-snapshot-node-1-1763885700", raw.clone()),
                (".metadata/etcd-snapshot-node-1-1763885700", b"{}".to_vec()),
            ],
            "etcd-snapshot-node-1-1763885700",
        ),
        (
            Layout::Csm,
            vec![("bare-metal/etcd-backup-2026-11-23-08-10-00.tar.gz", tgz)],
            "bare-metal/etcd-backup-2026-11-23-08-10-00.tar.gz",
        ),
        (
            Layout::EtcdOperator,
            vec![("cray-bss/etcd.backup_v99_2026-11-23-08:10:00", raw.clone())],
            "cray-bss/etcd.backup_v99_2026-11-23-08:10:00",
        ),
        (
            Layout::Gardener,
            vec![
                (
                    "etcd-main/v2/Full-00000000-00000300-1763885400.gz",
                    gz.clone(),
                ),
                (
                    "etcd-main/v2/Incr-00000301-00000400-1763885500.gz",
                    b"{}".to_vec(),
                ),
            ],
            "etcd-main/v2/Full-00000000-00000300-1763885400.gz",
        ),
        (
            Layout::Plain,
            vec![
                ("backups/cluster.db", raw.clone()),
                ("notes.txt", b"n".to_vec()),
            ],
            "backups/cluster.db",
        ),
    ];
    for (layout, files, expect) in cases {
        let d = tempfile::tempdir().unwrap();
        for (k, b) in &files {
            put(d.path(), k, b);
        }
        let f = inspect_local(d.path(), &InspectOptions::new(now())).await;
        assert_eq!(f.layout, Some(layout), "{layout}: {:?}", f.ignored);
        let newest = f
            .newest
            .as_ref()
            .unwrap_or_else(|| panic!("{layout}: no backup"));
        assert_eq!(newest.data_key, expect, "{layout}");
        assert_eq!(
            newest.validity,
            Validity::Valid,
            "{layout}: {:?}",
            newest.reason
        );
        assert_eq!(
            newest.report.as_ref().unwrap().revision,
            Some(s.new.1),
            "{layout}"
        );
        assert!(f.control.is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_store_is_read_with_get_and_list_only() {
    set_moto_env();
    let moto = common::Moto::start();
    let d = tempfile::tempdir().unwrap();
    em_store(d.path());
    let mut bad = gzip(&snaps().new.0);
    let last = bad.len() - 20;
    if let Some(b) = bad.get_mut(last) {
        *b ^= 0xff; // corrupt the gzip body: CRC or inflate fails
    }
    em_backup(d.path(), "2026-11-23T08:18:00Z-000003", Some(&bad), true);
    let client = s3_client(&moto.endpoint);
    upload_dir(
        &client,
        "kops-state",
        "c.example.com/backups/etcd/main",
        d.path(),
    )
    .await;

    let url = StoreUrl::parse("s3://kops-state/c.example.com/backups/etcd/main").unwrap();
    let s3 = S3Options {
        endpoint: Some(moto.endpoint.clone()),
        path_style: true,
        ..S3Options::default()
    };
    let backend = store::Backend::open(&url, &s3).await.unwrap();
    let f = store::inspect_backend(&backend, &url.to_string(), &InspectOptions::new(now()))
        .await
        .unwrap();
    assert_eq!(f.layout, Some(Layout::EtcdManager));
    assert_eq!(
        f.newest.as_ref().unwrap().name,
        "2026-11-23T08:18:00Z-000003"
    );
    assert_ne!(f.newest.as_ref().unwrap().validity, Validity::Valid);
    let valid = f.newest_valid.as_ref().unwrap();
    assert_eq!(valid.name, "2026-11-23T08:15:00Z-000002");
    assert_eq!(valid.report.as_ref().unwrap().revision, Some(snaps().new.1));
    assert_eq!(f.control.as_ref().unwrap().outcome, ControlOutcome::Normal);
    let log = backend.request_log().unwrap().requests();
    assert!(!log.is_empty());
    for r in &log {
        assert!(
            r.method == "GET" || r.method == "HEAD",
            "non-read request {r:?}"
        );
    }
    // 1 LIST + 2 × (meta GET + data GET) + 2 control GETs, and the backup before the newest
    // valid one (meta GET + data GET) for the continuity check.
    assert_eq!(log.len(), 9, "{log:#?}");
    assert_eq!(f.s3_requests, Some(9));
    assert_eq!(
        f.continuity.state,
        etcdguard::continuity::State::Continuous,
        "{:?}",
        f.continuity
    );

    // The interceptor refuses writes even if code tried one: nothing reaches moto.
    if let store::Backend::S3 { client, .. } = &backend {
        let put = client
            .put_object()
            .bucket("kops-state")
            .key("c.example.com/backups/etcd/main/x")
            .body(b"x".to_vec().into())
            .send()
            .await;
        let err = format!("{:?}", put.expect_err("PUT must be refused"));
        assert!(err.contains("read-only"), "{err}");
        let head = client
            .head_object()
            .bucket("kops-state")
            .key("c.example.com/backups/etcd/main/x")
            .send()
            .await;
        assert!(
            head.is_err(),
            "the refused PUT must not have created the object"
        );
    } else {
        panic!("expected an S3 backend");
    }
    // The CLI reads the same store through --s3-endpoint / --s3-path-style.
    let (code, v, err) = status_json(
        &[
            "--store",
            "s3://kops-state/c.example.com/backups/etcd/main",
            "--s3-endpoint",
            &moto.endpoint,
            "--s3-path-style",
            "--now",
            "2026-11-23T08:20:00Z",
        ],
        &moto_env(),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["newestValid"]["name"], "2026-11-23T08:15:00Z-000002");
}

#[test]
fn unknown_bucket_is_a_clear_error_exit_2() {
    let moto = common::Moto::start();
    let (code, v, err) = status_json(
        &[
            "--store",
            "s3://no-such-bucket/x",
            "--s3-endpoint",
            &moto.endpoint,
            "--s3-path-style",
        ],
        &moto_env(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("no-such-bucket") && err.contains("does not exist"),
        "{err}"
    );
    assert!(v["error"].as_str().unwrap().contains("NoSuchBucket"));
}

#[test]
fn unreachable_endpoint_fails_within_the_timeout() {
    let port = common::free_port(); // nothing listens there
    let endpoint = format!("http://127.0.0.1:{port}");
    let t = Instant::now();
    let (code, _, err) = status_json(
        &[
            "--store",
            "s3://b/p",
            "--s3-endpoint",
            &endpoint,
            "--s3-path-style",
            "--s3-timeout",
            "2s",
        ],
        &moto_env(),
    );
    let took = t.elapsed();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("LIST") && err.contains("s3://b/p"), "{err}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[test]
fn missing_local_dir_and_bad_url_exit_2() {
    let (code, _, err) = status_json(&["--store", "/nonexistent/etcdguard-store"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/etcdguard-store"), "{err}");
    let (code, _, err) = status_json(&["--store", "gs://bucket/x"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("unsupported scheme"), "{err}");
}

#[test]
fn old_history_uses_the_folder_listing_and_layout_flag_overrides() {
    let d = tempfile::tempdir().unwrap();
    em_store(d.path());
    // Data without meta, older than the newest: the folder listing must skip it.
    em_backup(
        d.path(),
        "2026-11-23T08:16:00Z-000003",
        Some(&gzip(&snaps().new.0)),
        false,
    );
    let dir = d.path().to_str().unwrap();
    // ~98 days later both windows are empty: the whole history is listed by folder.
    let (code, v, err) = status_json(&["--store", dir, "--now", "2027-03-01T00:00:00Z"], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["backups"]["listedSince"], Value::Null);
    assert_eq!(v["newest"]["name"], "2026-11-23T08:15:00Z-000002");
    assert_eq!(v["newest"]["validity"], "valid");
    assert!(v["ignored"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["key"] == "2026-11-23T08:16:00Z-000003/"));

    // --layout plain on the same store: no `*.db` names, everything is ignored, still exit 0.
    let (code, v, _) = status_json(&["--store", dir, "--layout", "plain"], &[]);
    assert_eq!(code, 0);
    assert_eq!(v["layout"], "plain");
    assert_eq!(v["layoutSource"], "flag");
    assert_eq!(v["newest"], Value::Null);
    assert!(v["control"].is_null());

    // An empty directory: readable, nothing found.
    let e = tempfile::tempdir().unwrap();
    let (code, v, _) = status_json(&["--store", e.path().to_str().unwrap()], &[]);
    assert_eq!(code, 0);
    assert_eq!(v["layout"], Value::Null);
    assert_eq!(v["newest"], Value::Null);
}
