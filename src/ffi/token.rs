//! `net_token_*`: permission tokens, which cross the ABI as their 159 bytes.

use std::time::Duration;

use super::bytes::net_bytes_t;
use super::export::ffi_export;
use super::identity::net_identity_t;
use super::status::net_status_t;
use crate::identity::{EntityId, PUBLIC_KEY_LEN, PermissionToken, TokenScope};

/// Size of a serialized permission token.
pub const NET_TOKEN_SIZE: usize = 159;
/// Scope bit: publish on the channel.
pub const NET_SCOPE_PUBLISH: u32 = 0x01;
/// Scope bit: subscribe to the channel.
pub const NET_SCOPE_SUBSCRIBE: u32 = 0x02;
/// Scope bit: administer the channel.
pub const NET_SCOPE_ADMIN: u32 = 0x04;
/// Scope bit: delegate the token.
pub const NET_SCOPE_DELEGATE: u32 = 0x08;
/// Scope bit: valid on every channel (never implied).
pub const NET_SCOPE_WILDCARD: u32 = 0x10;
/// PUBLISH | SUBSCRIBE | ADMIN | DELEGATE.
pub const NET_SCOPE_ALL: u32 = 0x0F;

/// The fields of a parsed token.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct net_token_info_t {
    /// Public key of the signer.
    pub issuer: [u8; 32],
    /// Public key of the authorised entity.
    pub subject: [u8; 32],
    /// Scope bits (`NET_SCOPE_*`).
    pub scope: u32,
    /// Channel hash the token is for (ignored with `NET_SCOPE_WILDCARD`).
    pub channel_hash: u16,
    /// Remaining delegation depth.
    pub delegation_depth: u8,
    /// Always 0; makes the padding before `not_before` explicit so every
    /// binding lays the struct out the same way (96 bytes).
    pub reserved: u8,
    /// First live second (UNIX).
    pub not_before: u64,
    /// First expired second (UNIX).
    pub not_after: u64,
    /// Random nonce.
    pub nonce: u64,
}

fn parse(bytes: &[u8]) -> Result<PermissionToken, super::error::FfiError> {
    Ok(PermissionToken::from_bytes(bytes)?)
}

/// Issues a token from `issuer` to `subject` (32-byte public key) for
/// `ttl_secs` seconds from now, with a random nonce; writes its 159 bytes.
///
/// Errors: `NET_ERR_TOKEN_ZERO_TTL` when `ttl_secs` is 0; `NET_ERR_READ_ONLY`
/// when the issuer has no secret key.
///
/// # Safety
/// `issuer` is NULL or from libnet; `subject` is readable for `subject_len`
/// bytes; `token_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_token_issue(
    issuer: *const net_identity_t,
    subject: *const u8,
    subject_len: usize,
    scope: u32,
    channel_hash: u16,
    ttl_secs: u64,
    delegation_depth: u8,
    token_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle issuer; array subject[subject_len] PUBLIC_KEY_LEN; out token_out; {
        let token = PermissionToken::try_issue(
            issuer,
            EntityId::from_bytes(*subject),
            TokenScope(scope),
            channel_hash,
            Duration::from_secs(ttl_secs),
            delegation_depth,
        )?;
        token_out.write(net_bytes_t::from_slice(&token.to_bytes()));
        Ok(())
    })
}

/// Parses a token's fields. Does not verify it.
///
/// Errors: `NET_ERR_TOKEN_INVALID_FORMAT` unless exactly 159 bytes.
///
/// # Safety
/// `token` is readable for `token_len` bytes; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_token_parse(
    token: *const u8,
    token_len: usize,
    out: *mut net_token_info_t,
) -> net_status_t {
    ffi_export!(bytes token[token_len]; out out; {
        let token = parse(token)?;
        let claims = token.claims();
        out.write(net_token_info_t {
            issuer: *token.issuer().as_bytes(),
            subject: *claims.subject.as_bytes(),
            scope: claims.scope.bits(),
            channel_hash: claims.channel_hash,
            delegation_depth: claims.delegation_depth,
            reserved: 0,
            not_before: claims.not_before,
            not_after: claims.not_after,
            nonce: claims.nonce,
        });
        Ok(())
    })
}

/// Verifies the token's signature (no time check). `NET_OK` if it verifies.
///
/// Errors: `NET_ERR_TOKEN_INVALID_SIGNATURE`; `NET_ERR_TOKEN_INVALID_FORMAT`.
///
/// # Safety
/// `token` is readable for `token_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_token_verify(token: *const u8, token_len: usize) -> net_status_t {
    ffi_export!(bytes token[token_len]; {
        parse(token)?.verify()?;
        Ok(())
    })
}

