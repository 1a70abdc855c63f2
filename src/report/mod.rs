//! Renderers for gate outcomes: text, JSON, JUnit XML, GitHub Actions annotations (issue #5).
//!
//! Renderers are pure functions of the outcome and the facts; they never decide anything.

use crate::gate::{Change, Fact, Facts, Outcome, Severity, Verdict};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::fmt::Write as _;

/// Everything a renderer may show.
pub struct CheckReport<'a> {
    pub outcome: &'a Outcome,
    pub facts: &'a Facts,
    pub change: &'a Change,
    pub now: DateTime<Utc>,
}

fn verdict_str(v: Verdict) -> &'static str {
    match v {
        Verdict::Proceed => "proceed",
        Verdict::Warn => "warn",
        Verdict::Refuse => "refuse",
    }
}

fn severity_str(s: Severity) -> &'static str {
    match s {
        Severity::Deny => "deny",
        Severity::Warn => "warn",
        Severity::Info => "info",
    }
}

fn fact_json<T: serde::Serialize>(f: &Fact<T>) -> Value {
    serde_json::to_value(f).unwrap_or(Value::Null)
}

/// The JSON document (contract: `verdict`, `findings[].{check,severity,message,details}`,
/// `snapshot`, `controlFiles`, `etcd`).
pub fn json(r: &CheckReport) -> Value {
    let first_store = r.facts.stores.first();
    let snapshot = match first_store {
        Some(Fact::Known { value: s }) => json!({
            "state": "known",
            "store": s.url,
            "layout": s.layout,
            "backupCount": s.backup_count,
            "newest": s.newest,
            "newestValid": s.newest_valid,
            "ageSeconds": s.newest_valid.as_ref().map(|b| r.now.signed_duration_since(b.time).num_seconds()),
        }),
        Some(other) => fact_json(other),
        None => json!({ "state": "notChecked", "hint": "pass --store URL" }),
    };
    let control = match first_store {
        Some(Fact::Known { value: s }) => {
            serde_json::to_value(&s.control_files).unwrap_or(Value::Null)
        }
        _ => Value::Null,
    };
    json!({
        "verdict": verdict_str(r.outcome.verdict),
        "mode": r.outcome.mode,
        "now": r.now.to_rfc3339(),
        "findings": r.outcome.findings,
        "snapshot": snapshot,
        "controlFiles": control,
        "etcd": fact_json(&r.facts.etcd),
        "stores": r.facts.stores,
        "lifecycle": fact_json(&r.facts.lifecycle),
        "change": r.change,
    })
}

/// Human text: the verdict first, then each finding (worst first) with what to do next.
pub fn text(r: &CheckReport) -> String {
    let mut s = String::new();
    let headline = match r.outcome.verdict {
        Verdict::Proceed => "PROCEED",
        Verdict::Warn => "PROCEED WITH WARNINGS",
        Verdict::Refuse => "REFUSE",
    };
    let _ = writeln!(s, "verdict: {headline}");
    let mut findings: Vec<_> = r.outcome.findings.iter().collect();
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    for f in findings {
        let tag = match f.severity {
            Severity::Deny => "DENY",
            Severity::Warn => "WARN",
            Severity::Info => "ok  ",
        };
        let _ = writeln!(s, "  {tag} {:<32} {}", f.check, f.message);
        if f.severity != Severity::Info {
            if let Some(next) = &f.next_step {
                let _ = writeln!(s, "       {:<32} next: {next}", "");
            }
        }
    }
    s
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one test case per finding; deny ⇒ failure, warn ⇒ passes with system-out.
pub fn junit(r: &CheckReport) -> String {
    let findings = &r.outcome.findings;
    let failures = findings
        .iter()
        .filter(|f| f.severity == Severity::Deny)
        .count();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"etcdguard\" tests=\"{}\" failures=\"{failures}\">",
        findings.len()
    );
    let _ = writeln!(
        s,
        "  <testsuite name=\"etcdguard check\" tests=\"{}\" failures=\"{failures}\" timestamp=\"{}\">",
        findings.len(),
        r.now.format("%Y-%m-%dT%H:%M:%S")
    );
    for f in findings {
        let _ = write!(
            s,
            "    <testcase classname=\"etcdguard.{}\" name=\"{}\"",
            xml_escape(&f.check),
            xml_escape(&f.message)
        );
        match f.severity {
            Severity::Deny => {
                let body = match &f.next_step {
                    Some(n) => format!("{}\nnext: {n}", f.message),
                    None => f.message.clone(),
                };
                let _ = writeln!(
                    s,
                    ">\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>",
                    xml_escape(&f.check),
                    xml_escape(&f.message),
                    xml_escape(&body)
                );
            }
            Severity::Warn => {
                let _ = writeln!(
                    s,
                    ">\n      <system-out>WARNING: {}</system-out>\n    </testcase>",
                    xml_escape(&f.message)
                );
            }
            Severity::Info => {
                let _ = writeln!(s, "/>");
            }
        }
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}

/// GitHub Actions workflow commands escape `%`, CR and LF in the message.
fn gh_escape(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn gh_prop(s: &str) -> String {
    gh_escape(s).replace(':', "%3A").replace(',', "%2C")
}

/// GitHub Actions annotations (`::error`/`::warning`/`::notice`) plus a summary line.
pub fn github(r: &CheckReport) -> String {
    let mut s = String::new();
    for f in &r.outcome.findings {
        let level = match f.severity {
            Severity::Deny => "error",
            Severity::Warn => "warning",
            Severity::Info => continue,
        };
        let mut msg = f.message.clone();
        if let Some(n) = &f.next_step {
            msg.push_str("\nnext: ");
            msg.push_str(n);
        }
        let _ = writeln!(
            s,
            "::{level} title={}::{}",
            gh_prop(&format!("etcdguard {}", f.check)),
            gh_escape(&msg)
        );
    }
    let _ = writeln!(
        s,
        "etcdguard verdict: {} ({} deny, {} warn)",
        verdict_str(r.outcome.verdict),
        r.outcome
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Deny)
            .count(),
        r.outcome
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Warn)
            .count()
    );
    s
}

