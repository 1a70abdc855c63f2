//! The age encryption layer (talos-backup `pkg/encryption/encryption.go` encrypts each snapshot
//! with `age.Encrypt` to one X25519 recipient, `age.ParseX25519Recipient`, giving `*.age`).
//!
//! Detected by content: every age file starts with the line `age-encryption.org/v1`. With
//! identities it is decrypted in the stream (nothing is written to disk) and the plaintext goes
//! on to the container detection; without them the snapshot's validity is unknown.

use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

/// The first bytes of every binary age file (age format v1 header).
pub const MAGIC: &[u8] = b"age-encryption.org/v1\n";

/// age identities (X25519 secret keys, `AGE-SECRET-KEY-1…`) from an identity file, as
/// `age-keygen` writes it. Kept as text so each verification thread parses its own copy
/// (`age::Identity` values are not `Send`). `Debug` never prints the keys.
#[derive(Clone)]
pub struct AgeIdentities {
    text: Arc<String>,
    source: String,
}

impl std::fmt::Debug for AgeIdentities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AgeIdentities({})", self.source)
    }
}

/// Why an identity file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AgeIdentityError {
    #[error("cannot read age identity file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("age identity file {path} is not an age identity file (expected lines `AGE-SECRET-KEY-1…`, `#` comments allowed): {reason}")]
    Parse { path: String, reason: String },
    #[error("age identity file {path} holds no identity")]
    Empty { path: String },
}

impl AgeIdentities {
    /// Read and check an identity file.
    pub fn from_file(path: &Path) -> Result<Self, AgeIdentityError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| AgeIdentityError::Read {
            path: shown.clone(),
            source,
        })?;
        let ids = Self {
            text: Arc::new(text),
            source: shown.clone(),
        };
        match ids.parse() {
            Ok(v) if v.is_empty() => Err(AgeIdentityError::Empty { path: shown }),
            Ok(_) => Ok(ids),
            Err(reason) => Err(AgeIdentityError::Parse {
                path: shown,
                reason,
            }),
        }
    }

    fn parse(&self) -> Result<Vec<Box<dyn age::Identity>>, String> {
        age::IdentityFile::from_buffer(self.text.as_bytes())
            .map_err(|e| e.to_string())?
            .into_identities()
            .map_err(|e| e.to_string())
    }
}

/// What the age layer did with an input.
pub enum Opened<R> {
    /// Not age-encrypted: the input, unchanged.
    Plain(R),
    /// Decrypted with one of the identities: the plaintext stream.
    Decrypted(age::stream::StreamReader<R>),
    /// age-encrypted and not decryptable here (no identity given, none matches, passphrase):
    /// the snapshot's validity is unknown; the reason says why.
    Locked(String),
    /// The age header itself is corrupt: no key can decrypt it.
    Corrupt(String),
}

/// Look at the start of `input` (already peeked into `head`) and open the age layer if there is
/// one.
pub fn open<R: Read>(head: &[u8], input: R, ids: Option<&AgeIdentities>) -> io::Result<Opened<R>> {
    if !head.starts_with(MAGIC) {
        return Ok(Opened::Plain(input));
    }
    let Some(ids) = ids else {
        return Ok(Opened::Locked(
            "age-encrypted (talos-backup): validity unknown without the private key; pass --age-identity FILE to decrypt and verify it".to_string(),
        ));
    };
    let decryptor = match age::Decryptor::new(input) {
        Ok(d) => d,
        Err(age::DecryptError::Io(e)) => return Err(e),
        Err(e) => return Ok(Opened::Corrupt(format!("age: {e}"))),
    };
    if decryptor.is_scrypt() {
        return Ok(Opened::Locked(
            "age-encrypted with a passphrase (talos-backup never writes these): validity unknown"
                .to_string(),
        ));
    }
    let parsed = ids
        .parse()
        .map_err(|e| io::Error::other(format!("age identities: {e}")))?;
    match decryptor.decrypt(parsed.iter().map(|i| i.as_ref())) {
        Ok(r) => Ok(Opened::Decrypted(r)),
        Err(age::DecryptError::NoMatchingKeys) => Ok(Opened::Locked(format!(
            "age-encrypted to a key that is not in {}: validity unknown",
            ids.source
        ))),
        Err(age::DecryptError::Io(e)) => Err(e),
        Err(e) => Ok(Opened::Corrupt(format!("age: {e}"))),
    }
}
