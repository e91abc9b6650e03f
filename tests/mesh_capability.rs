//! Capability announcements (MESH2.md §3) without sockets: every vector of
//! `tests/vectors/capability.json` (v0.11 bytes, and the hand-written
//! announcement v0.11 verifies), the receive pipeline's drops, forwarding
//! and dedup, the §8 capability scenarios, the "better than v0.11" items
//! (§7 items 10, 15–18), index bounds, scoped queries, and property tests
//! that nothing panics on hostile bytes.

use std::fs;
use std::time::{Duration, Instant};

use net::identity::EntityKeypair;
use net::mesh::capability::pipeline::DropReason;
use net::mesh::capability::*;
use proptest::prelude::*;
use serde_json::Value;

const SECOND: u64 = 1_000_000_000;
/// Wall clock of the tests: 10 s after the vectors' timestamp.
const NOW: u64 = 1_700_000_010 * SECOND;

fn vectors() -> Value {
    let path = format!(
        "{}/tests/vectors/capability.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

fn text<'a>(doc: &'a Value, prefix: &str) -> &'a str {
    doc.as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.starts_with(prefix))
        .unwrap_or_else(|| panic!("no vector {prefix}"))
        .1
        .as_str()
        .unwrap()
}

fn seed_a() -> EntityKeypair {
    let doc = vectors();
    let seed: [u8; 32] = hex::decode(text(&doc, "signer_seed"))
        .unwrap()
        .try_into()
        .unwrap();
    EntityKeypair::from_seed(&seed)
}

fn keypair(seed: u8) -> EntityKeypair {
    EntityKeypair::from_seed(&[seed; 32])
}

fn signed(
    kp: &EntityKeypair,
    version: u64,
    timestamp_ns: u64,
    caps: CapabilitySet,
) -> Announcement {
    let mut a = Announcement::new(*kp.entity_id(), version, timestamp_ns, 300, caps);
    a.sign(kp).unwrap();
    a
}

fn tags(tags: &[&str]) -> CapabilitySet {
    CapabilitySet {
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        ..CapabilitySet::default()
    }
}

fn pipeline_for(kp: &EntityKeypair) -> (ReceivePipeline, CapabilityIndex) {
    (
        ReceivePipeline::new(kp.node_id(), PipelineConfig::default()),
        CapabilityIndex::new(kp.node_id(), IndexLimits::default()),
    )
}

fn accepted(verdict: Verdict) -> Accepted {
    match verdict {
        Verdict::Accepted(a) => *a,
        Verdict::Dropped(reason) => panic!("dropped: {reason}"),
    }
}

fn dropped(verdict: Verdict) -> DropReason {
    match verdict {
        Verdict::Dropped(reason) => reason,
        Verdict::Accepted(a) => panic!("accepted: {a:?}"),
    }
}

// ---------------------------------------------------------------- vectors

#[test]
fn vector_signed_announcement_is_reproduced_byte_for_byte() {
    let doc = vectors();
    let kp = seed_a();
    let signed_json = text(&doc, "signed_json");
    let parsed = Announcement::decode(signed_json.as_bytes()).unwrap();
    assert_eq!(parsed.node_id, 13_655_593_967_979_566_325);
    assert_eq!(parsed.node_id, kp.node_id());
    parsed.verify().unwrap();
    assert_eq!(parsed.encode(), signed_json.as_bytes());
    // The signing input is the unsigned vector.
    assert_eq!(
        parsed.signing_input(),
        text(&doc, "unsigned_json").as_bytes()
    );
    let unsigned = Announcement::decode(text(&doc, "unsigned_json").as_bytes()).unwrap();
    assert_eq!(unsigned.signature, None);
    assert_eq!(unsigned.encode(), text(&doc, "unsigned_json").as_bytes());
    // Our encoder + signer produce exactly v0.11's bytes.
    let mut ours = Announcement::new(
        *kp.entity_id(),
        1,
        1_700_000_000_000_000_000,
        300,
        parsed.capabilities.clone(),
    );
    ours.sign(&kp).unwrap();
    assert_eq!(ours.encode(), signed_json.as_bytes());
    assert_eq!(text(&doc, "reference_verify"), "Ok(())");
}

#[test]
fn vector_forwarded_copy_matches_and_still_verifies() {
    let doc = vectors();
    let parsed = Announcement::decode(text(&doc, "signed_json").as_bytes()).unwrap();
    let forwarded = parsed.forwarded().unwrap();
    assert_eq!(
        forwarded.encode(),
        text(&doc, "forwarded_hop_count_1_json").as_bytes()
    );
    let theirs = Announcement::decode(text(&doc, "forwarded_hop_count_1_json").as_bytes()).unwrap();
    assert_eq!(theirs.hop_count, 1);
    theirs.verify().unwrap();
    assert_eq!(text(&doc, "forwarded_reference_verify"), "Ok(())");
}

