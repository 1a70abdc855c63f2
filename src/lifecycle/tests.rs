//! Unit tests on fixtures under `tests/fixtures/lifecycle/`, with an injected clock.

use super::evaluate::META_FILE;
use super::*;
use chrono::{DateTime, TimeZone, Utc};

const STORE: &str = "prod.example.com/backups/etcd/main";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/lifecycle/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn at(y: i32, m: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, mi, 0).single().unwrap()
}

fn now() -> DateTime<Utc> {
    at(2024, 3, 22, 10, 0)
}

fn parse_one(name: &str) -> BucketRules {
    let mut v = parse(&fixture(name), name, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v.len(), 1, "{name}: one configuration expected");
    v.remove(0)
}

fn ctx() -> StoreContext {
    StoreContext::new("kops-state-prod", STORE)
}

fn obj(key: &str, size: u64, lm: DateTime<Utc>) -> KnownObject {
    KnownObject {
        key: format!("{STORE}/{key}"),
        size: Some(size),
        last_modified: Some(lm),
        tags: Some(Vec::new()),
    }
}

/// A store whose control files were written long ago and whose newest backup is 15 minutes old.
fn listed_ctx() -> StoreContext {
    let mut c = ctx();
    c.objects = vec![
        obj("control/etcd-cluster-created", 33, at(2023, 1, 10, 12, 0)),
        obj("control/etcd-cluster-spec", 46, at(2023, 6, 1, 8, 0)),
        obj(
            "2024-03-22T09:45:00Z-000123/etcd.backup.gz",
            5_000_000,
            at(2024, 3, 22, 9, 45),
        ),
        obj(
            "2024-03-22T09:45:00Z-000123/_etcd_backup.meta",
            310,
            at(2024, 3, 22, 9, 45),
        ),
    ];
    c
}

fn by_check<'a>(f: &'a [LifecycleFinding], check: &str) -> Vec<&'a LifecycleFinding> {
    f.iter().filter(|x| x.check == check).collect()
}

#[test]
fn kops_16416_json_and_xml_parse_to_the_same_rule() {
    let j = parse_one("kops-16416.json");
    let x = parse_one("kops-16416.xml");
    assert_eq!(j.format, Format::AwsJson);
    assert_eq!(x.format, Format::S3Xml);
    assert_eq!(j.configuration.rules, x.configuration.rules);
    let r = &j.configuration.rules[0];
    assert_eq!(r.id.as_deref(), Some("delete-old-etcd-backups"));
    assert_eq!(r.filter.prefix, STORE);
    assert_eq!(
        r.expiration.as_ref().and_then(|e| e.schedule),
        Some(Schedule::Days(90))
    );
    assert_eq!(
        j.configuration
            .transition_default_minimum_object_size
            .as_deref(),
        Some("all_storage_classes_128K")
    );
}

#[test]
fn kops_16416_rule_deletes_control_files_and_then_every_snapshot() {
    let config = parse_one("kops-16416.xml").configuration;
    let f = evaluate(&config, &listed_ctx(), now());
    let control = by_check(&f, CHECK_DELETES_CONTROL);
    assert_eq!(control.len(), 1, "{f:#?}");
    let c = control[0];
    assert_eq!(c.severity, Severity::Deny);
    assert_eq!(c.rule_id, "delete-old-etcd-backups");
    assert!(c.filter.contains(STORE));
    assert!(c
        .example_keys
        .contains(&format!("{STORE}/control/etcd-cluster-created")));
    // created 2023-01-10 12:00 + 90 days = 2023-04-10 12:00, rounded up to the next midnight.
    assert_eq!(c.when, Some(at(2023, 4, 11, 0, 0)));
    assert!(c.message.contains("Already due"), "{}", c.message);
    assert!(c.message.contains("NEW, EMPTY cluster"));
    assert!(c.fix.contains("backupRetentionDays"));
    assert!(c.fix.contains(&format!("{STORE}/20")));

    // 90 days is not shorter than the 90-day retention, but the control files go first.
    let snaps = by_check(&f, CHECK_EXPIRES_SNAPSHOTS);
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0].severity, Severity::Deny);
    assert!(
        snaps[0].message.contains("also deletes the control files"),
        "{}",
        snaps[0].message
    );
    // Backups stop on 2023-04-11; the last one goes 90 days later.
    assert_eq!(snaps[0].when, Some(at(2023, 7, 10, 0, 0)));
    assert_eq!(worst(&f), Some(Severity::Deny));
}

