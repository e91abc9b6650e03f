//! Identity binding between two Net nodes (better than v0.11, whose NKpsk0
//! initiator is anonymous): right after the handshake each side sends a
//! [`Hello`] signed with its ed25519 entity key over the handshake hash.
//! See `docs/mesh.md`.
//!
//! The hello rides subprotocol 0x0B00 (StreamWindow) as an event that is
//! not 16 bytes long. v0.11 decodes 0x0B00 events as exactly-16-byte grants
//! and drops anything else, so a v0.11 peer never misreads it; a Net peer
//! recognises the magic. A peer that never answers is treated as v0.11.

use crate::identity::{
    EntityId, EntityKeypair, IdentityError, PUBLIC_KEY_LEN, SIGNATURE_LEN, Signature,
};
use crate::wire::WireError;

use super::crypto::Role;

/// First bytes of a hello.
pub const HELLO_MAGIC: [u8; 4] = *b"NETB";
/// Current hello version.
pub const HELLO_VERSION: u8 = 1;
/// Encoded size without the static key.
pub const HELLO_SIZE: usize = 4 + 1 + 1 + 1 + 8 + PUBLIC_KEY_LEN + SIGNATURE_LEN;
/// Encoded size of a hello that carries the sender's static key
/// ([`FLAG_STATIC_KEY`]).
pub const HELLO_WITH_KEY_SIZE: usize = HELLO_SIZE + STATIC_KEY_LEN;
/// An X25519 static public key.
pub const STATIC_KEY_LEN: usize = 32;
/// Domain separation of the signed message.
pub const BIND_LABEL: &[u8] = b"net-bind-v1";

/// Hello flag: the sender has received and verified our hello.
pub const FLAG_ACK: u8 = 0x01;
/// Hello flag: the sender speaks Net reliable streams.
pub const FLAG_RELIABILITY: u8 = 0x02;
/// Hello flag: the sender can receive AES-256-GCM packets (its CPU has AES
/// instructions and its config allows it). Signed with the rest, so a
/// man in the middle cannot add or strip it. Both sides must set it for
/// data to switch to AES (`docs/mesh.md`, "Ciphers").
pub const FLAG_AES_256_GCM: u8 = 0x04;

/// Hello flag: the sender widens a stream's default window when the
/// receiver offers it, and offers wider windows as a receiver
/// ([`WindowOffer`](super::credit::WindowOffer); `docs/mesh.md`, *Window
/// growth*).
pub const FLAG_WINDOW_GROWTH: u8 = 0x08;

/// Hello flag: the sender receives datagrams of up to 65 000 bytes
/// (`MAX_LARGE_PACKET_SIZE`); a peer that set it too may send it such
/// datagrams once a probe got through (`mesh::pathsize`).
pub const FLAG_LARGE_DATAGRAMS: u8 = 0x10;

/// Hello flag: the sender runs the continuity plane (partition records,
/// the heal exchange, reconciliation on 0x0700–0x0702 / 0x0800–0x0801);
/// only peers that set it are sent those messages (`mesh/node/continuity/`).
pub const FLAG_CONTINUITY: u8 = 0x20;

/// Hello flag: the sender hands the events of a Net reliable stream that
/// carries a registered subprotocol (stream id
/// [`SUBPROTOCOL_STREAM_BASE`](crate::mesh::SUBPROTOCOL_STREAM_BASE) + the
/// id) to that subprotocol's handler, in stream order; only to such a peer
/// does [`MeshNode::send_subprotocol_stream`](crate::mesh::MeshNode::send_subprotocol_stream)
/// send (compute moves large snapshots this way).
pub const FLAG_SUBPROTOCOL_STREAMS: u8 = 0x40;

/// Hello flag: the hello carries the sender's X25519 static public key
/// (the one it answers handshakes with) after the signature, covered by
/// it. NKpsk0's initiator sends no static key, so without this a responder
/// could not seal a daemon's identity to it (identity envelopes,
/// `docs/compute.md`).
pub const FLAG_STATIC_KEY: u8 = 0x80;

