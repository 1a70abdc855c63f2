//! Pieces shared by several subcommands.

/// Output format of `check`, the one subcommand with every format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
    Junit,
    Github,
}

/// Output format of the subcommands that print text or JSON (`verify`, `status`), so their
/// `--help` lists only these two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Write a subcommand's output to stdout, all of it, and flush.
///
/// A reader that has gone away (`| head -1`, `| grep -q`, `| true`) is not an error: the write
/// stops quietly and the caller exits with the code it would have had anyway (README "Exit
/// codes"). Any other write error is returned, for exit 2. Nothing here panics, unlike
/// `print!`, which panics on a closed stdout.
pub fn write_stdout(text: impl AsRef<[u8]>) -> Result<(), String> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_ref()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            tracing::debug!("stdout closed by its reader; output dropped");
            Ok(())
        }
        Err(e) => Err(format!("cannot write to stdout: {e}")),
    }
}

/// Write one line to stderr. A closed stderr (`2>&1 | head -1`) is ignored, where `eprintln!`
/// would panic.
pub fn print_stderr(line: std::fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// A JSON document as printed: `schemaVersion` added at the top level, pretty, one final newline.
pub fn json_text<T: serde::Serialize>(doc: &T) -> Result<String, String> {
    let v = serde_json::to_value(doc).map_err(|e| format!("cannot render JSON: {e}"))?;
    let s = serde_json::to_string_pretty(&crate::report::versioned(v))
        .map_err(|e| format!("cannot render JSON: {e}"))?;
    Ok(s + "\n")
}

/// Print `doc` as JSON ([`json_text`]) on stdout.
pub fn print_json<T: serde::Serialize>(doc: &T) -> Result<(), String> {
    write_stdout(json_text(doc)?)
}

/// Exit 2 (usage, configuration or I/O error) of subcommand `cmd`: `etcdguard CMD: MSG` on
/// stderr and, when the output format is JSON, `{"error": MSG, "schemaVersion": 1}` on stdout
/// (issue #19: CI reading stdout as JSON always gets JSON).
pub fn usage_error(cmd: &str, msg: &str, json: bool) -> u8 {
    print_stderr(format_args!("etcdguard {cmd}: {msg}"));
    if json {
        print_error_json(msg);
    }
    super::EXIT_USAGE
}

/// `{"error": MSG, "schemaVersion": 1}` on stdout (a failure to write it is already an exit 2).
pub fn print_error_json(msg: &str) {
    if let Ok(text) = serde_json::to_string_pretty(&crate::report::error_doc(msg)) {
        let _ = write_stdout(text + "\n");
    }
}

/// Install a tracing subscriber writing to stderr (colour only on a terminal). A filter that
/// does not parse falls back to `warn`, with a note saying so.
///
/// rustls logs some client mistakes at `warn` once per connection (e.g. an IP address sent as
/// SNI, which load generators and some probes do); a client must not be able to flood the log,
/// so rustls is held at `error` unless the filter names it.
///
/// aws-config's region and credential chains log every provider that found nothing at `warn`,
/// with the whole error as `Debug` (4-8 lines of IMDS dumps on a machine without AWS
/// credentials, issue #19); the S3 error that follows says it in one line. So at the default
/// level aws-config is held at `error` too, unless the filter names it.
pub fn init_tracing(filter: &str) {
    use std::io::IsTerminal;
    let mut directives = filter.to_string();
    if !filter.contains("rustls") {
        directives.push_str(",rustls=error");
    }
    if !filter.contains("aws")
        && !filter.contains("info")
        && !filter.contains("debug")
        && !filter.contains("trace")
    {
        directives.push_str(",aws_config=error");
    }
    let (env_filter, bad) = match tracing_subscriber::EnvFilter::try_new(&directives) {
        Ok(f) => (f, None),
        Err(e) => (
            tracing_subscriber::EnvFilter::new("warn,rustls=error,aws_config=error"),
            Some(e),
        ),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
    if let Some(e) = bad {
        tracing::warn!(filter, error = %e, "log filter not understood; using `warn`");
    }
}

/// The stores of `status` (`#[command(flatten)]`) and how they are read.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Backup store (repeatable): `s3://BUCKET/PREFIX`, `file:///DIR` or a directory path.
    #[arg(
        long = "store",
        env = "ETCDGUARD_STORE",
        value_name = "URL",
        value_delimiter = ',',
        required_unless_present = "stores_file"
    )]
    pub stores: Vec<String>,
    /// File of backup stores, one URL per line (`#` starts a comment, blank lines are
    /// skipped), read in addition to `--store`.
    #[arg(long, value_name = "FILE", env = "ETCDGUARD_STORES_FILE")]
    pub stores_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub opts: StoreOpts,
}

