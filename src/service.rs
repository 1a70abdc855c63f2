//! The serve-time application behind `etcdguard serve`: the webhook's gate ([`EtcdGate`],
//! which implements the protocol adapter's `Gate`; the adapter knows no etcd), its fact cache,
//! the refresh loop and the fact metrics.
//!
//! A background task refreshes facts (backup stores, live etcd, live lifecycle rules) every
//! interval; each admission review reads the cache and never waits on S3 or etcd. Facts older
//! than the staleness bound are treated as unknown, so the policy mode decides (enforce
//! refuses). The command line (`cli::serve`) parses flags into the plain options taken here.

use crate::facts::{self, FactOptions};
use crate::gate::{self, request::Overrides, Fact, Facts, Severity, Verdict};
use crate::policy::{PolicySet, Request};
use chrono::{DateTime, Utc};
use etcdguard_webhook as wh;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The facts a review decides on: the cached snapshot, or unknown facts (none yet, or stale).
enum FactsNow {
    Cached(Arc<Snapshot>),
    Unknown(Box<Facts>),
}

impl FactsNow {
    fn facts(&self) -> &Facts {
        match self {
            FactsNow::Cached(s) => &s.facts,
            FactsNow::Unknown(f) => f,
        }
    }

    /// Per-store results; empty when the facts are unknown.
    fn stores(&self) -> &[facts::StoreResult] {
        match self {
            FactsNow::Cached(s) => &s.stores,
            FactsNow::Unknown(_) => &[],
        }
    }
}

/// The facts cache shared by the refresher and the reviews.
struct Snapshot {
    facts: Facts,
    refreshed_at: DateTime<Utc>,
    /// Stores as (url, bucket/prefix when S3) for lifecycle-object reviews.
    stores: Vec<facts::StoreResult>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabel {
    store: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ContinuityLabel {
    store: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabel {
    policy: String,
}

#[derive(Default)]
struct FactMetrics {
    last_snapshot_ts: Family<StoreLabel, Gauge>,
    snapshot_age: Family<StoreLabel, Gauge>,
    snapshot_revision: Family<StoreLabel, Gauge>,
    snapshot_valid: Family<StoreLabel, Gauge>,
    control_files_present: Family<StoreLabel, Gauge>,
    continuity: Family<ContinuityLabel, Gauge>,
    refresh_errors: Family<SourceLabel, Counter>,
    last_refresh_ts: Gauge,
    exceptions: Family<PolicyLabel, Counter>,
}

/// The gate behind the webhook.
pub struct EtcdGate {
    policies: PolicySet,
    cache: RwLock<Option<Arc<Snapshot>>>,
    ready: AtomicBool,
    stale_after: Duration,
    overrides: Overrides,
    args: FactOptions,
    metrics: FactMetrics,
    /// Unix seconds of the newest valid backup per store, for the age gauge at scrape time.
    newest_ts: RwLock<Vec<(String, i64)>>,
    refreshes: AtomicU64,
    /// Last successful reading per store URL, and when it was taken.
    last_good:
        std::sync::Mutex<std::collections::HashMap<String, (facts::StoreResult, DateTime<Utc>)>>,
    /// Last successful live-etcd and lifecycle readings, and when they were taken.
    last_etcd: LastGood<gate::Etcd>,
    last_lifecycle: LastGood<Vec<gate::LifecycleIssue>>,
    /// Bound of one refresh.
    refresh_timeout: Duration,
}

/// A fact's last successful reading and when it completed.
type LastGood<T> = std::sync::Mutex<Option<(Fact<T>, DateTime<Utc>)>>;

/// Why the service cannot start with the options it was given.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "policies {0} require backup facts, and no backup store was given: pass --store URL \
             (s3://BUCKET/PREFIX or a directory) or set ETCDGUARD_STORE"
    )]
    NoStore(String),
    #[error(
        "policies {0} require live etcd facts, and no endpoint was given: pass --etcd-endpoints \
             or set ETCDGUARD_ETCD_ENDPOINTS"
    )]
    NoEtcd(String),
    #[error("--refresh-interval must be at least 1s")]
    Interval,
    #[error("--refresh-timeout must be positive")]
    Timeout,
    #[error(
        "--stale-after {stale} must exceed the refresh timeout ({timeout}, --refresh-timeout or \
         --deadline) plus --refresh-interval ({interval}): otherwise facts go stale while every \
         refresh succeeds"
    )]
    StaleAfter {
        stale: String,
        timeout: String,
        interval: String,
    },
}

