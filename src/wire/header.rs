//! The 64-byte NetHeader, its flags, the 52-byte AAD and the 12-byte nonce
//! (WIRE.md §2, §4.2–4.3).

use super::error::WireError;

/// Size of the NetHeader.
pub const HEADER_SIZE: usize = 64;
/// Size of the AEAD tag.
pub const TAG_SIZE: usize = 16;
/// Size of the AEAD nonce.
pub const NONCE_SIZE: usize = 12;
/// Size of the AAD.
pub const AAD_SIZE: usize = 52;
/// The largest datagram a v0.11 node reads.
pub const MAX_PACKET_SIZE: usize = 8192;
/// The largest (plaintext, framed) payload: 8192 − 64 − 16.
pub const MAX_PAYLOAD_SIZE: usize = MAX_PACKET_SIZE - HEADER_SIZE - TAG_SIZE;
/// The largest datagram two Net nodes exchange once both offered it and a
/// probe went through (`mesh::pathsize`); never towards v0.11.
pub const MAX_LARGE_PACKET_SIZE: usize = 65_000;
/// The largest payload of such a datagram.
pub const MAX_LARGE_PAYLOAD_SIZE: usize = MAX_LARGE_PACKET_SIZE - HEADER_SIZE - TAG_SIZE;
/// The most event frames one packet may declare: 8112 / 4.
pub const MAX_EVENTS_PER_PACKET: usize = MAX_PAYLOAD_SIZE / 4;
/// Header bytes `45 4E`: the u16 0x4E45 little-endian.
pub const HEADER_MAGIC: [u8; 2] = [0x45, 0x4E];
/// The only protocol version.
pub const PROTOCOL_VERSION: u8 = 1;
/// Bytes a packet adds to its payload on the wire (header + tag); also the
/// per-packet overhead in stream credit accounting (WIRE.md §7.2–7.3).
pub const PACKET_OVERHEAD: usize = HEADER_SIZE + TAG_SIZE;

/// Header flag bits (byte 3).
pub mod flags {
    /// Data packet of a stream opened as reliable.
    pub const RELIABLE: u8 = 0x01;
    /// NACK (defined; never sent by v0.11).
    pub const NACK: u8 = 0x02;
    /// Priority (defined; never sent).
    pub const PRIORITY: u8 = 0x04;
    /// FIN (defined; never sent).
    pub const FIN: u8 = 0x08;
    /// Noise handshake packet.
    pub const HANDSHAKE: u8 = 0x10;
    /// Authenticated keep-alive.
    pub const HEARTBEAT: u8 = 0x20;
    /// Net extension, never sent to or by v0.11 (bit 6 is reserved there):
    /// the packet is sealed with AES-256-GCM instead of ChaCha20-Poly1305.
    /// Only between two Net nodes that negotiated it in their identity
    /// hellos (`docs/mesh.md`, "Ciphers"); inside the AAD, so authenticated.
    pub const AES_256_GCM: u8 = 0x40;
}

pub(crate) mod offset {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 2;
    pub const FLAGS: usize = 3;
    pub const PRIORITY: usize = 4;
    pub const HOP_TTL: usize = 5;
    pub const HOP_COUNT: usize = 6;
    pub const FRAG_FLAGS: usize = 7;
    pub const SUBPROTOCOL_ID: usize = 8;
    pub const CHANNEL_HASH: usize = 10;
    pub const NONCE: usize = 12;
    pub const SESSION_ID: usize = 24;
    pub const STREAM_ID: usize = 32;
    pub const SEQUENCE: usize = 40;
    pub const SUBNET_ID: usize = 48;
    pub const ORIGIN_HASH: usize = 52;
    pub const FRAGMENT_ID: usize = 56;
    pub const FRAGMENT_OFFSET: usize = 58;
    pub const PAYLOAD_LEN: usize = 60;
    pub const EVENT_COUNT: usize = 62;
}

/// A decoded NetHeader. Every field as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NetHeader {
    /// Flag bits ([`flags`]).
    pub flags: u8,
    /// Always 0 in v0.11.
    pub priority: u8,
    /// Always 0 in v0.11 (authenticated).
    pub hop_ttl: u8,
    /// Rewritten in transit; excluded from the AAD.
    pub hop_count: u8,
    /// Always 0.
    pub frag_flags: u8,
    /// 0 for plain events; see WIRE.md §9.
    pub subprotocol_id: u16,
    /// Always 0 as sent by v0.11.
    pub channel_hash: u16,
    /// The AEAD nonce (all-zero in handshake packets).
    pub nonce: [u8; NONCE_SIZE],
    /// The session (0 in handshake packets).
    pub session_id: u64,
    /// Stream multiplexing id.
    pub stream_id: u64,
    /// Per-stream packet sequence.
    pub sequence: u64,
    /// Always 0 in v0.11.
    pub subnet_id: u32,
    /// Low 32 bits of an origin hash (0 as sent by v0.11's mesh).
    pub origin_hash: u32,
    /// Always 0.
    pub fragment_id: u16,
    /// Always 0.
    pub fragment_offset: u16,
    /// Plaintext payload length (the Noise message length for handshakes).
    pub payload_len: u16,
    /// Number of event frames in the payload.
    pub event_count: u16,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(word)
}

