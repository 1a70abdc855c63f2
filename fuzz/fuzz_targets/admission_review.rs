//! AdmissionReview parsing (the webhook's own parser and the kube types) on arbitrary bytes:
//! errors are fine, panics are not.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = etcdguard_webhook::review::parse_review(data);
    let _ = etcdguard_webhook::review::parse_review_with_kube(data);
});
