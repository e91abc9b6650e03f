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

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::super::packet::PacketKind;
use super::super::peer::Peer;
use super::super::traversal::classifier::{CLASSIFY_DEADLINE, CLASSIFY_PERIOD};
use super::super::traversal::pair::MAPPED_TAG;
use super::super::traversal::portmap::mapper::{
    MapperConfig, MapperEvent, MapperStats, PortMapper, gateway_v4,
};
use super::super::traversal::rendezvous::{RendezvousFrame, decode_frame};
use super::super::traversal::{
    Action, Classification, Classifier, Coordinator, Endpoint, FallbackReason, FilteringEvidence,
    LocalView, NatClass, NatProfile, OverrideOrigin, PairAction, PeerView, ProbeCandidate,
    PunchKey, PunchOutcome, PunchStats, PunchTiming, ReflexState, Step, pair_action, reflex_answer,
};
use super::{Inner, MeshError, MeshNode, Waiter, bump};
use crate::cancel::CancelToken;
use crate::wire::subproto::{ADDRESS_SIZE, PunchKeepAlive, Rendezvous, decode_address};
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
    /// Ask the gateway for a port mapping of our port (PCP, NAT-PMP, UPnP
    /// IGD; off by default, as in v0.11).
    pub port_mapping: bool,
    /// The PCP / NAT-PMP gateway (None: the default route's).
    pub port_mapping_gateway: Option<std::net::Ipv4Addr>,
}

impl Default for TraversalSettings {
    fn default() -> Self {
        Self {
            classify: true,
            classify_period: CLASSIFY_PERIOD,
            classify_deadline: CLASSIFY_DEADLINE,
            reflex_override: None,
            port_mapping: false,
            port_mapping_gateway: None,
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
    /// Our side of punches (A or B).
    endpoint: Endpoint,
    /// Our coordinator side (R).
    coordinator: Coordinator,
    /// Keep-alives to send at their instant (never early).
    keepalives: Vec<(Instant, SocketAddr, [u8; PunchKeepAlive::SIZE])>,
    /// `connect_direct` calls waiting for their punch, by counterpart.
    waiters: HashMap<u64, Arc<Waiter<PunchOutcome>>>,
    /// The port mapper's state (none: not running).
    mapping: MapperStats,
    /// Our socket as classification sees it (interfaces refreshed by the
    /// watcher for a wildcard bind).
    local: LocalView,
    /// Relayed Net peers whose session may move to a direct path, until
    /// the instant: an authenticated packet of theirs arriving straight
    /// from an address inside the window moves it (a punch with them is
    /// in progress or just finished).
    path_windows: HashMap<u64, Instant>,
}

/// The node's classification state.
pub(super) struct TraversalGlue {
    state: Mutex<State>,
    /// The port-mapping thread and its stop signal.
    portmap: Mutex<Option<(Arc<PortmapStop>, std::thread::JoinHandle<()>)>>,
    /// The interface watcher (wildcard binds) and its stop signal.
    watcher: Mutex<Option<(Arc<PortmapStop>, std::thread::JoinHandle<()>)>>,
    enabled: bool,
}

impl TraversalGlue {
    pub(super) fn new(settings: &TraversalSettings, bound: SocketAddr, node_id: u64) -> Self {
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
                endpoint: Endpoint::new(node_id, PunchTiming::default()),
                coordinator: Coordinator::new(node_id, PunchTiming::default()),
                keepalives: Vec::new(),
                waiters: HashMap::new(),
                path_windows: HashMap::new(),
                mapping: MapperStats::default(),
                local: LocalView {
                    bound,
                    interface_addrs: if bound.ip().is_unspecified() {
                        interface_addrs()
                    } else {
                        Vec::new()
                    },
                },
            }),
            portmap: Mutex::new(None),
            watcher: Mutex::new(None),
            enabled: settings.classify,
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
                relayed: e.relay().is_some(),
            })
            .collect()
    }

    /// The reliability tick: starts a due round or ends one at its
    /// deadline.
    pub(super) fn traversal_tick(&self, now: Instant) {
        self.punch_tick(now);
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
        let step = {
            let mut st = glue.state();
            let st = &mut *st;
            st.classifier.poll(
                now,
                &candidates,
                fresh_seed(),
                &st.local,
                FilteringEvidence::default(),
            )
        };
        self.on_classifier_step(step);
    }

    /// A direct session came up: a classifier starved of probe peers
    /// tries again.
    pub(super) fn traversal_session_up(&self, peer: &Peer) {
        if peer.relay().is_none() {
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
                    let step = {
                        let mut st = self.traversal.state();
                        let st = &mut *st;
                        st.classifier.on_answer(
                            peer.node_id,
                            observed,
                            Instant::now(),
                            &st.local,
                            FilteringEvidence::default(),
                        )
                    };
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
            set_mapped_tag(&mut caps, self.mapped());
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

    /// The `nat-mapped` tag and the rest of what an announcement being
    /// made says about our NAT.
    pub(super) fn nat_tags(&self, caps: &mut super::super::capability::CapabilitySet) {
        if let Some(tag) = self.nat_tag() {
            caps.set_nat_tag(tag);
        }
        set_mapped_tag(caps, self.mapped());
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
            "punches_attempted": st.endpoint.stats().punches_attempted,
            "punches_succeeded": st.endpoint.stats().punches_succeeded,
            "relay_fallbacks": st.endpoint.stats().relay_fallbacks,
            "port_mapping_active": st.mapping.active,
            "port_mapping_external": st.mapping.external.map(|a| a.to_string()),
            "port_mapping_protocol": st.mapping.protocol.map(|p| format!("{p:?}")),
            "port_mapping_renewals": st.mapping.renewals,
        })
    }
}

