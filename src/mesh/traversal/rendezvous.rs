//! The rendezvous exchange (MESH2.md §4.3–4.4, WIRE.md §10.7–10.8) as two
//! pure state machines: [`Coordinator`] (R) and [`Endpoint`] (A and B).
//! Events and the time go in; [`Action`]s come out (messages to send over
//! a session, keep-alives to send at given instants, punches finished).
//!
//! # Timeline
//! 1. A → R: `PunchRequest{B, A's reflex}`; A waits `punch_deadline` for an
//!    introduce, else falls back to the coordinator (relay).
//! 2. R → A and R → B: `PunchIntroduce{other, other's reflex, fire_at}`,
//!    `fire_at` = R's clock + `punch_fire_lead` (500 ms).
//! 3. Each endpoint sends three keep-alives to the other's reflex at
//!    lead, lead + 100 ms, lead + 250 ms after receipt (lead = fire_at − own
//!    clock, at least 0), and watches for the other's keep-alive for
//!    `punch_deadline`.
//! 4. A keep-alive from the counterpart ⇒ `PunchAck{self → counterpart}`
//!    through R, which forwards it.
//! 5. The requester, on the counterpart's ack, handshakes directly; the
//!    node reports the result ([`Endpoint::on_direct_result`]). Between
//!    Net nodes the requester does not wait for the ack when it hears the
//!    counterpart's (authenticated) keep-alive: it answers the address that
//!    came from at once. The counterpart's mapping towards our reflex lets
//!    that answer in even when our keep-alives never reached it — a
//!    symmetric counterpart's announced reflex is only its mapping towards
//!    R — so a full cone reaches a symmetric NAT directly, which waiting
//!    for the ack (v0.11) never does.
//!
//! # Authenticated punches (between Net nodes; MESH2.md §7 item 21)
//! v0.11 sends punch id 0 and accepts any keep-alive from the counterpart's
//! exact reflex address, without checking the sender: anyone who can send
//! a datagram from (or spoof) that address completes the punch, and any
//! node holding a session with R can forge a `PunchAck`.
//!
//! A and B share no key before the punch (that is why they punch), and the
//! A–R session key is unknown to B, so a MAC under a session key cannot be
//! checked by the counterpart. Instead R, which holds an authenticated
//! session with both, draws a fresh random 32-byte **punch key** per
//! introduction and appends it to each `PunchIntroduce` it sends to a Net
//! node (68 bytes: the 36-byte v0.11 message ‖ key; [`NetIntroduce`]). The
//! introduce travels inside the encrypted R–A and R–B sessions, so only A,
//! B and R know the key. Then:
//! - a keep-alive from X to Y carries `punch_id` = the first 4 bytes of
//!   BLAKE2s-MAC(key, "net punch keep-alive" ‖ X ‖ Y) (node ids, LE);
//! - a `PunchAck` from X to Y carries the same MAC with label
//!   "net punch ack";
//! - a receiver checks the sender id and the tag; a wrong or missing tag is
//!   ignored ([`Ignored`]), so a third node can neither complete nor abort
//!   the punch. Punch ids are random per introduction (the key is).
//! - R forwards an ack only when its `from_peer` is the session it came
//!   from, so a node cannot speak for another.
//! - A keep-alive is accepted from **any** source address once its tag
//!   checks out, and the handshake goes to the address it came from: this
//!   is what makes Symmetric → Cone (address-dependent filtering) work,
//!   which v0.11's exact-address observer could not.
//!
//! A 32-bit tag gives a blind forger one chance in 2^32 per datagram, during
//! a window of `punch_deadline`. A replayed keep-alive from another address
//! can at worst make a handshake go to the wrong address; the handshake
//! itself (Noise, the peer's static key) then fails and the node falls back
//! to the relay.
//!
//! Towards a v0.11 node (the node knows from the hello exchange) R sends the
//! exact 36-byte introduce and the endpoints behave like v0.11: punch id 0,
//! keep-alives accepted from the exact counterpart reflex, sender unchecked.
//!
//! # Node event → call → then the node…
//!
//! | Node event | Call | Then the node… |
//! |---|---|---|
//! | `connect_direct` chose SinglePunch | [`Endpoint::request`] | sends the bytes to the coordinator, schedules [`Endpoint::next_deadline`] |
//! | 0x0D01 frame from a peer (we are R) | [`Coordinator::on_frame`] | performs the actions |
//! | 0x0D01 frame from our coordinator | [`Endpoint::on_frame`] | performs the actions |
//! | 14-byte datagram with magic `50 48` | [`Endpoint::on_keepalive`] | performs the actions |
//! | timer at [`Endpoint::next_deadline`] | [`Endpoint::poll`] | performs the actions |
//! | direct handshake after [`Action::Finished`] `Direct` done | [`Endpoint::on_direct_result`] | on failure goes via the coordinator |
//! | relayed session after `Relay` up | [`Endpoint::on_relay_result`] | — |
//! | stats query | [`Endpoint::stats`] | — |
//!
//! Actions: [`Action::Send`] (encrypted 0x0D01 event over the session with
//! that peer), [`Action::KeepAlive`] (raw datagram from the mesh socket at
//! `at`; the node may send it late, never early), [`Action::Finished`]
//! (complete the `connect_direct` waiter for that peer).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use blake2::Blake2sMac256;
use blake2::digest::{FixedOutput, KeyInit, Update};

