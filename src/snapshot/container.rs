//! Container detection by content (magic bytes, never the file name) and streaming unwrapping:
//! plain, gzip (etcd-manager `etcd.backup.gz`), zip (k3s/RKE2), tar.gz holding one snapshot
//! (CSM `etcd-dump.bin`), zstd (Talos `.snap.zst`). Nothing is unpacked to disk.

use super::Container;
use std::io::{self, Chain, Cursor, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const GZIP: &[u8] = &[0x1f, 0x8b];
const ZIP: &[u8] = b"PK\x03\x04";
const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// Wraps the caller's reader and remembers whether *it* failed, so that a read error can be
/// told apart from a corrupt compressed stream (the first is an I/O error, the second a
/// problem of the snapshot).
pub struct Tracked<R> {
    inner: R,
    failed: Arc<AtomicBool>,
}

impl<R: Read> Tracked<R> {
    /// Wrap `inner`; the returned flag turns true when `inner.read` returns an error.
    pub fn new(inner: R) -> (Self, Arc<AtomicBool>) {
        let failed = Arc::new(AtomicBool::new(false));
        (
            Tracked {
                inner,
                failed: Arc::clone(&failed),
            },
            failed,
        )
    }
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.inner.read(buf);
        if let Err(e) = &r {
            if e.kind() != io::ErrorKind::Interrupted {
                self.failed.store(true, Ordering::Relaxed);
            }
        }
        r
    }
}

/// The peeked head and a reader that yields it again followed by the rest.
pub type Peeked<R> = (Vec<u8>, Chain<Cursor<Vec<u8>>, R>);

/// Read up to `n` bytes (fewer only at end of input) and give them back in front of the rest.
pub fn peek<R: Read>(mut r: R, n: usize) -> io::Result<Peeked<R>> {
    let mut head = Vec::with_capacity(n);
    (&mut r).take(n as u64).read_to_end(&mut head)?;
    let copy = head.clone();
    Ok((copy, Cursor::new(head).chain(r)))
}

/// Why a container could not be opened: the input's own I/O error, or a corrupt wrapper.
#[derive(Debug)]
pub enum OpenError {
    Io(io::Error),
    /// The wrapper of the given kind is corrupt; the message names it.
    Corrupt(Container, String),
}

fn corrupt(kind: Container, e: impl std::fmt::Display) -> OpenError {
    let label = match kind {
        Container::Plain => "input",
        Container::Gzip => "gzip",
        Container::Zip => "zip",
        Container::TarGz => "tar.gz",
        Container::Zstd => "zstd",
    };
    OpenError::Corrupt(kind, format!("{label}: {e}"))
}

/// Detect the container of `reader` and call `f` with the snapshot bytes inside it, the
/// container kind and the archive entry name (zip/tar). `f` runs exactly once on success.
pub fn with_payload<R: Read, T>(
    reader: R,
    f: impl FnOnce(&mut dyn Read, Container, Option<String>) -> T,
) -> Result<T, OpenError> {
    let (head, mut r) = peek(reader, 4).map_err(OpenError::Io)?;
    if head.starts_with(ZSTD) {
        let mut d = zstd::stream::read::Decoder::new(r).map_err(|e| corrupt(Container::Zstd, e))?;
        return Ok(f(&mut d, Container::Zstd, None));
    }
    if head.starts_with(ZIP) {
        loop {
            match zip::read::read_zipfile_from_stream(&mut r) {
                Ok(Some(entry)) if entry.is_dir() => continue,
                Ok(Some(mut entry)) => {
                    let name = entry.name().to_string();
                    return Ok(f(&mut entry, Container::Zip, Some(name)));
                }
                Ok(None) => {
                    return Err(OpenError::Corrupt(
                        Container::Zip,
                        "zip: the archive holds no file".into(),
                    ))
                }
                Err(zip::result::ZipError::Io(e)) => return Err(OpenError::Io(e)),
                Err(e) => return Err(corrupt(Container::Zip, e)),
            }
        }
    }
    if head.starts_with(GZIP) {
        let gz = flate2::read::MultiGzDecoder::new(r);
        let (inner, mut gz) = peek(gz, 512).map_err(|e| corrupt(Container::Gzip, e))?;
        if inner.get(257..262) == Some(b"ustar") {
            let mut archive = tar::Archive::new(gz);
            let entries = archive
                .entries()
                .map_err(|e| corrupt(Container::TarGz, e))?;
            for entry in entries {
                let mut entry = entry.map_err(|e| corrupt(Container::TarGz, e))?;
                if entry.header().entry_type().is_file() {
                    let name = entry.path().ok().map(|p| p.display().to_string());
                    return Ok(f(&mut entry, Container::TarGz, name));
                }
            }
            return Err(OpenError::Corrupt(
                Container::TarGz,
                "tar.gz: the archive holds no regular file".into(),
            ));
        }
        return Ok(f(&mut gz, Container::Gzip, None));
    }
    Ok(f(&mut r, Container::Plain, None))
}
