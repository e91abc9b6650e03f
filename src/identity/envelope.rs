//! IdentityEnvelope v1: an entity's seed sealed to a recipient's X25519 key and
//! attested by the entity itself (IDENTITY.md §5).

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::OsRng;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::derived::keyed_blake2s;
use super::keypair::{EntityId, EntityKeypair, SEED_LEN, SIGNATURE_LEN, Signature};

/// The only envelope version this crate reads or writes.
pub const IDENTITY_ENVELOPE_VERSION: u8 = 1;
/// Serialized size of a v1 envelope.
pub const IDENTITY_ENVELOPE_SIZE: usize = 209;
/// Size of the chain link (a serialized CausalLink, STORAGE.md §14) that binds
/// an envelope to its migration point.
pub const CHAIN_LINK_LEN: usize = 32;
/// X25519 key length (secret and public).
pub const X25519_KEY_LEN: usize = 32;

/// BLAKE2s key deriving the AEAD key from the X25519 shared secret.
pub const ENVELOPE_KEY_LABEL: &[u8] = b"net-identity-envelope";
/// BLAKE2s key deriving the XChaCha20 nonce from the two public keys.
pub const ENVELOPE_NONCE_LABEL: &[u8] = b"net-identity-nonce";

const CIPHERTEXT_LEN: usize = SEED_LEN + 16;

mod offset {
    pub const VERSION: usize = 0;
    pub const TARGET_STATIC_PUB: usize = 1;
    pub const EPHEMERAL_PUB: usize = 33;
    pub const CIPHERTEXT: usize = 65;
    pub const SIGNER_PUB: usize = 113;
    pub const SIGNATURE: usize = 145;
}

/// Why an envelope could not be parsed, sealed or opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The attestation signature does not verify, or the decrypted seed does
    /// not belong to the claimed signer. The envelope was tampered with or
    /// is bound to a different chain link.
    #[error("envelope attestation is invalid")]
    InvalidAttestation,
    /// Decryption failed: wrong recipient key, or altered ciphertext.
    #[error("envelope could not be opened with this key")]
    SealOpenFailed,
    /// The opened identity's origin hash is not the one the caller expected.
    /// Raised by callers that check it, never by [`IdentityEnvelope::open`].
    #[error("opened identity has an unexpected origin hash")]
    OriginHashMismatch,
    /// The signer key is not the expected one or is not a curve point.
    #[error("envelope signer key is invalid or unexpected")]
    InvalidSignerKey,
    /// Sealing needs the source's seed, and the keypair is public-only.
    #[error("source keypair is public-only and cannot be sealed")]
    SourceReadOnly,
    /// The leading version byte is not 1. Rejected before any cryptography.
    #[error("unknown envelope version {0}")]
    UnknownVersion(u8),
    /// The bytes are not exactly 209 long (or are empty).
    #[error("envelope must be exactly 209 bytes, got {0}")]
    InvalidLength(usize),
}

/// A sealed, attested identity.
#[derive(Clone, PartialEq, Eq)]
pub struct IdentityEnvelope {
    target_static_pub: [u8; X25519_KEY_LEN],
    ephemeral_pub: [u8; X25519_KEY_LEN],
    ciphertext: [u8; CIPHERTEXT_LEN],
    signer: EntityId,
    signature: Signature,
}

/// The X25519 public key of a 32-byte secret (clamped as X25519 does).
pub fn x25519_public_key(secret: &[u8; X25519_KEY_LEN]) -> [u8; X25519_KEY_LEN] {
    PublicKey::from(&StaticSecret::from(*secret)).to_bytes()
}

fn derive_key_and_nonce(
    shared: &[u8; 32],
    ephemeral_pub: &[u8; 32],
    target_pub: &[u8; 32],
) -> (Zeroizing<[u8; 32]>, XNonce) {
    let key = Zeroizing::new(keyed_blake2s(ENVELOPE_KEY_LABEL, &[shared]));
    let nonce_material = keyed_blake2s(ENVELOPE_NONCE_LABEL, &[ephemeral_pub, target_pub]);
    (key, *XNonce::from_slice(&nonce_material[..24]))
}

fn attestation_transcript(target_pub: &[u8; 32], chain_link: &[u8; CHAIN_LINK_LEN]) -> [u8; 64] {
    let mut transcript = [0u8; 64];
    transcript[..32].copy_from_slice(target_pub);
    transcript[32..].copy_from_slice(chain_link);
    transcript
}

impl IdentityEnvelope {
    /// Seals `source`'s seed to `target_static_pub`, bound to `chain_link`,
    /// with a fresh random ephemeral key.
    ///
    /// # Errors
    /// [`EnvelopeError::SourceReadOnly`] if `source` has no seed.
    pub fn seal(
        source: &EntityKeypair,
        target_static_pub: &[u8; X25519_KEY_LEN],
        chain_link: &[u8; CHAIN_LINK_LEN],
    ) -> Result<Self, EnvelopeError> {
        let ephemeral = StaticSecret::random_from_rng(OsRng);
        Self::seal_with_ephemeral(source, target_static_pub, chain_link, &ephemeral.to_bytes())
    }

