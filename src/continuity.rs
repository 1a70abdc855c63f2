//! Backup continuity (issue #22): is the newest backup still *this* cluster?
//!
//! Pure: no I/O, no clock. The store reads backups; this module says which ones to read and
//! what they show. What a snapshot tells about the cluster it came from (etcd's own code):
//! - **Revision** (`key` bucket) only grows in a running cluster, and `etcdutl snapshot restore`
//!   keeps it: the restored cluster continues from the backup's revision (`--bump-revision`
//!   only raises it). A newly seeded cluster starts again near 1.
//! - **Consistent index** (`meta/consistent_index`, the raft index last applied) only grows in
//!   a running cluster. A restore starts a new raft log: etcd 3.5+ `etcdutl`
//!   (`v3_snapshot.go: updateCIndex`) writes the new log's commit index (the member count), and
//!   etcd 3.4 `etcdctl snapshot restore` gives the same (seen here: 84 before, 5 after). A new
//!   cluster starts its raft log at 1 too. So a raft log that restarted while the revision
//!   continues is a restore; a revision that went back is a rollback (it continues an older
//!   backup) or a new cluster (it continues none).
//! - **Members** (`members` bucket): a restore deletes them and writes the `--initial-cluster`
//!   ones (`TrimMembershipFromBackend`; etcd 3.4's `etcdctl` sends its delete to the key space
//!   instead, so the new members are added beside the old ones); a member replacement changes
//!   them too, so a change of members alone is reported, never taken as a restore.
//!
//! Which backups are read ([`Walk`]): the newest valid one, the valid one before it and the
//! oldest listed backup of the last [`window`] (a new cluster backed up for hours continues
//! from one backup to the next: only a comparison further back shows it); a break between
//! those is narrowed down by bisection. At most [`MAX_READS`] reads. A later per-resource inventory can be added to [`Point`] and compared in
//! [`Walk::step`] without changing which backups are read.

use crate::snapshot::SnapshotReport;
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Serialize;

/// At most this many backups are read for the comparison (besides the newest).
pub const MAX_READS: usize = 8;
/// At most this many unusable backups are skipped looking for the valid one before the newest.
const MAX_SKIPPED: usize = 4;

/// How far back the newest backup is compared: the backups of the last 7 days (etcd-manager
/// keeps hourly backups that long; its listing covers the last 48 h).
pub fn window() -> Duration {
    Duration::days(7)
}

/// What one valid backup says about the cluster it holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    /// Backup name.
    pub name: String,
    /// Backup time.
    pub time: DateTime<Utc>,
    pub revision: i64,
    /// Keys whose newest revision is not a deletion.
    pub live_keys: Option<u64>,
    /// Entries in every bucket (`etcdctl snapshot status` totalKey).
    pub total_keys: Option<u64>,
    /// `meta/consistent_index`: the raft index last applied.
    pub consistent_index: Option<u64>,
    /// `meta/term` (etcd ≥ 3.5).
    pub term: Option<u64>,
    /// Member names, sorted.
    pub members: Vec<String>,
    /// Member IDs (hex), sorted: a member replaced under the same name gets a new one.
    pub member_ids: Vec<String>,
    /// `cluster/clusterVersion`, e.g. `3.5.0`.
    pub cluster_version: Option<String>,
    /// The etcd version the writer recorded beside the backup (etcd-manager meta).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etcd_version: Option<String>,
    /// Live objects per resource (storage prefix below `/registry/`), when known; compared,
    /// not printed.
    #[serde(skip)]
    pub objects: Vec<(String, u64)>,
}

impl Point {
    /// The point of a valid snapshot; `None` when it is not valid or has no revision.
    pub fn new(name: &str, time: DateTime<Utc>, r: &SnapshotReport) -> Option<Point> {
        if !r.valid {
            return None;
        }
        let mut members = r.members.clone();
        members.sort();
        members.dedup();
        let mut member_ids = r.member_ids.clone();
        member_ids.sort();
        member_ids.dedup();
        Some(Point {
            name: name.to_string(),
            time,
            revision: r.revision?,
            live_keys: r.live_keys,
            total_keys: r.total_key,
            consistent_index: r.consistent_index,
            term: r.term,
            members,
            member_ids,
            cluster_version: r.cluster_version.clone(),
            etcd_version: None,
            objects: r
                .inventory
                .iter()
                .flat_map(|i| &i.resources)
                .filter_map(|c| Some((c.resource.clone(), c.objects?)))
                .collect(),
        })
    }

    fn keys(&self) -> String {
        self.live_keys
            .map_or_else(|| "? keys".to_string(), |k| format!("{k} keys"))
    }

    fn at(&self) -> String {
        stamp(self.time)
    }
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// How a newer backup relates to an older one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// Same raft log, revision not lower.
    Continues,
    /// The revision continues but the raft log restarted: a restore.
    Restarted,
    /// The revision went back.
    Behind,
}

/// A resource counts as shrunk when it had at least this many objects and lost more than half.
const SHRINK_FROM: u64 = 20;
/// Resources whose objects expire by themselves (events live an hour): never a collapse.
const EXPIRING: &[&str] = &["events"];
/// At most this many shrunk resources are named in the message.
const SHRUNK_NAMED: usize = 10;

/// A resource whose live objects fell by more than half between two backups.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Shrunk {
    /// Storage prefix below `/registry/` (`pods`, `cilium.io/ciliumendpoints`).
    pub resource: String,
    pub before: u64,
    pub after: u64,
}

