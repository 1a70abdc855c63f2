//! Gardener etcd-backup-restore delta snapshots (`Incr-…`), checked the way its restorer reads
//! them (`pkg/snapshot/restorer/restorer.go`): decompress by the name's suffix
//! (`pkg/compressor`), split off the SHA-256 that `TakeDeltaSnapshot`
//! (`pkg/snapshot/snapshotter/snapshotter.go`) appends to the JSON and compare it, unmarshal the
//! JSON array of `{"etcdEvent": <clientv3.Event>, "time": …}`, and check that applying the events
//! (one transaction per revision, `applyEventsToEtcd`) ends at the name's last revision
//! (`verifySnapshotRevision`). Streaming: one event at a time is held, never the whole list.

use super::layout::GardenerSnap;
use crate::snapshot::{named_decoder, Container};
use aws_lc_rs::digest;
use serde::de::{Deserializer as _, Error as _, SeqAccess, Visitor};
use serde::Deserialize;
use std::io::{BufReader, Read};

/// The container a Gardener compression suffix names (`compressor.IsSnapshotCompressed`);
/// `None` for a suffix etcd-backup-restore cannot decode.
pub fn codec(suffix: &str) -> Option<Container> {
    match suffix {
        "" => Some(Container::Plain),
        ".gz" => Some(Container::Gzip),
        ".zlib" => Some(Container::Zlib),
        ".Z" => Some(Container::Lzw),
        _ => None,
    }
}

/// Why a delta cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    #[error(
        "compression suffix {0:?} is not one etcd-backup-restore decodes (.gz, .zlib, .Z or none)"
    )]
    Codec(String),
    #[error("the event list cannot be decompressed or parsed: {0}")]
    Events(#[from] serde_json::Error),
    #[error("the data cannot be decompressed: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0} unexpected bytes after the event list (expected none, or its 32-byte SHA-256)")]
    Trailing(usize),
    #[error("sha256 mismatch: the last 32 bytes say {want} but sha256 of the {len}-byte event list is {got}")]
    Sha256 {
        want: String,
        got: String,
        len: usize,
    },
}

/// What a good delta held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeltaOk {
    /// The SHA-256 was present (and matched); `false`: the JSON alone, as etcd-backup-restore
    /// wrote before 0.3.0.
    pub sha256: bool,
    /// Events in the list.
    pub events: u64,
}

