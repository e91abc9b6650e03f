//! NAT classification from reflex observations (MESH2.md §4.1, §4.5).
//!
//! A reflex observation is "peer P, reached at address X, saw us as O".
//! [`classify`] turns a set of them (plus, when we have it, evidence about
//! which unsolicited packets got through) into a [`Classification`]: the
//! v0.11 class name ([`NatClass`], what the `nat:*` tag carries) and the
//! RFC 4787 behaviours the evidence supports ([`Mapping`], [`Filtering`]).
//!
//! Better than v0.11 (MESH2.md §7 items 20 and 22):
//! - At least two observations from probe peers on **different IP
//!   addresses** are needed; two peers behind one address prove nothing
//!   about address-dependence, so that is still Unknown.
//! - Open needs every observation to show one of our own interface
//!   addresses and our bound port: a port-preserving NAT with a wildcard
//!   bind no longer looks Open (v0.11 accepted any observation with the bind
//!   port when bound to 0.0.0.0).
//! - One Open observation does not win: the observations must agree.
//! - Cone needs the same address **and** port in every observation (v0.11
//!   ignored the IP); a NAT that maps one socket to several public IPs
//!   ("address pooling: arbitrary") is address-dependent for a punch.
//! - The reflex we advertise ([`Classification::reflex`]) is never a
//!   private, loopback, link-local or wildcard address and never an address
//!   from an observation that disagreed with the others; with no usable
//!   observation there is no reflex (v0.11 advertised its local socket
//!   address, often 0.0.0.0 or a private one).
//!
//! The reflex override short-circuits
//! all of this: see [`ReflexState`].

use std::net::{IpAddr, SocketAddr};

/// The NAT class as v0.11 names it (the `nat:*` capability tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NatClass {
    /// No NAT: peers see our own address and port.
    Open,
    /// Endpoint-independent mapping: every peer sees the same address and
    /// port, so a reflex learnt from one peer works for the others.
    Cone,
    /// Address- or port-dependent mapping: each destination sees another
    /// port (or address), so an advertised reflex is useless for punching.
    Symmetric,
    /// Not enough evidence.
    Unknown,
}

impl NatClass {
    /// The capability tag (WIRE.md §10.4 reserved `nat:` prefix).
    pub fn tag(self) -> &'static str {
        match self {
            Self::Open => "nat:open",
            Self::Cone => "nat:cone",
            Self::Symmetric => "nat:symmetric",
            Self::Unknown => "nat:unknown",
        }
    }

    /// The class a `nat:*` tag names; `None` for anything else (the pair
    /// matrix then treats the peer as Unknown, as v0.11 does).
    pub fn from_tag(tag: &str) -> Option<Self> {
        match tag {
            "nat:open" => Some(Self::Open),
            "nat:cone" => Some(Self::Cone),
            "nat:symmetric" => Some(Self::Symmetric),
            "nat:unknown" => Some(Self::Unknown),
            _ => None,
        }
    }
}

/// The mapping behaviour (RFC 4787 §4.1) the observations show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mapping {
    /// No translation at all.
    None,
    /// One external address and port for every destination.
    EndpointIndependent,
    /// Same external endpoint for two ports of one destination IP, another
    /// one for another IP.
    AddressDependent,
    /// A new external endpoint even for another port of the same IP.
    AddressAndPortDependent,
    /// Destination-dependent, but no probe pair on one IP told us which of
    /// the two dependent kinds.
    Dependent,
    /// Not enough evidence.
    Unknown,
}

/// The filtering behaviour (RFC 4787 §5), known only when unsolicited
/// probes were tried (see [`FilteringEvidence`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Filtering {
    /// Packets from any address reach us once a mapping exists ("full cone").
    EndpointIndependent,
    /// Only from IPs we sent to ("restricted cone").
    AddressDependent,
    /// Only from the exact IP and port we sent to ("port-restricted").
    AddressAndPortDependent,
    /// No evidence.
    Unknown,
}

