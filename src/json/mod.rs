//! JSON for the review hot path and for untrusted input (pure, no I/O).
//!
//! The webhook classifies every admitted object change by reading a few dozen JSON pointers of
//! two objects and their json-patch diff. [`Doc`] holds a parsed document as one flat token
//! vector and [`diff`] gives `json_patch::diff`'s operations without copying values (the tests
//! below and the `json_doc` fuzz target check both against serde_json and json_patch).
//! [`value_from_str`] and friends read untrusted JSON or YAML into a `serde_json::Value` through
//! [`Doc`], so that every object key is read as a key.

use serde_json::Value;

mod doc;
mod fast;
pub use doc::{diff, diff_along, Along, AsStep, Doc, Elements, Entries, Node, Step};

/// The name serde_json gives a one-key object when its `raw_value` feature is on (axum turns it
/// on for the whole binary): `serde_json::Value` then parses `{"$serde_json::private::RawValue":
/// "<text>"}` as the JSON *in the string*, where the apiserver, kubectl and every other reader
/// see an object with that key. Parsing untrusted JSON with `Value`'s own `Deserialize` would
/// let such an object look different to etcdguard than to Kubernetes.
pub const SERDE_RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// Parse JSON text into a `Value` the way every other JSON reader does (through [`Doc`]: an
/// object key is only a key; see [`SERDE_RAW_VALUE_TOKEN`]). Errors are serde_json's.
pub fn value_from_str(text: &str) -> Result<Value, serde_json::Error> {
    Doc::parse(text).map(|d| d.root().to_value())
}

/// A `Value` from any serde deserializer (YAML, for instance), keys read as keys (see
/// [`value_from_str`]).
pub fn value_from_deserializer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    Doc::from_deserializer(d).map(|d| d.root().to_value())
}

/// [`value_from_str`] on bytes.
pub fn value_from_slice(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    doc_from_slice(bytes).map(|d| d.root().to_value())
}

/// [`Doc::parse`] on bytes.
pub fn doc_from_slice(bytes: &[u8]) -> Result<Doc, serde_json::Error> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Doc::parse(text),
        // JSON text is UTF-8: serde_json fails on these bytes and says where.
        Err(_) => serde_json::from_slice::<Value>(bytes).map(|v| Doc::from_value(&v)),
    }
}

/// Unescape one pointer token (`~1` → `/`, then `~0` → `~`).
pub fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// An array index as RFC 6901 allows it (no sign, no leading zero), like serde_json.
pub(crate) fn parse_index(s: &str) -> Option<usize> {
    if s.starts_with('+') || (s.starts_with('0') && s.len() != 1) {
        return None;
    }
    s.parse().ok()
}

/// Whether the JSON pointer `path` is `prefix` or below it, token for token (`/spec/versionX`
/// is not below `/spec/version`; every pointer is below the root, `""`).
pub(crate) fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Append `/key` (escaped) to `path`; returns the length to truncate back to.
pub(crate) fn push_key(path: &mut String, key: &str) -> usize {
    let len = path.len();
    path.push('/');
    if key.contains(['~', '/']) {
        path.push_str(&key.replace('~', "~0").replace('/', "~1"));
    } else {
        path.push_str(key);
    }
    len
}

