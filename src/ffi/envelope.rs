//! `net_envelope_*`: sealing an identity to a recipient's X25519 key.

use super::bytes::net_bytes_t;
use super::export::ffi_export;
use super::handle;
use super::identity::net_identity_t;
use super::status::net_status_t;
use crate::identity::{
    CHAIN_LINK_LEN, EntityId, IdentityEnvelope, PUBLIC_KEY_LEN, X25519_KEY_LEN, x25519_public_key,
};

/// Size of a serialized identity envelope (version 1).
pub const NET_ENVELOPE_SIZE: usize = 209;
/// Size of the chain link (a serialized CausalLink) an envelope is bound to.
pub const NET_CHAIN_LINK_LEN: usize = 32;
/// Size of an X25519 key, secret or public.
pub const NET_X25519_KEY_LEN: usize = 32;

/// Seals `source`'s seed to the recipient's X25519 public key, bound to the
/// 32-byte `chain_link`, with a fresh ephemeral key; writes the 209 bytes.
///
/// Errors: `NET_ERR_READ_ONLY` when `source` has no secret key.
///
/// # Safety
/// `source` is NULL or from libnet; the buffers are readable for their
/// lengths; `envelope_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_envelope_seal(
    source: *const net_identity_t,
    target_public_key: *const u8,
    target_public_key_len: usize,
    chain_link: *const u8,
    chain_link_len: usize,
    envelope_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(
        handle source;
        array target_public_key[target_public_key_len] X25519_KEY_LEN;
        array chain_link[chain_link_len] CHAIN_LINK_LEN;
        out envelope_out;
    {
        let envelope = IdentityEnvelope::seal(source, target_public_key, chain_link)?;
        envelope_out.write(net_bytes_t::from_slice(&envelope.to_bytes()));
        Ok(())
    })
}

/// Opens an envelope with the recipient's X25519 secret and the same chain
/// link, and returns the sealed identity as a new handle. When
/// `expected_signer` is non-NULL (32 bytes) the envelope must be from it.
///
/// Errors: `NET_ERR_ENVELOPE_UNKNOWN_VERSION` (checked first, before any
/// cryptography), `NET_ERR_ENVELOPE_INVALID_LENGTH`,
/// `NET_ERR_ENVELOPE_INVALID_SIGNER_KEY`, `NET_ERR_ENVELOPE_INVALID_ATTESTATION`,
/// `NET_ERR_ENVELOPE_SEAL_OPEN_FAILED`.
///
/// # Safety
/// The buffers are readable for their lengths (`expected_signer` may be
/// NULL); `identity_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_envelope_open(
    envelope: *const u8,
    envelope_len: usize,
    target_secret_key: *const u8,
    target_secret_key_len: usize,
    chain_link: *const u8,
    chain_link_len: usize,
    expected_signer: *const u8,
    expected_signer_len: usize,
    identity_out: *mut *mut net_identity_t,
) -> net_status_t {
    ffi_export!(
        bytes envelope[envelope_len];
        array target_secret_key[target_secret_key_len] X25519_KEY_LEN;
        array chain_link[chain_link_len] CHAIN_LINK_LEN;
        opt_array expected_signer[expected_signer_len] PUBLIC_KEY_LEN;
        out identity_out;
    {
        let envelope = IdentityEnvelope::from_bytes(envelope)?;
        let expected = expected_signer.map(|key| EntityId::from_bytes(*key));
        let keypair = envelope.open(target_secret_key, chain_link, expected.as_ref())?;
        identity_out.write(handle::into_raw(keypair));
        Ok(())
    })
}

/// The X25519 public key of a 32-byte secret (for envelope recipients).
///
/// # Safety
/// `secret_key` is readable for `secret_key_len` bytes; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_x25519_public_key(
    secret_key: *const u8,
    secret_key_len: usize,
    out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(array secret_key[secret_key_len] X25519_KEY_LEN; out out; {
        out.write(net_bytes_t::from_slice(&x25519_public_key(secret_key)));
        Ok(())
    })
}
