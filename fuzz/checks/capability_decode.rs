//! The `capability_decode` check: capability announcements (0x0C00 event
//! frames, WIRE.md §10.4) and JSON capability queries (the C ABI's
//! find-nodes input) on arbitrary bytes.
//!
//! Properties: nothing panics; whatever decodes re-encodes canonically and
//! stably (`decode(encode(x)) == x`, `encode(decode(encode(x))) ==
//! encode(x)`); verification and the receive pipeline accept or refuse
//! without panicking; a forwarded copy verifies exactly when the original
//! does (the hop count is outside the signature).

use net::mesh::capability::{
    Announcement, BestNodeQuery, CapabilityIndex, IndexLimits, NodeQuery, PipelineConfig,
    ReceivePipeline,
};

/// Wall clock of the check (2023-11-14), so timestamps near the vectors'
/// are live and others expire.
const NOW_UNIX_NS: u64 = 1_700_000_010_000_000_000;

/// Panics when `data` breaks a property above.
pub fn check(data: &[u8]) {
    if let Ok(announcement) = Announcement::decode(data) {
        let bytes = announcement.encode();
        let again = Announcement::decode(&bytes).expect("canonical bytes decode");
        assert_eq!(again, announcement);
        assert_eq!(again.encode(), bytes);
        let verified = announcement.verify().is_ok();
        if let Some(forwarded) = announcement.forwarded() {
            assert_eq!(forwarded.verify().is_ok(), verified);
        }
    }
    // The pipeline with signatures required and not, sender = the claimed
    // node (hop 0 case) and someone else (forwarded case).
    for require_signed in [true, false] {
        let config = PipelineConfig {
            require_signed,
            ..PipelineConfig::default()
        };
        let mut pipeline = ReceivePipeline::new(1, config);
        let mut index = CapabilityIndex::new(1, IndexLimits::default());
        let sender = Announcement::decode(data).map_or(2, |a| a.node_id);
        let _ = pipeline.receive(data, sender, NOW_UNIX_NS, &mut index);
        let _ = pipeline.receive(data, 2, NOW_UNIX_NS, &mut index);
        assert!(index.len() <= 1);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = NodeQuery::from_json(text);
        let _ = BestNodeQuery::from_json(text);
    }
}
