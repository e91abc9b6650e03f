//! Snapshot chunks, and events forwarded after cut-over, to Net peers over
//! a subprotocol stream (Net to Net only, negotiated by the hello flag
//! `FLAG_SUBPROTOCOL_STREAMS`).
//!
//! v0.11 sends every SnapshotReady chunk as one unacknowledged datagram: a
//! chunk lost to a full socket buffer costs a whole re-send of the
//! snapshot, so chunks to v0.11 nodes are paced (`Pacer` in
//! `machines.rs`). A Net peer takes the same message bytes on a Net
//! reliable stream instead ([`MeshNode::send_subprotocol_stream`]): acked,
//! retransmitted per packet and flow-controlled by the receiver's window,
//! so nothing is lost and nothing needs pacing. The stream send waits for
//! credit, so it runs on this module's own thread, never on the runtime's
//! worker; chunks queued for the same peer go out in one call.
//!
//! A send that fails (the peer went away, the deadline passed) drops the
//! messages queued for that peer and counts a failure for it
//! ([`BulkSender::failures`]); the orchestrator's retransmission (a whole
//! re-send once the transfer has settled) covers lost chunks, as it covers
//! lost datagrams, and a forwarder re-sends what is unacknowledged when it
//! sees the count move.
//!
//! [`MeshNode::send_subprotocol_stream`]: crate::mesh::MeshNode::send_subprotocol_stream

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::MigrationTransport;
use crate::cancel::CancelToken;

/// An encoded SnapshotReady message, shared by its record and the send
/// queues: a range of a buffer that may hold a whole snapshot's chunks.
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    buffer: Arc<Vec<u8>>,
    at: Range<usize>,
}

impl Chunk {
    /// A chunk that is a whole buffer (a message received).
    pub(crate) fn whole(message: Vec<u8>) -> Self {
        let at = 0..message.len();
        Self {
            buffer: Arc::new(message),
            at,
        }
    }

    /// The chunks at `ranges` of one buffer.
    pub(crate) fn split(buffer: Vec<u8>, ranges: Vec<Range<usize>>) -> Vec<Self> {
        let buffer = Arc::new(buffer);
        ranges
            .into_iter()
            .map(|at| Self {
                buffer: Arc::clone(&buffer),
                at,
            })
            .collect()
    }
}

impl std::ops::Deref for Chunk {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buffer[self.at.clone()]
    }
}

/// Chunks per stream call (each call waits for credit packet by packet).
const SEND_BATCH: usize = 64;

/// A message waiting for the stream thread.
struct Queued {
    to: u64,
    message: Chunk,
    /// A snapshot chunk (counted in `Inner::pending`), not forwarded events.
    chunk: bool,
}

/// The messages waiting for the stream thread, when the last snapshot
/// chunk was out, and the failed sends per peer.
#[derive(Default)]
struct Queue {
    messages: VecDeque<Queued>,
    drained: Option<Instant>,
    failures: HashMap<u64, u64>,
    stop: bool,
}

impl Queue {
    /// Drops everything queued for `to`; returns how many snapshot chunks
    /// that was.
    fn drop_peer(&mut self, to: u64) -> usize {
        let mut chunks = 0;
        self.messages.retain(|queued| {
            let keep = queued.to != to;
            chunks += usize::from(!keep && queued.chunk);
            keep
        });
        chunks
    }
}

struct Inner {
    queue: Mutex<Queue>,
    /// Cancelled by `stop`: a send waiting for credit gives up at once.
    cancel: CancelToken,
    ready: Condvar,
    /// Whether any chunk was ever queued (the thread starts on the first).
    started: AtomicBool,
    /// Snapshot chunks queued or being sent.
    pending: AtomicUsize,
}

