//! etcd's data inside the bbolt file (reference §2): revision keys, `mvccpb.KeyValue` values,
//! and the small values of the `meta`, `cluster` and `members` buckets. Pure functions on byte
//! slices; never panic.

/// A `key`-bucket key: `main` (BE u64), `'_'`, `sub` (BE u64), optional `'t'` tombstone mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevisionKey {
    pub main: i64,
    pub sub: i64,
    pub tombstone: bool,
}

/// Why a `key` bucket entry is not what etcd writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("revision key of {0} bytes, expected 17 or 18")]
    KeyLength(usize),
    #[error("revision key without the '_' separator at byte 8")]
    Separator,
    #[error("revision key mark {0:#04x}, expected 't'")]
    Mark(u8),
    #[error("negative revision in revision key")]
    Negative,
    #[error("truncated {0}")]
    Truncated(&'static str),
    #[error("field {field} length {len} runs past the value")]
    FieldLength { field: u64, len: u64 },
    #[error("field {field} has unsupported wire type {wire}")]
    WireType { field: u64, wire: u64 },
    #[error("no key (field 1)")]
    NoKey,
}

impl RevisionKey {
    /// Parse a 17- or 18-byte revision key; `Err` says what is wrong (as etcd's
    /// `BytesToBucketKey` would panic on it).
    pub fn parse(k: &[u8]) -> Result<RevisionKey, SchemaError> {
        if k.len() != 17 && k.len() != 18 {
            return Err(SchemaError::KeyLength(k.len()));
        }
        let main = be_i64(k.get(0..8));
        let sub = be_i64(k.get(9..17));
        if k.get(8) != Some(&b'_') {
            return Err(SchemaError::Separator);
        }
        let tombstone = match k.get(17) {
            None => false,
            Some(b't') => true,
            Some(other) => return Err(SchemaError::Mark(*other)),
        };
        match (main, sub) {
            (Some(main), Some(sub)) if main >= 0 && sub >= 0 => Ok(RevisionKey {
                main,
                sub,
                tombstone,
            }),
            _ => Err(SchemaError::Negative),
        }
    }
}

fn be_i64(b: Option<&[u8]>) -> Option<i64> {
    let a: [u8; 8] = b?.try_into().ok()?;
    Some(i64::from_be_bytes(a))
}

/// Main revision of a 17-byte compaction mark (`meta/scheduledCompactRev`, `finishedCompactRev`).
pub fn compact_rev(v: &[u8]) -> Option<i64> {
    RevisionKey::parse(v).ok().map(|r| r.main)
}

/// Big-endian u64 value (`meta/consistent_index`, `meta/term`).
pub fn be_u64(v: &[u8]) -> Option<u64> {
    let a: [u8; 8] = v.try_into().ok()?;
    Some(u64::from_be_bytes(a))
}

/// Read a protobuf varint at `*pos`, advancing it. `None` on truncation or > 10 bytes.
pub fn read_varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..70).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7f).checked_shl(shift).unwrap_or(0);
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The fields of `mvccpb.KeyValue` the counters use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyValue<'a> {
    pub key: &'a [u8],
    pub mod_revision: i64,
    /// Modifications of the key since its creation: 1 on a create (0 on a delete).
    pub version: i64,
    pub lease: i64,
    /// Length of field 5 (value): the object's bytes.
    pub value_len: u64,
}

/// Decode `mvccpb.KeyValue` fields 1 (key), 3 (mod_revision), 4 (version), 5 (value, its
/// length only) and 6 (lease), skipping others.
/// `Err` on malformed wire data or a missing/empty key.
pub fn decode_key_value(b: &[u8]) -> Result<KeyValue<'_>, SchemaError> {
    let mut kv = KeyValue::default();
    let mut pos = 0;
    let mut has_key = false;
    while pos < b.len() {
        let tag = read_varint(b, &mut pos).ok_or(SchemaError::Truncated("field tag"))?;
        let (field, wire) = (tag >> 3, tag & 7);
        match wire {
            0 => {
                let v = read_varint(b, &mut pos).ok_or(SchemaError::Truncated("varint"))?;
                match field {
                    3 => kv.mod_revision = v as i64,
                    4 => kv.version = v as i64,
                    6 => kv.lease = v as i64,
                    _ => {}
                }
            }
            2 => {
                let len = read_varint(b, &mut pos).ok_or(SchemaError::Truncated("length"))?;
                let end = usize::try_from(len)
                    .ok()
                    .and_then(|l| pos.checked_add(l))
                    .filter(|&e| e <= b.len());
                let end = end.ok_or(SchemaError::FieldLength { field, len })?;
                if field == 1 {
                    kv.key = b.get(pos..end).unwrap_or(&[]);
                    has_key = true;
                } else if field == 5 {
                    kv.value_len = len;
                }
                pos = end;
            }
            1 => {
                pos = pos
                    .checked_add(8)
                    .filter(|&e| e <= b.len())
                    .ok_or(SchemaError::Truncated("fixed64"))?
            }
            5 => {
                pos = pos
                    .checked_add(4)
                    .filter(|&e| e <= b.len())
                    .ok_or(SchemaError::Truncated("fixed32"))?
            }
            wire => return Err(SchemaError::WireType { field, wire }),
        }
    }
    if !has_key || kv.key.is_empty() {
        return Err(SchemaError::NoKey);
    }
    Ok(kv)
}

