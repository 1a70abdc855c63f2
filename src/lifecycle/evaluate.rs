//! Judge a lifecycle [`Configuration`] against a backup store's layout ([`StoreContext`]).
//!
//! Pure: no I/O and no clock; `now` is a parameter. The checks (ids are a contract):
//!
//! - [`CHECK_DELETES_CONTROL`] `lifecycle.deletes-control-files` (deny): an enabled expiration of
//!   current or noncurrent versions covers `<store>/control/`. A noncurrent-only expiration
//!   cannot remove the current control file (s3-lifecycle.md §1.8 rule 1), but it destroys the
//!   versions that are the only way to restore a control file lost by mistake, so it is denied
//!   too (issue #4); it is not reported for a bucket known never to have had versioning.
//! - [`CHECK_EXPIRES_SNAPSHOTS`] `lifecycle.expires-snapshots` (deny/warn): expirations that can
//!   leave no recent backup, expire backups before etcd-manager's own retention, or within a day
//!   of the backup interval; a warning when the rule only duplicates etcd-manager's retention.
//! - [`CHECK_ARCHIVES_SNAPSHOTS`] `lifecycle.archives-snapshots` (warn; deny if the newest backup
//!   would be archived): transitions to classes that need `RestoreObject` before a GET.
//! - [`CHECK_ARCHIVES_CONTROL`] `lifecycle.archives-control-files` (deny): control files moved to
//!   such a class make etcd-manager's reads fail.
//! - [`CHECK_UNKNOWN_AT_PLAN`] `lifecycle.unknown-at-plan` (warn): a rule touching the store has
//!   values known only after apply.
//!
//! Disabled rules are judged as if enabled and reported as `info` (latent risk: flipping
//! `Status` activates them).

use super::model::{
    add_saturating, ceil_to_midnight, Configuration, Match, ObjectFacts, Rule, Schedule,
    SizeKnowledge, Tag, Transition,
};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use serde::Serialize;

/// `lifecycle.deletes-control-files`.
pub const CHECK_DELETES_CONTROL: &str = "lifecycle.deletes-control-files";
/// `lifecycle.expires-snapshots`.
pub const CHECK_EXPIRES_SNAPSHOTS: &str = "lifecycle.expires-snapshots";
/// `lifecycle.archives-snapshots`.
pub const CHECK_ARCHIVES_SNAPSHOTS: &str = "lifecycle.archives-snapshots";
/// `lifecycle.archives-control-files`.
pub const CHECK_ARCHIVES_CONTROL: &str = "lifecycle.archives-control-files";
/// `lifecycle.unknown-at-plan`.
pub const CHECK_UNKNOWN_AT_PLAN: &str = "lifecycle.unknown-at-plan";

/// The etcd-manager control files every store holds (kops-etcd-manager.md §2.1).
pub const CONTROL_FILES: [&str; 2] = ["control/etcd-cluster-spec", "control/etcd-cluster-created"];
/// etcd-manager's backup data file name.
pub const DATA_FILE: &str = "etcd.backup.gz";
/// etcd-manager's backup meta (commit marker) file name.
pub const META_FILE: &str = "_etcd_backup.meta";
/// Objects below this size never transition under `all_storage_classes_128K` unless a rule has
/// its own size filter.
pub const MIN_TRANSITION_SIZE: u64 = 128 * 1024;

/// How backups are laid out under the store prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// kops / etcd-manager: `<store>/<RFC3339>-<seq>/{etcd.backup.gz,_etcd_backup.meta}` and
    /// `<store>/control/{etcd-cluster-spec,etcd-cluster-created}`.
    EtcdManager,
    /// Snapshot files somewhere under the prefix, no control files.
    Generic,
}

/// One object the caller knows about (from a listing), to refine ages, sizes and tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownObject {
    /// The full key (including the store prefix).
    pub key: String,
    pub size: Option<u64>,
    pub last_modified: Option<DateTime<Utc>>,
    /// `None` = not read (GetObjectTagging not called).
    pub tags: Option<Vec<Tag>>,
}

/// The backup store and what the tool already knows about it.
#[derive(Debug, Clone)]
pub struct StoreContext {
    /// Bucket name.
    pub bucket: String,
    /// The backup store prefix, normalised to end with `/` (e.g.
    /// `cluster.example.com/backups/etcd/main/`); `""` = bucket root.
    pub prefix: String,
    pub layout: Layout,
    /// etcd-manager `--backup-interval` (default 15 min; kops `manager.backupInterval`).
    pub backup_interval: std::time::Duration,
    /// Days etcd-manager keeps daily backups (kops `backupRetentionDays`, default 90).
    pub retention_days: u32,
    /// The policy's maximum age of the newest backup, if any.
    pub max_age: Option<std::time::Duration>,
    /// Objects known from a listing (may be empty).
    pub objects: Vec<KnownObject>,
    /// Bucket versioning: `Some(true)` enabled or suspended, `Some(false)` never enabled,
    /// `None` unknown.
    pub versioned: Option<bool>,
    /// Whether the bucket has an Intelligent-Tiering archive-tier configuration.
    pub intelligent_tiering_archive: bool,
}

