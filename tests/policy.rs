//! Gate policies (issue #6): loading, located errors, mode semantics, break-glass exceptions,
//! pointer matching on realistic objects, and the `policy lint` / `policy explain` commands.

mod common;

use chrono::{DateTime, TimeZone, Utc};
use etcdguard::policy::{
    apply_exception, apply_mode, ChangeSource, Decision, ExceptionDecision, LoadError, MatchReason,
    Mode, Operation, PolicyError, PolicyMatch, PolicySet, Request, Severity, Verification,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/policy")
        .join(name)
}

fn object(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

fn embedded() -> PolicySet {
    PolicySet::embedded().unwrap_or_else(|e| panic!("embedded policies must load: {e}"))
}

fn update(old: &str, new: &str) -> Request {
    Request::from_objects(Operation::Update, Some(object(old)), Some(object(new)))
}

fn matched_names(set: &PolicySet, req: &Request) -> Vec<String> {
    set.matching(req).into_iter().map(|m| m.policy).collect()
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

// ---------------------------------------------------------------------------------------------
// Loading the shipped policies

#[test]
fn embedded_and_on_disk_default_policies_load_cleanly_and_agree() {
    let emb = embedded();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let disk = PolicySet::load(&dir).unwrap_or_else(|e| panic!("policies/ must load: {e}"));
    let names = |s: &PolicySet| {
        let mut v: Vec<String> = s.policies().iter().map(|p| p.name().to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(names(&emb), names(&disk));
    // Every file in policies/ is embedded (nobody added a file and forgot include_str!).
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .collect();
    files.sort();
    let mut embedded_files: Vec<String> = etcdguard::policy::EMBEDDED
        .iter()
        .map(|(f, _)| f.to_string())
        .collect();
    embedded_files.sort();
    assert_eq!(files, embedded_files);
    for (f, text) in etcdguard::policy::EMBEDDED {
        assert_eq!(*text, std::fs::read_to_string(dir.join(f)).unwrap(), "{f}");
    }
    for p in emb.policies() {
        assert_eq!(
            p.mode(),
            Mode::Enforce,
            "{} ships in enforce mode",
            p.name()
        );
        assert!(
            p.require().snapshot_max_age.is_some(),
            "{} requires a snapshot age",
            p.name()
        );
        assert!(p.file.starts_with("embedded:"), "{}", p.file);
    }
}

/// Each ecosystem's upgrade object, with a change of the field that carries the intent,
/// matches exactly the policy shipped for it.
#[test]
fn shipped_policies_cover_each_ecosystem_with_the_right_group_and_kind() {
    let set = embedded();
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        (
            "kops.k8s.io/v1alpha2",
            "Cluster",
            "/spec/kubernetesVersion",
            "kops-cluster-objects",
            "",
        ),
        (
            "kops.k8s.io/v1alpha2",
            "InstanceGroup",
            "/spec/maxSize",
            "kops-cluster-objects",
            "",
        ),
        (
            "cluster.x-k8s.io/v1beta2",
            "Cluster",
            "/spec/topology/version",
            "capi-cluster-topology",
            "",
        ),
        (
            "controlplane.cluster.x-k8s.io/v1beta2",
            "KubeadmControlPlane",
            "/spec/version",
            "capi-kubeadm-control-plane",
            "",
        ),
        (
            "config.openshift.io/v1",
            "ClusterVersion",
            "/spec/desiredUpdate/version",
            "openshift-cluster-version",
            "",
        ),
        (
            "upgrade.cattle.io/v1",
            "Plan",
            "/spec/version",
            "k3s-upgrade-plan",
            "",
        ),
        (
            "upgrade.cattle.io/v1",
            "Plan",
            "/spec/channel",
            "k3s-upgrade-plan",
            "",
        ),
        (
            "provisioning.cattle.io/v1",
            "Cluster",
            "/spec/kubernetesVersion",
            "rancher-provisioned-cluster",
            "",
        ),
        (
            "etcd.database.coreos.com/v1beta2",
            "EtcdCluster",
            "/spec/size",
            "etcd-operator-cluster",
            "",
        ),
        (
            "operator.etcd.io/v1alpha1",
            "EtcdCluster",
            "/spec/version",
            "etcd-operator-cluster",
            "",
        ),
        (
            "s3.services.k8s.aws/v1alpha1",
            "Bucket",
            "/spec/lifecycle",
            "s3-lifecycle-rules",
            "",
        ),
        (
            "s3.aws.upbound.io/v1beta1",
            "BucketLifecycleConfiguration",
            "/spec/forProvider/rule",
            "s3-lifecycle-rules",
            "",
        ),
        (
            "s3.aws.m.upbound.io/v1beta1",
            "BucketLifecycleConfiguration",
            "/spec/forProvider/rule",
            "s3-lifecycle-rules",
            "",
        ),
    ];
    for (api_version, kind, pointer, policy, _) in cases {
        let mut old =
            serde_json::json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}});
        let mut new = old.clone();
        set_pointer(&mut old, pointer, Value::String("v1".into()));
        set_pointer(&mut new, pointer, Value::String("v2".into()));
        let req = Request::from_objects(Operation::Update, Some(old.clone()), Some(new));
        assert_eq!(
            matched_names(&set, &req),
            vec![policy.to_string()],
            "{api_version} {kind} {pointer}"
        );
        // The same object with only a label change matches nothing.
        let mut relabel = old.clone();
        relabel["metadata"]["labels"] = serde_json::json!({"a": "b"});
        let req = Request::from_objects(Operation::Update, Some(old), Some(relabel));
        assert!(
            matched_names(&set, &req).is_empty(),
            "{api_version} {kind}: a label change must not match"
        );
    }
    // Wrong group for a right kind: a core-group Cluster is not a CAPI or kops Cluster.
    let mut old = serde_json::json!({"apiVersion": "example.com/v1", "kind": "Cluster", "spec": {"topology": {"version": "a"}}});
    let new = {
        let mut n = old.clone();
        n["spec"]["topology"]["version"] = "b".into();
        n
    };
    old["spec"]["kubernetesVersion"] = "a".into();
    assert!(matched_names(
        &set,
        &Request::from_objects(Operation::Update, Some(old), Some(new))
    )
    .is_empty());
    // CLI sources.
    assert_eq!(
        matched_names(&set, &Request::cli(ChangeSource::KopsDryRun)),
        vec!["kops-cli-changes"]
    );
    assert_eq!(
        matched_names(&set, &Request::cli(ChangeSource::TerraformPlan)),
        vec!["kops-cli-changes"]
    );
    assert_eq!(
        matched_names(&set, &Request::cli(ChangeSource::Lifecycle)),
        vec!["s3-lifecycle-rules"]
    );
    // Creating a system-upgrade-controller Plan starts an upgrade: gated. Creating a CAPI cluster is not.
    let plan = serde_json::json!({"apiVersion": "upgrade.cattle.io/v1", "kind": "Plan",
        "metadata": {"name": "server-plan", "namespace": "system-upgrade"},
        "spec": {"concurrency": 1, "version": "v1.31.4+k3s1", "upgrade": {"image": "rancher/k3s-upgrade"}}});
    let req = Request::from_objects(Operation::Create, None, Some(plan));
    assert_eq!(matched_names(&set, &req), vec!["k3s-upgrade-plan"]);
    let req = Request::from_objects(Operation::Create, None, Some(object("kcp-old.yaml")));
    assert!(matched_names(&set, &req).is_empty());
}