#[test]
fn control_files_with_unknown_age_are_still_denied_without_a_date() {
    let config = parse_one("kops-16416.json").configuration;
    let f = evaluate(&config, &ctx(), now());
    let c = by_check(&f, CHECK_DELETES_CONTROL);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].severity, Severity::Deny);
    assert_eq!(c[0].when, None);
    assert_eq!(c[0].example_keys.len(), 2);
}

#[test]
fn a_timestamp_prefix_spares_control_files_and_a_long_expiry_only_warns() {
    let mut config = parse_one("kops-16416.json").configuration;
    config.rules[0].filter.prefix = format!("{STORE}/20");
    let f = evaluate(&config, &listed_ctx(), now());
    assert!(by_check(&f, CHECK_DELETES_CONTROL).is_empty(), "{f:#?}");
    let s = by_check(&f, CHECK_EXPIRES_SNAPSHOTS);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].severity, Severity::Warn);
    assert!(s[0].message.contains("duplicates"));
    // A shorter expiry than the retention is denied.
    let mut c = listed_ctx();
    c.retention_days = 120;
    let f = evaluate(&config, &c, now());
    assert_eq!(
        by_check(&f, CHECK_EXPIRES_SNAPSHOTS)[0].severity,
        Severity::Deny
    );
}

#[test]
fn expiry_within_a_day_of_the_backup_interval_is_denied() {
    let rules = br#"{"Rules":[{"ID":"daily","Filter":{"Prefix":"prod.example.com/backups/etcd/main/20"},"Status":"Enabled","Expiration":{"Days":2}}]}"#;
    let config = parse(rules, "inline", None)
        .unwrap()
        .remove(0)
        .configuration;
    let mut c = ctx();
    c.retention_days = 1;
    c.backup_interval = std::time::Duration::from_secs(24 * 3600);
    let f = evaluate(&config, &c, now());
    let s = by_check(&f, CHECK_EXPIRES_SNAPSHOTS);
    assert_eq!(s[0].severity, Severity::Deny, "{s:#?}");
    assert!(s[0].message.contains("within a day of the backup interval"));
    c.backup_interval = std::time::Duration::from_secs(15 * 60);
    let f = evaluate(&config, &c, now());
    assert_eq!(
        by_check(&f, CHECK_EXPIRES_SNAPSHOTS)[0].severity,
        Severity::Warn
    );
}

#[test]
fn stopped_backups_make_even_a_long_expiry_fatal() {
    let mut config = parse_one("kops-16416.json").configuration;
    config.rules[0].filter.prefix = format!("{STORE}/20");
    let mut c = ctx();
    c.objects = vec![obj(
        "2023-08-01T00:00:00Z-000001/_etcd_backup.meta",
        300,
        at(2023, 8, 1, 0, 0),
    )];
    let f = evaluate(&config, &c, now());
    let s = by_check(&f, CHECK_EXPIRES_SNAPSHOTS);
    assert_eq!(s[0].severity, Severity::Deny);
    assert_eq!(s[0].when, Some(at(2023, 10, 30, 0, 0)));
    assert!(s[0].message.contains("already due"));
}

