//! Facts from a live etcd cluster (issue #5).
//!
//! [`collect`] asks every given endpoint (and, optionally, every member's advertised client URL)
//! for its status, checks health with a linearizable read, and reads the member list and
//! alarms. It uses **read-only RPCs only** (Status, Range with `count_only`, MemberList,
//! Alarm with action GET): never Put, Delete, Txn, Compact, Defragment or alarm disarm.
//!
//! Every call has a deadline: a connect timeout and a per-RPC timeout, and the whole collection
//! runs under an overall deadline. Anything that cannot be found out is a [`Fact::Unknown`] with
//! a reason naming the endpoint, never a hang and never a guess.
//!
//! [`revision_behind_snapshot`] is the pure revision-consistency rule the gate applies to
//! [`LiveFacts::revision`] and the newest snapshot's revision.

use etcd_client::{
    AlarmAction, AlarmType, Certificate, Client, ConnectOptions, GetOptions, Identity, TlsOptions,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// etcd's default backend quota (`--quota-backend-bytes` unset): 2 GiB.
pub const DEFAULT_QUOTA_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// How to reach etcd. Build it from the CLI with [`crate::cli::etcd_args::EtcdArgs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdOptions {
    /// Client endpoints, `host:port` or `http(s)://host:port`. Without a scheme, `https://` is
    /// used when TLS files are given and `http://` otherwise.
    pub endpoints: Vec<String>,
    /// CA bundle (PEM) that signed the server certificates.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for `--client-cert-auth`; needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// Client private key (PEM); needs `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Deadline for establishing a connection to one endpoint.
    pub connect_timeout: Duration,
    /// Deadline for each RPC.
    pub request_timeout: Duration,
    /// Deadline for the whole collection; endpoints not done by then are unknown.
    pub overall_timeout: Duration,
    /// Backend quota assumed when the server does not report one (etcd < 3.6 does not).
    pub quota_bytes: u64,
    /// Also probe members' advertised client URLs that are not among `endpoints`
    /// (like `etcdctl endpoint status --cluster`).
    pub discover_members: bool,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        EtcdOptions {
            endpoints: vec!["http://127.0.0.1:2379".to_string()],
            ca_file: None,
            cert_file: None,
            key_file: None,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(3),
            overall_timeout: Duration::from_secs(10),
            quota_bytes: DEFAULT_QUOTA_BYTES,
            discover_members: true,
        }
    }
}

/// Configuration errors: nothing was asked of etcd (exit code 2 territory). Network failures
/// are never errors; they are [`Fact::Unknown`] entries in [`LiveFacts`].
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// No endpoint was given.
    #[error("no etcd endpoint given (--etcd-endpoints)")]
    NoEndpoints,
    /// A TLS file could not be read.
    #[error("cannot read {what} {path}: {source}")]
    TlsFile {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// Only one of the client certificate and key was given.
    #[error("--etcd-cert and --etcd-key must be given together")]
    CertWithoutKey,
    /// An endpoint is not usable with the TLS settings.
    #[error("endpoint {endpoint}: {detail}")]
    Endpoint { endpoint: String, detail: String },
}

/// A fact that was either found out or not, with the reason why not.
/// Serialized as `{"state":"known","value":…}` or `{"state":"unknown","reason":"…"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum Fact<T> {
    /// The value was read from etcd.
    Known { value: T },
    /// The value could not be found out; `reason` names the endpoint(s) and the failure.
    Unknown { reason: String },
}

impl<T> Fact<T> {
    /// The value, if known.
    pub fn known(&self) -> Option<&T> {
        match self {
            Fact::Known { value } => Some(value),
            Fact::Unknown { .. } => None,
        }
    }
    /// The reason, if unknown.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Fact::Known { .. } => None,
            Fact::Unknown { reason } => Some(reason),
        }
    }
    fn unknown(reason: impl Into<String>) -> Self {
        Fact::Unknown {
            reason: reason.into(),
        }
    }
}

