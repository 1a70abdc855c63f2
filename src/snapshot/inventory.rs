//! What Kubernetes keeps in a snapshot (issue #22), counted in the verification pass.
//!
//! kube-apiserver stores an object at `<prefix>/<namespace>/<name>`, or `<prefix>/<name>` when
//! it is cluster-scoped (k8s.io/apiserver `registry/generic/registry/store.go`:
//! `NamespaceKeyFunc`, `NoNamespaceKeyFunc`), below `/registry/`. The prefix is the resource
//! (`pods`, `deployments`, `minions` for nodes), `services/specs` and `services/endpoints` for
//! services, and `<group>/<resource>` for custom resources and aggregated APIs
//! (apiextensions-apiserver `customresource_handler.go`: `path.Join(group, plural)`); a group
//! always holds a dot, a built-in resource never does. A key outside `/registry/` is counted
//! under its first path segment.
//!
//! Counting needs no memory per key. Live objects of a resource, and the snapshot's live keys
//! (their sum), follow from counters (see `bbolt::RevStats`): each `key`-bucket entry is kept in the
//! page records as one small integer (resource and whether it is a create, update or delete);
//! the walk adds creates and the updates at or below the finished compaction and subtracts
//! deletes, per resource. With [`Names::full`] (`inspect`), each entry also keeps its
//! namespace and its value's length, for objects per namespace and bytes. Bytes are those of
//! every revision the snapshot keeps (what the objects take in the database, history since the
//! last compaction included): the bytes of only the newest revision of each key would need one
//! entry per key in memory.

use super::pages::{get, put};
use serde::Serialize;
use std::collections::HashMap;

/// At most this many resources and namespaces are told apart; the rest are counted together.
const MAX_RESOURCES: usize = 4096;
const MAX_NAMESPACES: usize = 100_000;
const OTHER_RESOURCES: &[u8] = b"(other resources)";
const OTHER_NAMESPACES: &[u8] = b"(other namespaces)";

/// What a `key`-bucket entry did to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A put with `version == 1`.
    Create = 0,
    /// Any other put.
    Update = 1,
    /// A tombstone.
    Delete = 2,
}

impl Change {
    /// The change stored in an entry's low two bits.
    fn from_bits(bits: u64) -> Option<Change> {
        [Change::Create, Change::Update, Change::Delete]
            .into_iter()
            .find(|c| *c as u64 == bits)
    }
}

/// The resource and namespace of a key: `(resource, Some(namespace))`, or `None` for a
/// cluster-scoped object or a key of another shape.
pub fn classify(key: &[u8]) -> (&[u8], Option<&[u8]>) {
    let Some(rest) = key.strip_prefix(b"/registry/") else {
        let start = usize::from(key.first() == Some(&b'/'));
        let end = key
            .iter()
            .skip(start)
            .position(|&b| b == b'/')
            .map_or(key.len(), |p| p + start);
        return (&key[..end], None);
    };
    // Runs for every entry of the snapshot: no allocation.
    let segments = rest.iter().filter(|&&b| b == b'/').count() + 1;
    let mut parts = rest.splitn(4, |&b| b == b'/');
    let (first, second, third) = (parts.next().unwrap_or_default(), parts.next(), parts.next());
    let grouped = segments > 2
        && (first.contains(&b'.')
            || (first == b"services" && matches!(second, Some(b"specs" | b"endpoints"))));
    let (end, depth, namespace) = match second {
        Some(s) if grouped => (first.len() + 1 + s.len(), 2, third),
        _ => (first.len(), 1, second),
    };
    let namespace = namespace.filter(|_| segments == depth + 2);
    (&rest[..end], namespace)
}

/// Resource and namespace names met in the pass, each given a small id.
#[derive(Debug, Default)]
pub struct Names {
    /// Keep namespaces and value lengths too, not only the resource of each entry.
    pub full: bool,
    resource_ids: HashMap<Box<[u8]>, u64>,
    resources: Vec<Box<[u8]>>,
    namespace_ids: HashMap<Box<[u8]>, u64>,
    namespaces: Vec<Box<[u8]>>,
    /// The resource of the previous entry (neighbours in revision order often share it).
    last: u64,
}

fn intern(
    ids: &mut HashMap<Box<[u8]>, u64>,
    names: &mut Vec<Box<[u8]>>,
    name: &[u8],
    max: usize,
    other: &[u8],
) -> u64 {
    if let Some(&id) = ids.get(name) {
        return id;
    }
    let name = if names.len() + 1 >= max { other } else { name };
    *ids.entry(name.into()).or_insert_with(|| {
        names.push(name.into());
        names.len() as u64 - 1
    })
}

impl Names {
    pub fn new(full: bool) -> Names {
        Names {
            full,
            ..Names::default()
        }
    }

