//! `etcdguard check`: the gate for CI pipelines and kops/kubeadm pre-update hooks (issue #5).
//!
//! ```text
//! etcdguard check [--store URL]... [--layout NAME] [--max-age DUR] [--etcd-endpoints LIST]
//!                 [--kops-dry-run FILE|-] [--kops-cluster-spec FILE|-] [--terraform-plan FILE] [--lifecycle FILE|-]
//!                 [--object-old F --object-new F] [--policy FILE|DIR] [--now RFC3339]
//!                 [--output text|json|junit|github]
//! ```
//! Exit 0 = proceed (warnings allowed), 1 = refuse, 2 = usage/configuration error.

use super::common::Output;
use super::facts::FactArgs;
use crate::change::{self, ChangeSet};
use crate::facts::{self, RulesSource};
use crate::gate::{self, request::Overrides, Facts};
use crate::policy::{ChangeSource, Operation, PolicySet, Request};
use crate::report::{self, CheckReport};
use chrono::{DateTime, Utc};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 proceed (warnings allowed), 1 refuse, 2 usage or configuration error.\n\
Check ids: store.reachable, snapshot.recent, snapshot.valid, snapshot.continuity, snapshot.version-fit, \
control-files.present, control-files.pending-command, change.seeds-new-cluster, lifecycle.deletes-control-files, lifecycle.expires-snapshots, \
lifecycle.archives-snapshots, etcd.healthy, etcd.revision-behind-snapshot."
)]
pub struct Args {
    #[command(flatten)]
    pub facts: FactArgs,
    /// `kops update cluster` dry-run output (without --yes); `-` reads stdin.
    #[arg(long, value_name = "FILE|-")]
    pub kops_dry_run: Option<String>,
    /// `kops get cluster --full -o yaml NAME` output (YAML or JSON; InstanceGroups may follow):
    /// adds each etcd cluster's backup store (`backups.backupStore`, else
    /// `<configBase>/backups/etcd/<name>`) to the `--store` list; `-` reads stdin.
    #[arg(long, value_name = "FILE|-")]
    pub kops_cluster_spec: Option<String>,
    /// `terraform show -json PLAN` output (kops --target terraform).
    #[arg(long, value_name = "FILE")]
    pub terraform_plan: Option<PathBuf>,
    /// Proposed S3 lifecycle configuration (S3 XML, AWS JSON, Terraform plan, CloudFormation,
    /// ACK/Upbound YAML); `-` reads stdin. Without it, an s3:// store's live rules are read.
    #[arg(long, value_name = "FILE|-")]
    pub lifecycle: Option<String>,
    /// The S3 location (`s3://BUCKET/PREFIX`) that a local `--store` is a copy of, so that
    /// `--lifecycle FILE` rules are judged against its backups.
    #[arg(long, value_name = "S3-URL", requires = "lifecycle")]
    pub lifecycle_prefix: Option<String>,
    /// The object before the change (YAML or JSON), as the webhook sees `oldObject`.
    #[arg(long, value_name = "FILE", requires = "object_new")]
    pub object_old: Option<PathBuf>,
    /// The object after the change (YAML or JSON), as the webhook sees `object`.
    #[arg(long, value_name = "FILE")]
    pub object_new: Option<PathBuf>,
    /// Requesting user, for break-glass exceptions on object changes.
    #[arg(long, value_name = "NAME", default_value = "")]
    pub user: String,
    /// Requesting user's groups (repeatable), for break-glass exceptions.
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// Request annotation KEY=VALUE (repeatable), as on the object; e.g. the break-glass
    /// `etcdguard.dev/break-glass=REASON` (honoured for the users/groups the policy lists).
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    /// Override every policy's mode.
    #[arg(long, value_enum, value_name = "MODE")]
    pub mode: Option<ModeArg>,
    /// Evaluate as of this time instead of the clock (RFC 3339).
    #[arg(long, value_name = "RFC3339", value_parser = super::common::parse_now)]
    pub now: Option<DateTime<Utc>>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
}

/// `--mode`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ModeArg {
    Enforce,
    Warn,
    Audit,
}

impl From<ModeArg> for gate::Mode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Enforce => gate::Mode::Enforce,
            ModeArg::Warn => gate::Mode::Warn,
            ModeArg::Audit => gate::Mode::Audit,
        }
    }
}

/// The change under test and the policy request it maps to.
struct Proposed {
    change: gate::Change,
    request: Option<Request>,
    sets: Vec<ChangeSet>,
}

