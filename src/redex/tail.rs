//! `RedexTail`: a reader that backfills from any sequence number and then
//! follows new appends.
//!
//! A tail is a cursor over the log itself, not a subscription buffer: backfill
//! and live delivery are the same read, so there is no handoff at which an
//! entry could be skipped or delivered twice, and backfill of any length
//! streams from the log (Net v0.11 refuses to replay more than 1024 entries).
//! The only way to miss an entry is for retention to remove it before the
//! reader gets there; the reader is then told exactly which range it missed
//! ([`TailItem::Lagged`]) and continues with the oldest entry still there.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::error::Result;
use super::file::FileInner;
use crate::cancel::{CancelRegistration, CancelToken};

/// An entry delivered by a tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailEntry {
    /// Its sequence number.
    pub seq: u64,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// What a tail delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TailItem {
    /// The next entry.
    Entry(TailEntry),
    /// Entries `missed_from..missed_to` were removed by retention before this
    /// reader reached them. The next item is the entry at `missed_to` or later.
    Lagged {
        /// First missed sequence number.
        missed_from: u64,
        /// One past the last missed sequence number (where delivery resumes).
        missed_to: u64,
    },
}

/// The outcome of waiting for the next item.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TailPoll {
    /// An item arrived.
    Item(TailItem),
    /// The timeout passed with nothing new.
    Timeout,
    /// The file was closed (or this tail was closed): nothing more will come.
    End,
    /// The call's [`CancelToken`] was cancelled; the tail is unchanged and
    /// can be read again.
    Cancelled,
}

/// What [`RedexTail::next_batch`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TailBatch {
    /// One or more items, in order.
    Items(Vec<TailItem>),
    /// The timeout passed with nothing new.
    Timeout,
    /// The file or the tail was closed.
    End,
    /// The call's [`CancelToken`] was cancelled.
    Cancelled,
}

/// About how many payload bytes one batch reads.
const BATCH_BYTES: u64 = 4 << 20;

/// Closes a tail from another thread, waking a blocked `next`.
#[derive(Clone)]
pub struct TailCloser {
    closed: Arc<AtomicBool>,
    file: Arc<FileInner>,
}

impl TailCloser {
    /// Ends the tail: a blocked or later `next` returns [`TailPoll::End`].
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        // Take the lock so the flag cannot slip between a waiter's check and
        // its wait.
        drop(self.file.lock());
        self.file.wake_all();
    }
}

/// A reader of one file from a given sequence number on. Also an
/// [`Iterator`] that blocks for each item and ends when the file closes.
pub struct RedexTail {
    file: Arc<FileInner>,
    /// The next sequence number this reader wants.
    cursor: u64,
    closed: Arc<AtomicBool>,
}

