//! Backup stores (local directory, S3) and their layouts (issue #3).
//!
//! [`inspect`] answers "what is the newest restorable backup, how old is it, and what will
//! etcd-manager do with these control files?" as a typed, serializable [`StoreFacts`]:
//!
//! 1. list the store (for etcd-manager, only the recent window: names sort by time, so a
//!    `start-after` key computed from "now minus a window" keeps the listing independent of
//!    history; the window widens only when it holds no backup, ending with a delimiter listing);
//! 2. apply the layout ([`layout`], pure) to get backups newest first;
//! 3. stream the newest backup through [`crate::snapshot::verify_reader`]; if it is not
//!    restorable, walk back (at most [`InspectOptions::max_walk_back`] backups) to the newest
//!    valid one;
//! 4. for Gardener, a valid Full snapshot is followed by its chain of Incr deltas, each read and
//!    checked ([`gardener`]) until the first gap or bad one; the restore point (time, revision)
//!    is the last good delta;
//! 5. for etcd-manager, read and assess the control files ([`control`], pure).
//!
//! Every object is read through the process's [`VerifyCache`] ([`cache`]): an object the
//! listing shows unchanged (same size and ETag or mtime) is not read again.
//!
//! Everything is read-only: LIST and GET only (see [`backend`]).

pub mod backend;
pub mod cache;
pub mod control;
pub mod gardener;
pub mod layout;
pub mod protojson;
pub mod ranged;
pub mod s3_error;
pub mod s3_lifecycle;

pub use backend::{Backend, RecordedRequest, RequestLog, S3Options, StoreError, StoreUrl};
pub use cache::{ReadStats, VerifyCache};
pub use control::{BackupMeta, ControlFacts, ControlOutcome, FileState};
pub use layout::{Candidate, Ignored, Layout, TimeSource};
pub use ranged::{ObjectReader, RangedReads};

use crate::continuity;
use crate::snapshot::{SnapshotReport, VerifyOptions};
use cache::{Known, ObjectId};
use chrono::{DateTime, Utc};
use layout::{Assembled, ObjectInfo, EM_CREATED, EM_SPEC};
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;

/// Largest control or meta file read (they are a few hundred bytes).
const SMALL_FILE_LIMIT: u64 = 64 * 1024;
/// Largest Gardener delta read (stored bytes). etcd-backup-restore cuts a delta at
/// `--delta-snapshot-memory-limit` (10 MiB of JSON by default) plus one watch response.
const DELTA_LIMIT: u64 = 64 * 1024 * 1024;
/// Gardener deltas fetched at once (in order; the chain stops at the first bad one).
const DELTA_PARALLEL: usize = 4;

/// Largest OpenShift `static_kuberesources_*.tar.gz` read (static pod manifests, configmaps and
/// certificates: usually well under a few MiB).
const COMPANION_LIMIT: u64 = 256 * 1024 * 1024;

/// Whether an OpenShift `static_kuberesources_*.tar.gz` is what `cluster-restore.sh` can use:
/// a gzip tar, intact to its end (CRC), holding `static-pod-resources/…` (it runs
/// `tar -C /etc/kubernetes -xzf <file> static-pod-resources`; `cluster-backup.sh` writes it with
/// `tar -cpzf … -C /etc/kubernetes static-pod-resources/<component>-pod-<N>`).
fn static_resources_readable(bytes: &[u8]) -> Result<(), String> {
    use std::io::Read;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut found = false;
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path().map_err(|e| e.to_string())?;
        let path = path.to_string_lossy();
        let path = path.trim_start_matches("./");
        found |= path == "static-pod-resources" || path.starts_with("static-pod-resources/");
        std::io::copy(&mut entry, &mut std::io::sink()).map_err(|e| e.to_string())?;
    }
    // Read to the gzip trailer so its CRC and length are checked.
    archive
        .into_inner()
        .read_to_end(&mut Vec::new())
        .map_err(|e| e.to_string())?;
    if found {
        Ok(())
    } else {
        Err("it holds no static-pod-resources/".to_string())
    }
}

/// Options of one inspection.
#[derive(Debug, Clone)]
pub struct InspectOptions {
    /// Force a layout; `None` = auto-detect.
    pub layout: Option<Layout>,
    /// "Now" for ages and the listing window.
    pub now: DateTime<Utc>,
    /// First listing window for time-sorted layouts (etcd-manager); widened ×16, then to the
    /// whole history, only while it holds no backup.
    pub window: chrono::Duration,
    /// At most this many backups are verified when walking back from the newest.
    pub max_walk_back: usize,
    /// Options passed to the snapshot verifier.
    pub verify: VerifyOptions,
    /// Overall deadline of the whole inspection.
    pub deadline: Duration,
    /// When the store holds several backup series: inspect only these (empty: every series).
    pub series: Vec<String>,
    /// What objects held, by identity; shared by every clone (one per process).
    pub cache: VerifyCache,
}

impl InspectOptions {
    /// Defaults: auto-detect, 48 h window, walk back at most 5, 5 min deadline.
    pub fn new(now: DateTime<Utc>) -> Self {
        InspectOptions {
            layout: None,
            now,
            window: chrono::Duration::hours(48),
            max_walk_back: 5,
            verify: VerifyOptions::default(),
            deadline: Duration::from_secs(300),
            series: Vec::new(),
            cache: VerifyCache::default(),
        }
    }
}

/// Outcome of verifying one backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Validity {
    /// Restorable: the snapshot verified and (etcd-manager) the meta is usable.
    Valid,
    /// Not restorable; `reason` says why.
    Invalid,
    /// Could not be found out (read error, timeout); `reason` says why.
    Unknown,
}

/// One backup and its verification.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupFacts {
    /// Backup name (etcd-manager folder, or object key).
    pub name: String,
    /// Backup time.
    pub time: DateTime<Utc>,
    /// Where the time comes from.
    pub time_source: TimeSource,
    /// `now - time` in seconds (negative when the backup is in the future).
    pub age_seconds: i64,
    /// Size of the data object in bytes, when known.
    pub size: Option<u64>,
    /// Key of the verified object (relative to the store).
    pub data_key: String,
    /// Valid / invalid / unknown.
    pub validity: Validity,
    /// Why it is invalid or unknown.
    pub reason: Option<String>,
    /// The snapshot verifier's report, when the data could be read.
    pub report: Option<SnapshotReport>,
    /// etcd-manager `_etcd_backup.meta`, when read and parsed.
    pub meta: Option<BackupMeta>,
    /// OpenShift `__POSSIBLY_DIRTY__` backup.
    pub possibly_dirty: bool,
    /// Gardener: the Incr deltas applied after this Full snapshot. `time` and `age_seconds` are
    /// then those of the restore point (the last applied delta).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<DeltaChain>,
}