/// Resources of `p` with at least [`SHRINK_FROM`] objects that lost more than half in `n`,
/// largest loss first. Nothing when either backup's counts are unknown.
fn shrunk(p: &Point, n: &Point) -> Vec<Shrunk> {
    if p.objects.is_empty() || n.objects.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<Shrunk> = p
        .objects
        .iter()
        .filter(|(r, before)| *before >= SHRINK_FROM && !EXPIRING.contains(&r.as_str()))
        .filter_map(|(r, before)| {
            let before = *before;
            let after = n.objects.iter().find(|(x, _)| x == r).map_or(0, |x| x.1);
            (after.saturating_mul(2) < before).then(|| Shrunk {
                resource: r.clone(),
                before,
                after,
            })
        })
        .collect();
    out.sort_by_key(|s| std::cmp::Reverse(s.before - s.after));
    out
}

/// Backups this close in time may come from different members (k3s and RKE2 snapshot on every
/// server node at once): a follower's lag of up to 1% is no fall between them.
const SAME_TIME: i64 = 300;

/// `newer` is below `older` (beyond a follower's lag when `close` in time).
fn fell(older: impl Into<i128>, newer: impl Into<i128>, close: bool) -> bool {
    let (older, newer) = (older.into(), newer.into());
    newer < older && !(close && (older - newer) * 100 <= older)
}

fn link(older: &Point, newer: &Point) -> Link {
    let close = (newer.time - older.time).num_seconds().abs() <= SAME_TIME;
    if fell(older.revision, newer.revision, close) {
        Link::Behind
    } else if raft_restarted(older, newer, close) {
        Link::Restarted
    } else {
        Link::Continues
    }
}

fn raft_restarted(older: &Point, newer: &Point, close: bool) -> bool {
    let lower =
        |a: Option<u64>, b: Option<u64>| matches!((a, b), (Some(a), Some(b)) if fell(a, b, close));
    match (older.consistent_index, newer.consistent_index) {
        (Some(_), Some(_)) => {
            lower(older.consistent_index, newer.consistent_index) || lower(older.term, newer.term)
        }
        // Without the index (never seen: etcd has written it since 3.0), fall back to members.
        _ => members_changed(older, newer),
    }
}

/// `name,name (id,id)`: the members of a backup for a message.
fn with_ids(p: &Point) -> String {
    if p.member_ids.is_empty() {
        return p.members.join(",");
    }
    format!("{} ({})", p.members.join(","), p.member_ids.join(","))
}

fn members_changed(older: &Point, newer: &Point) -> bool {
    let changed = |a: &[String], b: &[String]| !a.is_empty() && !b.is_empty() && a != b;
    changed(&older.members, &newer.members) || changed(&older.member_ids, &newer.member_ids)
}

/// What the comparison found. Serialized kebab-case; the names are a contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// The newest backup continues the cluster of the backups before it.
    Continuous,
    /// Same cluster, but live keys fell by more than half between the last two backups.
    Collapsed,
    /// The cluster was restored from a backup (raft log restarted, revision continues).
    Restored,
    /// The revision went back to an older backup's: the cluster was restored from it.
    RolledBack,
    /// The newest backups hold a cluster that continues none of the backups before it.
    NewCluster,
    /// Fewer than two valid backups, or they could not be read.
    NotChecked,
}

impl State {
    /// Every state, for metrics.
    pub const ALL: [State; 6] = [
        State::Continuous,
        State::Collapsed,
        State::Restored,
        State::RolledBack,
        State::NewCluster,
        State::NotChecked,
    ];

    /// The serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Continuous => "continuous",
            State::Collapsed => "collapsed",
            State::Restored => "restored",
            State::RolledBack => "rolled-back",
            State::NewCluster => "new-cluster",
            State::NotChecked => "not-checked",
        }
    }
}

/// When the layout's retention deletes a backup.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Retention {
    /// About when the writer's pruning removes it.
    pub deleted_around: DateTime<Utc>,
    /// The rule, in words.
    pub rule: String,
}

/// The continuity of one backup series. JSON field names are a contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Continuity {
    pub state: State,
    /// One line saying what was found.
    pub message: String,
    /// The newest valid backup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest: Option<Point>,
    /// The valid backup before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<Point>,
    /// Restored, rolled back, new cluster: the newest backup read that holds the cluster from
    /// before the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Point>,
    /// The oldest backup read that holds the cluster from after the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Point>,
    /// Rolled back: the older backup the cluster continues from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Point>,
    /// The oldest backup compared (how far back continuity is known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compared_back_to: Option<String>,
    /// New cluster, etcd-manager layout: when `before` is deleted by etcd-manager's retention.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// Collapsed: the resources whose objects fell by more than half.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shrunk: Vec<Shrunk>,
    /// Backups read for the comparison (besides the newest).
    pub reads: usize,
}

impl Continuity {
    /// Not checked, with the reason.
    pub fn not_checked(reason: impl Into<String>) -> Continuity {
        Continuity {
            state: State::NotChecked,
            message: format!("not checked: {}", reason.into()),
            newest: None,
            previous: None,
            before: None,
            after: None,
            source: None,
            compared_back_to: None,
            retention: None,
            shrunk: Vec::new(),
            reads: 0,
        }
    }
}

#[derive(Debug, Clone)]
enum Slot {
    Unread,
    Unusable,
    Read(Box<Point>),
}

/// The next thing [`Walk::step`] needs.
#[derive(Debug)]
pub enum Step {
    /// Read (verify) the backup at this index of the listing and [`Walk::record`] it.
    Read(usize),
    /// The comparison is complete.
    Done(Box<Continuity>),
}

/// Which backups to read, and the verdict once enough are read. The listing is newest first
/// (index 0 is the newest listed backup).
#[derive(Debug, Clone)]
pub struct Walk {
    times: Vec<DateTime<Utc>>,
    slots: Vec<Slot>,
    newest: usize,
    now: DateTime<Utc>,
    reads: usize,
    max_reads: usize,
    /// etcd-manager layout: the listing covers backups from this time on (`None`: all).
    etcd_manager: Option<Option<DateTime<Utc>>>,
}