impl NetHeader {
    /// Whether the HANDSHAKE flag is set.
    pub fn is_handshake(&self) -> bool {
        self.flags & flags::HANDSHAKE != 0
    }

    /// Whether the HEARTBEAT flag is set.
    pub fn is_heartbeat(&self) -> bool {
        self.flags & flags::HEARTBEAT != 0
    }

    /// Whether the RELIABLE flag is set.
    pub fn is_reliable(&self) -> bool {
        self.flags & flags::RELIABLE != 0
    }

    /// The nonce counter (header bytes 16..24).
    pub fn counter(&self) -> u64 {
        u64::from_le_bytes(self.nonce[4..].try_into().unwrap_or([0; 8]))
    }

    /// The 64 bytes.
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[offset::MAGIC..offset::VERSION].copy_from_slice(&HEADER_MAGIC);
        b[offset::VERSION] = PROTOCOL_VERSION;
        b[offset::FLAGS] = self.flags;
        b[offset::PRIORITY] = self.priority;
        b[offset::HOP_TTL] = self.hop_ttl;
        b[offset::HOP_COUNT] = self.hop_count;
        b[offset::FRAG_FLAGS] = self.frag_flags;
        b[offset::SUBPROTOCOL_ID..offset::CHANNEL_HASH]
            .copy_from_slice(&self.subprotocol_id.to_le_bytes());
        b[offset::CHANNEL_HASH..offset::NONCE].copy_from_slice(&self.channel_hash.to_le_bytes());
        b[offset::NONCE..offset::SESSION_ID].copy_from_slice(&self.nonce);
        b[offset::SESSION_ID..offset::STREAM_ID].copy_from_slice(&self.session_id.to_le_bytes());
        b[offset::STREAM_ID..offset::SEQUENCE].copy_from_slice(&self.stream_id.to_le_bytes());
        b[offset::SEQUENCE..offset::SUBNET_ID].copy_from_slice(&self.sequence.to_le_bytes());
        b[offset::SUBNET_ID..offset::ORIGIN_HASH].copy_from_slice(&self.subnet_id.to_le_bytes());
        b[offset::ORIGIN_HASH..offset::FRAGMENT_ID]
            .copy_from_slice(&self.origin_hash.to_le_bytes());
        b[offset::FRAGMENT_ID..offset::FRAGMENT_OFFSET]
            .copy_from_slice(&self.fragment_id.to_le_bytes());
        b[offset::FRAGMENT_OFFSET..offset::PAYLOAD_LEN]
            .copy_from_slice(&self.fragment_offset.to_le_bytes());
        b[offset::PAYLOAD_LEN..offset::EVENT_COUNT]
            .copy_from_slice(&self.payload_len.to_le_bytes());
        b[offset::EVENT_COUNT..].copy_from_slice(&self.event_count.to_le_bytes());
        b
    }

    /// Decodes and validates a header (WIRE.md §2.2): at least 64 bytes, the
    /// magic, version 1, `payload_len <= 8112`, `event_count <= 2028`.
    /// Length checks of the body are the packet layer's.
    ///
    /// # Errors
    /// [`WireError::Truncated`], [`WireError::BadMagic`],
    /// [`WireError::UnsupportedVersion`], [`WireError::PayloadTooLarge`],
    /// [`WireError::TooManyEvents`].
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        Self::decode_limited(bytes, MAX_PAYLOAD_SIZE)
    }

    /// As [`decode`](Self::decode), with `payload_len` up to
    /// [`MAX_LARGE_PAYLOAD_SIZE`]: what a Net node that offered large
    /// datagrams accepts.
    ///
    /// # Errors
    /// As [`decode`](Self::decode).
    pub fn decode_large(bytes: &[u8]) -> Result<Self, WireError> {
        Self::decode_limited(bytes, MAX_LARGE_PAYLOAD_SIZE)
    }

    fn decode_limited(bytes: &[u8], max_payload: usize) -> Result<Self, WireError> {
        let b = bytes.get(..HEADER_SIZE).ok_or(WireError::Truncated {
            what: "NetHeader",
            needed: HEADER_SIZE,
            got: bytes.len(),
        })?;
        if b[..2] != HEADER_MAGIC {
            return Err(WireError::BadMagic);
        }
        if b[offset::VERSION] != PROTOCOL_VERSION {
            return Err(WireError::UnsupportedVersion(b[offset::VERSION]));
        }
        let mut nonce = [0u8; NONCE_SIZE];
        nonce.copy_from_slice(&b[offset::NONCE..offset::SESSION_ID]);
        let header = Self {
            flags: b[offset::FLAGS],
            priority: b[offset::PRIORITY],
            hop_ttl: b[offset::HOP_TTL],
            hop_count: b[offset::HOP_COUNT],
            frag_flags: b[offset::FRAG_FLAGS],
            subprotocol_id: u16_at(b, offset::SUBPROTOCOL_ID),
            channel_hash: u16_at(b, offset::CHANNEL_HASH),
            nonce,
            session_id: u64_at(b, offset::SESSION_ID),
            stream_id: u64_at(b, offset::STREAM_ID),
            sequence: u64_at(b, offset::SEQUENCE),
            subnet_id: u32_at(b, offset::SUBNET_ID),
            origin_hash: u32_at(b, offset::ORIGIN_HASH),
            fragment_id: u16_at(b, offset::FRAGMENT_ID),
            fragment_offset: u16_at(b, offset::FRAGMENT_OFFSET),
            payload_len: u16_at(b, offset::PAYLOAD_LEN),
            event_count: u16_at(b, offset::EVENT_COUNT),
        };
        if usize::from(header.payload_len) > max_payload {
            return Err(WireError::PayloadTooLarge(usize::from(header.payload_len)));
        }
        if usize::from(header.event_count) > MAX_EVENTS_PER_PACKET {
            return Err(WireError::TooManyEvents(usize::from(header.event_count)));
        }
        Ok(header)
    }
}

