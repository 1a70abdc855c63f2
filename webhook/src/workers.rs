//! Connection threads: each runs its own single-threaded tokio runtime, and every accepted
//! connection is served, start to end, on one of them.
//!
//! Why: on tokio's multi-threaded runtime a connection's task can move between workers, and a
//! worker that finds work wakes an idle sibling to share it. For a webhook, whose requests are
//! short and CPU-bound once the body is in, that cross-thread traffic (futex wakeups, work
//! stealing, cache lines moving between cores) cost more than the decision itself at peak load:
//! measured in `docs/benchmarks.md` ("connection threads"). A connection pinned to one thread
//! keeps its TLS state, buffers and the gate's data on one core and never wakes another thread.
//!
//! The cost: no work stealing. A slow request delays the other requests of the connections on
//! the same thread (each review is bounded by its budget; the gate must be fast, see
//! [`crate::Gate`]), and an imbalance of busy connections is not evened out after accept: new
//! connections go to the thread with the fewest open connections.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

/// The pool. With zero threads, connections run on the caller's runtime (`tokio::spawn`).
pub(crate) struct ConnectionThreads {
    threads: Vec<Worker>,
}

struct Worker {
    handle: Handle,
    /// Connections currently open on this thread.
    open: Arc<AtomicUsize>,
    /// Dropped to stop the thread's runtime.
    stop: Option<oneshot::Sender<()>>,
    join: Option<std::thread::JoinHandle<()>>,
}

/// Decrements a worker's open-connection count when the connection's future ends or is dropped.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ConnectionThreads {
    /// Start `n` threads (named `etcdguard-conn-<i>`), each with a current-thread runtime with
    /// I/O and timers enabled.
    pub(crate) fn start(n: usize) -> std::io::Result<Self> {
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let rt = Builder::new_current_thread().enable_all().build()?;
            let handle = rt.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            let join = std::thread::Builder::new()
                .name(format!("etcdguard-conn-{i}"))
                .spawn(move || {
                    // Spawned connection tasks run while this thread is inside `block_on`. When
                    // the sender is dropped the runtime is dropped too, cancelling what is left.
                    rt.block_on(async move {
                        let _ = stopped.await;
                    });
                })?;
            threads.push(Worker {
                handle,
                open: Arc::new(AtomicUsize::new(0)),
                stop: Some(stop),
                join: Some(join),
            });
        }
        Ok(ConnectionThreads { threads })
    }

    /// Number of threads (0: connections run on the caller's runtime).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.threads.len()
    }

    /// Index of the thread with the fewest open connections (the first of equals).
    fn least_busy(&self) -> Option<usize> {
        self.threads
            .iter()
            .enumerate()
            .min_by_key(|(_, w)| w.open.load(Ordering::Relaxed))
            .map(|(i, _)| i)
    }

    /// Run one connection's future to completion on the least busy thread, or on the caller's
    /// runtime when there are no threads. Must be called from within a tokio runtime.
    pub(crate) fn spawn<F>(&self, conn: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match self.least_busy() {
            None => {
                tokio::spawn(conn);
            }
            Some(i) => {
                let w = &self.threads[i];
                w.open.fetch_add(1, Ordering::Relaxed);
                let open = Open(w.open.clone());
                w.handle.spawn(async move {
                    let _open = open;
                    conn.await
                });
            }
        }
    }

    /// Stop every thread (cancelling connections still open on them) and wait for them to exit.
    /// Call after the graceful shutdown has drained what it could.
    pub(crate) async fn stop(mut self) {
        let joins: Vec<_> = self
            .threads
            .iter_mut()
            .filter_map(|w| {
                w.stop.take();
                w.join.take()
            })
            .collect();
        if joins.is_empty() {
            return;
        }
        let _ = tokio::task::spawn_blocking(move || {
            for j in joins {
                let _ = j.join();
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn connections_go_to_the_least_busy_thread_and_run_there() {
        let pool = ConnectionThreads::start(2).unwrap();
        assert_eq!(pool.len(), 2);
        let (names_tx, mut names_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut releases = Vec::new();
        // Four long-lived "connections": they spread two per thread.
        for _ in 0..4 {
            let (release, released) = oneshot::channel::<()>();
            releases.push(release);
            let names = names_tx.clone();
            pool.spawn(async move {
                let name = std::thread::current().name().unwrap_or("").to_string();
                names.send(name).unwrap();
                let _ = released.await;
            });
        }
        let mut names = Vec::new();
        for _ in 0..4 {
            names.push(names_rx.recv().await.unwrap());
        }
        names.sort();
        assert_eq!(
            names,
            [
                "etcdguard-conn-0",
                "etcdguard-conn-0",
                "etcdguard-conn-1",
                "etcdguard-conn-1"
            ]
        );
        let open: Vec<usize> = pool
            .threads
            .iter()
            .map(|w| w.open.load(Ordering::Relaxed))
            .collect();
        assert_eq!(open, [2, 2]);
        // Close them all, then make thread 1 the busier one: the next connection goes to 0.
        drop(releases);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while pool
            .threads
            .iter()
            .any(|w| w.open.load(Ordering::Relaxed) != 0)
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "connections never closed"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        pool.threads[1].open.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        pool.spawn(async move {
            let _ = tx.send(std::thread::current().name().unwrap_or("").to_string());
        });
        assert_eq!(rx.await.unwrap(), "etcdguard-conn-0");
        pool.threads[1].open.fetch_sub(1, Ordering::Relaxed);
        pool.stop().await;
    }

    #[tokio::test]
    async fn stop_cancels_what_is_still_open_and_joins_the_threads() {
        let pool = ConnectionThreads::start(1).unwrap();
        let (dropped_tx, dropped_rx) = oneshot::channel::<()>();
        struct OnDrop(Option<oneshot::Sender<()>>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                if let Some(tx) = self.0.take() {
                    let _ = tx.send(());
                }
            }
        }
        let guard = OnDrop(Some(dropped_tx));
        pool.spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await
        });
        tokio::time::timeout(Duration::from_secs(5), pool.stop())
            .await
            .expect("stop returned");
        // The pending connection was dropped with the runtime.
        tokio::time::timeout(Duration::from_secs(5), dropped_rx)
            .await
            .expect("connection future dropped")
            .unwrap();
    }

    #[tokio::test]
    async fn without_threads_connections_run_on_the_callers_runtime() {
        let pool = ConnectionThreads::start(0).unwrap();
        let (tx, rx) = oneshot::channel();
        pool.spawn(async move {
            let _ = tx.send(());
        });
        tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .unwrap()
            .unwrap();
        pool.stop().await;
    }
}
