//! Benchmark peer: the smallest axum + rustls (aws-lc-rs) HTTPS server that answers
//! `POST /validate` by echoing the request body. It does what every webhook must do (TLS,
//! HTTP/1.1 or HTTP/2, read the body, write a response) and nothing else, so it is the ceiling
//! the etcdguard webhook is compared against in `scripts/bench-webhook`.
//!
//! Usage: `echo 127.0.0.1:9444`

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::header;
use axum::routing::post;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9444".to_string())
        .parse()?;
    let provider = etcdguard_webhook::install_crypto_provider();
    let ss = etcdguard_webhook::generate_self_signed(
        &["localhost".to_string()],
        &[addr.ip()],
        std::time::Duration::from_secs(86_400),
    )?;
    let certs =
        CertificateDer::pem_slice_iter(ss.cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(ss.key_pem.as_bytes())?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let app = Router::new().route(
        "/validate",
        post(|body: Bytes| async move { ([(header::CONTENT_TYPE, "application/json")], body) }),
    );
    let listener = TcpListener::bind(addr).await?;
    eprintln!("echo listening on https://{addr}/validate");
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let builder = builder.clone();
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            if let Ok(tls) = acceptor.accept(stream).await {
                let _ = builder.serve_connection(TokioIo::new(tls), service).await;
            }
        });
    }
}