/// The stream sender of one runtime.
pub(crate) struct BulkSender {
    inner: Arc<Inner>,
    transport: Arc<dyn MigrationTransport>,
    /// How long one stream send may wait for credit.
    send_timeout: Duration,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl BulkSender {
    pub(crate) fn new(transport: Arc<dyn MigrationTransport>, send_timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                queue: Mutex::new(Queue::default()),
                cancel: CancelToken::new(),
                ready: Condvar::new(),
                started: AtomicBool::new(false),
                pending: AtomicUsize::new(0),
            }),
            transport,
            send_timeout,
            thread: Mutex::new(None),
        }
    }

    /// Whether messages for `to` go through here (a Net peer that takes
    /// subprotocol streams).
    pub(crate) fn takes(&self, to: u64) -> bool {
        self.transport.takes_streams(to)
    }

    /// Queues snapshot chunk `chunk` for `to`.
    pub(crate) fn push(&self, to: u64, chunk: &Chunk) {
        self.queue(to, chunk.clone(), true);
    }

    /// Queues another message for `to` (forwarded events): not counted in
    /// [`drained_since`](Self::drained_since), which times snapshot
    /// re-sends.
    pub(crate) fn push_message(&self, to: u64, message: Vec<u8>) {
        self.queue(to, Chunk::whole(message), false);
    }

    /// Stream sends to `to` that failed so far (their messages were
    /// dropped).
    pub(crate) fn failures(&self, to: u64) -> u64 {
        self.lock().failures.get(&to).copied().unwrap_or(0)
    }

    fn queue(&self, to: u64, message: Chunk, chunk: bool) {
        let mut queue = self.lock();
        if queue.stop {
            return;
        }
        queue.messages.push_back(Queued { to, message, chunk });
        if chunk {
            self.inner.pending.fetch_add(1, Ordering::Relaxed);
        }
        drop(queue);
        if !self.inner.started.swap(true, Ordering::Relaxed) {
            self.start();
        }
        self.inner.ready.notify_one();
    }

    /// Whether every queued snapshot chunk is out, and since when
    /// (`None`: never drained, or still sending).
    pub(crate) fn drained_since(&self) -> Result<Option<Instant>, ()> {
        if self.inner.pending.load(Ordering::Relaxed) > 0 {
            return Err(());
        }
        Ok(self.lock().drained)
    }

    /// Stops the thread (queued chunks are dropped; a send waiting for
    /// credit gives up). Idempotent.
    pub(crate) fn stop(&self) {
        self.lock().stop = true;
        self.inner.cancel.cancel();
        self.inner.ready.notify_all();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.inner
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn start(&self) {
        let inner = Arc::clone(&self.inner);
        let transport = Arc::clone(&self.transport);
        let timeout = self.send_timeout;
        let spawned = std::thread::Builder::new()
            .name("net-compute-bulk".into())
            .spawn(move || run(&inner, &*transport, timeout));
        match spawned {
            Ok(handle) => {
                *self.thread.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle);
            }
            Err(e) => {
                // Nothing will send the queue: drop it (the orchestrator's
                // re-send goes the same way, so the step times out and
                // aborts cleanly).
                tracing::error!(error = %e, "bulk sender thread did not start");
                let mut queue = self.lock();
                queue.stop = true;
                queue.messages.clear();
                self.inner.pending.store(0, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for BulkSender {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The thread: takes every message queued for the first waiting peer and
/// sends them, [`SEND_BATCH`] per stream call.
fn run(inner: &Inner, transport: &dyn MigrationTransport, timeout: Duration) {
    loop {
        let (to, batch, chunks) = {
            let mut queue = inner.queue.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                if queue.stop {
                    queue.messages.clear();
                    inner.pending.store(0, Ordering::Relaxed);
                    return;
                }
                if !queue.messages.is_empty() {
                    break;
                }
                queue = inner
                    .ready
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            let to = queue.messages[0].to;
            let mut batch = Vec::new();
            let mut chunks = 0;
            queue.messages.retain(|queued| {
                if queued.to == to {
                    batch.push(queued.message.clone());
                    chunks += usize::from(queued.chunk);
                    false
                } else {
                    true
                }
            });
            (to, batch, chunks)
        };
        let messages: Vec<&[u8]> = batch.iter().map(|c| &**c).collect();
        let sent = messages.chunks(SEND_BATCH).try_for_each(|part| {
            transport.send_stream(to, part, Instant::now() + timeout, &inner.cancel)
        });
        let mut queue = inner.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = sent {
            tracing::debug!(to, error = %e, messages = batch.len(), "stream messages not sent");
            // What else waits for the same peer would wait as long.
            let dropped = queue.drop_peer(to);
            inner.pending.fetch_sub(dropped, Ordering::Relaxed);
            *queue.failures.entry(to).or_insert(0) += 1;
        }
        inner.pending.fetch_sub(chunks, Ordering::Relaxed);
        if chunks > 0 && !queue.messages.iter().any(|queued| queued.chunk) {
            queue.drained = Some(Instant::now());
        }
    }
}
