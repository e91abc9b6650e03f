//! Subnet ids and the channel visibility predicate (MESH2.md §1.8, §5).

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
}

/// Who may see a channel (MESH2.md §1.1, §1.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Visibility {
    /// Only peers in exactly the publisher's subnet.
    SubnetLocal,
    /// Peers whose subnet is the publisher's or one of its ancestors.
    ParentVisible,
    /// Meant for gateways; never visible to a mesh peer.
    Exported,
    /// Everyone (the default).
    #[default]
    Global,
}

impl Visibility {
    /// Whether a subscriber in `dest` may see a channel published from
    /// `source` (MESH2.md §1.8).
    pub fn allows(self, source: SubnetId, dest: SubnetId) -> bool {
        match self {
            Visibility::Global => true,
            Visibility::SubnetLocal => dest == source,
            Visibility::ParentVisible => dest.is_ancestor_of(source),
            Visibility::Exported => false,
        }
    }
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
    }
}