/// A bisection's bounds: `old` fails the predicate, `new` passes it (`old > new`); `next` is an
/// unread backup between them, if any.
struct Bounds {
    old: usize,
    new: usize,
    next: Option<usize>,
}

impl Walk {
    /// A walk over a listing (times newest first) whose valid backup at `newest` is `point`.
    pub fn new(times: Vec<DateTime<Utc>>, newest: usize, point: Point, now: DateTime<Utc>) -> Walk {
        let mut slots = vec![Slot::Unread; times.len()];
        if let Some(s) = slots.get_mut(newest) {
            *s = Slot::Read(Box::new(point));
        }
        Walk {
            times,
            slots,
            newest,
            now,
            reads: 0,
            max_reads: MAX_READS,
            etcd_manager: None,
        }
    }

    /// Say when etcd-manager's retention deletes the last backup of a previous cluster;
    /// `listed_since` is where the listing starts (`None`: the whole store).
    pub fn with_etcd_manager_retention(mut self, listed_since: Option<DateTime<Utc>>) -> Walk {
        self.etcd_manager = Some(listed_since);
        self
    }

    /// Record what reading backup `i` gave (`None`: not valid, or unreadable). `read` is false
    /// for a backup that was already verified for another reason (it costs nothing).
    pub fn record(&mut self, i: usize, point: Option<Point>, read: bool) {
        if let Some(s) = self.slots.get_mut(i) {
            *s = point.map_or(Slot::Unusable, |p| Slot::Read(Box::new(p)));
        }
        if read {
            self.reads += 1;
        }
    }

    /// Whether backup `i` is still unread.
    pub fn unread(&self, i: usize) -> bool {
        matches!(self.slots.get(i), Some(Slot::Unread))
    }

    fn point(&self, i: usize) -> Option<&Point> {
        match self.slots.get(i) {
            Some(Slot::Read(p)) => Some(&**p),
            _ => None,
        }
    }

    fn budget(&self) -> bool {
        self.reads < self.max_reads
    }

    /// The oldest listed backup within [`window`] of the newest valid one.
    fn window_end(&self, newest: &Point) -> usize {
        let since = newest.time - window();
        self.times
            .iter()
            .rposition(|t| *t >= since)
            .unwrap_or(self.newest)
    }

    /// Bisect between `old` (fails `pass`) and `new` (passes it) over what has been read.
    fn bisect(&self, old: usize, new: usize, pass: impl Fn(&Point) -> bool) -> Bounds {
        let new = (new..old)
            .filter(|&i| self.point(i).is_some_and(&pass))
            .max()
            .unwrap_or(new);
        let old = (new + 1..=old)
            .find(|&i| self.point(i).is_some_and(|p| !pass(p)))
            .unwrap_or(old);
        let between: Vec<usize> = (new + 1..old).filter(|&i| self.unread(i)).collect();
        let next = between.get(between.len() / 2).copied();
        Bounds { old, new, next }
    }

    /// The next backup to read, or the verdict.
    pub fn step(&self) -> Step {
        let Some(n) = self.point(self.newest) else {
            return done(Continuity::not_checked("no valid backup"));
        };
        // The valid backup before the newest.
        let mut skipped = 0;
        let mut previous = None;
        for (i, slot) in self.slots.iter().enumerate().skip(self.newest + 1) {
            match slot {
                Slot::Read(p) => {
                    previous = Some((i, &**p));
                    break;
                }
                Slot::Unusable => {
                    skipped += 1;
                    if skipped >= MAX_SKIPPED {
                        break;
                    }
                }
                Slot::Unread if self.budget() => return Step::Read(i),
                Slot::Unread => break,
            }
        }
        let Some((pi, p)) = previous else {
            let mut c = Continuity::not_checked(if skipped > 0 {
                format!(
                    "no valid backup among the {skipped} before the newest ({}); fewer than two valid backups to compare",
                    n.name
                )
            } else {
                format!("fewer than two valid backups (only {} is valid)", n.name)
            });
            c.newest = Some(n.clone());
            c.reads = self.reads;
            return done(c);
        };
        match link(p, n) {
            Link::Behind => return self.behind(pi, self.newest, n),
            Link::Restarted => return done(self.restored(p, n, n)),
            Link::Continues => {}
        }
        // The oldest backup of the window.
        let end = self.window_end(n);
        if end <= pi {
            return done(self.continuous(n, p, p));
        }
        let anchor = (pi + 1..=end).rev().find(|&i| self.point(i).is_some());
        let Some(ai) = anchor else {
            return match (pi + 1..=end).rev().find(|&i| self.unread(i)) {
                Some(i) if self.budget() => Step::Read(i),
                _ => done(self.continuous(n, p, p)),
            };
        };
        let a = self.point(ai).unwrap_or(p);
        if link(a, p) == Link::Continues {
            return done(self.continuous(n, p, a));
        }
        // A break between the anchor and the previous backup: find it.
        let b = self.bisect(ai, pi, |c| link(c, p) == Link::Continues);
        if let (Some(i), true) = (b.next, self.budget()) {
            return Step::Read(i);
        }
        let (Some(x), Some(y)) = (self.point(b.old), self.point(b.new)) else {
            return done(self.continuous(n, p, p));
        };
        match link(x, y) {
            Link::Behind => self.behind(b.old, b.new, n),
            _ => done(self.restored(x, y, n)),
        }
    }

