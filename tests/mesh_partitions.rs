//! The continuity plane running by itself on real nodes (issue 16 item
//! 3): five nodes on 127.0.0.1 split into two groups by nftables rules
//! (a uniquely named table, removed by a Drop guard; the node's outbound
//! filter when `nft` cannot be used), the partition detected on both
//! sides, both sides working, the heal, and the followed chain reconciled
//! to the same winner and fork identity everywhere. And a node without
//! continuity never receives one of its messages.

mod continuity_common;
mod mesh_common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use continuity_common::{extend, genesis};
use mesh_common::{bound_link, recv_n, started_node};
use net::compute::CausalEvent;
use net::continuity::{ChainPoint, Observation, PartitionEvent, PartitionPhase};
use net::mesh::filter::DropTo;
use net::mesh::*;

const CHAIN: u64 = 0xC0A1_7000_0000_0001;

fn point(event: &CausalEvent) -> ChainPoint {
    ChainPoint {
        origin: event.link.origin_hash,
        seq: event.link.sequence,
        hash: event.link.chain_hash(&event.payload),
    }
}

/// A split between two groups of nodes: an nftables table of its own
/// (dropping UDP between the groups' ports), or, where `nft` cannot be
/// used, each node's outbound filter. Dropping it heals the split — also
/// when the test fails.
struct Split<'a> {
    table: Option<String>,
    filtered: Vec<&'a MeshNode>,
}

impl<'a> Split<'a> {
    fn new(a: &[&'a MeshNode], b: &[&'a MeshNode]) -> Self {
        let ports = |group: &[&MeshNode]| {
            group
                .iter()
                .map(|n| n.local_addr().port().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (pa, pb) = (ports(a), ports(b));
        let table = format!(
            "net_partition_{}_{}",
            std::process::id(),
            pa.replace(", ", "_")
        );
        let script = format!(
            "table inet {table} {{\n chain out {{\n  type filter hook output priority 0; policy accept;\n  udp sport {{ {pa} }} udp dport {{ {pb} }} drop\n  udp sport {{ {pb} }} udp dport {{ {pa} }} drop\n }}\n}}\n"
        );
        if nft(&["-f", "-"], Some(&script)) {
            eprintln!("split by nftables table {table}");
            return Self {
                table: Some(table),
                filtered: Vec::new(),
            };
        }
        // CI runs as root with nftables installed (`make setup`): there
        // the real packet filter is required.
        assert!(
            std::env::var_os("CI").is_none(),
            "nft could not install the split in CI"
        );
        eprintln!("nft unavailable: split by the nodes' outbound filters");
        let addrs = |group: &[&MeshNode]| -> BTreeSet<SocketAddr> {
            group.iter().map(|n| n.local_addr()).collect()
        };
        for n in a {
            n.set_filter(Some(Arc::new(DropTo(addrs(b)))));
        }
        for n in b {
            n.set_filter(Some(Arc::new(DropTo(addrs(a)))));
        }
        Self {
            table: None,
            filtered: a.iter().chain(b).copied().collect(),
        }
    }
}

impl Drop for Split<'_> {
    fn drop(&mut self) {
        if let Some(table) = &self.table {
            assert!(
                nft(&["delete", "table", "inet", table], None),
                "could not remove nftables table {table}"
            );
        }
        for n in &self.filtered {
            n.set_filter(None);
        }
    }
}

/// Runs `nft args` (with `stdin`); whether it succeeded.
fn nft(args: &[&str], stdin: Option<&str>) -> bool {
    // /usr/sbin is not on every PATH.
    let child = ["nft", "/usr/sbin/nft"].iter().find_map(|program| {
        Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .ok()
    });
    let Some(mut child) = child else {
        return false;
    };
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        use std::io::Write;
        if pipe.write_all(text.as_bytes()).is_err() {
            return false;
        }
    }
    child
        .wait_with_output()
        .is_ok_and(|out| out.status.success())
}

/// Each node's continuity events as they were taken.
struct Journal {
    seen: Vec<Vec<ContinuityEvent>>,
}

