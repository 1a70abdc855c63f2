//! `etcdguard lifecycle --store s3://BUCKET/PREFIX --rules FILE|- [--current FILE] ...` (issue #4).
//!
//! Judges an S3 lifecycle configuration (any format [`crate::lifecycle::parse()`] reads) against
//! the backup store. With `--current`, reports only what the proposed rules make worse. No network
//! unless `--live` is given, which reads the bucket's current rules and versioning state
//! and the store's objects (read-only: GetBucketLifecycleConfiguration, GetBucketVersioning,
//! ListObjectsV2, GetObjectTagging).

use crate::lifecycle::{self, Configuration, Layout, LifecycleFinding, Severity, StoreContext};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Output format of `etcdguard lifecycle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The backup store, `s3://BUCKET/PREFIX` (e.g. s3://state/cluster.example.com/backups/etcd/main).
    /// Only bucket and prefix are used; nothing is read unless --live is given.
    #[arg(long, env = "ETCDGUARD_STORE", value_name = "URL")]
    pub store: String,
    /// The proposed lifecycle rules: S3 XML, AWS JSON, a `terraform show -json` plan, a
    /// CloudFormation template, or ACK/Upbound YAML (detected by content). `-` reads stdin.
    #[arg(long)]
    pub rules: Option<String>,
    /// The current rules: report only what --rules makes worse than these.
    #[arg(long)]
    pub current: Option<PathBuf>,
    /// Read the bucket's current rules, versioning state and the store's objects (sizes,
    /// Last-Modified, control-file tags) from S3 with the standard AWS environment. Without --rules the live rules are judged; with --rules they are the
    /// baseline for a diff (unless --current is given).
    #[arg(long)]
    pub live: bool,
    /// For a Terraform plan: report only what the plan makes worse than its own `before` state.
    #[arg(long)]
    pub plan_diff: bool,
    /// The policy's maximum age of the newest backup (e.g. `24h`).
    #[arg(long, value_name = "DURATION", value_parser = super::facts::parse_max_age)]
    pub max_age: Option<std::time::Duration>,
    /// etcd-manager's daily backup retention in days (kops `backupRetentionDays`).
    #[arg(long, default_value_t = 90)]
    pub retention_days: u32,
    /// etcd-manager's backup interval (kops `manager.backupInterval`).
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    pub backup_interval: std::time::Duration,
    /// Backup layout under the prefix (the names `status` takes): etcd-manager has control
    /// files under `control/`; every other layout is judged as snapshot files only.
    #[arg(long, value_enum, value_name = "NAME", default_value = "etcd-manager")]
    pub layout: crate::store::Layout,
    /// Whether bucket versioning is (or was) enabled; unknown when not given (and not --live).
    #[arg(long)]
    pub versioned: Option<bool>,
    /// Evaluate as of this instant (RFC 3339), instead of the current time.
    #[arg(long, value_name = "RFC3339", value_parser = super::common::parse_now)]
    pub now: Option<DateTime<Utc>>,
    #[command(flatten)]
    pub s3: super::common::S3Args,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
}

/// Bucket and prefix from `s3://bucket/prefix`.
pub fn parse_store_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| format!("--store {url:?}: expected s3://BUCKET/PREFIX"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!("--store {url:?}: the bucket name is empty"));
    }
    Ok((bucket.to_string(), prefix.to_string()))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Source {
    name: String,
    role: &'static str,
    format: String,
    origins: Vec<String>,
    rules: usize,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report<'a> {
    store: &'a str,
    bucket: &'a str,
    prefix: &'a str,
    mode: &'static str,
    now: DateTime<Utc>,
    sources: Vec<Source>,
    verdict: &'static str,
    findings: &'a [LifecycleFinding],
}

struct Loaded {
    config: Configuration,
    /// The input's own prior configuration for the bucket (Terraform `before`), if any.
    previous: Option<Configuration>,
    source: Source,
}

