//! The typed policy document (`etcdguard.dev/v1alpha1` `GatePolicy`).
//!
//! Every scalar with a constrained value is its own type whose `Deserialize` rejects impossible
//! values, so the YAML loader reports them at the exact line and column of the bad value.

use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// The only accepted `apiVersion`.
pub const API_VERSION: &str = "etcdguard.dev/v1alpha1";
/// The only accepted `kind`.
pub const KIND: &str = "GatePolicy";
/// The break-glass annotation used when a policy's `exceptions.annotation` is not set.
pub const DEFAULT_BREAK_GLASS_ANNOTATION: &str = "etcdguard.dev/break-glass";

/// A policy field value that does not parse: the message names the value and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("store url `{0}` has no bucket: {STORE_EXPECTED}")]
    StoreNoBucket(String),
    #[error("store url `{0}` is not an absolute file path: {STORE_EXPECTED}")]
    StoreRelativeFile(String),
    #[error("store url `{0}` is not supported: {STORE_EXPECTED}")]
    StoreScheme(String),
    #[error("snapshot age `{0}` is negative: expected a positive duration like `3h`")]
    AgeNegative(String),
    #[error("`{0}` is not a duration ({1}): expected a duration like `90m`, `3h` or `1d 12h`")]
    AgeNotDuration(String, String),
    #[error("snapshot age `{0}` is zero: no snapshot could ever be that recent")]
    AgeZero(String),
    #[error("policy name `{0}` is not a DNS-1123 name: use lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit")]
    PolicyName(String),
    #[error("kind `{0}` is not a Kubernetes kind: expected UpperCamelCase like `KubeadmControlPlane`, or `*`")]
    KindName(String),
    #[error("empty JSON pointer: it would watch the whole object; leave `paths` out to match any change")]
    PointerEmpty,
    #[error("`{0}` is not a JSON pointer: it must start with `/` (e.g. `/spec/version`)")]
    PointerNoSlash(String),
    #[error("`{0}` is not a valid JSON pointer: `~` must be followed by `0` or `1`")]
    PointerEscape(String),
    #[error("`{0}` is not an RFC 3339 time ({1}): expected e.g. `2026-12-31T23:59:00Z`")]
    Time(String, String),
    #[error("unknown operation `{0}`, expected CREATE, UPDATE, DELETE or CONNECT")]
    Operation(String),
}

const STORE_EXPECTED: &str = "expected s3://BUCKET[/PREFIX], file:///PATH or an absolute path";

/// Deserialize a string through `parse` inside the visitor, so serde_yaml_ng attaches the
/// scalar's own line, column and field path to a rejection (an error raised after
/// `String::deserialize` returns would be located at the enclosing mapping instead).
fn parse_scalar<'de, D, T>(
    d: D,
    expecting: &'static str,
    parse: fn(&str) -> Result<T, ValueError>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<T> {
        expecting: &'static str,
        parse: fn(&str) -> Result<T, ValueError>,
    }
    impl<T> Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.parse)(v).map_err(E::custom)
        }
    }
    d.deserialize_str(V { expecting, parse })
}

/// One YAML document as written by a user.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyDocument {
    pub api_version: ApiVersion,
    pub kind: Kind,
    pub metadata: Metadata,
    pub spec: PolicySpec,
}

/// `apiVersion`: must be [`API_VERSION`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum ApiVersion {
    #[serde(rename = "etcdguard.dev/v1alpha1")]
    V1alpha1,
}

/// `kind`: must be [`KIND`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum Kind {
    GatePolicy,
}

/// Kubernetes-style metadata. Only `name` is used; labels and annotations are kept for users.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub name: PolicyName,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// `spec` of a `GatePolicy`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicySpec {
    /// What a deny does. Required: a policy must say how strict it is.
    pub mode: Mode,
    /// What the policy applies to.
    #[serde(rename = "match")]
    pub match_: Match,
    /// What must hold for a matching change to proceed.
    #[serde(default)]
    pub require: Require,
    /// Who may override a deny, and how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exceptions: Option<Exceptions>,
}

/// How strictly a policy's findings are applied. Ordered by strictness:
/// `Audit < Warn < Enforce` (the strictest of several matching policies wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Allow; findings are only recorded (audit annotation, log, metric).
    Audit,
    /// A deny becomes a warning; the change proceeds.
    Warn,
    /// A deny refuses the change.
    Enforce,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Audit => "audit",
            Mode::Warn => "warn",
            Mode::Enforce => "enforce",
        })
    }
}

/// `spec.match`: Kubernetes resources and/or CLI change sources. At least one must be listed.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Match {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceRule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<ChangeSource>,
}

