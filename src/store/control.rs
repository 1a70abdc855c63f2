//! etcd-manager control files and backup meta: parsing and what etcd-manager will do (pure).
//!
//! The decision table follows etcd-manager's controller (`pkg/controller/controller.go`,
//! `pkg/commands/vfs.go`): `etcd-cluster-created` is only checked for existence and
//! non-emptiness; `etcd-cluster-spec` is parsed as protobuf JSON (camelCase or snake_case).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

/// Contents of `control/etcd-cluster-spec` (or a meta's `clusterSpec`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    /// `memberCount` / `member_count`; 0 when omitted (proto3 omits unset fields).
    pub member_count: i64,
    /// `etcdVersion` / `etcd_version`; empty when omitted.
    pub etcd_version: String,
}

/// Contents of `control/etcd-cluster-created`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterCreated {
    /// Creation time (from Unix nanoseconds).
    pub created: DateTime<Utc>,
}

/// `_etcd_backup.meta` of one etcd-manager backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupMeta {
    /// Version of the etcd that took the backup (restore needs it).
    pub etcd_version: String,
    /// Meta `timestamp` (quoted Unix seconds).
    pub timestamp: Option<DateTime<Utc>>,
    /// The controller's cluster spec at backup time.
    pub cluster_spec: Option<ClusterSpec>,
}

/// State of one control file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum FileState<T> {
    /// The object does not exist.
    Missing,
    /// The object exists but has no bytes.
    Empty,
    /// The object exists but its contents are not what etcd-manager / kops write.
    Unparseable { reason: String },
    /// Parsed.
    Present { value: T },
    /// It could not be read (I/O or S3 error): unknown, with the reason.
    Unknown { reason: String },
}

impl<T> FileState<T> {
    /// The object exists (whatever its contents).
    pub fn exists(&self) -> Option<bool> {
        match self {
            FileState::Missing => Some(false),
            FileState::Unknown { .. } => None,
            _ => Some(true),
        }
    }
}

/// What etcd-manager's leader will do given the control files (kops reference §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ControlOutcome {
    /// Both present: normal operation, backups every interval.
    Normal,
    /// Spec missing, marker present: "no cluster spec set - must seed new cluster"; no backups.
    BackupsStopped,
    /// Marker missing, spec present: a NEW, EMPTY cluster will be seeded (data to trashcan).
    WillSeedNewCluster,
    /// Both missing: idle, no backups; seeds a new empty cluster as soon as the spec is written.
    IdleWillSeedWhenSpecWritten,
    /// etcd-manager cannot read the control files (empty marker, garbled spec): its control loop
    /// fails every cycle; no backups.
    ControllerError,
    /// The files could not be read by etcdguard.
    Unknown,
}

/// Control files of an etcd-manager store and their meaning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlFacts {
    /// `control/etcd-cluster-spec`.
    pub spec: FileState<ClusterSpec>,
    /// `control/etcd-cluster-created`.
    pub created: FileState<ClusterCreated>,
    /// What etcd-manager will do.
    pub outcome: ControlOutcome,
    /// One sentence explaining `outcome` in etcd-manager's terms.
    pub meaning: String,
    /// Consistency problems (member count, version, marker vs backups).
    pub problems: Vec<String>,
}

fn get<'a>(obj: &'a Map<String, Value>, camel: &str, snake: &str) -> Option<&'a Value> {
    obj.get(camel).or_else(|| obj.get(snake))
}

fn int_value(v: &Value, what: &str) -> Result<i64, String> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| format!("{what} is not an integer: {n}")),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("{what} is not an integer: {s:?}")),
        other => Err(format!("{what} is not an integer: {other}")),
    }
}

fn string_value(v: &Value, what: &str) -> Result<String, String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{what} is not a string: {v}"))
}

fn object(bytes: &[u8], what: &str) -> Result<Map<String, Value>, String> {
    match crate::json::value_from_slice(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(format!("{what} is JSON but not an object: {other}")),
        Err(e) => Err(format!("{what} is not JSON: {e}")),
    }
}

fn spec_from_map(m: &Map<String, Value>, what: &str) -> Result<ClusterSpec, String> {
    const KNOWN: [&str; 4] = ["memberCount", "member_count", "etcdVersion", "etcd_version"];
    if let Some(k) = m.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(format!(
            "{what} has unknown field {k:?} (etcd-manager's protobuf JSON reader rejects unknown fields)"
        ));
    }
    let member_count = match get(m, "memberCount", "member_count") {
        Some(v) => int_value(v, "memberCount")?,
        None => 0,
    };
    let etcd_version = match get(m, "etcdVersion", "etcd_version") {
        Some(v) => string_value(v, "etcdVersion")?,
        None => String::new(),
    };
    Ok(ClusterSpec {
        member_count,
        etcd_version,
    })
}

