//! k3s / RKE2 snapshot zips as Go's `archive/zip` streams them, zip64 included (issue #20).
//!
//! k3s `pkg/etcd/snapshot.go` (`compressSnapshot`) zips the snapshot file with
//! `zip.FileInfoHeader`, `Method = zip.Deflate`, `Modified = now` and `CreateHeader`, which sets
//! the data-descriptor flag: the local header carries no CRC or sizes, a descriptor follows the
//! data. For a snapshot over 4 GiB Go writes the entry as zip64 (`archive/zip/writer.go`): 64-bit
//! sizes in the descriptor, version 4.5 and 0xFFFFFFFF sizes in the central directory with a
//! zip64 extra field, and the zip64 end records. `go_zip` writes exactly those structures around
//! a small real snapshot (a 4 GiB payload is too heavy for CI).

mod common;

use common::store::{put, snaps};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::Path;

const NOW: &str = "2026-11-23T08:20:00Z";
const NOW_UNIX: u32 = 1_795_422_000;

fn le16(b: &mut Vec<u8>, v: u16) {
    b.extend_from_slice(&v.to_le_bytes());
}
fn le32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}
fn le64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_le_bytes());
}

/// A one-entry zip as Go's `zip.Writer.CreateHeader` + `Close` write it (see the module doc);
/// `zip64` writes the entry as Go does for one over 4 GiB.
fn go_zip(name: &str, data: &[u8], mtime: u32, zip64: bool) -> Vec<u8> {
    let mut deflated = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    deflated.write_all(data).unwrap();
    let deflated = deflated.finish().unwrap();
    let crc = crc32fast::hash(data);
    // Extended timestamp extra field (0x5455) for `Modified`, in both headers.
    let mut ext = Vec::new();
    le16(&mut ext, 0x5455);
    le16(&mut ext, 5);
    ext.push(1);
    le32(&mut ext, mtime);
    let (dos_time, dos_date) = (0x4280u16, 0x5b77u16); // any DOS time; readers use the extra
    let mut z = Vec::new();
    // Local file header: version 2.0, flag 0x8, deflate, CRC and sizes zero.
    le32(&mut z, 0x0403_4b50);
    le16(&mut z, 20);
    le16(&mut z, 0x8);
    le16(&mut z, 8);
    le16(&mut z, dos_time);
    le16(&mut z, dos_date);
    le32(&mut z, 0);
    le32(&mut z, 0);
    le32(&mut z, 0);
    le16(&mut z, name.len() as u16);
    le16(&mut z, ext.len() as u16);
    z.extend_from_slice(name.as_bytes());
    z.extend_from_slice(&ext);
    z.extend_from_slice(&deflated);
    // Data descriptor (with its de-facto signature), 64-bit sizes for zip64.
    le32(&mut z, 0x0807_4b50);
    le32(&mut z, crc);
    if zip64 {
        le64(&mut z, deflated.len() as u64);
        le64(&mut z, data.len() as u64);
    } else {
        le32(&mut z, deflated.len() as u32);
        le32(&mut z, data.len() as u32);
    }
    // Central directory.
    let cd_offset = z.len() as u64;
    let mut extra = ext.clone();
    if zip64 {
        le16(&mut extra, 0x0001);
        le16(&mut extra, 24);
        le64(&mut extra, data.len() as u64);
        le64(&mut extra, deflated.len() as u64);
        le64(&mut extra, 0);
    }
    le32(&mut z, 0x0201_4b50);
    le16(&mut z, 3 << 8 | 20); // made by Unix, 2.0
    le16(&mut z, if zip64 { 45 } else { 20 });
    le16(&mut z, 0x8);
    le16(&mut z, 8);
    le16(&mut z, dos_time);
    le16(&mut z, dos_date);
    le32(&mut z, crc);
    if zip64 {
        le32(&mut z, u32::MAX);
        le32(&mut z, u32::MAX);
    } else {
        le32(&mut z, deflated.len() as u32);
        le32(&mut z, data.len() as u32);
    }
    le16(&mut z, name.len() as u16);
    le16(&mut z, extra.len() as u16);
    le16(&mut z, 0); // comment
    le16(&mut z, 0); // disk
    le16(&mut z, 0); // internal attributes
    le32(&mut z, 0o100600 << 16); // external attributes: regular file 0600
    le32(&mut z, 0); // offset
    z.extend_from_slice(name.as_bytes());
    z.extend_from_slice(&extra);
    let cd_size = z.len() as u64 - cd_offset;
    if zip64 {
        let end64 = z.len() as u64;
        le32(&mut z, 0x0606_4b50);
        le64(&mut z, 44);
        le16(&mut z, 45);
        le16(&mut z, 45);
        le32(&mut z, 0);
        le32(&mut z, 0);
        le64(&mut z, 1);
        le64(&mut z, 1);
        le64(&mut z, cd_size);
        le64(&mut z, cd_offset);
        le32(&mut z, 0x0706_4b50);
        le32(&mut z, 0);
        le64(&mut z, end64);
        le32(&mut z, 1);
    }
    le32(&mut z, 0x0605_4b50);
    le16(&mut z, 0);
    le16(&mut z, 0);
    let (records, size, offset) = if zip64 {
        (u16::MAX, u32::MAX, u32::MAX)
    } else {
        (1, cd_size as u32, cd_offset as u32)
    };
    le16(&mut z, records);
    le16(&mut z, records);
    le32(&mut z, size);
    le32(&mut z, offset);
    le16(&mut z, 0);
    z
}

