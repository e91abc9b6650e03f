//! Continuity and contested partitions (COMPUTE.md §5): the contested
//! scenarios of §9 as our own tests, chain status and followers, the
//! 0x0700/0x0800 messages, property tests that both sides of any split
//! agree on the winner and the fork identity whatever order they see
//! things in, and a model-based test of the partition record lifecycle.

mod continuity_common;

use std::collections::{BTreeMap, BTreeSet};

use continuity_common::{extend, genesis};
use net::compute::{CausalEvent, ObservedHorizon};
use net::continuity::wire::{
    HELLO_PIECE, MAX_HELLO_BYTES, MAX_SIDE_MEMBERS, hello_pieces, msg_type,
};
use net::continuity::{
    Agreement, Anchor, CausalCone, ChainFollower, ChainPoint, ChainStatus, ContinuityEngine,
    ContinuityMessage, ContinuityWireError, CorrelationDetector, DiscontinuityReason, EngineConfig,
    FailureCause, ForkRecord, HorizonDivergence, Influence, Observation, ObservationWindow, Output,
    PartitionConfig, PartitionEvent, PartitionPhase, PartitionTracker, PropagationModel,
    ReconcileError, Reconciliation, Side, Verdict, assess, crossing_depth, partition_key,
    reconcile,
};
use net::cortex::causal::{CausalChain, CausalError, CausalLink};
use net::mesh::channels::SubnetId;
use net::wire::subproto::ids;
use proptest::prelude::*;

// ---------------------------------------------------------------- helpers

fn owned(payloads: &[Vec<u8>]) -> Vec<&[u8]> {
    payloads.iter().map(Vec::as_slice).collect()
}

fn set(ids: &[u64]) -> BTreeSet<u64> {
    ids.iter().copied().collect()
}

fn mass(failed: &[u64]) -> Verdict {
    let mut detector = CorrelationDetector::default();
    for &peer in failed {
        detector.record_failure(peer, SubnetId::from_levels(&[2]), 0);
    }
    let distinct = failed.iter().collect::<BTreeSet<_>>().len();
    let verdict = detector.evaluate(distinct * 2, 0);
    assert!(matches!(verdict, Verdict::MassFailure { .. }));
    verdict
}

// ---------------------------------------------------------- chain status

#[test]
fn chain_status_continuous_from_genesis_and_from_a_snapshot() {
    let events = extend(&genesis(7), &[b"a", b"b", b"c"]);
    let ChainStatus::Continuous {
        first_hash,
        head_seq,
        head_hash,
    } = assess(&events, None)
    else {
        panic!("not continuous");
    };
    assert_eq!(head_seq, 3);
    assert_eq!(first_hash, events[0].link.chain_hash(b"a"));
    assert_eq!(head_hash, events[2].link.chain_hash(b"c"));

    let snapshot = Anchor::Snapshot {
        link: events[0].link,
        head_payload: Some(b"a"),
    };
    assert!(assess(&events[1..], Some(snapshot)).is_continuous());
    let empty_head = Anchor::Snapshot {
        link: events[2].link,
        head_payload: None,
    };
    assert_eq!(
        assess(&[], Some(empty_head)),
        ChainStatus::Continuous {
            first_hash: 0,
            head_seq: 3,
            head_hash: 0
        }
    );
}

#[test]
fn chain_status_without_an_anchor_is_unverifiable() {
    let events = extend(&genesis(7), &[b"a", b"b", b"c"]);
    assert_eq!(assess(&events[1..], None), ChainStatus::Unverifiable);
    let no_payload = Anchor::Snapshot {
        link: events[0].link,
        head_payload: None,
    };
    assert_eq!(
        assess(&events[1..], Some(no_payload)),
        ChainStatus::Unverifiable
    );
    let not_adjacent = Anchor::Snapshot {
        link: events[0].link,
        head_payload: Some(b"a"),
    };
    assert_eq!(
        assess(&events[2..], Some(not_adjacent)),
        ChainStatus::Unverifiable
    );
}

#[test]
fn chain_status_names_the_fork_gap_and_foreign_link() {
    let events = extend(&genesis(7), &[b"a", b"b", b"c"]);
    let mut forked = events.clone();
    forked[1].payload = b"B".to_vec();
    assert_eq!(
        assess(&forked, None),
        ChainStatus::Forked {
            seq: 3,
            expected: forked[1].link.chain_hash(b"B"),
            found: events[2].link.parent_hash
        }
    );
    let gap = vec![events[0].clone(), events[2].clone()];
    assert_eq!(
        assess(&gap, None),
        ChainStatus::Gap {
            last_verified: 1,
            found: 3
        }
    );
    let mut foreign = events.clone();
    foreign[2].link.origin_hash = 8;
    assert_eq!(
        assess(&foreign, None),
        ChainStatus::OriginMismatch {
            seq: 3,
            expected: 7,
            found: 8
        }
    );
    let mut bad_anchor = events.clone();
    bad_anchor[0].link.parent_hash ^= 1;
    assert!(matches!(
        assess(&bad_anchor, None),
        ChainStatus::Forked { seq: 1, .. }
    ));
}

#[test]
fn follower_checks_a_stream_as_it_arrives() {
    let events = extend(&genesis(7), &[b"a", b"b", b"c", b"d"]);
    let mut follower = ChainFollower::from_genesis(7);
    for event in &events[..3] {
        assert_eq!(
            follower.observe(&event.link, &event.payload, 1),
            Observation::Extended
        );
    }
    assert_eq!(
        follower.observe(&events[1].link, b"b", 2),
        Observation::Duplicate
    );
    assert_eq!(follower.head().sequence, 3);
    assert_eq!(
        follower.check_head(2, events[1].link.chain_hash(b"b")),
        Agreement::Consistent
    );
    assert_eq!(follower.check_head(99, 1), Agreement::Unknown);
    // Another writer's event 2: conflicting chains, the break is held.
    let Observation::Broke(broke) = follower.observe(&events[1].link, b"other", 5) else {
        panic!("expected a break");
    };
    assert!(matches!(
        broke.reason,
        DiscontinuityReason::ConflictingChains { seq: 2, .. }
    ));
    assert_eq!(broke.last_verified, events[2].link);
    assert_eq!(broke.detected_at_ms, 5);
    assert_eq!(
        follower.observe(&events[3].link, b"d", 6),
        Observation::Ignored
    );

    // A gap breaks the chain; a proof over a held log resyncs.
    let mut follower = ChainFollower::from_genesis(7);
    follower.observe(&events[0].link, b"a", 0);
    assert!(matches!(
        follower.observe(&events[2].link, b"c", 0),
        Observation::Broke(d) if d.reason == DiscontinuityReason::ChainBreak
    ));
    let mut log = CausalChain::new(7);
    for payload in [b"a", b"b", b"c"] {
        log.append(payload, 0);
    }
    let proof = log.prove(1, 3).unwrap();
    follower.resync(&proof, &log).unwrap();
    assert!(follower.broken().is_none());
    assert_eq!(
        follower.observe(&events[3].link, b"d", 0),
        Observation::Extended
    );
    assert_eq!(follower.check_proof(&proof), Agreement::Consistent);
    let mut forged = proof;
    forged.to_hash ^= 1;
    assert!(matches!(
        follower.check_proof(&forged),
        Agreement::Conflicts { seq: 3, .. }
    ));
    assert!(matches!(
        follower.resync(&forged, &log),
        Err(CausalError::HashMismatch { seq: 3, .. })
    ));
}

