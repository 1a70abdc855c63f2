//! The page-scanning [`ByteSink`]: reads the meta pages, then parses every page position in
//! `[2, HWM)` tentatively into a [`PageSummary`], buffering only a bounded window (one page
//! extent, at most [`bbolt::MAX_EXTENT`] bytes, plus one chunk).

use super::bbolt::{self, Body, Meta, PageSummary};
use super::inventory::Names;
use super::pages::Pages;
use super::stream::ByteSink;

/// Bytes needed to probe meta page 1 at every supported page size (up to 64 KiB) plus its body.
const META_PROBE: usize = 65536 + 4096;

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Metas,
    Pages,
    Done,
}

/// What the scanner learned; read after [`ByteSink::end`].
#[derive(Debug)]
pub struct Scan {
    /// The active meta page, when one validates.
    pub meta: Option<Meta>,
    /// Problems with the meta pages (one invalid meta page, or both).
    pub meta_problems: Vec<String>,
    /// Summary of page `2 + i` at index `i`, for every page whose first page-size bytes arrived.
    pub pages: Pages,
    /// Total bytes seen.
    pub total: u64,
    /// Resources (and namespaces) named by the `key`-bucket entries of the pages.
    pub names: Names,
}

/// Streaming page scanner. See the module doc.
pub struct PageScanner {
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    buf_off: u64,
    phase: Phase,
    next: u64,
    pub scan: Scan,
}

impl PageScanner {
    /// `full`: keep namespaces and value lengths for the inventory (`inspect`).
    pub fn new(full: bool) -> Self {
        PageScanner {
            buf: Vec::new(),
            buf_off: 0,
            phase: Phase::Metas,
            next: 2,
            scan: Scan {
                meta: None,
                meta_problems: Vec::new(),
                pages: Pages::default(),
                total: 0,
                names: Names::new(full),
            },
        }
    }
}

impl ByteSink for PageScanner {
    fn bytes(&mut self, chunk: &[u8]) {
        self.scan.total += chunk.len() as u64;
        if self.phase == Phase::Done {
            return;
        }
        if self.phase == Phase::Pages && self.buf.is_empty() {
            // Parse straight from the chunk; keep only an unfinished page for the next one.
            let consumed = self.scan_pages(chunk, false);
            self.buf_off += consumed as u64;
            if self.phase != Phase::Done {
                self.buf
                    .extend_from_slice(chunk.get(consumed..).unwrap_or(&[]));
            }
            return;
        }
        self.buf.extend_from_slice(chunk);
        self.process(false);
    }

    fn end(&mut self) {
        self.process(true);
        self.phase = Phase::Done;
        self.buf = Vec::new();
    }
}

impl PageScanner {
    fn process(&mut self, eof: bool) {
        if self.phase == Phase::Metas && !self.metas(eof) {
            return;
        }
        if self.phase == Phase::Pages {
            self.pages(eof);
        }
    }

    /// Decide the active meta page. Returns false while more bytes are needed.
    fn metas(&mut self, eof: bool) -> bool {
        let buf = &self.buf;
        if buf.len() < 4096 && !eof {
            return false;
        }
        let m0 = bbolt::parse_meta(buf);
        let m1 = match &m0 {
            Ok(m) => {
                let ps = m.page_size as usize;
                if buf.len() < 2 * ps && !eof {
                    return false;
                }
                bbolt::parse_meta(buf.get(ps..).unwrap_or(&[]))
            }
            Err(_) => {
                if buf.len() < META_PROBE && !eof {
                    return false;
                }
                let mut found = Err(bbolt::PageError::MetaNotFound);
                for i in 0..=6 {
                    let off = 1024usize << i;
                    if let Some(p) = buf.get(off..) {
                        if let Ok(m) = bbolt::parse_meta(p) {
                            found = Ok(m);
                            break;
                        }
                    }
                }
                found
            }
        };
        let chosen = match (&m0, &m1) {
            (Ok(a), Ok(b)) => Some(if b.txid > a.txid { *b } else { *a }),
            (Ok(a), Err(e)) => {
                self.scan
                    .meta_problems
                    .push(format!("meta page 1 is invalid: {e}"));
                Some(*a)
            }
            (Err(e), Ok(b)) => {
                self.scan
                    .meta_problems
                    .push(format!("meta page 0 is invalid: {e}"));
                Some(*b)
            }
            (Err(e0), Err(e1)) => {
                self.scan.meta_problems.push(if buf.is_empty() {
                    "empty input: no bbolt meta page".to_string()
                } else {
                    format!("not a bbolt database: meta page 0: {e0}; meta page 1: {e1}")
                });
                None
            }
        };
        self.scan.meta = chosen;
        self.phase = if chosen.is_some() {
            Phase::Pages
        } else {
            Phase::Done
        };
        if self.phase == Phase::Done {
            self.buf = Vec::new();
        }
        true
    }

