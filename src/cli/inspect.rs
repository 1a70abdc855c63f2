//! `etcdguard inspect <PATH | --store URL [--backup NAME]> [--diff OTHER] [--output text|json]`
//! (issue #22): the Kubernetes content of a snapshot without restoring it.
//!
//! Exit 0 when the snapshot (and OTHER) are valid and counted, 1 when one is not valid, 2 on a
//! usage or read error.

use super::common::{opt, usage_error, Format, StoreOpts};
use crate::inspect::{diff, fresh_markers, Diff, Marker};
use crate::snapshot::inventory::Inventory;
use crate::snapshot::{self, SnapshotReport, VerifyOptions};
use crate::store;
use std::fmt::Write as _;
use std::path::PathBuf;

/// At most this many namespaces are listed in text (JSON lists every one).
const NAMESPACES_SHOWN: usize = 20;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Snapshot file (plain, gzip, zip, tar.gz, zstd, …; `-` reads stdin). Not with --store.
    #[arg(required_unless_present = "store", conflicts_with = "store")]
    pub path: Option<PathBuf>,
    /// Read the backup from this store (`s3://BUCKET/PREFIX`, `file:///DIR` or a directory).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// With --store: the backup to read, named as `status` names it (default: the newest
    /// valid one).
    #[arg(long, value_name = "NAME", requires = "store")]
    pub backup: Option<String>,
    /// Compare with this snapshot: a file, or with --store a backup name of the same store.
    #[arg(long, value_name = "OTHER")]
    pub diff: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Format,
    /// Accept a snapshot without a sha256 trailer (a raw copy of member/snap/db).
    #[arg(long)]
    pub skip_hash_check: bool,
    #[command(flatten)]
    pub opts: StoreOpts,
}

/// One snapshot read for `inspect`.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Inspected {
    /// The file, or `STORE BACKUP`.
    snapshot: String,
    valid: bool,
    revision: Option<i64>,
    live_keys: Option<u64>,
    finished_compact_revision: Option<i64>,
    newest_mod_revision: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inventory: Option<Inventory>,
    fresh_cluster_markers: Vec<Marker>,
    problems: Vec<String>,
}

impl Inspected {
    fn new(snapshot: String, r: SnapshotReport, why_not: Option<String>) -> Inspected {
        let mut problems = r.problems.clone();
        problems.extend(why_not.filter(|w| !problems.contains(w)));
        Inspected {
            snapshot,
            valid: r.valid && problems.is_empty(),
            revision: r.revision,
            live_keys: r.live_keys,
            finished_compact_revision: r.finished_compact_revision,
            newest_mod_revision: r.newest_mod_revision,
            fresh_cluster_markers: fresh_markers(&r),
            inventory: r.inventory,
            problems,
        }
    }
}

pub fn run(args: Args) -> u8 {
    let json = args.output == Format::Json;
    let fail = |msg: &str| usage_error("inspect", msg, json);
    let opts = VerifyOptions {
        skip_hash_check: args.skip_hash_check,
        age: args.opts.age_identity.clone(),
        full_inventory: true,
        ..VerifyOptions::default()
    };
    let read = match (&args.store, &args.path) {
        // Both backups from one listing of the store.
        (Some(url), _) => read_store(&args, url, &opts),
        (None, Some(p)) => read_file(&p.display().to_string(), &opts).and_then(|first| {
            let other = args
                .diff
                .as_deref()
                .map(|o| read_file(o, &opts))
                .transpose()?;
            Ok((first, other))
        }),
        (None, None) => Err("give a snapshot file or --store URL".into()),
    };
    let (first, other) = match read {
        Ok(read) => read,
        Err(e) => return fail(&e),
    };
    let compared = other
        .as_ref()
        .and_then(|o| Some(diff(first.inventory.as_ref()?, o.inventory.as_ref()?)));
    let valid = first.valid && other.as_ref().is_none_or(|o| o.valid);
    let written = if json {
        let mut doc = serde_json::json!({ "snapshot": first });
        if let Some(o) = &other {
            doc["other"] = serde_json::json!(o);
            doc["diff"] = serde_json::json!(compared);
        }
        super::common::print_json(&doc)
    } else {
        let mut text = render(&first);
        if let Some(o) = &other {
            text.push('\n');
            text.push_str(&render_diff(&first, o, compared.as_ref()));
        }
        super::common::write_stdout(text)
    };
    if let Err(e) = written {
        return usage_error("inspect", &e, false);
    }
    if valid {
        super::EXIT_OK
    } else {
        super::EXIT_FAIL
    }
}

fn read_file(path: &str, opts: &VerifyOptions) -> Result<Inspected, String> {
    if path.contains("://") {
        return Err(format!(
            "{path} is a URL: inspect reads a file or stdin (-); for a backup in a store pass --store URL [--backup NAME]"
        ));
    }
    let report = if path == "-" {
        let stdin = std::io::BufReader::with_capacity(1 << 20, std::io::stdin());
        snapshot::verify_reader(stdin, "stdin", opts)
    } else {
        snapshot::verify_path(std::path::Path::new(path), opts)
    };
    let report = report.map_err(|e| e.to_string())?;
    Ok(Inspected::new(path.to_string(), report, None))
}

