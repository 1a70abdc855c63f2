//! The pure gate: facts + change + requirements → verdict (issue #5).
//!
//! Nothing in this module performs I/O or reads a clock: every input, including `now`, is a
//! parameter, so the same facts always give the same verdict. Callers (the `check` command and
//! the admission webhook) gather facts at the edges, convert them into the types below and render
//! the [`Outcome`] with [`crate::report`].
//!
//! Every fact is a [`Fact`]: known, unknown (its source was asked but could not answer: this
//! refuses under enforce, with the reason) or not checked (its source was not given). A fact
//! that was not checked is an unmet requirement when [`Requirements`] need it (a deny naming
//! the flag that supplies it, so the mode and break-glass decide as for any refusal); only a
//! fact nothing requires stays an `info` finding.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;

/// Check ids. These strings are a contract (issue #5): they appear in JSON, JUnit and GitHub
/// output and in policies.
pub mod checks {
    pub const SNAPSHOT_RECENT: &str = "snapshot.recent";
    pub const SNAPSHOT_VALID: &str = "snapshot.valid";
    pub const CONTROL_FILES_PRESENT: &str = "control-files.present";
    pub const CHANGE_SEEDS_NEW_CLUSTER: &str = "change.seeds-new-cluster";
    pub const LIFECYCLE_DELETES_CONTROL_FILES: &str = "lifecycle.deletes-control-files";
    pub const LIFECYCLE_EXPIRES_SNAPSHOTS: &str = "lifecycle.expires-snapshots";
    pub const LIFECYCLE_ARCHIVES_SNAPSHOTS: &str = "lifecycle.archives-snapshots";
    pub const ETCD_HEALTHY: &str = "etcd.healthy";
    pub const ETCD_REVISION_BEHIND_SNAPSHOT: &str = "etcd.revision-behind-snapshot";
    pub const STORE_REACHABLE: &str = "store.reachable";
    pub const STORE_MATCHES_CHANGE: &str = "store.matches-change";
    pub const CONTROL_FILES_PENDING_COMMAND: &str = "control-files.pending-command";
    pub const SNAPSHOT_CONTINUITY: &str = "snapshot.continuity";
    pub const SNAPSHOT_VERSION_FIT: &str = "snapshot.version-fit";

    /// Every check id, in the order reports list them.
    pub const ALL: [&str; 14] = [
        STORE_REACHABLE,
        STORE_MATCHES_CHANGE,
        SNAPSHOT_RECENT,
        SNAPSHOT_VALID,
        SNAPSHOT_CONTINUITY,
        SNAPSHOT_VERSION_FIT,
        CONTROL_FILES_PRESENT,
        CONTROL_FILES_PENDING_COMMAND,
        CHANGE_SEEDS_NEW_CLUSTER,
        LIFECYCLE_DELETES_CONTROL_FILES,
        LIFECYCLE_EXPIRES_SNAPSHOTS,
        LIFECYCLE_ARCHIVES_SNAPSHOTS,
        ETCD_HEALTHY,
        ETCD_REVISION_BEHIND_SNAPSHOT,
    ];
}

/// A fact as the gate sees it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum Fact<T> {
    /// Established.
    Known { value: T },
    /// The source was asked and could not answer (unreachable, timed out, unreadable).
    Unknown { reason: String },
    /// The source was not given; `hint` says how to check it (e.g. "pass --etcd-endpoints").
    NotChecked { hint: String },
}

impl<T> Fact<T> {
    pub fn known(value: T) -> Self {
        Fact::Known { value }
    }
    pub fn unknown(reason: impl Into<String>) -> Self {
        Fact::Unknown {
            reason: reason.into(),
        }
    }
    pub fn not_checked(hint: impl Into<String>) -> Self {
        Fact::NotChecked { hint: hint.into() }
    }
    pub fn value(&self) -> Option<&T> {
        match self {
            Fact::Known { value } => Some(value),
            _ => None,
        }
    }
}

/// One backup as the gate needs it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Backup {
    /// Store-relative name (e.g. `2024-03-22T10:15:07Z-000123`).
    pub name: String,
    /// When the backup was taken.
    pub time: DateTime<Utc>,
    /// Restorable (sha256 trailer, structure, revision).
    pub valid: bool,
    /// Snapshot revision, when it could be read.
    pub revision: Option<i64>,
    /// Why it is not valid (empty when valid).
    pub problems: Vec<String>,
    /// Set when the backup could not be read at all (403, timeout): why. Its validity is then
    /// unknown, not "invalid" (issue #24).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_error: Option<String>,
}

/// What the store holds.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreFact {
    /// The store URL as given.
    pub url: String,
    /// Layout used (detected or forced).
    pub layout: String,
    /// Number of backups seen (within the listing window).
    pub backup_count: usize,
    /// The newest backup, valid or not.
    pub newest: Option<Backup>,
    /// The newest valid backup, if any (may equal `newest`).
    pub newest_valid: Option<Backup>,
    /// Control files, for layouts that have them (etcd-manager); `None` otherwise.
    pub control_files: Option<ControlFiles>,
    /// Set when these facts are a cached earlier reading because the latest read failed (the
    /// webhook keeps deciding from them within its staleness bound): why, and how old.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale: Option<String>,
    /// Set when no backup was found (issue #19).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_backups: Option<NoBackups>,
    /// Whether the newest valid backup still holds the cluster of the backups before it
    /// (issue #22); `None` when it was not compared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuity: Option<crate::continuity::Continuity>,
}

/// A store where no backup was found: said first, before any layout-specific advice.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NoBackups {
    /// One line: `no backups found at URL: tried ...; N keys seen: ...`.
    pub summary: String,
    /// What to do (check the URL, the level, `--layout`).
    pub advice: String,
    /// The store is recognisably of its layout (e.g. etcd-manager control files): an empty
    /// store of the right kind, so the layout's own advice applies. Otherwise it is the wrong
    /// place and no layout-specific advice is given.
    pub recognised: bool,
    /// Layouts tried, keys seen, suggestions (the finding's details).
    pub details: serde_json::Value,
}

impl StoreFact {
    /// No backup was found and nothing says the store is of the layout used: the wrong place.
    pub fn wrong_place(&self) -> Option<&NoBackups> {
        self.no_backups.as_ref().filter(|n| !n.recognised)
    }
}