/// Why a hello was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HelloError {
    /// Not a hello (wrong size or magic): for 0x0B00 this means "a grant
    /// or garbage", not an attack.
    #[error("not a hello: {0}")]
    NotHello(WireError),
    /// A hello version we do not speak.
    #[error("hello version {0} is not supported")]
    Version(u8),
    /// The sender claims our own role: a reflected hello.
    #[error("hello claims the wrong handshake role")]
    Reflected,
    /// The node_id is not the one derived from the entity key, or not the
    /// session's.
    #[error("hello node_id {claimed:#018x} does not match {expected:#018x}")]
    NodeIdMismatch {
        /// In the hello (or derived from its key).
        claimed: u64,
        /// The session's peer.
        expected: u64,
    },
    /// The signature does not verify.
    #[error("hello signature invalid: {0}")]
    Signature(#[from] IdentityError),
}

/// A decoded hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// `FLAG_*` bits.
    pub flags: u8,
    /// The sender's handshake role.
    pub role: Role,
    /// The sender's node_id.
    pub node_id: u64,
    /// The sender's entity (ed25519 public key).
    pub entity: EntityId,
    /// Signature over [`signed_message`].
    pub signature: Signature,
    /// The sender's X25519 static public key; present exactly when
    /// `flags` has [`FLAG_STATIC_KEY`].
    pub static_key: Option<[u8; STATIC_KEY_LEN]>,
}

fn role_byte(role: Role) -> u8 {
    match role {
        Role::Initiator => 0,
        Role::Responder => 1,
    }
}

/// What a hello signs: label ‖ handshake hash ‖ role ‖ node_id ‖ flags
/// [‖ static key].
pub fn signed_message(
    handshake_hash: &[u8; 32],
    role: Role,
    node_id: u64,
    flags: u8,
    static_key: Option<&[u8; STATIC_KEY_LEN]>,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(BIND_LABEL.len() + 32 + 1 + 8 + 1 + STATIC_KEY_LEN);
    m.extend_from_slice(BIND_LABEL);
    m.extend_from_slice(handshake_hash);
    m.push(role_byte(role));
    m.extend_from_slice(&node_id.to_le_bytes());
    m.push(flags);
    if let Some(key) = static_key {
        m.extend_from_slice(key);
    }
    m
}

impl Hello {
    /// Our hello for a session; with `static_key`, the hello carries it
    /// and sets [`FLAG_STATIC_KEY`] (any such bit in `flags` is ignored).
    ///
    /// # Errors
    /// A read-only identity cannot sign.
    pub fn sign(
        identity: &EntityKeypair,
        handshake_hash: &[u8; 32],
        role: Role,
        flags: u8,
        static_key: Option<&[u8; STATIC_KEY_LEN]>,
    ) -> Result<Self, IdentityError> {
        let flags = match static_key {
            Some(_) => flags | FLAG_STATIC_KEY,
            None => flags & !FLAG_STATIC_KEY,
        };
        let node_id = identity.node_id();
        let signature = identity.sign(&signed_message(
            handshake_hash,
            role,
            node_id,
            flags,
            static_key,
        ))?;
        Ok(Self {
            flags,
            role,
            node_id,
            entity: *identity.entity_id(),
            signature,
            static_key: static_key.copied(),
        })
    }

