//! Subprotocol hooks: how a subsystem above the mesh (compute's 0x0500
//! migration, first) receives the messages of its subprotocol and sends
//! its own to a peer, without the node knowing the subsystem.
//!
//! * [`MeshNode::register_subprotocol`] installs a [`SubprotocolHandler`]
//!   for one id. Inbound packets of that id, from a bound peer, are split
//!   into their event frames and each frame is handed to the handler on
//!   the receive path — so a handler must only queue the message (a
//!   channel send) and return; it must never block or call back into a
//!   blocking node call.
//! * [`MeshNode::send_subprotocol`] sends one message as one event on the
//!   subprotocol's own stream (stream id = the subprotocol id, flags 0),
//!   exactly as v0.11 sends 0x0500 messages (WIRE.md §10.9). Sending to
//!   our own node_id hands the message to our own handler, in order.
//!
//! Delivery is **datagram-like**: one UDP packet, not retransmitted. A
//! subsystem that needs reliability builds it on its own request/reply
//! pairs (compute retransmits each migration step until the step's reply
//! arrives; see `compute/runtime/`), which keeps the bytes on the wire
//! identical to v0.11's.
//! * [`MeshNode::send_subprotocol_stream`] (Net to Net only) sends many
//!   messages of one subprotocol on a Net reliable stream — stream id
//!   [`SUBPROTOCOL_STREAM_BASE`] + the id, packets stamped with the id —
//!   waiting for credit like [`MeshNode::send_blocking`]. A peer that set
//!   the hello flag `FLAG_SUBPROTOCOL_STREAMS` takes such packets through
//!   the stream's reorder buffer (acks, retransmission, flow control) and
//!   hands their frames to its handler in stream order, crediting them at
//!   once (the handler only queues). Bulk transfers (compute's snapshot
//!   chunks: the same v0.11 message bytes) then lose nothing to a full
//!   socket buffer and need no pacing. A v0.11 peer never sets the flag
//!   and is never sent such a stream.
//!
//! A node with no 0x0500 handler answers TakeSnapshot and SnapshotReady
//! with MigrationFailed(ComputeNotSupported) and drops the other migration
//! messages, as v0.11 does (WIRE.md §10.9), so an orchestrator learns at
//! once that the node runs no compute.
//!
//! Ids the node itself dispatches (window grants, membership, capability,
//! reflex, rendezvous, Net reliability) and plain events (0x0000) cannot
//! be registered.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;

use super::super::packet::PacketKind;
use super::{Inner, MeshError, MeshNode};
use crate::cancel::CancelToken;
use crate::wire::{NetHeader, decode_events, encode_events, ids};

/// 0x0500 type bytes and the failure code the node itself uses
/// (`compute::migration::wire` owns the codec; a test pins these to it).
const MIGRATION_TAKE_SNAPSHOT: u8 = 0;
const MIGRATION_SNAPSHOT_READY: u8 = 1;
const MIGRATION_FAILED: u8 = 6;
const COMPUTE_NOT_SUPPORTED: u16 = 2;

/// Receives the messages of one subprotocol (see the module doc).
pub trait SubprotocolHandler: Send + Sync + 'static {
    /// One message (one event frame) from `from`, a bound peer, or from
    /// ourselves through [`MeshNode::send_subprotocol`]. Runs on the
    /// node's receive path: queue it and return.
    fn on_message(&self, from: u64, message: &[u8]);
}

type HandlerMap = HashMap<u16, Arc<dyn SubprotocolHandler>>;

/// The registered handlers: read on every packet of a non-core id, so the
/// map is swapped whole on (rare) registration.
#[derive(Default)]
pub(super) struct SubprotocolHooks {
    handlers: ArcSwap<HandlerMap>,
}

impl SubprotocolHooks {
    /// Installs the node's own handler for `id` (construction only).
    pub(super) fn install(&self, id: u16, handler: Arc<dyn SubprotocolHandler>) {
        self.handlers.rcu(|current| {
            let mut next = HandlerMap::clone(current);
            next.insert(id, handler.clone());
            next
        });
    }

