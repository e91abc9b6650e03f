//! Query scopes (MESH2.md §3.4): a candidate's reserved `scope:` tags say
//! who may discover it; a scoped query says whom the caller wants.
//!
//! Candidate tags: `scope:subnet-local` (strictest, wins over the others),
//! `scope:tenant:<id>`, `scope:region:<name>` (empty ids ignored),
//! `scope:global` (the same as no scope tag).
//!
//! | Query \ candidate | Global | Tenants | Regions | Both | SubnetLocal |
//! |---|---|---|---|---|---|
//! | Any | ✓ | ✓ | ✓ | ✓ | same-subnet |
//! | GlobalOnly | ✓ | ✗ | ✗ | ✗ | ✗ |
//! | SameSubnet | same-subnet | same-subnet | same-subnet | same-subnet | same-subnet |
//! | Tenants | ✓ | listed | ✗ | listed | ✗ |
//! | Regions | ✓ | ✗ | listed | listed | ✗ |
//!
//! same-subnet: the local node ⇒ true; a peer whose subnet is known ⇒
//! equal to ours; unknown ⇒ true only while a subnet policy is installed
//! (warm-up). `Any` shows a subnet-local candidate only to its own subnet
//! (COMPUTE.md §4.1: "all but subnet-local peers elsewhere"); without a
//! subnet policy that is just the local node, as in MESH2.md's table.

use serde::{Deserialize, Serialize};

use super::caps::CapabilitySet;

const SUBNET_LOCAL_TAG: &str = "scope:subnet-local";
const TENANT_PREFIX: &str = "scope:tenant:";
const REGION_PREFIX: &str = "scope:region:";

/// Whom a query wants to see.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum QueryScope {
    /// Everyone but subnet-local nodes of other subnets (JSON `"any"`).
    #[default]
    Any,
    /// Only nodes without scope tags (JSON `"global_only"`).
    GlobalOnly,
    /// Only nodes in our subnet (JSON `"same_subnet"`).
    SameSubnet,
    /// Global nodes and those of any listed tenant (JSON
    /// `{"tenants":["a","b"]}`).
    Tenants(Vec<String>),
    /// Global nodes and those of any listed region (JSON
    /// `{"regions":["eu"]}`).
    Regions(Vec<String>),
}

/// What a candidate's `scope:` tags make of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CandidateScope {
    /// No scope tag (or only `scope:global`).
    #[default]
    Global,
    /// Visible only within its subnet.
    SubnetLocal,
    /// Tenant and/or region restricted (either list may be empty, not
    /// both).
    Restricted {
        /// Tenant ids from `scope:tenant:<id>`.
        tenants: Vec<String>,
        /// Region names from `scope:region:<name>`.
        regions: Vec<String>,
    },
}

impl CandidateScope {
    /// Classifies a capability set by its tags.
    pub fn of(caps: &CapabilitySet) -> Self {
        let mut tenants = Vec::new();
        let mut regions = Vec::new();
        for tag in &caps.tags {
            if tag == SUBNET_LOCAL_TAG {
                return Self::SubnetLocal;
            }
            if let Some(id) = tag.strip_prefix(TENANT_PREFIX).filter(|id| !id.is_empty()) {
                tenants.push(id.to_owned());
            } else if let Some(name) = tag.strip_prefix(REGION_PREFIX).filter(|n| !n.is_empty()) {
                regions.push(name.to_owned());
            }
        }
        if tenants.is_empty() && regions.is_empty() {
            Self::Global
        } else {
            Self::Restricted { tenants, regions }
        }
    }
}

/// What the querying node knows about subnets (MESH2.md §5).
pub trait SubnetView {
    /// Our own node id (always "same subnet").
    fn local_node_id(&self) -> u64;
    /// Our own subnet id (0 = GLOBAL).
    fn own_subnet(&self) -> u32;
    /// A peer's subnet, when a policy assigned one.
    fn peer_subnet(&self, node_id: u64) -> Option<u32>;
    /// Whether a subnet assignment policy is installed.
    fn policy_installed(&self) -> bool;
}

/// A node without a subnet policy: only the local node is "same subnet".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoSubnets {
    /// Our own node id.
    pub local_node_id: u64,
}

impl SubnetView for NoSubnets {
    fn local_node_id(&self) -> u64 {
        self.local_node_id
    }
    fn own_subnet(&self) -> u32 {
        0
    }
    fn peer_subnet(&self, _node_id: u64) -> Option<u32> {
        None
    }
    fn policy_installed(&self) -> bool {
        false
    }
}

/// The same-subnet predicate of §3.4.
pub fn same_subnet(node_id: u64, subnets: &dyn SubnetView) -> bool {
    if node_id == subnets.local_node_id() {
        return true;
    }
    match subnets.peer_subnet(node_id) {
        Some(subnet) => subnet == subnets.own_subnet(),
        None => subnets.policy_installed(),
    }
}

