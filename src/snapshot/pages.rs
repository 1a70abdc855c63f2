//! The page summaries kept between the streaming pass and the walk, in a compact form.
//!
//! The walk needs, for every page position, what the page would hold if it were reachable
//! ([`PageSummary`]): its type and overflow, branch children and keys, and a leaf's CRC, first
//! and last key and revision counters. Kept as structs, that is a few hundred bytes per page:
//! gigabytes for an 8 GiB snapshot. Here each summary is one variable-length record (LEB128
//! integers; a `key`-bucket revision key as a small delta of its main revision, from the
//! previous key of the record or from a base per block of records, plus its sub revision when
//! not 0) in 1 MiB chunks, with every [`BLOCK`]-th record indexed: about 18 bytes for a leaf of
//! Kubernetes objects and 5 per branch element. [`Pages::get`] decodes a record back into the
//! [`PageSummary`] the parser made, byte for byte in the keys. A `key`-bucket leaf also keeps
//! its entries' inventory bytes (one byte each for the resource and change; about five with
//! [`super::inventory::Names::full`]). What few pages have (parse
//! problems, nested buckets, the `meta`/`cluster`/`members` values, the freelist) stays in side
//! tables.

use super::bbolt::{Body, Leaf, PageSummary, Rare, RevStats};
use std::collections::HashMap;

/// Records per index entry: a lookup skips at most `BLOCK - 1` records.
const BLOCK: usize = 32;
/// Bytes per chunk of records (a larger record gets a chunk of its own).
const CHUNK: usize = 1 << 20;

// Record kinds (low 3 bits of the tag byte) and flags.
const MISMATCH: u8 = 0;
const MISMATCH_ID: u8 = 1;
const HEADER_ONLY: u8 = 2;
const BRANCH: u8 = 3;
const LEAF: u8 = 4;
const FREELIST: u8 = 5;
const KIND: u8 = 7;
const PROBLEM: u8 = 8;
const RARE: u8 = 16;
const REVS: u8 = 32;
const OVERFLOW: u8 = 64;
/// Revision counters with no lease, no delete and `max_mod` equal to the last main revision.
const PLAIN_REVS: u8 = 128;

// Key encodings: the low 3 bits of a key's first integer.
const RAW_KEY: u64 = 0;
const REV_KEY: u64 = 1;
const TOMBSTONE_KEY: u64 = 2;
const SUB_ZERO: u64 = 4;

/// No revision key in the block yet.
const NO_BASE: u64 = u64::MAX;

/// Summaries of pages `2, 3, …` in order. See the module doc.
#[derive(Debug, Default)]
pub struct Pages {
    chunks: Vec<Vec<u8>>,
    /// `(chunk, offset)` of the record of page index `k * BLOCK`.
    index: Vec<(u32, u32)>,
    /// Main revision the first revision key of block `k` is a delta from.
    bases: Vec<u64>,
    len: usize,
    problems: HashMap<usize, Box<str>>,
    rare: HashMap<usize, Box<Rare>>,
    freelists: HashMap<usize, Vec<u64>>,
    scratch: Vec<u8>,
}

impl Pages {
    /// Number of summaries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Bytes held by the records (for the debug log).
    pub fn record_bytes(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum()
    }

