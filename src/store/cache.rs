//! Each backup object is read and verified once per process (issue #21).
//!
//! What reading an object taught (a snapshot's verification report, a Gardener delta's or an
//! OpenShift companion archive's check, the bytes of a small control or meta file) is kept by
//! the object's identity as the listing shows it: S3 key + size + ETag, local path + size +
//! mtime. A changed object has another identity and is read again; an unchanged one is not.
//! Only outcomes of the content are kept: a read that failed (timeout, 403, connection cut) is
//! tried again next time. Snapshot bytes are never kept.
//!
//! One [`VerifyCache`] serves every store of a process (it travels in
//! [`super::InspectOptions`]): `serve`'s refreshes, and `check` over many stores. It holds at
//! most [`CACHE_ENTRIES`] entries and drops the least recently used first.

use super::gardener::DeltaOk;
use crate::snapshot::SnapshotReport;
use prometheus_client::metrics::counter::Counter;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

/// Entries kept: about four per etcd-manager store (snapshot, meta, two control files), one per
/// delta of a Gardener chain. An entry is a few hundred bytes to ~2 KiB, so the cache stays
/// under ~20 MiB.
pub const CACHE_ENTRIES: usize = 8192;

/// Small files (control files, meta, queued commands) are kept only up to this size; larger
/// ones are read each time.
pub const SMALL_CACHED: usize = 2048;

/// An object's identity as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectId {
    /// S3: endpoint, bucket and key; local: the file's path.
    pub location: String,
    /// Size in bytes.
    pub size: u64,
    /// S3 ETag, or the local file's mtime in nanoseconds.
    pub version: String,
}

/// What reading one object taught.
#[derive(Debug, Clone)]
pub(crate) enum Known {
    /// A snapshot's verification report.
    Snapshot(Arc<SnapshotReport>),
    /// A small file's bytes (at most [`SMALL_CACHED`]).
    File(Arc<[u8]>),
    /// A Gardener delta's check.
    Delta(Result<DeltaOk, String>),
    /// An OpenShift `static_kuberesources` archive's check.
    Companion(Result<(), String>),
}

/// What reading stores cost, for the process's metrics. Counters are shared by clones.
#[derive(Debug, Clone, Default)]
pub struct ReadStats {
    /// Bytes of objects read: snapshots (their stored size), deltas, control and meta files.
    pub bytes_read: Counter,
    /// S3 requests sent (each retry attempt counts).
    pub requests: Counter,
    /// Snapshots streamed through the verifier.
    pub verifications: Counter,
    /// Objects not read again because the cache knew them.
    pub cache_hits: Counter,
}

/// Most snapshot verifications at once in `serve`. `status`, `check` and `verify` verify one at
/// a time, so that a run over many stores stays within one verification's memory (64 MiB for
/// an 8 GiB snapshot, issue #21); `serve`'s memory in `deploy/` counts on two.
pub const SERVE_VERIFYING: usize = 2;

/// The process's cache of what objects held, its read counters and its verification permits.
/// Cloning shares it.
#[derive(Clone)]
pub struct VerifyCache {
    entries: Arc<Mutex<lru::LruCache<ObjectId, Known>>>,
    /// Snapshots verified at once: verification is CPU-bound (two threads each) and each holds
    /// the verifier's memory, so one, or [`SERVE_VERIFYING`] in `serve`, whatever the store
    /// concurrency and the node's CPU count.
    verifying: Arc<tokio::sync::Semaphore>,
    /// Read counters.
    pub stats: ReadStats,
}

impl std::fmt::Debug for VerifyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyCache")
            .field("entries", &self.len())
            .finish_non_exhaustive()
    }
}

impl Default for VerifyCache {
    fn default() -> Self {
        VerifyCache::new(NonZeroUsize::new(CACHE_ENTRIES).unwrap_or(NonZeroUsize::MIN))
    }
}

impl VerifyCache {
    /// An empty cache of at most `entries` entries, verifying one snapshot at a time.
    pub fn new(entries: NonZeroUsize) -> Self {
        VerifyCache {
            entries: Arc::new(Mutex::new(lru::LruCache::new(entries))),
            verifying: Arc::new(tokio::sync::Semaphore::new(1)),
            stats: ReadStats::default(),
        }
    }

    /// The cache for `serve`: up to [`SERVE_VERIFYING`] verifications at once, as many as the
    /// node has CPUs for.
    pub fn for_serve() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        VerifyCache {
            verifying: Arc::new(tokio::sync::Semaphore::new(cpus.min(SERVE_VERIFYING))),
            ..VerifyCache::default()
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, lru::LruCache<ObjectId, Known>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What is known of `id` (counted as a cache hit).
    pub(crate) fn get(&self, id: &ObjectId) -> Option<Known> {
        let found = self.lock().get(id).cloned();
        if found.is_some() {
            self.stats.cache_hits.inc();
        }
        found
    }

    /// Remember what `id` held.
    pub(crate) fn put(&self, id: ObjectId, known: Known) {
        self.lock().put(id, known);
    }

    /// Wait for a verification permit.
    pub(crate) async fn permit(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.verifying.acquire().await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_verify_one_snapshot_at_a_time_and_serve_two() {
        let run = VerifyCache::default();
        let held = run.permit().await.expect("a permit");
        assert!(
            run.verifying.try_acquire().is_err(),
            "a second verification at once"
        );
        drop(held);
        assert!(run.verifying.try_acquire().is_ok());
        let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let serve = VerifyCache::for_serve();
        assert_eq!(
            serve.verifying.available_permits(),
            cpus.min(SERVE_VERIFYING)
        );
    }

    fn id(key: &str, version: &str) -> ObjectId {
        ObjectId {
            location: key.to_string(),
            size: 1,
            version: version.to_string(),
        }
    }

    #[test]
    fn bounded_least_recently_used_first_and_hits_counted() {
        let c = VerifyCache::new(NonZeroUsize::new(2).unwrap());
        c.put(id("a", "1"), Known::Companion(Ok(())));
        c.put(id("b", "1"), Known::Companion(Ok(())));
        assert!(c.get(&id("a", "1")).is_some()); // a is now the most recently used
        c.put(id("c", "1"), Known::Companion(Ok(())));
        assert_eq!(c.len(), 2);
        assert!(c.get(&id("b", "1")).is_none(), "b was least recently used");
        assert!(c.get(&id("a", "1")).is_some());
        // Another version of the same key is another object.
        assert!(c.get(&id("a", "2")).is_none());
        assert_eq!(c.stats.cache_hits.get(), 2);
    }
}
