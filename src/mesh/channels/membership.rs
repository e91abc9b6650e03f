//! Our own membership requests (MESH2.md §1.2 subscriber side, §7 item 6):
//! each Subscribe/Unsubscribe carries a fresh random nonce in the v0.11
//! nonce field, waits keyed by (publisher, nonce), and completes only on an
//! Ack from that publisher with that nonce. Acks that match nothing are
//! ignored and counted; requests time out.
//!
//! v0.11 draws nonces from a process-wide counter and accepts an Ack from
//! any peer, so anyone can complete anyone's request; a random 64-bit
//! nonce is still a u64 in the same place, so the bytes stay v0.11's.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use rand_core::{OsRng, RngCore};

use crate::identity::{ChannelName, PermissionToken};
use crate::wire::{AckReason, Membership};

/// What a pending request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// A Subscribe.
    Subscribe,
    /// An Unsubscribe.
    Unsubscribe,
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequestOutcome {
    /// The publisher accepted.
    Accepted,
    /// The publisher refused, with its reason.
    Rejected(AckReason),
    /// No matching Ack within the timeout (v0.11 does not retransmit; the
    /// caller may ask again).
    TimedOut,
    /// The publisher's session went away first.
    PeerGone,
}

/// A finished request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedRequest {
    /// The publisher asked.
    pub peer: u64,
    /// The request's nonce.
    pub nonce: u64,
    /// Subscribe or Unsubscribe.
    pub kind: RequestKind,
    /// The channel.
    pub channel: ChannelName,
    /// How it ended.
    pub outcome: RequestOutcome,
}

/// Why a request could not be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Too many requests are waiting for Acks; wait for some to finish.
    #[error("too many membership requests are pending")]
    TooManyPending,
}

#[derive(Debug, Clone)]
struct Pending {
    kind: RequestKind,
    channel: ChannelName,
    deadline: Instant,
}

/// Pending outgoing membership requests.
pub struct OutgoingRequests {
    pending: HashMap<(u64, u64), Pending>,
    timeout: Duration,
    max_pending: usize,
    unmatched_acks: u64,
    rng: Box<dyn RngCore + Send>,
}

impl fmt::Debug for OutgoingRequests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingRequests")
            .field("pending", &self.pending.len())
            .field("timeout", &self.timeout)
            .field("unmatched_acks", &self.unmatched_acks)
            .finish()
    }
}

impl OutgoingRequests {
    /// Requests that time out after `timeout`, at most `max_pending` at
    /// once, with nonces from the OS random source.
    pub fn new(timeout: Duration, max_pending: usize) -> Self {
        Self::with_rng(timeout, max_pending, Box::new(OsRng))
    }

    /// As [`new`](Self::new) with a chosen nonce source (tests).
    pub fn with_rng(timeout: Duration, max_pending: usize, rng: Box<dyn RngCore + Send>) -> Self {
        Self {
            pending: HashMap::new(),
            timeout,
            max_pending,
            unmatched_acks: 0,
            rng,
        }
    }

    fn begin(
        &mut self,
        peer: u64,
        kind: RequestKind,
        channel: &ChannelName,
        now: Instant,
    ) -> Result<u64, RequestError> {
        if self.pending.len() >= self.max_pending {
            return Err(RequestError::TooManyPending);
        }
        let nonce = loop {
            let candidate = self.rng.next_u64();
            if !self.pending.contains_key(&(peer, candidate)) {
                break candidate;
            }
        };
        self.pending.insert(
            (peer, nonce),
            Pending {
                kind,
                channel: channel.clone(),
                deadline: now + self.timeout,
            },
        );
        Ok(nonce)
    }

    /// Starts a Subscribe to `peer`; returns the message to send.
    ///
    /// # Errors
    /// [`RequestError::TooManyPending`].
    pub fn subscribe(
        &mut self,
        peer: u64,
        channel: &ChannelName,
        token: Option<&PermissionToken>,
        now: Instant,
    ) -> Result<Membership, RequestError> {
        let nonce = self.begin(peer, RequestKind::Subscribe, channel, now)?;
        Ok(Membership::Subscribe {
            nonce,
            channel: channel.clone(),
            token: token.map(|t| t.to_bytes().to_vec()),
        })
    }

    /// Starts an Unsubscribe to `peer`; returns the message to send.
    ///
    /// # Errors
    /// [`RequestError::TooManyPending`].
    pub fn unsubscribe(
        &mut self,
        peer: u64,
        channel: &ChannelName,
        now: Instant,
    ) -> Result<Membership, RequestError> {
        let nonce = self.begin(peer, RequestKind::Unsubscribe, channel, now)?;
        Ok(Membership::Unsubscribe {
            nonce,
            channel: channel.clone(),
        })
    }

    /// An Ack arrived from `peer`. Completes the request it answers, or
    /// counts it as unmatched and returns `None`. `accepted` decides; the
    /// reason is reported as sent.
    pub fn on_ack(
        &mut self,
        peer: u64,
        nonce: u64,
        accepted: bool,
        reason: AckReason,
    ) -> Option<CompletedRequest> {
        let Some(pending) = self.pending.remove(&(peer, nonce)) else {
            self.unmatched_acks = self.unmatched_acks.saturating_add(1);
            return None;
        };
        let outcome = if accepted {
            RequestOutcome::Accepted
        } else {
            RequestOutcome::Rejected(reason)
        };
        Some(complete(peer, nonce, pending, outcome))
    }

