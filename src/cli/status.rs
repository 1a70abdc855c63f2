//! `etcdguard status --store URL [--layout NAME] [--output text|json] [--s3-endpoint URL]
//! [--s3-path-style] [--now RFC3339]` (issue #3): the newest backup, the newest valid backup,
//! backup count and interval, control files and their meaning, ignored objects.
//!
//! Exit 0 when the store could be read (whatever it holds), 2 when it could not.

use super::common::{parse_now, Format, StoreArgs};
use crate::store::{self, BackupFacts, StoreFacts, Validity};
use std::fmt::Write as _;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Format,
    /// Evaluate ages at this time instead of the clock (RFC 3339, e.g. 2026-11-23T09:00:00Z).
    #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
    pub now: Option<chrono::DateTime<chrono::Utc>>,
    /// The newest valid backup should be younger than this (said, not an exit code).
    #[arg(long, value_name = "DURATION", default_value = "3h", value_parser = super::facts::parse_max_age)]
    pub max_age: std::time::Duration,
}

/// Whether the newest valid backup is recent: what `status` says about age.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recency {
    /// `--max-age`.
    pub max_age: String,
    /// Age of the newest valid backup (negative: dated in the future).
    pub newest_valid_age_seconds: Option<i64>,
    /// The newest valid backup is younger than `--max-age` (and not dated in the future).
    pub within_max_age: bool,
    /// The newest backup is older than three observed intervals (and `--max-age`): whatever
    /// took backups has stopped.
    pub backups_stopped: bool,
    /// The newest valid backup is dated more than the allowed clock skew in the future.
    pub future_dated: bool,
    /// One sentence saying all of that.
    pub message: String,
}

/// Judge the age of the newest valid backup against `max_age` and the observed interval.
pub fn recency(f: &StoreFacts, max_age: std::time::Duration) -> Recency {
    let max = chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX);
    let max_h = humantime::format_duration(max_age).to_string();
    let age = f.newest_valid.as_ref().map(|b| b.age_seconds);
    let newest_age = f.newest.as_ref().map(|b| b.age_seconds);
    let future_dated = age.is_some_and(|a| -a > crate::gate::MAX_CLOCK_SKEW.num_seconds());
    let within = !future_dated && age.is_some_and(|a| a <= max.num_seconds());
    let stopped_after = f
        .backups
        .median_interval_seconds
        .filter(|m| *m > 0)
        .map(|m| m.saturating_mul(3));
    let backups_stopped = match (newest_age, stopped_after) {
        (Some(a), Some(bound)) => a > bound && a > max.num_seconds(),
        _ => false,
    };
    let mut message = match age {
        None => "no valid backup: nothing to restore".to_string(),
        Some(_) if future_dated => format!(
            "the newest valid backup is dated {} in the future: a clock or naming fault makes its age meaningless",
            human_age(-age.unwrap_or_default()).trim_end_matches(" old")
        ),
        Some(a) if within => format!("the newest valid backup is {} (within --max-age {max_h})", human_age(a)),
        Some(a) => format!("the newest valid backup is {}: OLDER than --max-age {max_h}", human_age(a)),
    };
    if backups_stopped {
        let _ = write!(
            message,
            "; backups appear to have stopped (none for {}, more than 3 observed intervals)",
            human_age(newest_age.unwrap_or_default()).trim_end_matches(" old")
        );
    }
    Recency {
        max_age: max_h,
        newest_valid_age_seconds: age,
        within_max_age: within,
        backups_stopped,
        future_dated,
        message,
    }
}

/// Stores read at once when `status` is given several (each one's backups are verified in
/// turn, and one snapshot is verified at a time).
const STORES_AT_ONCE: usize = 8;

/// What `status` learned of one store: its text and JSON document, or why it is unreadable.
struct Shown {
    text: String,
    json: serde_json::Value,
    /// The store could not be read (exit 2).
    failed: bool,
}