    /// Parse every page whose bytes are complete in `data` (which starts at file offset
    /// `self.buf_off`); returns how many leading bytes of `data` are no longer needed.
    fn scan_pages(&mut self, data: &[u8], eof: bool) -> usize {
        let Some(meta) = self.scan.meta else {
            return data.len();
        };
        let ps = u64::from(meta.page_size);
        while self.next < meta.hwm {
            let pgid = self.next;
            let start = pgid * ps - self.buf_off;
            let Some(local) = usize::try_from(start).ok() else {
                return 0;
            };
            let Some(page) = data.get(local..local + ps as usize) else {
                if eof {
                    break;
                }
                return local.min(data.len());
            };
            let header = bbolt::parse_header(page);
            let summary = match header {
                Some((id, flags, _, overflow))
                    if id == pgid
                        && matches!(flags, bbolt::BRANCH | bbolt::LEAF | bbolt::FREELIST) =>
                {
                    let header_only = |problem: String| PageSummary {
                        header_id: id,
                        flags,
                        overflow,
                        body: Body::None,
                        problem: Some(problem.into()),
                    };
                    let ext = (u64::from(overflow) + 1) * ps;
                    if pgid + u64::from(overflow) >= meta.hwm {
                        header_only(format!(
                            "page {pgid}: overflow of {overflow} pages runs past the high-water mark {}",
                            meta.hwm
                        ))
                    } else if ext > bbolt::MAX_EXTENT {
                        header_only(format!(
                            "page {pgid}: overflow of {overflow} pages ({ext} bytes) exceeds this verifier's limit of {} bytes per page",
                            bbolt::MAX_EXTENT
                        ))
                    } else {
                        match data.get(local..local + ext as usize) {
                            // Only the active freelist is read (a stale copy is never used).
                            Some(_) if flags == bbolt::FREELIST && pgid != meta.freelist => {
                                PageSummary {
                                    header_id: id,
                                    flags,
                                    overflow,
                                    body: Body::None,
                                    problem: None,
                                }
                            }
                            Some(extent) => bbolt::parse_page(extent, pgid, &mut self.scan.names),
                            None if eof => header_only(format!(
                                "page {pgid}: its {overflow} overflow pages are cut off: the input ends at byte {}",
                                self.scan.total
                            )),
                            None => return local.min(data.len()),
                        }
                    }
                }
                Some((id, flags, _, overflow)) => PageSummary {
                    header_id: id,
                    flags,
                    overflow,
                    body: Body::None,
                    problem: None,
                },
                None => return local.min(data.len()),
            };
            self.scan.pages.push(summary);
            self.next += 1;
        }
        if self.next >= meta.hwm {
            self.phase = Phase::Done;
            return data.len();
        }
        usize::try_from(self.next * ps - self.buf_off).map_or(data.len(), |c| c.min(data.len()))
    }

    fn pages(&mut self, eof: bool) {
        let mut buf = std::mem::take(&mut self.buf);
        let consumed = self.scan_pages(&buf, eof);
        buf.drain(..consumed);
        self.buf_off += consumed as u64;
        self.buf = if self.phase == Phase::Done {
            Vec::new()
        } else {
            buf
        };
    }
}
