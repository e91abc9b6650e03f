use super::*;

const A: u64 = 0xA;
const B: u64 = 0xB;
const R: u64 = 0x5;
const EVE: u64 = 0xE;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn view(reflex: &str, is_net: bool) -> PeerView {
    PeerView {
        has_session: true,
        indexed_reflex: Some(sa(reflex)),
        observed: Some(sa(reflex)),
        is_net,
    }
}

fn sends(actions: &[Action]) -> Vec<(u64, Vec<u8>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { to, bytes } => Some((*to, bytes.clone())),
            _ => None,
        })
        .collect()
}

fn keepalives(actions: &[Action]) -> Vec<(SocketAddr, Instant, [u8; 14])> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::KeepAlive { to, at, bytes } => Some((*to, *at, *bytes)),
            _ => None,
        })
        .collect()
}

struct World {
    r: Coordinator,
    a: Endpoint,
    b: Endpoint,
    a_net: bool,
    b_net: bool,
    t0: Instant,
    unix0: u64,
}

const A_REFLEX: &str = "8.8.1.1:4000";
const B_REFLEX: &str = "8.8.2.2:5000";

impl World {
    fn new(a_net: bool, b_net: bool) -> Self {
        Self {
            r: Coordinator::new(R, PunchTiming::default()),
            a: Endpoint::new(A, PunchTiming::default()),
            b: Endpoint::new(B, PunchTiming::default()),
            a_net,
            b_net,
            t0: Instant::now(),
            unix0: 1_700_000_000_000,
        }
    }

    fn peers(&self) -> impl Fn(u64) -> Option<PeerView> + use<> {
        let (a_net, b_net) = (self.a_net, self.b_net);
        move |id| match id {
            A => Some(view(A_REFLEX, a_net)),
            B => Some(view(B_REFLEX, b_net)),
            _ => None,
        }
    }

    /// A requests; R introduces. Returns (A's actions, B's actions).
    fn introduce(&mut self) -> (Vec<Action>, Vec<Action>) {
        let req = self.a.request(B, R, Some(sa(A_REFLEX)), self.t0);
        let (to, bytes) = sends(&req).remove(0);
        assert_eq!(to, R);
        let peers = self.peers();
        let intros = self
            .r
            .on_frame(A, &bytes, self.unix0, || PunchKey([7; 32]), peers)
            .unwrap();
        let intros = sends(&intros);
        assert_eq!(intros.len(), 2);
        let for_a = intros.iter().find(|(to, _)| *to == A).unwrap();
        let for_b = intros.iter().find(|(to, _)| *to == B).unwrap();
        let now = self.t0 + Duration::from_millis(10);
        let unix = self.unix0 + 10;
        let a = self.a.on_frame(R, &for_a.1, now, unix).unwrap();
        let b = self.b.on_frame(R, &for_b.1, now, unix).unwrap();
        (a, b)
    }
}