#[test]
fn cones_answer_definite_possible_and_no() {
    let own = CausalLink {
        origin_hash: 1,
        horizon_encoded: 0,
        sequence: 5,
        parent_hash: 0,
    };
    let bloom_only = CausalCone::from_link(&own);
    assert_eq!(bloom_only.could_have_influenced(1, 4), Influence::Definite);
    assert_eq!(bloom_only.could_have_influenced(1, 5), Influence::No);
    assert_eq!(bloom_only.could_have_influenced(2, 1), Influence::No);

    let mut observed = ObservedHorizon::new();
    observed.observe(2, 10);
    let exact = CausalCone::with_horizon(&own, &observed);
    assert_eq!(exact.could_have_influenced(2, 10), Influence::Definite);
    assert_eq!(exact.could_have_influenced(2, 11), Influence::No);
    assert_eq!(exact.could_have_influenced(3, 1), Influence::No);

    let mut with_bloom = own;
    with_bloom.horizon_encoded = observed.bloom().0;
    let bloom = CausalCone::from_link(&with_bloom);
    assert_eq!(bloom.could_have_influenced(2, 1_000), Influence::Possible);

    let other = CausalLink {
        origin_hash: 2,
        horizon_encoded: 0,
        sequence: 11,
        parent_hash: 0,
    };
    let other_cone = CausalCone::with_horizon(&other, &ObservedHorizon::new());
    assert_eq!(exact.concurrent_with(&other_cone), Influence::Definite);
    let earlier = CausalCone::with_horizon(
        &CausalLink {
            sequence: 10,
            ..other
        },
        &ObservedHorizon::new(),
    );
    assert_eq!(exact.concurrent_with(&earlier), Influence::No);
    // Merging with a bloom-only cone loses exactness.
    let mut merged = exact.clone();
    merged.merge(&bloom);
    assert_eq!(merged.could_have_influenced(2, 1_000), Influence::Possible);
}

// ----------------------------------------------- §9 contested: partitions

#[test]
fn partition_detect_ignore_confirm_heal_take_progress() {
    let mut tracker = PartitionTracker::new(PartitionConfig::default());
    assert_eq!(
        tracker.detect(&Verdict::Independent(vec![4]), &set(&[1, 2]), &[], 0),
        None
    );
    let event = tracker.detect(&mass(&[4, 5, 6, 7]), &set(&[1, 2, 3]), &[(9, 3)], 10);
    assert_eq!(event, Some(PartitionEvent::Detected(1)));
    let record = tracker.get(1).unwrap();
    assert_eq!(record.phase, PartitionPhase::Suspected);
    assert_eq!(record.other_side, set(&[4, 5, 6, 7]));
    assert_eq!(record.our_side, set(&[1, 2, 3]));
    assert_eq!(record.horizon_at_split, vec![(9, 3)]);
    assert!(matches!(record.cause, FailureCause::SubnetFailure { .. }));

    assert!(tracker.tick(1_000).is_empty());
    assert_eq!(tracker.tick(2_010), vec![PartitionEvent::Confirmed(1)]);
    assert!(!tracker.confirm(1, 2_011), "confirmed once");

    assert_eq!(
        tracker.on_node_recovery(4, 3_000),
        vec![PartitionEvent::Healing {
            id: 1,
            progress: 0.25
        }]
    );
    // The same peer returning twice counts once.
    assert!(tracker.on_node_recovery(4, 3_001).is_empty());
    assert!(tracker.on_node_recovery(99, 3_001).is_empty());
    assert_eq!(tracker.get(1).unwrap().healing_progress(), 0.25);
    assert_eq!(
        tracker.on_node_recovery(5, 3_002),
        vec![PartitionEvent::Healed(1)]
    );
    assert_eq!(tracker.get(1).unwrap().healed_at_ms, Some(3_002));
    let healed = tracker.take_healed();
    assert_eq!(healed.len(), 1);
    assert!(tracker.records().is_empty());
    assert!(tracker.take_healed().is_empty());
}

#[test]
fn partition_manual_confirm_and_overlapping_failures_extend_one_record() {
    let mut tracker = PartitionTracker::new(PartitionConfig::default());
    tracker.detect(&mass(&[4, 5]), &set(&[1, 2, 3, 6]), &[], 0);
    assert!(tracker.confirm(1, 1));
    assert!(!tracker.confirm(2, 1));
    // The same split judged again with one more peer: no duplicate.
    assert_eq!(
        tracker.detect(&mass(&[4, 5, 6]), &set(&[1, 2, 3]), &[], 5),
        Some(PartitionEvent::Extended(1))
    );
    assert_eq!(tracker.records().len(), 1);
    assert_eq!(tracker.get(1).unwrap().other_side, set(&[4, 5, 6]));
    assert!(!tracker.get(1).unwrap().our_side.contains(&6));
    // Judged again with nothing new: silent.
    assert_eq!(tracker.detect(&mass(&[4, 5]), &set(&[1]), &[], 6), None);
    // A disjoint mass failure is a second record.
    assert_eq!(
        tracker.detect(&mass(&[8, 9]), &set(&[1]), &[], 7),
        Some(PartitionEvent::Detected(2))
    );
    // A returned peer failing again no longer counts toward healing.
    tracker.on_node_recovery(4, 8);
    assert_eq!(tracker.get(1).unwrap().phase, PartitionPhase::Healing);
    tracker.on_node_failure(4);
    assert_eq!(tracker.get(1).unwrap().phase, PartitionPhase::Confirmed);
    assert!(tracker.get(1).unwrap().returned.is_empty());
}

// ----------------------------------------------- §9 contested: reconcile

#[test]
fn reconcile_converged_and_catch_up_both_ways() {
    let split = genesis(3);
    let common = extend(&split, &[b"a", b"b"]);
    assert_eq!(
        reconcile(&split, &common, &common),
        Ok(Reconciliation::AlreadyConverged)
    );
    assert_eq!(
        reconcile(&split, &[], &[]),
        Ok(Reconciliation::AlreadyConverged)
    );
    assert_eq!(
        reconcile(&split, &common[..1], &common),
        Ok(Reconciliation::Catchup {
            behind: Side::Ours,
            events: common[1..].to_vec()
        })
    );
    assert_eq!(
        reconcile(&split, &common, &[]),
        Ok(Reconciliation::Catchup {
            behind: Side::Theirs,
            events: common.clone()
        })
    );
}

#[test]
fn reconcile_longest_wins_and_the_loser_becomes_the_same_fork_on_both_sides() {
    let split = extend(&genesis(3), &[b"s"]).remove(0);
    let long = extend(&split, &[b"x", b"y", b"z"]);
    let short = extend(&split, &[b"p", b"q"]);
    let Ok(Reconciliation::Diverged(mine)) = reconcile(&split, &short, &long) else {
        panic!("expected a divergence");
    };
    let Ok(Reconciliation::Diverged(theirs)) = reconcile(&split, &long, &short) else {
        panic!("expected a divergence");
    };
    assert_eq!(mine.winner, Side::Theirs);
    assert_eq!(theirs.winner, Side::Ours);
    assert_eq!(mine.fork, theirs.fork);
    assert_eq!(mine.fork_events, theirs.fork_events);
    assert_eq!(mine.winning, long);
    assert_eq!(mine.losing, short);
    assert_eq!(mine.common_seq, 1);
    let fork = mine.fork;
    assert_eq!(fork.original_origin, 3);
    assert_eq!(fork.fork_seq, 1);
    fork.verify().unwrap();
    assert_eq!(ForkRecord::from_bytes(&fork.to_bytes()), Ok(fork));
    // The fork's events chain from its genesis and keep the payloads.
    let fork_genesis = CausalEvent {
        link: fork.genesis,
        payload: Vec::new(),
        received_at: 0,
    };
    assert!(
        assess(
            &mine.fork_events,
            Some(Anchor::Snapshot {
                link: fork_genesis.link,
                head_payload: Some(&[]),
            })
        )
        .is_continuous()
    );
    assert_eq!(mine.fork_events[0].link.sequence, 1);
    assert_eq!(mine.fork_events[1].payload, b"q");
}

