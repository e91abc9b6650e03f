//! Causal records against Net v0.11's vectors (tests/vectors/causal.json):
//! the CausalLink chain byte for byte, the ContinuityProof, the horizon
//! bloom and the 0x0400 frame encoding; plus rejection of every kind of
//! broken chain, proof and frame with its typed error.

use std::fs;

use net::cortex::causal::*;
use proptest::prelude::*;
use serde_json::Value;

fn load() -> Value {
    let path = format!("{}/tests/vectors/causal.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

fn hex_u64(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

fn hex_bytes(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

/// Rebuilds the vector chain with `CausalChain::append`, using the
/// vectors' horizons.
fn vector_chain(doc: &Value) -> CausalChain {
    let origin = hex_u64(&doc["origin_hash"]);
    let mut chain = CausalChain::new(origin);
    for step in doc["chain"].as_array().unwrap().iter().skip(1) {
        chain.append(
            &hex_bytes(&step["payload"]),
            hex_u64(&step["horizon_encoded"]),
        );
    }
    chain
}

#[test]
fn chain_matches_vectors_byte_for_byte() {
    let doc = load();
    let origin = hex_u64(&doc["origin_hash"]);
    let steps = doc["chain"].as_array().unwrap();
    let genesis = CausalLink::genesis(origin);
    assert_eq!(genesis.to_bytes().to_vec(), hex_bytes(&steps[0]["link_32"]));

    let mut prev = genesis;
    let mut prev_payload: Vec<u8> = Vec::new();
    for step in &steps[1..] {
        let payload = hex_bytes(&step["payload"]);
        let link = prev.next(&prev_payload, hex_u64(&step["horizon_encoded"]));
        assert_eq!(link.to_bytes().to_vec(), hex_bytes(&step["link_32"]));
        assert_eq!(link.parent_hash, hex_u64(&step["parent_hash"]));
        assert_eq!(link.sequence, step["sequence"].as_u64().unwrap());
        let parsed = CausalLink::from_bytes(&hex_bytes(&step["link_32"])).unwrap();
        assert_eq!(parsed, link);
        parsed.validate_after(&prev, &prev_payload).unwrap();
        prev = link;
        prev_payload = payload;
    }

    let chain = vector_chain(&doc);
    assert_eq!(
        chain.head().to_bytes().to_vec(),
        hex_bytes(&steps[3]["link_32"])
    );
}

#[test]
fn continuity_proof_matches_vector_and_verifies() {
    let doc = load();
    let v = &doc["continuity_proof"];
    let chain = vector_chain(&doc);
    let proof = chain.prove(1, 3).unwrap();
    assert_eq!(proof.to_bytes().to_vec(), hex_bytes(&v["bytes_40"]));
    assert_eq!(proof.from_hash, hex_u64(&v["fields"]["from_hash"]));
    assert_eq!(proof.to_hash, hex_u64(&v["fields"]["to_hash"]));
    let parsed = ContinuityProof::from_bytes(&hex_bytes(&v["bytes_40"])).unwrap();
    assert_eq!(parsed, proof);
    parsed.verify(&chain).unwrap();
}

#[test]
fn horizon_bloom_matches_vectors() {
    let doc = load();
    let v = &doc["horizon_bloom"];
    let a = hex_u64(&doc["origin_hash"]);
    let b = hex_u64(&v["origin_B"]);
    let mut only_a = Horizon::default();
    only_a.observe(a);
    assert_eq!(only_a.0, hex_u64(&v["only_origin_A"]));
    let mut only_b = Horizon::default();
    only_b.observe(b);
    assert_eq!(only_b.0, hex_u64(&v["only_origin_B"]));
    let both = only_a.merge(only_b);
    assert_eq!(both.0, hex_u64(&v["A_and_B"]));
    assert!(both.might_contain(a) && both.might_contain(b));
    assert!(only_a.might_contain(a) && !only_a.might_contain(b));
}

#[test]
fn frames_match_vectors_and_round_trip() {
    let doc = load();
    let v = &doc["causal_event_frames_seq1_2"];
    let expected = hex_bytes(&v["bytes"]);
    let chain = vector_chain(&doc);
    let mut out = Vec::new();
    for seq in 1..=2 {
        let (link, payload) = chain.event(seq).unwrap();
        encode_frame(&mut out, link, payload).unwrap();
    }
    assert_eq!(out, expected);
    let frames: Vec<_> = decode_frames(&expected).collect::<Result<_, _>>().unwrap();
    assert_eq!(frames.len(), v["events_written"].as_u64().unwrap() as usize);
    assert_eq!(frames[1].payload, b"second event");
    assert_eq!(&frames[0].link, chain.event(1).unwrap().0);
}

#[test]
fn broken_links_are_rejected_with_their_error() {
    let mut chain = CausalChain::new(9);
    let first = chain.append(b"one", 0);
    let good = first.next(b"one", 0);

    let mut wrong_origin = good;
    wrong_origin.origin_hash = 10;
    assert!(matches!(
        chain.clone().accept(wrong_origin, b"x"),
        Err(CausalError::OriginMismatch {
            expected: 9,
            got: 10
        })
    ));
    let mut gap = good;
    gap.sequence = 3;
    assert!(matches!(
        chain.clone().accept(gap, b"x"),
        Err(CausalError::SequenceGap {
            expected: 2,
            got: 3
        })
    ));
    let mut bad_parent = good;
    bad_parent.parent_hash ^= 1;
    assert!(matches!(
        chain.clone().accept(bad_parent, b"x"),
        Err(CausalError::ParentHashMismatch { seq: 2, .. })
    ));
    chain.accept(good, b"two").unwrap();
    assert_eq!(chain.head().sequence, 2);
}

#[test]
fn bad_proofs_are_rejected_with_their_error() {
    let doc = load();
    let chain = vector_chain(&doc);
    let proof = chain.prove(1, 3).unwrap();

    let mut other_origin = proof;
    other_origin.origin_hash ^= 1;
    assert!(matches!(
        other_origin.verify(&chain),
        Err(CausalError::OriginMismatch { .. })
    ));
    let mut reversed = proof;
    reversed.from_seq = 3;
    reversed.to_seq = 1;
    assert!(matches!(
        reversed.verify(&chain),
        Err(CausalError::InvalidRange { from: 3, to: 1 })
    ));
    let mut huge = proof;
    huge.to_seq = huge.from_seq + MAX_PROOF_SPAN;
    assert!(matches!(
        huge.verify(&chain),
        Err(CausalError::SpanTooLarge { .. })
    ));
    let mut beyond = proof;
    beyond.to_seq = 4;
    assert!(matches!(
        beyond.verify(&chain),
        Err(CausalError::MissingEvent(4))
    ));
    let mut bad_from = proof;
    bad_from.from_hash ^= 1;
    assert!(matches!(
        bad_from.verify(&chain),
        Err(CausalError::HashMismatch { seq: 1, .. })
    ));
    let mut bad_to = proof;
    bad_to.to_hash ^= 1;
    assert!(matches!(
        bad_to.verify(&chain),
        Err(CausalError::HashMismatch { seq: 3, .. })
    ));
    assert!(matches!(
        ContinuityProof::from_bytes(&[0; 39]),
        Err(CausalError::WrongLength {
            expected: 40,
            got: 39,
            ..
        })
    ));
    assert!(matches!(
        CausalLink::from_bytes(&[0; 33]),
        Err(CausalError::WrongLength {
            expected: 32,
            got: 33,
            ..
        })
    ));
    assert!(matches!(
        chain.prove(2, 1),
        Err(CausalError::InvalidRange { .. })
    ));
}

/// A log whose middle event was tampered with fails verification even
/// though both end hashes still match.
struct Tampered<'a>(&'a CausalChain, CausalLink);

impl CausalLog for Tampered<'_> {
    fn origin_hash(&self) -> u64 {
        self.0.origin_hash()
    }
    fn event(&self, seq: u64) -> Option<(&CausalLink, &[u8])> {
        if seq == self.1.sequence {
            return Some((&self.1, b"forged"));
        }
        self.0.event(seq)
    }
}

#[test]
fn tampered_middle_event_breaks_the_proof() {
    let doc = load();
    let chain = vector_chain(&doc);
    let proof = chain.prove(1, 3).unwrap();
    let middle = *chain.event(2).unwrap().0;
    let err = proof.verify(&Tampered(&chain, middle)).unwrap_err();
    assert!(
        matches!(err, CausalError::ParentHashMismatch { seq: 3, .. }),
        "{err}"
    );
}

#[test]
fn malformed_frames_are_rejected() {
    let mut frames = Vec::new();
    encode_frame(&mut frames, &CausalLink::genesis(1), b"payload").unwrap();
    let errors: Vec<_> = decode_frames(&frames[..2]).collect();
    assert_eq!(errors, vec![Err(CausalError::TruncatedFrame(0))]);
    let short = frames.len() - 1;
    assert!(matches!(
        decode_frames(&frames[..short]).next(),
        Some(Err(CausalError::BadFrameLength {
            offset: 0,
            declared: 39,
            available: 38
        }))
    ));
    let mut too_small = frames.clone();
    too_small[..4].copy_from_slice(&31u32.to_le_bytes());
    assert!(matches!(
        decode_frames(&too_small).next(),
        Some(Err(CausalError::BadFrameLength { declared: 31, .. }))
    ));
    // A malformed frame ends iteration after reporting once.
    let mut tail_garbage = frames.clone();
    tail_garbage.extend_from_slice(&[1, 2, 3]);
    let all: Vec<_> = decode_frames(&tail_garbage).collect();
    assert_eq!(all.len(), 2);
    assert!(all[0].is_ok() && all[1].is_err());
    assert_eq!(decode_frames(&[]).count(), 0);
}

proptest! {
    #[test]
    fn frames_round_trip(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8), origin: u64) {
        let mut chain = CausalChain::new(origin);
        let mut bytes = Vec::new();
        for payload in &payloads {
            let link = chain.append(payload, 0);
            encode_frame(&mut bytes, &link, payload).unwrap();
        }
        let decoded: Vec<_> = decode_frames(&bytes).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(decoded.len(), payloads.len());
        let mut replay = CausalChain::new(origin);
        for (frame, payload) in decoded.iter().zip(&payloads) {
            prop_assert_eq!(frame.payload, payload.as_slice());
            replay.accept(frame.link, frame.payload).unwrap();
        }
        if !payloads.is_empty() {
            let n = payloads.len() as u64;
            chain.prove(0, n).unwrap().verify(&replay).unwrap();
        }
    }

    #[test]
    fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        for frame in decode_frames(&bytes) {
            let _ = frame;
        }
        let _ = ContinuityProof::from_bytes(&bytes);
        let _ = CausalLink::from_bytes(&bytes);
    }

    #[test]
    fn horizon_has_no_false_negatives(origins in proptest::collection::vec(any::<u64>(), 1..20)) {
        let mut horizon = Horizon::default();
        for &o in &origins {
            horizon.observe(o);
        }
        for &o in &origins {
            prop_assert!(horizon.might_contain(o));
        }
    }
}