#[test]
fn full_punch_between_net_nodes() {
    let mut w = World::new(true, true);
    let (a_acts, b_acts) = w.introduce();
    assert_eq!(w.a.stats().punches_attempted, 1);
    assert_eq!(w.b.stats().punches_attempted, 0, "B did not ask");

    // Three keep-alives each, at lead, +100, +250 ms (lead = 490 ms here).
    let a_ka = keepalives(&a_acts);
    let b_ka = keepalives(&b_acts);
    assert_eq!(a_ka.len(), 3);
    let base = w.t0 + Duration::from_millis(10) + Duration::from_millis(490);
    let offsets: Vec<Duration> = a_ka.iter().map(|(_, at, _)| *at - base).collect();
    assert_eq!(offsets, KEEPALIVE_OFFSETS.to_vec());
    assert!(a_ka.iter().all(|(to, _, _)| *to == sa(B_REFLEX)));
    assert!(b_ka.iter().all(|(to, _, _)| *to == sa(A_REFLEX)));
    // Random, authenticated punch ids (not v0.11's 0).
    let a_bytes = a_ka[0].2;
    let decoded = PunchKeepAlive::decode(&a_bytes).unwrap();
    assert_eq!(decoded.sender, A);
    assert_eq!(decoded.punch_id, PunchKey([7; 32]).keepalive_id(A, B));
    assert_ne!(decoded.punch_id, 0);

    // A's keep-alive reaches B (from a source port A's NAT chose: B accepts
    // any source once the tag checks out) ⇒ B acks through R.
    let now = base + Duration::from_millis(1);
    let a_seen_at = sa("8.8.1.1:4999");
    let b_ack = w.b.on_keepalive(a_seen_at, &a_bytes, now).unwrap();
    let (to, ack) = sends(&b_ack).remove(0);
    assert_eq!(to, R);
    assert_eq!(w.b.in_progress(), 0, "B is done after its ack");
    // Duplicate keep-alives after that change nothing.
    assert!(w.b.on_keepalive(a_seen_at, &a_bytes, now).is_err());

    // B's keep-alive reaches A: A (the requester, Net mode) acks and
    // handshakes to where it came from at once — B's mapping towards A's
    // reflex lets the answer in even if B's ack never comes.
    let b_bytes = b_ka[0].2;
    let a_ack = w.a.on_keepalive(sa(B_REFLEX), &b_bytes, now).unwrap();
    assert_eq!(sends(&a_ack)[0].0, R);
    assert_eq!(
        a_ack[1],
        Action::Finished {
            peer: B,
            outcome: PunchOutcome::Direct(sa(B_REFLEX)),
        }
    );
    // The punch is over: more keep-alives and B's late ack change nothing.
    assert!(w.a.on_keepalive(sa(B_REFLEX), &b_bytes, now).is_err());
    let peers = w.peers();
    let fwd =
        w.r.on_frame(B, &ack, w.unix0, || unreachable!(), peers)
            .unwrap();
    assert_eq!(sends(&fwd), vec![(A, ack.clone())]);
    assert!(w.a.on_frame(R, &ack, now, w.unix0).is_err());
    w.a.on_direct_result(B, true);
    assert_eq!(w.a.stats().punches_succeeded, 1);
    // Only once.
    w.a.on_direct_result(B, true);
    assert_eq!(w.a.stats().punches_succeeded, 1);
    assert_eq!(w.a.next_deadline(), None);
}

#[test]
fn spoofed_keepalives_and_acks_from_a_third_node_are_ignored() {
    let mut w = World::new(true, true);
    let (_, b_acts) = w.introduce();
    let now = w.t0 + Duration::from_millis(600);

    // Eve knows the protocol but not the key: every punch id fails.
    for punch_id in [0u32, 1, u32::MAX, PunchKey([0; 32]).keepalive_id(A, B)] {
        let forged = PunchKeepAlive {
            sender: A,
            punch_id,
        }
        .encode();
        assert_eq!(
            w.b.on_keepalive(sa(A_REFLEX), &forged, now),
            Err(Ignored::BadTag)
        );
    }
    // Eve as herself: no punch with her.
    let eve = PunchKeepAlive {
        sender: EVE,
        punch_id: 0,
    }
    .encode();
    assert_eq!(
        w.b.on_keepalive(sa("6.6.6.6:1"), &eve, now),
        Err(Ignored::Unexpected)
    );
    // A keep-alive B sent cannot be reflected back to B as A's.
    let b_own = keepalives(&b_acts)[0].2;
    assert!(w.b.on_keepalive(sa(A_REFLEX), &b_own, now).is_err());

    // A forged ack: R refuses to forward an ack whose from_peer is not the
    // sender's session.
    let forged_ack = Rendezvous::PunchAck {
        from_peer: B,
        to_peer: A,
        punch_id: 0,
    }
    .encode();
    let peers = w.peers();
    assert_eq!(
        w.r.on_frame(EVE, &forged_ack, w.unix0, || unreachable!(), peers),
        Err(Ignored::Spoofed)
    );
    // Delivered to A anyway (by a rogue coordinator or another session):
    // wrong sender session, then wrong tag.
    assert_eq!(
        w.a.on_frame(EVE, &forged_ack, now, w.unix0),
        Err(Ignored::NotCoordinator)
    );
    assert_eq!(
        w.a.on_frame(R, &forged_ack, now, w.unix0),
        Err(Ignored::BadTag)
    );
    // A keep-alive tag is not an ack tag (labels differ).
    let wrong_label = Rendezvous::PunchAck {
        from_peer: B,
        to_peer: A,
        punch_id: PunchKey([7; 32]).keepalive_id(B, A),
    }
    .encode();
    assert_eq!(
        w.a.on_frame(R, &wrong_label, now, w.unix0),
        Err(Ignored::BadTag)
    );
    // A forged introduce from a non-coordinator cannot hijack A's punch.
    let fake_intro = NetIntroduce {
        peer: B,
        peer_reflex: sa("6.6.6.6:1"),
        fire_at_ms: w.unix0,
        key: Some(PunchKey([1; 32])),
    }
    .encode();
    assert_eq!(
        w.a.on_frame(EVE, &fake_intro, now, w.unix0),
        Err(Ignored::NotCoordinator)
    );
    // The punch still completes.
    assert_eq!(w.a.in_progress(), 1);
}

