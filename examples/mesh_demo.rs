//! `make demo`, mesh part: five nodes on 127.0.0.1 forming a line and a
//! diamond, a token-gated channel, publishing over a relay, and a relay
//! killed mid-stream with the reroute time printed.
//!
//! ```text
//!        L ── P ──┬── R1 ──┬── S
//!                 └── R2 ──┘
//! ```
//!
//! L–P–R–S is the line (L learns S at 3 hops from pingwaves alone), P–R1–S
//! and P–R2–S the diamond. P registers `demo/telemetry`, which needs a
//! token issued by P's own identity: L and S present one and are accepted;
//! R1 presents none and R2 a token it minted for itself, and both are
//! refused with the reason printed. S subscribes over a relayed session
//! through R1 (`connect_via`). P then publishes a numbered event every few
//! milliseconds on a reliable channel; R1 is shut down, and the time from
//! its death to the first event S receives that was published after it
//! (so cannot have come through R1) is printed, in ms and in heartbeat
//! intervals.
//!
//! Everything is checked: the demo exits non-zero if a refusal does not
//! happen, or any subscriber loses, duplicates or reorders an event. Every
//! wait is on a condition (with a deadline), not a fixed sleep.
//!
//! Run: `cargo run --release --example mesh_demo`

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use net::identity::{ChannelName, EntityKeypair, PermissionToken, TokenScope};
use net::mesh::channels::ChannelConfig;
use net::mesh::{ChannelError, InboundEvent, MeshConfig, MeshError, MeshNode};

const PSK_HEX: &str = "6d6573682d64656d6f2d7073b2d5e4f1a3c6b9087162534455667788990011aa";
const HEARTBEAT_MS: u64 = 100;
/// One numbered event every this often while the relay dies.
const PUBLISH_EVERY: Duration = Duration::from_millis(5);
const BEFORE_CUT: u32 = 200;
const AFTER_CUT: u32 = 300;

type Failure = Box<dyn std::error::Error>;

fn fail(what: impl Into<String>) -> Failure {
    what.into().into()
}

/// A node with a demo identity derived from `seed` (fixed, so P can sign
/// tokens with its own key) and fast heartbeats.
fn node(seed: u8) -> Result<MeshNode, Failure> {
    let seed_hex: String = std::iter::repeat_n(format!("{seed:02x}"), 32).collect();
    let json = format!(
        r#"{{"psk_hex":"{PSK_HEX}","identity_seed_hex":"{seed_hex}","heartbeat_interval_ms":{HEARTBEAT_MS},"session_timeout_ms":{}}}"#,
        HEARTBEAT_MS * 6
    );
    let n = MeshNode::new(MeshConfig::from_json(&json)?)?;
    n.start()?;
    Ok(n)
}

