//! Break-glass exceptions: who may override a deny, until when, and the record of every use.

use super::matching::Request;
use super::model::DEFAULT_BREAK_GLASS_ANNOTATION;
use super::Policy;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

/// The outcome of looking for a break-glass exception on a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "camelCase")]
pub enum ExceptionDecision {
    /// The request carries no break-glass annotation.
    NotRequested,
    /// The override applies: the policy's deny becomes a warning, and the use must be recorded
    /// (see [`ExceptionDecision::use_record`]).
    Honoured {
        /// The annotation's value: the requester's stated reason.
        reason: String,
        /// Who broke glass.
        user: String,
        /// When the exception stops being honoured, if it expires.
        #[serde(skip_serializing_if = "Option::is_none")]
        expires: Option<DateTime<Utc>>,
    },
    /// An override was asked for but does not apply; the policy applies normally.
    Refused {
        /// Why, in words fit for a denial message.
        why: String,
    },
}

/// Everything to record about one honoured break-glass use. The caller turns it into an audit
/// annotation ([`ExceptionUse::audit_annotation`]), a log line ([`ExceptionUse::log`]) and a
/// metric (labels from [`ExceptionUse::policy`] / [`ExceptionUse::user`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExceptionUse {
    pub policy: String,
    pub annotation: String,
    pub reason: String,
    pub user: String,
    pub groups: Vec<String>,
    /// What was changed: `group/Kind` (with `/subresource`) or the CLI source.
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<DateTime<Utc>>,
    /// When the exception was used (the `now` given to the evaluation).
    pub at: DateTime<Utc>,
}

impl ExceptionUse {
    /// Audit-annotation key and value. The key has no `/`, because the apiserver prefixes it
    /// with `<webhook name>/` and a second `/` would make it invalid; the value is compact JSON.
    pub fn audit_annotation(&self) -> (String, String) {
        let value = serde_json::to_string(self).unwrap_or_else(|_| self.reason.clone());
        (format!("break-glass-{}", self.policy), value)
    }

    /// Emit one `tracing` warning with the use's fields (the log line of record).
    pub fn log(&self) {
        tracing::warn!(
            policy = %self.policy,
            user = %self.user,
            groups = ?self.groups,
            reason = %self.reason,
            target = %self.target,
            expires = ?self.expires.map(|e| e.to_rfc3339_opts(SecondsFormat::Secs, true)),
            at = %self.at.to_rfc3339_opts(SecondsFormat::Secs, true),
            "break-glass exception used"
        );
    }
}

impl ExceptionDecision {
    /// The record of this use, when honoured.
    pub fn use_record(
        &self,
        policy: &Policy,
        req: &Request,
        now: DateTime<Utc>,
    ) -> Option<ExceptionUse> {
        match self {
            ExceptionDecision::Honoured {
                reason,
                user,
                expires,
            } => Some(ExceptionUse {
                policy: policy.name().to_string(),
                annotation: policy.break_glass_annotation().to_string(),
                reason: reason.clone(),
                user: user.clone(),
                groups: req.groups.clone(),
                target: target_of(req),
                expires: *expires,
                at: now,
            }),
            _ => None,
        }
    }
}

fn target_of(req: &Request) -> String {
    if let Some(s) = req.source {
        return s.to_string();
    }
    let mut t = if req.api_group.is_empty() {
        req.kind.clone()
    } else {
        format!("{}/{}", req.api_group, req.kind)
    };
    if let Some(sub) = req.subresource.as_deref().filter(|s| !s.is_empty()) {
        t.push('/');
        t.push_str(sub);
    }
    t
}

impl Policy {
    /// The annotation this policy reads for break-glass (its own, or the default).
    pub fn break_glass_annotation(&self) -> &str {
        self.doc
            .spec
            .exceptions
            .as_ref()
            .map(|e| e.annotation.as_str())
            .unwrap_or(DEFAULT_BREAK_GLASS_ANNOTATION)
    }

    /// Decide whether the request's break-glass annotation overrides this policy at `now`.
    ///
    /// - no annotation → `NotRequested`;
    /// - the policy has no `exceptions` → `Refused`;
    /// - empty (or blank) value → `Refused` (a reason is mandatory);
    /// - `now` at or after `expires` → `Refused`;
    /// - requester neither a listed user nor in a listed group → `Refused`;
    /// - otherwise `Honoured`.
    ///
    /// Pure: no clock is read. A refused request is logged at debug level only; an honoured one
    /// is logged by the caller through [`ExceptionUse::log`] when it is actually used.
    pub fn exception(&self, req: &Request, now: DateTime<Utc>) -> ExceptionDecision {
        let annotation = self.break_glass_annotation();
        let Some(value) = req.annotations.get(annotation) else {
            return ExceptionDecision::NotRequested;
        };
        let refuse = |why: String| {
            tracing::debug!(policy = %self.name(), user = %req.user, %why, "break-glass refused");
            ExceptionDecision::Refused { why }
        };
        let Some(ex) = &self.doc.spec.exceptions else {
            return refuse(format!(
                "policy {} allows no break-glass exceptions",
                self.name()
            ));
        };
        let reason = value.trim();
        if reason.is_empty() {
            return refuse(format!(
                "annotation {annotation} is empty: its value must state the reason for breaking glass"
            ));
        }
        if let Some(exp) = ex.expires {
            if now >= exp.0 {
                return refuse(format!(
                    "the break-glass exception of policy {} expired at {}",
                    self.name(),
                    exp.0.to_rfc3339_opts(SecondsFormat::Secs, true)
                ));
            }
        }
        let user_ok = !req.user.is_empty() && ex.users.contains(&req.user);
        let group_ok = req.groups.iter().any(|g| ex.groups.contains(g));
        if !user_ok && !group_ok {
            let who = if req.user.is_empty() {
                "(unknown user)".to_string()
            } else {
                req.user.clone()
            };
            return refuse(format!(
                "user {who} (groups: [{}]) may not break glass for policy {}: allowed users [{}], groups [{}]",
                req.groups.join(", "),
                self.name(),
                ex.users.join(", "),
                ex.groups.join(", ")
            ));
        }
        ExceptionDecision::Honoured {
            reason: reason.to_string(),
            user: req.user.clone(),
            expires: ex.expires.map(|e| e.0),
        }
    }
}
