//! Every wire decoder on arbitrary bytes: never panics; what decodes
//! re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use net::wire::*;

fuzz_target!(|data: &[u8]| {
    let _ = classify(data);
    if let Ok(h) = NetHeader::decode(data) {
        assert_eq!(&h.encode()[..], &data[..HEADER_SIZE]);
        let _ = decode_events(&data[HEADER_SIZE..], usize::from(h.event_count));
    }
    if let Ok(r) = RoutingHeader::decode(data) {
        assert_eq!(RoutingHeader::decode(&r.encode()), Ok(r));
    }
    if let Ok(m) = Membership::decode(data) {
        assert_eq!(m.encode(), data);
    }
    if let Ok(r) = Rendezvous::decode(data) {
        assert_eq!(r.encode(), data);
    }
    if let Ok(p) = Pingwave::decode(data) {
        assert_eq!(&p.encode()[..], data);
    }
    let _ = StreamWindow::decode(data);
    let _ = PunchKeepAlive::decode(data);
    let _ = decode_address(data);
    let _ = Nack::decode(data);
});
