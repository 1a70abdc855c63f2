use super::*;
use chrono::TimeZone;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
}

fn backup(name: &str, hours_ago: i64, valid: bool, rev: i64) -> Backup {
    Backup {
        name: name.into(),
        time: now() - chrono::Duration::hours(hours_ago),
        valid,
        revision: Some(rev),
        problems: if valid {
            vec![]
        } else {
            vec!["sha256 mismatch".into()]
        },
        read_error: None,
    }
}

fn control(outcome: ControlOutcome) -> ControlFiles {
    ControlFiles {
        spec_present: outcome != ControlOutcome::BackupsStopped,
        created_present: outcome != ControlOutcome::SeedsNewCluster,
        outcome,
        meaning: format!("{outcome:?}"),
        problems: vec![],
    }
}

fn store(newest: Option<Backup>, newest_valid: Option<Backup>) -> Fact<StoreFact> {
    Fact::known(StoreFact {
        url: "s3://b/c/backups/etcd/main".into(),
        layout: "etcd-manager".into(),
        backup_count: 3,
        newest,
        newest_valid,
        control_files: Some(control(ControlOutcome::Normal)),
        stale: None,
        no_backups: None,
    })
}

fn healthy_etcd(rev: i64) -> Fact<Etcd> {
    Fact::known(Etcd {
        healthy_members: 3,
        total_members: 3,
        has_leader: true,
        alarms: vec![],
        revision: Some(rev),
        db_size: Some(1 << 20),
        quota_bytes: Some(2 << 30),
        problems: vec![],
    })
}

fn facts(stores: Vec<Fact<StoreFact>>) -> Facts {
    Facts {
        stores,
        etcd: Fact::not_checked("pass --etcd-endpoints"),
        lifecycle: Fact::not_checked("pass --lifecycle FILE"),
    }
}

fn severity_of(o: &Outcome, check: &str) -> Vec<Severity> {
    o.findings
        .iter()
        .filter(|f| f.check == check)
        .map(|f| f.severity)
        .collect()
}

#[test]
fn fresh_valid_backup_proceeds() {
    let b = backup("b1", 1, true, 100);
    let o = evaluate(
        &facts(vec![store(Some(b.clone()), Some(b))]),
        &Change::default(),
        &Requirements::default(),
        now(),
    );
    assert_eq!(o.verdict, Verdict::Proceed);
    assert_eq!(
        severity_of(&o, checks::SNAPSHOT_RECENT),
        vec![Severity::Info]
    );
    let recent = o
        .findings
        .iter()
        .find(|f| f.check == checks::SNAPSHOT_RECENT)
        .unwrap();
    assert!(recent.message.contains("1h 0m old"), "{}", recent.message);
    // sources not given are info, never deny
    assert_eq!(severity_of(&o, checks::ETCD_HEALTHY), vec![Severity::Info]);
}

#[test]
fn stale_backup_refuses_with_age() {
    let b = backup("b1", 4, true, 100);
    let o = evaluate(
        &facts(vec![store(Some(b.clone()), Some(b))]),
        &Change::default(),
        &Requirements::default(),
        now(),
    );
    assert_eq!(o.verdict, Verdict::Refuse);
    let f = o
        .findings
        .iter()
        .find(|f| f.check == checks::SNAPSHOT_RECENT)
        .unwrap();
    assert_eq!(f.severity, Severity::Deny);
    assert!(f.message.contains("4h 0m old"), "{}", f.message);
    assert!(f.next_step.as_deref().unwrap().contains("take a backup"));
}

