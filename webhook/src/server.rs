//! The HTTPS server: configuration, binding, the accept loop with TLS (HTTP/1.1 and HTTP/2 via
//! ALPN), the `/validate`, `/healthz`, `/readyz` and `/metrics` endpoints, certificate reload
//! and graceful shutdown.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use prometheus_client::registry::Registry;
use rustls::crypto::CryptoProvider;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::conn::{Conns, RateLimitedLog};
use crate::gate::{Decision, Gate};
use crate::metrics::WebhookMetrics;
use crate::review::{build_response, parse_review, timeout_from_query};
use crate::tls::{
    certified_key_from_pem, generate_self_signed, CertFileWatcher, PollOutcome, ReloadableCert,
    TlsError,
};

/// Default listen address of the HTTPS server.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8443);
/// Default request body limit (3 MiB: an UPDATE carries object and oldObject, each up to the
/// ~1.5 MiB etcd request limit).
pub const DEFAULT_MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// Path of the validating endpoint.
pub const VALIDATE_PATH: &str = "/validate";
/// Liveness endpoint.
pub const HEALTHZ_PATH: &str = "/healthz";
/// Readiness endpoint.
pub const READYZ_PATH: &str = "/readyz";
/// Metrics endpoint (OpenMetrics text).
pub const METRICS_PATH: &str = "/metrics";
/// OpenMetrics content type served at `/metrics`.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Where the serving certificate comes from.
#[derive(Debug, Clone)]
pub enum TlsSource {
    /// PEM files, typically a mounted `kubernetes.io/tls` Secret. Both files are re-read every
    /// `poll_interval`; a changed, valid pair is served to new connections without a restart;
    /// a changed but invalid pair is logged and the previous certificate stays in service.
    Files {
        /// Certificate chain (leaf first), e.g. `/tls/tls.crt`.
        cert: PathBuf,
        /// Private key, e.g. `/tls/tls.key`.
        key: PathBuf,
        /// How often to re-read the files (1–2 s is cheap and robust).
        poll_interval: Duration,
    },
    /// Generate a CA and a serving certificate at start; [`Server::ca_pem`] returns the CA.
    SelfSigned {
        /// DNS SANs, e.g. `etcdguard.etcdguard.svc`.
        dns_names: Vec<String>,
        /// IP SANs, e.g. `127.0.0.1`.
        ips: Vec<IpAddr>,
    },
}

/// Server configuration. [`ServerConfig::new`] gives production defaults.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// HTTPS listen address (default `0.0.0.0:8443`; port 0 picks a free port).
    pub listen: SocketAddr,
    /// Optional plain-HTTP listener serving only `/metrics`, `/healthz` and `/readyz`.
    pub metrics_listen: Option<SocketAddr>,
    /// Serving certificate source.
    pub tls: TlsSource,
    /// Largest accepted request body; larger bodies get HTTP 400.
    pub max_body_bytes: usize,
    /// Time allowed for the TLS handshake of a new connection.
    pub tls_handshake_timeout: Duration,
    /// Time allowed to receive a request's headers (slow-loris guard, HTTP/1.1).
    pub header_read_timeout: Duration,
    /// Time allowed to receive a request body.
    pub body_read_timeout: Duration,
    /// Upper bound on the time to answer a review, whatever the apiserver allows.
    pub max_review_time: Duration,
    /// Safety margin kept below the apiserver's `?timeout=` (but at least half of it is used).
    pub timeout_margin: Duration,
    /// After shutdown is requested, keep serving this long with `/readyz` answering 503, so
    /// Kubernetes removes the pod from the Service endpoints before connections are refused.
    pub shutdown_delay: Duration,
    /// How long in-flight requests may finish after the listener closes.
    pub shutdown_grace: Duration,
    /// Time a connection may stay silent after its TLS handshake before its first request.
    pub first_request_timeout: Duration,
    /// Time a keep-alive connection may stay idle (no byte either way) before it is closed.
    pub idle_timeout: Duration,
    /// Connections open at once; at the cap a new one evicts the one idle longest. Default:
    /// the open-files soft limit less 64 (16 to 10,000).
    pub max_connections: usize,
}