fn proposed(args: &Args, lifecycle_given: bool) -> Result<Proposed, String> {
    let mut change = gate::Change::default();
    let mut request = None;
    let mut sets = Vec::new();
    if let Some(name) = &args.kops_dry_run {
        let bytes = super::common::read_input(name)?;
        let text = String::from_utf8(bytes).map_err(|_| {
            format!("{name}: not UTF-8 text; expected `kops update cluster` output")
        })?;
        let set = change::from_kops_dry_run(&text, name).map_err(|e| e.to_string())?;
        facts::summarize(&set, "kops-dry-run", &mut change);
        sets.push(set);
        request = Some(Request::cli(ChangeSource::KopsDryRun));
    }
    if let Some(path) = &args.terraform_plan {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| format!("{name}: {e}"))?;
        let set = change::from_terraform_plan(&bytes, &name).map_err(|e| e.to_string())?;
        facts::summarize(&set, "terraform-plan", &mut change);
        sets.push(set);
        request.get_or_insert(Request::cli(ChangeSource::TerraformPlan));
    }
    if args.object_old.is_some() || args.object_new.is_some() {
        let load = |p: &PathBuf| -> Result<serde_json::Value, String> {
            let name = p.display().to_string();
            let bytes = std::fs::read(p).map_err(|e| format!("{name}: {e}"))?;
            change::load_object(&bytes, &name).map_err(|e| e.to_string())
        };
        let old = args.object_old.as_ref().map(load).transpose()?;
        let new = args.object_new.as_ref().map(load).transpose()?;
        let op = match (&old, &new) {
            (None, Some(_)) => Operation::Create,
            (Some(_), None) => Operation::Delete,
            _ => Operation::Update,
        };
        let req = Request::from_objects(op, old, new).by(args.user.clone(), args.groups.clone());
        // One json-patch diff for both the classification and the policy matching.
        let set = change::from_request(&req).map_err(|e| e.to_string())?;
        facts::summarize(&set, "objects", &mut change);
        sets.push(set);
        if request.is_some() {
            return Err("give either a CLI change (--kops-dry-run/--terraform-plan) or --object-old/--object-new, not both".into());
        }
        request = Some(req);
    }
    if lifecycle_given {
        change.sources.push("lifecycle".to_string());
        request.get_or_insert(Request::cli(ChangeSource::Lifecycle));
    }
    if let Some(r) = request.as_mut() {
        if r.source.is_some() {
            r.user = args.user.clone();
            r.groups = args.groups.clone();
        }
        for a in &args.annotations {
            let Some((k, v)) = a.split_once('=') else {
                return Err(format!("--annotation `{a}` is not KEY=VALUE"));
            };
            r.annotations.insert(k.to_string(), v.to_string());
        }
    } else if !args.annotations.is_empty() {
        return Err(
            "--annotation applies to a change: give --kops-dry-run, --terraform-plan, \
                    --lifecycle or --object-new"
                .to_string(),
        );
    }
    Ok(Proposed {
        change,
        request,
        sets,
    })
}

pub fn run(args: Args) -> u8 {
    let json = args.output == Output::Json;
    match run_inner(args) {
        Ok(code) => code,
        Err(msg) => super::common::usage_error("check", &msg, json),
    }
}

/// `--kops-cluster-spec`: append the stores the kops spec names to `--store` (deduplicated).
/// An unreadable spec or a store scheme etcdguard cannot read is a configuration error.
fn add_kops_spec_stores(args: &mut Args) -> Result<Vec<String>, String> {
    let Some(name) = &args.kops_cluster_spec else {
        return Ok(Vec::new());
    };
    if name == "-" && args.kops_dry_run.as_deref() == Some("-") {
        return Err("--kops-dry-run and --kops-cluster-spec cannot both read stdin (-)".into());
    }
    let bytes = super::common::read_input(name)?;
    let stores = change::stores_from_cluster_spec(&bytes, &format!("--kops-cluster-spec {name}"))
        .map_err(|e| e.to_string())?;
    for s in &stores {
        change::check_store_scheme(s).map_err(|e| format!("--kops-cluster-spec {name}: {e}"))?;
        if !args.facts.stores.contains(&s.url) {
            args.facts.stores.push(s.url.clone());
        }
    }
    Ok(stores.into_iter().map(|s| s.url).collect())
}