impl StoreContext {
    /// A context with kops defaults: etcd-manager layout, 15-minute interval, 90-day retention,
    /// no max age, no known objects, versioning unknown. `prefix` gets a trailing `/` unless empty.
    pub fn new(bucket: &str, prefix: &str) -> StoreContext {
        StoreContext {
            bucket: bucket.to_string(),
            prefix: normalize_prefix(prefix),
            layout: Layout::EtcdManager,
            backup_interval: std::time::Duration::from_secs(15 * 60),
            retention_days: 90,
            max_age: None,
            objects: Vec::new(),
            versioned: None,
            intelligent_tiering_archive: false,
        }
    }
}

/// Strip leading `/`s and make a non-empty prefix end with `/`.
pub fn normalize_prefix(prefix: &str) -> String {
    let p = prefix.trim_start_matches('/');
    if p.is_empty() || p.ends_with('/') {
        p.to_string()
    } else {
        format!("{p}/")
    }
}

/// Finding severity: the gate's own (`Info < Warn < Deny`), so a lifecycle finding is a gate
/// finding without translation.
pub use crate::gate::Severity;

/// One finding about one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleFinding {
    /// The check id (one of the `CHECK_*` constants).
    pub check: &'static str,
    pub severity: Severity,
    /// The rule's `ID`, or `#<n>` (1-based position) when it has none.
    pub rule_id: String,
    /// The rule's filter in words (prefix, tags, size bounds).
    pub filter: String,
    /// What is affected: `control files`, `snapshots`, `rule values`. [`diff`] compares findings
    /// by check and subject.
    pub subject: String,
    /// Example keys the rule affects.
    pub example_keys: Vec<String>,
    /// When the effect happens (due time, 00:00 UTC), if it can be computed. May be in the past:
    /// then the action is due at the next lifecycle run.
    pub when: Option<DateTime<Utc>>,
    pub message: String,
    pub fix: String,
}

/// The most severe finding's severity, or `None` when there are none.
pub fn worst(findings: &[LifecycleFinding]) -> Option<Severity> {
    findings.iter().map(|f| f.severity).max()
}

/// Format a due time for messages.
fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d 00:00 UTC").to_string()
}

fn when_text(due: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match due {
        Some(d) if d <= now => format!(
            "Already due since {}: S3 acts at the next lifecycle run ({})",
            day(d),
            day(ceil_to_midnight(now))
        ),
        Some(d) => format!("Due {}", day(d)),
        None => "Due date unknown (the object's Last-Modified is not known)".to_string(),
    }
}

/// Parse the time of an etcd-manager backup folder name (`2024-03-22T10:15:07Z-000123`).
pub fn backup_time(folder: &str) -> Option<DateTime<Utc>> {
    let z = folder.find("Z-")?;
    let ts = folder.get(..z)?;
    NaiveDateTime::parse_from_str(ts, "%Y-%m-%dT%H:%M:%S")
        .ok()
        .map(|t| t.and_utc())
}

/// A known or typical object the rules are tried on.
#[derive(Debug, Clone)]
struct Probe {
    key: String,
    size: SizeKnowledge,
    tags: Option<Vec<Tag>>,
    written: Option<DateTime<Utc>>,
}

impl Probe {
    fn facts(&self) -> ObjectFacts<'_> {
        ObjectFacts {
            key: &self.key,
            size: self.size,
            // etcd-manager's S3 VFS writes no tags: unknown tags are taken as "none".
            tags: Some(self.tags.as_deref().unwrap_or(&[])),
        }
    }
}

struct Store<'a> {
    ctx: &'a StoreContext,
    control: Vec<Probe>,
    /// Data files of backups: the newest known, plus one written `now` (the next backup).
    data: Vec<Probe>,
    meta: Vec<Probe>,
    /// Probe written now (index into data/meta, always the last element).
    newest_known: Option<DateTime<Utc>>,
    tags_known: bool,
}