fn load(name: &str, role: &'static str, bucket: &str) -> Result<Loaded, String> {
    let bytes = super::common::read_input(name)?;
    let parsed = lifecycle::parse(&bytes, name, Some(bucket)).map_err(|e| e.to_string())?;
    let (config, origins) = lifecycle::select_for_bucket(&parsed, bucket);
    if origins.is_empty() {
        let names: Vec<String> = parsed.iter().filter_map(|b| b.bucket.clone()).collect();
        return Err(format!(
            "{name}: no lifecycle configuration for bucket {bucket:?} (the input configures: {})",
            names.join(", ")
        ));
    }
    let mut previous: Option<Configuration> = None;
    for b in &parsed {
        let applies = b.bucket.as_deref().is_none_or(|n| n == bucket);
        if let (true, Some(p)) = (applies, &b.previous) {
            previous
                .get_or_insert_with(Configuration::default)
                .rules
                .extend(p.rules.iter().cloned());
        }
    }
    let format = parsed
        .first()
        .map(|b| b.format.name().to_string())
        .unwrap_or_default();
    Ok(Loaded {
        source: Source {
            name: name.to_string(),
            role,
            format,
            origins,
            rules: config.rules.len(),
        },
        config,
        previous,
    })
}

/// What `--live` read from S3.
struct Live {
    rules: Option<Configuration>,
    versioned: Option<bool>,
    objects: Vec<lifecycle::KnownObject>,
}

/// Keys listed under the store by `--live` (etcd-manager keeps a few hundred backups).
const LIVE_LIST_LIMIT: usize = 100_000;

fn live(bucket: &str, prefix: &str, s3: &super::common::S3Args) -> Result<Live, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    rt.block_on(async {
        let url = crate::store::StoreUrl::S3 {
            bucket: bucket.to_string(),
            prefix: String::new(),
        };
        let mut opts = s3.s3_options();
        // As before the shared S3 flags: an `AWS_ENDPOINT_URL` server is addressed path-style.
        opts.path_style |= std::env::var_os("AWS_ENDPOINT_URL").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let client = match crate::store::Backend::open(&url, &opts).await {
            Ok(crate::store::Backend::S3 { client, .. }) => client,
            Ok(crate::store::Backend::Local { .. }) => {
                return Err(format!("s3://{bucket}: not an S3 store"))
            }
            Err(e) => return Err(e.to_string()),
        };
        let rules = crate::store::s3_lifecycle::fetch_rules(&client, bucket)
            .await
            .map_err(|e| e.to_string())?;
        // Versioning only refines messages: if it cannot be read, it stays unknown.
        let versioned = match crate::store::s3_lifecycle::fetch_versioned(&client, bucket).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(%bucket, error = %e, "bucket versioning unknown");
                None
            }
        };
        // Objects only refine due dates and tag matches: if they cannot be read, go on without.
        let objects = match crate::store::s3_lifecycle::fetch_known_objects(
            &client,
            bucket,
            prefix,
            LIVE_LIST_LIMIT,
        )
        .await
        {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(%bucket, error = %e, "store objects not listed; due dates unknown");
                Vec::new()
            }
        };
        Ok(Live {
            rules,
            versioned,
            objects,
        })
    })
}

/// Run the subcommand; returns the exit code (0 nothing denied, 1 a deny finding, 2 usage,
/// parse or I/O error).
pub fn run(args: Args) -> u8 {
    match run_inner(&args) {
        Ok(code) => code,
        Err(msg) => super::common::usage_error("lifecycle", &msg, args.output == Output::Json),
    }
}