/// Parse `control/etcd-cluster-spec` (`{"memberCount":N,"etcdVersion":"x"}`, camelCase or
/// snake_case, whitespace-insensitive).
pub fn parse_cluster_spec(bytes: &[u8]) -> Result<ClusterSpec, String> {
    spec_from_map(&object(bytes, "etcd-cluster-spec")?, "etcd-cluster-spec")
}

/// Parse `control/etcd-cluster-created` (`{"timestamp":<unix nanos>}`).
pub fn parse_cluster_created(bytes: &[u8]) -> Result<ClusterCreated, String> {
    let m = object(bytes, "etcd-cluster-created")?;
    let v = m
        .get("timestamp")
        .ok_or_else(|| "etcd-cluster-created has no \"timestamp\"".to_string())?;
    let nanos = int_value(v, "timestamp")?;
    if nanos <= 0 {
        return Err(format!(
            "etcd-cluster-created timestamp {nanos} is not a positive Unix-nanoseconds value"
        ));
    }
    Ok(ClusterCreated {
        created: DateTime::from_timestamp_nanos(nanos),
    })
}

/// Parse `_etcd_backup.meta` (protobuf JSON `BackupInfo`: `timestamp` is quoted Unix seconds).
pub fn parse_backup_meta(bytes: &[u8]) -> Result<BackupMeta, String> {
    let m = object(bytes, "_etcd_backup.meta")?;
    let etcd_version = match get(&m, "etcdVersion", "etcd_version") {
        Some(v) => string_value(v, "etcdVersion")?,
        None => String::new(),
    };
    let timestamp = match m.get("timestamp") {
        Some(v) => {
            let secs = int_value(v, "timestamp")?;
            Some(
                DateTime::from_timestamp(secs, 0)
                    .ok_or_else(|| format!("timestamp {secs} is out of range"))?,
            )
        }
        None => None,
    };
    let cluster_spec = match get(&m, "clusterSpec", "cluster_spec") {
        Some(Value::Object(cs)) => Some(spec_from_map(cs, "clusterSpec")?),
        Some(other) => return Err(format!("clusterSpec is not an object: {other}")),
        None => None,
    };
    Ok(BackupMeta {
        etcd_version,
        timestamp,
        cluster_spec,
    })
}

/// Turn raw reads into file states. `Ok(None)` = missing; `Err` = could not read.
pub fn spec_state(read: Result<Option<Vec<u8>>, String>) -> FileState<ClusterSpec> {
    match read {
        Err(reason) => FileState::Unknown { reason },
        Ok(None) => FileState::Missing,
        Ok(Some(b)) if b.is_empty() => FileState::Empty,
        Ok(Some(b)) => match parse_cluster_spec(&b) {
            Ok(value) => FileState::Present { value },
            Err(reason) => FileState::Unparseable { reason },
        },
    }
}

/// Turn raw reads into file states. `Ok(None)` = missing; `Err` = could not read.
pub fn created_state(read: Result<Option<Vec<u8>>, String>) -> FileState<ClusterCreated> {
    match read {
        Err(reason) => FileState::Unknown { reason },
        Ok(None) => FileState::Missing,
        Ok(Some(b)) if b.is_empty() => FileState::Empty,
        Ok(Some(b)) => match parse_cluster_created(&b) {
            Ok(value) => FileState::Present { value },
            Err(reason) => FileState::Unparseable { reason },
        },
    }
}

fn major_minor(v: &str) -> Option<(&str, &str)> {
    let mut it = v.trim_start_matches('v').split('.');
    Some((it.next()?, it.next()?))
}