/// The AAD of a header: bytes 0..12 with hop_count (byte 6) zeroed, then
/// bytes 24..64 (the nonce is left out).
pub fn aad(header: &[u8; HEADER_SIZE]) -> [u8; AAD_SIZE] {
    let mut out = [0u8; AAD_SIZE];
    out[..12].copy_from_slice(&header[..12]);
    out[offset::HOP_COUNT] = 0;
    out[12..].copy_from_slice(&header[offset::SESSION_ID..]);
    out
}

/// The 4-byte nonce prefix of a session: `low32(id) XOR high32(id)`, LE.
pub fn nonce_prefix(session_id: u64) -> [u8; 4] {
    ((session_id as u32) ^ ((session_id >> 32) as u32)).to_le_bytes()
}

/// The 12-byte nonce: the session prefix, then the counter (u64 LE).
pub fn nonce(session_id: u64, counter: u64) -> [u8; NONCE_SIZE] {
    let mut out = [0u8; NONCE_SIZE];
    out[..4].copy_from_slice(&nonce_prefix(session_id));
    out[4..].copy_from_slice(&counter.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_the_spec() {
        assert_eq!(HEADER_SIZE, 64);
        assert_eq!(TAG_SIZE, 16);
        assert_eq!(NONCE_SIZE, 12);
        assert_eq!(AAD_SIZE, 52);
        assert_eq!(MAX_PACKET_SIZE, 8192);
        assert_eq!(MAX_PAYLOAD_SIZE, 8112);
        assert_eq!(MAX_EVENTS_PER_PACKET, 2028);
        assert_eq!(HEADER_MAGIC, 0x4E45u16.to_le_bytes());
        assert_eq!(PACKET_OVERHEAD, 80);
        assert_eq!(
            (
                flags::RELIABLE,
                flags::NACK,
                flags::PRIORITY,
                flags::FIN,
                flags::HANDSHAKE,
                flags::HEARTBEAT,
                flags::AES_256_GCM
            ),
            (0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40)
        );
        assert_eq!(
            [
                offset::MAGIC,
                offset::VERSION,
                offset::FLAGS,
                offset::PRIORITY,
                offset::HOP_TTL,
                offset::HOP_COUNT,
                offset::FRAG_FLAGS,
                offset::SUBPROTOCOL_ID,
                offset::CHANNEL_HASH,
                offset::NONCE,
                offset::SESSION_ID,
                offset::STREAM_ID,
                offset::SEQUENCE,
                offset::SUBNET_ID,
                offset::ORIGIN_HASH,
                offset::FRAGMENT_ID,
                offset::FRAGMENT_OFFSET,
                offset::PAYLOAD_LEN,
                offset::EVENT_COUNT
            ],
            [
                0, 2, 3, 4, 5, 6, 7, 8, 10, 12, 24, 32, 40, 48, 52, 56, 58, 60, 62
            ]
        );
    }

    #[test]
    fn nonce_prefix_example() {
        assert_eq!(nonce_prefix(0x0123_4567_89ab_cdef), [0x88; 4]);
        assert_eq!(nonce(0x0123_4567_89ab_cdef, 1)[4..], 1u64.to_le_bytes());
    }

    #[test]
    fn decode_rejections() {
        let good = NetHeader::default().encode();
        assert!(NetHeader::decode(&good).is_ok());
        assert!(matches!(
            NetHeader::decode(&good[..63]),
            Err(WireError::Truncated { .. })
        ));
        let mut bad = good;
        bad[0] = 0;
        assert_eq!(NetHeader::decode(&bad), Err(WireError::BadMagic));
        let mut bad = good;
        bad[2] = 2;
        assert_eq!(
            NetHeader::decode(&bad),
            Err(WireError::UnsupportedVersion(2))
        );
        let too_big = NetHeader {
            payload_len: 8113,
            ..Default::default()
        }
        .encode();
        assert_eq!(
            NetHeader::decode(&too_big),
            Err(WireError::PayloadTooLarge(8113))
        );
        let too_many = NetHeader {
            event_count: 2029,
            ..Default::default()
        }
        .encode();
        assert_eq!(
            NetHeader::decode(&too_many),
            Err(WireError::TooManyEvents(2029))
        );
    }
}
