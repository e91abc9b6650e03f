//! The channel registry: configs keyed by exact name, with a hash index
//! that refuses to let two names share a 16-bit channel hash
//! (MESH2.md §1.1, §7 item 9).
//!
//! v0.11 accepts colliding names and then cannot tell them apart on the
//! wire (a subscriber sees only the hash in the publish stream id). Here a
//! second name with a registered name's hash is refused with
//! [`RegistryError::HashCollision`], so every hash on the wire maps to
//! exactly one registered name; re-registering the same name replaces its
//! config and keeps one index entry.

use std::collections::{BTreeMap, HashMap};

use super::config::ChannelConfig;
use crate::identity::ChannelName;

/// Why a channel cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Another registered name has the same 16-bit hash; its publish
    /// streams would be indistinguishable. Pick another name.
    #[error("channel {name} has hash {hash:#06x}, already used by {existing}")]
    HashCollision {
        /// The name being registered.
        name: ChannelName,
        /// The registered name with the same hash.
        existing: ChannelName,
        /// The shared hash.
        hash: u16,
    },
}

/// What a 16-bit channel hash refers to in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashLookup<'a> {
    /// Exactly this registered channel.
    Channel(&'a ChannelName),
    /// No registered channel has this hash.
    Unknown,
}

/// Whether a registration added a channel or replaced one's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// The name was not registered before.
    Added,
    /// The name was registered; its config was replaced.
    Replaced,
}

/// Registered channels by exact name, indexed by hash.
#[derive(Debug, Default)]
pub struct ChannelRegistry {
    configs: BTreeMap<ChannelName, ChannelConfig>,
    by_hash: HashMap<u16, ChannelName>,
}

impl ChannelRegistry {
    /// An empty registry: every channel is unknown.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `name` with `config`, or replaces its config.
    ///
    /// # Errors
    /// [`RegistryError::HashCollision`] when another registered name has
    /// the same hash; nothing changes.
    pub fn register(
        &mut self,
        name: ChannelName,
        config: ChannelConfig,
    ) -> Result<Registration, RegistryError> {
        let hash = name.hash();
        if let Some(existing) = self.by_hash.get(&hash)
            && existing != &name
        {
            return Err(RegistryError::HashCollision {
                name,
                existing: existing.clone(),
                hash,
            });
        }
        self.by_hash.insert(hash, name.clone());
        Ok(match self.configs.insert(name, config) {
            Some(_) => Registration::Replaced,
            None => Registration::Added,
        })
    }

    /// Removes `name`; returns its config if it was registered.
    pub fn deregister(&mut self, name: &ChannelName) -> Option<ChannelConfig> {
        let config = self.configs.remove(name)?;
        self.by_hash.remove(&name.hash());
        Some(config)
    }

    /// The config of `name`, if registered.
    pub fn get(&self, name: &ChannelName) -> Option<&ChannelConfig> {
        self.configs.get(name)
    }

    /// The registered channel with this hash, if any.
    pub fn lookup_hash(&self, hash: u16) -> HashLookup<'_> {
        match self.by_hash.get(&hash) {
            Some(name) => HashLookup::Channel(name),
            None => HashLookup::Unknown,
        }
    }

    /// Registered channels in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&ChannelName, &ChannelConfig)> {
        self.configs.iter()
    }

    /// Number of registered channels.
    pub fn len(&self) -> usize {
        self.configs.len()
    }

    /// True when nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.configs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::channels::test_support::colliding_pair;

    fn name(s: &str) -> ChannelName {
        ChannelName::new(s).unwrap()
    }

    #[test]
    fn a_colliding_name_is_refused_and_the_first_keeps_its_hash() {
        let (first, second) = colliding_pair();
        let mut registry = ChannelRegistry::new();
        assert_eq!(
            registry.register(first.clone(), ChannelConfig::default()),
            Ok(Registration::Added)
        );
        let err = registry
            .register(second.clone(), ChannelConfig::default())
            .unwrap_err();
        assert_eq!(
            err,
            RegistryError::HashCollision {
                name: second.clone(),
                existing: first.clone(),
                hash: first.hash()
            }
        );
        assert!(registry.get(&second).is_none());
        assert_eq!(
            registry.lookup_hash(first.hash()),
            HashLookup::Channel(&first)
        );
        // After the first leaves, the second may take the hash.
        registry.deregister(&first).unwrap();
        assert_eq!(registry.lookup_hash(first.hash()), HashLookup::Unknown);
        registry
            .register(second.clone(), ChannelConfig::default())
            .unwrap();
        assert_eq!(
            registry.lookup_hash(second.hash()),
            HashLookup::Channel(&second)
        );
    }

    #[test]
    fn re_registering_replaces_and_keeps_hash_lookups_working() {
        let lidar = name("sensors/lidar");
        let mut registry = ChannelRegistry::new();
        registry
            .register(lidar.clone(), ChannelConfig::default())
            .unwrap();
        let tighter = ChannelConfig {
            require_token: true,
            ..ChannelConfig::default()
        };
        assert_eq!(
            registry.register(lidar.clone(), tighter),
            Ok(Registration::Replaced)
        );
        assert!(registry.get(&lidar).unwrap().require_token);
        assert_eq!(registry.lookup_hash(0xe5d8), HashLookup::Channel(&lidar));
        assert_eq!(registry.len(), 1);
        assert!(registry.deregister(&name("other")).is_none());
    }
}
