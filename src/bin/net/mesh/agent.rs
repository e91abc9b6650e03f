//! What a `net` node does with the events it receives: answers pings and
//! benchmark reports on a stream of its own, counts benchmark traffic, and
//! hands answers to the requests waiting for them.
//!
//! The CLI's control traffic travels on [`CONTROL_STREAM`] as one event per
//! message: a kind byte, an 8-byte little-endian nonce, a body. Any Net
//! application can answer a ping the same way.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use net::mesh::{InboundEvent, MeshError, MeshNode};

use crate::error::{CliError, Result};

/// The stream id of the CLI's ping and report messages ("NET_CLI\0").
pub const CONTROL_STREAM: u64 = 0x4E45_545F_434C_4900;
/// The stream id benchmark traffic is sent on (counted, then dropped).
pub const BENCH_STREAM: u64 = CONTROL_STREAM + 1;

const PING: u8 = 1;
const PONG: u8 = 2;
const REPORT_REQUEST: u8 = 3;
const REPORT: u8 = 4;
const HEADER_LEN: usize = 9;

/// A node and its receive loop.
pub struct Agent {
    node: MeshNode,
    pending: Mutex<HashMap<u64, mpsc::Sender<Vec<u8>>>>,
    next_nonce: AtomicU64,
    bench_events: AtomicU64,
    bench_bytes: AtomicU64,
    stopping: AtomicBool,
}

fn message(kind: u8, nonce: u64, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(HEADER_LEN + body.len());
    m.push(kind);
    m.extend_from_slice(&nonce.to_le_bytes());
    m.extend_from_slice(body);
    m
}

impl Agent {
    /// Starts the receive loop of `node` on its own thread.
    pub fn start(node: MeshNode) -> Arc<Self> {
        let agent = Arc::new(Self {
            node,
            pending: Mutex::new(HashMap::new()),
            next_nonce: AtomicU64::new(1),
            bench_events: AtomicU64::new(0),
            bench_bytes: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
        });
        let looping = agent.clone();
        std::thread::Builder::new()
            .name("net-cli-recv".into())
            .spawn(move || looping.receive_loop())
            .ok();
        agent
    }

    /// The node.
    pub fn node(&self) -> &MeshNode {
        &self.node
    }

    /// Ends the receive loop and shuts the node down.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.node.shutdown();
    }

    fn receive_loop(&self) {
        while !self.stopping.load(Ordering::SeqCst) {
            match self.node.recv(256, Some(Duration::from_millis(200))) {
                Ok(events) => events.into_iter().for_each(|e| self.handle(e)),
                Err(MeshError::Timeout) => {}
                Err(_) => break,
            }
        }
    }

    fn handle(&self, event: InboundEvent) {
        if event.stream_id == BENCH_STREAM {
            self.bench_events.fetch_add(1, Ordering::Relaxed);
            self.bench_bytes
                .fetch_add(event.data.len() as u64, Ordering::Relaxed);
            return;
        }
        if event.stream_id != CONTROL_STREAM || event.data.len() < HEADER_LEN {
            tracing::debug!(
                peer = event.peer,
                stream = event.stream_id,
                len = event.data.len(),
                "event"
            );
            return;
        }
        let mut nonce = [0u8; 8];
        nonce.copy_from_slice(&event.data[1..HEADER_LEN]);
        let nonce = u64::from_le_bytes(nonce);
        match event.data[0] {
            PING => self.reply(event.peer, message(PONG, nonce, &event.data[HEADER_LEN..])),
            REPORT_REQUEST => {
                let mut body = self
                    .bench_events
                    .load(Ordering::Relaxed)
                    .to_le_bytes()
                    .to_vec();
                body.extend_from_slice(&self.bench_bytes.load(Ordering::Relaxed).to_le_bytes());
                self.reply(event.peer, message(REPORT, nonce, &body));
            }
            PONG | REPORT => {
                let waiter = self
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&nonce);
                if let Some(waiter) = waiter {
                    let _ = waiter.send(event.data[HEADER_LEN..].to_vec());
                }
            }
            kind => tracing::debug!(peer = event.peer, kind, "unknown control message"),
        }
    }

    fn reply(&self, peer: u64, message: Vec<u8>) {
        let deadline = Instant::now() + Duration::from_secs(1);
        let sent = self
            .node
            .open_stream(peer, CONTROL_STREAM, false, None)
            .and_then(|()| {
                self.node
                    .send_blocking(peer, CONTROL_STREAM, &[message], Some(deadline))
            });
        if let Err(e) = sent {
            tracing::warn!(peer, "control reply not sent: {e}");
        }
    }

    /// Sends a request of `kind` to `peer` and waits for its answer's body.
    fn request(&self, peer: u64, kind: u8, timeout: Duration) -> Result<Vec<u8>> {
        let nonce = self.next_nonce.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(nonce, tx);
        let deadline = Instant::now() + timeout;
        let sent = self
            .node
            .open_stream(peer, CONTROL_STREAM, false, None)
            .and_then(|()| {
                self.node.send_blocking(
                    peer,
                    CONTROL_STREAM,
                    &[message(kind, nonce, &[])],
                    Some(deadline),
                )
            });
        let answer = match sent {
            Ok(()) => rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .map_err(|_| {
                    CliError::new(format!("no answer from {peer:#018x} within {timeout:?}"))
                }),
            Err(e) => Err(CliError::new(format!("sending to {peer:#018x}: {e}"))),
        };
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&nonce);
        answer
    }

    /// The round-trip time of one ping to `peer`.
    ///
    /// # Errors
    /// No session with `peer`, or no answer within `timeout`.
    pub fn ping(&self, peer: u64, timeout: Duration) -> Result<Duration> {
        let started = Instant::now();
        self.request(peer, PING, timeout)?;
        Ok(started.elapsed())
    }

    /// How many benchmark events and bytes `peer` has received.
    ///
    /// # Errors
    /// As [`ping`](Self::ping), or a malformed report.
    pub fn bench_report(&self, peer: u64, timeout: Duration) -> Result<(u64, u64)> {
        let body = self.request(peer, REPORT_REQUEST, timeout)?;
        let word = |i: usize| -> Option<u64> {
            Some(u64::from_le_bytes(
                body.get(i * 8..i * 8 + 8)?.try_into().ok()?,
            ))
        };
        match (word(0), word(1)) {
            (Some(events), Some(bytes)) => Ok((events, bytes)),
            _ => Err(CliError::new(format!("malformed report from {peer:#018x}"))),
        }
    }
}