impl<'a> Store<'a> {
    fn new(ctx: &'a StoreContext, now: DateTime<Utc>) -> Store<'a> {
        let known = |key: &str| ctx.objects.iter().find(|o| o.key == key);
        let probe = |key: String, default: SizeKnowledge, written: Option<DateTime<Utc>>| {
            let k = known(&key);
            Probe {
                size: k.and_then(|o| o.size).map_or(default, SizeKnowledge::Exact),
                tags: k.and_then(|o| o.tags.clone()),
                written: k.and_then(|o| o.last_modified).or(written),
                key,
            }
        };
        let mut control = Vec::new();
        let mut data = Vec::new();
        let mut meta = Vec::new();
        let mut newest: Option<(DateTime<Utc>, String)> = None;
        match ctx.layout {
            Layout::EtcdManager => {
                let mut names: Vec<String> = CONTROL_FILES
                    .iter()
                    .map(|f| format!("{}{f}", ctx.prefix))
                    .collect();
                for o in &ctx.objects {
                    if o.key.starts_with(&format!("{}control/", ctx.prefix))
                        && !names.contains(&o.key)
                    {
                        names.push(o.key.clone());
                    }
                }
                // Control files are tens of bytes (`{"memberCount": 3, ...}`); 1 KiB bounds them.
                control = names
                    .into_iter()
                    .map(|k| probe(k, SizeKnowledge::Range(1, 1024), None))
                    .collect();
                for o in &ctx.objects {
                    let Some(rest) = o.key.strip_prefix(&ctx.prefix) else {
                        continue;
                    };
                    let Some((folder, file)) = rest.split_once('/') else {
                        continue;
                    };
                    if file != META_FILE && file != DATA_FILE {
                        continue;
                    }
                    if let Some(t) = backup_time(folder).or(o.last_modified) {
                        if newest.as_ref().is_none_or(|(n, _)| t > *n) {
                            newest = Some((t, folder.to_string()));
                        }
                    }
                }
                if let Some((t, folder)) = &newest {
                    data.push(probe(
                        format!("{}{folder}/{DATA_FILE}", ctx.prefix),
                        SizeKnowledge::Range(1024, u64::MAX),
                        Some(*t),
                    ));
                    meta.push(probe(
                        format!("{}{folder}/{META_FILE}", ctx.prefix),
                        SizeKnowledge::Range(16, 4096),
                        Some(*t),
                    ));
                }
                let folder = format!("{}-000001", now.format("%Y-%m-%dT%H:%M:%SZ"));
                data.push(probe(
                    format!("{}{folder}/{DATA_FILE}", ctx.prefix),
                    SizeKnowledge::Range(1024, u64::MAX),
                    Some(now),
                ));
                meta.push(probe(
                    format!("{}{folder}/{META_FILE}", ctx.prefix),
                    SizeKnowledge::Range(16, 4096),
                    Some(now),
                ));
            }
            Layout::Generic => {
                for o in &ctx.objects {
                    if o.key.starts_with(&ctx.prefix) {
                        if let Some(t) = o.last_modified {
                            if newest.as_ref().is_none_or(|(n, _)| t > *n) {
                                newest = Some((t, o.key.clone()));
                            }
                        }
                    }
                }
                if let Some((t, key)) = &newest {
                    data.push(probe(
                        key.clone(),
                        SizeKnowledge::Range(1024, u64::MAX),
                        Some(*t),
                    ));
                }
                data.push(probe(
                    format!(
                        "{}etcd-snapshot-{}.db",
                        ctx.prefix,
                        now.format("%Y%m%dT%H%M%SZ")
                    ),
                    SizeKnowledge::Range(1024, u64::MAX),
                    Some(now),
                ));
            }
        }
        let tags_known = ctx.objects.iter().any(|o| o.tags.is_some());
        Store {
            ctx,
            control,
            data,
            meta,
            newest_known: newest.map(|(t, _)| t),
            tags_known,
        }
    }
}

/// Match a rule against probes. Returns (matched probes, tag-only matches).
fn matching<'p>(rule: &Rule, probes: &'p [Probe]) -> (Vec<&'p Probe>, Vec<&'p Probe>) {
    let mut yes = Vec::new();
    let mut tags_only = Vec::new();
    for p in probes {
        match rule.filter.matches(&p.facts()) {
            Match::Yes | Match::MaybeBySize => yes.push(p),
            Match::OnlyWithTags => tags_only.push(p),
            Match::No => {}
        }
    }
    (yes, tags_only)
}

/// Whether a transition of `p` can happen given the minimum-size default.
fn transitions_at_size(rule: &Rule, config: &Configuration, p: &Probe) -> bool {
    let custom = rule.filter.size_greater_than.is_some() || rule.filter.size_less_than.is_some();
    let min128 = config
        .transition_default_minimum_object_size
        .as_deref()
        .is_none_or(|v| v != "varies_by_storage_class");
    if custom || !min128 {
        return true;
    }
    match p.size {
        SizeKnowledge::Exact(s) => s >= MIN_TRANSITION_SIZE,
        SizeKnowledge::Range(_, hi) => hi >= MIN_TRANSITION_SIZE,
    }
}