#[test]
fn v011_mode_uses_punch_id_zero_and_the_exact_address() {
    let mut w = World::new(true, false);
    let (a_acts, b_acts) = w.introduce();
    let a_ka = keepalives(&a_acts);
    assert_eq!(PunchKeepAlive::decode(&a_ka[0].2).unwrap().punch_id, 0);
    // R sent B the exact 36-byte v0.11 introduce.
    assert_eq!(keepalives(&b_acts).len(), 3);
    let now = w.t0 + Duration::from_millis(600);
    // From another address: ignored even with the right sender.
    let b_ka = PunchKeepAlive {
        sender: B,
        punch_id: 0,
    }
    .encode();
    assert_eq!(
        w.a.on_keepalive(sa("8.8.2.2:5001"), &b_ka, now),
        Err(Ignored::WrongSource)
    );
    // From the exact reflex: accepted, sender unchecked (v0.11 behaviour).
    let any_sender = PunchKeepAlive {
        sender: 12345,
        punch_id: 99,
    }
    .encode();
    let ack = w.a.on_keepalive(sa(B_REFLEX), &any_sender, now).unwrap();
    let (_, bytes) = sends(&ack).remove(0);
    assert_eq!(
        Rendezvous::decode(&bytes).unwrap(),
        Rendezvous::PunchAck {
            from_peer: A,
            to_peer: B,
            punch_id: 0
        }
    );
    // B's v0.11 ack (punch id 0) completes A's waiter.
    let b_ack = Rendezvous::PunchAck {
        from_peer: B,
        to_peer: A,
        punch_id: 0,
    }
    .encode();
    let done = w.a.on_frame(R, &b_ack, now, w.unix0).unwrap();
    assert!(matches!(
        done[..],
        [Action::Finished {
            peer: B,
            outcome: PunchOutcome::Direct(_)
        }]
    ));
}

#[test]
fn timeouts_fall_back_to_the_relay() {
    // No introduce.
    let t0 = Instant::now();
    let mut a = Endpoint::new(A, PunchTiming::default());
    a.request(B, R, None, t0);
    assert_eq!(a.next_deadline(), Some(t0 + PUNCH_DEADLINE));
    assert!(
        a.poll(t0 + PUNCH_DEADLINE - Duration::from_millis(1))
            .is_empty()
    );
    assert_eq!(
        a.poll(t0 + PUNCH_DEADLINE),
        vec![Action::Finished {
            peer: B,
            outcome: PunchOutcome::Relay(FallbackReason::NoIntroduce)
        }]
    );
    a.on_relay_result(true);
    a.on_relay_result(false);
    assert_eq!(a.stats().relay_fallbacks, 1);
    assert_eq!(a.stats().punches_attempted, 0);

    // Introduced, no ack.
    let mut w = World::new(true, true);
    let (_, _) = w.introduce();
    let deadline = w.a.next_deadline().unwrap();
    assert!(deadline >= w.t0 + PUNCH_DEADLINE);
    assert_eq!(
        w.a.poll(deadline),
        vec![Action::Finished {
            peer: B,
            outcome: PunchOutcome::Relay(FallbackReason::NoAck)
        }]
    );
    // B stops watching silently.
    assert!(w.b.poll(deadline).is_empty());
    assert_eq!(w.b.in_progress(), 0);
    // A late keep-alive after the deadline does nothing.
    let late = PunchKeepAlive {
        sender: A,
        punch_id: PunchKey([7; 32]).keepalive_id(A, B),
    }
    .encode();
    assert!(w.b.on_keepalive(sa(A_REFLEX), &late, deadline).is_err());
}

