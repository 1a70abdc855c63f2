//! Reading untrusted JSON and YAML into `serde_json::Value` (pure, no I/O).
//!
//! [`value_from_str`] and friends build the value with their own visitor instead of `Value`'s
//! `Deserialize`, so that every object key is read as a key (see [`SERDE_RAW_VALUE_TOKEN`]).
//! Nesting is bounded by the deserializer (serde_json: 128 levels).

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The name serde_json gives a one-key object when its `raw_value` feature is on (axum turns it
/// on for the whole binary): `serde_json::Value` then parses `{"$serde_json::private::RawValue":
/// "<text>"}` as the JSON *in the string*, where the apiserver, kubectl and every other reader
/// see an object with that key. Parsing untrusted JSON with `Value`'s own `Deserialize` would
/// let such an object look different to etcdguard than to Kubernetes.
pub const SERDE_RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// Parse JSON text into a `Value` the way every other JSON reader does (an object key is only
/// a key; see [`SERDE_RAW_VALUE_TOKEN`]). Errors are serde_json's.
pub fn value_from_str(text: &str) -> Result<Value, serde_json::Error> {
    let mut d = serde_json::Deserializer::from_str(text);
    let v = Plain.deserialize(&mut d)?;
    d.end()?;
    Ok(v)
}

/// [`value_from_str`] on bytes (JSON text is UTF-8: serde_json refuses other bytes and says
/// where).
pub fn value_from_slice(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut d = serde_json::Deserializer::from_slice(bytes);
    let v = Plain.deserialize(&mut d)?;
    d.end()?;
    Ok(v)
}

/// A `Value` from any serde deserializer (YAML, for instance), keys read as keys (see
/// [`value_from_str`]).
pub fn value_from_deserializer<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    Plain.deserialize(d)
}

/// Builds any value without `Value`'s own `Deserialize` (which treats
/// [`SERDE_RAW_VALUE_TOKEN`] as special): every key is just a key.
#[derive(Clone, Copy)]
struct Plain;

impl<'de> DeserializeSeed<'de> for Plain {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Plain {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Plain)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            out.insert(key, map.next_value_seed(Plain)?);
        }
        Ok(Value::Object(out))
    }
}

/// Unescape one pointer token (`~1` → `/`, then `~0` → `~`).
pub fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Whether the JSON pointer `path` is `prefix` or below it, token for token (`/spec/versionX`
/// is not below `/spec/version`; every pointer is below the root, `""`).
pub(crate) fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
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

    /// serde_json's raw-value key cannot smuggle a raw value: it is an ordinary key (JSON and
    /// YAML, at any depth), where `Value`'s own `Deserialize` would read the string as JSON.
    #[test]
    fn serde_raw_value_token_is_an_ordinary_key() {
        let text = format!(r#"{{"a":{{"{SERDE_RAW_VALUE_TOKEN}":"[1, 2]"}}}}"#);
        // The trap this guards against (serde_json with `raw_value`, as this binary has it).
        let naive: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(naive["a"], json!([1, 2]));
        let v = value_from_str(&text).unwrap();
        assert_eq!(v["a"][SERDE_RAW_VALUE_TOKEN], Value::from("[1, 2]"));
        assert_eq!(value_from_slice(text.as_bytes()).unwrap(), v);
        let top = format!(r#"{{"{SERDE_RAW_VALUE_TOKEN}":"7"}}"#);
        assert_eq!(
            value_from_str(&top).unwrap(),
            json!({ SERDE_RAW_VALUE_TOKEN: "7" })
        );
        let yaml = format!("a:\n  \"{SERDE_RAW_VALUE_TOKEN}\": \"[1, 2]\"\n");
        let from_yaml =
            value_from_deserializer(serde_yaml_ng::Deserializer::from_str(&yaml)).unwrap();
        assert_eq!(from_yaml, v);
    }

    /// Everything else reads as serde_json reads it: fixtures, numbers, repeated keys (last
    /// wins), errors (trailing text, invalid UTF-8, nesting beyond 128 levels).
    #[test]
    fn values_are_serde_jsons_values() {
        for v in object_fixtures() {
            let text = v.to_string();
            assert_eq!(value_from_str(&text).unwrap(), v);
        }
        let text = r#"{"a": 1, "b": -2, "c": 1.5e3, "d": [null, true, "x"], "a": 3}"#;
        assert_eq!(
            value_from_str(text).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
        assert!(value_from_str("{").unwrap_err().to_string().contains("EOF"));
        assert!(value_from_str("{} x").is_err());
        assert!(value_from_slice(b"{\"a\": \"\xff\"}").is_err());
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(value_from_str(&deep)
            .unwrap_err()
            .to_string()
            .contains("recursion"));
    }
}
