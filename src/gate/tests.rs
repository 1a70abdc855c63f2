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
        pending_commands: vec![],
        commands_unknown: None,
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
        continuity: None,
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
        raft_index: None,
        members: vec![],
        versions: vec![],
    })
}

fn facts(stores: Vec<Fact<StoreFact>>) -> Facts {
    Facts {
        store_urls: stores
            .iter()
            .map(|s| {
                s.value()
                    .map_or_else(|| "s3://unread".to_string(), |v| v.url.clone())
            })
            .collect(),
        stores,
        etcd: Fact::not_checked("pass --etcd-endpoints"),
        lifecycle: Fact::not_checked("pass --lifecycle FILE"),
        cached: vec![],
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
fn unreachable_or_absent_store_refuses_when_backups_are_required() {
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
    // No store given while a recent backup is required: an unmet requirement, naming the flag.
    let o = evaluate(
        &facts(vec![]),
        &Change::default(),
        &Requirements::default(),
        now(),
    );
    assert_eq!(o.verdict, Verdict::Refuse);
    let f = &o.findings[0];
    assert_eq!(f.check, checks::SNAPSHOT_RECENT);
    assert!(
        f.next_step.as_deref().unwrap_or("").contains("--store"),
        "{f:?}"
    );
    assert!(
        f.next_step
            .as_deref()
            .unwrap_or("")
            .contains("ETCDGUARD_STORE"),
        "{f:?}"
    );
    // The mode decides as for any refusal.
    let warn = Requirements {
        mode: Mode::Warn,
        ..Requirements::default()
    };
    assert_eq!(
        evaluate(&facts(vec![]), &Change::default(), &warn, now()).verdict,
        Verdict::Warn
    );
    // Only when nothing requires backups is a missing store an `info`.
    let none = Requirements {
        backup: false,
        control_files: false,
        ..Requirements::default()
    };
    let o = evaluate(&facts(vec![]), &Change::default(), &none, now());
    assert_eq!(o.verdict, Verdict::Proceed);
    assert_eq!(
        severity_of(&o, checks::SNAPSHOT_RECENT),
        vec![Severity::Info]
    );
    // Control files alone required: the control-files check refuses.
    let control = Requirements {
        backup: false,
        ..Requirements::default()
    };
    let o = evaluate(&facts(vec![]), &Change::default(), &control, now());
    assert_eq!(
        severity_of(&o, checks::CONTROL_FILES_PRESENT),
        vec![Severity::Deny]
    );
}

#[test]
fn required_live_etcd_and_lifecycle_without_a_source_refuse() {
    let b = backup("b1", 1, true, 100);
    let req = Requirements {
        live_etcd: true,
        lifecycle: true,
        required_by: vec!["p".into()],
        ..Requirements::default()
    };
    let o = evaluate(
        &facts(vec![store(Some(b.clone()), Some(b.clone()))]),
        &Change::default(),
        &req,
        now(),
    );
    assert_eq!(o.verdict, Verdict::Refuse);
    assert_eq!(severity_of(&o, checks::ETCD_HEALTHY), vec![Severity::Deny]);
    assert_eq!(
        severity_of(&o, checks::LIFECYCLE_DELETES_CONTROL_FILES),
        vec![Severity::Deny]
    );
    let etcd = o
        .findings
        .iter()
        .find(|f| f.check == checks::ETCD_HEALTHY)
        .unwrap();
    assert!(etcd.message.contains("policy p"), "{etcd:?}");
    assert!(etcd
        .next_step
        .as_deref()
        .unwrap_or("")
        .contains("--etcd-endpoints"));
    // Not required: info only.
    let o = evaluate(
        &facts(vec![store(Some(b.clone()), Some(b))]),
        &Change::default(),
        &Requirements::default(),
        now(),
    );
    assert_eq!(o.verdict, Verdict::Proceed);
}

#[test]
fn a_backup_dated_in_the_future_refuses_beyond_the_skew() {
    // 23 h in the future: the age means nothing.
    let b = backup("future", -23, true, 100);
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
    assert!(f.message.contains("ahead of now"), "{f:?}");
    // Two minutes ahead is clock skew: fine, and said so.
    let mut b = backup("skew", 0, true, 100);
    b.time = now() + chrono::Duration::minutes(2);
    let o = evaluate(
        &facts(vec![store(Some(b.clone()), Some(b))]),
        &Change::default(),
        &Requirements::default(),
        now(),
    );
    assert_eq!(o.verdict, Verdict::Proceed);
    let f = o
        .findings
        .iter()
        .find(|f| f.check == checks::SNAPSHOT_RECENT)
        .unwrap();
    assert!(f.message.contains("within the allowed clock skew"), "{f:?}");
}

#[test]
fn a_store_the_change_does_not_name_refuses() {
    let b = backup("b1", 1, true, 100);
    let mut s = store(Some(b.clone()), Some(b));
    if let Fact::Known { value } = &mut s {
        value.url = "s3://other/prod/backups/etcd/main".into();
    }
    let change = Change {
        sources: vec!["kops-dry-run".into()],
        backup_stores: vec!["s3://acme/prod/backups/etcd/main".into()],
        ..Change::default()
    };
    let o = evaluate(
        &facts(vec![s.clone()]),
        &change,
        &Requirements::default(),
        now(),
    );
    assert_eq!(
        severity_of(&o, checks::STORE_MATCHES_CHANGE),
        vec![Severity::Deny]
    );
    // Also when the store could not be read.
    let mut f = facts(vec![Fact::unknown("timeout")]);
    f.store_urls = vec!["s3://other/prod/backups/etcd/main".into()];
    let o = evaluate(&f, &change, &Requirements::default(), now());
    assert_eq!(
        severity_of(&o, checks::STORE_MATCHES_CHANGE),
        vec![Severity::Deny]
    );
    // The named store: fine.
    if let Fact::Known { value } = &mut s {
        value.url = "s3://acme/prod/backups/etcd/main/".into();
    }
    let o = evaluate(&facts(vec![s]), &change, &Requirements::default(), now());
    assert_eq!(
        severity_of(&o, checks::STORE_MATCHES_CHANGE),
        vec![Severity::Info]
    );
}

#[test]
fn spec_write_advice_follows_the_control_files() {
    let b = backup("b1", 1, true, 100);
    let with_control = |outcome: ControlOutcome, spec: bool, created: bool| {
        let mut s = store(Some(b.clone()), Some(b.clone()));
        if let Fact::Known { value } = &mut s {
            value.url = "s3://acme/prod/backups/etcd/main".into();
            value.control_files = Some(ControlFiles {
                spec_present: spec,
                created_present: created,
                outcome,
                meaning: "m".into(),
                problems: vec![],
                pending_commands: vec![],
                commands_unknown: None,
            });
        }
        facts(vec![s])
    };
    let change = Change {
        seeds_new_cluster: vec!["ManagedFile/etcd-cluster-spec-main creates the spec".into()],
        spec_clusters: vec!["main".into()],
        sources: vec!["kops-dry-run".into()],
        ..Change::default()
    };
    let req = Requirements::default();
    // Healthy store: kops creating a spec the store has is a contradiction (another store),
    // refused as such; no "store has no spec" advice.
    let o = evaluate(
        &with_control(ControlOutcome::Normal, true, true),
        &change,
        &req,
        now(),
    );
    assert_eq!(o.verdict, Verdict::Refuse, "{o:?}");
    assert!(
        o.findings.iter().any(|f| f.message.contains("disagree")),
        "{o:?}"
    );
    assert!(o.findings.iter().all(|f| !f
        .next_step
        .as_deref()
        .unwrap_or("")
        .contains("no etcd-cluster-spec")));
    // Spec deleted, created marker present, change re-creates the spec: one plan, in which
    // the change is the repair.
    let o = evaluate(
        &with_control(ControlOutcome::BackupsStopped, false, true),
        &change,
        &req,
        now(),
    );
    let steps: Vec<&str> = o
        .findings
        .iter()
        .filter_map(|f| f.next_step.as_deref())
        .collect();
    assert!(
        steps.iter().any(|s| s.contains("this change re-creates")),
        "{steps:?}"
    );
    assert!(
        !steps.iter().any(|s| s.contains("instead of letting kops")),
        "{steps:?}"
    );
    // Both gone: the change seeds a new cluster; every step says restore from versions.
    let o = evaluate(
        &with_control(ControlOutcome::Idle, false, false),
        &change,
        &req,
        now(),
    );
    assert_eq!(
        severity_of(&o, checks::CHANGE_SEEDS_NEW_CLUSTER),
        vec![Severity::Deny]
    );
    let steps: Vec<&str> = o
        .findings
        .iter()
        .filter_map(|f| f.next_step.as_deref())
        .collect();
    assert!(
        !steps
            .iter()
            .any(|s| s.contains("kops update cluster --yes` rewrites")),
        "{steps:?}"
    );
    // The other cluster's store was not read: refused as unknown.
    let events = Change {
        spec_clusters: vec!["events".into()],
        ..change.clone()
    };
    let o = evaluate(
        &with_control(ControlOutcome::Normal, true, true),
        &events,
        &req,
        now(),
    );
    assert_eq!(o.verdict, Verdict::Refuse);
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
        ..Change::default()
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

#[test]
fn queued_restore_command_denies_with_backup_age_and_loss() {
    let b = backup("2026-11-23T10:00:00Z-000001", 2, true, 500);
    let mut s = store(Some(b.clone()), Some(b));
    if let Fact::Known { value } = &mut s {
        let c = value.control_files.as_mut().unwrap();
        c.pending_commands = vec![
            PendingCommand {
                key: "control/2026-11-23T11:00:00Z-000000/_command.json".into(),
                queued: Some(now()),
                restore_backup: Some("2026-11-23T10:00:00Z-000001".into()),
                backup_time: Some(now() - chrono::Duration::hours(2)),
                backup_restorable: Some(true),
                backup_revision: Some(500),
                problem: None,
            },
            PendingCommand {
                key: "control/x/_command.json".into(),
                queued: None,
                restore_backup: None,
                backup_time: None,
                backup_restorable: None,
                backup_revision: None,
                problem: None,
            },
        ];
    }
    let o = evaluate(
        &facts(vec![s]),
        &Change::default(),
        &Requirements::default(),
        now(),
    );
    assert_eq!(o.verdict, Verdict::Refuse);
    assert_eq!(
        severity_of(&o, checks::CONTROL_FILES_PENDING_COMMAND),
        [Severity::Deny, Severity::Warn]
    );
    let f = o
        .findings
        .iter()
        .find(|f| f.check == checks::CONTROL_FILES_PENDING_COMMAND)
        .unwrap();
    assert!(
        f.message.contains("2026-11-23T10:00:00Z-000001"),
        "{}",
        f.message
    );
    assert!(f.message.contains("2h 0m ago"), "{}", f.message);
    assert!(f.message.contains("revision 500"), "{}", f.message);

    // Commands that could not be listed: fail closed.
    let mut s = store(None, None);
    if let Fact::Known { value } = &mut s {
        value.control_files.as_mut().unwrap().commands_unknown = Some("AccessDenied".into());
    }
    let o = evaluate(
        &facts(vec![s]),
        &Change::default(),
        &Requirements::default(),
        now(),
    );
    assert_eq!(
        severity_of(&o, checks::CONTROL_FILES_PENDING_COMMAND),
        [Severity::Deny]
    );
}

#[test]
fn continuity_new_cluster_denies_and_an_older_backup_version_warns() {
    use crate::continuity::{Continuity, Point, State};
    let b = backup("2026-11-23T11:00:00Z-000001", 1, true, 40);
    let mut s = store(Some(b.clone()), Some(b));
    let mut c = Continuity::not_checked("x");
    c.state = State::NewCluster;
    c.message = "the newest backups hold a NEW cluster".into();
    c.newest = Some(Point {
        name: "2026-11-23T11:00:00Z-000001".into(),
        time: now() - chrono::Duration::hours(1),
        revision: 40,
        live_keys: Some(12),
        total_keys: Some(30),
        consistent_index: Some(45),
        term: None,
        members: vec!["etcd-a".into()],
        member_ids: vec!["8e9e05c52164694d".into()],
        cluster_version: Some("3.4.0".into()),
        etcd_version: None,
        objects: Vec::new(),
    });
    if let Fact::Known { value } = &mut s {
        value.continuity = Some(c);
    }
    let f = facts(vec![s]);
    let o = evaluate(&f, &Change::default(), &Requirements::default(), now());
    assert_eq!(o.verdict, Verdict::Refuse);
    assert_eq!(
        severity_of(&o, checks::SNAPSHOT_CONTINUITY),
        [Severity::Deny]
    );
    // No version named: version fit is not checked (info).
    assert_eq!(
        severity_of(&o, checks::SNAPSHOT_VERSION_FIT),
        [Severity::Info]
    );
    // A matching policy that does not ask for continuity: a warning.
    let req = Requirements {
        continuity: false,
        ..Requirements::default()
    };
    let o = evaluate(&f, &Change::default(), &req, now());
    assert_eq!(
        severity_of(&o, checks::SNAPSHOT_CONTINUITY),
        [Severity::Warn]
    );
    // The change moves etcd to 3.5: the 3.4 backup would roll that back.
    let change = Change {
        etcd_versions: vec!["3.5.9".into()],
        ..Change::default()
    };
    let o = evaluate(&f, &change, &req, now());
    assert_eq!(
        severity_of(&o, checks::SNAPSHOT_VERSION_FIT),
        [Severity::Warn]
    );
}
