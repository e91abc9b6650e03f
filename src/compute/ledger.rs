//! The per-daemon subscription ledger (COMPUTE.md §1.8): which channels the
//! daemon is subscribed to on which publisher, with the token each
//! subscription used, so a migration target can re-subscribe.
//!
//! `bindings_bytes` (byte-exact with v0.11), little-endian:
//! `count u32`, then per entry `publisher u64 ‖ name_len u16 ‖ name ‖
//! flag u8 (0 = no token, 1 = token) ‖ [token_len u16 ‖ token]`.
//! Empty input is the empty ledger. The decoder rejects a count above
//! `remaining / 11` (the smallest entry), truncation, an invalid channel
//! name, a flag other than 0/1 and trailing bytes.
//!
//! Departures from v0.11: entries are kept ordered by (publisher, channel),
//! so the encoding is deterministic; the empty ledger encodes as no bytes
//! (the host omits it from snapshots, as v0.11 does). A repeated
//! (publisher, channel) in the input keeps the last token, like re-recording.

use std::collections::BTreeMap;

use crate::compute::codec::{Reader, Truncated};
use crate::identity::{ChannelName, ChannelNameError};

/// Smallest encoded entry: publisher 8 ‖ name_len 2 ‖ flag 1.
pub const MIN_LEDGER_ENTRY_SIZE: usize = 11;
/// Longest token.
pub const MAX_LEDGER_TOKEN_LEN: usize = u16::MAX as usize;

/// Why ledger bytes were rejected or a ledger could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// A field runs past the end.
    #[error("truncated ledger: {what} needs {needed} bytes, {available} left")]
    Truncated {
        /// The field.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// The count exceeds what the bytes can hold.
    #[error("ledger declares {count} entries; at most {max} fit")]
    TooManyEntries {
        /// Declared count.
        count: u32,
        /// `remaining / 11`.
        max: usize,
    },
    /// A channel name is not valid UTF-8 or breaks the naming rules.
    #[error("ledger channel name: {0}")]
    BadChannelName(String),
    /// A token flag other than 0 or 1.
    #[error("ledger token flag {0} is not 0 or 1")]
    BadFlag(u8),
    /// Bytes after the last entry.
    #[error("{0} trailing bytes after the ledger")]
    TrailingBytes(usize),
    /// Encoding only: a token longer than 65 535 bytes, or more than 2^32−1
    /// entries.
    #[error("{what} is {len}; the limit is {max}")]
    TooLong {
        /// The field.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl From<Truncated> for LedgerError {
    fn from(t: Truncated) -> Self {
        Self::Truncated {
            what: t.what,
            needed: t.needed,
            available: t.available,
        }
    }
}

impl From<ChannelNameError> for LedgerError {
    fn from(e: ChannelNameError) -> Self {
        Self::BadChannelName(e.to_string())
    }
}

/// (publisher node_id, channel) → the token used to subscribe, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionLedger {
    entries: BTreeMap<(u64, ChannelName), Option<Vec<u8>>>,
}

impl SubscriptionLedger {
    /// The empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a subscription, replacing the token of an existing one.
    ///
    /// # Errors
    /// [`LedgerError::TooLong`] for a token over 65 535 bytes (nothing is
    /// recorded).
    pub fn record(
        &mut self,
        publisher: u64,
        channel: ChannelName,
        token: Option<Vec<u8>>,
    ) -> Result<(), LedgerError> {
        if let Some(token) = &token {
            check_token_len(token)?;
        }
        self.entries.insert((publisher, channel), token);
        Ok(())
    }

    /// Forgets a subscription; returns whether it was recorded.
    pub fn remove(&mut self, publisher: u64, channel: &ChannelName) -> bool {
        self.entries.remove(&(publisher, channel.clone())).is_some()
    }