/// The parseable objects of `tests/fixtures/objects` (JSON and YAML; the malformed ones are
/// skipped), for tests that run over every pair of them.
#[cfg(test)]
pub(crate) fn object_fixtures() -> Vec<Value> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/objects");
    let docs: Vec<Value> = std::fs::read_dir(dir)
        .expect("fixtures")
        .filter_map(|e| {
            let p = e.ok()?.path();
            let bytes = std::fs::read(&p).ok()?;
            match p.extension()?.to_str()? {
                "json" => serde_json::from_slice(&bytes).ok(),
                "yaml" => serde_yaml_ng::from_slice(&bytes).ok(),
                _ => None,
            }
        })
        .collect();
    assert!(docs.len() >= 15, "expected object fixtures in {dir}");
    docs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Our diff, on documents built from the values and on documents parsed from their text
    /// (both must agree).
    fn ours(l: &Value, r: &Value) -> Vec<(String, String)> {
        let run = |a: &Doc, b: &Doc| {
            let mut out = Vec::new();
            diff(a.root(), b.root(), |op, p| {
                out.push((op.to_string(), p.to_string()))
            });
            out
        };
        let from_values = run(&Doc::from_value(l), &Doc::from_value(r));
        let parsed = run(
            &Doc::parse(l.to_string()).unwrap(),
            &Doc::parse(r.to_string()).unwrap(),
        );
        assert_eq!(from_values, parsed, "left {l}\nright {r}");
        from_values
    }

    fn reference(l: &Value, r: &Value) -> Vec<(String, String)> {
        json_patch::diff(l, r)
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
                (name.to_string(), op.path().as_str().to_string())
            })
            .collect()
    }

    /// Small deterministic generator (xorshift) of JSON documents with shared structure, so
    /// pairs differ in places rather than everywhere.
    struct Gen(u64);
    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn value(&mut self, depth: u32) -> Value {
            const KEYS: &[&str] = &["a", "b", "spec", "a/b", "t~x", "", "0", "version"];
            match self.next() % if depth == 0 { 4 } else { 6 } {
                0 => Value::Null,
                1 => json!(self.next() % 3),
                2 => json!(["x", "y", "z"][(self.next() % 3) as usize]),
                3 => json!(self.next() % 2 == 0),
                4 => Value::Array(
                    (0..self.next() % 4)
                        .map(|_| self.value(depth - 1))
                        .collect(),
                ),
                _ => Value::Object(
                    (0..self.next() % 5)
                        .map(|_| {
                            let k = KEYS[(self.next() % KEYS.len() as u64) as usize];
                            (k.to_string(), self.value(depth - 1))
                        })
                        .collect(),
                ),
            }
        }
        /// A copy of `v` with a few random edits.
        fn mutate(&mut self, v: &Value, depth: u32) -> Value {
            if self.next() % 5 == 0 {
                return self.value(depth);
            }
            match v {
                Value::Object(m) => {
                    let mut out = serde_json::Map::new();
                    for (k, c) in m {
                        if self.next() % 7 != 0 {
                            out.insert(k.clone(), self.mutate(c, depth.saturating_sub(1)));
                        }
                    }
                    if self.next() % 6 == 0 {
                        out.insert("new".to_string(), json!(1));
                    }
                    Value::Object(out)
                }
                Value::Array(a) => {
                    let mut a: Vec<Value> = a
                        .iter()
                        .map(|c| self.mutate(c, depth.saturating_sub(1)))
                        .collect();
                    match self.next() % 4 {
                        0 => a.truncate(a.len() / 2),
                        1 => a.push(json!("pushed")),
                        _ => {}
                    }
                    Value::Array(a)
                }
                other => other.clone(),
            }
        }
    }

    #[test]
    fn diff_agrees_with_json_patch_on_generated_pairs() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        let mut nonempty = 0;
        for _ in 0..5000 {
            let a = g.value(4);
            let b = g.mutate(&a, 4);
            let expected = reference(&a, &b);
            nonempty += usize::from(!expected.is_empty());
            assert_eq!(ours(&a, &b), expected, "left {a}\nright {b}");
            assert_eq!(ours(&b, &a), reference(&b, &a), "left {b}\nright {a}");
        }
        assert!(
            nonempty > 1000,
            "generator produced too few differing pairs: {nonempty}"
        );
    }

    /// `diff_along` reports exactly the operations of the full diff whose path is related to
    /// the pattern, in the same order, each placed as its path says (under the pattern, or
    /// above it with the values found at the path).
    #[test]
    fn diff_along_is_the_full_diff_filtered_by_the_pattern() {
        const STEPS: &[&str] = &["a", "b", "spec", "a/b", "t~x", "", "0", "1", "2", "01", "*"];
        let mut g = Gen(0x5851_f42d_4c95_7f2d);
        let (mut related, mut above) = (0, 0);
        for _ in 0..4000 {
            let a = g.value(4);
            let b = g.mutate(&a, 4);
            let (da, db) = (Doc::from_value(&a), Doc::from_value(&b));
            let mut full = Vec::new();
            diff(da.root(), db.root(), |op, p| full.push((op, p.to_string())));
            for _ in 0..6 {
                let steps: Vec<Step> = (0..g.next() % 5)
                    .map(|_| match STEPS[(g.next() % STEPS.len() as u64) as usize] {
                        "*" => Step::Any,
                        k => Step::Key(k),
                    })
                    .collect();
                let expected: Vec<(&str, String, Option<usize>)> = full
                    .iter()
                    .filter_map(|(op, path)| {
                        let tokens: Vec<String> = if path.is_empty() {
                            Vec::new()
                        } else {
                            path[1..].split('/').map(unescape).collect()
                        };
                        let matches = tokens.iter().zip(&steps).all(|(t, s)| match s {
                            Step::Any => true,
                            Step::Key(k) => k == t,
                        });
                        if !matches {
                            None
                        } else if tokens.len() >= steps.len() {
                            Some((*op, path.clone(), None))
                        } else {
                            Some((*op, path.clone(), Some(tokens.len())))
                        }
                    })
                    .collect();
                let mut got = Vec::new();
                diff_along(da.root(), db.root(), &steps, |op, path, along| {
                    let depth = match along {
                        Along::Under => None,
                        Along::Above { depth, old, new } => {
                            let value = |n: Option<Node<'_>>| n.map(Node::to_value);
                            assert_eq!(value(old), value(da.root().pointer(path)), "{path}");
                            assert_eq!(value(new), value(db.root().pointer(path)), "{path}");
                            above += 1;
                            Some(depth)
                        }
                    };
                    got.push((op, path.to_string(), depth));
                });
                related += got.len();
                assert_eq!(got, expected, "steps {steps:?}\nleft {a}\nright {b}");
            }
        }
        assert!(
            related > 5000 && above > 500,
            "too few related operations: {related}, {above} above"
        );
    }

    /// JSON text for `v` with every object's keys in reverse order, each preceded by a stale
    /// duplicate of itself (`"k": "stale"`): the same document for serde_json (last key wins),
    /// but neither sorted nor free of repeats.
    fn scrambled(v: &Value) -> String {
        match v {
            Value::Object(m) => {
                let entries: Vec<String> = m
                    .iter()
                    .rev()
                    .map(|(k, c)| {
                        let k = Value::from(k.as_str()).to_string();
                        format!("{k}:\"stale\",{k}:{}", scrambled(c))
                    })
                    .collect();
                format!("{{{}}}", entries.join(","))
            }
            Value::Array(a) => {
                format!(
                    "[{}]",
                    a.iter().map(scrambled).collect::<Vec<_>>().join(",")
                )
            }
            other => other.to_string(),
        }
    }

    #[test]
    fn diff_agrees_with_json_patch_on_unsorted_documents_with_repeated_keys() {
        let mut g = Gen(0x2545_f491_4f6c_dd1d);
        for _ in 0..3000 {
            let a = g.value(4);
            let b = g.mutate(&a, 4);
            let (ta, tb) = (scrambled(&a), scrambled(&b));
            assert_eq!(serde_json::from_str::<Value>(&ta).unwrap(), a);
            let (da, db) = (Doc::parse(ta).unwrap(), Doc::parse(tb).unwrap());
            let mut got = Vec::new();
            diff(da.root(), db.root(), |op, p| {
                got.push((op.to_string(), p.to_string()))
            });
            assert_eq!(got, reference(&a, &b), "left {a}\nright {b}");
            assert_eq!(da.root() == db.root(), a == b);
            assert_eq!(da.root().to_value(), a);
        }
    }

    #[test]
    fn serde_raw_value_token_is_an_ordinary_key() {
        let text = format!(r#"{{"a":{{"{SERDE_RAW_VALUE_TOKEN}":"[1, 2]"}}}}"#);
        let v = value_from_str(&text).unwrap();
        assert_eq!(v["a"][SERDE_RAW_VALUE_TOKEN], Value::from("[1, 2]"));
        assert_eq!(value_from_slice(text.as_bytes()).unwrap(), v);
        let d = Doc::parse(text.as_str()).unwrap();
        assert_eq!(
            d.root()
                .pointer("/a")
                .unwrap()
                .get(SERDE_RAW_VALUE_TOKEN)
                .unwrap()
                .as_str(),
            Some("[1, 2]")
        );
        assert!(value_from_slice(b"{\"a\": \"\xff\"}").is_err());
        let yaml = format!("a:\n  \"{SERDE_RAW_VALUE_TOKEN}\": \"[1, 2]\"\n");
        let from_yaml =
            value_from_deserializer(serde_yaml_ng::Deserializer::from_str(&yaml)).unwrap();
        assert_eq!(from_yaml, v);
        assert!(value_from_str("{").unwrap_err().to_string().contains("EOF"));
    }

    #[test]
    fn diff_agrees_with_json_patch_on_fixture_objects() {
        let docs = object_fixtures();
        for a in &docs {
            for b in &docs {
                assert_eq!(ours(a, b), reference(a, b));
            }
        }
    }

    #[test]
    fn diff_paths_escape_keys() {
        let l = json!({"a/b": 1, "t~x": [1, 2, 3]});
        let r = json!({"a/b": 2, "t~x": [1]});
        assert_eq!(
            ours(&l, &r),
            vec![
                ("replace".into(), "/a~1b".into()),
                ("remove".into(), "/t~0x/1".into()),
                ("remove".into(), "/t~0x/1".into()),
            ]
        );
        assert_eq!(
            ours(&json!(1), &json!(2)),
            vec![("replace".into(), "".into())]
        );
    }
}