#[test]
fn size_filters_and_tags_decide_whether_control_files_match() {
    let config = parse_one("size-and-tags.xml").configuration;
    assert_eq!(config.rules[0].filter.size_greater_than, Some(131_072));
    assert_eq!(config.rules[0].filter.prefix, "prod.example.com/backups/");
    assert_eq!(config.rules[2].filter.tags.len(), 2);
    let f = evaluate(&config, &ctx(), now());
    let mine = |id: &str| f.iter().filter(|x| x.rule_id == id).collect::<Vec<_>>();

    // > 128 KiB: only etcd.backup.gz; backups stay listed but cannot be restored. Another rule
    // deletes the control files, so backups stop and this rule removes the last one: deny.
    let big = mine("big-objects-only");
    assert_eq!(big.len(), 1, "{big:#?}");
    assert_eq!(big[0].check, CHECK_EXPIRES_SNAPSHOTS);
    assert_eq!(big[0].severity, Severity::Deny);
    assert!(big[0].message.contains("also deletes the control files"));
    assert!(big[0]
        .example_keys
        .iter()
        .all(|k| k.ends_with("etcd.backup.gz")));
    assert!(big[0].message.contains("can no longer be restored"));
    // On its own, 120 days >= the 90-day retention only warns.
    let alone = Configuration {
        rules: vec![config.rules[0].clone()],
        transition_default_minimum_object_size: None,
    };
    let f_alone = evaluate(&alone, &ctx(), now());
    assert_eq!(f_alone.len(), 1);
    assert_eq!(f_alone[0].severity, Severity::Warn);

    // < 4 KiB over the whole bucket: the control files and the meta files.
    let small = mine("small-objects");
    let control: Vec<_> = small
        .iter()
        .filter(|x| x.check == CHECK_DELETES_CONTROL)
        .collect();
    assert_eq!(control.len(), 1);
    assert_eq!(control[0].severity, Severity::Deny);
    let s: Vec<_> = small
        .iter()
        .filter(|x| x.check == CHECK_EXPIRES_SNAPSHOTS)
        .collect();
    assert!(s[0].message.contains("size < 4096 B"), "{}", s[0].message);
    assert!(s[0].example_keys.iter().any(|k| k.ends_with(META_FILE)));

    // Tag-filtered: only an info note, since etcd-manager writes no tags.
    let tagged = mine("tagged-scratch");
    assert_eq!(tagged.len(), 1);
    assert_eq!(tagged[0].severity, Severity::Info);

    // Known sizes win over typical ones: a 5000-byte spec file escapes "< 4096".
    let mut c = ctx();
    c.objects = vec![
        obj("control/etcd-cluster-spec", 5000, at(2023, 1, 1, 0, 0)),
        obj("control/etcd-cluster-created", 5000, at(2023, 1, 1, 0, 0)),
    ];
    let f = evaluate(&config, &c, now());
    assert!(by_check(&f, CHECK_DELETES_CONTROL)
        .iter()
        .all(|x| x.severity == Severity::Info));
    // Known tags matter too: a tagged control file is deleted by the 1-day rule.
    let tags = vec![
        Tag {
            key: "lifecycle".into(),
            value: "scratch".into(),
        },
        Tag {
            key: "team".into(),
            value: "infra".into(),
        },
    ];
    c.objects[0].tags = Some(tags);
    let f = evaluate(&config, &c, now());
    let d = by_check(&f, CHECK_DELETES_CONTROL);
    assert!(
        d.iter()
            .any(|x| x.rule_id == "tagged-scratch" && x.severity == Severity::Deny),
        "{d:#?}"
    );
}

#[test]
fn a_past_date_deletes_every_new_snapshot_but_a_year_prefix_spares_control() {
    let b = parse_one("past-date.json");
    assert_eq!(b.format, Format::AwsJson);
    assert_eq!(
        b.configuration.rules[0].filter.prefix,
        format!("{STORE}/20")
    );
    let f = evaluate(&b.configuration, &ctx(), now());
    assert!(by_check(&f, CHECK_DELETES_CONTROL).is_empty());
    let s = by_check(&f, CHECK_EXPIRES_SNAPSHOTS);
    assert_eq!(s[0].severity, Severity::Deny);
    assert!(s[0].message.contains("is in the past"));
    assert_eq!(s[0].when, Some(at(2024, 3, 23, 0, 0)));
    // The same date seen from 2023 is in the future and still denied.
    let f = evaluate(&b.configuration, &ctx(), at(2023, 6, 1, 0, 0));
    let s = by_check(&f, CHECK_EXPIRES_SNAPSHOTS);
    assert_eq!(s[0].when, Some(at(2024, 1, 1, 0, 0)));
    assert!(s[0].message.contains("is in the future"));
}