/// One reflex answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Observation {
    /// The probe peer's node id.
    pub probe_peer: u64,
    /// The address we sent the probe to.
    pub probe_addr: SocketAddr,
    /// The address the peer saw us at.
    pub observed: SocketAddr,
}

/// What unsolicited probes told us. Each field is `None` when that probe
/// was not tried, `Some(true)` when a packet arrived, `Some(false)` when it
/// did not (within the probe's deadline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FilteringEvidence {
    /// A packet sent from an IP we never sent to reached our mapping.
    pub from_other_ip: Option<bool>,
    /// A packet from another port of an IP we sent to reached it.
    pub from_other_port: Option<bool>,
}

/// Our own socket: what classification compares observations against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalView {
    /// The address the node's socket is bound to (may be a wildcard).
    pub bound: SocketAddr,
    /// The host's interface addresses (used when `bound` is a wildcard).
    pub interface_addrs: Vec<IpAddr>,
}

impl LocalView {
    /// Is `addr` one of our own (the bound address, or an interface address
    /// with our port when bound to a wildcard)?
    fn is_own(&self, addr: SocketAddr) -> bool {
        if addr.port() != self.bound.port() {
            return false;
        }
        if self.bound.ip().is_unspecified() {
            self.interface_addrs.contains(&addr.ip())
        } else {
            addr.ip() == self.bound.ip()
        }
    }
}

/// The result of [`classify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Classification {
    /// The v0.11 class.
    pub class: NatClass,
    /// The mapping behaviour shown.
    pub mapping: Mapping,
    /// The filtering behaviour shown.
    pub filtering: Filtering,
    /// The address to advertise as reflex, if the evidence gives one that
    /// peers can use (see the module doc).
    pub reflex: Option<SocketAddr>,
    /// The NAT kept our local port (useful for diagnostics: such a NAT
    /// looked Open to v0.11).
    pub port_preserving: bool,
}

impl Classification {
    /// No evidence at all.
    pub const UNKNOWN: Self = Self {
        class: NatClass::Unknown,
        mapping: Mapping::Unknown,
        filtering: Filtering::Unknown,
        reflex: None,
        port_preserving: false,
    };
}

/// Can `addr` be advertised as a reflex (reachable from other networks)?
/// Never a wildcard, loopback, private (RFC 1918, ULA), link-local,
/// shared (RFC 6598), multicast or broadcast address, nor port 0.
pub fn is_advertisable(addr: SocketAddr) -> bool {
    if addr.port() == 0 {
        return false;
    }
    match addr.ip() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || (o[0] == 100 && (o[1] & 0xC0) == 64))
        }
        IpAddr::V6(v6) => {
            let seg0 = v6.segments()[0];
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (seg0 & 0xfe00) == 0xfc00
                || (seg0 & 0xffc0) == 0xfe80)
        }
    }
}

