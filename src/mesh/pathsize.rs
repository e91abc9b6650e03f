//! Datagrams larger than v0.11's 8 KiB between two Net nodes (issue 19,
//! item 3), as a pure state machine: no sockets, no clocks.
//!
//! Both nodes say in their signed hello that they receive datagrams of up
//! to [`MAX_LARGE_DATAGRAM`] bytes (`FLAG_LARGE_DATAGRAMS`). A sender then
//! asks the kernel for the route's MTU towards the peer: only where a
//! larger datagram travels without IP fragmentation (loopback, jumbo
//! frames) is it worth anything, since one lost fragment loses the whole
//! datagram. If the route allows more than 8 KiB, the sender *probes*: a
//! [`PathProbe`] padded to the size wanted, sealed like any packet, which
//! the peer answers with a [`PathProbeAck`]. Only an answered probe raises
//! the peer's datagram limit, and it is re-probed periodically and after
//! every change of path (a new address, a relay, a punched path): a probe
//! that goes unanswered three times puts the peer back to 8 KiB.
//!
//! Wire (Net nodes only, events of subprotocol 0x1A00 next to the
//! reliability acks): a probe is `NETP ‖ id u32 LE ‖ padding`, an answer
//! `NETQ ‖ id u32 LE ‖ size u32 LE` (the datagram size the probe came in).

use std::time::{Duration, Instant};

use crate::wire::{HEADER_SIZE, MAX_PACKET_SIZE, TAG_SIZE};

/// The largest datagram two Net nodes exchange (a UDP payload fits 65 507
/// bytes over IPv4; this leaves room to spare, as GSO sends do).
pub const MAX_LARGE_DATAGRAM: usize = crate::wire::MAX_LARGE_PACKET_SIZE;
/// IPv6 + UDP headers: the most a route's MTU loses to them.
const IP_UDP_OVERHEAD: usize = 48;
/// How long a probe waits for its answer before it is sent again.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(250);
/// Unanswered probes before the peer is put back to 8 KiB.
pub const PROBE_TRIES: u32 = 3;
/// After a failed probe, how long before the next attempt.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(300);

const PROBE_MAGIC: [u8; 4] = *b"NETP";
const ACK_MAGIC: [u8; 4] = *b"NETQ";

/// A probe event: [`PathProbe::event_len`] bytes in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathProbe {
    /// Matches the answer to the probe.
    pub id: u32,
}

/// The answer to a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathProbeAck {
    /// The probe's id.
    pub id: u32,
    /// The size of the datagram the probe arrived in.
    pub size: u32,
}

/// Bytes that are neither a probe nor an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a path probe or answer ({len} bytes)")]
pub struct NotPathProbe {
    /// The length seen.
    pub len: usize,
}

impl PathProbe {
    /// The event that makes a sealed datagram of `datagram` bytes (one
    /// framed event: header, 4-byte frame length, the event, tag).
    pub fn event_len(datagram: usize) -> usize {
        datagram.saturating_sub(HEADER_SIZE + TAG_SIZE + 4).max(8)
    }

    /// The padded event for a datagram of `datagram` bytes.
    pub fn encode(&self, datagram: usize) -> Vec<u8> {
        let mut out = vec![0u8; Self::event_len(datagram)];
        out[..4].copy_from_slice(&PROBE_MAGIC);
        out[4..8].copy_from_slice(&self.id.to_le_bytes());
        out
    }

    /// Decodes a probe (any padding).
    ///
    /// # Errors
    /// [`NotPathProbe`] for other bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, NotPathProbe> {
        if bytes.len() < 8 || bytes[..4] != PROBE_MAGIC {
            return Err(NotPathProbe { len: bytes.len() });
        }
        Ok(Self {
            id: u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        })
    }
}

impl PathProbeAck {
    /// Encoded size.
    pub const SIZE: usize = 12;

    /// The bytes.
    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut out = [0u8; Self::SIZE];
        out[..4].copy_from_slice(&ACK_MAGIC);
        out[4..8].copy_from_slice(&self.id.to_le_bytes());
        out[8..].copy_from_slice(&self.size.to_le_bytes());
        out
    }

    /// Decodes an answer.
    ///
    /// # Errors
    /// [`NotPathProbe`] for other bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, NotPathProbe> {
        if bytes.len() != Self::SIZE || bytes[..4] != ACK_MAGIC {
            return Err(NotPathProbe { len: bytes.len() });
        }
        let word = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        Ok(Self {
            id: word(4),
            size: word(8),
        })
    }
}

/// The datagram size worth probing on a route whose MTU is `mtu`: the
/// largest that travels unfragmented, if more than v0.11's 8 KiB.
pub fn probe_size(mtu: Option<usize>) -> Option<usize> {
    let size = mtu?.saturating_sub(IP_UDP_OVERHEAD).min(MAX_LARGE_DATAGRAM);
    (size > MAX_PACKET_SIZE).then_some(size)
}

