//! Policies + facts + change → decision, the one path shared by `check` and `serve` (pure).
//!
//! [`decide`] finds the policies matching a request, merges their requirements (strictest wins,
//! see [`crate::policy::EffectiveRequire`]), applies command-line overrides, evaluates the facts
//! with [`super::evaluate`], and finally applies a break-glass exception when every enforcing
//! policy honours it.

use super::{Change, Facts, Finding, Mode, Outcome, Requirements, Severity, Verdict};
use crate::policy::{ExceptionDecision, ExceptionUse, MatchExplanation, PolicySet, Request};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;

/// How the caller runs the gate: command-line overrides of what policies say (`--max-age`,
/// `--mode`), and which findings it wants built.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides {
    pub max_age: Option<Duration>,
    pub mode: Option<Mode>,
    /// [`super::Detail::Problems`] for a caller that shows only warnings and denials (the
    /// webhook); the verdict does not depend on it.
    pub detail: super::Detail,
}

/// Why the gate ran the way it did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub outcome: Outcome,
    /// `false` when no policy matched a Kubernetes object change: nothing was evaluated.
    pub gated: bool,
    /// Names of the matching policies.
    pub policies: Vec<String>,
    /// The requirements used.
    pub requirements: Requirements,
    /// A break-glass exception that turned a refusal into a warning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception: Option<ExceptionUse>,
    /// Break-glass requests that were refused, with the reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exception_refusals: Vec<String>,
}

fn mode_from_policy(m: crate::policy::Mode) -> Mode {
    match m {
        crate::policy::Mode::Enforce => Mode::Enforce,
        crate::policy::Mode::Warn => Mode::Warn,
        crate::policy::Mode::Audit => Mode::Audit,
    }
}

/// Decide one request.
///
/// - `request`: `None` for a plain pre-flight check with no change input (defaults apply:
///   enforce, 3 h); `Some` for a CLI change source or a Kubernetes object change.
/// - A Kubernetes object change that no policy matches is not gated: verdict `proceed` with one
///   `info` finding saying so, and the facts are not consulted.
/// - A CLI change source that no policy matches is still checked with the defaults: the user
///   asked for a check.
pub fn decide(
    policies: &PolicySet,
    request: Option<&Request>,
    facts: &Facts,
    change: &Change,
    overrides: Overrides,
    now: DateTime<Utc>,
) -> Decision {
    let matches = request.map(|r| policies.matching(r)).unwrap_or_default();
    decide_matched(policies, request, matches, facts, change, overrides, now)
}

/// The requirements the matched policies impose (strictest wins), after the command-line
/// overrides; no matches (a plain check) means the defaults, control files included.
pub fn requirements(
    policies: &PolicySet,
    matches: &[MatchExplanation],
    overrides: Overrides,
) -> Requirements {
    requirements_of(&policies.effective(matches), matches.is_empty(), overrides)
}

fn requirements_of(
    effective: &crate::policy::EffectiveRequire,
    no_match: bool,
    overrides: Overrides,
) -> Requirements {
    let mut req = Requirements::default();
    if let Some(m) = effective.mode {
        req.mode = mode_from_policy(m);
    }
    if let Some(a) = effective.snapshot_max_age {
        req.max_age = a.0;
    }
    req.control_files = effective.control_files || no_match;
    req.backup = no_match
        || effective.snapshot_max_age.is_some()
        || effective
            .verify_snapshot
            .is_some_and(|v| v > crate::policy::Verification::None);
    req.live_etcd = effective.live_etcd;
    req.lifecycle = effective.lifecycle;
    req.continuity = effective.continuity || no_match;
    req.required_by = effective.policies.clone();
    // `--max-age` tightens a policy's `snapshotMaxAge`, never loosens it (a flag in a CI file
    // must not weaken the shipped policies); with no policy age it replaces the default.
    if let Some(a) = overrides.max_age {
        req.max_age = match effective.snapshot_max_age {
            Some(policy) if !no_match => policy.0.min(a),
            _ => a,
        };
    }
    if let Some(m) = overrides.mode {
        req.mode = m;
    }
    req
}