/// Run `status`; returns the exit code.
pub fn run(args: Args) -> u8 {
    let json = args.output == Format::Json;
    let stores = match args.store.stores() {
        Ok(s) => s,
        Err(e) => return super::common::usage_error("status", &e, json),
    };
    let now = args.now.unwrap_or_else(chrono::Utc::now);
    let opts = args.store.inspect_options(now);
    let s3 = args.store.s3_options();
    let rt = match super::common::runtime() {
        Ok(rt) => rt,
        Err(e) => return super::common::usage_error("status", &e, json),
    };
    let results = rt.block_on(async {
        use futures_util::StreamExt;
        futures_util::stream::iter(&stores)
            .map(|store| async {
                let url = store::StoreUrl::parse(store)?;
                store::inspect_all(&url, &s3, &opts).await
            })
            .buffered(STORES_AT_ONCE)
            .collect::<Vec<_>>()
            .await
    });
    // A verifier thread stuck on a dead connection must not keep the process alive.
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    let found: Vec<(String, Vec<String>)> = stores
        .iter()
        .zip(&results)
        .filter_map(|(s, r)| Some((s.clone(), r.as_ref().ok()?.series_found.clone())))
        .collect();
    let all_listed = found.len() == stores.len();
    if let Some(e) = store::unknown_series(&opts.series, &found, all_listed) {
        return super::common::usage_error("status", &e, json);
    }
    let shown: Vec<Shown> = stores
        .iter()
        .zip(results)
        .map(|(store, r)| match r {
            Ok(all) => show(store, all, args.max_age),
            Err(e) => {
                let msg = e.to_string();
                super::common::print_stderr(format_args!(
                    "etcdguard status: cannot read the backup store {store}: {msg}"
                ));
                Shown {
                    text: format!("{store}: cannot read the backup store: {msg}\n"),
                    json: serde_json::json!({ "store": store, "error": msg }),
                    failed: true,
                }
            }
        })
        .collect();
    let code = if shown.iter().any(|s| s.failed) {
        super::EXIT_USAGE
    } else {
        super::EXIT_OK
    };
    let written = match (<[Shown; 1]>::try_from(shown), args.output) {
        // One store: its document or text as ever (an unreadable one: text on stderr only).
        (Ok([one]), Format::Json) => super::common::print_json(&one.json),
        (Ok([one]), Format::Text) if one.failed => Ok(()),
        (Ok([one]), Format::Text) => super::common::write_stdout(one.text),
        // Several: `{"stores": [...]}`, or each store's text under its name.
        (Err(all), Format::Json) => super::common::print_json(&serde_json::json!({
            "stores": all.into_iter().map(|s| s.json).collect::<Vec<_>>(),
        })),
        (Err(all), Format::Text) => super::common::write_stdout(
            all.iter()
                .zip(&stores)
                .map(|(s, store)| format!("== {store} ==\n{}", s.text))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    };
    match written {
        Ok(()) => code,
        Err(e) => super::common::usage_error("status", &e, false),
    }
}

/// One readable store's text and JSON: each series judged on its own.
fn show(store: &str, all: store::Inspected, max_age: std::time::Duration) -> Shown {
    let judged: Vec<(StoreFacts, Recency)> = all
        .facts
        .into_iter()
        .map(|f| {
            let r = recency(&f, max_age);
            (f, r)
        })
        .collect();
    let docs: Vec<serde_json::Value> = judged
        .iter()
        .map(|(f, r)| {
            let mut v = serde_json::to_value(f).unwrap_or_default();
            v["recency"] = serde_json::to_value(r).unwrap_or_default();
            v
        })
        .collect();
    // One series: the store's document as ever; several: `{"series": [...]}`.
    let json = match <[serde_json::Value; 1]>::try_from(docs) {
        Ok([one]) => one,
        Err(docs) => serde_json::json!({
            "store": store,
            "seriesFound": all.series_found,
            "series": docs,
        }),
    };
    let texts: Vec<String> = judged.iter().map(|(f, r)| render_text(f, r)).collect();
    let head = if all.series_found.is_empty() {
        String::new()
    } else {
        format!(
            "{store} holds {} backup series ({}), each judged on its own:\n\n",
            all.series_found.len(),
            all.series_found.join(", ")
        )
    };
    Shown {
        text: head + &texts.join("\n"),
        json,
        failed: false,
    }
}

/// Human duration such as `4h 12m` (seconds dropped above one hour).
pub fn human_age(secs: i64) -> String {
    let future = secs < 0;
    let s = secs.unsigned_abs();
    let (d, h, m, sec) = (s / 86400, (s % 86400) / 3600, (s % 3600) / 60, s % 60);
    let body = if d > 0 {
        format!("{d}d {h}h {m}m")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {sec}s")
    } else {
        format!("{sec}s")
    };
    if future {
        format!("{body} in the future")
    } else {
        format!("{body} old")
    }
}

/// Bytes in binary units, one decimal (`2.0 KiB`, `10 B`).
pub(super) fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS.get(u).copied().unwrap_or("B"))
    }
}

