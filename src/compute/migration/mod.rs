//! Migration (COMPUTE.md §2), pure parts: the 0x0500 wire codec
//! ([`wire`]), snapshot chunking and reassembly ([`chunks`]), and the
//! buffers that carry events across a migration without loss or repeats
//! ([`replay`]). The orchestrator, source and target state machines and
//! the mesh glue build on these.

pub mod chunks;
pub mod replay;
pub mod wire;

pub use chunks::{
    ChunkError, ChunkGroup, ChunkWriter, SnapshotReassembler, chunk_count, encode_snapshot_chunks,
    split_snapshot,
};
pub use replay::{
    CaptureOutcome, DrainError, DrainReport, InsertOutcome, ReplayBuffer, ReplayError, ReplayGap,
    SourceBuffer, UnknownProducers,
};
pub use wire::{FailureReason, MigrationMessage, MigrationWireError};
