//! Every bus decoder of untrusted bytes: cursors, poll requests (with their
//! filters, then matched against the same bytes as a payload), bus
//! configurations and the producer state file. None may panic; a decoded
//! cursor or producer state re-encodes to an equal value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use net::bus::dedup_state::DedupState;
use net::bus::{BusConfig, CompositeCursor, PollRequest};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(cursor) = CompositeCursor::decode(text) {
            let again = cursor.encode().expect("a decoded cursor encodes");
            assert_eq!(CompositeCursor::decode(&again).unwrap(), cursor);
        }
        if let Ok(request) = PollRequest::from_json(text)
            && let Some(filter) = request.filter
        {
            let _ = filter.matches_payload(data);
        }
        let _ = BusConfig::from_json(text);
    }
    if let Ok(state) = DedupState::decode(data) {
        assert_eq!(DedupState::decode(&state.encode()).unwrap(), state);
    }
});
