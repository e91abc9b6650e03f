//! Every identity, channel, token and envelope vector from Net v0.11
//! (tests/vectors/*.json, copied from the shared vector set).

use std::time::Duration;

use net::identity::*;
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn hex_field(v: &Value, key: &str) -> Vec<u8> {
    hex::decode(v[key].as_str().unwrap_or_else(|| panic!("missing {key}"))).unwrap()
}

fn hex32(v: &Value, key: &str) -> [u8; 32] {
    hex_field(v, key).try_into().unwrap()
}

/// Parses "0x…" numbers and plain JSON integers.
fn num(v: &Value) -> u64 {
    match v {
        Value::Number(n) => n.as_u64().unwrap(),
        Value::String(s) => u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap(),
        other => panic!("not a number: {other}"),
    }
}

#[test]
fn identity_vectors() {
    let doc = load("identity.json");
    let vectors = doc["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 3);
    for v in vectors {
        let kp = EntityKeypair::from_seed(&hex32(v, "seed"));
        let label = v["label"].as_str().unwrap();
        assert_eq!(
            kp.public_key().as_slice(),
            hex_field(v, "ed25519_public_key"),
            "{label}"
        );
        assert_eq!(
            keyed_blake2s(ORIGIN_HASH_KEY, &[kp.public_key()]).as_slice(),
            hex_field(v, "blake2s_mac_origin_full32")
        );
        assert_eq!(
            keyed_blake2s(NODE_ID_KEY, &[kp.public_key()]).as_slice(),
            hex_field(v, "blake2s_mac_node_id_full32")
        );
        assert_eq!(kp.origin_hash(), num(&v["origin_hash_u64"]), "{label}");
        assert_eq!(
            kp.origin_hash().to_le_bytes().as_slice(),
            hex_field(v, "origin_hash_u64_le_bytes")
        );
        assert_eq!(kp.node_id(), num(&v["node_id_u64"]), "{label}");
        assert_eq!(
            u64::from(routing_id(kp.node_id())),
            num(&v["node_id_routing_u32"])
        );
        assert_eq!(
            u64::from(header_origin(kp.origin_hash())),
            num(&v["origin_hash_header_u32"])
        );
        assert_eq!(kp.entity_id().origin_hash(), kp.origin_hash());

        let message = v["sign_message_ascii"].as_str().unwrap().as_bytes();
        let signature = kp.sign(message).unwrap();
        assert_eq!(
            signature.0.as_slice(),
            hex_field(v, "ed25519_signature"),
            "{label}"
        );
        kp.verify(message, &signature).unwrap();
        assert_eq!(
            kp.verify(b"other message", &signature),
            Err(IdentityError::InvalidSignature)
        );
    }
}

#[test]
fn proximity_graph_id_is_node_id_then_zeroes() {
    let id = proximity_graph_id(0xbd82_6a5d_0a63_94f5);
    assert_eq!(&id[..8], &0xbd82_6a5d_0a63_94f5u64.to_le_bytes());
    assert!(id[8..].iter().all(|&b| b == 0));
}

#[test]
fn strict_verify_rejects_non_canonical_s_and_small_order_keys() {
    let kp = EntityKeypair::from_seed(&[3; 32]);
    let msg = b"strict";
    let sig = kp.sign(msg).unwrap();
    // S + l is the same scalar mod l but not canonical: strict rules reject it.
    let l: [u8; 32] =
        hex::decode("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
            .unwrap()
            .try_into()
            .unwrap();
    let mut bad = sig.0;
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(bad[32 + i]) + u16::from(l[i]) + carry;
        bad[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(
        kp.verify(msg, &Signature(bad)),
        Err(IdentityError::InvalidSignature)
    );

    // The identity point (small order) as a public key, with R = identity, S = 0:
    // cofactored or lax verifiers accept this for every message; strict must not.
    let mut identity_point = [0u8; 32];
    identity_point[0] = 1;
    let weak = EntityId::from_bytes(identity_point);
    let mut forged = [0u8; 64];
    forged[0] = 1;
    assert_eq!(
        weak.verify(msg, &Signature(forged)),
        Err(IdentityError::InvalidSignature)
    );
}

#[test]
fn channel_hash_vectors() {
    let doc = load("channels.json");
    for h in doc["hashes"].as_array().unwrap() {
        let name = h["name"].as_str().unwrap();
        let channel = ChannelName::new(name).unwrap();
        assert_eq!(u64::from(channel.hash()), num(&h["hash_u16"]), "{name}");
        assert_eq!(
            channel.hash().to_le_bytes().as_slice(),
            hex_field(h, "hash_u16_le_bytes")
        );
        assert_eq!(xxhash_of(name), num(&h["xxh3_64"]));
        assert_eq!(
            publish_stream_id(channel.hash()),
            num(&h["publish_stream_id"])
        );
    }
}

fn xxhash_of(name: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(name.as_bytes())
}

#[test]
fn channel_name_validation_vectors() {
    let doc = load("channels.json");
    let cases = doc["name_validation"].as_array().unwrap();
    assert_eq!(cases.len(), 13);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let label = case["label"].as_str().unwrap();
        let got = validate_channel_name(name);
        assert_eq!(got.is_ok(), case["valid"].as_bool().unwrap(), "{label}");
        if let Err(err) = got {
            let reference = case["error"].as_str().unwrap();
            assert_eq!(reference_spelling(&err), reference, "{label}");
        }
    }
}

/// The reference prints its errors with Rust's derived `Debug`; ours are the
/// same variants, so print them the same way to compare.
fn reference_spelling(err: &ChannelNameError) -> String {
    match err {
        ChannelNameError::Empty => "Empty".into(),
        ChannelNameError::TooLong(n) => format!("TooLong({n})"),
        ChannelNameError::InvalidFormat(reason) => format!("InvalidFormat({reason:?})"),
        ChannelNameError::InvalidChar(c) => format!("InvalidChar({c:?})"),
        other => panic!("unexpected variant {other:?}"),
    }
}

fn seed_a() -> EntityKeypair {
    EntityKeypair::from_seed(&std::array::from_fn(|i| i as u8))
}

fn seed_b() -> EntityKeypair {
    EntityKeypair::from_seed(&[0x42; 32])
}

fn seed_c() -> EntityKeypair {
    EntityKeypair::from_seed(&[0xff; 32])
}

#[test]
fn deterministic_token_is_reproduced_byte_for_byte() {
    let doc = load("token.json");
    let d = &doc["deterministic"];
    let issuer = EntityKeypair::from_seed(&hex32(d, "issuer_seed"));
    let subject = EntityKeypair::from_seed(&hex32(d, "subject_seed"));
    let channel = ChannelName::new(d["channel"].as_str().unwrap()).unwrap();
    assert_eq!(u64::from(channel.hash()), num(&d["channel_hash"]));
    let claims = TokenClaims {
        subject: *subject.entity_id(),
        scope: TokenScope(num(&d["scope_bits"]) as u32),
        channel_hash: channel.hash(),
        not_before: num(&d["not_before"]),
        not_after: num(&d["not_after"]),
        delegation_depth: num(&d["delegation_depth"]) as u8,
        nonce: num(&d["nonce"]),
    };
    let token = PermissionToken::sign(&issuer, claims).unwrap();
    assert_eq!(
        token.signing_input().as_slice(),
        hex_field(d, "signing_input_95")
    );
    assert_eq!(token.signature().0.as_slice(), hex_field(d, "signature"));
    assert_eq!(token.to_bytes().as_slice(), hex_field(d, "token_159"));
    assert_eq!(
        token.issuer().as_bytes().as_slice(),
        hex_field(d, "issuer_pub")
    );
    assert_eq!(
        token.subject().as_bytes().as_slice(),
        hex_field(d, "subject_pub")
    );

    let parsed = PermissionToken::from_bytes(&hex_field(d, "token_159")).unwrap();
    assert_eq!(parsed, token);
    parsed.verify().unwrap();
    parsed.is_valid_at(1_700_000_000).unwrap();
    assert_eq!(
        parsed.is_valid_at(1_699_999_999),
        Err(TokenError::NotYetValid)
    );
    assert_eq!(parsed.is_valid_at(4_102_444_800), Err(TokenError::Expired));
    parsed.is_valid_at(4_102_444_799).unwrap();

    let lidar = channel.hash();
    assert_eq!(
        parsed.authorizes(TokenScope::NONE, lidar),
        d["authorizes_NONE"].as_bool().unwrap()
    );
    assert_eq!(
        parsed.authorizes(TokenScope::ADMIN, lidar),
        d["authorizes_admin_on_channel"].as_bool().unwrap()
    );
    assert_eq!(
        parsed.authorizes(TokenScope::SUBSCRIBE, lidar),
        d["authorizes_subscribe_on_channel"].as_bool().unwrap()
    );
    assert_eq!(
        parsed.authorizes(TokenScope::SUBSCRIBE, 0),
        d["authorizes_subscribe_on_other_channel_0x0000"]
            .as_bool()
            .unwrap()
    );
}

#[test]
fn token_length_must_be_exact() {
    let doc = load("token.json");
    let bytes = hex_field(&doc["deterministic"], "token_159");
    assert_eq!(doc["from_bytes_158_bytes_error"], "Some(InvalidFormat)");
    assert_eq!(
        PermissionToken::from_bytes(&bytes[..158]),
        Err(TokenError::InvalidFormat)
    );
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(
        PermissionToken::from_bytes(&long),
        Err(TokenError::InvalidFormat)
    );
    assert_eq!(
        PermissionToken::from_bytes(&[]),
        Err(TokenError::InvalidFormat)
    );
}

#[test]
fn tampered_expired_and_wildcard_tokens() {
    let doc = load("token.json");
    let tampered = PermissionToken::from_bytes(&hex_field(
        &doc["tampered_scope_byte64_xor_0x04"],
        "token_159",
    ))
    .unwrap();
    assert_eq!(tampered.verify(), Err(TokenError::InvalidSignature));
    assert_eq!(
        tampered.is_valid_at(1_700_000_000),
        Err(TokenError::InvalidSignature)
    );

    let e = &doc["expired"];
    let expired = PermissionToken::from_bytes(&hex_field(e, "token_159")).unwrap();
    expired.verify().unwrap();
    assert!(expired.is_expired());
    assert_eq!(
        expired.is_expired(),
        e["reference_is_expired"].as_bool().unwrap()
    );
    assert_eq!(expired.is_valid(), Err(TokenError::Expired));
    assert_eq!(expired.not_before(), num(&e["not_before"]));
    assert_eq!(expired.not_after(), num(&e["not_after"]));
    assert_eq!(expired.nonce(), num(&e["nonce"]));
    assert!(expired.is_expired_at(1_600_000_060));
    assert!(!expired.is_expired_at(1_600_000_059));

    let w = &doc["wildcard"];
    let wildcard = PermissionToken::from_bytes(&hex_field(w, "token_159")).unwrap();
    wildcard.verify().unwrap();
    assert_eq!(wildcard.channel_hash(), 0);
    assert_eq!(u64::from(wildcard.scope().bits()), num(&w["scope_bits"]));
    assert_eq!(
        wildcard.authorizes(TokenScope::SUBSCRIBE, 0x1234),
        w["authorizes_subscribe_on_0x1234"].as_bool().unwrap()
    );
    assert_eq!(
        wildcard.authorizes(TokenScope::PUBLISH, 0x1234),
        w["authorizes_publish_on_0x1234"].as_bool().unwrap()
    );
}

#[test]
fn reference_issued_and_delegated_tokens_verify() {
    let doc = load("token.json");
    let r = &doc["reference_issued"];
    let issued = PermissionToken::from_bytes(&hex_field(r, "token_159")).unwrap();
    issued.verify().unwrap();
    assert_eq!(issued.issuer(), seed_a().entity_id());
    assert_eq!(issued.subject(), seed_b().entity_id());
    assert_eq!(issued.scope(), TokenScope::PUBLISH);
    assert_eq!(issued.not_after() - issued.not_before(), 3600);
    assert_eq!(issued.nonce(), num(&r["nonce"]));

    let c = &doc["delegated_child_from_deterministic"];
    let child = PermissionToken::from_bytes(&hex_field(c, "token_159")).unwrap();
    child.verify().unwrap();
    assert_eq!(child.issuer(), seed_b().entity_id());
    assert_eq!(child.subject(), seed_c().entity_id());
    assert_eq!(u64::from(child.scope().bits()), num(&c["scope_bits"]));
    assert_eq!(
        u64::from(child.delegation_depth()),
        num(&c["delegation_depth"])
    );
    assert_eq!(child.not_after(), num(&c["not_after"]));
    assert_eq!(u64::from(child.channel_hash()), num(&c["channel_hash"]));
}

#[test]
fn delegation_matches_the_reference() {
    let doc = load("token.json");
    let parent =
        PermissionToken::from_bytes(&hex_field(&doc["deterministic"], "token_159")).unwrap();
    let c = &doc["delegated_child_from_deterministic"];
    let now = num(&c["not_before"]);
    let requested = TokenScope::SUBSCRIBE | TokenScope::DELEGATE | TokenScope::ADMIN;

    let child = parent
        .delegate_at(&seed_b(), *seed_c().entity_id(), requested, now)
        .unwrap();
    // Random nonce aside, our child carries exactly the reference child's fields.
    let reference = PermissionToken::from_bytes(&hex_field(c, "token_159")).unwrap();
    assert_eq!(child.issuer(), reference.issuer());
    assert_eq!(child.subject(), reference.subject());
    assert_eq!(child.scope(), reference.scope());
    assert_eq!(child.channel_hash(), reference.channel_hash());
    assert_eq!(child.not_before(), reference.not_before());
    assert_eq!(child.not_after(), reference.not_after());
    assert_eq!(child.delegation_depth(), reference.delegation_depth());
    child.verify().unwrap();

    assert_eq!(c["delegate_with_wrong_signer_error"], "Some(NotAuthorized)");
    assert_eq!(
        parent.delegate_at(&seed_c(), *seed_c().entity_id(), requested, now),
        Err(TokenError::NotAuthorized)
    );

    // Grandchild gets depth 0 and cannot be delegated again.
    let grandchild = child
        .delegate_at(&seed_c(), *seed_a().entity_id(), TokenScope::ALL, now)
        .unwrap();
    assert_eq!(
        u64::from(grandchild.delegation_depth()),
        num(&c["grandchild_depth"])
    );
    assert_eq!(
        grandchild.scope(),
        TokenScope::SUBSCRIBE | TokenScope::DELEGATE
    );
    assert_eq!(c["delegate_from_depth0_error"], "Some(DelegationExhausted)");
    assert_eq!(
        grandchild.delegate_at(&seed_a(), *seed_b().entity_id(), TokenScope::ALL, now),
        Err(TokenError::DelegationExhausted)
    );
}

#[test]
fn delegation_checks_run_in_spec_order() {
    let a = seed_a();
    let b = seed_b();
    let now = 1_000;
    let no_delegate = PermissionToken::try_issue_at(
        &a,
        *b.entity_id(),
        TokenScope::PUBLISH,
        7,
        Duration::from_secs(60),
        3,
        now,
    )
    .unwrap();
    assert_eq!(
        no_delegate.delegate_at(&b, *a.entity_id(), TokenScope::PUBLISH, now),
        Err(TokenError::DelegationNotAllowed)
    );
    assert_eq!(
        no_delegate.delegate_at(&b, *a.entity_id(), TokenScope::PUBLISH, now + 60),
        Err(TokenError::Expired)
    );
    assert_eq!(
        no_delegate.delegate_at(&b, *a.entity_id(), TokenScope::PUBLISH, now - 1),
        Err(TokenError::NotYetValid)
    );
    let read_only_b = EntityKeypair::public_only(*b.entity_id()).unwrap();
    let delegable = PermissionToken::try_issue_at(
        &a,
        *b.entity_id(),
        TokenScope::ALL,
        7,
        Duration::from_secs(60),
        3,
        now,
    )
    .unwrap();
    assert_eq!(
        delegable.delegate_at(&read_only_b, *a.entity_id(), TokenScope::PUBLISH, now),
        Err(TokenError::ReadOnly)
    );
}

fn envelope_inputs() -> (Value, [u8; 32], [u8; 32], [u8; 32]) {
    let doc = load("envelope.json");
    let inputs = doc["inputs"].clone();
    let target_secret = hex32(&inputs, "target_x25519_secret");
    let target_pub = hex32(&inputs, "target_x25519_pub");
    let chain_link = hex32(&inputs["chain_link"], "bytes_32");
    (doc, target_secret, target_pub, chain_link)
}

#[test]
fn chain_link_input_is_the_serialized_causal_link() {
    let (doc, _, _, chain_link) = envelope_inputs();
    let link = &doc["inputs"]["chain_link"];
    assert_eq!(
        u64::from_le_bytes(chain_link[0..8].try_into().unwrap()),
        num(&link["origin_hash"])
    );
    assert_eq!(
        u64::from_le_bytes(chain_link[8..16].try_into().unwrap()),
        num(&link["horizon_encoded"])
    );
    assert_eq!(
        u64::from_le_bytes(chain_link[16..24].try_into().unwrap()),
        num(&link["sequence"])
    );
    assert_eq!(
        u64::from_le_bytes(chain_link[24..32].try_into().unwrap()),
        num(&link["parent_hash"])
    );
}

#[test]
fn deterministic_envelope_is_reproduced_byte_for_byte() {
    let (doc, target_secret, target_pub, chain_link) = envelope_inputs();
    let d = &doc["deterministic"];
    let source = EntityKeypair::from_seed(&hex32(&doc["inputs"], "source_seed"));
    assert_eq!(x25519_public_key(&target_secret), target_pub);
    let eph_secret = hex32(d, "ephemeral_x25519_secret");
    assert_eq!(
        x25519_public_key(&eph_secret).as_slice(),
        hex_field(d, "ephemeral_x25519_pub")
    );

    let envelope =
        IdentityEnvelope::seal_with_ephemeral(&source, &target_pub, &chain_link, &eph_secret)
            .unwrap();
    assert_eq!(envelope.to_bytes().as_slice(), hex_field(d, "envelope_209"));

    // Intermediates, recomputed from the spec's formulas.
    let shared = hex32(d, "x25519_shared");
    assert_eq!(
        keyed_blake2s(ENVELOPE_KEY_LABEL, &[&shared]).as_slice(),
        hex_field(
            d,
            "aead_key = blake2s_mac(key=\"net-identity-envelope\", msg=shared)"
        )
    );
    let eph_pub = x25519_public_key(&eph_secret);
    assert_eq!(
        keyed_blake2s(ENVELOPE_NONCE_LABEL, &[&eph_pub, &target_pub]).as_slice(),
        hex_field(
            d,
            "blake2s_mac(key=\"net-identity-nonce\", msg=eph_pub||target_pub)"
        )
    );

    let opened = envelope.open(&target_secret, &chain_link, None).unwrap();
    assert_eq!(
        opened.seed().unwrap().as_slice(),
        hex_field(&doc["inputs"], "source_seed")
    );
}

#[test]
fn reference_sealed_envelope_opens() {
    let (doc, target_secret, _, chain_link) = envelope_inputs();
    let r = &doc["reference_sealed"];
    let envelope = IdentityEnvelope::from_bytes(&hex_field(r, "envelope_209")).unwrap();
    let opened = envelope
        .open(&target_secret, &chain_link, Some(seed_a().entity_id()))
        .unwrap();
    assert_eq!(
        opened.seed().unwrap().as_slice(),
        hex_field(r, "opened_seed")
    );
    assert_eq!(
        IdentityEnvelope::from_bytes(&envelope.to_bytes()).unwrap(),
        envelope
    );
}

#[test]
fn envelope_failure_cases() {
    let (doc, target_secret, _, chain_link) = envelope_inputs();
    let f = &doc["failure_cases_on_deterministic"];
    let bytes = hex_field(&doc["deterministic"], "envelope_209");
    let envelope = IdentityEnvelope::from_bytes(&bytes).unwrap();

    assert!(
        f["from_bytes_with_version_byte_0_is_none"]
            .as_bool()
            .unwrap()
    );
    for version in [0u8, 2, 0xff] {
        let mut other = bytes.clone();
        other[0] = version;
        assert_eq!(
            IdentityEnvelope::from_bytes(&other),
            Err(EnvelopeError::UnknownVersion(version))
        );
    }
    // The version is judged before the length: a 1-byte v0 blob is UnknownVersion.
    assert_eq!(
        IdentityEnvelope::from_bytes(&[0]),
        Err(EnvelopeError::UnknownVersion(0))
    );
    assert_eq!(
        IdentityEnvelope::from_bytes(&[]),
        Err(EnvelopeError::InvalidLength(0))
    );
    assert_eq!(
        IdentityEnvelope::from_bytes(&bytes[..208]),
        Err(EnvelopeError::InvalidLength(208))
    );

    let mut flipped = bytes.clone();
    flipped[80] ^= 0x01;
    assert_eq!(
        f["open_after_flipping_byte_80_(ciphertext)"],
        "Some(SealOpenFailed)"
    );
    assert_eq!(
        IdentityEnvelope::from_bytes(&flipped)
            .unwrap()
            .open(&target_secret, &chain_link, None)
            .unwrap_err(),
        EnvelopeError::SealOpenFailed
    );

    let mut link6 = chain_link;
    link6[16..24].copy_from_slice(&6u64.to_le_bytes());
    assert_eq!(
        f["open_with_chain_link_sequence_6"],
        "Some(InvalidAttestation)"
    );
    assert_eq!(
        envelope.open(&target_secret, &link6, None).unwrap_err(),
        EnvelopeError::InvalidAttestation
    );

    assert_eq!(
        f["open_with_wrong_target_secret_0909.."],
        "Some(SealOpenFailed)"
    );
    assert_eq!(
        envelope.open(&[0x09; 32], &chain_link, None).unwrap_err(),
        EnvelopeError::SealOpenFailed
    );

    // A signer key that is not a curve point.
    let not_a_point = (2u8..=255)
        .map(|y| {
            let mut key = [0u8; 32];
            key[0] = y;
            EntityId::from_bytes(key)
        })
        .find(|id| !id.is_valid_point())
        .expect("some small y is off the curve");
    let mut bad_signer = bytes.clone();
    bad_signer[113..145].copy_from_slice(not_a_point.as_bytes());
    let parsed = IdentityEnvelope::from_bytes(&bad_signer).unwrap();
    assert_eq!(
        parsed.open(&target_secret, &chain_link, None).unwrap_err(),
        EnvelopeError::InvalidSignerKey
    );
}
