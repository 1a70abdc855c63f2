//! The tree walk over page summaries, after the streaming pass.
//!
//! Starting at `meta.root` it visits every reachable page with an explicit stack and a visited
//! bitmap, applies bbolt's `tx.Check()` rules (reference §1.10) with the strict bound
//! `id + overflow < HWM`, reports the parse problems of reachable pages only, and computes the
//! `etcdctl snapshot status` numbers by combining per-leaf CRC-32Cs in tree order.

use super::bbolt::{self, Body, Leaf, Meta, PageSummary};
use super::inventory::{Inventory, Names, Tally};
use super::pages::Pages;
use super::schema;
use std::rc::Rc;

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
    /// Distinct user keys whose newest revision is not a delete; `None` while a compaction
    /// is under way in the snapshot.
    pub live_keys: Option<u64>,
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
    pub member_ids: Vec<String>,
    pub reachable_pages: u64,
    /// Objects per resource (and namespace) of the `key` bucket.
    pub inventory: Option<Inventory>,
}

struct Frame {
    pgid: u64,
    from: Option<(u64, usize)>,
    lower: Option<Bound>,
    upper: Option<Bound>,
}

/// A key of a branch page that bounds a subtree: element `.1` of the shared elements `.0`.
#[derive(Clone)]
struct Bound(Rc<bbolt::BranchElems>, usize);

impl Bound {
    fn key(&self) -> Option<&[u8]> {
        self.0.get(self.1).map(|e| &e.1[..])
    }
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
    fn page(&self, pgid: u64) -> Option<PageSummary> {
        pgid.checked_sub(2)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.pages.get(i))
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

    /// Visit the tree rooted at `root`, handing its leaves to `visit` in key order.
    fn tree(&mut self, root: u64, bucket: &str, visit: &mut dyn FnMut(u64, Leaf)) {
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
            match s.body {
                Body::Branch(elems) => {
                    self.bounds(
                        pgid,
                        elems.first().map(|e| &e.1[..]),
                        elems.last().map(|e| &e.1[..]),
                        &f,
                    );
                    let elems = Rc::new(elems);
                    for (i, (child, _)) in elems.iter().enumerate().rev() {
                        let upper = match elems.get(i + 1) {
                            Some(_) => Some(Bound(elems.clone(), i + 1)),
                            None => f.upper.clone(),
                        };
                        stack.push(Frame {
                            pgid: *child,
                            from: Some((pgid, i)),
                            lower: Some(Bound(elems.clone(), i)),
                            upper,
                        });
                    }
                }
                Body::Leaf(leaf) => {
                    if leaf.count > 0 {
                        self.bounds(pgid, Some(leaf.first_key()), Some(leaf.last_key()), &f);
                    }
                    visit(pgid, leaf);
                }
                _ => self
                    .problems
                    .push(format!("page {pgid}: no parsed content")),
            }
        }
    }

    fn bounds(&mut self, pgid: u64, first: Option<&[u8]>, last: Option<&[u8]>, f: &Frame) {
        if let (Some(first), Some(lower)) = (first, f.lower.as_ref().and_then(Bound::key)) {
            if first < lower {
                self.problems.push(format!(
                    "page {pgid}: first key is smaller than the key of its parent branch element (key order broken)"
                ));
            }
        }
        if let (Some(last), Some(upper)) = (last, f.upper.as_ref().and_then(Bound::key)) {
            if last >= upper {
                self.problems.push(format!(
                    "page {pgid}: last key is not smaller than the key of the next element in its parent (key order broken)"
                ));
            }
        }
    }
}

/// Accumulates the per-leaf numbers of the top-level buckets.
struct Totals<'a> {
    crc: u32,
    combiner: &'a mut super::crc::Combiner,
    total_key: u64,
    /// Compaction revision below which etcd keeps one put per key (see [`bbolt::RevStats`]).
    compacted: i64,
    names: &'a Names,
    tally: Tally,
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
                    self.out.revisions += u64::from(leaf.count);
                    self.out.max_mod_revision = self.out.max_mod_revision.max(stats.max_mod);
                    self.out.keys_with_lease += u64::from(stats.with_lease);
                    let first = schema::RevisionKey::parse(leaf.first_key());
                    let first_main = first.map_or(0, |k| k.main);
                    self.tally.leaf(
                        self.names,
                        &stats.inv,
                        &stats.updates,
                        first_main,
                        self.compacted,
                    );
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
                    if let Some((name, id)) = schema::member(v) {
                        self.out.members.push(name);
                        self.out.member_ids.push(format!("{id:x}"));
                    }
                }
            }
            _ => {}
        }
    }
}