/// What etcd-manager will do given the control files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ControlOutcome {
    /// Both files present and consistent: etcd-manager restores/joins the existing cluster.
    Normal,
    /// `etcd-cluster-created` missing while the spec is present: a new, empty cluster is seeded.
    SeedsNewCluster,
    /// `etcd-cluster-spec` missing: etcd-manager does nothing, including taking backups.
    BackupsStopped,
    /// A file is present but cannot be parsed or is inconsistent.
    Malformed,
    /// Both files missing: etcd-manager idles (no backups) and seeds a new, empty cluster as soon
    /// as a spec is written.
    Idle,
    /// The control files could not be read.
    Unknown,
}

/// Control-file state of an etcd-manager store.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlFiles {
    pub spec_present: bool,
    pub created_present: bool,
    pub outcome: ControlOutcome,
    /// One sentence: what etcd-manager would do, in operator language.
    pub meaning: String,
    /// Parse or consistency problems.
    pub problems: Vec<String>,
    /// Queued `control/<ts>/_command.json` files, in the order etcd-manager acts on them.
    #[serde(default)]
    pub pending_commands: Vec<PendingCommand>,
    /// Set when the queued commands could not be listed or read: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands_unknown: Option<String>,
}

/// One queued etcd-manager command (etcd-manager `pkg/commands/vfs.go`, `AddCommand`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingCommand {
    /// Store-relative key of the `_command.json`.
    pub key: String,
    /// When the command was queued (its `timestamp`), when known.
    pub queued: Option<DateTime<Utc>>,
    /// The backup a `restoreBackup` command names; `None` for other commands.
    pub restore_backup: Option<String>,
    /// The named backup's time (from its folder name), when it parses.
    pub backup_time: Option<DateTime<Utc>>,
    /// Whether the named backup is in the store and restorable: `Some(false)` when it is known
    /// to be missing or not restorable, `None` when it was not checked.
    pub backup_restorable: Option<bool>,
    /// The named backup's revision, when it was read.
    pub backup_revision: Option<i64>,
    /// Why etcd-manager cannot act on this file (unparseable, empty, unreadable, no clusterSpec).
    pub problem: Option<String>,
}

/// Facts from the live etcd cluster.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Etcd {
    /// Members that answered a status request, and the total known.
    pub healthy_members: usize,
    pub total_members: usize,
    pub has_leader: bool,
    /// Active alarms (e.g. `NOSPACE`, `CORRUPT`).
    pub alarms: Vec<String>,
    /// Current revision (from a response header).
    pub revision: Option<i64>,
    pub db_size: Option<u64>,
    pub quota_bytes: Option<u64>,
    /// Per-member problems (unreachable endpoints, errors).
    pub problems: Vec<String>,
    /// The highest raft index reported (a restore or a new cluster restarts it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raft_index: Option<u64>,
    /// Member names, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// etcd server versions reported by the members.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
}

impl Etcd {
    /// Quorum: a strict majority of the known members answered.
    pub fn has_quorum(&self) -> bool {
        self.total_members > 0 && self.healthy_members * 2 > self.total_members
    }
}

/// A finding produced by the lifecycle analysis, already carrying its check id and severity.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleIssue {
    pub check: String,
    pub severity: Severity,
    pub message: String,
    pub fix: Option<String>,
    pub details: serde_json::Value,
}

/// What the proposed change does, as far as the gate is concerned.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// Evidence lines for changes that write an etcd-cluster-spec, which seeds a new etcd
    /// cluster where `etcd-cluster-created` is missing (empty: it writes none).
    pub seeds_new_cluster: Vec<String>,
    /// The etcd clusters (`main`, `events`) whose spec the change writes, one per evidence line.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub spec_clusters: Vec<String>,
    /// Human-readable summary of every other gated change (upgrades, scaling).
    pub gated: Vec<String>,
    /// Where the change came from (`kops-dry-run`, `terraform-plan`, `objects`, ...).
    pub sources: Vec<String>,
    /// Backup stores the change names as its cluster's (kops `Base` of etcd-cluster-spec, a
    /// moved `--backup-store`, `--kops-cluster-spec`); `--store` URLs outside them are refused.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backup_stores: Vec<String>,
    /// etcd versions the change moves etcd to (kops, kubeadm, Cluster API specs).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub etcd_versions: Vec<String>,
}

/// Everything the gate knows.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    /// One entry per store given (`--store` may repeat).
    pub stores: Vec<Fact<StoreFact>>,
    /// The URLs of those stores, in the same order (known whether or not they could be read).
    #[serde(skip)]
    pub store_urls: Vec<String>,
    pub etcd: Fact<Etcd>,
    pub lifecycle: Fact<Vec<LifecycleIssue>>,
    /// Facts that are an earlier reading because the latest read failed (a server keeps
    /// deciding from them within its staleness bound): (check id of the source, why and how
    /// old). Each is a warning.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cached: Vec<(String, String)>,
}

/// How a deny is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A deny refuses.
    #[default]
    Enforce,
    /// A deny becomes a warning.
    Warn,
    /// Everything is allowed; findings are recorded only.
    Audit,
}

/// What the gate requires: the merged `require` of the matching policies, or these defaults
/// for a plain pre-flight check (a recent restorable backup and sound control files).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Requirements {
    pub mode: Mode,
    /// A restorable backup younger than `max_age` must exist (a policy sets `snapshotMaxAge`
    /// or `verifySnapshot`); without a store to look in, that is unmet.
    pub backup: bool,
    /// Newest valid backup must be younger than this.
    #[serde(with = "humantime_serde_compat")]
    pub max_age: Duration,
    /// Require etcd-manager control files when the layout has them.
    pub control_files: bool,
    /// The live etcd must be reachable and healthy (`liveEtcd`).
    pub live_etcd: bool,
    /// The bucket's lifecycle rules must be judged (`lifecycle`).
    pub lifecycle: bool,
    /// The newest backups must hold the cluster of the backups before them, and the live
    /// cluster the one in the backups (`continuity`): a new cluster is a deny, else a warning.
    pub continuity: bool,
    /// The policies these come from (empty: the defaults of a plain check).
    pub required_by: Vec<String>,
}

impl Default for Requirements {
    fn default() -> Self {
        Requirements {
            mode: Mode::Enforce,
            backup: true,
            max_age: Duration::from_secs(3 * 3600),
            control_files: true,
            live_etcd: false,
            lifecycle: false,
            continuity: true,
            required_by: Vec::new(),
        }
    }
}

impl Requirements {
    /// "policy a, b" or "the default requirements", for messages.
    fn by(&self) -> String {
        match self.required_by.as_slice() {
            [] => "the default requirements of a check".to_string(),
            [one] => format!("policy {one}"),
            many => format!("policies {}", many.join(", ")),
        }
    }
}