#[test]
fn reconcile_tie_break_is_perspective_independent_and_shared_prefixes_move_the_point() {
    let split = genesis(3);
    let shared = extend(&split, &[b"c"]);
    let a: Vec<CausalEvent> = [shared.clone(), extend(&shared[0], &[b"a1", b"a2"])].concat();
    let b: Vec<CausalEvent> = [shared.clone(), extend(&shared[0], &[b"b1", b"b2"])].concat();
    let Ok(Reconciliation::Diverged(ab)) = reconcile(&split, &a, &b) else {
        panic!("expected a divergence");
    };
    let Ok(Reconciliation::Diverged(ba)) = reconcile(&split, &b, &a) else {
        panic!("expected a divergence");
    };
    assert_eq!(ab.winner, ba.winner.flip());
    assert_eq!(ab.winning, ba.winning);
    assert_eq!(ab.fork, ba.fork);
    assert_eq!(ab.common_seq, 1);
    assert_eq!(ab.fork.fork_seq, 1);
    // Lower head hash wins the tie.
    let head = |v: &[CausalEvent]| {
        v.last()
            .unwrap()
            .link
            .chain_hash(&v.last().unwrap().payload)
    };
    let a_wins = head(&a) < head(&b);
    assert_eq!(ab.winner == Side::Ours, a_wins);
}

#[test]
fn reconcile_validates_both_branches_against_the_split() {
    let split = extend(&genesis(3), &[b"s"]).remove(0);
    let ours = extend(&split, &[b"o"]);
    // Broken: an altered parent inside their branch.
    let mut broken = extend(&split, &[b"t1", b"t2"]);
    broken[1].link.parent_hash ^= 1;
    assert!(matches!(
        reconcile(&split, &ours, &broken),
        Err(ReconcileError::BadBranch {
            side: Side::Theirs,
            source: CausalError::ParentHashMismatch { seq: 3, .. }
        })
    ));
    // Wrong start: their branch begins past the split.
    let skipping = extend(&split, &[b"t1", b"t2"]);
    assert!(matches!(
        reconcile(&split, &ours, &skipping[1..]),
        Err(ReconcileError::BadBranch {
            side: Side::Theirs,
            source: CausalError::SequenceGap {
                expected: 2,
                got: 3
            }
        })
    ));
    // Forged origin.
    let mut forged = extend(&split, &[b"t1"]);
    forged[0].link.origin_hash = 4;
    assert!(matches!(
        reconcile(&split, &ours, &forged),
        Err(ReconcileError::BadBranch {
            source: CausalError::OriginMismatch { .. },
            ..
        })
    ));
    // Not anchored to our split event (v0.11 accepts this one).
    let other_split = extend(&genesis(3), &[b"other"]).remove(0);
    let unanchored = extend(&other_split, &[b"t1"]);
    assert!(matches!(
        reconcile(&split, &ours, &unanchored),
        Err(ReconcileError::BadBranch {
            source: CausalError::ParentHashMismatch { seq: 2, .. },
            ..
        })
    ));
    // Ours is checked too.
    assert!(matches!(
        reconcile(&split, &unanchored, &ours),
        Err(ReconcileError::BadBranch {
            side: Side::Ours,
            ..
        })
    ));
    // Empty theirs is a catch-up, not an error.
    assert!(matches!(
        reconcile(&split, &ours, &[]),
        Ok(Reconciliation::Catchup {
            behind: Side::Theirs,
            ..
        })
    ));
}

#[test]
fn fork_record_layout_is_v011s() {
    let fork = ForkRecord::new(0x0102, 0x0304, 7, Some(9));
    let bytes = fork.to_bytes();
    assert_eq!(bytes.len(), 65);
    assert_eq!(bytes[0..8], 0x0102u64.to_le_bytes());
    assert_eq!(bytes[8..16], 0x0304u64.to_le_bytes());
    assert_eq!(bytes[16..24], 7u64.to_le_bytes());
    assert_eq!(bytes[24..56], fork.genesis.to_bytes());
    assert_eq!((bytes[56], &bytes[57..65]), (1, &9u64.to_le_bytes()[..]));
    let mut sentinel_input = Vec::new();
    sentinel_input.extend_from_slice(&0x0102u64.to_le_bytes());
    sentinel_input.extend_from_slice(&7u64.to_le_bytes());
    sentinel_input.extend_from_slice(b"fork");
    assert_eq!(
        fork.genesis,
        CausalLink {
            origin_hash: 0x0304,
            horizon_encoded: 0,
            sequence: 0,
            parent_hash: xxhash_rust::xxh3::xxh3_64(&sentinel_input),
        }
    );
    // v0.11 writes any non-zero flag for "present"; an absent seq may be
    // anything.
    let mut loose = ForkRecord::new(1, 2, 3, None).to_bytes();
    loose[57] = 5;
    assert_eq!(ForkRecord::from_bytes(&loose).unwrap().snapshot_seq, None);
    loose[56] = 0xff;
    assert_eq!(
        ForkRecord::from_bytes(&loose).unwrap().snapshot_seq,
        Some(5)
    );
}

#[test]
fn fork_records_refuse_bad_bytes() {
    let fork = ForkRecord::new(1, 2, 3, Some(4));
    assert_eq!(ForkRecord::from_bytes(&fork.to_bytes()), Ok(fork));
    assert!(ForkRecord::from_bytes(&fork.to_bytes()[..64]).is_err());
    let mut bytes = fork.to_bytes();
    bytes[24 + 24] ^= 1; // the sentinel
    assert!(ForkRecord::from_bytes(&bytes).is_err());
    assert!(ForkRecord::new(5, 5, 0, None).verify().is_err());
}

// ------------------------------------------------------------------ wire

fn every_message() -> Vec<ContinuityMessage> {
    let split = extend(&genesis(9), &[b"s"]).remove(0);
    let mut chain = CausalChain::new(9);
    chain.append(b"s", 0);
    chain.append(b"t", 0);
    vec![
        ContinuityMessage::ChainHead(ChainPoint {
            origin: 9,
            seq: 4,
            hash: 5,
        }),
        ContinuityMessage::ProofRequest {
            origin: 9,
            from_seq: 1,
            to_seq: 2,
        },
        ContinuityMessage::ForkAnnounce {
            partition_key: 77,
            record: ForkRecord::new(9, 10, 1, None),
        },
        ContinuityMessage::Proof(chain.prove(1, 2).unwrap()),
        ContinuityMessage::HealHello {
            our_side: vec![1, 2],
            other_side: vec![3],
            heads: vec![
                ChainPoint {
                    origin: 9,
                    seq: 1,
                    hash: 2,
                },
                ChainPoint {
                    origin: 11,
                    seq: 0,
                    hash: 0,
                },
            ],
        },
        ContinuityMessage::HealHelloPart {
            hello_id: 0xABCD,
            total: (HELLO_PIECE * 2 + 5) as u32,
            offset: (HELLO_PIECE * 2) as u32,
            bytes: vec![7; 5],
        },
        ContinuityMessage::BranchRequest {
            origin: 9,
            after_seq: 1,
        },
        ContinuityMessage::Branch {
            origin: 9,
            after_seq: 1,
            events: [vec![split.clone()], extend(&split, &[b"x", b""])].concat(),
        },
        ContinuityMessage::Branch {
            origin: 9,
            after_seq: 1,
            events: Vec::new(),
        },
    ]
}

