//! The checks behind every fuzz target, one module per target, each a
//! `pub fn check(data: &[u8])` that panics when the input breaks a property.
//!
//! Two users share them: the cargo-fuzz targets in `fuzz_targets/` (nightly,
//! libFuzzer), which are one line each, and `tests/fuzz_replay.rs` in the
//! main crate (stable, part of `make test`), which replays every committed
//! corpus input and crash input through the same function. So a property
//! is stated once, and a regression fails CI without a nightly toolchain.
//!
//! Keep these free of libFuzzer APIs: only `net` and its dependencies.

pub mod bus_decode;
pub mod capability_decode;
pub mod capability_diff;
pub mod channel_name;
pub mod channels_membership;
pub mod continuity_decode;
pub mod cortex_decode;
pub mod envelope_from_bytes;
pub mod fork_record_decode;
pub mod ledger_decode;
pub mod mesh_decode;
pub mod mesh_routing;
pub mod migration_decode;
pub mod migration_reassembly;
pub mod portmap_decode;
pub mod proximity_pingwaves;
pub mod redex_idx_record;
pub mod redex_recovery;
pub mod rules_json;
pub mod safety_json;
pub mod snapshot_decode;
pub mod snapshot_ext_decode;
pub mod snapshot_payload_decode;
pub mod token_from_bytes;
pub mod traceparent;
pub mod traversal_rendezvous;
pub mod upnp_decode;
pub mod wire_decode;

/// A check: panics when `data` breaks the target's property.
pub type Check = fn(data: &[u8]);

/// Every target: its name (the directory under `corpus/` and
/// `regressions/`) and its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("bus_decode", bus_decode::check),
    ("capability_decode", capability_decode::check),
    ("capability_diff", capability_diff::check),
    ("channel_name", channel_name::check),
    ("channels_membership", channels_membership::check),
    ("continuity_decode", continuity_decode::check),
    ("cortex_decode", cortex_decode::check),
    ("envelope_from_bytes", envelope_from_bytes::check),
    ("fork_record_decode", fork_record_decode::check),
    ("ledger_decode", ledger_decode::check),
    ("mesh_decode", mesh_decode::check),
    ("migration_decode", migration_decode::check),
    ("migration_reassembly", migration_reassembly::check),
    ("mesh_routing", mesh_routing::check),
    ("portmap_decode", portmap_decode::check),
    ("proximity_pingwaves", proximity_pingwaves::check),
    ("redex_idx_record", redex_idx_record::check),
    ("redex_recovery", redex_recovery::check),
    ("snapshot_decode", snapshot_decode::check),
    ("snapshot_ext_decode", snapshot_ext_decode::check),
    ("snapshot_payload_decode", snapshot_payload_decode::check),
    ("rules_json", rules_json::check),
    ("safety_json", safety_json::check),
    ("token_from_bytes", token_from_bytes::check),
    ("traceparent", traceparent::check),
    ("traversal_rendezvous", traversal_rendezvous::check),
    ("upnp_decode", upnp_decode::check),
    ("wire_decode", wire_decode::check),
];