/// The backup `--backup` names (default the newest valid one) and, with `--diff`, the one it
/// names, from one listing of the store.
fn read_store(
    args: &Args,
    url: &str,
    verify: &VerifyOptions,
) -> Result<(Inspected, Option<Inspected>), String> {
    let parsed = store::StoreUrl::parse(url).map_err(|e| e.to_string())?;
    let mut opts = args.opts.inspect_options(chrono::Utc::now());
    opts.verify = verify.clone();
    let mut names = vec![args.backup.as_deref()];
    names.extend(args.diff.as_deref().map(Some));
    let rt = super::common::runtime()?;
    let read = rt.block_on(store::read_backups(
        &parsed,
        &args.opts.s3_options(),
        &opts,
        &names,
    ));
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    let read = read.map_err(|e| format!("cannot read the backup store {url}: {e}"))?;
    let mut inspected = read.into_iter().map(|b| {
        let name = format!("{url} {}", b.name);
        match b.report {
            Some(r) => Ok(Inspected::new(name, r, b.reason)),
            None => Err(format!(
                "{name}: {}",
                b.reason.as_deref().unwrap_or("could not be read")
            )),
        }
    });
    let first = inspected
        .next()
        .ok_or_else(|| format!("{url}: no backup read"))??;
    Ok((first, inspected.next().transpose()?))
}

/// A byte count in binary units, `-` when unknown.
fn bytes(n: Option<u64>) -> String {
    n.map_or_else(|| "-".into(), super::status::human_size)
}

fn render(i: &Inspected) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "snapshot         {}", i.snapshot);
    let _ = writeln!(
        out,
        "result           {}",
        if i.valid { "VALID" } else { "INVALID" }
    );
    let _ = writeln!(out, "revision         {}", opt(i.revision));
    let _ = writeln!(out, "live keys        {}", opt(i.live_keys));
    let oldest = i.inventory.as_ref().and_then(|v| v.oldest_revision);
    let _ = writeln!(
        out,
        "revisions kept   {} … {} (compacted at {})",
        opt(oldest),
        opt(i.newest_mod_revision),
        opt(i.finished_compact_revision)
    );
    if i.fresh_cluster_markers.is_empty() {
        let _ = writeln!(out, "fresh cluster    no marker");
    }
    for m in &i.fresh_cluster_markers {
        let _ = writeln!(out, "fresh cluster    {}", m.detail);
    }
    for p in &i.problems {
        let _ = writeln!(out, "problem: {p}");
    }
    let Some(inv) = &i.inventory else {
        if i.valid {
            let _ = writeln!(out, "no key bucket: nothing to count");
        }
        return out;
    };
    let mut resources: Vec<_> = inv.resources.iter().collect();
    resources.sort_by_key(|r| (std::cmp::Reverse(r.objects), std::cmp::Reverse(r.bytes)));
    let _ = writeln!(
        out,
        "\n{:<48} {:>9} {:>9} {:>10}",
        "RESOURCE", "OBJECTS", "REVISIONS", "BYTES"
    );
    for r in resources {
        let _ = writeln!(
            out,
            "{:<48} {:>9} {:>9} {:>10}",
            r.resource,
            opt(r.objects),
            r.revisions,
            bytes(r.bytes)
        );
    }
    let mut namespaces: Vec<_> = inv.namespaces.iter().flatten().collect();
    namespaces.sort_by_key(|n| (std::cmp::Reverse(n.objects), std::cmp::Reverse(n.bytes)));
    let _ = writeln!(
        out,
        "\n{:<48} {:>9} {:>10}",
        "NAMESPACE", "OBJECTS", "BYTES"
    );
    for n in namespaces.iter().take(NAMESPACES_SHOWN) {
        let _ = writeln!(
            out,
            "{:<48} {:>9} {:>10}",
            n.namespace,
            opt(n.objects),
            bytes(Some(n.bytes))
        );
    }
    if namespaces.len() > NAMESPACES_SHOWN {
        let _ = writeln!(
            out,
            "… and {} more namespaces (--output json lists them all)",
            namespaces.len() - NAMESPACES_SHOWN
        );
    }
    let _ = writeln!(
        out,
        "\nbytes: values of every revision kept (history since the last compaction included)"
    );
    out
}

fn render_diff(a: &Inspected, b: &Inspected, d: Option<&Diff>) -> String {
    let mut out = format!("compared with    {}\n", b.snapshot);
    let _ = writeln!(
        out,
        "result           {}",
        if b.valid { "VALID" } else { "INVALID" }
    );
    for p in &b.problems {
        let _ = writeln!(out, "problem: {p}");
    }
    let Some(d) = d else {
        let _ = writeln!(out, "no comparison: one of the two has no inventory");
        return out;
    };
    let _ = writeln!(
        out,
        "revision         {} → {}; live keys {} → {}",
        opt(a.revision),
        opt(b.revision),
        opt(a.live_keys),
        opt(b.live_keys)
    );
    for (title, list) in [("RESOURCE", &d.resources), ("NAMESPACE", &d.namespaces)] {
        if list.is_empty() {
            let _ = writeln!(out, "\n{title}: no change");
            continue;
        }
        let _ = writeln!(
            out,
            "\n{:<48} {:<9} {:>9} {:>9} {:>10} {:>10}",
            title, "CHANGE", "OBJECTS", "→", "BYTES", "→"
        );
        for x in list {
            let change = serde_json::to_value(x.change)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{:<48} {:<9} {:>9} {:>9} {:>10} {:>10}",
                x.name,
                change,
                opt(x.before.objects),
                opt(x.after.objects),
                bytes(x.before.bytes),
                bytes(x.after.bytes)
            );
        }
    }
    out
}