/// Classifies from reflex observations and filtering evidence.
///
/// Rules, in order:
/// 1. Fewer than two observations from distinct probe IPs ⇒ Unknown (the
///    reflex is still given when the one or more observations agree and it
///    is advertisable: one peer's view of a public address is better than
///    none, and it is what the override-less node would otherwise lack).
/// 2. Every observation is one of our own addresses ⇒ Open.
/// 3. Every observation is the same address and port ⇒ Cone
///    (endpoint-independent mapping).
/// 4. Otherwise Symmetric; two probes on one IP with different ports say
///    whether the mapping is address- or address-and-port-dependent.
///
/// Pure: no clock, no I/O.
pub fn classify(
    local: &LocalView,
    observations: &[Observation],
    filtering_evidence: FilteringEvidence,
) -> Classification {
    let filtering = match (
        filtering_evidence.from_other_ip,
        filtering_evidence.from_other_port,
    ) {
        (Some(true), _) => Filtering::EndpointIndependent,
        (Some(false), Some(true)) => Filtering::AddressDependent,
        (Some(false), Some(false)) | (None, Some(false)) => Filtering::AddressAndPortDependent,
        _ => Filtering::Unknown,
    };
    let Some(first) = observations.first() else {
        return Classification {
            filtering,
            ..Classification::UNKNOWN
        };
    };
    let all_agree = observations.iter().all(|o| o.observed == first.observed);
    let port_preserving = observations
        .iter()
        .all(|o| o.observed.port() == local.bound.port());
    let agreed_reflex = if all_agree && is_advertisable(first.observed) {
        Some(first.observed)
    } else {
        None
    };

    let mut probe_ips: Vec<IpAddr> = observations.iter().map(|o| o.probe_addr.ip()).collect();
    probe_ips.sort_unstable();
    probe_ips.dedup();
    if probe_ips.len() < 2 {
        return Classification {
            class: NatClass::Unknown,
            mapping: Mapping::Unknown,
            filtering,
            reflex: agreed_reflex,
            port_preserving,
        };
    }

    if observations.iter().all(|o| local.is_own(o.observed)) {
        return Classification {
            class: NatClass::Open,
            mapping: Mapping::None,
            // No NAT: whatever filters is a firewall; evidence still counts.
            filtering,
            // Our own address, when peers can use it (never loopback or
            // private: the module doc).
            reflex: agreed_reflex,
            port_preserving: true,
        };
    }

    if all_agree {
        return Classification {
            class: NatClass::Cone,
            mapping: Mapping::EndpointIndependent,
            filtering,
            reflex: agreed_reflex,
            port_preserving,
        };
    }

    // Dependent mapping. Two probes on one IP (different ports) tell the
    // kind: same observed endpoint ⇒ address-dependent, else
    // address-and-port-dependent. Observations on different IPs alone
    // cannot tell them apart.
    let mut mapping = Mapping::Dependent;
    'pairs: for (i, a) in observations.iter().enumerate() {
        for b in &observations[i + 1..] {
            if a.probe_addr.ip() == b.probe_addr.ip() && a.probe_addr.port() != b.probe_addr.port()
            {
                mapping = if a.observed == b.observed {
                    Mapping::AddressDependent
                } else {
                    Mapping::AddressAndPortDependent
                };
                break 'pairs;
            }
        }
    }
    Classification {
        class: NatClass::Symmetric,
        mapping,
        filtering,
        reflex: None,
        port_preserving,
    }
}

/// The node's reflex state: the last classification, or an override set by
/// configuration, the runtime API or an installed port mapping (§4.5).
///
/// Better than v0.11 (§7 item 23): an override has an origin, and clearing
/// a port mapping's override never clears one the operator set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReflexState {
    classified: Classification,
    override_: Option<(SocketAddr, OverrideOrigin)>,
}

/// Who set a reflex override.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OverrideOrigin {
    /// Configuration or the runtime API: only the operator clears it.
    Operator,
    /// An installed port mapping: cleared when the mapping goes away.
    PortMapping,
}

impl Default for ReflexState {
    fn default() -> Self {
        Self::new()
    }
}

impl ReflexState {
    /// Nothing known.
    pub fn new() -> Self {
        Self {
            classified: Classification::UNKNOWN,
            override_: None,
        }
    }

    /// The class to advertise: Open while an override is active.
    pub fn class(&self) -> NatClass {
        if self.override_.is_some() {
            NatClass::Open
        } else {
            self.classified.class
        }
    }

    /// The reflex to advertise (the override's address while active).
    pub fn reflex(&self) -> Option<SocketAddr> {
        match self.override_ {
            Some((addr, _)) => Some(addr),
            None => self.classified.reflex,
        }
    }

    /// The last classification (kept while an override hides it).
    pub fn classification(&self) -> Classification {
        self.classified
    }

    /// The active override and its origin.
    pub fn override_addr(&self) -> Option<(SocketAddr, OverrideOrigin)> {
        self.override_
    }

