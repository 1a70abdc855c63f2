//! Differential: etcdguard's reader of untrusted JSON (`etcdguard::json::value_from_slice`)
//! against serde_json on arbitrary bytes. It must accept exactly what serde_json accepts, and
//! read the same value, except that serde_json's raw-value key
//! (`etcdguard::json::SERDE_RAW_VALUE_TOKEN`) stays an ordinary key: serde_json's `Value`
//! (with the `raw_value` feature axum enables) reads such an object as the JSON text in its
//! string, so it is no reference for documents holding that key.
#![no_main]
use etcdguard::json::{value_from_slice, SERDE_RAW_VALUE_TOKEN};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn has_raw_value_token(v: &Value) -> bool {
    match v {
        Value::Object(m) => m
            .iter()
            .any(|(k, v)| k == SERDE_RAW_VALUE_TOKEN || has_raw_value_token(v)),
        Value::Array(a) => a.iter().any(has_raw_value_token),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let ours = value_from_slice(data);
    if ours.as_ref().is_ok_and(has_raw_value_token) {
        return;
    }
    match (ours, serde_json::from_slice::<Value>(data)) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        (a, b) => panic!("{a:?} vs {b:?}"),
    }
});
