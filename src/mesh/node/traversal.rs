//! NAT classification on the running node (MESH2.md §4.1, §4.5): the glue
//! between the pure [`Classifier`] / [`ReflexState`] (`mesh/traversal/`)
//! and the node's sessions, one call per node event:
//!
//! | Node event | Here |
//! |---|---|
//! | reliability tick | [`Inner::traversal_tick`]: a due round sends an empty 0x0D00 event to each chosen probe peer; a round past its deadline is committed |
//! | a direct session comes up | the classifier re-arms if it was starved of probe peers |
//! | 0x0D00 empty event from P | answered with the 19-byte address the request came from (the relay's for a relayed P, as v0.11) |
//! | 0x0D00 19-byte event from P | the classifier's answer; a finished round is committed |
//! | a committed round changed (class, reflex) | our latest announcement is re-made with the `nat:*` tag and `reflex_addr` |
//! | `announce(caps)` | the `nat:*` tag and `reflex_addr` are set from the current state |
//!
//! Better than v0.11 (§7 items 19–22): classification runs by itself at
//! start, whenever a direct peer arrives while it lacked probe peers, and
//! every `classify_period`; probes go to direct peers on distinct IPs
//! (chosen at random); answers report the address the request arrived
//! from, not the one recorded at handshake; a node never advertises a
//! private or wildcard reflex. Only Net peers and peers that announced a
//! `nat:*` tag (v0.11 built with nat-traversal) are probed, so a v0.11
//! peer without the feature never receives a 0x0D00 event it would hand
//! to its application.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::json;

use super::super::packet::PacketKind;
use super::super::peer::Peer;
use super::super::traversal::classifier::{CLASSIFY_DEADLINE, CLASSIFY_PERIOD};
use super::super::traversal::{
    Classification, Classifier, FilteringEvidence, LocalView, NatClass, OverrideOrigin,
    ProbeCandidate, ReflexState, Step, reflex_answer,
};
use super::{Inner, MeshNode, bump};
use crate::wire::subproto::{ADDRESS_SIZE, decode_address};
use crate::wire::{NetHeader, decode_events, encode_events, ids};

/// NAT classification settings (config keys `nat_classify`,
/// `classify_period_ms`, `classify_deadline_ms`, `reflex_override`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraversalSettings {
    /// Classify by itself (default true; v0.11 never does).
    pub classify: bool,
    /// Time between rounds (60 s).
    pub classify_period: Duration,
    /// A round's deadline (5 s).
    pub classify_deadline: Duration,
    /// A reflex override from configuration: class Open, this reflex,
    /// no classification (MESH2.md §4.5).
    pub reflex_override: Option<SocketAddr>,
}

impl Default for TraversalSettings {
    fn default() -> Self {
        Self {
            classify: true,
            classify_period: CLASSIFY_PERIOD,
            classify_deadline: CLASSIFY_DEADLINE,
            reflex_override: None,
        }
    }
}

/// Where the node's NAT stands: [`MeshNode::nat_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatStatus {
    /// The advertised class (Open while an override is active).
    pub class: NatClass,
    /// The advertised reflex (the override's address while active).
    pub reflex: Option<SocketAddr>,
    /// The last classification round's full result.
    pub classification: Classification,
    /// The active override, if any.
    pub override_addr: Option<SocketAddr>,
    /// Classification rounds committed with at least one observation.
    pub rounds: u64,
}

struct State {
    classifier: Classifier,
    reflex: ReflexState,
    rounds: u64,
}

/// The node's classification state.
pub(super) struct TraversalGlue {
    state: Mutex<State>,
    enabled: bool,
    local: LocalView,
}

impl TraversalGlue {
    pub(super) fn new(settings: &TraversalSettings, bound: SocketAddr) -> Self {
        let mut reflex = ReflexState::new();
        if let Some(addr) = settings.reflex_override {
            reflex.set_override(addr, OverrideOrigin::Operator);
        }
        Self {
            state: Mutex::new(State {
                classifier: Classifier::with_timing(
                    Instant::now(),
                    settings.classify_period,
                    settings.classify_deadline,
                ),
                reflex,
                rounds: 0,
            }),
            enabled: settings.classify,
            local: LocalView {
                bound,
                interface_addrs: if bound.ip().is_unspecified() {
                    interface_addrs()
                } else {
                    Vec::new()
                },
            },
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The host's interface addresses (for a wildcard bind: an observation of
/// one of them with our port means no NAT).
fn interface_addrs() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we walk read-only and
    // free exactly once with freeifaddrs; every pointer is checked for null
    // and each sockaddr is read as the family it declares.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return out;
        }
        let mut cursor = head;
        while !cursor.is_null() {
            let addr = (*cursor).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let v4 = &*(addr as *const libc::sockaddr_in);
                        out.push(IpAddr::from(u32::from_be(v4.sin_addr.s_addr).to_be_bytes()));
                    }
                    libc::AF_INET6 => {
                        let v6 = &*(addr as *const libc::sockaddr_in6);
                        out.push(IpAddr::from(v6.sin6_addr.s6_addr));
                    }
                    _ => {}
                }
            }
            cursor = (*cursor).ifa_next;
        }
        libc::freeifaddrs(head);
    }
    out
}