mod humantime_serde_compat {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}

/// Severity of a finding, ordered `Info < Warn < Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warn,
    Deny,
}

impl Severity {
    /// `deny`, `warn` or `info`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Deny => "deny",
        }
    }
}

/// One finding. JSON fields `check`, `severity`, `message`, `details` are a contract.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub check: String,
    pub severity: Severity,
    pub message: String,
    /// What to do next, in operator language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_step: Option<String>,
    pub details: serde_json::Value,
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Proceed,
    Warn,
    Refuse,
}

/// Verdict plus the findings that led to it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub verdict: Verdict,
    pub mode: Mode,
    pub findings: Vec<Finding>,
}

fn finding(
    check: &str,
    severity: Severity,
    message: impl Into<String>,
    next_step: Option<&str>,
    details: serde_json::Value,
) -> Finding {
    Finding {
        check: check.to_string(),
        severity,
        message: message.into(),
        next_step: next_step.map(str::to_string),
        details,
    }
}

/// Human form of an age, to the minute ("4h 12m").
pub fn human_age(age: chrono::Duration) -> String {
    let secs = age.num_seconds();
    if secs < 0 {
        return format!("{} in the future", human_age(-age));
    }
    let (d, h, m) = (secs / 86_400, (secs % 86_400) / 3600, (secs % 3600) / 60);
    match (d, h) {
        (0, 0) => format!("{m}m"),
        (0, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h {m}m"),
    }
}

const TAKE_BACKUP: &str = "take a backup now and re-run: etcd-manager has no trigger command, so \
restart the leader's etcd-manager (or wait for its next scheduled backup, every 15 min by \
default); elsewhere run `etcdctl snapshot save` into the store";

/// Evaluate the facts against the requirements. Pure and deterministic.
pub fn evaluate(facts: &Facts, change: &Change, req: &Requirements, now: DateTime<Utc>) -> Outcome {
    decide(findings(facts, change, req, now), req.mode)
}

/// The raw findings (before the mode is applied) of every check.
pub fn findings(
    facts: &Facts,
    change: &Change,
    req: &Requirements,
    now: DateTime<Utc>,
) -> Vec<Finding> {
    findings_with(facts, change, req, now, Detail::Full)
}

/// Which findings to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Detail {
    /// Every check's finding, passing ones (`info`) included: what reports show.
    #[default]
    Full,
    /// Only findings that warn or deny. The verdict is the same (an `info` finding never
    /// changes it); the admission webhook shows nothing else, so it skips building the rest.
    Problems,
}

/// [`findings`], building only the findings `detail` asks for.
pub fn findings_with(
    facts: &Facts,
    change: &Change,
    req: &Requirements,
    now: DateTime<Utc>,
    detail: Detail,
) -> Vec<Finding> {
    let mut out = Out {
        list: Vec::new(),
        info: detail == Detail::Full,
    };
    let newest_valid_rev = stores_checks(facts, change, req, now, &mut out);
    change_checks(change, facts, &mut out);
    lifecycle_checks(&facts.lifecycle, req, &mut out);
    etcd_checks(&facts.etcd, req, newest_valid_rev, &mut out);
    live_continuity_check(facts, req, &mut out);
    version_fit_checks(facts, change, &mut out);
    for (check, why) in &facts.cached {
        out.push(finding(
            check,
            Severity::Warn,
            format!("deciding from cached facts: {why}"),
            Some("fix access to the fact source before the cached facts go stale (then the gate refuses)"),
            serde_json::json!({ "stale": why }),
        ));
    }
    out.list
}

/// Where the checks put their findings.
struct Out {
    list: Vec<Finding>,
    /// Whether `info` findings are wanted ([`Detail::Full`]).
    info: bool,
}

impl Out {
    fn push(&mut self, f: Finding) {
        self.list.push(f);
    }
    /// A finding of `severity`, built only when wanted (an `info` one only with
    /// [`Detail::Full`]).
    fn add(&mut self, severity: Severity, build: impl FnOnce() -> Finding) {
        if severity != Severity::Info || self.info {
            self.list.push(build());
        }
    }
    /// An `info` finding, built only when wanted.
    fn info(&mut self, build: impl FnOnce() -> Finding) {
        self.add(Severity::Info, build);
    }
}

/// Apply the mode to raw findings and derive the verdict.
pub fn decide(mut findings: Vec<Finding>, mode: Mode) -> Outcome {
    if mode != Mode::Enforce {
        for f in findings.iter_mut().filter(|f| f.severity == Severity::Deny) {
            f.severity = Severity::Warn;
            let label = if mode == Mode::Warn { "warn" } else { "audit" };
            f.message = format!("{} (would refuse; policy mode is {label})", f.message);
        }
    }
    let worst = findings.iter().map(|f| f.severity).max();
    let verdict = match (mode, worst) {
        (Mode::Audit, _) => Verdict::Proceed,
        (_, Some(Severity::Deny)) => Verdict::Refuse,
        (_, Some(Severity::Warn)) => Verdict::Warn,
        _ => Verdict::Proceed,
    };
    Outcome {
        verdict,
        mode,
        findings,
    }
}

/// Store, snapshot and control-file checks. Returns the highest revision among the newest valid
/// backups (for the live-etcd comparison).
fn stores_checks(
    facts: &Facts,
    change: &Change,
    req: &Requirements,
    now: DateTime<Utc>,
    out: &mut Out,
) -> Option<i64> {
    use checks::*;
    if facts.stores.is_empty() {
        no_store(req, out);
        return None;
    }
    let mut newest_rev = None;
    for store in &facts.stores {
        match store {
            Fact::NotChecked { .. } => no_store(req, out),
            Fact::Unknown { reason } => out.push(finding(
                STORE_REACHABLE,
                Severity::Deny,
                format!("backup store could not be read: {reason}"),
                Some("check the store URL, credentials and network; the gate cannot tell whether a restorable backup exists"),
                serde_json::json!({ "reason": reason }),
            )),
            Fact::Known { value: s } if s.stale.is_some() => {
                let why = s.stale.as_deref().unwrap_or_default();
                out.push(finding(
                    STORE_REACHABLE,
                    Severity::Warn,
                    format!("{}: deciding from cached facts: {why}", s.url),
                    Some("fix access to the store before the cached facts go stale (then the gate refuses)"),
                    serde_json::json!({ "store": s.url, "stale": why }),
                ));
                if let Some(rev) = snapshot_checks(s, req, now, out) {
                    newest_rev = Some(newest_rev.map_or(rev, |r: i64| r.max(rev)));
                }
                continuity_check(s, req, out);
                control_checks(s, req, change, out);
                pending_command_checks(s, now, out);
            }
            Fact::Known { value: s } => {
                if let Some(n) = s.wrong_place() {
                    out.push(finding(
                        STORE_REACHABLE,
                        Severity::Deny,
                        n.summary.clone(),
                        Some(&n.advice),
                        n.details.clone(),
                    ));
                } else {
                    out.info(|| finding(
                        STORE_REACHABLE,
                        Severity::Info,
                        format!("{} readable ({} layout, {} backups)", s.url, s.layout, s.backup_count),
                        None,
                        serde_json::json!({ "store": s.url, "layout": s.layout, "backups": s.backup_count }),
                    ));
                }
                if let Some(rev) = snapshot_checks(s, req, now, out) {
                    newest_rev = Some(newest_rev.map_or(rev, |r: i64| r.max(rev)));
                }
                continuity_check(s, req, out);
                control_checks(s, req, change, out);
                pending_command_checks(s, now, out);
            }
        }
    }
    newest_rev
}

