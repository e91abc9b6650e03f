//! Subnet ids, the channel visibility predicate (MESH2.md §1.8, §5) and
//! the confinement stamp relays check (the gateway, `docs/mesh.md`
//! "Subnets").

/// A subnet: four 8-bit levels, level 0 in the top byte; 0 is GLOBAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SubnetId(pub u32);

impl SubnetId {
    /// The root of every hierarchy (what a peer without a known subnet is).
    pub const GLOBAL: Self = Self(0);

    /// Builds a subnet from up to four levels (level 0 first); `None` for
    /// more than four.
    pub fn from_levels(levels: &[u8]) -> Option<Self> {
        if levels.len() > 4 {
            return None;
        }
        let mut bytes = [0u8; 4];
        bytes[..levels.len()].copy_from_slice(levels);
        Some(Self(u32::from_be_bytes(bytes)))
    }

    /// Position of the last non-zero level + 1 (0 for GLOBAL).
    pub fn depth(self) -> u32 {
        let bytes = self.0.to_be_bytes();
        bytes
            .iter()
            .rposition(|&level| level != 0)
            .map_or(0, |last| last as u32 + 1)
    }

    /// True when `self` is GLOBAL or `other` masked to `self`'s depth
    /// equals `self` (so a subnet is its own ancestor).
    pub fn is_ancestor_of(self, other: SubnetId) -> bool {
        let depth = self.depth();
        if depth == 0 {
            return true;
        }
        let mask = u32::MAX << (8 * (4 - depth));
        other.0 & mask == self.0
    }

    /// The levels, level 0 first.
    pub fn levels(self) -> [u8; 4] {
        self.0.to_be_bytes()
    }

    /// The deepest subnet that is an ancestor of both (their levels up to
    /// the first that differs).
    pub fn common_ancestor(self, other: SubnetId) -> SubnetId {
        let shared = (self.0 ^ other.0).leading_zeros() / 8;
        if shared == 0 {
            return SubnetId::GLOBAL;
        }
        SubnetId(self.0 & (u32::MAX << (8 * (4 - shared.min(4)))))
    }
}

/// Why a subnet text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("subnet {0:?}: expected \"global\" or 1 to 4 dotted levels 0-255 (e.g. \"3.7.2\")")]
pub struct SubnetParseError(pub String);

impl std::str::FromStr for SubnetId {
    type Err = SubnetParseError;

    /// `"global"` or dotted levels (`"3.7.2"`; at most four, each 0–255).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let refuse = || SubnetParseError(text.to_owned());
        if text == "global" {
            return Ok(Self::GLOBAL);
        }
        let mut levels = Vec::with_capacity(4);
        for part in text.split('.') {
            if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(refuse());
            }
            levels.push(part.parse::<u8>().map_err(|_| refuse())?);
        }
        Self::from_levels(&levels).ok_or_else(refuse)
    }
}

impl std::fmt::Display for SubnetId {
    /// `global`, or the levels up to the last non-zero one, dotted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let depth = self.depth() as usize;
        if depth == 0 {
            return f.write_str("global");
        }
        for (i, level) in self.levels()[..depth].iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{level}")?;
        }
        Ok(())
    }
}

/// Who may see a channel (MESH2.md §1.1, §1.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Visibility {
    /// Only peers in exactly the publisher's subnet.
    SubnetLocal,
    /// Peers whose subnet is the publisher's or one of its ancestors.
    ParentVisible,
    /// Visible to the subnets the channel exports to (and below them);
    /// none without export targets (v0.11: never visible to a mesh peer).
    Exported,
    /// Everyone (the default).
    #[default]
    Global,
}

impl Visibility {
    /// Whether a subscriber in `dest` may see a channel published from
    /// `source` (MESH2.md §1.8). Exported is false here: it depends on the
    /// channel's export targets ([`visible`]).
    pub fn allows(self, source: SubnetId, dest: SubnetId) -> bool {
        match self {
            Visibility::Global => true,
            Visibility::SubnetLocal => dest == source,
            Visibility::ParentVisible => dest.is_ancestor_of(source),
            Visibility::Exported => false,
        }
    }

    /// [`allows`](Self::allows) for a subscriber whose subnet may be
    /// unknown: an unknown subnet sees only Global channels (v0.11 takes
    /// it for GLOBAL, which sees every ParentVisible channel).
    pub fn allows_peer(self, source: SubnetId, dest: Option<SubnetId>) -> bool {
        match dest {
            Some(dest) => self.allows(source, dest),
            None => self == Visibility::Global,
        }
    }

    /// The confinement stamp of a packet of a channel published from
    /// `source` to an (authorized) subscriber in `dest`: the subnet whose
    /// subtree the packet must not leave on its way — the smallest holding
    /// both ends (SubnetLocal: the publisher's subnet; ParentVisible: the
    /// subscriber's, an ancestor of the publisher's; Exported: their
    /// common ancestor) — or GLOBAL (no bound) for Global. Carried in the
    /// header's `subnet_id` towards Net peers (v0.11 sends and ignores 0);
    /// see [`may_forward`].
    pub fn confinement(self, source: SubnetId, dest: SubnetId) -> SubnetId {
        match self {
            Visibility::Global => SubnetId::GLOBAL,
            _ => source.common_ancestor(dest),
        }
    }
}