/// Name and ID of a member from its `members` bucket JSON value (`{"id":…,"name":"…",…}`).
pub fn member(v: &[u8]) -> Option<(String, u64)> {
    #[derive(serde::Deserialize)]
    struct Member {
        #[serde(default)]
        id: u64,
        #[serde(default)]
        name: String,
    }
    serde_json::from_slice::<Member>(v)
        .ok()
        .map(|m| (m.name, m.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_keys() {
        let mut k = Vec::new();
        k.extend_from_slice(&2u64.to_be_bytes());
        k.push(b'_');
        k.extend_from_slice(&1u64.to_be_bytes());
        assert_eq!(
            RevisionKey::parse(&k),
            Ok(RevisionKey {
                main: 2,
                sub: 1,
                tombstone: false
            })
        );
        k.push(b't');
        assert!(RevisionKey::parse(&k).unwrap().tombstone);
        k[8] = b'-';
        assert_eq!(RevisionKey::parse(&k), Err(SchemaError::Separator));
        assert!(RevisionKey::parse(b"short").is_err());
        let mut neg = vec![0xFF; 8];
        neg.push(b'_');
        neg.extend_from_slice(&[0; 8]);
        assert_eq!(RevisionKey::parse(&neg), Err(SchemaError::Negative));
    }

    #[test]
    fn varints() {
        let mut p = 0;
        assert_eq!(read_varint(&[0xAC, 0x02], &mut p), Some(300));
        assert_eq!(p, 2);
        let mut p = 0;
        assert_eq!(read_varint(&[0x80], &mut p), None);
        let mut p = 0;
        assert_eq!(read_varint(&[0xFF; 11], &mut p), None);
    }

    #[test]
    fn key_value_field_one() {
        // The fixture value from the reference: key="foo", create=2, mod=2, ver=1, value="bar".
        let v = [
            0x0a, 0x03, b'f', b'o', b'o', 0x10, 0x02, 0x18, 0x02, 0x20, 0x01, 0x2a, 0x03, b'b',
            b'a', b'r',
        ];
        let kv = decode_key_value(&v).unwrap();
        assert_eq!(kv.key, b"foo");
        assert_eq!((kv.mod_revision, kv.value_len), (2, 3));
        assert!(decode_key_value(&v[..4]).is_err());
        assert_eq!(decode_key_value(&[0x10, 0x02]), Err(SchemaError::NoKey));
    }

    #[test]
    fn meta_values() {
        assert_eq!(be_u64(&9u64.to_be_bytes()), Some(9));
        let mut c = 41u64.to_be_bytes().to_vec();
        c.push(b'_');
        c.extend_from_slice(&0u64.to_be_bytes());
        assert_eq!(compact_rev(&c), Some(41));
        assert_eq!(
            member(br#"{"id":10276657743932975437,"peerURLs":["x"],"name":"m1"}"#),
            Some(("m1".to_string(), 10276657743932975437))
        );
    }

    #[test]
    fn crc_combine_matches_concatenation() {
        let a = b"bucket-name";
        let b = b"key-and-value-bytes";
        let whole = crc32c::crc32c(&[&a[..], &b[..]].concat());
        let combined = crc32c::crc32c_combine(crc32c::crc32c(a), crc32c::crc32c(b), b.len());
        assert_eq!(whole, combined);
        assert_eq!(crc32c::crc32c_append(crc32c::crc32c(a), b), whole);
    }
}