/// Verifies the signature, then checks `not_before <= now < not_after` at
/// the current time. `NET_OK` if the token is valid now.
///
/// Errors, in order: `NET_ERR_TOKEN_INVALID_FORMAT`,
/// `NET_ERR_TOKEN_INVALID_SIGNATURE`, `NET_ERR_TOKEN_NOT_YET_VALID`,
/// `NET_ERR_TOKEN_EXPIRED`.
///
/// # Safety
/// `token` is readable for `token_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_token_is_valid(token: *const u8, token_len: usize) -> net_status_t {
    ffi_export!(bytes token[token_len]; {
        parse(token)?.is_valid()?;
        Ok(())
    })
}

/// `net_token_is_valid` at `now_unix_secs` instead of the current time.
///
/// # Safety
/// `token` is readable for `token_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_token_is_valid_at(
    token: *const u8,
    token_len: usize,
    now_unix_secs: u64,
) -> net_status_t {
    ffi_export!(bytes token[token_len]; {
        parse(token)?.is_valid_at(now_unix_secs)?;
        Ok(())
    })
}

/// Whether the token has expired (`now >= not_after`); no signature check.
///
/// # Safety
/// `token` is readable for `token_len` bytes; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_token_is_expired(
    token: *const u8,
    token_len: usize,
    out: *mut bool,
) -> net_status_t {
    ffi_export!(bytes token[token_len]; out out; {
        out.write(parse(token)?.is_expired());
        Ok(())
    })
}

/// `net_token_is_expired` at `now_unix_secs` instead of the current time.
///
/// # Safety
/// `token` is readable for `token_len` bytes; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_token_is_expired_at(
    token: *const u8,
    token_len: usize,
    now_unix_secs: u64,
    out: *mut bool,
) -> net_status_t {
    ffi_export!(bytes token[token_len]; out out; {
        out.write(parse(token)?.is_expired_at(now_unix_secs));
        Ok(())
    })
}

/// Whether the token's scope covers `action` (`NET_SCOPE_*` bits) on
/// `channel_hash`. Validity is checked separately.
///
/// # Safety
/// `token` is readable for `token_len` bytes; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_token_authorizes(
    token: *const u8,
    token_len: usize,
    action: u32,
    channel_hash: u16,
    out: *mut bool,
) -> net_status_t {
    ffi_export!(bytes token[token_len]; out out; {
        out.write(parse(token)?.authorizes(TokenScope(action), channel_hash));
        Ok(())
    })
}

/// Delegates `parent` to `new_subject` (32-byte public key) with
/// `requested_scope` narrowed by the parent's scope, signed by `signer`, who
/// must be the parent's subject. Writes the child's 159 bytes.
///
/// Errors, in order: the parent's validity errors,
/// `NET_ERR_TOKEN_DELEGATION_EXHAUSTED`, `NET_ERR_TOKEN_DELEGATION_NOT_ALLOWED`,
/// `NET_ERR_TOKEN_NOT_AUTHORIZED`, `NET_ERR_READ_ONLY`.
///
/// # Safety
/// `signer` is NULL or from libnet; the buffers are readable for their
/// lengths; `token_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_token_delegate(
    signer: *const net_identity_t,
    parent: *const u8,
    parent_len: usize,
    new_subject: *const u8,
    new_subject_len: usize,
    requested_scope: u32,
    token_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle signer; bytes parent[parent_len]; array new_subject[new_subject_len] PUBLIC_KEY_LEN; out token_out; {
        let child = parse(parent)?.delegate(
            signer,
            EntityId::from_bytes(*new_subject),
            TokenScope(requested_scope),
        )?;
        token_out.write(net_bytes_t::from_slice(&child.to_bytes()));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::net_token_info_t;
    use std::mem::{offset_of, size_of};

    #[test]
    fn token_info_layout_has_no_implicit_padding() {
        assert_eq!(offset_of!(net_token_info_t, scope), 64);
        assert_eq!(offset_of!(net_token_info_t, channel_hash), 68);
        assert_eq!(offset_of!(net_token_info_t, delegation_depth), 70);
        assert_eq!(offset_of!(net_token_info_t, reserved), 71);
        assert_eq!(offset_of!(net_token_info_t, not_before), 72);
        assert_eq!(offset_of!(net_token_info_t, nonce), 88);
        assert_eq!(size_of::<net_token_info_t>(), 96);
    }
}
