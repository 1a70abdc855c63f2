//! The tree walk over page summaries, after the streaming pass.
//!
//! Starting at `meta.root` it visits every reachable page with an explicit stack and a visited
//! bitmap, applies bbolt's `tx.Check()` rules (reference §1.10) with the strict bound
//! `id + overflow < HWM`, reports the parse problems of reachable pages only, and computes the
//! `etcdctl snapshot status` numbers by combining per-leaf CRC-32Cs in tree order.

use super::bbolt::{self, Body, Leaf, Meta, PageSummary};
use super::scan::Pages;
use super::schema;

/// What the walk found.
#[derive(Debug, Default)]
pub struct Walk {
    pub problems: Vec<String>,
    /// CRC-32C over bucket names, keys and values (`etcdctl snapshot status` hash).
    pub hash: u32,
    /// Entries in every top-level bucket (etcd 3.4/3.5 `totalKey`).
    pub total_key: u64,
    /// Main revision of the last key of the `key` bucket; `None` without a `key` bucket.
    pub revision: Option<i64>,
    pub live_keys: u64,
    pub revisions: u64,
    pub max_mod_revision: i64,
    pub keys_with_lease: u64,
    pub buckets: Vec<String>,
    pub consistent_index: Option<u64>,
    pub term: Option<u64>,
    pub scheduled_compact_revision: Option<i64>,
    pub finished_compact_revision: Option<i64>,
    pub storage_version: Option<String>,
    pub cluster_version: Option<String>,
    pub members: Vec<String>,
    pub reachable_pages: u64,
}

struct Frame<'a> {
    pgid: u64,
    from: Option<(u64, usize)>,
    lower: Option<&'a [u8]>,
    upper: Option<&'a [u8]>,
}

struct Walker<'a> {
    pages: &'a Pages,
    hwm: u64,
    visited: Vec<u64>,
    problems: Vec<String>,
    /// Reachable pages beyond the end of the input, and the first reference to one.
    missing: u64,
    first_missing: Option<String>,
}

fn label(name: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(name))
}

impl<'a> Walker<'a> {
    fn page(&self, pgid: u64) -> Option<&'a PageSummary> {
        let pages: &'a Pages = self.pages;
        pgid.checked_sub(2)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| pages.get(i))
    }

    fn is_visited(&self, pgid: u64) -> bool {
        let i = pgid as usize;
        self.visited
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn mark(&mut self, pgid: u64) {
        let i = pgid as usize;
        if let Some(w) = self.visited.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    /// Visit the tree rooted at `root`; returns its leaves in key order.
    fn tree(&mut self, root: u64, bucket: &str) -> Vec<(u64, &'a Leaf)> {
        let mut leaves = Vec::new();
        let mut stack = vec![Frame {
            pgid: root,
            from: None,
            lower: None,
            upper: None,
        }];
        let avail = self.pages.len() as u64 + 2;
        while let Some(f) = stack.pop() {
            let pgid = f.pgid;
            let at = || match f.from {
                Some((p, i)) => format!("page {p}: branch element {i} points to page {pgid}"),
                None => format!("bucket {bucket}: root page {pgid}"),
            };
            if pgid < 2 {
                self.problems.push(format!("{}, a meta page", at()));
                continue;
            }
            if pgid >= self.hwm {
                self.problems
                    .push(format!("{} beyond the high-water mark {}", at(), self.hwm));
                continue;
            }
            if pgid >= avail {
                // Reported once, in `walk`: a truncated file misses many pages.
                self.missing += 1;
                if self.first_missing.is_none() {
                    self.first_missing = Some(at());
                }
                continue;
            }
            if self.is_visited(pgid) {
                self.problems.push(format!(
                    "{}, which is already referenced (a cycle or a shared page)",
                    at()
                ));
                continue;
            }
            self.mark(pgid);
            let Some(s) = self.page(pgid) else { continue };
            if s.header_id != pgid {
                self.problems.push(format!(
                    "{}, but that page's header says it is page {}",
                    at(),
                    s.header_id
                ));
                continue;
            }
            if s.flags != bbolt::BRANCH && s.flags != bbolt::LEAF {
                self.problems.push(format!(
                    "{}, a {} page where a branch or leaf page was expected",
                    at(),
                    bbolt::flag_name(s.flags)
                ));
                continue;
            }
            if let Some(p) = &s.problem {
                self.problems.push(p.to_string());
                continue;
            }
            let end = pgid + u64::from(s.overflow);
            for q in pgid + 1..=end {
                if self.is_visited(q) {
                    self.problems.push(format!(
                        "page {q}: overflow of page {pgid} but also referenced elsewhere"
                    ));
                }
                self.mark(q);
            }
            match &s.body {
                Body::Branch(elems) => {
                    self.bounds(
                        pgid,
                        elems.first().map(|e| &e.1[..]),
                        elems.last().map(|e| &e.1[..]),
                        &f,
                    );
                    for i in (0..elems.len()).rev() {
                        let upper = elems.get(i + 1).map(|e| &e.1[..]).or(f.upper);
                        if let Some((child, key)) = elems.get(i) {
                            stack.push(Frame {
                                pgid: *child,
                                from: Some((pgid, i)),
                                lower: Some(&key[..]),
                                upper,
                            });
                        }
                    }
                }
                Body::Leaf(leaf) => {
                    if leaf.count > 0 {
                        self.bounds(pgid, Some(leaf.first_key()), Some(leaf.last_key()), &f);
                    }
                    leaves.push((pgid, leaf));
                }
                _ => self
                    .problems
                    .push(format!("page {pgid}: no parsed content")),
            }
        }
        leaves
    }

    fn bounds(&mut self, pgid: u64, first: Option<&[u8]>, last: Option<&[u8]>, f: &Frame<'_>) {
        if let (Some(first), Some(lower)) = (first, f.lower) {
            if first < lower {
                self.problems.push(format!(
                    "page {pgid}: first key is smaller than the key of its parent branch element (key order broken)"
                ));
            }
        }
        if let (Some(last), Some(upper)) = (last, f.upper) {
            if last >= upper {
                self.problems.push(format!(
                    "page {pgid}: last key is not smaller than the key of the next element in its parent (key order broken)"
                ));
            }
        }
    }
}

/// Accumulates the per-leaf numbers of one top-level bucket.
struct Totals<'a> {
    crc: u32,
    combiner: &'a mut super::crc::Combiner,
    total_key: u64,
    /// Every revision entry of the `key` bucket, in key (= revision) order.
    live: Vec<bbolt::RevEntry>,
    out: &'a mut Walk,
}