    /// Completes every request whose deadline is at or before `now` as
    /// timed out.
    pub fn expire(&mut self, now: Instant) -> Vec<CompletedRequest> {
        self.drain_where(|_, p| p.deadline <= now, RequestOutcome::TimedOut)
    }

    /// Completes every request to `peer` as [`RequestOutcome::PeerGone`].
    pub fn forget_peer(&mut self, peer: u64) -> Vec<CompletedRequest> {
        self.drain_where(|(p, _), _| *p == peer, RequestOutcome::PeerGone)
    }

    fn drain_where(
        &mut self,
        done: impl Fn(&(u64, u64), &Pending) -> bool,
        outcome: RequestOutcome,
    ) -> Vec<CompletedRequest> {
        let keys: Vec<(u64, u64)> = self
            .pending
            .iter()
            .filter(|(k, p)| done(k, p))
            .map(|(k, _)| *k)
            .collect();
        let mut completed: Vec<CompletedRequest> = keys
            .into_iter()
            .filter_map(|key| {
                let pending = self.pending.remove(&key)?;
                Some(complete(key.0, key.1, pending, outcome))
            })
            .collect();
        completed.sort_by_key(|c| (c.peer, c.nonce));
        completed
    }

    /// The earliest deadline, for the node's timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// Whether a request of `kind` for `channel` to `peer` is pending.
    pub fn is_pending(&self, peer: u64, kind: RequestKind, channel: &ChannelName) -> bool {
        self.pending
            .iter()
            .any(|((p, _), r)| *p == peer && r.kind == kind && &r.channel == channel)
    }

    /// Requests waiting for an Ack.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Acks that answered no pending request (spoofed, late or duplicate).
    pub fn unmatched_acks(&self) -> u64 {
        self.unmatched_acks
    }
}

fn complete(peer: u64, nonce: u64, pending: Pending, outcome: RequestOutcome) -> CompletedRequest {
    CompletedRequest {
        peer,
        nonce,
        kind: pending.kind,
        channel: pending.channel,
        outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lidar() -> ChannelName {
        ChannelName::new("sensors/lidar").unwrap()
    }

    fn nonce_of(m: &Membership) -> u64 {
        match m {
            Membership::Subscribe { nonce, .. } | Membership::Unsubscribe { nonce, .. } => *nonce,
            Membership::Ack { nonce, .. } => *nonce,
        }
    }

    #[test]
    fn acks_match_by_peer_and_nonce_only() {
        let t0 = Instant::now();
        let mut out = OutgoingRequests::new(Duration::from_secs(5), 16);
        let msg = out.subscribe(7, &lidar(), None, t0).unwrap();
        let nonce = nonce_of(&msg);
        // The right nonce from the wrong peer, and a wrong nonce from the
        // right peer, are both ignored and counted.
        assert!(out.on_ack(8, nonce, true, AckReason::Ok).is_none());
        assert!(out.on_ack(7, nonce ^ 1, true, AckReason::Ok).is_none());
        assert_eq!(out.unmatched_acks(), 2);
        let done = out
            .on_ack(7, nonce, false, AckReason::Unauthorized)
            .unwrap();
        assert_eq!(
            done.outcome,
            RequestOutcome::Rejected(AckReason::Unauthorized)
        );
        assert_eq!(done.kind, RequestKind::Subscribe);
        // A duplicate Ack matches nothing any more.
        assert!(out.on_ack(7, nonce, true, AckReason::Ok).is_none());
        assert_eq!(out.unmatched_acks(), 3);
    }

    #[test]
    fn nonces_are_random_not_a_counter() {
        let t0 = Instant::now();
        let mut out = OutgoingRequests::new(Duration::from_secs(5), 16);
        let a = nonce_of(&out.subscribe(1, &lidar(), None, t0).unwrap());
        let b = nonce_of(&out.unsubscribe(1, &lidar(), t0).unwrap());
        assert_ne!(a, b);
        assert!(!(a <= 2 && b <= 2), "looks like v0.11's counter");
    }

    #[test]
    fn requests_time_out_and_are_bounded() {
        let t0 = Instant::now();
        let mut out = OutgoingRequests::new(Duration::from_secs(5), 2);
        out.subscribe(1, &lidar(), None, t0).unwrap();
        out.unsubscribe(2, &lidar(), t0 + Duration::from_secs(1))
            .unwrap();
        assert_eq!(
            out.subscribe(3, &lidar(), None, t0),
            Err(RequestError::TooManyPending)
        );
        assert_eq!(out.next_deadline(), Some(t0 + Duration::from_secs(5)));
        assert!(out.expire(t0 + Duration::from_millis(4999)).is_empty());
        let expired = out.expire(t0 + Duration::from_secs(5));
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].outcome, RequestOutcome::TimedOut);
        let gone = out.forget_peer(2);
        assert_eq!(gone[0].outcome, RequestOutcome::PeerGone);
        assert_eq!(out.pending_count(), 0);
    }
}