/// Adds or removes the `nat-mapped` tag (a port mapping forwards our
/// reflex: peers handshake straight to it, `pair.rs`).
pub(super) fn set_mapped_tag(caps: &mut super::super::capability::CapabilitySet, mapped: bool) {
    caps.tags.retain(|t| t != MAPPED_TAG);
    if mapped {
        caps.tags.push(MAPPED_TAG.to_owned());
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

// ---------------------------------------------------------------------------
// Hole punching (MESH2.md §4.3–4.4) and the relayed → direct upgrade.
//
// | Node event | Here |
// |---|---|
// | 0x0D01 PunchRequest, or a PunchAck for another node (we are R) | `Coordinator::on_frame`, actions performed |
// | 0x0D01 introduce, or an ack for us (we are A or B) | `Endpoint::on_frame`; an introduce opens the path window for that peer |
// | 14-byte keep-alive datagram | `Endpoint::on_keepalive` (our ack goes through R) |
// | reliability tick | due keep-alives sent; `Endpoint::poll` at its deadline |
// | `connect_direct` | the pair action; a punch through the coordinator; then a new direct session, or the relayed one moved to the punched path |
// | authenticated packet of a relayed peer, straight from X, inside its path window | the session moves to X (direct); a heartbeat straight back |

/// How `connect_direct` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DirectOutcome {
    /// The session with the peer runs on a direct path.
    Direct,
    /// The session runs through the coordinator (the pair cannot punch, or
    /// the punch failed; a relayed session existing before stays).
    Relayed(RelayReason),
}

/// Why `connect_direct` ended on the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayReason {
    /// The NAT pair cannot punch (both symmetric, or symmetric and unknown).
    SkipPunch,
    /// The coordinator introduced nobody within the punch deadline (it has
    /// no session with the peer, or no address for it).
    NoIntroduce,
    /// Introduced, but the peer's keep-alives never came through.
    NoAck,
    /// The punch worked but the session could not use the path.
    PathFailed,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn fresh_key() -> PunchKey {
    let mut key = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut key);
    PunchKey(key)
}

/// How long after a punch the session may still move (the keep-alives'
/// lead and the punch deadline, plus a round trip of slack).
const PATH_WINDOW_SLACK: Duration = Duration::from_secs(2);

impl Inner {
    fn send_rendezvous(&self, to: u64, frame: &[u8]) {
        let Some(peer) = self.peers.get(&to).map(|p| p.clone()) else {
            return;
        };
        let Ok(payload) = encode_events(&[frame]) else {
            return;
        };
        let kind = PacketKind {
            subprotocol_id: ids::RENDEZVOUS,
            stream_id: u64::from(ids::RENDEZVOUS),
            sequence: peer.session.next_control_seq(),
            event_count: 1,
            ..PacketKind::default()
        };
        self.send_control(&peer, &kind, &payload);
    }