impl Journal {
    /// Waits (up to `limit`) until `done(node index, its events)` holds
    /// for every node in `which`, taking events as they come.
    fn wait_all(
        &mut self,
        nodes: &[MeshNode],
        which: &[usize],
        limit: Duration,
        what: &str,
        mut done: impl FnMut(usize, &MeshNode, &[ContinuityEvent]) -> bool,
    ) {
        let deadline = Instant::now() + limit;
        for &i in which {
            while !done(i, &nodes[i], &self.seen[i]) {
                assert!(
                    Instant::now() < deadline,
                    "node {i}: timed out waiting for {what}: {:?} {:?}",
                    self.seen[i],
                    nodes[i].partitions()
                );
                match nodes[i].next_continuity_event(Some(Duration::from_millis(50))) {
                    Ok(event) => self.seen[i].push(event),
                    Err(MeshError::Timeout) => {}
                    Err(e) => panic!("node {i}: {e}"),
                }
            }
        }
    }
}

impl Journal {
    /// Takes the events already queued on every node.
    fn drain(&mut self, nodes: &[MeshNode]) {
        for (i, n) in nodes.iter().enumerate() {
            while let Ok(event) = n.next_continuity_event(Some(Duration::ZERO)) {
                self.seen[i].push(event);
            }
        }
    }
}

fn has(events: &[ContinuityEvent], f: impl Fn(&ContinuityEvent) -> bool) -> bool {
    events.iter().any(f)
}