/// The bounds of `serve`'s fact refresh.
#[derive(Debug, Clone, Copy)]
pub struct RefreshBounds {
    pub interval: Duration,
    pub timeout: Duration,
    pub stale_after: Duration,
}

impl RefreshBounds {
    /// The bounds from the flags, checked: facts read by one refresh must still be fresh when
    /// the next one, started an interval later and taking up to the timeout, completes.
    pub fn new(
        interval: Duration,
        timeout: Option<Duration>,
        stale_after: Option<Duration>,
        deadline: Duration,
    ) -> Result<RefreshBounds, StartError> {
        if interval < Duration::from_secs(1) {
            return Err(StartError::Interval);
        }
        let timeout = timeout.unwrap_or(deadline);
        if timeout.is_zero() {
            return Err(StartError::Timeout);
        }
        let stale_after = stale_after.unwrap_or(timeout + interval * 2 + Duration::from_secs(60));
        if stale_after <= timeout + interval {
            let h = |d: Duration| humantime::format_duration(d).to_string();
            return Err(StartError::StaleAfter {
                stale: h(stale_after),
                timeout: h(timeout),
                interval: h(interval),
            });
        }
        Ok(RefreshBounds {
            interval,
            timeout,
            stale_after,
        })
    }
}

impl EtcdGate {
    pub fn new(
        policies: PolicySet,
        args: FactOptions,
        bounds: RefreshBounds,
        overrides: Overrides,
    ) -> Self {
        EtcdGate {
            policies,
            cache: RwLock::new(None),
            ready: AtomicBool::new(false),
            stale_after: bounds.stale_after,
            refresh_timeout: bounds.timeout,
            last_etcd: std::sync::Mutex::new(None),
            last_lifecycle: std::sync::Mutex::new(None),
            // A review shows only warnings and denials: passing checks are not worded.
            overrides: Overrides {
                detail: gate::Detail::Problems,
                ..overrides
            },
            args,
            metrics: FactMetrics::default(),
            newest_ts: RwLock::new(Vec::new()),
            refreshes: AtomicU64::new(0),
            last_good: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    fn current(&self) -> Option<Arc<Snapshot>> {
        self.cache.read().ok().and_then(|c| c.clone())
    }

    /// Facts as a review may use them at `now`: stale or missing facts become unknown. The
    /// cached snapshot is shared, not copied.
    fn facts_at(&self, now: DateTime<Utc>) -> FactsNow {
        let unknown = |reason: String| Facts {
            stores: if self.args.stores.is_empty() {
                vec![]
            } else {
                self.args
                    .stores
                    .iter()
                    .map(|_| Fact::unknown(reason.clone()))
                    .collect()
            },
            store_urls: self.args.stores.clone(),
            etcd: if self.args.etcd.is_some() {
                Fact::unknown(reason.clone())
            } else {
                Fact::not_checked("pass --etcd-endpoints to check the live cluster")
            },
            lifecycle: Fact::unknown(reason.clone()),
            cached: vec![],
        };
        match self.current() {
            None => FactsNow::Unknown(Box::new(unknown(
                "facts not gathered yet: the first refresh has not completed".into(),
            ))),
            Some(s) => {
                let age = now.signed_duration_since(s.refreshed_at);
                let bound =
                    chrono::Duration::from_std(self.stale_after).unwrap_or(chrono::Duration::MAX);
                if age > bound {
                    FactsNow::Unknown(Box::new(unknown(format!(
                        "facts are stale: last refresh {} ago (bound {})",
                        gate::human_age(age),
                        humantime::format_duration(self.stale_after)
                    ))))
                } else {
                    FactsNow::Cached(s)
                }
            }
        }
    }

    /// One refresh of every fact source. Sets the cache, the metrics and readiness.
    pub async fn refresh(&self) {
        match tokio::time::timeout(self.refresh_timeout, self.refresh_unbounded()).await {
            Ok(()) => {}
            Err(_) => {
                tracing::warn!(
                    timeout = %humantime::format_duration(self.refresh_timeout),
                    "fact refresh did not complete within its bound; the facts keep their last completed reading"
                );
                self.metrics
                    .refresh_errors
                    .get_or_create(&SourceLabel {
                        source: "refresh-timeout".into(),
                    })
                    .inc();
            }
        }
    }

    async fn refresh_unbounded(&self) {
        let now = Utc::now();
        let a = &self.args;
        let (stores, etcd) = tokio::join!(
            facts::gather_stores(&a.stores, a, now),
            facts::gather_etcd(a.etcd.as_ref())
        );
        let stores = match stores {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "store configuration error");
                self.metrics
                    .refresh_errors
                    .get_or_create(&SourceLabel {
                        source: "store".into(),
                    })
                    .inc();
                return;
            }
        };
        let etcd = match etcd {
            Ok((f, _)) => f,
            Err(e) => Fact::unknown(e.to_string()),
        };
        let max_age = self
            .overrides
            .max_age
            .unwrap_or(gate::Requirements::default().max_age);
        let lifecycle = match facts::gather_lifecycle(None, &stores, None, a, max_age, now).await {
            Ok(f) => f,
            Err(e) => Fact::unknown(e.to_string()),
        };
        let mut complete = true;
        for s in &stores {
            if let Fact::Unknown { reason } = &s.fact {
                complete = false;
                tracing::warn!(store = %s.url, %reason, "store fact refresh failed");
                self.metrics
                    .refresh_errors
                    .get_or_create(&SourceLabel {
                        source: "store".into(),
                    })
                    .inc();
            }
        }
        // Facts are as old as the moment they were read: a slow refresh is no older for it.
        let completed = Utc::now();
        let stores = self.with_last_good(stores, completed);
        if let Fact::Unknown { reason } = &etcd {
            tracing::warn!(%reason, "etcd fact refresh failed");
            self.metrics
                .refresh_errors
                .get_or_create(&SourceLabel {
                    source: "etcd".into(),
                })
                .inc();
        }
        if let Fact::Unknown { reason } = &lifecycle {
            tracing::warn!(%reason, "lifecycle fact refresh failed");
            self.metrics
                .refresh_errors
                .get_or_create(&SourceLabel {
                    source: "lifecycle".into(),
                })
                .inc();
        }
        let (etcd, etcd_note) = self.keep_last_good(&self.last_etcd, etcd, completed);
        let (lifecycle, lifecycle_note) =
            self.keep_last_good(&self.last_lifecycle, lifecycle, completed);
        self.update_metrics(&stores, now);
        let mut cached = Vec::new();
        if let Some(n) = etcd_note {
            cached.push((gate::checks::ETCD_HEALTHY.to_string(), n));
        }
        if let Some(n) = lifecycle_note {
            cached.push((gate::checks::LIFECYCLE_DELETES_CONTROL_FILES.to_string(), n));
        }
        let snap = Snapshot {
            facts: Facts {
                stores: stores.iter().map(|s| s.fact.clone()).collect(),
                store_urls: stores.iter().map(|s| s.url.clone()).collect(),
                etcd,
                lifecycle,
                cached,
            },
            refreshed_at: completed,
            stores,
        };
        if let Ok(mut c) = self.cache.write() {
            *c = Some(Arc::new(snap));
        }
        self.metrics.last_refresh_ts.set(completed.timestamp());
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        if complete {
            self.ready.store(true, Ordering::Release);
        }
    }