/// One resource rule: which objects, which operations, and which paths trigger the gate.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResourceRule {
    /// API groups (`""` is the core group, `"*"` any group).
    pub api_groups: Vec<String>,
    /// Kinds, e.g. `KubeadmControlPlane` (`"*"` any kind).
    pub kinds: Vec<KindName>,
    /// Operations; defaults to `[CREATE, UPDATE]`.
    #[serde(default = "default_operations")]
    pub operations: Vec<OperationRule>,
    /// Subresources matched in addition to the main resource (`scale`, `status` or `*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subresources: Vec<Subresource>,
    /// JSON pointers whose change triggers the gate. Empty: any change triggers it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<PathPattern>,
}

fn default_operations() -> Vec<OperationRule> {
    vec![
        OperationRule::One(Operation::Create),
        OperationRule::One(Operation::Update),
    ]
}

/// The operation of an admission request, as the apiserver sends it. The webhook adapter
/// (`etcdguard-webhook`) uses the same type: the project has one `Operation`.
pub use kube::core::admission::Operation;

/// The wire spelling of an operation (`CREATE`, …).
pub fn operation_name(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

/// Parse an operation name, in any case (`update`, `UPDATE`).
pub fn parse_operation(s: &str) -> Result<Operation, ValueError> {
    match s.to_ascii_uppercase().as_str() {
        "CREATE" => Ok(Operation::Create),
        "UPDATE" => Ok(Operation::Update),
        "DELETE" => Ok(Operation::Delete),
        "CONNECT" => Ok(Operation::Connect),
        _ => Err(ValueError::Operation(s.to_string())),
    }
}

/// An entry of a rule's `operations`: one operation, or `*` for any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationRule {
    One(Operation),
    Any,
}

impl OperationRule {
    /// Whether this rule entry covers a request's operation.
    pub fn covers(&self, request: &Operation) -> bool {
        match self {
            OperationRule::Any => true,
            OperationRule::One(op) => op == request,
        }
    }

    /// The spelling in a policy (`CREATE`, …, `*`).
    pub fn as_str(&self) -> &'static str {
        match self {
            OperationRule::Any => "*",
            OperationRule::One(op) => operation_name(op),
        }
    }
}

impl fmt::Display for OperationRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for OperationRule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for OperationRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_scalar(d, "CREATE, UPDATE, DELETE, CONNECT or `*`", |s| {
            if s == "*" {
                Ok(OperationRule::Any)
            } else if s.chars().all(|c| c.is_ascii_uppercase()) {
                parse_operation(s).map(OperationRule::One)
            } else {
                Err(ValueError::Operation(s.to_string()))
            }
        })
    }
}

/// A subresource a rule also matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Subresource {
    Scale,
    Status,
    #[serde(rename = "*")]
    Any,
}

impl Subresource {
    /// Whether this rule entry covers the request's subresource name.
    pub fn covers(self, name: &str) -> bool {
        match self {
            Subresource::Any => true,
            Subresource::Scale => name == "scale",
            Subresource::Status => name == "status",
        }
    }
}

/// A change that does not arrive as a Kubernetes object but through the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeSource {
    /// `kops update cluster` dry-run output.
    KopsDryRun,
    /// A Terraform plan (JSON) that touches the cluster or its state bucket.
    TerraformPlan,
    /// An S3 lifecycle configuration checked by `etcdguard lifecycle`.
    Lifecycle,
}

impl ChangeSource {
    /// The policy spelling (`kops-dry-run`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeSource::KopsDryRun => "kops-dry-run",
            ChangeSource::TerraformPlan => "terraform-plan",
            ChangeSource::Lifecycle => "lifecycle",
        }
    }
}

impl fmt::Display for ChangeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `spec.require`: what must hold before a matching change may proceed.
/// Unset values impose nothing; see [`crate::policy::EffectiveRequire`] for merging.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Require {
    /// The newest valid snapshot must be at most this old.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_max_age: Option<MaxAge>,
    /// How thoroughly the newest snapshot is verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_snapshot: Option<Verification>,
    /// etcd-manager control files (`control/etcd-cluster-spec`, `etcd-cluster-created`) must be sound.
    #[serde(default)]
    pub control_files: bool,
    /// A live etcd must be reachable and not behind the newest snapshot.
    #[serde(default)]
    pub live_etcd: bool,
    /// The bucket's lifecycle rules must not expire or transition backups or control files.
    #[serde(default)]
    pub lifecycle: bool,
    /// The newest backups (and the live etcd) must hold the cluster of the backups before them
    /// (`snapshot.continuity`): a new cluster is a deny; without it, a warning.
    #[serde(default)]
    pub continuity: bool,
    /// Which backup stores belong to which cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stores: Vec<StoreSpec>,
}

