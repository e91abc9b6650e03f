//! Protected packets (WIRE.md §2, §4): header ‖ ciphertext ‖ tag, sealed
//! under a session's transmit key and opened under its receive key. The
//! key's cipher decides the header flag `AES_256_GCM` (set for AES-256-GCM,
//! clear for ChaCha20-Poly1305), and a key opens only packets whose flag
//! names its cipher.

use super::crypto::{AuthError, Cipher, PacketKey};
use crate::wire::{
    HEADER_SIZE, MAX_LARGE_PAYLOAD_SIZE, NetHeader, TAG_SIZE, WireError, aad, flags,
};

/// What goes into a protected packet's header besides the session fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PacketKind {
    /// Flag bits (RELIABLE, HEARTBEAT). `AES_256_GCM` is added by the key
    /// when it is an AES key.
    pub flags: u8,
    /// Subprotocol id (0 = events).
    pub subprotocol_id: u16,
    /// Stream.
    pub stream_id: u64,
    /// Per-stream sequence.
    pub sequence: u64,
    /// Number of event frames in the payload.
    pub event_count: u16,
    /// Header priority (0 towards v0.11 peers, which always send 0).
    pub priority: u8,
    /// Header `subnet_id`: a channel packet's confinement stamp towards
    /// Net peers (0 towards v0.11 peers, which always send 0).
    pub subnet_id: u32,
}

impl PacketKind {
    /// A heartbeat: flags 0x20, everything else 0.
    pub const HEARTBEAT: PacketKind = PacketKind {
        flags: flags::HEARTBEAT,
        subprotocol_id: 0,
        stream_id: 0,
        sequence: 0,
        event_count: 0,
        priority: 0,
        subnet_id: 0,
    };
}

