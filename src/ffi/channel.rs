//! `net_channel_*`: channel-name validation and hashing.

use super::export::ffi_export;
use super::status::net_status_t;
use crate::identity::{checked_channel_hash, validate_channel_name};

/// Validates a channel name (UTF-8, `name_len` bytes, no NUL needed).
/// `NET_OK` if valid.
///
/// Errors: `NET_ERR_CHANNEL_INVALID_NAME` naming the rule broken;
/// `NET_ERR_INVALID_ARGUMENT` if not UTF-8.
///
/// # Safety
/// `name` is readable for `name_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_channel_validate(name: *const u8, name_len: usize) -> net_status_t {
    ffi_export!(str name[name_len]; {
        validate_channel_name(name)?;
        Ok(())
    })
}

/// The 16-bit hash of a valid channel name (low 16 bits of XXH3-64).
///
/// Errors: as `net_channel_validate`.
///
/// # Safety
/// `name` is readable for `name_len` bytes; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_channel_hash(
    name: *const u8,
    name_len: usize,
    out: *mut u16,
) -> net_status_t {
    ffi_export!(str name[name_len]; out out; {
        out.write(checked_channel_hash(name)?);
        Ok(())
    })
}