    /// Append the summary of page `2 + len()`.
    pub fn push(&mut self, s: PageSummary) {
        let i = self.len;
        let pgid = i as u64 + 2;
        if i % BLOCK == 0 {
            self.bases.push(NO_BASE);
        }
        let mut base = self.bases.last().copied().unwrap_or(NO_BASE);
        let mut rec = std::mem::take(&mut self.scratch);
        rec.clear();
        rec.push(0); // the tag, set below
        let mut tag;
        if s.header_id != pgid {
            tag = MISMATCH;
            if s.header_id <= u64::from(u32::MAX) {
                tag = MISMATCH_ID;
                put(&mut rec, s.header_id);
            }
        } else {
            if s.overflow != 0 && !matches!(s.body, Body::None) {
                put(&mut rec, u64::from(s.overflow));
            }
            match s.body {
                Body::None => {
                    tag = HEADER_ONLY;
                    put(&mut rec, u64::from(s.flags));
                    put(&mut rec, u64::from(s.overflow));
                }
                Body::Branch(elems) => {
                    tag = BRANCH;
                    put(&mut rec, elems.len() as u64);
                    let mut keys = KeyCoder::new(&mut base);
                    let mut prev_child = pgid;
                    for (child, key) in &elems {
                        put(&mut rec, zigzag(child.wrapping_sub(prev_child) as i64));
                        prev_child = *child;
                        keys.put(&mut rec, key);
                    }
                }
                Body::Leaf(mut leaf) => {
                    tag = LEAF | put_leaf(&mut rec, &leaf, &mut base);
                    if let Some(r) = leaf.rare.take() {
                        tag |= RARE;
                        self.rare.insert(i, r);
                    }
                }
                Body::Freelist(ids) => {
                    tag = FREELIST;
                    self.freelists.insert(i, ids);
                }
            }
            if s.overflow != 0 && tag & KIND != HEADER_ONLY {
                tag |= OVERFLOW;
            }
        }
        if let Some(p) = s.problem {
            tag |= PROBLEM;
            self.problems.insert(i, p);
        }
        if let Some(t) = rec.first_mut() {
            *t = tag;
        }
        if let Some(b) = self.bases.last_mut() {
            *b = base;
        }
        self.append(i, &rec);
        self.scratch = rec;
        self.len += 1;
    }

    fn append(&mut self, i: usize, rec: &[u8]) {
        let mut len = Vec::with_capacity(10);
        put(&mut len, rec.len() as u64);
        let need = len.len() + rec.len();
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.len() + need <= c.capacity());
        if !fits {
            self.chunks.push(Vec::with_capacity(CHUNK.max(need)));
        }
        let c = self.chunks.len() - 1;
        if let Some(chunk) = self.chunks.last_mut() {
            if i % BLOCK == 0 {
                self.index.push((c as u32, chunk.len() as u32));
            }
            chunk.extend_from_slice(&len);
            chunk.extend_from_slice(rec);
        }
    }

    /// The record of page index `i`.
    fn record(&self, i: usize) -> Option<&[u8]> {
        let &(c, off) = self.index.get(i / BLOCK)?;
        let (mut c, mut off) = (c as usize, off as usize);
        let mut skip = i % BLOCK;
        loop {
            let mut chunk = self.chunks.get(c)?;
            if off >= chunk.len() {
                c += 1;
                off = 0;
                chunk = self.chunks.get(c)?;
            }
            let mut pos = off;
            let len = get(chunk, &mut pos)? as usize;
            let end = pos.checked_add(len)?;
            if skip == 0 {
                return chunk.get(pos..end);
            }
            skip -= 1;
            off = end;
        }
    }

    /// Summary of page `2 + i`, decoded; `None` past the end.
    pub fn get(&self, i: usize) -> Option<PageSummary> {
        if i >= self.len {
            return None;
        }
        let rec = self.record(i)?;
        let mut base = *self.bases.get(i / BLOCK)?;
        let pgid = i as u64 + 2;
        let (&tag, b) = rec.split_first()?;
        let mut pos = 0;
        let mut s = PageSummary {
            header_id: pgid,
            flags: 0,
            overflow: 0,
            body: Body::None,
            problem: if tag & PROBLEM != 0 {
                self.problems.get(&i).cloned()
            } else {
                None
            },
        };
        let kind = tag & KIND;
        if tag & OVERFLOW != 0 {
            s.overflow = u32::try_from(get(b, &mut pos)?).ok()?;
        }
        match kind {
            MISMATCH => s.header_id = u64::MAX,
            MISMATCH_ID => s.header_id = get(b, &mut pos)?,
            HEADER_ONLY => {
                s.flags = u16::try_from(get(b, &mut pos)?).ok()?;
                s.overflow = u32::try_from(get(b, &mut pos)?).ok()?;
            }
            BRANCH => {
                s.flags = super::bbolt::BRANCH;
                let n = get(b, &mut pos)? as usize;
                let mut elems = Vec::with_capacity(n.min(b.len()));
                let mut keys = KeyCoder::new(&mut base);
                let mut child = pgid;
                for _ in 0..n {
                    child = child.wrapping_add(unzigzag(get(b, &mut pos)?) as u64);
                    elems.push((child, keys.get(b, &mut pos)?));
                }
                s.body = Body::Branch(elems);
            }
            LEAF => {
                s.flags = super::bbolt::LEAF;
                let mut leaf = get_leaf(b.get(pos..)?, tag, &mut base)?;
                if tag & RARE != 0 {
                    leaf.rare = self.rare.get(&i).cloned();
                }
                s.body = Body::Leaf(leaf);
            }
            FREELIST => {
                s.flags = super::bbolt::FREELIST;
                s.body = Body::Freelist(self.freelists.get(&i).cloned().unwrap_or_default());
            }
            _ => return None,
        }
        Some(s)
    }
}

