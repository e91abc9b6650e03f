//! The mesh's handshake and packet protection against Net v0.11's vectors:
//! `handshake.json` (fixed-ephemeral handshakes, both forms, reproduced byte
//! for byte) and `live_session.json` (a real transcript with a v0.11 node,
//! replayed through our codecs, keys and replay window).

use std::fs;

use net::mesh::packet::{self, PacketKind};
use net::mesh::*;
use net::wire::{HEADER_SIZE, NetHeader, ROUTING_HEADER_SIZE, RoutingHeader, decode_events};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap_or_else(|| panic!("not hex: {v}"))).unwrap()
}

fn key32(v: &Value) -> [u8; 32] {
    bytes(v).try_into().unwrap()
}

fn hex_u64(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// The value of the first key of `obj` starting with `prefix` (the vector
/// keys carry descriptions).
fn field<'a>(obj: &'a Value, prefix: &str) -> &'a Value {
    obj.as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.starts_with(prefix))
        .unwrap_or_else(|| panic!("no field {prefix}"))
        .1
}

/// Opens a recorded packet with `key` and checks replay-window admission.
fn open_recorded(key: &PacketKey, packet_bytes: &[u8]) -> (NetHeader, Vec<u8>) {
    let mut buf = packet_bytes.to_vec();
    let header = NetHeader::decode(&buf).unwrap();
    let range = packet::open(key, &header, &mut buf).unwrap();
    (header, buf[range].to_vec())
}

#[test]
fn fixed_ephemeral_handshakes_match_byte_for_byte() {
    let doc = load("handshake.json");
    let inputs = &doc["inputs"];
    let psk = key32(&inputs["psk"]);
    let e_init = key32(&inputs["initiator_ephemeral_secret"]);
    let e_resp = key32(&inputs["responder_ephemeral_secret"]);
    let resp_static = key32(&inputs["responder_static_x25519_secret"]);
    let resp_pub = key32(&inputs["responder_static_x25519_pub"]);
    let initiator_id = hex_u64(field(inputs, "initiator_node_id"));
    let responder_id = hex_u64(field(inputs, "responder_node_id"));
    let responder = Responder::new(resp_static, psk, responder_id);

    for case in doc["cases"].as_array().unwrap() {
        let routed = case["label"].as_str().unwrap().starts_with("routed");
        let form = if routed {
            HandshakeForm::Routed
        } else {
            HandshakeForm::Direct
        };
        assert_eq!(
            prologue(initiator_id, responder_id).to_vec(),
            bytes(&case["prologue_32"])
        );

        let initiator = Initiator::with_fixed_ephemeral(
            form,
            &psk,
            initiator_id,
            responder_id,
            &resp_pub,
            &e_init,
        )
        .unwrap();
        let msg1_packet = bytes(field(case, "msg1_packet"));
        assert_eq!(
            &msg1_packet[HEADER_SIZE..],
            bytes(&case["msg1_noise"]).as_slice()
        );
        let accepted = if routed {
            let wire = bytes(field(case, "msg1_routed_wire"));
            assert_eq!(initiator.msg1(), wire.as_slice());
            responder
                .accept_routed_with_fixed_ephemeral(&wire, &e_resp)
                .unwrap()
        } else {
            assert_eq!(initiator.msg1(), msg1_packet.as_slice());
            responder
                .accept_direct_with_fixed_ephemeral(&msg1_packet, initiator_id, &e_resp)
                .unwrap()
        };
        assert_eq!(accepted.peer_node_id, initiator_id);
        let msg2_packet = bytes(&case["msg2_packet"]);
        if routed {
            assert_eq!(accepted.msg2, bytes(field(case, "msg2_routed_wire")));
        } else {
            assert_eq!(accepted.msg2, msg2_packet);
        }
        let init_keys = initiator.finish(&accepted.msg2).unwrap();

        let h = bytes(&case["handshake_hash_h"]);
        assert_eq!(init_keys.handshake_hash.to_vec(), h);
        assert_eq!(accepted.keys.handshake_hash.to_vec(), h);
        assert_eq!(init_keys.session_id, hex_u64(&case["session_id"]));
        assert_eq!(accepted.keys.session_id, init_keys.session_id);
        assert_eq!(init_keys.tx_key, key32(&case["initiator"]["tx_key"]));
        assert_eq!(init_keys.rx_key, key32(&case["initiator"]["rx_key"]));
        assert_eq!(accepted.keys.tx_key, key32(&case["responder"]["tx_key"]));
        assert_eq!(accepted.keys.rx_key, key32(&case["responder"]["rx_key"]));
        assert_eq!(
            net::wire::nonce_prefix(init_keys.session_id).to_vec(),
            bytes(&case["session_prefix"])
        );

        // The first data packet and the first heartbeat, byte for byte.
        let tx = PacketKey::new(&init_keys.tx_key, init_keys.session_id);
        let payload = net::wire::encode_events(&[b"hello from initiator"]).unwrap();
        let kind = PacketKind {
            stream_id: 1,
            sequence: 0,
            event_count: 1,
            ..PacketKind::default()
        };
        let mut out = Vec::new();
        packet::seal(&tx, init_keys.session_id, 0, &kind, &payload, &mut out);
        assert_eq!(out, bytes(field(case, "first_data_packet")));
        let resp_tx = PacketKey::new(&accepted.keys.tx_key, accepted.keys.session_id);
        packet::seal(
            &resp_tx,
            accepted.keys.session_id,
            0,
            &PacketKind::HEARTBEAT,
            &[],
            &mut out,
        );
        assert_eq!(out, bytes(field(case, "first_heartbeat")));

        // And they open on the other side.
        let resp_rx = PacketKey::new(&accepted.keys.rx_key, accepted.keys.session_id);
        let (_, plain) = open_recorded(&resp_rx, &bytes(field(case, "first_data_packet")));
        assert_eq!(decode_events(&plain, 1), vec![&b"hello from initiator"[..]]);
    }
}