impl QueryScope {
    /// Whether a candidate `node_id` with capabilities `caps` is in scope.
    pub fn admits(&self, node_id: u64, caps: &CapabilitySet, subnets: &dyn SubnetView) -> bool {
        let candidate = CandidateScope::of(caps);
        let listed =
            |wanted: &[String], offered: &[String]| wanted.iter().any(|w| offered.contains(w));
        match (self, &candidate) {
            (Self::SameSubnet, _) | (Self::Any, CandidateScope::SubnetLocal) => {
                same_subnet(node_id, subnets)
            }
            (Self::Any, _) => true,
            (_, CandidateScope::SubnetLocal) => false,
            (_, CandidateScope::Global) => true,
            (Self::GlobalOnly, CandidateScope::Restricted { .. }) => false,
            (Self::Tenants(wanted), CandidateScope::Restricted { tenants, .. }) => {
                listed(wanted, tenants)
            }
            (Self::Regions(wanted), CandidateScope::Restricted { regions, .. }) => {
                listed(wanted, regions)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: u64 = 1;
    const PEER: u64 = 2;

    fn tagged(tags: &[&str]) -> CapabilitySet {
        CapabilitySet {
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            ..CapabilitySet::default()
        }
    }

    struct Policy {
        peer: Option<u32>,
    }

    impl SubnetView for Policy {
        fn local_node_id(&self) -> u64 {
            LOCAL
        }
        fn own_subnet(&self) -> u32 {
            0x0307_0200
        }
        fn peer_subnet(&self, _node_id: u64) -> Option<u32> {
            self.peer
        }
        fn policy_installed(&self) -> bool {
            true
        }
    }

    #[test]
    fn candidates_are_classified_by_their_tags() {
        assert_eq!(CandidateScope::of(&tagged(&[])), CandidateScope::Global);
        assert_eq!(
            CandidateScope::of(&tagged(&["scope:global", "scope:tenant:", "scope:region:"])),
            CandidateScope::Global
        );
        assert_eq!(
            CandidateScope::of(&tagged(&["scope:tenant:acme", "scope:subnet-local"])),
            CandidateScope::SubnetLocal
        );
        assert_eq!(
            CandidateScope::of(&tagged(&["scope:tenant:acme", "scope:region:eu"])),
            CandidateScope::Restricted {
                tenants: vec!["acme".into()],
                regions: vec!["eu".into()]
            }
        );
    }

    #[test]
    fn the_scope_matrix() {
        let none = NoSubnets {
            local_node_id: LOCAL,
        };
        let global = tagged(&[]);
        let tenant = tagged(&["scope:tenant:acme"]);
        let region = tagged(&["scope:region:eu"]);
        let both = tagged(&["scope:tenant:acme", "scope:region:eu"]);
        let local_only = tagged(&["scope:subnet-local"]);
        let acme = QueryScope::Tenants(vec!["acme".into()]);
        let other = QueryScope::Tenants(vec!["other".into()]);
        let eu = QueryScope::Regions(vec!["us".into(), "eu".into()]);
        let cases: &[(&QueryScope, &CapabilitySet, bool)] = &[
            (&QueryScope::Any, &global, true),
            (&QueryScope::Any, &tenant, true),
            (&QueryScope::Any, &region, true),
            (&QueryScope::Any, &both, true),
            (&QueryScope::Any, &local_only, false),
            (&QueryScope::GlobalOnly, &global, true),
            (&QueryScope::GlobalOnly, &tenant, false),
            (&QueryScope::GlobalOnly, &region, false),
            (&QueryScope::GlobalOnly, &both, false),
            (&QueryScope::GlobalOnly, &local_only, false),
            (&acme, &global, true),
            (&acme, &tenant, true),
            (&other, &tenant, false),
            (&acme, &region, false),
            (&acme, &both, true),
            (&acme, &local_only, false),
            (&eu, &global, true),
            (&eu, &tenant, false),
            (&eu, &region, true),
            (&eu, &both, true),
            (&eu, &local_only, false),
        ];
        for (scope, caps, expected) in cases {
            assert_eq!(
                scope.admits(PEER, caps, &none),
                *expected,
                "{scope:?} {caps:?}"
            );
        }
        // The local node is always in its own subnet.
        assert!(QueryScope::Any.admits(LOCAL, &local_only, &none));
        assert!(QueryScope::SameSubnet.admits(LOCAL, &tenant, &none));
    }

    #[test]
    fn same_subnet_with_and_without_a_policy() {
        let none = NoSubnets {
            local_node_id: LOCAL,
        };
        let caps = tagged(&[]);
        assert!(!QueryScope::SameSubnet.admits(PEER, &caps, &none));
        // Warm-up: policy installed, peer subnet unknown ⇒ admitted.
        assert!(QueryScope::SameSubnet.admits(PEER, &caps, &Policy { peer: None }));
        assert!(QueryScope::SameSubnet.admits(
            PEER,
            &caps,
            &Policy {
                peer: Some(0x0307_0200)
            }
        ));
        assert!(!QueryScope::SameSubnet.admits(
            PEER,
            &caps,
            &Policy {
                peer: Some(0x0308_0100)
            }
        ));
        let local_only = tagged(&["scope:subnet-local"]);
        assert!(QueryScope::Any.admits(
            PEER,
            &local_only,
            &Policy {
                peer: Some(0x0307_0200)
            }
        ));
        assert!(!QueryScope::Any.admits(
            PEER,
            &local_only,
            &Policy {
                peer: Some(0x0308_0100)
            }
        ));
    }

    #[test]
    fn json_forms() {
        let parse = |s: &str| serde_json::from_str::<QueryScope>(s);
        assert_eq!(parse(r#""any""#).unwrap(), QueryScope::Any);
        assert_eq!(parse(r#""global_only""#).unwrap(), QueryScope::GlobalOnly);
        assert_eq!(parse(r#""same_subnet""#).unwrap(), QueryScope::SameSubnet);
        assert_eq!(
            parse(r#"{"tenants":["a"]}"#).unwrap(),
            QueryScope::Tenants(vec!["a".into()])
        );
        assert!(parse(r#""everyone""#).is_err());
        assert_eq!(
            serde_json::to_string(&QueryScope::Regions(vec!["eu".into()])).unwrap(),
            r#"{"regions":["eu"]}"#
        );
    }
}
