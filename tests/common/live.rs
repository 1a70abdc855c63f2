//! Real multi-member and TLS etcd clusters for `tests/live.rs`.
//! Certificates are made with the `openssl` CLI; every process is killed on drop.

use super::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An N-member etcd cluster on loopback (plain HTTP).
pub struct EtcdCluster {
    procs: Vec<Option<Proc>>,
    pub dir: tempfile::TempDir,
    pub endpoints: Vec<String>,
    pub names: Vec<String>,
}

impl EtcdCluster {
    pub fn start(n: usize) -> EtcdCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let names: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
        let initial = names
            .iter()
            .zip(&ports)
            .map(|(name, (_, peer))| format!("{name}=http://127.0.0.1:{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let token = format!("tok-{}", ports[0].0);
        let mut procs = Vec::new();
        let mut endpoints = Vec::new();
        for (i, (client, peer)) in ports.iter().enumerate() {
            let endpoint = format!("http://127.0.0.1:{client}");
            let peer_url = format!("http://127.0.0.1:{peer}");
            let log = std::fs::File::create(dir.path().join(format!("etcd-{i}.log"))).unwrap();
            let child = Command::new("etcd")
                .args(["--name", &names[i]])
                .arg("--data-dir")
                .arg(dir.path().join(format!("data-{i}")))
                .args(["--listen-client-urls", &endpoint])
                .args(["--advertise-client-urls", &endpoint])
                .args(["--listen-peer-urls", &peer_url])
                .args(["--initial-advertise-peer-urls", &peer_url])
                .args(["--initial-cluster", &initial])
                .args(["--initial-cluster-token", &token])
                .args(["--log-level", "error"])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn etcd");
            procs.push(Some(Proc(child)));
            endpoints.push(endpoint);
        }
        let cluster = EtcdCluster {
            procs,
            dir,
            endpoints,
            names,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = cluster.etcdctl(&["endpoint", "health"]);
            if out.status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "etcd cluster not healthy within 60 s: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        cluster
    }

    pub fn etcdctl(&self, args: &[&str]) -> Output {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg("--endpoints")
            .arg(self.endpoints.join(","))
            .arg("--command-timeout=5s")
            .args(args)
            .output()
            .expect("run etcdctl")
    }

    /// Kill member `i` now.
    pub fn kill(&mut self, i: usize) {
        if let Some(slot) = self.procs.get_mut(i) {
            slot.take();
        }
    }
}

/// Files of a throwaway PKI: CA, server cert (SAN IP 127.0.0.1), client cert.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server.pem")
    }
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server-key.pem")
    }
    pub fn client_cert(&self) -> PathBuf {
        self.dir.join("client.pem")
    }
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("client-key.pem")
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl (install the openssl package)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Make a CA, a server and a client certificate (ECDSA P-256) in `dir` with the openssl CLI.
pub fn make_pki(dir: &Path) -> Pki {
    let ec = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
    for key in ["ca-key.pem", "server-key.pem", "client-key.pem"] {
        let mut a = vec!["genpkey"];
        a.extend_from_slice(&ec);
        a.extend_from_slice(&["-out", key]);
        openssl(dir, &a);
    }
    std::fs::write(
        dir.join("ca.ext"),
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("client.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "ca-key.pem",
            "-subj",
            "/CN=etcdguard-test-ca",
            "-out",
            "ca.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "ca.csr",
            "-signkey",
            "ca-key.pem",
            "-days",
            "2",
            "-extfile",
            "ca.ext",
            "-out",
            "ca.pem",
        ],
    );
    for (name, cn) in [("server", "etcd-server"), ("client", "root")] {
        let key = format!("{name}-key.pem");
        let csr = format!("{name}.csr");
        let ext = format!("{name}.ext");
        let pem = format!("{name}.pem");
        openssl(
            dir,
            &[
                "req",
                "-new",
                "-key",
                &key,
                "-subj",
                &format!("/CN={cn}"),
                "-out",
                &csr,
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                &pem,
            ],
        );
    }
    Pki {
        dir: dir.to_path_buf(),
    }
}

/// A single-member etcd serving clients over TLS with client-certificate authentication.
pub struct TlsEtcd {
    _proc: Proc,
    pub dir: tempfile::TempDir,
    pub pki: Pki,
    pub endpoint: String,
}

impl TlsEtcd {
    pub fn start() -> TlsEtcd {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki_dir = dir.path().join("pki");
        std::fs::create_dir(&pki_dir).unwrap();
        let pki = make_pki(&pki_dir);
        let (client, peer) = (free_port(), free_port());
        let endpoint = format!("https://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).unwrap();
        let child = Command::new("etcd")
            .args(["--name", "tls0"])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &endpoint])
            .args(["--advertise-client-urls", &endpoint])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("tls0={peer_url}")])
            .arg("--cert-file")
            .arg(pki.server_cert())
            .arg("--key-file")
            .arg(pki.server_key())
            .arg("--trusted-ca-file")
            .arg(pki.ca())
            .arg("--client-cert-auth")
            .args(["--log-level", "error"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn etcd");
        let etcd = TlsEtcd {
            _proc: Proc(child),
            dir,
            pki,
            endpoint,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = etcd.etcdctl(&["endpoint", "health"]);
            if out.status.success() {
                break;
            }
            if Instant::now() >= deadline {
                let log =
                    std::fs::read_to_string(etcd.dir.path().join("etcd.log")).unwrap_or_default();
                panic!(
                    "TLS etcd not healthy within 30 s: {}\n{log}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        etcd
    }

    pub fn etcdctl(&self, args: &[&str]) -> Output {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg("--endpoints")
            .arg(&self.endpoint)
            .arg("--cacert")
            .arg(self.pki.ca())
            .arg("--cert")
            .arg(self.pki.client_cert())
            .arg("--key")
            .arg(self.pki.client_key())
            .arg("--command-timeout=5s")
            .args(args)
            .output()
            .expect("run etcdctl")
    }
}