    /// Append one `key`-bucket entry to a leaf's inventory bytes.
    pub fn entry(&mut self, out: &mut Vec<u8>, change: Change, key: &[u8], value_len: u64) {
        let (resource, namespace) = classify(key);
        let last = usize::try_from(self.last).ok();
        let r = match last.and_then(|i| self.resources.get(i)) {
            Some(name) if **name == *resource => self.last,
            _ => intern(
                &mut self.resource_ids,
                &mut self.resources,
                resource,
                MAX_RESOURCES,
                OTHER_RESOURCES,
            ),
        };
        self.last = r;
        put(out, r << 2 | change as u64);
        if self.full {
            let ns = namespace.map_or(0, |n| {
                1 + intern(
                    &mut self.namespace_ids,
                    &mut self.namespaces,
                    n,
                    MAX_NAMESPACES,
                    OTHER_NAMESPACES,
                )
            });
            put(out, ns);
            put(out, value_len);
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    /// Creates, and updates at or below the finished compaction (see `bbolt::RevStats`).
    starts: u64,
    deletes: u64,
    revisions: u64,
    bytes: u64,
}

impl Counts {
    fn objects(&self) -> u64 {
        self.starts.saturating_sub(self.deletes)
    }
}

/// The walk's sums, leaf by leaf in key order.
#[derive(Debug, Default)]
pub struct Tally {
    resources: Vec<Counts>,
    namespaces: Vec<Counts>,
    oldest: Option<i64>,
    /// An entry could not be decoded: the inventory is not given.
    broken: bool,
}

impl Tally {
    /// Add a leaf's entries. `updates` are the main revisions of its updates in order,
    /// `first_main` the revision of its first key, `compacted` the finished compaction.
    pub fn leaf(
        &mut self,
        names: &Names,
        inv: &[u8],
        updates: &[i64],
        first_main: i64,
        compacted: i64,
    ) {
        if inv.is_empty() {
            return;
        }
        self.oldest.get_or_insert(first_main);
        let mut pos = 0;
        let mut updates = updates.iter();
        while pos < inv.len() {
            let Some(parsed) = self.entry(names, inv, &mut pos) else {
                self.broken = true;
                return;
            };
            let (r, ns, change, len) = parsed;
            let start = match change {
                Change::Create => 1,
                Change::Update => match updates.next() {
                    Some(&m) => u64::from(m <= compacted),
                    None => {
                        self.broken = true;
                        return;
                    }
                },
                Change::Delete => 0,
            };
            let deleted = u64::from(change == Change::Delete);
            for c in [
                self.resources.get_mut(r),
                ns.and_then(|n| self.namespaces.get_mut(n)),
            ]
            .into_iter()
            .flatten()
            {
                c.starts += start;
                c.deletes += deleted;
                c.revisions += 1;
                c.bytes += len;
            }
        }
    }

    /// Decode one entry: `(resource, namespace, change, value length)`, growing the tables.
    fn entry(
        &mut self,
        names: &Names,
        inv: &[u8],
        pos: &mut usize,
    ) -> Option<(usize, Option<usize>, Change, u64)> {
        let head = get(inv, pos)?;
        let change = Change::from_bits(head & 3)?;
        let r = usize::try_from(head >> 2)
            .ok()
            .filter(|&r| r < names.resources.len())?;
        let (mut ns, mut len) = (None, 0);
        if names.full {
            let n = usize::try_from(get(inv, pos)?).ok()?;
            if n > 0 {
                ns = Some(n - 1).filter(|&n| n < names.namespaces.len());
                ns?;
            }
            len = get(inv, pos)?;
        }
        if self.resources.len() <= r {
            self.resources.resize(r + 1, Counts::default());
        }
        if let Some(n) = ns.filter(|&n| self.namespaces.len() <= n) {
            self.namespaces.resize(n + 1, Counts::default());
        }
        Some((r, ns, change, len))
    }

    /// Live keys of every resource together: generations started minus ended; `None` when an
    /// entry could not be decoded.
    pub fn live(&self) -> Option<u64> {
        if self.broken {
            return None;
        }
        let (starts, deletes) = self
            .resources
            .iter()
            .fold((0u64, 0u64), |(s, d), c| (s + c.starts, d + c.deletes));
        starts.checked_sub(deletes)
    }

    /// The inventory; object counts only when `counts_known` (no compaction under way).
    pub fn finish(self, names: &Names, counts_known: bool) -> Option<Inventory> {
        if self.broken {
            return None;
        }
        let name = |n: &[u8]| String::from_utf8_lossy(n).into_owned();
        let objects = |c: &Counts| counts_known.then(|| c.objects());
        let mut resources: Vec<ResourceCount> = self
            .resources
            .iter()
            .zip(&names.resources)
            .filter(|(c, _)| c.revisions > 0)
            .map(|(c, n)| ResourceCount {
                resource: name(n),
                objects: objects(c),
                revisions: c.revisions,
                bytes: names.full.then_some(c.bytes),
            })
            .collect();
        resources.sort_by(|a, b| a.resource.cmp(&b.resource));
        let mut namespaces: Vec<NamespaceCount> = self
            .namespaces
            .iter()
            .zip(&names.namespaces)
            .filter(|(c, _)| c.revisions > 0)
            .map(|(c, n)| NamespaceCount {
                namespace: name(n),
                objects: objects(c),
                bytes: c.bytes,
            })
            .collect();
        namespaces.sort_by(|a, b| a.namespace.cmp(&b.namespace));
        Some(Inventory {
            resources,
            namespaces: names.full.then_some(namespaces),
            oldest_revision: self.oldest,
        })
    }
}

/// What the `key` bucket holds, per resource (and, for `inspect`, per namespace).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    /// Sorted by resource.
    pub resources: Vec<ResourceCount>,
    /// Namespaced objects per namespace, sorted by namespace (`inspect` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<NamespaceCount>>,
    /// Main revision of the oldest entry kept (the newest is the snapshot's `revision`).
    pub oldest_revision: Option<i64>,
}

/// One resource: its storage prefix below `/registry/` (`pods`, `services/specs`,
/// `cilium.io/ciliumendpoints`), or the first segment of keys outside it (`/calico`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceCount {
    pub resource: String,
    /// Objects whose newest revision is not a delete; `null` while a compaction is under way
    /// in the snapshot.
    pub objects: Option<u64>,
    /// Revisions kept (puts and deletes, history since the last compaction included).
    pub revisions: u64,
    /// Value bytes of every revision kept (`inspect` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

/// One namespace: its namespaced objects, every resource together.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceCount {
    pub namespace: String,
    pub objects: Option<u64>,
    /// Value bytes of every revision kept.
    pub bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Live objects of `resource` in `inv`, 0 when absent.
    fn objects(inv: &Inventory, resource: &str) -> Option<u64> {
        let r = inv.resources.iter().find(|r| r.resource == resource);
        r.map_or(Some(0), |r| r.objects)
    }