/// No store to read backups from: an unmet requirement when one is required.
fn no_store(req: &Requirements, out: &mut Out) {
    use checks::*;
    const PASS_STORE: &str =
        "pass --store URL (s3://BUCKET/PREFIX or a directory) or set ETCDGUARD_STORE";
    if req.backup {
        out.push(finding(
            SNAPSHOT_RECENT,
            Severity::Deny,
            format!(
                "no backup store given, but {} requires a restorable backup younger than {}",
                req.by(),
                humantime::format_duration(req.max_age)
            ),
            Some(PASS_STORE),
            serde_json::json!({ "requiredBy": req.required_by }),
        ));
    } else if req.control_files {
        out.push(finding(
            CONTROL_FILES_PRESENT,
            Severity::Deny,
            format!(
                "no backup store given, but {} requires sound etcd-manager control files",
                req.by()
            ),
            Some(PASS_STORE),
            serde_json::json!({ "requiredBy": req.required_by }),
        ));
    } else {
        out.info(|| {
            finding(
                SNAPSHOT_RECENT,
                Severity::Info,
                "backups not checked: no backup store given (no matching policy requires them)",
                None,
                serde_json::Value::Null,
            )
        });
    }
}

/// How far in the future a backup's time may be before its age means nothing (clock skew
/// between the writer and this machine, or a naming fault).
pub const MAX_CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);

fn snapshot_checks(
    s: &StoreFact,
    req: &Requirements,
    now: DateTime<Utc>,
    out: &mut Out,
) -> Option<i64> {
    use checks::*;
    let max_age = chrono::Duration::from_std(req.max_age).unwrap_or(chrono::Duration::MAX);
    let max_age_h = || humantime::format_duration(req.max_age).to_string();
    // snapshot.valid: is the newest backup restorable?
    match (&s.newest, &s.newest_valid) {
        (None, _) => out.push(finding(
            SNAPSHOT_VALID,
            Severity::Deny,
            match &s.no_backups {
                Some(n) if n.recognised => n.summary.clone(),
                Some(_) => format!("no backup found in {} (see store.reachable)", s.url),
                None => format!("no backup found in {}", s.url),
            },
            Some(no_backup_next(s)),
            serde_json::json!({ "store": s.url }),
        )),
        (Some(n), v) if n.read_error.is_some() => out.push(finding(
            SNAPSHOT_VALID,
            if v.is_some() { Severity::Warn } else { Severity::Deny },
            format!(
                "could not read the newest backup {} in {}: {}{}",
                n.name,
                s.url,
                n.read_error.as_deref().unwrap_or_default(),
                v.as_ref().map_or_else(
                    || "; whether it is restorable is unknown".to_string(),
                    |v| format!("; the newest restorable one is {}", v.name)
                )
            ),
            Some("fix read access to the backup (s3:GetObject on the store, the network) and re-run; the gate cannot tell whether it is restorable"),
            serde_json::json!({ "store": s.url, "backup": n.name, "readError": n.read_error, "newestValid": v.as_ref().map(|v| v.name.clone()) }),
        )),
        (Some(n), _) if n.valid => out.info(|| finding(
            SNAPSHOT_VALID,
            Severity::Info,
            format!("newest backup {} is restorable (revision {})", n.name, rev_str(n.revision)),
            None,
            serde_json::json!({ "store": s.url, "backup": n.name, "revision": n.revision }),
        )),
        (Some(n), Some(v)) => out.push(finding(
            SNAPSHOT_VALID,
            Severity::Warn,
            format!(
                "newest backup {} is NOT restorable ({}); the newest restorable one is {}",
                n.name,
                n.problems.join("; "),
                v.name
            ),
            Some("find out why the newest backup is corrupt (truncated upload? disk full?) and take a new one"),
            serde_json::json!({ "store": s.url, "backup": n.name, "problems": n.problems, "newestValid": v.name }),
        )),
        (Some(n), None) => out.push(finding(
            SNAPSHOT_VALID,
            Severity::Deny,
            format!(
                "no restorable backup in {}: newest backup {} is invalid ({})",
                s.url,
                n.name,
                n.problems.join("; ")
            ),
            Some(take_backup(s)),
            serde_json::json!({ "store": s.url, "backup": n.name, "problems": n.problems }),
        )),
    }
    // snapshot.recent: is the newest restorable backup young enough?
    let Some(v) = &s.newest_valid else {
        out.push(finding(
            SNAPSHOT_RECENT,
            Severity::Deny,
            format!(
                "no restorable backup in {}, so none younger than {}",
                s.url,
                max_age_h()
            ),
            Some(no_backup_next(s)),
            serde_json::json!({ "store": s.url, "maxAge": max_age_h() }),
        ));
        return None;
    };
    let age = now.signed_duration_since(v.time);
    let details = || {
        serde_json::json!({
            "store": s.url, "backup": v.name, "time": v.time,
            "ageSeconds": age.num_seconds(), "maxAge": max_age_h(),
        })
    };
    let message = || {
        let age = if age < chrono::Duration::zero() {
            format!(
                "dated {} ahead (within the allowed clock skew)",
                human_age(-age)
            )
        } else {
            format!("{} old", human_age(age))
        };
        format!(
            "newest restorable backup {} in {} is {age} (max {})",
            v.name,
            s.url,
            max_age_h()
        )
    };
    if -age > MAX_CLOCK_SKEW {
        out.push(finding(
            SNAPSHOT_RECENT,
            Severity::Deny,
            format!(
                "newest restorable backup {} is dated {}, {} ahead of now: its age is \
                 meaningless (clock skew or a naming fault)",
                v.name,
                v.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                human_age(-age)
            ),
            Some("check the clock of the machine that writes the backups (and of this one) and how the backup is named; take a correctly dated backup"),
            details(),
        ));
    } else if age > max_age {
        out.push(finding(
            SNAPSHOT_RECENT,
            Severity::Deny,
            message(),
            Some(take_backup(s)),
            details(),
        ));
    } else {
        out.info(|| finding(SNAPSHOT_RECENT, Severity::Info, message(), None, details()));
    }
    v.revision
}

