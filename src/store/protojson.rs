//! The subset of Go's protobuf JSON decoder (`google.golang.org/protobuf/encoding/protojson`,
//! `decode.go`, `UnmarshalOptions{}` as etcd-manager's `pkg/apis/etcd/json.go` `FromJson` calls
//! it) that etcd-manager's control files and backup meta need: int32, int64, string and message
//! fields. A file is accepted exactly when etcd-manager accepts it:
//!
//! - a field is named by its JSON name (`memberCount`) or its proto name (`member_count`); both
//!   naming one field is `duplicate field`, and so is the same name twice (`unmarshalMessage`,
//!   `seenNums`); a `null` value counts as seen but sets nothing;
//! - an unknown field is an error (`DiscardUnknown` is false by default);
//! - integers may be JSON numbers or strings holding one (`unmarshalInt`): `3.0`, `1e0` and
//!   `"1"` are integers, `1.5`, `" 1"` and `"01"` are not (`internal/encoding/json`,
//!   `decode_number.go` `normalizeToIntString`), and they must fit the field (int32 / int64);
//! - strings must be JSON strings; messages must be objects; nothing may follow the top-level
//!   object.

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// Why a document is not what etcd-manager's protojson decoder accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtojsonError {
    /// Not JSON, or JSON of the wrong shape (not an object where a message is expected).
    #[error("not a protobuf JSON object: {0}")]
    Syntax(String),
    /// A name that is neither a field's JSON name nor its proto name.
    #[error("unknown field {0:?} (etcd-manager's protojson decoder rejects unknown fields)")]
    UnknownField(String),
    /// A field given twice (also under its other name, e.g. `memberCount` and `member_count`).
    #[error("duplicate field {0:?}")]
    DuplicateField(String),
    /// A value of the wrong type or out of range for its field.
    #[error("invalid value for {kind} field {field}: {value}")]
    InvalidValue {
        kind: &'static str,
        field: &'static str,
        value: String,
    },
}

/// The type of a field.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Int32,
    Int64,
    String,
    Message(&'static [Field]),
}

/// One field of a message: its number, JSON name, proto name and type.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub number: u32,
    pub json: &'static str,
    pub proto: &'static str,
    pub kind: Kind,
}

/// A decoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    String(String),
    Message(Message),
}

/// A decoded message: the fields that were set, by number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message(BTreeMap<u32, Value>);

impl Message {
    /// The integer field `number` (0 when unset, as proto3 reads it).
    pub fn int(&self, number: u32) -> i64 {
        match self.0.get(&number) {
            Some(Value::Int(n)) => *n,
            _ => 0,
        }
    }

    /// The string field `number` (empty when unset).
    pub fn string(&self, number: u32) -> &str {
        match self.0.get(&number) {
            Some(Value::String(s)) => s,
            _ => "",
        }
    }

    /// The message field `number`, when set.
    pub fn message(&self, number: u32) -> Option<&Message> {
        match self.0.get(&number) {
            Some(Value::Message(m)) => Some(m),
            _ => None,
        }
    }

    /// Whether field `number` was set (to a non-null value).
    pub fn has(&self, number: u32) -> bool {
        self.0.contains_key(&number)
    }
}