fn run_inner(args: &Args) -> Result<u8, String> {
    let (bucket, prefix) = parse_store_url(&args.store)?;
    let now = args.now.unwrap_or_else(Utc::now);
    if args.rules.is_none() && !args.live {
        return Err("give --rules FILE|- (and optionally --current FILE), or --live".to_string());
    }
    let mut ctx = StoreContext::new(&bucket, &prefix);
    ctx.layout = match args.layout {
        crate::store::Layout::EtcdManager => Layout::EtcdManager,
        _ => Layout::Generic,
    };
    ctx.backup_interval = args.backup_interval;
    ctx.retention_days = args.retention_days;
    ctx.max_age = args.max_age;
    ctx.versioned = args.versioned;

    let mut sources = Vec::new();
    let mut live_config = None;
    if args.live {
        let facts = live(&bucket, &ctx.prefix, &args.s3)?;
        if ctx.versioned.is_none() {
            ctx.versioned = facts.versioned;
        }
        ctx.objects = facts.objects;
        let config = facts.rules.unwrap_or_default();
        sources.push(Source {
            name: format!("s3://{bucket}"),
            role: if args.rules.is_some() && args.current.is_none() {
                "current"
            } else if args.rules.is_some() {
                "live (unused: --current given)"
            } else {
                "proposed"
            },
            format: "live S3 GetBucketLifecycleConfiguration".to_string(),
            origins: vec![format!("s3://{bucket}?lifecycle")],
            rules: config.rules.len(),
        });
        live_config = Some(config);
    }
    let mut plan_before = None;
    let proposed = match &args.rules {
        Some(name) => {
            let l = load(name, "proposed", &bucket)?;
            sources.push(l.source);
            if args.plan_diff {
                plan_before = Some(l.previous.ok_or_else(|| {
                    format!("--plan-diff: {name} carries no prior configuration (Terraform `before`) for bucket {bucket:?}")
                })?);
            }
            l.config
        }
        None => live_config.clone().unwrap_or_default(),
    };
    if args.plan_diff && (args.current.is_some() || args.rules.is_none()) {
        return Err("--plan-diff needs --rules PLAN and excludes --current".to_string());
    }
    let current = match &args.current {
        _ if plan_before.is_some() => plan_before,
        Some(path) => {
            let name = path.to_string_lossy().into_owned();
            let l = load(&name, "current", &bucket)?;
            sources.push(l.source);
            Some(l.config)
        }
        None if args.rules.is_some() => live_config,
        None => None,
    };
    let (mode, mut findings) = match &current {
        Some(cur) => ("diff", lifecycle::diff(cur, &proposed, &ctx, now)),
        None => ("evaluate", lifecycle::evaluate(&proposed, &ctx, now)),
    };
    // Worst first in text and JSON alike; the analysis' order within a severity.
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let worst = lifecycle::worst(&findings);
    let verdict = match worst {
        Some(Severity::Deny) => "deny",
        Some(Severity::Warn) => "warn",
        _ => "ok",
    };
    let text = match args.output {
        Output::Json => {
            let report = Report {
                store: &args.store,
                bucket: &bucket,
                prefix: &ctx.prefix,
                mode,
                now,
                sources,
                verdict,
                findings: &findings,
            };
            super::common::json_text(&report)?
        }
        Output::Text => render_text(&args.store, mode, now, &sources, &findings, verdict),
    };
    super::common::write_stdout(text)?;
    Ok(if worst == Some(Severity::Deny) {
        super::EXIT_FAIL
    } else {
        super::EXIT_OK
    })
}

fn render_text(
    store: &str,
    mode: &str,
    now: DateTime<Utc>,
    sources: &[Source],
    findings: &[LifecycleFinding],
    verdict: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "etcdguard lifecycle: {store} ({mode}, as of {})",
        now.format("%Y-%m-%d %H:%M UTC")
    );
    for s in sources {
        let _ = writeln!(
            out,
            "  {} rules: {} rule(s) from {}",
            s.role,
            s.rules,
            s.origins.join(", ")
        );
    }
    if findings.is_empty() {
        let _ = writeln!(
            out,
            "no findings: {}",
            if mode == "diff" {
                "the change makes nothing worse for this backup store"
            } else {
                "no rule touches this backup store"
            }
        );
    }
    for f in findings {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<4} {}  rule {:?} ({})",
            f.severity.as_str().to_uppercase(),
            f.check,
            f.rule_id,
            f.filter
        );
        if let Some(w) = f.when {
            let _ = writeln!(out, "     when: {}", w.format("%Y-%m-%d %H:%M UTC"));
        }
        for k in f.example_keys.iter().take(4) {
            let _ = writeln!(out, "     key:  {k}");
        }
        let _ = writeln!(out, "     {}", f.message);
        let _ = writeln!(out, "     fix:  {}", f.fix);
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "verdict: {verdict}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_url() {
        assert_eq!(
            parse_store_url("s3://b/c.example.com/backups/etcd/main"),
            Ok(("b".into(), "c.example.com/backups/etcd/main".into()))
        );
        assert_eq!(parse_store_url("s3://b"), Ok(("b".into(), String::new())));
        assert!(parse_store_url("gs://b/x").is_err());
        assert!(parse_store_url("s3:///x").is_err());
    }
}
