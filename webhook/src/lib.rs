//! etcdguard-webhook: the Kubernetes validating-admission protocol adapter.
//!
//! This crate knows AdmissionReview v1, HTTPS (rustls with aws-lc-rs, HTTP/1.1 and HTTP/2),
//! certificate hot reload, health and metrics endpoints; it knows nothing about etcd, backups or
//! policies. The root crate implements [`Gate`] (decisions from cached facts) and
//! `etcdguard serve` wires the two together with [`serve`]:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use etcdguard_webhook::*;
//! # struct MyGate;
//! # impl Gate for MyGate {
//! #     fn review(&self, _: &ReviewRequest) -> Decision { Decision::allow() }
//! #     fn ready(&self) -> bool { true }
//! # }
//! # async fn run() -> Result<(), ServeError> {
//! let config = ServerConfig::new(TlsSource::Files {
//!     cert: "/tls/tls.crt".into(),
//!     key: "/tls/tls.key".into(),
//!     poll_interval: std::time::Duration::from_secs(2),
//! });
//! serve(config, Arc::new(MyGate), shutdown_signal()).await
//! # }
//! ```
//!
//! Endpoints: `POST /validate` (AdmissionReview v1), `GET /healthz`, `GET /readyz`,
//! `GET /metrics` (OpenMetrics text).

mod conn;
pub mod gate;
pub mod metrics;
pub mod review;
pub mod server;
pub mod tls;

pub use gate::{Decision, Gate, Operation, RawObject, RequestError, ReviewRequest};
pub use server::{
    bind, install_crypto_provider, serve, shutdown_signal, ServeError, Server, ServerConfig,
    TlsSource, DEFAULT_LISTEN, DEFAULT_MAX_BODY_BYTES, HEALTHZ_PATH, METRICS_PATH, READYZ_PATH,
    VALIDATE_PATH,
};
pub use tls::{generate_self_signed, SelfSigned, TlsError};
