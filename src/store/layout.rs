//! Pure name parsing for every supported backup layout (no I/O).
//!
//! A layout turns object keys (relative to the store root, `/`-separated) into backups. Each
//! backup has a time (from its name where the layout defines one, else the object's
//! last-modified time), a size and the object to verify. Names a layout cannot parse are
//! reported as ignored with a reason; they are never guessed. Names written in local time
//! without a zone (OpenShift, CSM) are read as UTC.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// etcd-manager's data object inside a backup folder.
pub const EM_DATA: &str = "etcd.backup.gz";
/// etcd-manager's meta object (commit marker) inside a backup folder.
pub const EM_META: &str = "_etcd_backup.meta";
/// etcd-manager's control folder.
pub const EM_CONTROL_DIR: &str = "control/";
/// `control/etcd-cluster-spec`, relative to the store root.
pub const EM_SPEC: &str = "control/etcd-cluster-spec";
/// A queued etcd-manager command: `control/<RFC3339>-000000/_command.json`.
pub const EM_COMMAND: &str = "_command.json";
/// `control/etcd-cluster-created`, relative to the store root.
pub const EM_CREATED: &str = "control/etcd-cluster-created";

/// A backup layout. `--layout NAME` uses the kebab-case names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// kops etcd-manager: `<RFC3339Z>-<NNNNNN>/{etcd.backup.gz,_etcd_backup.meta}` + `control/`.
    EtcdManager,
    /// OpenShift `cluster-backup.sh`: `snapshot_<YYYY-MM-DD_HHMMSS>[__POSSIBLY_DIRTY__].db`.
    Openshift,
    /// k3s / RKE2: `<name>-<node>-<unix>[.zip]`, sidecars under `.metadata/`.
    K3s,
    /// Cray/HPE CSM: `etcd-backup-YYYY-MM-DD-HH-MM-SS.tar.gz` holding `<dir>/etcd-dump.bin`.
    Csm,
    /// CoreOS etcd-operator: `<path>_v<rev>_<YYYY-MM-DD-HH:MM:SS>`.
    EtcdOperator,
    /// Gardener etcd-backup-restore: `v2/Full-<start>-<last>-<unix>[.gz|.Z|.zlib][.final]`.
    Gardener,
    /// siderolabs talos-backup: `<cluster>-<RFC3339>.snap[.zst][.age]`.
    TalosBackup,
    /// Any `*.db` or `*.snap*` file, timed by its object time.
    Plain,
}

impl Layout {
    /// Every layout, in auto-detection order (most specific first, `plain` last).
    pub const ALL: [Layout; 8] = [
        Layout::EtcdManager,
        Layout::Openshift,
        Layout::Csm,
        Layout::EtcdOperator,
        Layout::Gardener,
        Layout::K3s,
        Layout::TalosBackup,
        Layout::Plain,
    ];

    /// The kebab-case name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Layout::EtcdManager => "etcd-manager",
            Layout::Openshift => "openshift",
            Layout::K3s => "k3s",
            Layout::Csm => "csm",
            Layout::EtcdOperator => "etcd-operator",
            Layout::Gardener => "gardener",
            Layout::TalosBackup => "talos-backup",
            Layout::Plain => "plain",
        }
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One listed object, key relative to the store root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectInfo {
    /// Key relative to the store root, `/`-separated, no leading `/`.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last-modified time (S3) or mtime (local), if known.
    pub last_modified: Option<DateTime<Utc>>,
    /// S3 ETag as listed (`None` for local files): with key and size, the object's identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

/// Where a backup's time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimeSource {
    /// Parsed from the backup's name (the layout defines a time in the name).
    Name,
    /// The object's last-modified time (the layout has no time in the name).
    ObjectTime,
}

/// What a key means in a layout (pure classification of one key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRole {
    /// The object to verify of a backup named `backup`; `time` is from the name when known.
    Data {
        backup: String,
        time: Option<DateTime<Utc>>,
    },
    /// A commit marker / meta object of `backup` (etcd-manager `_etcd_backup.meta`).
    Meta { backup: String },
    /// A file that belongs with backups but is not itself a snapshot (companion tarball,
    /// k3s `.metadata/`, Gardener deltas, etcd-manager control files).
    Companion { note: &'static str },
    /// Not a backup of this layout, with the reason.
    Ignored { reason: String },
}

/// A backup found by a layout, before verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    /// Backup name (etcd-manager folder name, or the object key).
    pub name: String,
    /// Backup time.
    pub time: DateTime<Utc>,
    /// Where `time` came from.
    pub time_source: TimeSource,
    /// Key of the object to verify (relative to the store root).
    pub data_key: String,
    /// Size of the data object, when listed.
    pub size: Option<u64>,
    /// Key of the meta object, if the layout has one.
    pub meta_key: Option<String>,
    /// `Some(false)` when the layout requires a data object and the listing showed none;
    /// `None` when the listing did not show objects inside folders (delimiter listing).
    pub data_listed: Option<bool>,
    /// OpenShift `__POSSIBLY_DIRTY__`: taken with `--force` while operators were progressing.
    pub possibly_dirty: bool,
    /// An object the restore needs beside the data (OpenShift `static_kuberesources_<ts>.tar.gz`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub companion: Option<String>,
}

/// An object the layout did not accept as (part of) a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ignored {
    /// Key relative to the store root.
    pub key: String,
    /// Why it was not counted.
    pub reason: String,
}

/// Result of applying a layout to a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Assembled {
    /// Backups, newest first (ties broken by name, descending).
    pub candidates: Vec<Candidate>,
    /// Objects that are neither backups nor known companions.
    pub ignored: Vec<Ignored>,
    /// Number of known companion objects (meta sidecars, deltas, control files).
    pub companions: usize,
}

/// `name` has exactly the shape of `pattern`, where `d` is an ASCII digit and every other
/// pattern byte must match literally.
fn shaped(name: &str, pattern: &str) -> bool {
    name.len() == pattern.len()
        && name.bytes().zip(pattern.bytes()).all(|(c, p)| {
            if p == b'd' {
                c.is_ascii_digit()
            } else {
                c == p
            }
        })
}

fn naive_utc(s: &str, fmt: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s, fmt)
        .ok()
        .map(|n| Utc.from_utc_datetime(&n))
}