fn status(store: &Path) -> Value {
    let out = common::etcdguard(&[
        "status",
        "--output",
        "json",
        "--now",
        NOW,
        "--store",
        store.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status json")
}

/// Three scheduled k3s snapshots of node `ip-10-0-1-5.eu-west-1.compute.internal`, 12 h apart,
/// the newest 20 min old, zipped by `zip`, each with its `.metadata/` sidecar. Returns the
/// newest's file name.
fn k3s_store(root: &Path, zip: impl Fn(&str, &[u8], u32) -> Vec<u8>) -> String {
    let s = snaps();
    let node = "ip-10-0-1-5.eu-west-1.compute.internal";
    let mut newest = String::new();
    for (i, snap) in [&s.old.0, &s.old.0, &s.new.0].iter().enumerate() {
        let t = NOW_UNIX - 1200 - 12 * 3600 * (2 - i as u32);
        let name = format!("etcd-snapshot-{node}-{t}");
        let data = std::fs::read(snap).unwrap();
        put(
            root,
            &format!("snapshots/{name}.zip"),
            &zip(&name, &data, t),
        );
        put(root, &format!(".metadata/{name}.zip"), b"{\"k\":\"v\"}");
        newest = format!("snapshots/{name}.zip");
    }
    newest
}

#[test]
fn go_zip_and_go_zip64_snapshots_are_read() {
    for zip64 in [false, true] {
        let d = tempfile::tempdir().unwrap();
        let newest = k3s_store(d.path(), |n, b, t| go_zip(n, b, t, zip64));
        // The archive is well formed: the zip crate's central-directory reader agrees.
        let bytes = std::fs::read(d.path().join(&newest)).unwrap();
        let mut a = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).unwrap();
        let mut entry = a.by_index(0).unwrap();
        let mut back = Vec::new();
        entry.read_to_end(&mut back).unwrap();
        assert_eq!(
            back,
            std::fs::read(&snaps().new.0).unwrap(),
            "zip64={zip64}"
        );
        drop(entry);

        let st = status(d.path());
        assert_eq!(st["layout"], "k3s", "zip64={zip64}");
        assert_eq!(st["backups"]["count"], 3);
        let n = &st["newest"];
        assert_eq!(n["dataKey"], newest.as_str());
        assert_eq!(n["validity"], "valid", "zip64={zip64}: {n:#}");
        assert_eq!(n["report"]["container"], "zip");
        assert_eq!(n["report"]["revision"], snaps().new.1);
        assert_eq!(n["ageSeconds"], 1200);

        let out = common::etcdguard(&[
            "check",
            "--output",
            "json",
            "--now",
            NOW,
            "--store",
            d.path().to_str().unwrap(),
        ]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        assert_eq!(out.status.code(), Some(0), "zip64={zip64}: {v:#}");
        assert_eq!(v["verdict"], "proceed");
    }
}

#[test]
fn a_crc_mismatch_in_the_data_descriptor_is_not_restorable() {
    let d = tempfile::tempdir().unwrap();
    let newest = k3s_store(d.path(), |n, b, t| go_zip(n, b, t, true));
    let p = d.path().join(&newest);
    let mut bytes = std::fs::read(&p).unwrap();
    // The descriptor's CRC follows its signature; Go's reader says "zip: checksum error".
    let at = bytes
        .windows(4)
        .position(|w| w == b"PK\x07\x08")
        .expect("descriptor")
        + 4;
    bytes[at] ^= 0xff;
    std::fs::write(&p, &bytes).unwrap();
    let st = status(d.path());
    let n = &st["newest"];
    assert_eq!(n["validity"], "invalid", "{n:#}");
    assert!(
        n["reason"].as_str().unwrap().contains("checksum error"),
        "{n:#}"
    );
    assert_eq!(st["newestValid"]["ageSeconds"], 1200 + 12 * 3600);
}

#[test]
fn zip64_with_sizes_in_the_local_header_is_read() {
    // Writers that seek back (Info-ZIP, the zip crate) put the zip64 sizes in the local header.
    let d = tempfile::tempdir().unwrap();
    k3s_store(d.path(), |name, data, _| {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let o = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        w.start_file(name, o).unwrap();
        w.write_all(data).unwrap();
        w.finish().unwrap().into_inner()
    });
    let st = status(d.path());
    assert_eq!(st["newest"]["validity"], "valid", "{:#}", st["newest"]);
    assert_eq!(st["newest"]["report"]["revision"], snaps().new.1);
}

/// The real over-4-GiB case, streamed (nothing on disk): a Go-shaped zip64 entry of 4 GiB + 1 MiB
/// of zeros, its 64-bit data descriptor written after the data as Go does. Only the zip layer is
/// judged (zeros are no snapshot). Slow, so not in CI:
/// `cargo test --release --test store_k3s -- --ignored`.
#[test]
#[ignore = "deflates and scans 4 GiB"]
fn zip64_entry_over_4_gib_streams() {
    const N: u64 = (4 << 30) + (1 << 20);
    let zeros = vec![0u8; 1 << 20];
    let mut h = crc32fast::Hasher::new();
    for _ in 0..(N >> 20) {
        h.update(&zeros);
    }
    let crc = h.finalize();
    let name = "etcd-snapshot-n1-1795420800";
    let mut head = Vec::new();
    le32(&mut head, 0x0403_4b50);
    le16(&mut head, 20);
    le16(&mut head, 0x8);
    le16(&mut head, 8);
    for _ in 0..2 {
        le16(&mut head, 0);
    }
    for _ in 0..3 {
        le32(&mut head, 0);
    }
    le16(&mut head, name.len() as u16);
    le16(&mut head, 0);
    head.extend_from_slice(name.as_bytes());

    /// The deflated data, then the descriptor with the compressed length counted on the way.
    struct Entry<R> {
        deflate: R,
        compressed: u64,
        tail: Option<std::io::Cursor<Vec<u8>>>,
        crc: u32,
    }
    impl<R: Read> Read for Entry<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.tail.is_none() {
                let n = self.deflate.read(buf)?;
                if n > 0 {
                    self.compressed += n as u64;
                    return Ok(n);
                }
                let mut d = Vec::new();
                le32(&mut d, 0x0807_4b50);
                le32(&mut d, self.crc);
                le64(&mut d, self.compressed);
                le64(&mut d, N);
                self.tail = Some(std::io::Cursor::new(d));
            }
            self.tail.as_mut().map_or(Ok(0), |t| t.read(buf))
        }
    }
    let entry = Entry {
        deflate: flate2::read::DeflateEncoder::new(
            std::io::repeat(0).take(N),
            flate2::Compression::fast(),
        ),
        compressed: 0,
        tail: None,
        crc,
    };
    let r = etcdguard::snapshot::verify_reader(
        std::io::Cursor::new(head).chain(entry),
        "zip64",
        &Default::default(),
    )
    .expect("read");
    assert_eq!(r.file_size, N);
    assert!(
        !r.problems.iter().any(|p| p.contains("zip")),
        "{:?}",
        r.problems
    );
}
