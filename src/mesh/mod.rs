//! The encrypted UDP mesh (WIRE.md §1–7): Noise NKpsk0 handshakes, sessions
//! with per-direction keys and an anti-replay window, heartbeats and failure
//! detection, streams with credit windows, and — between two Net nodes —
//! identity binding and retransmitting reliable streams. See
//! `docs/mesh.md`.
//!
//! The protocol modules (`crypto`, `replay`, `handshake`, `packet`,
//! `credit`, `reliable`, `failure`, `hello`) are pure: bytes and time in,
//! bytes out.

pub mod credit;
pub mod crypto;
pub mod failure;
pub mod handshake;
pub mod hello;
pub mod packet;
pub mod reliable;
pub mod replay;

pub use credit::{Backpressure, DEFAULT_WINDOW, TxCredit, packet_cost};
pub use crypto::{AuthError, PacketKey, Role, SessionKeys};
pub use failure::{FailureDetector, Health};
pub use handshake::{Accepted, HandshakeError, HandshakeForm, Initiator, Responder, prologue};
pub use hello::{Hello, HelloError};
pub use packet::{OpenError, PacketKind};
pub use reliable::{LegacyGate, RelAck, ReliableReceiver, ReliableSender};
pub use replay::{Advance, ReplayError, ReplayWindow};