use super::classify::is_advertisable;
use crate::wire::WireError;
use crate::wire::subproto::{PunchKeepAlive, Rendezvous};

/// `punch_fire_lead` (MESH2.md §6).
pub const PUNCH_FIRE_LEAD: Duration = Duration::from_millis(500);
/// `punch_deadline` (MESH2.md §6).
pub const PUNCH_DEADLINE: Duration = Duration::from_secs(5);
/// Keep-alive offsets after the lead (MESH2.md §6).
pub const KEEPALIVE_OFFSETS: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_millis(100),
    Duration::from_millis(250),
];
/// Size of the punch key appended to a Net introduce.
pub const PUNCH_KEY_SIZE: usize = 32;
/// Length of the v0.11 `PunchIntroduce`.
pub const INTRODUCE_SIZE: usize = 36;
/// Length of a Net `PunchIntroduce` (v0.11's ‖ punch key).
pub const NET_INTRODUCE_SIZE: usize = INTRODUCE_SIZE + PUNCH_KEY_SIZE;

const KEEPALIVE_LABEL: &[u8] = b"net punch keep-alive";
const ACK_LABEL: &[u8] = b"net punch ack";

/// Timing settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PunchTiming {
    /// `punch_fire_lead`.
    pub fire_lead: Duration,
    /// `punch_deadline`.
    pub deadline: Duration,
}

impl Default for PunchTiming {
    fn default() -> Self {
        Self {
            fire_lead: PUNCH_FIRE_LEAD,
            deadline: PUNCH_DEADLINE,
        }
    }
}

/// A punch key (drawn by R per introduction).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PunchKey(pub [u8; PUNCH_KEY_SIZE]);

impl std::fmt::Debug for PunchKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PunchKey(..)")
    }
}

impl PunchKey {
    fn tag(&self, label: &[u8], from: u64, to: u64) -> u32 {
        let Ok(mut mac) = <Blake2sMac256 as KeyInit>::new_from_slice(&self.0) else {
            unreachable!("BLAKE2s accepts a 32-byte key")
        };
        mac.update(label);
        mac.update(&from.to_le_bytes());
        mac.update(&to.to_le_bytes());
        let out: [u8; 32] = mac.finalize_fixed().into();
        u32::from_le_bytes([out[0], out[1], out[2], out[3]])
    }

    /// The punch id of a keep-alive from `from` to `to`.
    pub fn keepalive_id(&self, from: u64, to: u64) -> u32 {
        self.tag(KEEPALIVE_LABEL, from, to)
    }

    /// The punch id of an ack from `from` to `to`.
    pub fn ack_id(&self, from: u64, to: u64) -> u32 {
        self.tag(ACK_LABEL, from, to)
    }
}