#[test]
fn corrupt_newest_with_older_valid_warns_but_age_counts_from_valid() {
    let bad = backup("b2", 1, false, 120);
    let good = backup("b1", 2, true, 100);
    let o = evaluate(
        &facts(vec![store(Some(bad), Some(good))]),
        &Change::default(),
        &Requirements::default(),
        now(),
    );
    assert_eq!(
        severity_of(&o, checks::SNAPSHOT_VALID),
        vec![Severity::Warn]
    );
    assert_eq!(o.verdict, Verdict::Warn);
    // same, but the valid one is too old: refuse
    let bad = backup("b2", 1, false, 120);
    let good = backup("b1", 5, true, 100);
    let o = evaluate(
        &facts(vec![store(Some(bad), Some(good))]),
        &Change::default(),
        &Requirements::default(),
        now(),
    );
    assert_eq!(o.verdict, Verdict::Refuse);
}

#[test]
fn no_valid_backup_refuses() {
    let bad = backup("b2", 1, false, 120);
    let o = evaluate(
        &facts(vec![store(Some(bad), None)]),
        &Change::default(),
        &Requirements::default(),
        now(),
    );
    assert_eq!(
        severity_of(&o, checks::SNAPSHOT_VALID),
        vec![Severity::Deny]
    );
    assert_eq!(o.verdict, Verdict::Refuse);
    let o = evaluate(
        &facts(vec![store(None, None)]),
        &Change::default(),
        &Requirements::default(),
        now(),
    );
    assert_eq!(o.verdict, Verdict::Refuse);
}

#[test]
fn unreachable_store_refuses_but_absent_store_is_info() {
    let o = evaluate(
        &facts(vec![Fact::unknown("connect timed out after 5s")]),
        &Change::default(),
        &Requirements::default(),
        now(),
    );
    assert_eq!(
        severity_of(&o, checks::STORE_REACHABLE),
        vec![Severity::Deny]
    );
    assert!(o.findings[0].message.contains("connect timed out"));
    assert_eq!(o.verdict, Verdict::Refuse);
    let o = evaluate(
        &facts(vec![]),
        &Change::default(),
        &Requirements::default(),
        now(),
    );
    assert_eq!(o.verdict, Verdict::Proceed);
    assert_eq!(
        severity_of(&o, checks::SNAPSHOT_RECENT),
        vec![Severity::Info]
    );
}

#[test]
fn control_file_outcomes() {
    for (outcome, verdict) in [
        (ControlOutcome::Normal, Verdict::Proceed),
        (ControlOutcome::SeedsNewCluster, Verdict::Refuse),
        (ControlOutcome::BackupsStopped, Verdict::Refuse),
        (ControlOutcome::Malformed, Verdict::Refuse),
    ] {
        let b = backup("b1", 1, true, 100);
        let mut s = store(Some(b.clone()), Some(b));
        if let Fact::Known { value } = &mut s {
            value.control_files = Some(control(outcome));
        }
        let o = evaluate(
            &facts(vec![s]),
            &Change::default(),
            &Requirements::default(),
            now(),
        );
        assert_eq!(o.verdict, verdict, "{outcome:?}");
    }
}

#[test]
fn seeding_change_refuses() {
    let b = backup("b1", 1, true, 100);
    let change = Change {
        seeds_new_cluster: vec!["Will create resources: ManagedFile/etcd-cluster-spec-main".into()],
        gated: vec![],
        sources: vec!["kops-dry-run".into()],
    };
    let o = evaluate(
        &facts(vec![store(Some(b.clone()), Some(b))]),
        &change,
        &Requirements::default(),
        now(),
    );
    assert_eq!(o.verdict, Verdict::Refuse);
    let f = o
        .findings
        .iter()
        .find(|f| f.check == checks::CHANGE_SEEDS_NEW_CLUSTER)
        .unwrap();
    assert!(f.message.contains("etcd-cluster-spec-main"));
}

#[test]
fn live_revision_behind_snapshot_refuses() {
    let b = backup("b1", 1, true, 5000);
    let mut f = facts(vec![store(Some(b.clone()), Some(b))]);
    f.etcd = healthy_etcd(12);
    let o = evaluate(&f, &Change::default(), &Requirements::default(), now());
    assert_eq!(
        severity_of(&o, checks::ETCD_REVISION_BEHIND_SNAPSHOT),
        vec![Severity::Deny]
    );
    assert_eq!(o.verdict, Verdict::Refuse);
    f.etcd = healthy_etcd(6000);
    let o = evaluate(&f, &Change::default(), &Requirements::default(), now());
    assert_eq!(o.verdict, Verdict::Proceed);
}

