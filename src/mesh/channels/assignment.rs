//! Which subnet a node is in (MESH2.md §5): the assignment policy over
//! capability tags, the `subnet:` tag a node announces its subnet with,
//! and a node's [`SubnetSettings`] that resolve its own and its peers'
//! subnets.
//!
//! Differences from v0.11 (which applies its policy only to a peer's last
//! signed *direct* announcement, never to its own tags, and takes any
//! unknown peer for GLOBAL):
//! * our own subnet is the configured id, else the policy applied to our
//!   own announced tags — the subnet peers compute for us;
//! * a node with a subnet configuration announces it as one reserved tag,
//!   `subnet:<levels>` (`subnet:3.7.2`, `subnet:global`), which wins over
//!   any policy: nodes with different (or no) policies agree on it. It is
//!   an ordinary tag inside v0.11's announcement JSON (a v0.11 node
//!   indexes it like any other);
//! * any signed announcement counts, forwarded ones too: the signature is
//!   end to end, so a relayed peer's subnet is known as well as a direct
//!   one's;
//! * a node with a subnet configuration takes a peer that has announced
//!   nothing for *unknown*, which sees Global channels only; without one,
//!   every peer that claims nothing is GLOBAL, as in v0.11.

use std::collections::BTreeMap;

use super::subnet::SubnetId;

/// The reserved tag prefix of an announced subnet.
pub const SUBNET_TAG_PREFIX: &str = "subnet:";

/// One rule of an assignment policy: the first tag starting with `prefix`
/// whose remainder is a key of `values` sets `level` to that value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetRule {
    /// The tag prefix (e.g. `"region:"`).
    pub prefix: String,
    /// The level it sets, 0–3 (0 is the top byte).
    pub level: u8,
    /// Tag remainder → level byte (1–255; 0 is reserved for "unset").
    pub values: BTreeMap<String, u8>,
}

/// Why a policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A rule names a level beyond 3.
    #[error("subnet policy rule {rule}: level {level} is not 0-3")]
    Level {
        /// The rule's position.
        rule: usize,
        /// The level given.
        level: u8,
    },
    /// A rule maps a value to the reserved level byte 0.
    #[error("subnet policy rule {rule}: value {value:?} maps to 0 (reserved)")]
    ZeroValue {
        /// The rule's position.
        rule: usize,
        /// The tag remainder.
        value: String,
    },
    /// A rule's prefix is empty or the reserved `subnet:`.
    #[error("subnet policy rule {rule}: prefix {prefix:?} is empty or reserved")]
    Prefix {
        /// The rule's position.
        rule: usize,
        /// The prefix given.
        prefix: String,
    },
}

/// An ordered list of rules mapping tags to levels (MESH2.md §5).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubnetPolicy {
    rules: Vec<SubnetRule>,
}

impl SubnetPolicy {
    /// A policy from its rules, checked.
    ///
    /// # Errors
    /// [`PolicyError`] naming the first bad rule.
    pub fn new(rules: Vec<SubnetRule>) -> Result<Self, PolicyError> {
        for (i, rule) in rules.iter().enumerate() {
            if rule.level > 3 {
                return Err(PolicyError::Level {
                    rule: i,
                    level: rule.level,
                });
            }
            if rule.prefix.is_empty() || rule.prefix.starts_with(SUBNET_TAG_PREFIX) {
                return Err(PolicyError::Prefix {
                    rule: i,
                    prefix: rule.prefix.clone(),
                });
            }
            if let Some((value, _)) = rule.values.iter().find(|(_, byte)| **byte == 0) {
                return Err(PolicyError::ZeroValue {
                    rule: i,
                    value: value.clone(),
                });
            }
        }
        Ok(Self { rules })
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[SubnetRule] {
        &self.rules
    }

    /// The subnet `tags` map to: per rule, the first tag with the prefix
    /// whose remainder is mapped sets the level; a later rule for the same
    /// level overwrites; unmatched levels stay 0.
    pub fn assign<S: AsRef<str>>(&self, tags: &[S]) -> SubnetId {
        let mut levels = [0u8; 4];
        for rule in &self.rules {
            let hit = tags.iter().find_map(|tag| {
                let rest = tag.as_ref().strip_prefix(rule.prefix.as_str())?;
                rule.values.get(rest).copied()
            });
            if let Some(byte) = hit {
                levels[usize::from(rule.level)] = byte;
            }
        }
        SubnetId(u32::from_be_bytes(levels))
    }
}

/// The subnet a set of tags claims with a `subnet:` tag (the first valid
/// one), if any.
pub fn claimed_subnet<S: AsRef<str>>(tags: &[S]) -> Option<SubnetId> {
    tags.iter().find_map(|tag| {
        tag.as_ref()
            .strip_prefix(SUBNET_TAG_PREFIX)?
            .parse::<SubnetId>()
            .ok()
    })
}

/// A node's subnet configuration: an explicit id and/or a policy. Neither
/// (the default) is v0.11's node without a policy: everyone is GLOBAL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubnetSettings {
    /// Our subnet, whatever our tags say.
    pub id: Option<SubnetId>,
    /// How tags map to subnets (ours when `id` is unset, and peers' that
    /// claim none).
    pub policy: Option<SubnetPolicy>,
}