impl ServerConfig {
    /// Production defaults with the given TLS source.
    pub fn new(tls: TlsSource) -> Self {
        ServerConfig {
            listen: DEFAULT_LISTEN,
            metrics_listen: None,
            tls,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            tls_handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            max_review_time: Duration::from_secs(3),
            timeout_margin: Duration::from_secs(1),
            shutdown_delay: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(20),
            first_request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(90),
            max_connections: crate::conn::default_max_connections(),
        }
    }

    /// The time the handler allows itself for one review, given the apiserver's `?timeout=`:
    /// `min(max_review_time, max(timeout - timeout_margin, timeout / 2))`.
    pub fn review_budget(&self, apiserver_timeout: Option<Duration>) -> Duration {
        match apiserver_timeout {
            None => self.max_review_time,
            Some(t) => self
                .max_review_time
                .min(t.saturating_sub(self.timeout_margin).max(t / 2)),
        }
    }
}

enum GateOutcome {
    Decided(Decision),
    Failed(String),
    TimedOut,
}

/// Errors starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Certificate problem at start.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// rustls rejected the configuration.
    #[error("TLS configuration error: {0}")]
    Rustls(String),
    /// Accepting connections failed fatally.
    #[error("accept loop failed: {0}")]
    Io(#[from] std::io::Error),
}

struct AppState<G> {
    gate: Arc<G>,
    metrics: WebhookMetrics,
    registry: Registry,
    config: ServerConfig,
    shutting_down: AtomicBool,
}

/// A bound, not yet running server. Lets callers (and tests) learn the bound address and the
/// generated CA before serving.
pub struct Server<G> {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    acceptor: TlsAcceptor,
    resolver: Arc<ReloadableCert>,
    watcher: Option<(CertFileWatcher, Duration)>,
    provider: Arc<CryptoProvider>,
    ca_pem: Option<String>,
    state: Arc<AppState<G>>,
}

/// Install aws-lc-rs as the process-wide rustls provider (idempotent; if another provider was
/// installed first it is kept) and return the aws-lc-rs provider used by this server.
pub fn install_crypto_provider() -> Arc<CryptoProvider> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let _ = CryptoProvider::install_default((*provider).clone());
    provider
}

/// Bind the listeners, load or generate the certificate and register metrics (including the
/// gate's, via [`Gate::register_metrics`]).
pub async fn bind<G: Gate>(config: ServerConfig, gate: Arc<G>) -> Result<Server<G>, ServeError> {
    let provider = install_crypto_provider();
    let (key, watcher, ca_pem) = match &config.tls {
        TlsSource::Files {
            cert,
            key,
            poll_interval,
        } => {
            let (w, k) = CertFileWatcher::load(cert, key, &provider)?;
            (k, Some((w, *poll_interval)), None)
        }
        TlsSource::SelfSigned { dns_names, ips } => {
            let ss = generate_self_signed(dns_names, ips, Duration::from_secs(365 * 86_400))?;
            let k = certified_key_from_pem(
                ss.cert_pem.as_bytes(),
                ss.key_pem.as_bytes(),
                "generated certificate",
                "generated key",
                &provider,
            )?;
            (k, None, Some(ss.ca_pem))
        }
    };
    let resolver = Arc::new(ReloadableCert::new(key));
    let mut tls = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Rustls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(tls));

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind { addr, source })?,
        ),
        None => None,
    };

    let mut registry = Registry::default();
    let metrics = WebhookMetrics::register(&mut registry);
    gate.register_metrics(&mut registry);
    let state = Arc::new(AppState {
        gate,
        metrics,
        registry,
        config,
        shutting_down: AtomicBool::new(false),
    });
    Ok(Server {
        listener,
        metrics_listener,
        acceptor,
        resolver,
        watcher,
        provider,
        ca_pem,
        state,
    })
}

/// Bind and run until `shutdown` completes (see [`Server::run`]).
pub async fn serve<G: Gate>(
    config: ServerConfig,
    gate: Arc<G>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    bind(config, gate).await?.run(shutdown).await
}

/// Completes on SIGTERM or Ctrl-C: pass it to [`serve`] in production.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = tokio::signal::ctrl_c() => {},
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot install SIGTERM handler; waiting for Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