#[test]
fn vector_with_reflex_addr_round_trips_and_verifies() {
    let doc = vectors();
    let json = text(&doc, "with_reflex_addr_signed_json");
    let parsed = Announcement::decode(json.as_bytes()).unwrap();
    assert_eq!(
        parsed.reflex_addr,
        Some("203.0.113.7:4070".parse().unwrap())
    );
    assert_eq!(parsed.version, 2);
    parsed.verify().unwrap();
    assert_eq!(parsed.encode(), json.as_bytes());
    // reflex_addr is signed: re-signing reproduces the vector.
    let mut ours = parsed.clone();
    ours.signature = None;
    ours.sign(&seed_a()).unwrap();
    assert_eq!(ours.encode(), json.as_bytes());
}

#[test]
fn vector_minimal_hand_written_announcement_v0_11_verifies() {
    let doc = vectors();
    let json = text(&doc, "minimal_clean_room_json");
    let parsed = Announcement::decode(json.as_bytes()).unwrap();
    // The minimal JSON is exactly our canonical signing input.
    assert_eq!(parsed.signing_input(), json.as_bytes());
    assert_eq!(parsed.encode(), json.as_bytes());
    let mut ours = parsed;
    ours.sign(&seed_a()).unwrap();
    assert_eq!(
        hex::encode(ours.signature.unwrap().0),
        text(&doc, "minimal_signature_over_exact_bytes")
    );
    ours.verify().unwrap();
    assert_eq!(text(&doc, "minimal_reference_verify"), "Ok(())");
}

// ------------------------------------------------------ forged and hostile

#[test]
fn forged_signatures_are_dropped_and_never_forwarded() {
    let a = keypair(1);
    let b = keypair(2);
    let (mut pipe, mut index) = pipeline_for(&b);
    let good = signed(&a, 5, NOW, tags(&["gpu"]));
    // A flipped signature bit.
    let mut flipped = good.clone();
    flipped.signature.as_mut().unwrap().0[10] ^= 1;
    assert_eq!(
        dropped(pipe.receive(&flipped.encode(), a.node_id(), NOW, &mut index)),
        DropReason::Invalid(AnnouncementError::BadSignature)
    );
    // Altered capabilities under the original signature.
    let mut altered = good.clone();
    altered.capabilities.tags.push("admin".into());
    assert_eq!(
        dropped(pipe.receive(&altered.encode(), a.node_id(), NOW, &mut index)),
        DropReason::Invalid(AnnouncementError::BadSignature)
    );
    // A forgery did not poison the dedup record: the genuine one passes.
    assert!(index.is_empty());
    accepted(pipe.receive(&good.encode(), a.node_id(), NOW, &mut index));
}

#[test]
fn forged_node_id_and_impersonation_are_dropped() {
    let a = keypair(1);
    let b = keypair(2);
    let mallory = keypair(3);
    let (mut pipe, mut index) = pipeline_for(&b);
    // Mallory signs with her key but claims A's node_id.
    let mut forged = Announcement::new(*mallory.entity_id(), 1, NOW, 300, tags(&[]));
    forged.signature = Some(mallory.sign(b"x").unwrap());
    forged.node_id = a.node_id();
    let sig = mallory.sign(&forged.signing_input()).unwrap();
    forged.signature = Some(sig);
    let reason = dropped(pipe.receive(&forged.encode(), a.node_id(), NOW, &mut index));
    assert!(
        matches!(
            reason,
            DropReason::Invalid(AnnouncementError::NodeIdMismatch { .. })
        ),
        "{reason:?}"
    );
    // Unsigned with a foreign node_id, signatures not required: still dropped.
    let mut open = ReceivePipeline::new(
        b.node_id(),
        PipelineConfig {
            require_signed: false,
            ..PipelineConfig::default()
        },
    );
    let mut unsigned = Announcement::new(*mallory.entity_id(), 1, NOW, 300, tags(&[]));
    unsigned.node_id = a.node_id();
    assert!(matches!(
        dropped(open.receive(&unsigned.encode(), a.node_id(), NOW, &mut index)),
        DropReason::Invalid(AnnouncementError::NodeIdMismatch { .. })
    ));
    // A's genuine announcement at hop 0 relayed by Mallory (posing as A).
    let genuine = signed(&a, 1, NOW, tags(&[]));
    assert!(matches!(
        dropped(pipe.receive(&genuine.encode(), mallory.node_id(), NOW, &mut index)),
        DropReason::NotFromOrigin { .. }
    ));
    // Our own announcement coming back.
    let own = signed(&b, 1, NOW, tags(&[]));
    assert_eq!(
        dropped(pipe.receive(
            &own.forwarded().unwrap().encode(),
            a.node_id(),
            NOW,
            &mut index
        )),
        DropReason::Own
    );
}

