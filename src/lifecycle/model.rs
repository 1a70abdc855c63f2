//! The lifecycle-rule model every input format is parsed into, and the S3 matching and timing
//! semantics (s3-lifecycle.md §1): plain case-sensitive prefixes, AND of all predicates, exclusive
//! size bounds, days counted from Last-Modified and rounded up to the next 00:00 UTC.

use chrono::{DateTime, Duration, NaiveTime, Utc};
use serde::Serialize;

/// One bucket's lifecycle configuration: every enabled rule applies at once (S3 has no
/// priorities and no exclusions).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Configuration {
    /// The rules, in input order.
    pub rules: Vec<Rule>,
    /// `TransitionDefaultMinimumObjectSize` when the input states it
    /// (`all_storage_classes_128K` or `varies_by_storage_class`). `None` = not stated; the
    /// evaluator then assumes AWS's current default, `all_storage_classes_128K`.
    pub transition_default_minimum_object_size: Option<String>,
}

/// A rule's `Status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Status {
    Enabled,
    Disabled,
    /// Any other or missing value. Treated as enabled (conservative).
    Unknown(String),
}

impl Status {
    /// Whether S3 would run this rule. Unknown statuses count as enabled.
    pub fn is_active(&self) -> bool {
        !matches!(self, Status::Disabled)
    }
}

/// The predicates of a rule's filter, ANDed. An empty filter (no prefix, no tags, no bounds)
/// matches the whole bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// Plain, case-sensitive string prefix; `""` = whole bucket. `*` is a literal character.
    pub prefix: String,
    /// Every tag must be on the object with exactly this value.
    pub tags: Vec<Tag>,
    /// Exclusive lower bound in bytes (`ObjectSizeGreaterThan`).
    pub size_greater_than: Option<u64>,
    /// Exclusive upper bound in bytes (`ObjectSizeLessThan`).
    pub size_less_than: Option<u64>,
}

/// An object tag (`Key` = `Value`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// When an action falls due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Schedule {
    /// N days after Last-Modified (or, for noncurrent actions, after the successor was written),
    /// rounded up to the next 00:00 UTC.
    Days(u32),
    /// Every matching object is eligible from this instant on, for as long as the rule is
    /// enabled (a past date keeps applying to new objects).
    Date(DateTime<Utc>),
}

/// `Expiration` of current versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Expiration {
    /// `None` when the expiration only carries `ExpiredObjectDeleteMarker`.
    pub schedule: Option<Schedule>,
    /// Removes expired delete markers; never deletes data.
    pub expired_object_delete_marker: bool,
}

/// S3 storage classes a transition can target. Parsing is case-insensitive (CloudFormation
/// allows `Glacier`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StorageClass {
    Glacier,
    DeepArchive,
    GlacierIr,
    IntelligentTiering,
    StandardIa,
    OnezoneIa,
    /// Anything else; treated as archiving (unreadable without a restore), to be safe.
    Other(String),
}

impl StorageClass {
    /// Parse a storage-class name, case-insensitively.
    pub fn parse(s: &str) -> StorageClass {
        match s.trim().to_ascii_uppercase().as_str() {
            "GLACIER" => StorageClass::Glacier,
            "DEEP_ARCHIVE" => StorageClass::DeepArchive,
            "GLACIER_IR" => StorageClass::GlacierIr,
            "INTELLIGENT_TIERING" => StorageClass::IntelligentTiering,
            "STANDARD_IA" => StorageClass::StandardIa,
            "ONEZONE_IA" => StorageClass::OnezoneIa,
            _ => StorageClass::Other(s.to_string()),
        }
    }

    /// The S3 name of the class.
    pub fn name(&self) -> &str {
        match self {
            StorageClass::Glacier => "GLACIER",
            StorageClass::DeepArchive => "DEEP_ARCHIVE",
            StorageClass::GlacierIr => "GLACIER_IR",
            StorageClass::IntelligentTiering => "INTELLIGENT_TIERING",
            StorageClass::StandardIa => "STANDARD_IA",
            StorageClass::OnezoneIa => "ONEZONE_IA",
            StorageClass::Other(s) => s,
        }
    }

