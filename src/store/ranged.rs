//! Reading one S3 object as a stream, fast: a large object is read by a bounded number of
//! parallel ranged GETs, reassembled in order (issue #21), as `aws s3 cp` does. Nothing is
//! written to disk: one object holds at most `parts_in_flight + 1` parts at once, and all
//! the reads of the process together at most [`BUDGET_KIB`] of object bytes, whatever the
//! objects' sizes and however many stores are read at once.
//!
//! The first GET asks for the first part (`Range: bytes=0-…`); its answer gives the object's
//! size and ETag. An object no larger than one part is then read whole by that one GET. Every
//! later part carries `If-Match: <ETag>`, so an object replaced while it is read fails the read
//! (412 PreconditionFailed) instead of mixing the bytes of two versions.

use super::backend::{s3_err, S3Context, StoreError};
use super::s3_error::S3Failure;
use aws_sdk_s3::primitives::AggregatedBytes;
use bytes::Buf;
use futures_util::{stream, Stream, StreamExt};
use std::io::Read;
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_util::task::AbortOnDropHandle;

/// Object bytes that the ranged reads of the whole process hold together, in KiB (8 MiB):
/// parts being fetched, waiting and being read. Stores read at once share it. The parts'
/// buffers take more than their bytes (the HTTP client's frames), and with the verifier's own
/// memory (47 MiB peak for an 8 GiB snapshot) `status`/`check` of an S3 backup must stay within
/// the 64 MiB of issue #21: 16 MiB measured 68 MiB there (`docs/benchmarks.md`).
pub const BUDGET_KIB: u32 = 8 * 1024;
static BUDGET: Semaphore = Semaphore::const_new(BUDGET_KIB as usize);

/// Reserve `len` bytes of the budget (all of it at most), waiting for other reads to release
/// theirs. Parts of one object reserve in order, so the part a reader waits for is never
/// starved by parts it does not need yet.
async fn reserve(len: u64) -> Result<SemaphorePermit<'static>, StoreError> {
    let kib = u32::try_from(len.div_ceil(1024))
        .unwrap_or(u32::MAX)
        .clamp(1, BUDGET_KIB);
    BUDGET.acquire_many(kib).await.map_err(|e| StoreError::S3 {
        op: "GET",
        target: String::new(),
        failure: S3Failure::Other(e.to_string()),
    })
}

/// One fetched part and its share of the budget, released when the reader has read it.
struct Part {
    bytes: AggregatedBytes,
    _held: SemaphorePermit<'static>,
}

impl Buf for Part {
    fn remaining(&self) -> usize {
        self.bytes.remaining()
    }
    fn chunk(&self) -> &[u8] {
        self.bytes.chunk()
    }
    fn advance(&mut self, cnt: usize) {
        self.bytes.advance(cnt);
    }
}

/// How large objects are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangedReads {
    /// Bytes per ranged GET; an object no larger than this is read by one GET.
    pub part_size: u64,
    /// Parts requested or held ahead of the one being read.
    pub parts_in_flight: usize,
}

