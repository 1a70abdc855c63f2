//! etcd-manager control files and backup meta: parsing and what etcd-manager will do (pure).
//!
//! The decision table follows etcd-manager's controller (`pkg/controller/controller.go`,
//! `pkg/commands/vfs.go`): `etcd-cluster-created` is only checked for existence and
//! non-emptiness; `etcd-cluster-spec` is parsed as protobuf JSON (camelCase or snake_case).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::protojson::{self, Field, Kind, Message, ProtojsonError};

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

/// A parsed `_command.json` (`message Command`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Command {
    /// `timestamp` (Unix nanoseconds, set by `AddCommand`); the controller orders commands by it.
    pub timestamp: Option<DateTime<Utc>>,
    /// `restoreBackup`, when set.
    pub restore_backup: Option<RestoreBackup>,
}

/// `message RestoreBackupCommand`: the backup to restore and the cluster spec to restore into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreBackup {
    /// Backup folder name (e.g. `2024-03-22T10:15:07Z-000123`).
    pub backup: String,
    /// `clusterSpec`; without it the controller fails every cycle ("RestoreBackup was not set").
    pub cluster_spec: Option<ClusterSpec>,
}

/// One queued command under `control/` (etcd-manager `pkg/commands/vfs.go`: `AddCommand` writes
/// `control/<RFC3339>-000000/_command.json`; `ListCommands` reads every `_command.json` under
/// `control/`, and one it cannot parse fails the whole control-store refresh).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingCommand {
    /// Key relative to the store root.
    pub key: String,
    /// The file's state and contents.
    pub file: FileState<Command>,
    /// For a `restoreBackup` command: the named backup as verified.
    pub backup: Option<super::BackupFacts>,
}

/// Turn the read of one `_command.json` into its state. `Ok(None)` = missing.
pub fn command_state(read: Result<Option<Vec<u8>>, String>) -> FileState<Command> {
    match read {
        Err(reason) => FileState::Unknown { reason },
        Ok(None) => FileState::Missing,
        Ok(Some(b)) if b.is_empty() => FileState::Empty,
        Ok(Some(b)) => match parse_command(&b) {
            Ok(value) => FileState::Present { value },
            Err(e) => FileState::Unparseable {
                reason: e.to_string(),
            },
        },
    }
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
#[derive(Debug, Clone, Serialize)]
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
    /// Queued commands (`control/<ts>/_command.json`), oldest first as the controller orders
    /// them; filled in by the caller after [`assess`].
    pub commands: Vec<PendingCommand>,
    /// Why the commands could not be listed, when they could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commands_unknown: Option<String>,
}

/// `message ClusterSpec { int32 member_count = 1; string etcd_version = 2; }`
/// (etcd-manager `pkg/apis/etcd/etcdapi.proto`).
const CLUSTER_SPEC: &[Field] = &[
    Field {
        number: 1,
        json: "memberCount",
        proto: "member_count",
        kind: Kind::Int32,
    },
    Field {
        number: 2,
        json: "etcdVersion",
        proto: "etcd_version",
        kind: Kind::String,
    },
];

/// `message BackupInfo { string etcd_version = 1; int64 timestamp = 2; ClusterSpec cluster_spec = 3; }`
const BACKUP_INFO: &[Field] = &[
    Field {
        number: 1,
        json: "etcdVersion",
        proto: "etcd_version",
        kind: Kind::String,
    },
    Field {
        number: 2,
        json: "timestamp",
        proto: "timestamp",
        kind: Kind::Int64,
    },
    Field {
        number: 3,
        json: "clusterSpec",
        proto: "cluster_spec",
        kind: Kind::Message(CLUSTER_SPEC),
    },
];

/// `message RestoreBackupCommand { ClusterSpec cluster_spec = 1; string backup = 3; }`
const RESTORE_BACKUP_COMMAND: &[Field] = &[
    Field {
        number: 1,
        json: "clusterSpec",
        proto: "cluster_spec",
        kind: Kind::Message(CLUSTER_SPEC),
    },
    Field {
        number: 3,
        json: "backup",
        proto: "backup",
        kind: Kind::String,
    },
];

/// `message Command { int64 timestamp = 1; RestoreBackupCommand restore_backup = 10; }`
const COMMAND: &[Field] = &[
    Field {
        number: 1,
        json: "timestamp",
        proto: "timestamp",
        kind: Kind::Int64,
    },
    Field {
        number: 10,
        json: "restoreBackup",
        proto: "restore_backup",
        kind: Kind::Message(RESTORE_BACKUP_COMMAND),
    },
];

fn spec_from(m: &Message) -> ClusterSpec {
    ClusterSpec {
        member_count: m.int(1),
        etcd_version: m.string(2).to_string(),
    }
}