/// One peer's datagram limit and its probing.
#[derive(Debug, Clone)]
pub struct PathSize {
    /// The confirmed datagram size (v0.11's 8 KiB until a probe is
    /// answered).
    confirmed: usize,
    probe: Option<Probe>,
    /// When to probe next (None: not before the path changes).
    next_probe: Option<Instant>,
    next_id: u32,
}

#[derive(Debug, Clone, Copy)]
struct Probe {
    id: u32,
    size: usize,
    sent_at: Instant,
    tries: u32,
}

/// What the node should do for a peer now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeAction {
    /// Send (or send again) the probe `id` as a datagram of `size` bytes.
    Send {
        /// The probe's id.
        id: u32,
        /// The datagram size.
        size: usize,
    },
    /// The probe went unanswered: the limit is back to 8 KiB.
    Failed,
}

impl Default for PathSize {
    fn default() -> Self {
        Self::new()
    }
}

impl PathSize {
    /// v0.11's limit, nothing planned.
    pub fn new() -> Self {
        Self {
            confirmed: MAX_PACKET_SIZE,
            probe: None,
            next_probe: None,
            next_id: 1,
        }
    }

    /// The datagram size the peer gets now.
    pub fn datagram(&self) -> usize {
        self.confirmed
    }

    /// The largest framed payload of a datagram to the peer now.
    pub fn max_payload(&self) -> usize {
        self.confirmed - HEADER_SIZE - TAG_SIZE
    }

    /// A probe waits for its answer.
    pub fn probing(&self) -> bool {
        self.probe.is_some()
    }

    /// The path changed (or a Net peer was bound): back to 8 KiB at once
    /// (the old path's limit says nothing of the new one), and a probe due
    /// now if the new path is worth one ([`poll`](Self::poll) decides).
    pub fn path_changed(&mut self, now: Instant) {
        self.confirmed = MAX_PACKET_SIZE;
        self.probe = None;
        self.next_probe = Some(now);
    }

    fn start(&mut self, size: usize, now: Instant) {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.probe = Some(Probe {
            id,
            size,
            sent_at: now,
            tries: 0,
        });
    }

    /// When [`due`](Self::due) turns true without anything else changing
    /// (None: not before the path changes).
    pub fn next_due(&self) -> Option<Instant> {
        match &self.probe {
            Some(p) if p.tries == 0 => Some(p.sent_at),
            Some(p) => Some(p.sent_at + PROBE_TIMEOUT),
            None => self.next_probe,
        }
    }

    /// Whether [`poll`](Self::poll) has something to do at `now` (cheap:
    /// the caller looks up the route's MTU only then).
    pub fn due(&self, now: Instant) -> bool {
        match &self.probe {
            Some(p) => p.tries == 0 || now.saturating_duration_since(p.sent_at) >= PROBE_TIMEOUT,
            None => self.next_probe.is_some_and(|at| now >= at),
        }
    }

    /// What to do at `now` (the reliability tick asks): (re)send the
    /// probe, give up, or start the periodic re-probe of `size` every
    /// `every`.
    pub fn poll(
        &mut self,
        size: Option<usize>,
        every: Duration,
        now: Instant,
    ) -> Option<ProbeAction> {
        match &mut self.probe {
            Some(p)
                if p.tries == 0 || now.saturating_duration_since(p.sent_at) >= PROBE_TIMEOUT =>
            {
                if p.tries >= PROBE_TRIES {
                    self.probe = None;
                    self.confirmed = MAX_PACKET_SIZE;
                    self.next_probe = Some(now + RETRY_AFTER_FAILURE);
                    return Some(ProbeAction::Failed);
                }
                p.tries += 1;
                p.sent_at = now;
                Some(ProbeAction::Send {
                    id: p.id,
                    size: p.size,
                })
            }
            Some(_) => None,
            None => {
                if self.next_probe.is_none_or(|at| now < at) {
                    return None;
                }
                let Some(size) = size else {
                    // Nothing worth probing until the path changes.
                    self.next_probe = None;
                    self.confirmed = MAX_PACKET_SIZE;
                    return None;
                };
                self.next_probe = Some(now + every);
                self.start(size, now);
                self.poll(Some(size), every, now)
            }
        }
    }

