//! Bad input to the webhook (issue #8): the real `etcdguard serve --self-signed`, a real TLS
//! client (rustls, aws-lc-rs), 1000 generated malformed, oversized or wrongly typed requests and
//! slow-loris clients. Each bad request must get a 4xx answer or be cut off; afterwards a valid
//! review is still answered, and the server's resident memory stays bounded.

mod common;

use common::gate::{etcd_manager_store, real_snapshot, BOTH};
use common::serve::Serve;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Server {
    serve: Serve,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
}

/// What happened to one request.
#[derive(Debug, PartialEq)]
enum Outcome {
    Status(u16),
    /// Connection closed or reset, or no answer before the client's read timeout.
    Cut(String),
}

impl Server {
    fn start(store: &std::path::Path) -> Server {
        let store = store.to_str().expect("UTF-8 store path");
        let serve = Serve::start(&["--refresh-interval", "30s", "--store", store], |c| {
            c.env("ETCDGUARD_LOG", "error");
        });
        let (port, ca) = (serve.port, serve.ca.clone());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&ca).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        let s = Server {
            serve,
            port,
            tls: Arc::new(cfg),
        };
        while s
            .send(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .0
            != Outcome::Status(200)
        {
            assert!(Instant::now() < deadline, "serve never became ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }

    fn connect(&self) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        tcp.set_write_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(self.tls.clone(), name).unwrap();
        rustls::StreamOwned::new(conn, tcp)
    }

    /// Send raw bytes on a fresh TLS connection; returns the outcome and the response body.
    fn send(&self, raw: &[u8]) -> (Outcome, Vec<u8>) {
        let mut s = self.connect();
        if let Err(e) = s.write_all(raw).and_then(|_| s.flush()) {
            return (Outcome::Cut(format!("write: {e}")), Vec::new());
        }
        let mut resp = Vec::new();
        let mut buf = [0u8; 16384];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    resp.extend_from_slice(&buf[..n]);
                    if complete(&resp) {
                        break;
                    }
                }
                Err(e) if resp.is_empty() => return (Outcome::Cut(format!("read: {e}")), resp),
                Err(_) => break,
            }
        }
        let text = String::from_utf8_lossy(&resp);
        let code = text
            .strip_prefix("HTTP/1.1 ")
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse().ok());
        let body = text
            .find("\r\n\r\n")
            .map(|i| resp[i + 4..].to_vec())
            .unwrap_or_default();
        match code {
            Some(c) => (Outcome::Status(c), body),
            None => (
                Outcome::Cut(format!("no status line ({} bytes)", resp.len())),
                body,
            ),
        }
    }

    fn rss(&self) -> u64 {
        common::hardening::rss_kib(self.serve.pid()).expect("VmRSS")
    }
}

/// A full response head plus `Content-Length` bytes of body (keep-alive answers do not close).
fn complete(resp: &[u8]) -> bool {
    let Some(i) = resp.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&resp[..i]).to_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    len.is_some_and(|n| resp.len() >= i + 4 + n)
}

fn post(path: &str, content_type: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut r = format!("POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(ct) = content_type {
        r.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    r.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut v = r.into_bytes();
    v.extend_from_slice(body);
    v
}

fn valid_review() -> String {
    let kcp = |v: &str| {
        serde_json::json!({"apiVersion": "controlplane.cluster.x-k8s.io/v1beta1", "kind": "KubeadmControlPlane",
            "metadata": {"name": "prod-cp", "namespace": "default"}, "spec": {"replicas": 3, "version": v}})
    };
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "controlplane.cluster.x-k8s.io", "version": "v1beta1", "kind": "KubeadmControlPlane"},
            "resource": {"group": "controlplane.cluster.x-k8s.io", "version": "v1beta1", "resource": "kubeadmcontrolplanes"},
            "name": "prod-cp", "namespace": "default", "operation": "UPDATE",
            "userInfo": {"username": "alice"},
            "object": kcp("v1.31.1"), "oldObject": kcp("v1.30.4"), "dryRun": false
        }
    })
    .to_string()
}

fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// The i-th generated bad request and a label for its kind.
fn bad_request(i: usize, rng: &mut u64, review: &str) -> (&'static str, Vec<u8>) {
    let json = Some("application/json");
    match i % 12 {
        0 => {
            let n = (next(rng) % 4096) as usize;
            let body: Vec<u8> = (0..n).map(|_| next(rng) as u8).collect();
            ("random bytes", post("/validate", json, &body))
        }
        1 => {
            let cut = 1 + (next(rng) as usize % (review.len() - 1));
            ("truncated review", post("/validate", json, &review.as_bytes()[..cut]))
        }
        2 => ("text/plain", post("/validate", Some("text/plain"), review.as_bytes())),
        3 => ("no content type", post("/validate", None, review.as_bytes())),
        4 => {
            let depth = 10_000 + (next(rng) % 100_000) as usize;
            let body = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            ("deep nesting", post("/validate", json, body.as_bytes()))
        }
        5 => {
            // over the 3 MiB body limit: the server must refuse, not buffer without bound
            let body = vec![b' '; 3 * 1024 * 1024 + 1 + (next(rng) % 1024) as usize];
            ("oversized body", post("/validate", json, &body))
        }
        6 => {
            let shapes = [
                r#"{}"#,
                r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
                r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}"#,
                r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":7}}"#,
                r#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{}}"#,
                r#"[1,2,3]"#,
                r#""AdmissionReview""#,
                r#"null"#,
            ];
            let s = shapes[next(rng) as usize % shapes.len()];
            ("wrong shape", post("/validate", json, s.as_bytes()))
        }
        7 => {
            let mut body = review.as_bytes().to_vec();
            let at = next(rng) as usize % body.len();
            body[at] = 0xff;
            ("invalid utf-8", post("/validate", json, &body))
        }
        8 => {
            let big = "x".repeat(64 * 1024 + (next(rng) % 64_000) as usize);
            let r = format!(
                "POST /validate HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Big: {big}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
            );
            ("huge header", r.into_bytes())
        }
        9 => ("wrong method", b"PUT /validate HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()),
        10 => {
            // Content-Length larger than the bytes sent: the body read times out or is cut
            let r = "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"kind\":";
            ("short body", r.as_bytes().to_vec())
        }
        _ => {
            let garbage: String = (0..64).map(|_| (b'!' + (next(rng) % 90) as u8) as char).collect();
            ("garbage request line", format!("{garbage}\r\n\r\n").into_bytes())
        }
    }
}