    pub(super) fn get(&self, id: u16) -> Option<Arc<dyn SubprotocolHandler>> {
        self.handlers.load().get(&id).cloned()
    }
}

/// Stream ids of subprotocol streams: this base plus the subprotocol id
/// (the top 2^16 stream ids; an application stream there is taken for a
/// subprotocol stream by a Net peer with a handler for its id).
pub const SUBPROTOCOL_STREAM_BASE: u64 = 0xFFFF_FFFF_FFFF_0000;

/// Ids the node owns; a handler for them would never be called.
fn is_reserved(id: u16) -> bool {
    matches!(
        id,
        ids::EVENTS
            | ids::STREAM_WINDOW
            | ids::MEMBERSHIP
            | ids::CAPABILITY
            | ids::REFLEX
            | ids::RENDEZVOUS
            | ids::NET_RELIABILITY
    )
}

impl MeshNode {
    /// Routes subprotocol `id`'s inbound messages to `handler` from now on.
    ///
    /// # Errors
    /// [`MeshError::SubprotocolInUse`] if `id` is one the node dispatches
    /// itself or already has a handler (the existing one is kept).
    pub fn register_subprotocol(
        &self,
        id: u16,
        handler: Arc<dyn SubprotocolHandler>,
    ) -> Result<(), MeshError> {
        if is_reserved(id) {
            return Err(MeshError::SubprotocolInUse(id));
        }
        let hooks = &self.inner.subprotocols.handlers;
        let mut taken = false;
        hooks.rcu(|current| {
            taken = current.contains_key(&id);
            let mut next = HandlerMap::clone(current);
            next.entry(id).or_insert_with(|| handler.clone());
            next
        });
        if taken {
            return Err(MeshError::SubprotocolInUse(id));
        }
        Ok(())
    }

    /// Removes subprotocol `id`'s handler; its packets become plain events
    /// again. Returns whether one was registered (false, and nothing
    /// removed, for the continuity ids while the node runs continuity).
    pub fn unregister_subprotocol(&self, id: u16) -> bool {
        if self.inner.continuity_owns(id) {
            return false;
        }
        let mut removed = false;
        self.inner.subprotocols.handlers.rcu(|current| {
            let mut next = HandlerMap::clone(current);
            removed = next.remove(&id).is_some();
            next
        });
        removed
    }

    /// Sends `message` as one event of subprotocol `id` to `peer` (see the
    /// module doc: one packet, no retransmission).
    ///
    /// # Errors
    /// [`MeshError::ShuttingDown`]; [`MeshError::UnknownPeer`] without a
    /// session with `peer` (or, for our own node_id, without a handler);
    /// [`MeshError::EventTooLarge`] for a message that does not fit a
    /// packet.
    pub fn send_subprotocol(&self, peer: u64, id: u16, message: &[u8]) -> Result<(), MeshError> {
        self.inner.send_subprotocol(peer, id, message)
    }

    /// Whether `peer` takes [`send_subprotocol_stream`](Self::send_subprotocol_stream)
    /// (a bound Net peer whose hello set `FLAG_SUBPROTOCOL_STREAMS`).
    pub fn takes_subprotocol_streams(&self, peer: u64) -> bool {
        self.inner.peer(peer).is_ok_and(|p| {
            p.binding()
                .peer_has(super::super::hello::FLAG_SUBPROTOCOL_STREAMS)
        })
    }