#[test]
fn noncurrent_expiry_denied_unless_bucket_unversioned_and_disabled_rules_are_info() {
    let config = parse_one("noncurrent-and-disabled.json").configuration;
    assert_eq!(config.rules[0].abort_incomplete_multipart_days, Some(7));
    assert_eq!(config.rules[1].status, Status::Disabled);
    let mut c = ctx();
    c.versioned = Some(true);
    let f = evaluate(&config, &c, now());
    let nc: Vec<_> = f
        .iter()
        .filter(|x| x.rule_id == "trim-old-versions")
        .collect();
    assert_eq!(nc.len(), 1);
    assert_eq!(nc[0].severity, Severity::Deny);
    assert_eq!(nc[0].check, CHECK_DELETES_CONTROL);
    let latent: Vec<_> = f
        .iter()
        .filter(|x| x.rule_id == "latent-whole-bucket-expiry")
        .collect();
    assert!(latent.len() >= 2);
    assert!(latent
        .iter()
        .all(|x| x.severity == Severity::Info && x.message.contains("disabled")));
    assert_eq!(worst(&f), Some(Severity::Deny));
    c.versioned = Some(false);
    let f = evaluate(&config, &c, now());
    assert!(f.iter().all(|x| x.rule_id != "trim-old-versions"));
}

#[test]
fn glacier_transitions_warn_and_a_same_night_archive_is_denied() {
    let config = parse_one("glacier.json").configuration;
    let f = evaluate(&config, &ctx(), now());
    let a = by_check(&f, CHECK_ARCHIVES_SNAPSHOTS);
    assert_eq!(a.len(), 1, "{f:#?}");
    assert_eq!(a[0].rule_id, "archive-backups");
    assert_eq!(a[0].severity, Severity::Warn);
    assert!(a[0].message.contains("GLACIER"));
    assert!(a[0].message.contains("stays readable"));
    // Tiny control files do not transition under the 128 KiB default.
    assert!(by_check(&f, CHECK_ARCHIVES_CONTROL).is_empty());

    let events = StoreContext::new("kops-state-prod", "prod.example.com/backups/etcd/events/");
    let f = evaluate(&config, &events, now());
    let a = by_check(&f, CHECK_ARCHIVES_SNAPSHOTS);
    let tonight: Vec<_> = a
        .iter()
        .filter(|x| x.rule_id == "archive-tonight")
        .collect();
    assert_eq!(tonight[0].severity, Severity::Deny);
    assert_eq!(tonight[0].when, Some(at(2024, 3, 23, 0, 0)));

    // Under varies_by_storage_class the control files transition too.
    let mut c2 = config.clone();
    c2.transition_default_minimum_object_size = Some("varies_by_storage_class".into());
    let f = evaluate(&c2, &ctx(), now());
    assert_eq!(
        by_check(&f, CHECK_ARCHIVES_CONTROL)[0].severity,
        Severity::Deny
    );
}

