//! Hardening helpers: a tiny HTTP/1.1 proxy on loopback that records every request line it
//! sees and forwards it to a real server (moto), or injects a fault instead. It proves from
//! outside the `etcdguard` process which HTTP methods reached the S3 API.
//!
//! One request per client connection: the proxy reads the request (headers plus a
//! `Content-Length` or chunked body), records `METHOD target`, then acts per [`Mode`] and closes
//! the connection (`Connection: close`). Clients reconnect for the next request.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the proxy does with each request.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// Forward to the upstream and pass the response back unchanged.
    Forward,
    /// Answer every request with this HTTP status (an S3-style XML error body).
    Status(u16),
    /// Answer every request with this HTTP status and S3 error code (e.g. 403 `AccessDenied`).
    S3Error(u16, &'static str),
    /// Forward, but answer GETs whose target contains this text with 403 `AccessDenied` (a
    /// bucket policy denying one object).
    DenyObjects(&'static str),
    /// Read the request and never answer (until the proxy is dropped).
    Hang,
    /// Forward, but cut object bodies (GetObject, body > 512 bytes) in half while
    /// keeping the full `Content-Length`, then close the connection.
    Truncate,
    /// Forward each request after this delay (a slow link).
    Delay(Duration),
    /// Answer requests whose target contains this text with this status; forward the rest.
    StatusFor(&'static str, u16),
    /// Never answer requests whose target contains this text; forward the rest.
    HangFor(&'static str),
}

/// A recording proxy listening on `127.0.0.1:port`; stops accepting on drop.
pub struct Proxy {
    pub endpoint: String,
    log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    mode: Arc<Mutex<Mode>>,
}

impl Proxy {
    /// Start a proxy in front of `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str, mode: Mode) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mode = Arc::new(Mutex::new(mode));
        let (l, s, m) = (log.clone(), stop.clone(), mode.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (l, s, m, up) = (l.clone(), s.clone(), m.clone(), upstream.clone());
                        std::thread::spawn(move || {
                            let mode = *m.lock().unwrap();
                            let _ = handle(conn, &up, mode, &l, &s);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Proxy {
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
            stop,
            mode,
        }
    }

    /// Every request line seen so far, as `METHOD target`.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Change the behaviour for connections accepted from now on.
    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Request lines whose method is not a read (anything but GET/HEAD/OPTIONS).
pub fn writes(requests: &[String]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| {
            let m = r.split(' ').next().unwrap_or("");
            !matches!(m, "GET" | "HEAD" | "OPTIONS")
        })
        .cloned()
        .collect()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Read one HTTP message head (up to and including `\r\n\r\n`); returns (head, extra bytes).
fn read_head(s: &mut TcpStream) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            let rest = buf.split_off(i + 4);
            return Ok((buf, rest));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Rebuild a head without `Connection`/`Keep-Alive` headers, adding `Connection: close`.
fn close_head(head: &str) -> Vec<u8> {
    let mut out = String::new();
    for l in head.trim_end_matches("\r\n\r\n").split("\r\n") {
        let name = l.split(':').next().unwrap_or("").trim();
        if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        out.push_str(l);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

fn handle(
    mut client: TcpStream,
    upstream: &str,
    mode: Mode,
    log: &Mutex<Vec<String>>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let (head, mut body) = read_head(&mut client)?;
    let head = String::from_utf8_lossy(&head).into_owned();
    let line = head.lines().next().unwrap_or("").to_string();
    let mut parts = line.split(' ');
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    log.lock().unwrap().push(format!("{method} {target}"));
    // the request body (if any)
    if let Some(len) = header(&head, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        let mut chunk = [0u8; 8192];
        while body.len() < len {
            let n = client.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if header(&head, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut chunk = [0u8; 8192];
        while find(&body, b"0\r\n\r\n").is_none() {
            let n = client.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    let denied = matches!(mode, Mode::DenyObjects(t) if method == "GET" && target.contains(t));
    let mode = match mode {
        _ if denied => Mode::S3Error(403, "AccessDenied"),
        Mode::StatusFor(part, code) if target.contains(part) => Mode::Status(code),
        Mode::StatusFor(..) => Mode::Forward,
        Mode::HangFor(part) if target.contains(part) => Mode::Hang,
        Mode::HangFor(_) => Mode::Forward,
        other => other,
    };
    match mode {
        Mode::Status(code) => error_reply(&mut client, code, "InjectedFault")?,
        Mode::S3Error(code, s3_code) => error_reply(&mut client, code, s3_code)?,
        Mode::Hang => {
            let until = Instant::now() + Duration::from_secs(120);
            while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Mode::Forward
        | Mode::Truncate
        | Mode::Delay(_)
        | Mode::StatusFor(..)
        | Mode::HangFor(_)
        | Mode::DenyObjects(_) => {
            if let Mode::Delay(d) = mode {
                std::thread::sleep(d);
            }
            let mut up = TcpStream::connect(upstream)?;
            up.write_all(&close_head(&head))?;
            up.write_all(&body)?;
            let mut resp = Vec::new();
            up.read_to_end(&mut resp)?;
            let split = find(&resp, b"\r\n\r\n")
                .map(|i| i + 4)
                .unwrap_or(resp.len());
            let rhead = String::from_utf8_lossy(&resp[..split]).into_owned();
            let rbody = &resp[split..];
            client.write_all(&close_head(&rhead))?;
            let object_get =
                method == "GET" && (!target.contains('?') || target.contains("x-id=GetObject"));
            if matches!(mode, Mode::Truncate) && object_get && rbody.len() > 512 {
                client.write_all(&rbody[..rbody.len() / 2])?;
            } else {
                client.write_all(rbody)?;
            }
        }
    }
    client.flush()?;
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}

/// An S3-style XML error answer.
fn error_reply(client: &mut TcpStream, status: u16, code: &str) -> std::io::Result<()> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected HTTP {status}</Message></Error>"
    );
    let resp = format!(
        "HTTP/1.1 {status} Injected\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
        xml.len()
    );
    client.write_all(resp.as_bytes())
}

/// `VmRSS` of a process in KiB (Linux `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