fn run_inner(mut args: Args) -> Result<u8, String> {
    args.facts.read_stores_file()?;
    let spec_stores = add_kops_spec_stores(&mut args)?;
    let now = args.now.unwrap_or_else(Utc::now);
    let policies =
        PolicySet::load_or_embedded(args.facts.policy.as_deref()).map_err(|e| e.to_string())?;
    let lifecycle_bytes = args
        .lifecycle
        .as_deref()
        .map(super::common::read_input)
        .transpose()?;
    // Every input given is read and judged: an unreadable rules file is an error whatever the
    // store (it is parsed again per bucket once the stores are known).
    if let (Some(name), Some(bytes)) = (&args.lifecycle, &lifecycle_bytes) {
        crate::lifecycle::parse(bytes, name, None).map_err(|e| e.to_string())?;
    }
    let mut proposed = proposed(&args, lifecycle_bytes.is_some())?;
    for s in spec_stores {
        if !proposed.change.backup_stores.contains(&s) {
            proposed.change.backup_stores.push(s);
        }
    }

    // Requirements first (pure), so the lifecycle analysis uses the policy's max age.
    let overrides = Overrides {
        max_age: args.facts.max_age,
        mode: args.mode.map(Into::into),
        ..Overrides::default()
    };
    let empty = Facts {
        stores: vec![],
        store_urls: vec![],
        etcd: gate::Fact::not_checked(""),
        lifecycle: gate::Fact::not_checked(""),
        cached: vec![],
    };
    let pre = gate::request::decide(
        &policies,
        proposed.request.as_ref(),
        &empty,
        &proposed.change,
        overrides,
        now,
    );
    if !pre.gated {
        // Not a gated change: same answer as the webhook, without touching S3 or etcd.
        return render(&args, &pre.outcome, &empty, &proposed, now, &pre);
    }
    let max_age = pre.requirements.max_age;

    let rt = super::common::runtime()?;
    let fa = &args.facts;
    let opts = fa.options();
    // One deadline for everything the run reads (stores, live etcd, lifecycle rules): whatever
    // hangs, the run answers within --deadline (plus the runtime's short shutdown below).
    let bound = fa.store.deadline;
    let late = || {
        format!(
            "not read within --deadline {}",
            humantime::format_duration(bound)
        )
    };
    let gathered = rt.block_on(async {
        let deadline = tokio::time::Instant::now() + bound;
        let (stores, etcd) = tokio::join!(
            tokio::time::timeout_at(deadline, facts::gather_stores(&opts.stores, &opts, now)),
            tokio::time::timeout_at(deadline, facts::gather_etcd(opts.etcd.as_ref()))
        );
        let stores = match stores {
            Ok(s) => s.map_err(|e| e.to_string())?,
            Err(_) => fa
                .stores
                .iter()
                .map(|u| facts::StoreResult {
                    url: u.clone(),
                    fact: gate::Fact::unknown(late()),
                    full: None,
                })
                .collect(),
        };
        let etcd = match etcd {
            Ok(e) => e.map_err(|e| e.to_string())?.0,
            Err(_) => gate::Fact::unknown(late()),
        };
        let source = match (&args.lifecycle, &lifecycle_bytes) {
            (Some(name), Some(bytes)) => Some(RulesSource::File { name, bytes }),
            _ => None,
        };
        let lifecycle = tokio::time::timeout_at(
            deadline,
            facts::gather_lifecycle(
                source,
                &stores,
                args.lifecycle_prefix.as_deref(),
                &opts,
                max_age,
                now,
            ),
        )
        .await;
        let lifecycle = match lifecycle {
            Ok(l) => l.map_err(|e| e.to_string())?,
            Err(_) => gate::Fact::unknown(late()),
        };
        Ok::<_, String>((stores, etcd, lifecycle))
    });
    // A verifier thread stuck on a dead connection must not keep the process alive.
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    let (stores, etcd, lifecycle) = gathered?;
    let facts = Facts {
        store_urls: stores.iter().map(|s| s.url.clone()).collect(),
        stores: stores.into_iter().map(|s| s.fact).collect(),
        etcd,
        lifecycle,
        cached: vec![],
    };
    let decision = gate::request::decide(
        &policies,
        proposed.request.as_ref(),
        &facts,
        &proposed.change,
        overrides,
        now,
    );
    if let Some(u) = &decision.exception {
        u.log();
    }
    render(&args, &decision.outcome, &facts, &proposed, now, &decision)
}

fn render(
    args: &Args,
    outcome: &gate::Outcome,
    facts: &Facts,
    proposed: &Proposed,
    now: DateTime<Utc>,
    decision: &gate::request::Decision,
) -> Result<u8, String> {
    let r = CheckReport {
        outcome,
        facts,
        change: &proposed.change,
        now,
    };
    let text = match args.output {
        Output::Text => {
            let mut t = report::text(&r);
            if !decision.policies.is_empty() {
                t.push_str(&format!("policies: {}\n", decision.policies.join(", ")));
            }
            for why in &decision.exception_refusals {
                t.push_str(&format!("break-glass refused: {why}\n"));
            }
            t
        }
        Output::Json => {
            let mut v = report::json(&r);
            v["policies"] = serde_json::json!(decision.policies);
            v["requirements"] = serde_json::to_value(&decision.requirements).unwrap_or_default();
            v["changeSets"] = serde_json::to_value(&proposed.sets).unwrap_or_default();
            if let Some(e) = &decision.exception {
                v["exception"] = serde_json::to_value(e).unwrap_or_default();
            }
            super::common::json_text(&v)?
        }
        Output::Junit => report::junit(&r),
        Output::Github => report::github(&r),
    };
    super::common::write_stdout(text)?;
    Ok(match outcome.verdict {
        gate::Verdict::Refuse => super::EXIT_FAIL,
        _ => super::EXIT_OK,
    })
}
