//! Test helpers: a real HTTPS client (tokio-rustls + hyper, HTTP/1.1 or HTTP/2 by ALPN) and a
//! small test implementation of the webhook's own `Gate` trait.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use etcdguard_webhook::{Decision, Gate, ReviewRequest, Server};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;

/// The realistic CAPI KubeadmControlPlane UPDATE review (v1.33.4 → v1.34.1).
pub fn kcp_update() -> Value {
    let text = include_str!("../fixtures/kcp-update.json");
    serde_json::from_str(text).expect("fixture is valid JSON")
}

/// The fixture with another uid.
pub fn kcp_update_with_uid(uid: &str) -> Vec<u8> {
    let mut v = kcp_update();
    v["request"]["uid"] = Value::String(uid.to_string());
    serde_json::to_vec(&v).expect("serialize")
}

type DecideFn = dyn Fn(&ReviewRequest) -> Decision + Send + Sync;

/// A test implementation of our `Gate` trait: decisions come from a closure, readiness from a
/// flag, and it registers one fact gauge so the shared registry can be checked.
pub struct TestGate {
    pub ready: AtomicBool,
    pub calls: AtomicUsize,
    decide: Box<DecideFn>,
}

impl TestGate {
    pub fn new(decide: impl Fn(&ReviewRequest) -> Decision + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(TestGate {
            ready: AtomicBool::new(true),
            calls: AtomicUsize::new(0),
            decide: Box::new(decide),
        })
    }
}

impl Gate for TestGate {
    fn review(&self, request: &ReviewRequest) -> Decision {
        self.calls.fetch_add(1, Ordering::SeqCst);
        (self.decide)(request)
    }
    fn ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
    fn register_metrics(&self, registry: &mut Registry) {
        let age = Gauge::<i64>::default();
        age.set(4242);
        registry.register(
            etcdguard_webhook::metrics::SNAPSHOT_AGE_SECONDS,
            "test fact gauge",
            age,
        );
    }
}

/// A running server on 127.0.0.1 with a shutdown trigger.
pub struct Running {
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub ca_pem: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), etcdguard_webhook::ServeError>>,
}

impl Running {
    pub fn start<G: Gate>(server: Server<G>) -> Running {
        let addr = server.local_addr().expect("local addr");
        let metrics_addr = server.metrics_addr();
        let ca_pem = server.ca_pem().map(str::to_string);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        Running {
            addr,
            metrics_addr,
            ca_pem,
            stop: Some(tx),
            task,
        }
    }

    /// Trigger shutdown without waiting.
    pub fn trigger_stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// Trigger shutdown and wait for `run` to return.
    pub async fn stop(mut self) -> Result<(), etcdguard_webhook::ServeError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), &mut self.task)
            .await
            .expect("server stops within 30 s")
            .expect("server task not panicked")
    }
}

/// A TLS client trusting the given CA PEMs.
pub fn connector(ca_pems: &[&str], alpn: &[&[u8]]) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for pem in ca_pems {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots.add(cert.expect("CA PEM")).expect("add root");
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // Full handshakes only, so every connection shows the certificate served right now.
    cfg.resumption = rustls::client::Resumption::disabled();
    TlsConnector::from(Arc::new(cfg))
}

/// What one HTTPS exchange returned.
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
    pub version: hyper::Version,
    pub alpn: Option<Vec<u8>>,
    pub peer_leaf: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request over a fresh TLS connection (HTTP/2 if `h2`, else HTTP/1.1).
pub async fn request(
    addr: SocketAddr,
    connector: &TlsConnector,
    h2: bool,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Reply {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("server name");
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    let (_, session) = tls.get_ref();
    let alpn = session.alpn_protocol().map(|p| p.to_vec());
    let peer_leaf = session
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .unwrap_or_default();
    let mut builder =
        Request::builder()
            .method(method)
            .uri(format!("https://localhost:{}{}", addr.port(), path));
    if let Some(ct) = content_type {
        builder = builder.header("content-type", ct);
    }
    let req = builder.body(Full::new(Bytes::from(body))).expect("request");
    let io = TokioIo::new(tls);
    let resp = if h2 {
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .expect("h2 handshake");
        tokio::spawn(conn);
        sender.send_request(req).await.expect("send h2")
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .expect("h1 handshake");
        tokio::spawn(conn);
        sender.send_request(req).await.expect("send h1")
    };
    let status = resp.status().as_u16();
    let version = resp.version();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Reply {
        status,
        headers,
        body,
        version,
        alpn,
        peer_leaf,
    }
}

/// POST an AdmissionReview body to /validate over HTTP/1.1.
pub async fn post_review(addr: SocketAddr, c: &TlsConnector, query: &str, body: Vec<u8>) -> Reply {
    request(
        addr,
        c,
        false,
        "POST",
        &format!("/validate{query}"),
        Some("application/json"),
        body,
    )
    .await
}

/// Plain HTTP GET (for the separate metrics port).
pub async fn plain_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("h1 handshake");
    tokio::spawn(conn);
    let req = Request::builder()
        .uri(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let resp = sender.send_request(req).await.expect("send");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Poll `check` every 50 ms until it returns `Some` or `limit` passes.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= end {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An HTTP/1.1 connection over TLS kept open for several requests (keep-alive, as the
/// apiserver does).
pub async fn http1_sender(
    addr: SocketAddr,
    connector: &TlsConnector,
) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("server name");
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("h1 handshake");
    tokio::spawn(conn);
    sender
}

/// POST an AdmissionReview body to /validate on an open HTTP/1.1 connection.
pub async fn send_review(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    body: Vec<u8>,
) -> Reply {
    sender.ready().await.expect("connection ready");
    let req = Request::builder()
        .method("POST")
        .uri("/validate")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    let resp = sender.send_request(req).await.expect("send h1");
    let status = resp.status().as_u16();
    let version = resp.version();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Reply {
        status,
        headers,
        body,
        version,
        alpn: Some(b"http/1.1".to_vec()),
        peer_leaf: Vec::new(),
    }
}
