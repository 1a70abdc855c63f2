//! The live bucket's lifecycle configuration through aws-sdk-s3, converted into the pure
//! [`crate::lifecycle`] model (which must not import AWS crates).
//!
//! Read-only: `GetBucketLifecycleConfiguration`, `GetBucketVersioning`, `ListObjectsV2` and
//! `GetObjectTagging`.

use super::s3_error::{classify, S3Failure, Target};
use crate::lifecycle::model::{
    Configuration, Expiration, Filter, NoncurrentExpiration, NoncurrentTransition, Rule, Schedule,
    Status, StorageClass, Tag, Transition,
};
use crate::lifecycle::KnownObject;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_bucket_lifecycle_configuration::GetBucketLifecycleConfigurationOutput;
use aws_sdk_s3::primitives::DateTime as SdkDateTime;
use aws_sdk_s3::types as s3;
use chrono::{DateTime, Utc};

/// Why the live configuration could not be read. One line, naming the bucket.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The bucket does not exist (`NoSuchBucket`).
    #[error("s3://{bucket}: bucket does not exist (NoSuchBucket)")]
    NoSuchBucket { bucket: String },
    /// Anything else: access denied, no credentials, timeout, DNS, another S3 error.
    #[error("s3://{bucket}: {operation}: {failure}")]
    Failed {
        bucket: String,
        operation: &'static str,
        failure: S3Failure,
    },
}

fn to_utc(t: &SdkDateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

fn days(d: i32) -> u32 {
    u32::try_from(d).unwrap_or(0)
}

fn size(s: i64) -> u64 {
    u64::try_from(s).unwrap_or(0)
}

fn tag(t: &s3::Tag) -> Tag {
    Tag {
        key: t.key().to_string(),
        value: t.value().to_string(),
    }
}

fn schedule(date: Option<&SdkDateTime>, d: Option<i32>) -> Option<Schedule> {
    match (date.and_then(to_utc), d) {
        (Some(date), _) => Some(Schedule::Date(date)),
        (None, Some(d)) => Some(Schedule::Days(days(d))),
        (None, None) => None,
    }
}

fn class(c: Option<&s3::TransitionStorageClass>) -> StorageClass {
    // Unknown classes stay `Other`, which the evaluator treats as archiving (conservative).
    c.map_or_else(
        || StorageClass::Other("(missing)".into()),
        |c| StorageClass::parse(c.as_str()),
    )
}

/// Convert one SDK rule. A rule with neither `Filter` nor the legacy `Prefix` covers the whole
/// bucket (S3 would reject it, so this only errs on the safe side).
pub fn convert_rule(r: &s3::LifecycleRule) -> Rule {
    let mut out = Rule::new(r.id().map(str::to_string));
    out.status = match r.status() {
        s3::ExpirationStatus::Enabled => Status::Enabled,
        s3::ExpirationStatus::Disabled => Status::Disabled,
        other => Status::Unknown(other.as_str().to_string()),
    };
    out.filter = match r.filter() {
        Some(f) => {
            let mut filter = Filter {
                prefix: f.prefix().unwrap_or_default().to_string(),
                tags: f.tag().map(tag).into_iter().collect(),
                size_greater_than: f.object_size_greater_than().map(size),
                size_less_than: f.object_size_less_than().map(size),
            };
            if let Some(and) = f.and() {
                if let Some(p) = and.prefix() {
                    filter.prefix = p.to_string();
                }
                filter.tags.extend(and.tags().iter().map(tag));
                if let Some(gt) = and.object_size_greater_than() {
                    filter.size_greater_than = Some(size(gt));
                }
                if let Some(lt) = and.object_size_less_than() {
                    filter.size_less_than = Some(size(lt));
                }
            }
            filter
        }
        None => {
            #[allow(deprecated)]
            let prefix = r.prefix().unwrap_or_default().to_string();
            Filter {
                prefix,
                ..Filter::default()
            }
        }
    };
    if let Some(e) = r.expiration() {
        let eodm = e.expired_object_delete_marker().unwrap_or(false);
        let s = schedule(e.date(), e.days());
        if s.is_some() || eodm {
            out.expiration = Some(Expiration {
                schedule: s,
                expired_object_delete_marker: eodm,
            });
        }
    }
    for t in r.transitions() {
        // A transition with neither days nor date cannot be stored by S3; read it as "now".
        let s = schedule(t.date(), t.days()).unwrap_or(Schedule::Days(0));
        out.transitions.push(Transition {
            schedule: s,
            storage_class: class(t.storage_class()),
        });
    }
    if let Some(n) = r.noncurrent_version_expiration() {
        if let Some(d) = n.noncurrent_days() {
            out.noncurrent_expiration = Some(NoncurrentExpiration {
                noncurrent_days: days(d),
                newer_noncurrent_versions: n.newer_noncurrent_versions().map(days),
            });
        }
    }
    for t in r.noncurrent_version_transitions() {
        out.noncurrent_transitions.push(NoncurrentTransition {
            noncurrent_days: t.noncurrent_days().map_or(0, days),
            storage_class: class(t.storage_class()),
            newer_noncurrent_versions: t.newer_noncurrent_versions().map(days),
        });
    }
    out.abort_incomplete_multipart_days = r
        .abort_incomplete_multipart_upload()
        .and_then(|a| a.days_after_initiation())
        .map(days);
    out
}

/// Convert a `GetBucketLifecycleConfiguration` answer.
pub fn convert_output(out: &GetBucketLifecycleConfigurationOutput) -> Configuration {
    Configuration {
        rules: out.rules().iter().map(convert_rule).collect(),
        transition_default_minimum_object_size: out
            .transition_default_minimum_object_size()
            .map(|v| v.as_str().to_string()),
    }
}

fn sdk_error<E>(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    operation: &'static str,
    e: &SdkError<E, HttpResponse>,
) -> FetchError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let to = Target {
        bucket,
        endpoint: None,
        timeout: client
            .config()
            .timeout_config()
            .and_then(|t| t.operation_timeout())
            .unwrap_or_default(),
    };
    match classify(e, &to) {
        S3Failure::NoSuchBucket { .. } => FetchError::NoSuchBucket {
            bucket: bucket.to_string(),
        },
        failure => FetchError::Failed {
            bucket: bucket.to_string(),
            operation,
            failure,
        },
    }
}