    /// Sends `messages`, in order, as events of subprotocol `id` on a Net
    /// reliable stream to `peer` (see the module doc), waiting for credit
    /// packet by packet until `deadline` (forever with `None`). The peer's
    /// handler gets each message once, in order.
    ///
    /// # Errors
    /// [`MeshError::PeerLacks`] for a peer that does not take subprotocol
    /// streams (send the messages one by one with
    /// [`send_subprotocol`](Self::send_subprotocol) instead);
    /// [`MeshError::SubprotocolInUse`] for an id the node dispatches itself;
    /// then as [`send_blocking_cancellable`](Self::send_blocking_cancellable).
    pub fn send_subprotocol_stream<E: AsRef<[u8]>>(
        &self,
        peer: u64,
        id: u16,
        messages: &[E],
        deadline: Option<Instant>,
        cancel: Option<&CancelToken>,
    ) -> Result<(), MeshError> {
        if is_reserved(id) || id == ids::CAUSAL {
            return Err(MeshError::SubprotocolInUse(id));
        }
        if !self.takes_subprotocol_streams(peer) {
            self.inner.check_running()?;
            self.inner.peer(peer)?;
            return Err(MeshError::PeerLacks {
                peer,
                feature: "subprotocol streams",
            });
        }
        let stream_id = SUBPROTOCOL_STREAM_BASE + u64::from(id);
        {
            let p = self.inner.peer(peer)?;
            let mut streams = p.streams();
            let stream = streams.open(stream_id, true, None, Instant::now());
            stream.tx.subprotocol = id;
        }
        self.inner
            .send_events(peer, stream_id, messages, Some(deadline), cancel)
    }
}

impl Inner {
    pub(super) fn send_subprotocol(
        &self,
        peer: u64,
        id: u16,
        message: &[u8],
    ) -> Result<(), MeshError> {
        if peer == self.node_id {
            self.check_running()?;
            let handler = self
                .subprotocols
                .get(id)
                .ok_or(MeshError::UnknownPeer(peer))?;
            handler.on_message(peer, message);
            return Ok(());
        }
        let session = self.peer(peer)?;
        let payload =
            encode_events(&[message]).map_err(|_| MeshError::EventTooLarge(message.len()))?;
        let kind = PacketKind {
            subprotocol_id: id,
            stream_id: u64::from(id),
            sequence: session.session.next_control_seq(),
            event_count: 1,
            ..PacketKind::default()
        };
        self.send_control(&session, &kind, &payload);
        Ok(())
    }

    /// The handler for `id`, if one is registered and `id` is not core.
    pub(super) fn subprotocol_handler(&self, id: u16) -> Option<Arc<dyn SubprotocolHandler>> {
        if is_reserved(id) {
            return None;
        }
        self.subprotocols.get(id)
    }

    /// A 0x0500 packet with no handler installed (module doc). Only the
    /// type byte and the origin are read; the reply is the 11-byte
    /// MigrationFailed of COMPUTE.md §2.2–2.3.
    pub(super) fn refuse_migration(&self, from: u64, header: &NetHeader, plaintext: &[u8]) {
        for frame in decode_events(plaintext, usize::from(header.event_count)) {
            let (Some(&kind), Some(origin)) = (frame.first(), frame.get(1..9)) else {
                continue;
            };
            if kind != MIGRATION_TAKE_SNAPSHOT && kind != MIGRATION_SNAPSHOT_READY {
                continue;
            }
            let mut reply = Vec::with_capacity(11);
            reply.push(MIGRATION_FAILED);
            reply.extend_from_slice(origin);
            reply.extend_from_slice(&COMPUTE_NOT_SUPPORTED.to_le_bytes());
            let _ = self.send_subprotocol(from, ids::MIGRATION, &reply);
        }
    }

    /// One packet of a registered subprotocol: each frame to the handler.
    pub(super) fn handle_subprotocol(
        &self,
        handler: &dyn SubprotocolHandler,
        from: u64,
        header: &NetHeader,
        plaintext: &[u8],
    ) {
        for frame in decode_events(plaintext, usize::from(header.event_count)) {
            handler.on_message(from, frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::compute::migration::wire::{failure_code, msg_type};

    #[test]
    fn the_refusal_constants_are_the_codec_s() {
        assert_eq!(super::MIGRATION_TAKE_SNAPSHOT, msg_type::TAKE_SNAPSHOT);
        assert_eq!(super::MIGRATION_SNAPSHOT_READY, msg_type::SNAPSHOT_READY);
        assert_eq!(super::MIGRATION_FAILED, msg_type::MIGRATION_FAILED);
        assert_eq!(
            super::COMPUTE_NOT_SUPPORTED,
            failure_code::COMPUTE_NOT_SUPPORTED
        );
    }
}
