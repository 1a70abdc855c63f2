//! Helpers for backup-store tests: real snapshots from a real etcd, backup stores laid out on
//! disk in each layout, and uploading a directory tree to the real moto S3 server.

use super::Etcd;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Two real snapshots of one etcd at two revisions.
pub struct Snaps {
    _dir: tempfile::TempDir,
    /// Older snapshot (`etcdctl snapshot save`, with trailer) and its revision.
    pub old: (PathBuf, i64),
    /// Newer snapshot and its revision.
    pub new: (PathBuf, i64),
}

/// Built once per test binary: 200 keys, snapshot, 100 more, snapshot.
pub fn snaps() -> &'static Snaps {
    static S: OnceLock<Snaps> = OnceLock::new();
    S.get_or_init(|| {
        let etcd = Etcd::start();
        let dir = tempfile::tempdir().expect("tempdir");
        for c in 0..2 {
            // etcd allows at most 128 operations per txn.
            let ops: Vec<String> = (0..100)
                .map(|i| format!("put /registry/a/{c}/{i:04} value-{i}"))
                .collect();
            etcd.txn(&ops);
        }
        let old = dir.path().join("old.db");
        etcd.snapshot_save(&old);
        let old_rev = etcd.revision();
        for i in 0..3 {
            let ops: Vec<String> = (0..50)
                .map(|j| format!("put /registry/b/{i}/{j:04} v{j}"))
                .collect();
            etcd.txn(&ops);
        }
        let new = dir.path().join("new.db");
        etcd.snapshot_save(&new);
        let new_rev = etcd.revision();
        Snaps {
            _dir: dir,
            old: (old, old_rev),
            new: (new, new_rev),
        }
    })
}

/// gzip of a file's bytes (what etcd-manager uploads as `etcd.backup.gz`).
pub fn gzip(path: &Path) -> Vec<u8> {
    let data = std::fs::read(path).expect("read snapshot");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&data).expect("gzip");
    enc.finish().expect("gzip finish")
}

/// Write `bytes` at `root/rel`, creating folders.
pub fn put(root: &Path, rel: &str, bytes: &[u8]) {
    let p = root.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(p, bytes).expect("write");
}

/// Add one etcd-manager backup folder (`data` and/or `meta` may be left out).
pub fn em_backup(root: &Path, folder: &str, data: Option<&[u8]>, meta: bool) {
    if let Some(d) = data {
        put(root, &format!("{folder}/etcd.backup.gz"), d);
    }
    if meta {
        let meta = "{\n  \"etcdVersion\": \"3.4.23\",\n  \"timestamp\": \"1704067200\",\n  \"clusterSpec\": {\n    \"memberCount\": 1,\n    \"etcdVersion\": \"3.4.23\"\n  }\n}";
        put(
            root,
            &format!("{folder}/_etcd_backup.meta"),
            meta.as_bytes(),
        );
    }
}

/// Valid etcd-manager control files (`memberCount` 1, etcd 3.4.23).
pub fn em_control(root: &Path, spec: bool, created: bool) {
    if spec {
        put(
            root,
            "control/etcd-cluster-spec",
            b"{\n  \"memberCount\": 1,\n  \"etcdVersion\": \"3.4.23\"\n}",
        );
    }
    if created {
        put(
            root,
            "control/etcd-cluster-created",
            b"{\"timestamp\":1704067200000000000}",
        );
    }
}

/// A healthy etcd-manager store: old backup at 08:00, new at 08:15 on 2026-11-23, control files.
pub fn em_store(root: &Path) {
    let s = snaps();
    em_backup(
        root,
        "2026-11-23T08:00:00Z-000001",
        Some(&gzip(&s.old.0)),
        true,
    );
    em_backup(
        root,
        "2026-11-23T08:15:00Z-000002",
        Some(&gzip(&s.new.0)),
        true,
    );
    em_control(root, true, true);
}

/// An S3 client for moto (static test credentials, path style).
pub fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Create `bucket` and upload every file under `dir` to `s3://bucket/prefix/...`.
pub async fn upload_dir(client: &aws_sdk_s3::Client, bucket: &str, prefix: &str, dir: &Path) {
    let _ = client.create_bucket().bucket(bucket).send().await;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p
                .strip_prefix(dir)
                .expect("rel")
                .to_string_lossy()
                .replace('\\', "/");
            let key = if prefix.is_empty() {
                rel
            } else {
                format!("{prefix}/{rel}")
            };
            let body = std::fs::read(&p).expect("read");
            client
                .put_object()
                .bucket(bucket)
                .key(&key)
                .body(body.into())
                .send()
                .await
                .unwrap_or_else(|e| panic!("upload {key}: {e:?}"));
        }
    }
}

/// Environment for running `etcdguard` against moto (static credentials, region).
pub fn moto_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
    ]
}

/// Run `etcdguard` with extra environment variables.
pub fn etcdguard_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(super::etcdguard_bin())
        .args(args)
        .envs(env.iter().copied())
        .env_remove("AWS_ENDPOINT_URL")
        .env("ETCDGUARD_LOG", "warn")
        .output()
        .expect("run etcdguard")
}