fn unix_utc(digits: &str) -> Option<DateTime<Utc>> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = digits.parse().ok()?;
    DateTime::from_timestamp(secs, 0)
}

/// The last `/`-separated segment of a key (its file name).
pub fn last_segment(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// Parse an etcd-manager backup folder name `YYYY-MM-DDTHH:MM:SSZ-NNNNNN` (etcd-manager's own
/// rule: the time is everything up to the first `Z-`, RFC 3339; the suffix must be digits).
pub fn parse_etcd_manager_folder(name: &str) -> Option<DateTime<Utc>> {
    let z = name.find("Z-")?;
    let (stamp, rest) = name.split_at(z + 1);
    let seq = rest.strip_prefix('-')?;
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Go's time.RFC3339 requires the `T` separator (chrono would also accept a space).
    if stamp.as_bytes().get(10) != Some(&b'T') {
        return None;
    }
    DateTime::parse_from_rfc3339(stamp)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Format a time the way etcd-manager names folders (without the sequence suffix), so that a
/// `start-after` key built from it sorts before every folder at or after that time.
pub fn etcd_manager_time_key(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parse an OpenShift snapshot name; returns (time, possibly dirty).
pub fn parse_openshift_snapshot(name: &str) -> Option<(DateTime<Utc>, bool)> {
    let stem = name.strip_prefix("snapshot_")?.strip_suffix(".db")?;
    let (stamp, dirty) = match stem.strip_suffix("__POSSIBLY_DIRTY__") {
        Some(s) => (s, true),
        None => (stem, false),
    };
    if !shaped(stamp, "dddd-dd-dd_dddddd") {
        return None;
    }
    naive_utc(stamp, "%Y-%m-%d_%H%M%S").map(|t| (t, dirty))
}

/// The `static_kuberesources_<ts>[__POSSIBLY_DIRTY__].tar.gz` that `cluster-backup.sh` (and the
/// Go `cluster-backup`, `pkg/cmd/backuprestore/backuputils.go`) writes beside
/// `snapshot_<ts>[__POSSIBLY_DIRTY__].db`, in the same folder.
pub fn openshift_companion(snapshot_key: &str) -> Option<String> {
    let (dir, name) = match snapshot_key.rsplit_once('/') {
        Some((d, n)) => (format!("{d}/"), n),
        None => (String::new(), snapshot_key),
    };
    let stem = name.strip_prefix("snapshot_")?.strip_suffix(".db")?;
    Some(format!("{dir}static_kuberesources_{stem}.tar.gz"))
}

/// Parse a talos-backup name `<cluster>-<RFC3339>.snap[.zst][.age]` (`pkg/talos/talos.go`:
/// `fmt.Sprintf("%s-%s.snap", clusterName, time.Now().Format(time.RFC3339))`, then
/// `pkg/compression` adds `.zst` and `pkg/encryption` `.age`). Go's RFC 3339 has whole seconds
/// and `Z` or a `±hh:mm` offset (the process's zone). Returns (time, encrypted).
pub fn parse_talos_backup(name: &str) -> Option<(DateTime<Utc>, bool)> {
    let (rest, encrypted) = match name.strip_suffix(".age") {
        Some(r) => (r, true),
        None => (name, false),
    };
    let rest = rest.strip_suffix(".zst").unwrap_or(rest);
    let stem = rest.strip_suffix(".snap")?;
    for len in [20, 25] {
        let Some(cut) = stem.len().checked_sub(len) else {
            continue;
        };
        let (Some(head), Some(stamp)) = (stem.get(..cut), stem.get(cut..)) else {
            continue;
        };
        let (Some(clock), Some(zone)) = (stamp.get(..19), stamp.get(19..)) else {
            continue;
        };
        let offset = zone.strip_prefix('+').or_else(|| zone.strip_prefix('-'));
        let zone_ok = zone == "Z" || offset.is_some_and(|o| shaped(o, "dd:dd"));
        let cluster = head.strip_suffix('-').unwrap_or_default();
        if !zone_ok || !shaped(clock, "dddd-dd-ddTdd:dd:dd") || cluster.is_empty() {
            continue;
        }
        if let Ok(t) = DateTime::parse_from_rfc3339(stamp) {
            return Some((t.with_timezone(&Utc), encrypted));
        }
    }
    None
}

/// Parse a k3s/RKE2 snapshot name `<name>-<node>-<unix>[.zip]`: the time is the text after the
/// last `-` (as k3s does), 9 to 11 digits; the prefix must be non-empty.
pub fn parse_k3s(name: &str) -> Option<DateTime<Utc>> {
    let stem = name.strip_suffix(".zip").unwrap_or(name);
    let dash = stem.rfind('-')?;
    let (prefix, digits) = (stem.get(..dash)?, stem.get(dash + 1..)?);
    if prefix.is_empty() || !(9..=11).contains(&digits.len()) {
        return None;
    }
    unix_utc(digits)
}

/// Parse a CSM bare-metal backup name `etcd-backup-YYYY-MM-DD-HH-MM-SS.tar.gz`.
pub fn parse_csm(name: &str) -> Option<DateTime<Utc>> {
    let stamp = name.strip_prefix("etcd-backup-")?.strip_suffix(".tar.gz")?;
    if !shaped(stamp, "dddd-dd-dd-dd-dd-dd") {
        return None;
    }
    naive_utc(stamp, "%Y-%m-%d-%H-%M-%S")
}

/// Parse an etcd-operator periodic backup name `<path>_v<rev>_<YYYY-MM-DD-HH:MM:SS>`; returns
/// (time, revision).
pub fn parse_etcd_operator(name: &str) -> Option<(DateTime<Utc>, i64)> {
    let us = name.rfind('_')?;
    let stamp = name.get(us + 1..)?;
    let head = name.get(..us)?;
    let vpos = head.rfind("_v")?;
    let rev_s = head.get(vpos + 2..)?;
    if vpos == 0 || rev_s.is_empty() || !rev_s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !shaped(stamp, "dddd-dd-dd-dd:dd:dd") {
        return None;
    }
    let rev = rev_s.parse().ok()?;
    naive_utc(stamp, "%Y-%m-%d-%H:%M:%S").map(|t| (t, rev))
}

/// Kind of a Gardener snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GardenerKind {
    Full,
    Incr,
}

/// A Gardener snapshot name, read the way etcd-backup-restore's `ParseSnapshot`
/// (`pkg/snapstore/snapshot.go`) reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GardenerSnap {
    pub kind: GardenerKind,
    pub start: i64,
    pub last: i64,
    pub time: DateTime<Utc>,
    /// Compression suffix: empty, `.gz`, `.zlib`, `.Z`, or one etcd-backup-restore cannot decode.
    pub suffix: String,
    /// `.final`: taken when the etcd stopped.
    pub is_final: bool,
}

/// Why a key is not a Gardener snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GardenerSkip {
    /// A part of a chunked upload in progress (`<snapName>/<part>`); etcd-backup-restore skips it.
    Chunk,
    /// Not a snapshot name; the reason says what was expected.
    Invalid(String),
}

