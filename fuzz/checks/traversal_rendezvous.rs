//! The `traversal_rendezvous` check: 0x0D01 frames (v0.11 rendezvous
//! messages and Net's keyed introduce) and raw keep-alive datagrams fed to
//! the coordinator and endpoint machines.
//!
//! Properties: nothing panics; a frame that decodes re-encodes to the same
//! bytes; a coordinator never forwards an ack whose sender is not the
//! session it came from; an endpoint with no punch in progress ignores
//! every keep-alive and every ack, and never finishes a punch from one.

use std::time::Instant;

use net::mesh::traversal::rendezvous::{
    Coordinator, Endpoint, PeerView, PunchKey, PunchTiming, RendezvousFrame, decode_frame,
};
use net::wire::subproto::Rendezvous;

/// Panics when `data` breaks a property above.
pub fn check(data: &[u8]) {
    match decode_frame(data) {
        Ok(RendezvousFrame::V011(msg)) => assert_eq!(msg.encode(), data),
        Ok(RendezvousFrame::NetIntroduce(intro)) => assert_eq!(intro.encode(), data),
        Ok(_) | Err(_) => {}
    }
    let peers = |id: u64| {
        (id < 4).then(|| PeerView {
            has_session: true,
            indexed_reflex: Some("8.8.8.8:1".parse().expect("address")),
            observed: None,
            is_net: id.is_multiple_of(2),
        })
    };
    let mut r = Coordinator::new(9, PunchTiming::default());
    if let Ok(actions) = r.on_frame(1, data, 0, || PunchKey([1; 32]), peers)
        && let Ok(Rendezvous::PunchAck { from_peer, .. }) = Rendezvous::decode(data)
    {
        assert_eq!(from_peer, 1);
        assert_eq!(actions.len(), 1);
    }
    let now = Instant::now();
    let mut e = Endpoint::new(2, PunchTiming::default());
    assert!(
        e.on_keepalive("8.8.8.8:1".parse().expect("address"), data, now)
            .is_err()
    );
    if let Ok(Rendezvous::PunchAck { .. }) = Rendezvous::decode(data) {
        assert!(e.on_frame(9, data, now, 0).is_err());
    }
    // Whatever it does with an introduce, no punch finishes from it alone.
    let _ = e.on_frame(9, data, now, 0);
    assert!(e.poll(now).is_empty());
}