/// How stores are read (everything but the location), shared by `status` (one `--store`) and
/// `check`/`serve` (repeatable `--store`).
#[derive(Debug, Clone, clap::Args)]
pub struct StoreOpts {
    /// Backup layout (default: auto-detect).
    #[arg(long, value_enum, value_name = "NAME")]
    pub layout: Option<crate::store::Layout>,
    #[command(flatten)]
    pub s3: S3Args,
    /// Overall deadline of everything a run reads (stores: listing, control files,
    /// verification; for `check` also live etcd and lifecycle rules). `--s3-timeout` never
    /// extends it.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    pub deadline: std::time::Duration,
    /// Verify at most this many backups when walking back from an invalid newest one.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_walk_back: u32,
    /// First listing window for etcd-manager stores (widened only when it holds no backup).
    #[arg(long, value_name = "DURATION", default_value = "48h", value_parser = humantime::parse_duration)]
    pub window: std::time::Duration,
    /// age identity file (`age-keygen` output, `AGE-SECRET-KEY-1…` lines) to decrypt
    /// age-encrypted backups with (talos-backup `*.age`); without it their validity is unknown
    /// and the gate cannot count them as restorable.
    #[arg(long, value_name = "FILE", env = "ETCDGUARD_AGE_IDENTITY", value_parser = parse_age_identity)]
    pub age_identity: Option<crate::snapshot::age::AgeIdentities>,
    /// When a store holds several backup series (sub-folders each with its own backups, e.g. a
    /// CSM bucket's `bare-metal/` and one folder per etcd-operator cluster): judge only these
    /// (repeatable; `.` is the keys directly under the store). Default: every series.
    #[arg(long = "series", value_name = "NAME", value_delimiter = ',')]
    pub series: Vec<String>,
}

/// How S3 is reached: the same flags for every subcommand that reads S3.
#[derive(Debug, Clone, clap::Args)]
pub struct S3Args {
    /// S3 endpoint for S3-compatible servers (Ceph RGW, MinIO, moto). `AWS_ENDPOINT_URL` is
    /// honoured when unset.
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// Use path-style S3 addressing (`http://host/bucket/key`), as most S3-compatible servers need.
    #[arg(long)]
    pub s3_path_style: bool,
    /// S3 region (default: the AWS chain, else us-east-1).
    #[arg(long, value_name = "REGION")]
    pub s3_region: Option<String>,
    /// Timeout of one S3 operation including retries (attempts time out at a third of it).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub s3_timeout: std::time::Duration,
}

impl S3Args {
    /// S3 client options from the flags.
    pub fn s3_options(&self) -> crate::store::S3Options {
        let op = self.s3_timeout.max(std::time::Duration::from_millis(100));
        crate::store::S3Options {
            endpoint: self.s3_endpoint.clone(),
            path_style: self.s3_path_style,
            region: self.s3_region.clone(),
            operation_timeout: op,
            attempt_timeout: op / 3,
            connect_timeout: (op / 3).min(std::time::Duration::from_secs(3)),
            max_attempts: 3,
            reads: crate::store::RangedReads::default(),
        }
    }
}

/// `--age-identity FILE`: read and check the identity file when the flags are parsed.
pub fn parse_age_identity(s: &str) -> Result<crate::snapshot::age::AgeIdentities, String> {
    crate::snapshot::age::AgeIdentities::from_file(std::path::Path::new(s))
        .map_err(|e| e.to_string())
}

impl StoreArgs {
    /// `--store` and the stores of `--stores-file`, each once, in order.
    pub fn stores(&self) -> Result<Vec<String>, String> {
        let mut stores = self.stores.clone();
        super::facts::add_stores_file(&mut stores, self.stores_file.as_deref())?;
        Ok(stores)
    }

    /// S3 client options from the flags.
    pub fn s3_options(&self) -> crate::store::S3Options {
        self.opts.s3_options()
    }

    /// Inspection options from the flags, at `now`.
    pub fn inspect_options(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> crate::store::InspectOptions {
        self.opts.inspect_options(now)
    }
}

impl StoreOpts {
    /// S3 client options from the flags.
    pub fn s3_options(&self) -> crate::store::S3Options {
        self.s3.s3_options()
    }

    /// Inspection options from the flags, at `now`.
    pub fn inspect_options(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> crate::store::InspectOptions {
        let mut o = crate::store::InspectOptions::new(now);
        o.layout = self.layout;
        o.deadline = self.deadline;
        o.max_walk_back = self.max_walk_back as usize;
        o.window = chrono::Duration::from_std(self.window).unwrap_or(o.window);
        o.verify.age = self.age_identity.clone();
        o.series = self.series.clone();
        o
    }
}

/// The async runtime of a one-shot run (`status`, `check`, `inspect`): two workers.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// A value for a text table, `-` when absent.
pub fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// Parse an RFC 3339 time (for `--now`).
pub fn parse_now(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("expected an RFC 3339 time such as 2026-11-23T09:00:00Z: {e}"))
}

/// Read a named input: a file path, or `-` for standard input. Errors name the input.
pub fn read_input(name: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    if name == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| format!("stdin: {e}"))?;
        Ok(buf)
    } else {
        std::fs::read(name).map_err(|e| format!("{name}: {e}"))
    }
}