/// A Gardener restore point: a Full snapshot plus its unbroken chain of Incr deltas (each starts
/// one revision after the previous one ends), as etcd-backup-restore's restorer applies them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeltaChain {
    /// Time of the Full snapshot.
    pub full_time: DateTime<Utc>,
    /// Last revision in the Full snapshot's name.
    pub full_revision: i64,
    /// Deltas listed after the Full snapshot (before the next one).
    pub listed: usize,
    /// Deltas read, checked and continuing the chain; the restore point ends with the last.
    pub applied: usize,
    /// Of those, deltas without the appended SHA-256 (etcd-backup-restore before 0.3.0).
    pub without_sha256: usize,
    /// Key of the last applied delta (`None`: the restore point is the Full snapshot alone).
    pub end_key: Option<String>,
    /// Time of the restore point.
    pub end_time: DateTime<Utc>,
    /// Revision of the restore point (from the names).
    pub end_revision: i64,
    /// The first delta that could not be applied, and why; later deltas are lost to a restore.
    pub broken: Option<ChainBreak>,
}

/// Where a Gardener delta chain ends early.
#[derive(Debug, Clone, Serialize)]
pub struct ChainBreak {
    /// Key of the delta that breaks the chain.
    pub key: String,
    /// Why it cannot be applied (gap, unreadable, corrupt).
    pub reason: String,
}

/// How far the walk back from the newest backup went.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WalkBack {
    /// Maximum number of backups verified.
    pub limit: usize,
    /// Backups verified (newest first), including the newest.
    pub checked: usize,
    /// The limit was reached without finding a valid backup (older ones were not checked).
    pub limit_reached: bool,
}

/// Compare the newest valid backup with the backups before it (issue #22). Reads further
/// listed backups only as [`continuity::Walk`] asks (at most [`continuity::MAX_READS`]), reuses
/// those the walk back already verified, and gives up ("not checked") when `budget` runs out.
async fn continuity_of(
    r: &Reader<'_>,
    listed: &Listed,
    checked: &[BackupFacts],
    opts: &InspectOptions,
    budget: Duration,
) -> continuity::Continuity {
    use continuity::{Continuity, Step, Walk};
    let point = |b: &BackupFacts| {
        let r = b
            .report
            .as_ref()
            .filter(|_| b.validity == Validity::Valid)?;
        let mut p = continuity::Point::new(&b.name, b.time, r)?;
        p.etcd_version = b
            .meta
            .as_ref()
            .map(|m| m.etcd_version.clone())
            .filter(|v| !v.is_empty());
        Some(p)
    };
    let candidates = &listed.assembled.candidates;
    let index = |name: &str| candidates.iter().position(|c| c.name == name);
    let Some(newest) = checked.iter().find(|b| b.validity == Validity::Valid) else {
        return Continuity::not_checked("no valid backup");
    };
    let (Some(ni), Some(np)) = (index(&newest.name), point(newest)) else {
        return Continuity::not_checked("the newest valid backup has no revision");
    };
    let times = candidates.iter().map(|c| c.time).collect();
    let mut walk = Walk::new(times, ni, np, opts.now);
    if listed.layout == Some(Layout::EtcdManager) {
        walk = walk.with_etcd_manager_retention(listed.listed_since);
    }
    for b in checked {
        if let Some(i) = index(&b.name).filter(|&i| i != ni) {
            walk.record(i, point(b), false);
        }
    }
    let gardener = (listed.layout == Some(Layout::Gardener)).then_some(listed.objects.as_slice());
    let steps = async {
        loop {
            let i = match walk.step() {
                Step::Done(c) => return *c,
                Step::Read(i) => i,
            };
            let Some(c) = candidates.get(i) else {
                return Continuity::not_checked("internal: no such backup");
            };
            let read = match check_candidate(r, c, opts, gardener).await {
                Checked::Backup(b) => point(&b),
                Checked::NotABackup(_) => None,
            };
            walk.record(i, read, true);
        }
    };
    tokio::time::timeout(budget, steps)
        .await
        .unwrap_or_else(|_| {
            Continuity::not_checked(
                "reading the backups before the newest would take more than half the deadline",
            )
        })
}

/// Backups seen in the listing and the observed interval between them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupStats {
    /// Number of backups listed.
    pub count: usize,
    /// The listing covered names from this time on (`None`: the whole history).
    pub listed_since: Option<DateTime<Utc>>,
    /// Oldest listed backup time.
    pub oldest: Option<DateTime<Utc>>,
    /// Median interval between consecutive listed backups, seconds.
    pub median_interval_seconds: Option<i64>,
    /// Largest gap between consecutive listed backups, seconds.
    pub max_gap_seconds: Option<i64>,
}

/// Keys listed as examples when no backup is found.
const SAMPLE_KEYS: usize = 3;

/// Why a store shows no backup (issue #19): the layouts tried, what the store does hold, and
/// where the keys do look like backups. The store is the wrong place unless it is
/// [`recognised`](NoBackups::recognised).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NoBackups {
    /// The layouts tried: the one forced by `--layout`, or every layout in detection order.
    pub layouts_tried: Vec<Layout>,
    /// `--layout` forced the layout.
    pub forced: bool,
    /// Number of keys (objects, and folders of a folder listing) seen.
    pub keys_seen: usize,
    /// The first few of them, in key order.
    pub sample_keys: Vec<String>,
    /// The store is recognisably of the layout used (e.g. etcd-manager control files are
    /// there): a store of the right kind that holds no backup, not a wrong place.
    pub recognised: bool,
    /// With `--layout` forced: the layout the keys do look like, if another.
    pub looks_like: Option<Layout>,
    /// Stores below this one where a layout finds backups (the URL is a level or more too
    /// high), shallowest first, at most three.
    pub below: Vec<Below>,
}

/// Backups found below the store given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Below {
    /// The store URL to use instead.
    pub store: String,
    /// The layout that finds backups there.
    pub layout: Layout,
}