    /// Should the node run classification now? Not while an override is
    /// active (v0.11: classification is a no-op then).
    pub fn wants_classification(&self) -> bool {
        self.override_.is_none()
    }

    /// Commits a classification round. Returns whether the advertised
    /// (class, reflex) changed, i.e. whether to re-announce.
    ///
    /// A round with no observation at all keeps the previous state (the
    /// NAT did not change because the probes were lost); a round with some
    /// observations replaces it, reflex included, so a stale reflex is
    /// never kept next to a new class. While an override is active the
    /// result is stored but not advertised.
    pub fn commit(&mut self, result: Classification, had_observations: bool) -> bool {
        if !had_observations {
            return false;
        }
        let before = (self.class(), self.reflex());
        self.classified = result;
        before != (self.class(), self.reflex())
    }

    /// Sets an override (Open, reflex = `addr`). An operator override is
    /// never replaced by a port mapping's. Returns whether the advertised
    /// state changed.
    pub fn set_override(&mut self, addr: SocketAddr, origin: OverrideOrigin) -> bool {
        if origin == OverrideOrigin::PortMapping
            && matches!(self.override_, Some((_, OverrideOrigin::Operator)))
        {
            return false;
        }
        let before = (self.class(), self.reflex());
        self.override_ = Some((addr, origin));
        before != (self.class(), self.reflex())
    }