/// Parse a key (relative to the store root) as etcd-backup-restore's `ParseSnapshot` does: the
/// text after the last `v1/` (else the last `v2/`) is `Backup-<unix>/<name>` (v1) or `<name>`
/// (v2); one more level is an upload chunk. A key without `v1/` or `v2/` is read as relative to a
/// version folder (the store URL points at `…/v2` or `…/v1` itself). The name is
/// `(Full|Incr)-<start>-<last>-<unix>[.<codec>][.final]` (the writer pads revisions to 8 digits;
/// the reader takes any decimal).
pub fn parse_gardener_key(key: &str) -> Result<GardenerSnap, GardenerSkip> {
    let bad = |why: &str| Err(GardenerSkip::Invalid(why.to_string()));
    let (v1, rest) = match (key.rfind("v1/"), key.rfind("v2/")) {
        (Some(i), _) => (true, key.get(i + 3..).unwrap_or("")),
        (None, Some(i)) => (false, key.get(i + 3..).unwrap_or("")),
        (None, None) => (
            key.starts_with("Backup-") && key.split('/').count() == 2,
            key,
        ),
    };
    let tokens: Vec<&str> = rest.split('/').collect();
    let name = match (v1, tokens.as_slice()) {
        (true, [_, name]) | (false, [name]) => *name,
        (true, [_, _, _]) | (false, [_, _]) => return Err(GardenerSkip::Chunk),
        _ => return bad("not `v2/<name>` or `v1/Backup-<unix>/<name>`"),
    };
    let parts: Vec<&str> = name.split('-').collect();
    let [kind, start, last, tail] = parts.as_slice() else {
        return bad("not `(Full|Incr)-<start revision>-<last revision>-<unix seconds>`");
    };
    let kind = match *kind {
        "Full" => GardenerKind::Full,
        "Incr" => GardenerKind::Incr,
        _ => return bad("kind is not `Full` or `Incr`"),
    };
    // Go's strconv.ParseInt(s, 10, 64) and Rust's i64 parser accept the same text.
    let (Ok(start), Ok(last)) = (start.parse::<i64>(), last.parse::<i64>()) else {
        return bad("revisions are not decimal numbers");
    };
    if start > last {
        return bad("start revision is after the last revision");
    }
    let dots: Vec<&str> = tail.split('.').collect();
    let suffix = match dots.get(1) {
        Some(&"final") | None => String::new(),
        Some(s) => format!(".{s}"),
    };
    let is_final = dots.len() >= 2 && dots.last() == Some(&"final");
    let Some(time) = dots
        .first()
        .and_then(|t| t.parse::<i64>().ok())
        .and_then(|t| DateTime::from_timestamp(t, 0))
    else {
        return bad("creation time is not Unix seconds");
    };
    Ok(GardenerSnap {
        kind,
        start,
        last,
        time,
        suffix,
        is_final,
    })
}

/// The Incr deltas that follow the Full snapshot `full_key`, oldest first: those after it and
/// before the next Full snapshot in etcd-backup-restore's order (last revision, then creation
/// time: `SnapList.Less` in `pkg/types/snapstore.go`), as `getStructuredBackupList`
/// (`pkg/miscellaneous`) groups a backup. A restore applies them in this order.
pub fn gardener_deltas(objects: &[ObjectInfo], full_key: &str) -> Vec<(String, GardenerSnap)> {
    let mut snaps: Vec<(String, GardenerSnap)> = objects
        .iter()
        .filter_map(|o| Some((o.key.clone(), parse_gardener_key(&o.key).ok()?)))
        .collect();
    snaps.sort_by(|(ka, a), (kb, b)| {
        (a.last, a.time, a.kind == GardenerKind::Full, ka).cmp(&(
            b.last,
            b.time,
            b.kind == GardenerKind::Full,
            kb,
        ))
    });
    snaps
        .into_iter()
        .skip_while(|(k, _)| k != full_key)
        .skip(1)
        .take_while(|(_, s)| s.kind == GardenerKind::Incr)
        .collect()
}

/// `plain` accepts `*.db` and names containing `.snap` (`x.snap`, `x.snapshot`, `x.snap.zst`).
pub fn is_plain_snapshot(name: &str) -> bool {
    !name.ends_with(".part") && (name.ends_with(".db") || name.contains(".snap"))
}

