//! Container detection by content (magic bytes) and streaming unwrapping: plain, gzip
//! (etcd-manager `etcd.backup.gz`), zip (k3s/RKE2), tar.gz holding one snapshot (CSM
//! `etcd-dump.bin`), zstd (Talos `.snap.zst`). A layout whose writer names its codec (Gardener:
//! `.gz`, `.zlib`, `.Z`) passes it as `expect`; the content must then be that codec, as the
//! upstream restorer decodes by name. Nothing is unpacked to disk.

use super::Container;
use std::io::{self, Chain, Cursor, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const GZIP: &[u8] = &[0x1f, 0x8b];
const ZIP: &[u8] = b"PK\x03\x04";
const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
/// Smallest possible bbolt file: two meta pages and one root page of the minimum 1 KiB size.
const MIN_SNAPSHOT: u64 = 3 * 1024;

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
        Container::Zlib => "zlib",
        Container::Lzw => "lzw",
    };
    OpenError::Corrupt(kind, format!("{label}: {e}"))
}

/// Detect the container of `reader` and call `f` with the snapshot bytes inside it, the
/// container kind and the archive entry name (zip/tar). `f` runs exactly once on success.
pub fn with_payload<R: Read, T>(
    reader: R,
    expect: Option<Container>,
    f: impl FnOnce(&mut dyn Read, Container, Option<String>) -> T,
) -> Result<T, OpenError> {
    let (head, mut r) = peek(reader, 4).map_err(OpenError::Io)?;
    // Gardener's codecs, decoded by name the way etcd-backup-restore's `DecompressSnapshot`
    // does (`pkg/compressor/compressor.go`: Go's gzip, zlib and `lzw.NewReader(r, lzw.LSB, 8)`).
    match expect {
        Some(Container::Plain) => return Ok(f(&mut r, Container::Plain, None)),
        Some(Container::Gzip) if !head.starts_with(GZIP) => {
            return Err(corrupt(
                Container::Gzip,
                "the name says gzip (`.gz`) but the data does not start with the gzip magic 1f 8b",
            ))
        }
        Some(Container::Gzip) => {
            let mut gz = flate2::read::MultiGzDecoder::new(r);
            return Ok(f(&mut gz, Container::Gzip, None));
        }
        Some(Container::Zlib) => {
            let mut z = flate2::read::ZlibDecoder::new(r);
            return Ok(f(&mut z, Container::Zlib, None));
        }
        Some(Container::Lzw) => {
            let mut d = LzwReader::new(io::BufReader::new(r));
            return Ok(f(&mut d, Container::Lzw, None));
        }
        _ => {}
    }
    if head.starts_with(ZSTD) {
        let mut d = zstd::stream::read::Decoder::new(r).map_err(|e| corrupt(Container::Zstd, e))?;
        return Ok(f(&mut d, Container::Zstd, None));
    }
    if head.starts_with(ZIP) {
        return open_zip(&mut r, 64, f);
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
                // The first regular file large enough to be a bbolt file (two meta pages and a
                // root page of at least 1 KiB each); small files such as metadata are skipped.
                let size = entry.header().size().unwrap_or(0);
                if entry.header().entry_type().is_file() && size >= MIN_SNAPSHOT {
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

/// A decoder for a stream compressed with `codec` as named by its writer (Gardener deltas): gzip,
/// zlib or Go LZW; anything else is passed through unchanged.
pub fn named_decoder<'a, R: Read + 'a>(reader: R, codec: Container) -> Box<dyn Read + 'a> {
    match codec {
        Container::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Container::Zlib => Box::new(flate2::read::ZlibDecoder::new(reader)),
        Container::Lzw => Box::new(LzwReader::new(io::BufReader::new(reader))),
        _ => Box::new(reader),
    }
}

/// Fixed part of a zip local file header.
const ZIP_LOCAL_HEADER: usize = 30;
/// General-purpose flag: sizes follow the data in a data descriptor.
const ZIP_DATA_DESCRIPTOR: u16 = 0x08;
const ZIP_DEFLATE: u16 = 8;

fn le16(b: &[u8], off: usize) -> u16 {
    b.get(off..off + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

/// A deflated zip entry followed by its data descriptor (Go `archive/zip`'s streaming writer: the
/// local header holds no CRC or sizes, the descriptor after the data does, 64-bit sizes for
/// zip64 entries over 4 GiB). At the end of the deflate stream the descriptor's CRC-32 is
/// compared with the data's, as Go's reader does (`readDataDescriptor`, which also ignores the
/// sizes because their width is ambiguous); a mismatch or a missing descriptor is a read error.
struct DescribedEntry<R: io::BufRead> {
    inflate: flate2::bufread::DeflateDecoder<R>,
    crc: crc32fast::Hasher,
    checked: bool,
}

/// Signature that optionally starts a zip data descriptor.
const ZIP_DESCRIPTOR_SIG: &[u8] = b"PK\x07\x08";

impl<R: io::BufRead> Read for DescribedEntry<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inflate.read(buf)?;
        if let Some(data) = buf.get(..n) {
            self.crc.update(data);
        }
        if n > 0 || buf.is_empty() || self.checked {
            return Ok(n);
        }
        self.checked = true;
        let rest = self.inflate.get_mut();
        let mut word = [0u8; 4];
        let missing = |e: io::Error| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the entry ends without its data descriptor ({e})"),
            )
        };
        rest.read_exact(&mut word).map_err(missing)?;
        if word == ZIP_DESCRIPTOR_SIG {
            rest.read_exact(&mut word).map_err(missing)?;
        }
        let want = u32::from_le_bytes(word);
        let got = self.crc.clone().finalize();
        if want != got {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("checksum error: the data descriptor says CRC-32 {want:08x}, the data has {got:08x}"),
            ));
        }
        Ok(0)
    }
}

