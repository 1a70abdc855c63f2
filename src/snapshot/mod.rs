//! Reading and verifying etcd v3 snapshot files (issue #2).
//!
//! Public contract used by the rest of the crate (`store`, `cli`): one streaming pass over a
//! snapshot (any container) producing a [`SnapshotReport`]. Corrupt content is never an `Err`:
//! it is a report with `valid == false` and precise `problems`. `Err` means the bytes could not
//! be read at all (I/O error from the underlying reader).
//!
//! How the pass works:
//! - `container` detects the wrapper from its magic bytes and yields the snapshot bytes;
//! - [`stream::run`] reads them once, in order, and feeds every [`stream::ByteSink`] on its own
//!   thread: [`stream::Sha256Sink`] (sha256 of all but the last 32 bytes) and the page scanner
//!   (`scan`), which parses the meta pages and then every page position tentatively into a
//!   compact summary (`bbolt`, `schema`, kept as records by `pages`), buffering at most one
//!   page extent;
//! - after the pass, `walk` visits the tree from the root over the summaries (cycles, bounds,
//!   types, key order, freelist rules) and combines per-leaf CRC-32Cs in tree order (`crc`) into
//!   the `etcdctl snapshot status` hash. Problems of pages that are not reachable are ignored.
//!
//! Memory: the summaries are kept in the compact form of `pages` (about 25 bytes per leaf
//! page and 8 per branch element, a few bytes per other page, plus the `inventory` bytes of
//! each `key`-bucket entry: one, or about five for `inspect`), plus a few 256 KiB chunks in
//! flight; no page extent above 32 MiB is buffered. Figures: `docs/benchmarks.md`.
//!
//! The same pass counts Kubernetes objects per resource (and, with
//! [`VerifyOptions::full_inventory`], per namespace, with bytes): [`inventory`].

pub mod age;
mod bbolt;
mod container;
mod crc;
pub mod inventory;
mod pages;
mod scan;
mod schema;
pub mod stream;
mod walk;

pub use container::named_decoder;

use serde::Serialize;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::Ordering;

/// At most this many problems are listed; the rest are counted in a final line.
const MAX_PROBLEMS: usize = 50;

/// Result of checking the 32-byte sha256 trailer that `etcdctl snapshot save` appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sha256Status {
    /// Trailer present and equal to sha256 of the db bytes.
    Verified,
    /// No trailer (raw `member/snap/db` copy); restorable only with `--skip-hash-check`.
    Missing,
    /// Trailer present but different from the computed digest.
    Mismatch,
}

/// How the snapshot bytes were wrapped: detected from content (magic bytes), or, for a layout
/// whose writer names its codec, as named ([`VerifyOptions::expect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Container {
    Plain,
    Gzip,
    Zip,
    TarGz,
    Zstd,
    /// zlib (RFC 1950), Gardener `.zlib`.
    Zlib,
    /// Go `compress/lzw`, LSB order, 8-bit literals, Gardener `.Z` (no magic bytes).
    Lzw,
}

/// Options for one verification pass.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Treat a missing trailer as acceptable (like `etcdutl snapshot restore --skip-hash-check`).
    pub skip_hash_check: bool,
    /// The codec the object's name promises (Gardener: `Plain`, `Gzip`, `Zlib` or `Lzw`); the
    /// content is decoded as that codec only. `None` (or another container): detect it from the
    /// content.
    pub expect: Option<Container>,
    /// age identities to decrypt age-encrypted snapshots (talos-backup `*.age`) with.
    pub age: Option<age::AgeIdentities>,
    /// Count objects per namespace and bytes too, not only objects per resource (`inspect`;
    /// a few bytes more per `key`-bucket entry until the walk).
    pub full_inventory: bool,
}

/// An encryption layer found around the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encryption {
    /// age, decrypted in the stream with a given identity: the rest of the report is about the
    /// plaintext.
    Age,
    /// age, not decrypted (no identity given, none matches, or a passphrase): the snapshot's
    /// validity is unknown, not invalid.
    AgeLocked,
}