fn fresh_seed() -> u64 {
    rand_core::RngCore::next_u64(&mut rand_core::OsRng)
}

impl Inner {
    /// One 0x0D00 event (empty = request, 19 bytes = answer) on stream
    /// 0x0D00 of `peer`'s session.
    fn send_reflex(&self, peer: &Peer, event: &[u8]) {
        let Ok(payload) = encode_events(&[event]) else {
            return;
        };
        let kind = PacketKind {
            subprotocol_id: ids::REFLEX,
            stream_id: u64::from(ids::REFLEX),
            sequence: peer.session.next_control_seq(),
            event_count: 1,
            ..PacketKind::default()
        };
        self.send_control(peer, &kind, &payload);
    }

    /// Peers worth probing: direct sessions with Net peers, or with peers
    /// that announced a `nat:*` tag.
    fn probe_candidates(&self) -> Vec<ProbeCandidate> {
        let plane = self.capabilities.plane();
        self.peers
            .iter()
            .filter(|e| !e.is_candidate())
            .filter(|e| {
                e.binding().is_net()
                    || plane.index().get(e.node_id).is_some_and(|n| {
                        n.announcement
                            .capabilities
                            .tags
                            .iter()
                            .any(|t| NatClass::from_tag(t).is_some())
                    })
            })
            .map(|e| ProbeCandidate {
                node_id: e.node_id,
                addr: e.addr(),
                relayed: e.relay.is_some(),
            })
            .collect()
    }

    /// The reliability tick: starts a due round or ends one at its
    /// deadline.
    pub(super) fn traversal_tick(&self, now: Instant) {
        let glue = &self.traversal;
        if !glue.enabled {
            return;
        }
        {
            let st = glue.state();
            if !st.reflex.wants_classification()
                || st.classifier.next_deadline().is_none_or(|due| now < due)
            {
                return;
            }
        }
        let candidates = self.probe_candidates();
        let step = glue.state().classifier.poll(
            now,
            &candidates,
            fresh_seed(),
            &glue.local,
            FilteringEvidence::default(),
        );
        self.on_classifier_step(step);
    }

    /// A direct session came up: a classifier starved of probe peers
    /// tries again.
    pub(super) fn traversal_session_up(&self, peer: &Peer) {
        if peer.relay.is_none() {
            self.traversal
                .state()
                .classifier
                .on_peer_connected(Instant::now());
        }
    }

    /// One 0x0D00 packet from `peer`; `direct_from` is the datagram's
    /// source when it came straight from the peer.
    pub(super) fn handle_reflex(
        &self,
        peer: &Peer,
        header: &NetHeader,
        plaintext: &[u8],
        direct_from: Option<SocketAddr>,
    ) {
        for event in decode_events(plaintext, usize::from(header.event_count)) {
            match event.len() {
                0 => {
                    // The address this request came from: the current
                    // mapping, not the one recorded at handshake.
                    let seen = direct_from.unwrap_or_else(|| peer.addr());
                    self.send_reflex(peer, &reflex_answer(seen));
                    bump(&self.stats.reflex_answered);
                }
                ADDRESS_SIZE => {
                    let Ok(observed) = decode_address(event) else {
                        bump(&self.stats.malformed);
                        continue;
                    };
                    bump(&self.stats.reflex_answers);
                    let glue = &self.traversal;
                    let step = glue.state().classifier.on_answer(
                        peer.node_id,
                        observed,
                        Instant::now(),
                        &glue.local,
                        FilteringEvidence::default(),
                    );
                    self.on_classifier_step(step);
                }
                _ => bump(&self.stats.malformed),
            }
        }
    }

