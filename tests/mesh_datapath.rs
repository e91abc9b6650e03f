//! The data path (issue 19): single-event sends coalescing in the outbox
//! behind a busy writer, reliable streams exactly once through coalesced
//! packets under loss, UDP GSO sends and GRO receives, and the fallback
//! when the kernel refuses GSO or the receiver does not ask for GRO.

mod mesh_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mesh_common::{node, recv_n, wait_until};
use net::mesh::*;

/// v0.11's 8 KiB datagrams only: the GSO and coalescing tests count them.
const SMALL: &str = r#","large_datagrams":false"#;

fn pair(extra: &str) -> (MeshNode, MeshNode) {
    pair_with(extra, extra)
}

fn pair_with(extra_a: &str, extra_b: &str) -> (MeshNode, MeshNode) {
    let a = node(extra_a);
    let b = node(extra_b);
    a.connect(b.local_addr(), &b.public_key(), b.node_id())
        .unwrap();
    wait_until(|| !b.peers().is_empty(), "b sees a");
    (a, b)
}

fn numbered(got: &[InboundEvent]) -> Vec<u32> {
    got.iter()
        .map(|e| u32::from_le_bytes(e.data[..4].try_into().unwrap()))
        .collect()
}

fn event(i: u32, size: usize) -> Vec<u8> {
    let mut e = vec![(i % 251) as u8; size];
    e[..4].copy_from_slice(&i.to_le_bytes());
    e
}

#[test]
fn single_event_sends_share_datagrams_behind_a_busy_writer() {
    // v0.11-sized datagrams (large ones have their own tests below).
    let (a, b) = pair(SMALL);
    let peer = b.node_id();
    a.open_stream(peer, 3, false, None).unwrap();
    // Every write goes to the writer thread, which the gate holds: the
    // sends that follow the first can only pile up in the outbox.
    a.set_force_handoff(true);
    a.set_writer_gate(true);
    a.send(peer, 3, &[event(0, 64)]).unwrap();
    wait_until(
        || a.writers_at_gate() == 1,
        "the writer thread reaches the gate",
    );
    for i in 1..500u32 {
        a.send(peer, 3, &[event(i, 64)]).unwrap();
    }
    let before = a.stat("packets_written");
    a.set_writer_gate(false);
    let got = recv_n(&b, 500);
    assert_eq!(
        numbered(&got),
        (0..500).collect::<Vec<_>>(),
        "in order, all of them"
    );
    assert!(got.iter().all(|e| e.data.len() == 64));
    // 68 framed bytes per event, at most 8112 per packet: 119 per packet.
    assert_eq!(
        a.stat("packets_written") - before,
        5,
        "500 events in 5 datagrams"
    );
    assert!(a.stat("writer_handoffs") >= 1);
}

