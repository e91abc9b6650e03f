//! A small bounded broadcast channel for blocking readers: every receiver
//! sees every value in order, or is told exactly how many it missed when it
//! fell further behind than the buffer holds. Never silently drops.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::cancel::CancelToken;

/// What a receiver gets.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Recv<T> {
    /// The next value.
    Value(T),
    /// This many values were sent while the receiver was too far behind; it
    /// continues with the oldest one still buffered.
    Lagged(u64),
    /// Nothing arrived within the timeout.
    Timeout,
    /// The sender closed and every value has been received.
    Closed,
    /// The call's [`CancelToken`] was cancelled.
    Cancelled,
}

struct State<T> {
    buffer: VecDeque<T>,
    /// Index (in send order) of `buffer[0]`.
    first_index: u64,
    closed: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    sent: Condvar,
    capacity: usize,
    /// Receivers blocked in a wait right now (for tests).
    waiting: std::sync::atomic::AtomicUsize,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The sending side.
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// A receiving side; each starts at the next value sent after it subscribed.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    next_index: u64,
    closed: Arc<AtomicBool>,
}

/// Ends one receiver from another thread, waking it if it is blocked.
pub struct ReceiverCloser<T> {
    shared: Arc<Shared<T>>,
    closed: Arc<AtomicBool>,
}

impl<T> ReceiverCloser<T> {
    /// The receiver's pending and later `recv_timeout` return `Closed`.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        drop(self.shared.lock());
        self.shared.sent.notify_all();
    }

    /// Receivers of this channel blocked in a wait right now (tests use it
    /// to know a receive is really waiting).
    #[cfg(feature = "test-util")]
    pub fn waiting(&self) -> usize {
        self.shared.waiting.load(Ordering::SeqCst)
    }
}

impl<T> std::fmt::Debug for ReceiverCloser<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverCloser").finish_non_exhaustive()
    }
}

/// A channel keeping the last `capacity` values.
pub(crate) fn channel<T: Clone>(capacity: usize) -> Sender<T> {
    Sender {
        shared: Arc::new(Shared {
            state: Mutex::new(State {
                buffer: VecDeque::with_capacity(capacity.min(1024)),
                first_index: 0,
                closed: false,
            }),
            sent: Condvar::new(),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            capacity: capacity.max(1),
        }),
    }
}

impl<T: Clone> Sender<T> {
    /// Sends `value` to every receiver.
    #[cfg(test)]
    pub(crate) fn send(&self, value: T) {
        self.send_all(std::iter::once(value));
    }

    /// Sends each of `values` in order, waking receivers once.
    pub(crate) fn send_all(&self, values: impl IntoIterator<Item = T>) {
        let mut state = self.shared.lock();
        let mut sent = false;
        for value in values {
            if state.buffer.len() == self.shared.capacity {
                state.buffer.pop_front();
                state.first_index += 1;
            }
            state.buffer.push_back(value);
            sent = true;
        }
        drop(state);
        if sent {
            self.shared.sent.notify_all();
        }
    }

    /// A new receiver, starting after everything sent so far.
    pub(crate) fn subscribe(&self) -> Receiver<T> {
        let state = self.shared.lock();
        Receiver {
            shared: self.shared.clone(),
            next_index: state.first_index + state.buffer.len() as u64,
            closed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Ends the channel: receivers get what is buffered, then `Closed`.
    pub(crate) fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.sent.notify_all();
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.sent.notify_all();
    }
}

impl<T: Clone + Send + 'static> Receiver<T> {
    /// Waits up to `timeout` (forever with `None`) for the next value.
    pub fn recv_timeout(&mut self, timeout: Option<Duration>) -> Recv<T> {
        self.recv_cancellable(timeout, None)
    }

    /// [`recv_timeout`](Self::recv_timeout) that also returns
    /// [`Recv::Cancelled`] as soon as `cancel` is cancelled.
    pub fn recv_cancellable(
        &mut self,
        timeout: Option<Duration>,
        cancel: Option<&CancelToken>,
    ) -> Recv<T> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let _wake = cancel.map(|token| {
            let shared = self.shared.clone();
            token.on_cancel(move || {
                drop(shared.lock());
                shared.sent.notify_all();
            })
        });
        let mut state = self.shared.lock();
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Recv::Closed;
            }
            if cancel.is_some_and(CancelToken::is_cancelled) {
                return Recv::Cancelled;
            }
            if self.next_index < state.first_index {
                let missed = state.first_index - self.next_index;
                self.next_index = state.first_index;
                return Recv::Lagged(missed);
            }
            let position = (self.next_index - state.first_index) as usize;
            if let Some(value) = state.buffer.get(position) {
                self.next_index += 1;
                return Recv::Value(value.clone());
            }
            if state.closed {
                return Recv::Closed;
            }
            let remaining = match deadline {
                None => None,
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Recv::Timeout;
                    }
                    Some(deadline - now)
                }
            };
            self.shared.waiting.fetch_add(1, Ordering::SeqCst);
            state = match remaining {
                None => self
                    .shared
                    .sent
                    .wait(state)
                    .unwrap_or_else(|e| e.into_inner()),
                Some(remaining) => {
                    self.shared
                        .sent
                        .wait_timeout(state, remaining)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            self.shared.waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Receivers of this channel blocked in a wait right now (tests use it
    /// to know a receive is really waiting).
    #[cfg(feature = "test-util")]
    pub fn waiting(&self) -> usize {
        self.shared.waiting.load(Ordering::SeqCst)
    }

    /// The next value if one is ready.
    pub fn try_recv(&mut self) -> Recv<T> {
        self.recv_timeout(Some(Duration::ZERO))
    }

    /// A handle that closes this receiver from another thread.
    pub fn closer(&self) -> ReceiverCloser<T> {
        ReceiverCloser {
            shared: self.shared.clone(),
            closed: self.closed.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("next_index", &self.next_index)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_receiver_sees_every_value_or_a_lag() {
        let tx = channel::<u64>(4);
        let mut early = tx.subscribe();
        for i in 0..3 {
            tx.send(i);
        }
        let mut late = tx.subscribe();
        for i in 3..10 {
            tx.send(i);
        }
        assert_eq!(early.try_recv(), Recv::Lagged(6));
        for i in 6..10 {
            assert_eq!(early.try_recv(), Recv::Value(i));
        }
        assert_eq!(early.try_recv(), Recv::Timeout);
        assert_eq!(late.try_recv(), Recv::Lagged(3));
        assert_eq!(late.try_recv(), Recv::Value(6));
        tx.close();
        assert_eq!(early.try_recv(), Recv::Closed);
    }

    #[test]
    fn blocked_receivers_wake_on_send_and_close() {
        let tx = channel::<u8>(8);
        let mut rx = tx.subscribe();
        let waiter = std::thread::spawn(move || (rx.recv_timeout(None), rx.recv_timeout(None)));
        std::thread::sleep(Duration::from_millis(10));
        tx.send(7);
        tx.close();
        assert_eq!(waiter.join().unwrap(), (Recv::Value(7), Recv::Closed));
    }
}