#[test]
fn wrong_psk_or_wrong_responder_key_is_rejected() {
    let doc = load("handshake.json");
    let inputs = &doc["inputs"];
    let psk = key32(&inputs["psk"]);
    let resp_static = key32(&inputs["responder_static_x25519_secret"]);
    let resp_pub = key32(&inputs["responder_static_x25519_pub"]);
    let initiator = Initiator::new(HandshakeForm::Direct, &psk, 1, 2, &resp_pub).unwrap();

    let mut wrong_psk = psk;
    wrong_psk[0] ^= 1;
    let bad = Responder::new(resp_static, wrong_psk, 2);
    assert_eq!(
        bad.accept_direct(initiator.msg1(), 1).unwrap_err(),
        HandshakeError::Decrypt
    );
    // The wrong caller id changes the prologue.
    let good = Responder::new(resp_static, psk, 2);
    assert_eq!(
        good.accept_direct(initiator.msg1(), 3).unwrap_err(),
        HandshakeError::Decrypt
    );
    // The right one works.
    let accepted = good.accept_direct(initiator.msg1(), 1).unwrap();
    let keys = initiator.finish(&accepted.msg2).unwrap();
    assert_eq!(keys.session_id, accepted.keys.session_id);

    // A routed msg1 whose payload names another node than src_id.
    let routed = Initiator::new(HandshakeForm::Routed, &psk, 0x1_0000_0005, 2, &resp_pub).unwrap();
    let mut forged = routed.msg1().to_vec();
    forged[6..10].copy_from_slice(&6u32.to_le_bytes());
    assert!(good.accept_routed(&forged).is_err());
    // Truncated and garbage packets are typed errors.
    assert!(matches!(
        good.accept_direct(&routed.msg1()[..30], 1),
        Err(HandshakeError::Malformed(_))
    ));
    let mut not_hs = routed.msg1()[ROUTING_HEADER_SIZE..].to_vec();
    not_hs[3] = 0;
    assert_eq!(
        good.accept_direct(&not_hs, 1).unwrap_err(),
        HandshakeError::NotHandshake
    );
    assert!(matches!(
        good.accept_direct(
            &routed.msg1()[ROUTING_HEADER_SIZE..HEADER_SIZE + ROUTING_HEADER_SIZE],
            1,
        ),
        Err(HandshakeError::BadLength(0))
    ));
}