impl NoBackups {
    /// One line: `no backups found at URL: ...` with the layouts tried and a few keys seen.
    pub fn summary(&self, store: &str) -> String {
        let tried = if let [one] = self.layouts_tried.as_slice() {
            let how = if self.forced {
                "forced by --layout"
            } else {
                "detected"
            };
            format!("layout {one} ({how})")
        } else {
            format!(
                "layouts {}",
                self.layouts_tried
                    .iter()
                    .map(|l| l.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let seen = match self.keys_seen {
            0 => "the store is empty".to_string(),
            n => {
                let more = if n > self.sample_keys.len() {
                    ", ..."
                } else {
                    ""
                };
                format!(
                    "{n} key{} seen: {}{more}",
                    if n == 1 { "" } else { "s" },
                    self.sample_keys.join(", ")
                )
            }
        };
        format!("no backups found at {store}: tried {tried}; {seen}")
    }

    /// What to do, in one sentence.
    pub fn advice(&self) -> String {
        if let Some(b) = self.below.first() {
            let others = self
                .below
                .iter()
                .skip(1)
                .map(|b| b.store.as_str())
                .collect::<Vec<_>>();
            let also = if others.is_empty() {
                String::new()
            } else {
                format!(" (also under {})", others.join(", "))
            };
            return format!(
                "the store URL is too high: {} backups are at {}{also}; pass --store {}",
                b.layout, b.store, b.store
            );
        }
        if let Some(l) = self.looks_like {
            return format!(
                "the keys look like {l} backups, not {}: drop --layout or pass --layout {l}",
                self.layouts_tried.first().map_or("?", |l| l.name())
            );
        }
        if self.keys_seen == 0 {
            return "check the store URL (bucket, prefix, spelling): nothing is stored there"
                .to_string();
        }
        "check the store URL; if the backups use a supported layout the names do not match, pass --layout NAME (see --help)".to_string()
    }
}

/// Find where the keys hold backups below the store: strip 1, 2 or 3 leading path segments
/// and detect a layout in each group (shallowest depth that finds any wins).
fn below(store: &str, seen: &[ObjectInfo], forced: Option<Layout>) -> Vec<Below> {
    for depth in 1..=3 {
        let mut groups: std::collections::BTreeMap<String, Vec<ObjectInfo>> = Default::default();
        for o in seen {
            let parts: Vec<&str> = o.key.splitn(depth + 1, '/').collect();
            if parts.len() <= depth || parts[depth].is_empty() {
                continue;
            }
            let head = parts[..depth].join("/");
            groups.entry(head).or_default().push(ObjectInfo {
                key: parts[depth].to_string(),
                ..o.clone()
            });
        }
        let found: Vec<Below> = groups
            .into_iter()
            .filter_map(|(head, objs)| {
                let layout = match forced {
                    Some(l) if layout::recognised(l, &objs).0 > 0 => Some(l),
                    _ => layout::detect(&objs),
                }?;
                Some(Below {
                    store: format!("{}/{head}/", store.trim_end_matches('/')),
                    layout,
                })
            })
            .take(3)
            .collect();
        if !found.is_empty() {
            return found;
        }
    }
    Vec::new()
}

/// What a store with no backup candidates holds (pure).
fn no_backups(
    store: &str,
    used: Option<Layout>,
    forced: Option<Layout>,
    seen: &[ObjectInfo],
) -> NoBackups {
    let mut keys: Vec<&str> = seen.iter().map(|o| o.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let detected = layout::detect(seen);
    let recognised = used.filter(|l| layout::recognised(*l, seen).1 > 0);
    NoBackups {
        layouts_tried: match (forced, recognised) {
            (Some(l), _) | (None, Some(l)) => vec![l],
            (None, None) => Layout::ALL.to_vec(),
        },
        forced: forced.is_some(),
        keys_seen: keys.len(),
        sample_keys: keys
            .iter()
            .take(SAMPLE_KEYS)
            .map(|k| k.to_string())
            .collect(),
        recognised: recognised.is_some(),
        looks_like: detected.filter(|d| forced.is_some_and(|f| f != *d)),
        below: below(store, seen, forced),
    }
}

/// Everything the gate needs to know about a backup store. Serializable; JSON field names are
/// camelCase.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreFacts {
    /// The store location (for one of several series: the series folder below `--store`).
    pub store: String,
    /// The series name, when the `--store` given holds several backup series (issue #20);
    /// `.` is the keys directly under it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<String>,
    /// The layout used (`None`: no layout recognised any backup).
    pub layout: Option<Layout>,
    /// `flag` (forced by `--layout`) or `detected`.
    pub layout_source: &'static str,
    /// The "now" used for ages.
    pub now: DateTime<Utc>,
    /// The newest backup (whatever its validity).
    pub newest: Option<BackupFacts>,
    /// The newest valid backup (equal to `newest` when that one is valid).
    pub newest_valid: Option<BackupFacts>,
    /// Every backup verified, newest first.
    pub checked: Vec<BackupFacts>,
    /// The walk back from the newest backup.
    pub walk_back: WalkBack,
    /// Count and interval of listed backups.
    pub backups: BackupStats,
    /// Whether the newest valid backup still holds the cluster of the backups before it.
    pub continuity: crate::continuity::Continuity,
    /// etcd-manager control files (etcd-manager layout only).
    pub control: Option<ControlFacts>,
    /// Objects not counted as backups, with reasons.
    pub ignored: Vec<Ignored>,
    /// Things that could not be found out ("unknown"), with reasons.
    pub unknowns: Vec<String>,
    /// Set when no backup was found: what was tried and what the store holds instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_backups: Option<NoBackups>,
    /// S3 requests sent (S3 stores only).
    pub s3_requests: Option<usize>,
}

impl StoreFacts {
    /// Age of the newest valid backup, if any.
    pub fn newest_valid_age(&self) -> Option<chrono::Duration> {
        self.newest_valid
            .as_ref()
            .map(|b| chrono::Duration::seconds(b.age_seconds))
    }
}

/// What one `--store` holds: one series, or several judged each on its own.
#[derive(Debug, Clone)]
pub struct Inspected {
    /// Every series found when the store holds several (empty: the store is one series).
    pub series_found: Vec<String>,
    /// The facts of each series inspected (those selected by [`InspectOptions::series`]).
    pub facts: Vec<StoreFacts>,
}

/// Open the store and inspect it within `opts.deadline`. `Err` means the store itself could
/// not be read (bad location, unreachable endpoint, unknown bucket, deadline), or it holds
/// several series and [`InspectOptions::series`] does not pick one (see [`inspect_all`]);
/// problems with individual backups or control files are reported inside [`StoreFacts`].
pub async fn inspect(
    url: &StoreUrl,
    s3: &S3Options,
    opts: &InspectOptions,
) -> Result<StoreFacts, StoreError> {
    let backend = Backend::open(url, s3).await?;
    inspect_backend(&backend, &url.to_string(), opts).await
}

/// Inspect an already opened store (lets callers read [`Backend::request_log`] afterwards).
pub async fn inspect_backend(
    backend: &Backend,
    store: &str,
    opts: &InspectOptions,
) -> Result<StoreFacts, StoreError> {
    let mut all = inspect_backend_all(backend, store, opts).await?;
    match all.facts.len() {
        1 => Ok(all.facts.remove(0)),
        _ => Err(StoreError::SeveralSeries {
            store: store.to_string(),
            series: all.series_found,
        }),
    }
}

/// Open the store and inspect every backup series it holds, each on its own (issue #20).
pub async fn inspect_all(
    url: &StoreUrl,
    s3: &S3Options,
    opts: &InspectOptions,
) -> Result<Inspected, StoreError> {
    let backend = Backend::open(url, s3).await?;
    inspect_backend_all(&backend, &url.to_string(), opts).await
}

/// [`inspect_all`] of an already opened store.
pub async fn inspect_backend_all(
    backend: &Backend,
    store: &str,
    opts: &InspectOptions,
) -> Result<Inspected, StoreError> {
    let sent = || backend.request_log().map_or(0, RequestLog::len);
    let before = sent();
    let r = tokio::time::timeout(opts.deadline, inspect_inner(backend, store, opts)).await;
    let requests = sent().saturating_sub(before);
    opts.cache.stats.requests.inc_by(requests as u64);
    r.unwrap_or_else(|_| {
        Err(StoreError::Deadline {
            store: store.to_string(),
            deadline: opts.deadline,
        })
    })
}

/// Backups of one store, verified as `status` verifies them (`inspect`, issue #22), from one
/// listing: for each of `names`, the backup called so (as `status` names backups), or for
/// `None` the newest valid one, walking back at most [`InspectOptions::max_walk_back`] (the
/// newest read when none of those is valid). `Err` when the store cannot be read, holds no
/// backup or none called a name given.
pub async fn read_backups(
    url: &StoreUrl,
    s3: &S3Options,
    opts: &InspectOptions,
    names: &[Option<&str>],
) -> Result<Vec<BackupFacts>, StoreError> {
    let backend = Backend::open(url, s3).await?;
    let store = url.to_string();
    let read = async {
        let (backend, listed) = one_series(&backend, &store, opts).await?;
        let r = &Reader::new(&backend, &opts.cache, &listed.objects);
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            out.push(read_backup(r, &store, &listed, opts, *name).await?);
        }
        Ok(out)
    };
    tokio::time::timeout(opts.deadline, read)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Deadline {
                store: store.clone(),
                deadline: opts.deadline,
            })
        })
}

