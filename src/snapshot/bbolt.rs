//! Bounds-checked, read-only parsing of bbolt pages (format facts: reference §1).
//!
//! Everything here works on byte slices the caller already holds and never panics: every field
//! read goes through [`get_u16`]/[`get_u32`]/[`get_u64`], which return `None` out of range.
//! Pages are parsed *tentatively*: a [`PageSummary`] records what a page would contain and the
//! problems found in it, and the tree walk ([`super::walk`]) decides later whether the page is
//! reachable and therefore whether those problems matter.

use super::inventory::{Change, Names};
use super::schema;

/// `Magic` in the meta page (little-endian files).
pub const MAGIC: u32 = 0xED0C_DAED;
/// The only supported file format version.
pub const VERSION: u32 = 2;
/// `meta.freelist` when the freelist is not persisted (etcd ≥ 3.3 on Linux).
pub const PGID_NO_FREELIST: u64 = u64::MAX;
/// Size of the page header and of every branch/leaf element.
pub const HEADER: usize = 16;
/// Size of a branch or leaf element.
pub const ELEM: usize = 16;
/// Page flags.
pub const BRANCH: u16 = 0x01;
pub const LEAF: u16 = 0x02;
pub const META: u16 = 0x04;
pub const FREELIST: u16 = 0x10;
/// Leaf element flag: the value is a nested bucket.
pub const BUCKET_LEAF: u32 = 0x01;
/// Largest page extent (page plus overflow) this verifier buffers. etcd values are limited to a
/// few MiB by `--max-request-bytes`, so a larger extent is reported instead of buffered.
pub const MAX_EXTENT: u64 = 32 << 20;
/// Values of these keys are kept (when small) so the schema decoder can read them after the walk.
const SMALL_KEYS: &[&[u8]] = &[
    b"consistent_index",
    b"term",
    b"scheduledCompactRev",
    b"finishedCompactRev",
    b"storageVersion",
    b"clusterVersion",
];