#[test]
fn every_message_round_trips_on_its_subprotocol() {
    for message in every_message() {
        let bytes = message.encode().unwrap();
        assert_eq!(bytes[0], 1);
        assert_eq!(
            ContinuityMessage::decode(message.subprotocol(), &bytes),
            Ok(message.clone())
        );
        // Every strict prefix is refused, never a panic.
        for cut in 0..bytes.len() {
            assert!(ContinuityMessage::decode(message.subprotocol(), &bytes[..cut]).is_err());
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        let decoded = ContinuityMessage::decode(message.subprotocol(), &trailing);
        if let ContinuityMessage::HealHelloPart { .. } = message {
            // A part runs to the end: one byte more is off its grid.
            assert!(matches!(
                decoded,
                Err(ContinuityWireError::BadHelloPart { .. })
            ));
        } else {
            assert_eq!(decoded, Err(ContinuityWireError::TrailingBytes(1)));
        }
    }
    let subprotocols: BTreeSet<u16> = every_message().iter().map(|m| m.subprotocol()).collect();
    assert_eq!(
        subprotocols,
        set(&[0x0700, 0x0701, 0x0702, 0x0800, 0x0801])
            .into_iter()
            .map(|id| id as u16)
            .collect()
    );
}

#[test]
fn a_long_heal_hello_travels_in_parts_on_a_grid() {
    let members = |from: u64, n: u64| (from..from + n).collect::<Vec<u64>>();
    let hello = ContinuityMessage::HealHello {
        our_side: members(1, 1_000),
        other_side: members(5_000, 1_000),
        heads: Vec::new(),
    }
    .encode()
    .unwrap();
    assert!(hello.len() > HELLO_PIECE * 2);
    let pieces = hello_pieces(hello.clone());
    assert_eq!(pieces.len(), hello.len().div_ceil(HELLO_PIECE));
    let mut joined = Vec::new();
    for piece in &pieces {
        let Ok(ContinuityMessage::HealHelloPart {
            total,
            offset,
            bytes,
            ..
        }) = ContinuityMessage::decode(ids::PARTITION, piece)
        else {
            panic!("a part");
        };
        assert_eq!(
            (total as usize, offset as usize),
            (hello.len(), joined.len())
        );
        joined.extend(bytes);
    }
    assert_eq!(joined, hello);
    // A short hello goes whole.
    let short = vec![1, msg_type::HEAL_HELLO, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(hello_pieces(short.clone()), vec![short]);
    // Parts off the grid are refused by encoder and decoder alike.
    let total = (HELLO_PIECE * 2) as u32;
    for (total, offset, len) in [
        (total, 1, HELLO_PIECE),                        // off the grid
        (total, HELLO_PIECE as u32, HELLO_PIECE - 1),   // short piece
        (total, total, 0),                              // past the end
        (HELLO_PIECE as u32, 0, HELLO_PIECE),           // fits one packet
        ((MAX_HELLO_BYTES + 1) as u32, 0, HELLO_PIECE), // too long a hello
    ] {
        let part = ContinuityMessage::HealHelloPart {
            hello_id: 1,
            total,
            offset,
            bytes: vec![0; len],
        };
        let refused = ContinuityWireError::BadHelloPart { total, offset, len };
        assert_eq!(part.encode(), Err(refused.clone()));
        let mut bytes = vec![1, msg_type::HEAL_HELLO_PART];
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.extend_from_slice(&total.to_le_bytes());
        bytes.extend_from_slice(&offset.to_le_bytes());
        bytes.extend(vec![0; len]);
        assert_eq!(
            ContinuityMessage::decode(ids::PARTITION, &bytes),
            Err(refused)
        );
    }
}

#[test]
fn a_split_only_one_side_saw_is_adopted_and_reconciled_alike() {
    // B never detects the split (say only A's packets to B were lost);
    // after the heal A's HealHello tells B, which records it as healed,
    // greets A back and follows A's split point for the branches.
    let split = run_split_seen(
        &[1, 2, 3],
        &[4, 5],
        &[0, 1],
        &[],
        &[b"a1".to_vec(), b"a2".to_vec(), b"a3".to_vec()],
        &[b"b1".to_vec()],
        false,
    );
    assert!(split.key_a.is_some(), "A never heard B's HealHello");
    assert_eq!(split.key_a, split.key_b);
    let (a_winner, a_fork) = fork_of(&split.a_view).unwrap();
    let (b_winner, b_fork) = fork_of(&split.b_view).unwrap();
    assert_eq!((a_winner, b_winner), (Side::Ours, Side::Theirs));
    assert_eq!(a_fork, b_fork);
    // Without A's view there is nothing to adopt: a HealHello that does
    // not name this node on its other side changes nothing.
    let mut c = ContinuityEngine::new(7, EngineConfig::default());
    let hello = ContinuityMessage::HealHello {
        our_side: vec![1, 2],
        other_side: vec![8, 9],
        heads: Vec::new(),
    }
    .encode()
    .unwrap();
    assert_eq!(c.on_message(1, ids::PARTITION, &hello), Ok(Vec::new()));
    assert!(c.partitions().records().is_empty());
}

#[test]
fn a_heal_hello_in_parts_is_taken_whole_and_a_tampered_one_is_refused() {
    // Two sides of 1 200 members: each HealHello is about 19 KB, four parts.
    let a_side: Vec<u64> = (1..=1_200).collect();
    let b_side: Vec<u64> = (10_001..=11_200).collect();
    let order = |n: usize| (0..n).collect::<Vec<usize>>();
    let split = run_split(
        &a_side,
        &b_side,
        &order(b_side.len()),
        &order(a_side.len()),
        &[b"a1".to_vec()],
        &[b"b1".to_vec(), b"b2".to_vec()],
    );
    assert!(split.key_a.is_some(), "the parted hello was never taken");
    assert_eq!(split.key_a, split.key_b);
    let (a_winner, a_fork) = fork_of(&split.a_view).unwrap();
    let (b_winner, b_fork) = fork_of(&split.b_view).unwrap();
    assert_eq!((a_winner, b_winner), (Side::Theirs, Side::Ours));
    assert_eq!(a_fork, b_fork);

    // A part altered on the way: the whole does not match its id.
    let mut engine = ContinuityEngine::new(1, EngineConfig::default());
    let hello = ContinuityMessage::HealHello {
        our_side: (100..1_100).collect(),
        other_side: vec![1],
        heads: Vec::new(),
    }
    .encode()
    .unwrap();
    let mut pieces = hello_pieces(hello);
    let last = pieces.len() - 1;
    *pieces[0].last_mut().unwrap() ^= 1;
    for piece in &pieces[..last] {
        assert_eq!(
            engine.on_message(100, ids::PARTITION, piece),
            Ok(Vec::new())
        );
    }
    assert!(matches!(
        engine.on_message(100, ids::PARTITION, &pieces[last]),
        Err(ContinuityWireError::BadHelloPart { .. })
    ));
}

#[test]
fn decoders_name_what_is_wrong() {
    assert_eq!(
        ContinuityMessage::decode(ids::PARTITION, &[]),
        Err(ContinuityWireError::Empty)
    );
    assert_eq!(
        ContinuityMessage::decode(ids::PARTITION, &[2, 1]),
        Err(ContinuityWireError::UnsupportedVersion(2))
    );
    assert_eq!(
        ContinuityMessage::decode(ids::PARTITION, &[1, 9]),
        Err(ContinuityWireError::UnknownType {
            subprotocol: 0x0800,
            kind: 9
        })
    );
    assert_eq!(
        ContinuityMessage::decode(ids::MIGRATION, &[1, 1]),
        Err(ContinuityWireError::UnknownSubprotocol(0x0500))
    );
    // A count the bytes cannot hold is refused before allocating.
    let mut huge = vec![1, msg_type::HEAL_HELLO];
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        ContinuityMessage::decode(ids::PARTITION, &huge),
        Err(ContinuityWireError::TooMany {
            what: "our_side",
            ..
        })
    ));
    // Unsorted sides are refused both ways.
    let unsorted = ContinuityMessage::HealHello {
        our_side: vec![2, 1],
        other_side: vec![],
        heads: vec![],
    };
    assert_eq!(
        unsorted.encode(),
        Err(ContinuityWireError::Unsorted("our_side"))
    );
    let mut bytes = ContinuityMessage::HealHello {
        our_side: vec![1, 2],
        other_side: vec![],
        heads: vec![],
    }
    .encode()
    .unwrap();
    bytes[6..14].copy_from_slice(&3u64.to_le_bytes());
    assert_eq!(
        ContinuityMessage::decode(ids::PARTITION, &bytes),
        Err(ContinuityWireError::Unsorted("our_side"))
    );
    let too_many = ContinuityMessage::HealHello {
        our_side: (0..=MAX_SIDE_MEMBERS as u64).collect(),
        other_side: vec![],
        heads: vec![],
    };
    assert!(matches!(
        too_many.encode(),
        Err(ContinuityWireError::TooMany { .. })
    ));
    // A branch whose frames are of another origin or out of sequence.
    let split = genesis(9);
    let events = extend(&split, &[b"a", b"b"]);
    let bad_origin = ContinuityMessage::Branch {
        origin: 8,
        after_seq: 1,
        events: events.clone(),
    };
    assert!(matches!(
        bad_origin.encode(),
        Err(ContinuityWireError::BadFrame(
            CausalError::OriginMismatch { .. }
        ))
    ));
    let good = ContinuityMessage::Branch {
        origin: 9,
        after_seq: 1,
        events: events.clone(),
    }
    .encode()
    .unwrap();
    let mut gap = good.clone();
    // Second frame's sequence (after version, type, origin, after_seq,
    // count, first frame, second frame's length prefix and two words).
    let second = 2 + 16 + 4 + (4 + 32 + 1) + 4 + 16;
    gap[second..second + 8].copy_from_slice(&5u64.to_le_bytes());
    assert!(matches!(
        ContinuityMessage::decode(ids::RECONCILE, &gap),
        Err(ContinuityWireError::BadFrame(
            CausalError::SequenceGap { .. }
        ))
    ));
    // A fork record whose lineage does not verify.
    let mut announce = ContinuityMessage::ForkAnnounce {
        partition_key: 1,
        record: ForkRecord::new(1, 2, 3, None),
    }
    .encode()
    .unwrap();
    announce[10] ^= 1; // original origin
    assert!(matches!(
        ContinuityMessage::decode(ids::FORK_ANNOUNCE, &announce),
        Err(ContinuityWireError::BadForkRecord(_))
    ));
}