    /// True when a GET on an object in this class fails with `InvalidObjectState` until a
    /// `RestoreObject` completes. `intelligent_tiering_archive` says whether the bucket has an
    /// Intelligent-Tiering archive-tier configuration (then `INTELLIGENT_TIERING` can archive).
    pub fn needs_restore(&self, intelligent_tiering_archive: bool) -> bool {
        match self {
            StorageClass::Glacier | StorageClass::DeepArchive | StorageClass::Other(_) => true,
            StorageClass::IntelligentTiering => intelligent_tiering_archive,
            StorageClass::GlacierIr | StorageClass::StandardIa | StorageClass::OnezoneIa => false,
        }
    }
}

/// A `Transition` of current versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    pub schedule: Schedule,
    pub storage_class: StorageClass,
}

/// `NoncurrentVersionExpiration`: permanently deletes noncurrent versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NoncurrentExpiration {
    pub noncurrent_days: u32,
    pub newer_noncurrent_versions: Option<u32>,
}

/// `NoncurrentVersionTransition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NoncurrentTransition {
    pub noncurrent_days: u32,
    pub storage_class: StorageClass,
    pub newer_noncurrent_versions: Option<u32>,
}

/// One lifecycle rule, normalised from any input format.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// `ID`; `None` when the input has none.
    pub id: Option<String>,
    pub status: Status,
    pub filter: Filter,
    pub expiration: Option<Expiration>,
    pub transitions: Vec<Transition>,
    pub noncurrent_expiration: Option<NoncurrentExpiration>,
    pub noncurrent_transitions: Vec<NoncurrentTransition>,
    /// `AbortIncompleteMultipartUpload.DaysAfterInitiation`; never touches finished objects.
    pub abort_incomplete_multipart_days: Option<u32>,
    /// Fields whose value is unknown until apply (Terraform `after_unknown`), as paths.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown_fields: Vec<String>,
}

impl Rule {
    /// An enabled rule with a whole-bucket filter and no actions (builder start).
    pub fn new(id: Option<String>) -> Rule {
        Rule {
            id,
            status: Status::Enabled,
            filter: Filter::default(),
            expiration: None,
            transitions: Vec::new(),
            noncurrent_expiration: None,
            noncurrent_transitions: Vec::new(),
            abort_incomplete_multipart_days: None,
            unknown_fields: Vec::new(),
        }
    }

    /// The id for messages: the `ID`, or `#<index>` (1-based) when there is none.
    pub fn label(&self, index: usize) -> String {
        match &self.id {
            Some(id) if !id.is_empty() => id.clone(),
            _ => format!("#{}", index + 1),
        }
    }
}

/// What is known about one object's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeKnowledge {
    /// Exactly this many bytes.
    Exact(u64),
    /// Somewhere in `[min, max]` (inclusive); `max = u64::MAX` for "no upper bound".
    Range(u64, u64),
}

/// What the evaluator knows about an object when matching a filter.
#[derive(Debug, Clone)]
pub struct ObjectFacts<'a> {
    pub key: &'a str,
    pub size: SizeKnowledge,
    /// `None` = tags unknown (kops' S3 VFS writes no tags, so callers usually pass `Some(&[])`
    /// for etcd-manager objects and note the assumption).
    pub tags: Option<&'a [Tag]>,
}

/// The result of matching a filter against an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// The rule applies to the object.
    Yes,
    /// The rule applies only for some of the possible sizes.
    MaybeBySize,
    /// The rule would apply if the object carried the filter's tags (tags unknown or absent).
    OnlyWithTags,
    /// The rule does not apply.
    No,
}

impl Filter {
    /// Whether the filter covers the whole bucket.
    pub fn is_whole_bucket(&self) -> bool {
        self.prefix.is_empty()
            && self.tags.is_empty()
            && self.size_greater_than.is_none()
            && self.size_less_than.is_none()
    }

