//! One streaming pass over a reader feeding several [`ByteSink`]s.
//!
//! The driver reads the input sequentially in chunks. The first sink runs on the reading thread;
//! every other sink runs on its own thread and receives the same chunks (shared, not copied)
//! over a bounded channel, so a slow sink applies back-pressure instead of growing memory.
//! Modelled on ripgrep's `Sink`: the driver owns the pass, sinks only observe it.

use sha2::{Digest, Sha256};
use std::io::{ErrorKind, Read};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;

/// Read size of the driver.
pub const CHUNK: usize = 1 << 20;
/// Chunks that may wait in each sink's channel.
const QUEUE: usize = 4;

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

/// Read `reader` to its end, feeding `first` on this thread and each of `others` on its own
/// thread. Returns when every sink has seen `end`. Read errors stop the pass and are returned in
/// [`PassEnd::error`]; the sinks still get `end`.
pub fn run<R: Read>(
    mut reader: R,
    first: &mut dyn ByteSink,
    others: &mut [&mut dyn ByteSink],
) -> PassEnd {
    std::thread::scope(|scope| {
        let mut senders = Vec::with_capacity(others.len());
        for sink in others.iter_mut() {
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
        loop {
            let mut buf = vec![0u8; CHUNK];
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
                first.bytes(&chunk);
            }
            if filled < CHUNK || error.is_some() {
                break;
            }
        }
        drop(senders);
        first.end();
        PassEnd { total, error }
    })
}

/// sha256 of every byte except the last 32, which are kept as the candidate trailer.
#[derive(Default)]
pub struct Sha256Sink {
    hasher: Sha256,
    /// Up to 32 held-back bytes: the newest bytes seen.
    tail: Vec<u8>,
    total: u64,
    result: Option<([u8; 32], Vec<u8>)>,
}

impl Sha256Sink {
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
            self.hasher.update(&self.tail);
            let (body, tail) = chunk.split_at(chunk.len() - 32);
            self.hasher.update(body);
            self.tail.clear();
            self.tail.extend_from_slice(tail);
        } else {
            self.tail.extend_from_slice(chunk);
            let excess = self.tail.len().saturating_sub(32);
            if excess > 0 {
                self.hasher.update(&self.tail[..excess]);
                self.tail.drain(..excess);
            }
        }
    }

    fn end(&mut self) {
        let digest: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
        self.result = Some((digest, std::mem::take(&mut self.tail)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let end = run(&data[..], &mut sha, &mut [&mut a, &mut b]);
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