impl<G: Gate> Server<G> {
    /// The bound HTTPS address (useful with port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        Ok(self.listener.local_addr()?)
    }

    /// The bound plain-HTTP metrics address, if configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The generated CA (PEM) for [`TlsSource::SelfSigned`]; `None` for files.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The leaf certificate currently served (DER).
    pub fn serving_cert_der(&self) -> Option<Vec<u8>> {
        self.resolver.leaf_der()
    }

    /// Serve until `shutdown` completes; then report not-ready (`/readyz` 503) for
    /// `shutdown_delay` while still serving, stop accepting, and give in-flight requests up to
    /// `shutdown_grace` to finish.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServeError> {
        let Server {
            listener,
            metrics_listener,
            acceptor,
            resolver,
            watcher,
            provider,
            ca_pem: _,
            state,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);

        let reload_task = watcher.map(|(mut w, every)| {
            let mut stop = stop_rx.clone();
            let state = state.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = stop.changed() => break,
                        _ = tick.tick() => {}
                    }
                    match w.poll(&resolver, &provider) {
                        PollOutcome::Unchanged => {}
                        PollOutcome::Reloaded => {
                            state.metrics.tls_reloads.get_or_create(&crate::metrics::ReloadLabels { result: "ok" }).inc();
                            tracing::info!("serving certificate reloaded");
                        }
                        PollOutcome::Rejected(e) => {
                            state.metrics.tls_reloads.get_or_create(&crate::metrics::ReloadLabels { result: "error" }).inc();
                            tracing::warn!(error = %e, "new serving certificate rejected; keeping the previous one");
                        }
                    }
                }
            })
        });

        let metrics_task = metrics_listener.map(|l| {
            let app = Router::new()
                .route(METRICS_PATH, get(metrics_handler::<G>))
                .route(HEALTHZ_PATH, get(healthz))
                .route(READYZ_PATH, get(readyz::<G>))
                .with_state(state.clone());
            let stop = stop_rx.clone();
            let cfg = state.config.clone();
            tokio::spawn(accept_loop(l, None, app, stop, cfg))
        });

        let app = router(state.clone());
        let main = tokio::spawn(accept_loop(
            listener,
            Some(acceptor),
            app,
            stop_rx,
            state.config.clone(),
        ));
        tracing::info!("etcdguard webhook serving");
        shutdown.await;
        tracing::info!(delay = ?state.config.shutdown_delay, "shutdown requested; reporting not ready");
        state.shutting_down.store(true, Ordering::SeqCst);
        tokio::time::sleep(state.config.shutdown_delay).await;
        tracing::info!("closing listeners; draining connections");
        let _ = stop_tx.send(true);
        let result = main
            .await
            .map_err(|e| ServeError::Io(std::io::Error::other(e.to_string())))?;
        if let Some(t) = metrics_task {
            let _ = t.await;
        }
        if let Some(t) = reload_task {
            let _ = t.await;
        }
        result
    }
}

fn router<G: Gate>(state: Arc<AppState<G>>) -> Router {
    Router::new()
        .route(VALIDATE_PATH, post(validate::<G>))
        .route(HEALTHZ_PATH, get(healthz))
        .route(READYZ_PATH, get(readyz::<G>))
        .route(METRICS_PATH, get(metrics_handler::<G>))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            close_when_draining::<G>,
        ))
        .with_state(state)
}

