//! Builders for end-to-end gate tests: real etcd snapshots laid out as etcd-manager stores, on
//! disk or uploaded to the real moto S3 server.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A real snapshot taken from a real etcd with `keys` puts; returns (path, revision).
pub fn real_snapshot(dir: &Path, keys: usize) -> (PathBuf, i64) {
    let etcd = super::Etcd::start();
    let ops: Vec<String> = (0..keys)
        .map(|i| format!("put /registry/pods/default/p{i} value-{i}"))
        .collect();
    for chunk in ops.chunks(100) {
        etcd.txn(chunk);
    }
    let path = dir.join("snapshot.db");
    etcd.snapshot_save(&path);
    let rev = super::snapshot_status(&path)["revision"]
        .as_i64()
        .expect("revision");
    (path, rev)
}

/// Control files to write.
#[derive(Clone, Copy)]
pub struct Control {
    pub spec: bool,
    pub created: bool,
}

pub const BOTH: Control = Control {
    spec: true,
    created: true,
};

/// Lay out an etcd-manager backup store under `root`: one backup folder per time, each holding
/// `etcd.backup.gz` (gzip of `snapshot`) and `_etcd_backup.meta`, plus control files.
pub fn etcd_manager_store(root: &Path, snapshot: &Path, times: &[&str], control: Control) {
    let bytes = std::fs::read(snapshot).expect("read snapshot");
    for (i, t) in times.iter().enumerate() {
        let folder = root.join(format!("{t}-{:06}", i + 1));
        std::fs::create_dir_all(&folder).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&bytes).unwrap();
        std::fs::write(folder.join("etcd.backup.gz"), gz.finish().unwrap()).unwrap();
        let secs = chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp();
        std::fs::write(
            folder.join("_etcd_backup.meta"),
            format!(
                "{{\n  \"etcdVersion\": \"3.4.23\",\n  \"timestamp\": \"{secs}\",\n  \"clusterSpec\": {{\n    \"memberCount\": 3,\n    \"etcdVersion\": \"3.4.23\"\n  }}\n}}"
            ),
        )
        .unwrap();
    }
    let c = root.join("control");
    std::fs::create_dir_all(&c).unwrap();
    if control.spec {
        std::fs::write(
            c.join("etcd-cluster-spec"),
            "{\n  \"memberCount\": 3,\n  \"etcdVersion\": \"3.4.23\"\n}",
        )
        .unwrap();
    }
    if control.created {
        std::fs::write(
            c.join("etcd-cluster-created"),
            "{\n  \"timestamp\": \"1700000000000000000\"\n}",
        )
        .unwrap();
    }
}

/// Upload every file under `dir` to `s3://bucket/prefix/<relative path>` on the moto server.
pub fn upload_dir(endpoint: &str, bucket: &str, prefix: &str, dir: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .force_path_style(true)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .build();
        let client = aws_sdk_s3::Client::from_conf(conf);
        let _ = client.create_bucket().bucket(bucket).send().await;
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                let rel = p
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                let key = format!("{}/{rel}", prefix.trim_end_matches('/'));
                client
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .body(std::fs::read(&p).unwrap().into())
                    .send()
                    .await
                    .expect("put_object to moto");
            }
        }
    });
}

/// Environment for running etcdguard against moto: dummy credentials, no real AWS.
pub fn moto_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
}

/// The moto server holding an etcd-manager store at
/// `s3://kops-state/prod.example.com/backups/etcd/main`: 3 backups of a real snapshot with
/// `keys` keys, taken 3, 2 and 1 hours before now, and both control files.
pub fn moto_etcd_manager_store(keys: usize) -> super::Moto {
    let moto = super::Moto::start();
    let snap = tempfile::tempdir().unwrap();
    let (path, _) = real_snapshot(snap.path(), keys);
    let now = chrono::Utc::now();
    let times: Vec<String> = [3, 2, 1]
        .iter()
        .map(|h| {
            (now - chrono::Duration::hours(*h))
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        })
        .collect();
    let t: Vec<&str> = times.iter().map(String::as_str).collect();
    let store = tempfile::tempdir().unwrap();
    etcd_manager_store(store.path(), &path, &t, BOTH);
    upload_dir(
        &moto.endpoint,
        "kops-state",
        "prod.example.com/backups/etcd/main",
        store.path(),
    );
    moto
}
