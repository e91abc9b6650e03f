//! Identity: entity keypairs and the identifiers derived from them, permission
//! tokens, identity envelopes and channel names (spec: IDENTITY.md).
//!
//! Everything here is pure: no I/O, no clocks except the explicit `*_at(now)`
//! variants' convenience wrappers, no async.

mod channel;
mod derived;
mod envelope;
mod keypair;
mod token;

pub use channel::{
    ChannelName, ChannelNameError, MAX_CHANNEL_NAME_LEN, channel_hash, checked_channel_hash,
    publish_stream_id, validate_channel_name,
};
pub use derived::{
    NODE_ID_KEY, ORIGIN_HASH_KEY, header_origin, keyed_blake2s, node_id_of, origin_hash_of,
    proximity_graph_id, routing_id,
};
pub use envelope::{
    CHAIN_LINK_LEN, ENVELOPE_KEY_LABEL, ENVELOPE_NONCE_LABEL, EnvelopeError,
    IDENTITY_ENVELOPE_SIZE, IDENTITY_ENVELOPE_VERSION, IdentityEnvelope, X25519_KEY_LEN,
    x25519_public_key,
};
pub use keypair::{
    EntityId, EntityKeypair, IdentityError, PUBLIC_KEY_LEN, SEED_LEN, SIGNATURE_LEN, Signature,
};
pub use token::{
    PermissionToken, TOKEN_SIGNING_INPUT_LEN, TOKEN_SIZE, TokenClaims, TokenError, TokenScope,
    unix_now,
};