/// Pull adapter over weezl's push decoder for Go `compress/lzw` streams (LSB order, 8-bit
/// literals: GIF semantics, without TIFF's early change). As with Go's reader, a stream that ends
/// before its end code is an error, and nothing after the end code is read.
struct LzwReader<R> {
    inner: R,
    decoder: weezl::decode::Decoder,
    done: bool,
}

impl<R> LzwReader<R> {
    fn new(inner: R) -> Self {
        LzwReader {
            inner,
            decoder: weezl::decode::Decoder::new(weezl::BitOrder::Lsb, 8),
            done: false,
        }
    }
}

impl<R: io::BufRead> Read for LzwReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.done || out.is_empty() {
            return Ok(0);
        }
        loop {
            let input = self.inner.fill_buf()?;
            let at_end = input.is_empty();
            let r = self.decoder.decode_bytes(input, out);
            self.inner.consume(r.consumed_in);
            match r.status {
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
                Ok(weezl::LzwStatus::Done) => {
                    self.done = true;
                    return Ok(r.consumed_out);
                }
                Ok(_) if r.consumed_out > 0 => return Ok(r.consumed_out),
                Ok(_) if at_end => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the LZW stream ends without its end code",
                    ))
                }
                Ok(_) => {}
            }
        }
    }
}

/// The first file of a zip stream. Archives written by a seekable writer go through
/// `zip::read::read_zipfile_from_stream`. Go's `archive/zip` (k3s, RKE2) sets the
/// data-descriptor flag on file entries, which that function refuses; a deflated entry is
/// self-delimiting, so it is inflated straight from the stream after its local header.
fn open_zip<T>(
    r: &mut dyn Read,
    dirs_left: u32,
    f: impl FnOnce(&mut dyn Read, Container, Option<String>) -> T,
) -> Result<T, OpenError> {
    let (head, mut rest) = peek(r, ZIP_LOCAL_HEADER).map_err(OpenError::Io)?;
    if !head.starts_with(ZIP) {
        if head.starts_with(b"PK\x01\x02") || head.starts_with(b"PK\x05\x06") {
            return Err(corrupt(Container::Zip, "the archive holds no file"));
        }
        return Err(corrupt(
            Container::Zip,
            "no local file header where one was expected",
        ));
    }
    let flags = le16(&head, 6);
    let method = le16(&head, 8);
    if flags & ZIP_DATA_DESCRIPTOR != 0 {
        let name_len = usize::from(le16(&head, 26));
        let extra_len = usize::from(le16(&head, 28));
        let mut header = vec![0u8; ZIP_LOCAL_HEADER + name_len + extra_len];
        rest.read_exact(&mut header)
            .map_err(|e| corrupt(Container::Zip, e))?;
        let name_bytes = header
            .get(ZIP_LOCAL_HEADER..ZIP_LOCAL_HEADER + name_len)
            .unwrap_or(&[]);
        let name = String::from_utf8_lossy(name_bytes).into_owned();
        if method != ZIP_DEFLATE || name.ends_with('/') {
            return Err(corrupt(
                Container::Zip,
                format!(
                    "entry {name:?} (method {method}) has a data descriptor and cannot be streamed"
                ),
            ));
        }
        let mut inflate = DescribedEntry {
            inflate: flate2::bufread::DeflateDecoder::new(io::BufReader::new(rest)),
            crc: crc32fast::Hasher::new(),
            checked: false,
        };
        return Ok(f(&mut inflate, Container::Zip, Some(name)));
    }
    let entry = zip::read::read_zipfile_from_stream(&mut rest);
    if matches!(&entry, Ok(Some(e)) if e.is_dir()) {
        // Dropping the entry leaves `rest` at the next local header.
        drop(entry);
        if dirs_left == 0 {
            return Err(corrupt(
                Container::Zip,
                "more than 64 directory entries before the first file",
            ));
        }
        return open_zip(&mut rest, dirs_left - 1, f);
    }
    let result = match entry {
        Ok(Some(mut entry)) => {
            let name = entry.name().to_string();
            Ok(f(&mut entry, Container::Zip, Some(name)))
        }
        Ok(None) => Err(corrupt(Container::Zip, "the archive holds no file")),
        // An I/O error here is mostly the archive ending inside a header ("failed to fill whole
        // buffer"): a corrupt zip. When the caller's reader itself failed, `verify_reader`
        // turns it back into an I/O error (see `Tracked`).
        Err(e) => Err(corrupt(Container::Zip, e)),
    };
    result
}
