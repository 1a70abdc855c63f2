//! CPU cost of the gate path of one admission review, without TLS, HTTP or the facts refresh:
//! the webhook's body parse (the objects read into `Doc`s in the same pass), then what
//! `etcdguard serve` does with it (policy matching on the watched paths, change
//! classification, the decision over facts held in memory). A profiling aid next to `scripts/bench-webhook`, which measures the server.
//!
//! Two measurements:
//! - stages, deciding on unknown facts: parse, docs + matching, classification, decision;
//! - the whole handler as `etcdguard serve` runs it (minus TLS and HTTP): parse, the gate's
//!   `review` over facts refreshed from the sample kops store (`samples/kops-store`, every
//!   backup counted fresh, so reviews are allowed as in a healthy cluster), the response review
//!   built and serialized.
//!
//! Usage: `cargo run --release --example gate_cpu [REVIEW.json] [N]`
//! (default: `webhook/tests/fixtures/kcp-update.json`, 200000 reviews). With
//! `GATE_CPU_SERVE_ONLY=1` only the handler is measured (for `perf record`).

use mimalloc::MiMalloc;
use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use clap::Parser;
use etcdguard::cli::facts::FactArgs;
use etcdguard::cli::serve::{EtcdGate, ReviewDoc};
use etcdguard::gate::{self, Fact, Facts};
use etcdguard::policy::PolicySet;
use etcdguard_webhook::Gate;

/// The binary's allocator (mimalloc, src/main.rs), counting allocations and reallocations:
/// the counts per stage are printed next to the times, since under load each one costs more
/// than in this single-threaded loop.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        unsafe { MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        unsafe { MiMalloc.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        unsafe { MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The fact flags `scripts/bench-webhook` gives `etcdguard serve`.
#[derive(Parser)]
struct ServeFacts {
    #[command(flatten)]
    facts: FactArgs,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| "webhook/tests/fixtures/kcp-update.json".to_string());
    let n: u32 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(200_000);
    let body = std::fs::read(&path)?;
    let policies = PolicySet::embedded()?;
    let facts = Facts {
        stores: vec![Fact::unknown("gate_cpu: no store")],
        store_urls: vec!["s3://gate-cpu/none".to_string()],
        etcd: Fact::not_checked("gate_cpu"),
        lifecycle: Fact::not_checked("gate_cpu"),
        cached: vec![],
    };
    let mut stages = [0f64; 5];
    let mut allowed = 0u32;
    let n1 = if std::env::var_os("GATE_CPU_SERVE_ONLY").is_some() {
        1
    } else {
        n
    };
    for _ in 0..n1 {
        let t0 = Instant::now();
        let parsed = etcdguard_webhook::review::parse_review_as::<ReviewDoc>(&body)?;
        let t1 = Instant::now();
        let req = etcdguard::cli::serve::policy_request(&parsed.view)?;
        let t1b = Instant::now();
        let matches = policies.matching(&req);
        let t2 = Instant::now();
        stages[4] += (t1b - t1).as_secs_f64();
        let change = etcdguard::cli::serve::object_change(&req);
        let t3 = Instant::now();
        let d = gate::request::decide_matched(
            &policies,
            Some(&req),
            matches,
            &facts,
            &change,
            gate::request::Overrides {
                detail: gate::Detail::Problems,
                ..Default::default()
            },
            chrono::Utc::now(),
        );
        let t4 = Instant::now();
        allowed += u32::from(d.outcome.verdict != gate::Verdict::Refuse);
        for (s, d) in stages.iter_mut().zip([t1 - t0, t2 - t1, t3 - t2, t4 - t3]) {
            *s += d.as_secs_f64();
        }
    }
    let per = |s: f64| s * 1e6 / f64::from(n);
    println!(
        "{path}: {n} reviews ({allowed} allowed), µs per review: parse (objects included) {:.2}, \
         request+matching {:.2}, classification {:.2}, decision {:.2}, total {:.2}",
        per(stages[0]),
        per(stages[1]),
        per(stages[2]),
        per(stages[3]),
        per(stages[..4].iter().sum())
    );
    println!("  of which the policy request {:.2}", per(stages[4]));

    // The whole handler over real facts.
    let args = ServeFacts::try_parse_from([
        "serve",
        "--store",
        "samples/kops-store/backups/etcd/main",
        "--max-age",
        "100000h",
    ])?
    .facts;
    let overrides = gate::request::Overrides {
        max_age: args.max_age,
        ..Default::default()
    };
    let etcd_gate = EtcdGate::new(
        PolicySet::embedded()?,
        args,
        etcdguard::cli::serve::RefreshBounds {
            interval: std::time::Duration::from_secs(3600),
            timeout: std::time::Duration::from_secs(300),
            stale_after: std::time::Duration::from_secs(24 * 3600),
        },
        overrides,
    );
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(etcd_gate.refresh());
    if !etcd_gate.ready() {
        return Err("gate_cpu: the fact refresh over samples/kops-store failed".into());
    }
    let mut stages = [0f64; 3];
    let mut allocs = [0u64; 3];
    let mut allowed = 0u32;
    let mut bytes = 0usize;
    for _ in 0..n {
        let a0 = ALLOCS.load(Relaxed);
        let t0 = Instant::now();
        let parsed = etcdguard_webhook::review::parse_review_as::<ReviewDoc>(&body)?;
        let t1 = Instant::now();
        let a1 = ALLOCS.load(Relaxed);
        let d = etcd_gate.review(&parsed.view);
        let t2 = Instant::now();
        let a2 = ALLOCS.load(Relaxed);
        let response = etcdguard_webhook::review::build_response(
            &parsed.view.uid,
            &d,
            &[("decision", if d.allowed { "allowed" } else { "denied" })],
        );
        bytes += serde_json::to_vec(&response)?.len();
        let t3 = Instant::now();
        let a3 = ALLOCS.load(Relaxed);
        for (s, d) in allocs.iter_mut().zip([a1 - a0, a2 - a1, a3 - a2]) {
            *s += d;
        }
        allowed += u32::from(d.allowed);
        for (s, d) in stages.iter_mut().zip([t1 - t0, t2 - t1, t3 - t2]) {
            *s += d.as_secs_f64();
        }
    }
    println!(
        "serve handler over sample-store facts: {n} reviews ({allowed} allowed, {} response bytes \
         each), µs per review: parse {:.2}, gate {:.2}, response {:.2}, total {:.2}",
        bytes / n as usize,
        per(stages[0]),
        per(stages[1]),
        per(stages[2]),
        per(stages.iter().sum())
    );
    let n64 = u64::from(n);
    println!(
        "  allocations per review: parse {}, gate {}, response {}, total {}",
        allocs[0] / n64,
        allocs[1] / n64,
        allocs[2] / n64,
        allocs.iter().sum::<u64>() / n64
    );
    Ok(())
}
