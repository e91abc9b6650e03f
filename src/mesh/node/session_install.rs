//! Session installation and the re-key rules (docs/mesh.md, "Sessions,
//! restarts and re-keying").
//!
//! * A completed handshake for a node_id with no session, or whose session
//!   is past its idle window, installs at once (one atomic map entry).
//! * A live session that never bound an identity (a v0.11 peer, or one
//!   still pending) refuses the newcomer: the v0.11 rule.
//! * A live session bound to a pinned entity takes the newcomer as a
//!   *candidate*: msg2 and our hello go out, but the candidate is not in
//!   the peers map nor the address index, so nothing is sent to it and
//!   only its hello is read. When that hello proves the pinned entity the
//!   candidate replaces the old session in one step (indexes, router
//!   entry, the channel and capability hooks of a replaced session, then
//!   session-up); the old session's streams end and its waiters wake. A
//!   hello that fails, or a candidate whose hello never comes within
//!   `hello_timeout`, is dropped and the old session stays. One candidate
//!   per node_id (a newer handshake supersedes it), [`MAX_CANDIDATES`] in
//!   all.
//! * `connect` returns once the handshake is done and the peer's hello has
//!   had a short, RTT-derived chance to arrive ([`Inner::settle_binding`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::mapref::entry::Entry;

use super::super::crypto::{Role, SessionKeys};
use super::super::peer::{Binding, Peer};
use super::super::routing::PeerProtocol;
use super::super::session::Session;
use super::{Inner, MeshError, PendingAccept, bump};

/// Candidate sessions held at once, all node_ids together: a flood of
/// handshakes claiming bound node_ids costs at most this many peers.
pub(super) const MAX_CANDIDATES: usize = 8;

/// The shortest time `connect` gives a Net responder's hello (sent right
/// behind msg2) to arrive, whatever the measured round trip.
const HELLO_GRACE_FLOOR: Duration = Duration::from_millis(50);
/// The grace is this many handshake round trips (when longer than the floor).
const HELLO_GRACE_RTTS: u32 = 8;

/// A session waiting for its hello to prove the pinned entity.
pub(super) struct Candidate {
    peer: Arc<Peer>,
    /// The `accept` the handshake answered (direct form): completed when
    /// the candidate replaces the old session, refused when it is dropped.
    accept: Option<Arc<PendingAccept>>,
    born: Instant,
}

/// The candidates, by node_id.
#[derive(Default)]
pub(super) struct Candidates(Mutex<HashMap<u64, Candidate>>);

impl Candidates {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Candidate>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many are held (introspection and tests).
    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// What a completed handshake became.
pub(super) enum Installed {
    /// The node's session, usable at once.
    Session(Arc<Peer>),
    /// A candidate: it replaces the bound session once its hello proves
    /// the same entity.
    Candidate(Arc<Peer>),
}

impl Installed {
    pub(super) fn peer(&self) -> &Arc<Peer> {
        match self {
            Installed::Session(p) | Installed::Candidate(p) => p,
        }
    }
}

impl Inner {
    /// Installs a new session for `node_id` (see the module docs for the
    /// rules). `candidate_ok`: a live bound session may take the newcomer
    /// as a candidate (responders); initiators never replace a live
    /// session. The caller sends msg2 and our identity hello.
    pub(super) fn install_session(
        &self,
        node_id: u64,
        addr: SocketAddr,
        keys: &SessionKeys,
        role: Role,
        relay: Option<u64>,
        candidate_ok: bool,
    ) -> Result<Installed, MeshError> {
        let now = Instant::now();
        let peer = Peer::new(
            node_id,
            addr,
            Session::new(keys, role),
            self.config.session_timeout,
            self.stream_limits(),
            self.epoch,
        );
        peer.set_relay(relay);
        let peer = Arc::new(peer);
        let replaced = match self.peers.entry(node_id) {
            Entry::Occupied(mut e) => {
                if e.get().is_live(now, self.config.session_timeout) {
                    let bound = e.get().binding().peer_entity.is_some();
                    drop(e);
                    if candidate_ok && bound && self.add_candidate(&peer, now) {
                        bump(&self.stats.session_candidates);
                        return Ok(Installed::Candidate(peer));
                    }
                    bump(&self.stats.handshakes_refused);
                    return Err(MeshError::SessionExists(node_id));
                }
                Some(e.insert(peer.clone()))
            }
            Entry::Vacant(e) => {
                e.insert(peer.clone());
                None
            }
        };
        if let Some(old) = replaced {
            self.retire_replaced(&old, &peer);
        }
        self.index_session(&peer, now);
        bump(&self.stats.handshakes_completed);
        Ok(Installed::Session(peer))
    }

