//! Who is subscribed to what (MESH2.md §1.4): (channel, peer) pairs indexed
//! both ways, each with the token chain that admitted it so the same
//! decision can be re-checked at publish and sweep time.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::identity::{ChannelName, EntityId, PermissionToken};

/// One subscriber of one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The tokens it presented and the chain that admitted it (re-checked
    /// later; at most [`MAX_TOKEN_CHAIN`](super::MAX_TOKEN_CHAIN) + 1).
    pub presented: Vec<PermissionToken>,
    /// UNIX second of the (latest) accepted Subscribe.
    pub since: u64,
    /// The last successful token verification, reused while it holds.
    pub verified: Option<VerifiedChain>,
}

/// A verified token chain's validity: signatures need not be checked
/// again while the config generation and the peer's entity are unchanged
/// and `now < live_until` (tokens cannot be revoked, only expire).
///
/// Its `not_before`s are not checked again: the chain was live when it
/// was verified, so a later reading before one of them is a clock behind
/// the one that verified it (a publish reads the clock the reliability
/// tick cached, up to a tick old — more on a loaded machine — while a
/// subscribe reads it fresh), not a reason to evict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedChain {
    /// The hub's config generation when it was verified.
    pub generation: u64,
    /// The subject it was verified for.
    pub entity: EntityId,
    /// Earliest `not_after` in the chain.
    pub live_until: u64,
}

impl VerifiedChain {
    /// The validity of `chain` (leaf first), or `None` for an empty chain.
    pub fn of(chain: &[PermissionToken], generation: u64, entity: EntityId) -> Option<Self> {
        let live_until = chain.iter().map(PermissionToken::not_after).min()?;
        Some(Self {
            generation,
            entity,
            live_until,
        })
    }

    /// Whether it still vouches for `entity` at `now` under `generation`.
    pub fn holds(&self, generation: u64, entity: Option<&EntityId>, now: u64) -> bool {
        self.generation == generation && entity == Some(&self.entity) && now < self.live_until
    }
}

/// Subscribers per channel and channels per peer.
#[derive(Debug, Default)]
pub struct Roster {
    by_channel: BTreeMap<ChannelName, BTreeMap<u64, Member>>,
    by_peer: HashMap<u64, BTreeSet<ChannelName>>,
}

impl Roster {
    /// An empty roster.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `peer` is subscribed to `channel`.
    pub fn contains(&self, channel: &ChannelName, peer: u64) -> bool {
        self.by_channel
            .get(channel)
            .is_some_and(|members| members.contains_key(&peer))
    }

    /// `peer`'s membership of `channel`.
    pub fn member(&self, channel: &ChannelName, peer: u64) -> Option<&Member> {
        self.by_channel.get(channel)?.get(&peer)
    }

    /// `peer`'s membership of `channel`, to update.
    pub fn member_mut(&mut self, channel: &ChannelName, peer: u64) -> Option<&mut Member> {
        self.by_channel.get_mut(channel)?.get_mut(&peer)
    }

    /// How many channels `peer` is subscribed to.
    pub fn channel_count(&self, peer: u64) -> usize {
        self.by_peer.get(&peer).map_or(0, BTreeSet::len)
    }

    /// How many peers are subscribed to `channel`.
    pub fn subscriber_count(&self, channel: &ChannelName) -> usize {
        self.by_channel.get(channel).map_or(0, BTreeMap::len)
    }

    /// The subscribers of `channel`, by node id.
    pub fn members(&self, channel: &ChannelName) -> impl Iterator<Item = (u64, &Member)> {
        self.by_channel
            .get(channel)
            .into_iter()
            .flat_map(|m| m.iter().map(|(peer, member)| (*peer, member)))
    }

    /// The channels `peer` is subscribed to.
    pub fn channels_of(&self, peer: u64) -> impl Iterator<Item = &ChannelName> {
        self.by_peer.get(&peer).into_iter().flatten()
    }

    /// Every (channel, peer) pair, channel by channel.
    pub fn pairs(&self) -> Vec<(ChannelName, u64)> {
        self.by_channel
            .iter()
            .flat_map(|(c, m)| m.keys().map(move |p| (c.clone(), *p)))
            .collect()
    }

    /// Adds or refreshes a subscription; true if it is new.
    pub fn insert(&mut self, channel: &ChannelName, peer: u64, member: Member) -> bool {
        let new = self
            .by_channel
            .entry(channel.clone())
            .or_default()
            .insert(peer, member)
            .is_none();
        if new {
            self.by_peer
                .entry(peer)
                .or_default()
                .insert(channel.clone());
        }
        new
    }

    /// Removes a subscription; true if it existed.
    pub fn remove(&mut self, channel: &ChannelName, peer: u64) -> bool {
        let Some(members) = self.by_channel.get_mut(channel) else {
            return false;
        };
        if members.remove(&peer).is_none() {
            return false;
        }
        if members.is_empty() {
            self.by_channel.remove(channel);
        }
        if let Some(channels) = self.by_peer.get_mut(&peer) {
            channels.remove(channel);
            if channels.is_empty() {
                self.by_peer.remove(&peer);
            }
        }
        true
    }

    /// Removes `peer` from every channel; returns the channels it left.
    pub fn remove_peer(&mut self, peer: u64) -> Vec<ChannelName> {
        let channels: Vec<ChannelName> = self
            .by_peer
            .remove(&peer)
            .map(|c| c.into_iter().collect())
            .unwrap_or_default();
        for channel in &channels {
            if let Some(members) = self.by_channel.get_mut(channel) {
                members.remove(&peer);
                if members.is_empty() {
                    self.by_channel.remove(channel);
                }
            }
        }
        channels
    }

    /// Removes every subscriber of `channel`; returns them.
    pub fn remove_channel(&mut self, channel: &ChannelName) -> Vec<u64> {
        let peers: Vec<u64> = self
            .by_channel
            .remove(channel)
            .map(|m| m.into_keys().collect())
            .unwrap_or_default();
        for peer in &peers {
            if let Some(channels) = self.by_peer.get_mut(peer) {
                channels.remove(channel);
                if channels.is_empty() {
                    self.by_peer.remove(peer);
                }
            }
        }
        peers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> ChannelName {
        ChannelName::new(s).unwrap()
    }

    fn member() -> Member {
        Member {
            presented: Vec::new(),
            since: 0,
            verified: None,
        }
    }

    #[test]
    fn both_indexes_stay_in_step() {
        let (a, b) = (name("a"), name("b"));
        let mut roster = Roster::new();
        assert!(roster.insert(&a, 1, member()));
        assert!(!roster.insert(&a, 1, member()));
        assert!(roster.insert(&b, 1, member()));
        assert!(roster.insert(&a, 2, member()));
        assert_eq!(roster.channel_count(1), 2);
        assert_eq!(roster.subscriber_count(&a), 2);
        assert_eq!(roster.remove_peer(1), vec![a.clone(), b.clone()]);
        assert_eq!(roster.subscriber_count(&b), 0);
        assert_eq!(roster.remove_channel(&a), vec![2]);
        assert_eq!(roster.channel_count(2), 0);
        assert!(!roster.remove(&a, 2));
        assert!(roster.pairs().is_empty());
    }
}
