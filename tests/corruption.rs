//! Exhaustive corruption of a real snapshot (issue #8), at the library level: every page-boundary
//! truncation, one pseudo-random single-byte flip in every page, flips in every byte of the
//! first two pages' headers and of the sha256 trailer, and truncations of the gzip-wrapped
//! file. Each must give `Ok` with `valid == false` (the sha256 trailer covers every db byte, so
//! no corruption may pass) and never panic. For flips inside the gzip stream, `valid == true` is
//! accepted only when the flipped file still gunzips (CRC-32 included) to the identical bytes.

mod common;

use etcdguard::snapshot::{verify_reader, SnapshotReport, VerifyOptions};
use std::io::Write;

fn verify(bytes: &[u8], what: &str) -> SnapshotReport {
    let r = std::panic::catch_unwind(|| verify_reader(bytes, what, &VerifyOptions::default()));
    match r {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => panic!("{what}: in-memory reader gave Err: {e}"),
        Err(_) => panic!("{what}: verify_reader panicked"),
    }
}

/// A small real snapshot (1500 keys) and the report of the intact file.
fn snapshot() -> (Vec<u8>, SnapshotReport) {
    let dir = tempfile::tempdir().unwrap();
    let (path, rev) = common::gate::real_snapshot(dir.path(), 1500);
    let bytes = std::fs::read(&path).unwrap();
    let report = verify(&bytes, "intact");
    assert!(
        report.valid,
        "intact snapshot invalid: {:?}",
        report.problems
    );
    assert_eq!(report.revision, Some(rev));
    (bytes, report)
}

/// xorshift64: deterministic offsets, no dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn every_truncation_and_flip_is_invalid() {
    let (bytes, report) = snapshot();
    let page = report.page_size.expect("page size") as usize;
    let db_len = bytes.len() - 32;
    let pages = db_len / page;
    assert!(
        pages >= 8,
        "snapshot too small to be interesting: {pages} pages"
    );
    eprintln!("snapshot: {} bytes, {pages} pages of {page}", bytes.len());

    let mut cases = 0usize;
    // every page-boundary truncation, plus one byte either side and a cut inside the trailer
    let mut cuts: Vec<usize> = Vec::new();
    for p in 0..=pages {
        let at = p * page;
        cuts.extend([at.saturating_sub(1), at, at + 1]);
    }
    cuts.extend([db_len + 1, db_len + 16, bytes.len() - 1]);
    cuts.sort_unstable();
    cuts.dedup();
    for cut in cuts.into_iter().filter(|&c| c < bytes.len()) {
        let r = verify(&bytes[..cut], &format!("truncated at {cut}"));
        assert!(
            !r.valid,
            "truncation at {cut} of {} passed as valid",
            bytes.len()
        );
        assert!(
            !r.problems.is_empty(),
            "truncation at {cut}: invalid without a problem"
        );
        cases += 1;
    }

    // one pseudo-random flip per page
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut flips: Vec<(usize, u8)> = (0..pages)
        .map(|p| {
            let off = p * page + (next(&mut rng) as usize % page);
            (off, 1u8 << (next(&mut rng) % 8))
        })
        .collect();
    // every byte of the two meta pages' headers and meta fields (first 80 bytes), every byte of
    // the trailer, and the first 32 bytes of each of the next pages (page header, elements)
    for base in [0, page] {
        flips.extend((base..base + 80).map(|o| (o, 0xff)));
    }
    flips.extend((db_len..bytes.len()).map(|o| (o, 0x01)));
    for p in 2..pages {
        flips.extend((p * page..p * page + 32).map(|o| (o, 0x80)));
    }
    let mut copy = bytes.clone();
    for (off, mask) in flips {
        copy[off] ^= mask;
        let r = verify(&copy, &format!("flip {mask:#04x} at {off}"));
        assert!(
            !r.valid,
            "flip {mask:#04x} at {off} (page {}) passed as valid",
            off / page
        );
        copy[off] ^= mask;
        cases += 1;
    }
    eprintln!("corruption cases: {cases}, all invalid, no panic");
}

