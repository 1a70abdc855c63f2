//! S3 lifecycle rules: a pure model and an evaluator against a backup layout (issue #4).
//!
//! This module imports no network crate and never reads the clock: callers pass `now`.
//!
//! - [`parse()`]: read rules from S3 XML, AWS JSON, Terraform plans, CloudFormation and Kubernetes
//!   (ACK, Upbound, crossplane) into one [`Configuration`] model, detecting the format.
//! - [`evaluate()`]: judge a configuration against a [`StoreContext`] (bucket, store prefix,
//!   layout, backup interval, retention, known objects) and return [`LifecycleFinding`]s.
//! - [`diff()`]: only what a proposed configuration makes worse than the current one.
//!
//! The conversion from aws-sdk-s3 types lives in `crate::store::s3_lifecycle`, so this module
//! stays free of AWS crates.

pub mod evaluate;
pub mod model;
pub mod parse;

pub use evaluate::{
    backup_time, diff, evaluate, normalize_prefix, worst, KnownObject, Layout, LifecycleFinding,
    Severity, StoreContext, CHECK_ARCHIVES_CONTROL, CHECK_ARCHIVES_SNAPSHOTS,
    CHECK_DELETES_CONTROL, CHECK_EXPIRES_SNAPSHOTS, CHECK_UNKNOWN_AT_PLAN,
};
pub use model::{
    Configuration, Expiration, Filter, NoncurrentExpiration, NoncurrentTransition, Rule, Schedule,
    Status, StorageClass, Tag, Transition,
};
pub use parse::{parse, select_for_bucket, BucketRules, Format, ParseError};

#[cfg(test)]
mod tests;