/// Everything one pass learned about a snapshot. JSON field names are a contract (issue #2).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotReport {
    /// Restorable: trailer verified (or skipped on request), structure sound, revision readable.
    pub valid: bool,
    pub sha256: Sha256Status,
    /// `etcdctl snapshot status` hash: CRC-32C over bucket names, keys and values.
    pub hash: Option<u32>,
    /// Main revision of the last key in the `key` bucket (as `etcdctl snapshot status`).
    pub revision: Option<i64>,
    /// etcd 3.4/3.5 meaning: every entry in every bucket.
    pub total_key: Option<u64>,
    /// Size of the bbolt db in bytes (high-water mark × page size), trailer excluded.
    pub total_size: Option<u64>,
    /// `meta/storageVersion` (etcd ≥ 3.6); `None` when absent.
    pub version: Option<String>,
    /// Distinct user keys whose newest revision is not a tombstone (etcd 3.6 `totalKey`).
    pub live_keys: Option<u64>,
    pub container: Container,
    /// Name of the archive entry that held the snapshot (zip, tar.gz).
    pub entry: Option<String>,
    /// Encryption around the container (age), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    /// Bytes of the (decompressed) snapshot file, trailer included.
    pub file_size: u64,
    /// bbolt page size.
    pub page_size: Option<u32>,
    /// Revision entries in the `key` bucket (puts and tombstones of every kept revision).
    pub revisions: Option<u64>,
    /// Largest `mod_revision` of any value in the `key` bucket.
    pub newest_mod_revision: Option<i64>,
    /// Revision entries whose key has a lease.
    pub keys_with_lease: Option<u64>,
    /// `meta/scheduledCompactRev`: the newest compaction requested.
    pub scheduled_compact_revision: Option<i64>,
    /// `meta/finishedCompactRev`: the newest compaction finished.
    pub finished_compact_revision: Option<i64>,
    /// `meta/consistent_index`: raft index of the last applied entry.
    pub consistent_index: Option<u64>,
    /// `meta/term` (etcd ≥ 3.5).
    pub term: Option<u64>,
    /// `cluster/clusterVersion`, e.g. `3.4.0`.
    pub cluster_version: Option<String>,
    /// Member names from the `members` bucket.
    pub members: Vec<String>,
    /// Their IDs, in hex as `etcdctl member list` prints them (same order).
    pub member_ids: Vec<String>,
    /// Top-level bucket names in order.
    pub buckets: Vec<String>,
    /// Human-readable problems; empty when valid.
    pub problems: Vec<String>,
    /// Kubernetes objects per resource (and, for `inspect`, per namespace), when the structure
    /// is sound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inventory: Option<inventory::Inventory>,
}

impl SnapshotReport {
    /// The snapshot is encrypted and was not decrypted: its validity is unknown (not invalid).
    pub fn validity_unknown(&self) -> bool {
        self.encryption == Some(Encryption::AgeLocked)
    }

    fn empty(container: Container, entry: Option<String>) -> Self {
        SnapshotReport {
            valid: false,
            sha256: Sha256Status::Missing,
            hash: None,
            revision: None,
            total_key: None,
            total_size: None,
            version: None,
            live_keys: None,
            container,
            entry,
            encryption: None,
            file_size: 0,
            page_size: None,
            revisions: None,
            newest_mod_revision: None,
            keys_with_lease: None,
            scheduled_compact_revision: None,
            finished_compact_revision: None,
            consistent_index: None,
            term: None,
            cluster_version: None,
            members: Vec::new(),
            member_ids: Vec::new(),
            buckets: Vec::new(),
            problems: Vec::new(),
            inventory: None,
        }
    }
}

/// Errors that prevent reading the bytes at all. Corruption is not an error: see the module doc.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot read {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// Verify a snapshot from any reader (file, S3 body, decompressor) in one streaming pass.
///
/// The container is detected from the first bytes; the decompressed snapshot is read once,
/// sequentially, with sha256 on this thread and the page scanner on a second one. Memory stays
/// bounded (page summaries plus one page extent of at most 32 MiB). `name` only labels errors.
/// Corrupt content (including a corrupt or cut-off compressed stream) gives `Ok` with
/// `valid == false`; `Err` only when `reader` itself fails.
pub fn verify_reader<R: Read + Send>(
    reader: R,
    name: &str,
    opts: &VerifyOptions,
) -> Result<SnapshotReport, VerifyError> {
    let (tracked, failed) = container::Tracked::new(reader);
    let io_err = |source: std::io::Error| VerifyError::Io {
        what: name.to_string(),
        source,
    };
    let (head, input) = container::peek(tracked, age::MAGIC.len()).map_err(io_err)?;
    let (input, encryption): (Box<dyn Read>, _) = match age::open(&head, input, opts.age.as_ref()) {
        Ok(age::Opened::Plain(r)) => (Box::new(r), None),
        Ok(age::Opened::Decrypted(r)) => (Box::new(r), Some(Encryption::Age)),
        Ok(age::Opened::Locked(why)) => {
            let mut report = SnapshotReport::empty(Container::Plain, None);
            report.encryption = Some(Encryption::AgeLocked);
            report.problems.push(why);
            return Ok(report);
        }
        Ok(age::Opened::Corrupt(why)) => {
            if failed.load(Ordering::Relaxed) {
                return Err(io_err(std::io::Error::other(why)));
            }
            let mut report = SnapshotReport::empty(Container::Plain, None);
            report.problems.push(why);
            return Ok(report);
        }
        Err(e) => return Err(io_err(e)),
    };
    let mut report = verify_payload(input, &failed, opts).map_err(io_err)?;
    if encryption.is_some() {
        report.encryption = encryption;
    }
    Ok(report)
}

