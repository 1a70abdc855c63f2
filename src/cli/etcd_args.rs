//! Reusable clap flags for reaching a live etcd (`--etcd-endpoints`, TLS, timeouts, quota).
//! Flatten [`EtcdArgs`] into a subcommand's `Args` and convert with [`EtcdArgs::to_options`].

use crate::live::{EtcdOptions, DEFAULT_QUOTA_BYTES};
use std::path::PathBuf;
use std::time::Duration;

/// Flags for a live etcd. Every flag also reads an `ETCDGUARD_ETCD_*` environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct EtcdArgs {
    /// etcd client endpoints, comma-separated (`https://10.0.0.1:2379,10.0.0.2:2379`).
    /// Without a scheme, https is used when TLS files are given.
    #[arg(
        long = "etcd-endpoints",
        env = "ETCDGUARD_ETCD_ENDPOINTS",
        value_delimiter = ',',
        value_name = "URLS"
    )]
    pub endpoints: Vec<String>,
    /// CA bundle (PEM) that signed the etcd server certificates.
    #[arg(
        long = "etcd-cacert",
        env = "ETCDGUARD_ETCD_CACERT",
        value_name = "FILE"
    )]
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM) for etcd's --client-cert-auth.
    #[arg(
        long = "etcd-cert",
        env = "ETCDGUARD_ETCD_CERT",
        value_name = "FILE",
        requires = "key"
    )]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM).
    #[arg(
        long = "etcd-key",
        env = "ETCDGUARD_ETCD_KEY",
        value_name = "FILE",
        requires = "cert"
    )]
    pub key: Option<PathBuf>,
    /// Connect timeout per endpoint.
    #[arg(long = "etcd-connect-timeout", env = "ETCDGUARD_ETCD_CONNECT_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub connect_timeout: Duration,
    /// Timeout per RPC.
    #[arg(long = "etcd-request-timeout", env = "ETCDGUARD_ETCD_REQUEST_TIMEOUT", default_value = "3s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub request_timeout: Duration,
    /// Deadline for collecting all live facts.
    #[arg(long = "etcd-timeout", env = "ETCDGUARD_ETCD_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub overall_timeout: Duration,
    /// Backend quota assumed when etcd does not report one (etcd < 3.6): etcd's
    /// --quota-backend-bytes. Default 2 GiB, etcd's default.
    #[arg(long = "etcd-quota-bytes", env = "ETCDGUARD_ETCD_QUOTA_BYTES", default_value_t = DEFAULT_QUOTA_BYTES, value_name = "BYTES")]
    pub quota_bytes: u64,
    /// Probe only the given endpoints, not the other members' advertised client URLs.
    #[arg(long = "etcd-no-discovery", env = "ETCDGUARD_ETCD_NO_DISCOVERY")]
    pub no_discovery: bool,
}

impl EtcdArgs {
    /// True when at least one endpoint was given (live facts were asked for).
    pub fn is_set(&self) -> bool {
        self.endpoints.iter().any(|e| !e.trim().is_empty())
    }

    /// The options for [`crate::live::collect`].
    pub fn to_options(&self) -> EtcdOptions {
        EtcdOptions {
            endpoints: self.endpoints.clone(),
            ca_file: self.cacert.clone(),
            cert_file: self.cert.clone(),
            key_file: self.key.clone(),
            connect_timeout: self.connect_timeout,
            request_timeout: self.request_timeout,
            overall_timeout: self.overall_timeout,
            quota_bytes: self.quota_bytes,
            discover_members: !self.no_discovery,
        }
    }
}

impl From<&EtcdArgs> for EtcdOptions {
    fn from(a: &EtcdArgs) -> Self {
        a.to_options()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        etcd: EtcdArgs,
    }

    #[test]
    fn parses_flags_into_options() {
        let t = T::try_parse_from([
            "t",
            "--etcd-endpoints",
            "https://a:2379,b:2379",
            "--etcd-cacert",
            "/ca.pem",
            "--etcd-cert",
            "/c.pem",
            "--etcd-key",
            "/k.pem",
            "--etcd-request-timeout",
            "500ms",
            "--etcd-quota-bytes",
            "8589934592",
        ])
        .unwrap();
        let o = t.etcd.to_options();
        assert_eq!(o.endpoints, vec!["https://a:2379", "b:2379"]);
        assert_eq!(o.request_timeout, Duration::from_millis(500));
        assert_eq!(o.connect_timeout, Duration::from_secs(2));
        assert_eq!(o.quota_bytes, 8 << 30);
        assert!(o.discover_members);
        assert!(t.etcd.is_set());
        assert!(T::try_parse_from(["t", "--etcd-cert", "/c.pem"]).is_err());
        let none = T::try_parse_from(["t"]).unwrap();
        assert!(!none.etcd.is_set());
        assert_eq!(none.etcd.to_options().quota_bytes, DEFAULT_QUOTA_BYTES);
    }
}
