//! Command-line contract tests that need no external service.

mod common;

#[test]
fn bad_flags_exit_2_with_usage_on_stderr() {
    let out = common::etcdguard(&["verify", "--no-such-flag", "x"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--no-such-flag"), "{err}");
    let out = common::etcdguard(&["no-such-subcommand"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_and_version_exit_0() {
    let out = common::etcdguard(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Exit codes"));
    let out = common::etcdguard(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("etcdguard "));
}

#[test]
fn completions_for_each_shell_mention_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let out = common::etcdguard(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains("verify"), "{shell} completion lacks verify");
        assert!(
            script.contains("completions"),
            "{shell} completion lacks completions"
        );
    }
    let out = common::etcdguard(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "unknown shell is a usage error");
}

#[test]
fn man_page_is_roff() {
    let out = common::etcdguard(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        page.contains(".TH etcdguard 1"),
        "{}",
        &page[..page.len().min(200)]
    );
    assert!(page.contains("verify"));
}

/// Issue #23: `man` renders a page per subcommand; the top page refers to them.
#[test]
fn man_renders_a_page_per_subcommand() {
    let out = common::etcdguard(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    let top = String::from_utf8_lossy(&out.stdout);
    for sub in ["check", "serve", "status", "verify", "lifecycle", "policy"] {
        assert!(
            top.contains(&format!("etcdguard\\-{sub}(1)")),
            "{sub}: {top}"
        );
        let out = common::etcdguard(&["man", sub]);
        assert_eq!(out.status.code(), Some(0), "{sub}");
        let page = String::from_utf8_lossy(&out.stdout);
        assert!(
            page.contains(&format!(".TH etcdguard-{sub} 1")),
            "{sub}: {page}"
        );
    }
    let out = common::etcdguard(&["man", "policy", "lint"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(".TH etcdguard-policy-lint 1"));
    let out = common::etcdguard(&["man", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("check"));
}

/// Issue #23: `verify -` reads stdin; `verify s3://…` says to use `status`.
#[test]
fn verify_reads_stdin_and_points_urls_to_status() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let gz =
        std::fs::read(root.join(
            "samples/kops-store/backups/etcd/main/2026-11-23T08:30:00Z-000003/etcd.backup.gz",
        ))
        .unwrap();
    let mut child = Command::new(common::etcdguard_bin())
        .args(["verify", "-", "--output", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&gz).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["container"], "gzip");
    let out = common::etcdguard(&[
        "verify",
        "s3://bucket/prod/backups/etcd/main/x/etcd.backup.gz",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("etcdguard status --store s3://bucket/prod/backups/etcd/main/x"),
        "{err}"
    );
}

/// Issue #23: the deployment sets the log variable the binary reads.
#[test]
fn deployment_sets_the_log_variable_the_binary_reads() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let d = std::fs::read_to_string(root.join("deploy/deployment.yaml")).unwrap();
    assert!(d.contains("name: ETCDGUARD_LOG"), "{d}");
    assert!(!d.contains("RUST_LOG"));
}

/// Issue #23: `--layout` values, placeholder names and the S3 flags are the same in every
/// subcommand that has them.
#[test]
fn layout_names_placeholders_and_s3_flags_agree_across_subcommands() {
    let help = |sub: &str| {
        let out = common::etcdguard(&[sub, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{sub}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let layouts = [
        "etcd-manager",
        "openshift",
        "k3s",
        "csm",
        "etcd-operator",
        "gardener",
        "talos-backup",
        "plain",
    ];
    for sub in ["status", "check", "serve", "lifecycle"] {
        let h = help(sub);
        for flag in [
            "--store <URL>",
            "--layout <NAME>",
            "--s3-endpoint <URL>",
            "--s3-path-style",
            "--s3-region <REGION>",
            "--s3-timeout <DURATION>",
            "--max-age <DURATION>",
        ] {
            assert!(h.contains(flag), "{sub} --help lacks {flag}:\n{h}");
        }
        if sub != "serve" {
            assert!(h.contains("--now <RFC3339>"), "{sub}:\n{h}");
        }
        for l in layouts {
            assert!(h.contains(l), "{sub} --help lacks layout {l}");
        }
    }
}