#[test]
fn a_sender_out_of_credit_gets_its_waiting_events_written_first() {
    // Window of ~4 KiB: the outbox fills the window, the sender must wait
    // for a grant, which only comes once what waits has been written.
    let (a, b) = pair(r#","window":4096"#);
    let peer = b.node_id();
    a.open_stream(peer, 5, false, None).unwrap();
    let n = 3000u32;
    let sender = std::thread::spawn(move || {
        for i in 0..n {
            a.send_blocking(
                peer,
                5,
                &[event(i, 100)],
                Some(Instant::now() + Duration::from_secs(20)),
            )
            .unwrap();
        }
        a
    });
    let got = recv_n(&b, n as usize);
    let a = sender.join().unwrap();
    assert_eq!(numbered(&got), (0..n).collect::<Vec<_>>());
    assert_eq!(a.stat("send_dropped"), 0);
}

#[test]
fn reliable_single_event_sends_arrive_once_in_order_under_loss_through_coalesced_packets() {
    let (a, b) = pair("");
    wait_until(|| a.peers()[0].identity == "net", "binding");
    a.set_filter(Some(Arc::new(NetemFilter::new(
        0.20,
        0.05,
        0.10,
        Duration::from_millis(10),
        11,
    ))));
    a.set_force_handoff(true);
    let peer = b.node_id();
    a.open_stream(peer, 6, true, None).unwrap();
    let n = 5000u32;
    // The reader reads while the sender sends: credit comes back only as
    // the application takes events.
    let sender = std::thread::spawn(move || {
        for i in 0..n {
            a.send_blocking(
                peer,
                6,
                &[event(i, 16)],
                Some(Instant::now() + Duration::from_secs(20)),
            )
            .unwrap();
        }
        a
    });
    let got = recv_n(&b, n as usize);
    let a = sender.join().unwrap();
    assert_eq!(
        numbered(&got),
        (0..n).collect::<Vec<_>>(),
        "in order, exactly once"
    );
    assert!(
        mesh_common::nothing_for(&b, 300),
        "no duplicate trickles in"
    );
    assert!(a.stat("retransmits") > 0);
    assert!(
        a.stat("packets_written") < u64::from(n),
        "{} packets for {n} events",
        a.stat("packets_written")
    );
}

/// 60 events of 1200 B in one call: ten equal packets of six events.
fn equal_packets(a: &MeshNode, peer: u64, stream: u64, first: u32) {
    let events: Vec<Vec<u8>> = (first..first + 60).map(|i| event(i, 1200)).collect();
    a.send_blocking(
        peer,
        stream,
        &events,
        Some(Instant::now() + Duration::from_secs(20)),
    )
    .unwrap();
}

#[test]
fn equal_packets_go_out_as_one_gso_send_and_arrive_coalesced() {
    let (a, b) = pair(&format!(r#","window":0{SMALL}"#));
    let peer = b.node_id();
    a.open_stream(peer, 7, false, Some(0)).unwrap();
    assert_eq!(a.stat("gso"), 1, "this kernel offers UDP GSO");
    equal_packets(&a, peer, 7, 0);
    let got = recv_n(&b, 60);
    assert_eq!(numbered(&got), (0..60).collect::<Vec<_>>());
    assert!(a.stat("gso_sends") >= 1, "{}", a.stats_json());
    assert!(b.stat("gro_datagrams") >= 2, "{}", b.stats_json());
    assert_eq!(a.stat("gso_fallbacks"), 0);
}

#[test]
fn a_refused_gso_send_falls_back_to_plain_datagrams_without_losing_any() {
    let (a, b) = pair(&format!(r#","window":0{SMALL}"#));
    let peer = b.node_id();
    a.open_stream(peer, 8, false, Some(0)).unwrap();
    a.refuse_gso(1);
    equal_packets(&a, peer, 8, 0);
    equal_packets(&a, peer, 8, 60);
    let got = recv_n(&b, 120);
    assert_eq!(numbered(&got), (0..120).collect::<Vec<_>>());
    assert_eq!(a.stat("gso_fallbacks"), 1);
    assert_eq!(a.stat("gso"), 0, "GSO stays off once refused");
    assert_eq!(a.stat("gso_sends"), 0);
    assert_eq!(a.stat("send_dropped"), 0);
}

#[test]
fn a_receiver_without_gro_gets_gso_batches_as_single_datagrams() {
    let (a, b) = pair_with(
        &format!(r#","window":0{SMALL}"#),
        &format!(r#","window":0,"gro":false{SMALL}"#),
    );
    let peer = b.node_id();
    a.open_stream(peer, 9, false, Some(0)).unwrap();
    assert_eq!(b.stat("gro"), 0);
    equal_packets(&a, peer, 9, 0);
    let got = recv_n(&b, 60);
    assert_eq!(numbered(&got), (0..60).collect::<Vec<_>>());
    assert!(a.stat("gso_sends") >= 1);
    assert_eq!(b.stat("gro_datagrams"), 0);
}

#[test]
fn a_node_without_offloads_still_talks_to_one_with_them() {
    let (a, b) = pair_with(
        &format!(r#","window":0,"gso":false,"gro":false{SMALL}"#),
        &format!(r#","window":0{SMALL}"#),
    );
    let peer = b.node_id();
    a.open_stream(peer, 10, false, Some(0)).unwrap();
    equal_packets(&a, peer, 10, 0);
    let got = recv_n(&b, 60);
    assert_eq!(numbered(&got), (0..60).collect::<Vec<_>>());
    assert_eq!(a.stat("gso_sends"), 0);
    b.open_stream(a.node_id(), 10, false, Some(0)).unwrap();
    equal_packets(&b, a.node_id(), 10, 0);
    assert_eq!(numbered(&recv_n(&a, 60)), (0..60).collect::<Vec<_>>());
}

/// A sender waiting for credit against a reader that pauses loses nothing:
/// credit comes back when the application takes events, not when they are
/// queued, so a shard far smaller than the window never overflows.
fn paused_reader_loses_nothing(size: usize, reliable: bool) {
    // The window may widen while the reader keeps up (up to max_window):
    // the sender must still stop at it once the reader pauses.
    let max_window = 256 * 1024;
    let (a, b) = pair(&format!(
        r#","shard_capacity":100,"max_window":{max_window}"#
    ));
    if reliable {
        wait_until(|| a.peers()[0].identity == "net", "binding");
    }
    let peer = b.node_id();
    a.open_stream(peer, 11, reliable, None).unwrap();
    let n = 20_000u32;
    let sender = std::thread::spawn(move || {
        for i in 0..n {
            a.send_blocking(
                peer,
                11,
                &[event(i, size)],
                Some(Instant::now() + Duration::from_secs(60)),
            )
            .unwrap();
        }
        a
    });
    let mut got = recv_n(&b, 500);
    // The reader pauses (the scenario under test, not a synchronisation):
    // meanwhile the sender must stop at the window instead of overflowing.
    std::thread::sleep(Duration::from_millis(300));
    let queued = b.stat("inbound_queued");
    assert!(
        queued <= max_window / (size as u64 + 4) + 2 * 119,
        "{queued} queued: {}",
        b.stats_json()
    );
    got.extend(recv_n(&b, n as usize - 500));
    let a = sender.join().unwrap();
    assert_eq!(numbered(&got), (0..n).collect::<Vec<_>>());
    assert_eq!(b.stat("inbound_dropped"), 0, "{}", b.stats_json());
    assert_eq!(a.stat("send_dropped"), 0);
}

#[test]
fn a_paused_reader_slows_a_waiting_sender_64_byte_events() {
    paused_reader_loses_nothing(64, false);
}

#[test]
fn a_paused_reader_slows_a_waiting_sender_1200_byte_events() {
    paused_reader_loses_nothing(1200, false);
}

#[test]
fn a_paused_reader_slows_a_waiting_reliable_sender() {
    paused_reader_loses_nothing(64, true);
}

/// A sender that does not wait for credit (an unlimited window) overflows a
/// reader that does not read: every dropped event is reported to the
/// receiving application, at once in the peer's `dropped_unreported` and on
/// the stream's next event as `dropped_before`.
#[test]
fn drops_from_a_sender_that_does_not_wait_reach_the_application() {
    let (a, b) = pair(r#","shard_capacity":100"#);
    let peer = b.node_id();
    a.open_stream(peer, 12, false, Some(0)).unwrap();
    let n = 2_000u32;
    for i in 0..n {
        a.send_blocking(peer, 12, &[event(i, 64)], None).unwrap();
    }
    let from_a = |b: &MeshNode| b.peers()[0].dropped_unreported;
    wait_until(
        || b.stat("inbound_dropped") + b.stat("inbound_queued") == u64::from(n),
        "every event queued or dropped",
    );
    // Packets within the receive window are queued beyond the shard's
    // capacity (a sender that waits for credit never loses one); the rest
    // of the burst is dropped, and each queued event carries the number
    // dropped just before it.
    let dropped = b.stat("inbound_dropped");
    assert!(dropped > 0 && dropped < u64::from(n));
    let queued = recv_n(&b, (u64::from(n) - dropped) as usize);
    let mut expected = 0u32;
    for (number, e) in numbered(&queued).into_iter().zip(&queued) {
        assert_eq!(
            u64::from(number - expected),
            e.dropped_before,
            "gap before {number}"
        );
        expected = number + 1;
    }
    let unreported = u64::from(n - expected);
    assert_eq!(from_a(&b), unreported);
    a.send_blocking(peer, 12, &[event(n, 64)], None).unwrap();
    let next = recv_n(&b, 1);
    assert_eq!(numbered(&next), vec![n]);
    assert_eq!(next[0].dropped_before, unreported);
    assert_eq!(from_a(&b), 0);
}

/// Sends `n` numbered events of `size` bytes one per `send_blocking` call
/// on stream `stream` while `b` reads them; returns what `b` got.
fn stream_while_reading(
    a: &MeshNode,
    b: &Arc<MeshNode>,
    stream: u64,
    window: Option<u64>,
    n: u32,
    size: usize,
) -> Vec<InboundEvent> {
    let peer = b.node_id();
    a.open_stream(peer, stream, false, window).unwrap();
    let reader = {
        let b = b.clone();
        std::thread::spawn(move || recv_n(&b, n as usize))
    };
    for i in 0..n {
        a.send_blocking(
            peer,
            stream,
            &[event(i, size)],
            Some(Instant::now() + Duration::from_secs(60)),
        )
        .unwrap();
    }
    reader.join().unwrap()
}

/// Between Net nodes a default window widens while its sender is held back
/// by credit and the reader keeps up, and nothing is lost or reordered.
#[test]
fn a_default_window_widens_between_net_nodes_while_the_reader_keeps_up() {
    let (a, b) = pair("");
    let b = Arc::new(b);
    wait_until(|| a.peers()[0].identity == "net", "binding");
    let n = 20_000;
    let got = stream_while_reading(&a, &b, 21, None, n, 1200);
    assert_eq!(numbered(&got), (0..n).collect::<Vec<_>>());
    assert!(b.stat("windows_offered") > 0, "{}", b.stats_json());
    assert!(a.stat("windows_widened") > 0, "{}", a.stats_json());
    let held = b.stat("window_budget_used");
    assert!(held > 0 && held <= (4 << 20) - 65_536, "{held}");
    assert_eq!(b.stat("inbound_dropped"), 0);
}

/// A window the application chose is kept, whatever the receiver offers.
#[test]
fn an_explicit_window_never_widens() {
    let (a, b) = pair("");
    let b = Arc::new(b);
    wait_until(|| a.peers()[0].identity == "net", "binding");
    let n = 5_000;
    let got = stream_while_reading(&a, &b, 22, Some(65_536), n, 1200);
    assert_eq!(numbered(&got), (0..n).collect::<Vec<_>>());
    assert_eq!(a.stat("windows_widened"), 0, "{}", a.stats_json());
}

/// Growth needs both nodes: one with `max_window` at its window neither
/// offers nor takes offers, and its peer offers it nothing.
#[test]
fn window_growth_needs_both_nodes() {
    for (extra_a, extra_b) in [(r#","max_window":0"#, ""), ("", r#","max_window":65536"#)] {
        let (a, b) = pair_with(extra_a, extra_b);
        let b = Arc::new(b);
        wait_until(|| a.peers()[0].identity == "net", "binding");
        let n = 5_000;
        let got = stream_while_reading(&a, &b, 23, None, n, 1200);
        assert_eq!(numbered(&got), (0..n).collect::<Vec<_>>());
        assert_eq!(b.stat("windows_offered"), 0, "{}", b.stats_json());
        assert_eq!(a.stat("windows_widened"), 0, "{}", a.stats_json());
    }
}

/// Drops every outbound datagram larger than v0.11's 8 KiB: a path that
/// does not carry large datagrams.
struct DropLarge;

impl PacketFilter for DropLarge {
    fn outbound(&self, _to: std::net::SocketAddr, datagram: &[u8]) -> Verdict {
        if datagram.len() > 8192 {
            Verdict::Drop
        } else {
            Verdict::Pass
        }
    }
}

/// A batch of `n` 1200-byte events in one `send` on an unlimited-window
/// stream; returns how many datagrams `b` received for it.
fn datagrams_for_batch(a: &MeshNode, b: &MeshNode, stream: u64, n: u32) -> u64 {
    let peer = b.node_id();
    a.open_stream(peer, stream, false, Some(0)).unwrap();
    let before = b.stat("datagrams_received");
    let batch: Vec<Vec<u8>> = (0..n).map(|i| event(i, 1200)).collect();
    a.send(peer, stream, &batch).unwrap();
    let got = recv_n(b, n as usize);
    assert_eq!(numbered(&got), (0..n).collect::<Vec<_>>());
    b.stat("datagrams_received") - before
}

/// Two Net nodes on loopback (MTU 64 KiB) probe their path and send
/// datagrams of up to 65 000 bytes: 50 events of 1200 bytes in one
/// datagram instead of eight.
#[test]
fn net_nodes_on_loopback_agree_on_large_datagrams_and_use_them() {
    let (a, b) = pair("");
    wait_until(|| a.peers()[0].max_datagram == 65_000, "a's probe answered");
    wait_until(|| b.peers()[0].max_datagram == 65_000, "b's probe answered");
    assert!(a.stat("paths_enlarged") >= 1);
    assert_eq!(a.stat("path_probes_failed"), 0);
    // Nothing else is sent to b meanwhile but heartbeats, at most one.
    let datagrams = datagrams_for_batch(&a, &b, 31, 50);
    assert!(datagrams <= 2, "{datagrams} datagrams for 60 kB");
    assert_eq!(b.stat("oversized"), 0);
}

/// A node that does not offer large datagrams gets v0.11's 8 KiB ones and
/// is never probed.
#[test]
fn a_node_without_large_datagrams_keeps_8_kib_datagrams() {
    let (a, b) = pair_with("", r#","large_datagrams":false"#);
    wait_until(|| a.peers()[0].identity == "net", "binding");
    wait_until(|| b.peers()[0].identity == "net", "binding");
    let datagrams = datagrams_for_batch(&a, &b, 32, 50);
    assert!(datagrams >= 8, "{datagrams} datagrams for 60 kB");
    assert_eq!(a.peers()[0].max_datagram, 8192);
    assert_eq!(a.stat("path_probes_sent"), 0);
    assert_eq!(b.stat("path_probes_sent"), 0);
}

/// A path that drops datagrams over 8 KiB: the probe fails and the peer
/// keeps 8 KiB datagrams; a path that stops carrying them is found out by
/// the next re-probe and falls back. Traffic flows throughout.
#[test]
fn a_path_that_drops_large_datagrams_falls_back_to_8_kib() {
    let probe_every = r#","path_probe_interval_ms":200"#;
    // Dropped from the start.
    let a = node(probe_every);
    let b = node(probe_every);
    a.set_filter(Some(Arc::new(DropLarge)));
    a.connect(b.local_addr(), &b.public_key(), b.node_id())
        .unwrap();
    wait_until(|| a.stat("path_probes_failed") >= 1, "a's probe given up");
    assert_eq!(a.peers()[0].max_datagram, 8192);
    assert!(datagrams_for_batch(&a, &b, 33, 50) >= 8);
    // Carried at first, then dropped.
    let (a, b) = pair(probe_every);
    wait_until(|| a.peers()[0].max_datagram == 65_000, "a's probe answered");
    a.set_filter(Some(Arc::new(DropLarge)));
    wait_until(
        || a.stat("path_probes_failed") >= 1,
        "a's re-probe given up",
    );
    assert_eq!(a.peers()[0].max_datagram, 8192);
    assert!(datagrams_for_batch(&a, &b, 34, 50) >= 8);
}