/// Everything [`collect`] found out about the cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveFacts {
    /// Cluster id (hex) from the response headers; unknown if no endpoint answered or the
    /// endpoints belong to different clusters.
    pub cluster_id: Fact<String>,
    /// Members from MemberList.
    pub members: Fact<Vec<Member>>,
    /// One entry per endpoint probed (given endpoints first, then discovered member URLs).
    pub endpoints: Vec<EndpointFact>,
    /// The raft leader as reported by the members' status.
    pub leader: Fact<Leader>,
    /// Healthy voting members vs cluster size.
    pub quorum: Fact<Quorum>,
    /// The current revision (leader's header revision, else the highest seen).
    pub revision: Fact<i64>,
    /// Backend size vs quota (the largest member db).
    pub db: Fact<DbUsage>,
    /// Active alarms (NOSPACE, CORRUPT); an empty list means none.
    pub alarms: Fact<Vec<Alarm>>,
    /// Wall time the collection took, in milliseconds.
    pub elapsed_ms: u64,
}

/// A cluster member from MemberList.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// Member id in hex (as `etcdctl member list` prints it).
    pub id: String,
    /// Name; empty if the member has not started.
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub is_learner: bool,
    /// Health from a probe of one of its endpoints: `Some(false)` when its client URL was probed
    /// and failed, `None` when it was not probed.
    pub healthy: Option<bool>,
    /// Whether it is the raft leader (as reported by the probed statuses).
    pub is_leader: bool,
}

/// The result of probing one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointFact {
    /// The endpoint URL probed.
    pub endpoint: String,
    /// Maintenance Status of this endpoint's member.
    pub status: Fact<EndpointStatus>,
    /// True when Status succeeded without errors and a linearizable read succeeded
    /// (the same test as `etcdctl endpoint health`).
    pub healthy: bool,
    /// Why the endpoint is not healthy (names the endpoint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Maintenance Status of one member.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointStatus {
    /// Member id (hex) that answered.
    pub member_id: String,
    /// Cluster id (hex) from the header.
    pub cluster_id: String,
    /// etcd server version.
    pub version: String,
    /// Physically allocated backend size in bytes.
    pub db_size: i64,
    /// Logically used backend size in bytes.
    pub db_size_in_use: i64,
    /// Backend quota reported by the server (etcd >= 3.6), if any.
    pub db_size_quota: Option<i64>,
    /// Leader member id (hex); `None` when the member knows no leader.
    pub leader: Option<String>,
    pub raft_term: u64,
    pub raft_index: u64,
    pub raft_applied_index: u64,
    /// Header revision of the Status response.
    pub revision: i64,
    pub is_learner: bool,
    /// Errors the member reports (e.g. `NOSPACE` alarms as text).
    pub errors: Vec<String>,
}

/// The raft leader.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Leader {
    /// Leader member id (hex).
    pub id: String,
    /// Leader name from MemberList, when known.
    pub name: Option<String>,
    /// Raft term in which it leads.
    pub raft_term: u64,
}

/// Healthy voting members vs cluster size.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Quorum {
    /// Voting members (learners excluded).
    pub cluster_size: usize,
    /// Voting members a probe found healthy.
    pub healthy_members: usize,
    /// Voting members no probe reached (unknown health).
    pub unknown_members: usize,
    /// `cluster_size / 2 + 1`.
    pub quorum_size: usize,
    /// `healthy_members >= quorum_size`.
    pub has_quorum: bool,
    /// Healthy members that can be lost without losing quorum (0 when none or no quorum).
    pub failure_tolerance: usize,
}

/// Backend size vs quota.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DbUsage {
    /// Largest physically allocated backend size among members.
    pub db_size_bytes: i64,
    /// Logically used size of that member.
    pub db_size_in_use_bytes: i64,
    /// The member endpoint with the largest db.
    pub endpoint: String,
    /// The quota compared against.
    pub quota_bytes: u64,
    /// `server` (reported by Status) or `assumed` (from options / `--etcd-quota-bytes`).
    pub quota_source: &'static str,
    /// `db_size_bytes / quota_bytes`.
    pub used_ratio: f64,
}