/// Why a received protected packet was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Not a valid header, or the body length is wrong for it.
    #[error(transparent)]
    Malformed(#[from] WireError),
    /// The tag did not verify.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// Seals `plaintext` (framed events) into `out` (cleared first): the header
/// for `session_id` and `counter` (with the flag of `key`'s cipher), the
/// ciphertext and the tag.
///
/// # Panics
/// Never for payloads the caller framed within 8112 bytes (64 920 between
/// Net nodes that agreed on large datagrams); longer ones are a bug in the
/// caller and are refused by a debug assertion.
pub fn seal(
    key: &PacketKey,
    session_id: u64,
    counter: u64,
    kind: &PacketKind,
    plaintext: &[u8],
    out: &mut Vec<u8>,
) {
    debug_assert!(plaintext.len() <= MAX_LARGE_PAYLOAD_SIZE);
    out.clear();
    out.reserve(HEADER_SIZE + plaintext.len() + TAG_SIZE);
    out.resize(HEADER_SIZE, 0);
    out.extend_from_slice(plaintext);
    seal_in_place(key, session_id, counter, kind, out);
}

/// Seals in place: `buf` holds `HEADER_SIZE` bytes (overwritten with the
/// header) followed by the plaintext; the plaintext is encrypted where it
/// lies and the tag appended. The one-copy path of the outbox.
///
/// # Panics
/// As [`seal`]; also refused by a debug assertion when `buf` is shorter
/// than a header.
pub fn seal_in_place(
    key: &PacketKey,
    session_id: u64,
    counter: u64,
    kind: &PacketKind,
    buf: &mut Vec<u8>,
) {
    debug_assert!(buf.len() >= HEADER_SIZE && buf.len() - HEADER_SIZE <= MAX_LARGE_PAYLOAD_SIZE);
    let header = NetHeader {
        flags: kind.flags | key.cipher().header_flag(),
        subprotocol_id: kind.subprotocol_id,
        nonce: key.nonce(counter),
        session_id,
        stream_id: kind.stream_id,
        sequence: kind.sequence,
        payload_len: (buf.len() - HEADER_SIZE) as u16,
        event_count: kind.event_count,
        priority: kind.priority,
        subnet_id: kind.subnet_id,
        ..NetHeader::default()
    };
    let header_bytes = header.encode();
    buf[..HEADER_SIZE].copy_from_slice(&header_bytes);
    let tag = key.seal(counter, &aad(&header_bytes), &mut buf[HEADER_SIZE..]);
    buf.extend_from_slice(&tag);
}

/// Checks the body length a protected packet must have (WIRE.md §2.2):
/// heartbeats exactly 16 bytes, others exactly `payload_len + 16`.
pub fn check_body_len(header: &NetHeader, packet_len: usize) -> Result<(), WireError> {
    let got = packet_len.saturating_sub(HEADER_SIZE);
    let expected = if header.is_heartbeat() {
        TAG_SIZE
    } else {
        usize::from(header.payload_len) + TAG_SIZE
    };
    if got != expected {
        return Err(WireError::BodyLength { expected, got });
    }
    Ok(())
}

/// The cipher a received packet says it was sealed with (its
/// `AES_256_GCM` flag).
pub fn cipher_of(header: &NetHeader) -> Cipher {
    if header.flags & flags::AES_256_GCM != 0 {
        Cipher::Aes256Gcm
    } else {
        Cipher::ChaCha20Poly1305
    }
}

/// Authenticates and decrypts `packet` (a direct packet, routing header
/// stripped) in place under `key`; returns the plaintext range. The caller
/// has decoded `header` from it and checked the replay window.
///
/// # Errors
/// [`OpenError::Malformed`] for a wrong body length; [`OpenError::Auth`]
/// when the tag does not verify, or the header's cipher flag is not `key`'s
/// (refused without trying).
pub fn open(
    key: &PacketKey,
    header: &NetHeader,
    packet: &mut [u8],
) -> Result<std::ops::Range<usize>, OpenError> {
    check_body_len(header, packet.len())?;
    if cipher_of(header) != key.cipher() {
        return Err(AuthError.into());
    }
    let mut header_bytes = [0u8; HEADER_SIZE];
    header_bytes.copy_from_slice(&packet[..HEADER_SIZE]);
    let len = key.open(
        header.counter(),
        &aad(&header_bytes),
        &mut packet[HEADER_SIZE..],
    )?;
    Ok(HEADER_SIZE..HEADER_SIZE + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_in_place_gives_the_same_bytes_and_opens() {
        let key = PacketKey::new(&[7u8; 32], 0x1234);
        let kind = PacketKind {
            flags: flags::RELIABLE,
            stream_id: 9,
            sequence: 4,
            event_count: 2,
            ..PacketKind::default()
        };
        let plaintext = crate::wire::encode_events(&[&b"one"[..], b"two"]).unwrap();
        let mut copied = Vec::new();
        seal(&key, 0x1234, 17, &kind, &plaintext, &mut copied);
        let mut in_place = vec![0u8; HEADER_SIZE];
        in_place.extend_from_slice(&plaintext);
        seal_in_place(&key, 0x1234, 17, &kind, &mut in_place);
        assert_eq!(copied, in_place);
        let header = NetHeader::decode(&in_place).unwrap();
        let range = open(&key, &header, &mut in_place).unwrap();
        assert_eq!(&in_place[range], &plaintext[..]);
    }

    #[test]
    fn aes_packets_carry_the_flag_and_open_only_under_an_aes_key() {
        let key = [7u8; 32];
        let chacha = PacketKey::new(&key, 0x1234);
        let aes = PacketKey::with_cipher(Cipher::Aes256Gcm, &key, 0x1234);
        let kind = PacketKind {
            flags: flags::RELIABLE,
            stream_id: 9,
            event_count: 1,
            ..PacketKind::default()
        };
        let plaintext = crate::wire::encode_events(&[&[0x5Au8; 1200][..]]).unwrap();
        let mut sealed = Vec::new();
        seal(&aes, 0x1234, 3, &kind, &plaintext, &mut sealed);
        let header = NetHeader::decode(&sealed).unwrap();
        assert_eq!(header.flags, flags::RELIABLE | flags::AES_256_GCM);
        assert_eq!(cipher_of(&header), Cipher::Aes256Gcm);
        assert_eq!(sealed.len(), HEADER_SIZE + plaintext.len() + TAG_SIZE);
        // In place gives the same bytes.
        let mut in_place = vec![0u8; HEADER_SIZE];
        in_place.extend_from_slice(&plaintext);
        seal_in_place(&aes, 0x1234, 3, &kind, &mut in_place);
        assert_eq!(in_place, sealed);
        // A ChaCha key (even of the same bytes) refuses it.
        let mut copy = sealed.clone();
        assert!(matches!(
            open(&chacha, &header, &mut copy),
            Err(OpenError::Auth(_))
        ));
        let range = open(&aes, &header, &mut sealed).unwrap();
        assert_eq!(&sealed[range], &plaintext[..]);
        // The flag is authenticated: cleared, neither key opens the packet.
        let mut forged = Vec::new();
        seal(&aes, 0x1234, 4, &kind, &plaintext, &mut forged);
        forged[3] &= !flags::AES_256_GCM;
        let header = NetHeader::decode(&forged).unwrap();
        assert!(open(&chacha, &header, &mut forged.clone()).is_err());
        assert!(open(&aes, &header, &mut forged).is_err());
        // And a ChaCha packet has no flag and refuses the AES key.
        let mut sealed = Vec::new();
        seal(&chacha, 0x1234, 5, &kind, &plaintext, &mut sealed);
        let header = NetHeader::decode(&sealed).unwrap();
        assert_eq!(header.flags, flags::RELIABLE);
        assert!(open(&aes, &header, &mut sealed.clone()).is_err());
        assert!(open(&chacha, &header, &mut sealed).is_ok());
    }
}
