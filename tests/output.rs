//! Output contract of every subcommand (issue #19): no panic on a closed stdout (the exit code
//! stays the documented one), `{"error": …}` JSON on exit 2, `schemaVersion` and RFC 3339 `Z`
//! times in every JSON document, findings worst first in every format, JUnit test cases named
//! by check id, and `--help` listing only the output formats a subcommand supports.
//!
//! Inputs: the sample kops store (`samples/kops-store`, backups of 2026-11-23 08:00-08:30 UTC)
//! and the fixtures under `tests/fixtures`.

mod common;

use common::serve::Serve;
use serde_json::Value;
use std::process::{Command, Output, Stdio};

const STORE: &str = "samples/kops-store/backups/etcd/main";
const SNAPSHOT: &str =
    "samples/kops-store/backups/etcd/main/2026-11-23T08:30:00Z-000003/etcd.backup.gz";
/// 1 h 30 m after the newest backup: `check` proceeds.
const FRESH: &str = "2026-11-23T10:00:00Z";
/// A day after the newest backup: `check` refuses (`snapshot.recent`).
const STALE: &str = "2026-11-24T10:00:00Z";
const S3_STORE: &str = "s3://kops-state/prod.example.com/backups/etcd/main";
const RULES: &str = "tests/fixtures/lifecycle/kops-16416.json";
const KCP_OLD: &str = "tests/fixtures/objects/kcp-old.yaml";
const KCP_NEW: &str = "tests/fixtures/objects/kcp-new.yaml";

fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(common::etcdguard_bin());
    c.args(args)
        .env("ETCDGUARD_LOG", "warn")
        .env_remove("ETCDGUARD_STORE")
        .stdin(Stdio::null());
    c
}

/// Run with stdout a pipe whose read end is closed before etcdguard starts: its first write
/// fails with EPIPE, as under `| true` or after `| head -1` has read its line.
fn run_closed_stdout(args: &[&str]) -> Output {
    let (read, write) = rustix::pipe::pipe().expect("pipe");
    drop(read);
    cmd(args)
        .stdout(Stdio::from(write))
        .output()
        .expect("run etcdguard")
}

/// Run with stdout and stderr one pipe whose read end is closed (`2>&1 | head -1` once head
/// has its line); returns the exit code.
fn run_closed_stdout_and_stderr(args: &[&str]) -> Option<i32> {
    let (read, write) = rustix::pipe::pipe().expect("pipe");
    drop(read);
    let err = write.try_clone().expect("dup");
    cmd(args)
        .stdout(Stdio::from(write))
        .stderr(Stdio::from(err))
        .status()
        .expect("run etcdguard")
        .code()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `args` with `--output json`, parsed; panics with stderr when stdout is not JSON.
fn json_of(args: &[&str]) -> (Option<i32>, Value) {
    let out = common::etcdguard(args);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: stdout is not JSON ({e}): {}\nstderr: {}",
            stdout(&out),
            stderr(&out)
        )
    });
    (out.status.code(), v)
}

/// Every subcommand (and every output format) with the exit code the README table documents.
fn every_subcommand() -> Vec<(Vec<&'static str>, i32)> {
    let check = |extra: &[&'static str]| {
        let mut a = vec!["check", "--store", STORE];
        a.extend_from_slice(extra);
        a
    };
    let mut cases = vec![
        (vec!["--help"], 0),
        (vec!["--version"], 0),
        (vec!["check", "--help"], 0),
        (vec!["verify", SNAPSHOT], 0),
        (vec!["verify", SNAPSHOT, "--output", "json"], 0),
        (vec!["verify", "no/such/file", "--output", "json"], 2),
        (vec!["inspect", SNAPSHOT], 0),
        (vec!["inspect", SNAPSHOT, "--output", "json"], 0),
        (vec!["status", "--store", STORE, "--now", FRESH], 0),
        (
            vec![
                "status", "--store", STORE, "--now", FRESH, "--output", "json",
            ],
            0,
        ),
        (
            vec!["status", "--store", "no/such/dir", "--output", "json"],
            2,
        ),
        (check(&["--now", STALE, "--output", "json"]), 1),
        (
            check(&["--output", "json", "--policy", "no/such/policy"]),
            2,
        ),
        (check(&["--output", "json", "--no-such-flag"]), 2),
        (
            vec![
                "lifecycle",
                "--store",
                S3_STORE,
                "--rules",
                RULES,
                "--now",
                FRESH,
            ],
            1,
        ),
        (
            vec![
                "lifecycle",
                "--store",
                S3_STORE,
                "--rules",
                RULES,
                "--now",
                FRESH,
                "--output",
                "json",
            ],
            1,
        ),
        (
            vec!["lifecycle", "--store", "gs://x", "--output", "json"],
            2,
        ),
        (vec!["policy", "lint"], 0),
        (vec!["policy", "lint", "--output", "json"], 0),
        (
            vec![
                "policy",
                "lint",
                "tests/fixtures/policy/invalid",
                "--output",
                "json",
            ],
            1,
        ),
        (
            vec![
                "policy",
                "explain",
                "--object-old",
                KCP_OLD,
                "--object-new",
                KCP_NEW,
            ],
            0,
        ),
        (
            vec![
                "policy",
                "explain",
                "--object-old",
                KCP_OLD,
                "--object-new",
                KCP_NEW,
                "--output",
                "json",
            ],
            0,
        ),
        (vec!["man"], 0),
        (vec!["serve", "--no-such-flag"], 2),
    ];
    for output in ["text", "json", "junit", "github"] {
        cases.push((check(&["--now", FRESH, "--output", output]), 0));
    }
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        cases.push((vec!["completions", shell], 0));
    }
    cases
}

