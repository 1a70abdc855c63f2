//! `etcdguard policy lint|explain` (issue #6).
//!
//! - `policy lint [PATH]`: load a policy file or folder (default: the embedded policies) and print
//!   every error with file, line and field. Exit 0 clean, 1 errors, 2 unreadable PATH.
//! - `policy explain`: show which policies match an object change (or a CLI source) and why:
//!   the json-patch diff of old → new, the watched pointers it touched, and the break-glass
//!   decision. Exit 0 after explaining, 2 on unreadable input or invalid policies.

use super::common::{json_text, usage_error, write_stdout};
use super::{EXIT_FAIL, EXIT_OK};
use crate::policy::{
    ChangeSource, ExceptionDecision, LoadError, MatchReason, Operation, PolicyMatch, PolicySet,
    Request,
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Check policy files: print every error (file:line:column: field: message).
    /// Exit 0 when clean, 1 when any error is found, 2 when PATH cannot be read.
    Lint(LintArgs),
    /// Show which policies match a change and why (changed pointers, break-glass decision).
    Explain(Box<ExplainArgs>),
}

/// Output format for `policy` subcommands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct LintArgs {
    /// Policy file or folder of *.yaml / *.yml files. Default: the policies embedded in the binary.
    pub path: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Format,
}

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The object before the change (YAML or JSON). Omit for CREATE.
    #[arg(long, value_name = "FILE")]
    pub object_old: Option<PathBuf>,
    /// The object after the change (YAML or JSON). Omit for DELETE.
    #[arg(long, value_name = "FILE")]
    pub object_new: Option<PathBuf>,
    /// Explain a CLI change source instead of an object change.
    #[arg(long, value_enum, conflicts_with_all = ["object_old", "object_new"])]
    pub source: Option<ChangeSource>,
    /// Admission operation. Default: UPDATE with both objects, CREATE with only --object-new,
    /// DELETE with only --object-old.
    #[arg(long, value_parser = parse_operation)]
    pub operation: Option<Operation>,
    /// Subresource of the request (e.g. `scale`; then the objects are autoscaling/v1 Scale and
    /// --api-group/--kind name the parent resource).
    #[arg(long)]
    pub subresource: Option<String>,
    /// API group of the target (default: from the objects' apiVersion).
    #[arg(long)]
    pub api_group: Option<String>,
    /// Kind of the target (default: from the objects' kind).
    #[arg(long)]
    pub kind: Option<String>,
    /// Requesting user.
    #[arg(long, default_value = "")]
    pub user: String,
    /// Requesting user's groups (repeatable).
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// Extra request annotation KEY=VALUE (repeatable), e.g. `etcdguard.dev/break-glass=INC-42`.
    /// Overrides the object's own annotations.
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    /// Policy file or folder. Default: the embedded policies.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Evaluate exceptions at this RFC 3339 time instead of the current time.
    #[arg(long)]
    pub now: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Format,
}

fn parse_operation(s: &str) -> Result<Operation, String> {
    crate::policy::parse_operation(s).map_err(|e| e.to_string())
}

pub fn run(args: Args) -> u8 {
    match args.command {
        PolicyCommand::Lint(a) => lint(a),
        PolicyCommand::Explain(a) => explain(*a),
    }
}

fn lint(args: LintArgs) -> u8 {
    let json = args.output == Format::Json;
    let what = args
        .path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "embedded policies".into());
    let (code, text) = match PolicySet::load_or_embedded(args.path.as_deref()) {
        Ok(set) => {
            let text = if json {
                let names: Vec<_> = set.policies().iter().map(|p| json!({"name": p.name(), "mode": p.mode(), "file": p.file, "line": p.line})).collect();
                json_text(&json!({"valid": true, "policies": names, "errors": []}))
            } else {
                let mut t = format!("{what}: {} policies, no errors\n", set.policies().len());
                for p in set.policies() {
                    let _ = writeln!(t, "  {} ({}) at {}:{}", p.name(), p.mode(), p.file, p.line);
                }
                Ok(t)
            };
            (EXIT_OK, text)
        }
        Err(LoadError::Invalid(errors)) => {
            let text = if json {
                json_text(&json!({"valid": false, "errors": errors}))
            } else {
                let mut t = String::new();
                for e in &errors {
                    let _ = writeln!(t, "{e}");
                }
                let _ = writeln!(t, "{what}: {} error(s)", errors.len());
                Ok(t)
            };
            (EXIT_FAIL, text)
        }
        Err(e @ LoadError::Io { .. }) => return usage_error("policy lint", &e.to_string(), json),
    };
    match text.and_then(write_stdout) {
        Ok(()) => code,
        Err(e) => usage_error("policy lint", &e, false),
    }
}

