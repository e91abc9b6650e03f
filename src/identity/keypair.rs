//! Ed25519 entity keypairs, entity ids and strict signature verification
//! (IDENTITY.md §1–2).

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use super::derived::{node_id_of, origin_hash_of};

/// Length of an Ed25519 seed (the secret), in bytes.
pub const SEED_LEN: usize = 32;
/// Length of an Ed25519 public key, and therefore of an [`EntityId`], in bytes.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature (R ‖ S), in bytes.
pub const SIGNATURE_LEN: usize = 64;

/// Errors from keypair operations and signature verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The keypair holds only a public key, so it cannot sign. Build it from a
    /// seed (or generate one) to sign.
    #[error("keypair is public-only (read-only) and cannot sign")]
    ReadOnly,
    /// The 32 bytes are not the encoding of a point on the curve, so nothing
    /// can be verified against them.
    #[error("public key is not a valid ed25519 point")]
    InvalidPublicKey,
    /// The signature does not verify under the strict rules of IDENTITY.md §1.
    #[error("signature does not verify")]
    InvalidSignature,
    /// An input had the wrong length (seed, key or signature).
    #[error("{what} must be {expected} bytes, got {actual}")]
    InvalidLength {
        /// What was being parsed.
        what: &'static str,
        /// The required length.
        expected: usize,
        /// The length supplied.
        actual: usize,
    },
}

/// A 64-byte Ed25519 signature, `R ‖ S`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; SIGNATURE_LEN]);

impl Signature {
    /// Parses a signature from exactly 64 bytes.
    ///
    /// # Errors
    /// [`IdentityError::InvalidLength`] for any other length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, IdentityError> {
        let array: [u8; SIGNATURE_LEN] =
            bytes.try_into().map_err(|_| IdentityError::InvalidLength {
                what: "signature",
                expected: SIGNATURE_LEN,
                actual: bytes.len(),
            })?;
        Ok(Self(array))
    }

    /// The raw bytes.
    pub fn to_bytes(&self) -> [u8; SIGNATURE_LEN] {
        self.0
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", hex_string(&self.0))
    }
}

/// An entity's identity: its 32-byte Ed25519 public key.
///
/// An `EntityId` is plain bytes received from peers, so it may not be a valid
/// curve point; [`EntityId::verify`] reports that as
/// [`IdentityError::InvalidPublicKey`]. The derived identifiers
/// ([`origin_hash`](Self::origin_hash), [`node_id`](Self::node_id)) are defined
/// for any 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityId([u8; PUBLIC_KEY_LEN]);

impl EntityId {
    /// Wraps 32 public-key bytes.
    pub const fn from_bytes(bytes: [u8; PUBLIC_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Parses an entity id from exactly 32 bytes (no curve check).
    ///
    /// # Errors
    /// [`IdentityError::InvalidLength`] for any other length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, IdentityError> {
        let array: [u8; PUBLIC_KEY_LEN] =
            bytes.try_into().map_err(|_| IdentityError::InvalidLength {
                what: "public key",
                expected: PUBLIC_KEY_LEN,
                actual: bytes.len(),
            })?;
        Ok(Self(array))
    }

    /// The 32 public-key bytes.
    pub const fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.0
    }

    /// `origin_hash`: the application-level event origin (IDENTITY.md §2).
    pub fn origin_hash(&self) -> u64 {
        origin_hash_of(&self.0)
    }

    /// `node_id`: the mesh peer identity (IDENTITY.md §2).
    pub fn node_id(&self) -> u64 {
        node_id_of(&self.0)
    }

    /// True when the bytes decompress to a curve point usable for verification.
    pub fn is_valid_point(&self) -> bool {
        VerifyingKey::from_bytes(&self.0).is_ok()
    }

    /// Strict Ed25519 verification of `signature` over `message` (the
    /// `verify_strict` rules of IDENTITY.md §1: canonical S, R and A not of
    /// small order, cofactorless equation).
    ///
    /// # Errors
    /// [`IdentityError::InvalidPublicKey`] if the id is not a curve point;
    /// [`IdentityError::InvalidSignature`] if the signature does not verify.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), IdentityError> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| IdentityError::InvalidPublicKey)?;
        let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
        key.verify_strict(message, &signature)
            .map_err(|_| IdentityError::InvalidSignature)
    }

    /// Lowercase hex, the JSON form of an entity id.
    pub fn to_hex(&self) -> String {
        hex_string(&self.0)
    }
}

