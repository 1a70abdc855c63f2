//! Reading one S3 object as a stream, fast: a large object is read by a bounded number of
//! parallel ranged GETs, reassembled in order (issue #21), as `aws s3 cp` does. Nothing is
//! written to disk and no part is held whole: each GET's body is passed on as it arrives, at
//! most [`CHUNKS_AHEAD`] chunks ahead of the reader. A part's bytes the reader is not ready for
//! wait in the connection (TCP flow control), not in memory. Each part so holds at most
//! `CHUNKS_AHEAD + 2` of the HTTP client's chunks (those in its channel, one on its way in, the
//! connection's read buffer), each at most that buffer (hyper's 408 KiB): 6.4 MiB for an object
//! read with the default 3 parts ahead, whatever the sizes of the object and of its parts (and
//! one object is read at a time, two in `serve`).
//!
//! The first GET asks for the first part (`Range: bytes=0-…`); its answer gives the object's
//! size and ETag. An object no larger than one part is then read whole by that one GET. Every
//! later part carries `If-Match: <ETag>`, so an object replaced while it is read fails the read
//! (412 PreconditionFailed) instead of mixing the bytes of two versions.

use super::backend::{s3_err, S3Context, StoreError};
use super::s3_error::S3Failure;
use aws_sdk_s3::primitives::ByteStream;
use bytes::{Buf, Bytes};
use std::collections::VecDeque;
use std::io::Read;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;

/// Chunks of one part's body held ahead of the reader (each as the HTTP client read it, at
/// most its read buffer, ~400 KiB).
const CHUNKS_AHEAD: usize = 2;

/// How large objects are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangedReads {
    /// Bytes per ranged GET; an object no larger than this is read by one GET.
    pub part_size: u64,
    /// Parts requested ahead of the one being read.
    pub parts_in_flight: usize,
}

impl Default for RangedReads {
    /// 8 MiB parts, as `aws s3 cp` asks for them, 3 ahead of the one being read.
    fn default() -> Self {
        RangedReads {
            part_size: 8 << 20,
            parts_in_flight: 3,
        }
    }
}

/// One store object opened for reading, with its size. Read an S3 object on a blocking thread
/// (`spawn_blocking`), never on the runtime: its reads wait on the runtime's work.
pub struct ObjectReader {
    inner: Box<dyn Read + Send>,
    size: u64,
    /// The first failed part fetch, kept whole (the reader can only pass an `io::Error` on).
    failure: Arc<Mutex<Option<StoreError>>>,
}

impl ObjectReader {
    pub(crate) fn new(inner: Box<dyn Read + Send>, size: u64) -> ObjectReader {
        ObjectReader {
            inner,
            size,
            failure: Arc::default(),
        }
    }

    /// One GET's body, read as it arrives.
    fn whole(body: ByteStream, size: u64) -> ObjectReader {
        let bridge = tokio_util::io::SyncIoBridge::new(Box::pin(body.into_async_read()));
        ObjectReader::new(Box::new(bridge), size)
    }