/// Polls `ready` until it holds; fails with `what` after 15 s.
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) -> Result<Duration, Failure> {
    let started = Instant::now();
    while !ready() {
        if started.elapsed() > Duration::from_secs(15) {
            return Err(fail(format!("timed out waiting for: {what}")));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(started.elapsed())
}

/// `a` connects to `b`; returns once both ends have a Net session.
fn link(a: &MeshNode, b: &MeshNode) -> Result<(), Failure> {
    a.connect(b.local_addr(), &b.public_key(), b.node_id())?;
    wait_for("a bound Net session on both ends", || {
        bound(a, b.node_id()) && bound(b, a.node_id())
    })?;
    Ok(())
}

fn bound(n: &MeshNode, peer: u64) -> bool {
    n.peers()
        .iter()
        .any(|p| p.node_id == peer && p.identity == "net")
}

/// `(next_hop, hops, alternates)` of `n`'s best route to `dest`.
fn route(n: &MeshNode, dest: u64) -> Option<(u64, u64, u64)> {
    let routes: serde_json::Value = serde_json::from_str(&n.routes_json()).ok()?;
    routes["routes"]
        .as_array()?
        .iter()
        .find(|r| r["destination"].as_u64() == Some(dest))
        .map(|r| {
            (
                r["next_hop"].as_u64().unwrap_or(0),
                r["hops"].as_u64().unwrap_or(0),
                r["alternates"].as_u64().unwrap_or(0),
            )
        })
}

/// The relay `n` reaches `peer` through (None: direct or unknown).
fn relay_of(n: &MeshNode, peer: u64) -> Option<u64> {
    n.peers()
        .into_iter()
        .find(|p| p.node_id == peer)
        .and_then(|p| p.relay)
}

/// Receives on `n` until `stop` and the node is quiet; each event with the
/// instant it arrived.
fn collect(n: Arc<MeshNode>, stop: Arc<AtomicBool>) -> Vec<(InboundEvent, Instant)> {
    let mut out = Vec::new();
    loop {
        match n.recv(256, Some(Duration::from_millis(300))) {
            Ok(events) => {
                let at = Instant::now();
                out.extend(events.into_iter().map(|e| (e, at)));
            }
            Err(MeshError::Timeout) if stop.load(Ordering::Acquire) => return out,
            Err(_) => {}
        }
    }
}

fn numbers(events: &[(InboundEvent, Instant)]) -> Vec<u32> {
    events
        .iter()
        .map(|(e, _)| u32::from_le_bytes(e.data[..4].try_into().unwrap_or_default()))
        .collect()
}

/// Checks a subscriber got exactly 0..total, once each, in order.
fn exactly_once(who: &str, got: &[u32], total: u32) -> Result<(), Failure> {
    if got == (0..total).collect::<Vec<_>>().as_slice() {
        return Ok(());
    }
    let mut seen = vec![0u32; total as usize];
    for n in got {
        if let Some(c) = seen.get_mut(*n as usize) {
            *c += 1;
        }
    }
    let lost = seen.iter().filter(|c| **c == 0).count();
    let duplicated = seen.iter().filter(|c| **c > 1).count();
    Err(fail(format!(
        "{who}: {} events, {lost} lost, {duplicated} duplicated, expected 0..{total} in order",
        got.len()
    )))
}

fn refusal(who: &str, result: Result<(), ChannelError>, why_expected: &str) -> Result<(), Failure> {
    match result {
        Err(ChannelError::Rejected(reason)) => {
            println!("   {who} refused: {reason:?} ({why_expected})");
            Ok(())
        }
        other => Err(fail(format!(
            "{who} should have been refused ({why_expected}), got {other:?}"
        ))),
    }
}

fn run() -> Result<(), Failure> {
    let t0 = Instant::now();
    println!("== mesh: five nodes on 127.0.0.1, a line and a diamond");
    let p = Arc::new(node(0x50)?);
    let l = Arc::new(node(0x4c)?);
    let r1 = node(0x31)?;
    let r2 = node(0x32)?;
    let s = Arc::new(node(0x53)?);
    for (label, n) in [("P", &*p), ("L", &*l), ("R1", &r1), ("R2", &r2), ("S", &*s)] {
        println!("   {label:<2} {:#018x} at {}", n.node_id(), n.local_addr());
    }

    link(&l, &p)?;
    link(&r1, &p)?;
    link(&r2, &p)?;
    link(&s, &r1)?;
    link(&s, &r2)?;
    println!("[1] links up: L-P, P-R1, P-R2, R1-S, R2-S (direct sessions, identities bound)");

    let learned = wait_for("L learns S at 3 hops and P learns S at 2", || {
        route(&l, s.node_id()).map(|r| r.1) == Some(3)
            && route(&p, s.node_id()).map(|r| r.1) == Some(2)
            && route(&p, s.node_id()).map(|r| r.2) == Some(1)
    })?;
    println!(
        "[2] routes from pingwaves in {learned:.0?}: L reaches S at 3 hops (the line), \
         P reaches S at 2 hops by two paths (the diamond, 1 alternate)"
    );

    let channel = ChannelName::new("demo/telemetry")?;
    p.register_channel(
        &channel,
        ChannelConfig {
            require_token: true,
            reliable: true,
            ..ChannelConfig::default()
        },
    )?;
    let p_key = EntityKeypair::from_seed(&[0x50; 32]);
    let token_for = |n: &MeshNode| {
        PermissionToken::issue(
            &p_key,
            n.entity_id(),
            TokenScope::SUBSCRIBE,
            channel.hash(),
            Duration::from_secs(600),
            0,
        )
    };
    println!("[3] P registers {channel} (token required; trusted issuer: P's own identity)");
    l.subscribe(p.node_id(), &channel, Some(&token_for(&l)?), None)?;
    println!("   L subscribed with a SUBSCRIBE token issued by P: accepted");
    refusal(
        "R1",
        r1.subscribe(p.node_id(), &channel, None, None),
        "no token",
    )?;
    let r2_key = EntityKeypair::from_seed(&[0x32; 32]);
    let self_minted = PermissionToken::issue(
        &r2_key,
        r2.entity_id(),
        TokenScope::SUBSCRIBE,
        channel.hash(),
        Duration::from_secs(600),
        0,
    )?;
    refusal(
        "R2",
        r2.subscribe(p.node_id(), &channel, Some(&self_minted), None),
        "a token it issued itself: untrusted issuer",
    )?;

    s.connect_via(r1.node_id(), &p.public_key(), p.node_id(), None)?;
    wait_for("the relayed session S-P is bound on both ends", || {
        bound(&p, s.node_id()) && relay_of(&p, s.node_id()) == Some(r1.node_id())
    })?;
    s.subscribe(p.node_id(), &channel, Some(&token_for(&s)?), None)?;
    println!(
        "[4] S opened a relayed session to P through R1 (connect_via) and subscribed \
         over it with its token: accepted"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let readers = [l.clone(), s.clone()].map(|n| {
        let stop = stop.clone();
        std::thread::spawn(move || collect(n, stop))
    });
    let published = Arc::new(AtomicU32::new(0));
    let publish_until = |end: u32| -> Result<(), Failure> {
        let mut next = Instant::now();
        while published.load(Ordering::Acquire) < end {
            let i = published.load(Ordering::Acquire);
            let report = p.publish(&channel, &[i.to_le_bytes()], true)?;
            if report.delivered != 2 || !report.errors.is_empty() {
                return Err(fail(format!(
                    "publish {i}: {} of 2 subscribers took it: {:?}",
                    report.delivered, report.errors
                )));
            }
            published.store(i + 1, Ordering::Release);
            next += PUBLISH_EVERY;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        Ok(())
    };
    publish_until(BEFORE_CUT)?;
    println!(
        "[5] P published {BEFORE_CUT} events (reliable, one per {PUBLISH_EVERY:?}): \
         to L directly, to S over R1"
    );

    // The cut: R1 dies while P keeps publishing.
    let killed_at = Instant::now();
    let first_after_cut = published.load(Ordering::Acquire);
    r1.shutdown();
    drop(r1);
    publish_until(BEFORE_CUT + AFTER_CUT)?;
    let total = BEFORE_CUT + AFTER_CUT;
    // The session stays the one opened through R1 (PeerInfo::relay names
    // R1 still); its packets follow P's best route to S, which now starts
    // at R2.
    let new_relay = route(&p, s.node_id()).map(|r| r.0);
    stop.store(true, Ordering::Release);
    let [from_l, from_s] = readers.map(|r| r.join().unwrap_or_default());

    let got_l = numbers(&from_l);
    let got_s = numbers(&from_s);
    let rerouted = from_s
        .iter()
        .zip(&got_s)
        .find(|(_, n)| **n >= first_after_cut)
        .map(|((_, at), _)| at.saturating_duration_since(killed_at))
        .ok_or_else(|| fail("S never received an event published after the cut"))?;
    println!(
        "[6] R1 shut down after event {}; P kept publishing {AFTER_CUT} more. P's route to S now goes through {}",
        first_after_cut - 1,
        match new_relay {
            Some(r) if r == r2.node_id() => "R2".to_string(),
            Some(r) => format!("{r:#x}"),
            None => "none".to_string(),
        }
    );
    println!(
        "   reroute: {:.0} ms from R1's death to the first event on the new path \
         ({:.1} heartbeat intervals of {HEARTBEAT_MS} ms)",
        rerouted.as_secs_f64() * 1e3,
        rerouted.as_secs_f64() * 1e3 / HEARTBEAT_MS as f64
    );
    if new_relay != Some(r2.node_id()) {
        return Err(fail("P does not reach S through R2 after the cut"));
    }
    exactly_once("L", &got_l, total)?;
    exactly_once("S", &got_s, total)?;
    let tagged = from_l
        .iter()
        .chain(&from_s)
        .all(|(e, _)| e.channel.as_ref() == Some(&channel) && e.peer == p.node_id());
    if !tagged {
        return Err(fail("an event without the channel or from another node"));
    }
    if !matches!(
        r2.recv(1, Some(Duration::from_millis(100))),
        Err(MeshError::Timeout)
    ) {
        return Err(fail("R2, refused, received an event"));
    }
    println!(
        "[7] verified: L and S each got all {total} events exactly once, in order, \
         tagged {channel}; the refused R2 got none"
    );
    let json: serde_json::Value = serde_json::from_str(&p.channels_json())?;
    println!(
        "   P's channel counters: accepted {}, refused {}; done in {:.1} s",
        json["counters"]["accepted"],
        json["counters"]["refused"],
        t0.elapsed().as_secs_f64()
    );
    for n in [&*p, &*l, &r2, &*s] {
        n.shutdown();
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mesh demo FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