#[test]
fn etcd_unknown_refuses_unhealthy_refuses() {
    let b = backup("b1", 1, true, 100);
    let mut f = facts(vec![store(Some(b.clone()), Some(b))]);
    f.etcd = Fact::unknown("127.0.0.1:1: connection refused");
    let o = evaluate(&f, &Change::default(), &Requirements::default(), now());
    assert_eq!(o.verdict, Verdict::Refuse);
    assert!(o
        .findings
        .iter()
        .any(|f| f.check == checks::ETCD_HEALTHY && f.message.contains("connection refused")));
    let mut e = healthy_etcd(200);
    if let Fact::Known { value } = &mut e {
        value.healthy_members = 1;
        value.alarms = vec!["NOSPACE".into()];
    }
    f.etcd = e;
    let o = evaluate(&f, &Change::default(), &Requirements::default(), now());
    let msg = &o
        .findings
        .iter()
        .find(|f| f.check == checks::ETCD_HEALTHY)
        .unwrap()
        .message;
    assert!(
        msg.contains("no quorum: 1 of 3") && msg.contains("NOSPACE"),
        "{msg}"
    );
}

#[test]
fn modes_turn_deny_into_warn_or_audit() {
    let b = backup("b1", 10, true, 100);
    let f = facts(vec![store(Some(b.clone()), Some(b))]);
    let warn = Requirements {
        mode: Mode::Warn,
        ..Requirements::default()
    };
    let o = evaluate(&f, &Change::default(), &warn, now());
    assert_eq!(o.verdict, Verdict::Warn);
    assert!(o.findings.iter().all(|f| f.severity != Severity::Deny));
    let audit = Requirements {
        mode: Mode::Audit,
        ..Requirements::default()
    };
    let o = evaluate(&f, &Change::default(), &audit, now());
    assert_eq!(o.verdict, Verdict::Proceed);
    assert!(o
        .findings
        .iter()
        .any(|f| f.message.contains("would refuse")));
}

#[test]
fn lifecycle_findings_pass_through_and_unknown_refuses() {
    let b = backup("b1", 1, true, 100);
    let mut f = facts(vec![store(Some(b.clone()), Some(b))]);
    f.lifecycle = Fact::known(vec![LifecycleIssue {
        check: checks::LIFECYCLE_DELETES_CONTROL_FILES.into(),
        severity: Severity::Deny,
        message: "rule expire-old deletes control/etcd-cluster-spec".into(),
        fix: Some("use backupRetentionDays".into()),
        details: serde_json::Value::Null,
    }]);
    let o = evaluate(&f, &Change::default(), &Requirements::default(), now());
    assert_eq!(o.verdict, Verdict::Refuse);
    assert_eq!(
        severity_of(&o, checks::LIFECYCLE_EXPIRES_SNAPSHOTS),
        vec![Severity::Info]
    );
    f.lifecycle = Fact::unknown("AccessDenied");
    let o = evaluate(&f, &Change::default(), &Requirements::default(), now());
    assert_eq!(o.verdict, Verdict::Refuse);
}

#[test]
fn human_age_formats() {
    assert_eq!(human_age(chrono::Duration::minutes(5)), "5m");
    assert_eq!(human_age(chrono::Duration::minutes(252)), "4h 12m");
    assert_eq!(human_age(chrono::Duration::hours(24 * 92 + 3)), "92d 3h 0m");
    assert_eq!(human_age(chrono::Duration::minutes(-5)), "5m in the future");
}