/// The listing of the store's one backup series (the one `--series` picks when it holds
/// several), with the backend rooted at it.
async fn one_series(
    backend: &Backend,
    store: &str,
    opts: &InspectOptions,
) -> Result<(Backend, Listed), StoreError> {
    match list_store(backend, opts).await? {
        Found::One(listed) => Ok((backend.clone(), listed)),
        Found::Several { series, .. } => {
            let names: Vec<String> = series.iter().map(|(n, _)| n.clone()).collect();
            let mut picked = series.into_iter().filter(|(n, _)| opts.series.contains(n));
            match (picked.next(), picked.next()) {
                (Some((n, listed)), None) if n == layout::TOP_SERIES => {
                    Ok((backend.clone(), listed))
                }
                (Some((n, listed)), None) => Ok((backend.sub(&n), listed)),
                _ => Err(StoreError::SeveralSeries {
                    store: store.to_string(),
                    series: names,
                }),
            }
        }
    }
}

/// One backup of a listed series: see [`read_backups`].
async fn read_backup(
    r: &Reader<'_>,
    store: &str,
    listed: &Listed,
    opts: &InspectOptions,
    name: Option<&str>,
) -> Result<BackupFacts, StoreError> {
    let gardener = (listed.layout == Some(Layout::Gardener)).then_some(listed.objects.as_slice());
    let candidates = &listed.assembled.candidates;
    let checked = |c| async move {
        match check_candidate(r, c, opts, gardener).await {
            Checked::Backup(b) => Ok(*b),
            Checked::NotABackup(i) => Err(StoreError::Verify {
                key: i.key,
                reason: i.reason,
            }),
        }
    };
    if let Some(name) = name {
        if let Some(c) = candidates.iter().find(|c| c.name == name) {
            return checked(c).await;
        }
        // etcd-manager's listing covers the last days only; an older backup is read by name.
        if listed.layout == Some(Layout::EtcdManager)
            && layout::parse_etcd_manager_folder(name).is_some()
        {
            return Ok(named_backup(r, name, &[], opts).await);
        }
        return Err(StoreError::NoSuchBackup {
            store: store.to_string(),
            name: name.to_string(),
            newest: candidates.first().map(|c| c.name.clone()),
        });
    }
    let mut newest = None;
    for c in candidates.iter().take(opts.max_walk_back) {
        let Ok(b) = checked(c).await else { continue };
        if b.validity == Validity::Valid {
            return Ok(b);
        }
        newest.get_or_insert(b);
    }
    newest.ok_or_else(|| StoreError::NoBackup {
        store: store.to_string(),
    })
}

/// `--series` names that no store holds as a series (exit 2), naming the series found. Only
/// said when every store could be listed: an unreadable store refuses on its own.
pub fn unknown_series(
    wanted: &[String],
    found: &[(String, Vec<String>)],
    all_listed: bool,
) -> Option<String> {
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|w| !found.iter().any(|(_, names)| names.contains(w)))
        .map(String::as_str)
        .collect();
    if missing.is_empty() || !all_listed {
        return None;
    }
    let held: Vec<String> = found
        .iter()
        .filter(|(_, names)| !names.is_empty())
        .map(|(store, names)| format!("{store}: {}", names.join(", ")))
        .collect();
    Some(format!(
        "--series {}: no such backup series; {}",
        missing.join(", "),
        if held.is_empty() {
            "no store holds several series".to_string()
        } else {
            format!("series found: {}", held.join("; "))
        }
    ))
}

/// A listing: one series, or several (with the keys outside every series).
enum Found {
    One(Listed),
    Several {
        series: Vec<(String, Listed)>,
        /// Keys beside the series that no layout recognises (relative to the store).
        outside: Vec<Ignored>,
    },
}

struct Listed {
    layout: Option<Layout>,
    assembled: Assembled,
    listed_since: Option<DateTime<Utc>>,
    /// Whether the listing shows every object under `control/` (so absence is proof).
    control_listed: bool,
    objects: Vec<ObjectInfo>,
    /// Every key listed (folders of a folder listing as `name/`), for saying what the store
    /// holds when no backup is found.
    seen: Vec<ObjectInfo>,
    /// Local entries that are not regular files (listed under `ignored` with what they are).
    special: Vec<Ignored>,
}

fn looks_like_etcd_manager(objects: &[ObjectInfo]) -> bool {
    objects.iter().any(|o| {
        o.key == EM_SPEC
            || o.key == EM_CREATED
            || matches!(
                layout::classify(Layout::EtcdManager, &o.key),
                layout::KeyRole::Data { .. } | layout::KeyRole::Meta { .. }
            )
    })
}

async fn list_store(backend: &Backend, opts: &InspectOptions) -> Result<Found, StoreError> {
    let mut found = list_store_layout(backend, opts).await?;
    // Entries that are not files are never backups: say what they are.
    let add_special = |listed: &mut Listed| {
        listed
            .assembled
            .ignored
            .extend(listed.special.iter().cloned())
    };
    match &mut found {
        Found::One(listed) => add_special(listed),
        Found::Several { series, .. } => series.iter_mut().for_each(|(_, l)| add_special(l)),
    }
    Ok(found)
}