/// [`decide`] with the matching policies already found (`policies.matching(request)`), for a
/// caller that needed them first (the webhook skips fact work for ungated requests).
pub fn decide_matched(
    policies: &PolicySet,
    request: Option<&Request>,
    matches: Vec<MatchExplanation>,
    facts: &Facts,
    change: &Change,
    overrides: Overrides,
    now: DateTime<Utc>,
) -> Decision {
    let effective = policies.effective(&matches);
    let req = requirements_of(&effective, matches.is_empty(), overrides);
    let policy_names: Vec<String> = matches.iter().map(|m| m.policy.clone()).collect();

    let object_request = request.is_some_and(|r| r.source.is_none());
    if object_request && matches.is_empty() {
        let r = request.expect("object_request implies a request");
        let what = if r.kind.is_empty() {
            "this object".to_string()
        } else if r.api_group.is_empty() {
            r.kind.clone()
        } else {
            format!("{}.{}", r.kind, r.api_group)
        };
        return Decision {
            outcome: Outcome {
                verdict: Verdict::Proceed,
                mode: req.mode,
                findings: vec![Finding {
                    check: "policy.match".to_string(),
                    severity: Severity::Info,
                    message: format!("not gated: no policy matches this change of {what}"),
                    next_step: None,
                    details: serde_json::Value::Null,
                }],
            },
            gated: false,
            policies: policy_names,
            requirements: req,
            exception: None,
            exception_refusals: Vec::new(),
        };
    }

    let raw = super::findings_with(facts, change, &req, now, overrides.detail);
    let mut outcome = super::decide(raw, req.mode);
    let mut exception = None;
    let mut refusals = Vec::new();
    if outcome.verdict == Verdict::Refuse {
        if let Some(r) = request {
            let enforcing: Vec<_> = matches
                .iter()
                .filter(|m| {
                    m.mode == crate::policy::Mode::Enforce || overrides.mode == Some(Mode::Enforce)
                })
                .filter_map(|m| policies.get(&m.policy))
                .collect();
            let mut honoured = Vec::new();
            for p in &enforcing {
                match p.exception(r, now) {
                    ExceptionDecision::NotRequested => {}
                    ExceptionDecision::Refused { why } => refusals.push(why),
                    d @ ExceptionDecision::Honoured { .. } => honoured.push((p, d)),
                }
            }
            if !enforcing.is_empty() && honoured.len() == enforcing.len() {
                if let Some((p, d)) = honoured.first() {
                    exception = d.use_record(p, r, now);
                }
                for f in outcome
                    .findings
                    .iter_mut()
                    .filter(|f| f.severity == Severity::Deny)
                {
                    f.severity = Severity::Warn;
                    f.message = format!("{} (allowed by break-glass exception)", f.message);
                }
                outcome.verdict = Verdict::Warn;
            }
        }
    }
    Decision {
        outcome,
        gated: true,
        policies: policy_names,
        requirements: req,
        exception,
        exception_refusals: refusals,
    }
}

/// What the policies of a set can require between them (each need unioned, with the policies
/// that have it): what a server gathering facts ahead of its requests must be able to read.
pub fn needs_of_set(policies: &PolicySet) -> Needs {
    let mut needs = Needs::default();
    for p in policies.policies() {
        let r = p.require();
        let name = p.name().to_string();
        let backup = r.snapshot_max_age.is_some()
            || r.verify_snapshot
                .is_some_and(|v| v > crate::policy::Verification::None)
            || r.control_files;
        if backup {
            needs.store.push(name.clone());
        }
        if r.live_etcd {
            needs.etcd.push(name.clone());
        }
        if r.lifecycle {
            needs.lifecycle.push(name);
        }
    }
    needs
}

/// The fact sources a policy set needs, each with the policies needing it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Backups or control files: a backup store.
    pub store: Vec<String>,
    /// Live etcd health.
    pub etcd: Vec<String>,
    /// Bucket lifecycle rules (an s3:// store, or rules carried by the reviewed object).
    pub lifecycle: Vec<String>,
}
