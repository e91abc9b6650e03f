//! One session's packet state: the keys (ChaCha20-Poly1305, and
//! AES-256-GCM for when it is negotiated), the shared transmit counter, the
//! receive replay window, and the per-session control-stream sequence.
//! Sealing and opening are thread-safe (`&self`) and pick the cipher
//! themselves (see [`Session::enable_aes`]), so callers never name one.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::crypto::{AuthError, Cipher, PacketKey, Role, SessionKeys};
use super::packet::{self, OpenError, PacketKind};
use super::replay::{Advance, ReplayError, ReplayWindow};
use crate::wire::{NetHeader, flags, ids};

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
    aes_tx: PacketKey,
    aes_rx: PacketKey,
    /// Data packets are sealed with AES-256-GCM (negotiated both ways).
    aes_send: AtomicBool,
    /// AES-flagged packets are opened (we offered AES to this peer).
    aes_receive: AtomicBool,
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
            aes_tx: PacketKey::with_cipher(Cipher::Aes256Gcm, &keys.aes_tx_key, keys.session_id),
            aes_rx: PacketKey::with_cipher(Cipher::Aes256Gcm, &keys.aes_rx_key, keys.session_id),
            aes_send: AtomicBool::new(false),
            aes_receive: AtomicBool::new(false),
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

    /// Sets the AES-256-GCM switches (`docs/mesh.md`, "Ciphers"). With
    /// `rx_ok`, [`Session::open`] opens packets flagged `AES_256_GCM` under
    /// the AES receive key (without it they fail authentication); with
    /// `tx_ok`, [`Session::seal`] and [`Session::seal_in_place`] seal data
    /// packets with AES-256-GCM. Heartbeats and the control subprotocol
    /// 0x0B00 (hellos, grants) always stay ChaCha20-Poly1305. A session
    /// starts with both off: a v0.11 peer never gets AES.
    ///
    /// Packets in flight across a switch still open: each carries its
    /// cipher in its flag, and both receive keys stay.
    pub fn enable_aes(&self, rx_ok: bool, tx_ok: bool) {
        // Receive first: the peer may start sending AES as soon as it
        // sees the ack that follows this call.
        self.aes_receive.store(rx_ok, Ordering::Release);
        self.aes_send.store(tx_ok, Ordering::Release);
    }

    /// The cipher data packets are sealed with now.
    pub fn tx_cipher(&self) -> Cipher {
        if self.aes_send.load(Ordering::Relaxed) {
            Cipher::Aes256Gcm
        } else {
            Cipher::ChaCha20Poly1305
        }
    }

    /// Whether AES-flagged packets are opened.
    pub fn accepts_aes(&self) -> bool {
        self.aes_receive.load(Ordering::Acquire)
    }

    /// The key a packet of `kind` is sealed with.
    fn tx_key(&self, kind: &PacketKind) -> &PacketKey {
        let control =
            kind.subprotocol_id == ids::STREAM_WINDOW || kind.flags & flags::HEARTBEAT != 0;
        if !control && self.aes_send.load(Ordering::Relaxed) {
            &self.aes_tx
        } else {
            &self.tx
        }
    }

    /// Seals one packet into `out`, taking the next transmit counter, with
    /// the cipher the session uses for `kind` (see [`Session::enable_aes`]).
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
        let key = self.tx_key(kind);
        packet::seal(key, self.session_id, counter, kind, plaintext, out);
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
        let key = self.tx_key(kind);
        packet::seal_in_place(key, self.session_id, counter, kind, buf);
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
    /// place (WIRE.md §4.4 steps 2–5) under the receive key its header flag
    /// names. `header` was decoded from it and belongs to this session.
    ///
    /// # Errors
    /// [`RecvError`]; the window is unchanged then. An AES-flagged packet
    /// while AES is not accepted ([`Session::enable_aes`]) is
    /// [`OpenError::Auth`].
    pub fn open(&self, header: &NetHeader, packet: &mut [u8]) -> Result<Opened, RecvError> {
        let key = match packet::cipher_of(header) {
            Cipher::ChaCha20Poly1305 => &self.rx,
            Cipher::Aes256Gcm if self.accepts_aes() => &self.aes_rx,
            Cipher::Aes256Gcm => return Err(OpenError::Auth(AuthError).into()),
        };
        let counter = header.counter();
        self.replay
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .check(counter)?;
        let plaintext = packet::open(key, header, packet)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::encode_events;

    fn pair() -> (Session, Session) {
        let h = [0x11u8; 32];
        (
            Session::new(&SessionKeys::derive(&h, Role::Initiator), Role::Initiator),
            Session::new(&SessionKeys::derive(&h, Role::Responder), Role::Responder),
        )
    }

    fn data(stream_id: u64) -> PacketKind {
        PacketKind {
            stream_id,
            event_count: 1,
            ..PacketKind::default()
        }
    }

    /// Seals one event from `from` (copying or in place) and opens it at
    /// `to`; returns the header flags it carried.
    fn round_trip(from: &Session, to: &Session, kind: &PacketKind, in_place: bool) -> u8 {
        let payload = encode_events(&[&[0x33u8; 1200][..]]).unwrap();
        let mut out = Vec::new();
        if in_place {
            out.resize(crate::wire::HEADER_SIZE, 0);
            out.extend_from_slice(&payload);
            from.seal_in_place(kind, &mut out).unwrap();
        } else {
            from.seal(kind, &payload, &mut out).unwrap();
        }
        let header = NetHeader::decode(&out).unwrap();
        let opened = to.open(&header, &mut out).unwrap();
        assert_eq!(&out[opened.plaintext], &payload[..]);
        header.flags
    }

    #[test]
    fn seal_and_open_with_both_ciphers() {
        let (a, b) = pair();
        assert_eq!(a.tx_cipher(), Cipher::ChaCha20Poly1305);
        for in_place in [false, true] {
            assert_eq!(round_trip(&a, &b, &data(1), in_place), 0);
        }
        b.enable_aes(true, false);
        a.enable_aes(true, true);
        assert_eq!(a.tx_cipher(), Cipher::Aes256Gcm);
        assert_eq!(b.tx_cipher(), Cipher::ChaCha20Poly1305);
        for in_place in [false, true] {
            assert_eq!(round_trip(&a, &b, &data(1), in_place), flags::AES_256_GCM);
            // b still sends ChaCha, which a opens.
            assert_eq!(round_trip(&b, &a, &data(1), in_place), 0);
        }
        // Reliable data keeps its flag beside the cipher's.
        let reliable = PacketKind {
            flags: flags::RELIABLE,
            ..data(2)
        };
        assert_eq!(
            round_trip(&a, &b, &reliable, false),
            flags::RELIABLE | flags::AES_256_GCM
        );
        // Hellos and grants (0x0B00) and heartbeats stay ChaCha.
        let control = PacketKind {
            subprotocol_id: ids::STREAM_WINDOW,
            ..data(crate::wire::CONTROL_STREAM_ID)
        };
        assert_eq!(round_trip(&a, &b, &control, false), 0);
        let mut out = Vec::new();
        a.seal(&PacketKind::HEARTBEAT, &[], &mut out).unwrap();
        let header = NetHeader::decode(&out).unwrap();
        assert_eq!(header.flags, flags::HEARTBEAT);
        b.open(&header, &mut out).unwrap();
    }

    #[test]
    fn aes_packets_are_refused_until_accepted_and_in_flight_packets_open() {
        let (a, b) = pair();
        let payload = encode_events(&[&b"x"[..]]).unwrap();
        // Sealed with ChaCha before the switch, with AES after it.
        let mut before = Vec::new();
        a.seal(&data(1), &payload, &mut before).unwrap();
        a.enable_aes(false, true);
        let mut after = Vec::new();
        a.seal(&data(1), &payload, &mut after).unwrap();
        let after_header = NetHeader::decode(&after).unwrap();
        assert_eq!(after_header.flags, flags::AES_256_GCM);
        // b did not offer AES: an auth failure, and the window is untouched.
        assert!(!b.accepts_aes());
        assert!(matches!(
            b.open(&after_header, &mut after.clone()),
            Err(RecvError::Open(OpenError::Auth(_)))
        ));
        b.enable_aes(true, false);
        b.open(&after_header, &mut after).unwrap();
        // The ChaCha packet that was in flight still opens (out of order).
        let before_header = NetHeader::decode(&before).unwrap();
        b.open(&before_header, &mut before).unwrap();
        // A forged flag on a ChaCha packet: the AES key refuses it.
        let mut forged = Vec::new();
        let (c, d) = pair();
        c.seal(&data(1), &payload, &mut forged).unwrap();
        forged[3] |= flags::AES_256_GCM;
        d.enable_aes(true, false);
        let header = NetHeader::decode(&forged).unwrap();
        assert!(matches!(
            d.open(&header, &mut forged),
            Err(RecvError::Open(OpenError::Auth(_)))
        ));
    }
}