#[test]
fn cached_store_facts_warn_but_still_decide() {
    let b = backup("b1", 1, true, 100);
    let mut s = store(Some(b.clone()), Some(b));
    if let Fact::Known { value } = &mut s {
        value.stale = Some("latest refresh failed (503); using facts read 2m ago".into());
    }
    let o = evaluate(
        &facts(vec![s]),
        &Change::default(),
        &Requirements::default(),
        now(),
    );
    assert_eq!(o.verdict, Verdict::Warn);
    assert_eq!(
        severity_of(&o, checks::STORE_REACHABLE),
        vec![Severity::Warn]
    );
    assert_eq!(
        severity_of(&o, checks::SNAPSHOT_RECENT),
        vec![Severity::Info]
    );
}

#[test]
fn problems_detail_builds_exactly_the_warn_and_deny_findings() {
    let fresh = backup("b1", 1, true, 100);
    let old = backup("b0", 30, true, 90);
    let corrupt = backup("b2", 1, false, 110);
    let mut scenarios = vec![
        facts(vec![store(Some(fresh.clone()), Some(fresh.clone()))]),
        facts(vec![store(Some(old.clone()), Some(old.clone()))]),
        facts(vec![store(Some(corrupt.clone()), Some(fresh.clone()))]),
        facts(vec![store(Some(corrupt), None)]),
        facts(vec![store(None, None)]),
        facts(vec![Fact::unknown("timeout"), Fact::not_checked("x")]),
        facts(vec![]),
    ];
    for outcome in [
        ControlOutcome::SeedsNewCluster,
        ControlOutcome::BackupsStopped,
        ControlOutcome::Unknown,
    ] {
        let mut f = facts(vec![store(Some(fresh.clone()), Some(fresh.clone()))]);
        if let Fact::Known { value } = &mut f.stores[0] {
            value.control_files = Some(control(outcome));
        }
        scenarios.push(f);
    }
    let mut f = facts(vec![store(Some(fresh.clone()), Some(fresh.clone()))]);
    f.etcd = healthy_etcd(120);
    scenarios.push(f.clone());
    f.etcd = healthy_etcd(50);
    scenarios.push(f.clone());
    // Lifecycle issues pass through with their own severity, `info` ones included.
    f.lifecycle = Fact::known(
        [Severity::Info, Severity::Warn]
            .into_iter()
            .map(|severity| LifecycleIssue {
                check: checks::LIFECYCLE_EXPIRES_SNAPSHOTS.into(),
                severity,
                message: format!("{severity:?} lifecycle issue"),
                fix: None,
                details: serde_json::Value::Null,
            })
            .collect(),
    );
    scenarios.push(f.clone());
    f.etcd = Fact::unknown("no endpoints answered");
    f.lifecycle = Fact::unknown("AccessDenied");
    scenarios.push(f);
    let changes = [
        Change::default(),
        Change {
            sources: vec!["admission".into()],
            gated: vec!["KubeadmControlPlane x (kubernetes-upgrade): spec.version".into()],
            ..Change::default()
        },
        Change {
            sources: vec!["kops-dry-run".into()],
            seeds_new_cluster: vec!["creates etcd-cluster-spec".into()],
            ..Change::default()
        },
    ];
    let mut problems_seen = 0;
    for facts in &scenarios {
        for change in &changes {
            let req = Requirements::default();
            let full = findings(facts, change, &req, now());
            let brief = findings_with(facts, change, &req, now(), Detail::Problems);
            let shown = |f: &Finding| serde_json::to_string(f).expect("a finding serializes");
            let expected: Vec<_> = full
                .iter()
                .filter(|f| f.severity != Severity::Info)
                .map(shown)
                .collect();
            assert_eq!(brief.iter().map(shown).collect::<Vec<_>>(), expected);
            assert!(full.len() > brief.len(), "some check passed or was skipped");
            problems_seen += brief.len();
            for mode in [Mode::Enforce, Mode::Warn, Mode::Audit] {
                assert_eq!(
                    decide(full.clone(), mode).verdict,
                    decide(brief.clone(), mode).verdict
                );
            }
        }
    }
    assert!(
        problems_seen > 20,
        "the scenarios exercise problems ({problems_seen})"
    );
}