impl SubnetSettings {
    /// Whether any subnet configuration is present (we announce our subnet
    /// and take silent peers for unknown).
    pub fn enabled(&self) -> bool {
        self.id.is_some() || self.policy.is_some()
    }

    /// Our subnet given the tags we announce.
    pub fn own_subnet<S: AsRef<str>>(&self, own_tags: &[S]) -> SubnetId {
        match (&self.id, &self.policy) {
            (Some(id), _) => *id,
            (None, Some(policy)) => policy.assign(own_tags),
            (None, None) => SubnetId::GLOBAL,
        }
    }

    /// A peer's subnet from the tags of its latest signed announcement
    /// (`None`: it has none): its `subnet:` claim, else our policy, else
    /// GLOBAL. A peer without an announcement is GLOBAL without a subnet
    /// configuration (v0.11) and unknown with one.
    pub fn peer_subnet<S: AsRef<str>>(&self, tags: Option<&[S]>) -> Option<SubnetId> {
        let Some(tags) = tags else {
            return (!self.enabled()).then_some(SubnetId::GLOBAL);
        };
        if let Some(claimed) = claimed_subnet(tags) {
            return Some(claimed);
        }
        Some(
            self.policy
                .as_ref()
                .map_or(SubnetId::GLOBAL, |policy| policy.assign(tags)),
        )
    }