/// How thoroughly a snapshot is verified. Ordered by strength: `None < TrailerOnly < Full`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verification {
    /// Existence and age only.
    None,
    /// The sha256 trailer must match the body.
    TrailerOnly,
    /// Trailer, bbolt structure and revision: the snapshot is restorable.
    Full,
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verification::None => "none",
            Verification::TrailerOnly => "trailer-only",
            Verification::Full => "full",
        })
    }
}

/// One backup store and the cluster it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StoreSpec {
    pub url: StoreUrl,
    pub layout: StoreLayout,
    pub cluster: String,
}

/// How backups are named and placed in a store (see `backup-layouts.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreLayout {
    /// kops etcd-manager: `<store>/<RFC3339>-<seq>/etcd.backup.gz` + `control/`.
    EtcdManager,
    /// k3s / RKE2: `<name>-<node>-<unix>(.zip)`.
    K3s,
    /// OpenShift `cluster-backup.sh`: `snapshot_<date>_<time>.db`.
    Openshift,
    /// CoreOS etcd-operator: `<path>_v<rev>_<time>`.
    EtcdOperator,
    /// siderolabs talos-backup: `<cluster>-<RFC3339>.snap(.zst)`.
    TalosBackup,
    /// Gardener etcd-backup-restore: `v2/Full-<rev>-<rev>-<unix>`.
    Gardener,
    /// Cray/HPE CSM bare metal: `etcd-backup-<time>.tar.gz`.
    Csm,
    /// Any `*.db` snapshot files, dated by modification time.
    Plain,
}

impl StoreLayout {
    /// The policy spelling (`etcd-manager`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            StoreLayout::EtcdManager => "etcd-manager",
            StoreLayout::K3s => "k3s",
            StoreLayout::Openshift => "openshift",
            StoreLayout::EtcdOperator => "etcd-operator",
            StoreLayout::TalosBackup => "talos-backup",
            StoreLayout::Gardener => "gardener",
            StoreLayout::Csm => "csm",
            StoreLayout::Plain => "plain",
        }
    }
}

/// A store location: `s3://BUCKET[/PREFIX]`, `file:///PATH` or an absolute path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct StoreUrl(String);

impl StoreUrl {
    /// Parse and check a store location.
    pub fn parse(s: &str) -> Result<StoreUrl, ValueError> {
        if let Some(rest) = s.strip_prefix("s3://") {
            let bucket = rest.split('/').next().unwrap_or("");
            if bucket.is_empty() {
                return Err(ValueError::StoreNoBucket(s.to_string()));
            }
            Ok(StoreUrl(s.to_string()))
        } else if let Some(rest) = s.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(ValueError::StoreRelativeFile(s.to_string()));
            }
            Ok(StoreUrl(s.to_string()))
        } else if s.starts_with('/') {
            Ok(StoreUrl(s.to_string()))
        } else {
            Err(ValueError::StoreScheme(s.to_string()))
        }
    }

    /// The location as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for StoreUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_scalar(
            d,
            "a store url (s3://BUCKET/PREFIX, file:///PATH or /PATH)",
            StoreUrl::parse,
        )
    }
}

/// `snapshotMaxAge`: a positive duration such as `90m`, `3h` or `1d 12h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MaxAge(pub Duration);

impl MaxAge {
    /// Parse a humantime duration, rejecting negative and zero ages with a clear message.
    pub fn parse(s: &str) -> Result<MaxAge, ValueError> {
        let t = s.trim();
        if t.starts_with('-') {
            return Err(ValueError::AgeNegative(s.to_string()));
        }
        let d = humantime::parse_duration(t)
            .map_err(|e| ValueError::AgeNotDuration(s.to_string(), e.to_string()))?;
        if d.is_zero() {
            return Err(ValueError::AgeZero(s.to_string()));
        }
        Ok(MaxAge(d))
    }
}