/// What to do about a store without a (restorable) backup: fix the location when the store is
/// the wrong place; fix read access when the newest backup could not be read; else take one
/// (etcd-manager advice only for an etcd-manager store).
/// How to take a backup into this store: etcd-manager's way only for an etcd-manager store.
fn take_backup(s: &StoreFact) -> &'static str {
    if s.layout == "etcd-manager" {
        TAKE_BACKUP
    } else {
        "take a backup now (`etcdctl snapshot save`, or the tool that writes this store) and re-run"
    }
}

fn no_backup_next(s: &StoreFact) -> &str {
    if s.wrong_place().is_some() {
        "check the store location first (see store.reachable): no backup was recognised there"
    } else if s.newest.as_ref().is_some_and(|n| n.read_error.is_some()) {
        "fix read access to the backups (s3:GetObject on the store, the network) and re-run"
    } else {
        take_backup(s)
    }
}

fn rev_str(rev: Option<i64>) -> String {
    rev.map_or_else(|| "unknown".to_string(), |r| r.to_string())
}

fn control_checks(s: &StoreFact, req: &Requirements, change: &Change, out: &mut Out) {
    use checks::*;
    let Some(c) = &s.control_files else { return };
    // When the change itself writes etcd-cluster-spec and the created marker is still there,
    // the change is the repair of a stopped backup loop: say so, not "restore it by hand".
    let change_writes_spec = !change.seeds_new_cluster.is_empty();
    let (severity, next) = match c.outcome {
        ControlOutcome::Normal => (Severity::Info, None),
        ControlOutcome::SeedsNewCluster => (
            Severity::Deny,
            Some("restore control/etcd-cluster-created (from S3 object versions or a copy) before any etcd-manager restart, then restart the leader's etcd-manager to re-read control files; do NOT run kops update/rolling-update until then"),
        ),
        ControlOutcome::BackupsStopped if change_writes_spec => (
            Severity::Deny,
            Some("this change re-creates control/etcd-cluster-spec, which resumes backups (etcd-cluster-created is present, so no new cluster is seeded): check its memberCount and etcdVersion against the running cluster, apply it with a break-glass exception (--annotation etcdguard.dev/break-glass=REASON), then restart the leader's etcd-manager"),
        ),
        ControlOutcome::BackupsStopped => (
            Severity::Deny,
            Some("restore control/etcd-cluster-spec (from S3 object versions, or `kops update cluster --yes` rewrites it; check its memberCount and etcdVersion first) and restart the leader's etcd-manager; backups resume only then"),
        ),
        ControlOutcome::Malformed => (
            Severity::Deny,
            Some("repair the control files from a known-good copy (S3 object versions) and restart the leader's etcd-manager"),
        ),
        ControlOutcome::Idle => (
            Severity::Deny,
            Some("restore both control files from S3 object versions BEFORE anything writes a new etcd-cluster-spec (kops update cluster --yes would), then restart the leader's etcd-manager"),
        ),
        ControlOutcome::Unknown => (
            Severity::Deny,
            Some("check read access (s3:GetObject) to <store>/control/; the gate cannot tell what etcd-manager will do"),
        ),
    };
    let severity = if !req.control_files && severity == Severity::Deny {
        Severity::Warn
    } else {
        severity
    };
    out.add(severity, || {
        let mut message = format!("{}: {}", s.url, c.meaning);
        if !c.problems.is_empty() {
            message.push_str(&format!(" ({})", c.problems.join("; ")));
        }
        let details = serde_json::to_value(c).unwrap_or(serde_json::Value::Null);
        finding(CONTROL_FILES_PRESENT, severity, message, next, details)
    });
}

/// What a cluster's store says about a dry-run that *creates* its etcd-cluster-spec (kops shows
/// a ManagedFile as created only when it finds none in its state store).
enum SpecWrite {
    /// The store has `etcd-cluster-created` but no spec: the change restores the spec, and no
    /// new cluster is seeded (backups resume).
    Restores,
    /// The store lacks `etcd-cluster-created`: writing the spec seeds a new cluster.
    Seeds(String),
    /// The store has a spec although kops finds none: not the store kops reads, or it changed.
    Conflicts(String),
    /// No store of that cluster was read (or its control files were not): nothing says which.
    Unknown,
}

/// What the control files of etcd cluster `cluster`'s store say: the store whose URL ends in
/// the cluster's folder (kops: `…/backups/etcd/<cluster>`); unknown when none was read.
fn spec_write(facts: &Facts, cluster: &str) -> SpecWrite {
    let folder = format!("/{cluster}");
    let of_cluster = |url: &str| {
        let url = url.trim_end_matches('/');
        url.ends_with(&folder) || url == cluster
    };
    let mut verdict = SpecWrite::Unknown;
    for s in facts.stores.iter().filter_map(Fact::value) {
        if !of_cluster(&s.url) {
            continue;
        }
        let Some(c) = &s.control_files else { continue };
        match c.outcome {
            ControlOutcome::BackupsStopped => verdict = SpecWrite::Restores,
            ControlOutcome::SeedsNewCluster | ControlOutcome::Idle => {
                return SpecWrite::Seeds(s.url.clone())
            }
            ControlOutcome::Normal => return SpecWrite::Conflicts(s.url.clone()),
            ControlOutcome::Malformed | ControlOutcome::Unknown => return SpecWrite::Unknown,
        }
    }
    verdict
}