/// Whether a subscriber in `dest` (`None`: unknown) may see a channel with
/// `visibility` published from `source`, where `exports` are the channel's
/// export targets: an Exported channel is visible in an export target and
/// below it (v0.11's gateway rule, here on the mesh path); the others
/// follow [`Visibility::allows_peer`].
pub fn visible(
    visibility: Visibility,
    exports: &[SubnetId],
    source: SubnetId,
    dest: Option<SubnetId>,
) -> bool {
    match (visibility, dest) {
        (Visibility::Exported, Some(dest)) => exports.iter().any(|t| t.is_ancestor_of(dest)),
        (Visibility::Exported, None) => false,
        (other, dest) => other.allows_peer(source, dest),
    }
}

/// The gateway rule a node applies before handing a stamped packet to a
/// next hop (as a relay, and as the sender choosing its first hop): a
/// packet confined to `stamp` goes only to a hop inside that subnet's
/// subtree. An unstamped packet (GLOBAL, all v0.11 traffic) always may; a
/// hop of unknown subnet never gets a stamped one.
pub fn may_forward(stamp: SubnetId, next_hop: Option<SubnetId>) -> bool {
    stamp == SubnetId::GLOBAL || next_hop.is_some_and(|hop| stamp.is_ancestor_of(hop))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(levels: &[u8]) -> SubnetId {
        SubnetId::from_levels(levels).unwrap()
    }

    #[test]
    fn depth_and_ancestry_follow_the_levels() {
        assert_eq!(SubnetId::GLOBAL.depth(), 0);
        assert_eq!(subnet(&[3, 7, 2]).depth(), 3);
        assert_eq!(subnet(&[3, 0, 2]).depth(), 3);
        assert!(SubnetId::from_levels(&[1, 2, 3, 4, 5]).is_none());
        assert!(SubnetId::GLOBAL.is_ancestor_of(subnet(&[3])));
        assert!(subnet(&[3, 7]).is_ancestor_of(subnet(&[3, 7, 2])));
        assert!(subnet(&[3, 7, 2]).is_ancestor_of(subnet(&[3, 7, 2])));
        assert!(!subnet(&[3, 7, 2]).is_ancestor_of(subnet(&[3, 7])));
        assert!(!subnet(&[3, 8]).is_ancestor_of(subnet(&[3, 7, 2])));
    }

    #[test]
    fn visibility_matches_the_reference_scenarios() {
        // MESH2 §8 subnets: A, B in [3,7,2], C in [3,8,1].
        let ab = subnet(&[3, 7, 2]);
        let c = subnet(&[3, 8, 1]);
        assert!(Visibility::SubnetLocal.allows(ab, ab));
        assert!(!Visibility::SubnetLocal.allows(ab, c));
        // ParentVisible is upward only: a descendant publisher reaches its
        // ancestors, a sibling never.
        assert!(Visibility::ParentVisible.allows(subnet(&[3, 7, 2, 1]), ab));
        assert!(!Visibility::ParentVisible.allows(ab, subnet(&[3, 7, 2, 1])));
        assert!(!Visibility::ParentVisible.allows(ab, subnet(&[3, 7, 3])));
        assert!(Visibility::ParentVisible.allows(ab, SubnetId::GLOBAL));
        assert!(!Visibility::Exported.allows(ab, ab));
        assert!(Visibility::Global.allows(ab, c));
        // Without a subnet policy everyone is GLOBAL.
        assert!(Visibility::SubnetLocal.allows(SubnetId::GLOBAL, SubnetId::GLOBAL));
        // An unknown subscriber sees Global only (v0.11: as GLOBAL).
        assert!(Visibility::Global.allows_peer(ab, None));
        assert!(!Visibility::ParentVisible.allows_peer(ab, None));
        assert!(!Visibility::SubnetLocal.allows_peer(SubnetId::GLOBAL, None));
        assert!(Visibility::ParentVisible.allows_peer(ab, Some(SubnetId::GLOBAL)));
    }

    #[test]
    fn text_round_trips_and_refuses_garbage() {
        for (text, levels) in [
            ("global", &[][..]),
            ("3", &[3][..]),
            ("3.7.2", &[3, 7, 2][..]),
            ("3.0.2", &[3, 0, 2][..]),
            ("255.1.1.9", &[255, 1, 1, 9][..]),
        ] {
            let id: SubnetId = text.parse().unwrap();
            assert_eq!(id, subnet(levels));
            assert_eq!(id.to_string(), text);
        }
        // Trailing zero levels are not written back.
        assert_eq!("3.7.0".parse::<SubnetId>().unwrap().to_string(), "3.7");
        for bad in [
            "",
            "1.2.3.4.5",
            "256",
            "1..2",
            "a",
            "-1",
            "1.2.",
            "Global",
            "0001",
        ] {
            assert!(bad.parse::<SubnetId>().is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        /// Every id prints and parses back to itself; any text (a peer's
        /// tag remainder) parses or is refused, never panics.
        #[test]
        fn text_round_trips_for_every_id(raw: u32, text in ".{0,24}") {
            let id = SubnetId(raw);
            proptest::prop_assert_eq!(id.to_string().parse::<SubnetId>(), Ok(id));
            if let Ok(parsed) = text.parse::<SubnetId>() {
                proptest::prop_assert!(parsed.depth() <= 4);
            }
        }

        /// The common ancestor is an ancestor of both, and the deepest.
        #[test]
        fn common_ancestor_is_the_deepest_shared_one(a: u32, b: u32) {
            let (a, b) = (SubnetId(a), SubnetId(b));
            let c = a.common_ancestor(b);
            proptest::prop_assert!(c.is_ancestor_of(a) && c.is_ancestor_of(b));
            proptest::prop_assert_eq!(c, b.common_ancestor(a));
            for depth in (c.depth() + 1)..=4 {
                let deeper = SubnetId(a.0 & (u32::MAX << (8 * (4 - depth))));
                proptest::prop_assert!(!(deeper.is_ancestor_of(b) && deeper.depth() > c.depth()));
            }
        }

        /// A stamp admits exactly the hops its own subtree contains.
        #[test]
        fn may_forward_is_ancestry(stamp: u32, hop: u32) {
            let (stamp, hop) = (SubnetId(stamp), SubnetId(hop));
            proptest::prop_assert_eq!(may_forward(stamp, Some(hop)), stamp.is_ancestor_of(hop));
        }
    }

    #[test]
    fn exported_channels_reach_their_export_targets_only() {
        let source = subnet(&[3, 7, 2]);
        let exports = [subnet(&[3, 8]), subnet(&[5, 1, 1])];
        assert!(visible(
            Visibility::Exported,
            &exports,
            source,
            Some(subnet(&[3, 8]))
        ));
        assert!(visible(
            Visibility::Exported,
            &exports,
            source,
            Some(subnet(&[3, 8, 4]))
        ));
        assert!(visible(
            Visibility::Exported,
            &exports,
            source,
            Some(subnet(&[5, 1, 1]))
        ));
        assert!(!visible(
            Visibility::Exported,
            &exports,
            source,
            Some(subnet(&[5, 1]))
        ));
        assert!(!visible(
            Visibility::Exported,
            &exports,
            source,
            Some(source)
        ));
        assert!(!visible(Visibility::Exported, &exports, source, None));
        assert!(!visible(
            Visibility::Exported,
            &[],
            source,
            Some(subnet(&[3, 8]))
        ));
        assert!(visible(Visibility::Global, &[], source, None));
        // The stamp of an exported packet: the smallest subtree holding both
        // ends.
        assert_eq!(
            Visibility::Exported.confinement(source, subnet(&[3, 8, 4])),
            subnet(&[3])
        );
        assert_eq!(
            Visibility::Exported.confinement(source, subnet(&[5, 1, 1])),
            SubnetId::GLOBAL
        );
    }

    #[test]
    fn common_ancestors() {
        assert_eq!(
            subnet(&[3, 7, 2]).common_ancestor(subnet(&[3, 7, 5])),
            subnet(&[3, 7])
        );
        assert_eq!(
            subnet(&[3, 7, 2]).common_ancestor(subnet(&[3, 7, 2])),
            subnet(&[3, 7, 2])
        );
        assert_eq!(
            subnet(&[3, 7, 2]).common_ancestor(subnet(&[3, 7])),
            subnet(&[3, 7])
        );
        assert_eq!(subnet(&[3]).common_ancestor(subnet(&[4])), SubnetId::GLOBAL);
        assert_eq!(
            subnet(&[3, 0, 2]).common_ancestor(subnet(&[3, 0, 5])),
            subnet(&[3])
        );
        assert_eq!(
            SubnetId::GLOBAL.common_ancestor(subnet(&[3])),
            SubnetId::GLOBAL
        );
    }

    #[test]
    fn confinement_keeps_packets_inside_the_allowed_subtree() {
        let ab = subnet(&[3, 7, 2]);
        let parent = subnet(&[3, 7]);
        let other = subnet(&[3, 8, 1]);
        let local = Visibility::SubnetLocal.confinement(ab, ab);
        assert_eq!(local, ab);
        assert!(may_forward(local, Some(ab)));
        assert!(may_forward(local, Some(subnet(&[3, 7, 2, 1]))));
        assert!(!may_forward(local, Some(other)));
        assert!(!may_forward(local, Some(parent)));
        assert!(!may_forward(local, Some(SubnetId::GLOBAL)));
        assert!(!may_forward(local, None));
        let up = Visibility::ParentVisible.confinement(ab, parent);
        assert_eq!(up, parent);
        assert!(may_forward(up, Some(ab)));
        assert!(may_forward(up, Some(subnet(&[3, 7, 9]))));
        assert!(!may_forward(up, Some(other)));
        let open = Visibility::Global.confinement(ab, other);
        assert_eq!(open, SubnetId::GLOBAL);
        assert!(may_forward(open, None));
        assert!(may_forward(open, Some(other)));
    }
}
