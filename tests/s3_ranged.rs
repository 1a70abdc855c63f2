//! Large S3 objects read by parallel ranged GETs (issue #21), against the real moto server and
//! real etcd snapshots. A small part size stands in for the 8 MiB default, so that small
//! objects span many parts.

mod common;

use common::store::{em_store, gzip, moto_env, s3_client, snaps, upload_dir};
use etcdguard::store::{
    self, s3_error::S3Failure, Backend, InspectOptions, RangedReads, S3Options, StoreError,
    StoreUrl,
};
use std::io::Read;

const BUCKET: &str = "kops-state";
const PREFIX: &str = "c.example.com/backups/etcd/main";

fn set_moto_env() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for (k, v) in moto_env() {
            std::env::set_var(k, v);
        }
        std::env::remove_var("AWS_ENDPOINT_URL");
    });
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-11-23T08:20:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc)
}

async fn open(moto: &common::Moto, reads: RangedReads) -> Backend {
    let url = StoreUrl::parse(&format!("s3://{BUCKET}/{PREFIX}")).unwrap();
    let s3 = S3Options {
        endpoint: Some(moto.endpoint.clone()),
        path_style: true,
        reads,
        ..S3Options::default()
    };
    Backend::open(&url, &s3).await.unwrap()
}

/// Upload the plain and gzipped new snapshot and an etcd-manager store beside them.
async fn upload(moto: &common::Moto) {
    let d = tempfile::tempdir().unwrap();
    em_store(d.path());
    std::fs::copy(&snaps().new.0, d.path().join("plain.db")).unwrap();
    upload_dir(&s3_client(&moto.endpoint), BUCKET, PREFIX, d.path()).await;
}