/// One active alarm.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alarm {
    /// Member id (hex).
    pub member_id: String,
    /// `NOSPACE`, `CORRUPT` (etcd's alarm type names).
    pub alarm: String,
}

/// The revision-consistency rule of gardener's etcd-backup-restore
/// (`checkEtcdDataRevisionConsistency`): when the live (or data-dir) revision is **below** the
/// newest snapshot's revision, the cluster was re-seeded (a new, empty cluster) or restored
/// from something older than the backups: data written after that revision is not in etcd.
///
/// Returns true exactly when `live_revision < snapshot_revision`. Equal or higher is
/// consistent (writes after the snapshot raise the live revision). A fresh cluster has
/// revision 1.
pub fn revision_behind_snapshot(live_revision: i64, snapshot_revision: i64) -> bool {
    live_revision < snapshot_revision
}

fn hex(id: u64) -> String {
    format!("{id:x}")
}

/// TLS material read once, shared by every probe.
#[derive(Clone)]
struct Prepared {
    tls: Option<TlsOptions>,
    connect_timeout: Duration,
    request_timeout: Duration,
}

fn read(what: &'static str, path: &PathBuf) -> Result<Vec<u8>, LiveError> {
    std::fs::read(path).map_err(|source| LiveError::TlsFile {
        what,
        path: path.clone(),
        source,
    })
}

fn prepare(opts: &EtcdOptions) -> Result<(Prepared, Vec<String>), LiveError> {
    if opts.endpoints.iter().all(|e| e.trim().is_empty()) {
        return Err(LiveError::NoEndpoints);
    }
    let tls = match (&opts.ca_file, &opts.cert_file, &opts.key_file) {
        (None, None, None) => None,
        (_, Some(_), None) | (_, None, Some(_)) => return Err(LiveError::CertWithoutKey),
        (ca, cert, key) => {
            let mut t = TlsOptions::new();
            if let Some(ca) = ca {
                t = t.ca_certificate(Certificate::from_pem(read("CA file", ca)?));
            }
            if let (Some(c), Some(k)) = (cert, key) {
                t = t.identity(Identity::from_pem(
                    read("client certificate", c)?,
                    read("client key", k)?,
                ));
            }
            Some(t)
        }
    };
    let mut endpoints = Vec::new();
    for e in opts
        .endpoints
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty())
    {
        let url = if e.starts_with("http://") || e.starts_with("https://") {
            e.to_string()
        } else if tls.is_some() {
            format!("https://{e}")
        } else {
            format!("http://{e}")
        };
        if tls.is_some() && url.starts_with("http://") {
            return Err(LiveError::Endpoint {
                endpoint: url,
                detail: "TLS files were given but the endpoint is http://; use https://"
                    .to_string(),
            });
        }
        if !endpoints.contains(&url) {
            endpoints.push(url);
        }
    }
    Ok((
        Prepared {
            tls,
            connect_timeout: opts.connect_timeout,
            request_timeout: opts.request_timeout,
        },
        endpoints,
    ))
}

/// What one probe found.
struct Probe {
    endpoint: String,
    status: Result<EndpointStatus, String>,
    health: Result<(), String>,
    members: Result<Vec<Member>, String>,
    alarms: Result<Vec<Alarm>, String>,
}

impl Probe {
    /// A probe that learned nothing; every item carries `reason`.
    fn failed(endpoint: String, reason: String) -> Probe {
        Probe {
            endpoint,
            status: Err(reason.clone()),
            health: Err(reason.clone()),
            members: Err(reason.clone()),
            alarms: Err(reason),
        }
    }
}

async fn rpc<T, F>(endpoint: &str, what: &str, timeout: Duration, f: F) -> Result<T, String>
where
    F: std::future::Future<Output = Result<T, etcd_client::Error>>,
{
    match tokio::time::timeout(timeout, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{endpoint}: {what} failed: {}", describe(&e))),
        Err(_) => Err(format!(
            "{endpoint}: {what} timed out after {}",
            humantime::format_duration(timeout)
        )),
    }
}

