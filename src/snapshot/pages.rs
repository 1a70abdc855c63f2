//! The page summaries kept between the streaming pass and the walk, in a compact form.
//!
//! The walk needs, for every page position, what the page would hold if it were reachable
//! ([`PageSummary`]): its type and overflow, branch children and keys, and a leaf's CRC, first
//! and last key and revision counters. Kept as structs, that is a few hundred bytes per page and
//! grows to gigabytes for an 8 GiB snapshot. Here each summary is one variable-length record
//! (LEB128 integers; `key`-bucket revision keys as two integers, deltas where the order makes
//! them small) in 1 MiB chunks, with the position of every [`BLOCK`]-th record indexed: about
//! 25 bytes for a leaf and 8 per branch element. [`Pages::get`] decodes a record back into the
//! same [`PageSummary`] the parser made, byte for byte in the keys. What few pages have (parse
//! problems, nested buckets, the `meta`/`cluster`/`members` values, the freelist) stays in
//! side tables.

use super::bbolt::{Body, Leaf, PageSummary, Rare, RevStats};
use std::collections::HashMap;

/// Records per index entry: a lookup skips at most `BLOCK - 1` records.
const BLOCK: usize = 16;
/// Bytes per chunk of records (a larger record gets a chunk of its own).
const CHUNK: usize = 1 << 20;

// Record tags (low 3 bits) and flags.
const MISMATCH: u8 = 0;
const HEADER_ONLY: u8 = 1;
const BRANCH: u8 = 2;
const LEAF: u8 = 3;
const FREELIST: u8 = 4;
const KIND: u8 = 7;
const PROBLEM: u8 = 8;
const RARE: u8 = 16;
const ID_STORED: u8 = 32;
const REVS: u8 = 64;

// Key encodings.
const RAW_KEY: u8 = 0;
const REV_KEY: u8 = 1;
const TOMBSTONE_KEY: u8 = 2;

/// Summaries of pages `2, 3, …` in order. See the module doc.
#[derive(Debug, Default)]
pub struct Pages {
    chunks: Vec<Vec<u8>>,
    /// `(chunk, offset)` of the record of page index `k * BLOCK`.
    index: Vec<(u32, u32)>,
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
        let mut rec = std::mem::take(&mut self.scratch);
        rec.clear();
        rec.push(0); // the tag, set below
        let mut tag;
        if s.header_id != pgid {
            tag = MISMATCH;
            if s.header_id <= u64::from(u32::MAX) {
                tag |= ID_STORED;
                put(&mut rec, s.header_id);
            }
        } else {
            match s.body {
                Body::None => {
                    tag = HEADER_ONLY;
                    put(&mut rec, u64::from(s.flags));
                    put(&mut rec, u64::from(s.overflow));
                }
                Body::Branch(elems) => {
                    tag = BRANCH;
                    put(&mut rec, u64::from(s.overflow));
                    put(&mut rec, elems.len() as u64);
                    let (mut prev_child, mut prev_main) = (pgid, 0);
                    for (child, key) in &elems {
                        put(&mut rec, zigzag(child.wrapping_sub(prev_child) as i64));
                        prev_child = *child;
                        put_key(&mut rec, key, &mut prev_main);
                    }
                }
                Body::Leaf(mut leaf) => {
                    tag = LEAF;
                    put(&mut rec, u64::from(s.overflow));
                    if put_leaf(&mut rec, &leaf) {
                        tag |= REVS;
                    }
                    if let Some(r) = leaf.rare.take() {
                        tag |= RARE;
                        self.rare.insert(i, r);
                    }
                }
                Body::Freelist(ids) => {
                    tag = FREELIST;
                    put(&mut rec, u64::from(s.overflow));
                    self.freelists.insert(i, ids);
                }
            }
        }
        if let Some(p) = s.problem {
            tag |= PROBLEM;
            self.problems.insert(i, p);
        }
        if let Some(t) = rec.first_mut() {
            *t = tag;
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
        let pgid = i as u64 + 2;
        let (&tag, mut b) = rec.split_first()?;
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
        match tag & KIND {
            MISMATCH => {
                s.header_id = if tag & ID_STORED != 0 {
                    get(b, &mut pos)?
                } else {
                    u64::MAX
                };
            }
            HEADER_ONLY => {
                s.flags = u16::try_from(get(b, &mut pos)?).ok()?;
                s.overflow = u32::try_from(get(b, &mut pos)?).ok()?;
            }
            BRANCH => {
                s.flags = super::bbolt::BRANCH;
                s.overflow = u32::try_from(get(b, &mut pos)?).ok()?;
                let n = get(b, &mut pos)? as usize;
                let mut elems = Vec::with_capacity(n.min(b.len()));
                let (mut child, mut prev_main) = (pgid, 0);
                for _ in 0..n {
                    child = child.wrapping_add(unzigzag(get(b, &mut pos)?) as u64);
                    elems.push((child, get_key(b, &mut pos, &mut prev_main)?));
                }
                s.body = Body::Branch(elems);
            }
            LEAF => {
                s.flags = super::bbolt::LEAF;
                s.overflow = u32::try_from(get(b, &mut pos)?).ok()?;
                b = b.get(pos..)?;
                let mut leaf = get_leaf(b, tag & REVS != 0)?;
                if tag & RARE != 0 {
                    leaf.rare = self.rare.get(&i).cloned();
                }
                s.body = Body::Leaf(leaf);
            }
            FREELIST => {
                s.flags = super::bbolt::FREELIST;
                s.overflow = u32::try_from(get(b, &mut pos)?).ok()?;
                s.body = Body::Freelist(self.freelists.get(&i).cloned().unwrap_or_default());
            }
            _ => return None,
        }
        Some(s)
    }
}