    /// A fact that could not be read is replaced by its last successful reading while that is
    /// younger than the staleness bound; the note says so (failure and age). Successful
    /// readings are remembered.
    /// When a reading taken at `at` may still stand in for a failed one at `now` (within the
    /// staleness bound): the note saying so, naming the failure and the reading's age.
    fn stand_in(&self, reason: &str, at: DateTime<Utc>, now: DateTime<Utc>) -> Option<String> {
        let bound = chrono::Duration::from_std(self.stale_after).unwrap_or(chrono::Duration::MAX);
        let age = now.signed_duration_since(at);
        (age <= bound).then(|| {
            format!(
                "latest refresh failed ({reason}); using facts read {} ago",
                gate::human_age(age)
            )
        })
    }

    fn keep_last_good<T: Clone>(
        &self,
        last: &LastGood<T>,
        fact: Fact<T>,
        now: DateTime<Utc>,
    ) -> (Fact<T>, Option<String>) {
        let mut last = match last.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        match &fact {
            Fact::Known { .. } => {
                *last = Some((fact.clone(), now));
                (fact, None)
            }
            Fact::Unknown { reason } => {
                let good = last.as_ref().and_then(|(good, at)| {
                    self.stand_in(reason, *at, now).map(|n| (good.clone(), n))
                });
                match good {
                    Some((good, note)) => (good, Some(note)),
                    None => (fact, None),
                }
            }
            Fact::NotChecked { .. } => (fact, None),
        }
    }

