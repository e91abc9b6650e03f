//! Session keys and packet protection (WIRE.md §3.6, §4.1–4.3).
//!
//! After the Noise handshake both sides derive a `session_id` and one key
//! per direction from the handshake hash; every protected packet is sealed
//! with IETF ChaCha20-Poly1305 under the sender's key, with the 52-byte AAD
//! of its header and the session's nonce prefix ‖ counter.
//!
//! The AEAD is `ring`'s (assembly ChaCha20 and Poly1305; measured against
//! the `chacha20poly1305` crate in `benches/mesh.rs`, figures in
//! `docs/BENCHMARKS.md`).

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, Tag, UnboundKey};
use zeroize::Zeroize;

use crate::identity::keyed_blake2s;
use crate::wire::{AAD_SIZE, NONCE_SIZE, TAG_SIZE, nonce};

/// The KDF's extract label.
pub const KDF_LABEL: &[u8] = b"net-kdf-v1";
/// Label of the initiator's transmit key.
pub const INITIATOR_TX_LABEL: &[u8] = b"initiator-tx";
/// Label of the initiator's receive key.
pub const INITIATOR_RX_LABEL: &[u8] = b"initiator-rx";

/// Which side of the handshake we were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sent msg1.
    Initiator,
    /// Answered with msg2.
    Responder,
}

/// What a completed handshake yields: the session id and the two keys.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    /// u64 LE of the handshake hash's first 8 bytes.
    pub session_id: u64,
    /// Our transmit key.
    pub tx_key: [u8; 32],
    /// Our receive key.
    pub rx_key: [u8; 32],
    /// The Noise handshake hash (input to identity binding).
    pub handshake_hash: [u8; 32],
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("session_id", &format_args!("{:#018x}", self.session_id))
            .finish_non_exhaustive()
    }
}

impl Drop for SessionKeys {
    fn drop(&mut self) {
        self.tx_key.zeroize();
        self.rx_key.zeroize();
    }
}

impl SessionKeys {
    /// Derives the session from the handshake hash `h` (WIRE.md §3.6).
    pub fn derive(handshake_hash: &[u8; 32], role: Role) -> Self {
        let mut prk = keyed_blake2s(handshake_hash, &[KDF_LABEL]);
        let initiator_tx = keyed_blake2s(&prk, &[INITIATOR_TX_LABEL]);
        let initiator_rx = keyed_blake2s(&prk, &[INITIATOR_RX_LABEL]);
        prk.zeroize();
        let (tx_key, rx_key) = match role {
            Role::Initiator => (initiator_tx, initiator_rx),
            Role::Responder => (initiator_rx, initiator_tx),
        };
        let mut id = [0u8; 8];
        id.copy_from_slice(&handshake_hash[..8]);
        Self {
            session_id: u64::from_le_bytes(id),
            tx_key,
            rx_key,
            handshake_hash: *handshake_hash,
        }
    }
}

/// An authentication failure: the packet was forged, corrupted, replayed
/// under another key, or is not for this session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("packet failed authentication")]
pub struct AuthError;

/// One direction's ChaCha20-Poly1305 key with the session's nonce prefix.
pub struct PacketKey {
    key: LessSafeKey,
    session_id: u64,
}

impl std::fmt::Debug for PacketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketKey").finish_non_exhaustive()
    }
}

impl PacketKey {
    /// A key for `session_id`'s packets.
    pub fn new(key: &[u8; 32], session_id: u64) -> Self {
        let unbound =
            UnboundKey::new(&CHACHA20_POLY1305, key).expect("a 32-byte key is valid for ChaCha20");
        Self {
            key: LessSafeKey::new(unbound),
            session_id,
        }
    }

    /// The 12-byte nonce of `counter` in this session.
    pub fn nonce(&self, counter: u64) -> [u8; NONCE_SIZE] {
        nonce(self.session_id, counter)
    }

    /// Encrypts `in_out` in place and returns the tag.
    pub fn seal(&self, counter: u64, aad: &[u8; AAD_SIZE], in_out: &mut [u8]) -> [u8; TAG_SIZE] {
        let nonce = Nonce::assume_unique_for_key(self.nonce(counter));
        let tag: Tag = self
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(aad), in_out)
            .expect("ChaCha20-Poly1305 accepts any packet-sized input");
        let mut out = [0u8; TAG_SIZE];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Decrypts `ciphertext ‖ tag` in place; returns the plaintext length.
    ///
    /// # Errors
    /// [`AuthError`] when the tag does not verify (nothing is released).
    pub fn open(
        &self,
        counter: u64,
        aad: &[u8; AAD_SIZE],
        ciphertext_and_tag: &mut [u8],
    ) -> Result<usize, AuthError> {
        let nonce = Nonce::assume_unique_for_key(self.nonce(counter));
        self.key
            .open_in_place(nonce, Aad::from(aad), ciphertext_and_tag)
            .map(|plain| plain.len())
            .map_err(|_| AuthError)
    }
}
