//! Identifiers derived from a public key with keyed BLAKE2s (IDENTITY.md §2).

use blake2::Blake2sMac256;
use blake2::digest::{FixedOutput, KeyInit, Update};

/// BLAKE2s key for `origin_hash`.
pub const ORIGIN_HASH_KEY: &[u8] = b"net-origin-v1";
/// BLAKE2s key for `node_id`.
pub const NODE_ID_KEY: &[u8] = b"net-node-id-v1";

/// Keyed BLAKE2s-256 (RFC 7693 keyed mode) of the concatenation of `parts`.
///
/// `key` is at most 32 bytes in every use in the spec; a longer key would be a
/// programming error in this crate, never caller input.
pub fn keyed_blake2s(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Blake2sMac256 as KeyInit>::new_from_slice(key)
        .expect("BLAKE2s keys used by Net are all at most 32 bytes");
    for part in parts {
        mac.update(part);
    }
    mac.finalize_fixed().into()
}

fn first_u64_le(digest: [u8; 32]) -> u64 {
    let mut low = [0u8; 8];
    low.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(low)
}

/// `origin_hash` of a public key: the first 8 bytes (LE) of
/// keyed BLAKE2s(key = `net-origin-v1`, msg = public key).
pub fn origin_hash_of(public_key: &[u8; 32]) -> u64 {
    first_u64_le(keyed_blake2s(ORIGIN_HASH_KEY, &[public_key]))
}

/// `node_id` of a public key: the first 8 bytes (LE) of
/// keyed BLAKE2s(key = `net-node-id-v1`, msg = public key).
pub fn node_id_of(public_key: &[u8; 32]) -> u64 {
    first_u64_le(keyed_blake2s(NODE_ID_KEY, &[public_key]))
}

/// The routing id, the u32 projection of a `node_id` (its low 32 bits), used in
/// the routing header and the handshake prologue.
pub const fn routing_id(node_id: u64) -> u32 {
    node_id as u32
}

/// The header origin projection: the low 32 bits of an `origin_hash`, the width
/// of the NetHeader's origin field.
pub const fn header_origin(origin_hash: u64) -> u32 {
    origin_hash as u32
}

/// The 32-byte proximity-graph id of a node: `node_id` LE followed by 24 zero
/// bytes (the pingwave origin id).
pub fn proximity_graph_id(node_id: u64) -> [u8; 32] {
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&node_id.to_le_bytes());
    id
}