/// A `PunchIntroduce` as Net sends it to a Net node: v0.11's 36 bytes
/// followed by the punch key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetIntroduce {
    /// The counterpart.
    pub peer: u64,
    /// Its reflex.
    pub peer_reflex: SocketAddr,
    /// When to fire (Unix ms, R's clock).
    pub fire_at_ms: u64,
    /// The punch key; `None` for v0.11's form.
    pub key: Option<PunchKey>,
}

impl NetIntroduce {
    /// The bytes: 36 (no key) or 68.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Rendezvous::PunchIntroduce {
            peer: self.peer,
            peer_reflex: self.peer_reflex,
            fire_at_ms: self.fire_at_ms,
        }
        .encode();
        if let Some(key) = self.key {
            out.extend_from_slice(&key.0);
        }
        out
    }
}

/// A decoded 0x0D01 frame: a v0.11 message, or a Net introduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RendezvousFrame {
    /// `PunchRequest`, `PunchAck`, or a 36-byte `PunchIntroduce`.
    V011(Rendezvous),
    /// A 68-byte introduce carrying a punch key.
    NetIntroduce(NetIntroduce),
}

/// Decodes a 0x0D01 frame; a 68-byte kind-2 message is a Net introduce.
///
/// # Errors
/// What [`Rendezvous::decode`] rejects (unknown kind, wrong length, bad
/// address).
pub fn decode_frame(bytes: &[u8]) -> Result<RendezvousFrame, WireError> {
    if bytes.first() == Some(&2) && bytes.len() == NET_INTRODUCE_SIZE {
        let Rendezvous::PunchIntroduce {
            peer,
            peer_reflex,
            fire_at_ms,
        } = Rendezvous::decode(&bytes[..INTRODUCE_SIZE])?
        else {
            unreachable!("kind 2 decodes to an introduce")
        };
        let mut key = [0u8; PUNCH_KEY_SIZE];
        key.copy_from_slice(&bytes[INTRODUCE_SIZE..]);
        return Ok(RendezvousFrame::NetIntroduce(NetIntroduce {
            peer,
            peer_reflex,
            fire_at_ms,
            key: Some(PunchKey(key)),
        }));
    }
    Rendezvous::decode(bytes).map(RendezvousFrame::V011)
}

/// How a punch ended for the `connect_direct` waiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PunchOutcome {
    /// Handshake directly to this address, then report with
    /// [`Endpoint::on_direct_result`].
    Direct(SocketAddr),
    /// Go through the coordinator; report with [`Endpoint::on_relay_result`].
    Relay(FallbackReason),
}

/// Why a punch fell back to the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FallbackReason {
    /// No introduce within `punch_deadline` (R had no reflex for the target,
    /// or no session with it).
    NoIntroduce,
    /// Introduced, but no ack from the counterpart within `punch_deadline`.
    NoAck,
}

/// Something for the node to do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Send these bytes as a 0x0D01 event over the session with `to`.
    Send {
        /// The peer (the coordinator, or for R the endpoint).
        to: u64,
        /// The frame.
        bytes: Vec<u8>,
    },
    /// Send a raw keep-alive datagram from the mesh socket at `at`.
    KeepAlive {
        /// Destination.
        to: SocketAddr,
        /// When (not before).
        at: Instant,
        /// The 14 bytes.
        bytes: [u8; PunchKeepAlive::SIZE],
    },
    /// The punch towards `peer` is over: complete its waiter.
    Finished {
        /// The counterpart.
        peer: u64,
        /// What to do next.
        outcome: PunchOutcome,
    },
}

/// Why an input changed nothing (for logs and tests; never an error the
/// node must act on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Ignored {
    /// The bytes do not decode.
    Malformed,
    /// A message kind this role does not take.
    WrongKind,
    /// R has no reflex or no session for the target.
    UnknownTarget,
    /// An introduce or ack nobody waits for.
    Unexpected,
    /// An ack whose `from_peer` is not the session it came from.
    Spoofed,
    /// A tag that does not check out (wrong key, sender or direction).
    BadTag,
    /// A keep-alive from an address a v0.11-mode punch does not watch.
    WrongSource,
    /// An introduce from a peer that is not our coordinator for it.
    NotCoordinator,
}