/// Encode a leaf; returns whether revision counters were written.
fn put_leaf(rec: &mut Vec<u8>, leaf: &Leaf) -> bool {
    put(rec, u64::from(leaf.count));
    rec.extend_from_slice(&leaf.crc.to_le_bytes());
    put(rec, leaf.crc_len);
    let mut prev_main = 0;
    if leaf.count > 0 {
        put_key(rec, leaf.first_key(), &mut prev_main);
        put_key(rec, leaf.last_key(), &mut prev_main);
    }
    let Ok(r) = leaf.revs() else {
        return false;
    };
    put(rec, zigzag(r.max_mod.wrapping_sub(r.last_main)));
    put(rec, u64::from(r.with_lease));
    put(rec, u64::from(r.deletes));
    put(rec, u64::from(r.creates));
    put(rec, r.updates.len() as u64);
    let mut prev = 0i64;
    for &m in &r.updates {
        put(rec, zigzag(m.wrapping_sub(prev)));
        prev = m;
    }
    true
}

fn get_leaf(b: &[u8], revs: bool) -> Option<Leaf> {
    let mut pos = 0;
    let count = u32::try_from(get(b, &mut pos)?).ok()?;
    let crc = u32::from_le_bytes(b.get(pos..pos + 4)?.try_into().ok()?);
    pos += 4;
    let crc_len = get(b, &mut pos)?;
    let mut keys = Vec::new();
    let mut first_len = 0;
    let mut prev_main = 0;
    if count > 0 {
        let first = get_key(b, &mut pos, &mut prev_main)?;
        let last = get_key(b, &mut pos, &mut prev_main)?;
        first_len = first.len() as u32;
        keys.reserve_exact(first.len() + last.len());
        keys.extend_from_slice(&first);
        keys.extend_from_slice(&last);
    }
    let mut stats = RevStats::default();
    if revs {
        // As the parser sets it: the main revision of the last key.
        stats.last_main = if count > 0 {
            let last = keys.get(first_len as usize..)?;
            i64::from_be_bytes(last.get(..8)?.try_into().ok()?)
        } else {
            0
        };
        stats.max_mod = stats.last_main.wrapping_add(unzigzag(get(b, &mut pos)?));
        stats.with_lease = u32::try_from(get(b, &mut pos)?).ok()?;
        stats.deletes = u32::try_from(get(b, &mut pos)?).ok()?;
        stats.creates = u32::try_from(get(b, &mut pos)?).ok()?;
        let n = get(b, &mut pos)? as usize;
        let mut updates = Vec::with_capacity(n.min(b.len()));
        let mut prev = 0i64;
        for _ in 0..n {
            prev = prev.wrapping_add(unzigzag(get(b, &mut pos)?));
            updates.push(prev);
        }
        stats.updates = updates;
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

/// A `key`-bucket revision key (`main` BE, `'_'`, `sub` BE, optional `'t'`) is written as its
/// two integers (`main` as a delta from the previous revision key of the record, which sorts
/// before it); any other key as its bytes.
fn put_key(rec: &mut Vec<u8>, key: &[u8], prev_main: &mut u64) {
    let tombstone = key.len() == 18 && key.get(17) == Some(&b't');
    if (key.len() == 17 || tombstone) && key.get(8) == Some(&b'_') {
        let main = key
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes);
        let sub = key
            .get(9..17)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes);
        if let (Some(main), Some(sub)) = (main, sub) {
            if main >= *prev_main {
                rec.push(if tombstone { TOMBSTONE_KEY } else { REV_KEY });
                put(rec, main - *prev_main);
                put(rec, sub);
                *prev_main = main;
                return;
            }
        }
    }
    rec.push(RAW_KEY);
    put(rec, key.len() as u64);
    rec.extend_from_slice(key);
}

fn get_key(b: &[u8], pos: &mut usize, prev_main: &mut u64) -> Option<Box<[u8]>> {
    let kind = *b.get(*pos)?;
    *pos += 1;
    match kind {
        RAW_KEY => {
            let len = get(b, pos)? as usize;
            let key = b.get(*pos..pos.checked_add(len)?)?;
            *pos += len;
            Some(key.into())
        }
        REV_KEY | TOMBSTONE_KEY => {
            let main = prev_main.checked_add(get(b, pos)?)?;
            let sub = get(b, pos)?;
            *prev_main = main;
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

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Append `v` as LEB128.
fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Read a LEB128 integer at `*pos`.
fn get(b: &[u8], pos: &mut usize) -> Option<u64> {
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
            deletes: 1,
            creates: 3,
            updates: vec![880, 881, 899],
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
            1 if i == BLOCK + 6 => {
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