    /// The revision went back between `before` (older) and `after`: a rollback when it continues
    /// an older backup of the window, else a new cluster.
    fn behind(&self, before: usize, after: usize, n: &Point) -> Step {
        let (Some(x), Some(y)) = (self.point(before), self.point(after)) else {
            return done(Continuity::not_checked("internal: unread bounds"));
        };
        let end = self.window_end(n);
        let oldest = (before + 1..=end).rev().find(|&i| self.point(i).is_some());
        if oldest.is_none() {
            if let Some(i) = (before + 1..=end).rev().find(|&i| self.unread(i)) {
                if self.budget() {
                    return Step::Read(i);
                }
            }
        }
        let source = oldest.filter(|&i| self.point(i).is_some_and(|a| a.revision <= y.revision));
        let Some(si) = source else {
            let compared = oldest.and_then(|i| self.point(i)).unwrap_or(x);
            return done(self.new_cluster(x, y, n, compared));
        };
        let b = self.bisect(si, before, |c| c.revision > y.revision);
        if let (Some(i), true) = (b.next, self.budget()) {
            return Step::Read(i);
        }
        let s = self.point(b.old).unwrap_or(x);
        done(self.rolled_back(x, y, s, n))
    }

    fn base(&self, state: State, message: String, n: &Point) -> Continuity {
        let previous = (self.newest + 1..self.slots.len()).find_map(|i| self.point(i));
        Continuity {
            state,
            message,
            newest: Some(n.clone()),
            previous: previous.cloned(),
            before: None,
            after: None,
            source: None,
            compared_back_to: None,
            retention: None,
            shrunk: Vec::new(),
            reads: self.reads,
        }
    }

    fn continuous(&self, n: &Point, p: &Point, back: &Point) -> Continuity {
        let members = if members_changed(back, n) {
            format!(
                "; members changed from {} to {} (a member was replaced)",
                with_ids(back),
                with_ids(n)
            )
        } else {
            String::new()
        };
        let collapse = match (p.live_keys, n.live_keys) {
            (Some(before), Some(now)) if now.saturating_mul(2) < before => Some((before, now)),
            _ => None,
        };
        // The snapshot pass leaves live keys unknown for a snapshot taken during a compaction:
        // say that the collapse test did not run rather than pass it silently.
        let unknown: Vec<&str> = [p, n]
            .iter()
            .filter(|x| x.live_keys.is_none())
            .map(|x| x.name.as_str())
            .collect();
        let members = if unknown.is_empty() {
            members
        } else {
            format!(
                "{members}; collapse not checked: live keys unknown in {} (a compaction was under way when it was taken)",
                unknown.join(", ")
            )
        };
        let shrunk = shrunk(p, n);
        let named = if shrunk.is_empty() {
            String::new()
        } else {
            let mut s: Vec<String> = shrunk
                .iter()
                .take(SHRUNK_NAMED)
                .map(|s| format!("{} {} → {}", s.resource, s.before, s.after))
                .collect();
            if shrunk.len() > SHRUNK_NAMED {
                s.push(format!("and {} more", shrunk.len() - SHRUNK_NAMED));
            }
            format!("; shrank: {}", s.join(", "))
        };
        let mut c = match collapse {
            Some((before, now)) => self.base(
                State::Collapsed,
                format!(
                    "live keys fell from {before} in {} to {now} in the newest backup {} (revision {} → {}) without a cluster change: most data was deleted{named}{members}",
                    p.name, n.name, p.revision, n.revision
                ),
                n,
            ),
            None if !shrunk.is_empty() => self.base(
                State::Collapsed,
                format!(
                    "objects of {} resource(s) fell by more than half between {} and the newest backup {} (revision {} → {}) without a cluster change{named}{members}",
                    shrunk.len(), p.name, n.name, p.revision, n.revision
                ),
                n,
            ),
            None => self.base(
                State::Continuous,
                format!(
                    "the newest backup {} continues the cluster of the backups back to {} ({}; revision {} → {}){members}",
                    n.name,
                    back.name,
                    back.at(),
                    back.revision,
                    n.revision
                ),
                n,
            ),
        };
        c.compared_back_to = Some(back.name.clone());
        if c.state == State::Collapsed {
            c.shrunk = shrunk;
        }
        c
    }

    fn restored(&self, x: &Point, y: &Point, n: &Point) -> Continuity {
        let members = if x.members != y.members {
            format!(
                "; members {} → {}",
                x.members.join(","),
                y.members.join(",")
            )
        } else {
            String::new()
        };
        let mut c = self.base(
            State::Restored,
            format!(
                "the cluster was RESTORED between {} and {}: its raft log restarted (consistent index {} → {}) while the revision continues ({} → {}){members}; it was restored from {} or a later state",
                x.name,
                y.name,
                opt(x.consistent_index),
                opt(y.consistent_index),
                x.revision,
                y.revision,
                x.name
            ),
            n,
        );
        c.before = Some(x.clone());
        c.after = Some(y.clone());
        c.compared_back_to = Some(x.name.clone());
        c
    }

    fn rolled_back(&self, x: &Point, y: &Point, s: &Point, n: &Point) -> Continuity {
        let mut c = self.base(
            State::RolledBack,
            format!(
                "the cluster was ROLLED BACK between {} and {}: the revision went from {} back to {}, continuing from backup {} (revision {}, {}); changes after it up to {} are only in the older backups",
                x.name, y.name, x.revision, y.revision, s.name, s.revision, s.at(), x.name
            ),
            n,
        );
        c.before = Some(x.clone());
        c.after = Some(y.clone());
        c.source = Some(s.clone());
        c.compared_back_to = Some(s.name.clone());
        c
    }

