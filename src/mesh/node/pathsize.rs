//! Large datagrams on the node (`mesh::pathsize` is the machine): a bound
//! Net peer that offered them gets probed on a direct path whose route
//! carries more than 8 KiB unfragmented, again every
//! `path_probe_interval` and after every change of path; an answered probe
//! raises the peer's payload limit (`Peer::max_payload`, read by the send
//! path), an unanswered one puts it back to v0.11's 8 KiB.

use std::time::Instant;

use super::super::hello::FLAG_LARGE_DATAGRAMS;
use super::super::pathsize::{PathProbe, PathProbeAck, ProbeAction, probe_size};
use super::super::peer::Peer;
use super::{Inner, bump};
use crate::wire::frames::FRAME_PREFIX;
use crate::wire::{HEADER_SIZE, MAX_PAYLOAD_SIZE, NetHeader, TAG_SIZE, encode_events};

impl Inner {
    /// The datagram size worth probing towards `peer` now: both nodes
    /// offered large datagrams, the session is direct, and the route
    /// carries more than 8 KiB unfragmented.
    fn large_probe_size(&self, peer: &Peer) -> Option<usize> {
        if !self.config.large_datagrams
            || peer.relay().is_some()
            || !peer.binding().peer_has(FLAG_LARGE_DATAGRAMS)
        {
            return None;
        }
        probe_size(self.mtu_oracle.path_mtu(peer.addr()))
    }

    /// The peer was bound, or its path changed (new address, relay, punched
    /// path): back to 8 KiB at once; the reliability tick probes the new
    /// path if it may carry more (off the receive path: the probe is a
    /// 64 KiB seal).
    pub(super) fn path_changed(&self, peer: &Peer) {
        if !self.config.large_datagrams {
            return;
        }
        peer.path().path_changed(Instant::now());
        peer.set_max_payload(MAX_PAYLOAD_SIZE);
    }

    /// The reliability tick: probes due, re-sent or given up.
    /// Runs the path probe if it is due; returns when it is due next.
    pub(super) fn drive_path_probe(&self, peer: &Peer, now: Instant) -> Option<Instant> {
        if !self.config.large_datagrams {
            return None;
        }
        {
            let path = peer.path_for_tick();
            if !path.due(now) {
                return path.next_due();
            }
        }
        let size = self.large_probe_size(peer);
        let action = peer.path().poll(size, self.config.path_probe_interval, now);
        if size.is_none() {
            peer.set_max_payload(MAX_PAYLOAD_SIZE);
        }
        self.act_on_probe(peer, action);
        peer.path_for_tick().next_due()
    }

    fn act_on_probe(&self, peer: &Peer, action: Option<ProbeAction>) {
        match action {
            Some(ProbeAction::Send { id, size }) => self.send_path_probe(peer, id, size),
            Some(ProbeAction::Failed) => {
                peer.set_max_payload(MAX_PAYLOAD_SIZE);
                bump(&self.stats.path_probes_failed);
            }
            None => {}
        }
    }

    fn send_path_probe(&self, peer: &Peer, id: u32, size: usize) {
        // Framed by hand: `encode_events` keeps to v0.11's 8 KiB.
        let event = PathProbe { id }.encode(size);
        let mut payload = Vec::with_capacity(FRAME_PREFIX + event.len());
        payload.extend_from_slice(&(event.len() as u32).to_le_bytes());
        payload.extend_from_slice(&event);
        self.send_reliability_event(peer, &payload);
        bump(&self.stats.path_probes_sent);
    }

    /// A probe from the peer: answer with the size it came in.
    pub(super) fn answer_path_probe(&self, peer: &Peer, header: &NetHeader, probe: &PathProbe) {
        let size = HEADER_SIZE + usize::from(header.payload_len) + TAG_SIZE;
        let ack = PathProbeAck {
            id: probe.id,
            size: size as u32,
        };
        let Ok(payload) = encode_events(&[&ack.encode()[..]]) else {
            return;
        };
        self.send_reliability_event(peer, &payload);
    }

    /// The answer to our probe: the peer's limit goes up if it is ours.
    pub(super) fn on_path_probe_ack(&self, peer: &Peer, ack: &PathProbeAck) {
        let raised = {
            let mut path = peer.path();
            path.on_ack(ack, self.config.path_probe_interval, Instant::now())
                .then(|| path.max_payload())
        };
        if let Some(max) = raised {
            peer.set_max_payload(max);
            bump(&self.stats.paths_enlarged);
        }
    }
}