    /// [`seal`](Self::seal) with a caller-chosen ephemeral secret. Exists so
    /// that test vectors can be reproduced; reusing an ephemeral secret across
    /// envelopes reuses the AEAD key and nonce, so production code must call
    /// [`seal`](Self::seal).
    ///
    /// # Errors
    /// [`EnvelopeError::SourceReadOnly`] if `source` has no seed.
    pub fn seal_with_ephemeral(
        source: &EntityKeypair,
        target_static_pub: &[u8; X25519_KEY_LEN],
        chain_link: &[u8; CHAIN_LINK_LEN],
        ephemeral_secret: &[u8; X25519_KEY_LEN],
    ) -> Result<Self, EnvelopeError> {
        let seed = source.seed().map_err(|_| EnvelopeError::SourceReadOnly)?;
        let ephemeral = StaticSecret::from(*ephemeral_secret);
        let ephemeral_pub = PublicKey::from(&ephemeral).to_bytes();
        let shared = Zeroizing::new(
            ephemeral
                .diffie_hellman(&PublicKey::from(*target_static_pub))
                .to_bytes(),
        );
        let (key, nonce) = derive_key_and_nonce(&shared, &ephemeral_pub, target_static_pub);
        let cipher = XChaCha20Poly1305::new(key.as_ref().into());
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: seed.as_ref(),
                    aad: chain_link,
                },
            )
            .map_err(|_| EnvelopeError::SealOpenFailed)?;
        let ciphertext: [u8; CIPHERTEXT_LEN] = sealed
            .as_slice()
            .try_into()
            .map_err(|_| EnvelopeError::SealOpenFailed)?;
        let signature = source
            .sign(&attestation_transcript(target_static_pub, chain_link))
            .map_err(|_| EnvelopeError::SourceReadOnly)?;
        Ok(Self {
            target_static_pub: *target_static_pub,
            ephemeral_pub,
            ciphertext,
            signer: *source.entity_id(),
            signature,
        })
    }

    /// Opens the envelope with the recipient's X25519 secret, checking the
    /// attestation first (IDENTITY.md §5.4). Returns the sealed keypair.
    ///
    /// # Errors
    /// [`EnvelopeError::InvalidSignerKey`] if `expected_signer` is given and
    /// differs, or the signer key is not a curve point;
    /// [`EnvelopeError::InvalidAttestation`] if the signature over
    /// `target ‖ chain_link` fails or the seed does not match the signer;
    /// [`EnvelopeError::SealOpenFailed`] if the envelope is for another key or
    /// the ciphertext was altered.
    pub fn open(
        &self,
        target_secret: &[u8; X25519_KEY_LEN],
        chain_link: &[u8; CHAIN_LINK_LEN],
        expected_signer: Option<&EntityId>,
    ) -> Result<EntityKeypair, EnvelopeError> {
        if expected_signer.is_some_and(|expected| expected != &self.signer) {
            return Err(EnvelopeError::InvalidSignerKey);
        }
        if !self.signer.is_valid_point() {
            return Err(EnvelopeError::InvalidSignerKey);
        }
        self.signer
            .verify(
                &attestation_transcript(&self.target_static_pub, chain_link),
                &self.signature,
            )
            .map_err(|_| EnvelopeError::InvalidAttestation)?;

        let secret = StaticSecret::from(*target_secret);
        if PublicKey::from(&secret).to_bytes() != self.target_static_pub {
            return Err(EnvelopeError::SealOpenFailed);
        }
        let shared = Zeroizing::new(
            secret
                .diffie_hellman(&PublicKey::from(self.ephemeral_pub))
                .to_bytes(),
        );
        let (key, nonce) =
            derive_key_and_nonce(&shared, &self.ephemeral_pub, &self.target_static_pub);
        let cipher = XChaCha20Poly1305::new(key.as_ref().into());
        let plaintext = Zeroizing::new(
            cipher
                .decrypt(
                    &nonce,
                    Payload {
                        msg: &self.ciphertext,
                        aad: chain_link,
                    },
                )
                .map_err(|_| EnvelopeError::SealOpenFailed)?,
        );
        let seed: Zeroizing<[u8; SEED_LEN]> = Zeroizing::new(
            plaintext
                .as_slice()
                .try_into()
                .map_err(|_| EnvelopeError::SealOpenFailed)?,
        );
        let keypair = EntityKeypair::from_seed(&seed);
        if keypair.entity_id() != &self.signer {
            return Err(EnvelopeError::InvalidAttestation);
        }
        Ok(keypair)
    }

    /// Parses a v1 envelope. The version byte is checked first, so an unknown
    /// version is rejected without looking further.
    ///
    /// # Errors
    /// [`EnvelopeError::InvalidLength`] for empty input or a v1 envelope of the
    /// wrong size; [`EnvelopeError::UnknownVersion`] for any leading byte but 1.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let version = *bytes.first().ok_or(EnvelopeError::InvalidLength(0))?;
        if version != IDENTITY_ENVELOPE_VERSION {
            return Err(EnvelopeError::UnknownVersion(version));
        }
        let bytes: &[u8; IDENTITY_ENVELOPE_SIZE] = bytes
            .try_into()
            .map_err(|_| EnvelopeError::InvalidLength(bytes.len()))?;
        let field = |from: usize, to: usize| &bytes[from..to];
        let key = |from: usize| -> [u8; 32] {
            let mut k = [0u8; 32];
            k.copy_from_slice(field(from, from + 32));
            k
        };
        let mut ciphertext = [0u8; CIPHERTEXT_LEN];
        ciphertext.copy_from_slice(field(offset::CIPHERTEXT, offset::SIGNER_PUB));
        let mut signature = [0u8; SIGNATURE_LEN];
        signature.copy_from_slice(field(offset::SIGNATURE, IDENTITY_ENVELOPE_SIZE));
        Ok(Self {
            target_static_pub: key(offset::TARGET_STATIC_PUB),
            ephemeral_pub: key(offset::EPHEMERAL_PUB),
            ciphertext,
            signer: EntityId::from_bytes(key(offset::SIGNER_PUB)),
            signature: Signature(signature),
        })
    }

    /// The 209-byte wire form.
    pub fn to_bytes(&self) -> [u8; IDENTITY_ENVELOPE_SIZE] {
        let mut out = [0u8; IDENTITY_ENVELOPE_SIZE];
        out[offset::VERSION] = IDENTITY_ENVELOPE_VERSION;
        out[offset::TARGET_STATIC_PUB..offset::EPHEMERAL_PUB]
            .copy_from_slice(&self.target_static_pub);
        out[offset::EPHEMERAL_PUB..offset::CIPHERTEXT].copy_from_slice(&self.ephemeral_pub);
        out[offset::CIPHERTEXT..offset::SIGNER_PUB].copy_from_slice(&self.ciphertext);
        out[offset::SIGNER_PUB..offset::SIGNATURE].copy_from_slice(self.signer.as_bytes());
        out[offset::SIGNATURE..].copy_from_slice(&self.signature.0);
        out
    }

    /// The recipient's X25519 public key.
    pub fn target_static_pub(&self) -> &[u8; X25519_KEY_LEN] {
        &self.target_static_pub
    }

    /// The sealed identity's public key.
    pub fn signer(&self) -> &EntityId {
        &self.signer
    }
}