    /// Match an object: prefix on the exact bytes, every tag, size strictly inside the bounds.
    pub fn matches(&self, obj: &ObjectFacts<'_>) -> Match {
        if !obj.key.starts_with(&self.prefix) {
            return Match::No;
        }
        let size = match obj.size {
            SizeKnowledge::Exact(s) => {
                if self.size_ok(s) {
                    Match::Yes
                } else {
                    return Match::No;
                }
            }
            SizeKnowledge::Range(lo, hi) => {
                // exists s in [lo, hi] with gt < s < lt
                let min = match self.size_greater_than {
                    Some(gt) => lo.max(gt.saturating_add(1)),
                    None => lo,
                };
                let max = match self.size_less_than {
                    Some(0) => return Match::No,
                    Some(lt) => hi.min(lt - 1),
                    None => hi,
                };
                if min > max {
                    return Match::No;
                }
                if self.size_ok(lo) && self.size_ok(hi) {
                    Match::Yes
                } else {
                    Match::MaybeBySize
                }
            }
        };
        if self.tags.is_empty() {
            return size;
        }
        match obj.tags {
            Some(have) if self.tags.iter().all(|t| have.contains(t)) => size,
            _ => Match::OnlyWithTags,
        }
    }

    fn size_ok(&self, s: u64) -> bool {
        self.size_greater_than.is_none_or(|gt| s > gt)
            && self.size_less_than.is_none_or(|lt| s < lt)
    }

    /// A short human description, e.g. `prefix "a/b" AND tag k=v AND size > 100 B`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.prefix.is_empty() {
            parts.push(format!("prefix \"{}\"", self.prefix));
        }
        for t in &self.tags {
            parts.push(format!("tag {}={}", t.key, t.value));
        }
        if let Some(gt) = self.size_greater_than {
            parts.push(format!("size > {gt} B"));
        }
        if let Some(lt) = self.size_less_than {
            parts.push(format!("size < {lt} B"));
        }
        if parts.is_empty() {
            "whole bucket (empty filter)".to_string()
        } else {
            parts.join(" AND ")
        }
    }
}