#[test]
fn request_without_reflex_never_advertises_a_private_address() {
    let mut a = Endpoint::new(A, PunchTiming::default());
    for own in [None, Some(sa("10.0.0.2:4000")), Some(sa("0.0.0.0:4000"))] {
        let acts = a.request(B, R, own, Instant::now());
        let bytes = &sends(&acts)[0].1;
        let Rendezvous::PunchRequest {
            requester_reflex, ..
        } = Rendezvous::decode(bytes).unwrap()
        else {
            panic!("not a request")
        };
        assert_eq!(requester_reflex, sa("0.0.0.0:0"));
    }
}

#[test]
fn coordinator_substitutes_what_it_sees_and_drops_unknowns() {
    let mut r = Coordinator::new(R, PunchTiming::default());
    let req = Rendezvous::PunchRequest {
        target: B,
        requester_reflex: sa("0.0.0.0:0"),
    }
    .encode();
    let peers = |id| match id {
        A => Some(PeerView {
            has_session: true,
            indexed_reflex: None,
            observed: Some(sa("8.8.1.1:6000")),
            is_net: true,
        }),
        B => Some(PeerView {
            has_session: true,
            indexed_reflex: None,
            observed: Some(sa("8.8.2.2:7000")),
            is_net: true,
        }),
        _ => None,
    };
    let acts = r
        .on_frame(A, &req, 1000, || PunchKey([3; 32]), peers)
        .unwrap();
    let for_b = sends(&acts).into_iter().find(|(to, _)| *to == B).unwrap();
    let RendezvousFrame::NetIntroduce(intro) = decode_frame(&for_b.1).unwrap() else {
        panic!("a Net introduce")
    };
    assert_eq!(intro.peer, A);
    assert_eq!(intro.peer_reflex, sa("8.8.1.1:6000"));
    assert_eq!(intro.fire_at_ms, 1500);
    assert_eq!(intro.key, Some(PunchKey([3; 32])));

    // Unknown target, no session: silent drop.
    let req = Rendezvous::PunchRequest {
        target: EVE,
        requester_reflex: sa("8.8.1.1:1"),
    }
    .encode();
    assert_eq!(
        r.on_frame(A, &req, 0, || PunchKey([0; 32]), peers),
        Err(Ignored::UnknownTarget)
    );
    // Garbage and wrong kinds.
    assert_eq!(
        r.on_frame(A, &[9, 9], 0, || PunchKey([0; 32]), peers),
        Err(Ignored::Malformed)
    );
    assert_eq!(
        r.on_frame(A, &for_b.1, 0, || PunchKey([0; 32]), peers),
        Err(Ignored::WrongKind)
    );
    // An ack for R itself is not forwarded.
    let ack = Rendezvous::PunchAck {
        from_peer: A,
        to_peer: R,
        punch_id: 0,
    }
    .encode();
    assert_eq!(
        r.on_frame(A, &ack, 0, || PunchKey([0; 32]), peers),
        Err(Ignored::Unexpected)
    );
}

#[test]
fn frames_decode_strictly() {
    let intro = NetIntroduce {
        peer: 1,
        peer_reflex: sa("[2001:db8::1]:9"),
        fire_at_ms: 77,
        key: Some(PunchKey([5; 32])),
    };
    let bytes = intro.encode();
    assert_eq!(bytes.len(), NET_INTRODUCE_SIZE);
    assert_eq!(
        decode_frame(&bytes).unwrap(),
        RendezvousFrame::NetIntroduce(intro)
    );
    let plain = NetIntroduce { key: None, ..intro }.encode();
    assert_eq!(plain.len(), INTRODUCE_SIZE);
    assert!(matches!(
        decode_frame(&plain).unwrap(),
        RendezvousFrame::V011(Rendezvous::PunchIntroduce { .. })
    ));
    for len in [0, 1, 35, 37, 67, 69] {
        let mut b = bytes.clone();
        b.resize(len, 0);
        assert!(decode_frame(&b).is_err(), "len {len}");
    }
}

#[test]
fn punch_ids_depend_on_key_and_direction() {
    let k1 = PunchKey([1; 32]);
    let k2 = PunchKey([2; 32]);
    assert_ne!(k1.keepalive_id(A, B), k1.keepalive_id(B, A));
    assert_ne!(k1.keepalive_id(A, B), k2.keepalive_id(A, B));
    assert_ne!(k1.keepalive_id(A, B), k1.ack_id(A, B));
}