#[test]
fn unsigned_is_dropped_by_default_and_never_pins() {
    let a = keypair(1);
    let b = keypair(2);
    let (mut pipe, mut index) = pipeline_for(&b);
    let unsigned = Announcement::new(*a.entity_id(), 1, NOW, 300, tags(&[]));
    assert_eq!(
        dropped(pipe.receive(&unsigned.encode(), a.node_id(), NOW, &mut index)),
        DropReason::Invalid(AnnouncementError::Unsigned)
    );
    let mut open = ReceivePipeline::new(
        b.node_id(),
        PipelineConfig {
            require_signed: false,
            ..PipelineConfig::default()
        },
    );
    let got = accepted(open.receive(&unsigned.encode(), a.node_id(), NOW, &mut index));
    assert!(!got.newly_pinned && !got.from_direct_signer());
    assert_eq!(open.pinned_entity(a.node_id()), None);
}

#[test]
fn forwarded_announcements_never_pin_direct_signed_ones_do() {
    let a = keypair(1);
    let b = keypair(2);
    let c = keypair(3);
    let (mut pipe, mut index) = pipeline_for(&c);
    let forwarded = signed(&a, 1, NOW, tags(&[])).forwarded().unwrap();
    let got = accepted(pipe.receive(&forwarded.encode(), b.node_id(), NOW, &mut index));
    assert!(!got.newly_pinned && !got.from_direct_signer());
    assert_eq!(pipe.pinned_entity(b.node_id()), None);
    assert_eq!(pipe.pinned_entity(a.node_id()), None);
    let direct = signed(&b, 1, NOW, tags(&[]));
    let got = accepted(pipe.receive(&direct.encode(), b.node_id(), NOW, &mut index));
    assert!(got.newly_pinned && got.from_direct_signer());
    assert_eq!(pipe.pinned_entity(b.node_id()), Some(*b.entity_id()));
}

#[test]
fn oversized_and_garbage_frames_are_dropped() {
    let b = keypair(2);
    let (mut pipe, mut index) = pipeline_for(&b);
    let huge = vec![b'{'; MAX_ANNOUNCEMENT_LEN + 1];
    assert!(matches!(
        dropped(pipe.receive(&huge, 1, NOW, &mut index)),
        DropReason::Invalid(AnnouncementError::TooLarge { .. })
    ));
    // An announcement whose tags push it past the limit, validly signed
    // JSON otherwise.
    let a = keypair(1);
    let mut big = Announcement::new(*a.entity_id(), 1, NOW, 300, tags(&[]));
    big.capabilities.tags = vec!["x".repeat(100); 100];
    let bytes = big.encode();
    assert!(bytes.len() > MAX_ANNOUNCEMENT_LEN);
    assert!(matches!(
        dropped(pipe.receive(&bytes, a.node_id(), NOW, &mut index)),
        DropReason::Invalid(AnnouncementError::TooLarge { .. })
    ));
    for garbage in [
        &b""[..],
        b"null",
        b"{}",
        b"[1,2]",
        b"{\"node_id\":-1}",
        &[0xff, 0xfe],
    ] {
        assert!(matches!(
            dropped(pipe.receive(garbage, 1, NOW, &mut index)),
            DropReason::Invalid(AnnouncementError::Malformed(_))
        ));
    }
    // Out-of-range integers and unknown enum names are malformed, as in v0.11.
    let good = String::from_utf8(signed(&a, 1, NOW, tags(&[])).encode()).unwrap();
    for (from, to) in [
        ("\"ttl_secs\":300", "\"ttl_secs\":4294967296"),
        ("\"cpu_cores\":0", "\"cpu_cores\":65536"),
        (
            "\"gpu\":null",
            "\"gpu\":{\"vendor\":\"Nvidea\",\"model\":\"\",\"vram_mb\":0,\"compute_units\":0,\"tensor_cores\":0,\"fp16_tflops_x10\":0}",
        ),
    ] {
        let bad = good.replace(from, to);
        assert_ne!(bad, good);
        assert!(matches!(
            Announcement::decode(bad.as_bytes()),
            Err(AnnouncementError::Malformed(_))
        ));
    }
    assert!(index.is_empty());
}

// ------------------------------------------- forwarding, dedup, versions