// ------------------------------------------------------- the two engines

/// Drives two engines through a clean split of `a_side` / `b_side` (each
/// sees the other side's peers fail in `order`), a heal, and the heal
/// exchange; returns each engine's agreed key and each side's
/// reconciliation of chain 9.
struct Split {
    key_a: Option<u64>,
    key_b: Option<u64>,
    a_view: Reconciliation,
    b_view: Reconciliation,
}

fn run_split(
    a_side: &[u64],
    b_side: &[u64],
    a_order: &[usize],
    b_order: &[usize],
    a_branch: &[Vec<u8>],
    b_branch: &[Vec<u8>],
) -> Split {
    run_split_seen(a_side, b_side, a_order, b_order, a_branch, b_branch, true)
}

/// [`run_split`] where B may never notice the split (`b_detects` false):
/// only A holds a record, and B learns of the split from A's HealHello.
fn run_split_seen(
    a_side: &[u64],
    b_side: &[u64],
    a_order: &[usize],
    b_order: &[usize],
    a_branch: &[Vec<u8>],
    b_branch: &[Vec<u8>],
    b_detects: bool,
) -> Split {
    let split_event = extend(&genesis(9), &[b"before"]).remove(0);
    let a_events = extend(&split_event, &owned(a_branch));
    let b_events = extend(&split_event, &owned(b_branch));
    let head_of = |events: &[CausalEvent]| {
        let last = events.last().unwrap_or(&split_event);
        ChainPoint {
            origin: 9,
            seq: last.link.sequence,
            hash: last.link.chain_hash(&last.payload),
        }
    };
    let subnet_a = SubnetId::from_levels(&[1]);
    let subnet_b = SubnetId::from_levels(&[2]);
    let (a_id, b_id) = (a_side[0], b_side[0]);
    let mut a = ContinuityEngine::new(a_id, EngineConfig::default());
    let mut b = ContinuityEngine::new(b_id, EngineConfig::default());
    for &peer in a_side.iter().chain(b_side) {
        let subnet = if a_side.contains(&peer) {
            subnet_a
        } else {
            subnet_b
        };
        if peer != a_id {
            a.peer_up(peer, subnet);
        }
        if peer != b_id {
            b.peer_up(peer, subnet);
        }
    }
    let horizon = [(9u64, 1u64)];
    for (engine, others, order) in [(&mut a, b_side, a_order), (&mut b, a_side, b_order)] {
        if engine.partitions().records().is_empty() && !b_detects && std::ptr::eq(others, a_side) {
            continue; // B never sees the split
        }
        let mut detected = false;
        for (step, &index) in order.iter().enumerate() {
            let outputs = engine.on_peer_failed(others[index], 100 + step as u64, &horizon);
            detected |= outputs
                .iter()
                .any(|o| matches!(o, Output::Partition(PartitionEvent::Detected(_))));
        }
        assert!(detected, "the split was never detected");
        assert!(engine.tick(100 + 2_000 + order.len() as u64).len() == 1);
    }
    a.set_head(head_of(&a_events));
    b.set_head(head_of(&b_events));

    // Heal: every peer returns; collect what each side sends.
    let mut wire: Vec<(u64, u64, u16, Vec<u8>)> = Vec::new();
    for (engine, me, others) in [(&mut a, a_id, b_side), (&mut b, b_id, a_side)] {
        for &peer in others {
            for output in engine.on_peer_returned(peer, 5_000) {
                if let Output::Send {
                    to,
                    subprotocol,
                    bytes,
                } = output
                {
                    wire.push((me, to, subprotocol, bytes));
                }
            }
        }
    }
    let mut a_branch_from_b = None;
    let mut b_branch_from_a = None;
    let mut rounds = 0;
    while let Some((from, to, subprotocol, bytes)) = wire.pop() {
        rounds += 1;
        // Each side greets every returned peer (a long greeting in parts).
        let bound = 1_000 + 8 * (a_side.len() + b_side.len());
        assert!(rounds < bound, "the heal exchange does not settle");
        let (engine, events) = if to == a_id {
            (&mut a, &a_events)
        } else if to == b_id {
            (&mut b, &b_events)
        } else {
            continue; // another node of a side: not simulated
        };
        for output in engine.on_message(from, subprotocol, &bytes).unwrap() {
            match output {
                Output::Send {
                    to: dest,
                    subprotocol,
                    bytes,
                } => wire.push((to, dest, subprotocol, bytes)),
                Output::BranchRequested {
                    peer,
                    origin,
                    after_seq,
                } => {
                    assert_eq!((origin, after_seq), (9, 1));
                    let reply = [vec![split_event.clone()], events.clone()].concat();
                    let Output::Send {
                        to: dest,
                        subprotocol,
                        bytes,
                    } = engine.branch(peer, origin, after_seq, reply).unwrap()
                    else {
                        panic!("branch is a send");
                    };
                    wire.push((to, dest, subprotocol, bytes));
                }
                Output::BranchReceived { events, .. } => {
                    let slot = if to == a_id {
                        &mut a_branch_from_b
                    } else {
                        &mut b_branch_from_a
                    };
                    *slot = Some(events);
                }
                _ => {}
            }
        }
    }
    let view = |mine: &[CausalEvent], theirs: Option<Vec<CausalEvent>>| {
        let theirs = theirs.unwrap_or_else(|| [vec![split_event.clone()], mine.to_vec()].concat());
        assert_eq!(theirs[0], split_event, "a branch starts at the split");
        reconcile(&split_event, mine, &theirs[1..]).unwrap()
    };
    Split {
        key_a: a.agreed_key(1),
        key_b: b.agreed_key(1),
        a_view: view(&a_events, a_branch_from_b),
        b_view: view(&b_events, b_branch_from_a),
    }
}