#[test]
fn live_session_phase1_replays_through_our_codecs() {
    let doc = load("live_session.json");
    let hs = &doc["phase1_direct_handshake"];
    let h: [u8; 32] = key32(&hs["handshake_hash"]);
    let keys = SessionKeys::derive(&h, Role::Initiator);
    assert_eq!(keys.session_id, hex_u64(&hs["session_id"]));
    assert_eq!(keys.tx_key, key32(&hs["initiator_tx_key"]));
    assert_eq!(keys.rx_key, key32(&hs["initiator_rx_key"]));
    assert_eq!(
        prologue(
            hex_u64(&hs["cleanroom_peer"]["node_id"]),
            hex_u64(&hs["reference_node"]["node_id"])
        )
        .to_vec(),
        bytes(&hs["prologue"])
    );
    // msg1 / msg2 as recorded are well-formed handshake packets of 48 bytes.
    for m in ["msg1_packet", "msg2_packet"] {
        assert_eq!(
            handshake::noise_message(&bytes(&hs[m])).unwrap().len(),
            handshake::EMPTY_MESSAGE_LEN
        );
    }

    // What the reference received from the clean-room client opens under
    // the responder's receive key (= initiator tx).
    let ref_rx = PacketKey::new(&keys.tx_key, keys.session_id);
    for sent in doc["phase1_cleanroom_sent"].as_array().unwrap() {
        let (_, plain) = open_recorded(&ref_rx, &bytes(&sent["packet"]));
        assert_eq!(plain, bytes(&sent["plaintext"]), "{}", sent["note"]);
    }

    // Everything the reference sent opens under our receive key, passes the
    // replay window exactly once, and decodes as recorded.
    let rx = PacketKey::new(&keys.rx_key, keys.session_id);
    let mut window = ReplayWindow::new();
    let mut opened = 0;
    for rec in doc["phase1_received_by_cleanroom"].as_array().unwrap() {
        let raw = bytes(&rec["bytes"]);
        if rec["kind"] == "pingwave" {
            let pw = net::wire::Pingwave::decode(&raw).unwrap();
            assert_eq!(pw.origin_node_id(), hex_u64(&rec["origin_node_id"]));
            continue;
        }
        let header = NetHeader::decode(&raw).unwrap();
        assert_eq!(header.counter(), rec["counter"].as_u64().unwrap());
        window.check(header.counter()).unwrap();
        let (header, plain) = open_recorded(&rx, &raw);
        window.commit(header.counter()).unwrap();
        assert!(
            window.check(header.counter()).is_err(),
            "a replay must be refused"
        );
        assert_eq!(plain, bytes(&rec["plaintext"]));
        assert_eq!(header.stream_id, hex_u64(&rec["stream_id"]));
        assert_eq!(header.sequence, rec["sequence"].as_u64().unwrap());
        let events = decode_events(&plain, usize::from(header.event_count));
        if let Some(expected) = rec["events"].as_array() {
            let expected: Vec<Vec<u8>> = expected.iter().map(bytes).collect();
            let got: Vec<Vec<u8>> = events.iter().map(|e| e.to_vec()).collect();
            assert_eq!(got, expected);
        }
        if rec["kind"] == "stream_window" {
            let grant = net::wire::StreamWindow::decode(events[0]).unwrap();
            assert!(grant.total_consumed > 0);
        }
        opened += 1;
    }
    assert!(opened >= 10);
}

#[test]
fn live_session_tampering_rules() {
    let doc = load("live_session.json");
    let hs = &doc["phase1_direct_handshake"];
    let keys = SessionKeys::derive(&key32(&hs["handshake_hash"]), Role::Responder);
    let rx = PacketKey::new(&keys.rx_key, keys.session_id);
    let original = bytes(&doc["phase1_cleanroom_sent"][0]["packet"]);
    let header = NetHeader::decode(&original).unwrap();

    // hop_count (byte 6) is outside the AAD; the nonce prefix is ignored.
    let mut hop = original.clone();
    hop[6] = 9;
    assert!(packet::open(&rx, &header, &mut hop).is_ok());
    let mut prefix = original.clone();
    prefix[12..16].copy_from_slice(&[1, 2, 3, 4]);
    assert!(packet::open(&rx, &header, &mut prefix).is_ok());
    // Any other header byte, the body or the tag breaks it.
    for at in [3usize, 8, 24, 32, 40, 60, 62, 70, original.len() - 1] {
        let mut bad = original.clone();
        bad[at] ^= 0x01;
        let Ok(h) = NetHeader::decode(&bad) else {
            continue;
        };
        assert!(packet::open(&rx, &h, &mut bad).is_err(), "byte {at}");
    }
    // Length must be exact.
    let mut long = original.clone();
    long.push(0);
    assert!(matches!(
        packet::open(&rx, &header, &mut long),
        Err(OpenError::Malformed(_))
    ));
    let mut short = original[..original.len() - 1].to_vec();
    assert!(matches!(
        packet::open(&rx, &header, &mut short),
        Err(OpenError::Malformed(_))
    ));
}