    /// Replace a store that could not be read by its last successful reading, marked stale,
    /// while that reading is younger than the staleness bound; remember successful readings.
    fn with_last_good(
        &self,
        stores: Vec<facts::StoreResult>,
        now: DateTime<Utc>,
    ) -> Vec<facts::StoreResult> {
        let mut last = match self.last_good.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        stores
            .into_iter()
            .map(|s| match &s.fact {
                Fact::Known { .. } => {
                    last.insert(s.url.clone(), (s.clone(), now));
                    s
                }
                Fact::Unknown { reason } => {
                    let stale = last
                        .get(&s.url)
                        .and_then(|(good, at)| Some((good, self.stand_in(reason, *at, now)?)));
                    match stale {
                        Some((good, note)) => {
                            let mut cached = good.clone();
                            if let Fact::Known { value } = &mut cached.fact {
                                value.stale = Some(note);
                            }
                            cached
                        }
                        None => s,
                    }
                }
                Fact::NotChecked { .. } => s,
            })
            .collect()
    }

    fn update_metrics(&self, stores: &[facts::StoreResult], now: DateTime<Utc>) {
        let mut newest = Vec::new();
        for s in stores {
            let l = StoreLabel {
                store: s.url.clone(),
            };
            let Fact::Known { value } = &s.fact else {
                continue;
            };
            match &value.newest_valid {
                Some(b) => {
                    self.metrics
                        .last_snapshot_ts
                        .get_or_create(&l)
                        .set(b.time.timestamp());
                    self.metrics
                        .snapshot_age
                        .get_or_create(&l)
                        .set(now.signed_duration_since(b.time).num_seconds());
                    self.metrics
                        .snapshot_revision
                        .get_or_create(&l)
                        .set(b.revision.unwrap_or(0));
                    newest.push((s.url.clone(), b.time.timestamp()));
                }
                None => {
                    self.metrics.last_snapshot_ts.get_or_create(&l).set(0);
                    // No valid snapshot: age is "infinite"; export a huge number so alerts fire.
                    self.metrics
                        .snapshot_age
                        .get_or_create(&l)
                        .set(i64::from(i32::MAX));
                }
            }
            let valid = value.newest.as_ref().is_some_and(|b| b.valid);
            self.metrics
                .snapshot_valid
                .get_or_create(&l)
                .set(i64::from(valid));
            if let Some(c) = &value.continuity {
                for state in crate::continuity::State::ALL {
                    self.metrics
                        .continuity
                        .get_or_create(&ContinuityLabel {
                            store: s.url.clone(),
                            state: state.as_str().to_string(),
                        })
                        .set(i64::from(c.state == state));
                }
            }
            if let Some(c) = &value.control_files {
                let present = c.spec_present && c.created_present;
                self.metrics
                    .control_files_present
                    .get_or_create(&l)
                    .set(i64::from(present));
            }
        }
        if let Ok(mut n) = self.newest_ts.write() {
            *n = newest;
        }
    }