/// `t + d`, saturating at chrono's representable range instead of panicking (rule days and
/// policy durations come from untrusted input).
pub fn add_saturating(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t.checked_add_signed(d).unwrap_or(if d < Duration::zero() {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

/// Round up to the next 00:00 UTC; an instant exactly at midnight stays put (the AWS guide's
/// worked example never hits that case; s3-lifecycle.md §1.4).
pub fn ceil_to_midnight(t: DateTime<Utc>) -> DateTime<Utc> {
    let midnight = t.date_naive().and_time(NaiveTime::MIN).and_utc();
    if midnight == t {
        t
    } else {
        add_saturating(midnight, Duration::days(1))
    }
}

impl Schedule {
    /// When an object written (or, for noncurrent actions, superseded) at `since` becomes
    /// eligible. A date schedule's instant is itself rounded up to midnight.
    pub fn due(&self, since: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Schedule::Days(d) => {
                ceil_to_midnight(add_saturating(since, Duration::days(i64::from(*d))))
            }
            Schedule::Date(d) => ceil_to_midnight(*d).max(ceil_to_midnight(since)),
        }
    }

    /// The shortest time an object lives before this schedule makes it eligible, for an
    /// object written at `since`. `Date` schedules at or before `since` give under one day.
    pub fn min_lifetime_days(&self) -> Option<u32> {
        match self {
            Schedule::Days(d) => Some(*d),
            Schedule::Date(_) => None,
        }
    }

    /// A human description: `90 days after last write` or `from 2024-01-01`.
    pub fn describe(&self) -> String {
        match self {
            Schedule::Days(1) => "1 day after last write".to_string(),
            Schedule::Days(d) => format!("{d} days after last write"),
            Schedule::Date(d) => format!("every object from {}", d.format("%Y-%m-%d")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(y: i32, m: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, mi, 0).single().unwrap()
    }

    #[test]
    fn due_rounds_up_to_next_midnight_like_the_aws_example() {
        // AWS: created 1/15/2014 10:30 UTC + 3 days -> 1/19/2014 00:00 UTC.
        assert_eq!(
            Schedule::Days(3).due(t(2014, 1, 15, 10, 30)),
            t(2014, 1, 19, 0, 0)
        );
        assert_eq!(
            Schedule::Days(0).due(t(2014, 1, 15, 0, 0)),
            t(2014, 1, 15, 0, 0)
        );
        let date = Schedule::Date(t(2020, 1, 1, 0, 0));
        assert_eq!(date.due(t(2024, 5, 1, 13, 0)), t(2024, 5, 2, 0, 0));
        assert_eq!(date.due(t(2019, 5, 1, 13, 0)), t(2020, 1, 1, 0, 0));
    }

    #[test]
    fn huge_day_counts_saturate_instead_of_panicking() {
        let due = Schedule::Days(u32::MAX).due(t(2024, 1, 1, 10, 0));
        assert_eq!(due, DateTime::<Utc>::MAX_UTC);
        assert_eq!(
            ceil_to_midnight(DateTime::<Utc>::MAX_UTC),
            DateTime::<Utc>::MAX_UTC
        );
    }

    #[test]
    fn prefix_is_plain_and_case_sensitive() {
        let f = Filter {
            prefix: "c/backups".into(),
            ..Filter::default()
        };
        let m = |k: &str| {
            f.matches(&ObjectFacts {
                key: k,
                size: SizeKnowledge::Exact(10),
                tags: Some(&[]),
            })
        };
        assert_eq!(m("c/backups-old/x"), Match::Yes);
        assert_eq!(m("c/Backups/x"), Match::No);
        let star = Filter {
            prefix: "c/*".into(),
            ..Filter::default()
        };
        let facts = ObjectFacts {
            key: "c/backups",
            size: SizeKnowledge::Exact(1),
            tags: Some(&[]),
        };
        assert_eq!(star.matches(&facts), Match::No);
    }

    #[test]
    fn size_bounds_are_exclusive_and_ranges_may_match() {
        let f = Filter {
            size_greater_than: Some(100),
            size_less_than: Some(200),
            ..Filter::default()
        };
        let at = |s| ObjectFacts {
            key: "k",
            size: s,
            tags: Some(&[]),
        };
        assert_eq!(f.matches(&at(SizeKnowledge::Exact(100))), Match::No);
        assert_eq!(f.matches(&at(SizeKnowledge::Exact(101))), Match::Yes);
        assert_eq!(f.matches(&at(SizeKnowledge::Exact(200))), Match::No);
        assert_eq!(f.matches(&at(SizeKnowledge::Range(0, 50))), Match::No);
        assert_eq!(
            f.matches(&at(SizeKnowledge::Range(150, 1000))),
            Match::MaybeBySize
        );
        assert_eq!(f.matches(&at(SizeKnowledge::Range(120, 130))), Match::Yes);
    }

    #[test]
    fn tags_must_all_match_and_extra_tags_are_fine() {
        let f = Filter {
            tags: vec![Tag {
                key: "tier".into(),
                value: "cold".into(),
            }],
            ..Filter::default()
        };
        let tags = [
            Tag {
                key: "tier".into(),
                value: "cold".into(),
            },
            Tag {
                key: "x".into(),
                value: "y".into(),
            },
        ];
        let obj = |tags| ObjectFacts {
            key: "k",
            size: SizeKnowledge::Exact(1),
            tags,
        };
        assert_eq!(f.matches(&obj(Some(&tags))), Match::Yes);
        assert_eq!(f.matches(&obj(Some(&tags[1..]))), Match::OnlyWithTags);
        assert_eq!(f.matches(&obj(None)), Match::OnlyWithTags);
    }
}