impl fmt::Debug for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EntityId({})", self.to_hex())
    }
}

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// An entity's Ed25519 keypair, or just its public half.
///
/// Built from a 32-byte seed ([`from_seed`](Self::from_seed)), freshly generated
/// ([`generate`](Self::generate)), or public-only
/// ([`public_only`](Self::public_only)), in which case every signing operation
/// fails with a read-only error. `Debug` never prints the seed.
#[derive(Clone)]
pub struct EntityKeypair {
    signing: Option<SigningKey>,
    /// The decompressed public key, kept so verification skips decompression.
    verifying: VerifyingKey,
    id: EntityId,
}

impl EntityKeypair {
    /// Generates a keypair from 32 bytes of OS randomness.
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        OsRng.fill_bytes(seed.as_mut());
        Self::from_seed(&seed)
    }

    /// Derives the keypair from its seed exactly as RFC 8032 §5.1.5 does.
    pub fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        let signing = SigningKey::from_bytes(seed);
        let verifying = signing.verifying_key();
        Self {
            id: EntityId(verifying.to_bytes()),
            signing: Some(signing),
            verifying,
        }
    }

    /// Like [`from_seed`](Self::from_seed) for a slice.
    ///
    /// # Errors
    /// [`IdentityError::InvalidLength`] unless `seed` is 32 bytes.
    pub fn from_seed_slice(seed: &[u8]) -> Result<Self, IdentityError> {
        let seed: &[u8; SEED_LEN] = seed.try_into().map_err(|_| IdentityError::InvalidLength {
            what: "seed",
            expected: SEED_LEN,
            actual: seed.len(),
        })?;
        Ok(Self::from_seed(seed))
    }

    /// A read-only keypair holding only `id`. It can verify but not sign.
    ///
    /// # Errors
    /// [`IdentityError::InvalidPublicKey`] if `id` is not a curve point: a
    /// keypair that can verify nothing is never useful.
    pub fn public_only(id: EntityId) -> Result<Self, IdentityError> {
        let verifying =
            VerifyingKey::from_bytes(id.as_bytes()).map_err(|_| IdentityError::InvalidPublicKey)?;
        Ok(Self {
            signing: None,
            verifying,
            id,
        })
    }

    /// The entity id (public key).
    pub fn entity_id(&self) -> &EntityId {
        &self.id
    }

    /// The 32-byte public key (identical to the entity id's bytes).
    pub fn public_key(&self) -> &[u8; PUBLIC_KEY_LEN] {
        self.id.as_bytes()
    }

    /// True when this keypair has no seed and cannot sign.
    pub fn is_read_only(&self) -> bool {
        self.signing.is_none()
    }

    /// A copy of the 32-byte seed, zeroed when dropped.
    ///
    /// # Errors
    /// [`IdentityError::ReadOnly`] for a public-only keypair.
    pub fn seed(&self) -> Result<Zeroizing<[u8; SEED_LEN]>, IdentityError> {
        self.signing
            .as_ref()
            .map(|s| Zeroizing::new(s.to_bytes()))
            .ok_or(IdentityError::ReadOnly)
    }

    /// Signs `message` (deterministic Ed25519).
    ///
    /// # Errors
    /// [`IdentityError::ReadOnly`] for a public-only keypair.
    pub fn sign(&self, message: &[u8]) -> Result<Signature, IdentityError> {
        let signing = self.signing.as_ref().ok_or(IdentityError::ReadOnly)?;
        Ok(Signature(signing.sign(message).to_bytes()))
    }

    /// Strictly verifies `signature` over `message` against this public key.
    ///
    /// # Errors
    /// See [`EntityId::verify`].
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), IdentityError> {
        let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
        self.verifying
            .verify_strict(message, &signature)
            .map_err(|_| IdentityError::InvalidSignature)
    }

    /// `origin_hash` of the public key.
    pub fn origin_hash(&self) -> u64 {
        self.id.origin_hash()
    }

    /// `node_id` of the public key.
    pub fn node_id(&self) -> u64 {
        self.id.node_id()
    }
}

impl fmt::Debug for EntityKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntityKeypair")
            .field("id", &self.id)
            .field("read_only", &self.is_read_only())
            .finish()
    }
}

pub(crate) fn hex_string(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