    /// Recompute ages from the cached backup times (called between refreshes so the age gauge
    /// keeps growing when backups stop).
    pub fn tick_ages(&self, now: DateTime<Utc>) {
        if let Ok(n) = self.newest_ts.read() {
            for (url, ts) in n.iter() {
                self.metrics
                    .snapshot_age
                    .get_or_create(&StoreLabel { store: url.clone() })
                    .set(now.timestamp() - ts);
            }
        }
    }

    fn decide(&self, r: &wh::ReviewRequest, now: DateTime<Utc>) -> wh::Decision {
        let req = match policy_request(r) {
            Ok(req) => req,
            // The webhook checked the objects' shape; a gate that cannot read them refuses.
            Err(e) => {
                return wh::Decision::deny(format!("etcdguard cannot read this review: {e}"))
                    .with_code(400, "BadRequest")
                    .with_annotation("decision", "unreadable")
            }
        };
        // An ungated request needs no facts and no change classification.
        let matches = self.policies.matching(&req);
        if matches.is_empty() {
            return wh::Decision::allow().with_annotation("decision", "not-gated");
        }
        let change = object_change(&req);
        let max_age = gate::request::requirements(&self.policies, &matches, self.overrides).max_age;
        let known = self.facts_at(now);
        let facts = match self.lifecycle_object(r, known.stores(), max_age, now) {
            Some(issues) => {
                let mut f = known.facts().clone();
                f.lifecycle = issues;
                std::borrow::Cow::Owned(f)
            }
            None => std::borrow::Cow::Borrowed(known.facts()),
        };
        let d = gate::request::decide_matched(
            &self.policies,
            Some(&req),
            matches,
            &facts,
            &change,
            self.overrides,
            now,
        );
        if let Some(u) = &d.exception {
            u.log();
            self.metrics
                .exceptions
                .get_or_create(&PolicyLabel {
                    policy: u.policy.clone(),
                })
                .inc();
        }
        to_webhook(&d, &self.policies, &req)
    }

    /// For S3 lifecycle objects (ACK Bucket, Upbound BucketLifecycleConfiguration): the proposed
    /// rules in the object, judged against the stores (what the change makes worse).
    fn lifecycle_object(
        &self,
        r: &wh::ReviewRequest,
        stores: &[facts::StoreResult],
        max_age: Duration,
        now: DateTime<Utc>,
    ) -> Option<Fact<Vec<gate::LifecycleIssue>>> {
        let g = r.kind.group.as_str();
        let is_lifecycle = (g == "s3.services.k8s.aws" && r.kind.kind == "Bucket")
            || (g.ends_with("aws.upbound.io") && r.kind.kind == "BucketLifecycleConfiguration");
        if !is_lifecycle {
            return None;
        }
        let new = r.object.as_ref()?;
        Some(facts::lifecycle_from_object(
            new.json().as_bytes(),
            r.old_object.as_ref().map(|o| o.json().as_bytes()),
            stores,
            &self.args,
            max_age,
            now,
        ))
    }
}