/// Once shutdown is requested, every HTTP/1 answer says `Connection: close`: keep-alive clients
/// reconnect (to another replica) instead of sending their next review on a connection about to
/// be closed. HTTP/2 clients get GOAWAY from the graceful shutdown.
async fn close_when_draining<G: Gate>(
    State(state): State<Arc<AppState<G>>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let http1 = request.version() <= axum::http::Version::HTTP_11;
    let mut response = next.run(request).await;
    if http1 && state.shutting_down.load(Ordering::SeqCst) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    mut stop: watch::Receiver<bool>,
    config: ServerConfig,
) -> Result<(), ServeError> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .keep_alive_interval(Duration::from_secs(30));
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let conns = Arc::new(Conns::new(config.max_connections));
    let mut accept_errors = RateLimitedLog::new(Duration::from_secs(10));
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Per-connection errors (EMFILE, ECONNABORTED): back off briefly, keep serving.
                    accept_errors.accept_failed(&e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let conns = conns.clone();
        let (id, conn) = conns.open();
        // Requests are counted per connection (for the idle and first-request bounds).
        let counted = conn.clone();
        let service = TowerToHyperService::new(app.clone().layer(axum::middleware::from_fn(
            move |request: Request, next: axum::middleware::Next| {
                let conn = counted.clone();
                async move {
                    conn.begin();
                    let response = next.run(request).await;
                    conn.end();
                    response
                }
            },
        )));
        let (handshake_timeout, first, idle) = (
            config.tls_handshake_timeout,
            config.first_request_timeout,
            config.idle_timeout,
        );
        tokio::spawn(async move {
            let served = async {
                match tls {
                    Some(acceptor) => {
                        let tls_stream =
                            match tokio::time::timeout(handshake_timeout, acceptor.accept(stream))
                                .await
                            {
                                Ok(Ok(s)) => s,
                                Ok(Err(e)) => {
                                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                    return;
                                }
                                Err(_) => {
                                    tracing::debug!(%peer, "TLS handshake timed out");
                                    return;
                                }
                            };
                        let io = TokioIo::new(tls_stream);
                        if let Err(e) = watcher.watch(builder.serve_connection(io, service)).await {
                            tracing::debug!(%peer, error = %e, "connection ended with error");
                        }
                    }
                    None => {
                        let io = TokioIo::new(stream);
                        if let Err(e) = watcher.watch(builder.serve_connection(io, service)).await {
                            tracing::debug!(%peer, error = %e, "connection ended with error");
                        }
                    }
                }
            };
            tokio::select! {
                () = served => {}
                why = conn.close_reason(first, idle) => tracing::debug!(%peer, why, "connection closed"),
            }
            conns.close(id);
        });
    }
    drop(listener);
    if tokio::time::timeout(config.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace = ?config.shutdown_grace,
            "connections still open after the shutdown grace period; closing"
        );
    }
    Ok(())
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz<G: Gate>(State(state): State<Arc<AppState<G>>>) -> Response {
    if state.shutting_down.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    } else if state.gate.ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: gate facts not loaded yet\n",
        )
            .into_response()
    }
}

async fn metrics_handler<G: Gate>(State(state): State<Arc<AppState<G>>>) -> Response {
    let mut out = String::new();
    match prometheus_client::encoding::text::encode(&mut out, &state.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(OPENMETRICS_CONTENT_TYPE),
            )],
            out,
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode metrics: {e}\n"),
        )
            .into_response(),
    }
}

/// A `meta.k8s.io/v1 Status` body with HTTP 400: client-go decodes it, so the apiserver shows
/// the message in its call-failure error.
fn bad_request<G>(state: &AppState<G>, started: Instant, message: String) -> Response {
    state
        .metrics
        .observe("invalid", "", started.elapsed().as_secs_f64());
    tracing::warn!(error = %message, "rejected malformed admission request");
    let body = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "reason": "BadRequest",
        "code": 400,
        "message": format!("etcdguard webhook: {message}"),
    });
    (
        StatusCode::BAD_REQUEST,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

fn is_json_content_type(value: Option<&HeaderValue>) -> bool {
    value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
        .unwrap_or(false)
}

enum BodyError {
    /// Over the limit; the rest of the body, unread.
    TooLarge(Body),
    Read(axum::Error),
}

/// The whole body, or [`BodyError::TooLarge`] as soon as it passes `max` bytes.
async fn read_body(mut body: Body, max: usize) -> Result<Bytes, BodyError> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyError::Read)?;
        if let Some(data) = frame.data_ref() {
            if out.len() + data.len() > max {
                return Err(BodyError::TooLarge(body));
            }
            out.extend_from_slice(data);
        }
    }
    Ok(Bytes::from(out))
}

/// Read and drop a refused body (at most 64 MiB, within `within`): an HTTP/2 client still
/// sending would otherwise see its stream reset instead of the 400 answer.
async fn discard(mut body: Body, within: Duration) {
    let drain = async {
        let mut seen = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |d| d.len());
            if seen > 64 << 20 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(within, drain).await;
}

