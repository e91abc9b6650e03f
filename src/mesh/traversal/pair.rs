//! The pair-action matrix (MESH2.md §4.2): given our NAT and the peer's,
//! connect directly, punch once through a coordinator, or skip punching and
//! go through the coordinator (relay).
//!
//! [`v011_action`] is the v0.11 matrix exactly, used towards peers that
//! advertise only a `nat:*` tag. [`pair_action`] refines it where a peer
//! also advertises its filtering (`nat-filter:*`, a tag v0.11 ignores) or
//! a port mapping, and where v0.11's choice cannot work or wastes a
//! `punch_deadline`:
//!
//! | local | remote | v0.11 | here | why |
//! |---|---|---|---|---|
//! | any | mapped (port mapping installed) | per class | Direct | the mapping forwards unsolicited packets, like Open |
//! | any | Cone with endpoint-independent filtering | SinglePunch | Direct | a full cone forwards unsolicited packets to its reflex |
//! | Symmetric | Open | SinglePunch | Direct | our outgoing handshake opens our own mapping; the peer has none |
//! | Symmetric | Cone, address-and-port-dependent filtering | SinglePunch | SkipPunch | our packets come from a port the peer never sent to: its NAT drops them, the punch can only time out |
//! | Symmetric | Cone, endpoint-independent or address-dependent filtering | SinglePunch | SinglePunch | works because keep-alives are matched by authenticated punch id, not by exact address (see `rendezvous`) |
//! | Symmetric | Symmetric | SkipPunch | SkipPunch | neither side can predict the other's port |
//!
//! Everything else is v0.11's choice.

use super::classify::{Filtering, NatClass};

/// What `connect_direct` does for a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PairAction {
    /// Handshake straight to the peer's reflex (fall back to a routed
    /// session on failure).
    Direct,
    /// One rendezvous through the coordinator, then a handshake to the
    /// address the peer's keep-alive came from.
    SinglePunch,
    /// Go through the coordinator (relay) at once.
    SkipPunch,
}

/// The v0.11 matrix (MESH2.md §4.2): rows local, columns remote.
pub fn v011_action(local: NatClass, remote: NatClass) -> PairAction {
    use NatClass::{Cone, Open, Symmetric, Unknown};
    use PairAction::{Direct, SinglePunch, SkipPunch};
    match (local, remote) {
        (Open, Open | Cone | Unknown) => Direct,
        (Open, Symmetric) => SinglePunch,
        (Cone, Open) => Direct,
        (Cone, Cone | Symmetric | Unknown) => SinglePunch,
        (Symmetric, Open | Cone) => SinglePunch,
        (Symmetric, Symmetric | Unknown) => SkipPunch,
        (Unknown, Open | Unknown) => Direct,
        (Unknown, Cone) => SinglePunch,
        (Unknown, Symmetric) => SkipPunch,
    }
}

/// A node's NAT as the pair decision sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NatProfile {
    /// The v0.11 class.
    pub class: NatClass,
    /// Its filtering, when known.
    pub filtering: Filtering,
    /// A port mapping forwards its reflex.
    pub mapped: bool,
}

/// Prefix of the filtering tag (not a `nat:` tag: v0.11 peers keep only
/// one `nat:*` tag and ignore this one).
pub const FILTER_TAG_PREFIX: &str = "nat-filter:";
/// The tag an installed port mapping adds.
pub const MAPPED_TAG: &str = "nat-mapped";

impl NatProfile {
    /// A profile from a v0.11 class alone.
    pub fn from_class(class: NatClass) -> Self {
        Self {
            class,
            filtering: Filtering::Unknown,
            mapped: false,
        }
    }

    /// Reads a peer's profile from its capability tags: the first `nat:*`
    /// tag (none ⇒ Unknown, as v0.11), `nat-filter:*`, `nat-mapped`.
    pub fn from_tags<'a>(tags: impl IntoIterator<Item = &'a str>) -> Self {
        let mut profile = Self::from_class(NatClass::Unknown);
        let mut class_seen = false;
        for tag in tags {
            if let Some(class) = NatClass::from_tag(tag) {
                if !class_seen {
                    profile.class = class;
                    class_seen = true;
                }
            } else if let Some(f) = tag.strip_prefix(FILTER_TAG_PREFIX) {
                profile.filtering = match f {
                    "eif" => Filtering::EndpointIndependent,
                    "adf" => Filtering::AddressDependent,
                    "apdf" => Filtering::AddressAndPortDependent,
                    _ => profile.filtering,
                };
            } else if tag == MAPPED_TAG {
                profile.mapped = true;
            }
        }
        profile
    }

    /// The tags this profile advertises (the `nat:*` tag first).
    pub fn tags(&self) -> Vec<String> {
        let mut tags = vec![self.class.tag().to_owned()];
        let filter = match self.filtering {
            Filtering::EndpointIndependent => Some("eif"),
            Filtering::AddressDependent => Some("adf"),
            Filtering::AddressAndPortDependent => Some("apdf"),
            Filtering::Unknown => None,
        };
        if let Some(f) = filter {
            tags.push(format!("{FILTER_TAG_PREFIX}{f}"));
        }
        if self.mapped {
            tags.push(MAPPED_TAG.to_owned());
        }
        tags
    }
}

