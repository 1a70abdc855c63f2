//! The fact flags shared by `check` and `serve`, turned into [`crate::facts::FactOptions`].

use super::common::StoreOpts;
use super::etcd_args::EtcdArgs;
use crate::facts::FactOptions;
use std::time::Duration;

/// The fact flags shared by `check` and `serve`, so one set of facts serves both.
#[derive(Debug, Clone, clap::Args)]
pub struct FactArgs {
    /// Backup store (repeatable): `s3://BUCKET/PREFIX`, `file:///DIR` or a directory path.
    #[arg(
        long = "store",
        value_name = "URL",
        env = "ETCDGUARD_STORE",
        value_delimiter = ','
    )]
    pub stores: Vec<String>,
    #[command(flatten)]
    pub store: StoreOpts,
    /// Maximum age of the newest restorable backup (tightens a policy's; default 3h).
    #[arg(long, value_name = "DURATION", value_parser = parse_max_age)]
    pub max_age: Option<Duration>,
    #[command(flatten)]
    pub etcd: EtcdArgs,
    /// Gate policies: a YAML file or a directory of them (default: the embedded policies/).
    #[arg(long, value_name = "FILE|DIR", env = "ETCDGUARD_POLICY")]
    pub policy: Option<std::path::PathBuf>,
    /// kops `backupRetentionDays` the lifecycle analysis compares rules with.
    #[arg(long, value_name = "DAYS", default_value_t = 90)]
    pub retention_days: u32,
    /// Expected interval between backups (etcd-manager: 15m), for the lifecycle analysis.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = humantime::parse_duration)]
    pub backup_interval: Duration,
    /// Stores read at once (listing, control files, verification); at most two snapshots are
    /// verified at a time whatever this is.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub store_concurrency: u32,
}

impl FactArgs {
    /// The options the fact readers take.
    pub fn options(&self) -> FactOptions {
        FactOptions {
            stores: self.stores.clone(),
            s3: self.store.s3_options(),
            inspect: self.store.inspect_options(chrono::Utc::now()),
            etcd: self.etcd.is_set().then(|| self.etcd.to_options()),
            retention_days: self.retention_days,
            backup_interval: self.backup_interval,
            store_concurrency: self.store_concurrency as usize,
        }
    }
}

/// `--max-age`: a positive humantime duration.
pub fn parse_max_age(s: &str) -> Result<Duration, String> {
    crate::policy::MaxAge::parse(s)
        .map(|m| m.0)
        .map_err(|e| e.to_string())
}
