//! `etcdguard verify <PATH> [--output text|json] [--skip-hash-check]` (issue #2).

use super::common::opt;
use crate::snapshot::age::AgeIdentities;
use crate::snapshot::{self, SnapshotReport, VerifyOptions};
use std::io::IsTerminal;
use std::path::PathBuf;

/// Inputs at least this large get a progress bar (when stderr is a terminal).
const PROGRESS_MIN_BYTES: u64 = 64 << 20;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Snapshot file: plain, gzip, zip, tar.gz or zstd (detected by content); `-` reads stdin.
    /// A backup in a store (`s3://…`) is verified by `etcdguard status --store URL`.
    pub path: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub output: super::common::Format,
    /// Accept a snapshot without a sha256 trailer (a raw copy of member/snap/db).
    #[arg(long)]
    pub skip_hash_check: bool,
    /// age identity file (`age-keygen` output) to decrypt age-encrypted snapshots with
    /// (talos-backup `*.age`); without it their validity is unknown.
    #[arg(long, value_name = "FILE", env = "ETCDGUARD_AGE_IDENTITY", value_parser = super::common::parse_age_identity)]
    pub age_identity: Option<AgeIdentities>,
}

/// Verify one snapshot file and print the report. Exit 0 valid, 1 invalid, 2 usage or I/O error
/// or an age-encrypted snapshot that could not be decrypted (validity unknown).
pub fn run(args: Args) -> u8 {
    use super::common::{usage_error, Format};
    let json = args.output == Format::Json;
    let path = args.path.display().to_string();
    let name = if path == "-" {
        "stdin".to_string()
    } else {
        path
    };
    if name.contains("://") {
        let hint = format!(
            "{name} is a URL: verify reads a file or stdin (-); for a backup store run \
             `etcdguard status --store {}`",
            name.rsplit_once('/').map_or(name.as_str(), |(dir, _)| dir)
        );
        return usage_error("verify", &hint, json);
    }
    let opts = VerifyOptions {
        skip_hash_check: args.skip_hash_check,
        age: args.age_identity.clone(),
        ..VerifyOptions::default()
    };
    let result = if name == "stdin" && args.path.as_os_str() == "-" {
        snapshot::verify_reader(
            std::io::BufReader::with_capacity(1 << 20, std::io::stdin()),
            "stdin",
            &opts,
        )
    } else {
        let file = match std::fs::File::open(&args.path) {
            Ok(f) => f,
            Err(e) => return usage_error("verify", &format!("cannot open {name}: {e}"), json),
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len >= PROGRESS_MIN_BYTES && std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new(len).with_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_message("verifying");
            let r = snapshot::verify_reader(bar.wrap_read(file), &name, &opts);
            bar.finish_and_clear();
            r
        } else {
            snapshot::verify_reader(
                std::io::BufReader::with_capacity(1 << 20, file),
                &name,
                &opts,
            )
        }
    };
    let report = match result {
        Ok(r) => r,
        Err(e) => return usage_error("verify", &e.to_string(), json),
    };
    let written = match args.output {
        Format::Json => super::common::print_json(&report),
        Format::Text => super::common::write_stdout(render_text(&name, &report)),
    };
    if let Err(e) = written {
        return usage_error("verify", &e, false);
    }
    if report.valid {
        super::EXIT_OK
    } else if report.validity_unknown() {
        super::EXIT_USAGE
    } else {
        super::EXIT_FAIL
    }
}

/// A short table readable at a glance, then the problems.
pub fn render_text(name: &str, r: &SnapshotReport) -> String {
    let sha = match r.sha256 {
        snapshot::Sha256Status::Verified => "verified",
        snapshot::Sha256Status::Missing => "missing",
        snapshot::Sha256Status::Mismatch => "MISMATCH",
    };
    let rows: Vec<(&str, String)> = vec![
        ("snapshot", name.to_string()),
        (
            "result",
            if r.valid {
                "VALID".into()
            } else if r.validity_unknown() {
                "UNKNOWN (age-encrypted, not decrypted)".into()
            } else {
                "INVALID".into()
            },
        ),
        (
            "container",
            format!("{:?}", r.container)
                .to_lowercase()
                .replace("targz", "tar.gz"),
        ),
        ("sha256", sha.into()),
        (
            "hash",
            r.hash
                .map_or_else(|| "-".into(), |h| format!("{h:x} ({h})")),
        ),
        ("revision", opt(r.revision.as_ref())),
        ("total keys", opt(r.total_key.as_ref())),
        ("live keys", opt(r.live_keys.as_ref())),
        ("total size", opt(r.total_size.as_ref())),
        ("version", opt(r.version.as_ref())),
        ("cluster version", opt(r.cluster_version.as_ref())),
        (
            "compacted",
            format!(
                "{} (scheduled {})",
                opt(r.finished_compact_revision.as_ref()),
                opt(r.scheduled_compact_revision.as_ref())
            ),
        ),
        ("consistent index", opt(r.consistent_index.as_ref())),
        (
            "members",
            if r.members.is_empty() {
                "-".into()
            } else if r.member_ids.len() == r.members.len() {
                r.members
                    .iter()
                    .zip(&r.member_ids)
                    .map(|(name, id)| format!("{name} ({id})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            } else {
                r.members.join(", ")
            },
        ),
    ];
    let mut out = String::new();
    for (k, v) in rows {
        out.push_str(&format!("{k:<17} {v}\n"));
    }
    for p in &r.problems {
        out.push_str(&format!("problem: {p}\n"));
    }
    out
}