/// A review object the gate cannot read as a Kubernetes object.
#[derive(Debug, thiserror::Error)]
#[error("{what} is not a Kubernetes object: {source}")]
pub struct UnreadableObject {
    /// `object` or `oldObject`.
    pub what: &'static str,
    pub source: serde_json::Error,
}

/// The policy engine's view of an admission request, with the objects parsed
/// (`metadata.managedFields` left out); group and kind come from the objects, else from the
/// review (a DELETE without objects, a subresource). `Err` names an object that is not a
/// readable Kubernetes object (`metadata` that is not an object, nesting beyond 128 levels).
pub fn policy_request(r: &wh::ReviewRequest) -> Result<Request, UnreadableObject> {
    let doc = |o: &Option<wh::RawObject>, what: &'static str| {
        o.as_ref()
            .map(|o| o.to_value().map(Arc::new))
            .transpose()
            .map_err(|source| UnreadableObject { what, source })
    };
    let (old, new) = (doc(&r.old_object, "oldObject")?, doc(&r.object, "object")?);
    let mut req = Request::from_shared(r.operation.clone(), old, new)
        .by(r.username.clone(), r.groups.clone());
    if req.api_group.is_empty() && req.kind.is_empty() {
        req.api_group = r.kind.group.clone();
        req.kind = r.kind.kind.clone();
    }
    req.subresource = r.sub_resource.clone();
    req.resource = Some(r.resource.resource.clone());
    Ok(req)
}

/// Classify the object change of `req` for a decision: the kinds of change only, without the
/// evidence and pointers a report would show (no webhook response shows them).
pub fn object_change(req: &Request) -> gate::Change {
    let mut change = gate::Change::default();
    match crate::change::from_request_with(req, crate::change::Detail::KindsOnly) {
        Ok(set) => facts::summarize(&set, "admission", &mut change),
        Err(e) => change.gated.push(format!("object not classified: {e}")),
    }
    change
}

/// apiserver limits: a warning is one line; all warnings together stay under 4096 characters
/// (the webhook crate enforces the budget; here we only keep them short and single-line).
fn one_line(s: &str) -> String {
    crate::change::OneLine(s).to_string()
}

fn to_webhook(d: &gate::request::Decision, policies: &PolicySet, req: &Request) -> wh::Decision {
    let o = &d.outcome;
    let denies: Vec<_> = o
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Deny)
        .collect();
    let warns: Vec<_> = o
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Warn)
        .collect();
    let mut out = if o.verdict == Verdict::Refuse {
        let mut msg = String::from("etcdguard refused this change: ");
        msg.push_str(
            &denies
                .iter()
                .map(|f| format!("[{}] {}", f.check, f.message))
                .collect::<Vec<_>>()
                .join("; "),
        );
        if let Some(next) = denies.iter().find_map(|f| f.next_step.as_ref()) {
            msg.push_str(&format!(". To proceed: {next}"));
        }
        let annotations: Vec<String> = d
            .policies
            .iter()
            .filter_map(|p| policies.get(p))
            .map(|p| p.break_glass_annotation().to_string())
            .collect();
        if let Some(a) = annotations.first() {
            msg.push_str(&format!(
                ". Break glass (if your policy allows you): annotate the object with {a}=\"<reason>\""
            ));
        }
        for why in &d.exception_refusals {
            msg.push_str(&format!(". Break-glass refused: {why}"));
        }
        wh::Decision::deny(msg)
    } else {
        wh::Decision::allow()
    };
    for f in &warns {
        out = out.with_warning(one_line(&format!("etcdguard [{}] {}", f.check, f.message)));
    }
    out = out
        .with_annotation(
            "decision",
            match o.verdict {
                Verdict::Proceed => "proceed",
                Verdict::Warn => "warn",
                Verdict::Refuse => "refuse",
            },
        )
        .with_annotation("mode", format!("{:?}", o.mode).to_lowercase())
        .with_annotation("policies", d.policies.join(","));
    let ids: Vec<&str> = denies
        .iter()
        .chain(warns.iter())
        .map(|f| f.check.as_str())
        .collect();
    if !ids.is_empty() {
        out = out.with_annotation("findings", ids.join(","));
    }
    if let Some(u) = &d.exception {
        let (_k, v) = u.audit_annotation();
        out = out.with_annotation("break-glass", v);
    }
    let _ = req;
    out
}

