//! The writer side of the outbox (`outbox.rs`): draining a peer's outbox
//! (take, seal in place, write), and the node's writer thread, which takes
//! over the writing when sends come faster than the path is idle, so the
//! calling thread only frames events while its previous ones are sealed and
//! written.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::super::outbox::{HOT_GAP, Writer};
use super::super::packet::PacketKind;
use super::super::peer::Peer;
use super::Inner;

/// How long the writer thread keeps looking for more work before it parks
/// (a send arriving meanwhile needs no wake-up).
const LINGER: Duration = HOT_GAP;

#[derive(Default)]
struct PumpState {
    queue: VecDeque<Arc<Peer>>,
    parked: bool,
    stop: bool,
}

/// The node's writer thread and its queue of peers to drain.
#[derive(Default)]
pub(crate) struct Pump {
    state: Mutex<PumpState>,
    wake: Condvar,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Pump {
    fn state(&self) -> std::sync::MutexGuard<'_, PumpState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the thread (it holds only a weak reference to the node).
    pub fn start(&self, inner: Weak<Inner>) -> std::io::Result<()> {
        let handle = std::thread::Builder::new()
            .name("net-mesh-writer".into())
            .spawn(move || writer_thread(inner))?;
        *self.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        Ok(())
    }

    /// Queues `peer`, whose outbox the caller claimed for the thread.
    fn hand(&self, peer: Arc<Peer>) {
        let mut st = self.state();
        st.queue.push_back(peer);
        if st.parked {
            st.parked = false;
            self.wake.notify_one();
        }
    }

    /// Ends the thread (what it has queued is released unwritten) and
    /// waits for it, unless called from it.
    pub fn stop(&self) {
        let queued: Vec<Arc<Peer>> = {
            let mut st = self.state();
            st.stop = true;
            self.wake.notify_one();
            st.queue.drain(..).collect()
        };
        for peer in queued {
            peer.streams().outbox.release();
        }
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle
            && handle.thread().id() != std::thread::current().id()
        {
            let _ = handle.join();
        }
    }

    /// The peers to drain next, every one queued (written together):
    /// waits (lingering first) until there is one; None once stopped.
    fn next(&self) -> Option<Vec<Arc<Peer>>> {
        let linger_until = Instant::now() + LINGER;
        let mut st = self.state();
        loop {
            if st.stop {
                return None;
            }
            if !st.queue.is_empty() {
                return Some(st.queue.drain(..).collect());
            }
            if Instant::now() < linger_until {
                drop(st);
                std::thread::yield_now();
                st = self.state();
                continue;
            }
            st.parked = true;
            st = self.wake.wait(st).unwrap_or_else(|e| e.into_inner());
            st.parked = false;
        }
    }
}

fn writer_thread(inner: Weak<Inner>) {
    loop {
        let pump_peer = {
            let Some(node) = inner.upgrade() else { return };
            let pump = node.pump.clone();
            drop(node);
            pump.next()
        };
        let Some(peers) = pump_peer else { return };
        let Some(node) = inner.upgrade() else {
            for peer in peers {
                peer.streams().outbox.release();
            }
            return;
        };
        node.drain_outboxes(&peers);
    }
}

impl Inner {
    /// Runs the writer a send's [`Writer`] verdict asks for.
    pub(super) fn dispatch_writer(&self, peer: &Arc<Peer>, writer: Writer) {
        // Busy (the common verdict of a fast sender) costs nothing.
        if writer != Writer::Busy {
            self.dispatch_writers(vec![(peer.clone(), writer)]);
        }
    }

    /// Runs the writers several sends' verdicts ask for (a publish to its
    /// subscribers): the outboxes the caller claimed are written together,
    /// one `sendmmsg` for all of them; hot paths go to the writer thread.
    pub(super) fn dispatch_writers(&self, verdicts: Vec<(Arc<Peer>, Writer)>) {
        let mut callers = Vec::new();
        for (peer, writer) in verdicts {
            match writer {
                Writer::Busy => {}
                Writer::Caller => callers.push(peer),
                Writer::Handoff => {
                    #[cfg(feature = "test-util")]
                    self.testing.count_handoff();
                    self.stats.writer_handoffs.fetch_add(1, Ordering::Relaxed);
                    self.pump.hand(peer);
                }
            }
        }
        if !callers.is_empty() {
            self.drain_outboxes(&callers);
        }
    }

    /// Writes the outboxes of `peers` (the caller claimed each) until they
    /// are empty, every round's datagrams for all of them in one write.
    pub(super) fn drain_outboxes(&self, peers: &[Arc<Peer>]) {
        #[cfg(feature = "test-util")]
        self.testing.writer_gate();
        let mut active: Vec<&Arc<Peer>> = peers.iter().collect();
        while !active.is_empty() {
            let mut batches = Vec::with_capacity(active.len());
            // An outbox found empty was released by the take (another
            // writer may claim it now), as was every outbox once the node
            // stops: those peers leave the round.
            active.retain(|peer| match self.take_sealed(peer) {
                Some(datagrams) => {
                    if let Some(batch) = self.route_datagrams(peer, datagrams) {
                        batches.push(batch);
                    }
                    true
                }
                None => false,
            });
            if !batches.is_empty() {
                self.transmit_many(batches, true);
            }
        }
    }

    /// Takes what `peer`'s outbox holds and seals it in place; None when
    /// the outbox was empty (taking it released it) or the node is
    /// shutting down (released too).
    fn take_sealed(&self, peer: &Peer) -> Option<Vec<Vec<u8>>> {
        let (taken, wake_senders) = {
            let mut streams = peer.streams();
            if self.is_shut_down() {
                streams.outbox.release();
                return None;
            }
            let taken = streams.take_outbox(Instant::now(), &self.buffers);
            (taken, streams.outbox.take_room_wanted())
        };
        if wake_senders {
            peer.credit_granted.notify_all();
        }
        if taken.is_empty() {
            return None;
        }
        let packets = taken.len() as u64;
        // v0.11 always sends priority 0; only a Net peer sees ours.
        let net = peer.binding().is_net();
        let mut datagrams = Vec::with_capacity(taken.len());
        for t in taken {
            let kind = PacketKind {
                flags: t.packet.flags,
                stream_id: t.packet.stream_id,
                sequence: t.sequence,
                event_count: t.packet.count,
                subprotocol_id: t.stamp.subprotocol,
                priority: if net { t.stamp.priority } else { 0 },
                subnet_id: if net { t.stamp.subnet } else { 0 },
            };
            let mut buf = t.packet.buf;
            if peer.session.seal_in_place(&kind, &mut buf).is_ok() {
                datagrams.push(buf);
            }
        }
        self.stats
            .packets_written
            .fetch_add(packets, Ordering::Relaxed);
        Some(datagrams)
    }
}