/// An object's members in document order, duplicates kept (serde_json's `Map` would drop them).
struct Members(Vec<(String, Box<RawValue>)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
                    out.push(entry);
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Decode `text` as the message described by `fields`.
pub fn decode(text: &[u8], fields: &'static [Field]) -> Result<Message, ProtojsonError> {
    let members: Members =
        serde_json::from_slice(text).map_err(|e| ProtojsonError::Syntax(e.to_string()))?;
    message(members, fields)
}

fn message(members: Members, fields: &'static [Field]) -> Result<Message, ProtojsonError> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Message::default();
    for (name, raw) in members.0 {
        let Some(field) = fields.iter().find(|f| f.json == name || f.proto == name) else {
            return Err(ProtojsonError::UnknownField(name));
        };
        if !seen.insert(field.number) {
            return Err(ProtojsonError::DuplicateField(name));
        }
        let raw = raw.get();
        if raw == "null" {
            continue;
        }
        let value = match field.kind {
            Kind::Int32 => Value::Int(int(raw, 32, field)?),
            Kind::Int64 => Value::Int(int(raw, 64, field)?),
            Kind::String => {
                Value::String(serde_json::from_str::<String>(raw).map_err(|_| invalid(field, raw))?)
            }
            Kind::Message(inner) => {
                let members: Members = serde_json::from_str(raw)
                    .map_err(|e| ProtojsonError::Syntax(format!("{}: {e}", field.json)))?;
                Value::Message(message(members, inner)?)
            }
        };
        out.0.insert(field.number, value);
    }
    Ok(out)
}

fn invalid(field: &Field, raw: &str) -> ProtojsonError {
    ProtojsonError::InvalidValue {
        kind: match field.kind {
            Kind::Int32 => "int32",
            Kind::Int64 => "int64",
            Kind::String => "string",
            Kind::Message(_) => "message",
        },
        field: field.json,
        value: raw.to_string(),
    }
}

/// `unmarshalInt`: a JSON number, or a JSON string holding exactly one JSON number (no
/// surrounding space), whose value is an integer that fits `bits`.
fn int(raw: &str, bits: u32, field: &Field) -> Result<i64, ProtojsonError> {
    let number = if raw.starts_with('"') {
        let s: String = serde_json::from_str(raw).map_err(|_| invalid(field, raw))?;
        if s.trim() != s {
            return Err(invalid(field, raw));
        }
        s
    } else {
        raw.to_string()
    };
    let n = int_string(&number)
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| invalid(field, raw))?;
    if bits == 32 && i32::try_from(n).is_err() {
        return Err(invalid(field, raw));
    }
    Ok(n)
}

