//! The encrypted UDP mesh (WIRE.md §1–7): Noise NKpsk0 handshakes, sessions
//! with per-direction keys and an anti-replay window, heartbeats and failure
//! detection, streams with credit windows, and — between two Net nodes —
//! identity binding and retransmitting reliable streams. See
//! `docs/mesh.md`.
//!
//! The protocol modules (`crypto`, `replay`, `handshake`, `packet`,
//! `credit`, `reliable`, `failure`, `hello`, `session`, `pathsize`) are pure: bytes and
//! time in, bytes out. `node` puts them on a socket; `io` is the only
//! module with `unsafe` (batched syscalls).
//!
//! With the `test-util` feature (tests only, never a release libnet):
//! `filter` (an outbound packet filter simulating loss, duplication,
//! reordering and partitions), node hooks, and fixed-ephemeral handshakes
//! for the test vectors.

mod bufpool;
pub mod capability;
pub mod channels;
pub mod config;
pub mod credit;
pub mod crypto;
pub mod failure;
#[cfg(feature = "test-util")]
pub mod filter;
pub mod handshake;
pub mod hello;
mod inbound;
mod io;
mod node;
mod noise_dh;
mod outbox;
pub mod packet;
pub mod pathsize;
mod peer;
pub mod reliable;
pub mod replay;
pub mod routing;
pub mod session;
mod stream;
pub mod traversal;

pub use config::{ConfigError, ConnectForm, MeshConfig};
pub use credit::{Backpressure, DEFAULT_WINDOW, TxCredit, WindowOffer, packet_cost};
pub use crypto::{AuthError, Cipher, PacketKey, Role, SessionKeys};
pub use failure::{FailureDetector, Health};
#[cfg(feature = "test-util")]
pub use filter::{DropTo, NetemFilter, PacketFilter, Verdict};
pub use handshake::{Accepted, HandshakeError, HandshakeForm, Initiator, Responder, prologue};
pub use hello::{Hello, HelloError};
pub use inbound::InboundEvent;
pub(crate) use node::TagStamp;
pub use node::{
    CONTINUITY_SUBPROTOCOLS, CapabilityError, ChainStatusInfo, ChannelError, ContinuityError,
    ContinuityEvent, DirectOutcome, MeshError, MeshNode, NatStatus, PartitionStatus, PeerInfo,
    ProofVerdict, PublishReport, ReconcileOutcome, RelayReason, SUBPROTOCOL_STREAM_BASE,
    SubprotocolHandler, TraversalSettings,
};
pub use packet::{OpenError, PacketKind};
pub use pathsize::{PathProbe, PathProbeAck};
pub use reliable::{LegacyGate, RelAck, ReliableReceiver, ReliableSender};
pub use replay::{Advance, ReplayError, ReplayWindow};
