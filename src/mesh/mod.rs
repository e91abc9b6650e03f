//! The encrypted UDP mesh (WIRE.md §1–7): Noise NKpsk0 handshakes, sessions
//! with per-direction keys and an anti-replay window, heartbeats and failure
//! detection, streams with credit windows, and — between two Net nodes —
//! identity binding and retransmitting reliable streams. See
//! `docs/mesh.md`.
//!
//! The protocol modules (`crypto`, `replay`, `handshake`, `packet`) are
//! pure: bytes and time in, bytes out.

pub mod crypto;
pub mod handshake;
pub mod packet;
pub mod replay;

pub use crypto::{AuthError, PacketKey, Role, SessionKeys};
pub use handshake::{Accepted, HandshakeError, HandshakeForm, Initiator, Responder, prologue};
pub use packet::{OpenError, PacketKind};
pub use replay::{Advance, ReplayError, ReplayWindow};