/// The traversal counters (MESH2.md §4.7; monotonic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PunchStats {
    /// Introduces received for punches we requested.
    pub punches_attempted: u64,
    /// Direct handshakes after an ack that succeeded.
    pub punches_succeeded: u64,
    /// `connect_direct` calls that ended on a working relayed session.
    pub relay_fallbacks: u64,
}

/// What R knows about a peer, from the node's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerView {
    /// R has a session with it.
    pub has_session: bool,
    /// Its reflex from R's capability index.
    pub indexed_reflex: Option<SocketAddr>,
    /// The address R currently sees it at (its session's source).
    pub observed: Option<SocketAddr>,
    /// It is a Net node (hello exchange done).
    pub is_net: bool,
}

/// The coordinator (R).
#[derive(Debug, Clone)]
pub struct Coordinator {
    local_id: u64,
    timing: PunchTiming,
}

impl Coordinator {
    /// R with node id `local_id`.
    pub fn new(local_id: u64, timing: PunchTiming) -> Self {
        Self { local_id, timing }
    }

    /// A 0x0D01 frame from `from` (authenticated by its session).
    ///
    /// - `PunchRequest{target}`: introduces both sides when R has sessions
    ///   with both and a reflex for each. The requester's reflex is the
    ///   request's value when advertisable, else the address R sees it at
    ///   (v0.11 took the value as is, even 0.0.0.0); the target's is the
    ///   indexed reflex, else R's observation. A Net recipient gets the
    ///   punch key (`new_key`, fresh randomness from the node).
    /// - `PunchAck` not for us: forwarded to `to_peer` unchanged, only if
    ///   `from_peer` is `from` and R has a session with `to_peer`.
    ///
    /// `peers` looks up what R knows about a node.
    ///
    /// # Errors
    /// [`Ignored`] when nothing is sent.
    pub fn on_frame(
        &mut self,
        from: u64,
        bytes: &[u8],
        now_unix_ms: u64,
        new_key: impl FnOnce() -> PunchKey,
        peers: impl Fn(u64) -> Option<PeerView>,
    ) -> Result<Vec<Action>, Ignored> {
        let frame = decode_frame(bytes).map_err(|_| Ignored::Malformed)?;
        match frame {
            RendezvousFrame::V011(Rendezvous::PunchRequest {
                target,
                requester_reflex,
            }) => {
                let requester = peers(from).filter(|p| p.has_session);
                let target_view = peers(target).filter(|p| p.has_session);
                let (Some(requester), Some(target_view)) = (requester, target_view) else {
                    return Err(Ignored::UnknownTarget);
                };
                let requester_reflex = if is_advertisable(requester_reflex) {
                    Some(requester_reflex)
                } else {
                    requester.observed
                };
                let target_reflex = target_view.indexed_reflex.or(target_view.observed);
                let (Some(requester_reflex), Some(target_reflex)) =
                    (requester_reflex, target_reflex)
                else {
                    return Err(Ignored::UnknownTarget);
                };
                let fire_at_ms = now_unix_ms.saturating_add(
                    u64::try_from(self.timing.fire_lead.as_millis()).unwrap_or(u64::MAX),
                );
                // The key only when both ends check tags: a v0.11 node
                // would drop a 68-byte introduce, and a keyed punch with a
                // v0.11 counterpart could never complete.
                let key = (requester.is_net && target_view.is_net).then(new_key);
                let to_requester = NetIntroduce {
                    peer: target,
                    peer_reflex: target_reflex,
                    fire_at_ms,
                    key,
                };
                let to_target = NetIntroduce {
                    peer: from,
                    peer_reflex: requester_reflex,
                    fire_at_ms,
                    key: to_requester.key,
                };
                Ok(vec![
                    Action::Send {
                        to: from,
                        bytes: to_requester.encode(),
                    },
                    Action::Send {
                        to: target,
                        bytes: to_target.encode(),
                    },
                ])
            }
            RendezvousFrame::V011(Rendezvous::PunchAck {
                from_peer, to_peer, ..
            }) => {
                if to_peer == self.local_id {
                    return Err(Ignored::Unexpected);
                }
                if from_peer != from {
                    return Err(Ignored::Spoofed);
                }
                if !peers(to_peer).is_some_and(|p| p.has_session) {
                    return Err(Ignored::UnknownTarget);
                }
                Ok(vec![Action::Send {
                    to: to_peer,
                    bytes: bytes.to_vec(),
                }])
            }
            _ => Err(Ignored::WrongKind),
        }
    }
}

