//! Every mesh decoder of untrusted bytes: reliability acks, window
//! offers, path probes and their answers, identity hellos, handshake packets (both forms, as responder and as initiator
//! awaiting msg2), and protected packets opened under a session. None may
//! panic; decoded acks and hellos re-encode to the same bytes.

use std::sync::OnceLock;

use net::mesh::session::Session;
use net::mesh::*;
use net::wire::NetHeader;

struct Fixture {
    responder: Responder,
    session: Session,
    static_pub: [u8; 32],
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let secret = [7u8; 32];
        let keys = SessionKeys::derive(&[9u8; 32], Role::Responder);
        Fixture {
            responder: Responder::new(secret, [5u8; 32], 42),
            session: Session::new(&keys, Role::Responder),
            static_pub: net::identity::x25519_public_key(&secret),
        }
    })
}

/// Panics if `data` breaks a property above.
pub fn check(data: &[u8]) {
    let f = fixture();
    if let Ok(ack) = RelAck::decode(data) {
        assert_eq!(&ack.encode()[..], data);
    }
    if let Ok(offer) = WindowOffer::decode(data) {
        assert_eq!(&offer.encode()[..], data);
    }
    if let Ok(probe) = PathProbe::decode(data) {
        assert_eq!(&probe.encode(data.len() + 84)[..8], &data[..8]);
    }
    if let Ok(ack) = PathProbeAck::decode(data) {
        assert_eq!(&ack.encode()[..], data);
    }
    if let Ok(hello) = Hello::decode(data) {
        assert_eq!(&hello.encode()[..], data);
        let _ = hello.verify(&[0; 32], Role::Initiator, hello.node_id);
    }
    let _ = handshake::noise_message(data);
    let _ = f.responder.accept_direct(data, 1);
    let _ = f.responder.accept_routed(data);
    if let Ok(init) = Initiator::with_fixed_ephemeral(
        HandshakeForm::Routed,
        &[5u8; 32],
        1,
        42,
        &f.static_pub,
        &[3u8; 32],
    ) {
        let _ = init.finish(data);
    }
    if let Ok(header) = NetHeader::decode(data) {
        let mut buf = data.to_vec();
        let _ = f.session.open(&header, &mut buf);
    }
    let mut window = ReplayWindow::new();
    for chunk in data.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        let _ = window.commit(u64::from_le_bytes(word));
    }
}
