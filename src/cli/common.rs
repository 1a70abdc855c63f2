//! Pieces shared by several subcommands.

/// Output format of a report. Not every subcommand supports every format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
    Junit,
    Github,
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

/// Store-related flags shared by `status`, `check` and `serve` (`#[command(flatten)]`).
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Backup store: `s3://BUCKET/PREFIX`, `file:///DIR` or a directory path.
    #[arg(long, env = "ETCDGUARD_STORE", value_name = "URL")]
    pub store: String,
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
    /// Overall deadline for reading the store (listing, control files, verification).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    pub deadline: std::time::Duration,
    /// Verify at most this many backups when walking back from an invalid newest one.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_walk_back: u32,
    /// First listing window for etcd-manager stores (widened only when it holds no backup).
    #[arg(long, value_name = "DURATION", default_value = "48h", value_parser = humantime::parse_duration)]
    pub window: std::time::Duration,
}

impl StoreArgs {
    /// The parsed `--store` location.
    pub fn url(&self) -> Result<crate::store::StoreUrl, crate::store::StoreError> {
        crate::store::StoreUrl::parse(&self.store)
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
        let op = self.s3_timeout.max(std::time::Duration::from_millis(100));
        crate::store::S3Options {
            endpoint: self.s3_endpoint.clone(),
            path_style: self.s3_path_style,
            region: self.s3_region.clone(),
            operation_timeout: op,
            attempt_timeout: op / 3,
            connect_timeout: (op / 3).min(std::time::Duration::from_secs(3)),
            max_attempts: 3,
        }
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
        o
    }
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
