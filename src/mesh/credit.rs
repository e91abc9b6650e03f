//! Sender credit (WIRE.md §7.3): a byte window per stream, debited
//! `framed_len + 80` per packet before it is sent and refilled by absolute,
//! idempotent StreamWindow grants from the receiver.

/// Per-packet overhead debited on top of the framed payload (header + tag).
pub const PACKET_COST_OVERHEAD: u64 = 80;
/// Default stream window (bytes).
pub const DEFAULT_WINDOW: u64 = 65_536;

/// A send that does not fit the stream's remaining credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stream window full: packet needs {needed} bytes of credit, {available} available")]
pub struct Backpressure {
    /// The packet's cost.
    pub needed: u64,
    /// The credit left.
    pub available: u64,
}

/// The cost of a packet whose framed payload is `framed_len` bytes.
pub fn packet_cost(framed_len: usize) -> u64 {
    framed_len as u64 + PACKET_COST_OVERHEAD
}

/// One stream's transmit credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxCredit {
    window: u64,
    credit: u64,
    bytes_sent: u64,
    max_consumed: u64,
}

impl TxCredit {
    /// Full credit of `window` bytes; 0 means unlimited.
    pub fn new(window: u64) -> Self {
        Self {
            window,
            credit: window,
            bytes_sent: 0,
            max_consumed: 0,
        }
    }

    /// The window (0 = unlimited).
    pub fn window(&self) -> u64 {
        self.window
    }

    /// Credit left (`u64::MAX` when unlimited).
    pub fn available(&self) -> u64 {
        if self.window == 0 {
            u64::MAX
        } else {
            self.credit
        }
    }

    /// Bytes debited so far.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent
    }

    /// Debits `cost` or refuses.
    ///
    /// # Errors
    /// [`Backpressure`] when `cost` exceeds the credit left.
    pub fn try_debit(&mut self, cost: u64) -> Result<(), Backpressure> {
        if self.window != 0 {
            if cost > self.credit {
                return Err(Backpressure {
                    needed: cost,
                    available: self.credit,
                });
            }
            self.credit -= cost;
        }
        self.bytes_sent = self.bytes_sent.saturating_add(cost);
        Ok(())
    }

    /// Returns the credit of a packet that was debited but never sent.
    pub fn refund(&mut self, cost: u64) {
        self.bytes_sent = self.bytes_sent.saturating_sub(cost).max(self.max_consumed);
        if self.window != 0 {
            self.credit = (self.credit + cost).min(self.window);
        }
    }

    /// Applies a grant: `c = min(total_consumed, bytes_sent)`; credit grows
    /// by whatever `c` exceeds the largest value seen, capped at the window.
    /// Returns the credit added (0 for stale or duplicate grants).
    pub fn apply_grant(&mut self, total_consumed: u64) -> u64 {
        let c = total_consumed.min(self.bytes_sent);
        if c <= self.max_consumed {
            return 0;
        }
        let delta = c - self.max_consumed;
        self.max_consumed = c;
        if self.window == 0 {
            return delta;
        }
        let before = self.credit;
        self.credit = self.credit.saturating_add(delta).min(self.window);
        self.credit - before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debit_refuse_grant_like_the_live_session() {
        // live_session: stream 9, 19-byte payload → 99 debited; the grant
        // of 99 restores 65 536.
        let mut c = TxCredit::new(DEFAULT_WINDOW);
        c.try_debit(packet_cost(19)).unwrap();
        assert_eq!(c.available(), 65_437);
        assert_eq!(c.apply_grant(99), 99);
        assert_eq!(c.available(), 65_536);
        // Duplicate and stale grants change nothing; grants beyond what was
        // sent are clamped.
        assert_eq!(c.apply_grant(99), 0);
        assert_eq!(c.apply_grant(50), 0);
        assert_eq!(c.apply_grant(1 << 40), 0);
        assert_eq!(c.available(), 65_536);
    }

    #[test]
    fn backpressure_when_the_window_is_spent() {
        let mut c = TxCredit::new(1000);
        c.try_debit(600).unwrap();
        assert_eq!(
            c.try_debit(500),
            Err(Backpressure {
                needed: 500,
                available: 400
            })
        );
        c.refund(600);
        assert_eq!(c.available(), 1000);
        c.try_debit(1000).unwrap();
        assert_eq!(c.apply_grant(300), 300);
        assert_eq!(c.available(), 300);
        let mut unlimited = TxCredit::new(0);
        unlimited.try_debit(u64::MAX / 2).unwrap();
        assert_eq!(unlimited.available(), u64::MAX);
    }
}