fn keys(ps: &[&Probe]) -> Vec<String> {
    ps.iter().map(|p| p.key.clone()).collect()
}

fn due(schedule: &Schedule, written: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (schedule, written) {
        (s, Some(w)) => Some(s.due(w)),
        (Schedule::Date(d), None) => Some(ceil_to_midnight(*d)),
        (Schedule::Days(_), None) => None,
    }
}

fn fix_control(store: &str) -> String {
    format!(
        "Remove the expiration from every rule that covers `{store}control/` and let etcd-manager prune its own backups (kops: `spec.etcdClusters[].manager.backupRetentionDays`, default 90). S3 filters have no exclusions, so no rule on `{store}` or any parent prefix can skip `control/`, and tags/size filters do not help (kops writes no tags; control files are tiny like `_etcd_backup.meta`). If a rule must stay, the only prefix that covers the backup folders but not `control/` is `{store}20` (folder names start with the year); a prefix cannot express \"older than the retention\" or \"keep the newest\", so that rule still removes the last snapshots whenever backups stop."
    )
}

fn fix_expires(store: &str, retention: u32) -> String {
    format!(
        "Delete the rule and set `spec.etcdClusters[].manager.backupRetentionDays` (kops >= 1.27, default 90): etcd-manager keeps every backup under 1 h, hourly ones for 7 days and daily ones for the retention, and never prunes the newest. If a lifecycle rule must stay, expire no sooner than {retention} days and scope it to `{store}20` so it cannot touch `control/`."
    )
}

fn fix_archive(store: &str) -> String {
    format!(
        "Do not transition `{store}` to GLACIER/DEEP_ARCHIVE (or Intelligent-Tiering archive tiers): use STANDARD_IA or GLACIER_IR, which stay readable, or archive copies in another prefix or bucket. S3 cannot exclude `etcd.backup.gz` by suffix, and a restore from an archived backup needs RestoreObject (hours) first."
    )
}

/// Judge `config` against the store. Pure: `now` is the evaluation time.
///
/// Returns findings ordered by rule, then check. Rules that do not touch the store produce
/// nothing. Disabled rules produce only `info` findings.
pub fn evaluate(
    config: &Configuration,
    ctx: &StoreContext,
    now: DateTime<Utc>,
) -> Vec<LifecycleFinding> {
    let store = Store::new(ctx, now);
    // First pass: when each active rule deletes control files (for the stop-backups chain).
    let mut control_deleted_at: Option<Option<DateTime<Utc>>> = None;
    for rule in config.rules.iter().filter(|r| r.status.is_active()) {
        if let Some(s) = rule.expiration.as_ref().and_then(|e| e.schedule) {
            let (hit, _) = matching(rule, &store.control);
            for p in hit {
                let d = due(&s, p.written);
                control_deleted_at = Some(match (control_deleted_at.flatten(), d) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                });
            }
        }
    }
    let mut out = Vec::new();
    for (i, rule) in config.rules.iter().enumerate() {
        let mut f = Vec::new();
        check_rule(rule, i, config, &store, now, control_deleted_at, &mut f);
        if !rule.status.is_active() {
            for x in &mut f {
                x.severity = Severity::Info;
                x.message = format!(
                    "Rule is disabled, so nothing happens today; enabling it would do this: {}",
                    x.message
                );
            }
        }
        out.extend(f);
    }
    out
}

/// One rule judged against the store: what it matches, and the findings it produces.
struct RuleCheck<'a> {
    rule: &'a Rule,
    config: &'a Configuration,
    store: &'a Store<'a>,
    now: DateTime<Utc>,
    /// When some active rule deletes the control files (for the stop-backups chain).
    control_deleted_at: Option<Option<DateTime<Utc>>>,
    rule_id: String,
    filter: String,
    control_hit: Vec<&'a Probe>,
    data_hit: Vec<&'a Probe>,
    meta_hit: Vec<&'a Probe>,
    /// Transitions to classes that need a restore before a read, earliest first.
    archive_transitions: Vec<&'a Transition>,
    out: Vec<LifecycleFinding>,
}