/// Verify the (decrypted) container stream. `Err` only when the caller's reader failed.
fn verify_payload(
    input: impl Read,
    failed: &std::sync::atomic::AtomicBool,
    opts: &VerifyOptions,
) -> Result<SnapshotReport, std::io::Error> {
    let outcome = container::with_payload(input, opts.expect, |payload, kind, entry| {
        let mut sha = stream::Sha256Sink::default();
        let mut scanner = scan::PageScanner::new(opts.full_inventory);
        let started = std::time::Instant::now();
        let end = stream::run(payload, &mut [&mut sha, &mut scanner]);
        tracing::debug!(bytes = end.total, elapsed = ?started.elapsed(), "streaming pass done");
        (kind, entry, sha, scanner, end)
    });
    let (kind, entry, sha, scanner, end) = match outcome {
        Ok(parts) => parts,
        // Not the caller's reader: a layer above it (age authentication) refused the bytes.
        Err(container::OpenError::Io(e)) if !failed.load(Ordering::Relaxed) => {
            let mut report = SnapshotReport::empty(Container::Plain, None);
            report.problems.push(format!("corrupt input: {e}"));
            return Ok(report);
        }
        Err(container::OpenError::Io(e)) => return Err(e),
        Err(container::OpenError::Corrupt(kind, msg)) => {
            if failed.load(Ordering::Relaxed) {
                return Err(std::io::Error::other(msg));
            }
            let mut report = SnapshotReport::empty(kind, None);
            report.problems.push(msg);
            return Ok(report);
        }
    };
    if let Some(e) = end.error {
        if failed.load(Ordering::Relaxed) {
            return Err(e);
        }
        let mut report = assemble(kind, entry, &sha, scanner.scan, opts);
        report.problems.insert(
            0,
            format!(
                "{kind:?} stream is corrupt or cut off after {} bytes of snapshot: {e}",
                end.total
            )
            .to_lowercase()
            .replacen("targz", "tar.gz", 1),
        );
        report.valid = false;
        return Ok(report);
    }
    Ok(assemble(kind, entry, &sha, scanner.scan, opts))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Combine the results of the sinks and the tree walk into the report.
fn assemble(
    kind: Container,
    entry: Option<String>,
    sha: &stream::Sha256Sink,
    scan: scan::Scan,
    opts: &VerifyOptions,
) -> SnapshotReport {
    let mut r = SnapshotReport::empty(kind, entry);
    r.file_size = scan.total;
    let total = scan.total;
    let has_trailer = total >= 32 && total % 512 == 32;
    if let Some((digest, tail, _)) = sha.result() {
        r.sha256 = if !has_trailer {
            Sha256Status::Missing
        } else if &digest[..] == tail {
            Sha256Status::Verified
        } else {
            r.problems.push(format!(
                "sha256 trailer mismatch: the last 32 bytes say {} but sha256 of the first {} bytes is {}",
                hex(tail),
                total - 32,
                hex(digest)
            ));
            Sha256Status::Mismatch
        };
    }
    if total == 0 {
        r.problems
            .push("empty input (0 bytes): not a snapshot".into());
        return r;
    }
    r.problems.extend(scan.meta_problems);
    let mut truncated = false;
    if let Some(meta) = scan.meta {
        let ps = u64::from(meta.page_size);
        let db_len = meta.hwm * ps;
        r.total_size = Some(db_len);
        r.page_size = Some(meta.page_size);
        let data = if has_trailer { total - 32 } else { total };
        truncated = data < db_len;
        if truncated {
            r.problems.push(format!(
                "truncated: the db needs {db_len} bytes (high-water mark {} x page size {ps}) but the input holds {data}{}",
                meta.hwm,
                if has_trailer { " before its trailer" } else { "" }
            ));
        } else if has_trailer && data > db_len {
            r.problems.push(format!(
                "{} unexpected bytes between the end of the db ({db_len} bytes) and the sha256 trailer",
                data - db_len
            ));
        }
        let started = std::time::Instant::now();
        let w = walk::walk(&meta, &scan.pages, &scan.names);
        tracing::debug!(
            pages = scan.pages.len(),
            record_bytes = scan.pages.record_bytes(),
            elapsed = ?started.elapsed(),
            "tree walk done"
        );
        drop(scan.pages);
        if w.problems.is_empty() {
            r.hash = Some(w.hash);
            r.total_key = Some(w.total_key);
            r.live_keys = w.live_keys;
            r.revision = w.revision;
            r.revisions = Some(w.revisions);
            r.newest_mod_revision = Some(w.max_mod_revision);
            r.keys_with_lease = Some(w.keys_with_lease);
            r.inventory = w.inventory;
        }
        r.version = w.storage_version;
        r.scheduled_compact_revision = w.scheduled_compact_revision;
        r.finished_compact_revision = w.finished_compact_revision;
        r.consistent_index = w.consistent_index;
        r.term = w.term;
        r.cluster_version = w.cluster_version;
        r.members = w.members;
        r.member_ids = w.member_ids;
        r.buckets = w.buckets;
        r.problems.extend(w.problems);
    }
    if r.sha256 == Sha256Status::Missing && truncated {
        r.problems.push(format!(
            "no sha256 trailer (size {total} is not 32 mod 512): the input ends early"
        ));
    } else if r.sha256 == Sha256Status::Missing && !opts.skip_hash_check {
        r.problems.push(format!(
            "no sha256 trailer (size {total} is not 32 mod 512): a raw copy of member/snap/db, restorable only with --skip-hash-check"
        ));
    }
    if r.problems.len() > MAX_PROBLEMS {
        let more = r.problems.len() - MAX_PROBLEMS;
        r.problems.truncate(MAX_PROBLEMS);
        r.problems.push(format!("... and {more} more problems"));
    }
    r.valid = r.problems.is_empty();
    r
}

/// Verify a snapshot file on disk.
pub fn verify_path(path: &Path, opts: &VerifyOptions) -> Result<SnapshotReport, VerifyError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| VerifyError::Io {
        what: name.clone(),
        source,
    })?;
    verify_reader(file, &name, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PS: usize = 4096;

    /// A leaf page image: header, elements, then key/value data (reference §1.6).
    fn leaf_image(id: u64, entries: &[(u32, &[u8], &[u8])]) -> Vec<u8> {
        let mut p = vec![0u8; 16 + 16 * entries.len()];
        p[0..8].copy_from_slice(&id.to_le_bytes());
        p[8..10].copy_from_slice(&bbolt::LEAF.to_le_bytes());
        p[10..12].copy_from_slice(&(entries.len() as u16).to_le_bytes());
        for (i, (flags, k, v)) in entries.iter().enumerate() {
            let elem = 16 + 16 * i;
            let pos = (p.len() - elem) as u32;
            p[elem..elem + 4].copy_from_slice(&flags.to_le_bytes());
            p[elem + 4..elem + 8].copy_from_slice(&pos.to_le_bytes());
            p[elem + 8..elem + 12].copy_from_slice(&(k.len() as u32).to_le_bytes());
            p[elem + 12..elem + 16].copy_from_slice(&(v.len() as u32).to_le_bytes());
            p.extend_from_slice(k);
            p.extend_from_slice(v);
        }
        p
    }

    fn inline_bucket(entries: &[(u32, &[u8], &[u8])]) -> Vec<u8> {
        let mut v = vec![0u8; 16];
        v.extend_from_slice(&leaf_image(0, entries));
        v
    }

    fn meta(id: u64, root: u64, freelist: u64, hwm: u64, txid: u64) -> Vec<u8> {
        let mut p = vec![0u8; PS];
        p[0..8].copy_from_slice(&id.to_le_bytes());
        p[8..10].copy_from_slice(&bbolt::META.to_le_bytes());
        p[16..20].copy_from_slice(&bbolt::MAGIC.to_le_bytes());
        p[20..24].copy_from_slice(&bbolt::VERSION.to_le_bytes());
        p[24..28].copy_from_slice(&(PS as u32).to_le_bytes());
        p[32..40].copy_from_slice(&root.to_le_bytes());
        p[48..56].copy_from_slice(&freelist.to_le_bytes());
        p[56..64].copy_from_slice(&hwm.to_le_bytes());
        p[64..72].copy_from_slice(&txid.to_le_bytes());
        let sum = bbolt::fnv1a64(&p[16..72]);
        p[72..80].copy_from_slice(&sum.to_le_bytes());
        p
    }

    fn pad(mut p: Vec<u8>) -> Vec<u8> {
        p.resize(PS, 0);
        p
    }

    const REV_KEY: &[u8] = b"\0\0\0\0\0\0\0\x02_\0\0\0\0\0\0\0\0";
    const KV: &[u8] = b"\x0a\x03foo\x10\x02\x18\x02\x20\x01\x2a\x03bar";

    /// The shape of etcd's `corrupted_backup.db` (reference §1.12), built by hand.
    fn file(freelist: Option<&[u64]>) -> Vec<u8> {
        let key = inline_bucket(&[(0, REV_KEY, KV)]);
        let metab = inline_bucket(&[(0, b"consistent_index", &9u64.to_be_bytes())]);
        let root = leaf_image(2, &[(1, b"key", &key), (1, b"meta", &metab)]);
        let (fl, hwm) = if freelist.is_some() {
            (3, 5)
        } else {
            (bbolt::PGID_NO_FREELIST, 3)
        };
        let mut f = meta(0, 2, fl, hwm, 10);
        f.extend(meta(1, 2, fl, hwm, 11));
        f.extend(pad(root));
        if let Some(ids) = freelist {
            let mut p = vec![0u8; 16];
            p[0..8].copy_from_slice(&3u64.to_le_bytes());
            p[8..10].copy_from_slice(&bbolt::FREELIST.to_le_bytes());
            p[10..12].copy_from_slice(&(ids.len() as u16).to_le_bytes());
            for id in ids {
                p.extend_from_slice(&id.to_le_bytes());
            }
            f.extend(pad(p));
            f.extend(pad(leaf_image(4, &[])));
        }
        f
    }

    fn skip() -> VerifyOptions {
        VerifyOptions {
            skip_hash_check: true,
            ..VerifyOptions::default()
        }
    }

    #[test]
    fn hand_built_file_gives_status_numbers() {
        let f = file(None);
        let r = verify_reader(&f[..], "t", &skip()).unwrap();
        assert!(r.valid, "{:?}", r.problems);
        assert_eq!(r.sha256, Sha256Status::Missing);
        let want = crc32c::crc32c(
            &[
                &b"key"[..],
                REV_KEY,
                KV,
                b"meta",
                b"consistent_index",
                &9u64.to_be_bytes(),
            ]
            .concat(),
        );
        assert_eq!(r.hash, Some(want));
        assert_eq!(
            (r.revision, r.total_key, r.live_keys),
            (Some(2), Some(2), Some(1))
        );
        assert_eq!(
            (r.total_size, r.consistent_index),
            (Some(3 * PS as u64), Some(9))
        );
        // Without --skip-hash-check a raw file is not valid.
        let r = verify_reader(&f[..], "t", &VerifyOptions::default()).unwrap();
        assert!(!r.valid);
    }

    #[test]
    fn persisted_freelist_rules_match_bbolt_check() {
        let r = verify_reader(&file(Some(&[3, 3]))[..], "t", &skip()).unwrap();
        assert!(!r.valid);
        assert!(
            r.problems.iter().any(|p| p == "page 3: already freed"),
            "{:?}",
            r.problems
        );
        assert!(
            r.problems
                .iter()
                .any(|p| p == "page 4: unreachable unfreed"),
            "{:?}",
            r.problems
        );
        assert!(
            !r.problems.iter().any(|p| p.contains("reachable freed")),
            "{:?}",
            r.problems
        );
        let r = verify_reader(&file(Some(&[4]))[..], "t", &skip()).unwrap();
        assert!(r.valid, "{:?}", r.problems);
    }

    #[test]
    fn one_bad_meta_page_is_reported_and_the_other_is_used() {
        let mut f = file(None);
        f[PS + 40] ^= 1; // meta 1 (the newer txid) body
        let r = verify_reader(&f[..], "t", &skip()).unwrap();
        assert_eq!(r.revision, Some(2));
        assert!(
            r.problems
                .iter()
                .any(|p| p.starts_with("meta page 1 is invalid: checksum")),
            "{:?}",
            r.problems
        );
    }
}