#[test]
fn five_nodes_split_work_heal_and_reconcile_to_one_winner_and_fork() {
    let nodes: Vec<MeshNode> = (0..5).map(|_| started_node("")).collect();
    for i in 0..5 {
        for j in i + 1..5 {
            bound_link(&nodes[i], &nodes[j]);
        }
    }
    let ids: Vec<u64> = nodes.iter().map(MeshNode::node_id).collect();
    let (side_a, side_b) = ([0usize, 1, 2], [3usize, 4]);
    let id_set = |side: &[usize]| -> BTreeSet<u64> { side.iter().map(|&i| ids[i]).collect() };

    // Every node follows the chain and holds its first events.
    let before = extend(&genesis(CHAIN), &[b"one", b"two", b"three"]);
    for n in &nodes {
        n.follow_chain(CHAIN).unwrap();
        for e in &before {
            assert_eq!(n.observe_chain_event(e).unwrap(), Observation::Extended);
        }
    }
    let split_event = before.last().unwrap().clone();
    let mut journal = Journal {
        seen: vec![Vec::new(); 5],
    };

    let a_branch = extend(&split_event, &[b"a1", b"a2", b"a3"]);
    let b_branch = extend(&split_event, &[b"b1", b"b2"]);
    {
        let refs: Vec<&MeshNode> = nodes.iter().collect();
        let split = Split::new(&side_a.map(|i| refs[i]), &side_b.map(|i| refs[i]));
        let started = Instant::now();
        // Detected and confirmed on both sides, each naming the other.
        journal.wait_all(
            &nodes,
            &[0, 1, 2, 3, 4],
            Duration::from_secs(15),
            "confirmation",
            |_, _, ev| {
                has(ev, |e| {
                    matches!(e, ContinuityEvent::Partition(PartitionEvent::Confirmed(_)))
                })
            },
        );
        eprintln!(
            "split detected and confirmed everywhere in {:?}",
            started.elapsed()
        );
        for (side, other) in [(&side_a[..], &side_b[..]), (&side_b[..], &side_a[..])] {
            for &i in side {
                let records = nodes[i].partitions();
                assert_eq!(records.len(), 1, "node {i}: one record");
                let record = &records[0].record;
                assert_eq!(record.other_side, id_set(other), "node {i}: the other side");
                assert_eq!(record.our_side, id_set(side), "node {i}: its own side");
                assert_eq!(record.phase, PartitionPhase::Confirmed);
                assert_eq!(records[0].partition_key, None, "no key before the heal");
                assert!(has(&journal.seen[i], |e| matches!(
                    e,
                    ContinuityEvent::Partition(PartitionEvent::Detected(_))
                )));
            }
        }

        // Both sides keep working: streams inside each side, and each side
        // writes its own branch of the chain.
        for (from, to) in [(0usize, 1usize), (3, 4)] {
            let (sender, receiver) = (&nodes[from], &nodes[to]);
            sender
                .open_stream(receiver.node_id(), 40, true, None)
                .unwrap();
            sender
                .send_blocking(receiver.node_id(), 40, &[b"inside the split"], None)
                .unwrap();
            let got = recv_n(receiver, 1);
            assert_eq!(got[0].data, b"inside the split");
        }
        for (side, branch) in [(&side_a[..], &a_branch), (&side_b[..], &b_branch)] {
            for &i in side {
                for e in branch.iter() {
                    let seen = nodes[i].observe_chain_event(e).unwrap();
                    assert_eq!(seen, Observation::Extended);
                }
            }
        }
        drop(split);
    }
    let healed_at = Instant::now();

    // Healed everywhere; the chain is the longer branch (A's) on every
    // node, and every node names the same fork of B's events.
    let winner_head = point(a_branch.last().unwrap());
    journal.wait_all(
        &nodes,
        &[0, 1, 2, 3, 4],
        Duration::from_secs(20),
        "reconciliation",
        |_, n, ev| {
            let status = n.continuity_status();
            has(ev, |e| {
                matches!(e, ContinuityEvent::Partition(PartitionEvent::Healed(_)))
            }) && status[0].head == winner_head
                && status[0].forks.len() == 1
                && n.partitions()[0].partition_key.is_some()
        },
    );
    eprintln!(
        "heal to reconciled chains on five nodes: {:?}",
        healed_at.elapsed()
    );
    journal.drain(&nodes);

    let forks: std::collections::HashSet<_> = nodes
        .iter()
        .map(|n| n.continuity_status()[0].forks[0])
        .collect();
    assert_eq!(forks.len(), 1, "one fork identity on both sides: {forks:?}");
    let fork = *forks.iter().next().unwrap();
    assert_eq!(fork.original_origin, CHAIN);
    assert_eq!(fork.fork_seq, split_event.link.sequence);
    let keys: BTreeSet<_> = nodes
        .iter()
        .map(|n| n.partitions()[0].partition_key)
        .collect();
    assert_eq!(keys.len(), 1, "one partition key on both sides: {keys:?}");
    let key = keys.into_iter().next().unwrap();

    let winning_log = [before.clone(), a_branch.clone()].concat();
    for (i, n) in nodes.iter().enumerate() {
        assert_eq!(
            n.chain_events(CHAIN, 1),
            winning_log,
            "node {i}: the winner's log"
        );
        assert_eq!(n.partitions()[0].record.phase, PartitionPhase::Healed);
    }
    // The losing side derived the fork itself, from both branches, and
    // kept its events under the fork's origin.
    for &i in &side_b {
        let n = &nodes[i];
        let derived = journal.seen[i].iter().find_map(|e| match e {
            ContinuityEvent::Reconciled {
                outcome: ReconcileOutcome::Diverged { we_won, fork },
                partition_key,
                head,
                ..
            } => Some((*we_won, *fork, *partition_key, *head)),
            _ => None,
        });
        let (we_won, derived_fork, derived_key, head) =
            derived.unwrap_or_else(|| panic!("node {i} reconciled no divergence"));
        assert!(!we_won, "node {i}: B's shorter branch loses");
        assert_eq!(derived_fork, fork);
        assert_eq!(derived_key, key);
        assert_eq!(head, winner_head);
        let archived = n.fork_events(CHAIN, fork.forked_origin);
        let payloads: Vec<&[u8]> = archived.iter().map(|e| e.payload.as_slice()).collect();
        assert_eq!(payloads, [b"b1".as_slice(), b"b2"]);
        assert!(
            archived
                .iter()
                .all(|e| e.link.origin_hash == fork.forked_origin)
        );
    }
    // The winning side either derived the same fork or adopted it from an
    // announcement carrying the same key.
    for &i in &side_a {
        let agreed = journal.seen[i].iter().any(|e| match e {
            ContinuityEvent::Reconciled {
                outcome: ReconcileOutcome::Diverged { we_won, fork: f },
                ..
            } => *we_won && *f == fork,
            ContinuityEvent::ForkAdopted {
                fork: f,
                partition_key,
                ..
            } => *f == fork && Some(*partition_key) == key,
            _ => false,
        });
        assert!(agreed, "node {i}: {:?}", journal.seen[i]);
    }
    for n in &nodes {
        n.shutdown();
    }
}