#[test]
fn a_closed_stdout_ends_every_subcommand_quietly_with_its_documented_code() {
    for (args, code) in every_subcommand() {
        let open = common::etcdguard(&args);
        assert_eq!(
            open.status.code(),
            Some(code),
            "{args:?} with stdout open: {}",
            stderr(&open)
        );
        let closed = run_closed_stdout(&args);
        let err = stderr(&closed);
        assert_eq!(
            closed.status.code(),
            Some(code),
            "{args:?} with stdout closed: {err}"
        );
        // Quietly: no panic and no complaint about stdout.
        assert!(
            !err.contains("panicked")
                && !err.to_lowercase().contains("broken pipe")
                && !err.contains("stdout"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_closed_stderr_as_well_changes_no_exit_code() {
    for (args, code) in every_subcommand() {
        // A panic would be exit 101 (its message cannot be written).
        assert_eq!(run_closed_stdout_and_stderr(&args), Some(code), "{args:?}");
    }
}

#[test]
fn serve_runs_and_stops_cleanly_with_a_closed_stdout() {
    let mut s = Serve::start(&["--store", STORE], |c| {
        let (read, write) = rustix::pipe::pipe().expect("pipe");
        drop(read);
        c.stdout(Stdio::from(write));
    });
    let status = s.stop();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", s.stderr());
    assert!(!s.stderr().contains("panicked"), "{}", s.stderr());
}

#[test]
fn exit_2_with_output_json_prints_an_error_object_on_stdout_in_every_subcommand() {
    let failing: [&[&str]; 10] = [
        &["verify", "no/such/file", "--output", "json"],
        &["inspect", "no/such/file", "--output", "json"],
        &["inspect", "--store", "no/such/dir", "--output", "json"],
        &["status", "--store", "no/such/dir", "--output", "json"],
        &["check", "--output", "json", "--policy", "no/such/policy"],
        &["check", "--output", "json", "--max-age", "soon"],
        &[
            "lifecycle",
            "--store",
            "gs://x",
            "--rules",
            RULES,
            "--output",
            "json",
        ],
        &["policy", "lint", "no/such/policies", "--output", "json"],
        &[
            "policy",
            "explain",
            "--object-new",
            "no/such.yaml",
            "--output",
            "json",
        ],
        &["verify", "--output=json"],
    ];
    for args in failing {
        let (code, v) = json_of(args);
        assert_eq!(code, Some(2), "{args:?}");
        let error = v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{args:?}: {v}"));
        assert!(!error.is_empty(), "{args:?}");
        assert_eq!(v["schemaVersion"], 1, "{args:?}: {v}");
        // Text errors still go to stderr.
        let out = common::etcdguard(args);
        assert!(stderr(&out).contains(error), "{args:?}: {}", stderr(&out));
    }
    // Without --output json, stdout stays empty.
    let out = common::etcdguard(&["check", "--policy", "no/such/policy"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out), "");
}

/// Every string in `v` that is an RFC 3339 time, with its JSON path.
fn times(v: &Value, path: &str, found: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => {
            found.push((path.to_string(), s.clone()));
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                times(x, &format!("{path}[{i}]"), found);
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                times(x, &format!("{path}.{k}"), found);
            }
        }
        _ => {}
    }
}

#[test]
fn every_json_document_has_a_schema_version_and_utc_z_times() {
    let documents: [&[&str]; 8] = [
        &["verify", SNAPSHOT, "--output", "json"],
        &["inspect", SNAPSHOT, "--output", "json"],
        &[
            "status", "--store", STORE, "--now", FRESH, "--output", "json",
        ],
        &[
            "check", "--store", STORE, "--now", STALE, "--output", "json",
        ],
        &[
            "check",
            "--store",
            STORE,
            "--now",
            FRESH,
            "--lifecycle",
            RULES,
            "--output",
            "json",
        ],
        &[
            "lifecycle",
            "--store",
            S3_STORE,
            "--rules",
            RULES,
            "--now",
            FRESH,
            "--output",
            "json",
        ],
        &["policy", "lint", "--output", "json"],
        &[
            "policy",
            "explain",
            "--object-old",
            KCP_OLD,
            "--object-new",
            KCP_NEW,
            "--now",
            FRESH,
            "--output",
            "json",
        ],
    ];
    let mut all = Vec::new();
    for args in documents {
        let (_, v) = json_of(args);
        assert_eq!(v["schemaVersion"], 1, "{args:?}");
        let mut found = Vec::new();
        times(&v, "", &mut found);
        for (path, t) in &found {
            assert!(t.ends_with('Z'), "{args:?}: {path} = {t} is not UTC with Z");
        }
        all.extend(found);
    }
    // The walk did see times: `now`, backup times, finding details, lifecycle due dates.
    for path in [
        ".now",
        ".findings[0].details.time",
        ".newest.time",
        ".findings[1].when",
    ] {
        assert!(
            all.iter().any(|(p, _)| p == path),
            "no time at {path}: {all:?}"
        );
    }
}

/// `(severity, check id)` of each finding line of `check`'s text output, in order.
fn text_findings(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let l = l.strip_prefix("  ")?;
            let (tag, rest) = l.split_at_checked(4)?;
            let sev = match tag {
                "DENY" => "deny",
                "WARN" => "warn",
                "ok  " => "info",
                _ => return None,
            };
            Some((sev.to_string(), rest.split_whitespace().next()?.to_string()))
        })
        .collect()
}

