//! `etcdguard::change` on realistic fixtures: kops dry-run reports (current and legacy formats),
//! Terraform JSON plans of kops' terraform target, and old/new Kubernetes object pairs.

use etcdguard::change::{
    from_kops_dry_run, from_objects, from_terraform_plan, load_object, ChangeKind, ChangeSet,
};
use std::path::PathBuf;

fn fixture(rel: &str) -> (Vec<u8>, String) {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    (bytes, p.display().to_string())
}

fn kops(name: &str) -> ChangeSet {
    let (bytes, path) = fixture(&format!("kops/{name}"));
    let text = String::from_utf8(bytes).expect("utf-8 fixture");
    from_kops_dry_run(&text, &path).unwrap_or_else(|e| panic!("{e}"))
}

fn plan(name: &str) -> ChangeSet {
    let (bytes, path) = fixture(&format!("kops/terraform/{name}"));
    from_terraform_plan(&bytes, &path).unwrap_or_else(|e| panic!("{e}"))
}

fn pair(old: &str, new: &str) -> ChangeSet {
    let (o, on) = fixture(&format!("objects/{old}"));
    let (n, nn) = fixture(&format!("objects/{new}"));
    let o = load_object(&o, &on).unwrap_or_else(|e| panic!("{e}"));
    let n = load_object(&n, &nn).unwrap_or_else(|e| panic!("{e}"));
    from_objects(Some(&o), Some(&n)).unwrap_or_else(|e| panic!("{e}"))
}

fn object(name: &str) -> serde_json::Value {
    let (b, p) = fixture(&format!("objects/{name}"));
    load_object(&b, &p).unwrap_or_else(|e| panic!("{e}"))
}

fn kinds(set: &ChangeSet) -> Vec<&'static str> {
    set.changes.iter().map(|c| c.kind.id()).collect()
}

// ---------------------------------------------------------------- kops dry-run

