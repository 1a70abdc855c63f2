//! The test harness itself starts the real programs (etcd, moto) and they behave as expected.

mod common;

#[test]
fn etcd_starts_and_snapshot_status_reads_a_real_snapshot() {
    let etcd = common::Etcd::start();
    etcd.put("/registry/a", "1");
    etcd.put("/registry/b", "2");
    let rev = etcd.revision();
    assert!(
        rev >= 3,
        "two puts on a fresh etcd give revision >= 3, got {rev}"
    );
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("s.db");
    etcd.snapshot_save(&snap);
    let status = common::snapshot_status(&snap);
    assert_eq!(status["revision"].as_i64(), Some(rev));
    let len = std::fs::metadata(&snap).unwrap().len();
    assert_eq!(
        len % 512,
        32,
        "etcdctl snapshot save appends a 32-byte sha256 trailer"
    );
}

#[test]
fn moto_starts_and_resets() {
    let moto = common::Moto::start();
    moto.reset();
}
