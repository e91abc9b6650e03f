//! Every CortEX decoder of untrusted bytes: records read back from a log
//! (EventMeta + tasks/memories events), snapshots handed back by
//! applications, and causal links, proofs and frames. None may panic;
//! what decodes re-encodes to the same bytes.

use net::cortex::causal::*;
use net::cortex::*;

/// Panics if `data` breaks a property above.
pub fn check(data: &[u8]) {
    if let Ok((meta, tail, _)) = EventMeta::parse_record(data) {
        assert_eq!(meta.encode_record(tail).len(), data.len());
    }
    let _ = TasksFold.apply(&mut TasksState::default(), 0, data);
    let _ = MemoriesFold.apply(&mut MemoriesState::default(), 0, data);

    let snapshot = ModelSnapshot {
        bytes: data.to_vec(),
        last_seq: None,
    };
    let _ = snapshot.decode_state::<TasksState>();
    let _ = snapshot.decode_state::<MemoriesState>();

    if let Ok(link) = CausalLink::from_bytes(data) {
        assert_eq!(&link.to_bytes()[..], data);
    }
    if let Ok(proof) = ContinuityProof::from_bytes(data) {
        assert_eq!(&proof.to_bytes()[..], data);
    }
    let mut reencoded = Vec::new();
    let mut all_ok = true;
    for frame in decode_frames(data) {
        match frame {
            Ok(f) => encode_frame(&mut reencoded, &f.link, f.payload).unwrap(),
            Err(_) => all_ok = false,
        }
    }
    if all_ok {
        assert_eq!(reencoded, data);
    }
}
