//! CPU-bound work of requests (index searches, lookups), run on blocking threads at most
//! [`IndexWork::permits`] at a time.
//!
//! ## Why a bound
//! A search is pure CPU. Run unbounded, 32 concurrent searches on 2 cores share the CPU by
//! time slices: each is stretched sixteenfold, the heavy ones most, and the tail latency is that
//! of the heaviest query times the concurrency. Bounded to the number of cores, searches wait
//! their turn in arrival order (tokio's semaphore is fair) and then run at full speed: the mean
//! latency is the same, the tail is much shorter, and the threads do not thrash the caches.
//! Waiting for the access log's fsync holds no permit, so the CPU keeps working meanwhile.

use std::sync::Arc;
use tokio::sync::Semaphore;

/// A fair, bounded pool for the index work of requests; clones share the bound.
#[derive(Debug, Clone)]
pub struct IndexWork {
    slots: Arc<Semaphore>,
    permits: usize,
}

/// Why index work did not run.
#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    /// The work panicked, or the runtime is shutting down.
    #[error("the work did not complete: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// The pool was closed.
    #[error("the server is shutting down")]
    Closed,
}

impl Default for IndexWork {
    /// As many slots as the machine has cores.
    fn default() -> Self {
        IndexWork::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }
}

impl IndexWork {
    /// A pool running at most `permits` (at least 1) pieces of work at a time.
    pub fn new(permits: usize) -> Self {
        let permits = permits.max(1);
        IndexWork {
            slots: Arc::new(Semaphore::new(permits)),
            permits,
        }
    }

    /// How many pieces of work may run at once.
    pub fn permits(&self) -> usize {
        self.permits
    }

    /// Runs `f` on a blocking thread once a slot is free (in arrival order), and returns its
    /// result.
    pub async fn run<T, F>(&self, f: F) -> Result<T, WorkError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| WorkError::Closed)?;
        Ok(tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn never_runs_more_than_its_permits_at_once() {
        let work = IndexWork::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (work, running, most) = (work.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    work.run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }
}
