//! Classifying an incoming datagram (WIRE.md §1), in the reference's order.

use super::header::HEADER_MAGIC;
use super::pingwave::PINGWAVE_SIZE;
use super::routing::{MIN_ROUTED_LEN, ROUTING_MAGIC};
use super::subproto::PunchKeepAlive;

/// What a datagram is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DatagramClass {
    /// The 14-byte NAT punch keep-alive.
    KeepAlive,
    /// A 72-byte pingwave.
    Pingwave,
    /// A routing header followed by a packet.
    Routed,
    /// A NetHeader packet.
    Direct,
    /// Anything else: dropped.
    Unknown,
}

/// Classifies `datagram` (first match wins, as the reference does).
pub fn classify(datagram: &[u8]) -> DatagramClass {
    let magic = datagram.get(..2);
    if datagram.len() == PunchKeepAlive::SIZE && magic == Some(&PunchKeepAlive::MAGIC[..]) {
        return DatagramClass::KeepAlive;
    }
    if datagram.len() == PINGWAVE_SIZE && magic != Some(&HEADER_MAGIC[..]) && datagram[63] <= 3 {
        return DatagramClass::Pingwave;
    }
    if magic == Some(&ROUTING_MAGIC[..]) && datagram.len() >= MIN_ROUTED_LEN {
        return DatagramClass::Routed;
    }
    if magic == Some(&HEADER_MAGIC[..]) {
        return DatagramClass::Direct;
    }
    DatagramClass::Unknown
}
