//! A bounds-checked little-endian reader shared by the compute decoders
//! (migration messages, snapshots, the ledger). It never panics: every read
//! past the end is a [`Truncated`] that the caller turns into its own error.

use crate::cortex::causal::CausalLink;

/// A read ran past the end of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Truncated {
    /// The field being read.
    pub what: &'static str,
    /// Bytes the field needs.
    pub needed: usize,
    /// Bytes that were left.
    pub available: usize,
}

/// Reads fields front to back from a byte slice.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// Bytes not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Bytes read so far.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Truncated> {
        let available = self.remaining();
        if n > available {
            return Err(Truncated {
                what,
                needed: n,
                available,
            });
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], Truncated> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, Truncated> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, Truncated> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, Truncated> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, Truncated> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A 32-byte CausalLink (STORAGE.md §14).
    pub(crate) fn causal_link(&mut self, what: &'static str) -> Result<CausalLink, Truncated> {
        Ok(CausalLink {
            origin_hash: self.u64(what)?,
            horizon_encoded: self.u64(what)?,
            sequence: self.u64(what)?,
            parent_hash: self.u64(what)?,
        })
    }
}