    /// The session-id and address indexes and the router learn `peer`.
    fn index_session(&self, peer: &Peer, now: Instant) {
        self.session_index.insert(peer.session.id(), peer.node_id);
        match peer.relay() {
            // A relayed peer's address is its relay's: the address index
            // keeps naming the relay.
            Some(relay) => self
                .router()
                .table_mut()
                .add_relayed_peer(peer.node_id, relay, now),
            None => {
                self.addr_index.insert(peer.addr(), peer.node_id);
                self.router()
                    .table_mut()
                    .add_direct_peer(peer.node_id, PeerProtocol::Legacy, now);
            }
        }
    }

    /// `old` was replaced by `new` in the peers map: its index entries and
    /// router entry go, its waiters wake (their streams are gone), and the
    /// channel and capability planes forget it (a new session is a new
    /// subscriber and a new announcer).
    fn retire_replaced(&self, old: &Peer, new: &Peer) {
        let node_id = old.node_id;
        self.session_index
            .remove_if(&old.session.id(), |_, v| *v == node_id);
        let old_addr = old.addr();
        self.addr_index.remove_if(&old_addr, |_, v| *v == node_id);
        {
            let mut router = self.router();
            match (old.relay(), new.relay()) {
                (Some(_), None) => router.table_mut().remove_relayed_peer(node_id),
                (None, Some(_)) => {
                    router
                        .table_mut()
                        .remove_direct_peer(node_id, Instant::now());
                }
                _ => {}
            }
        }
        old.binding_changed.notify_all();
        old.credit_granted.notify_all();
        self.on_peer_removed(node_id);
    }

    /// Removes a peer (and its index entries) if it is still `peer`; a
    /// candidate is dropped instead.
    pub(super) fn remove_peer(&self, peer: &Arc<Peer>) {
        if peer.is_candidate() {
            self.drop_candidate(peer);
            return;
        }
        let removed = self
            .peers
            .remove_if(&peer.node_id, |_, v| Arc::ptr_eq(v, peer))
            .is_some();
        if removed {
            self.session_index.remove(&peer.session.id());
            let addr = peer.addr();
            self.addr_index.remove_if(&addr, |_, v| *v == peer.node_id);
            self.inbound.forget_peer(peer.node_id);
            let mut router = self.router();
            if peer.relay().is_some() {
                router.table_mut().remove_relayed_peer(peer.node_id);
            } else {
                router
                    .table_mut()
                    .remove_direct_peer(peer.node_id, Instant::now());
            }
            drop(router);
            peer.binding_changed.notify_all();
            peer.credit_granted.notify_all();
            self.on_peer_removed(peer.node_id);
        }
    }

    /// Whether `peer` is the node's session in the peers map (not a
    /// replaced or removed one).
    pub(super) fn is_current(&self, peer: &Arc<Peer>) -> bool {
        self.peers
            .get(&peer.node_id)
            .is_some_and(|p| Arc::ptr_eq(p.value(), peer))
    }

    /// Holds `peer` as its node_id's candidate: it supersedes an older
    /// candidate of the same node_id; false when [`MAX_CANDIDATES`] other
    /// node_ids already have one.
    fn add_candidate(&self, peer: &Arc<Peer>, now: Instant) -> bool {
        let superseded = {
            let mut all = self.candidates.lock();
            if !all.contains_key(&peer.node_id) && all.len() >= MAX_CANDIDATES {
                return false;
            }
            peer.set_candidate(true);
            all.insert(
                peer.node_id,
                Candidate {
                    peer: peer.clone(),
                    accept: None,
                    born: now,
                },
            )
        };
        if let Some(old) = superseded {
            self.candidate_gone(old);
        }
        true
    }

    /// The `accept` a direct handshake answered with a candidate: it
    /// returns when the candidate replaces the session.
    pub(super) fn candidate_accept(&self, peer: &Arc<Peer>, accept: Arc<PendingAccept>) {
        let mut all = self.candidates.lock();
        match all.get_mut(&peer.node_id) {
            Some(c) if Arc::ptr_eq(&c.peer, peer) => c.accept = Some(accept),
            _ => {
                drop(all);
                accept.waiter.complete(Err("exists".into()));
            }
        }
    }

