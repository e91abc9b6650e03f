//! Pure codecs of the Net v0.11 mesh wire protocol (WIRE.md): no I/O, no
//! clocks, no crypto state. Every decoder takes untrusted bytes and returns a
//! typed [`WireError`](crate::wire::WireError) rather than panicking; each has a fuzz target.

pub mod classify;
pub mod error;
pub mod frames;
pub mod header;
pub mod pingwave;
pub mod routing;
pub mod subproto;

pub use classify::{DatagramClass, classify};
pub use error::WireError;
pub use frames::{decode_events, encode_events, framed_len, split_into_packets};
pub use header::{
    AAD_SIZE, HEADER_SIZE, MAX_EVENTS_PER_PACKET, MAX_LARGE_PACKET_SIZE, MAX_LARGE_PAYLOAD_SIZE,
    MAX_PACKET_SIZE, MAX_PAYLOAD_SIZE, NONCE_SIZE, NetHeader, PACKET_OVERHEAD, TAG_SIZE, aad,
    flags, nonce, nonce_prefix,
};
pub use pingwave::{Health, PINGWAVE_SIZE, Pingwave};
pub use routing::{
    MIN_ROUTED_LEN, ROUTED_DATA_TTL, ROUTED_HANDSHAKE_TTL, ROUTING_HEADER_SIZE, RoutingHeader,
};
pub use subproto::{
    AckReason, CONTROL_STREAM_ID, Membership, Nack, PunchKeepAlive, Rendezvous, StreamWindow,
    decode_address, encode_address, ids,
};
