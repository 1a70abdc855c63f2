//! Renderers for gate outcomes: text, JSON, JUnit XML, GitHub Actions annotations (issue #5).
//!
//! Renderers are pure functions of the outcome and the facts; they never decide anything.
//! Every renderer lists the findings in the same order: worst first (deny, warn, info), and
//! within a severity in the gate's order ([`ordered`]).

use crate::gate::{Change, Fact, Facts, Finding, Outcome, Severity, Verdict};
use chrono::{DateTime, SecondsFormat, Utc};
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

/// `schemaVersion` at the top level of every JSON document etcdguard prints (issue #19). Raised
/// only when a field is removed or changes meaning; new fields do not raise it.
pub const SCHEMA_VERSION: u32 = 1;

/// `doc` with `schemaVersion` added at its top level (a non-object is wrapped as `{"value": …}`).
pub fn versioned(doc: Value) -> Value {
    let mut map = match doc {
        Value::Object(map) => map,
        other => serde_json::Map::from_iter([("value".to_string(), other)]),
    };
    map.insert("schemaVersion".into(), SCHEMA_VERSION.into());
    Value::Object(map)
}

/// The JSON document of a usage, configuration or I/O error (exit 2).
pub fn error_doc(message: &str) -> Value {
    versioned(json!({ "error": message }))
}

/// Findings worst first (deny, warn, info); the gate's order within a severity (stable sort).
pub fn ordered(findings: &[Finding]) -> Vec<&Finding> {
    let mut v: Vec<_> = findings.iter().collect();
    v.sort_by_key(|f| std::cmp::Reverse(f.severity));
    v
}

fn fact_json<T: serde::Serialize>(f: &Fact<T>) -> Value {
    serde_json::to_value(f).unwrap_or(Value::Null)
}

/// The JSON document (contract: `schemaVersion`, `verdict`,
/// `findings[].{check,severity,message,details}` worst first, `snapshot`, `controlFiles`, `etcd`).
/// Times are RFC 3339 UTC with `Z`.
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
    versioned(json!({
        "verdict": verdict_str(r.outcome.verdict),
        "mode": r.outcome.mode,
        "now": r.now.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        "findings": ordered(&r.outcome.findings),
        "snapshot": snapshot,
        "controlFiles": control,
        "etcd": fact_json(&r.facts.etcd),
        "stores": r.facts.stores,
        "lifecycle": fact_json(&r.facts.lifecycle),
        "change": r.change,
    }))
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
    for f in ordered(&r.outcome.findings) {
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

/// JUnit XML: one test case per finding, worst first; deny ⇒ failure, warn ⇒ passes with
/// system-out.
///
/// A test case's `name` is its check id, so a CI's test history lines up from run to run; the
/// message goes in the failure (or system-out) text. `classname` tells apart findings of one check
/// id: `etcdguard` plus the store URL when the finding is about a store, then ` #2`, ` #3`, … for
/// any further finding with the same classname and check id (in the gate's order, which
/// follows the order of the `--store` flags).
///
/// The suite's `timestamp` is UTC without a zone designator: the JUnit schema's
/// `ISO8601_DATETIME_PATTERN` (windyroad/JUnit-Schema, JUnit.xsd) allows none.
pub fn junit(r: &CheckReport) -> String {
    // Class names in the gate's order (stores in flag order), so that a `#2` stays with the same
    // finding whatever the severities; then worst first like every other renderer.
    let mut seen = std::collections::HashMap::<(String, &str), usize>::new();
    let mut cases: Vec<(String, &Finding)> = r
        .outcome
        .findings
        .iter()
        .map(|f| {
            let mut class = match f.details.get("store").and_then(Value::as_str) {
                Some(store) => format!("etcdguard {store}"),
                None => "etcdguard".to_string(),
            };
            let n = seen.entry((class.clone(), f.check.as_str())).or_insert(0);
            *n += 1;
            if *n > 1 {
                let _ = write!(class, " #{n}");
            }
            (class, f)
        })
        .collect();
    cases.sort_by_key(|(_, f)| std::cmp::Reverse(f.severity));
    let failures = cases
        .iter()
        .filter(|(_, f)| f.severity == Severity::Deny)
        .count();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"etcdguard\" tests=\"{}\" failures=\"{failures}\">",
        cases.len()
    );
    let _ = writeln!(
        s,
        "  <testsuite name=\"etcdguard check\" tests=\"{}\" failures=\"{failures}\" timestamp=\"{}\">",
        cases.len(),
        r.now.format("%Y-%m-%dT%H:%M:%S")
    );
    for (class, f) in cases {
        let _ = write!(
            s,
            "    <testcase classname=\"{}\" name=\"{}\"",
            xml_escape(&class),
            xml_escape(&f.check)
        );
        let body = match &f.next_step {
            Some(n) => format!("{}\nnext: {n}", f.message),
            None => f.message.clone(),
        };
        match f.severity {
            Severity::Deny => {
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
                    xml_escape(&body)
                );
            }
            Severity::Info => {
                let _ = writeln!(
                    s,
                    ">\n      <system-out>{}</system-out>\n    </testcase>",
                    xml_escape(&f.message)
                );
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
    for f in ordered(&r.outcome.findings) {
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
            cached: vec![],
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
        // Names are check ids, worst first; the message is in the failure text.
        let names: Vec<&str> = x
            .split(" name=\"")
            .skip(3) // testsuites, testsuite, then the cases
            .filter_map(|t| t.split('"').next())
            .collect();
        assert_eq!(
            names,
            ["snapshot.recent", "snapshot.valid", "etcd.healthy"],
            "{x}"
        );
        assert!(x.contains("<failure type=\"snapshot.recent\" message=\"newest restorable"));
    }

    #[test]
    fn junit_tells_apart_one_check_on_several_stores_in_gate_order() {
        let f = |check: &str, severity, store: Option<&str>| Finding {
            check: check.into(),
            severity,
            message: format!("{check} {severity:?}"),
            next_step: None,
            details: store.map_or(Value::Null, |s| json!({ "store": s })),
        };
        let findings = vec![
            f("snapshot.recent", Severity::Info, Some("s3://a/x")),
            f("control-files.present", Severity::Info, None),
            f("snapshot.recent", Severity::Deny, Some("s3://b/y")),
            f("control-files.present", Severity::Deny, None),
        ];
        let (_, facts, change) = sample();
        let o = decide(findings, Mode::Enforce);
        let x = junit(&CheckReport {
            outcome: &o,
            facts: &facts,
            change: &change,
            now: now(),
        });
        let cases: Vec<&str> = x.lines().filter(|l| l.contains("<testcase")).collect();
        assert_eq!(
            cases,
            [
                "    <testcase classname=\"etcdguard s3://b/y\" name=\"snapshot.recent\">",
                "    <testcase classname=\"etcdguard #2\" name=\"control-files.present\">",
                "    <testcase classname=\"etcdguard s3://a/x\" name=\"snapshot.recent\">",
                "    <testcase classname=\"etcdguard\" name=\"control-files.present\">",
            ],
            "{x}"
        );
    }

    #[test]
    fn json_lists_findings_worst_first_with_schema_version_and_utc_z() {
        let (o, f, c) = sample();
        let v = json(&CheckReport {
            outcome: &o,
            facts: &f,
            change: &c,
            now: now(),
        });
        assert_eq!(v["schemaVersion"], SCHEMA_VERSION);
        assert_eq!(v["now"], "2026-11-23T12:00:00Z");
        let order: Vec<_> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["severity"].as_str().unwrap())
            .collect();
        assert_eq!(order, ["deny", "warn", "info"]);
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
