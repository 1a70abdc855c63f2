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
//! 4. for etcd-manager, read and assess the control files ([`control`], pure).
//!
//! Everything is read-only: LIST and GET only (see [`backend`]).

pub mod backend;
pub mod control;
pub mod layout;
pub mod s3_error;
pub mod s3_lifecycle;

pub use backend::{Backend, RecordedRequest, RequestLog, S3Options, StoreError, StoreUrl};
pub use control::{BackupMeta, ControlFacts, ControlOutcome, FileState};
pub use layout::{Candidate, Ignored, Layout, TimeSource};

use crate::snapshot::{SnapshotReport, VerifyOptions};
use chrono::{DateTime, Utc};
use layout::{Assembled, ObjectInfo, EM_CREATED, EM_SPEC};
use serde::Serialize;
use std::time::Duration;

/// Largest control or meta file read (they are a few hundred bytes).
const SMALL_FILE_LIMIT: u64 = 64 * 1024;

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
    /// The store location.
    pub store: String,
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

/// Open the store and inspect it within `opts.deadline`. `Err` means the store itself could
/// not be read (bad location, unreachable endpoint, unknown bucket, deadline); problems with
/// individual backups or control files are reported inside [`StoreFacts`].
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
    match tokio::time::timeout(opts.deadline, inspect_inner(backend, store, opts)).await {
        Ok(r) => r,
        Err(_) => Err(StoreError::Deadline {
            store: store.to_string(),
            deadline: opts.deadline,
        }),
    }
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

async fn list_store(backend: &Backend, opts: &InspectOptions) -> Result<Listed, StoreError> {
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
                return Ok(Listed {
                    layout: Some(Layout::EtcdManager),
                    assembled,
                    listed_since: Some(since),
                    control_listed: true,
                    objects: l.objects,
                    seen: Vec::new(),
                });
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
            }));
            return Ok(Listed {
                layout: Some(Layout::EtcdManager),
                assembled,
                listed_since: None,
                control_listed: false,
                objects: l.objects,
                seen,
            });
        }
    }
    let l = backend.list(None, false).await?;
    let layout = match opts.layout {
        Some(l) => Some(l),
        None => layout::detect(&l.objects)
            .or_else(|| looks_like_etcd_manager(&l.objects).then_some(Layout::EtcdManager)),
    };
    let assembled = match layout {
        Some(lay) => layout::assemble(lay, &l.objects, &[]),
        None => Assembled {
            ignored: l
                .objects
                .iter()
                .map(|o| Ignored {
                    key: o.key.clone(),
                    reason: "no layout recognises this name".to_string(),
                })
                .collect(),
            ..Assembled::default()
        },
    };
    Ok(Listed {
        layout,
        assembled,
        listed_since: None,
        control_listed: true,
        seen: l.objects.clone(),
        objects: l.objects,
    })
}

enum Checked {
    Backup(Box<BackupFacts>),
    NotABackup(Ignored),
}

async fn check_candidate(backend: &Backend, c: &Candidate, opts: &InspectOptions) -> Checked {
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
    };
    let mut meta_problem = None;
    if let Some(meta_key) = &c.meta_key {
        match backend.read_small(meta_key, SMALL_FILE_LIMIT).await {
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
        facts.reason = Some(format!("{} is missing (meta without data)", c.data_key));
        return Checked::Backup(Box::new(facts));
    }
    match backend.verify(&c.data_key, &opts.verify).await {
        Ok((report, size)) => {
            facts.size = Some(size);
            if !report.valid {
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
    backend: &Backend,
    key: &str,
    listed: &Listed,
) -> Result<Option<Vec<u8>>, String> {
    if listed.control_listed && !listed.objects.iter().any(|o| o.key == key) {
        return Ok(None); // the listing covers control/: absence is proof, no request needed
    }
    backend
        .read_small(key, SMALL_FILE_LIMIT)
        .await
        .map_err(|e| e.to_string())
}

async fn inspect_inner(
    backend: &Backend,
    store: &str,
    opts: &InspectOptions,
) -> Result<StoreFacts, StoreError> {
    let listed = list_store(backend, opts).await?;
    let mut ignored = listed.assembled.ignored.clone();
    let mut unknowns = Vec::new();
    let mut checked: Vec<BackupFacts> = Vec::new();
    let mut newest_valid = None;
    let mut not_backups = 0usize;
    for c in &listed.assembled.candidates {
        if checked.len() >= opts.max_walk_back {
            break;
        }
        match check_candidate(backend, c, opts).await {
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
    let control = if listed.layout == Some(Layout::EtcdManager) {
        let (spec, created) = tokio::join!(
            read_control(backend, EM_SPEC, &listed),
            read_control(backend, EM_CREATED, &listed)
        );
        let spec = control::spec_state(spec);
        let created = control::created_state(created);
        for (name, state) in [(EM_SPEC, spec.exists()), (EM_CREATED, created.exists())] {
            if state.is_none() {
                unknowns.push(format!("{name} could not be read"));
            }
        }
        let newest_meta = newest.as_ref().and_then(|b| b.meta.as_ref());
        Some(control::assess(
            spec,
            created,
            newest_meta,
            newest.as_ref().map(|b| b.time),
        ))
    } else {
        None
    };
    let mut stats = stats(&listed.assembled.candidates, listed.listed_since);
    stats.count = stats.count.saturating_sub(not_backups);
    let no_backups = (stats.count == 0 && newest.is_none())
        .then(|| no_backups(store, listed.layout, opts.layout, &listed.seen));
    Ok(StoreFacts {
        store: store.to_string(),
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
