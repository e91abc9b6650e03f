//! The subscriber side's view of its subscriptions (MESH2.md §1.6, §7 item
//! 9): which channel name each publisher's publish stream carries, so an
//! inbound event is tagged with the channel's name rather than only its
//! 16-bit hash. Two names with the same hash are never held for the same
//! publisher: the second subscribe is refused locally, so a hash on a
//! publisher's stream always maps to exactly one name.

use std::collections::{BTreeMap, HashMap};

use crate::identity::ChannelName;

/// The bit that marks a publish stream id (WIRE.md §10.3).
pub const PUBLISH_STREAM_BASE: u64 = 0x0001_0000_0000_0000;

/// The channel hash a publish stream id carries, if it is one.
pub fn publish_stream_hash(stream_id: u64) -> Option<u16> {
    (stream_id & !0xFFFF == PUBLISH_STREAM_BASE).then_some(stream_id as u16)
}

/// Which channel an inbound event on a stream belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InboundChannel {
    /// Not a publish stream id: an ordinary stream.
    NotAChannel,
    /// A channel we subscribed to at this publisher.
    Named(ChannelName),
    /// A publish stream we have no subscription for (any peer may use any
    /// stream id, as in v0.11); only the hash is known.
    Unsubscribed(u16),
}

/// A subscribe that would make a hash ambiguous at one publisher.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("channel {name} collides with {existing} (hash {hash:#06x}) at this publisher")]
pub struct HashCollision {
    /// The name asked for.
    pub name: ChannelName,
    /// The name already held with the same hash.
    pub existing: ChannelName,
    /// The shared hash.
    pub hash: u16,
}

/// Subscriptions held (or being requested) per publisher.
#[derive(Debug, Default)]
pub struct Subscriptions {
    by_peer: HashMap<u64, BTreeMap<u16, ChannelName>>,
}

impl Subscriptions {
    /// None held.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks that `name` can be held for `peer`.
    ///
    /// # Errors
    /// [`HashCollision`] when another name with the same hash is held.
    pub fn check(&self, peer: u64, name: &ChannelName) -> Result<(), HashCollision> {
        let hash = name.hash();
        match self.by_peer.get(&peer).and_then(|m| m.get(&hash)) {
            Some(existing) if existing != name => Err(HashCollision {
                name: name.clone(),
                existing: existing.clone(),
                hash,
            }),
            _ => Ok(()),
        }
    }

    /// Holds `name` for `peer`.
    ///
    /// # Errors
    /// As [`check`](Self::check); nothing changes then.
    pub fn add(&mut self, peer: u64, name: &ChannelName) -> Result<(), HashCollision> {
        self.check(peer, name)?;
        self.by_peer
            .entry(peer)
            .or_default()
            .insert(name.hash(), name.clone());
        Ok(())
    }

    /// Drops `name` for `peer`; true if it was held.
    pub fn remove(&mut self, peer: u64, name: &ChannelName) -> bool {
        let Some(map) = self.by_peer.get_mut(&peer) else {
            return false;
        };
        let removed = match map.get(&name.hash()) {
            Some(held) if held == name => map.remove(&name.hash()).is_some(),
            _ => false,
        };
        if map.is_empty() {
            self.by_peer.remove(&peer);
        }
        removed
    }

    /// Drops everything held for `peer`; returns the names.
    pub fn forget_peer(&mut self, peer: u64) -> Vec<ChannelName> {
        self.by_peer
            .remove(&peer)
            .map(|m| m.into_values().collect())
            .unwrap_or_default()
    }

    /// Whether `name` is held for `peer`.
    pub fn contains(&self, peer: u64, name: &ChannelName) -> bool {
        self.check(peer, name).is_ok()
            && self
                .by_peer
                .get(&peer)
                .is_some_and(|m| m.contains_key(&name.hash()))
    }

    /// Every (publisher, name) held, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &ChannelName)> {
        self.by_peer
            .iter()
            .flat_map(|(peer, names)| names.values().map(move |name| (*peer, name)))
    }

    /// Which channel an event from `peer` on `stream_id` belongs to.
    pub fn resolve(&self, peer: u64, stream_id: u64) -> InboundChannel {
        let Some(hash) = publish_stream_hash(stream_id) else {
            return InboundChannel::NotAChannel;
        };
        match self.by_peer.get(&peer).and_then(|m| m.get(&hash)) {
            Some(name) => InboundChannel::Named(name.clone()),
            None => InboundChannel::Unsubscribed(hash),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::channels::test_support::colliding_pair;

    #[test]
    fn colliding_names_are_never_merged_at_one_publisher() {
        let (first, second) = colliding_pair();
        let mut subs = Subscriptions::new();
        subs.add(1, &first).unwrap();
        let err = subs.add(1, &second).unwrap_err();
        assert_eq!(err.existing, first);
        // Another publisher has its own streams: no ambiguity there.
        subs.add(2, &second).unwrap();
        let stream = PUBLISH_STREAM_BASE | u64::from(first.hash());
        assert_eq!(
            subs.resolve(1, stream),
            InboundChannel::Named(first.clone())
        );
        assert_eq!(
            subs.resolve(2, stream),
            InboundChannel::Named(second.clone())
        );
        assert_eq!(
            subs.resolve(3, stream),
            InboundChannel::Unsubscribed(first.hash())
        );
        assert_eq!(subs.resolve(1, 42), InboundChannel::NotAChannel);
        assert!(!subs.remove(1, &second));
        assert!(subs.remove(1, &first));
        assert_eq!(subs.forget_peer(2), vec![second]);
    }

    #[test]
    fn publish_stream_ids_are_recognised_exactly() {
        assert_eq!(publish_stream_hash(0x0001_0000_0000_e5d8), Some(0xe5d8));
        assert_eq!(publish_stream_hash(0x0001_0000_0001_e5d8), None);
        assert_eq!(publish_stream_hash(0x0003_0000_0000_e5d8), None);
        assert_eq!(publish_stream_hash(0x0A00), None);
    }
}
