//! Backup stores named by a kops `Cluster` spec (`kops get cluster --full -o yaml`), issue #9.
//!
//! kops gives etcd-manager one backup store per etcd cluster (`main`, `events`): the cluster's
//! `spec.etcdClusters[].backups.backupStore` when set, otherwise
//! `<spec.configBase>/backups/etcd/<name>` (kops `pkg/model/components/etcdmanager/options.go`).
//! The control files live under `<store>/control/`. This module derives those URLs; it is pure
//! (bytes in, URLs out) and does not decide whether etcdguard can read them: see
//! [`check_store_scheme`].

use super::ChangeError;
use serde::Serialize;
use serde_json::Value;

const EXPECTED: &str = "a kops Cluster object (`kops get cluster --full -o yaml`)";

/// Where a derived store URL came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum StoreOrigin {
    /// `spec.etcdClusters[].backups.backupStore` was set.
    BackupStore,
    /// Derived from `spec.configBase` as `<configBase>/backups/etcd/<name>`.
    ConfigBase,
}

/// One etcd cluster's backup store as the kops spec names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KopsBackupStore {
    /// `metadata.name` of the kops Cluster (e.g. `prod.k8s.example.com`).
    pub cluster: String,
    /// The etcd cluster's name (`main`, `events`, ...).
    pub etcd_cluster: String,
    /// The store URL, spelled as kops spells it (`s3://...`, `memfs://...`, `gs://...`, a path).
    pub url: String,
    /// Whether the URL was explicit or derived from `configBase`.
    pub origin: StoreOrigin,
}

/// Join like kops' `vfs.Path.Join`: one `/` between parts, leading `/` of each part stripped.
fn join(base: &str, parts: &[&str]) -> String {
    let mut out = base.trim_end_matches('/').to_string();
    for p in parts {
        out.push('/');
        out.push_str(p.trim_start_matches('/').trim_end_matches('/'));
    }
    out
}

/// Parse a YAML or JSON document stream into values (JSON is read as YAML).
fn documents(bytes: &[u8], input: &str) -> Result<Vec<Value>, ChangeError> {
    use serde::Deserialize;
    let text = std::str::from_utf8(bytes).map_err(|e| ChangeError::NotRecognized {
        input: input.to_string(),
        expected: EXPECTED,
        detail: format!("not UTF-8 text: {e}"),
    })?;
    let mut docs = Vec::new();
    for de in serde_yaml_ng::Deserializer::from_str(text) {
        let v = Value::deserialize(de).map_err(|e| ChangeError::Syntax {
            input: input.to_string(),
            format: "YAML",
            detail: e.to_string(),
        })?;
        match v {
            Value::Null => {}
            // `kops get ... -o json` with several objects, or a `kind: List`.
            Value::Array(items) => docs.extend(items),
            Value::Object(ref m) if m.get("kind").and_then(Value::as_str) == Some("List") => {
                if let Some(Value::Array(items)) = m.get("items") {
                    docs.extend(items.iter().cloned());
                }
            }
            other => docs.push(other),
        }
    }
    Ok(docs)
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Derive every etcd cluster's backup store from `kops get cluster --full -o yaml` output.
///
/// `bytes` may be YAML or JSON, a single document or a multi-document stream (the Cluster
/// followed by its InstanceGroups); exactly one `kind: Cluster` (apiVersion `kops.k8s.io/*`)
/// must be present. Each `spec.etcdClusters[]` entry needs a `name`; its store is
/// `backups.backupStore` when non-empty, else `<spec.configBase>/backups/etcd/<name>`.
/// `input` names the input in errors. Returns the stores in spec order.
pub fn stores_from_cluster_spec(
    bytes: &[u8],
    input: &str,
) -> Result<Vec<KopsBackupStore>, ChangeError> {
    let not = |detail: String| ChangeError::NotRecognized {
        input: input.to_string(),
        expected: EXPECTED,
        detail,
    };
    let docs = documents(bytes, input)?;
    let clusters: Vec<&Value> = docs
        .iter()
        .filter(|d| {
            d.get("kind").and_then(Value::as_str) == Some("Cluster")
                && d.get("apiVersion")
                    .and_then(Value::as_str)
                    .is_some_and(|a| a.starts_with("kops.k8s.io/"))
        })
        .collect();
    let cluster = match clusters.as_slice() {
        [c] => *c,
        [] => {
            let kinds: Vec<&str> = docs
                .iter()
                .filter_map(|d| d.get("kind").and_then(Value::as_str))
                .collect();
            return Err(not(format!(
                "no `kind: Cluster` with apiVersion kops.k8s.io/* among {} document(s) (kinds: {})",
                docs.len(),
                if kinds.is_empty() { "none".to_string() } else { kinds.join(", ") }
            )));
        }
        more => {
            return Err(not(format!(
                "{} kops Cluster objects; pass one cluster's spec (`kops get cluster --full -o yaml NAME`)",
                more.len()
            )))
        }
    };
    let name = str_at(cluster, "/metadata/name").unwrap_or("").to_string();
    let config_base = str_at(cluster, "/spec/configBase");
    let etcd = cluster
        .pointer("/spec/etcdClusters")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            not(format!(
                "cluster {name:?} has no spec.etcdClusters list; use `kops get cluster --full` (the completed spec)"
            ))
        })?;
    let mut out = Vec::new();
    for (i, ec) in etcd.iter().enumerate() {
        let ec_name = str_at(ec, "/name")
            .ok_or_else(|| not(format!("spec.etcdClusters[{i}] has no name")))?;
        let (url, origin) = match str_at(ec, "/backups/backupStore") {
            Some(s) => (s.to_string(), StoreOrigin::BackupStore),
            None => {
                let base = config_base.ok_or_else(|| {
                    not(format!(
                        "etcd cluster {ec_name:?} has no backups.backupStore and the cluster has no spec.configBase"
                    ))
                })?;
                (
                    join(base, &["backups", "etcd", ec_name]),
                    StoreOrigin::ConfigBase,
                )
            }
        };
        out.push(KopsBackupStore {
            cluster: name.clone(),
            etcd_cluster: ec_name.to_string(),
            url,
            origin,
        });
    }
    Ok(out)
}