/// Read a YAML or JSON object from a file.
fn read_object(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let value: Value =
        crate::json::value_from_deserializer(serde_yaml_ng::Deserializer::from_str(&text))
            .map_err(|e| format!("{} is not a YAML or JSON object: {e}", path.display()))?;
    if !value.is_object() {
        return Err(format!(
            "{} is not a Kubernetes object: expected a mapping with apiVersion, kind and metadata",
            path.display()
        ));
    }
    Ok(value)
}

fn build_request(args: &ExplainArgs) -> Result<Request, String> {
    let mut req = if let Some(source) = args.source {
        Request::cli(source)
    } else {
        let old = args.object_old.as_deref().map(read_object).transpose()?;
        let new = args.object_new.as_deref().map(read_object).transpose()?;
        let op = match (args.operation.clone(), &old, &new) {
            (Some(op), _, _) => op,
            (None, Some(_), Some(_)) => Operation::Update,
            (None, None, Some(_)) => Operation::Create,
            (None, Some(_), None) => Operation::Delete,
            (None, None, None) => {
                return Err("give --object-old and/or --object-new, or --source".into());
            }
        };
        let mut r = Request::from_objects(op, old, new);
        if let Some(g) = &args.api_group {
            r.api_group = g.clone();
        }
        if let Some(k) = &args.kind {
            r.kind = k.clone();
        }
        r.subresource = args.subresource.clone();
        r
    };
    req.user = args.user.clone();
    req.groups = args.groups.clone();
    for a in &args.annotations {
        let Some((k, v)) = a.split_once('=') else {
            return Err(format!("--annotation `{a}` is not KEY=VALUE"));
        };
        req.annotations.insert(k.to_string(), v.to_string());
    }
    Ok(req)
}

fn explain(args: ExplainArgs) -> u8 {
    let json = args.output == Format::Json;
    let fail = |msg: &str| usage_error("policy explain", msg, json);
    let now: DateTime<Utc> = match &args.now {
        Some(s) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => t.with_timezone(&Utc),
            Err(e) => return fail(&format!("--now `{s}` is not an RFC 3339 time ({e})")),
        },
        None => Utc::now(),
    };
    let set = match PolicySet::load_or_embedded(args.policy.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string()),
    };
    let req = match build_request(&args) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let changes = req.changes();
    let results = set.explain(&req);
    let matched: Vec<_> = results
        .iter()
        .filter_map(|r| match r {
            PolicyMatch::Matched(m) => Some(m.clone()),
            PolicyMatch::NotMatched(_) => None,
        })
        .collect();
    let effective = set.effective(&matched);
    let exceptions: Vec<(String, ExceptionDecision)> = matched
        .iter()
        .filter_map(|m| {
            set.get(&m.policy)
                .map(|p| (m.policy.clone(), p.exception(&req, now)))
        })
        .collect();

    let text = match args.output {
        Format::Json => {
            let policies: Vec<Value> = results
                .iter()
                .map(|r| match r {
                    PolicyMatch::Matched(m) => {
                        let ex = exceptions.iter().find(|(n, _)| *n == m.policy).map(|(_, d)| d);
                        json!({"policy": m.policy, "matched": true, "mode": m.mode, "definedAt": m.defined_at, "reason": m.reason, "exception": ex})
                    }
                    PolicyMatch::NotMatched(x) => json!({"policy": x.policy, "matched": false, "reasons": x.reasons}),
                })
                .collect();
            json_text(
                &json!({"request": req, "changes": changes, "policies": policies, "effective": effective}),
            )
        }
        Format::Text => Ok(render_text(
            &req,
            changes,
            &results,
            &exceptions,
            &effective,
            now,
        )),
    };
    match text.and_then(write_stdout) {
        Ok(()) => EXIT_OK,
        Err(e) => usage_error("policy explain", &e, false),
    }
}

fn render_text(
    req: &Request,
    changes: &[crate::policy::Change],
    results: &[PolicyMatch],
    exceptions: &[(String, ExceptionDecision)],
    effective: &crate::policy::EffectiveRequire,
    now: DateTime<Utc>,
) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_text(&mut out, req, changes, results, exceptions, effective, now);
    out
}

fn write_text(
    out: &mut String,
    req: &Request,
    changes: &[crate::policy::Change],
    results: &[PolicyMatch],
    exceptions: &[(String, ExceptionDecision)],
    effective: &crate::policy::EffectiveRequire,
    now: DateTime<Utc>,
) -> std::fmt::Result {
    write_request(out, req, changes)?;
    write_matches(out, results, exceptions, now)?;
    write_effective(out, effective)
}

