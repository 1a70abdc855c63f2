//! Snapshot fixtures made by a real etcd, and byte-level helpers to corrupt copies of them.
//!
//! The bbolt offsets used here follow `/work/shared/reference/etcd-snapshot-format.md` §1; they
//! are written independently of the verifier under test.

use super::Etcd;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A snapshot taken from a real etcd after a realistic mix of writes.
pub struct Fixture {
    /// `etcdctl snapshot save` output (with the sha256 trailer).
    pub snap: PathBuf,
    /// `member/snap/db` copied after stopping etcd (no trailer, possibly longer than the HWM).
    pub raw: PathBuf,
    /// Distinct live keys as counted by `etcdctl get "" --prefix --keys-only --limit 1` (its `count`).
    pub live_keys: u64,
    /// The revision passed to `etcdctl compact`.
    pub compacted: i64,
    /// Revision of the last put (the last change is a delete, whose value has no mod_revision).
    pub last_put: i64,
    /// The member name.
    pub member: String,
    /// Its ID in hex, from `etcdctl member list`.
    pub member_id: String,
}

fn value(i: usize, len: usize) -> String {
    let mut s = format!("v{i}-");
    while s.len() < len {
        s.push_str(&format!("{:x}", i.wrapping_mul(2654435761) ^ s.len()));
    }
    s.truncate(len);
    s
}

/// The shared fixture, built once per test binary (about 10 s).
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build)
}

fn build() -> Fixture {
    // One directory per test process (concurrent `cargo test` runs must not share files);
    // directories of processes that are gone are removed.
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("verify-fixture-") {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
    let dir = tmp.join(format!("verify-fixture-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("fixture dir");
    let mut etcd = Etcd::start_named("snapfix");
    // 3000 keys in 30 transactions, values of 100..400 bytes.
    for batch in 0..30 {
        let ops: Vec<String> = (0..100)
            .map(|j| {
                let i = batch * 100 + j;
                format!(
                    "put /registry/pods/ns{}/pod-{i:05} {}",
                    i % 7,
                    value(i, 100 + (i * 37) % 300)
                )
            })
            .collect();
        etcd.txn(&ops);
    }
    // Overwrites and deletes.
    for batch in 0..5 {
        let ops: Vec<String> = (0..100)
            .map(|j| {
                let i = batch * 100 + j;
                format!(
                    "put /registry/pods/ns{}/pod-{i:05} {}",
                    i % 7,
                    value(i + 7, 150)
                )
            })
            .collect();
        etcd.txn(&ops);
    }
    for start in [500, 600] {
        let dels: Vec<String> = (start..start + 100)
            .map(|i| format!("del /registry/pods/ns{}/pod-{i:05}", i % 7))
            .collect();
        etcd.txn(&dels);
    }
    let compacted = etcd.revision() - 3;
    etcd.ctl_ok(&["compact", &compacted.to_string()]);
    // Leases.
    let grant = etcd.ctl_ok(&["lease", "grant", "3600"]);
    let lease = grant
        .split_whitespace()
        .nth(1)
        .expect("lease id")
        .to_string();
    for i in 0..20 {
        etcd.ctl_ok(&[
            "put",
            "--lease",
            &lease,
            &format!("/registry/leases/l{i}"),
            "held",
        ]);
    }
    // 20 KB values: leaf pages with overflow.
    for i in 0..8 {
        etcd.put(&format!("/registry/configmaps/big-{i}"), &value(i, 20_000));
    }
    let last_put = etcd.revision();
    etcd.ctl_ok(&["del", "/registry/configmaps/big-7"]);
    let count = etcd.ctl_ok(&[
        "get",
        "",
        "--prefix",
        "--keys-only",
        "--limit",
        "1",
        "-w",
        "json",
    ]);
    let count: serde_json::Value = serde_json::from_str(&count).expect("count json");
    let live_keys = count["count"].as_u64().expect("count");
    let members: serde_json::Value =
        serde_json::from_str(&etcd.ctl_ok(&["member", "list", "-w", "json"])).expect("members");
    let member_id = format!(
        "{:x}",
        members["members"][0]["ID"].as_u64().expect("member ID")
    );
    let snap = dir.join("etcd.snapshot.db");
    etcd.snapshot_save(&snap);
    etcd.kill();
    let raw = dir.join("raw.db");
    std::fs::copy(etcd.data_dir().join("member/snap/db"), &raw).expect("copy member/snap/db");
    Fixture {
        snap,
        raw,
        live_keys,
        compacted,
        last_put,
        member: etcd.name.clone(),
        member_id,
    }
}

/// Little-endian u64 at `off`.
pub fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

/// Page size from meta page 0.
pub fn page_size(b: &[u8]) -> usize {
    u32::from_le_bytes(b[24..28].try_into().unwrap()) as usize
}

/// High-water mark from meta page 0.
pub fn hwm(b: &[u8]) -> u64 {
    u64_at(b, 56)
}

/// Root page of the top-level bucket `name` (which must not be inline).
pub fn bucket_root(b: &[u8], name: &[u8]) -> u64 {
    let ps = page_size(b);
    let root = u64_at(b, 32) as usize;
    let page = &b[root * ps..];
    assert_eq!(
        u16::from_le_bytes([page[8], page[9]]),
        2,
        "etcd's root bucket fits one leaf page"
    );
    let count = u16::from_le_bytes([page[10], page[11]]) as usize;
    for i in 0..count {
        let e = 16 + 16 * i;
        let pos = u32::from_le_bytes(page[e + 4..e + 8].try_into().unwrap()) as usize;
        let ksize = u32::from_le_bytes(page[e + 8..e + 12].try_into().unwrap()) as usize;
        let k = &page[e + pos..e + pos + ksize];
        if k == name {
            return u64_at(page, e + pos + ksize);
        }
    }
    panic!("bucket {name:?} not found");
}

/// Page flags of `pgid`.
pub fn flags(b: &[u8], pgid: u64) -> u16 {
    let off = pgid as usize * page_size(b);
    u16::from_le_bytes([b[off + 8], b[off + 9]])
}

/// Offset of page `pgid`.
pub fn page_off(b: &[u8], pgid: u64) -> usize {
    pgid as usize * page_size(b)
}

/// Child pgid of branch element `i` of page `pgid`.
pub fn branch_child(b: &[u8], pgid: u64, i: usize) -> u64 {
    u64_at(b, page_off(b, pgid) + 16 + 16 * i + 8)
}

/// Set the child pgid of branch element `i` of page `pgid`.
pub fn set_branch_child(b: &mut [u8], pgid: u64, i: usize, child: u64) {
    let off = page_off(b, pgid) + 16 + 16 * i + 8;
    b[off..off + 8].copy_from_slice(&child.to_le_bytes());
}

/// Replace the sha256 trailer with the digest of the (modified) db bytes, so that only the
/// structural damage remains.
pub fn retrail(b: &mut [u8]) {
    let n = b.len() - 32;
    let d = Sha256::digest(&b[..n]);
    b[n..].copy_from_slice(&d);
}