/// Severity as the JSON contract spells it.
pub fn severity_name(s: Severity) -> &'static str {
    severity_str(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::{decide, Finding, Mode};
    use chrono::TimeZone;

    fn sample() -> (Outcome, Facts, Change) {
        let findings = vec![
            Finding {
                check: "snapshot.recent".into(),
                severity: Severity::Deny,
                message: "newest restorable backup b1 is 4h 0m old (max 3h) <&>".into(),
                next_step: Some("take a backup".into()),
                details: json!({"ageSeconds": 14400}),
            },
            Finding {
                check: "etcd.healthy".into(),
                severity: Severity::Info,
                message: "live etcd not checked: pass --etcd-endpoints".into(),
                next_step: None,
                details: Value::Null,
            },
            Finding {
                check: "snapshot.valid".into(),
                severity: Severity::Warn,
                message: "newest backup is NOT restorable\nsecond line 100%".into(),
                next_step: None,
                details: Value::Null,
            },
        ];
        let facts = Facts {
            stores: vec![],
            store_urls: vec![],
            etcd: Fact::not_checked("pass --etcd-endpoints"),
            lifecycle: Fact::not_checked("pass --lifecycle"),
        };
        (decide(findings, Mode::Enforce), facts, Change::default())
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
    }

    #[test]
    fn json_has_contract_fields() {
        let (o, f, c) = sample();
        let v = json(&CheckReport {
            outcome: &o,
            facts: &f,
            change: &c,
            now: now(),
        });
        assert_eq!(v["verdict"], "refuse");
        assert_eq!(v["findings"][0]["check"], "snapshot.recent");
        assert_eq!(v["findings"][0]["severity"], "deny");
        assert_eq!(v["findings"][0]["details"]["ageSeconds"], 14400);
        assert!(v["findings"][0]["message"].is_string());
        assert!(v.get("snapshot").is_some() && v.get("controlFiles").is_some());
        assert_eq!(v["etcd"]["state"], "notChecked");
    }

    #[test]
    fn text_puts_verdict_first_and_next_steps() {
        let (o, f, c) = sample();
        let t = text(&CheckReport {
            outcome: &o,
            facts: &f,
            change: &c,
            now: now(),
        });
        assert!(t.starts_with("verdict: REFUSE\n"), "{t}");
        let deny = t.find("DENY snapshot.recent").unwrap();
        let ok = t.find("ok   etcd.healthy").unwrap();
        assert!(deny < ok, "deny findings come first:\n{t}");
        assert!(t.contains("next: take a backup"));
    }

    #[test]
    fn junit_is_wellformed_and_counts_failures() {
        let (o, f, c) = sample();
        let x = junit(&CheckReport {
            outcome: &o,
            facts: &f,
            change: &c,
            now: now(),
        });
        assert!(x.contains("tests=\"3\" failures=\"1\""), "{x}");
        assert!(x.contains("&lt;&amp;&gt;"));
        assert!(!x.contains("<&>"));
        assert_eq!(x.matches("<testcase").count(), 3);
        assert_eq!(x.matches("<failure").count(), 1);
    }

    #[test]
    fn github_annotations_escape_newlines_and_percent() {
        let (o, f, c) = sample();
        let g = github(&CheckReport {
            outcome: &o,
            facts: &f,
            change: &c,
            now: now(),
        });
        assert!(
            g.contains("::error title=etcdguard snapshot.recent::"),
            "{g}"
        );
        assert!(g.contains("::warning title=etcdguard snapshot.valid::newest backup is NOT restorable%0Asecond line 100%25"), "{g}");
        assert!(
            !g.contains("etcd.healthy"),
            "info findings are not annotated"
        );
        assert!(g
            .trim_end()
            .ends_with("etcdguard verdict: refuse (1 deny, 1 warn)"));
    }
}
