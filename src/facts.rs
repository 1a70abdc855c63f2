//! Gathering facts at the edges (S3 / directories, live etcd, lifecycle rules) for `check` and
//! `serve`, and converting them into the gate's types. All I/O here has deadlines; whatever
//! cannot be found out becomes an "unknown" fact with the reason, never an error that stops the
//! others.

use crate::gate::{self, Fact};
use crate::lifecycle;
use crate::store::{self, StoreUrl};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// A configuration error found while gathering facts (exit 2 on the command line): a fact
/// source that cannot be *asked* is an error, one that could not *answer* is an unknown fact.
#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error("--store {url:?}: {source}")]
    StoreUrl {
        url: String,
        source: store::StoreError,
    },
    #[error("store inspection task failed: {0}")]
    Task(String),
    /// `--series` names a series no store holds (the message names those found).
    #[error("{0}")]
    UnknownSeries(String),
    #[error(transparent)]
    Etcd(#[from] crate::live::LiveError),
    #[error(transparent)]
    Rules(#[from] lifecycle::ParseError),
    #[error("--lifecycle-prefix {0:?}: expected s3://BUCKET/PREFIX with a bucket name")]
    LifecyclePrefix(String),
    #[error("--lifecycle-prefix names the S3 location of one local store; give one local --store")]
    SeveralLocalStores,
    #[error(
        "--lifecycle {0}: rules apply to an S3 bucket and key prefix, and no s3:// --store names \
         one: pass the store's s3:// URL, or --lifecycle-prefix s3://BUCKET/PREFIX for a local copy of it"
    )]
    NoRulesTarget(String),
    #[error("{name}: no lifecycle configuration for bucket {bucket:?}")]
    NoRulesForBucket { name: String, bucket: String },
}

/// Where and how facts are read: plain options (the command line builds them from its flags).
#[derive(Debug, Clone)]
pub struct FactOptions {
    /// Backup store URLs: `s3://BUCKET/PREFIX`, `file:///DIR` or a directory path.
    pub stores: Vec<String>,
    /// How S3 is reached.
    pub s3: store::S3Options,
    /// How each store is inspected (its `now` is set per reading).
    pub inspect: store::InspectOptions,
    /// The live etcd cluster, when one is given.
    pub etcd: Option<crate::live::EtcdOptions>,
    /// kops `backupRetentionDays` the lifecycle analysis compares rules with.
    pub retention_days: u32,
    /// Expected interval between backups (etcd-manager: 15m), for the lifecycle analysis.
    pub backup_interval: Duration,
    /// Stores read at once (at least 1); snapshots verified at once are fewer still (one per
    /// CPU, [`store::VerifyCache`]).
    pub store_concurrency: usize,
}

impl FactOptions {
    fn inspect_at(&self, now: DateTime<Utc>) -> store::InspectOptions {
        store::InspectOptions {
            now,
            ..self.inspect.clone()
        }
    }
}

/// Bucket and key prefix of an `s3://BUCKET[/PREFIX]` URL; `None` for any other store.
pub fn s3_location(url: &str) -> Option<(String, String)> {
    match StoreUrl::parse(url) {
        Ok(StoreUrl::S3 { bucket, prefix }) if !bucket.is_empty() => Some((bucket, prefix)),
        _ => None,
    }
}

/// One store's facts in both forms: the gate's summary and the full inspection (for reports).
#[derive(Clone)]
pub struct StoreResult {
    pub url: String,
    pub fact: Fact<gate::StoreFact>,
    pub full: Option<store::StoreFacts>,
}