/// Parse `control/etcd-cluster-spec` as etcd-manager does (`GetExpectedClusterSpec`:
/// protojson `ClusterSpec`; see [`protojson`] for the exact rules).
pub fn parse_cluster_spec(bytes: &[u8]) -> Result<ClusterSpec, ProtojsonError> {
    protojson::decode(bytes, CLUSTER_SPEC).map(|m| spec_from(&m))
}

/// Why `control/etcd-cluster-created` is not what `MarkClusterCreated` writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreatedError {
    #[error("etcd-cluster-created is not JSON: {0}")]
    NotJson(String),
    #[error("etcd-cluster-created is JSON but not an object: {0}")]
    NotObject(String),
    #[error("etcd-cluster-created has no integer \"timestamp\"")]
    NoTimestamp,
    #[error("etcd-cluster-created timestamp {0} is not a positive Unix-nanoseconds value")]
    NotPositive(i64),
}

/// Parse `control/etcd-cluster-created` (`{"timestamp":<unix nanos>}`, written by
/// `MarkClusterCreated` with `encoding/json`; etcd-manager itself never parses it).
pub fn parse_cluster_created(bytes: &[u8]) -> Result<ClusterCreated, CreatedError> {
    let m = match crate::json::value_from_slice(bytes) {
        Ok(Value::Object(m)) => m,
        Ok(other) => return Err(CreatedError::NotObject(other.to_string())),
        Err(e) => return Err(CreatedError::NotJson(e.to_string())),
    };
    let nanos = m
        .get("timestamp")
        .and_then(Value::as_i64)
        .ok_or(CreatedError::NoTimestamp)?;
    if nanos <= 0 {
        return Err(CreatedError::NotPositive(nanos));
    }
    Ok(ClusterCreated {
        created: DateTime::from_timestamp_nanos(nanos),
    })
}

/// Parse `_etcd_backup.meta` as etcd-manager's `LoadInfo` does (protojson `BackupInfo`;
/// `timestamp` is Unix seconds, usually quoted). An error means etcd-manager cannot load
/// this backup.
pub fn parse_backup_meta(bytes: &[u8]) -> Result<BackupMeta, ProtojsonError> {
    let m = protojson::decode(bytes, BACKUP_INFO)?;
    let secs = m.int(2);
    Ok(BackupMeta {
        etcd_version: m.string(1).to_string(),
        timestamp: if m.has(2) {
            DateTime::from_timestamp(secs, 0)
        } else {
            None
        },
        cluster_spec: m.message(3).map(spec_from),
    })
}

/// Parse one `control/<RFC3339>-000000/_command.json` as etcd-manager's `ListCommands` does
/// (protojson `Command`).
pub fn parse_command(bytes: &[u8]) -> Result<Command, ProtojsonError> {
    let m = protojson::decode(bytes, COMMAND)?;
    Ok(Command {
        timestamp: m.has(1).then(|| DateTime::from_timestamp_nanos(m.int(1))),
        restore_backup: m.message(10).map(|r| RestoreBackup {
            backup: r.string(3).to_string(),
            cluster_spec: r.message(1).map(spec_from),
        }),
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
            Err(e) => FileState::Unparseable {
                reason: e.to_string(),
            },
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
            Err(e) => FileState::Unparseable {
                reason: e.to_string(),
            },
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
        commands: Vec::new(),
        commands_unknown: None,
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
            .to_string()
            .contains("unknown field"));
        // kops' minimal case (json.MarshalIndent with omitempty) is a valid spec.
        assert_eq!(
            parse_cluster_spec(b"{\n  \"memberCount\": 1\n}").unwrap(),
            ClusterSpec {
                member_count: 1,
                etcd_version: String::new()
            }
        );
        assert!(parse_cluster_spec(br#"{"memberCount":1,"member_count":1}"#).is_err());
        assert!(parse_cluster_spec(br#"{"memberCount":4294967297}"#).is_err());
        assert_eq!(
            parse_cluster_spec(br#"{"memberCount":3.0,"etcdVersion":null}"#)
                .unwrap()
                .member_count,
            3
        );
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
        // An unknown field makes LoadInfo fail: etcd-manager cannot restore that backup.
        assert!(parse_backup_meta(br#"{"etcdVersion":"3.5.9","sha256":"x"}"#).is_err());
        // etcd-manager's json_test.go command fixture.
        let cmd = parse_command(
            br#"{
  "timestamp": "1704067200",
  "restoreBackup": {
    "clusterSpec": { "memberCount": 3, "etcdVersion": "3.4.13" },
    "backup": "2024-01-01T00-00-00Z-1"
  }
}"#,
        )
        .unwrap();
        let r = cmd.restore_backup.unwrap();
        assert_eq!(r.backup, "2024-01-01T00-00-00Z-1");
        assert_eq!(r.cluster_spec.unwrap().member_count, 3);
        assert!(parse_command(br#"{"timestamp":"1","createNewCluster":{}}"#).is_err());
        assert_eq!(
            parse_command(br#"{"timestamp":"1"}"#)
                .unwrap()
                .restore_backup,
            None
        );
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
