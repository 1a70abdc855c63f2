//! `etcdguard serve`: the validating admission webhook (issue #7). Parses the flags into the
//! plain options of [`crate::service`], checks them, and runs the protocol adapter
//! (`etcdguard-webhook`) with the service's gate and refresh loop.

use super::facts::FactArgs;
use crate::gate::request::Overrides;
use crate::policy::PolicySet;
use crate::service::{self, EtcdGate, RefreshBounds};
use etcdguard_webhook as wh;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Endpoints: POST /validate (AdmissionReview v1), GET /healthz, GET /readyz \
(200 only after the first complete fact refresh), GET /metrics (OpenMetrics)."
)]
pub struct Args {
    /// HTTPS listen address.
    #[arg(long, default_value = "0.0.0.0:8443", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Serving certificate (PEM); reloaded without restart when the file (or the Secret's
    /// `..data` symlink) changes.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "self_signed"
    )]
    pub tls_cert: Option<PathBuf>,
    /// Serving key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Generate a CA and serving certificate at start (local use); prints the CA on stderr.
    #[arg(long)]
    pub self_signed: bool,
    /// DNS names for --self-signed (repeatable).
    #[arg(
        long = "self-signed-dns",
        value_name = "NAME",
        default_value = "localhost"
    )]
    pub self_signed_dns: Vec<String>,
    /// Write the --self-signed CA (PEM) to this file as well.
    #[arg(long, value_name = "FILE")]
    pub ca_out: Option<PathBuf>,
    /// Also serve /metrics, /healthz and /readyz over plain HTTP on this address.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    #[command(flatten)]
    pub facts: FactArgs,
    /// How often facts are refreshed in the background.
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub refresh_interval: Duration,
    /// Bound of one refresh of every fact source (default: `--deadline`). A refresh still
    /// running then is a refresh error, and the facts keep their last completed reading.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub refresh_timeout: Option<Duration>,
    /// Facts older than this (since the refresh that read them completed) are treated as
    /// unknown. Must exceed refresh timeout + refresh interval (default: refresh timeout +
    /// 2 × refresh interval + 1m).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub stale_after: Option<Duration>,
    /// Override every policy's mode.
    #[arg(long, value_enum, value_name = "MODE")]
    pub mode: Option<super::check::ModeArg>,
}

pub fn run(args: Args) -> u8 {
    match run_inner(args) {
        Ok(code) => code,
        Err(msg) => {
            super::common::print_stderr(format_args!("etcdguard serve: {msg}"));
            super::EXIT_USAGE
        }
    }
}

fn run_inner(mut args: Args) -> Result<u8, String> {
    args.facts.read_stores_file()?;
    let tls = match (&args.tls_cert, &args.tls_key, args.self_signed) {
        (Some(cert), Some(key), false) => wh::TlsSource::Files {
            cert: cert.clone(),
            key: key.clone(),
            poll_interval: Duration::from_secs(2),
        },
        (None, None, true) => {
            let ips: Vec<IpAddr> = vec![IpAddr::from([127, 0, 0, 1])];
            wh::TlsSource::SelfSigned {
                dns_names: args.self_signed_dns.clone(),
                ips,
            }
        }
        _ => return Err("give --tls-cert FILE --tls-key FILE, or --self-signed".to_string()),
    };
    let bounds = RefreshBounds::new(
        args.refresh_interval,
        args.refresh_timeout,
        args.stale_after,
        args.facts.store.deadline,
    )
    .map_err(|e| e.to_string())?;
    let policies =
        PolicySet::load_or_embedded(args.facts.policy.as_deref()).map_err(|e| e.to_string())?;
    let mut facts = args.facts.options();
    facts.inspect.cache = crate::store::VerifyCache::for_serve();
    service::check_fact_sources(&policies, &facts).map_err(|e| e.to_string())?;
    let overrides = Overrides {
        max_age: args.facts.max_age,
        mode: args.mode.map(Into::into),
        ..Overrides::default()
    };
    let gate = Arc::new(EtcdGate::new(policies, facts, bounds, overrides));
    let mut config = wh::ServerConfig::new(tls);
    config.listen = args.listen;
    config.metrics_listen = args.metrics_listen;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    rt.block_on(async move {
        let server = wh::bind(config, gate.clone())
            .await
            .map_err(|e| e.to_string())?;
        let addr = server.local_addr().map_err(|e| e.to_string())?;
        if let Some(ca) = server.ca_pem() {
            super::common::print_stderr(format_args!("etcdguard serve: self-signed CA (add it to the webhook's caBundle or your client's roots):\n{ca}"));
            if let Some(path) = &args.ca_out {
                std::fs::write(path, ca).map_err(|e| format!("--ca-out {}: {e}", path.display()))?;
            }
        }
        super::common::print_stderr(format_args!("etcdguard serve: listening on https://{addr}"));
        let refresher = tokio::spawn(service::refresh_loop(gate.clone(), bounds.interval));
        let res = server.run(wh::shutdown_signal()).await;
        refresher.abort();
        res.map_err(|e| e.to_string())
    })?;
    Ok(super::EXIT_OK)
}
