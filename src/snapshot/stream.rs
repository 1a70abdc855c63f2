//! One streaming pass over a reader feeding several [`ByteSink`]s.
//!
//! The driver reads the input sequentially in chunks on the calling thread (where decompression
//! happens too); every sink runs on its own thread and receives the same chunks (shared, not
//! copied) over a bounded channel, so a slow sink applies back-pressure instead of growing memory.
//! Modelled on ripgrep's `Sink`: the driver owns the pass, sinks only observe it.

use aws_lc_rs::digest;
use std::io::{ErrorKind, Read};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;

/// Read size of the driver. Up to `2 * QUEUE + 4` chunks are alive at once (queued, being
/// read by a sink, kept for reuse): small chunks keep that a few MiB (issue #21's 64 MiB).
pub const CHUNK: usize = 256 << 10;
/// Chunks that may wait in each sink's channel.
const QUEUE: usize = 3;

/// An observer of every byte of the input, in order.
pub trait ByteSink: Send {
    /// Called once per chunk, in input order, with every byte exactly once. Chunks are never
    /// empty. The sink must not fail: what it finds wrong it records for its own result.
    fn bytes(&mut self, chunk: &[u8]);
    /// Called exactly once after the last chunk (also when reading stopped on an error).
    fn end(&mut self);
}

/// How the pass over the input ended.
#[derive(Debug)]
pub struct PassEnd {
    /// Bytes read before the end or the error.
    pub total: u64,
    /// The read error that stopped the pass, if any.
    pub error: Option<std::io::Error>,
}

/// Read `reader` to its end on this thread, feeding each of `sinks` on its own thread. Returns
/// when every sink has seen `end`. Read errors stop the pass and are returned in
/// [`PassEnd::error`]; the sinks still get `end`.
pub fn run<R: Read>(mut reader: R, sinks: &mut [&mut dyn ByteSink]) -> PassEnd {
    std::thread::scope(|scope| {
        let mut senders = Vec::with_capacity(sinks.len());
        for sink in sinks.iter_mut() {
            let (tx, rx) = sync_channel::<Arc<Vec<u8>>>(QUEUE);
            senders.push(tx);
            let sink: &mut dyn ByteSink = &mut **sink;
            scope.spawn(move || {
                while let Ok(chunk) = rx.recv() {
                    sink.bytes(&chunk);
                }
                sink.end();
            });
        }
        let mut total = 0u64;
        let mut error = None;
        // Chunks handed out earlier; reused once every sink has dropped them, so the pass does
        // not allocate (and page-fault in) a fresh chunk each time.
        let mut in_flight: std::collections::VecDeque<Arc<Vec<u8>>> =
            std::collections::VecDeque::new();
        loop {
            let reusable = in_flight
                .front_mut()
                .is_some_and(|c| Arc::get_mut(c).is_some());
            let mut buf = match in_flight.pop_front() {
                Some(c) if reusable => Arc::try_unwrap(c).unwrap_or_default(),
                Some(c) => {
                    in_flight.push_front(c);
                    Vec::new()
                }
                None => Vec::new(),
            };
            buf.resize(CHUNK, 0);
            let mut filled = 0;
            // Fill the whole chunk (decompressors return short reads).
            while filled < CHUNK {
                match reader.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            if filled > 0 {
                buf.truncate(filled);
                total += filled as u64;
                let chunk = Arc::new(buf);
                for tx in &senders {
                    // A sink thread only stops receiving by ending, which cannot happen early.
                    let _ = tx.send(Arc::clone(&chunk));
                }
                in_flight.push_back(chunk);
                if in_flight.len() > QUEUE + 3 {
                    in_flight.pop_front();
                }
            }
            if filled < CHUNK || error.is_some() {
                break;
            }
        }
        drop(senders);
        PassEnd { total, error }
    })
}

/// sha256 of every byte except the last 32, which are kept as the candidate trailer.
pub struct Sha256Sink {
    hasher: Option<digest::Context>,
    /// Up to 32 held-back bytes: the newest bytes seen.
    tail: Vec<u8>,
    total: u64,
    result: Option<([u8; 32], Vec<u8>)>,
}

impl Default for Sha256Sink {
    fn default() -> Self {
        Sha256Sink {
            hasher: Some(digest::Context::new(&digest::SHA256)),
            tail: Vec::new(),
            total: 0,
            result: None,
        }
    }
}

impl Sha256Sink {
    fn update(&mut self, data: &[u8]) {
        if let Some(h) = &mut self.hasher {
            h.update(data);
        }
    }

    /// `(sha256 of all bytes but the last 32, the last min(32, total) bytes, total bytes)`,
    /// available after [`ByteSink::end`].
    pub fn result(&self) -> Option<(&[u8; 32], &[u8], u64)> {
        self.result.as_ref().map(|(d, t)| (d, &t[..], self.total))
    }
}

impl ByteSink for Sha256Sink {
    fn bytes(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        if chunk.len() >= 32 {
            let tail = std::mem::take(&mut self.tail);
            self.update(&tail);
            let (body, rest) = chunk.split_at(chunk.len() - 32);
            self.update(body);
            self.tail = tail;
            self.tail.clear();
            self.tail.extend_from_slice(rest);
        } else {
            self.tail.extend_from_slice(chunk);
            let excess = self.tail.len().saturating_sub(32);
            if excess > 0 {
                let head: Vec<u8> = self.tail.drain(..excess).collect();
                self.update(&head);
            }
        }
    }

    fn end(&mut self) {
        let mut digest = [0u8; 32];
        if let Some(h) = self.hasher.take() {
            let d = h.finish();
            let n = d.as_ref().len().min(32);
            digest[..n].copy_from_slice(&d.as_ref()[..n]);
        }
        self.result = Some((digest, std::mem::take(&mut self.tail)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    struct Collect(Vec<u8>, bool);
    impl ByteSink for Collect {
        fn bytes(&mut self, chunk: &[u8]) {
            assert!(!chunk.is_empty());
            self.0.extend_from_slice(chunk);
        }
        fn end(&mut self) {
            self.1 = true;
        }
    }

    #[test]
    fn every_sink_sees_every_byte_and_sha_holds_back_the_trailer() {
        let data: Vec<u8> = (0..(3 * CHUNK + 77)).map(|i| (i * 7 % 251) as u8).collect();
        let mut sha = Sha256Sink::default();
        let mut a = Collect(Vec::new(), false);
        let mut b = Collect(Vec::new(), false);
        let end = run(&data[..], &mut [&mut sha, &mut a, &mut b]);
        assert_eq!(end.total, data.len() as u64);
        assert!(a.1 && b.1);
        assert_eq!(a.0, data);
        assert_eq!(b.0, data);
        let (digest, tail, total) = sha.result().unwrap();
        let split = data.len() - 32;
        assert_eq!(&digest[..], &Sha256::digest(&data[..split])[..]);
        assert_eq!(tail, &data[split..]);
        assert_eq!(total, data.len() as u64);
    }

    #[test]
    fn sha_sink_with_tiny_chunks() {
        let data: Vec<u8> = (0..100u8).collect();
        let mut sha = Sha256Sink::default();
        for c in data.chunks(5) {
            sha.bytes(c);
        }
        sha.end();
        let (digest, tail, _) = sha.result().unwrap();
        assert_eq!(&digest[..], &Sha256::digest(&data[..68])[..]);
        assert_eq!(tail, &data[68..]);
    }
}