impl Totals<'_> {
    fn leaf(&mut self, bucket: &[u8], pgid: Option<u64>, leaf: &Leaf) {
        self.crc = self.combiner.combine(self.crc, leaf.crc, leaf.crc_len);
        self.total_key += leaf.count as u64;
        // Only a problem names the page (this runs once per leaf of a large snapshot).
        let at = || match pgid {
            Some(p) => format!("page {p}"),
            None => "inline page".to_string(),
        };
        match bucket {
            b"key" => match leaf.revs() {
                Ok(stats) => {
                    // An empty key bucket reads as revision 0, as in etcdctl.
                    self.out.revision.get_or_insert(0);
                    if leaf.count > 0 {
                        self.out.revision = Some(stats.last_main);
                    }
                    self.out.revisions += stats.entries.len() as u64;
                    self.out.max_mod_revision = self.out.max_mod_revision.max(stats.max_mod);
                    self.out.keys_with_lease += u64::from(stats.with_lease);
                    self.live.extend_from_slice(&stats.entries);
                }
                Err(e) => self
                    .out
                    .problems
                    .push(format!("bucket \"key\", {}: {e}", at())),
            },
            b"meta" => {
                for (k, v) in leaf.small() {
                    match &k[..] {
                        b"consistent_index" => self.out.consistent_index = schema::be_u64(v),
                        b"term" => self.out.term = schema::be_u64(v),
                        b"scheduledCompactRev" => {
                            self.out.scheduled_compact_revision = schema::compact_rev(v)
                        }
                        b"finishedCompactRev" => {
                            self.out.finished_compact_revision = schema::compact_rev(v)
                        }
                        b"storageVersion" => {
                            self.out.storage_version = Some(String::from_utf8_lossy(v).into_owned())
                        }
                        _ => {}
                    }
                }
            }
            b"cluster" => {
                for (k, v) in leaf.small() {
                    if &k[..] == b"clusterVersion" {
                        self.out.cluster_version = Some(String::from_utf8_lossy(v).into_owned());
                    }
                }
            }
            b"members" => {
                for (_, v) in leaf.small() {
                    if let Some(name) = schema::member_name(v) {
                        self.out.members.push(name);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Walk every bucket reachable from `meta.root` over `pages` (summary of page `2 + i` at `i`).
pub fn walk(meta: &Meta, pages: &Pages) -> Walk {
    let mut out = Walk::default();
    let words = (pages.len() + 2).div_ceil(64);
    let mut w = Walker {
        pages,
        hwm: meta.hwm,
        visited: vec![0; words],
        problems: Vec::new(),
        missing: 0,
        first_missing: None,
    };
    w.mark(0);
    w.mark(1);
    let root_leaves = w.tree(meta.root, "root");
    let mut crc = 0u32;
    let mut total_key = 0u64;
    let mut nested: Vec<(String, &bbolt::BucketEntry)> = Vec::new();
    let mut live: Vec<bbolt::RevEntry> = Vec::new();
    let mut combiner = super::crc::Combiner::default();
    for (pgid, leaf) in &root_leaves {
        let plain = (leaf.count as usize).saturating_sub(leaf.buckets().len());
        if plain > 0 {
            w.problems.push(format!(
                "page {pgid}: {plain} entries of the root bucket are not buckets (etcdctl fails with \"nil bucket\")"
            ));
        }
        for b in leaf.buckets() {
            let name = label(&b.name);
            out.buckets
                .push(String::from_utf8_lossy(&b.name).into_owned());
            crc = combiner.combine(crc, crc32c::crc32c(&b.name), b.name.len() as u64);
            if let Some(p) = &b.problem {
                w.problems
                    .push(format!("page {pgid}: element {}: {p}", b.index));
                continue;
            }
            let mut t = Totals {
                crc,
                combiner: &mut combiner,
                total_key,
                live: std::mem::take(&mut live),
                out: &mut out,
            };
            let leaves: Vec<(Option<u64>, &Leaf)> = match &b.inline {
                Some(inl) => vec![(None, &**inl)],
                None => w
                    .tree(b.root, &name)
                    .into_iter()
                    .map(|(p, l)| (Some(p), l))
                    .collect(),
            };
            for (p, l) in leaves {
                t.leaf(&b.name, p, l);
                for nb in l.buckets() {
                    nested.push((format!("{name}/{}", String::from_utf8_lossy(&nb.name)), nb));
                }
            }
            crc = t.crc;
            total_key = t.total_key;
            live = t.live;
        }
    }
    // Nested buckets (etcd has none): structure only, they do not enter the status hash.
    while let Some((name, b)) = nested.pop() {
        if let Some(p) = &b.problem {
            w.problems.push(format!("bucket {name}: {p}"));
            continue;
        }
        if b.root != 0 {
            for (_, l) in w.tree(b.root, &name) {
                for nb in l.buckets() {
                    nested.push((format!("{name}/{}", String::from_utf8_lossy(&nb.name)), nb));
                }
            }
        }
    }
    if let Some(first) = w.first_missing.take() {
        w.problems.push(format!(
            "{} reachable pages are missing because the input ends early (truncated); the first: {first}",
            w.missing
        ));
    }
    if meta.freelist != bbolt::PGID_NO_FREELIST {
        check_freelist(&mut w, meta);
    }
    out.hash = crc;
    out.total_key = total_key;
    out.live_keys = count_live(live);
    out.reachable_pages = w.visited.iter().map(|x| u64::from(x.count_ones())).sum();
    if !out.buckets.iter().any(|b| b == "key") {
        w.problems.push(
            "no \"key\" bucket: this is not an etcd v3 snapshot (no revision readable)".into(),
        );
    }
    let mut problems = w.problems;
    problems.append(&mut out.problems);
    out.problems = problems;
    out
}

/// Persisted freelist (etcd < 3.3 or non-Linux): bbolt's double-free, reachable-freed and
/// coverage rules.
fn check_freelist(w: &mut Walker<'_>, meta: &Meta) {
    let fl = meta.freelist;
    let ids: &[u64] = match w.page(fl) {
        Some(s) if s.header_id == fl && s.flags == bbolt::FREELIST && s.problem.is_none() => {
            match &s.body {
                Body::Freelist(ids) => &ids[..],
                _ => &[],
            }
        }
        Some(s) => {
            let why = s.problem.as_deref().map(str::to_string).unwrap_or_else(|| {
                format!(
                    "a {} page with header id {}",
                    bbolt::flag_name(s.flags),
                    s.header_id
                )
            });
            w.problems.push(format!("freelist page {fl}: {why}"));
            return;
        }
        None => {
            w.problems
                .push(format!("freelist page {fl}: missing (truncated input)"));
            return;
        }
    };
    let avail = (w.pages.len() as u64 + 2).min(meta.hwm);
    // A bitmap over the pages present, so a huge freelist cannot blow up memory.
    let mut free = vec![0u64; (avail as usize).div_ceil(64)];
    let bit = |id: u64| (id as usize / 64, 1u64 << (id % 64));
    for &id in ids {
        if id < 2 || id >= meta.hwm {
            w.problems.push(format!(
                "freelist page {fl}: lists page {id}, outside [2, high-water mark {})",
                meta.hwm
            ));
            continue;
        }
        let (word, mask) = bit(id);
        let Some(slot) = free.get_mut(word) else {
            continue;
        };
        if *slot & mask != 0 {
            w.problems.push(format!("page {id}: already freed"));
        } else if w.is_visited(id) {
            w.problems.push(format!("page {id}: reachable freed"));
        }
        *slot |= mask;
    }
    // As in bbolt's tx.Check: "reachable freed" concerns bucket pages only; the freelist page
    // itself is reachable.
    if let Some(s) = w.page(fl) {
        for q in fl..=fl + u64::from(s.overflow) {
            w.mark(q);
        }
    }
    for id in 2..avail {
        let (word, mask) = bit(id);
        let is_free = free.get(word).is_some_and(|x| x & mask != 0);
        if !w.is_visited(id) && !is_free {
            w.problems.push(format!("page {id}: unreachable unfreed"));
        }
    }
}

/// Distinct user keys whose newest revision is not a tombstone. `entries` are in revision
/// order; a stable sort by key hash keeps that order within each key, so the last entry of each
/// run is the key's newest revision. (A sort of 8-byte entries needs less memory than a map.)
fn count_live(mut entries: Vec<bbolt::RevEntry>) -> u64 {
    radix_sort_by_key_hash(&mut entries);
    let mut live = 0;
    for (i, e) in entries.iter().enumerate() {
        let last_of_run = entries
            .get(i + 1)
            .is_none_or(|next| next.key_hash() != e.key_hash());
        if last_of_run && !e.tombstone() {
            live += 1;
        }
    }
    live
}

/// Stable LSD radix sort by [`bbolt::RevEntry::key_hash`] (8 passes of 8 bits): on the walk's
/// critical path after the streaming pass, and several times faster than a comparison sort for
/// the hundreds of thousands of entries of a large snapshot. Uses one scratch copy.
fn radix_sort_by_key_hash(entries: &mut Vec<bbolt::RevEntry>) {
    if entries.len() < 2 {
        return;
    }
    let mut scratch = entries.clone();
    let (mut src, mut dst) = (std::mem::take(entries), std::mem::take(&mut scratch));
    for pass in 0..8u32 {
        let shift = 8 * pass;
        let digit = |e: &bbolt::RevEntry| ((e.key_hash() >> shift) & 0xff) as usize;
        let mut counts = [0usize; 256];
        for e in &src {
            counts[digit(e)] += 1;
        }
        if counts.contains(&src.len()) {
            continue; // every entry has the same digit: this pass would not move anything
        }
        let mut next = [0usize; 256];
        let mut sum = 0;
        for (n, c) in next.iter_mut().zip(counts) {
            *n = sum;
            sum += c;
        }
        for e in &src {
            let d = digit(e);
            if let Some(slot) = dst.get_mut(next[d]) {
                *slot = *e;
            }
            next[d] += 1;
        }
        std::mem::swap(&mut src, &mut dst);
    }
    *entries = src;
}

#[cfg(test)]
mod tests {
    use super::*;
    use bbolt::RevEntry;

    #[test]
    fn radix_sort_is_a_stable_sort_by_key_hash() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut v: Vec<RevEntry> = (0..20_000)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Few distinct keys, so runs of equal hashes are long; the tombstone bit and
                // the order within a run carry the position (i % 2) to check stability.
                RevEntry::new((state % 97) << 40 | (state % 5), i % 2 == 1)
            })
            .collect();
        let mut want = v.clone();
        want.sort_by_key(|e| e.key_hash());
        radix_sort_by_key_hash(&mut v);
        let bits = |v: &[RevEntry]| {
            v.iter()
                .map(|e| (e.key_hash(), e.tombstone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&v), bits(&want));
    }

    #[test]
    fn live_keys_follow_the_newest_revision() {
        // key 10: put, delete, put (live); key 20: put, delete (dead); key 30: put (live)
        let entries = vec![
            RevEntry::new(10, false),
            RevEntry::new(20, false),
            RevEntry::new(10, true),
            RevEntry::new(30, false),
            RevEntry::new(20, true),
            RevEntry::new(10, false),
        ];
        assert_eq!(count_live(entries), 2);
        assert_eq!(count_live(Vec::new()), 0);
    }
}