    /// The object's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Why a read failed, when a part could not be fetched (a replaced object, a cut
    /// connection): the store error, where the `io::Error` the reader gave has only its text.
    pub fn failure(&self) -> Option<StoreError> {
        self.failure.lock().ok().and_then(|mut f| f.take())
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

/// One part being fetched: its chunks in order, from the task that fetches it.
struct Part {
    chunks: mpsc::Receiver<Result<Bytes, StoreError>>,
    /// Bytes of the part not received yet.
    due: u64,
    _fetch: AbortOnDropHandle<()>,
}

impl Part {
    /// Part `[start, end)` of `obj`, fetched by its own task (the GET, unless `first` is the
    /// answer already): its chunks wait for the reader in the part's channel.
    fn fetch(obj: Object, start: u64, end: u64, etag: String, first: Option<ByteStream>) -> Part {
        let (tx, chunks) = mpsc::channel(CHUNKS_AHEAD);
        let fetch = tokio::spawn(async move {
            let body = match first {
                Some(body) => body,
                None => match obj.get(start, end, Some(&etag)).await {
                    Ok(out) => out.body,
                    Err(e) => return drop(tx.send(Err(e)).await),
                },
            };
            obj.pass_on(body, tx).await
        });
        Part {
            chunks,
            due: end - start,
            _fetch: AbortOnDropHandle::new(fetch),
        }
    }
}

/// The parts of an object read in order, `ahead` of them requested beyond the one being read.
struct InOrder {
    rt: tokio::runtime::Handle,
    obj: Object,
    etag: String,
    total: u64,
    part_size: u64,
    ahead: usize,
    /// Index of the next part to request.
    next: u64,
    /// Requested parts; the front one is being read.
    parts: VecDeque<Part>,
    chunk: Bytes,
    failure: Arc<Mutex<Option<StoreError>>>,
    /// Why the read failed, once it has.
    broken: Option<String>,
}

impl InOrder {
    /// Keep `ahead` parts requested beyond the one being read.
    fn request(&mut self) {
        let count = self.total.div_ceil(self.part_size);
        let _rt = self.rt.enter();
        while self.parts.len() <= self.ahead && self.next < count {
            let start = self.next * self.part_size;
            let end = (start + self.part_size).min(self.total);
            let (obj, etag) = (self.obj.clone(), self.etag.clone());
            self.parts
                .push_back(Part::fetch(obj, start, end, etag, None));
            self.next += 1;
        }
    }

    /// The next chunk of the object; an empty one at its end.
    fn next_chunk(&mut self) -> Result<Bytes, StoreError> {
        loop {
            self.request();
            let Some(part) = self.parts.front_mut() else {
                return Ok(Bytes::new());
            };
            let short = |text: &str| StoreError::S3 {
                op: "GET",
                target: self.obj.target(),
                failure: S3Failure::Other(format!("a part of the object {text}")),
            };
            match self.rt.block_on(part.chunks.recv()) {
                Some(Ok(chunk)) if chunk.len() as u64 <= part.due => {
                    part.due -= chunk.len() as u64;
                    if !chunk.is_empty() {
                        return Ok(chunk);
                    }
                }
                None if part.due == 0 => drop(self.parts.pop_front()),
                Some(Err(e)) => return Err(e),
                Some(Ok(_)) => return Err(short("had more bytes than its range")),
                None => return Err(short("ended before its range did")),
            }
        }
    }
}

impl Read for InOrder {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(text) = &self.broken {
            return Err(std::io::Error::other(text.clone()));
        }
        if !self.chunk.has_remaining() {
            match self.next_chunk() {
                Ok(chunk) => self.chunk = chunk,
                Err(e) => {
                    // No more GETs; a read after this one fails the same way.
                    let text = e.to_string();
                    if let Ok(mut slot) = self.failure.lock() {
                        slot.get_or_insert(e);
                    }
                    self.parts.clear();
                    self.broken = Some(text.clone());
                    return Err(std::io::Error::other(text));
                }
            }
        }
        let n = buf.len().min(self.chunk.remaining());
        self.chunk.copy_to_slice(&mut buf[..n]);
        Ok(n)
    }
}

/// Where one object is and how to read it.
#[derive(Clone)]
struct Object {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    ctx: S3Context,
}

impl Object {
    fn target(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    /// `bytes=first-last` of `[start, end)`.
    async fn get(
        &self,
        start: u64,
        end: u64,
        etag: Option<&str>,
    ) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput, StoreError> {
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .range(format!("bytes={start}-{}", end - 1))
            .set_if_match(etag.map(str::to_string));
        req.send()
            .await
            .map_err(|e| s3_err("GET", self.target(), &self.bucket, &self.ctx, e))
    }

    /// Pass one answer's body on to `tx` as it arrives, until its end or its first error.
    async fn pass_on(&self, mut body: ByteStream, tx: mpsc::Sender<Result<Bytes, StoreError>>) {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| StoreError::S3 {
                op: "GET",
                target: self.target(),
                failure: S3Failure::Other(e.to_string()),
            });
            let failed = chunk.is_err();
            if tx.send(chunk).await.is_err() || failed {
                return; // the reader is gone, or has the error
            }
        }
    }
}

/// Total size from a `Content-Range: bytes FIRST-LAST/TOTAL` header.
fn total_size(content_range: &str) -> Option<u64> {
    content_range.rsplit_once('/')?.1.parse().ok()
}

/// Open `key` for reading. The reader must be read on a blocking thread (`spawn_blocking`),
/// not on the runtime.
pub(crate) async fn open(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    ctx: &S3Context,
) -> Result<ObjectReader, StoreError> {
    let obj = Object {
        client: client.clone(),
        bucket: bucket.to_string(),
        key: key.to_string(),
        ctx: ctx.clone(),
    };
    let part_size = ctx.reads.part_size.max(1);
    let first = match obj.get(0, part_size, None).await {
        Ok(out) => out,
        Err(StoreError::S3 {
            failure: S3Failure::Service { status: 416, .. },
            ..
        }) => {
            // S3 refuses any range of an empty object: it is empty.
            return Ok(ObjectReader::new(Box::new(std::io::empty()), 0));
        }
        Err(e) => return Err(e),
    };
    let Some(total) = first.content_range().and_then(total_size) else {
        // The server ignored the range: this one answer is the whole object.
        let size = first
            .content_length()
            .and_then(|l| u64::try_from(l).ok())
            .unwrap_or(0);
        return Ok(ObjectReader::whole(first.body, size));
    };
    let etag = first.e_tag().map(str::to_string);
    if total > part_size && etag.is_none() {
        // No ETag to pin the parts to: one GET of the whole object instead.
        drop(first);
        let out = client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3_err("GET", obj.target(), bucket, ctx, e))?;
        return Ok(ObjectReader::whole(out.body, total));
    }
    let etag = etag.unwrap_or_default();
    let head = Part::fetch(
        obj.clone(),
        0,
        total.min(part_size),
        etag.clone(),
        Some(first.body),
    );
    let failure: Arc<Mutex<Option<StoreError>>> = Arc::default();
    let inner = InOrder {
        rt: tokio::runtime::Handle::current(),
        obj,
        etag,
        total,
        part_size,
        ahead: ctx.reads.parts_in_flight,
        next: 1,
        parts: VecDeque::from([head]),
        chunk: Bytes::new(),
        failure: failure.clone(),
        broken: None,
    };
    Ok(ObjectReader {
        inner: Box::new(inner),
        size: total,
        failure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_size_from_content_range() {
        assert_eq!(total_size("bytes 0-8388607/2147483648"), Some(2147483648));
        assert_eq!(total_size("bytes 0-9/10"), Some(10));
        assert_eq!(total_size("bytes 0-9/*"), None);
        assert_eq!(total_size("junk"), None);
    }
}
