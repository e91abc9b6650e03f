//! Test-only machinery of the node (`test-util` builds only): the outbound
//! packet filter, the loopback echo, and hooks that reach into the node's
//! maps. None of it exists in a release libnet, so the send path of a
//! shipped node pays nothing for it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::super::crypto::{Role, SessionKeys};
use super::super::filter::{PacketFilter, Verdict};
use super::{Inner, MeshError, MeshNode, tasks};

/// The node's test state.
#[derive(Default)]
pub(super) struct Testing {
    filter: Mutex<Option<Arc<dyn PacketFilter>>>,
    has_filter: AtomicBool,
    loopback_echo: AtomicBool,
}

impl Testing {
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

    /// The value of one counter of `stats_json`.
    pub fn stat(&self, name: &str) -> u64 {
        self.inner.stats_json()[name].as_u64().unwrap_or(0)
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
        self.inner
            .install_session(peer_node_id, addr, &keys, Role::Initiator)
            .map(|_| ())
    }

    /// Runs one heartbeat round now (as the loop does); the peers map must
    /// stay usable from other threads while it runs (it holds no guard
    /// while sending).
    pub fn heartbeat_round_for_test(&self) {
        tasks::heartbeat_round(&self.inner);
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
