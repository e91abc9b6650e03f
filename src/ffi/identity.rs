//! `net_identity_*`: entity keypair handles.

use super::bytes::net_bytes_t;
use super::export::ffi_export;
use super::handle::{self, HandleInner, opaque_handle};
use super::status::net_status_t;
use crate::identity::{
    EntityId, EntityKeypair, PUBLIC_KEY_LEN, SEED_LEN, SIGNATURE_LEN, Signature,
};

/// An entity identity: an ed25519 keypair, or only its public key.
/// Thread-safe; release with `net_identity_free`.
#[allow(non_camel_case_types)]
pub struct net_identity_t {
    _opaque: [u8; 0],
}

impl HandleInner for EntityKeypair {}
opaque_handle!(net_identity_t => EntityKeypair, kind = b"NIDT");

/// Length of an ed25519 seed.
pub const NET_SEED_LEN: usize = 32;
/// Length of an ed25519 public key (and entity id).
pub const NET_PUBLIC_KEY_LEN: usize = 32;
/// Length of an ed25519 signature.
pub const NET_SIGNATURE_LEN: usize = 64;

/// Creates an identity from 32 bytes of OS randomness.
///
/// # Safety
/// `out` must be valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_identity_generate(out: *mut *mut net_identity_t) -> net_status_t {
    ffi_export!(out out; {
        out.write(handle::into_raw(EntityKeypair::generate()));
        Ok(())
    })
}

/// Creates an identity from its 32-byte seed (RFC 8032 derivation).
///
/// Errors: `NET_ERR_INVALID_ARGUMENT` unless `seed_len` is 32.
///
/// # Safety
/// `seed` is readable for `seed_len` bytes; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_identity_from_seed(
    seed: *const u8,
    seed_len: usize,
    out: *mut *mut net_identity_t,
) -> net_status_t {
    ffi_export!(array seed[seed_len] SEED_LEN; out out; {
        out.write(handle::into_raw(EntityKeypair::from_seed(seed)));
        Ok(())
    })
}

/// Creates a read-only identity from a 32-byte public key: it can verify,
/// but signing, issuing and sealing fail with `NET_ERR_READ_ONLY`.
///
/// Errors: `NET_ERR_INVALID_ARGUMENT` unless 32 bytes;
/// `NET_ERR_INVALID_PUBLIC_KEY` if not a curve point.
///
/// # Safety
/// `public_key` is readable for `public_key_len` bytes; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_identity_from_public_key(
    public_key: *const u8,
    public_key_len: usize,
    out: *mut *mut net_identity_t,
) -> net_status_t {
    ffi_export!(array public_key[public_key_len] PUBLIC_KEY_LEN; out out; {
        let keypair = EntityKeypair::public_only(EntityId::from_bytes(*public_key))?;
        out.write(handle::into_raw(keypair));
        Ok(())
    })
}

/// A new, independent handle for the same identity (free each one
/// separately). Lets an identity be handed to another thread or owner without
/// copying its seed through foreign memory.
///
/// # Safety
/// `identity` is NULL or from libnet; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_identity_clone(
    identity: *const net_identity_t,
    out: *mut *mut net_identity_t,
) -> net_status_t {
    ffi_export!(handle identity; out out; {
        out.write(handle::into_raw(identity.clone()));
        Ok(())
    })
}

/// Frees an identity. NULL-safe and idempotent; waits up to 5 s for calls
/// in flight on other threads, after which calls return `NET_ERR_SHUTTING_DOWN`.
///
/// Returns `NET_OK` (also for NULL or a handle already freed), or
/// `NET_ERR_BUSY` when calls on it were still running after 5 s (its
/// resources are then leaked rather than freed under them; also logged).
///
/// # Safety
/// `identity` is NULL or was returned by libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_identity_free(identity: *mut net_identity_t) -> net_status_t {
    super::export::run(|| handle::free(identity))
}

/// The 32-byte ed25519 public key.
///
/// # Safety
/// `identity` is NULL or from libnet; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_identity_public_key(
    identity: *const net_identity_t,
    out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle identity; out out; {
        out.write(net_bytes_t::from_slice(identity.public_key()));
        Ok(())
    })
}

/// The 32-byte entity id. By definition (IDENTITY.md §1) the same bytes as
/// the public key; offered under its own name because the entity id is what
/// applications key their maps by.
///
/// # Safety
/// `identity` is NULL or from libnet; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_identity_entity_id(
    identity: *const net_identity_t,
    out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle identity; out out; {
        out.write(net_bytes_t::from_slice(identity.entity_id().as_bytes()));
        Ok(())
    })
}

/// The 32-byte seed (the secret). Release the buffer promptly with
/// `net_bytes_free`, which zeroes it.
///
/// Errors: `NET_ERR_READ_ONLY` for a public-key-only identity.
///
/// # Safety
/// `identity` is NULL or from libnet; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_identity_seed(
    identity: *const net_identity_t,
    out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle identity; out out; {
        let seed = identity.seed()?;
        out.write(net_bytes_t::from_slice(seed.as_ref()));
        Ok(())
    })
}

/// Whether the identity is public-key-only.
///
/// # Safety
/// `identity` is NULL or from libnet; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_identity_is_read_only(
    identity: *const net_identity_t,
    out: *mut bool,
) -> net_status_t {
    ffi_export!(handle identity; out out; {
        out.write(identity.is_read_only());
        Ok(())
    })
}

/// The 64-bit `origin_hash` (application event origin).
///
/// # Safety
/// `identity` is NULL or from libnet; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_identity_origin_hash(
    identity: *const net_identity_t,
    out: *mut u64,
) -> net_status_t {
    ffi_export!(handle identity; out out; {
        out.write(identity.origin_hash());
        Ok(())
    })
}

/// The 64-bit `node_id` (mesh peer identity).
///
/// # Safety
/// `identity` is NULL or from libnet; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_identity_node_id(
    identity: *const net_identity_t,
    out: *mut u64,
) -> net_status_t {
    ffi_export!(handle identity; out out; {
        out.write(identity.node_id());
        Ok(())
    })
}

/// Signs `message` (deterministic ed25519); writes the 64-byte signature.
///
/// Errors: `NET_ERR_READ_ONLY` for a public-key-only identity.
///
/// # Safety
/// `identity` is NULL or from libnet; `message` is readable for
/// `message_len` bytes; `signature_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_identity_sign(
    identity: *const net_identity_t,
    message: *const u8,
    message_len: usize,
    signature_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle identity; bytes message[message_len]; out signature_out; {
        let signature = identity.sign(message)?;
        signature_out.write(net_bytes_t::from_slice(&signature.0));
        Ok(())
    })
}

/// Strictly verifies a 64-byte signature over `message` with this identity's
/// public key. Returns `NET_OK` when it verifies.
///
/// Errors: `NET_ERR_INVALID_SIGNATURE` when it does not;
/// `NET_ERR_INVALID_ARGUMENT` unless `signature_len` is 64.
///
/// # Safety
/// `identity` is NULL or from libnet; the buffers are readable for their lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_identity_verify(
    identity: *const net_identity_t,
    message: *const u8,
    message_len: usize,
    signature: *const u8,
    signature_len: usize,
) -> net_status_t {
    ffi_export!(handle identity; bytes message[message_len]; array signature[signature_len] SIGNATURE_LEN; {
        identity.verify(message, &Signature(*signature))?;
        Ok(())
    })
}
