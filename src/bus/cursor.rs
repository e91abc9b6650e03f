//! [`CompositeCursor`]: one position per shard, carried by consumers as
//! opaque text (base64url of a small JSON object). Encoding returns a
//! `Result` and never produces an empty cursor — an empty cursor means
//! "from the beginning", so emitting one by mistake would silently rewind.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::error::{BusError, Result};

/// Per-shard positions: the id of the last event consumed on each shard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompositeCursor {
    positions: BTreeMap<u16, String>,
}

/// Upper bound of an encoded cursor accepted by `decode`.
const MAX_ENCODED: usize = 1 << 20;

impl CompositeCursor {
    /// The cursor at the beginning of every shard.
    pub fn new() -> Self {
        Self::default()
    }

    /// The position on `shard` (None: from its beginning).
    pub fn position(&self, shard: u16) -> Option<&str> {
        self.positions.get(&shard).map(String::as_str)
    }

    /// Sets the position on `shard`.
    pub fn set(&mut self, shard: u16, id: String) {
        self.positions.insert(shard, id);
    }

    /// Shards with a position.
    pub fn shards(&self) -> impl Iterator<Item = u16> + '_ {
        self.positions.keys().copied()
    }

    /// The opaque text form.
    ///
    /// # Errors
    /// [`BusError::InvalidRequest`] if the positions cannot be serialised
    /// (never an empty string).
    pub fn encode(&self) -> Result<String> {
        let map: BTreeMap<String, &str> = self
            .positions
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_str()))
            .collect();
        let json = serde_json::to_vec(&map)
            .map_err(|e| BusError::InvalidRequest(format!("cursor: cannot encode: {e}")))?;
        let text = URL_SAFE_NO_PAD.encode(json);
        if text.is_empty() {
            return Err(BusError::InvalidRequest(
                "cursor: encoding produced no text".into(),
            ));
        }
        Ok(text)
    }

    /// Parses the text form; an empty string is the beginning.
    ///
    /// # Errors
    /// [`BusError::InvalidRequest`] naming what is wrong with it.
    pub fn decode(text: &str) -> Result<Self> {
        if text.is_empty() {
            return Ok(Self::new());
        }
        if text.len() > MAX_ENCODED {
            return Err(BusError::InvalidRequest("cursor: too long".into()));
        }
        let bad = |why: String| BusError::InvalidRequest(format!("cursor: {why}"));
        let json = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|e| bad(format!("not base64url: {e}")))?;
        let map: BTreeMap<String, String> =
            serde_json::from_slice(&json).map_err(|e| bad(format!("not a cursor: {e}")))?;
        let mut positions = BTreeMap::new();
        for (k, v) in map {
            let shard: u16 = k
                .parse()
                .map_err(|_| bad(format!("shard {k:?} is not a u16")))?;
            positions.insert(shard, v);
        }
        Ok(Self { positions })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_is_never_empty() {
        let empty = CompositeCursor::new();
        let text = empty.encode().unwrap();
        assert!(!text.is_empty(), "even the start cursor has text");
        assert_eq!(CompositeCursor::decode(&text).unwrap(), empty);
        let mut c = CompositeCursor::new();
        c.set(0, "17".into());
        c.set(65535, "1700000000-3".into());
        let text = c.encode().unwrap();
        assert_eq!(CompositeCursor::decode(&text).unwrap(), c);
    }

    #[test]
    fn garbage_is_a_typed_error() {
        for bad in ["!!!", "bm90IGpzb24", "eyJ4IjoiMSJ9", "eyI3MDAwMCI6IjEifQ"] {
            assert!(
                matches!(
                    CompositeCursor::decode(bad),
                    Err(BusError::InvalidRequest(_))
                ),
                "{bad}"
            );
        }
    }
}