/// Every finding of one rule: values unknown at plan time, tag-only matches, control files,
/// snapshot expiration, snapshot archiving.
fn check_rule(
    rule: &Rule,
    index: usize,
    config: &Configuration,
    store: &Store<'_>,
    now: DateTime<Utc>,
    control_deleted_at: Option<Option<DateTime<Utc>>>,
    out: &mut Vec<LifecycleFinding>,
) {
    let (control_hit, control_tag_only) = matching(rule, &store.control);
    let (data_hit, data_tag_only) = matching(rule, &store.data);
    let (meta_hit, meta_tag_only) = matching(rule, &store.meta);
    let mut archive_transitions: Vec<&Transition> = rule
        .transitions
        .iter()
        .filter(|t| {
            t.storage_class
                .needs_restore(store.ctx.intelligent_tiering_archive)
        })
        .collect();
    archive_transitions.sort_by_key(|t| t.schedule.due(now));
    let mut c = RuleCheck {
        rule,
        config,
        store,
        now,
        control_deleted_at,
        rule_id: rule.label(index),
        filter: rule.filter.describe(),
        control_hit,
        data_hit,
        meta_hit,
        archive_transitions,
        out: Vec::new(),
    };
    c.unknown_at_plan();
    let tag_only: Vec<&Probe> = control_tag_only
        .iter()
        .chain(&data_tag_only)
        .chain(&meta_tag_only)
        .copied()
        .collect();
    c.tag_only(&tag_only, !control_tag_only.is_empty());
    c.control_files();
    c.control_archived();
    c.snapshot_expiration();
    c.snapshot_archiving();
    out.append(&mut c.out);
}

