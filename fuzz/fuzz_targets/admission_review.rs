//! AdmissionReview handling on arbitrary bytes: the webhook's own parser and the kube types,
//! then, for a body that parses, what
//! `etcdguard serve`'s gate does with it: policy matching against the embedded policies
//! (json-patch diff, watched pointers), change classification and the decision with facts
//! unknown. Errors are fine, panics are not; with facts unknown an enforced, gated request must
//! never be allowed.
#![no_main]
use std::sync::OnceLock;

use etcdguard::gate::{self, Fact, Facts, Verdict};
use etcdguard::policy::PolicySet;
use libfuzzer_sys::fuzz_target;

fn policies() -> &'static PolicySet {
    static SET: OnceLock<PolicySet> = OnceLock::new();
    SET.get_or_init(|| PolicySet::embedded().expect("embedded policies load"))
}

fuzz_target!(|data: &[u8]| {
    let _ = etcdguard_webhook::review::parse_review_with_kube(data);
    let Ok(r) = etcdguard_webhook::review::parse_review(data) else {
        return;
    };
    // An object the webhook accepted but the gate cannot read (nesting deeper than serde_json's
    // 128 levels, `metadata` that is not an object) is refused by `serve` before any policy
    // runs.
    let Ok(req) = etcdguard::service::policy_request(&r) else {
        return;
    };
    let matches = policies().matching(&req);
    // The explaining path must agree with the fast one on what matched.
    let explained = policies()
        .explain(&req)
        .into_iter()
        .filter(|m| matches!(m, etcdguard::policy::PolicyMatch::Matched(_)))
        .count();
    assert_eq!(explained, matches.len(), "explain and matching disagree");
    let change = etcdguard::service::object_change(&req);
    let facts = Facts {
        stores: vec![Fact::unknown("fuzz: facts unknown")],
        etcd: Fact::not_checked("fuzz"),
        lifecycle: Fact::unknown("fuzz: facts unknown"),
    };
    let gated = !matches.is_empty();
    let d = gate::request::decide_matched(
        policies(),
        Some(&req),
        matches,
        &facts,
        &change,
        Default::default(),
        chrono::Utc::now(),
    );
    if gated && d.requirements.mode == gate::Mode::Enforce && d.exception.is_none() {
        assert_eq!(d.outcome.verdict, Verdict::Refuse, "unknown facts allowed under enforce");
    }
});
