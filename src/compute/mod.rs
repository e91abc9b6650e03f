//! Compute (COMPUTE.md §1–§2): daemons that run where their inputs are and
//! migrate between nodes without losing or repeating an event.
//!
//! This module is the pure foundation: no sockets, no FFI, and no clocks
//! except explicit `now` arguments and the `*_now` conveniences.
//!
//! - [`daemon`]: the [`MeshDaemon`] contract, [`CausalEvent`], [`DaemonError`].
//! - [`host`]: [`DaemonHost`], one daemon with its keypair, chain head,
//!   observed horizon, subscription ledger and stats (§1.2).
//! - [`snapshot`]: the v0.11 `CDS1` [`StateSnapshot`] bytes (§2.4) and the
//!   Net-only [`NetSnapshotExt`] that carries the head payload and horizon.
//! - [`ledger`]: the subscription ledger and its `bindings_bytes` (§1.8).
//! - [`migration`]: the 0x0500 wire codec, chunking and reassembly, and the
//!   source and target replay buffers (§2.2–2.8).

mod codec;
pub mod daemon;
pub mod host;
pub mod ledger;
pub mod migration;
pub mod snapshot;

pub use daemon::{CausalEvent, DaemonError, MeshDaemon};
pub use host::{DaemonHost, DaemonSnapshot, DaemonStats, ObservedHorizon};
pub use ledger::{LedgerError, SubscriptionLedger};
pub use snapshot::{NetSnapshotExt, SnapshotError, StateSnapshot};
