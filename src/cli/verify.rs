//! `etcdguard verify <PATH> [--output text|json] [--skip-hash-check]` (issue #2).

use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Snapshot file: plain, gzip, zip, tar.gz or zstd (detected by content).
    pub path: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub output: super::common::Output,
    /// Accept a snapshot without a sha256 trailer (a raw copy of member/snap/db).
    #[arg(long)]
    pub skip_hash_check: bool,
}

pub fn run(_args: Args) -> u8 {
    eprintln!("etcdguard verify: not implemented yet");
    super::EXIT_USAGE
}