/// Classify one key in one layout (pure).
pub fn classify(layout: Layout, key: &str) -> KeyRole {
    let name = last_segment(key);
    let ignored = |reason: &str| KeyRole::Ignored {
        reason: reason.to_string(),
    };
    if name.ends_with(".part") {
        return ignored("interrupted snapshot (`.part` temporary file)");
    }
    match layout {
        Layout::EtcdManager => {
            if key.starts_with(EM_CONTROL_DIR) {
                return KeyRole::Companion {
                    note: "etcd-manager control file",
                };
            }
            let Some((folder, file)) = key.split_once('/') else {
                return ignored("not inside a backup folder (etcd-manager keeps each backup in `<RFC3339Z>-<NNNNNN>/`)");
            };
            let Some(time) = parse_etcd_manager_folder(folder) else {
                return ignored(
                    "folder name is not `<RFC3339 UTC>Z-<digits>` (etcd-manager ignores it too)",
                );
            };
            match file {
                EM_DATA => KeyRole::Data {
                    backup: folder.to_string(),
                    time: Some(time),
                },
                EM_META => KeyRole::Meta {
                    backup: folder.to_string(),
                },
                _ => ignored("unexpected file in a backup folder (expected etcd.backup.gz or _etcd_backup.meta)"),
            }
        }
        Layout::Openshift => {
            if let Some((time, _)) = parse_openshift_snapshot(name) {
                KeyRole::Data {
                    backup: key.to_string(),
                    time: Some(time),
                }
            } else if name.starts_with("static_kuberesources_") && name.ends_with(".tar.gz") {
                KeyRole::Companion {
                    note: "OpenShift static pod resources",
                }
            } else {
                ignored("not `snapshot_<YYYY-MM-DD_HHMMSS>[__POSSIBLY_DIRTY__].db`")
            }
        }
        Layout::K3s => {
            let parent_is_metadata = key.rsplit('/').nth(1).is_some_and(|p| p == ".metadata");
            if parent_is_metadata {
                KeyRole::Companion {
                    note: "k3s snapshot metadata",
                }
            } else if let Some(time) = parse_k3s(name) {
                KeyRole::Data {
                    backup: key.to_string(),
                    time: Some(time),
                }
            } else {
                ignored("not `<name>-<node>-<unix seconds>[.zip]`")
            }
        }
        Layout::Csm => {
            if name.ends_with(".tar.gz.gpg") {
                ignored("GPG-encrypted backup: cannot be verified without the private key")
            } else if let Some(time) = parse_csm(name) {
                KeyRole::Data {
                    backup: key.to_string(),
                    time: Some(time),
                }
            } else {
                ignored("not `etcd-backup-<YYYY-MM-DD-HH-MM-SS>.tar.gz`")
            }
        }
        // Periodic backups are `<spec.s3.path>_v<rev>_<time>`; a one-shot EtcdBackup writes
        // exactly `spec.s3.path` (`pkg/backup/backup_manager.go` `SaveSnap`), any name, timed by
        // the object.
        Layout::EtcdOperator => KeyRole::Data {
            backup: key.to_string(),
            time: parse_etcd_operator(name).map(|(time, _)| time),
        },
        Layout::TalosBackup => match parse_talos_backup(name) {
            Some((time, _)) => KeyRole::Data {
                backup: key.to_string(),
                time: Some(time),
            },
            None => ignored("not `<cluster>-<RFC3339>.snap[.zst][.age]` (talos-backup)"),
        },
        Layout::Gardener => match parse_gardener_key(key) {
            Ok(snap) if snap.kind == GardenerKind::Full => KeyRole::Data {
                backup: key.to_string(),
                time: Some(snap.time),
            },
            Ok(_) => KeyRole::Companion {
                note: "Gardener delta snapshot (watch events, applied after its Full snapshot)",
            },
            Err(GardenerSkip::Chunk) => {
                ignored("part of a chunked upload in progress (etcd-backup-restore skips it)")
            }
            Err(GardenerSkip::Invalid(why)) => KeyRole::Ignored {
                reason: format!(
                    "not a Gardener snapshot `v2/(Full|Incr)-<start>-<last>-<unix>[.gz|.Z|.zlib][.final]`: {why}"
                ),
            },
        },
        Layout::Plain => {
            if is_plain_snapshot(name) {
                KeyRole::Data {
                    backup: key.to_string(),
                    time: None,
                }
            } else {
                ignored("not a `*.db` or `*.snap*` file")
            }
        }
    }
}

/// How many listed keys a layout recognises (data + meta + companions); used for detection.
pub fn recognised(layout: Layout, objects: &[ObjectInfo]) -> (usize, usize) {
    let mut data = 0;
    let mut known = 0;
    for o in objects {
        match classify(layout, &o.key) {
            // An etcd-operator one-shot backup can have any name: only the documented
            // `etcd.backup` counts for detection.
            KeyRole::Data { time: None, .. }
                if layout == Layout::EtcdOperator && last_segment(&o.key) != "etcd.backup" => {}
            KeyRole::Data { .. } => {
                data += 1;
                known += 1;
            }
            KeyRole::Meta { .. } => {
                data += usize::from(layout == Layout::EtcdManager);
                known += 1;
            }
            KeyRole::Companion { .. } => known += 1,
            KeyRole::Ignored { .. } => {}
        }
    }
    (data, known)
}

/// Pick the layout that recognises the most objects with at least one backup; `None` if no
/// layout recognises any backup. `plain` only wins when nothing more specific matches.
pub fn detect(objects: &[ObjectInfo]) -> Option<Layout> {
    let mut best: Option<(Layout, usize)> = None;
    for layout in Layout::ALL {
        let (data, known) = recognised(layout, objects);
        if data == 0 {
            continue;
        }
        if layout == Layout::Plain && best.is_some() {
            continue;
        }
        if best.is_none_or(|(_, k)| known > k) {
            best = Some((layout, known));
        }
    }
    best.map(|(l, _)| l)
}

/// Series name of the keys directly under the store (with folders that are no series).
pub const TOP_SERIES: &str = ".";

/// One backup series found under a store: a sub-folder that holds a layout's backups of its own
/// (or, named [`TOP_SERIES`], the keys directly under the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// The folder name (no `/`), or [`TOP_SERIES`].
    pub name: String,
    /// Its objects, keys relative to the series root.
    pub objects: Vec<ObjectInfo>,
}

/// A folder that is part of one series in some layout, never a series of its own: etcd-manager
/// backup folders and `control/`, k3s `.metadata/`, Gardener `v1/`, `v2/` and `Backup-<unix>/`.
fn layout_internal_folder(name: &str) -> bool {
    parse_etcd_manager_folder(name).is_some()
        || format!("{name}/") == EM_CONTROL_DIR
        || matches!(name, ".metadata" | "v1" | "v2")
        || name.starts_with("Backup-")
}

fn series_layout(objects: &[ObjectInfo], forced: Option<Layout>) -> Option<Layout> {
    match forced {
        Some(l) => (recognised(l, objects).0 > 0).then_some(l),
        None => detect(objects),
    }
}