fn fork_of(view: &Reconciliation) -> Option<(Side, ForkRecord)> {
    match view {
        Reconciliation::Diverged(d) => Some((d.winner, d.fork)),
        _ => None,
    }
}

#[test]
fn two_engines_detect_heal_and_agree_on_the_key_winner_and_fork() {
    let split = run_split(
        &[1, 2, 3],
        &[4, 5],
        &[0, 1],
        &[2, 0, 1],
        &[b"a1".to_vec()],
        &[b"b1".to_vec(), b"b2".to_vec()],
    );
    assert!(split.key_a.is_some());
    assert_eq!(split.key_a, split.key_b);
    let (a_winner, a_fork) = fork_of(&split.a_view).unwrap();
    let (b_winner, b_fork) = fork_of(&split.b_view).unwrap();
    assert_eq!(a_winner, Side::Theirs, "the longer branch (B's) wins");
    assert_eq!(b_winner, Side::Ours);
    assert_eq!(a_fork, b_fork);
}

/// One writer's chain: its side had seen further than the other before
/// the split and kept writing; the other side wrote nothing. Each side
/// asks for the other's branch from a point it holds, and both agree the
/// reader catches up.
#[test]
fn engines_catch_up_a_side_that_was_behind_at_the_split() {
    let log = extend(&genesis(9), &[b"1", b"2", b"3", b"4", b"5"]);
    let point = |e: &CausalEvent| ChainPoint {
        origin: 9,
        seq: e.link.sequence,
        hash: e.link.chain_hash(&e.payload),
    };
    let writer_log = log.clone(); // 1..=5; had 1..=3 at the split
    let reader_log = log[..2].to_vec(); // 1..=2
    let mut writer = ContinuityEngine::new(1, EngineConfig::default());
    let mut reader = ContinuityEngine::new(2, EngineConfig::default());
    writer.peer_up(2, None);
    reader.peer_up(1, None);
    assert!(!writer.on_peer_failed(2, 0, &[(9, 3)]).is_empty());
    assert!(!reader.on_peer_failed(1, 0, &[(9, 2)]).is_empty());
    writer.set_head(point(&writer_log[4]));
    reader.set_head(point(&reader_log[1]));
    let mut wire = Vec::new();
    for (engine, me, peer) in [(&mut writer, 1u64, 2u64), (&mut reader, 2, 1)] {
        for output in engine.on_peer_returned(peer, 10) {
            if let Output::Send {
                to,
                subprotocol,
                bytes,
            } = output
            {
                wire.push((me, to, subprotocol, bytes));
            }
        }
    }
    let mut received: BTreeMap<u64, Vec<CausalEvent>> = BTreeMap::new();
    while let Some((from, to, subprotocol, bytes)) = wire.pop() {
        let (engine, own) = if to == 1 {
            (&mut writer, &writer_log)
        } else {
            (&mut reader, &reader_log)
        };
        for output in engine.on_message(from, subprotocol, &bytes).unwrap() {
            match output {
                Output::Send {
                    to: dest,
                    subprotocol,
                    bytes,
                } => wire.push((to, dest, subprotocol, bytes)),
                Output::BranchRequested {
                    peer,
                    origin,
                    after_seq,
                } => {
                    assert_eq!(after_seq, 2, "no further than the reader's head");
                    let from_split = own[after_seq as usize - 1..].to_vec();
                    if let Output::Send {
                        to: dest,
                        subprotocol,
                        bytes,
                    } = engine.branch(peer, origin, after_seq, from_split).unwrap()
                    {
                        wire.push((to, dest, subprotocol, bytes));
                    }
                }
                Output::BranchReceived { events, .. } => {
                    received.insert(to, events);
                }
                _ => {}
            }
        }
    }
    let for_writer = &received[&1];
    let for_reader = &received[&2];
    // Each branch starts with the split event, which each side holds.
    assert_eq!(for_writer[0], writer_log[1]);
    assert_eq!(for_reader[0], reader_log[1]);
    assert_eq!(
        reconcile(&writer_log[1], &writer_log[2..], &for_writer[1..]),
        Ok(Reconciliation::Catchup {
            behind: Side::Theirs,
            events: writer_log[2..].to_vec()
        })
    );
    assert_eq!(
        reconcile(&reader_log[1], &reader_log[2..], &for_reader[1..]),
        Ok(Reconciliation::Catchup {
            behind: Side::Ours,
            events: writer_log[2..].to_vec()
        })
    );
    assert_eq!(writer.agreed_key(1), reader.agreed_key(1));
    assert!(writer.agreed_key(1).is_some());
}

#[test]
fn engine_ignores_bad_bytes_and_strangers() {
    let mut engine = ContinuityEngine::new(1, EngineConfig::default());
    assert!(engine.on_message(2, ids::PARTITION, &[1, 1, 0]).is_err());
    let hello = ContinuityMessage::HealHello {
        our_side: vec![2],
        other_side: vec![3],
        heads: vec![],
    };
    // No record names peer 2, and its split did not part it from this
    // node: nothing happens (one naming this node is adopted, see
    // `a_split_only_one_side_saw_is_adopted_and_reconciled_alike`).
    assert_eq!(
        engine
            .on_message(2, ids::PARTITION, &hello.encode().unwrap())
            .unwrap(),
        vec![]
    );
    assert_eq!(engine.agreed_key(1), None);
    // Independent failures open nothing; the budget is unlimited.
    for peer in 2..20 {
        engine.peer_up(peer, None);
    }
    assert!(engine.on_peer_failed(2, 0, &[]).is_empty());
    assert_eq!(engine.recovery_budget(), None);
}

#[test]
fn engine_surfaces_every_request_and_announcement() {
    let mut engine = ContinuityEngine::new(1, EngineConfig::default());
    let mut chain = CausalChain::new(9);
    chain.append(b"s", 0);
    let proof = chain.prove(1, 1).unwrap();
    let record = ForkRecord::new(9, 10, 1, None);
    let head = ChainPoint {
        origin: 9,
        seq: 1,
        hash: 3,
    };
    let cases = [
        (
            ContinuityMessage::ChainHead(head),
            Output::ChainHead { peer: 2, head },
        ),
        (
            ContinuityMessage::ProofRequest {
                origin: 9,
                from_seq: 1,
                to_seq: 1,
            },
            Output::ProofRequested {
                peer: 2,
                origin: 9,
                from_seq: 1,
                to_seq: 1,
            },
        ),
        (
            ContinuityMessage::Proof(proof),
            Output::ProofReceived { peer: 2, proof },
        ),
        (
            ContinuityMessage::ForkAnnounce {
                partition_key: 5,
                record,
            },
            Output::ForkAnnounced {
                peer: 2,
                partition_key: 5,
                record,
            },
        ),
        (
            ContinuityMessage::BranchRequest {
                origin: 9,
                after_seq: 0,
            },
            Output::BranchRequested {
                peer: 2,
                origin: 9,
                after_seq: 0,
            },
        ),
    ];
    for (message, expected) in cases {
        let Output::Send {
            to,
            subprotocol,
            bytes,
        } = engine.outgoing(2, &message).unwrap()
        else {
            panic!("outgoing is a send");
        };
        assert_eq!((to, subprotocol), (2, message.subprotocol()));
        assert_eq!(
            engine.on_message(2, subprotocol, &bytes).unwrap(),
            vec![expected]
        );
    }
    let bad = ContinuityMessage::HealHello {
        our_side: vec![3, 3],
        other_side: vec![],
        heads: vec![],
    };
    assert_eq!(
        engine.outgoing(2, &bad),
        Err(ContinuityWireError::Unsorted("our_side"))
    );
}

