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
    /// File of backup stores, one URL per line (`#` starts a comment, blank lines are
    /// skipped), read in addition to `--store`: hundreds of clusters from one list.
    #[arg(long, value_name = "FILE", env = "ETCDGUARD_STORES_FILE")]
    pub stores_file: Option<std::path::PathBuf>,
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
    /// Stores read at once (listing, control files, verification); one snapshot is verified at
    /// a time whatever this is (two in `serve`).
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub store_concurrency: u32,
}

impl FactArgs {
    /// Add the stores of `--stores-file` to `--store` (each store once, in order).
    pub fn read_stores_file(&mut self) -> Result<(), String> {
        add_stores_file(&mut self.stores, self.stores_file.as_deref())
    }

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

/// Add the stores of `--stores-file FILE` to `stores` (each store once, in order). An
/// unreadable file or a bad line is an error naming the file and line.
pub fn add_stores_file(
    stores: &mut Vec<String>,
    path: Option<&std::path::Path>,
) -> Result<(), String> {
    let Some(path) = path else {
        return Ok(());
    };
    let name = format!("--stores-file {}", path.display());
    let bytes = std::fs::read(path).map_err(|e| format!("{name}: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{name}: not UTF-8 text"))?;
    for url in parse_stores_file(&text, &name)? {
        if !stores.contains(&url) {
            stores.push(url);
        }
    }
    Ok(())
}

/// The stores of a stores file (`name` labels errors): one URL per line; `#` at the start of a
/// line or after a blank starts a comment; blank lines are skipped. A file without any store
/// is an error (an empty shard would watch nothing).
pub fn parse_stores_file(text: &str, name: &str) -> Result<Vec<String>, String> {
    let mut stores = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = match line.find('#') {
            Some(i) if line[..i].trim().is_empty() || line[..i].ends_with(char::is_whitespace) => {
                &line[..i]
            }
            _ => line,
        }
        .trim();
        if line.is_empty() {
            continue;
        }
        let at = format!("{name} line {}", n + 1);
        if line.contains(char::is_whitespace) {
            return Err(format!(
                "{at}: expected one store URL per line, found {line:?}"
            ));
        }
        crate::store::StoreUrl::parse(line).map_err(|e| format!("{at}: {e}"))?;
        stores.push(line.to_string());
    }
    if stores.is_empty() {
        return Err(format!("{name}: no store listed"));
    }
    Ok(stores)
}

#[cfg(test)]
mod tests {
    use super::parse_stores_file;

    #[test]
    fn stores_file_lines_comments_and_blanks() {
        let text =
            "# production\n\ns3://b/prod/backups/etcd/main  # prod-1\n  /srv/copy\r\ns3://b/x#y\n";
        assert_eq!(
            parse_stores_file(text, "f").unwrap(),
            ["s3://b/prod/backups/etcd/main", "/srv/copy", "s3://b/x#y"]
        );
    }

    #[test]
    fn stores_file_errors_name_file_and_line() {
        let e = parse_stores_file("s3://b/a\ngs://b/c\n", "--stores-file s.txt").unwrap_err();
        assert!(
            e.starts_with("--stores-file s.txt line 2: invalid store location \"gs://b/c\""),
            "{e}"
        );
        let e = parse_stores_file("s3://b/a s3://b/c\n", "f").unwrap_err();
        assert_eq!(
            e,
            "f line 1: expected one store URL per line, found \"s3://b/a s3://b/c\""
        );
        let e = parse_stores_file("# nothing\n\n", "f").unwrap_err();
        assert_eq!(e, "f: no store listed");
    }
}