impl Default for RangedReads {
    /// 2 MiB parts, 3 ahead: four parts fill the 8 MiB budget, three of them in flight.
    fn default() -> Self {
        RangedReads {
            part_size: 2 << 20,
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
    fn whole(body: aws_sdk_s3::primitives::ByteStream, size: u64) -> ObjectReader {
        let bridge = tokio_util::io::SyncIoBridge::new(Box::pin(body.into_async_read()));
        ObjectReader::new(Box::new(bridge), size)
    }

    /// Parts in order; the first failure ends the stream and is kept for [`Self::failure`].
    fn parts<S>(parts: S, size: u64, target: String) -> ObjectReader
    where
        S: Stream<Item = Result<Result<Part, StoreError>, tokio::task::JoinError>> + Send + 'static,
    {
        let failure: Arc<Mutex<Option<StoreError>>> = Arc::default();
        let keep = failure.clone();
        let parts = parts.map(move |r| {
            let e = match r {
                Ok(Ok(part)) => return Ok(part),
                Ok(Err(e)) => e,
                Err(join) => StoreError::S3 {
                    op: "GET",
                    target: target.clone(),
                    failure: S3Failure::Other(format!("part fetch failed: {join}")),
                },
            };
            let text = e.to_string();
            if let Ok(mut slot) = keep.lock() {
                slot.get_or_insert(e);
            }
            Err(std::io::Error::other(text))
        });
        let inner = InOrder {
            rt: tokio::runtime::Handle::current(),
            parts: Box::pin(parts),
            current: None,
        };
        ObjectReader {
            inner: Box::new(inner),
            size,
            failure,
        }
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

/// The parts of an object read in order: waits on the runtime only when a part is used up.
struct InOrder {
    rt: tokio::runtime::Handle,
    parts: std::pin::Pin<Box<dyn Stream<Item = std::io::Result<Part>> + Send>>,
    current: Option<Part>,
}

impl Read for InOrder {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(part) = self.current.as_mut().filter(|p| p.has_remaining()) {
                let n = buf.len().min(part.remaining());
                part.copy_to_slice(&mut buf[..n]);
                return Ok(n);
            }
            // The part read is dropped first: its share of the budget goes back.
            self.current = None;
            match self.rt.block_on(self.parts.next()) {
                Some(Ok(part)) => self.current = Some(part),
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
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

    /// The whole body of one answer, which must be `len` bytes, `held` in the budget.
    async fn collect(
        &self,
        body: aws_sdk_s3::primitives::ByteStream,
        len: u64,
        held: SemaphorePermit<'static>,
    ) -> Result<Part, StoreError> {
        let bytes = body.collect().await.map_err(|e| StoreError::S3 {
            op: "GET",
            target: self.target(),
            failure: S3Failure::Other(e.to_string()),
        })?;
        let got = bytes.remaining() as u64;
        if got != len {
            return Err(StoreError::S3 {
                op: "GET",
                target: self.target(),
                failure: S3Failure::Other(format!("a part of {got} bytes, expected {len}")),
            });
        }
        Ok(Part { bytes, _held: held })
    }

    /// Part `[start, end)` of the version whose ETag is `etag`, `held` in the budget.
    async fn part(
        &self,
        start: u64,
        end: u64,
        etag: &str,
        held: SemaphorePermit<'static>,
    ) -> Result<Part, StoreError> {
        let out = self.get(start, end, Some(etag)).await?;
        self.collect(out.body, end - start, held).await
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
    let part = ctx.reads.part_size.max(1);
    let first = match obj.get(0, part, None).await {
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
    let target = obj.target();
    let etag = first.e_tag().map(str::to_string);
    if total > part && etag.is_none() {
        // No ETag to pin the parts to: one GET of the whole object instead.
        drop(first);
        let out = client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3_err("GET", target, bucket, ctx, e))?;
        return Ok(ObjectReader::whole(out.body, total));
    }
    let len = total.min(part);
    let held = reserve(len).await?;
    let head = {
        let obj = obj.clone();
        AbortOnDropHandle::new(tokio::spawn(async move {
            obj.collect(first.body, len, held).await
        }))
    };
    let etag = etag.unwrap_or_default();
    // Budget reserved in order (`then`), each fetch on its own task: the handle yielded is
    // awaited by `buffered`, not here.
    #[allow(clippy::async_yields_async)]
    let rest = stream::iter(1..total.div_ceil(part)).then(move |i| {
        let (obj, etag) = (obj.clone(), etag.clone());
        let (start, end) = (i * part, ((i + 1) * part).min(total));
        async move {
            let held = reserve(end - start).await;
            AbortOnDropHandle::new(tokio::spawn(async move {
                obj.part(start, end, &etag, held?).await
            }))
        }
    });
    let parts = stream::iter([head])
        .chain(rest)
        .buffered(ctx.reads.parts_in_flight.max(1));
    Ok(ObjectReader::parts(parts, total, target))
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