/// Inspect every store, at most `opts.store_concurrency` at once; every store shares the
/// process's verify-once cache (`opts.inspect.cache`). Bad URLs are returned as `Err`
/// (configuration errors, exit 2).
pub async fn gather_stores(
    urls: &[String],
    opts: &FactOptions,
    now: DateTime<Utc>,
) -> Result<Vec<StoreResult>, FactsError> {
    let parsed: Vec<(String, StoreUrl)> = urls
        .iter()
        .map(|u| {
            StoreUrl::parse(u)
                .map(|p| (u.clone(), p))
                .map_err(|source| FactsError::StoreUrl {
                    url: u.clone(),
                    source,
                })
        })
        .collect::<Result<_, _>>()?;
    let s3 = opts.s3.clone();
    let inspect = opts.inspect_at(now);
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(opts.store_concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, (u, p)) in parsed.into_iter().enumerate() {
        let s3 = s3.clone();
        let inspect = inspect.clone();
        let permits = permits.clone();
        set.spawn(async move {
            // Never closed: a permit is always granted in turn.
            let _permit = permits.acquire_owned().await.ok();
            // A store holding several backup series yields one result per series (issue #20).
            let r = match store::inspect_all(&p, &s3, &inspect).await {
                Ok(all) => (
                    Some(all.series_found),
                    all.facts
                        .into_iter()
                        .map(|full| StoreResult {
                            url: match full.series {
                                Some(_) => full.store.clone(),
                                None => u.clone(),
                            },
                            fact: Fact::known(store_fact(&full)),
                            full: Some(full),
                        })
                        .collect(),
                ),
                Err(e) => (
                    None,
                    vec![StoreResult {
                        url: u.clone(),
                        fact: Fact::unknown(e.to_string()),
                        full: None,
                    }],
                ),
            };
            (i, u, r)
        });
    }
    let mut out = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(r) => out.push(r),
            Err(e) => return Err(FactsError::Task(e.to_string())),
        }
    }
    out.sort_by_key(|(i, _, _)| *i);
    let all_listed = out.iter().all(|(_, _, (found, _))| found.is_some());
    let found: Vec<(String, Vec<String>)> = out
        .iter()
        .map(|(_, u, (f, _))| (u.clone(), f.clone().unwrap_or_default()))
        .collect();
    if let Some(e) = store::unknown_series(&inspect.series, &found, all_listed) {
        return Err(FactsError::UnknownSeries(e));
    }
    Ok(out.into_iter().flat_map(|(_, _, (_, r))| r).collect())
}

fn backup(b: &store::BackupFacts) -> gate::Backup {
    let mut problems = Vec::new();
    if let Some(r) = &b.reason {
        problems.push(r.clone());
    }
    if let Some(rep) = &b.report {
        for p in &rep.problems {
            if !problems.contains(p) {
                problems.push(p.clone());
            }
        }
    }
    let mut revision = b.report.as_ref().and_then(|r| r.revision);
    let mut name = b.name.clone();
    // Gardener: the restore point is the Full snapshot plus its chain of deltas; `b.time` is
    // already the chain's end.
    if let Some(c) = &b.chain {
        if let Some(end) = &c.end_key {
            revision = Some(c.end_revision);
            let short = end.rsplit('/').next().unwrap_or(end);
            name = format!("{name} + {} deltas to {short}", c.applied);
        }
        if let Some(br) = &c.broken {
            let short = br.key.rsplit('/').next().unwrap_or(&br.key);
            name = format!("{name} (delta chain broken at {short}: {})", br.reason);
        }
    }
    gate::Backup {
        name,
        time: b.time,
        valid: b.validity == store::Validity::Valid,
        revision,
        read_error: (b.validity == store::Validity::Unknown)
            .then(|| b.reason.clone().unwrap_or_else(|| "unknown".to_string())),
        problems,
    }
}