async fn list_store_layout(backend: &Backend, opts: &InspectOptions) -> Result<Found, StoreError> {
    if matches!(opts.layout, None | Some(Layout::EtcdManager)) {
        let mut etcd_manager = opts.layout.is_some();
        let mut seen = Vec::new();
        for factor in [1, 16] {
            let since = opts.now - opts.window * factor;
            let key = layout::etcd_manager_time_key(since);
            let l = backend.list(Some(&key), false).await?;
            // The window listing always includes control/ (it sorts after every timestamp).
            etcd_manager = etcd_manager || looks_like_etcd_manager(&l.objects);
            if !etcd_manager {
                break; // not etcd-manager, or nothing to tell: list everything below
            }
            let assembled = layout::assemble(Layout::EtcdManager, &l.objects, &[]);
            if !assembled.candidates.is_empty() {
                return Ok(Found::One(Listed {
                    layout: Some(Layout::EtcdManager),
                    assembled,
                    listed_since: Some(since),
                    control_listed: true,
                    objects: l.objects,
                    seen: Vec::new(),
                    special: l.special,
                }));
            }
            seen = l.objects;
        }
        if etcd_manager {
            // Nothing recent: the whole history, folders only (one entry per backup).
            let l = backend.list(None, true).await?;
            let assembled = layout::assemble(Layout::EtcdManager, &l.objects, &l.folders);
            seen.extend(l.objects.iter().cloned());
            seen.extend(l.folders.iter().map(|f| ObjectInfo {
                key: f.clone(),
                size: 0,
                last_modified: None,
                etag: None,
            }));
            return Ok(Found::One(Listed {
                layout: Some(Layout::EtcdManager),
                assembled,
                listed_since: None,
                control_listed: false,
                objects: l.objects,
                seen,
                special: l.special,
            }));
        }
    }
    let l = backend.list(None, false).await?;
    // Several series under one prefix are grouped from this one listing, in memory.
    if let Some((series, outside)) = layout::split_series(&l.objects, opts.layout) {
        // Non-file entries go with the series whose folder holds them (keys made relative).
        let mut special = l.special;
        let mut split: Vec<(String, Listed)> = series
            .into_iter()
            .map(|s| {
                let pre = format!("{}/", s.name);
                let (mine, rest): (Vec<Ignored>, Vec<Ignored>) =
                    special.drain(..).partition(|i| i.key.starts_with(&pre));
                special = rest;
                let mine = mine
                    .into_iter()
                    .map(|i| Ignored {
                        key: i.key.get(pre.len()..).unwrap_or_default().to_string(),
                        reason: i.reason,
                    })
                    .collect();
                (s.name, listed_whole(s.objects, opts.layout, mine))
            })
            .collect();
        let mut outside: Vec<Ignored> = outside
            .into_iter()
            .map(|o| Ignored {
                key: o.key,
                reason: "outside every backup series (no layout recognises it)".to_string(),
            })
            .collect();
        match split.iter_mut().find(|(n, _)| n == layout::TOP_SERIES) {
            Some((_, top)) => top.special.extend(special),
            None => outside.extend(special),
        }
        return Ok(Found::Several {
            series: split,
            outside,
        });
    }
    Ok(Found::One(listed_whole(l.objects, opts.layout, l.special)))
}

/// A complete listing of one series (every object under its root) with its layout applied.
fn listed_whole(objects: Vec<ObjectInfo>, forced: Option<Layout>, special: Vec<Ignored>) -> Listed {
    let layout = match forced {
        Some(l) => Some(l),
        None => layout::detect(&objects)
            .or_else(|| looks_like_etcd_manager(&objects).then_some(Layout::EtcdManager)),
    };
    let assembled = match layout {
        Some(lay) => layout::assemble(lay, &objects, &[]),
        None => Assembled {
            ignored: objects
                .iter()
                .map(|o| Ignored {
                    key: o.key.clone(),
                    reason: "no layout recognises this name".to_string(),
                })
                .collect(),
            ..Assembled::default()
        },
    };
    Listed {
        layout,
        assembled,
        listed_since: None,
        control_listed: true,
        seen: objects.clone(),
        objects,
        special,
    }
}

/// One series being read: its store, the identities its listing showed, and the process's
/// cache. Every object of a backup is read through here, so an unchanged one is read once.
struct Reader<'a> {
    backend: &'a Backend,
    cache: &'a VerifyCache,
    listed: HashMap<&'a str, &'a ObjectInfo>,
}

impl<'a> Reader<'a> {
    fn new(backend: &'a Backend, cache: &'a VerifyCache, objects: &'a [ObjectInfo]) -> Self {
        Reader {
            backend,
            cache,
            listed: objects.iter().map(|o| (o.key.as_str(), o)).collect(),
        }
    }

    /// The identity of a listed object (`None`: not listed, or listed without ETag/mtime).
    fn id(&self, key: &str) -> Option<ObjectId> {
        self.backend.object_id(self.listed.get(key)?)
    }

    /// Read an object completely, counting the bytes.
    async fn fetch(&self, key: &str, limit: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let read = self.backend.read_small(key, limit).await?;
        if let Some(b) = &read {
            self.cache.stats.bytes_read.inc_by(b.len() as u64);
        }
        Ok(read)
    }

    /// A small file (control file, meta, command), from the cache when unchanged.
    async fn read_small(&self, key: &str, limit: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let id = self.id(key);
        if let Some(Known::File(b)) = id.as_ref().and_then(|id| self.cache.get(id)) {
            return Ok(Some(b.to_vec()));
        }
        let read = self.fetch(key, limit).await?;
        if let (Some(id), Some(b)) = (id, &read) {
            if b.len() <= cache::SMALL_CACHED {
                self.cache.put(id, Known::File(b.as_slice().into()));
            }
        }
        Ok(read)
    }

    /// What `judge` says of an object's bytes (a Gardener delta, an OpenShift companion
    /// archive: only the outcome is kept). `Ok(None)` when the object does not exist.
    async fn outcome<T: Clone>(
        &self,
        key: &str,
        limit: u64,
        judge: impl FnOnce(&[u8]) -> Result<T, String>,
        keep: fn(Result<T, String>) -> Known,
        recall: fn(Known) -> Option<Result<T, String>>,
    ) -> Result<Option<Result<T, String>>, StoreError> {
        let id = self.id(key);
        if let Some(known) = id
            .as_ref()
            .and_then(|id| self.cache.get(id))
            .and_then(recall)
        {
            return Ok(Some(known));
        }
        let Some(bytes) = self.fetch(key, limit).await? else {
            return Ok(None);
        };
        let out = judge(&bytes);
        if let Some(id) = id {
            self.cache.put(id, keep(out.clone()));
        }
        Ok(Some(out))
    }

