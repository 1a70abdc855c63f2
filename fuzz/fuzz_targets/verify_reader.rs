//! `verify_reader` on arbitrary bytes: the container is detected from content, so one target
//! covers plain, gzip, zip, tar.gz and zstd inputs. Must never panic; `Err` is impossible for an
//! in-memory reader.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = etcdguard::snapshot::VerifyOptions::default();
    let r = etcdguard::snapshot::verify_reader(data, "fuzz", &opts);
    assert!(r.is_ok(), "in-memory reader gave Err");
});