    /// The entries, ordered by (publisher, channel).
    pub fn iter(&self) -> impl Iterator<Item = (u64, &ChannelName, Option<&[u8]>)> {
        self.entries
            .iter()
            .map(|((publisher, channel), token)| (*publisher, channel, token.as_deref()))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `bindings_bytes` encoding; empty for the empty ledger.
    ///
    /// # Errors
    /// [`LedgerError::TooLong`] if there are more than 2^32−1 entries.
    pub fn to_bytes(&self) -> Result<Vec<u8>, LedgerError> {
        if self.entries.is_empty() {
            return Ok(Vec::new());
        }
        let count = u32::try_from(self.entries.len()).map_err(|_| LedgerError::TooLong {
            what: "ledger entry count",
            len: self.entries.len(),
            max: u32::MAX as usize,
        })?;
        let mut out = Vec::new();
        out.extend_from_slice(&count.to_le_bytes());
        for (publisher, channel, token) in self.iter() {
            out.extend_from_slice(&publisher.to_le_bytes());
            // A ChannelName is at most 255 bytes, and record() bounds tokens.
            out.extend_from_slice(&(channel.as_str().len() as u16).to_le_bytes());
            out.extend_from_slice(channel.as_str().as_bytes());
            match token {
                None => out.push(0),
                Some(token) => {
                    out.push(1);
                    out.extend_from_slice(&(token.len() as u16).to_le_bytes());
                    out.extend_from_slice(token);
                }
            }
        }
        Ok(out)
    }

    /// Decodes `bindings_bytes`.
    ///
    /// # Errors
    /// See [`LedgerError`]; every rule of the module doc.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, LedgerError> {
        let mut ledger = Self::new();
        if bytes.is_empty() {
            return Ok(ledger);
        }
        let mut r = Reader::new(bytes);
        let count = r.u32("ledger count")?;
        let max = r.remaining() / MIN_LEDGER_ENTRY_SIZE;
        if count as usize > max {
            return Err(LedgerError::TooManyEntries { count, max });
        }
        for _ in 0..count {
            let publisher = r.u64("publisher")?;
            let name_len = r.u16("channel name length")? as usize;
            let name = r.take(name_len, "channel name")?;
            let name = std::str::from_utf8(name)
                .map_err(|_| LedgerError::BadChannelName("not UTF-8".into()))?;
            let channel = ChannelName::new(name)?;
            let token = match r.u8("token flag")? {
                0 => None,
                1 => {
                    let len = r.u16("token length")? as usize;
                    Some(r.take(len, "token")?.to_vec())
                }
                flag => return Err(LedgerError::BadFlag(flag)),
            };
            ledger.entries.insert((publisher, channel), token);
        }
        match r.remaining() {
            0 => Ok(ledger),
            extra => Err(LedgerError::TrailingBytes(extra)),
        }
    }
}

fn check_token_len(token: &[u8]) -> Result<(), LedgerError> {
    if token.len() > MAX_LEDGER_TOKEN_LEN {
        return Err(LedgerError::TooLong {
            what: "ledger token",
            len: token.len(),
            max: MAX_LEDGER_TOKEN_LEN,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> ChannelName {
        ChannelName::new(s).unwrap()
    }

    fn sample() -> SubscriptionLedger {
        let mut ledger = SubscriptionLedger::new();
        ledger.record(7, name("sensors/a"), None).unwrap();
        ledger.record(3, name("b"), Some(vec![1, 2, 3])).unwrap();
        ledger
    }

    #[test]
    fn bytes_match_the_layout() {
        let bytes = sample().to_bytes().unwrap();
        let expected = hex::decode(concat!(
            "02000000",
            "0300000000000000",
            "0100",
            "62",
            "01",
            "0300",
            "010203",
            "0700000000000000",
            "0900",
            "73656e736f72732f61",
            "00",
        ))
        .unwrap();
        assert_eq!(bytes, expected);
        assert_eq!(SubscriptionLedger::from_bytes(&bytes).unwrap(), sample());
    }

    #[test]
    fn empty_ledger_is_no_bytes_and_zero_count_decodes() {
        assert!(SubscriptionLedger::new().to_bytes().unwrap().is_empty());
        assert!(SubscriptionLedger::from_bytes(&[]).unwrap().is_empty());
        assert!(SubscriptionLedger::from_bytes(&[0; 4]).unwrap().is_empty());
    }

    #[test]
    fn rerecording_replaces_the_token() {
        let mut ledger = sample();
        ledger.record(3, name("b"), None).unwrap();
        assert_eq!(ledger.len(), 2);
        assert_eq!(ledger.iter().next().unwrap().2, None);
        assert!(ledger.remove(3, &name("b")));
        assert!(!ledger.remove(3, &name("b")));
        let long = vec![0; MAX_LEDGER_TOKEN_LEN + 1];
        assert!(matches!(
            ledger.record(1, name("c"), Some(long)),
            Err(LedgerError::TooLong { .. })
        ));
        assert_eq!(ledger.len(), 1);
    }

    #[test]
    fn malformed_bytes_are_rejected() {
        let good = sample().to_bytes().unwrap();
        for cut in 1..good.len() {
            assert!(
                SubscriptionLedger::from_bytes(&good[..cut]).is_err(),
                "cut {cut}"
            );
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            SubscriptionLedger::from_bytes(&trailing),
            Err(LedgerError::TrailingBytes(1))
        );
        let mut too_many = good.clone();
        too_many[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            SubscriptionLedger::from_bytes(&too_many),
            Err(LedgerError::TooManyEntries { .. })
        ));
        let mut bad_flag = good.clone();
        bad_flag[4 + 8 + 2 + 1] = 2;
        assert_eq!(
            SubscriptionLedger::from_bytes(&bad_flag),
            Err(LedgerError::BadFlag(2))
        );
        let mut bad_name = good.clone();
        bad_name[4 + 8 + 2] = b'!';
        assert!(matches!(
            SubscriptionLedger::from_bytes(&bad_name),
            Err(LedgerError::BadChannelName(_))
        ));
        let mut empty_name = vec![1, 0, 0, 0];
        empty_name.extend_from_slice(&[0; 8]);
        empty_name.extend_from_slice(&[0, 0, 0]);
        assert!(matches!(
            SubscriptionLedger::from_bytes(&empty_name),
            Err(LedgerError::BadChannelName(_))
        ));
    }
}