/// Why etcdguard cannot read a kops store URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("etcd cluster {etcd_cluster:?}: unsupported store scheme {scheme}:// in {url:?} (gs://, azureblob://, swift://, do://, memfs:// ... are not read); etcdguard reads s3:// and local directories: pass a copy with --store{hint}")]
pub struct UnsupportedScheme {
    /// The etcd cluster whose store it is.
    pub etcd_cluster: String,
    /// The URL as kops spells it.
    pub url: String,
    /// The scheme (without `://`).
    pub scheme: String,
    /// Extra advice for a known scheme (starts with "; " or is empty).
    pub hint: String,
}

/// Accept the stores etcdguard can read: `s3://`, `file://` and plain paths. Every other scheme
/// (`gs://`, `azureblob://`, `swift://`, `do://`, `scw://`, and `memfs://`, kops' in-memory test
/// file system) is an [`UnsupportedScheme`] error naming the store.
pub fn check_store_scheme(store: &KopsBackupStore) -> Result<(), UnsupportedScheme> {
    match store.url.split_once("://") {
        None => Ok(()),
        Some(("s3" | "file", _)) => Ok(()),
        Some((scheme, _)) => Err(UnsupportedScheme {
            etcd_cluster: store.etcd_cluster.clone(),
            url: store.url.clone(),
            scheme: scheme.to_string(),
            hint: if scheme == "memfs" {
                "; memfs:// is kops' in-memory test file system, it holds no real backups".into()
            } else {
                String::new()
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"apiVersion: kops.k8s.io/v1alpha2
kind: Cluster
metadata:
  creationTimestamp: "2026-01-10T09:00:00Z"
  name: prod.k8s.acme.example
spec:
  configBase: s3://acme-kops-state/prod.k8s.acme.example
  etcdClusters:
  - backups:
      backupStore: s3://acme-kops-state/prod.k8s.acme.example/backups/etcd/main
    etcdMembers:
    - instanceGroup: control-plane-us-east-1a
      name: a
    name: main
  - etcdMembers:
    - instanceGroup: control-plane-us-east-1a
      name: a
    name: events
---
apiVersion: kops.k8s.io/v1alpha2
kind: InstanceGroup
metadata:
  name: nodes
spec:
  role: Node
"#;

    #[test]
    fn explicit_and_derived_stores() {
        let s = stores_from_cluster_spec(FULL.as_bytes(), "spec.yaml").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].etcd_cluster, "main");
        assert_eq!(s[0].origin, StoreOrigin::BackupStore);
        assert_eq!(
            s[0].url,
            "s3://acme-kops-state/prod.k8s.acme.example/backups/etcd/main"
        );
        assert_eq!(s[1].etcd_cluster, "events");
        assert_eq!(s[1].origin, StoreOrigin::ConfigBase);
        assert_eq!(
            s[1].url,
            "s3://acme-kops-state/prod.k8s.acme.example/backups/etcd/events"
        );
        assert_eq!(s[1].cluster, "prod.k8s.acme.example");
    }

    #[test]
    fn json_and_memfs_config_base_with_trailing_slash() {
        let json = r#"{"apiVersion":"kops.k8s.io/v1alpha2","kind":"Cluster","metadata":{"name":"c"},
            "spec":{"configBase":"memfs://clusters.example.com/complex.example.com/",
            "etcdClusters":[{"name":"main","backups":{"backupStore":""}}]}}"#;
        let s = stores_from_cluster_spec(json.as_bytes(), "c.json").unwrap();
        assert_eq!(
            s[0].url,
            "memfs://clusters.example.com/complex.example.com/backups/etcd/main"
        );
        let e = check_store_scheme(&s[0]).unwrap_err().to_string();
        assert!(
            e.contains("unsupported store scheme memfs://") && e.contains("in-memory"),
            "{e}"
        );
    }

    #[test]
    fn json_list_picks_the_cluster() {
        let json = r#"[{"apiVersion":"kops.k8s.io/v1alpha2","kind":"InstanceGroup","metadata":{"name":"n"}},
            {"apiVersion":"kops.k8s.io/v1alpha2","kind":"Cluster","metadata":{"name":"c"},
             "spec":{"configBase":"/var/kops/c","etcdClusters":[{"name":"main"}]}}]"#;
        let s = stores_from_cluster_spec(json.as_bytes(), "-").unwrap();
        assert_eq!(s[0].url, "/var/kops/c/backups/etcd/main");
        assert!(check_store_scheme(&s[0]).is_ok());
    }

    #[test]
    fn schemes() {
        let mk = |u: &str| KopsBackupStore {
            cluster: "c".into(),
            etcd_cluster: "main".into(),
            url: u.into(),
            origin: StoreOrigin::BackupStore,
        };
        assert!(check_store_scheme(&mk("s3://b/p")).is_ok());
        assert!(check_store_scheme(&mk("file:///srv/b")).is_ok());
        assert!(check_store_scheme(&mk("relative/dir")).is_ok());
        for u in [
            "gs://b/p",
            "azureblob://acct/ctr/k",
            "swift://c/p",
            "do://space/p",
        ] {
            let e = check_store_scheme(&mk(u)).unwrap_err();
            assert!(e.to_string().contains("unsupported store scheme"), "{e}");
            assert_eq!(e.url, u);
        }
    }

    #[test]
    fn errors_name_the_problem() {
        let ig = "apiVersion: kops.k8s.io/v1alpha2\nkind: InstanceGroup\nmetadata:\n  name: n\n";
        let e = stores_from_cluster_spec(ig.as_bytes(), "ig.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ig.yaml")
                && e.contains("no `kind: Cluster`")
                && e.contains("InstanceGroup"),
            "{e}"
        );

        let no_etcd = "apiVersion: kops.k8s.io/v1alpha2\nkind: Cluster\nmetadata:\n  name: c\nspec:\n  configBase: s3://b/c\n";
        let e = stores_from_cluster_spec(no_etcd.as_bytes(), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("spec.etcdClusters"), "{e}");

        let no_base = "apiVersion: kops.k8s.io/v1alpha2\nkind: Cluster\nmetadata:\n  name: c\nspec:\n  etcdClusters:\n  - name: main\n";
        let e = stores_from_cluster_spec(no_base.as_bytes(), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("configBase") && e.contains("\"main\""), "{e}");

        let no_name = "apiVersion: kops.k8s.io/v1alpha2\nkind: Cluster\nspec:\n  configBase: s3://b/c\n  etcdClusters:\n  - backups: {}\n";
        let e = stores_from_cluster_spec(no_name.as_bytes(), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("etcdClusters[0] has no name"), "{e}");

        let e = stores_from_cluster_spec(b"kind: [unclosed", "bad.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.yaml") && e.contains("YAML"), "{e}");

        let two = format!("{FULL}---\n{}", FULL.split("---").next().unwrap_or(""));
        let e = stores_from_cluster_spec(two.as_bytes(), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("2 kops Cluster objects"), "{e}");
    }

    #[test]
    fn join_like_kops() {
        assert_eq!(
            join("s3://b/c/", &["backups", "etcd", "main"]),
            "s3://b/c/backups/etcd/main"
        );
        assert_eq!(join("s3://b/c", &["/backups"]), "s3://b/c/backups");
    }
}
