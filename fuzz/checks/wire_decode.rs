//! Every wire decoder on arbitrary bytes: never panics; whatever decodes
//! re-encodes to bytes that decode to the same value, and re-encoding those
//! is stable (`decode(encode(x)) == x`, `encode(decode(encode(x))) ==
//! encode(x)`).
//!
//! The re-encoded bytes must also equal the input, except where WIRE.md
//! gives one value two encodings; each exception is spelled out below and
//! nothing else may differ:
//! - the routing header (§5): the reserved byte and the high nibble of the
//!   flags are ignored on decode and written as zero;
//! - a Subscribe without a token (§10.2): the legacy form ends right after
//!   the channel name, the current one carries `token_len = 00 00`; both
//!   decode to "no token" and we always write `00 00`.

use net::wire::*;

/// Panics if `data` breaks a property above.
pub fn check(data: &[u8]) {
    let _ = classify(data);
    if let Ok(h) = NetHeader::decode(data) {
        assert_eq!(&h.encode()[..], &data[..HEADER_SIZE]);
        let _ = decode_events(&data[HEADER_SIZE..], usize::from(h.event_count));
    }
    if let Ok(r) = RoutingHeader::decode(data) {
        let bytes = r.encode();
        assert_eq!(RoutingHeader::decode(&bytes), Ok(r));
        assert_eq!(RoutingHeader::decode(&bytes).unwrap().encode(), bytes);
        // Only the reserved byte (5) and the flags' high nibble may differ.
        let mut masked = [0u8; ROUTING_HEADER_SIZE];
        masked.copy_from_slice(&data[..ROUTING_HEADER_SIZE]);
        masked[4] &= 0x0F;
        masked[5] = 0;
        assert_eq!(bytes, masked);
    }
    if let Ok(m) = Membership::decode(data) {
        let bytes = m.encode();
        assert_eq!(Membership::decode(&bytes).as_ref(), Ok(&m));
        assert_eq!(Membership::decode(&bytes).unwrap().encode(), bytes);
        if bytes != data {
            let legacy_subscribe = matches!(m, Membership::Subscribe { token: None, .. })
                && bytes.len() == data.len() + 2
                && bytes.starts_with(data)
                && bytes.ends_with(&[0, 0]);
            assert!(
                legacy_subscribe,
                "membership {m:?} re-encodes to {bytes:02x?}, not the input {data:02x?}"
            );
        }
    }
    if let Ok(r) = Rendezvous::decode(data) {
        assert_eq!(r.encode(), data);
    }
    if let Ok(p) = Pingwave::decode(data) {
        assert_eq!(&p.encode()[..], data);
    }
    if let Ok(w) = StreamWindow::decode(data) {
        assert_eq!(&w.encode()[..], data);
    }
    if let Ok(k) = PunchKeepAlive::decode(data) {
        assert_eq!(&k.encode()[..], data);
    }
    if let Ok(a) = decode_address(data) {
        assert_eq!(&encode_address(&a)[..], data);
    }
    if let Ok(n) = Nack::decode(data) {
        assert_eq!(&n.encode()[..], data);
        let _ = n.missing();
    }
}
