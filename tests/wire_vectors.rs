//! The wire codecs against Net v0.11's vectors (tests/vectors/packets.json,
//! subprotocols.json, pingwave.json): every header field, AAD, nonce, frame,
//! routing header, subprotocol message and pingwave, byte for byte.

use net::identity::ChannelName;
use net::wire::*;
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn num(v: &Value) -> u64 {
    match v {
        Value::Number(n) => n.as_u64().unwrap(),
        Value::String(s) => u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap(),
        other => panic!("not a number: {other}"),
    }
}

fn hex_of(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn packet_headers_aad_nonce_and_frames() {
    let doc = load("packets.json");
    let session_id = num(&doc["session_id"]);
    assert_eq!(
        nonce_prefix(session_id).to_vec(),
        hex_of(&doc["session_prefix"])
    );
    for p in doc["packets"].as_array().unwrap() {
        let f = &p["fields"];
        let header = NetHeader {
            flags: num(&f["flags"]) as u8,
            priority: num(&f["priority"]) as u8,
            hop_ttl: num(&f["hop_ttl"]) as u8,
            hop_count: num(&f["hop_count"]) as u8,
            frag_flags: num(&f["frag_flags"]) as u8,
            subprotocol_id: num(&f["subprotocol_id"]) as u16,
            channel_hash: num(&f["channel_hash"]) as u16,
            nonce: nonce(session_id, num(&p["nonce_counter"])),
            session_id: num(&f["session_id"]),
            stream_id: num(&f["stream_id"]),
            sequence: num(&f["sequence"]),
            subnet_id: num(&f["subnet_id"]) as u32,
            origin_hash: num(&f["origin_hash_u32"]) as u32,
            fragment_id: num(&f["fragment_id"]) as u16,
            fragment_offset: num(&f["fragment_offset"]) as u16,
            payload_len: num(&f["payload_len"]) as u16,
            event_count: num(&f["event_count"]) as u16,
        };
        assert_eq!(header.nonce.to_vec(), hex_of(&f["nonce"]));
        let bytes = header.encode();
        assert_eq!(bytes.to_vec(), hex_of(&p["header_64"]), "{}", p["label"]);
        assert_eq!(aad(&bytes).to_vec(), hex_of(&p["aad_52"]));
        let packet = hex_of(&p["packet"]);
        assert_eq!(NetHeader::decode(&packet).unwrap(), header);
        assert_eq!(classify(&packet), DatagramClass::Direct);
        let events: Vec<Vec<u8>> = p["events"].as_array().unwrap().iter().map(hex_of).collect();
        let plaintext = hex_of(&p["plaintext_payload"]);
        assert_eq!(encode_events(&events).unwrap(), plaintext);
        assert_eq!(
            decode_events(&plaintext, events.len()),
            events.iter().map(|e| e.as_slice()).collect::<Vec<_>>()
        );
        // Only hop_count is excluded from the AAD.
        let mut hop = bytes;
        hop[6] = 5;
        assert_eq!(aad(&hop), aad(&bytes));
        let mut ttl = bytes;
        ttl[5] = 5;
        assert_ne!(aad(&ttl), aad(&bytes));
    }
    let handshake = hex_of(&doc["handshake_packet_with_48_bytes_0xAA"]);
    let h = NetHeader::decode(&handshake).unwrap();
    assert!(h.is_handshake());
    assert_eq!(h.payload_len, 48);
    assert_eq!(handshake.len(), 112);
}

#[test]
fn routing_header_and_routed_packet() {
    let doc = load("packets.json");
    let r = &doc["routing_header"];
    let bytes = hex_of(&r["bytes_18"]);
    let header = RoutingHeader::decode(&bytes).unwrap();
    assert_eq!(header.dest_id, num(&r["dest_id"]));
    assert_eq!(header.encode().to_vec(), bytes);
    assert_eq!(
        header.forwarded().encode().to_vec(),
        hex_of(&r["after_one_forward_bytes_18"])
    );
    let routed = hex_of(&r["routed_packet = routing_header || data packet above"]);
    assert_eq!(classify(&routed), DatagramClass::Routed);
    assert_eq!(routed[..18], bytes[..]);
    assert!(NetHeader::decode(&routed[18..]).is_ok());
}

#[test]
fn nack_payload() {
    let doc = load("packets.json");
    let n = &doc["nack_payload_unused_on_wire_in_v0_11"];
    let nack = Nack::decode(&hex_of(&n["bytes_16"])).unwrap();
    assert_eq!(nack.next_expected, num(&n["next_expected"]));
    let missing: Vec<u64> = n["missing_sequences"]
        .as_array()
        .unwrap()
        .iter()
        .map(num)
        .collect();
    assert_eq!(nack.missing(), missing);
    assert_eq!(nack.encode().to_vec(), hex_of(&n["bytes_16"]));
}

#[test]
fn subprotocol_messages() {
    let doc = load("subprotocols.json");
    let w = &doc["stream_window_0x0B00"];
    let grant = StreamWindow {
        stream_id: num(&w["stream_id"]),
        total_consumed: num(&w["total_consumed"]),
    };
    assert_eq!(grant.encode().to_vec(), hex_of(&w["bytes_16"]));
    assert_eq!(
        StreamWindow::decode(&hex_of(&w["bytes_16"])).unwrap(),
        grant
    );
    assert!(StreamWindow::decode(&[0; 17]).is_err());

    let m = &doc["membership_0x0A00"];
    let lidar = ChannelName::new("sensors/lidar").unwrap();
    let cases = [
        (
            "subscribe_no_token(nonce 1, sensors/lidar)",
            Membership::Subscribe {
                nonce: 1,
                channel: lidar.clone(),
                token: None,
            },
        ),
        (
            "subscribe_with_token(nonce 0x1122334455667788, 159 bytes of 0xAB)",
            Membership::Subscribe {
                nonce: 0x1122_3344_5566_7788,
                channel: lidar.clone(),
                token: Some(vec![0xab; 159]),
            },
        ),
        (
            "unsubscribe(nonce 2)",
            Membership::Unsubscribe {
                nonce: 2,
                channel: lidar.clone(),
            },
        ),
        (
            "ack_accepted(nonce 1)",
            Membership::Ack {
                nonce: 1,
                accepted: true,
                reason: AckReason::Ok,
            },
        ),
        (
            "ack_rejected_too_many_channels(nonce 2)",
            Membership::Ack {
                nonce: 2,
                accepted: false,
                reason: AckReason::TooManyChannels,
            },
        ),
    ];
    for (key, message) in cases {
        let bytes = hex_of(&m[key]);
        assert_eq!(message.encode(), bytes, "{key}");
        assert_eq!(Membership::decode(&bytes).unwrap(), message, "{key}");
    }
    // Legacy subscribe without the token length decodes as "no token".
    let legacy = &hex_of(&m["subscribe_no_token(nonce 1, sensors/lidar)"]);
    let legacy = &legacy[..legacy.len() - 2];
    assert_eq!(
        Membership::decode(legacy).unwrap(),
        Membership::Subscribe {
            nonce: 1,
            channel: lidar.clone(),
            token: None
        }
    );
    let mut one_byte = legacy.to_vec();
    one_byte.push(0);
    assert_eq!(
        m["subscribe_with_single_trailing_byte_error"],
        "Some(Truncated(\"subscribe token length prefix\"))"
    );
    assert!(matches!(
        Membership::decode(&one_byte),
        Err(WireError::Truncated {
            what: "subscribe token length prefix",
            ..
        })
    ));
    let mut trailing = hex_of(&m["unsubscribe(nonce 2)"]);
    trailing.push(0);
    assert!(matches!(
        Membership::decode(&trailing),
        Err(WireError::TrailingBytes { .. })
    ));

    let r = &doc["reflex_0x0D00"];
    let v4: std::net::SocketAddr = "127.0.0.1:40123".parse().unwrap();
    let v6: std::net::SocketAddr = "[2001:db8::1]:443".parse().unwrap();
    assert_eq!(
        encode_address(&v4).to_vec(),
        hex_of(&r["response_127.0.0.1:40123"])
    );
    assert_eq!(
        encode_address(&v6).to_vec(),
        hex_of(&r["response_[2001:db8::1]:443"])
    );
    assert_eq!(
        decode_address(&hex_of(&r["response_[2001:db8::1]:443"])).unwrap(),
        v6
    );

    let z = &doc["rendezvous_0x0D01 (integers BIG-endian)"];
    let messages = [
        (
            "punch_request(target 0x0102030405060708, reflex 127.0.0.1:40123)",
            Rendezvous::PunchRequest {
                target: 0x0102_0304_0506_0708,
                requester_reflex: v4,
            },
        ),
        (
            "punch_introduce(peer 0x0102030405060708, reflex 127.0.0.1:40123, fire_at_ms 1700000000123)",
            Rendezvous::PunchIntroduce {
                peer: 0x0102_0304_0506_0708,
                peer_reflex: v4,
                fire_at_ms: 1_700_000_000_123,
            },
        ),
        (
            "punch_ack(from 1, to 2, punch_id 0xdeadbeef)",
            Rendezvous::PunchAck {
                from_peer: 1,
                to_peer: 2,
                punch_id: 0xdead_beef,
            },
        ),
    ];
    for (key, message) in messages {
        assert_eq!(message.encode(), hex_of(&z[key]), "{key}");
        assert_eq!(Rendezvous::decode(&hex_of(&z[key])).unwrap(), message);
    }
    let keepalive = hex_of(
        &z["keepalive_raw_udp_14(sender 0x0102030405060708, punch_id 0xdeadbeef) (little-endian)"],
    );
    let ka = PunchKeepAlive {
        sender: 0x0102_0304_0506_0708,
        punch_id: 0xdead_beef,
    };
    assert_eq!(ka.encode().to_vec(), keepalive);
    assert_eq!(classify(&keepalive), DatagramClass::KeepAlive);
}

#[test]
fn pingwave() {
    let doc = load("pingwave.json");
    let bytes = hex_of(&doc["bytes_72"]);
    let origin = num(&doc["origin_node_id (seed A)"]);
    let wave = Pingwave::new(origin, num(&doc["seq"]), num(&doc["origin_timestamp_us"]));
    assert_eq!(wave.encode().to_vec(), bytes);
    assert_eq!(Pingwave::decode(&bytes).unwrap(), wave);
    assert_eq!(wave.origin_node_id(), origin);
    assert_eq!(
        wave.forwarded().encode().to_vec(),
        hex_of(&doc["after_forward_bytes_72"])
    );
    assert_eq!(classify(&bytes), DatagramClass::Pingwave);
    let mut bad = bytes.clone();
    bad[63] = 4;
    assert_eq!(classify(&bad), DatagramClass::Unknown);
    assert!(Pingwave::decode(&bad).is_err());
}
