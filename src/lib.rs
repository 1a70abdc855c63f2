//! etcdguard: a pre-flight safety gate for etcd-backed Kubernetes clusters.
//!
//! Data flows one way: inputs → facts (all I/O at the edges, with deadlines) → a pure gate →
//! a verdict → renderers.
//!
//! - [`snapshot`]: read and verify etcd v3 snapshot files (bbolt walker, sha256 trailer,
//!   containers). No network.
//! - [`store`]: where backups live (local directory, S3) and how their names are laid out.
//! - [`lifecycle`]: a pure model of S3 lifecycle rules and their effect on a backup layout.
//! - [`change`]: what a proposed change does (kops dry-run, Terraform plan, object diffs).
//! - [`live`]: facts from a running etcd cluster.
//! - [`facts`]: gathering the facts (stores, live etcd, lifecycle rules) for the gate.
//! - [`policy`]: declarative gate policies. No network.
//! - [`continuity`]: is the newest backup still the same cluster (restore, rollback, new
//!   cluster, collapse)? Pure.
//! - [`gate`]: facts + change + policy → verdict. Pure.
//! - [`inspect`]: what a snapshot's Kubernetes content says (fresh-cluster markers, diffs). Pure.
//! - [`report`]: renderers (text, JSON, JUnit, GitHub annotations).
//! - [`service`]: the serve-time application: the webhook's gate, fact cache, refresh, metrics.
//! - [`cli`]: the `etcdguard` command line.

pub mod change;
pub mod cli;
pub mod continuity;
pub mod facts;
pub mod gate;
pub mod inspect;
pub mod json;
pub mod lifecycle;
pub mod live;
pub mod policy;
pub mod report;
pub mod service;
pub mod snapshot;
pub mod store;