/// `control-files.pending-command`: a queued `restoreBackup` makes the next etcd-manager leader
/// (leader change or restart: the control store is re-read then) create a new cluster and
/// restore the named backup into it (`pkg/controller/controller.go`, `getRestoreBackupCommand`,
/// `createNewCluster`, then `restoreBackupAndLiftQuarantine`), losing every write since.
fn pending_command_checks(s: &StoreFact, now: DateTime<Utc>, out: &mut Out) {
    use checks::CONTROL_FILES_PENDING_COMMAND as ID;
    let Some(c) = &s.control_files else { return };
    if let Some(why) = &c.commands_unknown {
        out.push(finding(
            ID,
            Severity::Deny,
            format!(
                "{}: cannot tell whether a restore-backup command is queued under control/: {why}",
                s.url
            ),
            Some("check list/read access (s3:ListBucket, s3:GetObject) to <store>/control/"),
            serde_json::json!({ "store": s.url, "reason": why }),
        ));
        return;
    }
    if c.pending_commands.is_empty() {
        out.info(|| {
            finding(
                ID,
                Severity::Info,
                format!("{}: no command queued under control/", s.url),
                None,
                serde_json::json!({ "store": s.url }),
            )
        });
        return;
    }
    const DELETE: &str = "if this restore is not intended, delete the command before any etcd-manager restart or leader change (`etcd-manager-ctl --backup-store=<store> delete-command <backup>`, or remove the _command.json); if it is, take the change only after the restore has run";
    for p in &c.pending_commands {
        let details = serde_json::to_value(p).unwrap_or(serde_json::Value::Null);
        let details = serde_json::json!({ "store": s.url, "command": details });
        if let Some(problem) = &p.problem {
            out.push(finding(
                ID,
                Severity::Deny,
                format!("{}: queued command {} cannot be used by etcd-manager: {problem}", s.url, p.key),
                Some("repair or remove the command file; etcd-manager's control-store refresh fails on it (no backups, no reconcile) until then"),
                details,
            ));
            continue;
        }
        let Some(backup) = &p.restore_backup else {
            out.push(finding(
                ID,
                Severity::Warn,
                format!(
                    "{}: queued command {} has no restoreBackup: etcd-manager ignores it",
                    s.url, p.key
                ),
                Some("remove the stray command file"),
                details,
            ));
            continue;
        };
        let age = match p.backup_time {
            Some(t) => format!(
                "taken {} ({} ago)",
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                human_age(now.signed_duration_since(t))
            ),
            None => {
                "of unknown age (its name is not an etcd-manager backup folder name)".to_string()
            }
        };
        let lost = match p.backup_time {
            Some(t) => format!(
                "every write since {}",
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            None => "every write since that backup".to_string(),
        };
        let rev = p
            .backup_revision
            .map(|r| format!(" (the backup is at revision {r}; every later revision is lost)"))
            .unwrap_or_default();
        let broken = if p.backup_restorable == Some(false) {
            "; that backup is missing or NOT restorable, so etcd-manager stops etcd, seeds a NEW, EMPTY cluster and then fails the restore"
        } else {
            ""
        };
        out.push(finding(
            ID,
            Severity::Deny,
            format!(
                "{}: a restore-backup command is queued ({}): the next etcd-manager leader will REPLACE the cluster with backup {backup}, {age}, losing {lost}{rev}{broken}",
                s.url, p.key
            ),
            Some(DELETE),
            details,
        ));
    }
}

fn change_checks(change: &Change, facts: &Facts, out: &mut Out) {
    use checks::*;
    if change.sources.is_empty() {
        return;
    }
    store_match_check(change, facts, out);
    if change.seeds_new_cluster.is_empty() {
        out.info(|| {
            finding(
                CHANGE_SEEDS_NEW_CLUSTER,
                Severity::Info,
                format!(
                    "the change does not create etcd-cluster-spec ({})",
                    change.sources.join(", ")
                ),
                None,
                serde_json::json!({ "gated": change.gated }),
            )
        });
        return;
    }
    let details =
        || serde_json::json!({ "evidence": change.seeds_new_cluster, "gated": change.gated });
    // Per etcd cluster whose spec is created: what its store's control files say.
    let (mut restores, mut seeds, mut conflicts, mut unknown) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, evidence) in change.seeds_new_cluster.iter().enumerate() {
        let cluster = change.spec_clusters.get(i).map_or("", String::as_str);
        match spec_write(facts, cluster) {
            SpecWrite::Restores => restores.push(evidence.as_str()),
            SpecWrite::Seeds(url) => seeds.push(format!(
                "{evidence} while {url} has no etcd-cluster-created"
            )),
            SpecWrite::Conflicts(url) => conflicts.push(format!(
                "{evidence}, so kops finds no spec there, but {url} has one"
            )),
            SpecWrite::Unknown => unknown.push(evidence.as_str()),
        }
    }
    if !seeds.is_empty() {
        out.push(finding(
            CHANGE_SEEDS_NEW_CLUSTER,
            Severity::Deny,
            format!(
                "this change seeds a NEW, EMPTY etcd cluster once etcd-manager restarts: {}",
                seeds.join("; ")
            ),
            Some("restore the store's control/ files (both etcd-cluster-spec and etcd-cluster-created) from S3 object versions instead of letting kops recreate the spec; then re-run the dry-run"),
            details(),
        ));
    }
    if !conflicts.is_empty() {
        out.push(finding(
            CHANGE_SEEDS_NEW_CLUSTER,
            Severity::Deny,
            format!(
                "the dry-run and the store disagree: {}: the store checked is not the one kops reads, or it changed since the dry-run",
                conflicts.join("; ")
            ),
            Some("check the state store kops uses (KOPS_STATE_STORE, the dry-run's Base URL) against --store, then re-run the dry-run and the check"),
            details(),
        ));
    }
    if !unknown.is_empty() {
        out.push(finding(
            CHANGE_SEEDS_NEW_CLUSTER,
            Severity::Deny,
            format!(
                "this change creates etcd-cluster-spec ({}); whether that seeds a NEW, EMPTY etcd cluster depends on control/etcd-cluster-created in that cluster's store, which was not read",
                unknown.join("; ")
            ),
            Some("check that cluster's backup store too (--store with the URL the change names, or --kops-cluster-spec): if etcd-cluster-created is missing there, restore control/ from S3 object versions before applying"),
            details(),
        ));
    }
    if !restores.is_empty() {
        out.info(|| finding(
            CHANGE_SEEDS_NEW_CLUSTER,
            Severity::Info,
            format!(
                "the change re-creates the missing etcd-cluster-spec ({}), and the store still has etcd-cluster-created: no new cluster is seeded",
                restores.join("; ")
            ),
            None,
            details(),
        ));
    }
}

