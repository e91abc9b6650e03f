//! Every bus decoder of untrusted bytes: cursors, poll requests (with their
//! filters, then matched against the same bytes as a payload), bus
//! configurations, the producer state file, Redis `XRANGE` replies (RESP
//! bytes) and JetStream message headers. None may panic; a decoded cursor
//! or producer state re-encodes to an equal value.

use net::bus::dedup_state::DedupState;
use net::bus::{BusConfig, CompositeCursor, PollRequest};

/// Panics if `data` breaks a property above.
pub fn check(data: &[u8]) {
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
    if let Ok(reply) = redis::parse_redis_value(data) {
        let _ = net::bus::adapter::redis::decode_xrange(&reply, 3);
    }
    // JetStream headers: "name\0value\0name\0value...", the bytes also the payload.
    let mut parts = data.split(|&b| b == 0);
    let mut headers = async_nats::HeaderMap::new();
    while let (Some(k), Some(v)) = (parts.next(), parts.next()) {
        if let (Ok(k), Ok(v)) = (std::str::from_utf8(k), std::str::from_utf8(v))
            && let Ok(name) = k.parse::<async_nats::header::HeaderName>()
            && let Ok(value) = v.parse::<async_nats::header::HeaderValue>()
        {
            headers.insert(name, value);
        }
    }
    let _ = net::bus::adapter::jetstream::decode_message(3, 7, &headers, data);
}