/// The compaction marks (`scheduledCompactRev`, `finishedCompactRev`) of the `meta` bucket,
/// read ahead of the walk (the `key` bucket sorts before `meta`, and its live-key count needs
/// them). Reads only; the walk checks the `meta` bucket itself in its turn.
fn compaction_marks(pages: &Pages, root_leaves: &[(u64, Leaf)]) -> (Option<i64>, Option<i64>) {
    let Some(meta) = root_leaves
        .iter()
        .flat_map(|(_, l)| l.buckets())
        .find(|b| &b.name[..] == b"meta")
    else {
        return (None, None);
    };
    let mut leaves: Vec<Leaf> = meta.inline.iter().map(|l| (**l).clone()).collect();
    let mut stack = if meta.root == 0 {
        vec![]
    } else {
        vec![meta.root]
    };
    // The meta bucket is a handful of pages; the bound only guards against a cycle.
    let mut budget = 1024;
    while let Some(pgid) = stack.pop() {
        budget -= 1;
        let page = pgid.checked_sub(2).and_then(|i| pages.get(i as usize));
        match page.map(|s| s.body) {
            Some(Body::Branch(elems)) if budget > 0 => stack.extend(elems.iter().map(|e| e.0)),
            Some(Body::Leaf(l)) => leaves.push(l),
            _ => {}
        }
    }
    let mark = |name: &[u8]| {
        leaves
            .iter()
            .flat_map(|l| l.small())
            .find(|(k, _)| &k[..] == name)
            .and_then(|(_, v)| schema::compact_rev(v))
    };
    (mark(b"scheduledCompactRev"), mark(b"finishedCompactRev"))
}

/// Walk every bucket reachable from `meta.root` over `pages` (summary of page `2 + i` at `i`).
pub fn walk(meta: &Meta, pages: &Pages, names: &Names) -> Walk {
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
    let mut root_leaves = Vec::new();
    w.tree(meta.root, "root", &mut |p, l| root_leaves.push((p, l)));
    let (scheduled, finished) = compaction_marks(pages, &root_leaves);
    // A compaction still under way (scheduled above finished) has removed an unknown part of
    // the old revisions: the live-key count is then unknown.
    let compaction_done = match (scheduled, finished) {
        (Some(s), Some(f)) => s <= f,
        (Some(_), None) => false,
        _ => true,
    };
    let mut combiner = super::crc::Combiner::default();
    let mut t = Totals {
        crc: 0,
        combiner: &mut combiner,
        total_key: 0,
        compacted: finished.unwrap_or(0),
        names,
        tally: Tally::default(),
        out: &mut out,
    };
    let mut nested: Vec<(String, bbolt::BucketEntry)> = Vec::new();
    for (pgid, leaf) in &root_leaves {
        let plain = (leaf.count as usize).saturating_sub(leaf.buckets().len());
        if plain > 0 {
            w.problems.push(format!(
                "page {pgid}: {plain} entries of the root bucket are not buckets (etcdctl fails with \"nil bucket\")"
            ));
        }
        for b in leaf.buckets() {
            let name = label(&b.name);
            t.out
                .buckets
                .push(String::from_utf8_lossy(&b.name).into_owned());
            t.crc = t
                .combiner
                .combine(t.crc, crc32c::crc32c(&b.name), b.name.len() as u64);
            if let Some(p) = &b.problem {
                w.problems
                    .push(format!("page {pgid}: element {}: {p}", b.index));
                continue;
            }
            let mut each = |p: Option<u64>, l: &Leaf| {
                t.leaf(&b.name, p, l);
                for nb in l.buckets() {
                    let path = format!("{name}/{}", String::from_utf8_lossy(&nb.name));
                    nested.push((path, nb.clone()));
                }
            };
            match &b.inline {
                Some(inl) => each(None, inl),
                None => w.tree(b.root, &name, &mut |p, l| each(Some(p), &l)),
            }
        }
    }
    let (hash, total_key) = (t.crc, t.total_key);
    let has_key_bucket = t.out.revision.is_some();
    let live_keys = t.tally.live().filter(|_| compaction_done);
    let inventory = has_key_bucket
        .then(|| t.tally.finish(names, compaction_done))
        .flatten();
    out.live_keys = live_keys;
    out.inventory = inventory;
    // Nested buckets (etcd has none): structure only, they do not enter the status hash.
    while let Some((name, b)) = nested.pop() {
        if let Some(p) = &b.problem {
            w.problems.push(format!("bucket {name}: {p}"));
            continue;
        }
        if b.root != 0 {
            let mut found = Vec::new();
            w.tree(b.root, &name, &mut |_, l| {
                for nb in l.buckets() {
                    found.push((
                        format!("{name}/{}", String::from_utf8_lossy(&nb.name)),
                        nb.clone(),
                    ));
                }
            });
            nested.append(&mut found);
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
    out.hash = hash;
    out.total_key = total_key;
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
    let ids: Vec<u64> = match w.page(fl) {
        Some(s) if s.header_id == fl && s.flags == bbolt::FREELIST && s.problem.is_none() => {
            match s.body {
                Body::Freelist(ids) => ids,
                _ => Vec::new(),
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
    for &id in &ids {
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
