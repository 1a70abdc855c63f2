//! Serving certificates: a hot-swappable rustls cert resolver, a poller that reloads a mounted
//! Secret's `tls.crt`/`tls.key` when they change, and a self-signed CA + serving cert generator.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Errors loading or generating serving certificates.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// PEM content is unusable.
    #[error("{what} is not valid PEM ({expected}): {detail}")]
    Pem {
        /// Which input.
        what: String,
        /// What was expected.
        expected: &'static str,
        /// Parser detail.
        detail: String,
    },
    /// Certificate and key do not belong together, or the key type is unsupported.
    #[error("certificate and private key do not form a usable pair: {0}")]
    Pair(String),
    /// rcgen failed.
    #[error("cannot generate self-signed certificate: {0}")]
    Generate(String),
    /// A file is larger than any certificate chain or key (or not a regular file).
    #[error("{what} {path} is {detail}: expected a PEM file of at most {MAX_PEM_BYTES} bytes")]
    NotPem {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// What it is instead (`2097152 bytes`, `not a regular file`).
        detail: String,
    },
}

/// Largest certificate chain or key file read (a long chain is a few tens of KiB): a larger
/// file is refused before it is read, so a wrong mount cannot make the server hold it.
pub const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// Parse a PEM certificate chain and private key into a rustls [`CertifiedKey`], checking that
/// the key matches the leaf certificate.
pub fn certified_key_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_name: &str,
    key_name: &str,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what: cert_name.to_string(),
            expected: "one or more CERTIFICATE blocks",
            detail: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            what: cert_name.to_string(),
            expected: "one or more CERTIFICATE blocks",
            detail: "no certificate found".to_string(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Pem {
        what: key_name.to_string(),
        expected: "a PKCS#8, PKCS#1 or SEC1 PRIVATE KEY block",
        detail: e.to_string(),
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| TlsError::Pair(e.to_string()))
}

/// A certificate resolver whose key can be swapped atomically while the server runs. New TLS
/// handshakes use the newest key; established connections keep theirs.
pub struct ReloadableCert {
    current: ArcSwap<CertifiedKey>,
}

impl fmt::Debug for ReloadableCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadableCert").finish_non_exhaustive()
    }
}

impl ReloadableCert {
    /// Start serving `key`.
    pub fn new(key: CertifiedKey) -> Self {
        ReloadableCert {
            current: ArcSwap::from_pointee(key),
        }
    }

    /// Serve `key` for all new handshakes.
    pub fn replace(&self, key: CertifiedKey) {
        self.current.store(Arc::new(key));
    }

