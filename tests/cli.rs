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