impl fmt::Debug for IdentityEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityEnvelope")
            .field("signer", &self.signer)
            .field(
                "target_static_pub",
                &super::keypair::hex_string(&self.target_static_pub),
            )
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::PUBLIC_KEY_LEN;

    #[test]
    fn layout_offsets_match_the_spec() {
        assert_eq!(offset::VERSION, 0);
        assert_eq!(offset::TARGET_STATIC_PUB, 1);
        assert_eq!(offset::EPHEMERAL_PUB, 33);
        assert_eq!(offset::CIPHERTEXT, 65);
        assert_eq!(offset::SIGNER_PUB, 113);
        assert_eq!(offset::SIGNATURE, 145);
        assert_eq!(offset::SIGNATURE + SIGNATURE_LEN, IDENTITY_ENVELOPE_SIZE);
        assert_eq!(PUBLIC_KEY_LEN, 32);
        assert_eq!(IDENTITY_ENVELOPE_VERSION, 1);
    }

    #[test]
    fn read_only_source_cannot_seal() {
        let full = EntityKeypair::from_seed(&[1; 32]);
        let public = EntityKeypair::public_only(*full.entity_id()).unwrap();
        let err = IdentityEnvelope::seal(&public, &[9; 32], &[0; 32]).unwrap_err();
        assert_eq!(err, EnvelopeError::SourceReadOnly);
    }

    #[test]
    fn expected_signer_mismatch_is_invalid_signer_key() {
        let source = EntityKeypair::from_seed(&[1; 32]);
        let other = EntityKeypair::from_seed(&[2; 32]);
        let secret = [5u8; 32];
        let env = IdentityEnvelope::seal(&source, &x25519_public_key(&secret), &[3; 32]).unwrap();
        assert_eq!(
            env.open(&secret, &[3; 32], Some(other.entity_id()))
                .unwrap_err(),
            EnvelopeError::InvalidSignerKey
        );
        let opened = env
            .open(&secret, &[3; 32], Some(source.entity_id()))
            .unwrap();
        assert_eq!(opened.entity_id(), source.entity_id());
    }
}