    /// Replaces every `subnet:` tag in `tags` with our own subnet's (none
    /// without a subnet configuration).
    pub fn stamp_tags(&self, tags: &mut Vec<String>) {
        tags.retain(|t| !t.starts_with(SUBNET_TAG_PREFIX));
        if self.enabled() {
            let own = self.own_subnet(tags);
            tags.push(format!("{SUBNET_TAG_PREFIX}{own}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(prefix: &str, level: u8, values: &[(&str, u8)]) -> SubnetRule {
        SubnetRule {
            prefix: prefix.into(),
            level,
            values: values.iter().map(|(k, v)| ((*k).into(), *v)).collect(),
        }
    }

    fn subnet(levels: &[u8]) -> SubnetId {
        SubnetId::from_levels(levels).unwrap()
    }

    fn policy() -> SubnetPolicy {
        SubnetPolicy::new(vec![
            rule("region:", 0, &[("eu", 3), ("us", 4)]),
            rule("zone:", 1, &[("a", 7), ("b", 8)]),
            rule("rack:", 2, &[("r1", 1), ("r2", 2)]),
        ])
        .unwrap()
    }

    #[test]
    fn rules_map_tags_to_levels() {
        let p = policy();
        assert_eq!(
            p.assign(&["region:eu", "zone:a", "rack:r2"]),
            subnet(&[3, 7, 2])
        );
        assert_eq!(p.assign(&["zone:b", "rack:r1"]), subnet(&[0, 8, 1]));
        assert_eq!(p.assign::<&str>(&[]), SubnetId::GLOBAL);
        // The first tag whose remainder is mapped wins; unmapped ones are
        // skipped.
        assert_eq!(
            p.assign(&["region:mars", "region:us", "region:eu"]),
            subnet(&[4])
        );
        // A later rule for the same level overwrites.
        let overwrite = SubnetPolicy::new(vec![
            rule("region:", 0, &[("eu", 3)]),
            rule("site:", 0, &[("x", 9)]),
        ])
        .unwrap();
        assert_eq!(overwrite.assign(&["region:eu", "site:x"]), subnet(&[9]));
        assert_eq!(overwrite.assign(&["region:eu"]), subnet(&[3]));
    }

    #[test]
    fn bad_rules_are_refused() {
        assert!(matches!(
            SubnetPolicy::new(vec![rule("a:", 4, &[("x", 1)])]),
            Err(PolicyError::Level { rule: 0, level: 4 })
        ));
        assert!(matches!(
            SubnetPolicy::new(vec![rule("a:", 0, &[("x", 1)]), rule("b:", 1, &[("y", 0)])]),
            Err(PolicyError::ZeroValue { rule: 1, .. })
        ));
        for prefix in ["", "subnet:", "subnet:x"] {
            assert!(matches!(
                SubnetPolicy::new(vec![rule(prefix, 0, &[("x", 1)])]),
                Err(PolicyError::Prefix { .. })
            ));
        }
    }

    #[test]
    fn own_and_peer_subnets() {
        let none = SubnetSettings::default();
        assert!(!none.enabled());
        assert_eq!(none.own_subnet(&["region:eu"]), SubnetId::GLOBAL);
        // v0.11 without a policy: everyone GLOBAL, silent peers too.
        assert_eq!(none.peer_subnet::<&str>(None), Some(SubnetId::GLOBAL));
        assert_eq!(
            none.peer_subnet(Some(&["region:eu"][..])),
            Some(SubnetId::GLOBAL)
        );
        // A claim is honoured by everyone.
        assert_eq!(
            none.peer_subnet(Some(&["subnet:3.8.1"][..])),
            Some(subnet(&[3, 8, 1]))
        );

        let tagged = SubnetSettings {
            id: None,
            policy: Some(policy()),
        };
        assert_eq!(tagged.own_subnet(&["region:eu", "zone:a"]), subnet(&[3, 7]));
        assert_eq!(tagged.peer_subnet::<&str>(None), None);
        assert_eq!(
            tagged.peer_subnet(Some(&["region:us"][..])),
            Some(subnet(&[4]))
        );
        // The claim wins over the policy; a malformed claim is ignored.
        assert_eq!(
            tagged.peer_subnet(Some(&["region:us", "subnet:3.7.2"][..])),
            Some(subnet(&[3, 7, 2]))
        );
        assert_eq!(
            tagged.peer_subnet(Some(&["subnet:9.9.9.9.9", "region:us"][..])),
            Some(subnet(&[4]))
        );

        let explicit = SubnetSettings {
            id: Some(subnet(&[3, 7, 2])),
            policy: Some(policy()),
        };
        assert_eq!(explicit.own_subnet(&["region:us"]), subnet(&[3, 7, 2]));
    }

    #[test]
    fn our_tags_carry_exactly_one_claim() {
        let explicit = SubnetSettings {
            id: Some(subnet(&[3, 7, 2])),
            policy: None,
        };
        let mut tags = vec!["gpu".to_owned(), "subnet:1.1".to_owned()];
        explicit.stamp_tags(&mut tags);
        assert_eq!(tags, ["gpu", "subnet:3.7.2"]);
        let tagged = SubnetSettings {
            id: None,
            policy: Some(policy()),
        };
        let mut tags = vec!["region:us".to_owned()];
        tagged.stamp_tags(&mut tags);
        assert_eq!(tags, ["region:us", "subnet:4"]);
        let mut tags = vec!["x".to_owned()];
        tagged.stamp_tags(&mut tags);
        assert_eq!(tags, ["x", "subnet:global"]);
        let mut tags = vec!["subnet:5".to_owned()];
        SubnetSettings::default().stamp_tags(&mut tags);
        assert!(tags.is_empty());
    }
}