    /// The candidate whose session id is `session_id`.
    pub(super) fn candidate_by_session(&self, session_id: u64) -> Option<Arc<Peer>> {
        let all = self.candidates.lock();
        if all.is_empty() {
            return None;
        }
        all.values()
            .find(|c| c.peer.session.id() == session_id)
            .map(|c| c.peer.clone())
    }

    /// Drops `peer`'s candidacy (its hello failed): the old session stays.
    pub(super) fn drop_candidate(&self, peer: &Arc<Peer>) {
        let gone = {
            let mut all = self.candidates.lock();
            match all.get(&peer.node_id) {
                Some(c) if Arc::ptr_eq(&c.peer, peer) => all.remove(&peer.node_id),
                _ => None,
            }
        };
        if let Some(c) = gone {
            self.candidate_gone(c);
        }
    }

    fn candidate_gone(&self, c: Candidate) {
        bump(&self.stats.candidates_dropped);
        if let Some(accept) = c.accept {
            accept.waiter.complete(Err("exists".into()));
        }
    }

    /// Drops candidates whose hello did not come within `hello_timeout`.
    pub(super) fn expire_candidates(&self, now: Instant) {
        let expired: Vec<Candidate> = {
            let mut all = self.candidates.lock();
            if all.is_empty() {
                return;
            }
            let ids: Vec<u64> = all
                .iter()
                .filter(|(_, c)| now.saturating_duration_since(c.born) >= self.config.hello_timeout)
                .map(|(id, _)| *id)
                .collect();
            ids.iter().filter_map(|id| all.remove(id)).collect()
        };
        for c in expired {
            tracing::debug!(peer = c.peer.node_id, "session candidate expired");
            self.candidate_gone(c);
        }
    }

    /// `peer`'s hello proved the pinned entity: it replaces the node's
    /// session. False when it is no longer the candidate (expired or
    /// superseded).
    pub(super) fn promote_candidate(&self, peer: &Arc<Peer>) -> bool {
        let Some(candidate) = ({
            let mut all = self.candidates.lock();
            match all.get(&peer.node_id) {
                Some(c) if Arc::ptr_eq(&c.peer, peer) => all.remove(&peer.node_id),
                _ => None,
            }
        }) else {
            return false;
        };
        peer.set_candidate(false);
        let now = Instant::now();
        let old = self.peers.insert(peer.node_id, peer.clone());
        if let Some(old) = old {
            self.retire_replaced(&old, peer);
        }
        self.index_session(peer, now);
        bump(&self.stats.handshakes_completed);
        bump(&self.stats.sessions_replaced);
        tracing::info!(
            peer = peer.node_id,
            session = peer.session.id(),
            "a restarted peer proved its identity; its new session replaced the old one"
        );
        self.on_session_up(peer);
        if let Some(accept) = candidate.accept {
            accept.waiter.complete(Ok(peer.addr()));
        }
        true
    }

    /// What `connect` waits for once its handshake is done: the peer's
    /// hello, for a grace of [`HELLO_GRACE_RTTS`] handshake round trips (at
    /// least [`HELLO_GRACE_FLOOR`], at most `hello_timeout`). A Net
    /// responder sends its hello right behind msg2, so a Net peer is known
    /// within the grace and `connect` then waits for the binding to
    /// complete (one more round trip); a v0.11 peer sends none, and
    /// `connect` returns at the end of the grace with the binding still
    /// pending. The binding resolves later (a hello, or `hello_timeout`),
    /// and reliable streams wait for it at their first send, so nothing is
    /// decided early. With `require_identity` the whole `hello_timeout` is
    /// waited for a hello, and its absence fails the call.
    pub(super) fn settle_binding(
        &self,
        peer: &Arc<Peer>,
        rtt: Duration,
        stop: &dyn Fn() -> bool,
    ) -> Result<(), MeshError> {
        let now = Instant::now();
        let full = now + self.config.hello_timeout;
        let grace = rtt
            .saturating_mul(HELLO_GRACE_RTTS)
            .max(HELLO_GRACE_FLOOR)
            .min(self.config.hello_timeout);
        let known = |b: &Binding| b.resolved() || b.peer_entity.is_some();
        let binding = peer.wait_binding(now + grace, stop, &known);
        let binding = if binding.peer_entity.is_some() || self.config.require_identity {
            peer.wait_binding(full, stop, &Binding::resolved)
        } else {
            binding
        };
        if binding.peer_entity.is_none() && self.config.require_identity {
            self.remove_peer(peer);
            return Err(MeshError::IdentityRefused(peer.node_id));
        }
        Ok(())
    }
}