    /// An answer arrived: if it is the probe's, the limit becomes the size
    /// the probe arrived in (never more than asked). Returns whether the
    /// limit changed.
    pub fn on_ack(&mut self, ack: &PathProbeAck, every: Duration, now: Instant) -> bool {
        let Some(p) = self.probe else {
            return false;
        };
        if ack.id != p.id {
            return false;
        }
        self.probe = None;
        self.next_probe = Some(now + every);
        let size = (ack.size as usize).min(p.size);
        if size <= MAX_PACKET_SIZE || size == self.confirmed {
            return false;
        }
        self.confirmed = size;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY: Duration = Duration::from_secs(60);

    fn t0() -> Instant {
        Instant::now()
    }

    #[test]
    fn probes_and_answers_round_trip_and_refuse_other_bytes() {
        let probe = PathProbe { id: 9 };
        let bytes = probe.encode(MAX_LARGE_DATAGRAM);
        assert_eq!(bytes.len(), MAX_LARGE_DATAGRAM - 84);
        assert_eq!(PathProbe::decode(&bytes), Ok(probe));
        assert!(PathProbe::decode(&bytes[..7]).is_err());
        let ack = PathProbeAck {
            id: 9,
            size: 65_000,
        };
        assert_eq!(PathProbeAck::decode(&ack.encode()), Ok(ack));
        assert!(
            PathProbeAck::decode(&bytes[..12]).is_err(),
            "a probe is no answer"
        );
        assert!(PathProbe::decode(&ack.encode()).is_err());
    }

    #[test]
    fn only_routes_that_carry_more_than_8_kib_unfragmented_are_probed() {
        assert_eq!(probe_size(Some(65_536)), Some(MAX_LARGE_DATAGRAM));
        assert_eq!(probe_size(Some(9_000)), Some(8_952));
        assert_eq!(probe_size(Some(1_500)), None);
        assert_eq!(probe_size(None), None);
    }

    #[test]
    fn an_answered_probe_raises_the_limit_and_a_path_change_resets_it() {
        let now = t0();
        let mut p = PathSize::new();
        assert_eq!(p.datagram(), MAX_PACKET_SIZE);
        p.path_changed(now);
        let Some(ProbeAction::Send { id, size }) = p.poll(Some(65_000), EVERY, now) else {
            panic!("a probe is due");
        };
        assert_eq!(size, 65_000);
        assert_eq!(
            p.poll(Some(65_000), EVERY, now),
            None,
            "waits for the answer"
        );
        assert!(!p.on_ack(
            &PathProbeAck {
                id: id + 1,
                size: 65_000
            },
            EVERY,
            now
        ));
        assert!(p.on_ack(&PathProbeAck { id, size: 65_000 }, EVERY, now));
        assert_eq!(p.datagram(), 65_000);
        assert_eq!(p.max_payload(), 65_000 - 80);
        assert!(
            !p.on_ack(&PathProbeAck { id, size: 65_000 }, EVERY, now),
            "once"
        );
        p.path_changed(now);
        assert_eq!(p.datagram(), MAX_PACKET_SIZE);
        // The new path is not worth a probe: nothing until it changes.
        assert!(p.due(now));
        assert_eq!(p.poll(None, EVERY, now), None);
        assert!(!p.due(now + EVERY));
    }

    #[test]
    fn unanswered_probes_give_up_after_three_tries_and_retry_later() {
        let now = t0();
        let mut p = PathSize::new();
        p.path_changed(now);
        let mut sends = 0;
        let mut at = now;
        loop {
            match p.poll(Some(65_000), EVERY, at) {
                Some(ProbeAction::Send { .. }) => sends += 1,
                Some(ProbeAction::Failed) => break,
                None => {}
            }
            at += Duration::from_millis(50);
        }
        assert_eq!(sends, PROBE_TRIES);
        assert_eq!(p.datagram(), MAX_PACKET_SIZE);
        assert_eq!(p.poll(Some(65_000), EVERY, at + EVERY), None, "not so soon");
        assert!(matches!(
            p.poll(Some(65_000), EVERY, at + RETRY_AFTER_FAILURE),
            Some(ProbeAction::Send { .. })
        ));
    }

    #[test]
    fn a_confirmed_path_is_reprobed_and_falls_back_when_it_stops_answering() {
        let now = t0();
        let mut p = PathSize::new();
        p.path_changed(now);
        let Some(ProbeAction::Send { id, .. }) = p.poll(Some(65_000), EVERY, now) else {
            panic!("a probe is due");
        };
        assert!(p.on_ack(&PathProbeAck { id, size: 65_000 }, EVERY, now));
        assert_eq!(p.poll(Some(65_000), EVERY, now + EVERY / 2), None);
        assert!(!p.due(now + EVERY / 2));
        let later = now + EVERY;
        assert!(p.due(later));
        assert!(matches!(
            p.poll(Some(65_000), EVERY, later),
            Some(ProbeAction::Send { .. })
        ));
        assert_eq!(p.datagram(), 65_000, "kept while the re-probe runs");
        let mut at = later;
        while p.poll(Some(65_000), EVERY, at) != Some(ProbeAction::Failed) {
            at += PROBE_TIMEOUT;
        }
        assert_eq!(p.datagram(), MAX_PACKET_SIZE);
    }

    #[test]
    fn an_answer_never_raises_the_limit_above_the_probe() {
        let now = t0();
        let mut p = PathSize::new();
        p.path_changed(now);
        let Some(ProbeAction::Send { id, .. }) = p.poll(Some(20_000), EVERY, now) else {
            panic!("a probe is due");
        };
        assert!(p.on_ack(&PathProbeAck { id, size: 65_000 }, EVERY, now));
        assert_eq!(p.datagram(), 20_000);
    }
}