fn backup_lines(out: &mut String, b: &BackupFacts) {
    let size = b
        .size
        .map(human_size)
        .unwrap_or_else(|| "size unknown".into());
    let _ = writeln!(
        out,
        "  {}  {}  {}  {}{}",
        b.name,
        b.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        human_age(b.age_seconds),
        size,
        if b.possibly_dirty {
            "  (__POSSIBLY_DIRTY__)"
        } else {
            ""
        }
    );
    let verdict = match b.validity {
        Validity::Valid => "VALID",
        Validity::Invalid => "INVALID",
        Validity::Unknown => "UNKNOWN",
    };
    let mut line = format!("    {verdict}");
    if let Some(r) = &b.report {
        let _ = write!(
            line,
            ": revision {}, {} keys, sha256 {}, {}",
            r.revision.map_or("?".into(), |v| v.to_string()),
            r.total_key.map_or("?".into(), |v| v.to_string()),
            format!("{:?}", r.sha256).to_lowercase(),
            format!("{:?}", r.container).to_lowercase()
        );
    }
    if let Some(m) = &b.meta {
        let _ = write!(
            line,
            ", etcd {}",
            if m.etcd_version.is_empty() {
                "?"
            } else {
                &m.etcd_version
            }
        );
    }
    let _ = writeln!(out, "{line}");
    if let Some(reason) = &b.reason {
        let _ = writeln!(out, "    reason: {reason}");
    }
    if let Some(c) = &b.chain {
        let _ = writeln!(
            out,
            "    full snapshot {} (revision {}); {} of {} deltas applied, restore point revision {}{}",
            c.full_time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            c.full_revision,
            c.applied,
            c.listed,
            c.end_revision,
            match &c.end_key {
                Some(k) => format!(" ({k})"),
                None => String::new(),
            }
        );
        if c.without_sha256 > 0 {
            let _ = writeln!(
                out,
                "    {} deltas carry no SHA-256 (written by etcd-backup-restore before 0.3.0)",
                c.without_sha256
            );
        }
        if let Some(br) = &c.broken {
            let _ = writeln!(out, "    delta chain BROKEN at {}: {}", br.key, br.reason);
        }
    }
}

