//! Every wire decoder is total: arbitrary bytes give a value or a typed
//! error, never a panic, and whatever decodes re-encodes to the same bytes.
//! (The same decoders have a cargo-fuzz target, fuzz/fuzz_targets/wire_decode.rs.)

use net::wire::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn header_decoder_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
        if let Ok(h) = NetHeader::decode(&bytes) {
            prop_assert_eq!(&h.encode()[..], &bytes[..HEADER_SIZE]);
        }
    }

    #[test]
    fn valid_headers_round_trip(
        flags in any::<u8>(), sub in any::<u16>(), session in any::<u64>(), stream in any::<u64>(),
        seq in any::<u64>(), len in 0u16..=8112, count in 0u16..=2028, counter in any::<u64>(),
    ) {
        let h = NetHeader {
            flags, subprotocol_id: sub, session_id: session, stream_id: stream, sequence: seq,
            payload_len: len, event_count: count, nonce: nonce(session, counter), ..Default::default()
        };
        prop_assert_eq!(NetHeader::decode(&h.encode()).unwrap(), h);
        prop_assert_eq!(h.counter(), counter);
    }

    #[test]
    fn message_decoders_are_total(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = classify(&bytes);
        let _ = decode_events(&bytes, 2028);
        if let Ok(r) = RoutingHeader::decode(&bytes) {
            prop_assert_eq!(RoutingHeader::decode(&r.encode()).unwrap(), r);
        }
        if let Ok(m) = Membership::decode(&bytes) {
            prop_assert_eq!(m.encode(), bytes.clone());
        }
        if let Ok(r) = Rendezvous::decode(&bytes) {
            prop_assert_eq!(r.encode(), bytes.clone());
        }
        if let Ok(w) = StreamWindow::decode(&bytes) {
            prop_assert_eq!(w.encode().to_vec(), bytes.clone());
        }
        if let Ok(p) = Pingwave::decode(&bytes) {
            prop_assert_eq!(p.encode().to_vec(), bytes.clone());
        }
        if let Ok(k) = PunchKeepAlive::decode(&bytes) {
            prop_assert_eq!(k.encode().to_vec(), bytes.clone());
        }
        let _ = decode_address(&bytes);
        let _ = Nack::decode(&bytes);
    }

    #[test]
    fn frames_round_trip(events in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..40)) {
        let payload = encode_events(&events).unwrap();
        let decoded = decode_events(&payload, events.len());
        prop_assert_eq!(decoded.len(), events.len());
        for (a, b) in decoded.iter().zip(&events) {
            prop_assert_eq!(*a, b.as_slice());
        }
    }
}