async fn validate<G: Gate>(State(state): State<Arc<AppState<G>>>, request: Request) -> Response {
    let started = Instant::now();
    let cfg = &state.config;
    let budget = cfg.review_budget(timeout_from_query(request.uri().query()));
    let deadline = started + budget;

    if !is_json_content_type(request.headers().get(header::CONTENT_TYPE)) {
        let found = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_string();
        return bad_request(
            &state,
            started,
            format!("Content-Type is {found:?}; expected \"application/json\""),
        );
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > cfg.max_body_bytes as u64) {
        // Read (and drop) what the client sends first, so that an HTTP/2 client gets this 400
        // rather than a stream reset while it is still sending.
        discard(request.into_body(), cfg.body_read_timeout).await;
        return bad_request(
            &state,
            started,
            format!(
                "request body of {} bytes exceeds the limit of {} bytes",
                declared.unwrap_or_default(),
                cfg.max_body_bytes
            ),
        );
    }
    let body: Body = request.into_body();
    let collected =
        tokio::time::timeout(cfg.body_read_timeout, read_body(body, cfg.max_body_bytes)).await;
    let bytes: Bytes = match collected {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(BodyError::TooLarge(rest))) => {
            discard(rest, cfg.body_read_timeout).await;
            return bad_request(
                &state,
                started,
                format!(
                    "request body exceeds the limit of {} bytes",
                    cfg.max_body_bytes
                ),
            );
        }
        Ok(Err(BodyError::Read(e))) => {
            return bad_request(&state, started, format!("cannot read request body: {e}"));
        }
        Err(_) => {
            return bad_request(
                &state,
                started,
                format!(
                    "request body not received within {:?}",
                    cfg.body_read_timeout
                ),
            )
        }
    };
    let review = match parse_review(&bytes) {
        Ok(r) => Arc::new(r),
        Err(e) => return bad_request(&state, started, e.to_string()),
    };

    // The gate runs on the blocking pool, raced against the review budget: a gate that hangs
    // or is slow is answered "gate timed out" (deny) on time, and a panic is a denial.
    let gate = state.gate.clone();
    let job = {
        let review = review.clone();
        tokio::task::spawn_blocking(move || gate.review(&review))
    };
    let outcome = match tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), job).await
    {
        Ok(Ok(d)) => GateOutcome::Decided(d),
        Ok(Err(join)) => GateOutcome::Failed(join.to_string()),
        Err(_) => GateOutcome::TimedOut,
    };
    let (decision, label) = match outcome {
        GateOutcome::Decided(d) => {
            let label = if d.allowed { "allowed" } else { "denied" };
            (d, label)
        }
        GateOutcome::Failed(error) => {
            tracing::error!(uid = %review.uid, %error, "gate failed; denying");
            (
                Decision::deny("etcdguard: the gate failed while deciding; refusing (fail closed)")
                    .with_code(500, "InternalError")
                    .with_annotation("error", "gate-panicked"),
                "denied",
            )
        }
        GateOutcome::TimedOut => (
            Decision::deny(format!(
                "etcdguard: gate timed out after {} ms; refusing (fail closed)",
                budget.as_millis()
            ))
            .with_code(503, "ServiceUnavailable")
            .with_annotation("error", "gate-timed-out"),
            "timed_out",
        ),
    };
    let response = build_response(&review.uid, &decision, &[("decision", label)]);
    let elapsed = started.elapsed();
    state
        .metrics
        .observe(label, &review.kind.kind, elapsed.as_secs_f64());
    tracing::info!(
        uid = %review.uid,
        ns = %review.namespace.as_deref().unwrap_or(""),
        name = %review.name,
        kind = %review.kind.kind,
        operation = ?review.operation,
        user = %review.username,
        dry_run = review.dry_run,
        decision = label,
        warnings = decision.warnings.len(),
        elapsed_us = elapsed.as_micros() as u64,
        "admission review"
    );
    match serde_json::to_vec(&response) {
        Ok(body) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(uid = %review.uid, error = %e, "cannot serialize AdmissionReview response");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot serialize response: {e}\n"),
            )
                .into_response()
        }
    }
}
