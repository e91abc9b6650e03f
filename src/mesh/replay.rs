//! The 1024-counter anti-replay window of a session's receive direction
//! (WIRE.md §4.4).
//!
//! Receive processing checks a counter before decrypting
//! ([`ReplayWindow::check`]) and commits it only after the packet
//! authenticated ([`ReplayWindow::commit`]), so forged packets cannot move
//! the window.
//!
//! Departure from v0.11: v0.11 rejects a counter more than 1024 beyond the
//! highest accepted one, so a session whose peer sent over 1024 packets that
//! were all lost (a partition) could never receive again. Here such a
//! counter is admitted to decryption, and if the packet authenticates the
//! window resets to it; [`Advance::Jump`] tells the caller to log it.

/// Width of the window in counters.
pub const WINDOW_BITS: u64 = 1024;
const WORDS: usize = (WINDOW_BITS / 64) as usize;

/// Why a counter was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// `u64::MAX` is never valid.
    #[error("counter u64::MAX is reserved")]
    Exhausted,
    /// Already accepted.
    #[error("counter {0} was already accepted")]
    Duplicate(u64),
    /// Older than the window.
    #[error("counter {0} is older than the replay window")]
    TooOld(u64),
}

/// How an admissible counter relates to the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advance {
    /// Inside the window, or at most 1024 beyond it.
    InWindow,
    /// More than 1024 beyond the highest accepted counter: committing it
    /// resets the window (everything older becomes too old).
    Jump {
        /// `counter - next`.
        jump: u64,
    },
}

/// The set of accepted counters in `[next − 1024, next)` plus `next`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplayWindow {
    /// Highest accepted counter + 1 (0: nothing accepted yet).
    next: u64,
    /// Bit `i` (word `i / 64`, bit `i % 64`) = counter `next − 1 − i` seen.
    bitmap: [u64; WORDS],
}

impl ReplayWindow {
    /// An empty window.
    pub fn new() -> Self {
        Self::default()
    }

    /// Highest accepted counter + 1.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Whether `counter` would be accepted now.
    ///
    /// # Errors
    /// Why it would not.
    pub fn check(&self, counter: u64) -> Result<Advance, ReplayError> {
        if counter == u64::MAX {
            return Err(ReplayError::Exhausted);
        }
        if counter >= self.next {
            let jump = counter - self.next;
            if jump > WINDOW_BITS {
                return Ok(Advance::Jump { jump });
            }
            return Ok(Advance::InWindow);
        }
        let age = self.next - 1 - counter;
        if age >= WINDOW_BITS {
            return Err(ReplayError::TooOld(counter));
        }
        if self.bit(age) {
            return Err(ReplayError::Duplicate(counter));
        }
        Ok(Advance::InWindow)
    }

    /// Checks and records `counter` (after the packet authenticated).
    ///
    /// # Errors
    /// As [`Self::check`] — the window is unchanged then.
    pub fn commit(&mut self, counter: u64) -> Result<Advance, ReplayError> {
        let advance = self.check(counter)?;
        if counter >= self.next {
            self.shift(counter - self.next + 1);
            self.next = counter + 1;
            self.set(0);
        } else {
            self.set(self.next - 1 - counter);
        }
        Ok(advance)
    }

    fn bit(&self, age: u64) -> bool {
        self.bitmap[(age / 64) as usize] & (1 << (age % 64)) != 0
    }

    fn set(&mut self, age: u64) {
        self.bitmap[(age / 64) as usize] |= 1 << (age % 64);
    }

    /// Ages every entry by `by` positions (dropping what falls off).
    fn shift(&mut self, by: u64) {
        if by >= WINDOW_BITS {
            self.bitmap = [0; WORDS];
            return;
        }
        let words = (by / 64) as usize;
        let bits = (by % 64) as u32;
        for i in (0..WORDS).rev() {
            let src = i.checked_sub(words);
            let hi = src.map_or(0, |s| self.bitmap[s]);
            let lo = src
                .and_then(|s| s.checked_sub(1))
                .map_or(0, |s| self.bitmap[s]);
            self.bitmap[i] = if bits == 0 {
                hi
            } else {
                (hi << bits) | (lo >> (64 - bits))
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_in_order_and_rejects_repeats() {
        let mut w = ReplayWindow::new();
        for c in 0..3000 {
            w.commit(c).unwrap();
            assert_eq!(w.check(c), Err(ReplayError::Duplicate(c)));
        }
        assert_eq!(
            w.check(3000 - 1 - 1024),
            Err(ReplayError::TooOld(3000 - 1 - 1024))
        );
        assert_eq!(
            w.check(3000 - 1024),
            Err(ReplayError::Duplicate(3000 - 1024))
        );
    }

    #[test]
    fn out_of_order_within_the_window() {
        let mut w = ReplayWindow::new();
        w.commit(1024).unwrap();
        // next = 1025: counter 0 is 1024 behind the newest, one too old.
        assert_eq!(w.check(0), Err(ReplayError::TooOld(0)));
        for c in (1..1024).rev() {
            w.commit(c).unwrap();
        }
        for c in 1..=1024 {
            assert_eq!(w.check(c), Err(ReplayError::Duplicate(c)));
        }
        // 2049 - next(1025) = 1024: the largest in-window step.
        assert_eq!(w.check(2049), Ok(Advance::InWindow));
        assert_eq!(w.check(2050), Ok(Advance::Jump { jump: 1025 }));
        w.commit(2049).unwrap();
        assert_eq!(w.check(1025), Err(ReplayError::TooOld(1025)));
        assert!(w.check(1026).is_ok());
    }

    #[test]
    fn first_counter_bounds_and_max() {
        let w = ReplayWindow::new();
        assert_eq!(w.check(1024), Ok(Advance::InWindow));
        assert_eq!(w.check(1025), Ok(Advance::Jump { jump: 1025 }));
        assert_eq!(w.check(u64::MAX), Err(ReplayError::Exhausted));
    }

    #[test]
    fn an_authenticated_jump_resets_the_window() {
        let mut w = ReplayWindow::new();
        for c in 0..10 {
            w.commit(c).unwrap();
        }
        assert_eq!(w.commit(100_000), Ok(Advance::Jump { jump: 99_990 }));
        assert_eq!(w.next(), 100_001);
        assert_eq!(w.check(5), Err(ReplayError::TooOld(5)));
        assert_eq!(w.check(100_000), Err(ReplayError::Duplicate(100_000)));
        assert_eq!(w.check(99_999), Ok(Advance::InWindow));
        w.commit(99_999).unwrap();
        assert_eq!(w.check(99_999), Err(ReplayError::Duplicate(99_999)));
    }
}