const SMALL_PARTS: RangedReads = RangedReads {
    part_size: 4096,
    parts_in_flight: 3,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranged_reads_give_the_report_of_one_get() {
    set_moto_env();
    let moto = common::Moto::start();
    upload(&moto).await;
    let one_get = open(
        &moto,
        RangedReads {
            part_size: 1 << 30,
            parts_in_flight: 1,
        },
    )
    .await;
    let ranged = open(&moto, SMALL_PARTS).await;
    let local = tempfile::tempdir().unwrap();
    std::fs::copy(&snaps().new.0, local.path().join("plain.db")).unwrap();
    let local = Backend::Local {
        root: local.path().to_path_buf(),
    };

    let opts = InspectOptions::new(now()).verify;
    let (want, size) = local.verify("plain.db", &opts).await.unwrap();
    assert!(want.valid, "{want:?}");
    assert!(
        size > 3 * SMALL_PARTS.part_size,
        "{size} bytes: too few parts"
    );
    for backend in [&one_get, &ranged] {
        let (got, got_size) = backend.verify("plain.db", &opts).await.unwrap();
        assert_eq!(got_size, size);
        assert_eq!(
            serde_json::to_value(&got).unwrap(),
            serde_json::to_value(&want).unwrap()
        );
    }

    // One GET for the one-part reader; ranged GETs in order for the other, the first giving
    // the ETag, every later one pinned to it.
    let gets = |b: &Backend| b.request_log().unwrap().requests();
    let single = gets(&one_get);
    assert_eq!(single.len(), 1, "{single:#?}");
    assert_eq!(single[0].range.as_deref(), Some("bytes=0-1073741823"));
    let log = gets(&ranged);
    let parts = size.div_ceil(SMALL_PARTS.part_size) as usize;
    assert_eq!(log.len(), parts, "{log:#?}");
    let mut ranges: Vec<&str> = log.iter().filter_map(|r| r.range.as_deref()).collect();
    ranges.sort_by_key(|r| r[6..].split('-').next().unwrap().parse::<u64>().unwrap());
    for (i, r) in ranges.iter().enumerate() {
        let start = i as u64 * SMALL_PARTS.part_size;
        let end = (start + SMALL_PARTS.part_size).min(size) - 1;
        assert_eq!(*r, format!("bytes={start}-{end}"));
    }
    let etag = s3_client(&moto.endpoint)
        .head_object()
        .bucket(BUCKET)
        .key(format!("{PREFIX}/plain.db"))
        .send()
        .await
        .unwrap()
        .e_tag
        .unwrap();
    assert_eq!(log[0].range.as_deref(), Some("bytes=0-4095"));
    assert_eq!(log[0].if_match, None);
    for r in &log[1..] {
        assert_eq!(r.method, "GET");
        assert_eq!(r.if_match.as_deref(), Some(etag.as_str()), "{r:?}");
    }

    // The whole store: same facts whichever way its gzipped backups are read.
    let url = format!("s3://{BUCKET}/{PREFIX}");
    let io = InspectOptions::new(now());
    let a = store::inspect_backend(&one_get, &url, &io).await.unwrap();
    let b = store::inspect_backend(&ranged, &url, &io).await.unwrap();
    let (a, b) = (
        serde_json::to_value(&a).unwrap(),
        serde_json::to_value(&b).unwrap(),
    );
    assert_eq!(a["newestValid"], b["newestValid"]);
    assert_eq!(a["newest"], b["newest"]);
    assert_eq!(
        b["newestValid"]["report"]["revision"],
        serde_json::json!(snaps().new.1)
    );
    assert!(gzip(&snaps().new.0).len() as u64 > SMALL_PARTS.part_size);
}

/// An object replaced while it is read: the reader has read the first part when the object is
/// overwritten, so the later parts are asked for after the overwrite, pinned to the old ETag,
/// and the read fails (412) instead of going on with the new object's bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_replaced_mid_read_is_an_error() {
    set_moto_env();
    let moto = common::Moto::start();
    upload(&moto).await;
    let reads = RangedReads {
        part_size: 4096,
        parts_in_flight: 2,
    };
    let backend = open(&moto, reads).await;
    let mut object = backend.open_object("plain.db").await.unwrap();
    assert!(object.size() > 4 * reads.part_size);
    let client = s3_client(&moto.endpoint);
    let rt = tokio::runtime::Handle::current();
    let log = backend.request_log().unwrap().clone();
    let (read, failure) = tokio::task::spawn_blocking(move || {
        let mut first = vec![0u8; reads.part_size as usize];
        object.read_exact(&mut first).unwrap();
        // Parts 0 to 2 are asked for already (2 ahead of the one read), part 3 only after this.
        let asked = log.requests().len();
        assert!(asked <= 3, "{asked} GETs while the first part is read");
        rt.block_on(async {
            client
                .put_object()
                .bucket(BUCKET)
                .key(format!("{PREFIX}/plain.db"))
                .body(std::fs::read(&snaps().old.0).unwrap().into())
                .send()
                .await
                .unwrap();
        });
        let mut rest = Vec::new();
        let read = object.read_to_end(&mut rest);
        (read, object.failure())
    })
    .await
    .unwrap();
    let err = read.expect_err("reading on past the overwrite must fail");
    let failure = failure.expect("the store error is kept");
    assert!(
        matches!(
            &failure,
            StoreError::S3 {
                failure: S3Failure::Replaced,
                ..
            }
        ),
        "{failure:?}"
    );
    let text = failure.to_string();
    assert!(!text.contains('\n') && text.len() < 200, "{text}");
    assert!(
        text.contains("plain.db") && text.contains("replaced"),
        "{text}"
    );
    assert!(err.to_string().contains("replaced"), "{err}");
    let log = backend.request_log().unwrap().requests();
    assert!(log.iter().skip(1).all(|r| r.if_match.is_some()), "{log:#?}");
}

/// The store error of a failed part is what `verify` reports, and an empty object (which S3
/// refuses any range of) is an invalid backup, not an unreadable one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_empty_objects() {
    set_moto_env();
    let moto = common::Moto::start();
    upload(&moto).await;
    let client = s3_client(&moto.endpoint);
    client
        .put_object()
        .bucket(BUCKET)
        .key(format!("{PREFIX}/empty.db"))
        .body(Vec::new().into())
        .send()
        .await
        .unwrap();
    let backend = open(&moto, SMALL_PARTS).await;
    let opts = InspectOptions::new(now()).verify;
    let (report, size) = backend.verify("empty.db", &opts).await.unwrap();
    assert_eq!(size, 0);
    assert!(!report.valid);
    assert!(matches!(
        backend.verify("absent.db", &opts).await,
        Err(StoreError::NotFound { .. })
    ));
}