#[test]
fn kops_current_format_creating_spec_seeds_new_clusters() {
    let set = kops("create-spec-current.txt");
    assert!(set.seeds_new_cluster());
    assert!(set.is_gated());
    assert_eq!(set.changes.len(), 2, "{set:#?}");
    let clusters: Vec<(String, Option<String>)> = set
        .changes
        .iter()
        .map(|c| match &c.kind {
            ChangeKind::SeedsNewCluster { cluster, location } => {
                (cluster.clone(), location.clone())
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        clusters,
        vec![
            (
                "events".to_string(),
                Some("s3://acme-kops-state/prod.k8s.acme.example/backups/etcd/events/control/etcd-cluster-spec".to_string())
            ),
            (
                "main".to_string(),
                Some("s3://acme-kops-state/prod.k8s.acme.example/backups/etcd/main/control/etcd-cluster-spec".to_string())
            ),
        ]
    );
    assert_eq!(
        set.changes[1].resource,
        "ManagedFile/etcd-cluster-spec-main"
    );
    assert!(set.changes[1].evidence.contains("Will create resources"));
    assert!(set.changes[1]
        .evidence
        .contains("Location /control/etcd-cluster-spec"));
}

#[test]
fn kops_brand_new_cluster_is_marked_as_creating_the_cluster() {
    let set = kops("new-cluster.txt");
    assert!(set.seeds_new_cluster());
    assert!(set.creates_cluster);
    assert_eq!(kinds(&set), vec!["seedsNewCluster", "seedsNewCluster"]);
    // The kops#16416 case: only the spec is created, the cluster exists.
    assert!(!kops("create-spec-current.txt").creates_cluster);
}

#[test]
fn kops_legacy_format_location_only_seeds_new_cluster() {
    let set = kops("create-spec-legacy.txt");
    assert!(set.seeds_new_cluster());
    match &set.changes[0].kind {
        ChangeKind::SeedsNewCluster { cluster, location } => {
            assert_eq!(cluster, "main");
            assert_eq!(
                location.as_deref(),
                Some("backups/etcd/main/control/etcd-cluster-spec")
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    // The control-plane launch template change is reported, but not gated.
    let lt = set
        .changes
        .iter()
        .find(|c| c.resource.starts_with("LaunchTemplate/master-"))
        .expect("launch template change");
    assert!(!lt.kind.is_gated());
    assert_eq!(set.changes.len(), 2, "{set:#?}");
}

#[test]
fn kops_member_count_change_is_etcd_scale() {
    let set = kops("modify-member-count.txt");
    assert!(!set.seeds_new_cluster());
    assert!(set.is_gated());
    assert_eq!(
        set.changes[0].kind,
        ChangeKind::EtcdScale {
            cluster: Some("main".into()),
            from: Some(1),
            to: Some(3)
        }
    );
    assert!(set.changes[0].evidence.contains("+   \"memberCount\": 3,"));
    // The etcd-manager manifest changes without moving the backup store.
    assert!(matches!(
        set.changes[1].kind,
        ChangeKind::EtcdConfigChange { .. }
    ));
    assert_eq!(kinds(&set), vec!["etcdScale", "etcdConfigChange"]);
}

#[test]
fn kops_etcd_version_change_is_upgrade_for_each_cluster() {
    let set = kops("modify-etcd-version.txt");
    assert_eq!(
        kinds(&set),
        vec!["kubernetesUpgrade", "etcdUpgrade", "etcdUpgrade"]
    );
    assert_eq!(
        set.changes[0].kind,
        ChangeKind::KubernetesUpgrade {
            from: Some("1.33.4".into()),
            to: Some("1.34.1".into())
        }
    );
    assert_eq!(
        set.changes[2].kind,
        ChangeKind::EtcdUpgrade {
            cluster: Some("main".into()),
            from: Some("3.5.31".into()),
            to: Some("3.6.12".into())
        }
    );
}

#[test]
fn kops_harmless_update_is_not_gated() {
    let set = kops("harmless-update.txt");
    assert!(!set.is_gated(), "{set:#?}");
    assert!(!set.seeds_new_cluster());
    // The whitespace-only spec diff (protojson rewrite) is reported as formatting only.
    assert_eq!(kinds(&set), vec!["other"]);
    assert!(set.changes[0].resource.ends_with("etcd-cluster-spec-main"));
}

#[test]
fn kops_6120_key_style_diff_with_spaces_is_not_a_scale() {
    let set = kops("kops-6120-spaces.txt");
    assert_eq!(kinds(&set), vec!["other"], "{set:#?}");
    assert!(!set.is_gated());
}

#[test]
fn kops_no_changes_is_empty() {
    let set = kops("no-changes.txt");
    assert!(set.changes.is_empty());
    assert!(!set.is_gated());
}

#[test]
fn kops_malformed_input_names_the_input() {
    let (bytes, path) = fixture("kops/not-a-report.txt");
    let err = from_kops_dry_run(&String::from_utf8_lossy(&bytes), &path).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("not-a-report.txt"), "{msg}");
    assert!(msg.contains("kops `update cluster` dry-run"), "{msg}");
    assert!(from_kops_dry_run("", "empty-input")
        .unwrap_err()
        .to_string()
        .contains("empty-input"));
}

#[test]
fn kops_partial_diff_falls_back_to_changed_lines() {
    let text = "Will modify resources:\n  ManagedFile/etcd-cluster-spec-main\n  \tContents            \n  \t                    \t...\n  \t                    \t-   \"memberCount\": 3,\n  \t                    \t+   \"memberCount\": 5,\n  \t                    \t...\n\nMust specify --yes to apply changes\n";
    let set = from_kops_dry_run(text, "partial").unwrap();
    assert_eq!(
        set.changes[0].kind,
        ChangeKind::EtcdScale {
            cluster: Some("main".into()),
            from: Some(3),
            to: Some(5)
        }
    );
    assert!(set.notes[0].contains("partial"), "{:?}", set.notes);
}

#[test]
fn kops_deleting_the_spec_is_gated() {
    let text = "Items will be deleted during update:\n  ManagedFile          etcd-cluster-spec-events\n\nMust specify --yes to apply changes\n";
    let set = from_kops_dry_run(text, "del").unwrap();
    assert_eq!(
        set.changes[0].kind,
        ChangeKind::EtcdSpecRemoved {
            cluster: "events".into()
        }
    );
}

#[test]
fn change_set_serializes_camel_case_with_type_tag() {
    let set = kops("modify-member-count.txt");
    let v = serde_json::to_value(&set).unwrap();
    assert_eq!(v["changes"][0]["kind"]["type"], "etcdScale");
    assert_eq!(v["changes"][0]["kind"]["from"], 1);
    assert_eq!(
        v["changes"][0]["resource"],
        "ManagedFile/etcd-cluster-spec-main"
    );
    let set = plan("update-spec.json");
    let v = serde_json::to_value(&set).unwrap();
    assert!(v["changes"][0]["jsonPointers"].is_array(), "{v}");
}

// ---------------------------------------------------------------- terraform

#[test]
fn terraform_create_spec_seeds_new_cluster() {
    let set = plan("create-spec.json");
    assert!(set.seeds_new_cluster());
    assert_eq!(kinds(&set), vec!["seedsNewCluster", "seedsNewCluster"]);
    match &set.changes[1].kind {
        ChangeKind::SeedsNewCluster { cluster, location } => {
            assert_eq!(cluster, "main");
            assert_eq!(
                location.as_deref(),
                Some("s3://acme-kops-state/prod.k8s.acme.example/backups/etcd/main/control/etcd-cluster-spec")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        set.changes[1].resource,
        "aws_s3_object.etcd-cluster-spec-main"
    );
    assert!(
        !set.creates_cluster,
        "cluster-completed-spec is unchanged: existing cluster"
    );
    assert!(
        set.notes
            .iter()
            .any(|n| n.contains("absent from the store")),
        "{:?}",
        set.notes
    );
    let set = plan("create-spec-bucket-object.json");
    assert!(set.seeds_new_cluster());
    assert_eq!(
        set.changes[0].resource,
        "aws_s3_bucket_object.etcd-cluster-spec-main"
    );
}

#[test]
fn terraform_update_spec_is_scale_and_upgrade() {
    let set = plan("update-spec.json");
    assert_eq!(
        kinds(&set),
        vec!["etcdScale", "etcdUpgrade", "kubernetesUpgrade", "other"]
    );
    assert_eq!(
        set.changes[0].kind,
        ChangeKind::EtcdScale {
            cluster: Some("main".into()),
            from: Some(3),
            to: Some(5)
        }
    );
    assert_eq!(
        set.changes[2].kind,
        ChangeKind::KubernetesUpgrade {
            from: Some("1.33.4".into()),
            to: Some("1.34.1".into())
        }
    );
    assert_eq!(
        set.changes[0].json_pointers,
        vec![
            "/resource_changes/0/change/before/content".to_string(),
            "/resource_changes/0/change/after/content".to_string()
        ]
    );
}

#[test]
fn terraform_whitespace_only_and_moved_spec() {
    let set = plan("update-spec-whitespace.json");
    assert!(!set.is_gated(), "{set:#?}");
    let set = plan("replace-spec-moved.json");
    assert!(set.seeds_new_cluster());
    match &set.changes[0].kind {
        ChangeKind::SeedsNewCluster { location, .. } => assert_eq!(
            location.as_deref(),
            Some("s3://acme-etcd-backups/etcd-backups/prod/main/control/etcd-cluster-spec")
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn terraform_malformed_inputs_are_named_errors() {
    let (bytes, path) = fixture("kops/terraform/state-not-plan.json");
    let msg = from_terraform_plan(&bytes, &path).unwrap_err().to_string();
    assert!(
        msg.contains("state-not-plan.json") && msg.contains("terraform show -json"),
        "{msg}"
    );
    let msg = from_terraform_plan(b"{not json", "plan.json")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("plan.json") && msg.contains("JSON"), "{msg}");
    let msg = from_terraform_plan(b"[]", "arr.json")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("arr.json"), "{msg}");
    let msg = from_terraform_plan(b"{\"a\":1}", "other.json")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("format_version"), "{msg}");
}

// ---------------------------------------------------------------- objects

#[test]
fn capi_cluster_topology_version_is_kubernetes_upgrade() {
    let set = pair("capi-cluster-old.yaml", "capi-cluster-new.yaml");
    assert_eq!(kinds(&set), vec!["kubernetesUpgrade"], "{set:#?}");
    let c = &set.changes[0];
    assert_eq!(
        c.kind,
        ChangeKind::KubernetesUpgrade {
            from: Some("v1.33.4".into()),
            to: Some("v1.34.1".into())
        }
    );
    assert_eq!(c.json_pointers, vec!["/spec/topology/version".to_string()]);
    assert_eq!(c.resource, "cluster.x-k8s.io/Cluster clusters/prod-eu1");
    assert_eq!(c.evidence, "spec.topology.version: v1.33.4 -> v1.34.1");
}

#[test]
fn kcp_replicas_etcd_tag_and_etcd_args() {
    let set = pair("kcp-old.yaml", "kcp-new.yaml");
    assert_eq!(
        kinds(&set),
        vec!["controlPlaneScale", "etcdUpgrade", "etcdConfigChange"],
        "{set:#?}"
    );
    assert_eq!(
        set.changes[0].kind,
        ChangeKind::ControlPlaneScale {
            from: Some(3),
            to: Some(5)
        }
    );
    assert_eq!(
        set.changes[1].kind,
        ChangeKind::EtcdUpgrade {
            cluster: Some("prod-eu1-control-plane".into()),
            from: Some("3.5.21-0".into()),
            to: Some("3.6.4-0".into())
        }
    );
    assert_eq!(
        set.changes[2].json_pointers,
        vec![
            "/spec/kubeadmConfigSpec/clusterConfiguration/etcd/local/extraArgs/quota-backend-bytes"
                .to_string()
        ]
    );
}

#[test]
fn openshift_desired_update_and_preflight() {
    let set = pair("clusterversion-old.yaml", "clusterversion-new.yaml");
    assert_eq!(kinds(&set), vec!["platformUpgrade", "other"], "{set:#?}");
    assert_eq!(
        set.changes[0].kind,
        ChangeKind::PlatformUpgrade {
            from: Some("4.18.21".into()),
            to: Some("4.19.7".into())
        }
    );
    let set = pair("clusterversion-old.yaml", "clusterversion-preflight.yaml");
    assert!(!set.is_gated(), "{set:#?}");
    assert!(set
        .changes
        .iter()
        .any(|c| matches!(&c.kind, ChangeKind::Other { detail } if detail.contains("Preflight"))));
}

#[test]
fn kops_cluster_object_version_members_store() {
    let set = pair("kops-cluster-old.yaml", "kops-cluster-new.yaml");
    assert_eq!(
        kinds(&set),
        vec![
            "kubernetesUpgrade",
            "etcdScale",
            "etcdUpgrade",
            "backupStoreMoved",
            "etcdConfigChange"
        ],
        "{set:#?}"
    );
    assert_eq!(
        set.changes[1].kind,
        ChangeKind::EtcdScale {
            cluster: Some("main".into()),
            from: Some(1),
            to: Some(3)
        }
    );
    assert_eq!(
        set.changes[3].kind,
        ChangeKind::BackupStoreMoved {
            cluster: "main".into(),
            from: Some("s3://acme-kops-state/prod.k8s.acme.example/backups/etcd/main".into()),
            to: Some("s3://acme-etcd-backups/prod/main".into())
        }
    );
    assert_eq!(
        set.changes[4].json_pointers,
        vec!["/spec/etcdClusters/0/manager/backupRetentionDays".to_string()]
    );
    assert!(set.is_gated());
}

#[test]
fn kops_spelling_out_the_default_backup_store_is_not_a_move() {
    let old = object("kops-cluster-old.yaml");
    let mut new = old.clone();
    new["spec"]["etcdClusters"][0]["backups"] = serde_json::json!({
        "backupStore": "s3://acme-kops-state/prod.k8s.acme.example/backups/etcd/main"
    });
    let set = from_objects(Some(&old), Some(&new)).unwrap();
    assert!(!kinds(&set).contains(&"backupStoreMoved"), "{set:#?}");
    // Changing configBase moves every default store.
    let mut moved = old.clone();
    moved["spec"]["configBase"] = serde_json::json!("s3://other-state/prod.k8s.acme.example");
    let set = from_objects(Some(&old), Some(&moved)).unwrap();
    assert_eq!(
        kinds(&set),
        vec!["backupStoreMoved", "backupStoreMoved"],
        "{set:#?}"
    );
}

#[test]
fn suc_plan_version_and_channel() {
    let set = pair("suc-plan-old.yaml", "suc-plan-new.yaml");
    assert_eq!(
        set.changes[0].kind,
        ChangeKind::KubernetesUpgrade {
            from: Some("v1.33.4+k3s1".into()),
            to: Some("v1.34.1+k3s1".into())
        }
    );
    let set = pair("suc-plan-old.yaml", "suc-plan-channel.yaml");
    assert_eq!(kinds(&set), vec!["upgradeChannelChange"], "{set:#?}");
    // Creating a Plan with a version starts an upgrade.
    let created = from_objects(None, Some(&object("suc-plan-new.yaml"))).unwrap();
    assert_eq!(
        created.changes[0].kind,
        ChangeKind::KubernetesUpgrade {
            from: None,
            to: Some("v1.34.1+k3s1".into())
        }
    );
    let deleted = from_objects(Some(&object("suc-plan-new.yaml")), None).unwrap();
    assert!(!deleted.is_gated());
}

#[test]
fn etcd_operator_size_and_version() {
    let set = pair("etcdcluster-old.yaml", "etcdcluster-new.yaml");
    assert_eq!(kinds(&set), vec!["etcdScale", "etcdUpgrade"], "{set:#?}");
    assert_eq!(
        set.changes[0].kind,
        ChangeKind::EtcdScale {
            cluster: Some("example-etcd-cluster".into()),
            from: Some(3),
            to: Some(5)
        }
    );
}

#[test]
fn rancher_version_and_disabled_snapshots() {
    let set = pair("rancher-cluster-old.yaml", "rancher-cluster-new.yaml");
    assert_eq!(
        kinds(&set),
        vec!["kubernetesUpgrade", "etcdConfigChange"],
        "{set:#?}"
    );
    assert_eq!(
        set.changes[0].kind,
        ChangeKind::KubernetesUpgrade {
            from: Some("v1.32.7+rke2r1".into()),
            to: Some("v1.33.3+rke2r1".into())
        }
    );
    // Scaling the etcd pool is an etcd scale.
    let old = object("rancher-cluster-old.yaml");
    let mut new = old.clone();
    new["spec"]["rkeConfig"]["machinePools"][0]["quantity"] = serde_json::json!(5);
    let set = from_objects(Some(&old), Some(&new)).unwrap();
    assert_eq!(
        set.changes[0].kind,
        ChangeKind::EtcdScale {
            cluster: Some("prod-rke2".into()),
            from: Some(3),
            to: Some(5)
        }
    );
}

#[test]
fn creation_and_deletion_of_cluster_kinds() {
    let kcp = object("kcp-old.yaml");
    let created = from_objects(None, Some(&kcp)).unwrap();
    assert_eq!(kinds(&created), vec!["clusterCreation"]);
    assert!(created.creates_cluster);
    assert!(!created.is_gated());
    let deleted = from_objects(Some(&kcp), None).unwrap();
    assert_eq!(kinds(&deleted), vec!["clusterDeletion"]);
    assert!(deleted.is_gated());
}

#[test]
fn unknown_kind_is_not_a_gated_change() {
    let set = pair("configmap-old.json", "configmap-new.json");
    assert!(set.changes.is_empty());
    assert!(!set.is_gated());
    assert!(!etcdguard::change::is_known_kind("", "ConfigMap"));
    assert!(etcdguard::change::is_known_kind(
        "upgrade.cattle.io",
        "Plan"
    ));
}

#[test]
fn same_object_is_no_change() {
    for f in [
        "capi-cluster-old.yaml",
        "kcp-old.yaml",
        "clusterversion-old.yaml",
        "kops-cluster-old.yaml",
        "suc-plan-old.yaml",
        "etcdcluster-old.yaml",
        "rancher-cluster-old.yaml",
    ] {
        let o = object(f);
        let set = from_objects(Some(&o), Some(&o)).unwrap();
        assert!(set.changes.is_empty(), "{f}: {set:#?}");
    }
}

#[test]
fn malformed_objects_name_the_input() {
    for (f, want) in [
        ("malformed.yaml", "YAML"),
        ("malformed.json", "JSON"),
        ("missing-kind.yaml", "apiVersion"),
    ] {
        let (b, p) = fixture(&format!("objects/{f}"));
        let msg = load_object(&b, &p).unwrap_err().to_string();
        assert!(msg.contains(f), "{msg}");
        assert!(msg.contains(want), "{msg}");
    }
    let msg = load_object(b"  \n", "empty.yaml").unwrap_err().to_string();
    assert!(msg.contains("empty.yaml") && msg.contains("empty"), "{msg}");
    let msg = load_object(b"a: 1\n---\nb: 2\n", "multi.yaml")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("multi.yaml"), "{msg}");
}
