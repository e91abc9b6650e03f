//! `net_cancel_t` and `net_error_t`: what every blocking call takes besides
//! its own arguments.
//!
//! A blocking call (`_next`, waits, receives, blocking sends, flushes, polls)
//! takes `const net_cancel_t *cancel` and `net_error_t *error_out`, both
//! optional (NULL). Cancelling the token from any thread makes the call
//! return `NET_ERR_CANCELLED` promptly; freeing the handle the call is on
//! makes it return as that call documents (`NET_END` for readers,
//! `NET_ERR_SHUTTING_DOWN` otherwise). When the call fails, its status and
//! message are written to `*error_out` as well as to the thread-local
//! `net_last_error_message`, so a caller that made the call on another thread
//! (an async runtime's worker) still gets the detail.

use super::bytes::net_bytes_t;
use super::export::ffi_export;
use super::handle::{self, HandleInner, opaque_handle};
use super::status::net_status_t;
use crate::cancel::CancelToken;

/// A cancellation token. Make one per call (or per group of calls to stop
/// together), pass it to blocking calls, cancel it from any thread. Freeing
/// it while a call uses it is safe and immediate (the call keeps its own
/// reference; the free does not cancel it).
#[allow(non_camel_case_types)]
pub struct net_cancel_t {
    _opaque: [u8; 0],
}

impl HandleInner for CancelToken {}
opaque_handle!(net_cancel_t => CancelToken, kind = b"NCNL");

/// The error of a failed blocking call, for callers on another thread than
/// the one that made it. Zero it before the call; libnet writes it only when
/// the call fails. Release `message` with `net_error_clear`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct net_error_t {
    /// The status the call returned.
    pub status: net_status_t,
    /// The detail, UTF-8 (the same text as `net_last_error_message`).
    pub message: net_bytes_t,
}

/// Creates a cancellation token, not cancelled.
///
/// # Safety
/// `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_cancel_new(out: *mut *mut net_cancel_t) -> net_status_t {
    ffi_export!(out out; {
        out.write(handle::into_raw(CancelToken::new()));
        Ok(())
    })
}

/// Cancels: every call using this token (now or later) returns
/// `NET_ERR_CANCELLED`. Idempotent; callable from any thread, including a
/// signal-free context such as another language's cancellation callback.
///
/// # Safety
/// `cancel` is NULL or from libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_cancel_cancel(cancel: *const net_cancel_t) -> net_status_t {
    ffi_export!(handle cancel; {
        cancel.cancel();
        Ok(())
    })
}

/// Whether the token has been cancelled.
///
/// # Safety
/// `cancel` is NULL or from libnet; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_cancel_is_cancelled(
    cancel: *const net_cancel_t,
    out: *mut bool,
) -> net_status_t {
    ffi_export!(handle cancel; out out; {
        out.write(cancel.is_cancelled());
        Ok(())
    })
}

/// Frees a token at once and returns `NET_OK` (also for NULL or a token
/// already freed). A call still using it is not affected: it keeps its own
/// reference, and the free does not cancel it.
///
/// # Safety
/// `cancel` is NULL or was returned by libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_cancel_free(cancel: *mut net_cancel_t) -> net_status_t {
    super::export::run(|| handle::free(cancel))
}

/// Releases the message of an error filled by a failed call and zeroes the
/// struct. NULL-safe and idempotent.
///
/// # Safety
/// `error` is NULL or points to a `net_error_t` that is zeroed or was filled
/// by libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_error_clear(error: *mut net_error_t) {
    super::export::guarded((), || {
        if error.is_null() || !error.is_aligned() {
            return;
        }
        // SAFETY: non-NULL and aligned; the caller vouches for the struct.
        let error = unsafe { &mut *error };
        // SAFETY: the message is empty or was allocated by libnet.
        unsafe { super::bytes::net_bytes_free(&mut error.message) };
        error.status = net_status_t::NET_OK;
    });
}

/// The token a blocking call was given, as something to cancel on. The call
/// holds its own reference to the token, not the handle: freeing the
/// `net_cancel_t` while the call waits neither blocks nor cancels it.
pub(crate) struct CallCancel(Option<CancelToken>);

