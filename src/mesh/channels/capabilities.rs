//! What a channel's capability filters look at: a peer's capability set,
//! seen through a small trait so that the capability index (MESH2.md §3)
//! can plug its own entries in.

use std::any::Any;
use std::collections::{BTreeSet, HashSet};
use std::fmt;

/// A peer's announced capabilities, as the filters see them.
pub trait Capabilities {
    /// Whether the peer announced `tag`.
    fn has_tag(&self, tag: &str) -> bool;

    /// The concrete type behind the view, for filters that need more than
    /// tags (models, GPUs, memory) and know the index's entry type.
    fn as_any(&self) -> Option<&dyn Any> {
        None
    }
}

/// The capabilities of a peer that never announced any: filters fail
/// closed on it.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCapabilities;

impl Capabilities for NoCapabilities {
    fn has_tag(&self, _tag: &str) -> bool {
        false
    }
}

impl Capabilities for BTreeSet<String> {
    fn has_tag(&self, tag: &str) -> bool {
        self.contains(tag)
    }
}

impl Capabilities for HashSet<String> {
    fn has_tag(&self, tag: &str) -> bool {
        self.contains(tag)
    }
}

impl Capabilities for [&str] {
    fn has_tag(&self, tag: &str) -> bool {
        self.contains(&tag)
    }
}

/// A channel's publish or subscribe filter over a peer's capabilities.
pub trait CapabilityFilter: fmt::Debug + Send + Sync {
    /// Whether a peer with `capabilities` passes.
    fn admits(&self, capabilities: &dyn Capabilities) -> bool;
}

/// Admits peers that announced every listed tag (the "tags: all present"
/// rule of MESH2.md §3.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequireTags(pub Vec<String>);

impl RequireTags {
    /// A filter requiring every tag in `tags`.
    pub fn new<I, S>(tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self(tags.into_iter().map(Into::into).collect())
    }
}

impl CapabilityFilter for RequireTags {
    fn admits(&self, capabilities: &dyn Capabilities) -> bool {
        self.0.iter().all(|tag| capabilities.has_tag(tag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn require_tags_needs_every_tag_and_fails_closed() {
        let filter = RequireTags::new(["gpu", "zone:eu"]);
        let both: BTreeSet<String> = ["gpu", "zone:eu", "x"].map(String::from).into();
        let one: BTreeSet<String> = ["gpu"].map(String::from).into();
        assert!(filter.admits(&both));
        assert!(!filter.admits(&one));
        assert!(!filter.admits(&NoCapabilities));
        assert!(RequireTags::default().admits(&NoCapabilities));
    }
}