    /// Stream a snapshot through the verifier, unless the cache has its report. Read errors
    /// are not kept (the next reading tries again).
    async fn verify(
        &self,
        key: &str,
        opts: &VerifyOptions,
    ) -> Result<(SnapshotReport, u64), StoreError> {
        let id = self.id(key);
        if let Some(id) = &id {
            if let Some(Known::Snapshot(report)) = self.cache.get(id) {
                return Ok(((*report).clone(), id.size));
            }
        }
        let _permit = self.cache.permit().await;
        let (report, size) = self.backend.verify(key, opts).await?;
        let stats = &self.cache.stats;
        stats.verifications.inc();
        stats.bytes_read.inc_by(size);
        if let Some(id) = id {
            self.cache
                .put(id, Known::Snapshot(std::sync::Arc::new(report.clone())));
        }
        Ok((report, size))
    }
}

enum Checked {
    Backup(Box<BackupFacts>),
    NotABackup(Ignored),
}

/// Read and check the deltas after a valid Gardener Full snapshot, in restore order, until the
/// first one that breaks the chain (a revision gap, a read error, bad content).
async fn gardener_chain(
    r: &Reader<'_>,
    full: &layout::GardenerSnap,
    deltas: Vec<(String, layout::GardenerSnap)>,
) -> DeltaChain {
    use futures_util::StreamExt as _;
    let mut chain = DeltaChain {
        full_time: full.time,
        full_revision: full.last,
        listed: deltas.len(),
        applied: 0,
        without_sha256: 0,
        end_key: None,
        end_time: full.time,
        end_revision: full.last,
        broken: None,
    };
    let mut checks = futures_util::stream::iter(deltas)
        .map(|(key, snap)| async move {
            let delta = r
                .outcome(
                    &key,
                    DELTA_LIMIT,
                    |bytes| gardener::check_delta(bytes, &snap).map_err(|e| e.to_string()),
                    Known::Delta,
                    |k| match k {
                        Known::Delta(d) => Some(d),
                        _ => None,
                    },
                )
                .await;
            let checked = match delta {
                Ok(Some(checked)) => checked,
                Ok(None) => Err("listed but no longer there".to_string()),
                Err(e) => Err(format!("cannot read it: {e}")),
            };
            (key, snap, checked)
        })
        .buffered(DELTA_PARALLEL);
    while let Some((key, snap, checked)) = checks.next().await {
        let outcome = if snap.start != chain.end_revision + 1 {
            Err(format!(
                "revision gap: it starts at revision {} but the chain before it ends at {}",
                snap.start, chain.end_revision
            ))
        } else {
            checked
        };
        match outcome {
            Ok(ok) => {
                chain.applied += 1;
                chain.without_sha256 += usize::from(!ok.sha256);
                chain.end_time = snap.time;
                chain.end_revision = snap.last;
                chain.end_key = Some(key);
            }
            Err(reason) => {
                chain.broken = Some(ChainBreak { key, reason });
                break;
            }
        }
    }
    chain
}

async fn check_candidate(
    r: &Reader<'_>,
    c: &Candidate,
    opts: &InspectOptions,
    gardener_listing: Option<&[ObjectInfo]>,
) -> Checked {
    let mut facts = BackupFacts {
        name: c.name.clone(),
        time: c.time,
        time_source: c.time_source,
        age_seconds: (opts.now - c.time).num_seconds(),
        size: c.size,
        data_key: c.data_key.clone(),
        validity: Validity::Unknown,
        reason: None,
        report: None,
        meta: None,
        possibly_dirty: c.possibly_dirty,
        chain: None,
    };
    let mut verify = opts.verify.clone();
    // Gardener: the name says the codec (and a restore decodes by it).
    let gardener = gardener_listing.and_then(|objects| {
        let snap = layout::parse_gardener_key(&c.data_key).ok()?;
        Some((snap, objects))
    });
    if let Some((snap, _)) = &gardener {
        match gardener::codec(&snap.suffix) {
            Some(codec) => verify.expect = Some(codec),
            None => {
                facts.validity = Validity::Invalid;
                facts.reason = Some(format!(
                    "compression suffix {:?} is not one etcd-backup-restore decodes (.gz, .zlib, .Z or none): its restore fails",
                    snap.suffix
                ));
                return Checked::Backup(Box::new(facts));
            }
        }
    }
    if let Some(key) = &c.companion {
        let companion = r
            .outcome(
                key,
                COMPANION_LIMIT,
                static_resources_readable,
                Known::Companion,
                |k| match k {
                    Known::Companion(c) => Some(c),
                    _ => None,
                },
            )
            .await;
        match companion {
            Ok(None) => {
                facts.validity = Validity::Invalid;
                facts.reason = Some(format!(
                    "{key} is missing: cluster-restore.sh cannot restore the static pod resources without it and aborts"
                ));
                return Checked::Backup(Box::new(facts));
            }
            Ok(Some(Err(why))) => {
                facts.validity = Validity::Invalid;
                facts.reason = Some(format!(
                    "{key} is unreadable ({why}): cluster-restore.sh's `tar -xzf … static-pod-resources` fails and the restore aborts"
                ));
                return Checked::Backup(Box::new(facts));
            }
            Ok(Some(Ok(()))) => {}
            Err(e) => {
                facts.reason = Some(format!("cannot read {key}: {e}"));
                return Checked::Backup(Box::new(facts));
            }
        }
    }
    let mut meta_problem = None;
    if let Some(meta_key) = &c.meta_key {
        match r.read_small(meta_key, SMALL_FILE_LIMIT).await {
            Ok(None) => {
                return Checked::NotABackup(Ignored {
                    key: format!("{}/", c.name),
                    reason: "backup folder without _etcd_backup.meta (an unfinished upload; etcd-manager does not list it)"
                        .to_string(),
                })
            }
            Ok(Some(bytes)) => match control::parse_backup_meta(&bytes) {
                Ok(m) => {
                    if m.etcd_version.is_empty() {
                        meta_problem = Some("_etcd_backup.meta has no etcdVersion: etcd-manager's restore fails (\"etcd version not found\")".to_string());
                    } else if m.etcd_version.starts_with("2.") {
                        meta_problem = Some(format!("_etcd_backup.meta etcdVersion {} is etcd v2: etcd-manager cannot restore it", m.etcd_version));
                    }
                    facts.meta = Some(m);
                }
                Err(e) => meta_problem = Some(format!("_etcd_backup.meta cannot be parsed ({e}): etcd-manager's restore fails")),
            },
            Err(e) => {
                facts.reason = Some(format!("cannot read _etcd_backup.meta: {}", e.brief()));
                return Checked::Backup(Box::new(facts));
            }
        }
    }
    if c.data_listed == Some(false) {
        facts.validity = Validity::Invalid;
        // A local entry that is there but is not a file (a FIFO, a dangling link) is said so.
        let not_a_file = match r.backend {
            Backend::Local { root }
                if std::fs::symlink_metadata(root.join(&c.data_key)).is_ok() =>
            {
                backend::regular_file(&root.join(&c.data_key))
                    .err()
                    .map(|e| e.brief())
            }
            _ => None,
        };
        facts.reason = Some(match not_a_file {
            Some(why) => format!("{} cannot be restored: {why}", c.data_key),
            None => format!("{} is missing (meta without data)", c.data_key),
        });
        return Checked::Backup(Box::new(facts));
    }
    match r.verify(&c.data_key, &verify).await {
        Ok((report, size)) => {
            facts.size = Some(size);
            if report.validity_unknown() {
                facts.validity = Validity::Unknown;
                facts.reason = Some(report.problems.join("; "));
            } else if !report.valid {
                facts.validity = Validity::Invalid;
                facts.reason = Some(if report.problems.is_empty() {
                    "snapshot is not restorable".to_string()
                } else {
                    report.problems.join("; ")
                });
            } else if let Some(p) = meta_problem {
                facts.validity = Validity::Invalid;
                facts.reason = Some(p);
            } else {
                facts.validity = Validity::Valid;
                if let Some((full, objects)) = gardener {
                    let deltas = layout::gardener_deltas(objects, &c.data_key);
                    let chain = gardener_chain(r, &full, deltas).await;
                    facts.time = chain.end_time;
                    facts.age_seconds = (opts.now - chain.end_time).num_seconds();
                    facts.chain = Some(chain);
                }
            }
            facts.report = Some(report);
        }
        Err(StoreError::NotFound { key }) => {
            facts.validity = Validity::Invalid;
            facts.reason = Some(format!("{key} is missing (meta without data)"));
        }
        Err(e) => {
            facts.reason = Some(e.brief());
        }
    }
    Checked::Backup(Box::new(facts))
}