    fn new_cluster(&self, x: &Point, y: &Point, n: &Point, compared: &Point) -> Continuity {
        let retention = self
            .etcd_manager
            .map(|since| etcd_manager_retention(x.time, &self.times, since));
        let deleted = retention.as_ref().map_or_else(String::new, |r| {
            let when = if r.deleted_around <= self.now {
                "now".to_string()
            } else {
                format!(
                    "around {} (in {})",
                    stamp(r.deleted_around),
                    crate::gate::human_age(r.deleted_around - self.now)
                )
            };
            format!(
                "; etcd-manager's retention deletes {} {when}: {}",
                x.name, r.rule
            )
        });
        let mut c = self.base(
            State::NewCluster,
            format!(
                "the newest backups hold a NEW cluster seeded around {} (revision {}, {}; first backed up in {}); the last backup of the previous cluster is {} (revision {}, {}, age {}){deleted}; no backup compared back to {} has a revision that low (a restore of an older backup would look the same)",
                y.at(),
                n.revision,
                n.keys(),
                y.name,
                x.name,
                x.revision,
                x.keys(),
                crate::gate::human_age(self.now - x.time),
                compared.name,
            ),
            n,
        );
        c.before = Some(x.clone());
        c.after = Some(y.clone());
        c.compared_back_to = Some(compared.name.clone());
        c.retention = retention;
        c
    }
}

fn done(c: Continuity) -> Step {
    Step::Done(Box::new(c))
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "?".to_string(), |v| v.to_string())
}

/// When etcd-manager's pruning (`pkg/backupcontroller/cleanup.go`) deletes the backup taken at
/// `x`, given every listed backup time: backups under 1 h are kept; under the hourly retention
/// (7 days) only the oldest of each hour; under the daily retention only the oldest of each UTC
/// day (kops sets 90 days, `backupRetentionDays`; etcd-manager's own default is 2 years). It
/// runs at most hourly, after a successful backup. When the listing starts after the start of
/// `x`'s day, it is not known whether `x` is the day's oldest: the earlier deletion is said.
pub fn etcd_manager_retention(
    x: DateTime<Utc>,
    times: &[DateTime<Utc>],
    listed_since: Option<DateTime<Utc>>,
) -> Retention {
    let trunc = |t: DateTime<Utc>, d: Duration| t.duration_trunc(d).unwrap_or(t);
    let (hour, day) = (trunc(x, Duration::hours(1)), trunc(x, Duration::days(1)));
    let earlier = |span: Duration, start: DateTime<Utc>| {
        times.iter().any(|t| *t < x && trunc(*t, span) == start)
    };
    if earlier(Duration::hours(1), hour) {
        return Retention {
            deleted_around: x + Duration::hours(1),
            rule: "once a backup is 1 h old only the oldest of each hour is kept, and an earlier backup of its hour exists".into(),
        };
    }
    let day_listed = listed_since.is_none_or(|s| s <= day);
    if earlier(Duration::days(1), day) || !day_listed {
        return Retention {
            deleted_around: x + Duration::days(7),
            rule: format!(
                "after 7 days (hourly retention) only the oldest backup of each UTC day is kept, and {}",
                if day_listed {
                    "an earlier backup of its day exists"
                } else {
                    "the listing does not reach the start of its day (assumed not the first)"
                }
            ),
        };
    }
    Retention {
        deleted_around: x + Duration::days(90),
        rule: "it is its day's oldest backup, kept for the daily retention: 90 days by kops' default backupRetentionDays (2 years with etcd-manager's own default)".into(),
    }
}

/// The live cluster as the continuity check needs it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveCluster {
    pub revision: i64,
    /// The highest raft index reported.
    pub raft_index: Option<u64>,
    /// Member names, sorted.
    pub members: Vec<String>,
}

/// How the live cluster relates to the newest backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LiveState {
    /// Same raft log, revision not lower.
    Continues,
    /// Restored after the newest backup (raft log restarted, revision continues).
    Restored,
    /// Its revision continues an older backup's: restored from it.
    RolledBack,
    /// Its revision is below every backup read: not the cluster in the backups.
    NewCluster,
}

/// The live cluster compared with the backups.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveContinuity {
    pub state: LiveState,
    pub message: String,
    /// The newest valid backup compared with.
    pub backup: String,
    /// Rolled back: the backup whose revision the live cluster continues.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Compare the live cluster with the backups a [`Continuity`] read (`None` when it has no
/// newest backup).
pub fn compare_live(c: &Continuity, live: &LiveCluster) -> Option<LiveContinuity> {
    let n = c.newest.as_ref()?;
    let members = if !live.members.is_empty() && !n.members.is_empty() && live.members != n.members
    {
        format!(
            "; members {} in the backup, {} live",
            n.members.join(","),
            live.members.join(",")
        )
    } else {
        String::new()
    };
    let out = |state, message: String, source: Option<&Point>| LiveContinuity {
        state,
        message,
        backup: n.name.clone(),
        source: source.map(|s| s.name.clone()),
    };
    if live.revision >= n.revision {
        let restarted =
            matches!((n.consistent_index, live.raft_index), (Some(ci), Some(ri)) if ri < ci);
        return Some(if restarted {
            out(
                LiveState::Restored,
                format!(
                    "the live cluster was restored after the newest backup {}: its raft log restarted (index {} < the backup's {}) while the revision continues ({} → {}){members}",
                    n.name,
                    opt(live.raft_index),
                    opt(n.consistent_index),
                    n.revision,
                    live.revision
                ),
                None,
            )
        } else {
            out(
                LiveState::Continues,
                format!(
                    "the live cluster continues the newest backup {} (revision {} → {}){members}",
                    n.name, n.revision, live.revision
                ),
                None,
            )
        });
    }
    let read = [&c.newest, &c.previous, &c.before, &c.after, &c.source];
    let source = read
        .into_iter()
        .flatten()
        .filter(|p| p.revision <= live.revision)
        .max_by_key(|p| p.revision);
    Some(match source {
        Some(s) => out(
            LiveState::RolledBack,
            format!(
                "the live cluster was ROLLED BACK: its revision {} is below the newest backup {}'s ({}) and continues from backup {} (revision {}); changes after it are only in the backups{members}",
                live.revision, n.name, n.revision, s.name, s.revision
            ),
            Some(s),
        ),
        None => out(
            LiveState::NewCluster,
            format!(
                "the live cluster is NOT the cluster in the backups: its revision {} (raft index {}) is below every backup read (the newest, {}, has revision {}, {}): a new cluster seeded after the backups, or restored from something older{members}",
                live.revision,
                opt(live.raft_index),
                n.name,
                n.revision,
                n.keys()
            ),
            None,
        ),
    })
}