#[test]
fn terraform_plan_resolves_the_bucket_and_reads_legacy_values_as_unset() {
    let parsed = parse(&fixture("terraform-plan.json"), "plan.json", None).unwrap();
    assert_eq!(parsed.len(), 2, "{parsed:#?}");
    let state = &parsed[0];
    assert_eq!(state.format, Format::TerraformPlan);
    assert_eq!(state.bucket.as_deref(), Some("kops-state-prod"));
    assert!(!state.bucket_from_hint);
    assert_eq!(state.previous.as_ref().map(|p| p.rules.len()), Some(1));
    let rules = &state.configuration.rules;
    assert_eq!(rules.len(), 3);
    let cost = &rules[1];
    assert_eq!(cost.expiration, None, "days 0 is Terraform's unset");
    assert_eq!(cost.noncurrent_expiration, None);
    assert_eq!(cost.transitions[0].schedule, Schedule::Days(0));
    assert_eq!(cost.transitions[0].storage_class, StorageClass::Glacier);
    assert_eq!(cost.filter.prefix, STORE);
    assert_eq!(
        cost.filter.tags,
        vec![Tag {
            key: "cost".into(),
            value: "low".into()
        }]
    );
    assert_eq!(cost.filter.size_greater_than, None);
    let inline = &parsed[1];
    assert_eq!(inline.bucket.as_deref(), Some("app-logs-prod"));
    assert_eq!(inline.configuration.rules[0].status, Status::Enabled);
    assert_eq!(inline.configuration.rules[0].filter, Filter::default());

    let (config, origins) = select_for_bucket(&parsed, "kops-state-prod");
    assert_eq!(origins.len(), 1);
    let f = evaluate(&config, &ctx(), now());
    let d = by_check(&f, CHECK_DELETES_CONTROL);
    let deny: Vec<_> = d.iter().filter(|x| x.severity == Severity::Deny).collect();
    assert_eq!(deny.len(), 1, "{d:#?}");
    assert_eq!(deny[0].rule_id, "expire-main");
    // The tag-filtered rule is only an info note; its 0-day Glacier transition is a tag-only match.
    assert!(d
        .iter()
        .any(|x| x.rule_id == "cost-saving" && x.severity == Severity::Info));
    // Diff against the plan's own `before`: the new rules are what got worse.
    let before = state.previous.clone().unwrap();
    let worse = diff(&before, &config, &ctx(), now());
    assert!(worse
        .iter()
        .any(|x| x.rule_id == "expire-main" && x.check == CHECK_DELETES_CONTROL));
    assert!(worse.iter().all(|x| x.rule_id != "logs"));
}

#[test]
fn terraform_unknown_bucket_is_resolved_through_references_or_the_hint() {
    // As on create: no `before`, bucket unknown in `after`.
    let mut plan: serde_json::Value =
        serde_json::from_slice(&fixture("terraform-plan.json")).unwrap();
    plan["resource_changes"][1]["change"]["before"] = serde_json::Value::Null;
    let parsed = parse(&serde_json::to_vec(&plan).unwrap(), "plan.json", None).unwrap();
    assert_eq!(parsed[0].bucket.as_deref(), Some("kops-state-prod"));
    assert!(!parsed[0].bucket_from_hint);
    assert!(
        parsed[0].origin.contains("bucket of aws_s3_bucket.state"),
        "{}",
        parsed[0].origin
    );
    assert_eq!(parsed[0].previous, None);

    plan.as_object_mut().unwrap().remove("configuration");
    let bytes = serde_json::to_vec(&plan).unwrap();
    let parsed = parse(&bytes, "plan.json", None).unwrap();
    assert_eq!(parsed[0].bucket, None);
    let parsed = parse(&bytes, "plan.json", Some("kops-state-prod")).unwrap();
    assert_eq!(parsed[0].bucket.as_deref(), Some("kops-state-prod"));
    assert!(parsed[0].bucket_from_hint);
}

