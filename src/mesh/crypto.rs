//! Session keys and packet protection (WIRE.md §3.6, §4.1–4.3).
//!
//! After the Noise handshake both sides derive a `session_id` and one key
//! per direction from the handshake hash; every protected packet is sealed
//! with IETF ChaCha20-Poly1305 under the sender's key, with the 52-byte AAD
//! of its header and the session's nonce prefix ‖ counter.
//!
//! Between two Net nodes whose CPUs both have AES instructions, data
//! packets may instead be sealed with AES-256-GCM under a second pair of
//! keys from the same KDF ([`SessionKeys::aes_tx_key`]); the header's
//! [`flags::AES_256_GCM`](crate::wire::flags::AES_256_GCM) bit says which.
//! v0.11 peers only ever see ChaCha20-Poly1305. See `docs/mesh.md`,
//! "Ciphers".
//!
//! The AEADs are `ring`'s (assembly ChaCha20 and Poly1305, AES-NI/PMULL
//! AES-GCM; measured against each other and against the `chacha20poly1305`
//! crate in `benches/mesh.rs`, figures in `docs/BENCHMARKS.md`).

use ring::aead::{
    AES_256_GCM, Aad, Algorithm, CHACHA20_POLY1305, LessSafeKey, Nonce, Tag, UnboundKey,
};
use zeroize::Zeroize;

use crate::identity::keyed_blake2s;
use crate::wire::{AAD_SIZE, NONCE_SIZE, TAG_SIZE, nonce};

/// The KDF's extract label.
pub const KDF_LABEL: &[u8] = b"net-kdf-v1";
/// Label of the initiator's transmit key.
pub const INITIATOR_TX_LABEL: &[u8] = b"initiator-tx";
/// Label of the initiator's receive key.
pub const INITIATOR_RX_LABEL: &[u8] = b"initiator-rx";
/// Label of the initiator's AES-256-GCM transmit key (Net ↔ Net only).
pub const AES_INITIATOR_TX_LABEL: &[u8] = b"initiator-tx-aes-256-gcm";
/// Label of the initiator's AES-256-GCM receive key (Net ↔ Net only).
pub const AES_INITIATOR_RX_LABEL: &[u8] = b"initiator-rx-aes-256-gcm";

/// A packet cipher. ChaCha20-Poly1305 is v0.11's and always available;
/// AES-256-GCM is negotiated between Net nodes (`docs/mesh.md`, "Ciphers").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cipher {
    /// IETF ChaCha20-Poly1305 (RFC 8439): handshakes' Noise, hellos,
    /// v0.11 peers, and the fallback.
    ChaCha20Poly1305,
    /// AES-256-GCM, marked by the header flag `AES_256_GCM`.
    Aes256Gcm,
}

impl Cipher {
    /// "chacha20-poly1305" or "aes-256-gcm" (the peers JSON's `cipher`).
    pub fn name(self) -> &'static str {
        match self {
            Cipher::ChaCha20Poly1305 => "chacha20-poly1305",
            Cipher::Aes256Gcm => "aes-256-gcm",
        }
    }

    /// The header flag bits that announce this cipher (none for ChaCha).
    pub fn header_flag(self) -> u8 {
        match self {
            Cipher::ChaCha20Poly1305 => 0,
            Cipher::Aes256Gcm => crate::wire::flags::AES_256_GCM,
        }
    }

    fn algorithm(self) -> &'static Algorithm {
        match self {
            Cipher::ChaCha20Poly1305 => &CHACHA20_POLY1305,
            Cipher::Aes256Gcm => &AES_256_GCM,
        }
    }
}

/// Whether this CPU runs AES-256-GCM in hardware: AES-NI and PCLMULQDQ on
/// x86_64, the AES extension on aarch64, nothing elsewhere. A node offers
/// AES only then (without them ring's constant-time software AES is slower
/// than ChaCha20).
pub fn aes_hardware() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("aes") && std::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// Which side of the handshake we were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sent msg1.
    Initiator,
    /// Answered with msg2.
    Responder,
}

/// What a completed handshake yields: the session id and the keys.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    /// u64 LE of the handshake hash's first 8 bytes.
    pub session_id: u64,
    /// Our transmit key (ChaCha20-Poly1305).
    pub tx_key: [u8; 32],
    /// Our receive key (ChaCha20-Poly1305).
    pub rx_key: [u8; 32],
    /// Our AES-256-GCM transmit key (used once negotiated).
    pub aes_tx_key: [u8; 32],
    /// Our AES-256-GCM receive key.
    pub aes_rx_key: [u8; 32],
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
        self.aes_tx_key.zeroize();
        self.aes_rx_key.zeroize();
    }
}