fn set_pointer(v: &mut Value, pointer: &str, leaf: Value) {
    let mut cur = v;
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    for (i, p) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            cur[*p] = leaf.clone();
        } else {
            if cur.get(*p).is_none() {
                cur[*p] = serde_json::json!({});
            }
            cur = &mut cur[*p];
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Located errors

fn load_errors(path: &Path) -> Vec<PolicyError> {
    match PolicySet::load(path) {
        Err(LoadError::Invalid(errs)) => errs,
        Err(e) => panic!("expected policy errors in {}, got {e}", path.display()),
        Ok(_) => panic!("expected policy errors in {}", path.display()),
    }
}

fn one_error(name: &str) -> PolicyError {
    let path = fixture(&format!("invalid/{name}"));
    let mut errs = load_errors(&path);
    assert_eq!(errs.len(), 1, "{name}: {errs:?}");
    let e = errs.remove(0);
    assert_eq!(e.file, path.display().to_string());
    e
}

#[test]
fn each_error_class_names_file_line_and_field() {
    let e = one_error("unknown-field.yaml");
    assert_eq!((e.line, e.field.as_str()), (14, "spec.require"));
    assert!(e.message.contains("unknown field `snapshotMaxAgee`"), "{e}");
    assert!(
        e.message.contains("`snapshotMaxAge`"),
        "lists the expected fields: {e}"
    );

    let e = one_error("wrong-type.yaml");
    assert_eq!(
        (e.line, e.field.as_str()),
        (16, "spec.require.controlFiles")
    );
    assert!(e.message.contains("expected a boolean"), "{e}");

    let e = one_error("negative-age.yaml");
    assert_eq!(
        (e.line, e.field.as_str()),
        (14, "spec.require.snapshotMaxAge")
    );
    assert!(e.message.contains("negative"), "{e}");

    let e = one_error("unknown-mode.yaml");
    assert_eq!((e.line, e.field.as_str()), (6, "spec.mode"));
    assert!(
        e.message.contains("`block`") && e.message.contains("`enforce`"),
        "{e}"
    );

    let e = one_error("bad-pointer.yaml");
    assert_eq!(
        (e.line, e.field.as_str(), e.column),
        (12, "spec.match.resources[0].paths[1]", Some(30))
    );
    assert!(
        e.message.contains("`spec/replicas` is not a JSON pointer"),
        "{e}"
    );

    let e = one_error("unknown-operation.yaml");
    assert_eq!(
        (e.line, e.field.as_str()),
        (11, "spec.match.resources[0].operations[1]")
    );
    assert!(e.message.contains("`PATCH`"), "{e}");

    let s = e.to_string();
    assert!(
        s.starts_with(&format!(
            "{}:11:",
            fixture("invalid/unknown-operation.yaml").display()
        )),
        "{s}"
    );
}

#[test]
fn semantic_errors_are_all_reported_with_their_lines() {
    let errs = load_errors(&fixture("invalid/semantic.yaml"));
    let got: Vec<(usize, &str)> = errs.iter().map(|e| (e.line, e.field.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (7, "spec.match"),
            (13, "spec.exceptions"),
            (38, "metadata.name")
        ],
        "{errs:?}"
    );
    assert!(errs[0].message.contains("matches nothing"));
    assert!(errs[1].message.contains("nobody could break glass"));
    assert!(
        errs[2].message.contains("semantic.yaml:19"),
        "points at the first definition: {}",
        errs[2]
    );
}

#[test]
fn a_folder_reports_every_error_of_every_file() {
    let errs = load_errors(&fixture("invalid"));
    assert_eq!(errs.len(), 9, "{errs:#?}");
    let files: std::collections::BTreeSet<_> = errs.iter().map(|e| e.file.clone()).collect();
    assert_eq!(files.len(), 7);
}

#[test]
fn more_impossible_values_are_rejected_at_their_line() {
    let base = std::fs::read_to_string(fixture("invalid/unknown-mode.yaml"))
        .unwrap()
        .replace("mode: block", "mode: enforce");
    let cases = [
        ("    snapshotMaxAge: 3h", "    snapshotMaxAge: 0s", 14, "spec.require.snapshotMaxAge", "zero"),
        ("    snapshotMaxAge: 3h", "    snapshotMaxAge: 3600", 14, "spec.require.snapshotMaxAge", "no unit"),
        ("    snapshotMaxAge: 3h", "    snapshotMaxAge: soon", 14, "spec.require.snapshotMaxAge", "not a duration"),
        ("    verifySnapshot: full", "    verifySnapshot: paranoid", 15, "spec.require.verifySnapshot", "`trailer-only`"),
        ("      paths: [/spec/version]", "      paths: [/spec/~2x]", 12, "spec.match.resources[0].paths[0]", "`~` must be followed"),
        ("    groups: [sre]", "    groups: [sre]\n    expires: tomorrow", 19, "spec.exceptions.expires", "RFC 3339"),
        ("  name: unknown-mode", "  name: Bad_Name", 4, "metadata.name", "DNS-1123"),
        ("kind: GatePolicy", "kind: ClusterPolicy", 2, "kind", "GatePolicy"),
        ("      kinds: [KubeadmControlPlane]", "      kinds: [kubeadmcontrolplanes]", 10, "spec.match.resources[0].kinds[0]", "UpperCamelCase"),
        ("  require:\n", "  require:\n    stores:\n    - {url: bucket/prefix, layout: etcd-manager, cluster: a}\n", 15, "spec.require.stores[0].url", "s3://"),
        ("  require:\n", "  require:\n    stores:\n    - {url: s3://b/p, layout: velero, cluster: a}\n", 15, "spec.require.stores[0].layout", "etcd-manager"),
    ];
    for (from, to, line, field, needle) in cases {
        assert!(base.contains(from), "{from}");
        let text = base.replace(from, to);
        let errs = etcdguard::policy::parse_str("case.yaml", &text).unwrap_err();
        assert_eq!(errs.len(), 1, "{to}: {errs:?}");
        let e = &errs[0];
        assert_eq!((e.line, e.field.as_str()), (line, field), "{to}: {e}");
        assert!(e.message.contains(needle), "{to}: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Mode semantics

#[test]
fn modes_turn_the_same_findings_into_different_decisions() {
    let findings = [
        Severity::Info,
        Severity::Warning,
        Severity::Unknown,
        Severity::Deny,
    ];
    let decide = |mode| -> Vec<Decision> {
        findings
            .iter()
            .map(|s| apply_mode(mode, *s).decision)
            .collect()
    };
    use Decision::*;
    assert_eq!(decide(Mode::Enforce), vec![Allow, Warn, Deny, Deny]);
    assert_eq!(decide(Mode::Warn), vec![Allow, Warn, Warn, Warn]);
    assert_eq!(decide(Mode::Audit), vec![Allow, Allow, Allow, Allow]);
    for mode in [Mode::Enforce, Mode::Warn, Mode::Audit] {
        let recorded: Vec<bool> = findings
            .iter()
            .map(|s| apply_mode(mode, *s).record)
            .collect();
        assert_eq!(
            recorded,
            vec![false, true, true, true],
            "{mode}: every warning or worse is recorded"
        );
    }
    // The overall decision is the worst one: only enforce refuses.
    let worst = |mode| findings.iter().map(|s| apply_mode(mode, *s).decision).max();
    assert_eq!(worst(Mode::Enforce), Some(Deny));
    assert_eq!(worst(Mode::Warn), Some(Warn));
    assert_eq!(worst(Mode::Audit), Some(Allow));
    // An honoured exception turns a deny into a recorded warning and leaves the rest alone.
    let e = apply_exception(apply_mode(Mode::Enforce, Severity::Deny));
    assert_eq!((e.decision, e.record), (Warn, true));
    assert_eq!(
        apply_exception(apply_mode(Mode::Enforce, Severity::Info)).decision,
        Allow
    );
}

#[test]
fn effective_requirements_take_the_strictest_of_all_matching_policies() {
    let set = PolicySet::load(&fixture("valid")).unwrap();
    assert_eq!(
        set.policies().len(),
        2,
        "a user's folder replaces the defaults; notes.txt is ignored"
    );
    let req = update("kcp-old.yaml", "kcp-upgrade.yaml");
    let matches = set.matching(&req);
    assert_eq!(matches.len(), 2);
    let eff = set.effective(&matches);
    assert_eq!(eff.mode, Some(Mode::Enforce));
    assert_eq!(
        eff.snapshot_max_age.map(|a| a.0),
        Some(Duration::from_secs(30 * 60))
    );
    assert_eq!(eff.verify_snapshot, Some(Verification::Full));
    assert!(eff.live_etcd && eff.lifecycle && !eff.control_files);
    let urls: Vec<&str> = eff.stores.iter().map(|s| s.url.as_str()).collect();
    assert_eq!(
        urls,
        vec![
            "s3://acme-etcd-backups/prod-eu1/backups/etcd/main",
            "/var/lib/etcd-backups"
        ]
    );
    // Only the replica change: only the enforce policy matches, so its own values apply.
    let mut req = Request::from_objects(
        Operation::Update,
        Some(object("kcp-scale-old.json")),
        Some(object("kcp-scale-new.json")),
    );
    req.subresource = Some("scale".into());
    req.api_group = "controlplane.cluster.x-k8s.io".into();
    req.kind = "KubeadmControlPlane".into();
    let matches = set.matching(&req);
    let eff = set.effective(&matches);
    assert_eq!(eff.policies, vec!["prod-control-plane-upgrades"]);
    assert_eq!(
        eff.snapshot_max_age.map(|a| a.0),
        Some(Duration::from_secs(90 * 60))
    );
    assert!(!eff.lifecycle);
}

// ---------------------------------------------------------------------------------------------
// Break-glass exceptions

fn glass_request(groups: &[&str], user: &str, reason: Option<&str>) -> Request {
    let mut req = update("clusterversion-old.yaml", "clusterversion-upgrade.yaml")
        .by(user, groups.iter().map(|g| g.to_string()).collect());
    if let Some(r) = reason {
        req.annotations
            .insert("etcdguard.dev/break-glass".into(), r.into());
    }
    req
}

#[test]
fn break_glass_is_honoured_only_for_listed_requesters_before_expiry_with_a_reason() {
    let set = PolicySet::load(&fixture("valid")).unwrap();
    let policy = set.get("prod-control-plane-upgrades").unwrap();
    let before = t("2026-11-23T10:00:00Z");
    let after = t("2027-01-01T00:00:00Z");

    // Allowed group.
    let req = glass_request(
        &["system:authenticated", "platform-oncall"],
        "bob",
        Some("INC-4711 restore drill"),
    );
    let d = policy.exception(&req, before);
    assert_eq!(
        d,
        ExceptionDecision::Honoured {
            reason: "INC-4711 restore drill".into(),
            user: "bob".into(),
            expires: Some(t("2026-12-31T23:59:59Z")),
        }
    );
    let used = d.use_record(policy, &req, before).expect("a use record");
    assert_eq!(used.policy, "prod-control-plane-upgrades");
    assert_eq!(used.target, "config.openshift.io/ClusterVersion");
    assert_eq!(used.at, before);
    let (key, value) = used.audit_annotation();
    assert!(
        !key.contains('/'),
        "the apiserver prefixes audit keys with `<webhook>/`: {key}"
    );
    let v: Value = serde_json::from_str(&value).unwrap();
    assert_eq!(v["reason"], "INC-4711 restore drill");
    assert_eq!(v["user"], "bob");
    used.log();

    // Allowed user, no group.
    let req = glass_request(&[], "alice@example.com", Some("change CHG-12"));
    assert!(matches!(
        policy.exception(&req, before),
        ExceptionDecision::Honoured { .. }
    ));

    // Another group.
    let req = glass_request(&["developers"], "mallory", Some("trust me"));
    match policy.exception(&req, before) {
        ExceptionDecision::Refused { why } => {
            assert!(
                why.contains("mallory") && why.contains("platform-oncall"),
                "{why}"
            )
        }
        other => panic!("expected refusal, got {other:?}"),
    }
    assert!(ExceptionDecision::Refused { why: String::new() }
        .use_record(policy, &req, before)
        .is_none());

    // After expiry, even for the allowed group; exactly at expiry too.
    let req = glass_request(&["platform-oncall"], "bob", Some("INC-4711"));
    for now in [after, t("2026-12-31T23:59:59Z")] {
        match policy.exception(&req, now) {
            ExceptionDecision::Refused { why } => {
                assert!(why.contains("expired at 2026-12-31T23:59:59Z"), "{why}")
            }
            other => panic!("expected refusal after expiry, got {other:?}"),
        }
    }

    // Empty (or blank) reason.
    for empty in ["", "   "] {
        let req = glass_request(&["platform-oncall"], "bob", Some(empty));
        match policy.exception(&req, before) {
            ExceptionDecision::Refused { why } => assert!(why.contains("is empty"), "{why}"),
            other => panic!("expected refusal for an empty reason, got {other:?}"),
        }
    }

    // Not requested.
    let req = glass_request(&["platform-oncall"], "bob", None);
    assert_eq!(
        policy.exception(&req, before),
        ExceptionDecision::NotRequested
    );

    // A policy without `exceptions` refuses any break-glass.
    let strict = set.get("prod-control-plane-watch").unwrap();
    let req = glass_request(&["platform-oncall"], "bob", Some("INC-1"));
    assert!(matches!(
        strict.exception(&req, before),
        ExceptionDecision::Refused { .. }
    ));
}

#[test]
fn break_glass_annotation_is_read_from_the_object() {
    let set = embedded();
    let policy = set.get("openshift-cluster-version").unwrap();
    let mut new = object("clusterversion-upgrade.yaml");
    new["metadata"]["annotations"] =
        serde_json::json!({"etcdguard.dev/break-glass": "OCPBUGS-1 hotfix"});
    let req = Request::from_objects(
        Operation::Update,
        Some(object("clusterversion-old.yaml")),
        Some(new),
    )
    .by("kube:admin", vec!["system:masters".into()]);
    assert!(matches!(
        policy.exception(&req, Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()),
        ExceptionDecision::Honoured { ref reason, .. } if reason == "OCPBUGS-1 hotfix"
    ));
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
    let mut new = object("clusterversion-upgrade.yaml");
    new["metadata"]["annotations"] =
        serde_json::json!({"etcdguard.dev/break-glass": "OCPBUGS-1 hotfix"});
    let req = Request::from_objects(
        Operation::Update,
        Some(object("clusterversion-old.yaml")),
        Some(new),
    )
    .by("dev", vec!["system:authenticated".into()]);
    let both = set.matching_with_exceptions(&req, now);
    assert_eq!(both.len(), 1);
    assert_eq!(both[0].0.policy, "openshift-cluster-version");
    assert!(
        matches!(both[0].1, ExceptionDecision::Refused { .. }),
        "{:?}",
        both[0].1
    );
}

// ---------------------------------------------------------------------------------------------
// Pointer matching on realistic objects

/// Every watched path of `policy` that changed, with its operations (`policy explain`'s view;
/// `PolicySet::matching`, the gate's, stops at the first: checked here too).
fn resource_hits(set: &PolicySet, req: &Request, policy: &str) -> Vec<(String, Vec<String>)> {
    let m = set
        .explain(req)
        .into_iter()
        .find_map(|m| match m {
            PolicyMatch::Matched(m) if m.policy == policy => Some(m),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{policy} should match"));
    let first = set
        .matching(req)
        .into_iter()
        .find(|m| m.policy == policy)
        .unwrap_or_else(|| panic!("{policy} should match in matching() too"));
    match (&first.reason, &m.reason) {
        (
            MatchReason::Resource { rule, changed },
            MatchReason::Resource {
                rule: all_rule,
                changed: all,
            },
        ) => {
            assert_eq!(rule, all_rule);
            assert_eq!(
                changed.len(),
                all.len().min(1),
                "matching() keeps the first hit"
            );
            assert_eq!(changed.first(), all.first());
        }
        (a, b) => assert_eq!(a, b),
    }
    match m.reason {
        MatchReason::Resource { changed, .. } => changed
            .into_iter()
            .map(|h| {
                (
                    h.watched,
                    h.changes
                        .into_iter()
                        .map(|c| format!("{} {}", c.op, c.path))
                        .collect(),
                )
            })
            .collect(),
        other => panic!("expected a resource match, got {other:?}"),
    }
}

#[test]
fn kubeadm_control_plane_changes_match_on_the_right_pointers() {
    let set = embedded();
    let req = update("kcp-old.yaml", "kcp-upgrade.yaml");
    assert_eq!(
        resource_hits(&set, &req, "capi-kubeadm-control-plane"),
        vec![(
            "/spec/version".to_string(),
            vec!["replace /spec/version".to_string()]
        )]
    );
    assert_eq!(
        matched_names(&set, &req),
        vec!["capi-kubeadm-control-plane"]
    );

    let req = update("kcp-old.yaml", "kcp-etcd-image.yaml");
    assert_eq!(
        resource_hits(&set, &req, "capi-kubeadm-control-plane"),
        vec![(
            "/spec/kubeadmConfigSpec/clusterConfiguration/etcd".to_string(),
            vec![
                "replace /spec/kubeadmConfigSpec/clusterConfiguration/etcd/local/imageTag"
                    .to_string()
            ]
        )]
    );

    // Status churn and a label change: the diff is not empty, but no watched pointer changed.
    let req = update("kcp-old.yaml", "kcp-status-only.yaml");
    assert!(!req.changes().is_empty());
    assert!(matched_names(&set, &req).is_empty());
    let why = set
        .explain(&req)
        .into_iter()
        .find_map(|m| match m {
            PolicyMatch::NotMatched(x) if x.policy == "capi-kubeadm-control-plane" => {
                Some(x.reasons)
            }
            _ => None,
        })
        .unwrap();
    assert!(
        why[0].contains("none of the watched paths changed"),
        "{why:?}"
    );
}

#[test]
fn kubeadm_control_plane_scale_subresource_matches() {
    let set = embedded();
    let base = Request::from_objects(
        Operation::Update,
        Some(object("kcp-scale-old.json")),
        Some(object("kcp-scale-new.json")),
    );
    assert_eq!(base.kind, "Scale");
    // As a Scale of the autoscaling group without subresource information, nothing matches.
    assert!(matched_names(&set, &base).is_empty());
    // With the parent's group and kind (what the admission adapter passes for /scale).
    let mut req = base.clone();
    req.api_group = "controlplane.cluster.x-k8s.io".into();
    req.kind = "KubeadmControlPlane".into();
    req.subresource = Some("scale".into());
    assert_eq!(
        resource_hits(&set, &req, "capi-kubeadm-control-plane"),
        vec![(
            "/spec/replicas".to_string(),
            vec!["replace /spec/replicas".to_string()]
        )]
    );
    // With only the plural resource name (request.resource.resource) and kind Scale.
    let mut req = base.clone();
    req.api_group = "controlplane.cluster.x-k8s.io".into();
    req.resource = Some("kubeadmcontrolplanes".into());
    req.subresource = Some("scale".into());
    assert_eq!(
        matched_names(&set, &req),
        vec!["capi-kubeadm-control-plane"]
    );
    // The status subresource is not matched by the shipped rule.
    let mut req = base;
    req.api_group = "controlplane.cluster.x-k8s.io".into();
    req.kind = "KubeadmControlPlane".into();
    req.subresource = Some("status".into());
    assert!(matched_names(&set, &req).is_empty());
}

#[test]
fn cluster_version_changes_match_on_the_right_pointers() {
    let set = embedded();
    let req = update("clusterversion-old.yaml", "clusterversion-upgrade.yaml");
    let hits = resource_hits(&set, &req, "openshift-cluster-version");
    let watched: Vec<&str> = hits.iter().map(|(w, _)| w.as_str()).collect();
    assert_eq!(
        watched,
        vec!["/spec/desiredUpdate/version", "/spec/desiredUpdate/image"]
    );
    assert_eq!(hits[0].1, vec!["replace /spec/desiredUpdate/version"]);

    // A channel change alone is not an upgrade.
    let req = update("clusterversion-old.yaml", "clusterversion-channel.yaml");
    assert!(matched_names(&set, &req).is_empty());

    // `oc adm upgrade --to` on a cluster that never had desiredUpdate adds the whole block:
    // one `add /spec/desiredUpdate` touches every watched field it now sets (including
    // `architecture: ""`, which went from absent to present).
    let req = update(
        "clusterversion-no-desired.yaml",
        "clusterversion-upgrade.yaml",
    );
    let hits = resource_hits(&set, &req, "openshift-cluster-version");
    let watched: Vec<&str> = hits.iter().map(|(w, _)| w.as_str()).collect();
    assert_eq!(
        watched,
        vec![
            "/spec/desiredUpdate/version",
            "/spec/desiredUpdate/image",
            "/spec/desiredUpdate/architecture"
        ]
    );
    assert_eq!(hits[0].1, vec!["add /spec/desiredUpdate"]);
    // Adding a desiredUpdate that only sets `force` touches no watched field.
    let mut forced = object("clusterversion-no-desired.yaml");
    forced["spec"]["desiredUpdate"] = serde_json::json!({"force": true});
    let req = Request::from_objects(
        Operation::Update,
        Some(object("clusterversion-no-desired.yaml")),
        Some(forced),
    );
    assert!(matched_names(&set, &req).is_empty());
}

// ---------------------------------------------------------------------------------------------
// The binary

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn policy_lint_exit_codes() {
    let ok = common::etcdguard(&[
        "policy",
        "lint",
        concat!(env!("CARGO_MANIFEST_DIR"), "/policies"),
    ]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        stdout(&ok).contains("9 policies, no errors"),
        "{}",
        stdout(&ok)
    );

    let embedded = common::etcdguard(&["policy", "lint"]);
    assert_eq!(embedded.status.code(), Some(0));

    let valid = fixture("valid");
    let ok = common::etcdguard(&["policy", "lint", valid.to_str().unwrap()]);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));

    let invalid = fixture("invalid");
    let bad = common::etcdguard(&["policy", "lint", invalid.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    let out = stdout(&bad);
    // Every error, not just the first, each with file:line.
    let neg = format!(
        "{}:14:21: spec.require.snapshotMaxAge:",
        fixture("invalid/negative-age.yaml").display()
    );
    assert!(out.contains(&neg), "{out}");
    let mode = format!(
        "{}:6:9: spec.mode:",
        fixture("invalid/unknown-mode.yaml").display()
    );
    assert!(out.contains(&mode), "{out}");
    assert!(out.contains("9 error(s)"), "{out}");

    let json = common::etcdguard(&[
        "policy",
        "lint",
        "--output",
        "json",
        invalid.to_str().unwrap(),
    ]);
    assert_eq!(json.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"].as_array().map(Vec::len), Some(9));

    let missing = common::etcdguard(&["policy", "lint", "/nonexistent/etcdguard-policies"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/etcdguard-policies"));

    let dir = tempfile::tempdir().unwrap();
    let empty = common::etcdguard(&["policy", "lint", dir.path().to_str().unwrap()]);
    assert_eq!(
        empty.status.code(),
        Some(1),
        "an empty folder gates nothing: {}",
        stdout(&empty)
    );
    assert!(stdout(&empty).contains("no GatePolicy documents"));
}

#[test]
fn policy_explain_shows_matches_pointers_and_exceptions() {
    let old = fixture("kcp-old.yaml");
    let new = fixture("kcp-upgrade.yaml");
    let o = common::etcdguard(&[
        "policy",
        "explain",
        "--object-old",
        old.to_str().unwrap(),
        "--object-new",
        new.to_str().unwrap(),
        "--user",
        "bob",
        "--group",
        "system:masters",
        "--annotation",
        "etcdguard.dev/break-glass=INC-9 etcd restore tested",
        "--now",
        "2026-11-23T10:00:00Z",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = stdout(&o);
    assert!(
        out.contains("request: UPDATE controlplane.cluster.x-k8s.io KubeadmControlPlane by bob"),
        "{out}"
    );
    assert!(out.contains("replace /spec/version"), "{out}");
    assert!(
        out.contains("MATCH    capi-kubeadm-control-plane (enforce)"),
        "{out}"
    );
    assert!(
        out.contains("resources[0]: /spec/version changed (replace /spec/version)"),
        "{out}"
    );
    assert!(
        out.contains("break-glass: HONOURED for bob, reason \"INC-9 etcd restore tested\""),
        "{out}"
    );
    assert!(out.contains("no match openshift-cluster-version"), "{out}");
    assert!(out.contains("snapshotMaxAge: 3h"), "{out}");

    // JSON, with a user policy folder, a scale subresource and a refused group.
    let valid = fixture("valid");
    let o = common::etcdguard(&[
        "policy",
        "explain",
        "--output",
        "json",
        "--policy",
        valid.to_str().unwrap(),
        "--object-old",
        fixture("kcp-scale-old.json").to_str().unwrap(),
        "--object-new",
        fixture("kcp-scale-new.json").to_str().unwrap(),
        "--subresource",
        "scale",
        "--api-group",
        "controlplane.cluster.x-k8s.io",
        "--kind",
        "KubeadmControlPlane",
        "--user",
        "mallory",
        "--group",
        "developers",
        "--annotation",
        "etcdguard.dev/break-glass=please",
        "--now",
        "2026-11-23T10:00:00Z",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let policies = v["policies"].as_array().unwrap();
    assert_eq!(policies.len(), 2);
    assert_eq!(policies[0]["policy"], "prod-control-plane-upgrades");
    assert_eq!(policies[0]["matched"], true);
    assert_eq!(
        policies[0]["reason"]["changed"][0]["watched"],
        "/spec/replicas"
    );
    assert_eq!(policies[0]["exception"]["decision"], "refused");
    assert_eq!(policies[1]["matched"], false);
    assert_eq!(v["effective"]["snapshotMaxAge"], "1h 30m");

    // CLI source.
    let o = common::etcdguard(&["policy", "explain", "--source", "kops-dry-run"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).contains("MATCH    kops-cli-changes"),
        "{}",
        stdout(&o)
    );

    // Unreadable input and invalid policies are usage/config errors.
    let o = common::etcdguard(&["policy", "explain", "--object-new", "/nonexistent/new.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    let o = common::etcdguard(&[
        "policy",
        "explain",
        "--policy",
        fixture("invalid").to_str().unwrap(),
        "--object-new",
        new.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let o = common::etcdguard(&["policy", "explain"]);
    assert_eq!(o.status.code(), Some(2));
}