fn stats(candidates: &[Candidate], listed_since: Option<DateTime<Utc>>) -> BackupStats {
    let mut gaps: Vec<i64> = candidates
        .windows(2)
        .filter_map(|w| match w {
            [newer, older] => Some((newer.time - older.time).num_seconds()),
            _ => None,
        })
        .collect();
    gaps.sort_unstable();
    BackupStats {
        count: candidates.len(),
        listed_since,
        oldest: candidates.last().map(|c| c.time),
        median_interval_seconds: gaps.get(gaps.len() / 2).copied(),
        max_gap_seconds: gaps.last().copied(),
    }
}

async fn read_control(
    r: &Reader<'_>,
    key: &str,
    listed: &Listed,
) -> Result<Option<Vec<u8>>, String> {
    if let Some(i) = listed.special.iter().find(|i| i.key == key) {
        return Err(format!("{key} is {}", i.reason));
    }
    if listed.control_listed && !listed.objects.iter().any(|o| o.key == key) {
        return Ok(None); // the listing covers control/: absence is proof, no request needed
    }
    r.read_small(key, SMALL_FILE_LIMIT)
        .await
        .map_err(|e| e.to_string())
}

/// Every `_command.json` under `control/` (etcd-manager `ListCommands` reads the whole tree),
/// oldest first as the controller orders them (by their `timestamp`).
async fn pending_commands(
    r: &Reader<'_>,
    listed: &Listed,
    checked: &[BackupFacts],
    opts: &InspectOptions,
) -> Result<Vec<control::PendingCommand>, StoreError> {
    let is_command = |k: &str| {
        k.starts_with(layout::EM_CONTROL_DIR) && layout::last_segment(k) == layout::EM_COMMAND
    };
    let keys: Vec<String> = if listed.control_listed {
        listed.objects.iter().map(|o| o.key.clone()).collect()
    } else {
        // The delimiter listing shows no files inside control/: list from there on.
        let l = r.backend.list(Some(layout::EM_CONTROL_DIR), false).await?;
        l.objects.into_iter().map(|o| o.key).collect()
    };
    let mut out = Vec::new();
    for key in keys.into_iter().filter(|k| is_command(k)) {
        let read = r
            .read_small(&key, SMALL_FILE_LIMIT)
            .await
            .map_err(|e| e.to_string());
        let file = control::command_state(read);
        let backup = match &file {
            control::FileState::Present { value } => match &value.restore_backup {
                Some(cmd) => Some(named_backup(r, &cmd.backup, checked, opts).await),
                None => None,
            },
            _ => None,
        };
        out.push(control::PendingCommand { key, file, backup });
    }
    let time = |c: &control::PendingCommand| match &c.file {
        control::FileState::Present { value } => value.timestamp,
        _ => None,
    };
    out.sort_by(|a, b| time(a).cmp(&time(b)).then_with(|| a.key.cmp(&b.key)));
    Ok(out)
}

/// The backup a restore command names, verified as etcd-manager's restore will read it
/// (`LoadInfo` of its meta, then its `etcd.backup.gz`); reused when the walk already did.
async fn named_backup(
    r: &Reader<'_>,
    name: &str,
    checked: &[BackupFacts],
    opts: &InspectOptions,
) -> BackupFacts {
    if let Some(b) = checked.iter().find(|b| b.name == name) {
        return b.clone();
    }
    let time = layout::parse_etcd_manager_folder(name);
    let c = Candidate {
        name: name.to_string(),
        time: time.unwrap_or(opts.now),
        time_source: TimeSource::Name,
        data_key: format!("{name}/{}", layout::EM_DATA),
        size: None,
        meta_key: Some(format!("{name}/{}", layout::EM_META)),
        data_listed: None,
        possibly_dirty: false,
        companion: None,
    };
    let missing = |reason: String| BackupFacts {
        name: name.to_string(),
        time: c.time,
        time_source: TimeSource::Name,
        age_seconds: (opts.now - c.time).num_seconds(),
        size: None,
        data_key: c.data_key.clone(),
        validity: Validity::Invalid,
        reason: Some(reason),
        report: None,
        meta: None,
        possibly_dirty: false,
        chain: None,
    };
    if name.is_empty() || name.contains("..") || name.starts_with('/') {
        return missing(format!("the command names no usable backup ({name:?})"));
    }
    match check_candidate(r, &c, opts, None).await {
        Checked::Backup(b) => *b,
        Checked::NotABackup(i) => missing(format!("{}: {}", i.key, i.reason)),
    }
}

async fn inspect_inner(
    backend: &Backend,
    store: &str,
    opts: &InspectOptions,
) -> Result<Inspected, StoreError> {
    let (series, outside) = match list_store(backend, opts).await? {
        Found::One(listed) => {
            return Ok(Inspected {
                series_found: Vec::new(),
                facts: vec![judge(backend, store, opts, listed).await?],
            })
        }
        Found::Several { series, outside } => (series, outside),
    };
    let series_found: Vec<String> = series.iter().map(|(n, _)| n.clone()).collect();
    let mut facts = Vec::new();
    for (name, listed) in series {
        if !opts.series.is_empty() && !opts.series.contains(&name) {
            continue;
        }
        let (sub, url) = if name == layout::TOP_SERIES {
            (backend.clone(), store.to_string())
        } else {
            (
                backend.sub(&name),
                format!("{}/{name}/", store.trim_end_matches('/')),
            )
        };
        let mut f = judge(&sub, &url, opts, listed).await?;
        f.series = Some(name);
        facts.push(f);
    }
    // Keys beside the series that no layout recognises are said, never dropped.
    if let Some(first) = facts.first_mut() {
        first.ignored.extend(outside.into_iter().map(|o| Ignored {
            reason: format!("{} (key relative to {store})", o.reason),
            key: o.key,
        }));
    }
    Ok(Inspected {
        series_found,
        facts,
    })
}