impl SessionKeys {
    /// Derives the session from the handshake hash `h` (WIRE.md §3.6):
    ///
    /// ```text
    /// prk              = BLAKE2s-MAC(key = h,   "net-kdf-v1")
    /// initiator_tx     = BLAKE2s-MAC(key = prk, "initiator-tx")
    /// initiator_rx     = BLAKE2s-MAC(key = prk, "initiator-rx")
    /// aes_initiator_tx = BLAKE2s-MAC(key = prk, "initiator-tx-aes-256-gcm")
    /// aes_initiator_rx = BLAKE2s-MAC(key = prk, "initiator-rx-aes-256-gcm")
    /// ```
    ///
    /// The first three are v0.11's. The AES keys are siblings of the
    /// ChaCha keys under the same extract, with their own labels: no key
    /// is ever used with both ciphers, and knowing the AES keys reveals
    /// nothing about the ChaCha ones (or the reverse).
    pub fn derive(handshake_hash: &[u8; 32], role: Role) -> Self {
        let mut prk = keyed_blake2s(handshake_hash, &[KDF_LABEL]);
        let initiator_tx = keyed_blake2s(&prk, &[INITIATOR_TX_LABEL]);
        let initiator_rx = keyed_blake2s(&prk, &[INITIATOR_RX_LABEL]);
        let aes_initiator_tx = keyed_blake2s(&prk, &[AES_INITIATOR_TX_LABEL]);
        let aes_initiator_rx = keyed_blake2s(&prk, &[AES_INITIATOR_RX_LABEL]);
        prk.zeroize();
        let (tx_key, rx_key, aes_tx_key, aes_rx_key) = match role {
            Role::Initiator => (
                initiator_tx,
                initiator_rx,
                aes_initiator_tx,
                aes_initiator_rx,
            ),
            Role::Responder => (
                initiator_rx,
                initiator_tx,
                aes_initiator_rx,
                aes_initiator_tx,
            ),
        };
        let mut id = [0u8; 8];
        id.copy_from_slice(&handshake_hash[..8]);
        Self {
            session_id: u64::from_le_bytes(id),
            tx_key,
            rx_key,
            aes_tx_key,
            aes_rx_key,
            handshake_hash: *handshake_hash,
        }
    }
}

/// An authentication failure: the packet was forged, corrupted, replayed
/// under another key, or is not for this session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("packet failed authentication")]
pub struct AuthError;

/// One direction's packet key (ChaCha20-Poly1305 or AES-256-GCM) with the
/// session's nonce prefix. Both ciphers take the same 12-byte nonce
/// (prefix ‖ counter) and give a 16-byte tag, so packets differ only in
/// the header flag and the bytes.
pub struct PacketKey {
    key: LessSafeKey,
    cipher: Cipher,
    session_id: u64,
}

impl std::fmt::Debug for PacketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketKey")
            .field("cipher", &self.cipher)
            .finish_non_exhaustive()
    }
}

impl PacketKey {
    /// A ChaCha20-Poly1305 key for `session_id`'s packets.
    pub fn new(key: &[u8; 32], session_id: u64) -> Self {
        Self::with_cipher(Cipher::ChaCha20Poly1305, key, session_id)
    }

    /// A key of `cipher` for `session_id`'s packets.
    pub fn with_cipher(cipher: Cipher, key: &[u8; 32], session_id: u64) -> Self {
        let unbound = UnboundKey::new(cipher.algorithm(), key)
            .expect("a 32-byte key is valid for ChaCha20-Poly1305 and AES-256-GCM");
        Self {
            key: LessSafeKey::new(unbound),
            cipher,
            session_id,
        }
    }

    /// The cipher this key seals with.
    pub fn cipher(&self) -> Cipher {
        self.cipher
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
            .expect("both AEADs accept any packet-sized input");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aes_keys_come_from_the_same_extract_under_their_own_labels() {
        let h = [0x42u8; 32];
        let init = SessionKeys::derive(&h, Role::Initiator);
        let resp = SessionKeys::derive(&h, Role::Responder);
        let prk = keyed_blake2s(&h, &[KDF_LABEL]);
        assert_eq!(
            init.aes_tx_key,
            keyed_blake2s(&prk, &[b"initiator-tx-aes-256-gcm"])
        );
        assert_eq!(
            init.aes_rx_key,
            keyed_blake2s(&prk, &[b"initiator-rx-aes-256-gcm"])
        );
        // Each direction pairs up across the two roles.
        assert_eq!(init.aes_tx_key, resp.aes_rx_key);
        assert_eq!(init.aes_rx_key, resp.aes_tx_key);
        // Four distinct keys: no key serves both ciphers or both directions.
        let all = [init.tx_key, init.rx_key, init.aes_tx_key, init.aes_rx_key];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // Another session, other keys.
        assert_ne!(
            SessionKeys::derive(&[0x43; 32], Role::Initiator).aes_tx_key,
            init.aes_tx_key
        );
    }

    #[test]
    fn both_ciphers_round_trip_and_neither_opens_the_other() {
        let aad = [3u8; AAD_SIZE];
        let key = [9u8; 32];
        for cipher in [Cipher::ChaCha20Poly1305, Cipher::Aes256Gcm] {
            let k = PacketKey::with_cipher(cipher, &key, 7);
            assert_eq!(k.cipher(), cipher);
            let mut buf = vec![0xA5u8; 1200];
            let tag = k.seal(5, &aad, &mut buf);
            assert_ne!(buf, vec![0xA5u8; 1200]);
            buf.extend_from_slice(&tag);
            let mut copy = buf.clone();
            assert_eq!(k.open(5, &aad, &mut copy), Ok(1200));
            assert_eq!(&copy[..1200], &[0xA5u8; 1200][..]);
            // Same key bytes, the other cipher: refused.
            let other = match cipher {
                Cipher::ChaCha20Poly1305 => Cipher::Aes256Gcm,
                _ => Cipher::ChaCha20Poly1305,
            };
            let mut copy = buf.clone();
            assert_eq!(
                PacketKey::with_cipher(other, &key, 7).open(5, &aad, &mut copy),
                Err(AuthError)
            );
            // Another counter: refused.
            let mut copy = buf.clone();
            assert_eq!(k.open(6, &aad, &mut copy), Err(AuthError));
        }
        assert_eq!(PacketKey::new(&key, 7).cipher(), Cipher::ChaCha20Poly1305);
        assert_eq!(Cipher::ChaCha20Poly1305.header_flag(), 0);
        assert_eq!(Cipher::Aes256Gcm.header_flag(), 0x40);
        assert_eq!(Cipher::Aes256Gcm.name(), "aes-256-gcm");
        assert_eq!(Cipher::ChaCha20Poly1305.name(), "chacha20-poly1305");
    }
}