#[test]
fn three_node_chain_forwards_with_hop_counts_and_learns_a_route() {
    let (a, b, c) = (keypair(1), keypair(2), keypair(3));
    let (mut at_b, mut index_b) = pipeline_for(&b);
    let (mut at_c, mut index_c) = pipeline_for(&c);
    let original = signed(&a, 1, NOW, tags(&["gpu"]));
    let got_b = accepted(at_b.receive(&original.encode(), a.node_id(), NOW, &mut index_b));
    assert_eq!(got_b.route, None);
    assert_eq!(got_b.indexed, Ok(IndexChange::Added));
    let forward = got_b.forward.unwrap();
    assert_eq!(forward.except_peer, a.node_id());
    let got_c = accepted(at_c.receive(&forward.bytes, b.node_id(), NOW, &mut index_c));
    assert_eq!(got_c.announcement.hop_count, 1);
    assert_eq!(
        got_c.route,
        Some(RouteHint {
            origin: a.node_id(),
            via_peer: b.node_id(),
            metric: 3,
        })
    );
    assert_eq!(
        got_c.forward.unwrap().bytes,
        original.forwarded().unwrap().forwarded().unwrap().encode()
    );
    assert!(index_c.get(a.node_id()).is_some());
    // Route learning can be switched off (§7 item 10: hop counts are unsigned).
    let mut no_routes = ReceivePipeline::new(
        c.node_id(),
        PipelineConfig {
            routes: AnnouncementRoutes::Ignore,
            ..PipelineConfig::default()
        },
    );
    let mut index = CapabilityIndex::new(c.node_id(), IndexLimits::default());
    assert_eq!(
        accepted(no_routes.receive(&forward.bytes, b.node_id(), NOW, &mut index)).route,
        None
    );
}

#[test]
fn forwarding_stops_at_hop_count_fifteen() {
    let (a, b, c) = (keypair(1), keypair(2), keypair(3));
    let mut at_hop = signed(&a, 1, NOW, tags(&[]));
    at_hop.hop_count = 14;
    let (mut pipe, mut index) = pipeline_for(&c);
    let got = accepted(pipe.receive(&at_hop.encode(), b.node_id(), NOW, &mut index));
    let forwarded = Announcement::decode(&got.forward.unwrap().bytes).unwrap();
    assert_eq!(forwarded.hop_count, 15);
    let (mut pipe, mut index) = pipeline_for(&c);
    let got = accepted(pipe.receive(&forwarded.encode(), b.node_id(), NOW, &mut index));
    assert_eq!(got.forward, None);
    assert_eq!(got.route.unwrap().metric, 17);
    assert!(index.get(a.node_id()).is_some());
    let mut max = forwarded;
    max.hop_count = 255;
    let (mut pipe, mut index) = pipeline_for(&c);
    assert_eq!(
        accepted(pipe.receive(&max.encode(), b.node_id(), NOW, &mut index)).forward,
        None
    );
}

#[test]
fn diamond_dedup_and_wire_replay() {
    // A → B, A → C, B → D, C → D: D takes the first copy only.
    let (a, b, c, d) = (keypair(1), keypair(2), keypair(3), keypair(4));
    let original = signed(&a, 1, NOW, tags(&[]));
    let copy = original.forwarded().unwrap().encode();
    let (mut at_d, mut index_d) = pipeline_for(&d);
    accepted(at_d.receive(&copy, b.node_id(), NOW, &mut index_d));
    assert_eq!(
        dropped(at_d.receive(&copy, c.node_id(), NOW, &mut index_d)),
        DropReason::Duplicate
    );
    // The same bytes replayed later (within retention) are dropped too.
    assert_eq!(
        dropped(at_d.receive(&copy, b.node_id(), NOW + 100 * SECOND, &mut index_d)),
        DropReason::Duplicate
    );
}

#[test]
fn same_version_with_different_content_is_dropped() {
    let (a, b) = (keypair(1), keypair(2));
    let (mut pipe, mut index) = pipeline_for(&b);
    accepted(pipe.receive(
        &signed(&a, 7, NOW, tags(&["x"])).encode(),
        a.node_id(),
        NOW,
        &mut index,
    ));
    let other = signed(&a, 7, NOW, tags(&["y"]));
    assert_eq!(
        dropped(pipe.receive(&other.encode(), a.node_id(), NOW, &mut index)),
        DropReason::Duplicate
    );
    assert_eq!(
        index
            .get(a.node_id())
            .unwrap()
            .announcement
            .capabilities
            .tags,
        vec!["x".to_owned()]
    );
}

