//! Metric names (as exposed at `/metrics`) and the webhook's own request metrics.
//!
//! The names are constants so that the root crate's fact gauges, the PrometheusRule in
//! `deploy/` and the tests all agree. prometheus-client appends `_total` to counters: register
//! a counter under the name without that suffix (see [`counter_base_name`]).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Counter, labels `decision` (`allowed`, `denied`, `timed_out`, `invalid`) and `kind`.
pub const ADMISSION_REQUESTS_TOTAL: &str = "etcdguard_admission_requests_total";
/// Histogram of the time from a complete request body to the response, in seconds.
pub const ADMISSION_DURATION_SECONDS: &str = "etcdguard_admission_duration_seconds";
/// Counter of certificate reloads, label `result` (`ok`, `error`).
pub const TLS_RELOADS_TOTAL: &str = "etcdguard_tls_reloads_total";
/// Gauge (root crate): Unix time of the newest valid snapshot.
pub const LAST_SNAPSHOT_TIMESTAMP_SECONDS: &str = "etcdguard_last_snapshot_timestamp_seconds";
/// Gauge (root crate): age of the newest valid snapshot, in seconds.
pub const SNAPSHOT_AGE_SECONDS: &str = "etcdguard_snapshot_age_seconds";
/// Gauge (root crate): 1 when the newest snapshot was verified restorable, else 0.
pub const SNAPSHOT_VALID: &str = "etcdguard_snapshot_valid";
/// Gauge (root crate): 1 when etcd-manager control files are present and well-formed, else 0.
pub const CONTROL_FILES_PRESENT: &str = "etcdguard_control_files_present";
/// Gauge (root crate), labels `store` and `state`: 1 for the continuity state of the store's
/// newest backups (`continuous`, `collapsed`, `restored`, `rolled-back`, `new-cluster`,
/// `not-checked`), 0 for the others.
pub const SNAPSHOT_CONTINUITY: &str = "etcdguard_snapshot_continuity";
/// Counter (root crate): failed background fact refreshes.
pub const FACT_REFRESH_ERRORS_TOTAL: &str = "etcdguard_fact_refresh_errors_total";
/// Gauge (root crate): Unix time of the last successful fact refresh.
pub const LAST_FACT_REFRESH_TIMESTAMP_SECONDS: &str =
    "etcdguard_last_fact_refresh_timestamp_seconds";

/// Every metric name the project exposes (webhook and root-crate facts), for alert-rule checks.
pub const ALL: &[&str] = &[
    ADMISSION_REQUESTS_TOTAL,
    ADMISSION_DURATION_SECONDS,
    TLS_RELOADS_TOTAL,
    LAST_SNAPSHOT_TIMESTAMP_SECONDS,
    SNAPSHOT_AGE_SECONDS,
    SNAPSHOT_VALID,
    CONTROL_FILES_PRESENT,
    SNAPSHOT_CONTINUITY,
    FACT_REFRESH_ERRORS_TOTAL,
    LAST_FACT_REFRESH_TIMESTAMP_SECONDS,
];

/// The name to pass to `Registry::register` for a counter exposed as `name` (strips `_total`).
pub fn counter_base_name(name: &str) -> &str {
    name.strip_suffix("_total").unwrap_or(name)
}

/// Labels of [`ADMISSION_REQUESTS_TOTAL`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `allowed`, `denied`, `timed_out` or `invalid`.
    pub decision: &'static str,
    /// The request's kind (bounded: anything not a plain identifier becomes `other`).
    pub kind: String,
}

/// Labels of [`TLS_RELOADS_TOTAL`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `ok` or `error`.
    pub result: &'static str,
}

/// The webhook's own metrics.
#[derive(Clone)]
pub struct WebhookMetrics {
    /// Requests by decision and kind.
    pub requests: Family<RequestLabels, Counter>,
    /// Handling duration.
    pub duration: Histogram,
    /// Certificate reloads.
    pub tls_reloads: Family<ReloadLabels, Counter>,
}

impl WebhookMetrics {
    /// Create the metrics and register them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        // 100 µs … ~3.3 s.
        let duration = Histogram::new([
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            2.5, 5.0,
        ]);
        let tls_reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            counter_base_name(ADMISSION_REQUESTS_TOTAL),
            "Admission reviews answered, by decision and kind",
            requests.clone(),
        );
        registry.register(
            ADMISSION_DURATION_SECONDS,
            "Time to answer an admission review, in seconds",
            duration.clone(),
        );
        registry.register(
            counter_base_name(TLS_RELOADS_TOTAL),
            "Serving certificate reload attempts, by result",
            tls_reloads.clone(),
        );
        WebhookMetrics {
            requests,
            duration,
            tls_reloads,
        }
    }

    /// Count one answered request.
    pub fn observe(&self, decision: &'static str, kind: &str, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                decision,
                kind: bounded_kind(kind),
            })
            .inc();
        self.duration.observe(seconds);
    }
}

/// Keep the `kind` label bounded: a Kubernetes kind is an identifier of at most 63 chars.
fn bounded_kind(kind: &str) -> String {
    if kind.is_empty() {
        "unknown".to_string()
    } else if kind.len() <= 63 && kind.chars().all(|c| c.is_ascii_alphanumeric()) {
        kind.to_string()
    } else {
        "other".to_string()
    }
}