    /// Performs the machines' actions (sends after the traversal lock is
    /// released: the caller passes them out).
    fn perform(&self, actions: Vec<Action>) {
        let now = Instant::now();
        for action in actions {
            match action {
                Action::Send { to, bytes } => self.send_rendezvous(to, &bytes),
                Action::KeepAlive { to, at, bytes } if at <= now => {
                    self.transmit(to, vec![bytes.to_vec()], false);
                }
                Action::KeepAlive { to, at, bytes } => {
                    self.traversal.state().keepalives.push((at, to, bytes));
                }
                Action::Finished { peer, outcome } => {
                    let waiter = self.traversal.state().waiters.get(&peer).cloned();
                    if let Some(waiter) = waiter {
                        waiter.complete(Ok(outcome));
                    }
                }
            }
        }
    }

    /// What R knows about `node`.
    fn peer_view(&self, node: u64) -> Option<PeerView> {
        let peer = self.peers.get(&node).map(|p| p.clone())?;
        let indexed_reflex = self
            .capabilities
            .plane()
            .index()
            .get(node)
            .and_then(|n| n.announcement.reflex_addr);
        Some(PeerView {
            has_session: true,
            indexed_reflex,
            // A relayed peer's address is its relay's: nothing to punch to.
            observed: peer.relay().is_none().then(|| peer.addr()),
            is_net: peer.binding().is_net(),
        })
    }

    /// One 0x0D01 packet from `peer`.
    pub(super) fn handle_rendezvous(&self, peer: &Peer, header: &NetHeader, plaintext: &[u8]) {
        let now = Instant::now();
        for event in decode_events(plaintext, usize::from(header.event_count)) {
            let Ok(frame) = decode_frame(event) else {
                bump(&self.stats.malformed);
                continue;
            };
            let for_coordinator = match &frame {
                RendezvousFrame::V011(Rendezvous::PunchRequest { .. }) => true,
                RendezvousFrame::V011(Rendezvous::PunchAck { to_peer, .. }) => {
                    *to_peer != self.node_id
                }
                _ => false,
            };
            let outcome = if for_coordinator {
                let mut st = self.traversal.state();
                st.coordinator
                    .on_frame(peer.node_id, event, unix_ms(), fresh_key, |n| {
                        self.peer_view(n)
                    })
            } else {
                let introduced = match &frame {
                    RendezvousFrame::NetIntroduce(i) => Some(i.peer),
                    RendezvousFrame::V011(Rendezvous::PunchIntroduce { peer, .. }) => Some(*peer),
                    _ => None,
                };
                let mut st = self.traversal.state();
                let result = st.endpoint.on_frame(peer.node_id, event, now, unix_ms());
                if let (Ok(_), Some(counterpart)) = (&result, introduced) {
                    // The counterpart's session may move to the punched
                    // path while the punch runs.
                    let until = now
                        + PunchTiming::default().fire_lead * 4
                        + PunchTiming::default().deadline
                        + PATH_WINDOW_SLACK;
                    st.path_windows.insert(counterpart, until);
                }
                result
            };
            match outcome {
                Ok(actions) => self.perform(actions),
                Err(ignored) => {
                    tracing::debug!(peer = peer.node_id, ?ignored, "rendezvous frame ignored");
                }
            }
        }
    }

    /// A 14-byte keep-alive datagram from `source`.
    pub(super) fn handle_keepalive(&self, buf: &[u8], source: SocketAddr) {
        let result = self
            .traversal
            .state()
            .endpoint
            .on_keepalive(source, buf, Instant::now());
        match result {
            Ok(actions) => self.perform(actions),
            Err(ignored) => tracing::trace!(%source, ?ignored, "keep-alive ignored"),
        }
    }

    /// From the reliability tick: due keep-alives, expired punches.
    fn punch_tick(&self, now: Instant) {
        let (due, actions) = {
            let mut st = self.traversal.state();
            let mut due = Vec::new();
            st.keepalives.retain(|&(at, to, bytes)| {
                if at <= now {
                    due.push((to, bytes));
                    false
                } else {
                    true
                }
            });
            st.path_windows.retain(|_, until| *until > now);
            let actions = if st.endpoint.next_deadline().is_some_and(|d| d <= now) {
                st.endpoint.poll(now)
            } else {
                Vec::new()
            };
            (due, actions)
        };
        for (to, bytes) in due {
            self.transmit(to, vec![bytes.to_vec()], false);
        }
        self.perform(actions);
    }