#[derive(Debug, Clone)]
struct Punch {
    coordinator: u64,
    /// We asked for it (A); B only answers.
    requester: bool,
    /// Waiting for the introduce until this instant (requester only).
    introduce_deadline: Option<Instant>,
    /// Introduced: the counterpart's reflex, key, and when we stop watching.
    introduced: Option<Introduced>,
}

#[derive(Debug, Clone, Copy)]
struct Introduced {
    reflex: SocketAddr,
    key: Option<PunchKey>,
    deadline: Instant,
    /// Where the counterpart's keep-alive came from.
    heard_from: Option<SocketAddr>,
    /// We sent our ack.
    acked: bool,
}

/// An endpoint (A or B): the punches in progress, by counterpart.
#[derive(Debug, Clone)]
pub struct Endpoint {
    local_id: u64,
    timing: PunchTiming,
    punches: HashMap<u64, Punch>,
    /// Punches whose outcome was `Direct`, awaiting the handshake result.
    pending_direct: HashSet<u64>,
    stats: PunchStats,
}

impl Endpoint {
    /// An endpoint with node id `local_id`.
    pub fn new(local_id: u64, timing: PunchTiming) -> Self {
        Self {
            local_id,
            timing,
            punches: HashMap::new(),
            pending_direct: HashSet::new(),
            stats: PunchStats::default(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> PunchStats {
        self.stats
    }

    /// Starts a punch towards `target` through `coordinator`. `own_reflex`
    /// is our advertised reflex; without one we send `0.0.0.0:0` and a Net
    /// coordinator uses the address it sees us at (v0.11 sent the local
    /// socket address, often private or a wildcard). A newer request for
    /// the same target replaces the older one.
    pub fn request(
        &mut self,
        target: u64,
        coordinator: u64,
        own_reflex: Option<SocketAddr>,
        now: Instant,
    ) -> Vec<Action> {
        let requester_reflex = own_reflex
            .filter(|a| is_advertisable(*a))
            .unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0));
        self.punches.insert(
            target,
            Punch {
                coordinator,
                requester: true,
                introduce_deadline: Some(now + self.timing.deadline),
                introduced: None,
            },
        );
        vec![Action::Send {
            to: coordinator,
            bytes: Rendezvous::PunchRequest {
                target,
                requester_reflex,
            }
            .encode(),
        }]
    }

    /// A 0x0D01 frame from `from` (a peer we have a session with).
    ///
    /// - Introduce: from our coordinator for a punch we requested, or from
    ///   any peer for a punch another node asked for (we are B; the
    ///   coordinator is then `from`). Schedules three keep-alives and
    ///   watches for the counterpart's for `punch_deadline`.
    /// - Ack: from the coordinator of a punch we requested, for us, with
    ///   the right tag ⇒ [`Action::Finished`] `Direct`.
    ///
    /// # Errors
    /// [`Ignored`] when nothing changes.
    pub fn on_frame(
        &mut self,
        from: u64,
        bytes: &[u8],
        now: Instant,
        now_unix_ms: u64,
    ) -> Result<Vec<Action>, Ignored> {
        let frame = decode_frame(bytes).map_err(|_| Ignored::Malformed)?;
        match frame {
            RendezvousFrame::NetIntroduce(intro) => {
                self.on_introduce(from, intro, now, now_unix_ms)
            }
            RendezvousFrame::V011(Rendezvous::PunchIntroduce {
                peer,
                peer_reflex,
                fire_at_ms,
            }) => self.on_introduce(
                from,
                NetIntroduce {
                    peer,
                    peer_reflex,
                    fire_at_ms,
                    key: None,
                },
                now,
                now_unix_ms,
            ),
            RendezvousFrame::V011(Rendezvous::PunchAck {
                from_peer,
                to_peer,
                punch_id,
            }) => {
                if to_peer != self.local_id {
                    return Err(Ignored::Unexpected);
                }
                let Some(punch) = self.punches.get(&from_peer) else {
                    return Err(Ignored::Unexpected);
                };
                if !punch.requester {
                    return Err(Ignored::Unexpected);
                }
                if punch.coordinator != from {
                    return Err(Ignored::NotCoordinator);
                }
                let Some(intro) = punch.introduced else {
                    return Err(Ignored::Unexpected);
                };
                if let Some(key) = intro.key
                    && punch_id != key.ack_id(from_peer, self.local_id)
                {
                    return Err(Ignored::BadTag);
                }
                let addr = intro.heard_from.unwrap_or(intro.reflex);
                self.punches.remove(&from_peer);
                self.pending_direct.insert(from_peer);
                Ok(vec![Action::Finished {
                    peer: from_peer,
                    outcome: PunchOutcome::Direct(addr),
                }])
            }
            RendezvousFrame::V011(_) => Err(Ignored::WrongKind),
        }
    }

    fn on_introduce(
        &mut self,
        from: u64,
        intro: NetIntroduce,
        now: Instant,
        now_unix_ms: u64,
    ) -> Result<Vec<Action>, Ignored> {
        if intro.peer == self.local_id {
            return Err(Ignored::Unexpected);
        }
        match self.punches.get(&intro.peer) {
            Some(p) if p.requester && p.coordinator != from => {
                return Err(Ignored::NotCoordinator);
            }
            Some(p) if p.requester && p.introduce_deadline.is_none() => {
                // A second introduce for the same request: keep the first.
                return Err(Ignored::Unexpected);
            }
            Some(p) if p.requester => {
                self.stats.punches_attempted += 1;
            }
            Some(p) if p.coordinator != from && p.introduced.is_some_and(|i| now < i.deadline) => {
                // Another node cannot take over a punch in progress.
                return Err(Ignored::NotCoordinator);
            }
            _ => {}
        }
        let requester = self
            .punches
            .get(&intro.peer)
            .is_some_and(|p| p.requester && p.coordinator == from);
        let lead = Duration::from_millis(intro.fire_at_ms.saturating_sub(now_unix_ms))
            .min(self.timing.fire_lead * 4);
        let fire = now + lead;
        let punch_id = intro
            .key
            .map_or(0, |k| k.keepalive_id(self.local_id, intro.peer));
        let bytes = PunchKeepAlive {
            sender: self.local_id,
            punch_id,
        }
        .encode();
        self.punches.insert(
            intro.peer,
            Punch {
                coordinator: from,
                requester,
                introduce_deadline: None,
                introduced: Some(Introduced {
                    reflex: intro.peer_reflex,
                    key: intro.key,
                    deadline: now + lead + self.timing.deadline,
                    heard_from: None,
                    acked: false,
                }),
            },
        );
        Ok(KEEPALIVE_OFFSETS
            .iter()
            .map(|offset| Action::KeepAlive {
                to: intro.peer_reflex,
                at: fire + *offset,
                bytes,
            })
            .collect())
    }

    /// A raw datagram that looks like a keep-alive, from `source`.
    ///
    /// Accepted when it belongs to an introduced punch: with a punch key,
    /// from the counterpart with the right tag (any source address); in
    /// v0.11 mode, from the counterpart's exact reflex (sender unchecked).
    /// The first accepted one sends our ack through the coordinator.
    ///
    /// # Errors
    /// [`Ignored`] when nothing changes.
    pub fn on_keepalive(
        &mut self,
        source: SocketAddr,
        bytes: &[u8],
        now: Instant,
    ) -> Result<Vec<Action>, Ignored> {
        let ka = PunchKeepAlive::decode(bytes).map_err(|_| Ignored::Malformed)?;
        let local_id = self.local_id;
        // Net mode: the sender names the punch; v0.11 mode: the address does.
        let counterpart = if self
            .punches
            .get(&ka.sender)
            .and_then(|p| p.introduced)
            .is_some_and(|i| i.key.is_some())
        {
            ka.sender
        } else {
            let found = self.punches.iter().find(|(_, p)| {
                p.introduced
                    .is_some_and(|i| i.key.is_none() && i.reflex == source)
            });
            match found {
                Some((id, _)) => *id,
                None => {
                    return Err(if self.punches.contains_key(&ka.sender) {
                        Ignored::WrongSource
                    } else {
                        Ignored::Unexpected
                    });
                }
            }
        };
        let Some(punch) = self.punches.get_mut(&counterpart) else {
            return Err(Ignored::Unexpected);
        };
        let Some(intro) = punch.introduced.as_mut() else {
            return Err(Ignored::Unexpected);
        };
        if now >= intro.deadline {
            return Err(Ignored::Unexpected);
        }
        if let Some(key) = intro.key
            && ka.punch_id != key.keepalive_id(counterpart, local_id)
        {
            return Err(Ignored::BadTag);
        }
        if intro.heard_from.is_none() {
            intro.heard_from = Some(source);
        }
        if intro.acked {
            return Ok(Vec::new());
        }
        intro.acked = true;
        let punch_id = intro.key.map_or(0, |k| k.ack_id(local_id, counterpart));
        let coordinator = punch.coordinator;
        // A requester that hears its counterpart (Net mode: the tag proves
        // who sent it) answers that address at once: the counterpart's
        // mapping towards our reflex exists and lets our reply in, even
        // when our own keep-alives never reached it (a symmetric
        // counterpart's reflex is only its mapping towards R), so its ack
        // may never come. The handshake or path check that follows proves
        // the path both ways. v0.11 mode keeps waiting for the ack.
        let finish = punch.requester && intro.key.is_some();
        if !punch.requester || finish {
            // B's part ends with the ack; A's handshake arrives as a
            // normal inbound handshake.
            self.punches.remove(&counterpart);
        }
        let mut actions = vec![Action::Send {
            to: coordinator,
            bytes: Rendezvous::PunchAck {
                from_peer: local_id,
                to_peer: counterpart,
                punch_id,
            }
            .encode(),
        }];
        if finish {
            self.pending_direct.insert(counterpart);
            actions.push(Action::Finished {
                peer: counterpart,
                outcome: PunchOutcome::Direct(source),
            });
        }
        Ok(actions)
    }

    /// The next instant [`poll`](Self::poll) has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.punches
            .values()
            .filter_map(|p| p.introduce_deadline.or(p.introduced.map(|i| i.deadline)))
            .min()
    }