impl CallCancel {
    /// Takes a reference to `cancel`'s token (NULL: no token).
    pub(crate) fn enter(cancel: *const net_cancel_t) -> Result<Self, super::error::FfiError> {
        if cancel.is_null() {
            return Ok(Self(None));
        }
        let entered = handle::enter(cancel)?;
        Ok(Self(Some((*entered).clone())))
    }

    /// The caller's token, if any.
    pub(crate) fn token(&self) -> Option<&CancelToken> {
        self.0.as_ref()
    }

    /// A token cancelled when the caller's is or when `also` is (the handle
    /// the call is on being freed).
    pub(crate) fn linked_with(&self, also: &CancelToken) -> crate::cancel::Linked {
        match self.token() {
            Some(token) => CancelToken::linked(&[token, also]),
            None => CancelToken::linked(&[also]),
        }
    }

    /// Why a call waiting with [`linked_with`](Self::linked_with)`(closing)`
    /// was interrupted: `NET_ERR_SHUTTING_DOWN` when `closing` fired (the
    /// handle, `what`, was freed during the call), else `NET_ERR_CANCELLED`.
    pub(crate) fn interrupted(&self, closing: &CancelToken, what: &str) -> super::error::FfiError {
        if closing.is_cancelled() {
            super::error::FfiError::new(
                net_status_t::NET_ERR_SHUTTING_DOWN,
                format!("{what} was freed while the call waited"),
            )
        } else {
            cancelled()
        }
    }

    /// `NET_ERR_CANCELLED` if the caller's token is already cancelled (as
    /// the call starts).
    pub(crate) fn check(&self) -> Result<(), super::error::FfiError> {
        if self.token().is_some_and(CancelToken::is_cancelled) {
            return Err(cancelled_before());
        }
        Ok(())
    }
}

/// The error of a call cancelled while it waited.
pub(crate) fn cancelled() -> super::error::FfiError {
    super::error::FfiError::new(
        net_status_t::NET_ERR_CANCELLED,
        "the call was cancelled through its net_cancel_t while it waited",
    )
}

/// The error of a call whose token was already cancelled when it started.
fn cancelled_before() -> super::error::FfiError {
    super::error::FfiError::new(
        net_status_t::NET_ERR_CANCELLED,
        "the call's net_cancel_t was already cancelled when it started",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_lifecycle() {
        let mut token = std::ptr::null_mut();
        unsafe {
            assert_eq!(net_cancel_new(&mut token), net_status_t::NET_OK);
            let mut cancelled = true;
            assert_eq!(
                net_cancel_is_cancelled(token, &mut cancelled),
                net_status_t::NET_OK
            );
            assert!(!cancelled);
            assert_eq!(net_cancel_cancel(token), net_status_t::NET_OK);
            assert_eq!(net_cancel_cancel(token), net_status_t::NET_OK);
            assert_eq!(
                net_cancel_is_cancelled(token, &mut cancelled),
                net_status_t::NET_OK
            );
            assert!(cancelled);
            assert_eq!(net_cancel_free(token), net_status_t::NET_OK);
            assert_eq!(net_cancel_free(token), net_status_t::NET_OK);
            assert_eq!(
                net_cancel_cancel(token),
                net_status_t::NET_ERR_SHUTTING_DOWN
            );
            assert_eq!(net_cancel_free(std::ptr::null_mut()), net_status_t::NET_OK);
        }
    }

    #[test]
    fn freeing_a_token_a_call_holds_neither_waits_nor_cancels() {
        let mut token = std::ptr::null_mut();
        unsafe { net_cancel_new(&mut token) };
        let call = CallCancel::enter(token).unwrap();
        let started = std::time::Instant::now();
        assert_eq!(unsafe { net_cancel_free(token) }, net_status_t::NET_OK);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(4),
            "the free waited"
        );
        assert!(!call.token().unwrap().is_cancelled());
        call.token().unwrap().cancel();
        assert!(call.token().unwrap().is_cancelled());
    }

    #[test]
    fn error_clear_is_null_safe_and_idempotent() {
        let mut error = net_error_t {
            status: net_status_t::NET_ERR_INTERNAL,
            message: net_bytes_t::from_vec(b"boom".to_vec()),
        };
        unsafe {
            net_error_clear(&mut error);
            assert!(error.message.ptr.is_null());
            assert_eq!(error.status, net_status_t::NET_OK);
            net_error_clear(&mut error);
            net_error_clear(std::ptr::null_mut());
        }
    }
}
