//! Each backup object is verified once per process (issue #21): real snapshots from a real
//! etcd, in a temp dir and in the real moto S3 server; `serve` behind a recording proxy.

mod common;

use common::hardening::{Mode, Proxy};
use common::serve::Serve;
use common::store::{em_backup, em_store, gzip, moto_env, s3_client, snaps, upload_dir};
use etcdguard::store::{self, InspectOptions, S3Options, StoreUrl, Validity};
use std::time::{Duration, Instant};

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-11-23T08:20:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc)
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

/// Inspect a store with a freshly opened backend (as each `serve` refresh does), sharing the
/// cache in `opts`; returns the facts and the S3 requests sent.
async fn inspect(
    url: &StoreUrl,
    s3: &S3Options,
    opts: &InspectOptions,
) -> (store::StoreFacts, Vec<String>) {
    let backend = store::Backend::open(url, s3).await.unwrap();
    let f = store::inspect_backend(&backend, &url.to_string(), opts)
        .await
        .unwrap();
    let log = backend
        .request_log()
        .map(|l| {
            l.requests()
                .into_iter()
                .map(|r| format!("{} {}", r.method, r.path))
                .collect()
        })
        .unwrap_or_default();
    (f, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_s3_store_is_listed_only_and_a_new_backup_alone_is_verified() {
    set_moto_env();
    let moto = common::Moto::start();
    let d = tempfile::tempdir().unwrap();
    em_store(d.path());
    let client = s3_client(&moto.endpoint);
    upload_dir(&client, "kops-state", "c/backups/etcd/main", d.path()).await;
    let url = StoreUrl::parse("s3://kops-state/c/backups/etcd/main").unwrap();
    let s3 = S3Options {
        endpoint: Some(moto.endpoint.clone()),
        path_style: true,
        ..S3Options::default()
    };
    let opts = InspectOptions::new(now());
    let stats = opts.cache.stats.clone();

    let (first, log) = inspect(&url, &s3, &opts).await;
    assert_eq!(
        first.newest_valid.as_ref().unwrap().name,
        "2026-11-23T08:15:00Z-000002"
    );
    // LIST, meta + data of the newest backup and of the one before it (continuity, #22), both
    // control files.
    assert_eq!(log.len(), 7, "{log:#?}");
    assert_eq!(stats.verifications.get(), 2);
    let bytes = stats.bytes_read.get();
    assert!(bytes > 0);

    let (again, log) = inspect(&url, &s3, &opts).await;
    assert_eq!(log.len(), 1, "an unchanged store is only listed: {log:#?}");
    assert!(log[0].contains("list-type=2"), "{log:#?}");
    assert_eq!(stats.verifications.get(), 2);
    assert_eq!(stats.bytes_read.get(), bytes, "no byte read again");
    assert_eq!(
        stats.cache_hits.get(),
        6,
        "two snapshots, two metas, spec, created"
    );
    assert_eq!(stats.requests.get(), 8);
    // The same facts as the first reading.
    let b = again.newest_valid.as_ref().unwrap();
    assert_eq!(b.name, "2026-11-23T08:15:00Z-000002");
    assert_eq!(b.validity, Validity::Valid);
    assert_eq!(b.report.as_ref().unwrap().revision, Some(snaps().new.1));
    assert_eq!(b.meta, first.newest_valid.as_ref().unwrap().meta);
    assert_eq!(
        again.control.as_ref().unwrap().outcome,
        first.control.as_ref().unwrap().outcome
    );

    // A new backup: it alone is read and verified.
    let new = tempfile::tempdir().unwrap();
    em_backup(
        new.path(),
        "2026-11-23T08:18:00Z-000003",
        Some(&gzip(&snaps().old.0)),
        true,
    );
    upload_dir(&client, "kops-state", "c/backups/etcd/main", new.path()).await;
    let (third, log) = inspect(&url, &s3, &opts).await;
    assert_eq!(
        third.newest_valid.as_ref().unwrap().name,
        "2026-11-23T08:18:00Z-000003"
    );
    assert_eq!(stats.verifications.get(), 3);
    let gets: Vec<&String> = log.iter().filter(|r| !r.contains("list-type")).collect();
    assert_eq!(gets.len(), 2, "meta and data of the new backup: {log:#?}");
    assert!(
        gets.iter().all(|r| r.contains("000003")),
        "only the new backup is read: {log:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_backup_whose_size_or_mtime_changed_is_verified_again() {
    let d = tempfile::tempdir().unwrap();
    em_store(d.path());
    let url = StoreUrl::parse(d.path().to_str().unwrap()).unwrap();
    let opts = InspectOptions::new(now());
    let stats = opts.cache.stats.clone();
    let read = || async {
        store::inspect(&url, &S3Options::default(), &opts)
            .await
            .unwrap()
    };
    let revision = |f: &store::StoreFacts| {
        f.newest_valid
            .as_ref()
            .and_then(|b| b.report.as_ref())
            .and_then(|r| r.revision)
    };

    // The newest backup and the one before it (continuity, #22).
    let f = read().await;
    assert_eq!(revision(&f), Some(snaps().new.1));
    assert_eq!(stats.verifications.get(), 2);
    read().await;
    assert_eq!(
        stats.verifications.get(),
        2,
        "unchanged: not verified again"
    );
    assert!(stats.cache_hits.get() >= 4);

    // Other content (another size) under the same name.
    let data = d.path().join("2026-11-23T08:15:00Z-000002/etcd.backup.gz");
    std::fs::write(&data, gzip(&snaps().old.0)).unwrap();
    let f = read().await;
    let changed = stats.verifications.get();
    assert!(changed > 2, "the changed backup is verified again");
    assert_eq!(revision(&f), Some(snaps().old.1), "the new content is read");

    // The same size, another mtime.
    let file = std::fs::File::options().write(true).open(&data).unwrap();
    let mtime = file.metadata().unwrap().modified().unwrap();
    file.set_modified(mtime + Duration::from_secs(60)).unwrap();
    drop(file);
    read().await;
    assert_eq!(stats.verifications.get(), changed + 1);
    read().await;
    assert_eq!(stats.verifications.get(), changed + 1, "unchanged again");
}

/// A metric's value in an OpenMetrics text (`None` when absent).
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The requests the proxy saw, one group per refresh (each starts with the store's LIST).
fn refreshes(proxy: &Proxy) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    for r in proxy.requests() {
        if r.contains("list-type=2") || out.is_empty() {
            out.push(Vec::new());
        }
        if let Some(last) = out.last_mut() {
            last.push(r);
        }
    }
    out
}

fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn serve_refresh_of_an_unchanged_store_downloads_no_snapshot() {
    let moto = common::gate::moto_etcd_manager_store(50);
    let proxy = Proxy::start(&moto.endpoint, Mode::Forward);
    let s = Serve::start(
        &[
            "--refresh-interval",
            "1s",
            "--store",
            "s3://kops-state/prod.example.com/backups/etcd/main",
            "--s3-endpoint",
            &proxy.endpoint,
            "--s3-path-style",
        ],
        |c| {
            c.envs(moto_env()).env_remove("AWS_ENDPOINT_URL");
        },
    );
    s.wait_ready(Duration::from_secs(60));
    wait_for("four refreshes", Duration::from_secs(60), || {
        refreshes(&proxy).len() >= 4
    });
    let (_, before) = s.get("/metrics");
    let seen = refreshes(&proxy).len();
    wait_for("two more refreshes", Duration::from_secs(60), || {
        refreshes(&proxy).len() >= seen + 2
    });
    let (_, after) = s.get("/metrics");

    let all = refreshes(&proxy);
    let first = &all[0];
    assert!(
        first.iter().any(|r| r.contains("etcd.backup.gz")),
        "{first:#?}"
    );
    for later in &all[1..] {
        assert!(later.len() <= 3, "more than 3 requests: {later:#?}");
        assert!(
            !later.iter().any(|r| r.contains("etcd.backup.gz")),
            "snapshot downloaded again: {later:#?}"
        );
    }
    let m = |text: &str, name: &str| {
        metric(text, name).unwrap_or_else(|| panic!("no {name} in:\n{text}"))
    };
    // The first refresh verified the backups continuity compares (#22); none since.
    let verified = m(&before, "etcdguard_snapshot_verifications_total");
    assert!(verified >= 1.0);
    assert_eq!(
        m(&after, "etcdguard_snapshot_verifications_total"),
        verified
    );
    assert_eq!(
        m(&after, "etcdguard_store_read_bytes_total"),
        m(&before, "etcdguard_store_read_bytes_total"),
        "no byte read by unchanged refreshes"
    );
    assert!(
        m(&after, "etcdguard_verify_cache_hits_total")
            > m(&before, "etcdguard_verify_cache_hits_total")
    );
    assert!(m(&after, "etcdguard_store_requests_total") > 0.0);
}

/// Every store of a process shares one credentials lookup: a `credential_process` (standing in
/// for web identity / IRSA, which would ask STS) runs once for a `check` over three stores and
/// the bucket's lifecycle rules, not once per store.
#[test]
fn stores_share_one_credentials_lookup() {
    let moto = common::gate::moto_etcd_manager_store(20);
    let d = tempfile::tempdir().unwrap();
    let calls = d.path().join("calls");
    let config = d.path().join("config");
    std::fs::write(
        &config,
        format!(
            "[default]\ncredential_process = sh -c 'echo call >> {}; echo {{\\\"Version\\\":1,\\\"AccessKeyId\\\":\\\"test\\\",\\\"SecretAccessKey\\\":\\\"test\\\"}}'\n",
            calls.display()
        ),
    )
    .unwrap();
    let store = "s3://kops-state/prod.example.com/backups/etcd/main";
    let stores = format!("{store},{store}/,s3://kops-state/prod.example.com/backups/etcd/main//");
    let out = std::process::Command::new(common::etcdguard_bin())
        .args(["check", "--store", &stores, "--s3-endpoint", &moto.endpoint])
        .args(["--s3-path-style", "--output", "json"])
        .env("ETCDGUARD_LOG", "warn")
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let reachable = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "store.reachable")
        .count();
    assert_eq!(reachable, 3, "{v:#}");
    let n = std::fs::read_to_string(&calls).unwrap().lines().count();
    assert_eq!(n, 1, "credential_process ran {n} times");
}
