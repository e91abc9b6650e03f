//! When and whom to probe: the classification rounds (MESH2.md §4.1) as a
//! pure machine the node drives, so classification runs by itself.
//!
//! Better than v0.11 (§7 items 19–20): a round starts at start-up (as soon
//! as two usable probe peers exist), when the local address changes, and
//! every `period` (60 s) — v0.11 never started its loop; probe peers are
//! chosen at random among **direct** peers on **distinct IP addresses**
//! (a relayed peer sees the relay's address; v0.11 took the first two
//! records in map order, relayed or not); the round ends when every probe
//! answered or at `classify_deadline` (5 s), and late answers are dropped.
//! The responder side answers with the source address of the request
//! packet ([`reflex_answer`]), not the address recorded at handshake.
//!
//! | Node event | Call | Then the node… |
//! |---|---|---|
//! | node started | [`Classifier::new`] | arms a timer at [`Classifier::next_deadline`] |
//! | session up with a direct peer | [`Classifier::on_peer_connected`] | re-arms the timer |
//! | local address changed | [`Classifier::on_local_address_changed`] | re-arms the timer |
//! | timer | [`Classifier::poll`] | `Probe(peers)`: sends an empty 0x0D00 event to each; `Done(c, had)`: `ReflexState::commit(c, had)`, announces when it changed |
//! | 0x0D00 answer (19 bytes) from peer P | [`Classifier::on_answer`] | as for `poll` when it returns `Done` |
//! | 0x0D00 request (empty) from peer P at source S | [`reflex_answer`]`(S)` | sends the 19 bytes back on 0x0D00 |

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::classify::{Classification, FilteringEvidence, LocalView, Observation, classify};
use crate::wire::subproto::{ADDRESS_SIZE, encode_address};

/// `classify_deadline` (MESH2.md §6).
pub const CLASSIFY_DEADLINE: Duration = Duration::from_secs(5);
/// Time between rounds (MESH2.md §6 loop period).
pub const CLASSIFY_PERIOD: Duration = Duration::from_secs(60);
/// Probes per round: two distinct IPs are required, a third adds evidence.
pub const PROBES_PER_ROUND: usize = 3;

/// The 19-byte reflex answer for a request that arrived from `source`.
pub fn reflex_answer(source: SocketAddr) -> [u8; ADDRESS_SIZE] {
    encode_address(&source)
}

/// A peer the node could probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProbeCandidate {
    /// Its node id.
    pub node_id: u64,
    /// The address its session runs to.
    pub addr: SocketAddr,
    /// The session runs through a relay.
    pub relayed: bool,
}

/// Picks up to `want` direct candidates, at most one per IP address,
/// in an order drawn from `seed` (the node passes fresh randomness).
/// Empty unless at least two distinct IPs are available.
pub fn choose_probe_peers(
    candidates: &[ProbeCandidate],
    want: usize,
    seed: u64,
) -> Vec<ProbeCandidate> {
    let mut direct: Vec<ProbeCandidate> =
        candidates.iter().filter(|c| !c.relayed).copied().collect();
    // A seeded Fisher–Yates shuffle (xorshift), so tests are repeatable.
    let mut state = seed | 1;
    for i in (1..direct.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let j = usize::try_from(state % (i as u64 + 1)).unwrap_or(0);
        direct.swap(i, j);
    }
    let mut chosen: Vec<ProbeCandidate> = Vec::new();
    let mut ips: Vec<IpAddr> = Vec::new();
    for c in direct {
        if chosen.len() == want {
            break;
        }
        if !ips.contains(&c.addr.ip()) {
            ips.push(c.addr.ip());
            chosen.push(c);
        }
    }
    if ips.len() < 2 { Vec::new() } else { chosen }
}

/// What the node should do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Send a reflex probe to each.
    Probe(Vec<ProbeCandidate>),
    /// A round ended: commit with `ReflexState::commit(classification,
    /// had_observations)`.
    Done(Classification, bool),
}

#[derive(Debug, Clone)]
struct Round {
    deadline: Instant,
    probes: HashMap<u64, SocketAddr>,
    observations: Vec<Observation>,
}

/// The round scheduler.
#[derive(Debug, Clone)]
pub struct Classifier {
    period: Duration,
    deadline: Duration,
    next_round: Option<Instant>,
    /// Waiting for probe peers (fewer than two distinct IPs last time).
    starved: bool,
    round: Option<Round>,
}

