//! Sender credit (WIRE.md §7.3): a byte window per stream, debited
//! `framed_len + 80` per packet before it is sent and refilled by absolute,
//! idempotent StreamWindow grants from the receiver.

/// Per-packet overhead debited on top of the framed payload (header + tag).
pub const PACKET_COST_OVERHEAD: u64 = 80;
/// Default stream window (bytes).
pub const DEFAULT_WINDOW: u64 = 65_536;

/// First bytes of a [`WindowOffer`].
pub const WINDOW_OFFER_MAGIC: [u8; 4] = *b"NETW";

/// A Net receiver's permission to widen a stream's default window (Net
/// nodes only, both having set the hello flag `FLAG_WINDOW_GROWTH`): a
/// 0x0B00 event of 20 bytes (`NETW` ‖ stream_id u64 LE ‖ window u64 LE)
/// that rides with the stream's grants. v0.11 takes only 16-byte events
/// on 0x0B00 as grants, and never gets one anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowOffer {
    /// The stream.
    pub stream_id: u64,
    /// The window the sender may use, in bytes.
    pub window: u64,
}

/// Why bytes are not a [`WindowOffer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a window offer ({len} bytes)")]
pub struct NotWindowOffer {
    /// The length seen.
    pub len: usize,
}

impl WindowOffer {
    /// Encoded size.
    pub const SIZE: usize = 20;

    /// The bytes.
    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut out = [0u8; Self::SIZE];
        out[..4].copy_from_slice(&WINDOW_OFFER_MAGIC);
        out[4..12].copy_from_slice(&self.stream_id.to_le_bytes());
        out[12..].copy_from_slice(&self.window.to_le_bytes());
        out
    }

    /// Decodes an offer.
    ///
    /// # Errors
    /// [`NotWindowOffer`] for any other length or magic.
    pub fn decode(bytes: &[u8]) -> Result<Self, NotWindowOffer> {
        let not = NotWindowOffer { len: bytes.len() };
        if bytes.len() != Self::SIZE || bytes[..4] != WINDOW_OFFER_MAGIC {
            return Err(not);
        }
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(w)
        };
        Ok(Self {
            stream_id: word(4),
            window: word(12),
        })
    }
}

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

    /// Widens the window to `window` (a Net receiver's offer, see
    /// `docs/mesh.md` *Window growth*): the credit grows by the difference.
    /// Returns the credit added (0 for an unlimited window or one not
    /// larger than the current).
    pub fn grow_window(&mut self, window: u64) -> u64 {
        if self.window == 0 || window <= self.window {
            return 0;
        }
        let added = window - self.window;
        self.window = window;
        self.credit = self.credit.saturating_add(added);
        added
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
    fn window_offers_round_trip_and_refuse_other_bytes() {
        let offer = WindowOffer {
            stream_id: 7,
            window: 1 << 20,
        };
        let bytes = offer.encode();
        assert_eq!(WindowOffer::decode(&bytes), Ok(offer));
        assert!(WindowOffer::decode(&bytes[..16]).is_err(), "a grant's size");
        let mut wrong = bytes;
        wrong[0] = b'X';
        assert!(WindowOffer::decode(&wrong).is_err());
    }

    #[test]
    fn a_grown_window_adds_its_difference_and_grants_fill_up_to_it() {
        let mut c = TxCredit::new(1000);
        c.try_debit(900).unwrap();
        assert_eq!(c.grow_window(500), 0, "never shrinks");
        assert_eq!(c.grow_window(4000), 3000);
        assert_eq!(c.available(), 3100);
        assert_eq!(c.apply_grant(900), 900);
        assert_eq!(c.available(), 4000);
        let mut unlimited = TxCredit::new(0);
        assert_eq!(unlimited.grow_window(4000), 0);
        assert_eq!(unlimited.window(), 0);
    }

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