/// Encode a leaf; returns the tag flags for its revision counters.
fn put_leaf(rec: &mut Vec<u8>, leaf: &Leaf, base: &mut u64) -> u8 {
    put(rec, u64::from(leaf.count));
    rec.extend_from_slice(&leaf.crc.to_le_bytes());
    put(rec, leaf.crc_len);
    let mut keys = KeyCoder::new(base);
    if leaf.count > 0 {
        keys.put(rec, leaf.first_key());
        keys.put(rec, leaf.last_key());
    }
    let first_main = keys.first_main;
    let Ok(r) = leaf.revs() else {
        return 0;
    };
    let plain = r.max_mod == r.last_main && r.with_lease == 0;
    if !plain {
        put(rec, zigzag(r.max_mod.wrapping_sub(r.last_main)));
        put(rec, u64::from(r.with_lease));
    }
    put(rec, r.updates.len() as u64);
    let mut prev = first_main as i64;
    for &m in &r.updates {
        put(rec, zigzag(m.wrapping_sub(prev)));
        prev = m;
    }
    put(rec, r.inv.len() as u64);
    rec.extend_from_slice(&r.inv);
    if plain {
        REVS | PLAIN_REVS
    } else {
        REVS
    }
}

fn get_leaf(b: &[u8], tag: u8, base: &mut u64) -> Option<Leaf> {
    let mut pos = 0;
    let count = u32::try_from(get(b, &mut pos)?).ok()?;
    let crc = u32::from_le_bytes(b.get(pos..pos + 4)?.try_into().ok()?);
    pos += 4;
    let crc_len = get(b, &mut pos)?;
    let mut keys = Vec::new();
    let mut first_len = 0;
    let mut coder = KeyCoder::new(base);
    if count > 0 {
        let first = coder.get(b, &mut pos)?;
        let last = coder.get(b, &mut pos)?;
        first_len = first.len() as u32;
        keys.reserve_exact(first.len() + last.len());
        keys.extend_from_slice(&first);
        keys.extend_from_slice(&last);
    }
    let first_main = coder.first_main;
    let mut stats = RevStats::default();
    if tag & REVS != 0 {
        // As the parser sets it: the main revision of the last key.
        stats.last_main = if count > 0 {
            let last = keys.get(first_len as usize..)?;
            i64::from_be_bytes(last.get(..8)?.try_into().ok()?)
        } else {
            0
        };
        stats.max_mod = stats.last_main;
        if tag & PLAIN_REVS == 0 {
            stats.max_mod = stats.last_main.wrapping_add(unzigzag(get(b, &mut pos)?));
            stats.with_lease = u32::try_from(get(b, &mut pos)?).ok()?;
        }
        let n = get(b, &mut pos)? as usize;
        let mut updates = Vec::with_capacity(n.min(b.len()));
        let mut prev = first_main as i64;
        for _ in 0..n {
            prev = prev.wrapping_add(unzigzag(get(b, &mut pos)?));
            updates.push(prev);
        }
        stats.updates = updates;
        let n = usize::try_from(get(b, &mut pos)?).ok()?;
        stats.inv = b.get(pos..pos.checked_add(n)?)?.to_vec();
    }
    Some(Leaf {
        count,
        crc,
        crc_len,
        keys: keys.into_boxed_slice(),
        first_len,
        revs: stats,
        rare: None,
    })
}

