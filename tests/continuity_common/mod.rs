//! Causal chains built by hand for the continuity tests (the pure core's
//! in `continuity.rs`, the running nodes' in `mesh_partitions.rs`).
#![allow(dead_code)]

use net::compute::CausalEvent;
use net::cortex::causal::CausalLink;

/// The genesis event of `origin` (sequence 0, no payload).
pub fn genesis(origin: u64) -> CausalEvent {
    CausalEvent {
        link: CausalLink::genesis(origin),
        payload: Vec::new(),
        received_at: 0,
    }
}

/// Events following `from`, one per payload.
pub fn extend(from: &CausalEvent, payloads: &[&[u8]]) -> Vec<CausalEvent> {
    let mut prev = from.clone();
    payloads
        .iter()
        .map(|payload| {
            let event = CausalEvent {
                link: prev.link.next(&prev.payload, 0),
                payload: payload.to_vec(),
                received_at: 0,
            };
            prev = event.clone();
            event
        })
        .collect()
}
