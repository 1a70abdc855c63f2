//! Gardener etcd-backup-restore stores read as its restorer reads them (issue #20): the three
//! codecs (`.gz`, `.zlib`, Go LZW `.Z`), the restore point = newest valid Full snapshot plus its
//! unbroken chain of Incr deltas, v1 and v2 folders, a store URL pointing at `v2/` itself.
//!
//! Full payloads are real etcd snapshots (`etcdctl snapshot save`, tests/common). Stores are laid
//! out as etcd-backup-restore writes them (`pkg/snapstore/snapshot.go`, `pkg/types/snapstore.go`
//! `GenerateSnapshotName`: `v2/(Full|Incr)-%08d-%08d-<unix><suffix>`); deltas as
//! `TakeDeltaSnapshot` (`pkg/snapshot/snapshotter/snapshotter.go`) writes them: `[` + one
//! `json.Marshal` of `{"etcdEvent": <clientv3.Event>, "time": <time>}` per event joined by `,` +
//! `]`, then the 32-byte SHA-256 of that JSON, then compression. The `.Z` store and the LZW
//! streams under tests/fixtures/gardener were written by Go itself (see its README.md).

mod common;

use base64::Engine as _;
use common::store::{moto_env, put, s3_client, upload_dir};
use etcdguard::snapshot::{named_decoder, Container};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// 2026-11-23T08:20:00Z.
const NOW: &str = "2026-11-23T08:20:00Z";
const NOW_UNIX: i64 = 1_795_422_000;
const DAY: i64 = 86_400;

/// Three real snapshots of one etcd, 100 revisions apart (room for each backup's deltas before
/// the next Full snapshot, as in a real store): (path, revision).
fn snaps() -> &'static [(PathBuf, i64); 3] {
    static S: std::sync::OnceLock<(tempfile::TempDir, [(PathBuf, i64); 3])> =
        std::sync::OnceLock::new();
    &S.get_or_init(|| {
        let etcd = common::Etcd::start();
        let dir = tempfile::tempdir().unwrap();
        let take = |i: usize| {
            for k in 0..100 {
                etcd.put(&format!("/registry/pods/default/p{i}-{k}"), "v");
            }
            let p = dir.path().join(format!("s{i}.db"));
            etcd.snapshot_save(&p);
            (p, etcd.revision())
        };
        let all = [take(0), take(1), take(2)];
        (dir, all)
    })
    .1
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gardener")
}

fn check(args: &[&str], env: &[(&str, &str)]) -> (i32, Value, String) {
    let out = common::store::etcdguard_env(
        &[&["check", "--output", "json", "--now", NOW][..], args].concat(),
        env,
    );
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn status(store: &str) -> Value {
    let out = common::etcdguard(&["status", "--output", "json", "--now", NOW, "--store", store]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status json")
}

fn finding<'a>(v: &'a Value, check: &str) -> &'a Value {
    v["findings"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["check"] == check))
        .unwrap_or(&Value::Null)
}

fn msg<'a>(v: &'a Value, check: &str) -> &'a str {
    finding(v, check)["message"].as_str().unwrap_or("")
}

/// Go's `time.Time` JSON (RFC 3339, UTC).
fn go_time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The JSON of one put as Go's `json.Marshal` writes a snapshotter `event` (mvccpb tags: bytes
/// in base64, zero fields and the PUT type omitted).
fn put_event(key: &str, rev: i64, unix: i64) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    format!(
        r#"{{"etcdEvent":{{"kv":{{"key":"{}","create_revision":{rev},"mod_revision":{rev},"version":1,"value":"{}"}}}},"time":"{}"}}"#,
        b64(key),
        b64("v"),
        go_time(unix)
    )
}

/// The uncompressed body of a delta with one put per revision in `start..=last`; with the
/// SHA-256 appended unless `hash` is false (etcd-backup-restore before 0.3.0).
fn delta_body(start: i64, last: i64, unix: i64, hash: bool) -> Vec<u8> {
    let events: Vec<String> = (start..=last)
        .map(|r| put_event(&format!("/registry/configmaps/default/c{r}"), r, unix))
        .collect();
    let mut body = format!("[{}]", events.join(",")).into_bytes();
    if hash {
        let sum = Sha256::digest(&body);
        body.extend_from_slice(&sum);
    }
    body
}