impl wh::Gate for EtcdGate {
    fn review(&self, request: &wh::ReviewRequest) -> wh::Decision {
        self.decide(request, Utc::now())
    }

    fn ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    fn register_metrics(&self, registry: &mut Registry) {
        let m = &self.metrics;
        // Export every error series from the start (0), so `increase()` alerts work at once.
        for source in ["store", "etcd", "lifecycle"] {
            let _ = m.refresh_errors.get_or_create(&SourceLabel {
                source: source.into(),
            });
        }
        registry.register(
            wh::metrics::LAST_SNAPSHOT_TIMESTAMP_SECONDS,
            "Unix time of the newest restorable backup per store",
            m.last_snapshot_ts.clone(),
        );
        registry.register(
            wh::metrics::SNAPSHOT_AGE_SECONDS,
            "Age of the newest restorable backup per store",
            m.snapshot_age.clone(),
        );
        registry.register(
            "etcdguard_snapshot_revision",
            "etcd revision of the newest restorable backup per store",
            m.snapshot_revision.clone(),
        );
        registry.register(
            wh::metrics::SNAPSHOT_VALID,
            "1 when the newest backup of the store is restorable",
            m.snapshot_valid.clone(),
        );
        registry.register(
            wh::metrics::CONTROL_FILES_PRESENT,
            "1 when both etcd-manager control files are present",
            m.control_files_present.clone(),
        );
        registry.register(
            wh::metrics::SNAPSHOT_CONTINUITY,
            "1 for the continuity state of each store's newest backups (continuous, collapsed, restored, rolled-back, new-cluster, not-checked)",
            m.continuity.clone(),
        );
        registry.register(
            wh::metrics::counter_base_name(wh::metrics::FACT_REFRESH_ERRORS_TOTAL),
            "Fact refresh failures by source",
            m.refresh_errors.clone(),
        );
        registry.register(
            wh::metrics::LAST_FACT_REFRESH_TIMESTAMP_SECONDS,
            "Unix time of the last completed fact refresh",
            m.last_refresh_ts.clone(),
        );
        registry.register(
            "etcdguard_break_glass",
            "Break-glass exceptions honoured, by policy",
            m.exceptions.clone(),
        );
        // What reading the stores cost (every store, every refresh; issue #21).
        let read = &self.args.inspect.cache.stats;
        registry.register(
            "etcdguard_store_read_bytes",
            "Bytes of objects read from backup stores (snapshots, deltas, control and meta files)",
            read.bytes_read.clone(),
        );
        registry.register(
            "etcdguard_store_requests",
            "S3 requests sent to backup stores",
            read.requests.clone(),
        );
        registry.register(
            "etcdguard_snapshot_verifications",
            "Backup snapshots streamed through the verifier",
            read.verifications.clone(),
        );
        registry.register(
            "etcdguard_verify_cache_hits",
            "Backup objects not read again because they are unchanged since they were verified",
            read.cache_hits.clone(),
        );
    }
}