/// The stores a change names (its kops state store) against the stores whose facts were read:
/// facts of another cluster's store prove nothing about this one.
fn store_match_check(change: &Change, facts: &Facts, out: &mut Out) {
    use checks::*;
    let named: Vec<&str> = change
        .backup_stores
        .iter()
        .map(|s| s.trim_end_matches('/'))
        .collect();
    if named.is_empty() {
        return;
    }
    let given: Vec<&str> = facts
        .store_urls
        .iter()
        .map(|u| u.trim_end_matches('/'))
        .filter(|u| u.contains("://") && !u.starts_with("file://"))
        .collect();
    let other: Vec<&str> = given
        .iter()
        .copied()
        .filter(|g| !named.contains(g))
        .collect();
    if other.is_empty() {
        if !given.is_empty() {
            out.info(|| {
                finding(
                    STORE_MATCHES_CHANGE,
                    Severity::Info,
                    format!(
                        "the stores checked are the ones the change names ({})",
                        named.join(", ")
                    ),
                    None,
                    serde_json::json!({ "named": named }),
                )
            });
        }
        return;
    }
    out.push(finding(
        STORE_MATCHES_CHANGE,
        Severity::Deny,
        format!(
            "--store {} is not a backup store of the cluster this change is for (it names {}): its backups say nothing about this cluster",
            other.join(", "),
            named.join(", ")
        ),
        Some("pass the change's own backup store with --store (or --kops-cluster-spec), or check the dry-run's state store (KOPS_STATE_STORE)"),
        serde_json::json!({ "named": named, "given": other }),
    ));
}

fn lifecycle_checks(lifecycle: &Fact<Vec<LifecycleIssue>>, req: &Requirements, out: &mut Out) {
    use checks::*;
    match lifecycle {
        Fact::NotChecked { hint } if req.lifecycle => out.push(finding(
            LIFECYCLE_DELETES_CONTROL_FILES,
            Severity::Deny,
            format!(
                "lifecycle rules not checked, but {} requires them: {hint}",
                req.by()
            ),
            Some("pass an s3:// --store (its bucket's rules are read) or the proposed rules with --lifecycle FILE"),
            serde_json::json!({ "requiredBy": req.required_by }),
        )),
        Fact::NotChecked { hint } => out.info(|| {
            finding(
                LIFECYCLE_DELETES_CONTROL_FILES,
                Severity::Info,
                format!("lifecycle rules not checked: {hint}"),
                None,
                serde_json::Value::Null,
            )
        }),
        Fact::Unknown { reason } => out.push(finding(
            LIFECYCLE_DELETES_CONTROL_FILES,
            Severity::Deny,
            format!("lifecycle rules could not be read: {reason}"),
            Some(if reason.contains("AccessDenied") || reason.contains("access denied") {
                "grant s3:GetLifecycleConfiguration on the bucket, or pass the rules with --lifecycle FILE"
            } else {
                "fix what the message names (bucket, credentials, network), or pass the rules with --lifecycle FILE"
            }),
            serde_json::json!({ "reason": reason }),
        )),
        Fact::Known { value } => {
            let mut seen = std::collections::BTreeSet::new();
            for issue in value {
                seen.insert(issue.check.clone());
                out.add(issue.severity, || Finding {
                    check: issue.check.clone(),
                    severity: issue.severity,
                    message: issue.message.clone(),
                    next_step: issue.fix.clone(),
                    details: issue.details.clone(),
                });
            }
            for id in [
                LIFECYCLE_DELETES_CONTROL_FILES,
                LIFECYCLE_EXPIRES_SNAPSHOTS,
                LIFECYCLE_ARCHIVES_SNAPSHOTS,
            ] {
                if !seen.contains(id) {
                    out.info(|| {
                        finding(
                            id,
                            Severity::Info,
                            "no lifecycle rule affects this",
                            None,
                            serde_json::Value::Null,
                        )
                    });
                }
            }
        }
    }
}

/// snapshot.continuity: does the newest valid backup hold the cluster of the backups before it?
fn continuity_check(s: &StoreFact, req: &Requirements, out: &mut Out) {
    use crate::continuity::State;
    let Some(c) = &s.continuity else { return };
    let severity = match c.state {
        State::NewCluster if req.continuity => Severity::Deny,
        State::NewCluster | State::Collapsed => Severity::Warn,
        _ => Severity::Info,
    };
    let before = c.before.as_ref().map_or("?", |p| p.name.as_str());
    let previous = c.previous.as_ref().map_or("?", |p| p.name.as_str());
    let next = match c.state {
        State::NewCluster => Some(format!(
            "stop: the cluster now running is not the one in the older backups. Copy {before} (the previous cluster's last backup) out of the store before retention deletes it, find out why a new cluster was seeded (etcd-manager: control/etcd-cluster-created or the spec deleted, kops#16416), and restore that backup if it holds the real cluster (etcd-manager: etcd-manager-ctl restore-backup)"
        )),
        State::Collapsed => Some(format!(
            "find out what deleted most keys after {previous} (a namespace or CRD deletion?) and keep that backup safe until the loss is known to be intended"
        )),
        _ => None,
    };
    out.add(severity, || {
        finding(
            checks::SNAPSHOT_CONTINUITY,
            severity,
            format!("{}: {}", s.url, c.message),
            next.as_deref(),
            serde_json::json!({ "store": s.url, "continuity": c }),
        )
    });
}

/// snapshot.continuity against the live cluster: is it the cluster in the newest backups (of
/// the store whose newest valid backup has the highest revision)?
fn live_continuity_check(facts: &Facts, req: &Requirements, out: &mut Out) {
    use crate::continuity::{compare_live, LiveCluster, LiveState};
    let Some(e) = facts.etcd.value() else { return };
    let Some(revision) = e.revision else { return };
    let newest = facts
        .stores
        .iter()
        .filter_map(Fact::value)
        .filter_map(|s| s.continuity.as_ref().map(|c| (s, c)))
        .filter_map(|(s, c)| c.newest.as_ref().map(|n| (s, c, n.revision)))
        .max_by_key(|(_, _, rev)| *rev);
    let Some((s, c, _)) = newest else { return };
    let live = LiveCluster {
        revision,
        raft_index: e.raft_index,
        members: e.members.clone(),
    };
    let Some(l) = compare_live(c, &live) else {
        return;
    };
    let severity = match l.state {
        LiveState::NewCluster if req.continuity => Severity::Deny,
        LiveState::NewCluster | LiveState::RolledBack => Severity::Warn,
        _ => Severity::Info,
    };
    let next = match l.state {
        LiveState::NewCluster => Some("stop: do not change this cluster, and keep its backups from being overwritten or pruned; find out why a new cluster runs (etcd-manager: control files, kops#16416) and restore the newest backup if it holds the real cluster"),
        LiveState::RolledBack => Some("make sure the rollback was intended: the changes after the backup it came from are only in the newer backups"),
        _ => None,
    };
    out.add(severity, || {
        finding(
            checks::SNAPSHOT_CONTINUITY,
            severity,
            format!("live etcd vs {}: {}", s.url, l.message),
            next,
            serde_json::json!({ "store": s.url, "live": live, "comparison": l }),
        )
    });
}