    /// Expires punches: a requester with no introduce or no ack falls back
    /// to the relay; an answering side just stops watching.
    pub fn poll(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        self.punches.retain(|peer, p| {
            let (deadline, reason) = match (p.introduce_deadline, p.introduced) {
                (Some(d), _) => (d, FallbackReason::NoIntroduce),
                (None, Some(i)) => (i.deadline, FallbackReason::NoAck),
                (None, None) => return false,
            };
            if now < deadline {
                return true;
            }
            if p.requester {
                actions.push(Action::Finished {
                    peer: *peer,
                    outcome: PunchOutcome::Relay(reason),
                });
            }
            false
        });
        actions
    }

    /// The direct handshake after a `Direct` outcome finished. Success
    /// counts `punches_succeeded`; failure means the node now goes through
    /// the coordinator (then [`on_relay_result`](Self::on_relay_result)).
    pub fn on_direct_result(&mut self, peer: u64, ok: bool) {
        if self.pending_direct.remove(&peer) && ok {
            self.stats.punches_succeeded += 1;
        }
    }

    /// A relayed session after a fallback: counts `relay_fallbacks` when
    /// it came up (v0.11 counts only successful fallbacks).
    pub fn on_relay_result(&mut self, ok: bool) {
        if ok {
            self.stats.relay_fallbacks += 1;
        }
    }

    /// Punches in progress (for tests and diagnostics).
    pub fn in_progress(&self) -> usize {
        self.punches.len()
    }
}

#[cfg(test)]
mod tests;