#[test]
fn cloudformation_yaml_and_json() {
    let b = parse(
        &fixture("cloudformation.yaml"),
        "cfn.yaml",
        Some("kops-state-prod"),
    )
    .unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].format, Format::CloudFormation);
    assert!(b[0].bucket_from_hint, "BucketName is a !Ref");
    let rules = &b[0].configuration.rules;
    assert_eq!(rules[1].filter.size_greater_than, Some(131_072));
    assert_eq!(rules[1].transitions[0].storage_class, StorageClass::Glacier);
    assert_eq!(rules[2].filter, Filter::default());
    let mut c = ctx();
    c.versioned = Some(true);
    let f = evaluate(&b[0].configuration, &c, now());
    let d = by_check(&f, CHECK_DELETES_CONTROL);
    assert!(d
        .iter()
        .any(|x| x.rule_id == "cost-saving" && x.severity == Severity::Deny));
    assert!(d.iter().any(|x| x.message.contains("delete marker")));
    assert!(d
        .iter()
        .any(|x| x.rule_id == "old-versions" && x.severity == Severity::Deny));
    // Size filter > 128 KiB: only the data file is archived, meta stays readable.
    let a = by_check(&f, CHECK_ARCHIVES_SNAPSHOTS);
    assert_eq!(a[0].rule_id, "archive");

    let j = parse_one("cloudformation.json");
    assert_eq!(j.bucket.as_deref(), Some("kops-state-prod"));
    let r = &j.configuration.rules;
    assert_eq!(r[0].transitions[0].storage_class, StorageClass::DeepArchive);
    assert_eq!(
        r[0].expiration.as_ref().and_then(|e| e.schedule),
        Some(Schedule::Date(at(2025, 6, 1, 0, 0)))
    );
    assert_eq!(r[1].unknown_fields, vec!["ExpirationInDays".to_string()]);
    assert_eq!(r[1].expiration, None);
}

#[test]
fn ack_and_upbound_objects() {
    let a = parse_one("ack-bucket.yaml");
    assert_eq!(a.format, Format::Kubernetes);
    assert_eq!(a.bucket.as_deref(), Some("kops-state-prod"));
    assert_eq!(a.origin, "Bucket/infra/kops-state");
    assert!(!a.deletes_configuration);
    assert_eq!(a.configuration.rules[1].status, Status::Disabled);
    assert_eq!(a.configuration.rules[1].filter.tags[0].key, "tier");
    let f = evaluate(&a.configuration, &ctx(), now());
    assert_eq!(
        by_check(&f, CHECK_DELETES_CONTROL)[0].severity,
        Severity::Deny
    );

    let gone = parse_one("ack-bucket-no-lifecycle.yaml");
    assert!(gone.deletes_configuration);
    assert!(gone.configuration.rules.is_empty());
    assert!(diff(&a.configuration, &gone.configuration, &ctx(), now()).is_empty());
    // Adding the lifecycle back is reported.
    let worse = diff(&gone.configuration, &a.configuration, &ctx(), now());
    assert!(worse
        .iter()
        .any(|x| x.check == CHECK_DELETES_CONTROL && x.severity == Severity::Deny));

    let u = parse_one("upbound.yaml");
    assert_eq!(u.bucket.as_deref(), Some("kops-state-prod"));
    let r = &u.configuration.rules;
    assert_eq!(r[0].filter.size_less_than, Some(1_048_576));
    assert_eq!(
        r[0].expiration.as_ref().and_then(|e| e.schedule),
        Some(Schedule::Days(90))
    );
    assert_eq!(
        r[1].filter.tags,
        vec![Tag {
            key: "keep".into(),
            value: "no".into()
        }]
    );
    assert_eq!(
        r[1].noncurrent_expiration
            .as_ref()
            .map(|n| n.noncurrent_days),
        Some(5)
    );
    let f = evaluate(&u.configuration, &ctx(), now());
    assert_eq!(
        by_check(&f, CHECK_DELETES_CONTROL)[0].severity,
        Severity::Deny
    );
}

#[test]
fn diff_reports_only_what_gets_worse() {
    let cur = parse_one("current.json").configuration;
    let prop = parse_one("proposed.json").configuration;
    let worse = diff(&cur, &prop, &listed_ctx(), now());
    assert!(!worse.is_empty());
    // New hazards come from the new rule; the unchanged 2-year rule is reported only because the
    // new rule stops backups, after which it deletes the last snapshot.
    assert!(
        worse
            .iter()
            .all(|x| x.rule_id == "cost-saving"
                || x.message.contains("also deletes the control files")),
        "{worse:#?}"
    );
    assert!(worse.iter().all(|x| x.rule_id != "logs"));
    assert!(worse
        .iter()
        .any(|x| x.check == CHECK_DELETES_CONTROL && x.severity == Severity::Deny));
    assert!(worse
        .iter()
        .any(|x| x.check == CHECK_EXPIRES_SNAPSHOTS && x.severity == Severity::Deny));
    assert!(diff(&prop, &prop, &listed_ctx(), now()).is_empty());
    // Removing the dangerous rule is never "worse".
    assert!(diff(&prop, &cur, &listed_ctx(), now()).is_empty());
    // The current config alone only warns (730 days duplicates the retention).
    assert_eq!(
        worst(&evaluate(&cur, &listed_ctx(), now())),
        Some(Severity::Warn)
    );
}

