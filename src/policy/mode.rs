//! Mode semantics and the strictest-wins merge of several matching policies.

use super::model::{MaxAge, Mode, Require, StoreSpec, Verification};
use serde::Serialize;

/// How bad a single gate finding is, before the policy mode is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A fact worth showing; never blocks.
    Info,
    /// Something to look at; never blocks on its own.
    Warning,
    /// The gate could not find out (store unreachable, etcd down). Treated like `Deny`:
    /// a gate that cannot find out must refuse in enforce mode.
    Unknown,
    /// The requirement is not met.
    Deny,
}

/// What happens to the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// Proceed silently.
    Allow,
    /// Proceed, showing a warning (admission `warnings`, CLI exit 0 with a warning).
    Warn,
    /// Refuse (admission `allowed: false`, CLI exit 1).
    Deny,
}

/// A finding after its policy's mode was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Effect {
    pub decision: Decision,
    /// The finding must be recorded (audit annotation, log, metric) even though it does not
    /// change the decision. True for every warning, unknown and deny in any mode.
    pub record: bool,
}

/// Apply a policy mode to one finding.
///
/// | severity \ mode | enforce | warn | audit |
/// |---|---|---|---|
/// | info | allow | allow | allow |
/// | warning | warn | warn | allow + record |
/// | unknown | **deny** | warn | allow + record |
/// | deny | **deny** | warn | allow + record |
///
/// Everything from `warning` up is recorded in every mode.
pub fn apply_mode(mode: Mode, severity: Severity) -> Effect {
    let record = severity >= Severity::Warning;
    let decision = match (mode, severity) {
        (_, Severity::Info) => Decision::Allow,
        (Mode::Audit, _) => Decision::Allow,
        (Mode::Warn, _) => Decision::Warn,
        (Mode::Enforce, Severity::Warning) => Decision::Warn,
        (Mode::Enforce, Severity::Unknown | Severity::Deny) => Decision::Deny,
    };
    Effect { decision, record }
}

/// Apply an honoured break-glass exception to an effect: a deny becomes a warning (the
/// change proceeds, the warning says glass was broken) and is always recorded.
pub fn apply_exception(effect: Effect) -> Effect {
    match effect.decision {
        Decision::Deny => Effect {
            decision: Decision::Warn,
            record: true,
        },
        _ => effect,
    }
}

/// The merged requirements of every matching policy. **Strictest wins**:
/// - `mode`: enforce over warn over audit;
/// - `snapshot_max_age`: the smallest age set by any policy (`None` if none sets one);
/// - `verify_snapshot`: the strongest (`full` > `trailer-only` > `none`);
/// - `control_files`, `live_etcd`, `lifecycle`, `continuity`: required if any policy requires
///   them;
/// - `stores`: the union, in policy order, without duplicate URLs (the first policy that
///   names a URL decides its layout and cluster).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveRequire {
    /// `None` when no policy matched.
    pub mode: Option<Mode>,
    pub snapshot_max_age: Option<MaxAge>,
    pub verify_snapshot: Option<Verification>,
    pub control_files: bool,
    pub live_etcd: bool,
    pub lifecycle: bool,
    pub continuity: bool,
    pub stores: Vec<StoreSpec>,
    /// The policies merged, in order.
    pub policies: Vec<String>,
}

impl EffectiveRequire {
    /// Merge `(policy name, mode, require)` triples; see the type's doc for the rules.
    pub fn merge<'a>(
        items: impl IntoIterator<Item = (&'a str, Mode, &'a Require)>,
    ) -> EffectiveRequire {
        let mut out = EffectiveRequire {
            mode: None,
            snapshot_max_age: None,
            verify_snapshot: None,
            control_files: false,
            live_etcd: false,
            lifecycle: false,
            continuity: false,
            stores: Vec::new(),
            policies: Vec::new(),
        };
        for (name, mode, r) in items {
            out.policies.push(name.to_string());
            out.mode = out.mode.max(Some(mode));
            out.snapshot_max_age = match (out.snapshot_max_age, r.snapshot_max_age) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            out.verify_snapshot = out.verify_snapshot.max(r.verify_snapshot);
            out.control_files |= r.control_files;
            out.live_etcd |= r.live_etcd;
            out.lifecycle |= r.lifecycle;
            out.continuity |= r.continuity;
            for s in &r.stores {
                if !out.stores.iter().any(|o| o.url == s.url) {
                    out.stores.push(s.clone());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn merge_takes_the_strictest_values() {
        let a = Require {
            snapshot_max_age: Some(MaxAge(Duration::from_secs(3 * 3600))),
            verify_snapshot: Some(Verification::TrailerOnly),
            control_files: true,
            ..Require::default()
        };
        let b = Require {
            snapshot_max_age: Some(MaxAge(Duration::from_secs(3600))),
            verify_snapshot: Some(Verification::Full),
            live_etcd: true,
            ..Require::default()
        };
        let c = Require::default();
        let m = EffectiveRequire::merge([
            ("a", Mode::Warn, &a),
            ("b", Mode::Audit, &b),
            ("c", Mode::Audit, &c),
        ]);
        assert_eq!(m.mode, Some(Mode::Warn));
        assert_eq!(m.snapshot_max_age, Some(MaxAge(Duration::from_secs(3600))));
        assert_eq!(m.verify_snapshot, Some(Verification::Full));
        assert!(m.control_files && m.live_etcd && !m.lifecycle);
        let m = EffectiveRequire::merge([("c", Mode::Enforce, &c), ("a", Mode::Audit, &a)]);
        assert_eq!(m.mode, Some(Mode::Enforce));
        assert_eq!(
            m.snapshot_max_age,
            Some(MaxAge(Duration::from_secs(3 * 3600)))
        );
        let none = EffectiveRequire::merge([]);
        assert_eq!(none.mode, None);
    }
}