// ------------------------------------------------- observation windows

#[test]
fn observation_window_freshness_and_divergence() {
    let mut here = ObservationWindow::new();
    here.observe(1, 5, 1_000, 50);
    here.observe(1, 3, 1_100, 50); // sequences only move up
    here.observe(2, 7, 1_000, 0);
    assert_eq!(here.seq(1), Some(5));
    assert!(here.within_cone(1, 1_100 + 100 + 50, 100));
    assert!(!here.within_cone(1, 1_100 + 100 + 51, 100));
    assert!(!here.within_cone(9, 0, u64::MAX), "never seen");
    assert!(here.within_cone(1, 0, 0), "a clock behind is fresh");
    let mut there = ObservationWindow::new();
    there.observe(2, 10, 0, 0);
    there.observe(3, 1, 0, 0);
    assert_eq!(
        here.divergence(&there),
        HorizonDivergence {
            only_here: vec![1],
            only_there: vec![3],
            common: 1,
            seq_distance: 3
        }
    );
    assert_eq!(here.horizon(), vec![(1, 5), (2, 7)]);
}

#[test]
fn observation_window_is_bounded_and_evicts_the_longest_silent() {
    let mut window = ObservationWindow::new();
    let cap = net::continuity::observation::MAX_TRACKED_ORIGINS as u64;
    for origin in 0..cap {
        window.observe(origin, 1, origin + 10, 0);
    }
    window.observe(0, 2, cap + 10, 0); // origin 0 heard from again
    window.observe(cap, 1, cap + 11, 0);
    assert_eq!(window.len(), cap as usize);
    assert_eq!(window.seq(1), None, "the longest silent is evicted");
    assert_eq!(window.seq(0), Some(2));
    assert_eq!(window.seq(cap), Some(1));
}

#[test]
fn propagation_estimates_and_calibration() {
    let subnet = |levels: &[u8]| SubnetId::from_levels(levels).unwrap();
    assert_eq!(crossing_depth(subnet(&[1, 2]), subnet(&[1, 2])), 0);
    assert_eq!(crossing_depth(subnet(&[1, 2]), subnet(&[1, 3])), 1);
    assert_eq!(crossing_depth(subnet(&[1, 2]), subnet(&[2, 2])), 2);
    assert_eq!(crossing_depth(SubnetId::GLOBAL, subnet(&[1, 2, 3])), 3);
    let mut model = PropagationModel::default();
    assert_eq!(model.estimate_us(0, 0), 100.0);
    assert_eq!(model.estimate_us(3, 1), 1_500.0);
    assert_eq!(
        model.estimate_us(1, 9),
        50_000.0,
        "the last multiplier is reused"
    );
    // rtt 2 000 µs over 1 hop within a subnet: 1 000 µs per hop, α 0.5.
    model.calibrate(2_000.0, 1, 0);
    assert_eq!(model.base_us(), 550.0);
    model.calibrate(f64::NAN, 1, 0);
    model.calibrate(-1.0, 1, 0);
    assert_eq!(model.base_us(), 550.0);
    for _ in 0..9 {
        model.calibrate(2_000.0, 1, 0);
    }
    let before = model.base_us();
    model.calibrate(1e12, 1, 0); // capped at one second per hop, α 0.1
    assert!((model.base_us() - (before + 0.1 * (1e6 - before))).abs() < 1e-6);
}

// ------------------------------------------------------------ properties

