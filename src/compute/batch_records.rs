//! A batch of events packed for a daemon in another language: the payload
//! of a ProcessBatch work item (`NET_COMPUTE_WORK_PROCESS_BATCH`).
//!
//! The events lie back to back, each `producer (u64 LE) ‖ sequence (u64 LE)
//! ‖ length (u32 LE) ‖ bytes`. The batch is packed once, when the daemon
//! call is made, and handed to the SDK as it is: one buffer per batch
//! rather than one allocation per event on the way.

use crate::compute::CausalEvent;

/// Bytes before each event's payload.
pub const BATCH_RECORD_HEADER: usize = 20;

/// The events of one batch, packed (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchRecords {
    bytes: Vec<u8>,
    count: usize,
}

/// An event whose payload does not fit a record's `u32` length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("event {index} of the batch has {len} bytes; a batch record holds at most 4 GiB - 1")]
pub struct RecordTooLarge {
    /// The event's position in the batch.
    pub index: usize,
    /// Its payload's length.
    pub len: usize,
}

impl BatchRecords {
    /// Packs `events` in order.
    ///
    /// # Errors
    /// [`RecordTooLarge`] for an event of 4 GiB or more.
    pub fn pack(events: &[CausalEvent]) -> Result<Self, RecordTooLarge> {
        let size = events
            .iter()
            .map(|e| BATCH_RECORD_HEADER + e.payload.len())
            .sum();
        let mut bytes = Vec::with_capacity(size);
        for (index, event) in events.iter().enumerate() {
            let len = u32::try_from(event.payload.len()).map_err(|_| RecordTooLarge {
                index,
                len: event.payload.len(),
            })?;
            bytes.extend_from_slice(&event.producer().to_le_bytes());
            bytes.extend_from_slice(&event.sequence().to_le_bytes());
            bytes.extend_from_slice(&len.to_le_bytes());
            bytes.extend_from_slice(&event.payload);
        }
        Ok(Self {
            bytes,
            count: events.len(),
        })
    }

    /// How many events.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The first event's producer and sequence.
    pub fn first(&self) -> Option<(u64, u64)> {
        self.iter().next().map(|(p, s, _)| (p, s))
    }

    /// The events as (producer, sequence, payload), in order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64, &[u8])> + '_ {
        let mut rest = &self.bytes[..];
        std::iter::from_fn(move || {
            let (header, after) = rest.split_first_chunk::<BATCH_RECORD_HEADER>()?;
            let word = |at: usize| {
                let mut b = [0; 8];
                b.copy_from_slice(&header[at..at + 8]);
                u64::from_le_bytes(b)
            };
            let len = u32::from_le_bytes([header[16], header[17], header[18], header[19]]);
            // Packed by `pack`: every record is whole.
            let (payload, next) = after.split_at(len as usize);
            rest = next;
            Some((word(0), word(8), payload))
        })
    }

    /// The packed bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The packed bytes, taken.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_laid_out_as_the_abi_says_and_read_back() {
        let events = [
            CausalEvent::bare(7, 1, b"ab".to_vec()),
            CausalEvent::bare(8, 9, Vec::new()),
            CausalEvent::bare(u64::MAX, u64::MAX - 1, b"xyz".to_vec()),
        ];
        let records = BatchRecords::pack(&events).unwrap();
        assert_eq!(records.len(), 3);
        let mut expected = Vec::new();
        for e in &events {
            expected.extend_from_slice(&e.producer().to_le_bytes());
            expected.extend_from_slice(&e.sequence().to_le_bytes());
            expected.extend_from_slice(&(e.payload.len() as u32).to_le_bytes());
            expected.extend_from_slice(&e.payload);
        }
        assert_eq!(records.as_bytes(), expected);
        let read: Vec<_> = records.iter().map(|(p, s, b)| (p, s, b.to_vec())).collect();
        let want: Vec<_> = events
            .iter()
            .map(|e| (e.producer(), e.sequence(), e.payload.clone()))
            .collect();
        assert_eq!(read, want);
        assert_eq!(records.first(), Some((7, 1)));
        let empty = BatchRecords::pack(&[]).unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.first(), None);
        assert_eq!(empty.iter().count(), 0);
    }
}