    /// Clears an override set by `origin` (a no-op for another origin's).
    /// The last classification becomes visible again (v0.11 reset to
    /// Unknown with no reflex until the next round; ours kept its result).
    /// Returns whether the advertised state changed.
    pub fn clear_override(&mut self, origin: OverrideOrigin) -> bool {
        match self.override_ {
            Some((_, o)) if o == origin => {
                let before = (self.class(), self.reflex());
                self.override_ = None;
                before != (self.class(), self.reflex())
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn obs(peer: u64, probe: &str, observed: &str) -> Observation {
        Observation {
            probe_peer: peer,
            probe_addr: sa(probe),
            observed: sa(observed),
        }
    }

    fn behind_nat() -> LocalView {
        LocalView {
            bound: sa("0.0.0.0:4000"),
            interface_addrs: vec!["10.0.0.2".parse().unwrap()],
        }
    }

    const NONE: FilteringEvidence = FilteringEvidence {
        from_other_ip: None,
        from_other_port: None,
    };

    #[test]
    fn no_observation_is_unknown_without_reflex() {
        let c = classify(&behind_nat(), &[], NONE);
        assert_eq!(c, Classification::UNKNOWN);
    }

    #[test]
    fn one_probe_ip_is_unknown_even_with_two_peers() {
        let o = [
            obs(1, "5.5.5.5:1000", "8.8.4.4:4000"),
            obs(2, "5.5.5.5:2000", "8.8.4.4:4000"),
        ];
        let c = classify(&behind_nat(), &o, NONE);
        assert_eq!(c.class, NatClass::Unknown);
        assert_eq!(c.mapping, Mapping::Unknown);
        // Agreeing public observations still give a reflex.
        assert_eq!(c.reflex, Some(sa("8.8.4.4:4000")));
    }

    #[test]
    fn single_private_observation_gives_no_reflex() {
        let o = [obs(1, "10.0.0.9:1000", "10.0.0.2:4000")];
        let c = classify(&behind_nat(), &o, NONE);
        assert_eq!(c.class, NatClass::Unknown);
        assert_eq!(c.reflex, None);
    }

    #[test]
    fn cone_needs_same_ip_and_port() {
        let o = [
            obs(1, "5.5.5.5:1000", "8.8.4.4:4000"),
            obs(2, "6.6.6.6:1000", "8.8.4.4:4000"),
        ];
        let c = classify(&behind_nat(), &o, NONE);
        assert_eq!(c.class, NatClass::Cone);
        assert_eq!(c.mapping, Mapping::EndpointIndependent);
        assert_eq!(c.reflex, Some(sa("8.8.4.4:4000")));
        assert!(c.port_preserving);

        // Same port, another IP: v0.11 said Cone; it is not.
        let o = [
            obs(1, "5.5.5.5:1000", "8.8.4.4:4000"),
            obs(2, "6.6.6.6:1000", "8.8.4.5:4000"),
        ];
        let c = classify(&behind_nat(), &o, NONE);
        assert_eq!(c.class, NatClass::Symmetric);
        assert_eq!(c.reflex, None);
    }

    #[test]
    fn port_preserving_nat_with_wildcard_bind_is_not_open() {
        // v0.11: port == bind port and bind IP unspecified ⇒ Open.
        let o = [
            obs(1, "5.5.5.5:1000", "8.8.4.4:4000"),
            obs(2, "6.6.6.6:1000", "8.8.4.4:4000"),
        ];
        let c = classify(&behind_nat(), &o, NONE);
        assert_eq!(c.class, NatClass::Cone);
    }

    #[test]
    fn open_when_every_observation_is_our_own_address() {
        let local = LocalView {
            bound: sa("0.0.0.0:4000"),
            interface_addrs: vec!["8.8.4.4".parse().unwrap()],
        };
        let o = [
            obs(1, "5.5.5.5:1000", "8.8.4.4:4000"),
            obs(2, "6.6.6.6:1000", "8.8.4.4:4000"),
        ];
        let c = classify(&local, &o, NONE);
        assert_eq!(c.class, NatClass::Open);
        assert_eq!(c.mapping, Mapping::None);
        assert_eq!(c.reflex, Some(sa("8.8.4.4:4000")));

        let bound = LocalView {
            bound: sa("8.8.4.4:4000"),
            interface_addrs: vec![],
        };
        assert_eq!(classify(&bound, &o, NONE).class, NatClass::Open);
    }

    #[test]
    fn one_open_observation_does_not_win() {
        let local = LocalView {
            bound: sa("0.0.0.0:4000"),
            interface_addrs: vec!["8.8.4.4".parse().unwrap()],
        };
        let o = [
            obs(1, "5.5.5.5:1000", "8.8.4.4:4000"),
            obs(2, "6.6.6.6:1000", "9.9.9.9:5000"),
        ];
        let c = classify(&local, &o, NONE);
        assert_eq!(c.class, NatClass::Symmetric);
        assert_eq!(c.reflex, None);
    }

    #[test]
    fn symmetric_kinds_from_two_ports_of_one_ip() {
        let o = [
            obs(1, "5.5.5.5:1000", "8.8.4.4:4001"),
            obs(2, "6.6.6.6:1000", "8.8.4.4:4002"),
        ];
        let c = classify(&behind_nat(), &o, NONE);
        assert_eq!(c.class, NatClass::Symmetric);
        assert_eq!(c.mapping, Mapping::Dependent);
        assert!(!c.port_preserving);

        let o = [
            obs(1, "5.5.5.5:1000", "8.8.4.4:4001"),
            obs(2, "5.5.5.5:2000", "8.8.4.4:4001"),
            obs(3, "6.6.6.6:1000", "8.8.4.4:4002"),
        ];
        assert_eq!(
            classify(&behind_nat(), &o, NONE).mapping,
            Mapping::AddressDependent
        );

        let o = [
            obs(1, "5.5.5.5:1000", "8.8.4.4:4001"),
            obs(2, "5.5.5.5:2000", "8.8.4.4:4003"),
            obs(3, "6.6.6.6:1000", "8.8.4.4:4002"),
        ];
        assert_eq!(
            classify(&behind_nat(), &o, NONE).mapping,
            Mapping::AddressAndPortDependent
        );
    }

    #[test]
    fn filtering_from_evidence() {
        let o = [
            obs(1, "5.5.5.5:1000", "8.8.4.4:4000"),
            obs(2, "6.6.6.6:1000", "8.8.4.4:4000"),
        ];
        let cases = [
            ((None, None), Filtering::Unknown),
            ((Some(true), None), Filtering::EndpointIndependent),
            ((Some(true), Some(false)), Filtering::EndpointIndependent),
            ((Some(false), Some(true)), Filtering::AddressDependent),
            (
                (Some(false), Some(false)),
                Filtering::AddressAndPortDependent,
            ),
            ((None, Some(false)), Filtering::AddressAndPortDependent),
            ((None, Some(true)), Filtering::Unknown),
            ((Some(false), None), Filtering::Unknown),
        ];
        for ((ip, port), want) in cases {
            let ev = FilteringEvidence {
                from_other_ip: ip,
                from_other_port: port,
            };
            let c = classify(&behind_nat(), &o, ev);
            assert_eq!(c.filtering, want, "{ev:?}");
            assert_eq!(c.class, NatClass::Cone);
        }
    }

    #[test]
    fn advertisable_addresses() {
        for bad in [
            "0.0.0.0:1",
            "127.0.0.1:1",
            "10.1.2.3:1",
            "172.16.0.1:1",
            "192.168.1.1:1",
            "169.254.1.1:1",
            "100.64.0.1:1",
            "224.0.0.1:1",
            "255.255.255.255:1",
            "8.8.8.8:0",
            "[::]:1",
            "[::1]:1",
            "[fd00::1]:1",
            "[fe80::1]:1",
            "[ff02::1]:1",
        ] {
            assert!(!is_advertisable(sa(bad)), "{bad}");
        }
        for good in ["8.8.8.8:1", "100.128.0.1:9", "[2001:db8::1]:5"] {
            assert!(is_advertisable(sa(good)), "{good}");
        }
    }

    #[test]
    fn tags_round_trip() {
        for c in [
            NatClass::Open,
            NatClass::Cone,
            NatClass::Symmetric,
            NatClass::Unknown,
        ] {
            assert_eq!(NatClass::from_tag(c.tag()), Some(c));
        }
        assert_eq!(NatClass::from_tag("nat:full-cone"), None);
    }

    #[test]
    fn override_hides_classification_and_respects_origin() {
        let mut s = ReflexState::new();
        assert!(s.wants_classification());
        let cone = Classification {
            class: NatClass::Cone,
            mapping: Mapping::EndpointIndependent,
            filtering: Filtering::Unknown,
            reflex: Some(sa("8.8.4.4:4000")),
            port_preserving: true,
        };
        assert!(s.commit(cone, true));
        assert!(
            !s.commit(Classification::UNKNOWN, false),
            "no evidence keeps"
        );
        assert_eq!(s.class(), NatClass::Cone);

        assert!(s.set_override(sa("9.9.9.9:7000"), OverrideOrigin::Operator));
        assert_eq!(s.class(), NatClass::Open);
        assert_eq!(s.reflex(), Some(sa("9.9.9.9:7000")));
        assert!(!s.wants_classification());
        // A port mapping cannot replace the operator's override, nor clear it.
        assert!(!s.set_override(sa("1.1.1.1:1"), OverrideOrigin::PortMapping));
        assert!(!s.clear_override(OverrideOrigin::PortMapping));
        assert_eq!(s.reflex(), Some(sa("9.9.9.9:7000")));
        // Results committed meanwhile are kept but hidden.
        assert!(!s.commit(Classification::UNKNOWN, true));
        assert_eq!(s.class(), NatClass::Open);
        assert!(s.clear_override(OverrideOrigin::Operator));
        assert_eq!(s.class(), NatClass::Unknown);
        assert_eq!(s.reflex(), None);

        assert!(s.set_override(sa("1.1.1.1:1"), OverrideOrigin::PortMapping));
        assert!(s.set_override(sa("9.9.9.9:7000"), OverrideOrigin::Operator));
        assert_eq!(
            s.override_addr(),
            Some((sa("9.9.9.9:7000"), OverrideOrigin::Operator))
        );
    }
}