/// A queued etcd-manager command as the gate sees it.
fn pending_command(p: &store::control::PendingCommand) -> gate::PendingCommand {
    use store::control::FileState;
    let mut out = gate::PendingCommand {
        key: p.key.clone(),
        queued: None,
        restore_backup: None,
        backup_time: None,
        backup_restorable: None,
        backup_revision: None,
        problem: None,
    };
    let cmd = match &p.file {
        FileState::Present { value } => value,
        FileState::Missing => {
            out.problem = Some("it disappeared between listing and reading".to_string());
            return out;
        }
        FileState::Empty => {
            out.problem = Some("the file is empty (etcd-manager cannot parse it)".to_string());
            return out;
        }
        FileState::Unparseable { reason } => {
            out.problem = Some(format!("etcd-manager cannot parse it ({reason})"));
            return out;
        }
        FileState::Unknown { reason } => {
            out.problem = Some(format!("it could not be read ({reason})"));
            return out;
        }
    };
    out.queued = cmd.timestamp;
    let Some(r) = &cmd.restore_backup else {
        return out;
    };
    out.restore_backup = Some(r.backup.clone());
    out.backup_time = store::layout::parse_etcd_manager_folder(&r.backup);
    if r.cluster_spec.is_none() {
        out.problem = Some(
            "restoreBackup has no clusterSpec: etcd-manager fails every control cycle (\"RestoreBackup was not set\"), so no backups are taken"
                .to_string(),
        );
    }
    if let Some(b) = &p.backup {
        out.backup_restorable = match b.validity {
            store::Validity::Valid => Some(true),
            store::Validity::Invalid => Some(false),
            store::Validity::Unknown => None,
        };
        out.backup_revision = b.report.as_ref().and_then(|r| r.revision);
    }
    out
}

/// Convert a full store inspection into the gate's summary. A store that is the wrong place
/// (no backup, nothing recognisable) gets no control-file facts: etcd-manager advice would be
/// advice about a store that is not there.
pub fn store_fact(s: &store::StoreFacts) -> gate::StoreFact {
    let no_backups = s.no_backups.as_ref().map(|n| gate::NoBackups {
        summary: n.summary(&s.store),
        advice: n.advice(),
        recognised: n.recognised,
        details: serde_json::to_value(n).unwrap_or(serde_json::Value::Null),
    });
    let wrong_place = no_backups.as_ref().is_some_and(|n| !n.recognised);
    gate::StoreFact {
        url: s.store.clone(),
        layout: s
            .layout
            .map_or_else(|| "unrecognised".to_string(), |l| l.name().to_string()),
        backup_count: s.backups.count,
        newest: s.newest.as_ref().map(backup),
        newest_valid: s.newest_valid.as_ref().map(backup),
        control_files: s
            .control
            .as_ref()
            .filter(|_| !wrong_place)
            .map(|c| gate::ControlFiles {
                spec_present: c.spec.exists().unwrap_or(false),
                created_present: c.created.exists().unwrap_or(false),
                outcome: match c.outcome {
                    store::ControlOutcome::Normal => gate::ControlOutcome::Normal,
                    store::ControlOutcome::BackupsStopped => gate::ControlOutcome::BackupsStopped,
                    store::ControlOutcome::WillSeedNewCluster => {
                        gate::ControlOutcome::SeedsNewCluster
                    }
                    store::ControlOutcome::IdleWillSeedWhenSpecWritten => {
                        gate::ControlOutcome::Idle
                    }
                    store::ControlOutcome::ControllerError => gate::ControlOutcome::Malformed,
                    store::ControlOutcome::Unknown => gate::ControlOutcome::Unknown,
                },
                meaning: c.meaning.clone(),
                problems: c.problems.clone(),
                pending_commands: c.commands.iter().map(pending_command).collect(),
                commands_unknown: c.commands_unknown.clone(),
            }),
        stale: None,
        no_backups,
        continuity: Some(s.continuity.clone()),
    }
}

/// Collect live etcd facts, or "not checked" when no endpoint was given. `Err` only for
/// configuration errors (unreadable TLS files, bad endpoints).
pub async fn gather_etcd(
    opts: Option<&crate::live::EtcdOptions>,
) -> Result<(Fact<gate::Etcd>, Option<crate::live::LiveFacts>), FactsError> {
    let Some(opts) = opts else {
        return Ok((
            Fact::not_checked("pass --etcd-endpoints to check the live cluster"),
            None,
        ));
    };
    let live = crate::live::collect(opts).await?;
    Ok((etcd_fact(&live), Some(live)))
}

