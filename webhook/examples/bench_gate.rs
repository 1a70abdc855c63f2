//! Benchmark subject: the etcdguard webhook server (this crate's `serve`) with a gate shaped like
//! the real one — it compares `spec.version` of object and oldObject and decides from a cached
//! fact (snapshot age), adding an audit annotation. Used by `scripts/bench-webhook`.
//!
//! Usage: `bench_gate 127.0.0.1:9443 [blocking]` (default [`GateExecution::Inline`], as
//! `etcdguard serve` runs its gate; `blocking`: [`GateExecution::BlockingPool`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use etcdguard_webhook::{
    serve, shutdown_signal, Decision, Gate, GateExecution, ReviewRequest, ServerConfig, TlsSource,
};

struct CachedFactsGate {
    snapshot_age_seconds: AtomicU64,
}

impl Gate for CachedFactsGate {
    type Object = etcdguard_webhook::RawObject;

    fn review(&self, r: &ReviewRequest) -> Decision {
        let age = self.snapshot_age_seconds.load(Ordering::Relaxed);
        // A typed, partial read: serde skips every other field without building it.
        #[derive(serde::Deserialize)]
        struct Object<'a> {
            #[serde(borrow)]
            spec: Option<Spec<'a>>,
        }
        #[derive(serde::Deserialize)]
        struct Spec<'a> {
            #[serde(borrow)]
            version: Option<std::borrow::Cow<'a, str>>,
        }
        let version = |o: &Option<etcdguard_webhook::RawObject>| {
            let o = o.as_ref()?;
            let parsed: Object = serde_json::from_str(o.json()).ok()?;
            parsed.spec?.version.map(|v| v.into_owned())
        };
        let (new, old) = (version(&r.object), version(&r.old_object));
        let d = if new != old && age > 6 * 3600 {
            Decision::deny(format!(
                "{} {}/{}: upgrade refused: newest valid etcd snapshot is {}h old (max 6h)",
                r.kind.kind,
                r.namespace.as_deref().unwrap_or(""),
                r.name,
                age / 3600
            ))
        } else {
            Decision::allow()
        };
        d.with_annotation("snapshot-age-seconds", age.to_string())
    }
    fn ready(&self) -> bool {
        true
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9443".to_string())
        .parse()?;
    let mut config = ServerConfig::new(TlsSource::SelfSigned {
        dns_names: vec!["localhost".to_string()],
        ips: vec![addr.ip()],
    });
    config.listen = addr;
    config.gate_execution = if std::env::args().nth(2).as_deref() == Some("blocking") {
        GateExecution::BlockingPool
    } else {
        GateExecution::Inline
    };
    // CONNECTION_THREADS=N: serve connections on N single-threaded runtimes (as `etcdguard
    // serve` does with one per CPU); unset: on this multi-threaded runtime.
    if let Ok(n) = std::env::var("CONNECTION_THREADS") {
        config.connection_threads = n.parse()?;
    }
    let gate = Arc::new(CachedFactsGate {
        snapshot_age_seconds: AtomicU64::new(93_600),
    });
    eprintln!("etcdguard webhook listening on https://{addr}/validate");
    serve(config, gate, shutdown_signal()).await?;
    Ok(())
}