/// `major.minor` of an etcd version as written anywhere (`3.5.9`, `v3.5.9`, `3.5.9-0`,
/// `3.5.0`).
pub fn minor(v: &str) -> Option<(u64, u64)> {
    let mut parts = v.trim().trim_start_matches('v').split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Whether the newest backup fits the etcd version running or proposed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionFit {
    /// The backup is from an older etcd minor than the one named.
    pub older: bool,
    pub message: String,
    /// The backup's version (cluster version, else the writer's note).
    pub backup_version: String,
    /// The newest version named, and who names it (`the live etcd runs`, `the change sets`).
    pub running: String,
    pub running_source: String,
}

/// Compare the newest backup's version with the versions named (`(source, version)`); `None`
/// when either side names none that parses.
pub fn version_fit(newest: &Point, named: &[(String, String)]) -> Option<VersionFit> {
    let backup = newest
        .cluster_version
        .as_deref()
        .filter(|v| minor(v).is_some())
        .or(newest
            .etcd_version
            .as_deref()
            .filter(|v| minor(v).is_some()))?;
    let b = minor(backup)?;
    let (source, running, r) = named
        .iter()
        .filter_map(|(s, v)| minor(v).map(|m| (s, v, m)))
        .max_by_key(|(_, _, m)| *m)?;
    let older = b < r;
    let message = if older {
        format!(
            "the newest valid backup {} is from etcd {}.{} (cluster version {backup}) but {source} etcd {running}: restoring it also rolls the etcd upgrade back",
            newest.name, b.0, b.1
        )
    } else {
        format!(
            "the newest valid backup {} (etcd {}.{}) fits etcd {running} ({source} it)",
            newest.name, b.0, b.1
        )
    };
    Some(VersionFit {
        older,
        message,
        backup_version: backup.to_string(),
        running: running.clone(),
        running_source: source.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn pt(name: &str, time: &str, rev: i64, ci: u64, keys: u64) -> Point {
        Point {
            name: name.into(),
            time: t(time),
            revision: rev,
            live_keys: Some(keys),
            total_keys: Some(keys + 10),
            consistent_index: Some(ci),
            term: None,
            members: vec!["etcd-a".into()],
            member_ids: vec!["8e9e05c52164694d".into()],
            cluster_version: Some("3.5.0".into()),
            etcd_version: None,
            objects: Vec::new(),
        }
    }

    /// Run a walk over `points` (newest first; `None`: an invalid backup) to its verdict.
    fn run(points: &[Option<Point>], now: &str) -> Continuity {
        run_em(points, now, false).0
    }

    fn run_em(points: &[Option<Point>], now: &str, em: bool) -> (Continuity, Vec<usize>) {
        let times: Vec<_> = points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                p.as_ref().map_or_else(
                    || t("2026-12-01T00:00:00Z") - Duration::minutes(i as i64),
                    |p| p.time,
                )
            })
            .collect();
        let newest = points.iter().position(Option::is_some).unwrap();
        let mut w = Walk::new(times, newest, points[newest].clone().unwrap(), t(now));
        if em {
            w = w.with_etcd_manager_retention(None);
        }
        let mut order = Vec::new();
        loop {
            match w.step() {
                Step::Read(i) => {
                    assert!(w.unread(i), "read {i} twice");
                    order.push(i);
                    w.record(i, points[i].clone(), true);
                }
                Step::Done(c) => return (*c, order),
            }
        }
    }

    /// Hourly backups of one cluster: revision +1000 and index +1100 per hour from `rev0`.
    fn hourly(name: &str, from: &str, hours: i64, rev0: i64, ci0: u64, keys: u64) -> Vec<Point> {
        (0..hours)
            .rev()
            .map(|h| {
                let time = t(from) + Duration::hours(h);
                let mut p = pt(
                    &format!("{name}{h:02}"),
                    &stamp(time),
                    rev0 + 1000 * h,
                    ci0 + 1100 * h as u64,
                    keys,
                );
                p.time = time;
                p
            })
            .collect()
    }

    #[test]
    fn one_valid_backup_is_not_checked() {
        let c = run(
            &[Some(pt("a", "2026-12-01T10:00:00Z", 5, 9, 3)), None],
            "2026-12-01T10:00:00Z",
        );
        assert_eq!(c.state, State::NotChecked);
        assert!(
            c.message.contains("fewer than two valid backups"),
            "{}",
            c.message
        );
    }

    #[test]
    fn unknown_live_keys_say_the_collapse_test_did_not_run() {
        let mut newest = pt("n", "2026-12-01T11:00:00Z", 90, 60, 1);
        newest.live_keys = None;
        let c = run(
            &[
                Some(newest),
                Some(pt("p", "2026-12-01T10:00:00Z", 80, 50, 1000)),
            ],
            "2026-12-01T11:00:00Z",
        );
        assert_eq!(c.state, State::Continuous, "{}", c.message);
        assert!(
            c.message
                .contains("collapse not checked: live keys unknown in n"),
            "{}",
            c.message
        );
    }

    #[test]
    fn a_steady_series_is_compared_with_the_oldest_backup_of_the_window() {
        let pts: Vec<_> = hourly("b", "2026-12-01T00:00:00Z", 30, 10, 12, 500)
            .into_iter()
            .map(Some)
            .collect();
        let (c, order) = run_em(&pts, "2026-12-02T06:00:00Z", true);
        assert_eq!(c.state, State::Continuous, "{}", c.message);
        assert_eq!(order, vec![1, 29]);
        assert_eq!(c.compared_back_to.as_deref(), Some("b00"));
    }

    #[test]
    fn a_new_cluster_right_after_the_previous_backup_is_denied_with_both_named() {
        let mut pts: Vec<Option<Point>> = vec![Some(pt("new", "2026-12-01T10:15:00Z", 40, 45, 12))];
        pts.extend(
            hourly("old", "2026-12-01T00:00:00Z", 11, 500_000, 600_000, 3000)
                .into_iter()
                .map(Some),
        );
        let (c, _) = run_em(&pts, "2026-12-01T10:30:00Z", true);
        assert_eq!(c.state, State::NewCluster, "{}", c.message);
        assert!(
            c.message.starts_with("the newest backups hold a NEW cluster seeded around 2026-12-01T10:15:00Z (revision 40, 12 keys; first backed up in new); the last backup of the previous cluster is old10 (revision 510000, 3000 keys, age 30m)"),
            "{}",
            c.message
        );
        assert_eq!(c.before.as_ref().unwrap().name, "old10");
        // old10 is the only backup of its hour: kept 7 days.
        let r = c.retention.unwrap();
        assert_eq!(r.deleted_around, t("2026-12-08T10:00:00Z"));
    }

    #[test]
    fn a_new_cluster_a_day_ago_is_found_by_bisection() {
        // The old cluster backed up hourly until 09:00 on day 1, the new one from 10:00.
        let mut pts: Vec<Option<Point>> = hourly("new", "2026-12-01T10:00:00Z", 20, 3, 4, 50)
            .into_iter()
            .map(Some)
            .collect();
        pts.extend(
            hourly("old", "2026-11-30T12:00:00Z", 22, 900_000, 950_000, 4000)
                .into_iter()
                .map(Some),
        );
        let (c, order) = run_em(&pts, "2026-12-02T06:00:00Z", true);
        assert_eq!(c.state, State::NewCluster, "{}", c.message);
        assert_eq!(c.before.as_ref().unwrap().name, "old21");
        assert_eq!(c.after.as_ref().unwrap().name, "new00");
        assert!(order.len() <= MAX_READS, "{order:?}");
        assert!(
            c.message.contains(
                "seeded around 2026-12-01T10:00:00Z (revision 19003, 50 keys; first backed up in new00)"
            ),
            "{}",
            c.message
        );
    }

    #[test]
    fn a_restore_continues_the_revision_with_a_new_raft_log() {
        let mut restored = pt("r", "2026-12-01T11:00:00Z", 510_050, 6, 3000);
        restored.members = vec!["etcd-b".into()];
        let mut pts = vec![Some(restored)];
        pts.extend(
            hourly("a", "2026-12-01T00:00:00Z", 11, 500_000, 600_000, 3000)
                .into_iter()
                .map(Some),
        );
        let c = run(&pts, "2026-12-01T11:30:00Z");
        assert_eq!(c.state, State::Restored, "{}", c.message);
        assert_eq!(c.before.as_ref().unwrap().name, "a10");
        assert!(
            c.message.contains("members etcd-a → etcd-b"),
            "{}",
            c.message
        );
    }

    #[test]
    fn a_rollback_names_the_backup_it_came_from() {
        // Restored at 11:00 from a05 (revision 505000), then backed up at 11:30.
        let mut pts = vec![Some(pt("r", "2026-12-01T11:30:00Z", 505_020, 8, 3000))];
        pts.extend(
            hourly("a", "2026-12-01T00:00:00Z", 11, 500_000, 600_000, 3000)
                .into_iter()
                .map(Some),
        );
        let c = run(&pts, "2026-12-01T12:00:00Z");
        assert_eq!(c.state, State::RolledBack, "{}", c.message);
        assert_eq!(c.source.as_ref().unwrap().name, "a05");
        assert_eq!(c.before.as_ref().unwrap().name, "a10");
    }

    #[test]
    fn a_collapse_warns() {
        let pts = vec![
            Some(pt("n", "2026-12-01T11:00:00Z", 6000, 6100, 40)),
            Some(pt("p", "2026-12-01T10:00:00Z", 5000, 5100, 3000)),
        ];
        let c = run(&pts, "2026-12-01T11:00:00Z");
        assert_eq!(c.state, State::Collapsed, "{}", c.message);
        assert!(
            c.message.starts_with("live keys fell from 3000 in p to 40"),
            "{}",
            c.message
        );
    }

    #[test]
    fn a_resource_that_lost_most_objects_is_a_collapse_named_by_kind() {
        let objects = |pods, secrets, events| {
            vec![
                ("events".to_string(), events),
                ("pods".to_string(), pods),
                ("secrets".to_string(), secrets),
            ]
        };
        let mut n = pt("n", "2026-12-01T11:00:00Z", 6000, 6100, 2900);
        n.objects = objects(30, 400, 5);
        let mut p = pt("p", "2026-12-01T10:00:00Z", 5000, 5100, 3000);
        p.objects = objects(1200, 410, 900);
        let c = run(&[Some(n.clone()), Some(p.clone())], "2026-12-01T11:00:00Z");
        assert_eq!(c.state, State::Collapsed, "{}", c.message);
        assert_eq!(
            c.shrunk,
            [Shrunk {
                resource: "pods".into(),
                before: 1200,
                after: 30
            }]
        );
        assert!(
            c.message.contains("shrank: pods 1200 → 30"),
            "{}",
            c.message
        );
        // Events expire by themselves; a small resource losing half is no collapse either.
        n.objects = objects(1200, 4, 5);
        p.objects = objects(1200, 12, 900);
        let c = run(&[Some(n), Some(p)], "2026-12-01T11:00:00Z");
        assert_eq!(c.state, State::Continuous, "{}", c.message);
    }

    #[test]
    fn invalid_backups_are_skipped_and_a_member_replacement_is_no_restore() {
        let mut n = pt("n", "2026-12-01T11:00:00Z", 6000, 6100, 3000);
        n.members = vec!["etcd-a".into(), "etcd-c".into()];
        let pts = vec![
            None,
            Some(n),
            None,
            Some(pt("p", "2026-12-01T10:00:00Z", 5000, 5100, 3000)),
        ];
        let c = run(&pts, "2026-12-01T11:00:00Z");
        assert_eq!(c.state, State::Continuous, "{}", c.message);
        assert_eq!(c.previous.as_ref().unwrap().name, "p");
        assert!(c.message.contains("members changed"), "{}", c.message);
    }

    #[test]
    fn a_member_replaced_under_the_same_name_is_seen_by_its_id() {
        let mut n = pt("n", "2026-12-01T11:00:00Z", 6000, 6100, 3000);
        n.member_ids = vec!["1c7f2a0b9e4d3f11".into()];
        let pts = vec![
            Some(n),
            Some(pt("p", "2026-12-01T10:00:00Z", 5000, 5100, 3000)),
        ];
        let c = run(&pts, "2026-12-01T11:00:00Z");
        assert_eq!(c.state, State::Continuous, "{}", c.message);
        assert!(
            c.message.contains(
                "members changed from etcd-a (8e9e05c52164694d) to etcd-a (1c7f2a0b9e4d3f11)"
            ),
            "{}",
            c.message
        );
    }

    #[test]
    fn a_lagging_member_s_backup_a_second_later_is_no_break() {
        let pts = vec![
            Some(pt("node2", "2026-12-01T12:00:01Z", 4998, 5990, 3000)),
            Some(pt("node1", "2026-12-01T12:00:00Z", 5000, 6000, 3000)),
        ];
        let c = run(&pts, "2026-12-01T12:00:01Z");
        assert_eq!(c.state, State::Continuous, "{}", c.message);
    }

    #[test]
    fn etcd_manager_retention_follows_cleanup_go() {
        let x = t("2026-12-01T10:45:00Z");
        let all = [t("2026-12-01T10:30:00Z"), x];
        assert_eq!(
            etcd_manager_retention(x, &all, None).deleted_around,
            t("2026-12-01T11:45:00Z")
        );
        let all = [t("2026-12-01T09:30:00Z"), x];
        assert_eq!(
            etcd_manager_retention(x, &all, None).deleted_around,
            t("2026-12-08T10:45:00Z")
        );
        assert_eq!(
            etcd_manager_retention(x, &[x], None).deleted_around,
            t("2027-03-01T10:45:00Z")
        );
        // The listing starts after midnight: not known to be the day's first.
        let since = Some(t("2026-12-01T08:00:00Z"));
        assert_eq!(
            etcd_manager_retention(x, &[x], since).deleted_around,
            t("2026-12-08T10:45:00Z")
        );
    }

    #[test]
    fn the_live_cluster_is_compared_with_the_backups() {
        let pts = vec![
            Some(pt("n", "2026-12-01T11:00:00Z", 6000, 6100, 3000)),
            Some(pt("p", "2026-12-01T10:00:00Z", 5000, 5100, 3000)),
        ];
        let c = run(&pts, "2026-12-01T11:00:00Z");
        let live = |revision, raft_index| LiveCluster {
            revision,
            raft_index: Some(raft_index),
            members: vec!["etcd-a".into()],
        };
        assert_eq!(
            compare_live(&c, &live(6100, 6200)).unwrap().state,
            LiveState::Continues
        );
        assert_eq!(
            compare_live(&c, &live(6100, 9)).unwrap().state,
            LiveState::Restored
        );
        let r = compare_live(&c, &live(5500, 9)).unwrap();
        assert_eq!(
            (r.state, r.source.as_deref()),
            (LiveState::RolledBack, Some("p"))
        );
        let r = compare_live(&c, &live(12, 14)).unwrap();
        assert_eq!(r.state, LiveState::NewCluster);
        assert!(
            r.message.contains("NOT the cluster in the backups"),
            "{}",
            r.message
        );
    }

    #[test]
    fn versions_fit_by_minor() {
        assert_eq!(minor("v3.5.9-0"), Some((3, 5)));
        assert_eq!(minor("3.4.0"), Some((3, 4)));
        assert_eq!(minor("latest"), None);
        let mut p = pt("n", "2026-12-01T11:00:00Z", 1, 1, 1);
        p.cluster_version = Some("3.4.0".into());
        let named = [("the live etcd runs".to_string(), "3.5.17".to_string())];
        let f = version_fit(&p, &named).unwrap();
        assert!(f.older, "{}", f.message);
        assert!(f.message.contains("rolls the etcd upgrade back"));
        p.cluster_version = Some("3.5.0".into());
        assert!(!version_fit(&p, &named).unwrap().older);
        assert!(version_fit(&p, &[]).is_none());
    }
}
