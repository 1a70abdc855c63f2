//! The real `etcdguard serve --self-signed` on a free loopback port, for every test that talks to
//! the binary over HTTPS (serve, faults, readonly, secrets, webhook_abuse).
#![allow(dead_code)]

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `etcdguard serve`. Killed on drop; [`Serve::stop`] sends SIGTERM instead.
pub struct Serve {
    child: Child,
    pub port: u16,
    /// The self-signed CA (`--ca-out`), for clients.
    pub ca: PathBuf,
    stdout: PathBuf,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    /// Spawn `etcdguard serve --self-signed --listen 127.0.0.1:PORT --ca-out CA ARGS...` with
    /// `ETCDGUARD_LOG=warn` (an `--log` in `args` wins), then `configure` (environment). Output
    /// goes to files (see [`Serve::stdout`], [`Serve::stderr`]). Returns once the CA is written
    /// and `/healthz` answers 200 (not `/readyz`: see [`Serve::wait_ready`]).
    pub fn start(args: &[&str], configure: impl FnOnce(&mut Command)) -> Serve {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let (stdout, stderr) = (dir.path().join("stdout"), dir.path().join("stderr"));
        let port = super::free_port();
        let mut cmd = Command::new(super::etcdguard_bin());
        cmd.args(["serve", "--self-signed", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--ca-out")
            .arg(&ca)
            .args(args)
            .env("ETCDGUARD_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap());
        configure(&mut cmd);
        let child = cmd.spawn().expect("spawn etcdguard serve");
        let s = Serve {
            child,
            port,
            ca,
            stdout,
            stderr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !s.ca_written() || s.get("/healthz").0 != 200 {
            assert!(
                Instant::now() < deadline,
                "serve did not come up: {}",
                s.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }

    /// The process id (for /proc readings).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn ca_written(&self) -> bool {
        std::fs::read(&self.ca).is_ok_and(|b| !b.is_empty())
    }

    /// Wait until `/readyz` answers 200 (the first fact refresh is done).
    pub fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while self.get("/readyz").0 != 200 {
            assert!(
                Instant::now() < deadline,
                "serve never became ready: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// curl with the CA trusted; returns (HTTP status, body); status 0 when curl failed.
    pub fn curl(&self, args: &[&str]) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "10", "--cacert"])
            .arg(&self.ca)
            .args(["-w", "\n%{http_code}"])
            .args(args)
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        self.curl(&[&self.url(path)])
    }

    /// POST an AdmissionReview to `/validate?timeout=10s`; the body parsed (`null` if not JSON).
    pub fn review(&self, body: &Value) -> (u16, Value) {
        let (code, text) = self.curl(&[
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &body.to_string(),
            &self.url("/validate?timeout=10s"),
        ]);
        (code, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// What serve wrote to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// What serve wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGTERM and wait for the exit (graceful shutdown; killed after 30 s). Returns the exit
    /// status of a graceful shutdown, `None` when it had to be killed.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}