/// `parseNumberParts` + `normalizeToIntString`: the decimal integer a JSON number literal
/// denotes, or `None` when it is not a JSON number or not an integer.
fn int_string(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut i = 0;
    let neg = b.first() == Some(&b'-');
    if neg {
        i += 1;
    }
    let digits = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let intp = match b.get(i) {
        Some(b'0') => {
            i += 1;
            ""
        }
        Some(b'1'..=b'9') => {
            let n = digits(i);
            let p = &s[i..i + n];
            i += n;
            p
        }
        _ => return None,
    };
    let mut frac = "";
    if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        let n = digits(i + 1);
        frac = s[i + 1..i + 1 + n].trim_end_matches('0');
        i += 1 + n;
    }
    let mut exp: i64 = 0;
    if matches!(b.get(i), Some(b'e' | b'E')) && i + 1 < b.len() {
        i += 1;
        let start = i;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let n = digits(i);
        if n == 0 {
            return None;
        }
        i += n;
        exp = i32::try_from(s[start..i].parse::<i64>().ok()?).ok()?.into();
    }
    if i != b.len() {
        return None; // not exactly one JSON number
    }
    if intp.is_empty() && frac.is_empty() {
        return Some("0".to_string());
    }
    let num = if exp >= 0 {
        let exp = usize::try_from(exp).ok()?;
        if frac.len() > exp || intp.len() + exp > 20 {
            return None;
        }
        format!("{intp}{frac}{}", "0".repeat(exp - frac.len()))
    } else {
        if !frac.is_empty() {
            return None;
        }
        let index = usize::try_from(i64::try_from(intp.len()).ok()? + exp).ok()?;
        if intp[index..].bytes().any(|c| c != b'0') {
            return None;
        }
        intp[..index].to_string()
    };
    Some(if neg { format!("-{num}") } else { num })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &[Field] = &[
        Field {
            number: 1,
            json: "memberCount",
            proto: "member_count",
            kind: Kind::Int32,
        },
        Field {
            number: 2,
            json: "etcdVersion",
            proto: "etcd_version",
            kind: Kind::String,
        },
    ];
    const OUTER: &[Field] = &[
        Field {
            number: 1,
            json: "timestamp",
            proto: "timestamp",
            kind: Kind::Int64,
        },
        Field {
            number: 3,
            json: "clusterSpec",
            proto: "cluster_spec",
            kind: Kind::Message(SPEC),
        },
    ];

    fn count(text: &str) -> Result<i64, ProtojsonError> {
        decode(text.as_bytes(), SPEC).map(|m| m.int(1))
    }

    #[test]
    fn integers_as_protojson_reads_them() {
        for (text, want) in [
            (r#"{"memberCount": 1}"#, 1),
            (r#"{"memberCount": 3.0}"#, 3),
            (r#"{"memberCount": 1e0}"#, 1),
            (r#"{"memberCount": 0.5e1}"#, 5),
            (r#"{"memberCount": 10e-1}"#, 1),
            (r#"{"memberCount": -0}"#, 0),
            (r#"{"memberCount": "1"}"#, 1),
            (r#"{"memberCount": "3.0"}"#, 3),
            (r#"{"memberCount": 2147483647}"#, 2147483647),
            (r#"{"member_count": 5}"#, 5),
            (r#"{"memberCount": null}"#, 0),
            (r#"{}"#, 0),
        ] {
            assert_eq!(count(text), Ok(want), "{text}");
        }
        for text in [
            r#"{"memberCount": 1.5}"#,
            r#"{"memberCount": 1e-1}"#,
            r#"{"memberCount": 2147483648}"#,
            r#"{"memberCount": -2147483649}"#,
            r#"{"memberCount": " 1"}"#,
            r#"{"memberCount": "01"}"#,
            r#"{"memberCount": "1x"}"#,
            r#"{"memberCount": ""}"#,
            r#"{"memberCount": true}"#,
            r#"{"memberCount": [1]}"#,
        ] {
            assert!(
                matches!(count(text), Err(ProtojsonError::InvalidValue { .. })),
                "{text}: {:?}",
                count(text)
            );
        }
        let big = decode(br#"{"timestamp": "1704067200000000000"}"#, OUTER).unwrap();
        assert_eq!(big.int(1), 1_704_067_200_000_000_000);
    }

    #[test]
    fn names_duplicates_and_unknown_fields() {
        assert!(matches!(
            decode(br#"{"memberCount": 1, "member_count": 1}"#, SPEC),
            Err(ProtojsonError::DuplicateField(n)) if n == "member_count"
        ));
        assert!(matches!(
            decode(br#"{"memberCount": null, "memberCount": 1}"#, SPEC),
            Err(ProtojsonError::DuplicateField(_))
        ));
        assert!(matches!(
            decode(br#"{"members": 3}"#, SPEC),
            Err(ProtojsonError::UnknownField(n)) if n == "members"
        ));
        // The JSON name is case-sensitive.
        assert!(decode(br#"{"MemberCount": 3}"#, SPEC).is_err());
        assert!(matches!(
            decode(br#"{"etcdVersion": 3}"#, SPEC),
            Err(ProtojsonError::InvalidValue { .. })
        ));
        let m = decode(
            br#"{"clusterSpec": {"member_count": 3, "etcdVersion": "3.5.9"}}"#,
            OUTER,
        )
        .unwrap();
        let spec = m.message(3).unwrap();
        assert_eq!((spec.int(1), spec.string(2)), (3, "3.5.9"));
        assert!(decode(br#"{"clusterSpec": null}"#, OUTER)
            .unwrap()
            .message(3)
            .is_none());
        assert!(decode(br#"{"clusterSpec": 1}"#, OUTER).is_err());
        assert!(decode(br#"{"clusterSpec": {"x": 1}}"#, OUTER).is_err());
        for bad in ["", "[]", "{} {}", "{\"memberCount\":1,}", "not json"] {
            assert!(
                matches!(decode(bad.as_bytes(), SPEC), Err(ProtojsonError::Syntax(_))),
                "{bad}"
            );
        }
    }
}