/// A webhook that cannot gather a fact its policies require would refuse every gated change
/// (or, worse, be configured to pass them): refuse to start instead, naming the flag. Logs the
/// facts it will gather.
pub fn check_fact_sources(policies: &PolicySet, facts: &FactOptions) -> Result<(), StartError> {
    let needs = gate::request::needs_of_set(policies);
    if !needs.store.is_empty() && facts.stores.is_empty() {
        return Err(StartError::NoStore(needs.store.join(", ")));
    }
    if !needs.etcd.is_empty() && facts.etcd.is_none() {
        return Err(StartError::NoEtcd(needs.etcd.join(", ")));
    }
    let s3 = facts
        .stores
        .iter()
        .filter(|s| s.starts_with("s3://"))
        .count();
    tracing::info!(
        stores = %facts.stores.join(","),
        live_etcd = facts.etcd.is_some(),
        lifecycle_rules_from_s3_stores = s3,
        "facts gathered on each refresh"
    );
    if !needs.lifecycle.is_empty() && s3 == 0 {
        tracing::warn!(
            policies = %needs.lifecycle.join(","),
            "no s3:// store: bucket lifecycle rules are judged only when a reviewed object carries them"
        );
    }
    Ok(())
}

/// Refresh the gate's facts every `interval` (from the end of one refresh to the start of the
/// next) and keep the age gauges moving in between; runs until aborted.
pub async fn refresh_loop(gate: Arc<EtcdGate>, interval: Duration) {
    loop {
        gate.refresh().await;
        let until = tokio::time::Instant::now() + interval;
        while tokio::time::Instant::now() < until {
            gate.tick_ages(Utc::now());
            tokio::time::sleep(Duration::from_secs(5).min(interval)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Operation;

    /// The webhook classifies changes with `Detail::KindsOnly`: on every object fixture pair,
    /// CREATE and DELETE that a policy gates, under unknown and unchecked facts and every mode,
    /// the answer (allowed, message, warnings, annotations) is the one a `Full` classification
    /// gives.
    #[test]
    fn kinds_only_classification_gives_the_webhook_the_same_answer() {
        let policies = PolicySet::embedded().unwrap();
        let objects: Vec<Arc<serde_json::Value>> = crate::json::object_fixtures()
            .into_iter()
            .map(Arc::new)
            .collect();
        let mut requests = Vec::new();
        for a in &objects {
            requests.push(Request::from_shared(
                Operation::Create,
                None,
                Some(a.clone()),
            ));
            requests.push(Request::from_shared(
                Operation::Delete,
                Some(a.clone()),
                None,
            ));
            for b in &objects {
                requests.push(Request::from_shared(
                    Operation::Update,
                    Some(a.clone()),
                    Some(b.clone()),
                ));
            }
        }
        let facts = [
            Facts {
                stores: vec![Fact::unknown("no store answered")],
                store_urls: vec!["s3://bucket/prefix".into()],
                etcd: Fact::unknown("no endpoint answered"),
                lifecycle: Fact::unknown("rules unreadable"),
                cached: vec![],
            },
            Facts {
                stores: vec![],
                store_urls: vec![],
                etcd: Fact::not_checked("not asked"),
                lifecycle: Fact::not_checked("not asked"),
                cached: vec![],
            },
        ];
        let now = Utc::now();
        let mut gated = 0;
        for req in &requests {
            let matches = policies.matching(req);
            if matches.is_empty() {
                continue;
            }
            gated += 1;
            let mut full = gate::Change::default();
            match crate::change::from_request(req) {
                Ok(set) => facts::summarize(&set, "admission", &mut full),
                Err(e) => full.gated.push(format!("object not classified: {e}")),
            }
            let lean = object_change(req);
            for facts in &facts {
                for mode in [None, Some(gate::Mode::Warn), Some(gate::Mode::Enforce)] {
                    let overrides = Overrides {
                        mode,
                        detail: gate::Detail::Problems,
                        ..Overrides::default()
                    };
                    let answer = |change: &gate::Change| {
                        let d = gate::request::decide_matched(
                            &policies,
                            Some(req),
                            matches.clone(),
                            facts,
                            change,
                            overrides,
                            now,
                        );
                        to_webhook(&d, &policies, req)
                    };
                    assert_eq!(
                        answer(&full),
                        answer(&lean),
                        "{} {:?}",
                        req.kind,
                        req.operation
                    );
                }
            }
        }
        assert!(gated >= 20, "only {gated} gated requests");
    }
}