    #[test]
    fn keys_name_their_resource_and_namespace() {
        let cases = [
            ("/registry/pods/default/web-0", "pods", Some("default")),
            ("/registry/minions/node-1", "minions", None),
            (
                "/registry/services/specs/default/kubernetes",
                "services/specs",
                Some("default"),
            ),
            (
                "/registry/services/endpoints/kube-system/dns",
                "services/endpoints",
                Some("kube-system"),
            ),
            (
                "/registry/cilium.io/ciliumendpoints/ns/ep",
                "cilium.io/ciliumendpoints",
                Some("ns"),
            ),
            (
                "/registry/apiextensions.k8s.io/customresourcedefinitions/x.example.com",
                "apiextensions.k8s.io/customresourcedefinitions",
                None,
            ),
            ("/registry/ranges/serviceips", "ranges", None),
            ("/calico/ipam/v2/host", "/calico", None),
            ("compact_rev_key", "compact_rev_key", None),
        ];
        for (key, resource, ns) in cases {
            let want = (resource.as_bytes(), ns.map(str::as_bytes));
            assert_eq!(classify(key.as_bytes()), want, "{key}");
        }
    }

    #[test]
    fn counts_follow_creates_updates_and_deletes() {
        let mut names = Names::new(true);
        let mut inv = Vec::new();
        // pods/a created and updated twice, pods/b created and deleted, a node created; the
        // compaction at revision 3 removed pods/a's create.
        names.entry(&mut inv, Change::Update, b"/registry/pods/ns1/a", 10);
        names.entry(&mut inv, Change::Update, b"/registry/pods/ns1/a", 12);
        names.entry(&mut inv, Change::Create, b"/registry/pods/ns2/b", 5);
        names.entry(&mut inv, Change::Delete, b"/registry/pods/ns2/b", 0);
        names.entry(&mut inv, Change::Create, b"/registry/minions/n1", 7);
        let mut t = Tally::default();
        t.leaf(&names, &inv, &[3, 4], 3, 3);
        let inv = t.finish(&names, true).unwrap();
        assert_eq!(objects(&inv, "pods"), Some(1));
        assert_eq!(objects(&inv, "minions"), Some(1));
        assert_eq!(objects(&inv, "secrets"), Some(0));
        let pods = &inv.resources[1];
        assert_eq!((pods.revisions, pods.bytes), (4, Some(27)));
        let ns = inv.namespaces.unwrap();
        assert_eq!(
            ns.iter()
                .map(|n| (n.namespace.as_str(), n.objects))
                .collect::<Vec<_>>(),
            [("ns1", Some(1)), ("ns2", Some(0))]
        );
        assert_eq!(inv.oldest_revision, Some(3));
    }

    #[test]
    fn an_entry_that_does_not_decode_gives_no_inventory() {
        let names = Names::new(false);
        let mut t = Tally::default();
        t.leaf(&names, &[0x04], &[], 1, 0); // resource 1 was never named
        assert_eq!(t.finish(&names, true), None);
    }
}
