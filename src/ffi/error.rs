//! `FfiError` (a status plus a message) and the thread-local last error that
//! `net_last_error_message()` reports.

use std::cell::RefCell;
use std::ffi::{CString, c_char};

use super::status::net_status_t;
use crate::identity::{ChannelNameError, EnvelopeError, IdentityError, TokenError};
use crate::redex::RedexError;

/// A failed FFI call: the status to return and the detail to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FfiError {
    pub(crate) status: net_status_t,
    pub(crate) message: String,
}

impl FfiError {
    pub(crate) fn new(status: net_status_t, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(net_status_t::NET_ERR_INVALID_ARGUMENT, message)
    }
}

impl From<IdentityError> for FfiError {
    fn from(err: IdentityError) -> Self {
        let status = match err {
            IdentityError::ReadOnly => net_status_t::NET_ERR_READ_ONLY,
            IdentityError::InvalidPublicKey => net_status_t::NET_ERR_INVALID_PUBLIC_KEY,
            IdentityError::InvalidSignature => net_status_t::NET_ERR_INVALID_SIGNATURE,
            IdentityError::InvalidLength { .. } => net_status_t::NET_ERR_INVALID_ARGUMENT,
        };
        Self::new(status, err.to_string())
    }
}

impl From<TokenError> for FfiError {
    fn from(err: TokenError) -> Self {
        let status = match err {
            TokenError::InvalidSignature => net_status_t::NET_ERR_TOKEN_INVALID_SIGNATURE,
            TokenError::NotYetValid => net_status_t::NET_ERR_TOKEN_NOT_YET_VALID,
            TokenError::Expired => net_status_t::NET_ERR_TOKEN_EXPIRED,
            TokenError::DelegationExhausted => net_status_t::NET_ERR_TOKEN_DELEGATION_EXHAUSTED,
            TokenError::DelegationNotAllowed => net_status_t::NET_ERR_TOKEN_DELEGATION_NOT_ALLOWED,
            TokenError::NotAuthorized => net_status_t::NET_ERR_TOKEN_NOT_AUTHORIZED,
            TokenError::InvalidFormat => net_status_t::NET_ERR_TOKEN_INVALID_FORMAT,
            TokenError::ReadOnly => net_status_t::NET_ERR_READ_ONLY,
            TokenError::ZeroTtl => net_status_t::NET_ERR_TOKEN_ZERO_TTL,
        };
        Self::new(status, err.to_string())
    }
}

impl From<EnvelopeError> for FfiError {
    fn from(err: EnvelopeError) -> Self {
        let status = match err {
            EnvelopeError::InvalidAttestation => net_status_t::NET_ERR_ENVELOPE_INVALID_ATTESTATION,
            EnvelopeError::SealOpenFailed => net_status_t::NET_ERR_ENVELOPE_SEAL_OPEN_FAILED,
            EnvelopeError::OriginHashMismatch => {
                net_status_t::NET_ERR_ENVELOPE_ORIGIN_HASH_MISMATCH
            }
            EnvelopeError::InvalidSignerKey => net_status_t::NET_ERR_ENVELOPE_INVALID_SIGNER_KEY,
            EnvelopeError::SourceReadOnly => net_status_t::NET_ERR_READ_ONLY,
            EnvelopeError::UnknownVersion(_) => net_status_t::NET_ERR_ENVELOPE_UNKNOWN_VERSION,
            EnvelopeError::InvalidLength(_) => net_status_t::NET_ERR_ENVELOPE_INVALID_LENGTH,
        };
        Self::new(status, err.to_string())
    }
}

impl From<ChannelNameError> for FfiError {
    fn from(err: ChannelNameError) -> Self {
        Self::new(net_status_t::NET_ERR_CHANNEL_INVALID_NAME, err.to_string())
    }
}

impl From<RedexError> for FfiError {
    fn from(err: RedexError) -> Self {
        let status = match &err {
            RedexError::Io { .. } => net_status_t::NET_ERR_REDEX_IO,
            RedexError::Poisoned(_) => net_status_t::NET_ERR_REDEX_POISONED,
            RedexError::SyncFailed { .. } => net_status_t::NET_ERR_REDEX_SYNC_FAILED,
            RedexError::Locked(_) => net_status_t::NET_ERR_REDEX_LOCKED,
            RedexError::Closed => net_status_t::NET_ERR_REDEX_CLOSED,
            RedexError::InvalidChannel(_) => net_status_t::NET_ERR_CHANNEL_INVALID_NAME,
            RedexError::InvalidConfig(_) => net_status_t::NET_ERR_REDEX_INVALID_CONFIG,
            RedexError::InlineLength(_) => net_status_t::NET_ERR_REDEX_INLINE_LENGTH,
            RedexError::InlineFlagOnHeap | RedexError::Codec { .. } => {
                net_status_t::NET_ERR_INTERNAL
            }
            RedexError::OffsetOverflow { .. } | RedexError::HeapFull { .. } => {
                net_status_t::NET_ERR_REDEX_TOO_LARGE
            }
            RedexError::GenerationOverflow => net_status_t::NET_ERR_REDEX_GENERATION_OVERFLOW,
            RedexError::NoPersistentDir(_) => net_status_t::NET_ERR_REDEX_NO_PERSISTENT_DIR,
            RedexError::Corrupt { .. } => net_status_t::NET_ERR_REDEX_CORRUPT,
            RedexError::SeqExhausted { .. } => net_status_t::NET_ERR_REDEX_SEQ_EXHAUSTED,
        };
        // Include the source chain: the storage error names the path.
        let mut message = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        Self::new(status, message)
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records `message` as this thread's last error. During thread teardown
/// (the thread-local already destroyed) the message is dropped rather than
/// panicking across the C boundary.
pub(crate) fn set_last_error(message: &str) {
    // Interior NULs would truncate the C string; show them instead.
    let clean = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = clean);
}

/// This thread's last error message, as text.
pub(crate) fn last_error_text() -> String {
    LAST_ERROR
        .try_with(|slot| slot.borrow().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The detail of the last failed call on the calling thread, as UTF-8.
///
/// Never NULL: an empty string when no call on this thread has failed. The
/// pointer stays valid until the next failing `net_*` call on the same thread;
/// copy the text if you need it longer.
#[unsafe(no_mangle)]
pub extern "C" fn net_last_error_message() -> *const c_char {
    LAST_ERROR
        .try_with(|slot| slot.borrow().as_ptr())
        .unwrap_or(c"".as_ptr())
}
