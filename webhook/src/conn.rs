//! Connection guards: no client can hold the server by opening connections and sending nothing.
//!
//! - a connection that completed its TLS handshake must send its first request within
//!   `first_request_timeout`, and a keep-alive connection with no request in flight is closed
//!   after `idle_timeout` without a request (the TLS handshake has its own bound in the accept
//!   loop). Activity is counted in requests, not bytes: HTTP/2 pings move bytes on an idle
//!   connection;
//! - at most `max_connections` are open at once, below the process's file-descriptor limit; at
//!   the cap a new connection evicts the one idle longest, so `/healthz`, `/readyz` and reviews
//!   from the apiserver keep being answered while idle connections pile up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// One open connection's activity.
pub(crate) struct Conn {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last request's start or end.
    last: AtomicU64,
    /// Whether any request arrived.
    read_any: AtomicBool,
    /// Requests being answered.
    in_flight: AtomicUsize,
    /// Notified when the connection is evicted.
    evicted: Notify,
}

impl Conn {
    /// A request arrived on the connection.
    pub(crate) fn begin(&self) {
        self.read_any.store(true, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
    }

    /// Its answer was handed to the connection.
    pub(crate) fn end(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.touch();
    }

    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let now = self.epoch.elapsed();
        now.saturating_sub(Duration::from_millis(self.last.load(Ordering::Relaxed)))
    }

    /// Resolves with the reason when the connection must be closed: no first request within
    /// `first_request`, no traffic within `idle`, or evicted at the connection cap.
    pub(crate) async fn close_reason(
        &self,
        first_request: Duration,
        idle: Duration,
    ) -> &'static str {
        let watch = async {
            loop {
                let (limit, why) = if self.read_any.load(Ordering::Relaxed) {
                    (idle, "idle keep-alive connection closed")
                } else {
                    (first_request, "no request on the connection in time")
                };
                let idle_for = self.idle_for();
                if idle_for >= limit && self.in_flight.load(Ordering::Relaxed) == 0 {
                    return why;
                }
                tokio::time::sleep((limit - idle_for).max(Duration::from_millis(50))).await;
            }
        };
        tokio::select! {
            why = watch => why,
            _ = self.evicted.notified() => "evicted at the connection cap (idle longest)",
        }
    }
}

/// The open connections, capped.
pub(crate) struct Conns {
    cap: usize,
    epoch: Instant,
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
}

impl Conns {
    pub(crate) fn new(cap: usize) -> Conns {
        Conns {
            cap: cap.max(1),
            epoch: Instant::now(),
            next: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Register a new connection; at the cap, the connection idle longest is evicted first.
    pub(crate) fn open(&self) -> (u64, Arc<Conn>) {
        let conn = Arc::new(Conn {
            epoch: self.epoch,
            last: AtomicU64::new(0),
            read_any: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            evicted: Notify::new(),
        });
        conn.touch();
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.len() >= self.cap {
            let oldest = open
                .iter()
                .max_by_key(|(_, c)| c.idle_for())
                .map(|(id, _)| *id);
            if let Some(old) = oldest.and_then(|id| open.remove(&id)) {
                old.evicted.notify_one();
            }
        }
        open.insert(id, conn.clone());
        (id, conn)
    }

    pub(crate) fn close(&self, id: u64) {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// The default connection cap: the soft limit on open files (Linux `/proc/self/limits`) less
/// 64 for everything else the process opens, between 16 and 10,000; 1,000 where unknown.
pub(crate) fn default_max_connections() -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_string))
        });
    match soft.as_deref() {
        Some("unlimited") => 10_000,
        Some(n) => n
            .parse::<usize>()
            .map_or(1_000, |n| n.saturating_sub(64).clamp(16, 10_000)),
        None => 1_000,
    }
}

/// Accept errors (EMFILE under pressure, aborted handshakes) logged at most once per interval,
/// with the number suppressed in between.
pub(crate) struct RateLimitedLog {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    pub(crate) fn new(every: Duration) -> Self {
        RateLimitedLog {
            every,
            last: None,
            suppressed: 0,
        }
    }

    pub(crate) fn accept_failed(&mut self, e: &std::io::Error) {
        if self.last.is_some_and(|t| t.elapsed() < self.every) {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(error = %e, suppressed = self.suppressed, "accept failed");
        self.last = Some(Instant::now());
        self.suppressed = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_evicts_the_connection_idle_longest() {
        let conns = Conns::new(2);
        let (a, ca) = conns.open();
        std::thread::sleep(Duration::from_millis(20));
        let (_b, cb) = conns.open();
        cb.touch();
        let (_c, _) = conns.open();
        assert_eq!(conns.len(), 2);
        // `a` was idle longest: it was removed and told so.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let why = rt.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(1),
                ca.close_reason(Duration::from_secs(60), Duration::from_secs(60)),
            )
            .await
        });
        assert_eq!(why, Ok("evicted at the connection cap (idle longest)"));
        conns.close(a); // already gone: a no-op
        assert_eq!(conns.len(), 2);
    }

    #[test]
    fn the_default_cap_is_below_the_descriptor_limit() {
        let cap = default_max_connections();
        assert!((16..=10_000).contains(&cap), "{cap}");
    }
}