/// A Gardener codec: name suffix and compressor (Go's gzip/zlib writers have the same format).
#[derive(Clone, Copy, Debug)]
enum Codec {
    Gzip,
    Zlib,
    None,
}

impl Codec {
    fn suffix(self) -> &'static str {
        match self {
            Codec::Gzip => ".gz",
            Codec::Zlib => ".zlib",
            Codec::None => "",
        }
    }
    fn compress(self, data: &[u8]) -> Vec<u8> {
        match self {
            Codec::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Codec::Zlib => {
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Codec::None => data.to_vec(),
        }
    }
}

/// One Full snapshot (real, of revision `rev`) at `full_unix` plus `deltas` deltas of two
/// revisions each, `period` seconds apart, the last at `last_unix`. Returns the delta keys.
#[allow(clippy::too_many_arguments)]
fn backup(
    root: &Path,
    dir: &str,
    codec: Codec,
    snapshot: &Path,
    rev: i64,
    full_unix: i64,
    deltas: i64,
    period: i64,
    last_unix: i64,
) -> Vec<String> {
    let sfx = codec.suffix();
    let full = std::fs::read(snapshot).unwrap();
    put(
        root,
        &format!("{dir}Full-{:08}-{rev:08}-{full_unix}{sfx}", 0),
        &codec.compress(&full),
    );
    let mut keys = Vec::new();
    for i in 0..deltas {
        let (start, last) = (rev + 1 + 2 * i, rev + 2 + 2 * i);
        let at = last_unix - period * (deltas - 1 - i);
        let key = format!("{dir}Incr-{start:08}-{last:08}-{at}{sfx}");
        put(
            root,
            &key,
            &codec.compress(&delta_body(start, last, at, true)),
        );
        keys.push(key);
    }
    keys
}

/// Three daily backups as Gardener shoots take them (one Full a day), the newest 20 h old and
/// followed by 20-second deltas up to 20 s ago.
fn daily_store(root: &Path, codec: Codec) -> Vec<String> {
    let [a, b, c] = snaps();
    let full = NOW_UNIX - 20 * 3600;
    backup(
        root,
        "v2/",
        codec,
        &a.0,
        a.1,
        full - 2 * DAY,
        3,
        300,
        full - DAY - 600,
    );
    backup(
        root,
        "v2/",
        codec,
        &b.0,
        b.1,
        full - DAY,
        3,
        300,
        full - 600,
    );
    backup(root, "v2/", codec, &c.0, c.1, full, 40, 20, NOW_UNIX - 20)
}

/// The deterministic input `gen/main.go` compressed into `lzw/vec-<n>.Z`.
fn lzw_input(n: usize) -> Vec<u8> {
    let mut x: u32 = 12345;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            ((x >> 16) % 7 * 37) as u8
        })
        .collect()
}

/// An LSB-first bit stream without its first 9 bits (the leading 9-bit clear code).
fn drop_first_9_bits(z: &[u8]) -> Vec<u8> {
    let bit = |i: usize| (z[i / 8] >> (i % 8)) & 1;
    let bits = z.len() * 8 - 9;
    let mut out = vec![0u8; bits.div_ceil(8)];
    for i in 0..bits {
        out[i / 8] |= bit(i + 9) << (i % 8);
    }
    out
}

#[test]
fn lzw_streams_written_by_go_decode_exactly() {
    for n in [0usize, 1, 2, 255, 256, 5000, 70000] {
        let z = std::fs::read(fixtures().join(format!("lzw/vec-{n}.Z"))).unwrap();
        let mut out = Vec::new();
        named_decoder(&z[..], Container::Lzw)
            .read_to_end(&mut out)
            .unwrap_or_else(|e| panic!("vec-{n}: {e}"));
        assert!(out == lzw_input(n), "vec-{n}: decoded bytes differ");
        // Older Go releases wrote no leading clear code (the state after one is the initial one):
        // the same stream without its first 9 bits decodes too.
        if n > 0 {
            let mut old = Vec::new();
            named_decoder(&drop_first_9_bits(&z)[..], Container::Lzw)
                .read_to_end(&mut old)
                .unwrap_or_else(|e| panic!("vec-{n} without the clear code: {e}"));
            assert!(old == lzw_input(n), "vec-{n} without the clear code");
        }
        // Go's reader refuses a stream cut before its end code; so does ours.
        if z.len() > 4 {
            let cut = &z[..z.len() - 2];
            let r = named_decoder(cut, Container::Lzw).read_to_end(&mut Vec::new());
            assert!(r.is_err(), "vec-{n} cut short must not decode");
        }
    }
}

