//! Test-only machinery of the node (`test-util` builds only): the outbound
//! packet filter, the loopback echo, and hooks that reach into the node's
//! maps. None of it exists in a release libnet, so the send path of a
//! shipped node pays nothing for it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use super::super::crypto::{Role, SessionKeys};
use super::super::filter::{PacketFilter, Verdict};
use super::{Inner, MeshError, MeshNode, tasks};

/// The node's test state.
#[derive(Default)]
pub(super) struct Testing {
    filter: Mutex<Option<Arc<dyn PacketFilter>>>,
    has_filter: AtomicBool,
    loopback_echo: AtomicBool,
    force_handoff: AtomicBool,
    gso_refusals: AtomicU32,
    handoffs: AtomicU64,
    /// While true, writers wait at the gate before taking the outbox.
    gate_closed: Mutex<bool>,
    gate_opened: Condvar,
    writers_at_gate: AtomicU64,
}

impl Testing {
    /// Whether every send's write goes to the writer thread.
    pub(super) fn force_handoff(&self) -> bool {
        self.force_handoff.load(Ordering::Relaxed)
    }

    /// Counts a handoff to the writer thread.
    pub(super) fn count_handoff(&self) {
        self.handoffs.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether this GSO send must fail as a refusing kernel would.
    pub(super) fn refuse_gso(&self) -> bool {
        self.gso_refusals
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Where a writer waits while the test holds the gate closed.
    pub(super) fn writer_gate(&self) {
        let mut closed = self.gate_closed.lock().unwrap_or_else(|e| e.into_inner());
        if !*closed {
            return;
        }
        self.writers_at_gate.fetch_add(1, Ordering::SeqCst);
        while *closed {
            closed = self
                .gate_opened
                .wait(closed)
                .unwrap_or_else(|e| e.into_inner());
        }
        self.writers_at_gate.fetch_sub(1, Ordering::SeqCst);
    }

    /// Whether the loopback path sends every delivered event to ourselves
    /// again.
    pub(super) fn loopback_echo(&self) -> bool {
        self.loopback_echo.load(Ordering::SeqCst)
    }

    /// Passes `datagrams` through the installed filter: returns the ones
    /// to send now; delayed ones are sent later by a task.
    pub(super) fn filter_outbound(
        &self,
        inner: &Inner,
        to: SocketAddr,
        datagrams: Vec<Vec<u8>>,
    ) -> Vec<Vec<u8>> {
        if !self.has_filter.load(Ordering::Relaxed) {
            return datagrams;
        }
        let filter = self
            .filter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(filter) = filter else {
            return datagrams;
        };
        let mut pass = Vec::with_capacity(datagrams.len());
        for d in datagrams {
            match filter.outbound(to, &d) {
                Verdict::Pass => pass.push(d),
                Verdict::Drop => {}
                Verdict::Duplicate => {
                    pass.push(d.clone());
                    pass.push(d);
                }
                Verdict::Delay(delay) => {
                    let Ok(socket) = inner.socket.try_clone() else {
                        continue;
                    };
                    inner.runtime.spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = socket.send_to(&d, to);
                    });
                }
            }
        }
        pass
    }
}

impl MeshNode {
    /// Installs (or removes) a packet filter on the outbound path.
    pub fn set_filter(&self, filter: Option<Arc<dyn PacketFilter>>) {
        let testing = &self.inner.testing;
        let mut f = testing.filter.lock().unwrap_or_else(|e| e.into_inner());
        testing.has_filter.store(filter.is_some(), Ordering::SeqCst);
        *f = filter;
    }

    /// Every event delivered on the loopback path (sends to our own
    /// node_id) is sent to ourselves again, like a handler that always
    /// answers itself; the depth cap must stop it.
    pub fn set_loopback_echo(&self, on: bool) {
        self.inner.testing.loopback_echo.store(on, Ordering::SeqCst);
    }

    /// Every send hands its write to the writer thread (no caller writes),
    /// as when sends come faster than the path is idle.
    pub fn set_force_handoff(&self, on: bool) {
        self.inner.testing.force_handoff.store(on, Ordering::SeqCst);
    }

    /// Closes (or opens) the gate writers pass before taking an outbox:
    /// while closed, sends pile up in the outbox behind the writer.
    pub fn set_writer_gate(&self, closed: bool) {
        let t = &self.inner.testing;
        *t.gate_closed.lock().unwrap_or_else(|e| e.into_inner()) = closed;
        t.gate_opened.notify_all();
    }

    /// Writers waiting at the closed gate.
    pub fn writers_at_gate(&self) -> u64 {
        self.inner.testing.writers_at_gate.load(Ordering::SeqCst)
    }

    /// The next `n` GSO sends fail as a kernel refusing the offload would
    /// (EIO), which must turn GSO off and resend plainly.
    pub fn refuse_gso(&self, n: u32) {
        self.inner.testing.gso_refusals.store(n, Ordering::SeqCst);
    }

    /// How many receive calls are blocked waiting for events.
    pub fn receivers_waiting(&self) -> usize {
        self.inner.inbound.waiting()
    }

    /// How many `accept` calls are waiting.
    pub fn accepts_in_flight(&self) -> usize {
        self.inner.accept_in_flight.load(Ordering::SeqCst)
    }

    /// The node_id the address index maps `addr` to.
    pub fn indexed_node(&self, addr: SocketAddr) -> Option<u64> {
        self.inner.addr_index.get(&addr).map(|e| *e)
    }

    /// The value of one counter of `stats_json` (a flag reads as 0 or 1).
    pub fn stat(&self, name: &str) -> u64 {
        let v = &self.inner.stats_json()[name];
        v.as_u64()
            .or_else(|| v.as_bool().map(u64::from))
            .unwrap_or(0)
    }

    /// Installs a session as a completed handshake would, through the same
    /// atomic entry (for the concurrent-insert test).
    ///
    /// # Errors
    /// As a handshake's installation: [`MeshError::SessionExists`].
    pub fn install_session_for_test(
        &self,
        peer_node_id: u64,
        addr: SocketAddr,
        handshake_hash: [u8; 32],
    ) -> Result<(), MeshError> {
        let keys = SessionKeys::derive(&handshake_hash, Role::Initiator);
        let installed =
            self.inner
                .install_session(peer_node_id, addr, &keys, Role::Initiator, None, false)?;
        self.inner.send_hello(installed.peer(), false);
        Ok(())
    }

    /// Runs one heartbeat round now (as the loop does); the peers map must
    /// stay usable from other threads while it runs (it holds no guard
    /// while sending).
    pub fn heartbeat_round_for_test(&self) {
        tasks::heartbeat_round(&self.inner);
    }

    /// Whether the reliability tick will look at `peer` on its next round
    /// (asked to, or its timer came); None for an unknown peer. Reading it
    /// does not change it.
    pub fn tick_scheduled_for_test(&self, peer: u64) -> Option<bool> {
        let peer = self.inner.peers.get(&peer)?.value().clone();
        Some(peer.tick_scheduled(std::time::Instant::now()))
    }

    /// The peers map, for the guard-holding regression test.
    pub fn peer_ids_for_test(&self) -> Vec<u64> {
        self.inner.peers.iter().map(|e| *e.key()).collect()
    }

    /// Locks every peer entry for writing and releases it (fails the
    /// caller's timing if any guard is held elsewhere).
    pub fn touch_all_entries_for_test(&self) {
        for id in self.peer_ids_for_test() {
            if let Some(mut e) = self.inner.peers.get_mut(&id) {
                let _ = e.value_mut();
            }
        }
    }
}
