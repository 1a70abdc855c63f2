//! `etcdguard verify` against snapshots made by a real etcd 3.4, compared with the real
//! `etcdctl snapshot status`, plus corrupt copies and every supported container.

mod common;

use common::snapshot::{self as snap, fixture};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `etcdguard verify PATH --output json [extra]` → (exit code, parsed report).
fn verify(path: &Path, extra: &[&str]) -> (i32, Value) {
    let p = path.to_str().unwrap();
    let mut args = vec!["verify", p, "--output", "json"];
    args.extend_from_slice(extra);
    let out = common::etcdguard(&args);
    let code = out.status.code().expect("exit code");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify {p} printed no JSON ({e}); stdout: {} stderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, json)
}

fn write_tmp(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn problems(report: &Value) -> String {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Assert an invalid verdict (exit 1) with a problem containing `needle`.
fn assert_invalid(path: &Path, extra: &[&str], needle: &str) -> Value {
    let (code, report) = verify(path, extra);
    assert_eq!(
        report["valid"],
        false,
        "{} should be invalid: {report:#}",
        path.display()
    );
    assert_eq!(code, 1);
    let all = problems(&report);
    assert!(
        all.contains(needle),
        "expected a problem containing {needle:?}, got:\n{all}"
    );
    report
}

fn assert_status_parity(path: &Path, report: &Value) {
    let status = common::snapshot_status(path);
    for field in ["hash", "revision", "totalKey", "totalSize"] {
        assert_eq!(
            report[field],
            status[field],
            "{field} differs from etcdctl snapshot status for {}",
            path.display()
        );
    }
}

#[test]
fn real_snapshot_matches_etcdctl_snapshot_status() {
    let fx = fixture();
    let (code, report) = verify(&fx.snap, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["valid"], true);
    assert_eq!(report["sha256"], "verified");
    assert_eq!(report["problems"].as_array().unwrap().len(), 0);
    assert_eq!(report["container"], "plain");
    assert_status_parity(&fx.snap, &report);
    assert_eq!(report["liveKeys"].as_u64(), Some(fx.live_keys));
    assert_eq!(
        report["finishedCompactRevision"].as_i64(),
        Some(fx.compacted)
    );
    assert_eq!(
        report["scheduledCompactRevision"].as_i64(),
        Some(fx.compacted)
    );
    assert_eq!(report["newestModRevision"].as_i64(), Some(fx.last_put));
    assert_eq!(
        report["revision"].as_i64(),
        Some(fx.last_put + 1),
        "the last change is a delete"
    );
    assert_eq!(report["keysWithLease"].as_u64(), Some(20));
    assert_eq!(report["members"], serde_json::json!([fx.member]));
    assert_eq!(report["memberIds"], serde_json::json!([fx.member_id]));
    assert!(report["clusterVersion"]
        .as_str()
        .unwrap()
        .starts_with("3.4"));
    assert!(report["consistentIndex"].as_u64().unwrap() > 0);
    assert_eq!(
        report["version"],
        Value::Null,
        "etcd 3.4 writes no meta/storageVersion"
    );
    // The fixture really exercises multi-level trees and overflow pages.
    let bytes = std::fs::read(&fx.snap).unwrap();
    let key_root = snap::bucket_root(&bytes, b"key");
    assert_eq!(
        snap::flags(&bytes, key_root),
        1,
        "key bucket root is a branch page"
    );
    let overflowing = (2..snap::hwm(&bytes))
        .filter(|&p| {
            let off = snap::page_off(&bytes, p);
            snap::u64_at(&bytes, off) == p
                && snap::flags(&bytes, p) == 2
                && snap::u64_at(&bytes, off + 8) >> 32 > 0
        })
        .count();
    assert!(overflowing > 0, "some leaf pages have overflow pages");
}

#[test]
fn text_output_is_a_short_table() {
    let fx = fixture();
    let out = common::etcdguard(&["verify", fx.snap.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let status = common::snapshot_status(&fx.snap);
    assert!(text.contains("VALID"), "{text}");
    assert!(
        text.contains(&format!("{:x}", status["hash"].as_u64().unwrap())),
        "{text}"
    );
    assert!(text.lines().count() < 20);
    assert!(
        out.stderr.is_empty(),
        "no progress bar or log when stderr is not a terminal"
    );
}

#[test]
fn raw_db_without_trailer_needs_skip_hash_check() {
    let fx = fixture();
    let report = assert_invalid(&fx.raw, &[], "--skip-hash-check");
    assert_eq!(report["sha256"], "missing");
    let (code, report) = verify(&fx.raw, &["--skip-hash-check"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["valid"], true);
    assert_eq!(report["sha256"], "missing");
    assert_status_parity(&fx.raw, &report);

    // The snapshot with its trailer stripped is also a raw db.
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(&fx.snap).unwrap();
    let stripped = write_tmp(&dir, "stripped.db", &bytes[..bytes.len() - 32]);
    assert_invalid(&stripped, &[], "no sha256 trailer");
    let (code, report) = verify(&stripped, &["--skip-hash-check"]);
    assert_eq!(code, 0);
    assert_status_parity(&stripped, &report);
}

#[test]
fn corrupt_copies_are_invalid_with_precise_problems() {
    let fx = fixture();
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(&fx.snap).unwrap();
    let ps = snap::page_size(&good);
    let hwm = snap::hwm(&good);
    let key_root = snap::bucket_root(&good, b"key");
    let leaf = snap::branch_child(&good, key_root, 1);

    // Truncated to half: the sha trailer is gone and pages are missing.
    let half = (good.len() / 2 / 4096) * 4096;
    let p = write_tmp(&dir, "truncated.db", &good[..half]);
    assert_invalid(&p, &["--skip-hash-check"], "truncated");

    // Zero-length file.
    let p = write_tmp(&dir, "empty.db", &[]);
    assert_invalid(&p, &[], "empty input");

    // Trailer mismatch.
    let mut b = good.clone();
    let last = b.len() - 1;
    b[last] ^= 0xFF;
    let p = write_tmp(&dir, "trailer.db", &b);
    let r = assert_invalid(&p, &[], "sha256 trailer mismatch");
    assert_eq!(r["sha256"], "mismatch");

    // A flipped byte inside a reachable leaf page (its key data): the trailer catches it.
    let mut b = good.clone();
    let off = snap::page_off(&b, leaf) + ps - 100;
    b[off] ^= 0x5A;
    let p = write_tmp(&dir, "flipped.db", &b);
    assert_eq!(
        assert_invalid(&p, &[], "sha256 trailer mismatch")["sha256"],
        "mismatch"
    );

    // Wrong page type on a reachable page (trailer recomputed: only the structure is wrong).
    let mut b = good.clone();
    let off = snap::page_off(&b, leaf) + 8;
    b[off..off + 2].copy_from_slice(&0x10u16.to_le_bytes());
    snap::retrail(&mut b);
    let p = write_tmp(&dir, "wrongtype.db", &b);
    let r = assert_invalid(
        &p,
        &[],
        &format!("points to page {leaf}, a freelist page where a branch or leaf page was expected"),
    );
    assert_eq!(r["sha256"], "verified");

    // A branch pointing to itself.
    let mut b = good.clone();
    snap::set_branch_child(&mut b, key_root, 2, key_root);
    snap::retrail(&mut b);
    let p = write_tmp(&dir, "cycle.db", &b);
    assert_invalid(&p, &[], &format!("page {key_root}: branch element 2 points to page {key_root}, which is already referenced"));

    // A branch pointing beyond the high-water mark.
    let mut b = good.clone();
    snap::set_branch_child(&mut b, key_root, 0, hwm + 500);
    snap::retrail(&mut b);
    let p = write_tmp(&dir, "beyond.db", &b);
    assert_invalid(
        &p,
        &[],
        &format!(
            "page {key_root}: branch element 0 points to page {} beyond the high-water mark {hwm}",
            hwm + 500
        ),
    );

    // An absurd element count.
    let mut b = good.clone();
    let off = snap::page_off(&b, leaf) + 10;
    b[off..off + 2].copy_from_slice(&0xFFFFu16.to_le_bytes());
    snap::retrail(&mut b);
    let p = write_tmp(&dir, "count.db", &b);
    assert_invalid(&p, &[], &format!("page {leaf}: element count 65535 needs"));

    // Not a bbolt file at all.
    let p = write_tmp(&dir, "garbage.db", &vec![0x42u8; 8192 + 32]);
    assert_invalid(&p, &[], "not a bbolt database");

    // Gzip that does not end.
    let gz = gzip(&good);
    let p = write_tmp(&dir, "cut.db.gz", &gz[..gz.len() / 2]);
    let r = assert_invalid(&p, &[], "gzip stream is corrupt or cut off");
    assert_eq!(r["container"], "gzip");
}

#[test]
fn missing_file_is_an_io_error() {
    let out = common::etcdguard(&["verify", "/nonexistent/snapshot.db"]);
    assert_eq!(out.status.code(), Some(2));
    let out = common::etcdguard(&["verify", "x", "--output", "yaml"]);
    assert_eq!(out.status.code(), Some(2));
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

#[test]
fn every_container_gives_the_same_numbers() {
    let fx = fixture();
    let good = std::fs::read(&fx.snap).unwrap();
    let (_, plain) = verify(&fx.snap, &[]);
    let dir = tempfile::tempdir().unwrap();

    let mut zip_bytes = Vec::new();
    {
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(&mut zip_bytes));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        z.add_directory("snapshots/", opts).unwrap();
        z.start_file("snapshots/etcd-snapshot-node1-1700000000", opts)
            .unwrap();
        z.write_all(&good).unwrap();
        z.finish().unwrap();
    }

    // Written without seeking, as Go's archive/zip (k3s, RKE2) does: sizes in a data descriptor.
    let mut zip_stream = Vec::new();
    {
        let mut z = zip::ZipWriter::new_stream(&mut zip_stream);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        z.start_file("etcd-snapshot-k3s-1700000000", opts).unwrap();
        z.write_all(&good).unwrap();
        z.finish().unwrap();
    }
    assert_ne!(
        zip_stream[6] & 0x08,
        0,
        "the streamed zip uses a data descriptor"
    );

    let mut tar_bytes = Vec::new();
    {
        let mut t = tar::Builder::new(&mut tar_bytes);
        // A small metadata file first: the snapshot is found by size, not position.
        let meta = br#"{"etcdVersion":"3.4.23"}"#;
        let mut h = tar::Header::new_gnu();
        h.set_size(meta.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        t.append_data(&mut h, "metadata.json", &meta[..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(good.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        t.append_data(&mut h, "etcd-dump.bin", &good[..]).unwrap();
        t.finish().unwrap();
    }

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("etcd.backup.gz", gzip(&good), "gzip"),
        ("snapshot.zip", zip_bytes, "zip"),
        ("k3s-snapshot.zip", zip_stream, "zip"),
        ("backup.tar.gz", gzip(&tar_bytes), "tar-gz"),
        (
            "talos.snap.zst",
            zstd::encode_all(&good[..], 3).unwrap(),
            "zstd",
        ),
        // A misleading name: detection is by content.
        ("looks-plain.db", gzip(&good), "gzip"),
    ];
    for (name, bytes, kind) in cases {
        let p = write_tmp(&dir, name, &bytes);
        let (code, r) = verify(&p, &[]);
        assert_eq!(code, 0, "{name}: {r:#}");
        assert_eq!(r["container"], kind, "{name}");
        assert_eq!(r["sha256"], "verified", "{name}");
        if kind == "tar-gz" {
            assert_eq!(r["entry"], "etcd-dump.bin");
        }
        for field in ["hash", "revision", "totalKey", "totalSize", "liveKeys"] {
            assert_eq!(r[field], plain[field], "{name}: {field}");
        }
    }
}

#[test]
fn fresh_etcd_snapshot_with_inline_buckets_matches_status() {
    let etcd = common::Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("fresh.db");
    etcd.snapshot_save(&p);
    let (code, report) = verify(&p, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_status_parity(&p, &report);
    assert_eq!(report["liveKeys"].as_u64(), Some(0));
}

/// Thousands of damaged copies through the library API: never a panic, always a report, and a
/// damaged structure is never reported valid with the original numbers unchanged by accident.
#[test]
fn random_damage_never_panics() {
    use etcdguard::snapshot::{verify_reader, VerifyOptions};
    let fx = fixture();
    let good = std::fs::read(&fx.snap).unwrap();
    let db_len = good.len() - 32;
    let opts = VerifyOptions::default();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut invalid = 0;
    for round in 0..400 {
        let mut b = good.clone();
        // Flip 1..4 bytes anywhere in the db (headers, elements, data), then recompute the trailer
        // so that only the structural checks can notice.
        for _ in 0..=(next() % 4) {
            let at = (next() % db_len as u64) as usize;
            b[at] ^= (next() % 255 + 1) as u8;
        }
        snap::retrail(&mut b);
        let report =
            verify_reader(&b[..], "fuzz", &opts).unwrap_or_else(|e| panic!("round {round}: {e}"));
        if !report.valid {
            invalid += 1;
            assert!(!report.problems.is_empty());
        }
    }
    for cut in (0..good.len()).step_by(good.len() / 97 + 1) {
        let report = verify_reader(&good[..cut], "cut", &opts).unwrap();
        assert!(
            !report.valid,
            "a snapshot cut at {cut} bytes must be invalid"
        );
    }
    assert!(invalid > 0, "some random damage must be detected");
}
