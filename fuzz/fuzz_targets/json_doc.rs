//! Differential: etcdguard's flat JSON document (`etcdguard::json::Doc`, the parser every
//! admission review's objects go through) against serde_json and json_patch on arbitrary
//! bytes, and its fast tape builder against its serde_json-driven one. The input is split at
//! its first 0xff byte into two texts (0xff never occurs in UTF-8). Each must parse exactly
//! when serde_json parses it, to the same value; for two documents, equality and the
//! json-patch diff must match; as Kubernetes objects, `Doc` must accept exactly what the
//! webhook's own object reader accepts.
#![no_main]
use etcdguard::json::{diff, Doc, Node, SERDE_RAW_VALUE_TOKEN};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn reference_diff(a: &Value, b: &Value) -> Vec<(String, String)> {
    json_patch::diff(a, b)
        .0
        .iter()
        .map(|op| {
            use json_patch::PatchOperation as P;
            let name = match op {
                P::Add(_) => "add",
                P::Remove(_) => "remove",
                P::Replace(_) => "replace",
                other => panic!("json_patch::diff emitted {other:?}"),
            };
            (name.to_string(), op.path().to_string())
        })
        .collect()
}

/// Whether any object in the document has serde_json's raw-value key, which
/// `serde_json::Value` (with the `raw_value` feature axum enables) does not read as a key; Doc
/// reads it as every other JSON reader does, so serde_json is no reference there.
fn has_raw_value_token(n: Node<'_>) -> bool {
    n.entries()
        .any(|(k, v)| k == SERDE_RAW_VALUE_TOKEN || has_raw_value_token(v))
        || n.elements().any(has_raw_value_token)
}

fuzz_target!(|data: &[u8]| {
    let (a, b) = match data.iter().position(|&c| c == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, data),
    };
    let (Ok(ta), Ok(tb)) = (std::str::from_utf8(a), std::str::from_utf8(b)) else {
        return;
    };
    let mut docs = Vec::new();
    for t in [ta, tb] {
        let value = serde_json::from_str::<Value>(t);
        let doc = Doc::parse(t);
        let object = Doc::parse_object(t);
        // The fast tape builder (behind Doc::parse) against the serde path: the same tape or
        // the same error, as any value and as a Kubernetes object.
        for (ours, as_object) in [(&doc, false), (&object, true)] {
            match (ours, Doc::parse_with_serde(t, as_object)) {
                (Ok(a), Ok(b)) => assert!(a.same_tape(&b), "{t:?} (object: {as_object})"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{t:?}"),
                (a, b) => panic!("{t:?} (object: {as_object}): {a:?} vs {b:?}"),
            }
        }
        if doc.as_ref().is_ok_and(|d| has_raw_value_token(d.root())) {
            return;
        }
        assert_eq!(value.is_ok(), doc.is_ok(), "{t:?}: {:?} vs {:?}", value.err(), doc.err());
        let webhook = etcdguard_webhook::RawObject::new(t).to_value();
        // The webhook's reader also accepts `null` (an absent object); Doc::parse_object
        // is only ever given objects.
        if t.trim() != "null" {
            assert_eq!(object.is_ok(), webhook.is_ok(), "{t:?}");
        }
        if let (Ok(o), Ok(w)) = (&object, &webhook) {
            assert_eq!(o.root().to_value(), *w);
        }
        if let (Ok(v), Ok(d)) = (value, doc) {
            assert_eq!(d.root().to_value(), v);
            docs.push((v, d));
        }
    }
    if let [(va, da), (vb, db)] = &docs[..] {
        assert_eq!(da.root() == db.root(), va == vb);
        let mut ours = Vec::new();
        diff(da.root(), db.root(), |op, p| ours.push((op.to_string(), p.to_string())));
        assert_eq!(ours, reference_diff(va, vb));
    }
});
