//! Real parts for integration tests: a Debian etcd on free loopback ports, `etcdctl`, and the
//! moto S3 server. Nothing here is a mock: each helper starts the real program and stops it on
//! drop. Tests that need a program which is not installed fail with a message saying how to
//! install it (`scripts/test` installs everything).
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound, then released; racy only against other processes).
pub fn free_port() -> u16 {
    // The port is released before the caller's server binds it, so the kernel may hand it out
    // again meanwhile; tests in one binary run in parallel (an etcd and a moto server took the
    // same port once, and moto's readiness probe then reached etcd). Never hand out a port twice
    // in one process.
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("bind 127.0.0.1:0");
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

fn require(program: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{program}` is not installed: run scripts/test (it installs etcd-server, etcd-client, protobuf-compiler and moto)"
    );
}

/// Path of the built `etcdguard` binary (for CLI end-to-end tests).
pub fn etcdguard_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_etcdguard"))
}

/// Run `etcdguard` with arguments; returns the full output.
pub fn etcdguard(args: &[&str]) -> Output {
    Command::new(etcdguard_bin())
        .args(args)
        .env("ETCDGUARD_LOG", "warn")
        .output()
        .expect("run etcdguard")
}

/// A single-member etcd started from the Debian package on free loopback ports.
pub struct Etcd {
    child: Child,
    pub dir: tempfile::TempDir,
    pub endpoint: String,
    pub name: String,
}

impl Etcd {
    /// Start a fresh, empty etcd and wait until it answers `endpoint health`.
    pub fn start() -> Etcd {
        Self::start_named("etcdguard-test")
    }

    pub fn start_named(name: &str) -> Etcd {
        Self::start_from(name, None)
    }

    /// Start a one-member cluster on a data directory made by `etcdctl snapshot restore` of
    /// `snapshot` (a new raft log and members; the keys and revision of the snapshot).
    pub fn start_restored(name: &str, snapshot: &Path) -> Etcd {
        Self::start_from(name, Some(snapshot))
    }

    fn start_from(name: &str, restore: Option<&Path>) -> Etcd {
        require("etcd");
        require("etcdctl");
        let dir = tempfile::tempdir().expect("tempdir");
        let client = free_port();
        let peer = free_port();
        let endpoint = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        if let Some(snapshot) = restore {
            let out = Command::new("etcdctl")
                .env("ETCDCTL_API", "3")
                .args(["snapshot", "restore"])
                .arg(snapshot)
                .args(["--name", name, "--data-dir"])
                .arg(dir.path().join("data"))
                .args(["--initial-cluster", &format!("{name}={peer_url}")])
                .args(["--initial-advertise-peer-urls", &peer_url])
                .args(["--initial-cluster-token", &format!("tok-{client}")])
                .output()
                .expect("run etcdctl snapshot restore");
            assert!(
                out.status.success(),
                "etcdctl snapshot restore failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let log = std::fs::File::create(dir.path().join("etcd.log")).expect("etcd log");
        let child = Command::new("etcd")
            .arg("--name")
            .arg(name)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--listen-client-urls")
            .arg(&endpoint)
            .arg("--advertise-client-urls")
            .arg(&endpoint)
            .arg("--listen-peer-urls")
            .arg(&peer_url)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer_url)
            .arg("--initial-cluster")
            .arg(format!("{name}={peer_url}"))
            .arg("--initial-cluster-token")
            .arg(format!("tok-{client}"))
            .arg("--log-level")
            .arg("error")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn etcd");
        let mut etcd = Etcd {
            child,
            dir,
            endpoint,
            name: name.to_string(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = etcd.etcdctl(&["endpoint", "health"]);
            if out.status.success() {
                break;
            }
            if let Ok(Some(status)) = etcd.child.try_wait() {
                let log =
                    std::fs::read_to_string(etcd.dir.path().join("etcd.log")).unwrap_or_default();
                panic!("etcd exited early ({status}): {log}");
            }
            assert!(
                Instant::now() < deadline,
                "etcd did not become healthy within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        etcd
    }

    /// The data directory (`<dir>/data`); its bbolt file is `member/snap/db`.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Run `etcdctl` (API v3) against this member.
    pub fn etcdctl(&self, args: &[&str]) -> Output {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg("--endpoints")
            .arg(&self.endpoint)
            .arg("--command-timeout=10s")
            .args(args)
            .output()
            .expect("run etcdctl")
    }

    /// Run `etcdctl` and require success; returns stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.etcdctl(args);
        assert!(
            out.status.success(),
            "etcdctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn put(&self, key: &str, value: &str) {
        self.ctl_ok(&["put", key, value]);
    }

    /// Apply many puts/deletes in one `etcdctl txn` (one revision). `ops` lines use etcdctl's
    /// txn syntax, e.g. `put /k v` or `del /k`.
    pub fn txn(&self, ops: &[String]) {
        let mut input = String::from("\n");
        for op in ops {
            input.push_str(op);
            input.push('\n');
        }
        input.push_str("\n\n");
        let mut child = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg("--endpoints")
            .arg(&self.endpoint)
            .args(["txn"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn etcdctl txn");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "etcdctl txn failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The current revision as reported by the server header.
    pub fn revision(&self) -> i64 {
        let out = self.ctl_ok(&["get", "x-nonexistent", "-w", "json"]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("etcdctl json");
        v["header"]["revision"].as_i64().expect("revision")
    }

    /// `etcdctl snapshot save PATH` (file with sha256 trailer).
    pub fn snapshot_save(&self, path: &Path) {
        let p = path.to_str().unwrap();
        self.ctl_ok(&["snapshot", "save", p]);
    }

    /// Kill the process now (for fault tests); the data directory stays.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `etcdctl snapshot status -w json PATH` parsed (no server needed).
pub fn snapshot_status(path: &Path) -> serde_json::Value {
    require("etcdctl");
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "status", "-w", "json"])
        .arg(path)
        .output()
        .expect("run etcdctl snapshot status");
    assert!(
        out.status.success(),
        "etcdctl snapshot status {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("etcdctl status json")
}

/// The moto S3 server (PyPI `moto[s3]`), started on a free loopback port.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Moto {
        Self::start_with_env(&[])
    }

    /// Start moto with extra environment, e.g. `INITIAL_NO_AUTH_ACTION_COUNT=0`, which makes it
    /// check request signatures against its (empty) IAM user list: any credentials are wrong.
    pub fn start_with_env(env: &[(&str, &str)]) -> Moto {
        let port = free_port();
        let endpoint = format!("http://127.0.0.1:{port}");
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn python3 -m moto.server (pip install 'moto[s3]' flask flask-cors)");
        let mut moto = Moto { child, endpoint };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto server exited early ({status}); is moto installed? run scripts/test");
            }
            assert!(
                Instant::now() < deadline,
                "moto server did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        moto
    }

    /// `POST /moto-api/reset`: drop every bucket and object.
    pub fn reset(&self) {
        let status = Command::new("python3")
            .args([
                "-c",
                "import sys,urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1]+'/moto-api/reset', method='POST'))",
                &self.endpoint,
            ])
            .status()
            .expect("reset moto");
        assert!(status.success(), "moto reset failed");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
pub mod gate;
pub mod hardening;
pub mod live;
pub mod serve;
pub mod snapshot;
pub mod store;