/// Split one listing into separate backup series (issue #20: a Cray-HPE CSM bucket holds
/// `bare-metal/` and one folder per etcd-operator cluster; they must never be judged as one).
///
/// A top-level folder is a series when its own keys (relative to it) are recognised as backups
/// of a layout and it is not a [layout-internal folder](layout_internal_folder) nor one
/// OpenShift run folder (`backup-<name>-<ts>/` with the snapshot and tarball directly in it:
/// runs of one cluster). The keys directly under the store and the folders that are no series
/// form the [`TOP_SERIES`] series when a layout recognises backups among them; otherwise they
/// are returned as outside every series. `None` when there are fewer than two series: the store
/// is one series, as before.
pub fn split_series(
    objects: &[ObjectInfo],
    forced: Option<Layout>,
) -> Option<(Vec<Series>, Vec<ObjectInfo>)> {
    let mut folders: BTreeMap<&str, Vec<ObjectInfo>> = BTreeMap::new();
    let mut rest = Vec::new();
    for o in objects {
        match o.key.split_once('/') {
            Some((folder, key)) if !folder.is_empty() && !key.is_empty() => {
                folders.entry(folder).or_default().push(ObjectInfo {
                    key: key.to_string(),
                    ..o.clone()
                })
            }
            _ => rest.push(o.clone()),
        }
    }
    let mut series = Vec::new();
    for (folder, objs) in folders {
        let layout = series_layout(&objs, forced);
        let openshift_run =
            layout == Some(Layout::Openshift) && objs.iter().all(|o| !o.key.contains('/'));
        if layout.is_some() && !openshift_run && !layout_internal_folder(folder) {
            series.push(Series {
                name: folder.to_string(),
                objects: objs,
            });
        } else {
            rest.extend(objs.into_iter().map(|o| ObjectInfo {
                key: format!("{folder}/{}", o.key),
                ..o
            }));
        }
    }
    let top = series_layout(&rest, forced).is_some();
    if series.len() + usize::from(top) < 2 {
        return None;
    }
    if top {
        series.insert(
            0,
            Series {
                name: TOP_SERIES.to_string(),
                objects: std::mem::take(&mut rest),
            },
        );
    }
    Some((series, rest))
}