    /// An authenticated packet of the relayed `peer` arrived straight from
    /// `from`. Inside the peer's path window the session moves to `from`
    /// (both ends do, each on the other's first direct packet), with a
    /// heartbeat straight back; outside it nothing changes (the packet
    /// still counts: it was authentic).
    pub(super) fn on_direct_packet_of_relayed(&self, peer: &Arc<Peer>, from: SocketAddr) {
        let open = self
            .traversal
            .state()
            .path_windows
            .get(&peer.node_id)
            .is_some_and(|until| Instant::now() < *until);
        if open && peer.binding().is_net() {
            self.move_to_direct(peer, from);
        }
    }

    /// The session with `peer` leaves its relay for the direct path at
    /// `addr`: same session, same streams (nothing resent or lost beyond
    /// what reliability already covers), new path.
    fn move_to_direct(&self, peer: &Arc<Peer>, addr: SocketAddr) {
        if peer.relay().is_none() {
            return;
        }
        peer.set_relay(None);
        if let Some(old) = peer.set_addr(addr) {
            self.addr_index.remove_if(&old, |_, v| *v == peer.node_id);
        }
        self.addr_index.insert(addr, peer.node_id);
        self.path_changed(peer);
        {
            let mut router = self.router();
            let table = router.table_mut();
            table.remove_relayed_peer(peer.node_id);
            table.add_direct_peer(
                peer.node_id,
                super::super::routing::PeerProtocol::Net,
                Instant::now(),
            );
        }
        self.traversal.state().path_windows.remove(&peer.node_id);
        bump(&self.stats.paths_upgraded);
        tracing::info!(peer = peer.node_id, %addr, "relayed session moved to a direct path");
        // Our first direct packet: the peer moves too.
        self.send_heartbeat_to(peer);
        peer.binding_changed.notify_all();
    }

    /// A heartbeat of `peer`'s session along its current path.
    fn send_heartbeat_to(&self, peer: &Peer) {
        self.send_control(peer, &PacketKind::HEARTBEAT, &[]);
    }

    /// A heartbeat of `peer`'s session straight to `addr`, whatever its
    /// path (the probe of a path upgrade).
    fn send_heartbeat_at(&self, peer: &Peer, addr: SocketAddr) {
        let mut out = Vec::new();
        if peer
            .session
            .seal(&PacketKind::HEARTBEAT, &[], &mut out)
            .is_ok()
        {
            self.transmit(addr, vec![out], false);
        }
    }

    /// The punch-side counters.
    pub(super) fn punch_stats(&self) -> PunchStats {
        self.traversal.state().endpoint.stats()
    }
}

