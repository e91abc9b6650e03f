//! A node's pool of datagram buffers.
//!
//! Every outgoing packet is built in a buffer of up to a datagram's size
//! (65 000 bytes between Net nodes on loopback), sealed in place, written
//! and dropped; every received packet's plaintext is copied into one and
//! queued until the application takes it. Allocated and freed on different
//! threads at hundreds of thousands per second, such buffers make the
//! allocator hand memory back to the kernel and fault it in again (measured
//! in the two-process bench: page faults and page clearing were a fifth of
//! the sending thread's time at 1200 B per event). The pool keeps a bounded
//! number of them alive instead; what does not fit is freed as before.

use std::sync::Mutex;

/// Buffers kept at most (per node): enough for a few writes' worth of
/// full-size datagrams in flight between the caller, the writer and the
/// receive path.
const MAX_POOLED: usize = 64;

/// Buffers larger than this are freed, never pooled (a pool of full-size
/// datagrams is bounded by `MAX_POOLED * MAX_POOLED_CAPACITY`, 8 MiB).
const MAX_POOLED_CAPACITY: usize = 128 * 1024;

/// Buffers smaller than this are not worth pooling (the allocator keeps
/// those in its own caches).
const MIN_POOLED_CAPACITY: usize = 4 * 1024;

/// A bounded stack of empty byte buffers.
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
}

impl BufferPool {
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty buffer with room for at least `capacity` bytes: a pooled
    /// one when the pool has one (and `capacity` is worth one), else a new
    /// one.
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        if capacity < MIN_POOLED_CAPACITY {
            return Vec::with_capacity(capacity);
        }
        let pooled = self.lock().pop();
        match pooled {
            Some(mut buf) => {
                buf.reserve(capacity);
                buf
            }
            None => Vec::with_capacity(capacity),
        }
    }

    /// A copy of `bytes`, in a pooled buffer when it is long enough for
    /// one to be worth it (short copies come from the allocator's caches).
    pub fn copy_of(&self, bytes: &[u8]) -> Vec<u8> {
        let mut buf = self.take(bytes.len());
        buf.extend_from_slice(bytes);
        buf
    }

    /// Gives `buf` back (cleared), unless the pool is full or the buffer
    /// too small or too large to keep.
    pub fn give(&self, buf: Vec<u8>) {
        self.give_all(std::iter::once(buf));
    }

    /// [`give`](Self::give) for many buffers, under one lock.
    pub fn give_all(&self, bufs: impl IntoIterator<Item = Vec<u8>>) {
        let mut bufs = bufs
            .into_iter()
            .filter(|b| (MIN_POOLED_CAPACITY..=MAX_POOLED_CAPACITY).contains(&b.capacity()))
            .peekable();
        if bufs.peek().is_none() {
            return;
        }
        let mut free = self.lock();
        for mut buf in bufs {
            if free.len() >= MAX_POOLED {
                break;
            }
            buf.clear();
            free.push(buf);
        }
    }

    /// Buffers pooled now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_empty_and_the_pool_stays_bounded() {
        let pool = BufferPool::new();
        let mut buf = pool.take(10_000);
        assert!(buf.capacity() >= 10_000);
        buf.extend_from_slice(&[7; 5000]);
        let ptr = buf.as_ptr();
        pool.give(buf);
        assert_eq!(pool.len(), 1);
        let again = pool.take(5000);
        assert!(again.is_empty(), "a pooled buffer is handed out cleared");
        assert_eq!(again.as_ptr(), ptr, "the pooled buffer is reused");
        pool.give_all((0..MAX_POOLED + 10).map(|_| Vec::with_capacity(8192)));
        assert_eq!(pool.len(), MAX_POOLED);
    }

    #[test]
    fn tiny_and_huge_buffers_are_not_kept() {
        let pool = BufferPool::new();
        pool.give(Vec::with_capacity(100));
        pool.give(Vec::with_capacity(MAX_POOLED_CAPACITY + 1));
        assert_eq!(pool.len(), 0);
        // Short requests never take a pooled buffer.
        pool.give(Vec::with_capacity(8192));
        assert!(pool.take(100).capacity() < 8192);
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.copy_of(&[1; 5000]).capacity(), 8192);
        // A pooled buffer smaller than asked for grows to the request.
        pool.give(Vec::with_capacity(8192));
        assert!(pool.take(20_000).capacity() >= 20_000);
    }
}
