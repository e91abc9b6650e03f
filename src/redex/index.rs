//! `RedexIndex<K, V>`: a secondary index over a file, kept current by a tail
//! on its own thread.
//!
//! When its tail reports Lagged (retention removed entries it had not yet
//! indexed), the index clears itself and rebuilds from the oldest retained
//! entry, so it always reflects exactly the retained log; `lag_resets()`
//! counts these resets so a downstream that aggregates can tell. Rebuilds
//! back off (5, 20, 60, 250 ms, then 250 ms) while lags keep coming, and the
//! warning about them is rate-limited, so a sustained burst that outruns
//! retention can neither hot-loop the thread nor flood the log.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::file::RedexFile;
use super::tail::{TailCloser, TailItem, TailPoll};

/// Backoff after consecutive lag resets.
const LAG_BACKOFF: [Duration; 4] = [
    Duration::from_millis(5),
    Duration::from_millis(20),
    Duration::from_millis(60),
    Duration::from_millis(250),
];
/// At most one lag warning per this interval.
const LAG_WARN_INTERVAL: Duration = Duration::from_secs(10);

struct Shared<K, V> {
    map: RwLock<HashMap<K, V>>,
    /// Sequence number of the next entry to index (everything below it has
    /// been seen).
    indexed_to: Mutex<u64>,
    progressed: Condvar,
    lag_resets: AtomicU64,
    stopped: AtomicBool,
}

/// A map from keys extracted out of each entry to values, maintained from a
/// file's log by a background thread.
pub struct RedexIndex<K, V> {
    shared: Arc<Shared<K, V>>,
    closer: TailCloser,
    worker: Option<JoinHandle<()>>,
}

impl<K, V> RedexIndex<K, V>
where
    K: Eq + Hash + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Indexes `file` from its oldest entry on. `extract` maps an entry to
    /// the key/value it contributes (later entries overwrite earlier ones with
    /// the same key), or `None` to skip it.
    pub fn new<F>(file: &RedexFile, extract: F) -> Self
    where
        F: Fn(u64, &[u8]) -> Option<(K, V)> + Send + 'static,
    {
        let shared = Arc::new(Shared {
            map: RwLock::new(HashMap::new()),
            indexed_to: Mutex::new(0),
            progressed: Condvar::new(),
            lag_resets: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        });
        let mut tail = file.tail(0);
        let closer = tail.closer();
        let worker_shared = shared.clone();
        let worker = std::thread::Builder::new()
            .name(format!("redex-index-{}", file.name()))
            .spawn(move || {
                let shared = worker_shared;
                let mut consecutive_lags = 0usize;
                let mut last_warning: Option<Instant> = None;
                loop {
                    match tail.next_timeout(None) {
                        Ok(TailPoll::Item(TailItem::Entry(entry))) => {
                            consecutive_lags = 0;
                            if let Some((key, value)) = extract(entry.seq, &entry.payload) {
                                shared
                                    .map
                                    .write()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .insert(key, value);
                            }
                            shared.advance(entry.seq + 1);
                        }
                        Ok(TailPoll::Item(TailItem::Lagged {
                            missed_from,
                            missed_to,
                        })) => {
                            shared.lag_resets.fetch_add(1, Ordering::AcqRel);
                            if last_warning.is_none_or(|t| t.elapsed() >= LAG_WARN_INTERVAL) {
                                tracing::warn!(
                                    missed_from,
                                    missed_to,
                                    resets = shared.lag_resets.load(Ordering::Acquire),
                                    "RedexIndex lagged behind retention; clearing and rebuilding"
                                );
                                last_warning = Some(Instant::now());
                            }
                            std::thread::sleep(
                                LAG_BACKOFF[consecutive_lags.min(LAG_BACKOFF.len() - 1)],
                            );
                            consecutive_lags += 1;
                            shared
                                .map
                                .write()
                                .unwrap_or_else(|e| e.into_inner())
                                .clear();
                            // The tail resumes at the oldest retained entry,
                            // which rebuilds the index from what is left.
                        }
                        Ok(_) => break,
                        Err(e) => {
                            tracing::error!(error = %e, "RedexIndex stopped: cannot read the file");
                            break;
                        }
                    }
                }
                shared.stopped.store(true, Ordering::Release);
                shared.progressed.notify_all();
            });
        let worker = match worker {
            Ok(handle) => Some(handle),
            Err(e) => {
                tracing::error!(error = %e, "could not start a RedexIndex thread");
                shared.stopped.store(true, Ordering::Release);
                None
            }
        };
        Self {
            shared,
            closer,
            worker,
        }
    }

    /// The value indexed under `key`.
    pub fn get(&self, key: &K) -> Option<V> {
        self.shared
            .map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.shared
            .map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// True when no key is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many times the index was cleared and rebuilt after lagging.
    pub fn lag_resets(&self) -> u64 {
        self.shared.lag_resets.load(Ordering::Acquire)
    }

    /// Every entry below this sequence number has been indexed.
    pub fn indexed_to(&self) -> u64 {
        *self
            .shared
            .indexed_to
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until the entry `seq` has been indexed. Returns false on timeout
    /// or when the index stopped first (file closed).
    pub fn wait_for_seq(&self, seq: u64, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut indexed = self
            .shared
            .indexed_to
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        loop {
            if *indexed > seq {
                return true;
            }
            if self.shared.stopped.load(Ordering::Acquire) {
                return false;
            }
            indexed = match deadline {
                None => self
                    .shared
                    .progressed
                    .wait(indexed)
                    .unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    self.shared
                        .progressed
                        .wait_timeout(indexed, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}

impl<K, V> Shared<K, V> {
    fn advance(&self, to: u64) {
        *self.indexed_to.lock().unwrap_or_else(|e| e.into_inner()) = to;
        self.progressed.notify_all();
    }
}

impl<K, V> Drop for RedexIndex<K, V> {
    fn drop(&mut self) {
        self.closer.close();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

impl<K, V> std::fmt::Debug for RedexIndex<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedexIndex")
            .field(
                "lag_resets",
                &self.shared.lag_resets.load(Ordering::Acquire),
            )
            .field("stopped", &self.shared.stopped.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}