impl MeshNode {
    /// Reaches `peer_node_id` (static key `peer_static`) on a direct path,
    /// with `coordinator` (a direct peer with sessions to both) for the
    /// rendezvous (MESH2.md §4.3):
    ///
    /// - the pair action from our NAT class and the peer's announced one
    ///   (its `nat:*` tag; none ⇒ Unknown): `Direct` handshakes to the
    ///   peer's announced reflex, `SinglePunch` runs one rendezvous
    ///   through the coordinator, `SkipPunch` goes through the coordinator;
    /// - with no session yet, the punched path gets a new direct session
    ///   and any failure falls back to a session relayed by the
    ///   coordinator;
    /// - with a relayed session (a `connect_via` through any relay), the
    ///   session itself moves to the punched path: streams in flight keep
    ///   their sequence numbers and credit, so nothing is lost or
    ///   delivered twice (v0.11 needs a second handshake, which the peer
    ///   refuses while the relayed session lives). Both ends must be Net
    ///   nodes; a v0.11 peer keeps the relayed session.
    ///
    /// Blocks up to about three punch deadlines (15 s) plus the
    /// handshakes.
    ///
    /// # Errors
    /// [`MeshError::NoRoute`] when `coordinator` is not a direct peer;
    /// handshake errors of the fallback; [`MeshError::Cancelled`],
    /// [`MeshError::ShuttingDown`].
    pub fn connect_direct(
        &self,
        peer_node_id: u64,
        peer_static: &[u8; 32],
        coordinator: u64,
        cancel: Option<&CancelToken>,
    ) -> Result<DirectOutcome, MeshError> {
        let inner = &self.inner;
        inner.check_running()?;
        if peer_node_id == inner.node_id {
            return Err(MeshError::SelfConnect);
        }
        let existing = inner.peers.get(&peer_node_id).map(|p| p.clone());
        if existing.as_ref().is_some_and(|p| p.relay().is_none()) {
            return Ok(DirectOutcome::Direct);
        }
        if inner
            .peers
            .get(&coordinator)
            .is_none_or(|p| p.relay().is_some())
        {
            return Err(MeshError::NoRoute(coordinator));
        }
        let (local, own_reflex) = {
            let st = inner.traversal.state();
            let c = st.reflex.classification();
            (
                NatProfile {
                    class: st.reflex.class(),
                    filtering: c.filtering,
                    mapped: false,
                },
                st.reflex.reflex(),
            )
        };
        let (remote, remote_reflex) = {
            let plane = inner.capabilities.plane();
            match plane.index().get(peer_node_id) {
                Some(n) => (
                    NatProfile::from_tags(
                        n.announcement.capabilities.tags.iter().map(String::as_str),
                    ),
                    n.announcement.reflex_addr,
                ),
                None => (NatProfile::from_class(NatClass::Unknown), None),
            }
        };
        let upgrade = existing.is_some();
        let action = pair_action(local, remote);
        let fallback = |reason: RelayReason| -> Result<DirectOutcome, MeshError> {
            if !upgrade {
                self.connect_via(coordinator, peer_static, peer_node_id, cancel)?;
            }
            inner.traversal.state().endpoint.on_relay_result(true);
            Ok(DirectOutcome::Relayed(reason))
        };
        match action {
            PairAction::SkipPunch => return fallback(RelayReason::SkipPunch),
            PairAction::Direct if !upgrade => {
                if let Some(reflex) = remote_reflex
                    && self
                        .connect_cancellable(reflex, peer_static, peer_node_id, cancel)
                        .is_ok()
                {
                    return Ok(DirectOutcome::Direct);
                }
                // No announced reflex, or it did not answer: the
                // coordinator knows where it sees the peer (v0.11 gives up
                // with PeerNotReachable without a reflex).
            }
            // An upgrade punches even towards an open peer: the punch is
            // what opens the path window on both ends.
            _ => {}
        }
        let outcome = self.punch(peer_node_id, coordinator, own_reflex, cancel)?;
        match outcome {
            PunchOutcome::Direct(addr) if upgrade => {
                let moved = self.upgrade_path(peer_node_id, addr, cancel)?;
                inner
                    .traversal
                    .state()
                    .endpoint
                    .on_direct_result(peer_node_id, moved);
                if moved {
                    Ok(DirectOutcome::Direct)
                } else {
                    fallback(RelayReason::PathFailed)
                }
            }
            PunchOutcome::Direct(addr) => {
                let ok = self
                    .connect_cancellable(addr, peer_static, peer_node_id, cancel)
                    .is_ok();
                inner
                    .traversal
                    .state()
                    .endpoint
                    .on_direct_result(peer_node_id, ok);
                if ok {
                    Ok(DirectOutcome::Direct)
                } else {
                    fallback(RelayReason::PathFailed)
                }
            }
            PunchOutcome::Relay(FallbackReason::NoIntroduce) => fallback(RelayReason::NoIntroduce),
            PunchOutcome::Relay(_) => fallback(RelayReason::NoAck),
        }
    }

    /// One rendezvous: request, wait for the endpoint machine's verdict.
    fn punch(
        &self,
        target: u64,
        coordinator: u64,
        own_reflex: Option<SocketAddr>,
        cancel: Option<&CancelToken>,
    ) -> Result<PunchOutcome, MeshError> {
        let inner = &self.inner;
        let waiter = Arc::new(Waiter::new());
        let actions = {
            let mut st = inner.traversal.state();
            st.waiters.insert(target, waiter.clone());
            st.endpoint
                .request(target, coordinator, own_reflex, Instant::now())
        };
        inner.perform(actions);
        let timing = PunchTiming::default();
        let deadline =
            Instant::now() + timing.deadline * 2 + timing.fire_lead * 4 + PATH_WINDOW_SLACK;
        let result = {
            let _wake = cancel.map(|token| {
                let waiter = waiter.clone();
                token.on_cancel(move || waiter.poke())
            });
            waiter.wait(deadline, &inner.shutdown, cancel)
        };
        inner.traversal.state().waiters.remove(&target);
        inner.check_running()?;
        if cancel.is_some_and(CancelToken::is_cancelled) {
            return Err(MeshError::Cancelled);
        }
        Ok(match result {
            Some(Ok(outcome)) => outcome,
            _ => PunchOutcome::Relay(FallbackReason::NoAck),
        })
    }