#[test]
fn go_written_lzw_store_passes_with_the_age_of_its_newest_delta() {
    let store = fixtures().join("store-lzw");
    // The store URL may point at the v2 folder itself, too.
    for url in [store.clone(), store.join("v2")] {
        let (code, v, err) = check(&["--store", url.to_str().unwrap()], &[]);
        assert_eq!(code, 0, "{err}\n{v:#}");
        assert_eq!(v["verdict"], "proceed");
        assert_eq!(v["snapshot"]["ageSeconds"], 20, "{v:#}");
        assert_eq!(v["snapshot"]["newestValid"]["revision"], 40);
        let m = msg(&v, "snapshot.recent");
        assert!(
            m.contains("Full-00000000-00000031-1795334400.Z + 3 deltas to Incr-00000038-00000040-1795421980.Z"),
            "{m}"
        );
    }
    let st = status(store.to_str().unwrap());
    assert_eq!(st["layout"], "gardener");
    assert_eq!(st["backups"]["count"], 3);
    assert!(st["ignored"].as_array().unwrap().is_empty(), "{st:#}");
    let newest = &st["newest"];
    assert_eq!(newest["validity"], "valid", "{newest:#}");
    assert_eq!(newest["report"]["container"], "lzw");
    assert_eq!(newest["report"]["revision"], 31);
    assert_eq!(newest["chain"]["applied"], 3);
    assert_eq!(newest["chain"]["withoutSha256"], 0);
    assert_eq!(newest["time"], "2026-11-23T08:19:40Z");
    assert_eq!(newest["chain"]["fullTime"], "2026-11-22T08:00:00Z");
}

#[test]
fn a_corrupt_go_lzw_delta_ends_the_chain_before_it() {
    let d = tempfile::tempdir().unwrap();
    let src = fixtures().join("store-lzw/v2");
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        let mut b = std::fs::read(e.path()).unwrap();
        let name = e.file_name().into_string().unwrap();
        if name.starts_with("Incr-00000035") {
            let mid = b.len() / 2;
            b[mid] ^= 0x55;
        }
        put(d.path(), &format!("v2/{name}"), &b);
    }
    let st = status(d.path().to_str().unwrap());
    let chain = &st["newest"]["chain"];
    assert_eq!(chain["applied"], 1, "{chain:#}");
    assert_eq!(
        chain["broken"]["key"],
        "v2/Incr-00000035-00000037-1795421960.Z"
    );
    assert_eq!(st["newest"]["time"], "2026-11-23T08:19:00Z");

    // A corrupt newest Full: the restore point is the day before's Full and its delta.
    let full = d.path().join("v2/Full-00000000-00000031-1795334400.Z");
    let mut b = std::fs::read(&full).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x55;
    std::fs::write(&full, b).unwrap();
    let st = status(d.path().to_str().unwrap());
    assert_eq!(st["newest"]["validity"], "invalid", "{:#}", st["newest"]);
    let v = &st["newestValid"];
    assert_eq!(v["dataKey"], "v2/Full-00000000-00000020-1795248000.Z");
    assert_eq!(v["chain"]["applied"], 1);
    assert_eq!(v["chain"]["endRevision"], 23);
    assert_eq!(v["ageSeconds"], NOW_UNIX - 1_795_248_300);
}

