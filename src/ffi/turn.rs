//! `Turn`: serialises the calls on one reader (a tail, a watch) without
//! letting a queued call ignore its own timeout or cancellation.
//!
//! A reader is one cursor, so its `_next` calls run one at a time. With a
//! plain mutex, a second call would sit in the lock for as long as the first
//! one waits for data, past its own deadline and deaf to its token. Here the
//! second call waits for its turn on a condition variable, and gives up at
//! its deadline (`NET_TIMEOUT`) or when its token or the handle's free fires.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::cancel::CancelToken;

/// Whose turn it is.
#[derive(Debug, Default)]
pub(crate) struct Turn(Arc<TurnState>);

#[derive(Debug, Default)]
struct TurnState {
    taken: Mutex<bool>,
    released: Condvar,
}

/// Holding the turn; dropping it passes the turn on.
pub(crate) struct TurnGuard<'a>(&'a TurnState);

impl Drop for TurnGuard<'_> {
    fn drop(&mut self) {
        *lock(&self.0.taken) = false;
        self.0.released.notify_one();
    }
}

fn lock(m: &Mutex<bool>) -> MutexGuard<'_, bool> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why waiting for the turn ended without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoTurn {
    /// The deadline passed.
    TimedOut,
    /// The token fired.
    Cancelled,
}

impl Turn {
    /// Waits for the turn until `deadline` (`None`: no limit) or until
    /// `stop` is cancelled.
    pub(crate) fn take(
        &self,
        deadline: Option<Instant>,
        stop: &CancelToken,
    ) -> Result<TurnGuard<'_>, NoTurn> {
        let state = &*self.0;
        {
            let mut taken = lock(&state.taken);
            if !*taken {
                *taken = true;
                return Ok(TurnGuard(state));
            }
        }
        // Registered without the lock held: a token already cancelled runs
        // the wake-up at once, and it takes the lock.
        let _wake = {
            let state = self.0.clone();
            stop.on_cancel(move || {
                drop(lock(&state.taken));
                state.released.notify_all();
            })
        };
        let mut taken = lock(&state.taken);
        loop {
            if stop.is_cancelled() {
                return Err(NoTurn::Cancelled);
            }
            if !*taken {
                *taken = true;
                return Ok(TurnGuard(state));
            }
            taken = match deadline {
                None => state
                    .released
                    .wait(taken)
                    .unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(NoTurn::TimedOut);
                    }
                    state
                        .released
                        .wait_timeout(taken, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_queued_call_keeps_its_deadline_and_its_token() {
        let turn = Turn::default();
        let never = CancelToken::new();
        let first = turn.take(None, &never).unwrap();
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(turn.take(Some(soon), &never).err(), Some(NoTurn::TimedOut));
        let token = CancelToken::new();
        token.cancel();
        assert_eq!(turn.take(None, &token).err(), Some(NoTurn::Cancelled));
        drop(first);
        assert!(turn.take(Some(Instant::now()), &never).is_ok());
    }

    #[test]
    fn the_turn_passes_on_when_released() {
        let turn = Arc::new(Turn::default());
        let never = CancelToken::new();
        let first = turn.take(None, &never).unwrap();
        let waiter = {
            let turn = turn.clone();
            std::thread::spawn(move || turn.take(None, &CancelToken::new()).is_ok())
        };
        std::thread::yield_now();
        drop(first);
        assert!(waiter.join().unwrap());
    }
}