/// A short description of an etcd-client error: its message and the innermost cause
/// (e.g. `tcp connect error: Connection refused (os error 111)`).
fn describe(e: &etcd_client::Error) -> String {
    use std::error::Error as _;
    let (head, mut root): (String, Option<&dyn std::error::Error>) = match e {
        etcd_client::Error::GRpcStatus(s) => {
            let head = if s.message().is_empty() {
                format!("{:?}", s.code())
            } else {
                s.message().to_string()
            };
            (head, s.source())
        }
        etcd_client::Error::TransportError(t) => (t.to_string(), t.source()),
        other => (other.to_string(), other.source()),
    };
    let mut innermost = None;
    while let Some(r) = root {
        innermost = Some(r.to_string());
        root = r.source();
    }
    match innermost {
        Some(cause) if !head.contains(&cause) => format!("{head}: {cause}"),
        _ => head,
    }
}

async fn probe(endpoint: String, p: Arc<Prepared>) -> Probe {
    let mut copts = ConnectOptions::new()
        .with_connect_timeout(p.connect_timeout)
        .with_timeout(p.request_timeout);
    if let Some(tls) = &p.tls {
        copts = copts.with_tls(tls.clone());
    }
    let connect = Client::connect([endpoint.as_str()], Some(copts));
    let mut client = match rpc(&endpoint, "connect", p.connect_timeout, connect).await {
        Ok(c) => c,
        Err(reason) => return Probe::failed(endpoint, reason),
    };
    // The channel connects lazily: the first RPC pays the connect time.
    let first = p.connect_timeout + p.request_timeout;
    let status = rpc(&endpoint, "status", first, client.status())
        .await
        .map(|s| {
            let header = s.header();
            EndpointStatus {
                member_id: hex(header.map(|h| h.member_id()).unwrap_or(0)),
                cluster_id: hex(header.map(|h| h.cluster_id()).unwrap_or(0)),
                version: s.version().to_string(),
                db_size: s.db_size(),
                db_size_in_use: s.raft_used_db_size(),
                db_size_quota: Some(s.db_size_quota()).filter(|q| *q > 0),
                leader: Some(s.leader()).filter(|l| *l != 0).map(hex),
                raft_term: s.raft_term(),
                raft_index: s.raft_index(),
                raft_applied_index: s.raft_applied_index(),
                revision: header.map(|h| h.revision()).unwrap_or(0),
                is_learner: s.is_learner(),
                errors: s.errors().to_vec(),
            }
        });
    if let Err(reason) = status {
        // Unreachable: do not spend three more timeouts on the other RPCs.
        return Probe::failed(endpoint, reason);
    }
    let t = p.request_timeout;
    // Linearizable (not serializable) count-only read: needs a leader and quorum.
    let health = rpc(
        &endpoint,
        "linearizable read",
        t,
        client.get("health", Some(GetOptions::new().with_count_only())),
    )
    .await
    .map(|_| ());
    let members = rpc(&endpoint, "member list", t, client.member_list())
        .await
        .map(|r| {
            r.members()
                .iter()
                .map(|m| Member {
                    id: hex(m.id()),
                    name: m.name().to_string(),
                    peer_urls: m.peer_urls().to_vec(),
                    client_urls: m.client_urls().to_vec(),
                    is_learner: m.is_learner(),
                    healthy: None,
                    is_leader: false,
                })
                .collect()
        });
    let alarms = rpc(
        &endpoint,
        "alarm list",
        t,
        client.alarm(AlarmAction::Get, AlarmType::None, None),
    )
    .await
    .map(|r| {
        r.alarms()
            .iter()
            .map(|a| Alarm {
                member_id: hex(a.member_id()),
                alarm: a.alarm().as_str_name().to_string(),
            })
            .collect()
    });
    Probe {
        endpoint,
        status,
        health,
        members,
        alarms,
    }
}