impl RuleCheck<'_> {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        check: &'static str,
        severity: Severity,
        subject: &str,
        example_keys: Vec<String>,
        when: Option<DateTime<Utc>>,
        message: String,
        fix: String,
    ) {
        self.out.push(LifecycleFinding {
            check,
            severity,
            rule_id: self.rule_id.clone(),
            filter: self.filter.clone(),
            subject: subject.to_string(),
            example_keys,
            when,
            message,
            fix,
        });
    }

    fn expiration(&self) -> Option<Schedule> {
        self.rule.expiration.as_ref().and_then(|e| e.schedule)
    }

    fn versioned_note(&self) -> &'static str {
        match self.store.ctx.versioned {
            Some(true) => " In this versioned bucket the expiration adds a delete marker; etcd-manager reads with a plain GET, so the file is just as missing (the data survives only as a noncurrent version).",
            Some(false) => "",
            None => " If the bucket is versioned, the delete marker it adds has the same effect on etcd-manager's plain GET.",
        }
    }

    /// Values known only after apply (Terraform plans).
    fn unknown_at_plan(&mut self) {
        let rule = self.rule;
        if rule.unknown_fields.is_empty()
            || (self.control_hit.is_empty()
                && self.data_hit.is_empty()
                && self.meta_hit.is_empty()
                && !rule.filter.is_whole_bucket())
        {
            return;
        }
        let (rule_id, filter) = (&self.rule_id, &self.filter);
        let message = format!(
            "Rule `{rule_id}` ({filter}) covers the backup store and has values known only after apply: {}. The judgement below uses the known values; unknown ones may make it worse.",
            rule.unknown_fields.join(", ")
        );
        self.push(
            CHECK_UNKNOWN_AT_PLAN,
            Severity::Warn,
            "rule values",
            keys(&self.control_hit),
            None,
            message,
            "Re-run the check on the applied configuration (`etcdguard lifecycle --live`), or set these values literally in the plan.".to_string(),
        );
    }

    /// Tag-only matches: etcd-manager writes no tags, so only an out-of-band tagger can expose
    /// them.
    fn tag_only(&mut self, tag_only: &[&Probe], control: bool) {
        let rule = self.rule;
        if tag_only.is_empty() || (self.expiration().is_none() && rule.transitions.is_empty()) {
            return;
        }
        let tags: Vec<String> = rule
            .filter
            .tags
            .iter()
            .map(|t| format!("{}={}", t.key, t.value))
            .collect();
        let (rule_id, filter) = (&self.rule_id, &self.filter);
        let message = format!(
            "Rule `{rule_id}` ({filter}) covers these keys by prefix but only acts on objects tagged {}. etcd-manager writes no tags, so it does not touch them{}; it would if anything tags them later.",
            tags.join(", "),
            if self.store.tags_known { " (their tags were read)" } else { " (tags were not read: check GetObjectTagging)" }
        );
        self.push(
            if control { CHECK_DELETES_CONTROL } else { CHECK_EXPIRES_SNAPSHOTS },
            Severity::Info,
            "tagged objects",
            keys(tag_only),
            None,
            message,
            "Keep tag-filtered rules off the backup store prefix, or make sure nothing tags etcd-manager objects.".to_string(),
        );
    }

    /// Control files expired (current versions, or noncurrent ones in a versioned bucket).
    fn control_files(&mut self) {
        let (rule, store, now) = (self.rule, self.store, self.now);
        let ctx = store.ctx;
        let prefix = ctx.prefix.as_str();
        let (rule_id, filter) = (self.rule_id.clone(), self.filter.clone());
        let exp = self.expiration();
        if let (Some(s), false) = (exp, self.control_hit.is_empty()) {
            let when = self
                .control_hit
                .iter()
                .filter_map(|p| due(&s, p.written))
                .min();
            let age_note = if when.is_none() {
                " etcd-manager writes `etcd-cluster-created` once, when the cluster is created, and kops rewrites `etcd-cluster-spec` only when it changes, so both are usually older than that and go at the next midnight."
            } else {
                ""
            };
            self.push(
                CHECK_DELETES_CONTROL,
                Severity::Deny,
                "control files",
                keys(&self.control_hit),
                when,
                format!(
                    "Rule `{rule_id}` ({filter}) expires current versions {} and also matches etcd-manager's control files: {}. {}.{age_note}{} Without `control/etcd-cluster-created` the etcd-manager leader decides there is no existing cluster: with the spec present it stops etcd on every member, moves the data to data-trashcan and seeds a NEW, EMPTY cluster; without `control/etcd-cluster-spec` it logs \"no cluster spec set - must seed new cluster\" and takes no more backups, even after the file is recreated, until the leader restarts (kops#16416, kopeio/etcd-manager#299, etcd#13522).",
                    s.describe(),
                    keys(&self.control_hit).join(", "),
                    when_text(when, now),
                    self.versioned_note(),
                ),
                fix_control(prefix),
            );
        } else if let (Some(n), false, true) = (
            &rule.noncurrent_expiration,
            self.control_hit.is_empty(),
            ctx.versioned != Some(false),
        ) {
            self.push(
                CHECK_DELETES_CONTROL,
                Severity::Deny,
                "control files (noncurrent versions)",
                keys(&self.control_hit),
                None,
                format!(
                    "Rule `{rule_id}` ({filter}) permanently deletes noncurrent versions of the control files {} days after they are superseded. The current files stay, so etcd-manager is unaffected today, but a control file deleted or overwritten by mistake (the kops#16416 path) can then no longer be recovered from bucket versioning, and etcd-manager would seed a new, empty cluster or stop taking backups.",
                    n.noncurrent_days
                ),
                format!("Scope noncurrent-version expiration away from `{prefix}control/` (e.g. to `{prefix}20`), or keep the noncurrent window long enough to notice a lost control file."),
            );
        }
    }

    /// Control files moved to a class that needs a restore: the earliest such transition.
    fn control_archived(&mut self) {
        let (rule, config, store, now) = (self.rule, self.config, self.store, self.now);
        let ctx = store.ctx;
        let prefix = ctx.prefix.as_str();
        let (rule_id, filter) = (self.rule_id.clone(), self.filter.clone());
        // The earliest transition to a class that needs a restore (for an object written now)
        // is the one reported.
        let control_archived: Vec<&Probe> = self
            .control_hit
            .iter()
            .copied()
            .filter(|p| transitions_at_size(rule, config, p))
            .collect();
        if let (Some(t), false) = (
            self.archive_transitions.first(),
            control_archived.is_empty(),
        ) {
            let when = control_archived
                .iter()
                .filter_map(|p| due(&t.schedule, p.written))
                .min();
            self.push(
                CHECK_ARCHIVES_CONTROL,
                Severity::Deny,
                "control files",
                keys(&control_archived),
                when,
                format!(
                    "Rule `{rule_id}` ({filter}) moves etcd-manager's control files to {} ({}; {}). The rule's size filter or the bucket's `varies_by_storage_class` default lets these tiny objects transition. A GET then fails with InvalidObjectState, which etcd-manager treats as a read error (not as \"missing\"): the leader's loop fails and no backups are taken until the files are restored.",
                    t.storage_class.name(),
                    t.schedule.describe(),
                    when_text(when, now)
                ),
                fix_control(prefix),
            );
        }
    }

    /// Backups expired: sooner than the retention, within a day of the interval, or the last
    /// ones once backups stop.
    fn snapshot_expiration(&mut self) {
        let (store, now) = (self.store, self.now);
        let ctx = store.ctx;
        let prefix = ctx.prefix.as_str();
        let (rule_id, filter) = (self.rule_id.clone(), self.filter.clone());
        let exp = self.expiration();
        if let (Some(s), false) = (exp, self.data_hit.is_empty() && self.meta_hit.is_empty()) {
            let new_probe_hit = |hits: &[&Probe]| hits.iter().any(|p| p.written == Some(now));
            let applies_to_new = new_probe_hit(&self.data_hit) || new_probe_hit(&self.meta_hit);
            let mut examples = keys(&self.data_hit);
            examples.extend(keys(&self.meta_hit));
            examples.dedup();
            let interval_plus_day = Duration::from_std(ctx.backup_interval)
                .unwrap_or(Duration::MAX)
                .checked_add(&Duration::days(1))
                .unwrap_or(Duration::MAX);
            let retention = ctx.retention_days;
            let what = match (self.data_hit.is_empty(), self.meta_hit.is_empty()) {
                _ if ctx.layout == Layout::Generic => "snapshot files".to_string(),
                (false, false) => "backups (`etcd.backup.gz` and `_etcd_backup.meta`)".to_string(),
                (false, true) => "`etcd.backup.gz` but not `_etcd_backup.meta`: the backups stay listed but can no longer be restored".to_string(),
                (true, false) => "`_etcd_backup.meta` but not `etcd.backup.gz`: etcd-manager lists a backup only when its meta file exists, so the backups vanish from `list-backups` and restore".to_string(),
                (true, true) => String::new(),
            };
            let newest_due = store.newest_known.map(|t| s.due(t));
            let mut reasons: Vec<String> = Vec::new();
            let mut severity = Severity::Warn;
            let mut when: Option<DateTime<Utc>> = None;
            if !applies_to_new {
                reasons.push(format!(
                    "It matches only the existing backups shown, not the ones etcd-manager writes from now on (its prefix pins a timestamp). {}.",
                    when_text(newest_due, now)
                ));
                when = newest_due;
            } else {
                match s {
                    Schedule::Date(d) => {
                        severity = Severity::Deny;
                        when = Some(ceil_to_midnight(d.max(now)));
                        reasons.push(format!(
                            "Its date {} {} every matching backup, including each new one, at the first 00:00 UTC after it is written, for as long as the rule is enabled: no backup survives more than a day, far below etcd-manager's retention of {retention} days.",
                            d.format("%Y-%m-%d"),
                            if d <= now { "is in the past, so S3 deletes" } else { "is in the future; from then on S3 deletes" }
                        ));
                    }
                    Schedule::Days(n) => {
                        let life = Duration::days(i64::from(n));
                        if life <= interval_plus_day {
                            severity = Severity::Deny;
                            reasons.push(format!(
                                "{n} day(s) is within a day of the backup interval ({}): the newest backup can be deleted before or soon after the next one is written, leaving no recent backup.",
                                humantime::format_duration(ctx.backup_interval)
                            ));
                        }
                        if n < retention {
                            severity = Severity::Deny;
                            reasons.push(format!(
                                "It expires backups after {n} days, sooner than etcd-manager's own daily retention of {retention} days (kops `backupRetentionDays`), so restore points the cluster is configured to keep are lost."
                            ));
                        }
                        if let Some(nd) = newest_due.filter(|d| *d <= now) {
                            severity = Severity::Deny;
                            reasons.push(format!(
                                "The newest existing backup is already due ({}): backups appear to have stopped, and this rule removes the last one.",
                                day(nd)
                            ));
                            when = Some(nd);
                        }
                        if let Some(stop) = self.control_deleted_at {
                            severity = Severity::Deny;
                            // Unknown stop time: estimate "today" and say so.
                            let gone =
                                Some(ceil_to_midnight(add_saturating(stop.unwrap_or(now), life)));
                            let fresh_gone = match (stop, ctx.max_age) {
                                (Some(t), Some(m)) => {
                                    Duration::from_std(m).ok().map(|m| add_saturating(t, m))
                                }
                                _ => None,
                            };
                            reasons.push(format!(
                                "A rule in this configuration also deletes the control files{}: etcd-manager then stops taking backups, and this rule deletes the last remaining backup {} days later{}{}.",
                                stop.map(|t| format!(" ({})", day(t))).unwrap_or_default(),
                                n,
                                gone.map(|g| if stop.is_some() {
                                    format!(", on {}", day(g))
                                } else {
                                    format!(" (if backups stop today: on {})", day(g))
                                })
                                .unwrap_or_default(),
                                fresh_gone.map(|f| format!("; no backup is younger than the policy's max age from {}", f.format("%Y-%m-%d %H:%M UTC"))).unwrap_or_default(),
                            ));
                            when = when.or(gone);
                        }
                        if severity == Severity::Warn {
                            reasons.push(format!(
                                "It keeps backups at least {n} days, not less than etcd-manager's retention of {retention} days, so it only duplicates what etcd-manager already does (kops recommends `backupRetentionDays`, not lifecycle rules), and it would still delete the last backups if backups ever stopped."
                            ));
                        }
                        if when.is_none() {
                            when = Some(s.due(now));
                        }
                    }
                }
            }
            self.push(
                CHECK_EXPIRES_SNAPSHOTS,
                severity,
                "snapshots",
                examples,
                when,
                format!(
                    "Rule `{rule_id}` ({filter}) expires {what}, {}. {}{}",
                    s.describe(),
                    reasons.join(" "),
                    if ctx.versioned == Some(true) { " (Versioned bucket: the expiration adds delete markers; etcd-manager no longer sees the backups.)" } else { "" }
                ),
                fix_expires(prefix, retention),
            );
        }
    }

    /// Backups moved to a class that needs a restore before a read.
    fn snapshot_archiving(&mut self) {
        let (rule, config, store, now) = (self.rule, self.config, self.store, self.now);
        let ctx = store.ctx;
        let prefix = ctx.prefix.as_str();
        let (rule_id, filter) = (self.rule_id.clone(), self.filter.clone());
        let data_archived: Vec<&Probe> = self
            .data_hit
            .iter()
            .copied()
            .filter(|p| transitions_at_size(rule, config, p))
            .collect();
        if let (Some(t), false) = (self.archive_transitions.first(), data_archived.is_empty()) {
            let meta_readable = self
                .meta_hit
                .iter()
                .all(|p| !transitions_at_size(rule, config, p));
            let interval_plus_day = Duration::from_std(ctx.backup_interval)
                .unwrap_or(Duration::MAX)
                .checked_add(&Duration::days(1))
                .unwrap_or(Duration::MAX);
            let newest_due = store.newest_known.map(|w| t.schedule.due(w));
            let applies_to_new = data_archived.iter().any(|p| p.written == Some(now));
            let mut severity = Severity::Warn;
            let mut reasons = Vec::new();
            let mut when = newest_due.or_else(|| applies_to_new.then(|| t.schedule.due(now)));
            if applies_to_new {
                let short = match t.schedule {
                    Schedule::Date(_) => true,
                    Schedule::Days(n) => Duration::days(i64::from(n)) <= interval_plus_day,
                };
                if short {
                    severity = Severity::Deny;
                    reasons.push("The schedule is within a day of the backup interval, so the newest backup can be the one archived.".to_string());
                }
                if self.control_deleted_at.is_some() {
                    severity = Severity::Deny;
                    reasons.push("A rule in this configuration also deletes the control files; once backups stop, the newest backup gets archived too.".to_string());
                }
            }
            if let Some(nd) = newest_due.filter(|d| *d <= now) {
                severity = Severity::Deny;
                reasons.push(format!(
                    "The newest existing backup is already due for archiving ({}).",
                    day(nd)
                ));
                when = Some(nd);
            }
            let meta_note = if meta_readable && !store.meta.is_empty() {
                " `_etcd_backup.meta` (a few hundred bytes) stays readable under the 128 KiB minimum transition size, so `etcd-manager-ctl list-backups` still shows the backup and the restore fails only when it downloads `etcd.backup.gz`."
            } else {
                ""
            };
            self.push(
                CHECK_ARCHIVES_SNAPSHOTS,
                severity,
                "snapshots",
                keys(&data_archived),
                when,
                format!(
                    "Rule `{rule_id}` ({filter}) transitions `etcd.backup.gz` to {} ({}): such objects cannot be read until a RestoreObject completes (GET fails with InvalidObjectState), so they are not restorable in an emergency.{meta_note} {}",
                    t.storage_class.name(),
                    t.schedule.describe(),
                    reasons.join(" ")
                )
                .trim_end()
                .to_string(),
                fix_archive(prefix),
            );
        }
    }
}

/// Report only what changing `current` into `proposed` makes worse: findings of the proposed
/// configuration with no counterpart (same check and subject) in the current one, with a higher
/// severity than any counterpart, or due at least a day earlier than every counterpart of the
/// same severity.
pub fn diff(
    current: &Configuration,
    proposed: &Configuration,
    ctx: &StoreContext,
    now: DateTime<Utc>,
) -> Vec<LifecycleFinding> {
    let cur = evaluate(current, ctx, now);
    evaluate(proposed, ctx, now)
        .into_iter()
        .filter(|f| {
            let same: Vec<&LifecycleFinding> = cur
                .iter()
                .filter(|c| c.check == f.check && c.subject == f.subject)
                .collect();
            let Some(max) = same.iter().map(|c| c.severity).max() else {
                return true;
            };
            if f.severity != max {
                return f.severity > max;
            }
            let earliest = same
                .iter()
                .filter(|c| c.severity == max)
                .filter_map(|c| c.when)
                .min();
            match (f.when, earliest) {
                (Some(a), Some(b)) => add_saturating(a, Duration::days(1)) <= b,
                _ => false,
            }
        })
        .collect()
}
