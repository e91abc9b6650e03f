//! `CancelToken`: asks a blocked call to give up, from any thread.
//!
//! Every blocking call of the crate that can wait long (a tail's `next`, a
//! wait for a sequence number, a mesh receive or blocking send, a bus flush or
//! poll) has a variant that takes a token. Cancelling the token makes such a
//! call return promptly with a "cancelled" outcome, whatever it waits on: the
//! token runs the wake-up each waiting call registered (notify a condition
//! variable, wake a future), and the call checks the token before and after
//! every wait. A token stays cancelled; make a new one for the next call.
//!
//! The C ABI's `net_cancel_t` is a token; the SDKs map it to
//! `context.Context` (Go), `AbortSignal` (Node) and a cancel object (Python).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

type Waker = Arc<dyn Fn() + Send + Sync>;

struct Inner {
    cancelled: AtomicBool,
    next_id: AtomicU64,
    wakers: Mutex<Vec<(u64, Waker)>>,
    notify: tokio::sync::Notify,
}

/// A cancellation flag shared by a call and whoever may cancel it. Cheap to
/// clone; clones are the same token.
#[derive(Clone)]
pub struct CancelToken(Arc<Inner>);

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// Keeps a wake-up registered with a token; dropping it unregisters.
#[must_use = "the wake-up is unregistered when this is dropped"]
pub struct CancelRegistration {
    token: Option<CancelToken>,
    id: u64,
}

impl Drop for CancelRegistration {
    fn drop(&mut self) {
        if let Some(token) = &self.token {
            token.wakers().retain(|(id, _)| *id != self.id);
        }
    }
}

impl CancelToken {
    /// A token not cancelled yet.
    pub fn new() -> Self {
        Self(Arc::new(Inner {
            cancelled: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
            wakers: Mutex::new(Vec::new()),
            notify: tokio::sync::Notify::new(),
        }))
    }

    fn wakers(&self) -> MutexGuard<'_, Vec<(u64, Waker)>> {
        self.0.wakers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Cancels: every call waiting with this token (now or later) returns.
    /// Idempotent.
    pub fn cancel(&self) {
        if self.0.cancelled.swap(true, Ordering::AcqRel) {
            return;
        }
        let wakers: Vec<Waker> = self.wakers().iter().map(|(_, w)| w.clone()).collect();
        for wake in wakers {
            wake();
        }
        self.0.notify.notify_waiters();
    }

    /// Whether [`cancel`](Self::cancel) has been called.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Acquire)
    }

    /// Runs `wake` when the token is cancelled (at once if it already is),
    /// for as long as the registration lives. `wake` must not block; it
    /// typically notifies what the call waits on, and the call then sees
    /// [`is_cancelled`](Self::is_cancelled).
    pub fn on_cancel(&self, wake: impl Fn() + Send + Sync + 'static) -> CancelRegistration {
        let id = self.0.next_id.fetch_add(1, Ordering::Relaxed);
        let wake: Waker = Arc::new(wake);
        self.wakers().push((id, wake.clone()));
        if self.is_cancelled() {
            wake();
        }
        CancelRegistration {
            token: Some(self.clone()),
            id,
        }
    }

    /// Completes once the token is cancelled (for async code).
    pub async fn cancelled(&self) {
        loop {
            let notified = self.0.notify.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    /// A token cancelled as soon as any of `parents` is (a call that must
    /// stop for its caller's token *or* for its handle being freed). The
    /// links last as long as the returned token's [`Linked`] guard.
    pub fn linked(parents: &[&CancelToken]) -> Linked {
        let child = CancelToken::new();
        let registrations = parents
            .iter()
            .map(|parent| {
                let child = child.clone();
                parent.on_cancel(move || child.cancel())
            })
            .collect();
        Linked {
            token: child,
            _registrations: registrations,
        }
    }
}

/// A token linked to its parents (see [`CancelToken::linked`]).
pub struct Linked {
    token: CancelToken,
    _registrations: Vec<CancelRegistration>,
}

impl std::ops::Deref for Linked {
    type Target = CancelToken;
    fn deref(&self) -> &CancelToken {
        &self.token
    }
}

/// Looks until `ready()`, `until`, or a cancel, without parking: yields the
/// CPU between looks. For a wait that usually ends within microseconds,
/// before it parks on a condition variable (a parked thread's wake-up is
/// tens of microseconds on a virtual machine).
pub(crate) fn linger(
    until: std::time::Instant,
    cancel: Option<&CancelToken>,
    ready: impl Fn() -> bool,
) {
    while !ready()
        && !cancel.is_some_and(CancelToken::is_cancelled)
        && std::time::Instant::now() < until
    {
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn cancel_runs_each_wakeup_once_and_late_registrations_at_once() {
        let token = CancelToken::new();
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let registration = token.on_cancel(move || {
            c.fetch_add(1, Ordering::SeqCst);
        });
        assert!(!token.is_cancelled());
        token.cancel();
        token.cancel();
        assert!(token.is_cancelled());
        assert_eq!(count.load(Ordering::SeqCst), 1);
        drop(registration);
        let c = count.clone();
        let _late = token.on_cancel(move || {
            c.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_dropped_registration_is_not_run() {
        let token = CancelToken::new();
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        drop(token.on_cancel(move || {
            c.fetch_add(1, Ordering::SeqCst);
        }));
        token.cancel();
        assert_eq!(count.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_linked_token_follows_any_parent() {
        let (a, b) = (CancelToken::new(), CancelToken::new());
        let linked = CancelToken::linked(&[&a, &b]);
        assert!(!linked.is_cancelled());
        b.cancel();
        assert!(linked.is_cancelled());
        assert!(!a.is_cancelled());
    }

    #[test]
    fn the_future_completes_on_cancel() {
        let token = CancelToken::new();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let t = token.clone();
        let waiter = std::thread::spawn(move || runtime.block_on(t.cancelled()));
        token.cancel();
        waiter.join().unwrap();
    }
}