#[test]
fn live_session_phase2_reference_as_initiator() {
    let doc = load("live_session.json");
    let p2 = &doc["phase2_reference_initiator"];
    let psk = key32(&doc["phase1_direct_handshake"]["psk"]);
    let ours = &p2["cleanroom_responder"];
    let responder = Responder::new(
        key32(&ours["x25519_static_secret"]),
        psk,
        hex_u64(&ours["node_id"]),
    );
    let reference_id = hex_u64(&doc["phase1_direct_handshake"]["reference_node"]["node_id"]);
    assert_eq!(
        prologue(reference_id, hex_u64(&ours["node_id"])).to_vec(),
        bytes(&p2["prologue"])
    );
    // The reference's real msg1 is accepted by our responder.
    let accepted = responder
        .accept_direct(&bytes(&p2["msg1_packet_from_reference"]), reference_id)
        .unwrap();
    assert_eq!(
        accepted.msg2.len(),
        HEADER_SIZE + handshake::EMPTY_MESSAGE_LEN
    );
    // The reference's data under the recorded responder rx key.
    let session_id = hex_u64(&p2["session_id"]);
    let rx = PacketKey::new(&key32(&p2["responder_rx_key"]), session_id);
    let check = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["check"]
                .as_str()
                .unwrap()
                .starts_with("clean-room responder decrypts")
        })
        .unwrap();
    let mut n = 0;
    for rec in check["detail"]["packets"].as_array().unwrap() {
        if rec["kind"] == "pingwave" {
            continue;
        }
        let (_, plain) = open_recorded(&rx, &bytes(&rec["bytes"]));
        assert_eq!(plain, bytes(&rec["plaintext"]));
        n += 1;
    }
    assert!(n >= 3);
}

#[test]
fn live_session_phase3_routed() {
    let doc = load("live_session.json");
    let p3 = &doc["phase3_routed_handshake"];
    let ours = hex_u64(&p3["cleanroom_routed_initiator"]["node_id"]);
    let reference_id = hex_u64(&doc["phase1_direct_handshake"]["reference_node"]["node_id"]);
    assert_eq!(
        prologue(ours, reference_id).to_vec(),
        bytes(&p3["prologue"])
    );
    let msg1 = bytes(field(p3, "wire_msg1"));
    let rt = RoutingHeader::decode(&msg1).unwrap();
    assert_eq!(
        (rt.ttl, rt.src_id, rt.dest_id),
        (16, ours as u32, reference_id)
    );
    assert_eq!(
        handshake::noise_message(&msg1[ROUTING_HEADER_SIZE..])
            .unwrap()
            .len(),
        56
    );
    let msg2 = bytes(&p3["wire_msg2"]);
    let rt2 = RoutingHeader::decode(&msg2).unwrap();
    assert_eq!((rt2.src_id, rt2.dest_id), (reference_id as u32, ours));

    // Data after the routed handshake, direct and routed, opens under the
    // initiator tx key (as the reference did).
    let session_id = hex_u64(&p3["session_id"]);
    let rx = PacketKey::new(&key32(&p3["initiator_tx_key"]), session_id);
    let direct = &doc["phase3_cleanroom_sent"][0];
    let (_, plain) = open_recorded(&rx, &bytes(&direct["packet"]));
    assert_eq!(plain, bytes(&direct["plaintext"]));
    let routed = bytes(&p3["routed_data_wire"]);
    let (_, plain) = open_recorded(&rx, &routed[ROUTING_HEADER_SIZE..]);
    assert_eq!(decode_events(&plain, 1), vec![&b"routed-data"[..]]);
}