/// Check one delta object (its stored, possibly compressed bytes) against its name.
pub fn check_delta(data: &[u8], snap: &GardenerSnap) -> Result<DeltaOk, DeltaError> {
    let codec = codec(&snap.suffix).ok_or_else(|| DeltaError::Codec(snap.suffix.clone()))?;
    let mut tee = BufReader::new(Tee::new(named_decoder(data, codec)));
    let events = {
        let mut de = serde_json::Deserializer::from_reader(&mut tee);
        (&mut de).deserialize_seq(EventsVisitor {
            start: snap.start,
            last: snap.last,
        })?
    };
    let mut rest = Vec::new();
    (&mut tee).take(1 << 16).read_to_end(&mut rest)?;
    let tee = tee.into_inner().finish();
    match rest.len() {
        0 => Ok(DeltaOk {
            sha256: false,
            events,
        }),
        32 => {
            let (digest, tail, len) = tee;
            if digest[..] == tail[..] {
                Ok(DeltaOk {
                    sha256: true,
                    events,
                })
            } else {
                Err(DeltaError::Sha256 {
                    want: hex(&tail),
                    got: hex(&digest),
                    len,
                })
            }
        }
        n => Err(DeltaError::Trailing(n)),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Passes bytes through and hashes all but the last 32 (the candidate SHA-256).
struct Tee<R> {
    inner: R,
    hasher: digest::Context,
    pending: Vec<u8>,
    hashed: usize,
}

impl<R> Tee<R> {
    fn new(inner: R) -> Self {
        Tee {
            inner,
            hasher: digest::Context::new(&digest::SHA256),
            pending: Vec::new(),
            hashed: 0,
        }
    }

    /// (sha256 of all bytes but the last 32, the last 32 bytes, the number of bytes hashed).
    fn finish(mut self) -> ([u8; 32], Vec<u8>, usize) {
        let keep = self.pending.len().saturating_sub(32);
        self.hasher.update(&self.pending[..keep]);
        let mut sum = [0u8; 32];
        sum.copy_from_slice(self.hasher.finish().as_ref());
        (sum, self.pending.split_off(keep), self.hashed + keep)
    }
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pending.extend_from_slice(&buf[..n]);
        if self.pending.len() >= 1 << 16 {
            let keep = self.pending.len() - 32;
            self.hasher.update(&self.pending[..keep]);
            self.pending.drain(..keep);
            self.hashed += keep;
        }
        Ok(n)
    }
}

/// Walks the event array one event at a time; returns the number of events.
struct EventsVisitor {
    start: i64,
    last: i64,
}

impl<'de> Visitor<'de> for EventsVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of delta events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        let mut prev: Option<i64> = None;
        let mut count = 0u64;
        while let Some(e) = seq.next_element::<DeltaEvent>()? {
            count += 1;
            // The restorer dereferences both: a missing one crashes it.
            let Some(ev) = e.etcd_event else {
                return Err(A::Error::custom(format!("event {count} has no etcdEvent")));
            };
            let Some(kv) = ev.kv else {
                return Err(A::Error::custom(format!("event {count} has no kv")));
            };
            let kind = ev.kind.unwrap_or(0);
            if kind != 0 && kind != 1 {
                return Err(A::Error::custom(format!(
                    "event {count} has type {kind}, neither PUT (0) nor DELETE (1)"
                )));
            }
            let rev = kv.mod_revision.unwrap_or(0);
            let ok = match prev {
                None => rev == self.start,
                Some(p) => rev == p || rev == p + 1,
            };
            if !ok {
                return Err(A::Error::custom(match prev {
                    None => format!(
                        "the first event has revision {rev} but the name says the delta starts at {}",
                        self.start
                    ),
                    Some(p) => format!(
                        "event {count} has revision {rev} after {p}: each revision must follow the previous one"
                    ),
                }));
            }
            prev = Some(rev);
        }
        match prev {
            None => Err(A::Error::custom("the event list is empty")),
            Some(p) if p != self.last => Err(A::Error::custom(format!(
                "the last event has revision {p} but the name says the delta ends at {}",
                self.last
            ))),
            Some(_) => Ok(count),
        }
    }
}

/// `snapshotter.go` `event`. Fields are parsed to validate them as Go's `json.Unmarshal` does.
#[derive(Deserialize)]
struct DeltaEvent {
    #[serde(rename = "etcdEvent")]
    etcd_event: Option<EtcdEvent>,
    #[serde(default)]
    #[allow(dead_code)]
    time: Option<GoTime>,
}

/// `mvccpb.Event` (kv.pb.go tags): the type is a number, PUT (0) omitted.
#[derive(Deserialize)]
struct EtcdEvent {
    #[serde(rename = "type")]
    kind: Option<i32>,
    kv: Option<KeyValue>,
    #[allow(dead_code)]
    prev_kv: Option<KeyValue>,
}

/// `mvccpb.KeyValue`: bytes are base64 (Go's `[]byte` JSON).
#[derive(Deserialize)]
#[allow(dead_code)]
struct KeyValue {
    key: Option<Base64>,
    create_revision: Option<i64>,
    mod_revision: Option<i64>,
    version: Option<i64>,
    value: Option<Base64>,
    lease: Option<i64>,
}

/// A base64 string (checked, then dropped).
struct Base64;

impl<'de> Deserialize<'de> for Base64 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use base64::Engine as _;
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map(|_| Base64)
            .map_err(|e| D::Error::custom(format!("invalid base64: {e}")))
    }
}

/// A Go `time.Time` in JSON: an RFC 3339 string.
struct GoTime;