/// Probe all `endpoints` concurrently, each bounded by `deadline`.
async fn probe_all(endpoints: &[String], p: &Arc<Prepared>, deadline: Instant) -> Vec<Probe> {
    let mut set = tokio::task::JoinSet::new();
    for (i, e) in endpoints.iter().enumerate() {
        let (e, p) = (e.clone(), p.clone());
        set.spawn(async move {
            let budget = deadline.saturating_duration_since(Instant::now());
            let r = tokio::time::timeout(budget, probe(e.clone(), p)).await;
            let probe = r.unwrap_or_else(|_| {
                let reason = format!("{e}: overall deadline reached before the probe finished");
                Probe::failed(e, reason)
            });
            (i, probe)
        });
    }
    let mut out: Vec<Option<Probe>> = endpoints.iter().map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        if let Ok((i, probe)) = joined {
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(probe);
            }
        }
    }
    out.into_iter()
        .zip(endpoints)
        .map(|(p, e)| {
            p.unwrap_or_else(|| {
                let reason = format!("{e}: probe task failed");
                Probe::failed(e.clone(), reason)
            })
        })
        .collect()
}

/// Collect live facts from etcd. Must run inside a Tokio runtime (it spawns one task per
/// endpoint). Network problems never fail this function: they become
/// [`Fact::Unknown`] entries naming the endpoint. Returns within about
/// `opts.overall_timeout` (plus scheduling slack).
///
/// Errors only on configuration problems ([`LiveError`]): no endpoints, unreadable TLS files,
/// a certificate without a key, an `http://` endpoint with TLS files.
pub async fn collect(opts: &EtcdOptions) -> Result<LiveFacts, LiveError> {
    let started = Instant::now();
    let deadline = started + opts.overall_timeout;
    let (prepared, endpoints) = prepare(opts)?;
    let prepared = Arc::new(prepared);
    let mut probes = probe_all(&endpoints, &prepared, deadline).await;

    let members: Option<Vec<Member>> = probes.iter().find_map(|p| p.members.clone().ok());
    if opts.discover_members {
        if let Some(members) = &members {
            let answered: Vec<String> = probes
                .iter()
                .filter_map(|p| p.status.as_ref().ok().map(|s| s.member_id.clone()))
                .collect();
            let extra: Vec<String> = members
                .iter()
                .filter(|m| !answered.contains(&m.id))
                .filter_map(|m| m.client_urls.first().cloned())
                .filter(|u| !endpoints.contains(u))
                .collect();
            if !extra.is_empty() && Instant::now() < deadline {
                probes.extend(probe_all(&extra, &prepared, deadline).await);
            }
        }
    }
    Ok(assemble(opts, probes, members, started))
}