/// snapshot.version-fit: a newest valid backup from an older etcd minor than the one running
/// (live) or proposed (the change) also rolls that upgrade back when restored.
fn version_fit_checks(facts: &Facts, change: &Change, out: &mut Out) {
    let mut named: Vec<(String, String)> = Vec::new();
    if let Some(e) = facts.etcd.value() {
        named.extend(
            e.versions
                .iter()
                .map(|v| ("the live etcd runs".to_string(), v.clone())),
        );
    }
    named.extend(
        change
            .etcd_versions
            .iter()
            .map(|v| ("the change sets".to_string(), v.clone())),
    );
    for s in facts.stores.iter().filter_map(Fact::value) {
        let Some(n) = s.continuity.as_ref().and_then(|c| c.newest.as_ref()) else {
            continue;
        };
        let Some(fit) = crate::continuity::version_fit(n, &named) else {
            out.info(|| {
                finding(
                    checks::SNAPSHOT_VERSION_FIT,
                    Severity::Info,
                    format!(
                        "{}: version fit not checked: neither the live etcd (--etcd-endpoints) nor the change names an etcd version, or the backup has none",
                        s.url
                    ),
                    None,
                    serde_json::json!({ "store": s.url }),
                )
            });
            continue;
        };
        let severity = if fit.older {
            Severity::Warn
        } else {
            Severity::Info
        };
        out.add(severity, || {
            finding(
                checks::SNAPSHOT_VERSION_FIT,
                severity,
                format!("{}: {}", s.url, fit.message),
                fit.older.then_some(
                    "take a backup after the upgrade (it is the one to restore), or plan the restore together with the etcd version it was taken with",
                ),
                serde_json::json!({ "store": s.url, "versionFit": fit }),
            )
        });
    }
}

fn etcd_checks(
    etcd: &Fact<Etcd>,
    req: &Requirements,
    newest_valid_rev: Option<i64>,
    out: &mut Out,
) {
    use checks::*;
    match etcd {
        Fact::NotChecked { hint } if req.live_etcd => out.push(finding(
            ETCD_HEALTHY,
            Severity::Deny,
            format!("live etcd not checked, but {} requires it: {hint}", req.by()),
            Some("pass --etcd-endpoints (or set ETCDGUARD_ETCD_ENDPOINTS) with the TLS flags the cluster needs"),
            serde_json::json!({ "requiredBy": req.required_by }),
        )),
        Fact::NotChecked { hint } => out.info(|| finding(
            ETCD_HEALTHY,
            Severity::Info,
            format!("live etcd not checked: {hint}"),
            None,
            serde_json::Value::Null,
        )),
        Fact::Unknown { reason } => out.push(finding(
            ETCD_HEALTHY,
            Severity::Deny,
            format!("live etcd could not be checked: {reason}"),
            Some("check the endpoints, TLS flags and network; a change to an etcd cluster whose state is unknown is refused"),
            serde_json::json!({ "reason": reason }),
        )),
        Fact::Known { value: e } => {
            let mut problems = e.problems.clone();
            if !e.has_quorum() {
                problems.push(format!(
                    "no quorum: {} of {} members healthy",
                    e.healthy_members, e.total_members
                ));
            }
            if !e.has_leader {
                problems.push("no leader".to_string());
            }
            if !e.alarms.is_empty() {
                problems.push(format!("active alarms: {}", e.alarms.join(", ")));
            }
            if let (Some(size), Some(quota)) = (e.db_size, e.quota_bytes) {
                if quota > 0 && size.saturating_mul(10) >= quota.saturating_mul(9) {
                    problems.push(format!("db size {size} bytes is ≥ 90% of the quota {quota}"));
                }
            }
            let details = || serde_json::to_value(e).unwrap_or(serde_json::Value::Null);
            if problems.is_empty() {
                out.info(|| finding(
                    ETCD_HEALTHY,
                    Severity::Info,
                    format!(
                        "etcd healthy: {}/{} members, leader present, revision {}",
                        e.healthy_members,
                        e.total_members,
                        rev_str(e.revision)
                    ),
                    None,
                    details(),
                ));
            } else {
                out.push(finding(
                    ETCD_HEALTHY,
                    Severity::Deny,
                    format!("etcd unhealthy: {}", problems.join("; ")),
                    Some("restore quorum and clear alarms (etcdctl alarm list) before changing the cluster"),
                    details(),
                ));
            }
            match (e.revision, newest_valid_rev) {
                (Some(live), Some(snap)) if live < snap => out.push(finding(
                    ETCD_REVISION_BEHIND_SNAPSHOT,
                    Severity::Deny,
                    format!(
                        "live etcd revision {live} is BEHIND the newest restorable snapshot's revision {snap}: \
                         the cluster was re-seeded or restored from something older"
                    ),
                    Some("stop: compare the live data with the snapshot and restore the newest backup (etcd-manager: etcd-manager-ctl restore-backup) before any further change"),
                    serde_json::json!({ "liveRevision": live, "snapshotRevision": snap }),
                )),
                (Some(live), Some(snap)) => out.info(|| finding(
                    ETCD_REVISION_BEHIND_SNAPSHOT,
                    Severity::Info,
                    format!("live etcd revision {live} ≥ newest snapshot revision {snap}"),
                    None,
                    serde_json::json!({ "liveRevision": live, "snapshotRevision": snap }),
                )),
                (None, Some(_)) => out.push(finding(
                    ETCD_REVISION_BEHIND_SNAPSHOT,
                    Severity::Deny,
                    "live etcd revision unknown: cannot compare with the newest snapshot",
                    Some("check that the endpoints answer a range request"),
                    serde_json::Value::Null,
                )),
                (_, None) => out.info(|| finding(
                    ETCD_REVISION_BEHIND_SNAPSHOT,
                    Severity::Info,
                    "no snapshot revision to compare the live revision with",
                    None,
                    serde_json::Value::Null,
                )),
            }
        }
    }
}

pub mod request;

#[cfg(test)]
mod tests;
