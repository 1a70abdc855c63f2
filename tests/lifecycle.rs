//! Lifecycle rules read from a real S3 API (moto) through aws-sdk-s3 and `fetch_rules`, then
//! judged by the pure evaluator; and the `etcdguard lifecycle` subcommand end to end.
//!
//! moto stores rules but never runs them and drops size filters; size filters are covered by
//! the unit tests on XML fixtures (`src/lifecycle/tests.rs`).

mod common;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketVersioningStatus, ExpirationStatus, LifecycleExpiration,
    LifecycleRule, LifecycleRuleAndOperator, LifecycleRuleFilter, NoncurrentVersionExpiration, Tag,
    Transition, TransitionStorageClass, VersioningConfiguration,
};
use chrono::{TimeZone, Utc};
use etcdguard::lifecycle::{self, Schedule, Severity, Status, StorageClass, StoreContext};
use etcdguard::store::s3_lifecycle::{
    fetch_known_objects, fetch_rules, fetch_versioned, FetchError,
};
use std::process::Command;

const STORE: &str = "prod.example.com/backups/etcd/main";

fn client(endpoint: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

fn rule(id: &str) -> aws_sdk_s3::types::builders::LifecycleRuleBuilder {
    LifecycleRule::builder()
        .id(id)
        .status(ExpirationStatus::Enabled)
}

fn prefix(p: &str) -> LifecycleRuleFilter {
    LifecycleRuleFilter::builder().prefix(p).build()
}

/// The rules put into moto: the kops#16416 rule, a disabled one, a tag-filtered Glacier
/// transition, a noncurrent expiration on the whole bucket, and a past-date rule elsewhere.
fn configuration() -> BucketLifecycleConfiguration {
    let date = aws_sdk_s3::primitives::DateTime::from_secs(
        Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
            .unwrap()
            .timestamp(),
    );
    BucketLifecycleConfiguration::builder()
        .rules(
            rule("cost-saving")
                .filter(prefix(STORE))
                .expiration(LifecycleExpiration::builder().days(90).build())
                .build()
                .unwrap(),
        )
        .rules(
            rule("latent")
                .status(ExpirationStatus::Disabled)
                .filter(prefix(""))
                .expiration(LifecycleExpiration::builder().days(3).build())
                .build()
                .unwrap(),
        )
        .rules(
            rule("cold-tagged")
                .filter(
                    LifecycleRuleFilter::builder()
                        .and(
                            LifecycleRuleAndOperator::builder()
                                .prefix("prod.example.com/backups/")
                                .tags(Tag::builder().key("tier").value("cold").build().unwrap())
                                .build(),
                        )
                        .build(),
                )
                .expiration(LifecycleExpiration::builder().days(365).build())
                .transitions(
                    Transition::builder()
                        .days(30)
                        .storage_class(TransitionStorageClass::Glacier)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .rules(
            rule("old-versions")
                .filter(LifecycleRuleFilter::builder().build())
                .noncurrent_version_expiration(
                    NoncurrentVersionExpiration::builder()
                        .noncurrent_days(10)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .rules(
            rule("logs-by-date")
                .filter(prefix("logs/"))
                .expiration(LifecycleExpiration::builder().date(date).build())
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_put_into_s3_come_back_through_fetch_rules_and_are_judged() {
    let moto = common::Moto::start();
    let s3 = client(&moto.endpoint);
    s3.create_bucket().bucket("state").send().await.unwrap();
    s3.create_bucket().bucket("bare").send().await.unwrap();
    s3.put_bucket_versioning()
        .bucket("state")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    s3.put_bucket_lifecycle_configuration()
        .bucket("state")
        .lifecycle_configuration(configuration())
        .send()
        .await
        .unwrap();

    // No configuration, and no bucket at all.
    assert_eq!(fetch_rules(&s3, "bare").await.unwrap(), None);
    assert!(matches!(
        fetch_rules(&s3, "missing").await,
        Err(FetchError::NoSuchBucket { .. })
    ));
    // (Never-versioned buckets are not asserted: moto 5.2.1 answers `<GetBucketVersioningResponse/>`
    // instead of `<VersioningConfiguration/>`, which the SDK rejects; the CLI then treats
    // versioning as unknown.)
    match fetch_versioned(&s3, "state").await {
        Ok(v) => assert_eq!(v, Some(true)),
        // moto before 5.2.5 names the XML root GetBucketVersioningResponse; the SDK rejects it.
        Err(FetchError::Failed {
            failure: etcdguard::store::s3_error::S3Failure::Other(detail),
            ..
        }) => {
            assert!(
                detail.contains("expected VersioningConfiguration"),
                "{detail}"
            )
        }
        Err(e) => panic!("{e}"),
    }

    let config = fetch_rules(&s3, "state")
        .await
        .unwrap()
        .expect("rules were put");
    let ids: Vec<_> = config
        .rules
        .iter()
        .map(|r| r.id.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        ids,
        [
            "cost-saving",
            "latent",
            "cold-tagged",
            "old-versions",
            "logs-by-date"
        ]
    );
    let r = &config.rules;
    assert_eq!(r[0].filter.prefix, STORE);
    assert_eq!(
        r[0].expiration.as_ref().and_then(|e| e.schedule),
        Some(Schedule::Days(90))
    );
    assert_eq!(r[1].status, Status::Disabled);
    assert!(r[1].filter.is_whole_bucket());
    assert_eq!(r[2].filter.prefix, "prod.example.com/backups/");
    assert_eq!(r[2].filter.tags.len(), 1);
    assert_eq!(r[2].transitions[0].storage_class, StorageClass::Glacier);
    assert!(r[3].filter.is_whole_bucket());
    assert_eq!(
        r[3].noncurrent_expiration
            .as_ref()
            .map(|n| n.noncurrent_days),
        Some(10)
    );
    assert_eq!(
        r[4].expiration.as_ref().and_then(|e| e.schedule),
        Some(Schedule::Date(
            Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
        ))
    );

    let mut ctx = StoreContext::new("state", STORE);
    ctx.versioned = Some(true); // set up above
    let now = Utc.with_ymd_and_hms(2024, 3, 22, 10, 0, 0).unwrap();
    let findings = lifecycle::evaluate(&config, &ctx, now);
    let deny: Vec<_> = findings
        .iter()
        .filter(|f| f.severity == Severity::Deny)
        .collect();
    assert!(deny
        .iter()
        .any(|f| f.check == lifecycle::CHECK_DELETES_CONTROL && f.rule_id == "cost-saving"));
    assert!(deny
        .iter()
        .any(|f| f.check == lifecycle::CHECK_EXPIRES_SNAPSHOTS && f.rule_id == "cost-saving"));
    // A noncurrent expiration over the control files destroys the only way to restore them
    // from versioning: denied too (issue #4), under the same check id.
    assert!(deny
        .iter()
        .any(|f| f.check == lifecycle::CHECK_DELETES_CONTROL && f.rule_id == "old-versions"));
    assert!(
        deny.iter().all(|f| f.rule_id == "cost-saving"
            || (f.rule_id == "old-versions" && f.check == lifecycle::CHECK_DELETES_CONTROL)),
        "{deny:#?}"
    );
    assert!(findings
        .iter()
        .any(|f| f.rule_id == "latent" && f.severity == Severity::Info));
    assert!(findings.iter().all(|f| f.rule_id != "logs-by-date"));
    assert!(findings.iter().any(
        |f| f.check == lifecycle::CHECK_DELETES_CONTROL && f.message.contains("delete marker")
    ));

    // With the store's objects listed (sizes, Last-Modified, control-file tags), due dates are
    // exact and the tag-filtered rule is seen to hit the one tagged control file.
    let objects = [
        (
            "control/etcd-cluster-created",
            "{\"timestamp\":1638935701000000000}",
            None,
        ),
        (
            "control/etcd-cluster-spec",
            "{\"memberCount\": 3, \"etcdVersion\": \"3.5.9\"}",
            Some("tier=cold"),
        ),
        (
            "2024-03-22T09:45:00Z-000001/_etcd_backup.meta",
            "{\"timestamp\":\"1711100700\"}",
            None,
        ),
        (
            "2024-03-22T09:45:00Z-000001/etcd.backup.gz",
            "not really gzip",
            None,
        ),
    ];
    for (key, body, tagging) in objects {
        let mut put = s3
            .put_object()
            .bucket("state")
            .key(format!("{STORE}/{key}"))
            .body(aws_sdk_s3::primitives::ByteStream::from(
                body.as_bytes().to_vec(),
            ));
        if let Some(t) = tagging {
            put = put.tagging(t);
        }
        put.send().await.unwrap();
    }
    let known = fetch_known_objects(&s3, "state", &format!("{STORE}/"), 1000)
        .await
        .unwrap();
    assert_eq!(known.len(), 4);
    let created = known
        .iter()
        .find(|o| o.key.ends_with("control/etcd-cluster-created"))
        .unwrap();
    let spec = known
        .iter()
        .find(|o| o.key.ends_with("control/etcd-cluster-spec"))
        .unwrap();
    assert_eq!(spec.tags.as_ref().map(|t| t.len()), Some(1));
    assert_eq!(created.tags.as_deref(), Some(&[][..]));
    let written = created
        .last_modified
        .unwrap()
        .min(spec.last_modified.unwrap());
    ctx.objects = known.clone();
    let real_now = Utc::now();
    let findings = lifecycle::evaluate(&config, &ctx, real_now);
    let control: Vec<_> = findings
        .iter()
        .filter(|f| f.check == lifecycle::CHECK_DELETES_CONTROL && f.severity == Severity::Deny)
        .collect();
    let cost = control.iter().find(|f| f.rule_id == "cost-saving").unwrap();
    assert_eq!(cost.when, Some(Schedule::Days(90).due(written)));
    let cold = control.iter().find(|f| f.rule_id == "cold-tagged").unwrap();
    assert_eq!(cold.example_keys, vec![spec.key.clone()]);
    assert_eq!(
        cold.when,
        Some(Schedule::Days(365).due(spec.last_modified.unwrap()))
    );

    // The CLI reads the same live rules through the standard AWS environment.
    let out = Command::new(common::etcdguard_bin())
        .args([
            "lifecycle",
            "--live",
            "--store",
            &format!("s3://state/{STORE}"),
            "--now",
            "2024-03-22T10:00:00Z",
            "--output",
            "json",
        ])
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("ETCDGUARD_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "deny");
    let findings = v["findings"].as_array().unwrap();
    assert!(findings
        .iter()
        .any(|f| f["check"] == "lifecycle.deletes-control-files"
            && f["ruleId"] == "cost-saving"
            && f["when"].is_string()));
    assert!(findings.iter().any(|f| f["ruleId"] == "cold-tagged"
        && f["check"] == "lifecycle.deletes-control-files"
        && f["severity"] == "deny"));

    // Live rules as the baseline: proposing the same rules makes nothing worse.
    let dir = tempfile::tempdir().unwrap();
    let proposed = dir.path().join("same.json");
    std::fs::write(
        &proposed,
        format!(
            r#"{{"Rules":[{{"ID":"cost-saving","Filter":{{"Prefix":"{STORE}"}},"Status":"Enabled","Expiration":{{"Days":90}}}}]}}"#
        ),
    )
    .unwrap();
    let out = Command::new(common::etcdguard_bin())
        .args([
            "lifecycle",
            "--live",
            "--store",
            &format!("s3://state/{STORE}"),
            "--rules",
        ])
        .arg(&proposed)
        .args(["--now", "2024-03-22T10:00:00Z"])
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("makes nothing worse"), "{stdout}");
}

fn fixture(name: &str) -> String {
    format!(
        "{}/tests/fixtures/lifecycle/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn cli_exit_codes_without_network() {
    let store = format!("s3://kops-state-prod/{STORE}");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "lifecycle",
            "--store",
            store.as_str(),
            "--now",
            "2024-03-22T10:00:00Z",
        ];
        args.extend_from_slice(extra);
        common::etcdguard(&args)
    };
    // The kops#16416 rule: deny.
    let out = run(&["--rules", &fixture("kops-16416.xml")]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("DENY lifecycle.deletes-control-files"),
        "{text}"
    );
    assert!(text.contains("verdict: deny"));

    // A Glacier transition only warns: exit 0.
    let out = run(&["--rules", &fixture("glacier.json"), "--output", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "warn");
    assert_eq!(v["findings"][0]["check"], "lifecycle.archives-snapshots");

    // Diff: removing the dangerous rule makes nothing worse; adding it is denied.
    let out = run(&[
        "--rules",
        &fixture("current.json"),
        "--current",
        &fixture("proposed.json"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let out = run(&[
        "--rules",
        &fixture("proposed.json"),
        "--current",
        &fixture("current.json"),
    ]);
    assert_eq!(out.status.code(), Some(1));

    // A Terraform plan against its own `before`: the new 90-day rule on main/ is denied.
    let out = run(&[
        "--rules",
        &fixture("terraform-plan.json"),
        "--plan-diff",
        "--output",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["mode"], "diff");
    let findings = v["findings"].as_array().unwrap();
    assert!(findings
        .iter()
        .any(|f| f["ruleId"] == "expire-main" && f["severity"] == "deny"));
    assert!(findings.iter().all(|f| f["ruleId"] != "logs"));
    let out = run(&["--rules", &fixture("kops-16416.json"), "--plan-diff"]);
    assert_eq!(out.status.code(), Some(2));

    // A plan for another bucket, unreadable input, bad flags: exit 2 with the input named.
    let out = common::etcdguard(&[
        "lifecycle",
        "--store",
        "s3://other-bucket/x",
        "--rules",
        &fixture("upbound.yaml"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no lifecycle configuration for bucket"));
    let out = run(&["--rules", &fixture("does-not-exist.json")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does-not-exist.json"));
    let out = common::etcdguard(&["lifecycle", "--store", "/local/path", "--rules", "x"]);
    assert_eq!(out.status.code(), Some(2));
    let out = common::etcdguard(&[
        "lifecycle",
        "--store",
        &store,
        "--rules",
        &fixture("kops-16416.json"),
        "--now",
        "yesterday",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));
}