/// The refined decision (see the module doc for each departure).
pub fn pair_action(local: NatProfile, remote: NatProfile) -> PairAction {
    if remote.mapped {
        return PairAction::Direct;
    }
    let local_class = if local.mapped {
        NatClass::Open
    } else {
        local.class
    };
    if remote.class == NatClass::Cone && remote.filtering == Filtering::EndpointIndependent {
        return PairAction::Direct;
    }
    match (local_class, remote.class) {
        (NatClass::Symmetric, NatClass::Open) => PairAction::Direct,
        (NatClass::Symmetric, NatClass::Cone)
            if remote.filtering == Filtering::AddressAndPortDependent =>
        {
            PairAction::SkipPunch
        }
        (l, r) => v011_action(l, r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLASSES: [NatClass; 4] = [
        NatClass::Open,
        NatClass::Cone,
        NatClass::Symmetric,
        NatClass::Unknown,
    ];

    #[test]
    fn v011_matrix_cell_by_cell() {
        use PairAction::{Direct as D, SinglePunch as P, SkipPunch as S};
        // MESH2.md §4.2, rows Open, Cone, Symmetric, Unknown.
        let want = [[D, D, P, D], [D, P, P, P], [P, P, S, S], [D, P, S, D]];
        for (i, l) in CLASSES.iter().enumerate() {
            for (j, r) in CLASSES.iter().enumerate() {
                assert_eq!(v011_action(*l, *r), want[i][j], "{l:?} -> {r:?}");
            }
        }
    }

    #[test]
    fn refined_equals_v011_without_extra_evidence_except_documented_cells() {
        for l in CLASSES {
            for r in CLASSES {
                let got = pair_action(NatProfile::from_class(l), NatProfile::from_class(r));
                let want = match (l, r) {
                    (NatClass::Symmetric, NatClass::Open) => PairAction::Direct,
                    _ => v011_action(l, r),
                };
                assert_eq!(got, want, "{l:?} -> {r:?}");
            }
        }
    }

    #[test]
    fn refinements() {
        let sym = NatProfile::from_class(NatClass::Symmetric);
        let cone = |filtering| NatProfile {
            class: NatClass::Cone,
            filtering,
            mapped: false,
        };
        assert_eq!(
            pair_action(sym, cone(Filtering::AddressAndPortDependent)),
            PairAction::SkipPunch
        );
        assert_eq!(
            pair_action(sym, cone(Filtering::AddressDependent)),
            PairAction::SinglePunch
        );
        assert_eq!(
            pair_action(sym, cone(Filtering::EndpointIndependent)),
            PairAction::Direct
        );
        let mapped_sym = NatProfile {
            mapped: true,
            ..sym
        };
        assert_eq!(pair_action(sym, mapped_sym), PairAction::Direct);
        // Our own mapping makes us Open: Open → Symmetric is a punch.
        assert_eq!(pair_action(mapped_sym, sym), PairAction::SinglePunch);
    }

    #[test]
    fn tags_round_trip() {
        for class in CLASSES {
            for filtering in [
                Filtering::EndpointIndependent,
                Filtering::AddressDependent,
                Filtering::AddressAndPortDependent,
                Filtering::Unknown,
            ] {
                for mapped in [false, true] {
                    let p = NatProfile {
                        class,
                        filtering,
                        mapped,
                    };
                    let tags = p.tags();
                    assert_eq!(NatProfile::from_tags(tags.iter().map(String::as_str)), p);
                }
            }
        }
        // No tag ⇒ Unknown; the first nat:* tag wins; junk is ignored.
        assert_eq!(
            NatProfile::from_tags([]),
            NatProfile::from_class(NatClass::Unknown)
        );
        let p = NatProfile::from_tags(["gpu", "nat:cone", "nat:open", "nat-filter:zzz"]);
        assert_eq!(p, NatProfile::from_class(NatClass::Cone));
    }
}