impl<'de> Deserialize<'de> for GoTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        chrono::DateTime::parse_from_rfc3339(&s)
            .map(|_| GoTime)
            .map_err(|e| D::Error::custom(format!("time {s:?} is not RFC 3339: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::layout::parse_gardener_key;

    /// Events as Go's `json.Marshal` writes them (PUT type omitted, DELETE is 1, bytes base64).
    const EVENTS: &str = concat!(
        r#"[{"etcdEvent":{"kv":{"key":"L2E=","create_revision":11,"mod_revision":11,"version":1,"value":"dg=="}},"time":"2026-11-23T08:19:00.123456789Z"},"#,
        r#"{"etcdEvent":{"kv":{"key":"L2I=","create_revision":12,"mod_revision":12,"version":1,"value":"dg=="}},"time":"2026-11-23T08:19:00Z"},"#,
        r#"{"etcdEvent":{"type":1,"kv":{"key":"L2E=","mod_revision":12},"prev_kv":{"key":"L2E=","create_revision":11,"mod_revision":11,"version":1,"value":"dg=="}},"time":"2026-11-23T08:19:01+02:00"}]"#
    );

    fn snap(name: &str) -> GardenerSnap {
        parse_gardener_key(name).unwrap()
    }

    fn with_sum(json: &str) -> Vec<u8> {
        let mut b = json.as_bytes().to_vec();
        b.extend_from_slice(digest::digest(&digest::SHA256, json.as_bytes()).as_ref());
        b
    }

    #[test]
    fn good_delta_with_and_without_sha256() {
        let s = snap("v2/Incr-00000011-00000012-1795421940");
        let ok = check_delta(&with_sum(EVENTS), &s).unwrap();
        assert_eq!(
            ok,
            DeltaOk {
                sha256: true,
                events: 3
            }
        );
        let ok = check_delta(EVENTS.as_bytes(), &s).unwrap();
        assert_eq!(
            ok,
            DeltaOk {
                sha256: false,
                events: 3
            }
        );
    }

    #[test]
    fn bad_deltas_say_why() {
        let s = snap("v2/Incr-00000011-00000012-1795421940");
        let mut bad = with_sum(EVENTS);
        let n = bad.len();
        bad[n - 1] ^= 1;
        let cases: Vec<(Vec<u8>, GardenerSnap, &str)> = vec![
            (bad, s.clone(), "sha256 mismatch"),
            (
                [EVENTS.as_bytes(), b"xyz"].concat(),
                s.clone(),
                "3 unexpected bytes",
            ),
            (
                with_sum(EVENTS),
                snap("v2/Incr-00000011-00000013-1"),
                "name says the delta ends at 13",
            ),
            (
                with_sum(EVENTS),
                snap("v2/Incr-00000010-00000012-1"),
                "starts at 10",
            ),
            (with_sum("[]"), s.clone(), "empty"),
            (with_sum("{}"), s.clone(), "expected a JSON array"),
            (
                with_sum(&EVENTS.replace("\"type\":1", "\"type\":2")),
                s.clone(),
                "neither PUT",
            ),
            (
                with_sum(&EVENTS.replace("L2I=", "L2I")),
                s.clone(),
                "base64",
            ),
            (
                with_sum(&EVENTS.replace("2026-11-23T08:19:00Z", "yesterday")),
                s.clone(),
                "RFC 3339",
            ),
            (
                with_sum(&EVENTS.replace(r#""kv":{"key":"L2I=","create_revision":12,"mod_revision":12,"version":1,"value":"dg=="}"#, "\"x\":1")),
                s.clone(),
                "has no kv",
            ),
            (
                with_sum(EVENTS),
                snap("v2/Incr-00000011-00000012-1.gz"),
                "cannot be decompressed",
            ),
            (
                with_sum(EVENTS),
                snap("v2/Incr-00000011-00000012-1.bz2"),
                "not one etcd-backup-restore decodes",
            ),
        ];
        for (data, s, want) in cases {
            let e = check_delta(&data, &s).unwrap_err().to_string();
            assert!(e.contains(want), "want {want:?}, got {e}");
        }
    }

    #[test]
    fn large_delta_streams_through_the_hash() {
        // More than the tee's 64 KiB hashing window.
        let one = r#"{"etcdEvent":{"kv":{"key":"L2E=","mod_revision":5,"value":"dg=="}},"time":"2026-11-23T08:19:00Z"}"#;
        let json = format!("[{}]", vec![one; 5000].join(","));
        let s = snap("v2/Incr-00000005-00000005-1");
        let ok = check_delta(&with_sum(&json), &s).unwrap();
        assert_eq!(ok.events, 5000);
        assert!(ok.sha256);
    }
}