/// Read the bucket's lifecycle configuration. `Ok(None)` when the bucket has none
/// (`NoSuchLifecycleConfiguration`).
pub async fn fetch_rules(
    client: &aws_sdk_s3::Client,
    bucket: &str,
) -> Result<Option<Configuration>, FetchError> {
    match client
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) => Ok(Some(convert_output(&out))),
        Err(e) if e.code() == Some("NoSuchLifecycleConfiguration") => Ok(None),
        Err(e) => Err(sdk_error(
            client,
            bucket,
            "GetBucketLifecycleConfiguration",
            &e,
        )),
    }
}

/// Read the bucket's versioning state: `Some(true)` enabled or suspended (versions may exist),
/// `Some(false)` never enabled.
pub async fn fetch_versioned(
    client: &aws_sdk_s3::Client,
    bucket: &str,
) -> Result<Option<bool>, FetchError> {
    match client.get_bucket_versioning().bucket(bucket).send().await {
        Ok(out) => Ok(Some(out.status().is_some())),
        Err(e) => Err(sdk_error(client, bucket, "GetBucketVersioning", &e)),
    }
}

/// List the objects under the store `prefix` (at most `limit` keys, in key order) with size and
/// Last-Modified, and read the tags of the objects under `<prefix>control/` (GetObjectTagging),
/// so the evaluator can compute due dates and tag matches. Read-only.
pub async fn fetch_known_objects(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    limit: usize,
) -> Result<Vec<KnownObject>, FetchError> {
    let mut out = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    'pages: while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_error(client, bucket, "ListObjectsV2", &e))?;
        for o in page.contents() {
            let Some(key) = o.key() else { continue };
            if out.len() >= limit {
                break 'pages;
            }
            out.push(KnownObject {
                key: key.to_string(),
                size: o.size().and_then(|s| u64::try_from(s).ok()),
                last_modified: o.last_modified().and_then(to_utc),
                tags: None,
            });
        }
    }
    let control = format!("{prefix}control/");
    for o in out.iter_mut().filter(|o| o.key.starts_with(&control)) {
        let tags = client
            .get_object_tagging()
            .bucket(bucket)
            .key(&o.key)
            .send()
            .await
            .map_err(|e| sdk_error(client, bucket, "GetObjectTagging", &e))?;
        o.tags = Some(tags.tag_set().iter().map(tag).collect());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_sdk_rules_including_size_filters_moto_drops() {
        let rule = s3::LifecycleRule::builder()
            .id("big")
            .status(s3::ExpirationStatus::Enabled)
            .filter(
                s3::LifecycleRuleFilter::builder()
                    .and(
                        s3::LifecycleRuleAndOperator::builder()
                            .prefix("c/backups/")
                            .object_size_greater_than(131_072)
                            .tags(s3::Tag::builder().key("k").value("v").build().unwrap())
                            .build(),
                    )
                    .build(),
            )
            .expiration(s3::LifecycleExpiration::builder().days(7).build())
            .transitions(
                s3::Transition::builder()
                    .days(0)
                    .storage_class(s3::TransitionStorageClass::Glacier)
                    .build(),
            )
            .build()
            .unwrap();
        let r = convert_rule(&rule);
        assert_eq!(r.id.as_deref(), Some("big"));
        assert_eq!(r.filter.prefix, "c/backups/");
        assert_eq!(r.filter.size_greater_than, Some(131_072));
        assert_eq!(r.filter.tags.len(), 1);
        assert_eq!(
            r.expiration.and_then(|e| e.schedule),
            Some(Schedule::Days(7))
        );
        assert_eq!(r.transitions[0].storage_class, StorageClass::Glacier);
        assert_eq!(r.transitions[0].schedule, Schedule::Days(0));

        #[allow(deprecated)]
        let legacy = s3::LifecycleRule::builder()
            .prefix("old/")
            .status(s3::ExpirationStatus::Disabled)
            .build()
            .unwrap();
        let l = convert_rule(&legacy);
        assert_eq!(l.filter.prefix, "old/");
        assert_eq!(l.status, Status::Disabled);
    }
}