/// Little-endian `u16` at `off`, `None` when out of range.
pub fn get_u16(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

/// Little-endian `u32` at `off`, `None` when out of range.
pub fn get_u32(b: &[u8], off: usize) -> Option<u32> {
    let s: [u8; 4] = b.get(off..off.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(s))
}

/// Little-endian `u64` at `off`, `None` when out of range.
pub fn get_u64(b: &[u8], off: usize) -> Option<u64> {
    let s: [u8; 8] = b.get(off..off.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(s))
}

/// FNV-1a 64 (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`), bbolt's meta checksum.
pub fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A decoded meta page (reference §1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub page_size: u32,
    pub root: u64,
    pub freelist: u64,
    /// High-water mark: one past the last allocated page.
    pub hwm: u64,
    pub txid: u64,
}

/// Why a meta page or a page image is not what bbolt writes. The message names the numbers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("too short for a meta page")]
    MetaTooShort,
    #[error("not found at any offset 1024 << i")]
    MetaNotFound,
    #[error("big-endian bbolt file (s390x); only little-endian files are supported")]
    BigEndian,
    #[error("bad magic {0:#010x}, expected {MAGIC:#010x}")]
    Magic(u32),
    #[error("format version {0}, expected {VERSION}")]
    Version(u32),
    #[error("checksum {stored:#018x} does not match the computed {computed:#018x}")]
    Checksum { stored: u64, computed: u64 },
    #[error("page size {0} is not a power of two in [1024, 65536]")]
    PageSize(u32),
    #[error("high-water mark {0} is below 3")]
    HwmTooLow(u64),
    #[error("root page {root} is outside [2, high-water mark {hwm})")]
    Root { root: u64, hwm: u64 },
    #[error("freelist page {freelist} is outside [2, high-water mark {hwm})")]
    FreelistPage { freelist: u64, hwm: u64 },
    #[error("high-water mark {0} overflows the file size")]
    HwmOverflow(u64),
    #[error("element count {count} needs {need} bytes but the page extent is {extent} bytes")]
    ElementsDontFit {
        count: usize,
        need: usize,
        extent: usize,
    },
    #[error(
        "element {i}: {what} bytes [{start}, {end}) lie outside the page extent of {extent} bytes"
    )]
    OutsideExtent {
        i: usize,
        what: &'static str,
        start: u64,
        end: u64,
        extent: usize,
    },
    #[error("branch page with no elements")]
    EmptyBranch,
    #[error("{page} element {i} has an empty key")]
    EmptyKey { page: &'static str, i: usize },
    #[error("{page} element {i}: key is not greater than the previous key")]
    KeyOrder { page: &'static str, i: usize },
    #[error("leaf element {0}: a bucket inside an inline bucket")]
    NestedInline(usize),
    #[error("freelist count missing")]
    FreelistCount,
    #[error("freelist of {ids} ids does not fit the page extent of {extent} bytes")]
    FreelistFit { ids: u64, extent: usize },
    #[error("freelist too large")]
    FreelistTooLarge,
}

/// Parse and validate the meta page starting at `page[0]`. `Err` says why it is not usable.
pub fn parse_meta(page: &[u8]) -> Result<Meta, PageError> {
    let magic = get_u32(page, 16).ok_or(PageError::MetaTooShort)?;
    if magic != MAGIC {
        if magic == MAGIC.swap_bytes() {
            return Err(PageError::BigEndian);
        }
        return Err(PageError::Magic(magic));
    }
    let version = get_u32(page, 20).ok_or(PageError::MetaTooShort)?;
    if version != VERSION {
        return Err(PageError::Version(version));
    }
    let body = page.get(16..72).ok_or(PageError::MetaTooShort)?;
    let stored = get_u64(page, 72).ok_or(PageError::MetaTooShort)?;
    let computed = fnv1a64(body);
    if stored != computed {
        return Err(PageError::Checksum { stored, computed });
    }
    let meta = Meta {
        page_size: get_u32(page, 24).unwrap_or(0),
        root: get_u64(page, 32).unwrap_or(0),
        freelist: get_u64(page, 48).unwrap_or(0),
        hwm: get_u64(page, 56).unwrap_or(0),
        txid: get_u64(page, 64).unwrap_or(0),
    };
    if !meta.page_size.is_power_of_two() || !(1024..=65536).contains(&meta.page_size) {
        return Err(PageError::PageSize(meta.page_size));
    }
    if meta.hwm < 3 {
        return Err(PageError::HwmTooLow(meta.hwm));
    }
    if meta.root < 2 || meta.root >= meta.hwm {
        return Err(PageError::Root {
            root: meta.root,
            hwm: meta.hwm,
        });
    }
    if meta.freelist != PGID_NO_FREELIST && (meta.freelist < 2 || meta.freelist >= meta.hwm) {
        return Err(PageError::FreelistPage {
            freelist: meta.freelist,
            hwm: meta.hwm,
        });
    }
    if meta.hwm.checked_mul(u64::from(meta.page_size)).is_none() {
        return Err(PageError::HwmOverflow(meta.hwm));
    }
    Ok(meta)
}

/// Human name of a page type, for problem messages.
pub fn flag_name(flags: u16) -> String {
    match flags {
        BRANCH => "branch".into(),
        LEAF => "leaf".into(),
        META => "meta".into(),
        FREELIST => "freelist".into(),
        other => format!("unknown {other:#06x}"),
    }
}

/// A `(key, value)` pair kept from a leaf.
pub type Pair = (Box<[u8]>, Box<[u8]>);
/// Branch elements: `(child pgid, key)`.
pub type BranchElems = Vec<(u64, Box<[u8]>)>;

/// A nested bucket found as a leaf entry.
#[derive(Debug, Clone)]
pub struct BucketEntry {
    /// Element index within its page.
    pub index: usize,
    pub name: Box<[u8]>,
    /// Root page of the bucket's tree, 0 for an inline bucket.
    pub root: u64,
    /// The inline page image when `root == 0`.
    pub inline: Option<Box<Leaf>>,
    /// Why the bucket value is unusable, if it is.
    pub problem: Option<String>,
}

/// Revision-key statistics of a leaf whose keys all look like `key`-bucket revision keys.
///
/// The live-key count is derived from each entry's change (in `inv`) without remembering any
/// user key: each generation of a key (create … delete) that is still in the snapshot starts at
/// its oldest retained revision, which is either a create (`version == 1`) or, after a
/// compaction at revision `C`, the one revision `<= C` that etcd keeps per key; every delete
/// ends one. So live keys = creates + puts with `main <= C` and `version > 1` − deletes (see
/// [`super::inventory::Tally`]).
#[derive(Debug, Clone, Default)]
pub struct RevStats {
    /// Main revision of the last (largest) key.
    pub last_main: i64,
    /// Largest `mod_revision` among the values.
    pub max_mod: i64,
    /// Entries with a lease.
    pub with_lease: u32,
    /// Main revisions of the puts with `version > 1`, ascending.
    pub updates: Vec<i64>,
    /// Each entry's resource and change (and, for `inspect`, namespace and value length), in
    /// order: see [`super::inventory`].
    pub inv: Vec<u8>,
}

/// Leaf contents that few leaves have, kept out of line so the common leaf stays small.
#[derive(Debug, Clone, Default)]
pub struct Rare {
    pub buckets: Vec<BucketEntry>,
    pub small: Vec<Pair>,
    /// Why the keys are not all revision keys.
    pub not_revisions: Option<String>,
}

/// Summary of a leaf page (or inline bucket page), as the walk reads it; kept until the walk
/// in the compact form of [`super::pages`].
#[derive(Debug, Clone, Default)]
pub struct Leaf {
    pub count: u32,
    /// CRC-32C of `k || v` for each entry in order (`k` only for bucket entries), as
    /// `bucket.ForEach` feeds them to `etcdctl snapshot status`.
    pub crc: u32,
    /// Number of bytes covered by `crc`.
    pub crc_len: u64,
    /// First key followed by last key.
    pub(super) keys: Box<[u8]>,
    pub(super) first_len: u32,
    pub(super) revs: RevStats,
    pub(super) rare: Option<Box<Rare>>,
}

impl Leaf {
    /// Smallest key (empty for an empty leaf).
    pub fn first_key(&self) -> &[u8] {
        self.keys.get(..self.first_len as usize).unwrap_or(&[])
    }
    /// Largest key (empty for an empty leaf).
    pub fn last_key(&self) -> &[u8] {
        self.keys.get(self.first_len as usize..).unwrap_or(&[])
    }
    /// Nested-bucket entries, in key order.
    pub fn buckets(&self) -> &[BucketEntry] {
        self.rare.as_ref().map_or(&[], |r| &r.buckets[..])
    }
    /// Small values of well-known `meta`/`cluster` keys and `members`-like entries.
    pub fn small(&self) -> &[Pair] {
        self.rare.as_ref().map_or(&[], |r| &r.small[..])
    }
    /// `Ok` when every key is a revision key; `Err(reason)` naming the first one that is not.
    pub fn revs(&self) -> Result<&RevStats, &str> {
        match self.rare.as_ref().and_then(|r| r.not_revisions.as_deref()) {
            Some(e) => Err(e),
            None => Ok(&self.revs),
        }
    }
}

/// What a page would hold if it were reachable.
#[derive(Debug, Clone)]
pub enum Body {
    /// Header only (id mismatch, unknown type, or extent not available).
    None,
    /// Branch: `(child pgid, key)` per element.
    Branch(BranchElems),
    Leaf(Leaf),
    /// Freelist page ids.
    Freelist(Vec<u64>),
}

/// Tentative parse of one page position.
#[derive(Debug, Clone)]
pub struct PageSummary {
    pub header_id: u64,
    pub flags: u16,
    pub overflow: u32,
    pub body: Body,
    /// First problem found while parsing; reported only if the page is reachable.
    pub problem: Option<Box<str>>,
}

/// Parse the 16-byte header at `page[0..16]`.
pub fn parse_header(page: &[u8]) -> Option<(u64, u16, u16, u32)> {
    Some((
        get_u64(page, 0)?,
        get_u16(page, 8)?,
        get_u16(page, 10)?,
        get_u32(page, 12)?,
    ))
}

/// Parse the full page image `extent` (header plus overflow pages) of page `pgid`.
/// `extent` must start at the page header. Never panics; problems land in the summary.
/// `names` collects the resources (and namespaces) of `key`-bucket entries.
pub fn parse_page(extent: &[u8], pgid: u64, names: &mut Names) -> PageSummary {
    let Some((header_id, flags, count, overflow)) = parse_header(extent) else {
        return PageSummary {
            header_id: u64::MAX,
            flags: 0,
            overflow: 0,
            body: Body::None,
            problem: Some(format!("page {pgid}: shorter than a page header").into()),
        };
    };
    let mut s = PageSummary {
        header_id,
        flags,
        overflow,
        body: Body::None,
        problem: None,
    };
    match flags {
        BRANCH => match parse_branch(extent, usize::from(count)) {
            Ok(elems) => s.body = Body::Branch(elems),
            Err(e) => s.problem = Some(format!("page {pgid}: {e}").into()),
        },
        LEAF => match parse_leaf(extent, usize::from(count), true, names) {
            Ok(leaf) => s.body = Body::Leaf(leaf),
            Err(e) => s.problem = Some(format!("page {pgid}: {e}").into()),
        },
        FREELIST => match parse_freelist(extent, count) {
            Ok(ids) => s.body = Body::Freelist(ids),
            Err(e) => s.problem = Some(format!("page {pgid}: {e}").into()),
        },
        _ => {}
    }
    s
}

fn elements_fit(extent: &[u8], count: usize) -> Result<(), PageError> {
    let need = count.checked_mul(ELEM).and_then(|n| n.checked_add(HEADER));
    match need {
        Some(n) if n <= extent.len() => Ok(()),
        _ => Err(PageError::ElementsDontFit {
            count,
            need: count.saturating_mul(ELEM).saturating_add(HEADER),
            extent: extent.len(),
        }),
    }
}

/// Slice `[elem_off + pos, +len)` of `extent`, or an error naming the element.
fn data_at<'a>(
    extent: &'a [u8],
    elem_off: usize,
    pos: u32,
    skip: u32,
    len: u32,
    what: &'static str,
    i: usize,
) -> Result<&'a [u8], PageError> {
    let start = (elem_off as u64) + u64::from(pos) + u64::from(skip);
    let end = start + u64::from(len);
    usize::try_from(start)
        .ok()
        .zip(usize::try_from(end).ok())
        .and_then(|(a, b)| extent.get(a..b))
        .ok_or(PageError::OutsideExtent {
            i,
            what,
            start,
            end,
            extent: extent.len(),
        })
}

