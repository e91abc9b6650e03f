//! One session's packet state: the two keys, the shared transmit counter,
//! the receive replay window, and the per-session control-stream sequence.
//! Sealing and opening are thread-safe (`&self`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::crypto::{PacketKey, Role, SessionKeys};
use super::packet::{self, OpenError, PacketKind};
use super::replay::{Advance, ReplayError, ReplayWindow};
use crate::wire::NetHeader;

/// Why a received packet was not accepted by a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// Replayed, too old, or the reserved counter.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// Malformed or failed authentication.
    #[error(transparent)]
    Open(#[from] OpenError),
}

/// The transmit counter ran out (2^64 − 1 packets): the session must be
/// replaced by a new handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("session counter exhausted; re-handshake")]
pub struct CounterExhausted;

/// A session's packet protection.
pub struct Session {
    session_id: u64,
    role: Role,
    handshake_hash: [u8; 32],
    tx: PacketKey,
    rx: PacketKey,
    tx_counter: AtomicU64,
    replay: Mutex<ReplayWindow>,
    control_seq: AtomicU64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("session_id", &format_args!("{:#018x}", self.session_id))
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// What opening a packet yielded.
#[derive(Debug)]
pub struct Opened {
    /// The packet's header.
    pub header: NetHeader,
    /// Where the plaintext is inside the buffer that was opened.
    pub plaintext: std::ops::Range<usize>,
    /// Set when the counter jumped past the window (logged by the caller).
    pub jump: Option<u64>,
}

impl Session {
    /// A session from a completed handshake.
    pub fn new(keys: &SessionKeys, role: Role) -> Self {
        Self {
            session_id: keys.session_id,
            role,
            handshake_hash: keys.handshake_hash,
            tx: PacketKey::new(&keys.tx_key, keys.session_id),
            rx: PacketKey::new(&keys.rx_key, keys.session_id),
            tx_counter: AtomicU64::new(0),
            replay: Mutex::new(ReplayWindow::new()),
            control_seq: AtomicU64::new(0),
        }
    }

    /// The session id.
    pub fn id(&self) -> u64 {
        self.session_id
    }

    /// Our handshake role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The Noise handshake hash (what identity hellos sign).
    pub fn handshake_hash(&self) -> &[u8; 32] {
        &self.handshake_hash
    }

    /// Packets sealed so far.
    pub fn packets_sent(&self) -> u64 {
        self.tx_counter.load(Ordering::Relaxed)
    }

    /// The next sequence of the control stream (StreamWindow grants).
    pub fn next_control_seq(&self) -> u64 {
        self.control_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Seals one packet into `out`, taking the next transmit counter.
    ///
    /// # Errors
    /// [`CounterExhausted`] after 2^64 − 1 packets.
    pub fn seal(
        &self,
        kind: &PacketKind,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CounterExhausted> {
        let counter = self.next_counter()?;
        packet::seal(&self.tx, self.session_id, counter, kind, plaintext, out);
        Ok(())
    }

    /// Seals one packet in place (see [`packet::seal_in_place`]), taking
    /// the next transmit counter.
    ///
    /// # Errors
    /// [`CounterExhausted`] after 2^64 − 1 packets.
    pub fn seal_in_place(
        &self,
        kind: &PacketKind,
        buf: &mut Vec<u8>,
    ) -> Result<(), CounterExhausted> {
        let counter = self.next_counter()?;
        packet::seal_in_place(&self.tx, self.session_id, counter, kind, buf);
        Ok(())
    }

    fn next_counter(&self) -> Result<u64, CounterExhausted> {
        let counter = self.tx_counter.fetch_add(1, Ordering::Relaxed);
        if counter == u64::MAX {
            self.tx_counter.store(u64::MAX, Ordering::Relaxed);
            return Err(CounterExhausted);
        }
        Ok(counter)
    }

    /// Checks the replay window, authenticates and decrypts `packet` in
    /// place (WIRE.md §4.4 steps 2–5). `header` was decoded from it and
    /// belongs to this session.
    ///
    /// # Errors
    /// [`RecvError`]; the window is unchanged then.
    pub fn open(&self, header: &NetHeader, packet: &mut [u8]) -> Result<Opened, RecvError> {
        let counter = header.counter();
        self.replay
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .check(counter)?;
        let plaintext = packet::open(&self.rx, header, packet)?;
        let advance = self
            .replay
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .commit(counter)?;
        let jump = match advance {
            Advance::Jump { jump } => Some(jump),
            Advance::InWindow => None,
        };
        Ok(Opened {
            header: *header,
            plaintext,
            jump,
        })
    }
}