#[test]
fn daily_full_with_20s_deltas_is_fresh_in_every_codec() {
    for codec in [Codec::Gzip, Codec::Zlib, Codec::None] {
        let d = tempfile::tempdir().unwrap();
        let deltas = daily_store(d.path(), codec);
        let store = d.path().to_str().unwrap();
        let (code, v, err) = check(&["--store", store], &[]);
        assert_eq!(code, 0, "{codec:?}: {err}\n{v:#}");
        assert_eq!(v["snapshot"]["ageSeconds"], 20, "{codec:?}: {v:#}");
        let last = deltas.last().unwrap();
        let last_name = last.rsplit('/').next().unwrap();
        assert!(
            msg(&v, "snapshot.recent").contains(&format!("+ 40 deltas to {last_name}")),
            "{codec:?}: {}",
            msg(&v, "snapshot.recent")
        );
        let rev = snaps()[2].1 + 80;
        assert_eq!(v["snapshot"]["newestValid"]["revision"], rev, "{codec:?}");
        let st = status(store);
        assert_eq!(st["backups"]["count"], 3, "{codec:?}");
        assert_eq!(st["newest"]["chain"]["listed"], 40);
        assert!(
            st["ignored"].as_array().unwrap().is_empty(),
            "{:#}",
            st["ignored"]
        );

        // The same Full snapshot without its deltas is 20 hours old: refused.
        for k in &deltas {
            std::fs::remove_file(d.path().join(k)).unwrap();
        }
        let (code, v, _) = check(&["--store", store], &[]);
        assert_eq!(code, 1, "{codec:?}: {v:#}");
        assert_eq!(finding(&v, "snapshot.recent")["severity"], "deny");
        assert!(msg(&v, "snapshot.recent").contains("20h 0m old"), "{v:#}");
    }
}

#[test]
fn broken_chains_end_the_restore_point_at_the_last_good_delta() {
    let (snap, rev) = &snaps()[2];
    let rev = *rev;
    let full = NOW_UNIX - 3600;
    let build = || {
        let d = tempfile::tempdir().unwrap();
        let keys = backup(
            d.path(),
            "v2/",
            Codec::Gzip,
            snap,
            rev,
            full,
            5,
            60,
            NOW_UNIX - 60,
        );
        (d, keys)
    };
    // keys[i] ends at revision new+2i+2, at NOW - 60 - 60*(4-i).
    /// (label, damage done to the store given the delta keys, deltas still applied, reason).
    type Case<'a> = (&'a str, Box<dyn Fn(&Path, &[String]) + 'a>, usize, &'a str);
    let cases: Vec<Case> = vec![
        (
            "sha256 mismatch",
            Box::new(|root, keys| {
                let p = root.join(&keys[2]);
                let mut body = delta_body(rev + 5, rev + 6, 0, true);
                let n = body.len();
                body[n - 1] ^= 1;
                std::fs::write(p, Codec::Gzip.compress(&body)).unwrap();
            }),
            2,
            "sha256 mismatch",
        ),
        (
            "gap",
            Box::new(|root, keys| std::fs::remove_file(root.join(&keys[2])).unwrap()),
            2,
            "revision gap",
        ),
        (
            "events do not match the name",
            Box::new(|root, keys| {
                let body = delta_body(rev + 5, rev + 5, 0, true);
                std::fs::write(root.join(&keys[2]), Codec::Gzip.compress(&body)).unwrap();
            }),
            2,
            "name says the delta ends at",
        ),
        (
            "not gzip although named .gz",
            Box::new(|root, keys| {
                let body = delta_body(rev + 7, rev + 8, 0, true);
                std::fs::write(root.join(&keys[3]), body).unwrap();
            }),
            3,
            "gzip",
        ),
        (
            "truncated",
            Box::new(|root, keys| {
                let p = root.join(&keys[1]);
                let b = std::fs::read(&p).unwrap();
                std::fs::write(&p, &b[..b.len() / 2]).unwrap();
            }),
            1,
            "",
        ),
    ];
    for (label, damage, applied, reason) in cases {
        let (d, keys) = build();
        damage(d.path(), &keys);
        let st = status(d.path().to_str().unwrap());
        let newest = &st["newest"];
        assert_eq!(newest["validity"], "valid", "{label}");
        let chain = &newest["chain"];
        assert_eq!(chain["applied"], applied, "{label}: {chain:#}");
        let broken_key = if label == "gap" {
            &keys[3]
        } else {
            &keys[applied]
        };
        assert_eq!(&chain["broken"]["key"], broken_key.as_str(), "{label}");
        assert!(
            chain["broken"]["reason"].as_str().unwrap().contains(reason),
            "{label}: {chain:#}"
        );
        assert_eq!(chain["endKey"], keys[applied - 1].as_str(), "{label}");
        let end = NOW_UNIX - 60 - 60 * (4 - (applied as i64 - 1));
        assert_eq!(newest["ageSeconds"], NOW_UNIX - end, "{label}");
        // The gate names the break; the restore point is still young enough here.
        let (code, v, _) = check(&["--store", d.path().to_str().unwrap()], &[]);
        assert_eq!(code, 0, "{label}: {v:#}");
        assert!(
            msg(&v, "snapshot.recent").contains("delta chain broken at"),
            "{label}"
        );
    }
}

