//! Typed views of a RedEX file: `TypedRedexFile<T>` (postcard-encoded serde
//! values) and `OrderedAppender` (one producer's appends, in call order).

use std::marker::PhantomData;
use std::ops::RangeBounds;
use std::sync::Mutex;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::{RedexError, Result};
use super::file::RedexFile;
use super::tail::{RedexTail, TailItem};

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|source| RedexError::Codec { seq: None, source })
}

fn decode<T: DeserializeOwned>(seq: u64, bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|source| RedexError::Codec {
        seq: Some(seq),
        source,
    })
}

/// A RedEX file whose payloads are `T` values encoded with postcard.
pub struct TypedRedexFile<T> {
    file: RedexFile,
    _values: PhantomData<fn() -> T>,
}

impl<T> Clone for TypedRedexFile<T> {
    fn clone(&self) -> Self {
        Self {
            file: self.file.clone(),
            _values: PhantomData,
        }
    }
}

impl<T: Serialize + DeserializeOwned> TypedRedexFile<T> {
    /// Wraps `file`; its existing entries must be postcard `T`s to be read.
    pub fn new(file: RedexFile) -> Self {
        Self {
            file,
            _values: PhantomData,
        }
    }

    /// The underlying file.
    pub fn file(&self) -> &RedexFile {
        &self.file
    }

    /// Appends `value`; returns its sequence number.
    ///
    /// # Errors
    /// [`RedexError::Codec`] if it cannot be encoded; otherwise as
    /// [`RedexFile::append`].
    pub fn append(&self, value: &T) -> Result<u64> {
        self.file.append(&encode(value)?)
    }

    /// Appends `values` as one batch; `None` for an empty slice.
    ///
    /// # Errors
    /// As [`append`](Self::append); nothing is appended on error.
    pub fn append_batch(&self, values: &[T]) -> Result<Option<u64>> {
        let encoded = values.iter().map(encode).collect::<Result<Vec<_>>>()?;
        self.file.append_batch(&encoded)
    }

    /// The value at `seq`, if there is such an entry.
    ///
    /// # Errors
    /// [`RedexError::Codec`] if the entry is not a `T`; otherwise as
    /// [`RedexFile::read`].
    pub fn read(&self, seq: u64) -> Result<Option<T>> {
        self.file
            .read(seq)?
            .map(|bytes| decode(seq, &bytes))
            .transpose()
    }

    /// The values with sequence numbers in `range`, in order.
    ///
    /// # Errors
    /// As [`read`](Self::read).
    pub fn read_range(&self, range: impl RangeBounds<u64>) -> Result<Vec<(u64, T)>> {
        self.file
            .read_range(range)?
            .into_iter()
            .map(|(seq, bytes)| Ok((seq, decode(seq, &bytes)?)))
            .collect()
    }

    /// A typed reader from `from_seq` on.
    pub fn tail(&self, from_seq: u64) -> TypedTail<T> {
        TypedTail {
            tail: self.file.tail(from_seq),
            _values: PhantomData,
        }
    }
}

/// What a [`TypedTail`] delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TypedItem<T> {
    /// The next value.
    Value {
        /// Its sequence number.
        seq: u64,
        /// The decoded value.
        value: T,
    },
    /// Entries were removed before this reader reached them.
    Lagged {
        /// First missed sequence number.
        missed_from: u64,
        /// Where delivery resumes.
        missed_to: u64,
    },
}

/// A reader of a [`TypedRedexFile`]; an iterator that blocks per item.
pub struct TypedTail<T> {
    tail: RedexTail,
    _values: PhantomData<fn() -> T>,
}

impl<T> TypedTail<T> {
    /// The underlying byte tail (for timeouts and closing).
    pub fn inner(&mut self) -> &mut RedexTail {
        &mut self.tail
    }
}

impl<T: DeserializeOwned> Iterator for TypedTail<T> {
    type Item = Result<TypedItem<T>>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(match self.tail.next()? {
            Ok(TailItem::Entry(entry)) => {
                decode(entry.seq, &entry.payload).map(|value| TypedItem::Value {
                    seq: entry.seq,
                    value,
                })
            }
            Ok(TailItem::Lagged {
                missed_from,
                missed_to,
            }) => Ok(TypedItem::Lagged {
                missed_from,
                missed_to,
            }),
            Err(e) => Err(e),
        })
    }
}

/// One producer's view of a file: its appends land in the order it makes
/// them, each batch on consecutive sequence numbers, and it remembers the
/// last sequence number it was given. Sharing one `OrderedAppender` between
/// threads serialises them, so "happened before" in the program is "lower
/// seq" in the log even when each thread does several steps per entry.
#[derive(Debug)]
pub struct OrderedAppender {
    file: RedexFile,
    last_seq: Mutex<Option<u64>>,
}

impl OrderedAppender {
    /// An appender over `file`.
    pub fn new(file: RedexFile) -> Self {
        Self {
            file,
            last_seq: Mutex::new(None),
        }
    }

    /// Appends `payload`; returns its sequence number.
    ///
    /// # Errors
    /// As [`RedexFile::append`].
    pub fn append(&self, payload: &[u8]) -> Result<u64> {
        let mut last = self.last_seq.lock().unwrap_or_else(|e| e.into_inner());
        let seq = self.file.append(payload)?;
        *last = Some(seq);
        Ok(seq)
    }

    /// Appends a batch; `None` for empty input.
    ///
    /// # Errors
    /// As [`RedexFile::append_batch`].
    pub fn append_batch<P: AsRef<[u8]>>(&self, payloads: &[P]) -> Result<Option<u64>> {
        let mut last = self.last_seq.lock().unwrap_or_else(|e| e.into_inner());
        let first = self.file.append_batch_ordered(payloads)?;
        if let Some(first) = first {
            *last = Some(first + payloads.len() as u64 - 1);
        }
        Ok(first)
    }

    /// Runs `produce` with this appender held, so several appends (or an
    /// append that depends on state read inside `produce`) happen with no
    /// other user of this appender in between.
    pub fn with_exclusive<R>(&self, produce: impl FnOnce(&RedexFile) -> R) -> R {
        let mut last = self.last_seq.lock().unwrap_or_else(|e| e.into_inner());
        let result = produce(&self.file);
        let next = self.file.next_seq();
        if next > 0 {
            *last = Some(next - 1);
        }
        result
    }

    /// The last sequence number this appender was given.
    pub fn last_seq(&self) -> Option<u64> {
        *self.last_seq.lock().unwrap_or_else(|e| e.into_inner())
    }
}