    /// The bytes: [`HELLO_SIZE`] of them, [`HELLO_WITH_KEY_SIZE`] with a
    /// static key.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(HELLO_WITH_KEY_SIZE);
        b.extend_from_slice(&HELLO_MAGIC);
        b.push(HELLO_VERSION);
        b.push(self.flags);
        b.push(role_byte(self.role));
        b.extend_from_slice(&self.node_id.to_le_bytes());
        b.extend_from_slice(self.entity.as_bytes());
        b.extend_from_slice(&self.signature.to_bytes());
        if let Some(key) = &self.static_key {
            b.extend_from_slice(key);
        }
        b
    }

    /// Decodes (no verification).
    ///
    /// # Errors
    /// [`HelloError::NotHello`] (also for a length that disagrees with
    /// [`FLAG_STATIC_KEY`]), [`HelloError::Version`].
    pub fn decode(bytes: &[u8]) -> Result<Self, HelloError> {
        if bytes.len() != HELLO_SIZE && bytes.len() != HELLO_WITH_KEY_SIZE {
            return Err(HelloError::NotHello(WireError::Truncated {
                what: "hello",
                needed: HELLO_SIZE,
                got: bytes.len(),
            }));
        }
        if bytes[0..4] != HELLO_MAGIC {
            return Err(HelloError::NotHello(WireError::InvalidValue {
                what: "hello magic",
                value: u64::from(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
            }));
        }
        if bytes[4] != HELLO_VERSION {
            return Err(HelloError::Version(bytes[4]));
        }
        let role = match bytes[6] {
            0 => Role::Initiator,
            1 => Role::Responder,
            other => {
                return Err(HelloError::NotHello(WireError::InvalidValue {
                    what: "hello role",
                    value: u64::from(other),
                }));
            }
        };
        let flags = bytes[5];
        let keyed = bytes.len() == HELLO_WITH_KEY_SIZE;
        if keyed != (flags & FLAG_STATIC_KEY != 0) {
            return Err(HelloError::NotHello(WireError::InvalidValue {
                what: "hello length for its static-key flag",
                value: bytes.len() as u64,
            }));
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&bytes[7..15]);
        let entity =
            EntityId::from_slice(&bytes[15..15 + PUBLIC_KEY_LEN]).map_err(HelloError::Signature)?;
        let signature = Signature::from_slice(&bytes[15 + PUBLIC_KEY_LEN..HELLO_SIZE])
            .map_err(HelloError::Signature)?;
        let static_key = keyed.then(|| {
            let mut key = [0u8; STATIC_KEY_LEN];
            key.copy_from_slice(&bytes[HELLO_SIZE..]);
            key
        });
        Ok(Self {
            flags,
            role,
            node_id: u64::from_le_bytes(id),
            entity,
            signature,
            static_key,
        })
    }

    /// Verifies a peer's hello for the session with hash `handshake_hash`
    /// in which we had `our_role` and the peer is `peer_node_id`.
    ///
    /// # Errors
    /// [`HelloError::Reflected`], [`HelloError::NodeIdMismatch`],
    /// [`HelloError::Signature`].
    pub fn verify(
        &self,
        handshake_hash: &[u8; 32],
        our_role: Role,
        peer_node_id: u64,
    ) -> Result<(), HelloError> {
        if self.role == our_role {
            return Err(HelloError::Reflected);
        }
        if self.node_id != peer_node_id {
            return Err(HelloError::NodeIdMismatch {
                claimed: self.node_id,
                expected: peer_node_id,
            });
        }
        let derived = self.entity.node_id();
        if derived != peer_node_id {
            return Err(HelloError::NodeIdMismatch {
                claimed: derived,
                expected: peer_node_id,
            });
        }
        let message = signed_message(
            handshake_hash,
            self.role,
            self.node_id,
            self.flags,
            self.static_key.as_ref(),
        );
        self.entity.verify(&message, &self.signature)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_encode_decode_verify() {
        let a = EntityKeypair::from_seed(&[1; 32]);
        let h = [9u8; 32];
        let hello = Hello::sign(&a, &h, Role::Initiator, FLAG_RELIABILITY, None).unwrap();
        let decoded = Hello::decode(&hello.encode()).unwrap();
        assert_eq!(decoded, hello);
        decoded.verify(&h, Role::Responder, a.node_id()).unwrap();
        // Reflection, another session, another node, flipped flags.
        assert_eq!(
            decoded.verify(&h, Role::Initiator, a.node_id()),
            Err(HelloError::Reflected)
        );
        assert!(
            decoded
                .verify(&[8; 32], Role::Responder, a.node_id())
                .is_err()
        );
        assert!(matches!(
            decoded.verify(&h, Role::Responder, a.node_id() ^ 1),
            Err(HelloError::NodeIdMismatch { .. })
        ));
        let mut flipped = hello.encode();
        flipped[5] |= FLAG_ACK;
        assert!(
            Hello::decode(&flipped)
                .unwrap()
                .verify(&h, Role::Responder, a.node_id())
                .is_err()
        );
        // The AES offer is signed like every flag: stripped, refused.
        let offer = Hello::sign(
            &a,
            &h,
            Role::Initiator,
            FLAG_RELIABILITY | FLAG_AES_256_GCM,
            None,
        )
        .unwrap()
        .encode();
        let decoded = Hello::decode(&offer).unwrap();
        assert_eq!(decoded.flags & FLAG_AES_256_GCM, FLAG_AES_256_GCM);
        decoded.verify(&h, Role::Responder, a.node_id()).unwrap();
        let mut stripped = offer.clone();
        stripped[5] &= !FLAG_AES_256_GCM;
        assert!(
            Hello::decode(&stripped)
                .unwrap()
                .verify(&h, Role::Responder, a.node_id())
                .is_err()
        );
        assert_eq!((FLAG_ACK, FLAG_RELIABILITY, FLAG_AES_256_GCM), (1, 2, 4));
        // A grant-sized event is not a hello.
        assert!(matches!(
            Hello::decode(&[0; 16]),
            Err(HelloError::NotHello(_))
        ));
    }

    #[test]
    fn the_static_key_travels_signed() {
        let a = EntityKeypair::from_seed(&[2; 32]);
        let h = [7u8; 32];
        let key = [0x5a; STATIC_KEY_LEN];
        let hello = Hello::sign(&a, &h, Role::Initiator, FLAG_RELIABILITY, Some(&key)).unwrap();
        assert_eq!(hello.flags & FLAG_STATIC_KEY, FLAG_STATIC_KEY);
        let bytes = hello.encode();
        assert_eq!(bytes.len(), HELLO_WITH_KEY_SIZE);
        let decoded = Hello::decode(&bytes).unwrap();
        assert_eq!(decoded.static_key, Some(key));
        decoded.verify(&h, Role::Responder, a.node_id()).unwrap();
        // A substituted key breaks the signature.
        let mut swapped = bytes.clone();
        swapped[HELLO_SIZE] ^= 1;
        assert!(matches!(
            Hello::decode(&swapped)
                .unwrap()
                .verify(&h, Role::Responder, a.node_id()),
            Err(HelloError::Signature(_))
        ));
        // The key cut off (flag kept), or a key without the flag: not a hello.
        assert!(matches!(
            Hello::decode(&bytes[..HELLO_SIZE]),
            Err(HelloError::NotHello(_))
        ));
        let plain = Hello::sign(&a, &h, Role::Initiator, FLAG_RELIABILITY, None)
            .unwrap()
            .encode();
        let mut padded = plain.clone();
        padded.extend_from_slice(&key);
        assert!(matches!(
            Hello::decode(&padded),
            Err(HelloError::NotHello(_))
        ));
        // A flag asked for without a key is dropped, so the bytes agree.
        let unkeyed = Hello::sign(
            &a,
            &h,
            Role::Initiator,
            FLAG_RELIABILITY | FLAG_STATIC_KEY,
            None,
        )
        .unwrap();
        assert_eq!(unkeyed.flags & FLAG_STATIC_KEY, 0);
        assert_eq!(Hello::decode(&unkeyed.encode()).unwrap(), unkeyed);
        // Every truncation and extension is refused without a panic.
        for len in 0..bytes.len() + 40 {
            let mut b = bytes.clone();
            b.resize(len, 0);
            if len != HELLO_SIZE && len != HELLO_WITH_KEY_SIZE {
                assert!(Hello::decode(&b).is_err(), "{len}");
            }
        }
    }
}