#[test]
fn parse_errors_name_the_input_and_what_was_expected() {
    let e = parse(b"not: [valid", "rules.yaml", None).unwrap_err();
    assert!(matches!(e, ParseError::Syntax { .. }));
    assert!(e.to_string().starts_with("rules.yaml: "), "{e}");
    let e = parse(br#"{"foo": 1}"#, "x.json", None).unwrap_err();
    assert!(matches!(e, ParseError::Unrecognized { .. }));
    assert!(e.to_string().contains("expected S3 XML"), "{e}");
    let e = parse(
        br#"{"Rules":[{"ID":"a","Status":"Enabled","Expiration":{"Days":"soon"}}]}"#,
        "bad.json",
        None,
    )
    .unwrap_err();
    assert_eq!(
        e,
        ParseError::Field {
            source_name: "bad.json".into(),
            format: "AWS JSON",
            path: "Rules[0].Expiration.Days".into(),
            expected: "a non-negative integer".into(),
            found: "\"soon\"".into(),
        }
    );
    let e = parse(b"<Tagging><TagSet/></Tagging>", "t.xml", None).unwrap_err();
    assert!(e.to_string().contains("<Tagging>"), "{e}");
    let e = parse(b"<LifecycleConfiguration><Rule>", "cut.xml", None).unwrap_err();
    assert!(e.to_string().contains("cut.xml"), "{e}");
    let e = parse(
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
        "cm.yaml",
        None,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            ParseError::NoLifecycle {
                format: "Kubernetes manifest",
                ..
            }
        ),
        "{e}"
    );
    let e = parse(
        br#"{"format_version":"1.2","resource_changes":[]}"#,
        "plan.json",
        None,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            ParseError::NoLifecycle {
                format: "Terraform plan JSON",
                ..
            }
        ),
        "{e}"
    );
    let e = parse(b"   ", "-", None).unwrap_err();
    assert!(e.to_string().contains("empty"));
    let e = parse(&[0xff, 0xfe], "bin", None).unwrap_err();
    assert!(e.to_string().contains("UTF-8"));
}

#[test]
fn json_output_uses_camel_case_field_names() {
    let config = parse_one("kops-16416.json").configuration;
    let f = evaluate(&config, &listed_ctx(), now());
    let v = serde_json::to_value(&f[0]).unwrap();
    for k in [
        "check",
        "severity",
        "ruleId",
        "filter",
        "exampleKeys",
        "when",
        "message",
        "fix",
    ] {
        assert!(v.get(k).is_some(), "missing {k} in {v}");
    }
    assert_eq!(v["severity"], "deny");
}

#[test]
fn generic_layout_has_no_control_files() {
    let config = parse_one("kops-16416.json").configuration;
    let mut c = ctx();
    c.layout = Layout::Generic;
    let f = evaluate(&config, &c, now());
    assert!(by_check(&f, CHECK_DELETES_CONTROL).is_empty());
    assert_eq!(by_check(&f, CHECK_EXPIRES_SNAPSHOTS).len(), 1);
}