/// Convert live facts into the gate's summary. The cluster is "unknown" when neither quorum nor
/// revision could be read.
pub fn etcd_fact(l: &crate::live::LiveFacts) -> Fact<gate::Etcd> {
    use crate::live::Fact as L;
    let quorum = match &l.quorum {
        L::Known { value } => value.clone(),
        L::Unknown { reason } => {
            let probed = l.endpoints.len();
            let healthy = l.endpoints.iter().filter(|e| e.healthy).count();
            let likely = if probed > 0 && healthy * 2 <= probed {
                ": likely NO QUORUM"
            } else {
                ""
            };
            return Fact::unknown(format!(
                "quorum unknown ({reason}); {healthy} of {probed} probed endpoints healthy{likely}"
            ));
        }
    };
    let mut problems: Vec<String> = l
        .endpoints
        .iter()
        .filter(|e| !e.healthy)
        .map(|e| {
            e.reason
                .clone()
                .unwrap_or_else(|| format!("{} unhealthy", e.endpoint))
        })
        .collect();
    if let L::Unknown { reason } = &l.revision {
        problems.push(format!("revision unknown: {reason}"));
    }
    if let L::Unknown { reason } = &l.alarms {
        problems.push(format!("alarms unknown: {reason}"));
    }
    let statuses = || l.endpoints.iter().filter_map(|e| e.status.known());
    let (db_size, quota_bytes) = match &l.db {
        L::Known { value } => (
            u64::try_from(value.db_size_bytes).ok(),
            Some(value.quota_bytes),
        ),
        L::Unknown { .. } => (None, None),
    };
    Fact::known(gate::Etcd {
        healthy_members: quorum.healthy_members,
        total_members: quorum.cluster_size,
        has_leader: l.leader.known().is_some(),
        alarms: l
            .alarms
            .known()
            .map(|a| {
                a.iter()
                    .map(|a| format!("{} on member {}", a.alarm, a.member_id))
                    .collect()
            })
            .unwrap_or_default(),
        revision: l.revision.known().copied(),
        db_size,
        quota_bytes,
        problems,
        raft_index: statuses().map(|s| s.raft_index).max(),
        members: {
            let mut names: Vec<String> = l
                .members
                .known()
                .map(|m| m.iter().map(|m| m.name.clone()).collect())
                .unwrap_or_default();
            names.sort();
            names
        },
        versions: {
            let mut v: Vec<String> = statuses().map(|s| s.version.clone()).collect();
            v.sort();
            v.dedup();
            v
        },
    })
}

/// Where lifecycle rules come from.
pub enum RulesSource<'a> {
    /// `--lifecycle FILE|-`: the proposed rules, already read.
    File { name: &'a str, bytes: &'a [u8] },
    /// The live bucket's rules (S3 stores only).
    Live,
}