    /// Moves the relayed session with `peer_node_id` to `addr`: a
    /// heartbeat of the session goes straight there; the peer, inside its
    /// path window, moves and answers straight back, and its answer moves
    /// ours. Waits up to a punch deadline for that.
    fn upgrade_path(
        &self,
        peer_node_id: u64,
        addr: SocketAddr,
        cancel: Option<&CancelToken>,
    ) -> Result<bool, MeshError> {
        let inner = &self.inner;
        let peer = inner.peer(peer_node_id)?;
        if !peer.binding().is_net() {
            return Ok(false);
        }
        let window = Instant::now() + PunchTiming::default().deadline;
        inner
            .traversal
            .state()
            .path_windows
            .insert(peer_node_id, window + PATH_WINDOW_SLACK);
        let mut next_probe = Instant::now();
        loop {
            inner.check_running()?;
            if cancel.is_some_and(CancelToken::is_cancelled) {
                return Err(MeshError::Cancelled);
            }
            if peer.relay().is_none() {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= window {
                return Ok(false);
            }
            if now >= next_probe {
                // Lost probes are repeated (every 100 ms).
                inner.send_heartbeat_at(&peer, addr);
                next_probe = now + Duration::from_millis(100);
            }
            let guard = peer.binding();
            let _ = peer
                .binding_changed
                .wait_timeout(guard, Duration::from_millis(10));
        }
    }

    /// The punch counters (MESH2.md §4.7): `punches_attempted`,
    /// `punches_succeeded`, `relay_fallbacks`.
    pub fn punch_stats(&self) -> PunchStats {
        self.inner.punch_stats()
    }
}

// ---------------------------------------------------------------------------
// Port mapping on the node (MESH2.md §4.6; config `port_mapping`, off by
// default). One thread, spawned by the thread that builds the node (so its
// sockets live in the same network namespace as the mesh socket), runs the
// `PortMapper`: install, renew at its deadlines, tear down at shutdown. An
// installed mapping is the reflex override (origin PortMapping: class Open,
// reflex = the external address) plus the `nat-mapped` tag, announced at
// once; its removal clears both and announces again. A gateway that
// grants nothing is asked again every `PORTMAP_RETRY` (v0.11 gives up).

/// How long after a failed install the gateway is asked again.
const PORTMAP_RETRY: Duration = Duration::from_secs(300);
/// How long `shutdown` waits for the mapping's teardown.
const PORTMAP_STOP_WAIT: Duration = Duration::from_secs(5);

/// The port-mapping thread's stop signal.
#[derive(Default)]
pub(super) struct PortmapStop {
    stop: Mutex<bool>,
    wake: std::sync::Condvar,
}

impl PortmapStop {
    /// Sleeps until `until` or a stop; true when stopped.
    fn sleep_until(&self, until: Instant) -> bool {
        let mut stopped = self.stop.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if *stopped {
                return true;
            }
            let now = Instant::now();
            if now >= until {
                return false;
            }
            stopped = self
                .wake
                .wait_timeout(stopped, until - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn signal(&self) {
        *self.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.wake.notify_all();
    }
}

/// How often the watcher lists the interfaces.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

fn stop_thread(slot: &Mutex<Option<(Arc<PortmapStop>, std::thread::JoinHandle<()>)>>) {
    let taken = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    let Some((stop, handle)) = taken else {
        return;
    };
    stop.signal();
    let give_up = Instant::now() + PORTMAP_STOP_WAIT;
    while !handle.is_finished() && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(5));
    }
    if handle.is_finished() {
        let _ = handle.join();
    }
}

impl Inner {
    /// For a wildcard bind with classification on: a thread (started by
    /// the thread that builds the node, so in the socket's network
    /// namespace) lists the interfaces every 2 s; a change starts a
    /// classification round at once (the local address changed).
    pub(super) fn start_interface_watch(self: &Arc<Self>) -> std::io::Result<()> {
        if !self.traversal.enabled || !self.local_addr.ip().is_unspecified() {
            return Ok(());
        }
        let stop = Arc::new(PortmapStop::default());
        let weak = Arc::downgrade(self);
        let thread_stop = stop.clone();
        let handle = std::thread::Builder::new()
            .name("net-netwatch".into())
            .spawn(move || {
                while !thread_stop.sleep_until(Instant::now() + WATCH_INTERVAL) {
                    let addrs = interface_addrs();
                    let Some(node) = weak.upgrade() else {
                        return;
                    };
                    node.on_interfaces(addrs);
                }
            })?;
        *self
            .traversal
            .watcher
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some((stop, handle));
        Ok(())
    }