/// The request: who, what, and the json-patch changes.
fn write_request(
    out: &mut String,
    req: &Request,
    changes: &[crate::policy::Change],
) -> std::fmt::Result {
    let who = if req.user.is_empty() {
        "(no user)".to_string()
    } else {
        req.user.clone()
    };
    match req.source {
        Some(s) => writeln!(
            out,
            "request: CLI source {s} by {who} [groups: {}]",
            req.groups.join(", ")
        )?,
        None => {
            let op = req
                .operation
                .as_ref()
                .map(crate::policy::operation_name)
                .unwrap_or_default();
            let group = if req.api_group.is_empty() {
                "(core)"
            } else {
                req.api_group.as_str()
            };
            let sub = req
                .subresource
                .as_deref()
                .map(|s| format!(" subresource {s}"))
                .unwrap_or_default();
            writeln!(
                out,
                "request: {op} {group} {}{sub} by {who} [groups: {}]",
                req.kind,
                req.groups.join(", ")
            )?;
            if changes.is_empty() {
                writeln!(out, "changes (json-patch old -> new): none")?;
            } else {
                writeln!(out, "changes (json-patch old -> new):")?;
                for c in changes {
                    writeln!(
                        out,
                        "  {} {}",
                        c.op,
                        if c.path.is_empty() {
                            "(whole object)"
                        } else {
                            &c.path
                        }
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// Each policy: matched (why, and its break-glass decision) or not (why not).
fn write_matches(
    out: &mut String,
    results: &[PolicyMatch],
    exceptions: &[(String, ExceptionDecision)],
    now: DateTime<Utc>,
) -> std::fmt::Result {
    writeln!(
        out,
        "exceptions evaluated at {}",
        now.to_rfc3339_opts(SecondsFormat::Secs, true)
    )?;
    for r in results {
        match r {
            PolicyMatch::Matched(m) => {
                writeln!(
                    out,
                    "MATCH    {} ({}) defined at {}",
                    m.policy, m.mode, m.defined_at
                )?;
                match &m.reason {
                    MatchReason::Source { source } => writeln!(out, "  source {source} is listed")?,
                    MatchReason::Resource { rule, changed } => {
                        if changed.is_empty() {
                            writeln!(out, "  resources[{rule}] matches any change of this kind")?;
                        }
                        for hit in changed {
                            let ops: Vec<String> = hit
                                .changes
                                .iter()
                                .map(|c| {
                                    format!(
                                        "{} {}",
                                        c.op,
                                        if c.path.is_empty() {
                                            "(whole object)"
                                        } else {
                                            &c.path
                                        }
                                    )
                                })
                                .collect();
                            writeln!(
                                out,
                                "  resources[{rule}]: {} changed ({})",
                                hit.watched,
                                ops.join(", ")
                            )?;
                        }
                    }
                }
                if let Some((_, d)) = exceptions.iter().find(|(n, _)| *n == m.policy) {
                    match d {
                        ExceptionDecision::NotRequested => {
                            writeln!(out, "  break-glass: not requested")?
                        }
                        ExceptionDecision::Honoured {
                            reason,
                            user,
                            expires,
                        } => writeln!(
                            out,
                            "  break-glass: HONOURED for {user}, reason {reason:?}{}",
                            expires
                                .map(|e| format!(
                                    ", expires {}",
                                    e.to_rfc3339_opts(SecondsFormat::Secs, true)
                                ))
                                .unwrap_or_default()
                        )?,
                        ExceptionDecision::Refused { why } => {
                            writeln!(out, "  break-glass: refused: {why}")?
                        }
                    }
                }
            }
            PolicyMatch::NotMatched(x) => {
                writeln!(out, "no match {}", x.policy)?;
                for why in &x.reasons {
                    writeln!(out, "  {why}")?;
                }
            }
        }
    }
    Ok(())
}

/// The merged requirements of the matching policies.
fn write_effective(
    out: &mut String,
    effective: &crate::policy::EffectiveRequire,
) -> std::fmt::Result {
    match effective.mode {
        None => writeln!(out, "effective: no policy matches; the gate does not apply")?,
        Some(mode) => {
            writeln!(
                out,
                "effective (strictest of {}):",
                effective.policies.join(", ")
            )?;
            writeln!(out, "  mode: {mode}")?;
            writeln!(
                out,
                "  snapshotMaxAge: {}",
                effective
                    .snapshot_max_age
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "(not required)".into())
            )?;
            writeln!(
                out,
                "  verifySnapshot: {}",
                effective
                    .verify_snapshot
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "(not required)".into())
            )?;
            writeln!(out, "  controlFiles: {}", effective.control_files)?;
            writeln!(out, "  liveEtcd: {}", effective.live_etcd)?;
            writeln!(out, "  lifecycle: {}", effective.lifecycle)?;
            writeln!(out, "  continuity: {}", effective.continuity)?;
            for s in &effective.stores {
                writeln!(
                    out,
                    "  store: {} (layout {}) for cluster {}",
                    s.url.as_str(),
                    s.layout.as_str(),
                    s.cluster
                )?;
            }
        }
    }
    Ok(())
}