/// Lifecycle analysis for every S3 store, and for `location` (`--lifecycle-prefix`: the S3
/// bucket and prefix a local copy of a store mirrors) judged with the local store's backups.
/// A `--lifecycle FILE` with nowhere to apply it is a configuration error (`Err`, exit 2): the
/// file was given to be judged.
pub async fn gather_lifecycle(
    source: Option<RulesSource<'_>>,
    stores: &[StoreResult],
    location: Option<&str>,
    args: &FactOptions,
    max_age: Duration,
    now: DateTime<Utc>,
) -> Result<Fact<Vec<gate::LifecycleIssue>>, FactsError> {
    let mut targets: Vec<(String, String, Option<&StoreResult>)> = stores
        .iter()
        .filter_map(|s| s3_location(&s.url).map(|(b, p)| (b, p, Some(s))))
        .collect();
    if let Some(loc) = location {
        let (bucket, prefix) =
            s3_location(loc).ok_or_else(|| FactsError::LifecyclePrefix(loc.to_string()))?;
        let local: Vec<&StoreResult> = stores
            .iter()
            .filter(|s| s3_location(&s.url).is_none())
            .collect();
        if local.len() > 1 {
            return Err(FactsError::SeveralLocalStores);
        }
        targets.push((bucket, prefix, local.first().copied()));
    }
    let source = match source {
        Some(s) => s,
        None if targets.is_empty() => {
            return Ok(Fact::not_checked(
                "no s3:// store to read the bucket's rules from, and no --lifecycle FILE",
            ))
        }
        None => RulesSource::Live,
    };
    if targets.is_empty() {
        let RulesSource::File { name, .. } = source else {
            return Ok(Fact::not_checked("no s3:// store"));
        };
        return Err(FactsError::NoRulesTarget(name.to_string()));
    }
    let mut issues = Vec::new();
    for (bucket, prefix, st) in &targets {
        let ctx = context(bucket, prefix, *st, args, max_age);
        let config = match &source {
            RulesSource::File { name, bytes } => {
                let parsed = lifecycle::parse(bytes, name, Some(bucket))?;
                let (config, origins) = lifecycle::select_for_bucket(&parsed, bucket);
                if origins.is_empty() {
                    return Err(FactsError::NoRulesForBucket {
                        name: name.to_string(),
                        bucket: bucket.clone(),
                    });
                }
                config
            }
            // A local store's bucket is not read live: only a file is judged against it.
            RulesSource::Live if st.is_some_and(|s| s3_location(&s.url).is_none()) => continue,
            RulesSource::Live => match live_rules(bucket, &args.s3).await {
                Ok(c) => c.unwrap_or_default(),
                Err(e) => return Ok(Fact::unknown(e)),
            },
        };
        for f in lifecycle::evaluate(&config, &ctx, now) {
            issues.push(issue(&f, bucket));
        }
    }
    Ok(Fact::known(issues))
}

fn context(
    bucket: &str,
    prefix: &str,
    st: Option<&StoreResult>,
    args: &FactOptions,
    max_age: Duration,
) -> lifecycle::StoreContext {
    let mut ctx = lifecycle::StoreContext::new(bucket, prefix);
    let full = st.and_then(|s| s.full.as_ref());
    ctx.layout = match full.and_then(|f| f.layout) {
        Some(store::Layout::EtcdManager) | None => lifecycle::Layout::EtcdManager,
        Some(_) => lifecycle::Layout::Generic,
    };
    ctx.retention_days = args.retention_days;
    ctx.backup_interval = args.backup_interval;
    ctx.max_age = Some(max_age);
    if let Some(full) = full {
        ctx.objects = known_objects(full, &ctx.prefix);
    }
    ctx
}

/// Lifecycle rules carried by a Kubernetes object (ACK Bucket, Upbound
/// BucketLifecycleConfiguration), judged against the S3 stores: with an old object, only what
/// the change makes worse (pure; used by the webhook on the request path).
pub fn lifecycle_from_object(
    new: &[u8],
    old: Option<&[u8]>,
    stores: &[StoreResult],
    args: &FactOptions,
    max_age: Duration,
    now: DateTime<Utc>,
) -> Fact<Vec<gate::LifecycleIssue>> {
    let mut issues = Vec::new();
    let mut any = false;
    for st in stores {
        let Some((bucket, prefix)) = s3_location(&st.url) else {
            continue;
        };
        let proposed = match lifecycle::parse(new, "object", Some(&bucket)) {
            Ok(p) => p,
            Err(e) => {
                return Fact::unknown(format!("the object's lifecycle rules cannot be read: {e}"))
            }
        };
        let (config, origins) = lifecycle::select_for_bucket(&proposed, &bucket);
        if origins.is_empty() {
            continue;
        }
        any = true;
        let ctx = context(&bucket, &prefix, Some(st), args, max_age);
        let current = old
            .and_then(|o| lifecycle::parse(o, "oldObject", Some(&bucket)).ok())
            .map(|p| lifecycle::select_for_bucket(&p, &bucket).0);
        let found = match &current {
            Some(cur) => lifecycle::diff(cur, &config, &ctx, now),
            None => lifecycle::evaluate(&config, &ctx, now),
        };
        issues.extend(found.iter().map(|f| issue(f, &bucket)));
    }
    if !any {
        // Rules for a bucket that holds no watched store cannot touch its backups.
        return Fact::known(Vec::new());
    }
    Fact::known(issues)
}