#[test]
fn json_findings_are_worst_first_in_the_text_order() {
    // A refusal (stale backup, lifecycle rules that delete the control files) with info findings.
    let base = [
        "check",
        "--store",
        STORE,
        "--now",
        STALE,
        "--lifecycle",
        RULES,
        "--lifecycle-prefix",
        "s3://kops-state/prod.example.com/backups/etcd/main",
    ];
    let (code, v) = json_of(&[&base[..], &["--output", "json"]].concat());
    assert_eq!(code, Some(1));
    let json: Vec<(String, String)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["severity"].as_str().unwrap().to_string(),
                f["check"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let rank = |s: &str| match s {
        "deny" => 0,
        "warn" => 1,
        _ => 2,
    };
    assert!(
        json.windows(2).all(|w| rank(&w[0].0) <= rank(&w[1].0)),
        "not worst first: {json:?}"
    );
    assert!(json.iter().any(|f| f.0 == "deny") && json.iter().any(|f| f.0 == "info"));
    let text = stdout(&common::etcdguard(
        &[&base[..], &["--output", "text"]].concat(),
    ));
    assert_eq!(text_findings(&text), json, "{text}");
}

/// `(classname, name)` of each JUnit test case.
fn junit_cases(xml: &str) -> Vec<(String, String)> {
    let attr = |line: &str, name: &str| -> String {
        let start = line.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        line[start..].split('"').next().unwrap().to_string()
    };
    xml.lines()
        .filter(|l| l.trim_start().starts_with("<testcase"))
        .map(|l| (attr(l, "classname"), attr(l, "name")))
        .collect()
}

#[test]
fn junit_test_cases_are_named_by_check_id_and_stable_between_runs() {
    let run = |now: &str| {
        let out =
            common::etcdguard(&["check", "--store", STORE, "--now", now, "--output", "junit"]);
        stdout(&out)
    };
    let (fresh, stale) = (run(FRESH), run(STALE));
    let ids = [
        "store.reachable",
        "snapshot.recent",
        "snapshot.valid",
        "snapshot.continuity",
        "snapshot.version-fit",
        "control-files.present",
        "control-files.pending-command",
        "lifecycle.deletes-control-files",
        "etcd.healthy",
    ];
    let mut a = junit_cases(&fresh);
    let mut b = junit_cases(&stale);
    for (_, name) in a.iter().chain(&b) {
        assert!(ids.contains(&name.as_str()), "{name} is not a check id");
    }
    // The same test cases whether the check passes or fails (the order is worst first).
    a.sort();
    b.sort();
    assert_eq!(a, b, "{fresh}\n{stale}");
    // The message is in the failure text.
    assert!(
        stale.contains("<failure type=\"snapshot.recent\" message=\"newest restorable backup"),
        "{stale}"
    );
    assert!(!fresh.contains("<failure"), "{fresh}");
}

#[test]
fn help_lists_only_the_output_formats_a_subcommand_supports() {
    let only_text_json: [&[&str]; 6] = [
        &["verify", "--help"],
        &["inspect", "--help"],
        &["status", "--help"],
        &["lifecycle", "--help"],
        &["policy", "lint", "--help"],
        &["policy", "explain", "--help"],
    ];
    for args in only_text_json {
        let help = stdout(&common::etcdguard(args));
        assert!(
            help.contains("[possible values: text, json]"),
            "{args:?}: {help}"
        );
        assert!(
            !help.contains("junit") && !help.contains("github"),
            "{args:?}: {help}"
        );
    }
    let help = stdout(&common::etcdguard(&["check", "--help"]));
    assert!(
        help.contains("[possible values: text, json, junit, github]"),
        "{help}"
    );
    // An unsupported format is a usage error from the parser, before any work.
    let out = common::etcdguard(&["verify", SNAPSHOT, "--output", "junit"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("junit"), "{}", stderr(&out));
}