fn payloads() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..4), 0..5)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any two branches from a split: both sides pick the same winning
    /// branch and derive the same fork.
    #[test]
    fn both_sides_agree_on_any_divergence(
        prefix in payloads(),
        a in payloads(),
        b in payloads(),
    ) {
        let split = genesis(42);
        let common = extend(&split, &owned(&prefix));
        let from = common.last().cloned().unwrap_or_else(|| split.clone());
        let ours = [common.clone(), extend(&from, &owned(&a))].concat();
        let theirs = [common, extend(&from, &owned(&b))].concat();
        let ab = reconcile(&split, &ours, &theirs).unwrap();
        let ba = reconcile(&split, &theirs, &ours).unwrap();
        match (&ab, &ba) {
            (Reconciliation::Diverged(x), Reconciliation::Diverged(y)) => {
                prop_assert_eq!(x.winner, y.winner.flip());
                prop_assert_eq!(&x.winning, &y.winning);
                prop_assert_eq!(x.fork, y.fork);
                prop_assert_eq!(&x.fork_events, &y.fork_events);
                prop_assert!(x.fork.verify().is_ok());
                prop_assert!(x.winning.len() >= x.losing.len());
            }
            (Reconciliation::Catchup { behind: p, events: e }, Reconciliation::Catchup { behind: q, events: f }) => {
                prop_assert_eq!(*p, q.flip());
                prop_assert_eq!(e, f);
            }
            (Reconciliation::AlreadyConverged, Reconciliation::AlreadyConverged) => {}
            _ => prop_assert!(false, "views differ: {ab:?} / {ba:?}"),
        }
    }

    /// The split's key is the same from either side, whatever each side's
    /// view of the other (one side may miss some members).
    #[test]
    fn partition_key_is_symmetric(
        x in prop::collection::btree_set(0u64..50, 1..8),
        y in prop::collection::btree_set(50u64..100, 1..8),
        missing in prop::collection::btree_set(0u64..100, 0..3),
    ) {
        let seen_x: BTreeSet<u64> = x.difference(&missing).copied().collect();
        let seen_y: BTreeSet<u64> = y.difference(&missing).copied().collect();
        let from_x = partition_key((&x, &seen_y), (&y, &seen_x));
        let from_y = partition_key((&y, &seen_x), (&x, &seen_y));
        prop_assert_eq!(from_x, from_y);
        prop_assert_eq!(from_x, partition_key((&x, &y), (&y, &x)));
    }

    /// Two engines on either side of a split agree on the key, the winner
    /// and the fork whatever order each sees the failures in.
    #[test]
    fn engines_agree_whatever_the_failure_order(
        a_size in 2usize..5,
        b_size in 2usize..5,
        a_seed in any::<u64>(),
        b_seed in any::<u64>(),
        a_branch in payloads(),
        b_branch in payloads(),
    ) {
        let a_side: Vec<u64> = (1..=a_size as u64).collect();
        let b_side: Vec<u64> = (100..100 + b_size as u64).collect();
        let shuffle = |n: usize, seed: u64| {
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by_key(|&i| (seed.rotate_left(i as u32 * 7) ^ i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            order
        };
        let split = run_split(
            &a_side,
            &b_side,
            &shuffle(b_size, a_seed),
            &shuffle(a_size, b_seed),
            &a_branch,
            &b_branch,
        );
        prop_assert!(split.key_a.is_some());
        prop_assert_eq!(split.key_a, split.key_b);
        match (fork_of(&split.a_view), fork_of(&split.b_view)) {
            (Some((wa, fa)), Some((wb, fb))) => {
                prop_assert_eq!(wa, wb.flip());
                prop_assert_eq!(fa, fb);
            }
            (None, None) => {}
            other => prop_assert!(false, "one side diverged alone: {other:?}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary bytes on any of the five subprotocols: never a panic, and
    /// what decodes re-encodes to a message that decodes the same.
    #[test]
    fn arbitrary_bytes_never_panic(selector in 0usize..5, body in prop::collection::vec(any::<u8>(), 0..200)) {
        let subprotocol = [ids::CONTINUITY, ids::FORK_ANNOUNCE, ids::PROOF_TRANSFER, ids::PARTITION, ids::RECONCILE][selector];
        let mut body = body;
        if let Some(first) = body.first_mut() {
            *first = 1; // mostly the right version, so the fields get read
        }
        if let Ok(message) = ContinuityMessage::decode(subprotocol, &body) {
            let encoded = message.encode().unwrap();
            prop_assert_eq!(ContinuityMessage::decode(subprotocol, &encoded), Ok(message));
        }
    }

    /// A follower fed a stream event by event reaches the verdict `assess`
    /// gives the whole log: it breaks exactly where `assess` stops being
    /// continuous (duplicates of the last event aside).
    #[test]
    fn follower_agrees_with_assess(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..3), 1..12),
        fault in 0usize..12,
        kind in 0u8..4,
    ) {
        let mut events = extend(&genesis(5), &owned(&payloads));
        let at = fault % events.len();
        match kind {
            0 => {}
            1 => events[at].link.parent_hash ^= 1,
            2 => { events.remove(at); }
            _ => events[at].link.origin_hash = 6,
        }
        let status = assess(&events, None);
        let mut follower = ChainFollower::from_genesis(5);
        let mut broke_at = None;
        for event in &events {
            if let Observation::Broke(d) = follower.observe(&event.link, &event.payload, 0) {
                broke_at = d.failed.map(|l| l.sequence);
                break;
            }
        }
        match status {
            ChainStatus::Continuous { head_seq, head_hash, .. } if !events.is_empty() => {
                prop_assert_eq!(broke_at, None);
                prop_assert_eq!(follower.head().sequence, head_seq);
                prop_assert_eq!(follower.head_hash(), head_hash);
            }
            ChainStatus::Continuous { .. } => prop_assert_eq!(broke_at, None),
            ChainStatus::Forked { seq, .. } | ChainStatus::OriginMismatch { seq, .. } => {
                prop_assert_eq!(broke_at, Some(seq));
            }
            ChainStatus::Gap { found, .. } => prop_assert_eq!(broke_at, Some(found)),
            // The first event is gone: nothing anchors the log, and the
            // follower (from genesis) sees the gap at once.
            ChainStatus::Unverifiable => {
                prop_assert_eq!(broke_at, Some(events[0].link.sequence));
            }
            other => prop_assert!(false, "unexpected {other:?}"),
        }
    }
}

// ------------------------------------------- model of the record lifecycle

#[derive(Debug, Clone)]
enum Op {
    /// A mass failure of these peers (ids 10..20).
    Fail(Vec<u64>),
    /// A peer returns.
    Return(u64),
    /// A peer fails again on its own.
    Refail(u64),
    /// Time passes.
    Advance(u64),
    /// Manual confirm of a record id.
    Confirm(u64),
    /// Take healed records.
    Take,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        prop::collection::vec(10u64..20, 1..5).prop_map(Op::Fail),
        (10u64..20).prop_map(Op::Return),
        (10u64..20).prop_map(Op::Refail),
        (0u64..3_000).prop_map(Op::Advance),
        (1u64..5).prop_map(Op::Confirm),
        Just(Op::Take),
    ]
}

#[derive(Debug, Clone, PartialEq)]
struct ModelRecord {
    other: BTreeSet<u64>,
    returned: BTreeSet<u64>,
    phase: PartitionPhase,
    detected: u64,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn partition_records_follow_the_model(ops in prop::collection::vec(op(), 1..40)) {
        let config = PartitionConfig::default();
        let mut tracker = PartitionTracker::new(config);
        let mut model: BTreeMap<u64, ModelRecord> = BTreeMap::new();
        let mut next_id = 1u64;
        let mut now = 0u64;
        for op in ops {
            match op {
                Op::Fail(peers) => {
                    let verdict = mass(&peers);
                    let failed: BTreeSet<u64> = peers.iter().copied().collect();
                    tracker.detect(&verdict, &set(&[1, 2]), &[], now);
                    let open = model.values_mut().find(|r| {
                        r.phase != PartitionPhase::Healed && !r.other.is_disjoint(&failed)
                    });
                    match open {
                        Some(record) => {
                            record.other.extend(&failed);
                            record.returned.retain(|p| !failed.contains(p));
                            if record.phase == PartitionPhase::Healing && record.returned.is_empty() {
                                record.phase = PartitionPhase::Confirmed;
                            }
                        }
                        None => {
                            model.insert(next_id, ModelRecord {
                                other: failed,
                                returned: BTreeSet::new(),
                                phase: PartitionPhase::Suspected,
                                detected: now,
                            });
                            next_id += 1;
                        }
                    }
                }
                Op::Return(peer) => {
                    tracker.on_node_recovery(peer, now);
                    for record in model.values_mut() {
                        if record.phase != PartitionPhase::Healed
                            && record.other.contains(&peer)
                            && record.returned.insert(peer)
                        {
                            let share = record.returned.len() as f64 / record.other.len() as f64;
                            record.phase = if share >= config.healing_threshold {
                                PartitionPhase::Healed
                            } else {
                                PartitionPhase::Healing
                            };
                        }
                    }
                }
                Op::Refail(peer) => {
                    tracker.on_node_failure(peer);
                    for record in model.values_mut() {
                        if record.phase == PartitionPhase::Healing
                            && record.returned.remove(&peer)
                            && record.returned.is_empty()
                        {
                            record.phase = PartitionPhase::Confirmed;
                        }
                    }
                }
                Op::Advance(ms) => {
                    now += ms;
                    tracker.tick(now);
                    for record in model.values_mut() {
                        if record.phase == PartitionPhase::Suspected
                            && now - record.detected >= config.confirm_after_ms
                        {
                            record.phase = PartitionPhase::Confirmed;
                        }
                    }
                }
                Op::Confirm(id) => {
                    let expected = model
                        .get(&id)
                        .is_some_and(|r| r.phase == PartitionPhase::Suspected);
                    prop_assert_eq!(tracker.confirm(id, now), expected);
                    if expected {
                        model.get_mut(&id).unwrap().phase = PartitionPhase::Confirmed;
                    }
                }
                Op::Take => {
                    let taken: Vec<u64> = tracker.take_healed().iter().map(|r| r.id).collect();
                    let healed: Vec<u64> = model
                        .iter()
                        .filter(|(_, r)| r.phase == PartitionPhase::Healed)
                        .map(|(&id, _)| id)
                        .collect();
                    prop_assert_eq!(taken, healed);
                    model.retain(|_, r| r.phase != PartitionPhase::Healed);
                }
            }
            let actual: BTreeMap<u64, ModelRecord> = tracker
                .records()
                .iter()
                .map(|r| {
                    (r.id, ModelRecord {
                        other: r.other_side.clone(),
                        returned: r.returned.clone(),
                        phase: r.phase,
                        detected: r.detected_at_ms,
                    })
                })
                .collect();
            prop_assert_eq!(&actual, &model);
        }
    }
}