#[test]
fn truncated_gzip_is_invalid() {
    let (bytes, _) = snapshot();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&bytes).unwrap();
    let gz = gz.finish().unwrap();
    assert!(verify(&gz, "intact gzip").valid);
    let step = (gz.len() / 200).max(1);
    let mut cases = 0;
    for cut in (0..gz.len())
        .step_by(step)
        .chain([gz.len() - 1, gz.len() - 4, gz.len() - 8])
    {
        let r = verify(&gz[..cut], &format!("gzip truncated at {cut}"));
        assert!(
            !r.valid,
            "gzip truncated at {cut} of {} passed as valid",
            gz.len()
        );
        cases += 1;
    }
    // flips in the compressed stream (CRC-32 of gzip or the sha256 trailer must catch them)
    let mut copy = gz.clone();
    let mut rng = 0x1234_5678_9abc_def1u64;
    let mut equivalent = 0;
    for _ in 0..300 {
        let off = next(&mut rng) as usize % gz.len();
        copy[off] ^= 0x10;
        let r = verify(&copy, &format!("gzip flip at {off}"));
        if r.valid {
            // Allowed only when the flipped stream is still a correct gzip of the very same
            // bytes (deflate has bits that do not affect output: padding, unused code lengths).
            use std::io::Read;
            let mut out = Vec::new();
            let res = flate2::read::GzDecoder::new(&copy[..]).read_to_end(&mut out);
            assert!(
                res.is_ok() && out == bytes,
                "gzip flip at {off} of {} passed as valid but changes the content ({res:?})",
                gz.len()
            );
            equivalent += 1;
        }
        copy[off] ^= 0x10;
        cases += 1;
    }
    assert!(
        equivalent < 30,
        "too many no-op flips ({equivalent}): is the content checked at all?"
    );
    eprintln!(
        "gzip cases: {cases} ({equivalent} flips left the decompressed bytes and the CRC intact)"
    );
}

/// Every other container (zip, streamed zip, tar.gz, zstd), truncated at ~100 points: never a
/// panic; a cut inside the first 90 % (where the snapshot's own bytes are lost) is invalid; a cut
/// in the container's tail may pass only if the snapshot read is the intact one (same hash,
/// revision and key count: the central directory or end-of-archive blocks are not needed to
/// restore the snapshot itself).
#[test]
fn truncated_containers_are_invalid() {
    let (bytes, intact) = snapshot();
    let gzip = |b: &[u8]| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b).unwrap();
        gz.finish().unwrap()
    };
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut zip_bytes = Vec::new();
    {
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(&mut zip_bytes));
        z.start_file("etcd-snapshot-node1-1700000000", opts)
            .unwrap();
        z.write_all(&bytes).unwrap();
        z.finish().unwrap();
    }
    let mut zip_stream = Vec::new();
    {
        let mut z = zip::ZipWriter::new_stream(&mut zip_stream);
        z.start_file("etcd-snapshot-k3s-1700000000", opts).unwrap();
        z.write_all(&bytes).unwrap();
        z.finish().unwrap();
    }
    let mut tar_bytes = Vec::new();
    {
        let mut t = tar::Builder::new(&mut tar_bytes);
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        t.append_data(&mut h, "etcd-dump.bin", &bytes[..]).unwrap();
        t.finish().unwrap();
    }
    let containers = [
        ("zip", zip_bytes),
        ("streamed zip", zip_stream),
        ("tar.gz", gzip(&tar_bytes)),
        ("zstd", zstd::encode_all(&bytes[..], 3).unwrap()),
    ];
    let mut cases = 0;
    for (kind, c) in &containers {
        assert!(verify(c, kind).valid, "intact {kind} must be valid");
        let step = (c.len() / 100).max(1);
        for cut in (0..c.len()).step_by(step).chain([c.len() - 1]) {
            let what = format!("{kind} truncated at {cut} of {}", c.len());
            let r = verify(&c[..cut], &what);
            cases += 1;
            if cut * 10 < c.len() * 9 {
                assert!(!r.valid, "{what} passed as valid");
            } else if r.valid {
                assert_eq!(
                    (r.hash, r.revision, r.total_key),
                    (intact.hash, intact.revision, intact.total_key),
                    "{what} passed as valid with different content"
                );
            }
        }
    }
    eprintln!("container truncation cases: {cases}, no panic, no corrupt content passed");
}

/// Inputs the fuzzer (`scripts/fuzz`, target `verify_reader`) once found mishandled, kept as
/// regression tests: each must be reported as an invalid snapshot with a problem, not as an
/// I/O error (exit 2) and not as a panic.
#[test]
fn fuzz_regressions_are_invalid_snapshots() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/fuzz/verify_reader"
    );
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("fuzz regression inputs") {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let r = verify(&bytes, &name);
        assert!(!r.valid && !r.problems.is_empty(), "{name}: {r:?}");
        seen += 1;
    }
    assert!(seen >= 1, "no regression inputs in {dir}");
    // The first one: a zip local header cut short inside the zip crate's header read.
    let cut = std::fs::read(format!("{dir}/zip-local-header-cut-short")).unwrap();
    let r = verify(&cut, "zip-local-header-cut-short");
    assert!(r.problems[0].starts_with("zip: "), "{:?}", r.problems);
}