    /// The leaf certificate currently served (DER).
    pub fn leaf_der(&self) -> Option<Vec<u8>> {
        self.current
            .load()
            .cert
            .first()
            .map(|c| c.as_ref().to_vec())
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// Watches a certificate and key file pair (typically a mounted Kubernetes Secret, whose files
/// are symlinks through a `..data` symlink that kubelet swaps atomically) by polling their
/// contents, and swaps them into a [`ReloadableCert`] when they change and are valid.
pub struct CertFileWatcher {
    cert_path: PathBuf,
    key_path: PathBuf,
    last: (Vec<u8>, Vec<u8>),
}

/// Outcome of one poll.
#[derive(Debug)]
pub enum PollOutcome {
    /// Files unchanged since the last attempt.
    Unchanged,
    /// New pair loaded and now served.
    Reloaded,
    /// Files changed but the new pair is unusable; the old certificate is still served.
    Rejected(TlsError),
}

impl CertFileWatcher {
    /// Load the initial pair (an error here is fatal for the caller: nothing to serve).
    pub fn load(
        cert_path: &Path,
        key_path: &Path,
        provider: &CryptoProvider,
    ) -> Result<(Self, CertifiedKey), TlsError> {
        let (c, k) = read_pair(cert_path, key_path)?;
        let key = certified_key_from_pem(
            &c,
            &k,
            &cert_path.display().to_string(),
            &key_path.display().to_string(),
            provider,
        )?;
        Ok((
            CertFileWatcher {
                cert_path: cert_path.to_path_buf(),
                key_path: key_path.to_path_buf(),
                last: (c, k),
            },
            key,
        ))
    }

    /// Re-read both files (following symlinks); if their bytes differ from the last attempt,
    /// validate and swap them into `target`.
    pub fn poll(&mut self, target: &ReloadableCert, provider: &CryptoProvider) -> PollOutcome {
        let (c, k) = match read_pair(&self.cert_path, &self.key_path) {
            Ok(pair) => pair,
            Err(e) => return PollOutcome::Rejected(e),
        };
        if c == self.last.0 && k == self.last.1 {
            return PollOutcome::Unchanged;
        }
        let result = certified_key_from_pem(
            &c,
            &k,
            &self.cert_path.display().to_string(),
            &self.key_path.display().to_string(),
            provider,
        );
        // Remember this attempt either way: a bad pair is reported once, not every poll.
        self.last = (c, k);
        match result {
            Ok(key) => {
                target.replace(key);
                PollOutcome::Reloaded
            }
            Err(e) => PollOutcome::Rejected(e),
        }
    }
}

fn read_pair(cert: &Path, key: &Path) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    Ok((
        read_pem(cert, "certificate")?,
        read_pem(key, "private key")?,
    ))
}

/// Read one PEM file (following symlinks), refusing anything but a regular file of at most
/// [`MAX_PEM_BYTES`].
fn read_pem(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    use std::io::Read;
    let read_err = |source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    };
    let not_pem = |detail: String| TlsError::NotPem {
        what,
        path: path.to_path_buf(),
        detail,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if !meta.is_file() {
        return Err(not_pem("not a regular file".to_string()));
    }
    if meta.len() > MAX_PEM_BYTES {
        return Err(not_pem(format!("{} bytes", meta.len())));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_PEM_BYTES + 1).read_to_end(&mut bytes))
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(not_pem("growing past the limit".to_string()));
    }
    Ok(bytes)
}

/// A generated CA and a serving certificate it signed, all PEM.
#[derive(Clone)]
pub struct SelfSigned {
    /// The CA certificate: put it in the webhook configuration's `caBundle` (base64) or a client's roots.
    pub ca_pem: String,
    /// The serving certificate (leaf only).
    pub cert_pem: String,
    /// The serving certificate's private key (PKCS#8).
    pub key_pem: String,
}

impl fmt::Debug for SelfSigned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelfSigned")
            .field("ca_pem", &self.ca_pem)
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// Generate a fresh ECDSA P-256 CA and a serving certificate for `dns_names` and `ips`
/// (e.g. `etcdguard.etcdguard.svc`, `127.0.0.1`), valid for `validity`.
pub fn generate_self_signed(
    dns_names: &[String],
    ips: &[IpAddr],
    validity: Duration,
) -> Result<SelfSigned, TlsError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
        IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
    };
    let err = |e: rcgen::Error| TlsError::Generate(e.to_string());
    if dns_names.is_empty() && ips.is_empty() {
        return Err(TlsError::Generate(
            "no DNS name or IP address given for the serving certificate".to_string(),
        ));
    }
    let now = time::OffsetDateTime::now_utc();
    let not_before = now - time::Duration::minutes(5);
    let not_after = now
        + time::Duration::seconds(
            i64::try_from(validity.as_secs())
                .unwrap_or(i64::MAX / 2)
                .min(100 * 365 * 86_400),
        );

    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca_params = CertificateParams::default();
    let mut ca_dn = DistinguishedName::new();
    ca_dn.push(DnType::CommonName, "etcdguard self-signed CA");
    ca_params.distinguished_name = ca_dn;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = not_before;
    ca_params.not_after = not_after;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().map_err(err)?;
    let mut params = CertificateParams::new(dns_names.to_vec()).map_err(err)?;
    for ip in ips {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        dns_names
            .first()
            .cloned()
            .unwrap_or_else(|| "etcdguard".to_string()),
    );
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = not_before;
    params.not_after = not_after;
    let leaf = params.signed_by(&leaf_key, &issuer).map_err(err)?;
    Ok(SelfSigned {
        ca_pem: ca_cert.pem(),
        cert_pem: leaf.pem(),
        key_pem: leaf_key.serialize_pem(),
    })
}