impl Classifier {
    /// A classifier whose first round is due at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            period: CLASSIFY_PERIOD,
            deadline: CLASSIFY_DEADLINE,
            next_round: Some(now),
            starved: false,
            round: None,
        }
    }

    /// With other timings (zero is clamped to 1 s, as v0.11 does).
    pub fn with_timing(now: Instant, period: Duration, deadline: Duration) -> Self {
        let clamp = |d: Duration| {
            if d.is_zero() {
                Duration::from_secs(1)
            } else {
                d
            }
        };
        Self {
            period: clamp(period),
            deadline: clamp(deadline),
            ..Self::new(now)
        }
    }

    /// When [`poll`](Self::poll) has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.round {
            Some(r) => Some(r.deadline),
            None if self.starved => None,
            None => self.next_round,
        }
    }

    /// A session with a direct peer came up: a starved classifier tries
    /// again at once.
    pub fn on_peer_connected(&mut self, now: Instant) {
        if self.starved {
            self.starved = false;
            self.next_round = Some(now);
        }
    }

    /// The local address changed: what we knew is stale; a new round
    /// starts at once (a round in progress is abandoned).
    pub fn on_local_address_changed(&mut self, now: Instant) {
        self.round = None;
        self.starved = false;
        self.next_round = Some(now);
    }

    /// Starts a due round or ends one at its deadline. `candidates` and
    /// `seed` choose the probe peers; `local` and `filtering` feed the
    /// classification when the round ends.
    pub fn poll(
        &mut self,
        now: Instant,
        candidates: &[ProbeCandidate],
        seed: u64,
        local: &LocalView,
        filtering: FilteringEvidence,
    ) -> Option<Step> {
        if let Some(round) = &self.round {
            if now < round.deadline {
                return None;
            }
            return Some(self.finish(now, local, filtering));
        }
        if self.starved || self.next_round.is_none_or(|due| now < due) {
            return None;
        }
        let chosen = choose_probe_peers(candidates, PROBES_PER_ROUND, seed);
        if chosen.is_empty() {
            self.starved = true;
            return None;
        }
        self.round = Some(Round {
            deadline: now + self.deadline,
            probes: chosen.iter().map(|c| (c.node_id, c.addr)).collect(),
            observations: Vec::new(),
        });
        Some(Step::Probe(chosen))
    }

    /// A reflex answer from `peer` (the 19 decoded bytes). Answers from
    /// peers not probed in this round, repeated ones and late ones are
    /// dropped. The round ends when every probe answered.
    pub fn on_answer(
        &mut self,
        peer: u64,
        observed: SocketAddr,
        now: Instant,
        local: &LocalView,
        filtering: FilteringEvidence,
    ) -> Option<Step> {
        let round = self.round.as_mut()?;
        if now >= round.deadline {
            return None;
        }
        let probe_addr = round.probes.remove(&peer)?;
        round.observations.push(Observation {
            probe_peer: peer,
            probe_addr,
            observed,
        });
        if round.probes.is_empty() {
            return Some(self.finish(now, local, filtering));
        }
        None
    }

    fn finish(&mut self, now: Instant, local: &LocalView, filtering: FilteringEvidence) -> Step {
        let observations = self
            .round
            .take()
            .map(|r| r.observations)
            .unwrap_or_default();
        self.next_round = Some(now + self.period);
        Step::Done(
            classify(local, &observations, filtering),
            !observations.is_empty(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::traversal::NatClass;
    use crate::wire::subproto::decode_address;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn cand(id: u64, addr: &str, relayed: bool) -> ProbeCandidate {
        ProbeCandidate {
            node_id: id,
            addr: sa(addr),
            relayed,
        }
    }

    fn local() -> LocalView {
        LocalView {
            bound: sa("0.0.0.0:4000"),
            interface_addrs: vec!["10.0.0.2".parse().unwrap()],
        }
    }

    #[test]
    fn chooses_direct_peers_on_distinct_ips() {
        let cands = [
            cand(1, "5.5.5.5:1", false),
            cand(2, "5.5.5.5:2", false),
            cand(3, "6.6.6.6:1", true),
            cand(4, "7.7.7.7:1", false),
        ];
        for seed in 0..50 {
            let chosen = choose_probe_peers(&cands, 3, seed);
            assert_eq!(chosen.len(), 2, "one per IP, no relayed peer");
            assert!(chosen.iter().all(|c| !c.relayed));
            assert_ne!(chosen[0].addr.ip(), chosen[1].addr.ip());
        }
        // Different seeds pick different peers on 5.5.5.5 (not map order).
        let firsts: std::collections::HashSet<u64> = (0..50)
            .map(|s| {
                choose_probe_peers(&cands, 3, s)
                    .iter()
                    .find(|c| c.addr.ip() == sa("5.5.5.5:1").ip())
                    .unwrap()
                    .node_id
            })
            .collect();
        assert_eq!(firsts.len(), 2);
        // One IP only: nothing.
        assert!(choose_probe_peers(&cands[..2], 3, 1).is_empty());
    }

    #[test]
    fn rounds_start_by_themselves_and_end_on_answers() {
        let t0 = Instant::now();
        let mut c = Classifier::new(t0);
        let cands = [cand(1, "5.5.5.5:1", false), cand(2, "6.6.6.6:1", false)];
        let none = FilteringEvidence::default();
        // Starved with one peer: waits for a connection, no timer.
        assert_eq!(c.poll(t0, &cands[..1], 1, &local(), none), None);
        assert_eq!(c.next_deadline(), None);
        c.on_peer_connected(t0);
        assert_eq!(c.next_deadline(), Some(t0));
        let Some(Step::Probe(peers)) = c.poll(t0, &cands, 1, &local(), none) else {
            panic!("a round")
        };
        assert_eq!(peers.len(), 2);
        assert_eq!(c.next_deadline(), Some(t0 + CLASSIFY_DEADLINE));
        // A stranger's answer is dropped; both answers end the round.
        assert_eq!(c.on_answer(9, sa("8.8.4.4:4000"), t0, &local(), none), None);
        assert_eq!(c.on_answer(1, sa("8.8.4.4:4000"), t0, &local(), none), None);
        assert_eq!(c.on_answer(1, sa("8.8.4.4:4000"), t0, &local(), none), None);
        let Some(Step::Done(result, had)) = c.on_answer(2, sa("8.8.4.4:4000"), t0, &local(), none)
        else {
            panic!("done")
        };
        assert!(had);
        assert_eq!(result.class, NatClass::Cone);
        // Next round a period later.
        assert_eq!(c.next_deadline(), Some(t0 + CLASSIFY_PERIOD));
        assert_eq!(c.poll(t0, &cands, 1, &local(), none), None);
    }

    #[test]
    fn deadline_ends_a_round_and_late_answers_are_dropped() {
        let t0 = Instant::now();
        let mut c = Classifier::new(t0);
        let cands = [cand(1, "5.5.5.5:1", false), cand(2, "6.6.6.6:1", false)];
        let none = FilteringEvidence::default();
        c.poll(t0, &cands, 7, &local(), none).unwrap();
        c.on_answer(1, sa("8.8.4.4:4000"), t0, &local(), none);
        let end = t0 + CLASSIFY_DEADLINE;
        let Some(Step::Done(result, had)) = c.poll(end, &cands, 7, &local(), none) else {
            panic!("done at the deadline")
        };
        assert!(had, "one observation");
        assert_eq!(result.class, NatClass::Unknown);
        assert_eq!(
            c.on_answer(2, sa("8.8.4.4:4000"), end, &local(), none),
            None
        );
        // A round with no answers reports no observations (keep state).
        c.on_local_address_changed(end);
        c.poll(end, &cands, 7, &local(), none).unwrap();
        let Some(Step::Done(_, had)) = c.poll(end + CLASSIFY_DEADLINE, &cands, 7, &local(), none)
        else {
            panic!("done")
        };
        assert!(!had);
    }

    #[test]
    fn address_change_abandons_the_round() {
        let t0 = Instant::now();
        let mut c = Classifier::with_timing(t0, Duration::ZERO, Duration::ZERO);
        let cands = [cand(1, "5.5.5.5:1", false), cand(2, "6.6.6.6:1", false)];
        let none = FilteringEvidence::default();
        c.poll(t0, &cands, 3, &local(), none).unwrap();
        assert_eq!(
            c.next_deadline(),
            Some(t0 + Duration::from_secs(1)),
            "clamped"
        );
        let t1 = t0 + Duration::from_millis(10);
        c.on_local_address_changed(t1);
        assert_eq!(c.on_answer(1, sa("8.8.4.4:1"), t1, &local(), none), None);
        assert!(matches!(
            c.poll(t1, &cands, 3, &local(), none),
            Some(Step::Probe(_))
        ));
    }

    #[test]
    fn answers_report_the_request_source() {
        let src = sa("8.8.4.4:51000");
        assert_eq!(decode_address(&reflex_answer(src)).unwrap(), src);
    }
}