#[test]
fn stale_and_expired_announcements_are_neither_indexed_nor_forwarded() {
    // §7 item 18: v0.11 floods these before its index refuses them.
    let (a, b) = (keypair(1), keypair(2));
    let (mut pipe, mut index) = pipeline_for(&b);
    accepted(pipe.receive(
        &signed(&a, 5, NOW, tags(&[])).encode(),
        a.node_id(),
        NOW,
        &mut index,
    ));
    let older = signed(&a, 4, NOW, tags(&[]));
    assert_eq!(
        dropped(pipe.receive(&older.encode(), a.node_id(), NOW, &mut index)),
        DropReason::Rejected(IndexRejection::Stale {
            offered: 4,
            indexed: 5
        })
    );
    let expired = signed(&a, 6, NOW - 300 * SECOND, tags(&[]));
    assert_eq!(
        dropped(pipe.receive(&expired.encode(), a.node_id(), NOW, &mut index)),
        DropReason::Rejected(IndexRejection::Expired)
    );
    assert_eq!(index.version_of(a.node_id()), Some(5));
}

#[test]
fn ttl_expiry_removes_the_entry_at_the_gc_tick() {
    let (a, b) = (keypair(1), keypair(2));
    let mut plane_b =
        CapabilityPlane::new(b.clone(), CapabilityConfig::default(), VersionClock::new());
    let mut short = Announcement::new(*a.entity_id(), 1, NOW, 2, tags(&[]));
    short.sign(&a).unwrap();
    accepted(plane_b.on_frame(&short.encode(), a.node_id(), NOW));
    let subnets = NoSubnets {
        local_node_id: b.node_id(),
    };
    assert_eq!(
        plane_b
            .find_nodes(&NodeQuery::default(), NOW, &subnets)
            .nodes,
        vec![a.node_id()]
    );
    // Queries stop serving it at expiry; the GC removes it.
    assert!(
        plane_b
            .find_nodes(&NodeQuery::default(), NOW + 2 * SECOND, &subnets)
            .nodes
            .is_empty()
    );
    assert_eq!(plane_b.gc(NOW + 2 * SECOND), vec![a.node_id()]);
    assert!(plane_b.index().get(a.node_id()).is_none());
}

// ----------------------------------------------------- the plane (node glue)

fn plane(kp: &EntityKeypair) -> CapabilityPlane {
    CapabilityPlane::new(kp.clone(), CapabilityConfig::default(), VersionClock::new())
}