impl RedexTail {
    pub(crate) fn new(file: Arc<FileInner>, from_seq: u64) -> Self {
        Self {
            file,
            cursor: from_seq,
            closed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The next sequence number this reader will deliver (or report missed).
    pub fn position(&self) -> u64 {
        self.cursor
    }

    /// A handle that ends this tail from another thread.
    pub fn closer(&self) -> TailCloser {
        TailCloser {
            closed: self.closed.clone(),
            file: self.file.clone(),
        }
    }

    /// Waits up to `timeout` (forever with `None`) for the next item.
    ///
    /// # Errors
    /// [`super::RedexError::Io`] if an entry cannot be read from disk.
    pub fn next_timeout(&mut self, timeout: Option<Duration>) -> Result<TailPoll> {
        self.next_cancellable(timeout, None)
    }

    /// [`next_timeout`](Self::next_timeout) that also returns
    /// [`TailPoll::Cancelled`] as soon as `cancel` is cancelled.
    ///
    /// # Errors
    /// As [`next_timeout`](Self::next_timeout).
    pub fn next_cancellable(
        &mut self,
        timeout: Option<Duration>,
        cancel: Option<&CancelToken>,
    ) -> Result<TailPoll> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let _wake = self.wake_on(cancel);
        let mut state = self.file.lock();
        loop {
            if self.closed.load(Ordering::Acquire) || state.is_closed() {
                return Ok(TailPoll::End);
            }
            if cancel.is_some_and(CancelToken::is_cancelled) {
                return Ok(TailPoll::Cancelled);
            }
            if self.cursor < state.retained_from {
                let lag = TailItem::Lagged {
                    missed_from: self.cursor,
                    missed_to: state.retained_from,
                };
                self.cursor = state.retained_from;
                return Ok(TailPoll::Item(lag));
            }
            let at = state.position_of(self.cursor);
            let mut index = at;
            while let Some(entry) = state.entries.get(index) {
                let entry = *entry;
                self.cursor = entry.seq + 1;
                if let Some(payload) = state.payload(&entry)? {
                    return Ok(TailPoll::Item(TailItem::Entry(TailEntry {
                        seq: entry.seq,
                        payload,
                    })));
                }
                index += 1;
            }
            let remaining = match deadline {
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Ok(TailPoll::Timeout);
                    }
                    Some(deadline - now)
                }
                None => None,
            };
            state = self.file.wait(state, remaining);
        }
    }

    /// Waits like [`next_timeout`](Self::next_timeout), then returns every
    /// item that is ready, up to `max` (at least one), reading their payloads
    /// together. A Lagged item, if any, comes first and alone. Readers that
    /// replay long logs use this: it costs one lock and, on disk, one read
    /// per batch instead of per entry.
    ///
    /// # Errors
    /// As [`next_timeout`](Self::next_timeout).
    pub fn next_batch(&mut self, timeout: Option<Duration>, max: usize) -> Result<TailBatch> {
        self.next_batch_cancellable(timeout, max, None)
    }

    /// [`next_batch`](Self::next_batch) that also returns
    /// [`TailBatch::Cancelled`] as soon as `cancel` is cancelled.
    ///
    /// # Errors
    /// As [`next_timeout`](Self::next_timeout).
    pub fn next_batch_cancellable(
        &mut self,
        timeout: Option<Duration>,
        max: usize,
        cancel: Option<&CancelToken>,
    ) -> Result<TailBatch> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let _wake = self.wake_on(cancel);
        let mut state = self.file.lock();
        loop {
            if self.closed.load(Ordering::Acquire) || state.is_closed() {
                return Ok(TailBatch::End);
            }
            if cancel.is_some_and(CancelToken::is_cancelled) {
                return Ok(TailBatch::Cancelled);
            }
            if self.cursor < state.retained_from {
                let lag = TailItem::Lagged {
                    missed_from: self.cursor,
                    missed_to: state.retained_from,
                };
                self.cursor = state.retained_from;
                return Ok(TailBatch::Items(vec![lag]));
            }
            let at = state.position_of(self.cursor);
            if at < state.entries.len() {
                let payloads = state.payloads_from(at, max.max(1), BATCH_BYTES)?;
                if let Some((last, _)) = payloads.last() {
                    self.cursor = last + 1;
                }
                let items: Vec<TailItem> = payloads
                    .into_iter()
                    .filter_map(|(seq, payload)| {
                        payload.map(|payload| TailItem::Entry(TailEntry { seq, payload }))
                    })
                    .collect();
                if !items.is_empty() {
                    return Ok(TailBatch::Items(items));
                }
                continue;
            }
            let remaining = match deadline {
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Ok(TailBatch::Timeout);
                    }
                    Some(deadline - now)
                }
                None => None,
            };
            state = self.file.wait(state, remaining);
        }
    }

    /// Wakes this tail's waits when `cancel` is cancelled.
    fn wake_on(&self, cancel: Option<&CancelToken>) -> Option<CancelRegistration> {
        cancel.map(|token| {
            let file = self.file.clone();
            token.on_cancel(move || {
                // Take the lock so the wake-up cannot slip between a waiter's
                // check and its wait.
                drop(file.lock());
                file.wake_all();
            })
        })
    }

    /// The next item if one is ready, without waiting.
    ///
    /// # Errors
    /// As [`next_timeout`](Self::next_timeout).
    pub fn try_next(&mut self) -> Result<TailPoll> {
        self.next_timeout(Some(Duration::ZERO))
    }
}

impl Iterator for RedexTail {
    type Item = Result<TailItem>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_timeout(None) {
            Ok(TailPoll::Item(item)) => Some(Ok(item)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

impl std::fmt::Debug for TailCloser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TailCloser")
            .field("closed", &self.closed.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for RedexTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedexTail")
            .field("position", &self.cursor)
            .field("closed", &self.closed.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}
