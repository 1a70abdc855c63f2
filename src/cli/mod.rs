//! The `etcdguard` command line. Each subcommand lives in its own module with an `Args` struct
//! and a `run` function returning the process exit code.
//!
//! Exit codes are a contract shared by every subcommand:
//! - [`EXIT_OK`] (0): the thing checked is fine (valid snapshot, readable store, proceed).
//! - [`EXIT_FAIL`] (1): the thing checked is not fine (invalid snapshot, refuse).
//! - [`EXIT_USAGE`] (2): usage, configuration or I/O error: nothing could be decided. With
//!   `--output json`, stdout carries `{"error": …, "schemaVersion": 1}`.
//!
//! A closed stdout (the reader left: `| head -1`, `| grep -q`) changes nothing: output is dropped
//! quietly and the code is the one above ([`common::write_stdout`]); no subcommand panics on it.
//! README "Exit codes" is the one table of these codes.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

pub mod check;
pub mod common;
pub mod completions;
pub mod etcd_args;
pub mod facts;
pub mod inspect;
pub mod lifecycle;
pub mod policy;
pub mod serve;
pub mod status;
pub mod verify;

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAIL: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "etcdguard",
    version,
    about = "Pre-flight safety gate for etcd-backed Kubernetes clusters",
    long_about = "etcdguard refuses or warns on upgrades, cluster updates and S3 lifecycle-rule \
changes when no recent, restorable etcd snapshot exists, when etcd-manager control files are \
missing, or when a change would seed a new, empty etcd cluster.\n\n\
Exit codes: 0 ok/proceed, 1 invalid/refuse, 2 usage, configuration or I/O error \
(with --output json, stdout then carries {\"error\": ...}). A closed stdout does not change \
the code."
)]
pub struct Cli {
    /// Log filter for diagnostics on stderr (tracing EnvFilter syntax, e.g. `info`, `etcdguard=debug`).
    #[arg(long, global = true, env = "ETCDGUARD_LOG", default_value = "warn")]
    pub log: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Prove that an etcd v3 snapshot file is restorable (sha256 trailer, bbolt structure, revision).
    Verify(verify::Args),
    /// Gate a change: refuse without a recent restorable backup, sound control files and a consistent live etcd.
    Check(check::Args),
    /// Run the validating admission webhook.
    Serve(serve::Args),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions(completions::Args),
    /// Print the man page (roff) on stdout.
    Man(completions::ManArgs),
    /// Judge S3 lifecycle rules against a backup store: would they delete control files, expire or archive snapshots?
    Lifecycle(lifecycle::Args),
    /// Lint gate policies and explain which policies match a change.
    Policy(policy::Args),
    /// Show the newest backup in a store, whether it is restorable, and the etcd-manager control files.
    Status(status::Args),
    /// Count the Kubernetes objects of a snapshot per resource and namespace, without restoring it; --diff compares two.
    Inspect(inspect::Args),
}

/// Whether the command line asks for `--output json` (looked at when clap refused the command
/// line, so that the usage error reaches a JSON reader as JSON too).
fn wants_json(args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    let args: Vec<_> = args.collect();
    args.iter().any(|a| a == "--output=json")
        || args
            .windows(2)
            .any(|w| w[0] == "--output" && w[1] == "json")
}

/// Entry point used by `src/main.rs`.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout with exit 0, usage errors to stderr with exit 2.
            // A closed stdout only makes `print` fail, which changes nothing.
            let code = if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
            let _ = e.print();
            if e.use_stderr() && wants_json(std::env::args_os().skip(1)) {
                let msg = e.render().to_string();
                let first = msg.lines().next().unwrap_or_default();
                common::print_error_json(first.trim_start_matches("error: "));
            }
            return ExitCode::from(code);
        }
    };
    common::init_tracing(&cli.log);
    let code = match cli.command {
        Command::Verify(args) => verify::run(args),
        Command::Check(args) => check::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => completions::run_man(args),
        Command::Lifecycle(args) => lifecycle::run(args),
        Command::Policy(args) => policy::run(args),
        Command::Status(args) => status::run(args),
        Command::Inspect(args) => inspect::run(args),
    };
    ExitCode::from(code)
}
