//! The node's timers.
//!
//! * The heartbeat loop (after `start`): every `heartbeat_interval` it
//!   snapshots the peers — no map guard survives into the sends — and sends
//!   each a heartbeat and a pingwave, then runs failure detection, evicts
//!   dead peers and sweeps idle streams.
//! * The reliability tick (always): retransmits what timed out on Net
//!   reliable streams, flushes overdue acks and pending grants, and drives the identity hellos
//!   (re-sent with back-off until acknowledged; a peer that never answers
//!   is a v0.11 peer).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::super::failure::Health;
use super::super::packet::PacketKind;
use super::super::peer::Peer;
use super::super::stream::TxMode;
use super::{Inner, bump};

/// Period of the reliability tick.
pub(super) const TICK: Duration = Duration::from_millis(5);
/// First hello re-send delay (doubles up to a second).
const HELLO_RETRY: Duration = Duration::from_millis(100);

pub(super) async fn heartbeat_loop(inner: Arc<Inner>) {
    let mut interval = tokio::time::interval(inner.config.heartbeat_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if inner.is_shut_down() {
            return;
        }
        heartbeat_round(&inner);
    }
}

/// The peers, copied out of the map: the map's guards are released before
/// anything is sent (v0.11 held a shard guard across its sends).
fn snapshot(inner: &Inner) -> Vec<Arc<Peer>> {
    inner.peers.iter().map(|e| e.value().clone()).collect()
}

pub(super) fn heartbeat_round(inner: &Inner) {
    let peers = snapshot(inner);
    let now = Instant::now();
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    for peer in &peers {
        inner.send_control(peer, &PacketKind::HEARTBEAT, &[]);
        bump(&inner.stats.heartbeats_sent);
    }
    // One pingwave per direct peer (TTL 3 to v0.11 peers, 8 to Net peers),
    // right after the heartbeats; the router's table ages meanwhile.
    let pingwaves = {
        let mut router = inner.router();
        let out = router.originate_pingwaves(micros);
        router.tick(now);
        out
    };
    for pingwave in pingwaves {
        if let Some(addr) = inner.peers.get(&pingwave.to).map(|p| p.addr()) {
            inner.transmit(addr, vec![pingwave.bytes.to_vec()], false);
        }
    }
    for peer in &peers {
        if peer.should_evict(now) {
            tracing::info!(peer = peer.node_id, "evicting failed peer");
            bump(&inner.stats.evictions);
            inner.remove_peer(peer);
            continue;
        }
        let failed = peer.health(now) == Health::Failed;
        if failed && !peer.failed_reported.swap(true, Ordering::SeqCst) {
            inner.on_peer_failed(peer);
        } else if !failed && peer.failed_reported.swap(false, Ordering::SeqCst) {
            tracing::info!(peer = peer.node_id, "peer recovered");
            inner.on_peer_recovered(peer);
        }
        if failed {
            tracing::debug!(peer = peer.node_id, "peer failed (3 heartbeats missed)");
            // Withdraws the routes through it and reroutes at once.
            let reroutes = inner.router().table_mut().peer_failed(peer.node_id, now);
            if !reroutes.is_empty() {
                tracing::info!(
                    peer = peer.node_id,
                    routes = reroutes.len(),
                    "rerouted around a failed peer"
                );
            }
        }
        peer.streams().sweep(now);
    }
}

pub(super) async fn reliability_loop(inner: Arc<Inner>) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if inner.is_shut_down() {
            return;
        }
        reliability_round(&inner);
    }
}

fn reliability_round(inner: &Inner) {
    let now = Instant::now();
    inner.refresh_unix_secs();
    inner.channel_tick(now);
    inner.capability_tick(now);
    inner.traversal_tick(now);
    inner.expire_candidates(now);
    inner.continuity_tick();
    // Only the peers whose state changed since the last look or whose
    // timer came (`Peer::tick_due`): a node with thousands of quiet
    // sessions does not walk them every 5 ms.
    let now_ms = now.saturating_duration_since(inner.epoch).as_millis() as u64;
    let due: Vec<Arc<Peer>> = inner
        .peers
        .iter()
        .filter(|e| e.value().tick_due(now_ms))
        .map(|e| e.value().clone())
        .collect();
    for peer in due {
        let hello_at = drive_hello(inner, &peer, now);
        let probe_at = inner.drive_path_probe(&peer, now);
        let mut due: Vec<(u64, Vec<u64>)> = Vec::new();
        let mut acks = Vec::new();
        let mut grants = Vec::new();
        let mut busy = false;
        {
            let mut streams = peer.streams_for_tick();
            for (&id, stream) in streams.iter_mut() {
                let sending = stream.tx.mode == TxMode::Net && stream.tx.sender.in_flight() > 0;
                if sending {
                    let seqs = stream.tx.sender.due(now, 64);
                    if !seqs.is_empty() {
                        due.push((id, seqs));
                    }
                }
                if stream.rx.receiver.ack_due() {
                    acks.push(stream.rx.receiver.take_ack(id));
                }
                if let Some(total) = stream
                    .rx
                    .take_grant(1)
                    .or_else(|| stream.rx.regrant_due(now))
                {
                    grants.push((id, total, stream.rx.offer()));
                }
                busy |= sending || stream.rx.tick_pending();
            }
        }
        // Set before sending: what we send takes the peer's locks, and
        // asks for the next look itself where it leaves work behind.
        peer.tick_done(busy, [hello_at, probe_at].into_iter().flatten().min());
        for (id, total, offer) in grants {
            inner.send_grant(&peer, id, total, offer);
        }
        for ack in &acks {
            inner.send_ack(&peer, ack);
        }
        for (id, seqs) in due {
            inner.resend(&peer, id, &seqs);
        }
    }
}

/// Re-sends our hello until the peer acknowledges it; without any hello
/// from the peer by `hello_timeout`, treats it as a v0.11 node. Returns
/// when it has something to do next (None: nothing, the exchange settled).
fn drive_hello(inner: &Inner, peer: &Arc<Peer>, now: Instant) -> Option<Instant> {
    let (resend, went_legacy, next) = {
        let mut b = peer.binding_for_tick();
        if b.acked || b.legacy {
            return None;
        }
        let legacy_at = b
            .peer_entity
            .is_none()
            .then(|| b.since + inner.config.hello_timeout);
        if legacy_at.is_some_and(|at| now >= at) {
            b.legacy = true;
            (false, true, None)
        } else {
            let due = b
                .last_sent
                .is_none_or(|t| now.saturating_duration_since(t) >= resend_gap(b.sends));
            // After a send now, the next one comes `backoff` later.
            let resend_at = if due {
                now + resend_gap(b.sends + 1)
            } else {
                b.last_sent.map_or(now, |t| t + resend_gap(b.sends))
            };
            let next = legacy_at.map_or(resend_at, |at| at.min(resend_at));
            (due, false, Some(next))
        }
    };
    if went_legacy {
        peer.binding_changed.notify_all();
        if inner.config.require_identity {
            tracing::warn!(
                peer = peer.node_id,
                "peer did not bind an identity; dropped (require_identity)"
            );
            bump(&inner.stats.identity_refused);
            inner.remove_peer(peer);
        }
        return None;
    }
    if resend {
        inner.send_hello(peer, false);
    }
    next
}

/// The wait before the next hello re-send after `sends` sends: 100 ms,
/// doubling, at most a second.
fn resend_gap(sends: u32) -> Duration {
    HELLO_RETRY
        .saturating_mul(1 << sends.saturating_sub(1).min(4))
        .min(Duration::from_secs(1))
}
