//! etcd-manager's `control/etcd-cluster-spec` contents, compared by value.
//!
//! kops writes `{"memberCount": N, "etcdVersion": "X"}` (indented, no trailing newline); kops
//! <= 1.11 wrote snake_case keys; etcd-manager >= v3.0.20260512 rewrites the file with protojson,
//! which adds random spaces. So the file is parsed as JSON and compared by value, never by bytes,
//! and both key styles and int64-as-string are accepted.

use super::{Change, ChangeKind};
use serde_json::Value;

/// The two values etcd-manager reads from `etcd-cluster-spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EtcdClusterSpec {
    pub member_count: Option<i64>,
    pub etcd_version: Option<String>,
}

impl EtcdClusterSpec {
    /// Parse the file contents. `None` when the text is not a JSON object.
    pub fn parse(text: &str) -> Option<EtcdClusterSpec> {
        let v: Value = crate::json::value_from_str(text).ok()?;
        let obj = v.as_object()?;
        let member_count = obj
            .get("memberCount")
            .or_else(|| obj.get("member_count"))
            .and_then(|v| match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            });
        let etcd_version = obj
            .get("etcdVersion")
            .or_else(|| obj.get("etcd_version"))
            .and_then(Value::as_str)
            .map(str::to_string);
        Some(EtcdClusterSpec {
            member_count,
            etcd_version,
        })
    }
}

/// The etcd cluster name from a kops task or Terraform resource name `etcd-cluster-spec-<name>`.
pub(crate) fn cluster_of(name: &str) -> Option<&str> {
    name.strip_prefix("etcd-cluster-spec-")
        .filter(|rest| !rest.is_empty())
}

/// Changes implied by an `etcd-cluster-spec` content change from `old` to `new`.
/// Returns an empty list when the values are equal (whitespace or key-style only).
pub(crate) fn compare(
    cluster: &str,
    old: &EtcdClusterSpec,
    new: &EtcdClusterSpec,
    resource: &str,
    evidence: &str,
    pointers: &[String],
) -> Vec<Change> {
    let mut out = Vec::new();
    if old.member_count != new.member_count {
        out.push(Change {
            kind: ChangeKind::EtcdScale {
                cluster: Some(cluster.to_string()),
                from: old.member_count,
                to: new.member_count,
            },
            resource: resource.to_string(),
            evidence: evidence.to_string(),
            json_pointers: pointers.to_vec(),
        });
    }
    if old.etcd_version != new.etcd_version {
        out.push(Change {
            kind: ChangeKind::EtcdUpgrade {
                cluster: Some(cluster.to_string()),
                from: old.etcd_version.clone(),
                to: new.etcd_version.clone(),
            },
            resource: resource.to_string(),
            evidence: evidence.to_string(),
            json_pointers: pointers.to_vec(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_camel_snake_and_protojson_spacing() {
        let a =
            EtcdClusterSpec::parse("{\n  \"memberCount\": 3,\n  \"etcdVersion\": \"3.5.31\"\n}")
                .unwrap();
        let b = EtcdClusterSpec::parse("{\"member_count\":3,\"etcd_version\":\"3.5.31\"}").unwrap();
        let c = EtcdClusterSpec::parse(
            "{\n  \"memberCount\":  \"3\",\n  \"etcdVersion\":  \"3.5.31\"\n}",
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.member_count, Some(3));
        assert!(EtcdClusterSpec::parse("not json").is_none());
        assert!(EtcdClusterSpec::parse("[1]").is_none());
    }

    #[test]
    fn compare_reports_scale_and_upgrade_only_on_value_change() {
        let old = EtcdClusterSpec {
            member_count: Some(1),
            etcd_version: Some("3.5.31".into()),
        };
        let same = old.clone();
        assert!(compare("main", &old, &same, "r", "e", &[]).is_empty());
        let new = EtcdClusterSpec {
            member_count: Some(3),
            etcd_version: Some("3.6.12".into()),
        };
        let ch = compare("main", &old, &new, "r", "e", &[]);
        assert_eq!(ch.len(), 2);
        assert!(matches!(
            ch[0].kind,
            ChangeKind::EtcdScale {
                from: Some(1),
                to: Some(3),
                ..
            }
        ));
        assert_eq!(cluster_of("etcd-cluster-spec-events"), Some("events"));
        assert_eq!(cluster_of("etcd-cluster-spec-"), None);
    }
}