fn assemble(
    opts: &EtcdOptions,
    probes: Vec<Probe>,
    members: Option<Vec<Member>>,
    started: Instant,
) -> LiveFacts {
    let reasons = all_reasons(&probes);
    let statuses: Vec<(&str, &EndpointStatus)> = probes
        .iter()
        .filter_map(|p| p.status.as_ref().ok().map(|s| (p.endpoint.as_str(), s)))
        .collect();
    let cluster_id = cluster_id(&statuses, &reasons);
    let leader = leader(&statuses, members.as_deref(), &reasons);
    let leader_id = leader.known().map(|l| l.id.clone());
    let members = members.map(|ms| with_health(ms, &probes, leader_id.as_deref()));
    let quorum = match &members {
        None => Fact::unknown(format!("member list unavailable: {reasons}")),
        Some(ms) => quorum(ms),
    };
    let revision = match statuses
        .iter()
        .find(|(_, s)| Some(&s.member_id) == leader_id.as_ref())
        .or_else(|| statuses.iter().max_by_key(|(_, s)| s.revision))
    {
        Some((_, s)) => Fact::Known { value: s.revision },
        None => Fact::unknown(reasons.clone()),
    };
    let db = db_usage(&statuses, opts.quota_bytes, &reasons);
    let alarms = match probes.iter().find_map(|p| p.alarms.clone().ok()) {
        Some(a) => Fact::Known { value: a },
        None => Fact::unknown(
            probes
                .iter()
                .filter_map(|p| p.alarms.as_ref().err().map(String::as_str))
                .collect::<Vec<_>>()
                .join("; "),
        ),
    };
    let members = match members {
        Some(ms) => Fact::Known { value: ms },
        None => Fact::unknown(reasons),
    };
    LiveFacts {
        cluster_id,
        members,
        endpoints: probes.into_iter().map(endpoint_fact).collect(),
        leader,
        quorum,
        revision,
        db,
        alarms,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

/// Why nothing is known: every probe's error, or "no endpoint answered".
fn all_reasons(probes: &[Probe]) -> String {
    let r: Vec<&str> = probes
        .iter()
        .filter_map(|p| p.status.as_ref().err().map(String::as_str))
        .collect();
    if r.is_empty() {
        "no endpoint answered".to_string()
    } else {
        r.join("; ")
    }
}

/// The cluster id: all answering endpoints must agree.
fn cluster_id(statuses: &[(&str, &EndpointStatus)], reasons: &str) -> Fact<String> {
    let mut ids: Vec<&str> = statuses
        .iter()
        .map(|(_, s)| s.cluster_id.as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    match ids.as_slice() {
        [] => Fact::unknown(reasons.to_string()),
        [one] => Fact::Known {
            value: one.to_string(),
        },
        _ => Fact::unknown(format!(
            "endpoints belong to different clusters: {}",
            statuses
                .iter()
                .map(|(e, s)| format!("{e} is cluster {}", s.cluster_id))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The leader: the leader id reported in the highest raft term.
fn leader(
    statuses: &[(&str, &EndpointStatus)],
    members: Option<&[Member]>,
    reasons: &str,
) -> Fact<Leader> {
    let leader_status = statuses
        .iter()
        .filter(|(_, s)| s.leader.is_some())
        .max_by_key(|(_, s)| s.raft_term);
    match leader_status {
        Some((_, s)) => {
            let id = s.leader.clone().unwrap_or_default();
            let name = members
                .and_then(|ms| ms.iter().find(|m| m.id == id))
                .map(|m| m.name.clone());
            Fact::Known {
                value: Leader {
                    id,
                    name,
                    raft_term: s.raft_term,
                },
            }
        }
        None if statuses.is_empty() => Fact::unknown(reasons.to_string()),
        None => Fact::unknown(format!(
            "no leader: {} report no raft leader (election in progress or quorum lost)",
            statuses
                .iter()
                .map(|(e, _)| *e)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Members with their health (from the probes, per member id) and leadership.
fn with_health(members: Vec<Member>, probes: &[Probe], leader_id: Option<&str>) -> Vec<Member> {
    let mut member_health: BTreeMap<String, bool> = BTreeMap::new();
    for p in probes {
        if let Ok(s) = &p.status {
            let healthy = p.health.is_ok() && s.errors.is_empty();
            let e = member_health.entry(s.member_id.clone()).or_insert(false);
            *e = *e || healthy;
        }
    }
    members
        .into_iter()
        .map(|mut m| {
            // A member whose advertised client URL was probed and failed is unhealthy.
            let probed_and_failed = probes
                .iter()
                .any(|p| p.status.is_err() && m.client_urls.contains(&p.endpoint));
            m.healthy = member_health
                .get(&m.id)
                .copied()
                .or(probed_and_failed.then_some(false));
            m.is_leader = leader_id == Some(m.id.as_str());
            m
        })
        .collect()
}

/// Quorum of the voting members; unknown when the unprobed members could tip it.
fn quorum(ms: &[Member]) -> Fact<Quorum> {
    let voting: Vec<&Member> = ms.iter().filter(|m| !m.is_learner).collect();
    let size = voting.len();
    let healthy = voting.iter().filter(|m| m.healthy == Some(true)).count();
    let unknown = voting.iter().filter(|m| m.healthy.is_none()).count();
    let q = size / 2 + 1;
    if healthy >= q || healthy + unknown < q {
        Fact::Known {
            value: Quorum {
                cluster_size: size,
                healthy_members: healthy,
                unknown_members: unknown,
                quorum_size: q,
                has_quorum: healthy >= q,
                failure_tolerance: healthy.saturating_sub(q),
            },
        }
    } else {
        Fact::unknown(format!(
            "{healthy} of {size} voting members healthy, {unknown} not probed \
             (quorum needs {q}); pass their endpoints or enable member discovery"
        ))
    }
}

/// The largest database among the members against its quota (the server's, else `assumed`).
fn db_usage(
    statuses: &[(&str, &EndpointStatus)],
    assumed_quota: u64,
    reasons: &str,
) -> Fact<DbUsage> {
    match statuses.iter().max_by_key(|(_, s)| s.db_size) {
        Some((e, s)) => {
            let (quota, source) = match s.db_size_quota {
                Some(q) => (u64::try_from(q).unwrap_or(assumed_quota), "server"),
                None => (assumed_quota, "assumed"),
            };
            let ratio = if quota == 0 {
                0.0
            } else {
                s.db_size.max(0) as f64 / quota as f64
            };
            Fact::Known {
                value: DbUsage {
                    db_size_bytes: s.db_size,
                    db_size_in_use_bytes: s.db_size_in_use,
                    endpoint: e.to_string(),
                    quota_bytes: quota,
                    quota_source: source,
                    used_ratio: ratio,
                },
            }
        }
        None => Fact::unknown(reasons.to_string()),
    }
}

/// One probed endpoint: healthy, or why not.
fn endpoint_fact(p: Probe) -> EndpointFact {
    let reason = match (&p.status, &p.health) {
        (Err(e), _) => Some(e.clone()),
        (Ok(s), _) if !s.errors.is_empty() => Some(format!(
            "{}: member reports errors: {}",
            p.endpoint,
            s.errors.join(", ")
        )),
        (Ok(_), Err(e)) => Some(e.clone()),
        (Ok(_), Ok(())) => None,
    };
    EndpointFact {
        endpoint: p.endpoint,
        healthy: reason.is_none(),
        reason,
        status: match p.status {
            Ok(s) => Fact::Known { value: s },
            Err(e) => Fact::Unknown { reason: e },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_rule() {
        assert!(revision_behind_snapshot(1, 42));
        assert!(!revision_behind_snapshot(42, 42));
        assert!(!revision_behind_snapshot(43, 42));
    }

    #[test]
    fn prepare_validates_configuration() {
        let mut o = EtcdOptions {
            endpoints: vec![" ".into()],
            ..EtcdOptions::default()
        };
        assert!(matches!(prepare(&o), Err(LiveError::NoEndpoints)));
        o.endpoints = vec!["127.0.0.1:2379".into(), "http://127.0.0.1:2379".into()];
        let (_, eps) = prepare(&o).unwrap();
        assert_eq!(eps, vec!["http://127.0.0.1:2379".to_string()]);
        o.cert_file = Some("/nonexistent/cert.pem".into());
        assert!(matches!(prepare(&o), Err(LiveError::CertWithoutKey)));
        o.key_file = Some("/nonexistent/key.pem".into());
        let err = prepare(&o).err().unwrap().to_string();
        assert!(err.contains("/nonexistent/cert.pem"), "{err}");
    }

    fn status(member: &str, leader: Option<&str>, revision: i64) -> EndpointStatus {
        EndpointStatus {
            member_id: member.to_string(),
            cluster_id: "c1".to_string(),
            version: "3.4.23".to_string(),
            db_size: 4096,
            db_size_in_use: 2048,
            db_size_quota: None,
            leader: leader.map(str::to_string),
            raft_term: 2,
            raft_index: 10,
            raft_applied_index: 10,
            revision,
            is_learner: false,
            errors: Vec::new(),
        }
    }

    fn member(id: &str, url: &str) -> Member {
        Member {
            id: id.to_string(),
            name: format!("n-{id}"),
            peer_urls: Vec::new(),
            client_urls: vec![url.to_string()],
            is_learner: false,
            healthy: None,
            is_leader: false,
        }
    }

    fn ok_probe(endpoint: &str, s: EndpointStatus, members: &[Member]) -> Probe {
        Probe {
            endpoint: endpoint.to_string(),
            status: Ok(s),
            health: Ok(()),
            members: Ok(members.to_vec()),
            alarms: Ok(Vec::new()),
        }
    }

    #[test]
    fn quorum_is_unknown_when_unprobed_members_could_decide_it() {
        let ms = [
            member("a", "http://a"),
            member("b", "http://b"),
            member("c", "http://c"),
        ];
        let probes = vec![ok_probe("http://a", status("a", Some("b"), 7), &ms)];
        let f = assemble(
            &EtcdOptions::default(),
            probes,
            Some(ms.to_vec()),
            Instant::now(),
        );
        let reason = f.quorum.reason().expect("unknown quorum");
        assert!(
            reason.contains("1 of 3") && reason.contains("2 not probed"),
            "{reason}"
        );
        // The leader is known from a follower's status, with its name from the member list.
        let leader = f.leader.known().expect("leader");
        assert_eq!(
            (leader.id.as_str(), leader.name.as_deref()),
            ("b", Some("n-b"))
        );
        assert_eq!(f.db.known().map(|d| d.quota_source), Some("assumed"));
    }

    #[test]
    fn quorum_lost_when_failed_probes_cover_a_majority() {
        let ms = [
            member("a", "http://a"),
            member("b", "http://b"),
            member("c", "http://c"),
        ];
        let probes = vec![
            ok_probe("http://a", status("a", None, 7), &ms),
            Probe::failed("http://b".into(), "http://b: status failed: refused".into()),
            Probe::failed("http://c".into(), "http://c: status failed: refused".into()),
        ];
        let f = assemble(
            &EtcdOptions::default(),
            probes,
            Some(ms.to_vec()),
            Instant::now(),
        );
        let q = f.quorum.known().expect("known");
        assert_eq!((q.healthy_members, q.unknown_members), (1, 0));
        assert!(!q.has_quorum);
        assert!(f.leader.reason().unwrap_or("").contains("no leader"));
    }

    #[test]
    fn different_cluster_ids_make_cluster_id_unknown() {
        let mut other = status("x", Some("x"), 3);
        other.cluster_id = "c2".to_string();
        let probes = vec![
            ok_probe("http://a", status("a", Some("a"), 7), &[]),
            ok_probe("http://x", other, &[]),
        ];
        let f = assemble(&EtcdOptions::default(), probes, None, Instant::now());
        let reason = f.cluster_id.reason().expect("unknown");
        assert!(
            reason.contains("http://a is cluster c1") && reason.contains("http://x is cluster c2"),
            "{reason}"
        );
    }

    #[test]
    fn server_quota_wins_over_assumed() {
        let mut s = status("a", Some("a"), 7);
        s.db_size_quota = Some(8192);
        let f = assemble(
            &EtcdOptions::default(),
            vec![ok_probe("http://a", s, &[])],
            None,
            Instant::now(),
        );
        let db = f.db.known().expect("db");
        assert_eq!((db.quota_bytes, db.quota_source), (8192, "server"));
        assert!((db.used_ratio - 0.5).abs() < 1e-9);
    }

    #[test]
    fn fact_serializes_with_state_tag() {
        let k: Fact<i64> = Fact::Known { value: 7 };
        let u: Fact<i64> = Fact::unknown("http://x: status timed out");
        assert_eq!(
            serde_json::to_string(&k).unwrap(),
            r#"{"state":"known","value":7}"#
        );
        assert_eq!(
            serde_json::to_string(&u).unwrap(),
            r#"{"state":"unknown","reason":"http://x: status timed out"}"#
        );
    }
}