#[test]
fn deltas_without_sha256_from_old_releases_are_applied() {
    let (snap, rev) = &snaps()[2];
    let rev = *rev;
    let d = tempfile::tempdir().unwrap();
    let full = NOW_UNIX - 600;
    let keys = backup(
        d.path(),
        "v2/",
        Codec::Zlib,
        snap,
        rev,
        full,
        2,
        60,
        NOW_UNIX - 60,
    );
    let body = delta_body(rev + 3, rev + 4, 0, false);
    std::fs::write(d.path().join(&keys[1]), Codec::Zlib.compress(&body)).unwrap();
    let st = status(d.path().to_str().unwrap());
    let chain = &st["newest"]["chain"];
    assert_eq!(chain["applied"], 2, "{chain:#}");
    assert_eq!(chain["withoutSha256"], 1);
    assert!(chain["broken"].is_null());
}

#[test]
fn corrupt_newest_full_walks_back_to_the_previous_full_and_its_deltas() {
    let d = tempfile::tempdir().unwrap();
    let [_, b, c] = snaps();
    let older = NOW_UNIX - 2 * 3600;
    let older_deltas = backup(
        d.path(),
        "v2/",
        Codec::Gzip,
        &b.0,
        b.1,
        older,
        3,
        600,
        NOW_UNIX - 3600,
    );
    // The newest Full is cut in half (an interrupted upload), its deltas are fine.
    let newest = NOW_UNIX - 1800;
    let newest_deltas = backup(
        d.path(),
        "v2/",
        Codec::Gzip,
        &c.0,
        c.1,
        newest,
        2,
        60,
        NOW_UNIX - 60,
    );
    let full_key = format!("v2/Full-00000000-{:08}-{newest}.gz", c.1);
    let b = std::fs::read(d.path().join(&full_key)).unwrap();
    std::fs::write(d.path().join(&full_key), &b[..b.len() / 2]).unwrap();
    let st = status(d.path().to_str().unwrap());
    assert_eq!(st["newest"]["dataKey"], full_key.as_str());
    assert_eq!(st["newest"]["validity"], "invalid", "{:#}", st["newest"]);
    let valid = &st["newestValid"];
    assert_eq!(valid["chain"]["applied"], 3, "{valid:#}");
    assert_eq!(valid["chain"]["endKey"], older_deltas[2].as_str());
    assert_eq!(valid["ageSeconds"], 3600);
    assert_eq!(newest_deltas.len(), 2);
    // An hour old: within the default 3h, but the newest backup being corrupt is a warning.
    let (code, v, _) = check(&["--store", d.path().to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(finding(&v, "snapshot.valid")["severity"], "warn");
}

#[test]
fn a_full_named_gz_that_is_not_gzip_is_not_restorable() {
    let d = tempfile::tempdir().unwrap();
    let (snap, rev) = &snaps()[2];
    let raw = std::fs::read(snap).unwrap();
    put(
        d.path(),
        &format!("v2/Full-00000000-{rev:08}-{}.gz", NOW_UNIX - 60),
        &raw,
    );
    put(
        d.path(),
        &format!("v2/Full-00000000-{rev:08}-{}.bz2", NOW_UNIX - 30),
        &raw,
    );
    let st = status(d.path().to_str().unwrap());
    let checked = st["checked"].as_array().unwrap();
    assert_eq!(checked.len(), 2);
    assert!(
        checked[0]["reason"].as_str().unwrap().contains(".bz2"),
        "{:#}",
        checked[0]
    );
    let r = &checked[1];
    assert_eq!(r["validity"], "invalid");
    assert!(
        r["reason"].as_str().unwrap().contains("gzip magic"),
        "{r:#}"
    );
}

#[test]
fn v1_backup_folders_are_read() {
    let d = tempfile::tempdir().unwrap();
    let [a, b, c] = snaps();
    let full = NOW_UNIX - 3 * 3600;
    for (s, at) in [(a, full - 2 * DAY), (b, full - DAY)] {
        backup(
            d.path(),
            &format!("etcd-main/v1/Backup-{at}/"),
            Codec::None,
            &s.0,
            s.1,
            at,
            2,
            60,
            at + 120,
        );
    }
    let dir = format!("etcd-main/v1/Backup-{full}/");
    backup(
        d.path(),
        &dir,
        Codec::None,
        &c.0,
        c.1,
        full,
        4,
        300,
        NOW_UNIX - 120,
    );
    let (code, v, err) = check(&["--store", d.path().to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{err}\n{v:#}");
    assert_eq!(v["snapshot"]["ageSeconds"], 120);
    let st = status(d.path().join("etcd-main/v1").to_str().unwrap());
    assert_eq!(st["layout"], "gardener");
    assert_eq!(st["backups"]["count"], 3);
    assert_eq!(st["newest"]["chain"]["applied"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_store_url_at_the_v2_folder() {
    let moto = common::Moto::start();
    let d = tempfile::tempdir().unwrap();
    daily_store(d.path(), Codec::Gzip);
    let client = s3_client(&moto.endpoint);
    upload_dir(&client, "shoots", "shoot--dev--a/etcd-main", d.path()).await;
    for url in [
        "s3://shoots/shoot--dev--a/etcd-main",
        "s3://shoots/shoot--dev--a/etcd-main/v2",
    ] {
        let (code, v, err) = check(
            &[
                "--store",
                url,
                "--s3-endpoint",
                &moto.endpoint,
                "--s3-path-style",
            ],
            &moto_env(),
        );
        assert_eq!(code, 0, "{url}: {err}\n{v:#}");
        assert_eq!(v["snapshot"]["ageSeconds"], 20, "{url}");
    }
}

/// Issue #21: a Gardener store read again reads nothing it read before (the Full snapshot and
/// every delta are known by key, size and mtime); a new delta alone is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_chain_is_not_read_again_and_a_new_delta_alone_is() {
    use etcdguard::store::{self, InspectOptions, S3Options, StoreUrl};
    let d = tempfile::tempdir().unwrap();
    daily_store(d.path(), Codec::Gzip);
    let url = StoreUrl::parse(d.path().to_str().unwrap()).unwrap();
    let now = chrono::DateTime::from_timestamp(NOW_UNIX, 0).unwrap();
    let opts = InspectOptions::new(now);
    let stats = opts.cache.stats.clone();
    let read = || async {
        store::inspect(&url, &S3Options::default(), &opts)
            .await
            .unwrap()
    };
    let applied = |f: &store::StoreFacts| f.newest_valid.as_ref().unwrap().chain.clone().unwrap();

    let first = applied(&read().await);
    assert_eq!(first.applied, 40);
    // The newest Full, and the earlier ones continuity compares it with (#22).
    let (verified, bytes) = (stats.verifications.get(), stats.bytes_read.get());
    assert!(verified >= 1);
    assert_eq!(applied(&read().await).end_key, first.end_key);
    assert_eq!(stats.verifications.get(), verified);
    assert_eq!(stats.bytes_read.get(), bytes, "nothing read again");
    assert!(
        stats.cache_hits.get() >= 41,
        "the Full snapshot and 40 deltas at least"
    );

    // One more delta after the last one.
    let (start, at) = (first.end_revision + 1, NOW_UNIX - 5);
    let body = Codec::Gzip.compress(&delta_body(start, start + 1, at, true));
    put(
        d.path(),
        &format!("v2/Incr-{start:08}-{:08}-{at}.gz", start + 1),
        &body,
    );
    let third = applied(&read().await);
    assert_eq!(third.applied, 41);
    assert_eq!(stats.verifications.get(), verified);
    assert_eq!(stats.bytes_read.get(), bytes + body.len() as u64);
}