    fn on_classifier_step(&self, step: Option<Step>) {
        match step {
            Some(Step::Probe(peers)) => {
                for candidate in peers {
                    if let Some(peer) = self.peers.get(&candidate.node_id).map(|p| p.clone()) {
                        self.send_reflex(&peer, &[]);
                        bump(&self.stats.reflex_probes);
                    }
                }
            }
            Some(Step::Done(classification, had_observations)) => {
                let changed = {
                    let mut st = self.traversal.state();
                    if had_observations {
                        st.rounds += 1;
                    }
                    // An override set meanwhile hides the result (kept).
                    st.reflex.commit(classification, had_observations)
                };
                tracing::debug!(
                    class = ?classification.class,
                    reflex = ?classification.reflex,
                    changed,
                    "NAT classification round"
                );
                if changed {
                    self.reannounce_nat();
                }
            }
            _ => {}
        }
    }

    /// The current (class, reflex) go into the capability plane; if we
    /// announced before, the announcement is re-made with them.
    fn reannounce_nat(&self) {
        let (class, reflex) = {
            let st = self.traversal.state();
            (st.reflex.class(), st.reflex.reflex())
        };
        let bytes = {
            let mut plane = self.capabilities.plane();
            plane.set_reflex_addr(reflex);
            let Some(mut caps) = plane.latest().map(|a| a.capabilities.clone()) else {
                return;
            };
            // Unknown (an override cleared before any round): the stale
            // class tag goes.
            caps.set_nat_tag(class.tag());
            plane
                .announce(caps, Instant::now(), super::capabilities::unix_ns())
                .ok()
                .flatten()
        };
        if let Some(bytes) = bytes {
            self.broadcast_announcement(&bytes, &[]);
        }
    }

    /// The `nat:*` tag for an announcement being made: none while the
    /// class is Unknown and no override is set (the set stays as given).
    pub(super) fn nat_tag(&self) -> Option<&'static str> {
        let class = self.traversal.state().reflex.class();
        (class != NatClass::Unknown).then(|| class.tag())
    }

    /// The current reflex for an announcement being made.
    pub(super) fn nat_reflex(&self) -> Option<SocketAddr> {
        self.traversal.state().reflex.reflex()
    }

    fn nat_json(&self) -> serde_json::Value {
        let st = self.traversal.state();
        let c = st.reflex.classification();
        json!({
            "class": class_name(st.reflex.class()),
            "reflex": st.reflex.reflex().map(|a| a.to_string()),
            "mapping": format!("{:?}", c.mapping),
            "filtering": format!("{:?}", c.filtering),
            "port_preserving": c.port_preserving,
            "override": st.reflex.override_addr().map(|(a, _)| a.to_string()),
            "rounds": st.rounds,
            "classify": self.traversal.enabled,
        })
    }
}

/// The class as the JSON and the SDKs name it (the tag without `nat:`).
fn class_name(class: NatClass) -> &'static str {
    class.tag().trim_start_matches("nat:")
}

impl MeshNode {
    /// [`nat_status`](Self::nat_status) as JSON: `{"class":
    /// "open"|"cone"|"symmetric"|"unknown", "reflex": "ip:port"|null,
    /// "mapping", "filtering" (RFC 4787 names), "port_preserving",
    /// "override": "ip:port"|null, "rounds", "classify"}`.
    pub fn nat_json(&self) -> String {
        self.inner.nat_json().to_string()
    }

    /// Where this node's NAT stands: the advertised class and reflex, the
    /// last round's RFC 4787 detail, the override.
    pub fn nat_status(&self) -> NatStatus {
        let st = self.inner.traversal.state();
        NatStatus {
            class: st.reflex.class(),
            reflex: st.reflex.reflex(),
            classification: st.reflex.classification(),
            override_addr: st.reflex.override_addr().map(|(a, _)| a),
            rounds: st.rounds,
        }
    }

    /// Sets (`Some`) or clears (`None`) the operator's reflex override
    /// (MESH2.md §4.5): class Open with that reflex, classification paused.
    /// The announcement is re-made at once when we announced before (v0.11
    /// waits for the application's next announce).
    pub fn set_reflex_override(&self, addr: Option<SocketAddr>) {
        let changed = {
            let mut st = self.inner.traversal.state();
            match addr {
                Some(addr) => st.reflex.set_override(addr, OverrideOrigin::Operator),
                None => st.reflex.clear_override(OverrideOrigin::Operator),
            }
        };
        if changed {
            self.inner.reannounce_nat();
        }
    }

    /// Starts a classification round now (it still needs two direct probe
    /// peers on distinct IPs).
    pub fn reclassify_nat(&self) {
        self.inner
            .traversal
            .state()
            .classifier
            .on_local_address_changed(Instant::now());
    }
}