/// Counts what arrives on the continuity subprotocols.
struct Counter(AtomicU64);

impl SubprotocolHandler for Counter {
    fn on_message(&self, _from: u64, _message: &[u8]) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_peer_without_continuity_receives_none_of_its_messages() {
    let y = started_node("");
    let z = started_node("");
    let x = started_node(r#","continuity":false"#);
    // Continuity off: the ids are free, so the test can listen on them.
    let counter = Arc::new(Counter(AtomicU64::new(0)));
    for id in CONTINUITY_SUBPROTOCOLS {
        x.register_subprotocol(id, counter.clone()).unwrap();
        assert!(matches!(
            y.register_subprotocol(id, counter.clone()),
            Err(MeshError::SubprotocolInUse(_))
        ));
        assert!(
            !y.unregister_subprotocol(id),
            "the node keeps its own handler"
        );
    }
    assert!(matches!(
        x.follow_chain(1),
        Err(MeshError::Continuity(ContinuityError::Disabled))
    ));
    bound_link(&y, &x);
    bound_link(&y, &z);
    y.follow_chain(CHAIN).unwrap();

    let nodes = vec![y, z, x];
    let mut journal = Journal {
        seen: vec![Vec::new(); 3],
    };
    {
        let refs: Vec<&MeshNode> = nodes.iter().collect();
        let _split = Split::new(&[refs[0]], &[refs[1], refs[2]]);
        // Both continuity nodes see the split (a node that never saw it
        // has no record to heal and ignores HealHellos).
        journal.wait_all(
            &nodes,
            &[0, 1],
            Duration::from_secs(15),
            "detection",
            |_, _, ev| {
                has(ev, |e| {
                    matches!(e, ContinuityEvent::Partition(PartitionEvent::Detected(_)))
                })
            },
        );
    }
    // Healed: y and z exchange HealHellos and agree on the split.
    journal.wait_all(
        &nodes,
        &[0, 1],
        Duration::from_secs(20),
        "agreement",
        |_, _, ev| has(ev, |e| matches!(e, ContinuityEvent::Agreed { .. })),
    );
    let y = &nodes[0];
    let x = &nodes[2];
    assert!(y.partitions()[0].record.other_side.contains(&x.node_id()));
    // A barrier: an event y sends x after the exchange arrives after
    // anything y sent x before it.
    y.open_stream(x.node_id(), 41, true, None).unwrap();
    y.send_blocking(x.node_id(), 41, &[b"barrier"], None)
        .unwrap();
    assert_eq!(recv_n(x, 1)[0].data, b"barrier");
    assert_eq!(
        counter.0.load(Ordering::SeqCst),
        0,
        "x received continuity messages"
    );
    for n in &nodes {
        n.shutdown();
    }
}

/// A split long enough for both sides to evict each other's sessions: the
/// application reconnects after the heal, and the new session counts as
/// the peer's return, so the record heals and both sides agree on the key.
#[test]
fn a_split_outliving_the_sessions_heals_on_reconnect() {
    let quick = r#","heartbeat_interval_ms":20,"session_timeout_ms":100"#;
    let a = started_node(quick);
    let b = started_node(quick);
    bound_link(&a, &b);
    let nodes = vec![a, b];
    let mut journal = Journal {
        seen: vec![Vec::new(); 2],
    };
    {
        let refs: Vec<&MeshNode> = nodes.iter().collect();
        let _split = Split::new(&[refs[0]], &[refs[1]]);
        journal.wait_all(
            &nodes,
            &[0, 1],
            Duration::from_secs(15),
            "the sessions evicted",
            |_, n, ev| {
                has(ev, |e| {
                    matches!(e, ContinuityEvent::Partition(PartitionEvent::Detected(_)))
                }) && n.peers().is_empty()
            },
        );
    }
    let (a, b) = (&nodes[0], &nodes[1]);
    bound_link(a, b);
    journal.wait_all(
        &nodes,
        &[0, 1],
        Duration::from_secs(15),
        "agreement",
        |_, _, ev| {
            has(ev, |e| {
                matches!(e, ContinuityEvent::Partition(PartitionEvent::Healed(_)))
            }) && has(ev, |e| matches!(e, ContinuityEvent::Agreed { .. }))
        },
    );
    let keys: BTreeSet<_> = nodes
        .iter()
        .map(|n| n.partitions()[0].partition_key)
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys.iter().all(Option::is_some));
    for n in &nodes {
        n.shutdown();
    }
}

/// A split only one side sees: `a`'s packets to `b` are lost while `b`'s
/// reach `a`, so `b` detects `a` failed and `a` notices nothing. Both write
/// their own branch of the chain. On the heal `b`'s HealHello tells `a`,
/// which records the split as healed, greets `b` back and follows `b`'s
/// split point; both end on the same winner, fork and key.
#[test]
fn a_split_only_one_side_saw_heals_and_reconciles_on_both() {
    // b finds a failed after three session timeouts (1.2 s) and would
    // evict it after thirty (12 s): meanwhile b's heartbeats keep a's view
    // of b healthy.
    let nodes = vec![started_node(""), started_node("")];
    bound_link(&nodes[0], &nodes[1]);
    let (a, b) = (&nodes[0], &nodes[1]);
    let before = extend(&genesis(CHAIN), &[b"one", b"two"]);
    for n in &nodes {
        n.follow_chain(CHAIN).unwrap();
        for e in &before {
            assert_eq!(n.observe_chain_event(e).unwrap(), Observation::Extended);
        }
    }
    let split_event = before.last().unwrap().clone();
    let a_branch = extend(&split_event, &[b"a1", b"a2", b"a3"]);
    let b_branch = extend(&split_event, &[b"b1"]);
    let mut journal = Journal {
        seen: vec![Vec::new(); 2],
    };
    a.set_filter(Some(Arc::new(DropTo([b.local_addr()].into()))));
    journal.wait_all(
        &nodes,
        &[1],
        Duration::from_secs(15),
        "b's record",
        |_, _, ev| {
            has(ev, |e| {
                matches!(e, ContinuityEvent::Partition(PartitionEvent::Detected(_)))
            })
        },
    );
    for (n, branch) in [(a, &a_branch), (b, &b_branch)] {
        for e in branch.iter() {
            assert_eq!(n.observe_chain_event(e).unwrap(), Observation::Extended);
        }
    }
    journal.drain(&nodes);
    assert!(a.partitions().is_empty(), "a saw no split");
    a.set_filter(None);

    let winner_head = point(a_branch.last().unwrap());
    journal.wait_all(
        &nodes,
        &[0, 1],
        Duration::from_secs(20),
        "reconciliation",
        |_, n, _| {
            let status = n.continuity_status();
            status[0].head == winner_head
                && status[0].forks.len() == 1
                && n.partitions().first().is_some_and(|p| {
                    p.record.phase == PartitionPhase::Healed && p.partition_key.is_some()
                })
        },
    );
    journal.drain(&nodes);
    assert!(
        !has(&journal.seen[0], |e| matches!(
            e,
            ContinuityEvent::Partition(PartitionEvent::Detected(_))
        )),
        "a learned of the split only at the heal"
    );
    let adopted = &a.partitions()[0];
    assert_eq!(adopted.record.other_side, BTreeSet::from([b.node_id()]));
    assert_eq!(adopted.record.our_side, BTreeSet::from([a.node_id()]));
    assert_eq!(adopted.partition_key, b.partitions()[0].partition_key);
    let fork = a.continuity_status()[0].forks[0];
    assert_eq!(b.continuity_status()[0].forks[0], fork);
    assert_eq!(fork.fork_seq, split_event.link.sequence);
    let winning_log = [before.clone(), a_branch.clone()].concat();
    for n in &nodes {
        assert_eq!(n.chain_events(CHAIN, 1), winning_log);
    }
    let archived = b.fork_events(CHAIN, fork.forked_origin);
    let payloads: Vec<&[u8]> = archived.iter().map(|e| e.payload.as_slice()).collect();
    assert_eq!(payloads, [b"b1".as_slice()]);
    for n in &nodes {
        n.shutdown();
    }
}