/// Add a change set's gated changes to the gate's change summary.
pub fn summarize(set: &crate::change::ChangeSet, source: &str, out: &mut gate::Change) {
    out.sources.push(source.to_string());
    for c in &set.changes {
        let evidence = crate::change::OneLine(&c.evidence);
        let named = match &c.kind {
            crate::change::ChangeKind::SeedsNewCluster {
                location: Some(l), ..
            } => l.strip_suffix("/control/etcd-cluster-spec"),
            crate::change::ChangeKind::BackupStoreMoved { to: Some(to), .. } => Some(to.as_str()),
            _ => None,
        };
        if let Some(store) = named.filter(|s| s.contains("://")) {
            if !out.backup_stores.iter().any(|s| s == store) {
                out.backup_stores.push(store.to_string());
            }
        }
        if let crate::change::ChangeKind::EtcdUpgrade { to: Some(v), .. } = &c.kind {
            if !out.etcd_versions.contains(v) {
                out.etcd_versions.push(v.clone());
            }
        }
        if let crate::change::ChangeKind::SeedsNewCluster { cluster, location } = &c.kind {
            out.spec_clusters.push(cluster.clone());
            out.seeds_new_cluster.push(match location {
                Some(l) => format!(
                    "{} creates the spec of etcd cluster `{cluster}` at {l}",
                    c.resource
                ),
                None => format!(
                    "{} creates the spec of etcd cluster `{cluster}` ({evidence})",
                    c.resource
                ),
            });
        } else if c.kind.is_gated() {
            out.gated.push(if c.evidence.is_empty() {
                format!("{} ({})", c.resource, c.kind.id())
            } else {
                format!("{} ({}): {evidence}", c.resource, c.kind.id())
            });
        }
    }
}

/// What the store inspection already knows about objects: control files are not listed there,
/// so only the backups seen; the evaluator treats unknown control-file ages conservatively.
fn known_objects(full: &store::StoreFacts, prefix: &str) -> Vec<lifecycle::KnownObject> {
    full.checked
        .iter()
        .map(|b| lifecycle::KnownObject {
            key: format!("{prefix}{}", b.data_key),
            size: b.size,
            last_modified: Some(b.time),
            tags: None,
        })
        .collect()
}

async fn live_rules(
    bucket: &str,
    s3: &store::S3Options,
) -> Result<Option<lifecycle::Configuration>, String> {
    let url = StoreUrl::S3 {
        bucket: bucket.to_string(),
        prefix: String::new(),
    };
    let client = match store::Backend::open(&url, s3).await {
        Ok(store::Backend::S3 { client, .. }) => client,
        Ok(store::Backend::Local { .. }) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let deadline = s3.operation_timeout;
    match tokio::time::timeout(deadline, store::s3_lifecycle::fetch_rules(&client, bucket)).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!(
            "s3://{bucket}: GetBucketLifecycleConfiguration: no answer within {} (timed out; --s3-timeout)",
            humantime::format_duration(deadline)
        )),
    }
}

fn issue(f: &lifecycle::LifecycleFinding, bucket: &str) -> gate::LifecycleIssue {
    gate::LifecycleIssue {
        check: f.check.to_string(),
        severity: f.severity,
        message: format!("s3://{bucket}: {}", f.message),
        fix: Some(f.fix.clone()).filter(|s| !s.is_empty()),
        details: serde_json::to_value(f).unwrap_or(serde_json::Value::Null),
    }
}