fn parse_branch(extent: &[u8], count: usize) -> Result<BranchElems, PageError> {
    if count == 0 {
        return Err(PageError::EmptyBranch);
    }
    elements_fit(extent, count)?;
    let mut out: BranchElems = Vec::with_capacity(count);
    for i in 0..count {
        let off = HEADER + ELEM * i;
        let pos = get_u32(extent, off).unwrap_or(0);
        let ksize = get_u32(extent, off + 4).unwrap_or(0);
        let child = get_u64(extent, off + 8).unwrap_or(0);
        if ksize == 0 {
            return Err(PageError::EmptyKey { page: "branch", i });
        }
        let key = data_at(extent, off, pos, 0, ksize, "key", i)?;
        if let Some((_, prev)) = out.last() {
            if key <= &prev[..] {
                return Err(PageError::KeyOrder { page: "branch", i });
            }
        }
        out.push((child, key.into()));
    }
    Ok(out)
}

/// Parse a leaf page image; `allow_buckets` is false for inline bucket pages.
pub fn parse_leaf(
    extent: &[u8],
    count: usize,
    allow_buckets: bool,
    names: &mut Names,
) -> Result<Leaf, PageError> {
    elements_fit(extent, count)?;
    let mut rare = Rare::default();
    let mut stats = RevStats::default();
    let mut prev: &[u8] = &[];
    let mut crc = 0u32;
    let mut crc_len = 0u64;
    for i in 0..count {
        let off = HEADER + ELEM * i;
        let eflags = get_u32(extent, off).unwrap_or(0);
        let pos = get_u32(extent, off + 4).unwrap_or(0);
        let ksize = get_u32(extent, off + 8).unwrap_or(0);
        let vsize = get_u32(extent, off + 12).unwrap_or(0);
        if ksize == 0 {
            return Err(PageError::EmptyKey { page: "leaf", i });
        }
        let key = data_at(extent, off, pos, 0, ksize, "key", i)?;
        let value = data_at(extent, off, pos, ksize, vsize, "value", i)?;
        if i > 0 && key <= prev {
            return Err(PageError::KeyOrder { page: "leaf", i });
        }
        prev = key;
        crc = crc32c::crc32c_append(crc, key);
        crc_len += u64::from(ksize);
        if eflags & BUCKET_LEAF != 0 {
            if !allow_buckets {
                return Err(PageError::NestedInline(i));
            }
            rare.buckets.push(parse_bucket_value(i, key, value, names));
            rare.not_revisions
                .get_or_insert_with(|| format!("element {i} is a nested bucket"));
            continue;
        }
        crc = crc32c::crc32c_append(crc, value);
        crc_len += u64::from(vsize);
        if rare.not_revisions.is_none() {
            match schema::RevisionKey::parse(key) {
                Ok(rk) => {
                    stats.last_main = rk.main;
                    match schema::decode_key_value(value) {
                        Ok(kv) => {
                            let change = if rk.tombstone {
                                Change::Delete
                            } else if kv.version == 1 {
                                Change::Create
                            } else {
                                stats.updates.push(rk.main);
                                Change::Update
                            };
                            names.entry(&mut stats.inv, change, kv.key, kv.value_len);
                            stats.max_mod = stats.max_mod.max(kv.mod_revision);
                            if kv.lease != 0 {
                                stats.with_lease += 1;
                            }
                        }
                        Err(e) => {
                            rare.not_revisions =
                                Some(format!("element {i}: value is not an mvccpb.KeyValue: {e}"))
                        }
                    }
                }
                Err(e) => rare.not_revisions = Some(format!("element {i}: {e}")),
            }
        }
        if value.len() <= 4096
            && (SMALL_KEYS.contains(&key) || value.starts_with(b"{\"id\":"))
            && rare.small.len() < 256
        {
            rare.small.push((key.into(), value.into()));
        }
    }
    let mut keys = Vec::new();
    let mut first_len = 0;
    if let Some(first) = first_key(extent, count) {
        keys.reserve_exact(first.len() + prev.len());
        keys.extend_from_slice(first);
        keys.extend_from_slice(prev);
        first_len = first.len() as u32;
    }
    if rare.not_revisions.is_some() {
        stats = RevStats::default();
    }
    let has_rare =
        !rare.buckets.is_empty() || !rare.small.is_empty() || rare.not_revisions.is_some();
    Ok(Leaf {
        count: count as u32,
        crc,
        crc_len,
        keys: keys.into_boxed_slice(),
        first_len,
        revs: stats,
        rare: has_rare.then(|| Box::new(rare)),
    })
}