#[test]
fn announce_then_find_includes_self_and_late_joiners_get_a_push() {
    let (a, b) = (keypair(1), keypair(2));
    let t0 = Instant::now();
    let mut plane_a = plane(&a);
    let mut plane_b = plane(&b);
    assert_eq!(plane_a.on_peer_connected(b.node_id()), None);
    let bytes = plane_a.announce(tags(&["gpu"]), t0, NOW).unwrap().unwrap();
    let subnets_a = NoSubnets {
        local_node_id: a.node_id(),
    };
    let found = plane_a.find_nodes(&NodeQuery::default(), NOW, &subnets_a);
    assert_eq!(found.nodes, vec![a.node_id()]);
    accepted(plane_b.on_frame(&bytes, a.node_id(), NOW));
    // A late joiner gets the latest announcement on connect.
    let c = keypair(3);
    let mut plane_c = plane(&c);
    let push = plane_a.on_peer_connected(c.node_id()).unwrap();
    assert_eq!(push, bytes);
    accepted(plane_c.on_frame(&push, a.node_id(), NOW));
    let query = NodeQuery::from_json(r#"{"filter":{"require_tags":["gpu"]}}"#).unwrap();
    let subnets_c = NoSubnets {
        local_node_id: c.node_id(),
    };
    assert_eq!(
        plane_c.find_nodes(&query, NOW, &subnets_c).nodes,
        vec![a.node_id()]
    );
}

#[test]
fn a_burst_within_the_rate_limit_is_deferred_not_dropped() {
    // §8: "burst of 10 within the rate limit (peer sees only the first)" —
    // v0.11 drops the other nine for good; we send the last one once the
    // interval has passed (§7 item 16).
    let (a, b) = (keypair(1), keypair(2));
    let t0 = Instant::now();
    let mut plane_a = plane(&a);
    let mut plane_b = plane(&b);
    let mut sent = Vec::new();
    for i in 0..10u64 {
        let caps = tags(&[&format!("burst:{i}")]);
        if let Some(bytes) = plane_a
            .announce(caps, t0 + Duration::from_millis(i), NOW + i * 1_000_000)
            .unwrap()
        {
            sent.push(bytes);
        }
    }
    assert_eq!(sent.len(), 1, "only the first goes out at once");
    accepted(plane_b.on_frame(&sent[0], a.node_id(), NOW));
    let due_at = plane_a.next_due(t0).unwrap();
    assert_eq!(due_at, t0 + Duration::from_secs(10));
    assert_eq!(plane_a.due(due_at - Duration::from_millis(1)), None);
    let last = plane_a.due(due_at).unwrap();
    let got = accepted(plane_b.on_frame(&last, a.node_id(), NOW + SECOND));
    assert_eq!(
        got.announcement.capabilities.tags,
        vec!["burst:9".to_owned()]
    );
    assert_eq!(
        plane_b
            .index()
            .get(a.node_id())
            .unwrap()
            .announcement
            .capabilities
            .tags,
        vec!["burst:9".to_owned()]
    );
    assert_eq!(plane_a.next_due(due_at), None);
}

#[test]
fn a_restarted_node_is_heard_at_once() {
    // §7 item 15: v0.11 restarts its versions at 1 and is ignored for up
    // to ~11 minutes; time-based versions start above the old ones.
    let (a, b) = (keypair(1), keypair(2));
    let t0 = Instant::now();
    let mut plane_b = plane(&b);
    let mut before = plane(&a);
    for i in 0..5 {
        let bytes = before
            .announce(
                tags(&["old"]),
                t0 + Duration::from_secs(11 * i),
                NOW + i * SECOND,
            )
            .unwrap()
            .unwrap();
        accepted(plane_b.on_frame(&bytes, a.node_id(), NOW + i * SECOND));
    }
    let mut after = plane(&a); // a new process: no persisted state
    let bytes = after
        .announce(tags(&["new"]), t0, NOW + 30 * SECOND)
        .unwrap()
        .unwrap();
    let got = accepted(plane_b.on_frame(&bytes, a.node_id(), NOW + 30 * SECOND));
    assert!(matches!(got.indexed, Ok(IndexChange::Updated { .. })));
    // What v0.11 would have sent (version 1 again) is ignored.
    let counter_style = signed(&a, 1, NOW + 31 * SECOND, tags(&["v0.11"]));
    assert!(matches!(
        dropped(plane_b.on_frame(&counter_style.encode(), a.node_id(), NOW + 31 * SECOND)),
        DropReason::Rejected(IndexRejection::Stale { .. })
    ));
}

#[test]
fn failure_clears_the_entry_and_recovery_re_pushes_it() {
    // §8: "failure clears the capability index"; §7 item 17: v0.11 never
    // restores it.
    let (a, b) = (keypair(1), keypair(2));
    let t0 = Instant::now();
    let mut plane_a = plane(&a);
    let mut plane_b = plane(&b);
    let bytes_a = plane_a.announce(tags(&["a"]), t0, NOW).unwrap().unwrap();
    let bytes_b = plane_b.announce(tags(&["b"]), t0, NOW).unwrap().unwrap();
    accepted(plane_b.on_frame(&bytes_a, a.node_id(), NOW));
    accepted(plane_a.on_frame(&bytes_b, b.node_id(), NOW));
    plane_b.on_peer_failed(a.node_id());
    assert!(plane_b.index().get(a.node_id()).is_none());
    // The pin survives the failure.
    assert_eq!(
        plane_b.pipeline().pinned_entity(a.node_id()),
        Some(*a.entity_id())
    );
    // Both sides see the session recover and re-push.
    let repush_a = plane_a.on_peer_recovered(b.node_id()).unwrap();
    assert_eq!(repush_a, bytes_a);
    accepted(plane_b.on_frame(&repush_a, a.node_id(), NOW + 60 * SECOND));
    assert!(plane_b.index().get(a.node_id()).is_some());
    // A peer that did not notice the failure just dedups the re-push.
    let repush_b = plane_b.on_peer_recovered(a.node_id()).unwrap();
    assert_eq!(
        dropped(plane_a.on_frame(&repush_b, b.node_id(), NOW)),
        DropReason::Duplicate
    );
    // Eviction forgets the pin as well.
    plane_b.on_peer_evicted(a.node_id());
    assert_eq!(plane_b.pipeline().pinned_entity(a.node_id()), None);
    assert!(plane_b.index().get(a.node_id()).is_none());
}

#[test]
fn reflex_addr_is_announced_and_resets_the_limiter() {
    let a = keypair(1);
    let t0 = Instant::now();
    let mut plane_a = plane(&a);
    plane_a.announce(tags(&[]), t0, NOW).unwrap().unwrap();
    assert_eq!(plane_a.announce(tags(&[]), t0, NOW).unwrap(), None);
    plane_a.set_reflex_addr(Some("[2001:db8::1]:4070".parse().unwrap()));
    // The limiter was reset: the next announcement goes out at once and
    // supersedes the deferred one.
    let bytes = plane_a.announce(tags(&[]), t0, NOW).unwrap().unwrap();
    assert_eq!(plane_a.due(t0 + Duration::from_secs(60)), None);
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        text.contains(r#""reflex_addr":"[2001:db8::1]:4070""#),
        "{text}"
    );
    Announcement::decode(text.as_bytes())
        .unwrap()
        .verify()
        .unwrap();
}

// --------------------------------------------------------------- queries

struct TestSubnets {
    local: u64,
    peers: Vec<(u64, u32)>,
    policy: bool,
}

impl SubnetView for TestSubnets {
    fn local_node_id(&self) -> u64 {
        self.local
    }
    fn own_subnet(&self) -> u32 {
        0x0307_0200
    }
    fn peer_subnet(&self, node_id: u64) -> Option<u32> {
        self.peers
            .iter()
            .find(|(n, _)| *n == node_id)
            .map(|(_, s)| *s)
    }
    fn policy_installed(&self) -> bool {
        self.policy
    }
}

fn memory(mb: u32, scope_tags: &[&str]) -> CapabilitySet {
    let mut caps = tags(scope_tags);
    caps.hardware.memory_mb = mb;
    caps
}

#[test]
fn scoped_queries_tenant_region_subnet_local_and_same_subnet() {
    let me = keypair(10);
    let global = keypair(11);
    let acme_small = keypair(12);
    let acme_big = keypair(13);
    let eu = keypair(14);
    let local_b = keypair(15);
    let local_c = keypair(16);
    let mut plane_me = plane(&me);
    plane_me
        .announce(memory(1, &[]), Instant::now(), NOW)
        .unwrap();
    for (kp, caps) in [
        (&global, memory(8, &[])),
        (&acme_small, memory(16, &["scope:tenant:acme"])),
        (&acme_big, memory(64, &["scope:tenant:acme"])),
        (&eu, memory(128, &["scope:region:eu"])),
        (&local_b, memory(256, &["scope:subnet-local"])),
        (&local_c, memory(512, &["scope:subnet-local"])),
    ] {
        accepted(plane_me.on_frame(&signed(kp, 1, NOW, caps).encode(), kp.node_id(), NOW));
    }
    let sorted = |mut v: Vec<u64>| {
        v.sort_unstable();
        v
    };
    let find = |json: &str, subnets: &TestSubnets| {
        plane_me
            .find_nodes(&NodeQuery::from_json(json).unwrap(), NOW, subnets)
            .nodes
    };
    let no_policy = TestSubnets {
        local: me.node_id(),
        peers: vec![],
        policy: false,
    };
    // Tenant: global nodes and acme's.
    assert_eq!(
        find(r#"{"scope":{"tenants":["acme"]}}"#, &no_policy),
        sorted(vec![
            me.node_id(),
            global.node_id(),
            acme_small.node_id(),
            acme_big.node_id()
        ])
    );
    // Region.
    assert_eq!(
        find(r#"{"scope":{"regions":["eu"]}}"#, &no_policy),
        sorted(vec![me.node_id(), global.node_id(), eu.node_id()])
    );
    assert_eq!(
        find(r#"{"scope":"global_only"}"#, &no_policy),
        sorted(vec![me.node_id(), global.node_id()])
    );
    // Subnet-local nodes are hidden from Any without a policy…
    assert_eq!(find("{}", &no_policy).len(), 5);
    // …and SameSubnet without a policy is just us.
    assert_eq!(
        find(r#"{"scope":"same_subnet"}"#, &no_policy),
        vec![me.node_id()]
    );
    // With a policy: B in our subnet, C elsewhere.
    let policy = TestSubnets {
        local: me.node_id(),
        peers: vec![
            (local_b.node_id(), 0x0307_0200),
            (local_c.node_id(), 0x0308_0100),
        ],
        policy: true,
    };
    let any = find("{}", &policy);
    assert!(any.contains(&local_b.node_id()) && !any.contains(&local_c.node_id()));
    let same = find(r#"{"scope":"same_subnet"}"#, &policy);
    assert!(same.contains(&local_b.node_id()) && !same.contains(&local_c.node_id()));
    // Unknown peers count as same-subnet while a policy warms up.
    assert!(same.contains(&global.node_id()));
    // Best within a tenant: the biggest acme node, not the bigger eu one.
    let best = plane_me.find_best_node(
        &BestNodeQuery::from_json(r#"{"scope":{"tenants":["acme"]},"weights":{"memory":1}}"#)
            .unwrap(),
        NOW,
        &no_policy,
    );
    assert_eq!(best.node_id, Some(acme_big.node_id()));
    assert_eq!(best.score, 1.0 + 64.0 / 262_144.0);
    let json: Value = serde_json::from_str(&best.to_json()).unwrap();
    assert_eq!(json["node_id"].as_u64(), Some(acme_big.node_id()));
}

#[test]
fn a_custom_scorer_extends_the_ranking() {
    struct PreferTag;
    impl NodeScorer for PreferTag {
        fn score(&self, node: &IndexedNode) -> f64 {
            if node
                .announcement
                .capabilities
                .tags
                .iter()
                .any(|t| t == "fast")
            {
                2.0
            } else {
                1.0
            }
        }
    }
    let (me, x) = (keypair(1), keypair(2));
    let mut p = plane(&me);
    p.announce(memory(999_999, &[]), Instant::now(), NOW)
        .unwrap();
    accepted(p.on_frame(
        &signed(&x, 1, NOW, tags(&["fast"])).encode(),
        x.node_id(),
        NOW,
    ));
    let subnets = NoSubnets {
        local_node_id: me.node_id(),
    };
    let best = p.find_best_node_with(&BestNodeQuery::default(), &PreferTag, NOW, &subnets);
    assert_eq!(best.node_id, Some(x.node_id()));
}

// ---------------------------------------------------------- memory bounds

#[test]
fn a_flood_of_identities_cannot_grow_the_index_or_dedup_beyond_their_caps() {
    let me = keypair(0);
    let config = CapabilityConfig {
        index: IndexLimits {
            max_nodes: 50,
            ..IndexLimits::default()
        },
        pipeline: PipelineConfig {
            max_seen: 64,
            ..PipelineConfig::default()
        },
        ..CapabilityConfig::default()
    };
    let mut p = CapabilityPlane::new(me.clone(), config, VersionClock::new());
    p.announce(tags(&[]), Instant::now(), NOW).unwrap();
    for i in 0..300u32 {
        let mut seed = [0u8; 32];
        seed[..4].copy_from_slice(&i.to_le_bytes());
        seed[31] = 1;
        let kp = EntityKeypair::from_seed(&seed);
        let a = signed(&kp, 1, NOW + u64::from(i), tags(&[]));
        accepted(p.on_frame(&a.forwarded().unwrap().encode(), 77, NOW));
        assert!(p.index().len() <= 50);
        assert!(p.pipeline().seen_len() <= 64);
    }
    assert!(
        p.index().get(me.node_id()).is_some(),
        "the local node is never evicted"
    );
    assert_eq!(p.pipeline().pins_len(), 0);
}

// ------------------------------------------------------------- properties

fn any_caps() -> impl Strategy<Value = CapabilitySet> {
    (
        proptest::collection::vec("\\PC{0,12}", 0..4),
        any::<u32>(),
        proptest::option::of(any::<u32>()),
    )
        .prop_map(|(tags, memory_mb, vram)| {
            let mut caps = CapabilitySet {
                tags,
                ..CapabilitySet::default()
            };
            caps.hardware.memory_mb = memory_mb;
            caps.hardware.gpu = vram.map(|vram_mb| GpuInfo {
                vram_mb,
                ..GpuInfo::default()
            });
            caps
        })
}

proptest! {
    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Announcement::decode(&bytes);
        let kp = keypair(2);
        let (mut pipe, mut index) = pipeline_for(&kp);
        let _ = pipe.receive(&bytes, 1, NOW, &mut index);
    }

    #[test]
    fn mutated_announcements_never_panic_and_never_verify_when_signed_bytes_change(
        caps in any_caps(),
        position in any::<usize>(),
        byte in any::<u8>(),
    ) {
        let kp = keypair(1);
        let good = signed(&kp, 3, NOW, caps);
        let mut bytes = good.encode();
        let at = position % bytes.len();
        bytes[at] = byte;
        if let Ok(parsed) = Announcement::decode(&bytes) {
            // Whatever decodes re-encodes canonically and stably.
            let canonical = parsed.encode();
            let again = Announcement::decode(&canonical).unwrap();
            prop_assert_eq!(&again, &parsed);
            prop_assert_eq!(again.encode(), canonical);
            if parsed.signing_input() != good.signing_input() {
                prop_assert!(parsed.verify().is_err());
            }
        }
    }

    #[test]
    fn encode_decode_round_trip_and_signatures_hold(caps in any_caps(), version in any::<u64>(), ts in any::<u64>(), hops in 0u8..=15) {
        let kp = keypair(1);
        let mut a = signed(&kp, version, ts, caps);
        a.hop_count = hops;
        let bytes = a.encode();
        let back = Announcement::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &a);
        prop_assert_eq!(back.encode(), bytes);
        prop_assert!(back.verify().is_ok());
    }
}
