//! The 18-byte routing header prepended to relayed packets (WIRE.md §5).

use super::error::WireError;
use super::header::HEADER_SIZE;

/// Size of the routing header.
pub const ROUTING_HEADER_SIZE: usize = 18;
/// Bytes `52 54`: the u16 0x5452 little-endian.
pub const ROUTING_MAGIC: [u8; 2] = [0x52, 0x54];
/// A routed datagram is only recognised from this length on.
pub const MIN_ROUTED_LEN: usize = ROUTING_HEADER_SIZE + HEADER_SIZE;
/// TTL of routed data packets.
pub const ROUTED_DATA_TTL: u8 = 8;
/// TTL of routed handshakes.
pub const ROUTED_HANDSHAKE_TTL: u8 = 16;

/// Routing flags (the high nibble is masked off on parse).
pub mod routing_flags {
    /// Control traffic.
    pub const CONTROL: u8 = 0x01;
    /// Requires an acknowledgement.
    pub const REQUIRES_ACK: u8 = 0x02;
    /// Priority.
    pub const PRIORITY: u8 = 0x04;
    /// End of stream.
    pub const END_OF_STREAM: u8 = 0x08;
}

/// A decoded routing header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RoutingHeader {
    /// Hops remaining.
    pub ttl: u8,
    /// Hops taken.
    pub hop_count: u8,
    /// Flag bits (low nibble).
    pub flags: u8,
    /// Low 32 bits of the originating node_id.
    pub src_id: u32,
    /// Full node_id of the final destination.
    pub dest_id: u64,
}

impl RoutingHeader {
    /// The 18 bytes.
    pub fn encode(&self) -> [u8; ROUTING_HEADER_SIZE] {
        let mut b = [0u8; ROUTING_HEADER_SIZE];
        b[0..2].copy_from_slice(&ROUTING_MAGIC);
        b[2] = self.ttl;
        b[3] = self.hop_count;
        b[4] = self.flags & 0x0F;
        b[6..10].copy_from_slice(&self.src_id.to_le_bytes());
        b[10..18].copy_from_slice(&self.dest_id.to_le_bytes());
        b
    }

    /// Decodes the first 18 bytes of `bytes`.
    ///
    /// # Errors
    /// [`WireError::Truncated`], [`WireError::BadRoutingMagic`].
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let b = bytes
            .get(..ROUTING_HEADER_SIZE)
            .ok_or(WireError::Truncated {
                what: "routing header",
                needed: ROUTING_HEADER_SIZE,
                got: bytes.len(),
            })?;
        if b[0..2] != ROUTING_MAGIC {
            return Err(WireError::BadRoutingMagic);
        }
        let mut dest = [0u8; 8];
        dest.copy_from_slice(&b[10..18]);
        Ok(Self {
            ttl: b[2],
            hop_count: b[3],
            flags: b[4] & 0x0F,
            src_id: u32::from_le_bytes([b[6], b[7], b[8], b[9]]),
            dest_id: u64::from_le_bytes(dest),
        })
    }

    /// The header a relay forwards: ttl − 1 (saturating), hop_count + 1
    /// (saturating at 255).
    pub fn forwarded(&self) -> Self {
        Self {
            ttl: self.ttl.saturating_sub(1),
            hop_count: self.hop_count.saturating_add(1),
            ..*self
        }
    }
}