fn first_key(extent: &[u8], count: usize) -> Option<&[u8]> {
    if count == 0 {
        return None;
    }
    let pos = get_u32(extent, HEADER + 4)?;
    let ksize = get_u32(extent, HEADER + 8)?;
    data_at(extent, HEADER, pos, 0, ksize, "key", 0).ok()
}

fn parse_bucket_value(index: usize, name: &[u8], value: &[u8], names: &mut Names) -> BucketEntry {
    let mut entry = BucketEntry {
        index,
        name: name.into(),
        root: 0,
        inline: None,
        problem: None,
    };
    let Some(root) = get_u64(value, 0) else {
        entry.problem = Some(format!(
            "bucket {:?}: value of {} bytes is shorter than the 16-byte bucket header",
            String::from_utf8_lossy(name),
            value.len()
        ));
        return entry;
    };
    entry.root = root;
    if root != 0 {
        return entry;
    }
    let page = value.get(16..).unwrap_or(&[]);
    let result = match parse_header(page) {
        None => Err("inline bucket value has no page header".to_string()),
        Some((_, flags, _, _)) if flags != LEAF => Err(format!(
            "inline bucket page has type {}, expected leaf",
            flag_name(flags)
        )),
        Some((_, _, count, _)) => parse_leaf(page, usize::from(count), false, names)
            .map_err(|e| format!("inline bucket page: {e}")),
    };
    match result {
        Ok(leaf) => entry.inline = Some(Box::new(leaf)),
        Err(e) => entry.problem = Some(format!("bucket {:?}: {e}", String::from_utf8_lossy(name))),
    }
    entry
}

