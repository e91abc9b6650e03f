//! `traceparent` parsing on untrusted bytes: never panics, and a header
//! that parses as version 00 writes back byte for byte.

use net::behavior::trace::{TraceContext, parse_traceparent};

/// Panics if `data` breaks a property above.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok((trace_id, span_id, flags)) = parse_traceparent(text) else {
        return;
    };
    assert_ne!(trace_id, 0);
    assert_ne!(span_id, 0);
    if text.starts_with("00-") {
        let ctx = TraceContext {
            trace_id,
            span_id,
            parent_span_id: None,
            flags,
            hop_count: 0,
        };
        assert_eq!(ctx.to_traceparent(), text);
    }
    let continued = TraceContext::from_traceparent(text, 1).expect("parsed once, parses again");
    assert_eq!(continued.parent_span_id, Some(span_id));
}