#[test]
fn extreme_values_do_not_panic() {
    let rules = br#"{"Rules":[
        {"ID":"forever","Filter":{"Prefix":""},"Status":"Enabled","Expiration":{"Days":4294967295},
         "Transitions":[{"Days":4294967295,"StorageClass":"GLACIER"}]},
        {"ID":"ancient","Filter":{"Prefix":""},"Status":"Enabled","Expiration":{"Date":"0001-01-01T00:00:00Z"}}]}"#;
    let config = parse(rules, "x", None).unwrap().remove(0).configuration;
    let mut c = listed_ctx();
    c.backup_interval = std::time::Duration::from_secs(u64::MAX);
    c.max_age = Some(std::time::Duration::from_secs(u64::MAX));
    let f = evaluate(&config, &c, now());
    assert!(f
        .iter()
        .any(|x| x.rule_id == "forever" && x.check == CHECK_DELETES_CONTROL));
    assert!(f
        .iter()
        .any(|x| x.rule_id == "ancient" && x.severity == Severity::Deny));
    let e = parse(
        br#"{"Rules":[{"Status":"Enabled","Expiration":{"Days":4294967296}}]}"#,
        "big.json",
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("Rules[0].Expiration.Days"), "{e}");
}

#[test]
fn terraform_rules_unknown_until_apply_are_not_a_pass() {
    let mut plan: serde_json::Value =
        serde_json::from_slice(&fixture("terraform-plan.json")).unwrap();
    plan["resource_changes"][1]["change"]["after"]["rule"] = serde_json::Value::Null;
    plan["resource_changes"][1]["change"]["after_unknown"]["rule"] = serde_json::Value::Bool(true);
    let parsed = parse(&serde_json::to_vec(&plan).unwrap(), "plan.json", None).unwrap();
    let f = evaluate(&parsed[0].configuration, &ctx(), now());
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].check, CHECK_UNKNOWN_AT_PLAN);
    assert_eq!(f[0].severity, Severity::Warn);
}

#[test]
fn generic_layout_archive_message_does_not_mention_meta_files() {
    let config = parse_one("glacier.json").configuration;
    let mut c = StoreContext::new("b", "prod.example.com/backups/etcd/main");
    c.layout = Layout::Generic;
    let f = evaluate(&config, &c, now());
    let a = by_check(&f, CHECK_ARCHIVES_SNAPSHOTS);
    assert_eq!(a.len(), 1);
    assert!(
        !a[0].message.contains("_etcd_backup.meta"),
        "{}",
        a[0].message
    );
}

#[test]
fn xml_shapes_empty_filter_legacy_prefix_and_repeated_elements() {
    let b = parse_one("shapes.xml");
    let r = &b.configuration.rules;
    assert_eq!(r.len(), 4);
    assert!(r[0].filter.is_whole_bucket());
    assert_eq!(r[0].transitions.len(), 2);
    assert_eq!(r[0].transitions[1].storage_class, StorageClass::DeepArchive);
    assert_eq!(r[1].filter.prefix, "old/");
    assert_eq!(r[2].filter.prefix, "x/");
    assert_eq!(r[2].filter.size_greater_than, Some(100));
    assert_eq!(
        r[2].filter.tags,
        vec![Tag {
            key: "k".into(),
            value: "v".into()
        }]
    );
    assert_eq!(
        r[2].noncurrent_expiration,
        Some(NoncurrentExpiration {
            noncurrent_days: 5,
            newer_noncurrent_versions: Some(3)
        })
    );
    assert_eq!(r[2].noncurrent_transitions[0].noncurrent_days, 2);
    let m = r[3].expiration.as_ref().unwrap();
    assert!(m.expired_object_delete_marker && m.schedule.is_none());
    assert_eq!(r[3].abort_incomplete_multipart_days, Some(7));
    // Whole-bucket Glacier at 30 days: a warning about the data files only; the delete-marker
    // cleanup and the other prefixes never touch the store.
    let f = evaluate(&b.configuration, &ctx(), now());
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].check, CHECK_ARCHIVES_SNAPSHOTS);
    assert_eq!(f[0].rule_id, "archive-everything");
    assert_eq!(f[0].severity, Severity::Warn);
    assert!(
        f[0].message.contains("to GLACIER (30 days"),
        "{}",
        f[0].message
    );
}