/// Verify and judge one series from its listing.
async fn judge(
    backend: &Backend,
    store: &str,
    opts: &InspectOptions,
    listed: Listed,
) -> Result<StoreFacts, StoreError> {
    let r = &Reader::new(backend, &opts.cache, &listed.objects);
    let judging = std::time::Instant::now();
    let mut ignored = listed.assembled.ignored.clone();
    let mut unknowns = Vec::new();
    let mut checked: Vec<BackupFacts> = Vec::new();
    let mut newest_valid = None;
    let mut not_backups = 0usize;
    for c in &listed.assembled.candidates {
        if checked.len() >= opts.max_walk_back {
            break;
        }
        let gardener_listing =
            (listed.layout == Some(Layout::Gardener)).then_some(listed.objects.as_slice());
        match check_candidate(r, c, opts, gardener_listing).await {
            Checked::NotABackup(i) => {
                ignored.push(i);
                not_backups += 1;
            }
            Checked::Backup(b) => {
                if b.validity == Validity::Unknown {
                    unknowns.push(format!(
                        "backup {}: {}",
                        b.name,
                        b.reason.as_deref().unwrap_or("unknown")
                    ));
                }
                let valid = b.validity == Validity::Valid;
                checked.push(*b);
                if valid {
                    newest_valid = checked.last().cloned();
                    break;
                }
            }
        }
    }
    let remaining = listed
        .assembled
        .candidates
        .len()
        .saturating_sub(checked.len() + not_backups);
    let walk_back = WalkBack {
        limit: opts.max_walk_back,
        checked: checked.len(),
        limit_reached: newest_valid.is_none()
            && checked.len() >= opts.max_walk_back
            && remaining > 0,
    };
    let newest = checked.first().cloned();
    // Continuity reads at most until half the deadline has passed since the judging began.
    let budget = (opts.deadline / 2).saturating_sub(judging.elapsed());
    let continuity = continuity_of(r, &listed, &checked, opts, budget).await;
    let control = if listed.layout == Some(Layout::EtcdManager) {
        let (spec, created) = tokio::join!(
            read_control(r, EM_SPEC, &listed),
            read_control(r, EM_CREATED, &listed)
        );
        let spec = control::spec_state(spec);
        let created = control::created_state(created);
        for (name, state) in [(EM_SPEC, spec.exists()), (EM_CREATED, created.exists())] {
            if state.is_none() {
                unknowns.push(format!("{name} could not be read"));
            }
        }
        let newest_meta = newest.as_ref().and_then(|b| b.meta.as_ref());
        let mut facts =
            control::assess(spec, created, newest_meta, newest.as_ref().map(|b| b.time));
        match pending_commands(r, &listed, &checked, opts).await {
            Ok(commands) => facts.commands = commands,
            Err(e) => {
                unknowns.push(format!("queued commands under control/: {e}"));
                facts.commands_unknown = Some(e.to_string());
            }
        }
        Some(facts)
    } else {
        None
    };
    let mut stats = stats(&listed.assembled.candidates, listed.listed_since);
    stats.count = stats.count.saturating_sub(not_backups);
    let no_backups = (stats.count == 0 && newest.is_none())
        .then(|| no_backups(store, listed.layout, opts.layout, &listed.seen));
    Ok(StoreFacts {
        store: store.to_string(),
        series: None,
        layout: listed.layout,
        layout_source: if opts.layout.is_some() {
            "flag"
        } else {
            "detected"
        },
        now: opts.now,
        newest,
        newest_valid,
        checked,
        walk_back,
        backups: stats,
        continuity,
        control,
        ignored,
        unknowns,
        no_backups,
        s3_requests: backend.request_log().map(RequestLog::len),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objs(keys: &[&str]) -> Vec<ObjectInfo> {
        keys.iter()
            .map(|k| ObjectInfo {
                key: k.to_string(),
                size: 1,
                last_modified: None,
                etag: None,
            })
            .collect()
    }

    const KOPS: [&str; 4] = [
        "main/2026-11-23T08:00:00Z-000001/_etcd_backup.meta",
        "main/2026-11-23T08:00:00Z-000001/etcd.backup.gz",
        "main/control/etcd-cluster-created",
        "main/control/etcd-cluster-spec",
    ];

    #[test]
    fn too_high_names_the_store_below() {
        let n = no_backups("s3://b/c/backups/etcd/", None, None, &objs(&KOPS));
        assert!(!n.recognised);
        assert_eq!(n.layouts_tried, Layout::ALL.to_vec());
        assert_eq!(
            n.below,
            [Below {
                store: "s3://b/c/backups/etcd/main/".into(),
                layout: Layout::EtcdManager
            }]
        );
        assert!(n.summary("s3://b/c/backups/etcd/").starts_with(
            "no backups found at s3://b/c/backups/etcd/: tried layouts etcd-manager, openshift"
        ));
        assert!(n
            .advice()
            .contains("pass --store s3://b/c/backups/etcd/main/"));
        // Two levels too high.
        let deep: Vec<String> = KOPS.iter().map(|k| format!("etcd/{k}")).collect();
        let deep: Vec<&str> = deep.iter().map(String::as_str).collect();
        let n = no_backups("/x", None, None, &objs(&deep));
        assert_eq!(n.below[0].store, "/x/etcd/main/");
    }

    #[test]
    fn forced_layout_names_the_one_the_keys_match() {
        let keys: Vec<&str> = KOPS.iter().map(|k| k.trim_start_matches("main/")).collect();
        let n = no_backups("d", Some(Layout::Plain), Some(Layout::Plain), &objs(&keys));
        assert!(n.forced && !n.recognised);
        assert_eq!(n.looks_like, Some(Layout::EtcdManager));
        assert!(n
            .summary("d")
            .contains("tried layout plain (forced by --layout); 4 keys seen: "));
        assert!(n.advice().contains("--layout etcd-manager"));
    }

    #[test]
    fn control_files_alone_are_a_recognised_empty_store() {
        let keys: Vec<&str> = KOPS[2..]
            .iter()
            .map(|k| k.trim_start_matches("main/"))
            .collect();
        let n = no_backups("d", Some(Layout::EtcdManager), None, &objs(&keys));
        assert!(n.recognised);
        assert_eq!(n.layouts_tried, [Layout::EtcdManager]);
        assert!(n
            .summary("d")
            .contains("tried layout etcd-manager (detected)"));
        let empty = no_backups("d", None, None, &[]);
        assert!(empty.summary("d").ends_with("the store is empty"));
        assert!(empty.advice().starts_with("check the store URL"));
    }
}