/// Writes and reads the keys of one record. A `key`-bucket revision key (`main` BE, `'_'`,
/// `sub` BE, optional `'t'`) becomes one integer: the zigzag delta of `main` from the previous
/// revision key of the record (from the block's base for the first), shifted left by 3 over
/// the encoding bits, then `sub` unless it is 0. Any other key: its length, shifted, and bytes.
struct KeyCoder<'a> {
    base: &'a mut u64,
    prev: Option<u64>,
    /// Main revision of the record's first revision key (0 without one).
    first_main: u64,
}

impl<'a> KeyCoder<'a> {
    fn new(base: &'a mut u64) -> Self {
        KeyCoder {
            base,
            prev: None,
            first_main: 0,
        }
    }

    fn from(&mut self, main: u64) -> u64 {
        match self.prev {
            Some(p) => p,
            None => {
                if *self.base == NO_BASE {
                    *self.base = main;
                }
                self.first_main = main;
                *self.base
            }
        }
    }

    fn put(&mut self, rec: &mut Vec<u8>, key: &[u8]) {
        let tombstone = key.len() == 18 && key.get(17) == Some(&b't');
        let main = key
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes);
        let sub = key
            .get(9..17)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes);
        if let (true, Some(b'_'), Some(main), Some(sub)) =
            (key.len() == 17 || tombstone, key.get(8), main, sub)
        {
            if main < 1 << 60 {
                let from = self.from(main);
                let mut head = zigzag(main as i64 - from as i64) << 3;
                head |= if tombstone { TOMBSTONE_KEY } else { REV_KEY };
                if sub == 0 {
                    head |= SUB_ZERO;
                }
                put(rec, head);
                if sub != 0 {
                    put(rec, sub);
                }
                self.prev = Some(main);
                return;
            }
        }
        put(rec, (key.len() as u64) << 3 | RAW_KEY);
        rec.extend_from_slice(key);
    }

    fn get(&mut self, b: &[u8], pos: &mut usize) -> Option<Box<[u8]>> {
        let head = get(b, pos)?;
        match head & 3 {
            RAW_KEY => {
                let len = usize::try_from(head >> 3).ok()?;
                let key = b.get(*pos..pos.checked_add(len)?)?;
                *pos += len;
                Some(key.into())
            }
            kind @ (REV_KEY | TOMBSTONE_KEY) => {
                let from = match self.prev {
                    Some(p) => p,
                    None => *self.base,
                };
                let main = (from as i64).wrapping_add(unzigzag(head >> 3)) as u64;
                if self.prev.is_none() {
                    self.first_main = main;
                }
                let sub = if head & SUB_ZERO != 0 {
                    0
                } else {
                    get(b, pos)?
                };
                self.prev = Some(main);
                let mut key = Vec::with_capacity(18);
                key.extend_from_slice(&main.to_be_bytes());
                key.push(b'_');
                key.extend_from_slice(&sub.to_be_bytes());
                if kind == TOMBSTONE_KEY {
                    key.push(b't');
                }
                Some(key.into())
            }
            _ => None,
        }
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Append `v` as LEB128.
pub(super) fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Read a LEB128 integer at `*pos`.
pub(super) fn get(b: &[u8], pos: &mut usize) -> Option<u64> {
    super::schema::read_varint(b, pos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::bbolt;

    fn rev_key(main: u64, sub: u64, tombstone: bool) -> Box<[u8]> {
        let mut k = main.to_be_bytes().to_vec();
        k.push(b'_');
        k.extend_from_slice(&sub.to_be_bytes());
        if tombstone {
            k.push(b't');
        }
        k.into()
    }

    fn leaf(first: &[u8], last: &[u8], revs: Option<RevStats>, rare: Option<Rare>) -> Leaf {
        Leaf {
            count: 7,
            crc: 0xdead_beef,
            crc_len: 123_456,
            keys: [first, last].concat().into(),
            first_len: first.len() as u32,
            revs: revs.unwrap_or_default(),
            rare: rare.map(Box::new),
        }
    }

    fn summary(pgid: u64, flags: u16, overflow: u32, body: Body) -> PageSummary {
        PageSummary {
            header_id: pgid,
            flags,
            overflow,
            body,
            problem: None,
        }
    }

    /// A summary of every kind for page index `i`; one leaf is larger than a chunk.
    fn make(i: usize) -> PageSummary {
        let pgid = i as u64 + 2;
        let stats = RevStats {
            last_main: 900,
            max_mod: 901,
            with_lease: 2,
            updates: vec![880, 881, 899],
            inv: vec![1, 5, 9, 13, 6],
        };
        match i % 7 {
            0 => summary(
                pgid,
                bbolt::BRANCH,
                0,
                Body::Branch(vec![
                    (pgid + 40, rev_key(800, 0, false)),
                    (pgid - 1, rev_key(800, 3, true)),
                    (9, b"zz-raw".to_vec().into()),
                ]),
            ),
            1 if i == 43 => {
                let big = vec![b'k'; CHUNK];
                let rare = Rare {
                    not_revisions: Some("element 0: not a revision key".into()),
                    ..Rare::default()
                };
                summary(
                    pgid,
                    bbolt::LEAF,
                    0,
                    Body::Leaf(leaf(&big, &big, None, Some(rare))),
                )
            }
            1 => summary(
                pgid,
                bbolt::LEAF,
                3,
                Body::Leaf(leaf(
                    &rev_key(880, 0, false),
                    &rev_key(900, 1, true),
                    Some(stats),
                    None,
                )),
            ),
            2 => {
                let rare = Rare {
                    small: vec![(b"term".to_vec().into(), vec![0, 0, 0, 4].into())],
                    not_revisions: Some("element 0: not a revision key".into()),
                    ..Rare::default()
                };
                let l = leaf(b"consistent_index", b"term", None, Some(rare));
                summary(pgid, bbolt::LEAF, 0, Body::Leaf(l))
            }
            3 => summary(pgid, bbolt::FREELIST, 1, Body::Freelist(vec![5, 6, 70])),
            4 => PageSummary {
                problem: Some(format!("page {pgid}: key order broken").into()),
                ..summary(pgid, bbolt::LEAF, 2, Body::None)
            },
            // Only the id is kept of a page whose header names another page.
            5 => summary(pgid + 1000, 0, 0, Body::None),
            _ => summary(pgid, 0x20, 0, Body::None),
        }
    }

    #[test]
    fn every_kind_of_summary_decodes_to_what_was_pushed() {
        let n = 3 * BLOCK + 5;
        let mut pages = Pages::default();
        for i in 0..n {
            pages.push(make(i));
        }
        assert_eq!(pages.len(), n);
        assert!(
            pages.chunks.len() >= 2,
            "the big leaf has a chunk of its own"
        );
        for i in (0..n).rev() {
            let got = pages.get(i).expect("decodes");
            assert_eq!(
                format!("{got:?}"),
                format!("{:?}", make(i)),
                "page index {i}"
            );
        }
        assert!(pages.get(n).is_none());
    }

    #[test]
    fn a_header_id_beyond_32_bits_is_not_kept() {
        let mut pages = Pages::default();
        pages.push(summary(u64::MAX - 1, 0, 0, Body::None));
        assert_eq!(pages.get(0).map(|s| s.header_id), Some(u64::MAX));
    }
}