impl fmt::Display for MaxAge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for MaxAge {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MaxAge {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = MaxAge;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string like `3h` or `90m`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MaxAge, E> {
                MaxAge::parse(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<MaxAge, E> {
                if v < 0 {
                    Err(E::custom(format!(
                        "snapshot age `{v}` is negative: expected a positive duration like `3h`"
                    )))
                } else {
                    Err(E::custom(format!(
                        "snapshot age `{v}` has no unit: write a duration like `{v}s`, `{v}m` or `{v}h`"
                    )))
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<MaxAge, E> {
                Err(E::custom(format!(
                    "snapshot age `{v}` has no unit: write a duration like `{v}s`, `{v}m` or `{v}h`"
                )))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<MaxAge, E> {
                if v < 0.0 {
                    Err(E::custom(format!(
                        "snapshot age `{v}` is negative: expected a positive duration like `3h`"
                    )))
                } else {
                    Err(E::custom(format!(
                        "snapshot age `{v}` has no unit: write a duration like `3h`"
                    )))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A policy name: a DNS-1123 subdomain (lowercase alphanumerics, `-` and `.`), at most 253 bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct PolicyName(String);

impl PolicyName {
    /// Check a name.
    pub fn parse(s: &str) -> Result<PolicyName, ValueError> {
        let ok_char =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
        let alnum =
            |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if s.is_empty()
            || s.len() > 253
            || !s.chars().all(ok_char)
            || !alnum(s.chars().next())
            || !alnum(s.chars().last())
        {
            return Err(ValueError::PolicyName(s.to_string()));
        }
        Ok(PolicyName(s.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PolicyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PolicyName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_scalar(d, "a policy name", PolicyName::parse)
    }
}

/// A Kubernetes kind (`UpperCamelCase`) or `*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct KindName(String);

impl KindName {
    /// Check a kind name.
    pub fn parse(s: &str) -> Result<KindName, ValueError> {
        let first_upper = s.chars().next().is_some_and(|c| c.is_ascii_uppercase());
        if s == "*" || (first_upper && s.chars().all(|c| c.is_ascii_alphanumeric())) {
            Ok(KindName(s.to_string()))
        } else {
            Err(ValueError::KindName(s.to_string()))
        }
    }

    /// The kind as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this rule kind covers a request's kind (exact) or, failing that, its plural
    /// resource name (Kubernetes' default plural: lowercase kind + `s`).
    pub fn covers(&self, kind: &str, resource: Option<&str>) -> bool {
        if self.0 == "*" || self.0 == kind {
            return true;
        }
        resource.is_some_and(|r| r == format!("{}s", self.0.to_ascii_lowercase()))
    }
}

impl<'de> Deserialize<'de> for KindName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_scalar(
            d,
            "a Kubernetes kind such as `KubeadmControlPlane`",
            KindName::parse,
        )
    }
}

/// One segment of a [`PathPattern`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// A literal key or array index (already unescaped).
    Key(String),
    /// `*`: any single key or index.
    Any,
}

/// A JSON pointer (RFC 6901) naming a watched field, e.g. `/spec/desiredUpdate/version`.
/// A segment that is exactly `*` matches any one key or array index
/// (e.g. `/spec/machinePools/*/quantity`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PathPattern {
    raw: String,
    segments: Vec<Segment>,
}

impl PathPattern {
    /// Parse a pointer; it must start with `/` and use `~` only as `~0` or `~1`.
    pub fn parse(s: &str) -> Result<PathPattern, ValueError> {
        if s.is_empty() {
            return Err(ValueError::PointerEmpty);
        }
        let Some(rest) = s.strip_prefix('/') else {
            return Err(ValueError::PointerNoSlash(s.to_string()));
        };
        let mut segments = Vec::new();
        for raw in rest.split('/') {
            let mut out = String::new();
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => out.push('~'),
                        Some('1') => out.push('/'),
                        _ => return Err(ValueError::PointerEscape(s.to_string())),
                    }
                } else {
                    out.push(c);
                }
            }
            if raw == "*" {
                segments.push(Segment::Any);
            } else {
                segments.push(Segment::Key(out));
            }
        }
        Ok(PathPattern {
            raw: s.to_string(),
            segments,
        })
    }

    /// The pointer as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The parsed segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl Serialize for PathPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for PathPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_scalar(
            d,
            "a JSON pointer such as `/spec/version`",
            PathPattern::parse,
        )
    }
}

/// `spec.exceptions`: the break-glass override.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Exceptions {
    /// Annotation whose non-empty value is the reason; default [`DEFAULT_BREAK_GLASS_ANNOTATION`].
    #[serde(default = "default_annotation")]
    pub annotation: String,
    /// Users who may break glass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Groups whose members may break glass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// After this instant the exception is no longer honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Expiry>,
}

fn default_annotation() -> String {
    DEFAULT_BREAK_GLASS_ANNOTATION.to_string()
}

/// An RFC 3339 instant (`2026-12-31T23:59:00Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Expiry(pub DateTime<Utc>);

impl Serialize for Expiry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    }
}

impl<'de> Deserialize<'de> for Expiry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_scalar(d, "an RFC 3339 time such as `2026-12-31T23:59:00Z`", |s| {
            DateTime::parse_from_rfc3339(s.trim())
                .map(|t| Expiry(t.with_timezone(&Utc)))
                .map_err(|e| ValueError::Time(s.to_string(), e.to_string()))
        })
    }
}