    fn on_interfaces(&self, addrs: Vec<IpAddr>) {
        let mut st = self.traversal.state();
        if st.local.interface_addrs != addrs {
            tracing::info!(
                ?addrs,
                "local addresses changed: NAT classification starts over"
            );
            st.local.interface_addrs = addrs;
            st.classifier.on_local_address_changed(Instant::now());
        }
    }

    /// Starts the port-mapping thread when the configuration asks for it.
    pub(super) fn start_port_mapping(self: &Arc<Self>) -> std::io::Result<()> {
        let settings = &self.config.traversal;
        if !settings.port_mapping {
            return Ok(());
        }
        let mut config = MapperConfig::new(self.local_addr.port());
        config.enabled = true;
        config.gateway = settings.port_mapping_gateway.map(gateway_v4);
        let stop = Arc::new(PortmapStop::default());
        let weak = Arc::downgrade(self);
        let thread_stop = stop.clone();
        let handle = std::thread::Builder::new()
            .name("net-portmap".into())
            .spawn(move || portmap_thread(weak, config, thread_stop))?;
        *self
            .traversal
            .portmap
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some((stop, handle));
        Ok(())
    }

    /// Stops the port-mapping thread (waiting, bounded, for its
    /// teardown) and the interface watcher.
    pub(super) fn stop_traversal_threads(&self) {
        stop_thread(&self.traversal.watcher);
        stop_thread(&self.traversal.portmap);
    }

    fn on_mapper_event(&self, event: MapperEvent, stats: MapperStats) {
        let changed = {
            let mut st = self.traversal.state();
            st.mapping = stats;
            match event {
                MapperEvent::Installed(lease)
                | MapperEvent::Renewed {
                    lease,
                    external_changed: true,
                } => st
                    .reflex
                    .set_override(lease.external, OverrideOrigin::PortMapping),
                MapperEvent::Removed { .. } => {
                    st.reflex.clear_override(OverrideOrigin::PortMapping)
                }
                _ => false,
            }
        };
        tracing::info!(?event, "port mapping");
        if changed
            || matches!(
                event,
                MapperEvent::Installed(_) | MapperEvent::Removed { .. }
            )
        {
            self.reannounce_nat();
        }
    }

    /// Whether a port mapping forwards our reflex (the `nat-mapped` tag).
    fn mapped(&self) -> bool {
        self.traversal.state().mapping.active
    }
}

fn portmap_thread(inner: std::sync::Weak<Inner>, config: MapperConfig, stop: Arc<PortmapStop>) {
    let mut mapper = PortMapper::new(config);
    let mut retry_at = Some(Instant::now());
    loop {
        let due = match (retry_at, mapper.next_deadline()) {
            (Some(r), _) => r,
            (None, Some(d)) => d,
            (None, None) => Instant::now() + PORTMAP_RETRY,
        };
        if stop.sleep_until(due) {
            break;
        }
        let Some(node) = inner.upgrade() else {
            return;
        };
        let now = Instant::now();
        if retry_at.is_some() {
            match mapper.start(now) {
                Ok(event) => {
                    retry_at = None;
                    node.on_mapper_event(event, mapper.stats());
                }
                Err(e) => {
                    tracing::info!(error = %e, "no port mapping (asked again in 5 min)");
                    retry_at = Some(now + PORTMAP_RETRY);
                }
            }
        } else if let Some(event) = mapper.tick(now) {
            if matches!(event, MapperEvent::Removed { .. }) {
                retry_at = Some(now + PORTMAP_RETRY);
            }
            node.on_mapper_event(event, mapper.stats());
        }
    }
    if let Some(event) = mapper.shutdown()
        && let Some(node) = inner.upgrade()
    {
        node.on_mapper_event(event, mapper.stats());
    }
}