#[test]
fn bad_input_gets_4xx_or_cut_and_memory_stays_bounded() {
    let snap = tempfile::tempdir().unwrap();
    let (path, _) = real_snapshot(snap.path(), 50);
    let t = (chrono::Utc::now() - chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let store = tempfile::tempdir().unwrap();
    etcd_manager_store(store.path(), &path, &[&t], BOTH);
    let s = Server::start(store.path());
    let review = valid_review();
    let (o, body) = s.send(&post(
        "/validate?timeout=10s",
        Some("application/json"),
        review.as_bytes(),
    ));
    assert_eq!(
        o,
        Outcome::Status(200),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let rss0 = s.rss();

    // "short body" cases wait for the server's body read timeout (10 s): run them in threads
    let started = Instant::now();
    let mut rng = 0xdead_beef_cafe_f00du64;
    let mut counts: std::collections::BTreeMap<&str, (usize, usize, usize)> = Default::default();
    let cases: Vec<(&'static str, Vec<u8>)> = (0..1000)
        .map(|i| bad_request(i, &mut rng, &review))
        .collect();
    let s = Arc::new(s);
    let mut slow = Vec::new();
    let mut failures = Vec::new();
    let mut peak = rss0;
    for (n, (kind, raw)) in cases.into_iter().enumerate() {
        if kind == "short body" {
            let s = s.clone();
            slow.push(std::thread::spawn(move || (kind, s.send(&raw).0)));
            continue;
        }
        let (o, body) = s.send(&raw);
        let e = counts.entry(kind).or_default();
        match &o {
            Outcome::Status(c) if (400..500).contains(c) => e.0 += 1,
            Outcome::Cut(_) => e.1 += 1,
            Outcome::Status(c) => {
                e.2 += 1;
                failures.push(format!(
                    "#{n} {kind}: HTTP {c}: {}",
                    String::from_utf8_lossy(&body)
                ));
            }
        }
        if n % 50 == 0 {
            peak = peak.max(s.rss());
        }
    }
    for h in slow {
        let (kind, o) = h.join().unwrap();
        let e = counts.entry(kind).or_default();
        match o {
            Outcome::Status(c) if (400..500).contains(&c) => e.0 += 1,
            Outcome::Cut(_) => e.1 += 1,
            Outcome::Status(c) => {
                e.2 += 1;
                failures.push(format!("{kind}: HTTP {c}"));
            }
        }
    }
    let elapsed = started.elapsed();
    let rss1 = s.rss();
    for (k, (c4, cut, bad)) in &counts {
        eprintln!("ABUSE {k:>22}: 4xx {c4:>4}  cut {cut:>4}  other {bad}");
    }
    eprintln!(
        "ABUSE total {} requests in {:.1}s; RSS start {rss0} KiB, peak {peak} KiB, end {rss1} KiB",
        counts.values().map(|c| c.0 + c.1 + c.2).sum::<usize>(),
        elapsed.as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "answers that are not 4xx:\n{}",
        failures.join("\n")
    );
    assert_eq!(
        counts.values().map(|c| c.0 + c.1 + c.2).sum::<usize>(),
        1000
    );
    let bound = 2 * rss0 + 50 * 1024;
    assert!(
        peak.max(rss1) < bound,
        "RSS grew from {rss0} KiB to {} KiB (bound {bound} KiB)",
        peak.max(rss1)
    );

    // still answering valid reviews
    let (o, body) = s.send(&post(
        "/validate?timeout=10s",
        Some("application/json"),
        review.as_bytes(),
    ));
    assert_eq!(
        o,
        Outcome::Status(200),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["response"]["allowed"], true, "{v:#}");
}

#[test]
fn slow_loris_clients_are_cut_off() {
    let store = tempfile::tempdir().unwrap();
    let s = Arc::new(Server::start(store.path()));
    // 20 clients each send one header byte per second and never finish the head
    let started = Instant::now();
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut c = s.connect();
                let head = b"POST /validate HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
                let t = Instant::now();
                for b in head.iter() {
                    if c.write_all(&[*b]).and_then(|_| c.flush()).is_err() {
                        return Some(t.elapsed());
                    }
                    std::thread::sleep(Duration::from_millis(1000));
                    if t.elapsed() > Duration::from_secs(60) {
                        return None;
                    }
                }
                // head never finished: the server must have closed by now
                let mut buf = [0u8; 1024];
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => Some(t.elapsed()),
                    Ok(_) => Some(t.elapsed()),
                }
            })
        })
        .collect();
    // meanwhile a valid review is answered
    std::thread::sleep(Duration::from_secs(2));
    let review = valid_review();
    let (o, _) = s.send(&post(
        "/validate?timeout=10s",
        Some("application/json"),
        review.as_bytes(),
    ));
    assert_eq!(o, Outcome::Status(200));
    let mut cut_after = Vec::new();
    for h in handles {
        let t = h
            .join()
            .unwrap()
            .expect("slow-loris client was never cut off within 60 s");
        cut_after.push(t.as_secs_f64());
    }
    let max = cut_after.iter().cloned().fold(0.0, f64::max);
    eprintln!(
        "SLOWLORIS 20 clients cut after at most {max:.1}s (total {:.1}s)",
        started.elapsed().as_secs_f64()
    );
    // header_read_timeout is 10 s: every client must be cut well before its 60 s budget
    assert!(max < 30.0, "slowest cut after {max:.1}s");
}

/// Issue #24, observation 9: a certificate or key file far larger than any PEM (200 MB here, a
/// sparse file) or one that is not a regular file (a FIFO, which a plain read would block on)
/// is refused at start with a clear error, before it is read.
#[test]
fn oversized_or_special_tls_files_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let key = dir.path().join("tls.key");
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let big = dir.path().join("big.crt");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(200 * 1024 * 1024)
        .unwrap();
    let fifo = dir.path().join("fifo.crt");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    for (cert, says) in [(&big, "209715200 bytes"), (&fifo, "not a regular file")] {
        let t = Instant::now();
        let out = std::process::Command::new(common::etcdguard_bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
            .arg(cert)
            .arg("--tls-key")
            .arg(&key)
            .arg("--store")
            .arg(&store)
            .env("ETCDGUARD_LOG", "warn")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
        assert!(err.contains("expected a PEM file of at most"), "{err}");
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    }
}