fn parse_freelist(extent: &[u8], count: u16) -> Result<Vec<u64>, PageError> {
    let (n, start) = if count == 0xFFFF {
        let n = get_u64(extent, HEADER).ok_or(PageError::FreelistCount)?;
        (n, HEADER + 8)
    } else {
        (u64::from(count), HEADER)
    };
    let fits = n
        .checked_mul(8)
        .and_then(|b| b.checked_add(start as u64))
        .is_some_and(|e| e <= extent.len() as u64);
    if !fits {
        return Err(PageError::FreelistFit {
            ids: n,
            extent: extent.len(),
        });
    }
    let n = usize::try_from(n).map_err(|_| PageError::FreelistTooLarge)?;
    Ok((0..n)
        .filter_map(|i| get_u64(extent, start + 8 * i))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_known_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    fn meta_page(ps: u32, root: u64, hwm: u64, txid: u64) -> Vec<u8> {
        let mut p = vec![0u8; ps as usize];
        p[8..10].copy_from_slice(&META.to_le_bytes());
        p[16..20].copy_from_slice(&MAGIC.to_le_bytes());
        p[20..24].copy_from_slice(&VERSION.to_le_bytes());
        p[24..28].copy_from_slice(&ps.to_le_bytes());
        p[32..40].copy_from_slice(&root.to_le_bytes());
        p[48..56].copy_from_slice(&PGID_NO_FREELIST.to_le_bytes());
        p[56..64].copy_from_slice(&hwm.to_le_bytes());
        p[64..72].copy_from_slice(&txid.to_le_bytes());
        let sum = fnv1a64(&p[16..72]);
        p[72..80].copy_from_slice(&sum.to_le_bytes());
        p
    }

    #[test]
    fn meta_checksum_and_bounds() {
        let p = meta_page(4096, 3, 10, 7);
        let m = parse_meta(&p).unwrap();
        assert_eq!((m.page_size, m.root, m.hwm, m.txid), (4096, 3, 10, 7));
        let mut bad = p.clone();
        bad[40] ^= 1;
        assert!(matches!(parse_meta(&bad), Err(PageError::Checksum { .. })));
        assert_eq!(
            parse_meta(&meta_page(4096, 12, 10, 7)),
            Err(PageError::Root { root: 12, hwm: 10 })
        );
        assert!(parse_meta(&meta_page(4096, 12, 10, 7))
            .unwrap_err()
            .to_string()
            .contains("root page 12"));
        assert!(parse_meta(&p[..50]).is_err());
    }

    #[test]
    fn leaf_bounds_and_absurd_count() {
        let mut p = vec![0u8; 4096];
        p[8..10].copy_from_slice(&LEAF.to_le_bytes());
        p[10..12].copy_from_slice(&0xFFFFu16.to_le_bytes());
        let s = parse_page(&p, 5, &mut Names::default());
        assert!(s.problem.unwrap().contains("element count 65535"));
        // one element whose key runs past the page
        p[10..12].copy_from_slice(&1u16.to_le_bytes());
        p[16 + 4..16 + 8].copy_from_slice(&16u32.to_le_bytes());
        p[16 + 8..16 + 12].copy_from_slice(&5000u32.to_le_bytes());
        let s = parse_page(&p, 5, &mut Names::default());
        assert!(s.problem.unwrap().contains("outside the page extent"));
    }
}
