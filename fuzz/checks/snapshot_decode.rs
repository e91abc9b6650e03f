//! StateSnapshot v2 (`CDS1`) decoding on untrusted bytes: never panics; an
//! accepted snapshot re-encodes to the same bytes and satisfies the
//! chain-link checks.

use net::compute::StateSnapshot;

/// Panics if `data` breaks a property above.
pub fn check(data: &[u8]) {
    if let Ok(snap) = StateSnapshot::from_bytes(data) {
        assert_eq!(snap.chain_link.sequence, snap.through_seq);
        assert_eq!(snap.chain_link.origin_hash, snap.entity_id.origin_hash());
        assert_eq!(snap.to_bytes().expect("re-encodes").as_slice(), data);
    }
}