/// Render [`StoreFacts`] as text.
pub fn render_text(f: &StoreFacts, recency: &Recency) -> String {
    let mut out = String::new();
    let layout = f
        .layout
        .map_or("none recognised".to_string(), |l| l.to_string());
    if let Some(s) = &f.series {
        let _ = writeln!(out, "series:  {s}");
    }
    let _ = writeln!(
        out,
        "store:   {} (layout {layout}, {})",
        f.store, f.layout_source
    );
    let _ = writeln!(
        out,
        "now:     {}",
        f.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    match &f.newest {
        None => match &f.no_backups {
            Some(n) => {
                let _ = writeln!(out, "newest backup: none found");
                let _ = writeln!(out, "  {}", n.summary(&f.store));
                let _ = writeln!(out, "  next: {}", n.advice());
            }
            None => {
                let _ = writeln!(out, "newest backup: none found");
            }
        },
        Some(b) => {
            let _ = writeln!(out, "newest backup:");
            backup_lines(&mut out, b);
        }
    }
    match (&f.newest, &f.newest_valid) {
        (Some(n), Some(v)) if n.name == v.name => {
            let _ = writeln!(
                out,
                "newest valid backup: the newest ({})",
                human_age(v.age_seconds)
            );
        }
        (_, Some(v)) => {
            let _ = writeln!(out, "newest valid backup:");
            backup_lines(&mut out, v);
        }
        (Some(_), None) => {
            let _ = writeln!(
                out,
                "newest valid backup: NONE among the {} newest checked{}",
                f.walk_back.checked,
                if f.walk_back.limit_reached {
                    format!(
                        " (walk-back limit {} reached; older backups not checked)",
                        f.walk_back.limit
                    )
                } else {
                    String::new()
                }
            );
        }
        (None, None) => {}
    }
    if f.checked.len() > 2 {
        let _ = writeln!(out, "also checked:");
        for b in f
            .checked
            .iter()
            .skip(1)
            .take(f.checked.len().saturating_sub(2))
        {
            backup_lines(&mut out, b);
        }
    }
    let st = &f.backups;
    let since = st
        .listed_since
        .map_or("in the whole store".to_string(), |t| {
            format!(
                "since {}",
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )
        });
    let _ = write!(out, "backups: {} listed {since}", st.count);
    if let (Some(med), Some(max)) = (st.median_interval_seconds, st.max_gap_seconds) {
        let _ = write!(
            out,
            "; interval median {}, largest gap {}",
            human_age(med).trim_end_matches(" old"),
            human_age(max).trim_end_matches(" old")
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "recency: {}", recency.message);
    match f.continuity.state {
        crate::continuity::State::NotChecked => {
            let _ = writeln!(out, "continuity: {}", f.continuity.message);
        }
        state => {
            let _ = writeln!(
                out,
                "continuity ({}): {}",
                state.as_str(),
                f.continuity.message
            );
        }
    }
    if let Some(c) = &f.control {
        let _ = writeln!(out, "control files:");
        let _ = writeln!(
            out,
            "  etcd-cluster-spec:    {}",
            describe(&c.spec, |s| format!(
                "present (memberCount {}, etcdVersion {})",
                s.member_count,
                if s.etcd_version.is_empty() {
                    "unset"
                } else {
                    &s.etcd_version
                }
            ))
        );
        let _ = writeln!(
            out,
            "  etcd-cluster-created: {}",
            describe(&c.created, |v| format!(
                "present (created {})",
                v.created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ))
        );
        if recency.backups_stopped {
            let _ = writeln!(
                out,
                "  meaning: {} — but no backup was taken for {}: find out why before trusting it",
                c.meaning,
                human_age(f.newest.as_ref().map_or(0, |b| b.age_seconds)).trim_end_matches(" old")
            );
        } else {
            let _ = writeln!(out, "  meaning: {}", c.meaning);
        }
        for p in &c.problems {
            let _ = writeln!(out, "  problem: {p}");
        }
    }
    if !f.ignored.is_empty() {
        let _ = writeln!(out, "ignored objects: {}", f.ignored.len());
        for i in f.ignored.iter().take(20) {
            let _ = writeln!(out, "  {}: {}", i.key, i.reason);
        }
        if f.ignored.len() > 20 {
            let _ = writeln!(out, "  … {} more (see --output json)", f.ignored.len() - 20);
        }
    }
    for u in &f.unknowns {
        let _ = writeln!(out, "unknown: {u}");
    }
    if let Some(n) = f.s3_requests {
        let _ = writeln!(out, "s3 requests: {n}");
    }
    out
}

fn describe<T>(s: &store::control::FileState<T>, present: impl Fn(&T) -> String) -> String {
    use store::control::FileState;
    match s {
        FileState::Missing => "MISSING".to_string(),
        FileState::Empty => "EMPTY".to_string(),
        FileState::Unparseable { reason } => format!("UNPARSEABLE ({reason})"),
        FileState::Present { value } => present(value),
        FileState::Unknown { reason } => format!("UNKNOWN ({reason})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_naturally() {
        assert_eq!(human_age(4 * 3600 + 12 * 60 + 5), "4h 12m old");
        assert_eq!(human_age(59), "59s old");
        assert_eq!(human_age(-90), "1m 30s in the future");
        assert_eq!(human_age(2 * 86400 + 3600), "2d 1h 0m old");
        assert_eq!(human_size(2048), "2.0 KiB");
        assert_eq!(human_size(10), "10 B");
    }
}