/// Decide what etcd-manager will do and check consistency. `newest_meta` is the newest
/// backup's meta (if read); `newest_backup` its time.
pub fn assess(
    spec: FileState<ClusterSpec>,
    created: FileState<ClusterCreated>,
    newest_meta: Option<&BackupMeta>,
    newest_backup: Option<DateTime<Utc>>,
) -> ControlFacts {
    let mut problems = Vec::new();
    let (outcome, meaning) = match (&created, &spec) {
        (FileState::Unknown { reason }, _) => (
            ControlOutcome::Unknown,
            format!("unknown: could not read control/etcd-cluster-created ({reason})"),
        ),
        (_, FileState::Unknown { reason }) => (
            ControlOutcome::Unknown,
            format!("unknown: could not read control/etcd-cluster-spec ({reason})"),
        ),
        (FileState::Empty, _) => (
            ControlOutcome::ControllerError,
            "control/etcd-cluster-created is empty: etcd-manager fails every control cycle \
             (\"marker file was unexpectedly empty\"); no backups are taken"
                .to_string(),
        ),
        (FileState::Missing, FileState::Missing) => (
            ControlOutcome::IdleWillSeedWhenSpecWritten,
            "both control files are missing: etcd-manager logs \"detected that there is no existing \
             cluster\" and \"no cluster spec set - must seed new cluster\"; it takes no backups, and \
             as soon as kops writes etcd-cluster-spec (the next `kops update cluster --yes`) it will \
             seed a NEW, EMPTY etcd cluster"
                .to_string(),
        ),
        (FileState::Missing, FileState::Present { .. } | FileState::Empty | FileState::Unparseable { .. }) => {
            if matches!(spec, FileState::Present { .. }) {
                (
                    ControlOutcome::WillSeedNewCluster,
                    "control/etcd-cluster-created is missing while etcd-cluster-spec is present: \
                     etcd-manager will seed a NEW, EMPTY etcd cluster (running etcd stopped, its data \
                     moved to data-trashcan)"
                        .to_string(),
                )
            } else {
                (
                    ControlOutcome::ControllerError,
                    "control/etcd-cluster-created is missing and etcd-cluster-spec cannot be parsed: \
                     etcd-manager fails to read the spec every cycle; once the spec is fixed it will \
                     seed a NEW, EMPTY etcd cluster"
                        .to_string(),
                )
            }
        }
        (_, FileState::Missing) => (
            ControlOutcome::BackupsStopped,
            "control/etcd-cluster-spec is missing: etcd-manager logs \"no cluster spec set - must \
             seed new cluster\" and takes no backups; it stays so until the leader's etcd-manager \
             restarts, even if the spec is recreated"
                .to_string(),
        ),
        (_, FileState::Empty | FileState::Unparseable { .. }) => (
            ControlOutcome::ControllerError,
            "control/etcd-cluster-spec cannot be parsed: etcd-manager's control store refresh fails \
             (on leader change), so no backups and no reconcile until it is fixed"
                .to_string(),
        ),
        (_, FileState::Present { .. }) => (
            ControlOutcome::Normal,
            "both control files present: etcd-manager runs normally and takes a backup every \
             interval (15 min by default)"
                .to_string(),
        ),
    };
    if let FileState::Unparseable { reason } = &created {
        problems.push(format!(
            "control/etcd-cluster-created is not {{\"timestamp\":<unix nanos>}} ({reason}); etcd-manager \
             only checks that it exists and is non-empty"
        ));
    }
    if let FileState::Present { value } = &spec {
        if value.member_count < 1 {
            problems.push(format!(
                "etcd-cluster-spec memberCount is {} (expected >= 1)",
                value.member_count
            ));
        } else if value.member_count % 2 == 0 {
            problems.push(format!(
                "etcd-cluster-spec memberCount is {} (even: no better fault tolerance than {})",
                value.member_count,
                value.member_count - 1
            ));
        }
        if value.etcd_version.is_empty() {
            problems.push("etcd-cluster-spec has no etcdVersion".to_string());
        }
        if let Some(meta) = newest_meta {
            if let (Some(a), Some(b)) = (
                major_minor(&value.etcd_version),
                major_minor(&meta.etcd_version),
            ) {
                if a != b {
                    problems.push(format!(
                        "etcd-cluster-spec etcdVersion {} differs from the newest backup's etcdVersion {}",
                        value.etcd_version, meta.etcd_version
                    ));
                }
            }
            if let Some(cs) = &meta.cluster_spec {
                if cs.member_count != 0 && cs.member_count != value.member_count {
                    problems.push(format!(
                        "etcd-cluster-spec memberCount {} differs from the newest backup's clusterSpec memberCount {}",
                        value.member_count, cs.member_count
                    ));
                }
            }
        }
    }
    if let (FileState::Present { value }, Some(newest)) = (&created, newest_backup) {
        if value.created > newest {
            problems.push(format!(
                "etcd-cluster-created ({}) is newer than the newest backup ({newest}): every backup \
                 predates the current cluster",
                value.created.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            ));
        }
    }
    ControlFacts {
        spec,
        created,
        outcome,
        meaning,
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_ok() -> FileState<ClusterSpec> {
        spec_state(Ok(Some(
            br#"{"memberCount":3,"etcdVersion":"3.5.31"}"#.to_vec(),
        )))
    }
    fn created_ok() -> FileState<ClusterCreated> {
        created_state(Ok(Some(br#"{"timestamp":1638935701000000000}"#.to_vec())))
    }

    #[test]
    fn parses_spec_variants() {
        let camel =
            parse_cluster_spec(b"{\n  \"memberCount\": 1,\n  \"etcdVersion\":  \"3.5.31\"\n}")
                .unwrap();
        assert_eq!(
            camel,
            ClusterSpec {
                member_count: 1,
                etcd_version: "3.5.31".into()
            }
        );
        let snake = parse_cluster_spec(br#"{"member_count":3,"etcd_version":"3.2.24"}"#).unwrap();
        assert_eq!(snake.member_count, 3);
        assert_eq!(
            parse_cluster_spec(br#"{"memberCount":"5"}"#)
                .unwrap()
                .member_count,
            5
        );
        assert!(parse_cluster_spec(b"not json").is_err());
        assert!(parse_cluster_spec(b"[1]").is_err());
        assert!(parse_cluster_spec(br#"{"memberCount":"x"}"#).is_err());
        assert!(parse_cluster_spec(br#"{"members":3}"#)
            .unwrap_err()
            .contains("unknown field"));
    }

    #[test]
    fn parses_created_and_meta() {
        let c = parse_cluster_created(br#"{"timestamp":1638935701000000000}"#).unwrap();
        assert_eq!(c.created.timestamp(), 1638935701);
        assert!(parse_cluster_created(br#"{"ts":1}"#).is_err());
        assert!(parse_cluster_created(br#"{"timestamp":-5}"#).is_err());
        let legacy = br#"{
  "etcdVersion": "3.4.13",
  "timestamp": "1704067200",
  "clusterSpec": {
    "memberCount": 3,
    "etcdVersion": "3.4.13"
  }
}"#;
        let m = parse_backup_meta(legacy).unwrap();
        assert_eq!(m.etcd_version, "3.4.13");
        assert_eq!(m.timestamp.unwrap().timestamp(), 1704067200);
        assert_eq!(m.cluster_spec.unwrap().member_count, 3);
        let snake = parse_backup_meta(
            br#"{"etcd_version":"3.5.1","timestamp":"1","cluster_spec":{"member_count":1}}"#,
        )
        .unwrap();
        assert_eq!(snake.etcd_version, "3.5.1");
        assert!(parse_backup_meta(br#"{"timestamp":"soon"}"#).is_err());
    }

    #[test]
    fn decision_table() {
        let a = assess(spec_ok(), created_ok(), None, None);
        assert_eq!(a.outcome, ControlOutcome::Normal);
        assert!(a.problems.is_empty(), "{:?}", a.problems);
        assert_eq!(
            assess(FileState::Missing, created_ok(), None, None).outcome,
            ControlOutcome::BackupsStopped
        );
        assert_eq!(
            assess(spec_ok(), FileState::Missing, None, None).outcome,
            ControlOutcome::WillSeedNewCluster
        );
        assert_eq!(
            assess(FileState::Missing, FileState::Missing, None, None).outcome,
            ControlOutcome::IdleWillSeedWhenSpecWritten
        );
        assert_eq!(
            assess(spec_ok(), FileState::Empty, None, None).outcome,
            ControlOutcome::ControllerError
        );
        let garbled = spec_state(Ok(Some(b"{memberCount: 3".to_vec())));
        assert!(matches!(garbled, FileState::Unparseable { .. }));
        assert_eq!(
            assess(garbled, created_ok(), None, None).outcome,
            ControlOutcome::ControllerError
        );
        let unknown = spec_state(Err("timeout".into()));
        assert_eq!(
            assess(unknown, created_ok(), None, None).outcome,
            ControlOutcome::Unknown
        );
        // Garbled marker: etcd-manager only checks existence; outcome normal, but a problem.
        let odd = created_state(Ok(Some(b"yes".to_vec())));
        let a = assess(spec_ok(), odd, None, None);
        assert_eq!(a.outcome, ControlOutcome::Normal);
        assert_eq!(a.problems.len(), 1);
    }

    #[test]
    fn consistency_checks() {
        let meta = BackupMeta {
            etcd_version: "3.4.13".into(),
            timestamp: None,
            cluster_spec: Some(ClusterSpec {
                member_count: 1,
                etcd_version: "3.4.13".into(),
            }),
        };
        let old = DateTime::from_timestamp(1_600_000_000, 0);
        let a = assess(spec_ok(), created_ok(), Some(&meta), old);
        assert_eq!(a.problems.len(), 3, "{:?}", a.problems);
        let even = spec_state(Ok(Some(br#"{"memberCount":2}"#.to_vec())));
        let a = assess(even, created_ok(), None, None);
        assert_eq!(a.problems.len(), 2, "{:?}", a.problems);
    }
}