/// Apply `layout` to a listing. `folders` are backup folder names seen through a delimiter
/// listing (etcd-manager only): they become candidates whose meta presence is unknown.
pub fn assemble(layout: Layout, objects: &[ObjectInfo], folders: &[String]) -> Assembled {
    #[derive(Default)]
    struct Group {
        time: Option<DateTime<Utc>>,
        data: Option<ObjectInfo>,
        meta: bool,
        from_delimiter: bool,
    }
    let mut out = Assembled::default();
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for o in objects {
        match classify(layout, &o.key) {
            KeyRole::Data { backup, time } => {
                let g = groups.entry(backup).or_default();
                g.time = time;
                g.data = Some(o.clone());
            }
            KeyRole::Meta { backup } => {
                let g = groups.entry(backup.clone()).or_default();
                g.meta = true;
                g.time = parse_etcd_manager_folder(&backup);
            }
            KeyRole::Companion { .. } => out.companions += 1,
            KeyRole::Ignored { reason } => out.ignored.push(Ignored {
                key: o.key.clone(),
                reason,
            }),
        }
    }
    for f in folders {
        let name = f.trim_end_matches('/');
        if format!("{name}/") == EM_CONTROL_DIR {
            continue;
        }
        match parse_etcd_manager_folder(name) {
            Some(t) => {
                let g = groups.entry(name.to_string()).or_default();
                g.time = Some(t);
                g.from_delimiter = true;
            }
            None => out.ignored.push(Ignored {
                key: f.clone(),
                reason:
                    "folder name is not `<RFC3339 UTC>Z-<digits>` (etcd-manager ignores it too)"
                        .to_string(),
            }),
        }
    }
    for (name, g) in groups {
        let (time, time_source) = match (g.time, g.data.as_ref().and_then(|d| d.last_modified)) {
            (Some(t), _) => (t, TimeSource::Name),
            (None, Some(t)) => (t, TimeSource::ObjectTime),
            (None, None) => {
                out.ignored.push(Ignored {
                    key: name,
                    reason: "no time in the name and no object time".to_string(),
                });
                continue;
            }
        };
        if layout == Layout::EtcdManager {
            let data_key = format!("{name}/{EM_DATA}");
            let meta_key = format!("{name}/{EM_META}");
            if !g.meta && !g.from_delimiter {
                // etcd-manager writes data first and meta last: no meta = not a backup.
                out.ignored.push(Ignored {
                    key: data_key,
                    reason: "backup folder without _etcd_backup.meta (an unfinished upload; etcd-manager does not list it)".to_string(),
                });
                continue;
            }
            out.candidates.push(Candidate {
                name,
                time,
                time_source,
                size: g.data.as_ref().map(|d| d.size),
                meta_key: Some(meta_key),
                data_listed: if g.from_delimiter {
                    None
                } else {
                    Some(g.data.is_some())
                },
                data_key,
                possibly_dirty: false,
                companion: None,
            });
        } else if let Some(d) = g.data {
            let possibly_dirty = layout == Layout::Openshift && name.contains("__POSSIBLY_DIRTY__");
            let companion = if layout == Layout::Openshift {
                openshift_companion(&d.key)
            } else {
                None
            };
            out.candidates.push(Candidate {
                name: name.clone(),
                time,
                time_source,
                size: Some(d.size),
                meta_key: None,
                data_listed: Some(true),
                data_key: d.key,
                possibly_dirty,
                companion,
            });
        }
    }
    out.candidates
        .sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.name.cmp(&a.name)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn obj(key: &str, size: u64) -> ObjectInfo {
        ObjectInfo {
            key: key.to_string(),
            size,
            last_modified: Some(t("2026-01-01T00:00:00Z")),
            etag: None,
        }
    }

    #[test]
    fn etcd_manager_names() {
        assert_eq!(
            parse_etcd_manager_folder("2024-03-22T10:15:07Z-000123"),
            Some(t("2024-03-22T10:15:07Z"))
        );
        assert_eq!(
            parse_etcd_manager_folder("2020-07-21T00:01:14Z-003983"),
            Some(t("2020-07-21T00:01:14Z"))
        );
        for bad in [
            "2024-03-22T10:15:07Z",
            "2024-03-22T10:15:07Z-",
            "2024-03-22T10:15:07Z-12a",
            "2024-13-22T10:15:07Z-000001",
            "control",
            "2024-03-22 10:15:07Z-000001",
            "",
        ] {
            assert_eq!(parse_etcd_manager_folder(bad), None, "{bad}");
        }
        assert_eq!(
            etcd_manager_time_key(t("2024-03-22T10:15:07Z")),
            "2024-03-22T10:15:07Z"
        );
        // The start-after key sorts before every folder at the same second.
        assert!("2024-03-22T10:15:07Z" < "2024-03-22T10:15:07Z-000000");
    }

    #[test]
    fn etcd_manager_classify_and_assemble() {
        let objs = vec![
            obj("2024-03-22T10:15:07Z-000001/_etcd_backup.meta", 100),
            obj("2024-03-22T10:15:07Z-000001/etcd.backup.gz", 5000),
            obj("2024-03-22T10:30:07Z-000002/etcd.backup.gz", 6000), // no meta
            obj("2024-03-22T10:45:07Z-000003/_etcd_backup.meta", 100), // no data
            obj("control/etcd-cluster-spec", 40),
            obj("control/etcd-cluster-created", 30),
            obj("garbage/etcd.backup.gz", 1),
            obj("2024-03-22T10:15:07Z-000001/notes.txt", 1),
            obj("README", 1),
        ];
        let a = assemble(Layout::EtcdManager, &objs, &[]);
        let names: Vec<_> = a.candidates.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["2024-03-22T10:45:07Z-000003", "2024-03-22T10:15:07Z-000001"]
        );
        assert_eq!(a.candidates[0].data_listed, Some(false));
        assert_eq!(a.candidates[1].size, Some(5000));
        assert_eq!(a.candidates[1].time_source, TimeSource::Name);
        assert_eq!(a.companions, 2);
        let ignored: Vec<_> = a.ignored.iter().map(|i| i.key.as_str()).collect();
        assert!(ignored.contains(&"2024-03-22T10:30:07Z-000002/etcd.backup.gz"));
        assert!(ignored.contains(&"garbage/etcd.backup.gz"));
        assert!(ignored.contains(&"README"));
        assert!(ignored.contains(&"2024-03-22T10:15:07Z-000001/notes.txt"));
        assert_eq!(detect(&objs), Some(Layout::EtcdManager));
    }

    #[test]
    fn etcd_manager_delimiter_folders() {
        let folders = vec![
            "2024-03-22T10:15:07Z-000001/".to_string(),
            "control/".to_string(),
            "junk/".to_string(),
        ];
        let a = assemble(Layout::EtcdManager, &[], &folders);
        assert_eq!(a.candidates.len(), 1);
        assert_eq!(a.candidates[0].data_listed, None);
        assert_eq!(a.ignored.len(), 1);
        assert_eq!(a.ignored[0].key, "junk/");
    }

    #[test]
    fn openshift_names() {
        assert_eq!(
            parse_openshift_snapshot("snapshot_2024-03-22_101507.db"),
            Some((t("2024-03-22T10:15:07Z"), false))
        );
        assert_eq!(
            parse_openshift_snapshot("snapshot_2024-03-22_101507__POSSIBLY_DIRTY__.db"),
            Some((t("2024-03-22T10:15:07Z"), true))
        );
        for bad in [
            "snapshot_2024-03-22_1015.db",
            "snapshot_2024-03-22_101507.db.gz",
            "snapshot_2024-02-30_101507.db",
            "snap_2024-03-22_101507.db",
            "snapshot_2024-03-22_101507__DIRTY__.db",
        ] {
            assert_eq!(parse_openshift_snapshot(bad), None, "{bad}");
        }
        let objs = vec![
            obj("snapshot_2024-03-22_101507.db", 10),
            obj("static_kuberesources_2024-03-22_101507.tar.gz", 10),
            obj("snapshot_2024-03-23_101507__POSSIBLY_DIRTY__.db", 10),
            obj("other.txt", 1),
        ];
        let a = assemble(Layout::Openshift, &objs, &[]);
        assert_eq!(a.candidates.len(), 2);
        assert!(a.candidates[0].possibly_dirty);
        assert_eq!(a.companions, 1);
        assert_eq!(a.ignored.len(), 1);
        assert_eq!(detect(&objs), Some(Layout::Openshift));
    }

    #[test]
    fn k3s_names() {
        assert_eq!(
            parse_k3s("etcd-snapshot-ip-172-31-9-3.us-east-2.compute.internal-1701472281"),
            DateTime::from_timestamp(1701472281, 0)
        );
        assert_eq!(
            parse_k3s("on-demand-server1-1701472281.zip"),
            DateTime::from_timestamp(1701472281, 0)
        );
        assert_eq!(
            parse_k3s("etcd-snapshot--1627633080"),
            DateTime::from_timestamp(1627633080, 0)
        );
        for bad in [
            "etcd-snapshot-node",
            "-1701472281",
            "x-17014",
            "x-1701472281.tar",
            "x-17014722811234",
        ] {
            assert_eq!(parse_k3s(bad), None, "{bad}");
        }
        let objs = vec![
            obj("snaps/etcd-snapshot-n1-1701472281", 10),
            obj("snaps/.metadata/etcd-snapshot-n1-1701472281", 10),
            obj("snaps/etcd-snapshot-n1-1701472881.part", 10),
        ];
        let a = assemble(Layout::K3s, &objs, &[]);
        assert_eq!(a.candidates.len(), 1);
        assert_eq!(a.companions, 1);
        assert_eq!(a.ignored.len(), 1);
    }

    #[test]
    fn csm_names() {
        assert_eq!(
            parse_csm("etcd-backup-2022-09-15-20-30-03.tar.gz"),
            Some(t("2022-09-15T20:30:03Z"))
        );
        for bad in [
            "etcd-backup-2022-09-15-20-30.tar.gz",
            "etcd-backup-2022-09-15-20-30-03.tgz",
            "etcd-backup-2022-09-15-25-30-03.tar.gz",
        ] {
            assert_eq!(parse_csm(bad), None, "{bad}");
        }
        assert!(matches!(
            classify(
                Layout::Csm,
                "bare-metal/etcd-backup-2022-09-15-20-30-03.tar.gz.gpg"
            ),
            KeyRole::Ignored { .. }
        ));
        let objs = vec![obj("bare-metal/etcd-backup-2022-09-15-20-30-03.tar.gz", 10)];
        assert_eq!(detect(&objs), Some(Layout::Csm));
    }

    #[test]
    fn etcd_operator_names() {
        assert_eq!(
            parse_etcd_operator("etcd.backup_v5702_2022-07-30-19:00:02"),
            Some((t("2022-07-30T19:00:02Z"), 5702))
        );
        for bad in [
            "etcd.backup_v57a2_2022-07-30-19:00:02",
            "etcd.backup_5702_2022-07-30-19:00:02",
            "etcd.backup_v5702_2022-07-30T19:00:02",
            "_v5702_2022-07-30-19:00:02",
            "etcd.backup",
        ] {
            assert_eq!(parse_etcd_operator(bad), None, "{bad}");
        }
        let objs = vec![obj("cray-bss/etcd.backup_v5702_2022-07-30-19:00:02", 10)];
        assert_eq!(detect(&objs), Some(Layout::EtcdOperator));
    }

    #[test]
    fn gardener_names() {
        let snap = parse_gardener_key("Full-00000000-00012345-1721466723.gz").unwrap();
        assert_eq!(
            (snap.kind, snap.start, snap.last, snap.suffix.as_str()),
            (GardenerKind::Full, 0, 12345, ".gz")
        );
        assert_eq!(Some(snap.time), DateTime::from_timestamp(1721466723, 0));
        let incr = parse_gardener_key("x/v2/Incr-55795627-55796278-1721466723").unwrap();
        assert_eq!((incr.kind, incr.suffix.as_str()), (GardenerKind::Incr, ""));
        let fin = parse_gardener_key("v2/Full-00000000-00012345-1721466723.zlib.final").unwrap();
        assert_eq!((fin.suffix.as_str(), fin.is_final), (".zlib", true));
        let fin = parse_gardener_key("v2/Full-00000000-00012345-1721466723.final").unwrap();
        assert_eq!((fin.suffix.as_str(), fin.is_final), ("", true));
        // The reader takes any decimal (only the writer pads), and names a codec it cannot decode.
        assert_eq!(
            parse_gardener_key("v2/Full-0-12-1721466723").unwrap().last,
            12
        );
        assert_eq!(
            parse_gardener_key("v2/Full-00000000-00012345-1721466723.bz2")
                .unwrap()
                .suffix,
            ".bz2"
        );
        // v1: `Backup-<unix>/<name>`, under a `v1/` folder or at the store root.
        for v1 in [
            "etcd-main/v1/Backup-1721466000/Full-00000000-00012345-1721466723",
            "Backup-1721466000/Full-00000000-00012345-1721466723",
        ] {
            assert_eq!(
                parse_gardener_key(v1).unwrap().kind,
                GardenerKind::Full,
                "{v1}"
            );
        }
        for chunk in [
            "v2/Full-00000000-00012345-1721466723.gz/0000000001",
            "v1/Backup-1/Full-00000000-00012345-1721466723/0000000001",
        ] {
            assert_eq!(
                parse_gardener_key(chunk),
                Err(GardenerSkip::Chunk),
                "{chunk}"
            );
        }
        for bad in [
            "v2/Chunk-00000000-00012345-1721466723",
            "v2/Full-00000000-00012345",
            "v2/Full-00000000-00012345-1721466723-1",
            "v2/Full-00000012-00000011-1721466723",
            "v2/Full-0000000a-00012345-1721466723",
            "v2/Full-00000000-00012345-17214x6723.gz",
            "v2/a/b/Full-00000000-00012345-1721466723",
        ] {
            assert!(
                matches!(parse_gardener_key(bad), Err(GardenerSkip::Invalid(_))),
                "{bad}"
            );
        }
        let objs = vec![
            obj(
                "shoot/etcd-main/v2/Full-00000000-00012345-1721466723.gz",
                10,
            ),
            obj(
                "shoot/etcd-main/v2/Incr-00012346-00012400-1721466823.gz",
                10,
            ),
            obj(
                "shoot/etcd-main/v1/Backup-1/Full-00000000-00000100-1721366723",
                10,
            ),
            obj(
                "shoot/etcd-main/v2/Full-00000000-00012345-1721466723.gz/0000000001",
                10,
            ),
        ];
        let a = assemble(Layout::Gardener, &objs, &[]);
        assert_eq!(a.candidates.len(), 2);
        assert_eq!(a.companions, 1);
        assert_eq!(a.ignored.len(), 1);
        assert_eq!(detect(&objs), Some(Layout::Gardener));
    }

    #[test]
    fn gardener_chain_is_the_deltas_up_to_the_next_full() {
        let objs = vec![
            obj("v2/Full-00000000-00000100-1000.gz", 1),
            obj("v2/Incr-00000101-00000110-1020.gz", 1),
            obj("v2/Incr-00000111-00000120-1040.gz", 1),
            obj("v2/Full-00000000-00000120-1050.gz", 1),
            obj("v2/Incr-00000121-00000130-1060.gz", 1),
            obj("v2/Incr-00000131-00000140-1080.gz", 1),
            obj("v2/Incr-00000141-00000150-1100.gz/0000000001", 1),
        ];
        let keys = |full: &str| -> Vec<String> {
            gardener_deltas(&objs, full)
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        };
        assert_eq!(
            keys("v2/Full-00000000-00000100-1000.gz"),
            [
                "v2/Incr-00000101-00000110-1020.gz",
                "v2/Incr-00000111-00000120-1040.gz"
            ]
        );
        assert_eq!(
            keys("v2/Full-00000000-00000120-1050.gz"),
            [
                "v2/Incr-00000121-00000130-1060.gz",
                "v2/Incr-00000131-00000140-1080.gz"
            ]
        );
        assert!(keys("v2/Full-missing").is_empty());
    }

    #[test]
    fn talos_backup_names() {
        assert_eq!(
            parse_talos_backup("prod-2025-08-28T10:20:00Z.snap"),
            Some((t("2025-08-28T10:20:00Z"), false))
        );
        assert_eq!(
            parse_talos_backup("my-cluster-2025-08-28T12:20:00+02:00.snap.zst.age"),
            Some((t("2025-08-28T10:20:00Z"), true))
        );
        assert_eq!(
            parse_talos_backup("c-2025-08-28T10:20:00-05:30.snap.zst"),
            Some((t("2025-08-28T15:50:00Z"), false))
        );
        for bad in [
            "2025-08-28T10:20:00Z.snap",
            "prod-2025-08-28T10:20:00.snap",
            "prod-2025-08-28T10:20:00.5Z.snap",
            "prod-2025-08-28 10:20:00Z.snap",
            "prod-2025-08-28T10:20:00Z.snap.gz",
            "prod-2025-08-28T10:20:00Z.snap.age.zst",
            "db.snapshot",
            "prod-2025-13-28T10:20:00Z.snap",
            "pröd-2025-08-28T10:20:00Zé.snap",
        ] {
            assert_eq!(parse_talos_backup(bad), None, "{bad}");
        }
        let objs = vec![
            obj("prod/prod-2025-08-28T10:20:00Z.snap.zst.age", 10),
            obj("prod/prod-2025-08-28T10:30:00Z.snap.zst.age", 10),
            obj("prod/prod-2025-08-28T10:40:00Z.snap.zst.age.part", 10),
        ];
        let a = assemble(Layout::TalosBackup, &objs, &[]);
        assert_eq!(a.candidates.len(), 2);
        assert_eq!(a.candidates[0].time, t("2025-08-28T10:30:00Z"));
        assert_eq!(detect(&objs), Some(Layout::TalosBackup));
        // A plain `talosctl etcd snapshot` file stays `plain`.
        assert_eq!(detect(&[obj("db.snapshot", 1)]), Some(Layout::Plain));
    }

    #[test]
    fn openshift_companions_and_etcd_operator_one_shot() {
        assert_eq!(
            openshift_companion("b/snapshot_2024-03-22_101507__POSSIBLY_DIRTY__.db").as_deref(),
            Some("b/static_kuberesources_2024-03-22_101507__POSSIBLY_DIRTY__.tar.gz")
        );
        assert_eq!(
            openshift_companion("snapshot_2024-03-22_101507.db").as_deref(),
            Some("static_kuberesources_2024-03-22_101507.tar.gz")
        );
        let objs = vec![obj("mybucket/etcd.backup", 10)];
        assert_eq!(detect(&objs), Some(Layout::EtcdOperator));
        let a = assemble(Layout::EtcdOperator, &objs, &[]);
        assert_eq!(a.candidates[0].time_source, TimeSource::ObjectTime);
        assert_eq!(detect(&[obj("x/other.bin", 1)]), None);
    }

    #[test]
    fn series_are_split_only_where_sub_folders_hold_their_own_backups() {
        let names = |keys: &[&str]| -> Option<Vec<String>> {
            let objs: Vec<ObjectInfo> = keys.iter().map(|k| obj(k, 1)).collect();
            split_series(&objs, None).map(|(s, _)| s.into_iter().map(|s| s.name).collect())
        };
        // CSM: bare-metal/ and one folder per etcd-operator cluster, plus a stray README.
        let csm = [
            "bare-metal/etcd-backup-2022-09-15-20-30-03.tar.gz",
            "cray-bss/etcd.backup_v5702_2022-07-30-19:00:02",
            "cray-bos/etcd.backup_v17_2022-07-30-19:00:02",
            "README",
        ];
        assert_eq!(names(&csm).unwrap(), ["bare-metal", "cray-bos", "cray-bss"]);
        let objs: Vec<ObjectInfo> = csm.iter().map(|k| obj(k, 1)).collect();
        let (series, outside) = split_series(&objs, None).unwrap();
        assert_eq!(
            series[0].objects[0].key,
            "etcd-backup-2022-09-15-20-30-03.tar.gz"
        );
        assert_eq!(outside, [obj("README", 1)]);
        // kops `backups/etcd/` given: `events/` and `main/` are two etcd-manager series.
        assert_eq!(
            names(&[
                "events/2024-03-22T10:15:07Z-000001/_etcd_backup.meta",
                "events/2024-03-22T10:15:07Z-000001/etcd.backup.gz",
                "events/control/etcd-cluster-spec",
                "main/2024-03-22T10:15:07Z-000001/_etcd_backup.meta",
                "main/2024-03-22T10:15:07Z-000001/etcd.backup.gz",
            ])
            .unwrap(),
            ["events", "main"]
        );
        // Keys directly under the store are a series of their own.
        assert_eq!(names(&["x.db", "a/y.db"]).unwrap(), [TOP_SERIES, "a"]);
        // One series: etcd-manager backup folders + control/; OpenShift run folders; Gardener
        // v1/ + v2/ (and `Backup-<unix>/` at the root); k3s `.metadata/`; a single sub-folder.
        for one in [
            &[
                "2024-03-22T10:15:07Z-000001/_etcd_backup.meta",
                "2024-03-22T10:15:07Z-000001/etcd.backup.gz",
                "2024-03-22T10:30:07Z-000002/_etcd_backup.meta",
                "2024-03-22T10:30:07Z-000002/etcd.backup.gz",
                "control/etcd-cluster-spec",
            ][..],
            &[
                "backup-daily-2024-03-22_101507/snapshot_2024-03-22_101507.db",
                "backup-daily-2024-03-22_101507/static_kuberesources_2024-03-22_101507.tar.gz",
                "upgrade-backup-4.14-2024-03-23_101507/snapshot_2024-03-23_101507__POSSIBLY_DIRTY__.db",
            ][..],
            &[
                "v1/Backup-1721366000/Full-00000000-00000100-1721366723",
                "v2/Full-00000000-00012345-1721466723.gz",
                "v2/Incr-00012346-00012400-1721466823.gz",
            ][..],
            &[
                "Backup-1721366000/Full-00000000-00000100-1721366723",
                "Backup-1721466000/Full-00000000-00000200-1721466723",
            ][..],
            &[
                "etcd-snapshot-n1-1701472281",
                ".metadata/etcd-snapshot-n1-1701472281",
            ][..],
            &["etcd-main/v2/Full-00000000-00012345-1721466723.gz"][..],
        ] {
            assert_eq!(names(one), None, "{one:?}");
        }
    }

    #[test]
    fn plain_names() {
        assert!(is_plain_snapshot("backup.db"));
        assert!(is_plain_snapshot("prod-2025-08-28T10:20:00Z.snap.zst"));
        assert!(is_plain_snapshot("db.snapshot"));
        assert!(!is_plain_snapshot("backup.db.part"));
        assert!(!is_plain_snapshot("notes.txt"));
        let objs = vec![obj("a/x.db", 3), obj("readme.md", 1)];
        let a = assemble(Layout::Plain, &objs, &[]);
        assert_eq!(a.candidates.len(), 1);
        assert_eq!(a.candidates[0].time_source, TimeSource::ObjectTime);
        assert_eq!(detect(&objs), Some(Layout::Plain));
        assert_eq!(detect(&[obj("readme.md", 1)]), None);
    }
}
