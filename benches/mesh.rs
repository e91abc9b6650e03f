//! Mesh benchmarks, each next to a baseline measured in the same run.
//!
//! * AEADs: seal + open of 1200 bytes with `ring`'s ChaCha20-Poly1305 (v0.11's
//!   cipher), `ring`'s AES-256-GCM (negotiated between Net nodes with AES
//!   instructions) and the `chacha20poly1305` crate.
//! * Encrypted stream throughput, 1200-byte events one per packet, between
//!   two nodes on loopback vs raw UDP of 1216-byte datagrams plus ring
//!   seal/open.
//! * Small-event rate: 64-byte events batched into packets (target 3 M/s).
//! * Handshakes per second through a node vs raw in-process Noise NKpsk0.
//! * One-way latency (half a round trip), p50 and p99.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use net::mesh::session::Session;
use net::mesh::*;

const PSK: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

/// A node with 4 MiB socket buffers and the given stream window (0 =
/// unlimited, no grants).
fn node_with(window: u64, extra: &str) -> MeshNode {
    let json = format!(
        r#"{{"psk_hex":"{PSK}","recv_buffer":4194304,"send_buffer":4194304,"window":{window},"shard_capacity":1000000{extra}}}"#
    );
    MeshNode::new(MeshConfig::from_json(&json).unwrap()).unwrap()
}

fn node(extra: &str) -> MeshNode {
    node_with(0, extra)
}

fn pair() -> (MeshNode, MeshNode) {
    pair_with(0)
}

fn pair_with(window: u64) -> (MeshNode, MeshNode) {
    let (a, b) = (node_with(window, ""), node_with(window, ""));
    a.connect(b.local_addr(), &b.public_key(), b.node_id())
        .unwrap();
    (a, b)
}

fn best_of<F: FnMut() -> f64>(rounds: usize, mut f: F) -> f64 {
    (0..rounds).map(|_| f()).fold(0.0, f64::max)
}

/// `cargo bench` passes `--bench`; under `cargo test` the binary only runs
/// a short smoke pass so the test suite stays quick.
fn full() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// `n` when benchmarking, a small count in a smoke run.
fn scaled(n: u64) -> u64 {
    if full() { n } else { (n / 1000).max(20) }
}

/// Seal + open rate of 1200-byte packets under one of our packet keys.
fn packet_key_rate(cipher: Cipher, n: u64) -> f64 {
    let k = PacketKey::with_cipher(cipher, &[7u8; 32], 1);
    let aad = [0u8; 52];
    let mut buf = vec![0u8; 1200 + 16];
    let t = Instant::now();
    for i in 0..n {
        let tag = k.seal(i, &aad, &mut buf[..1200]);
        buf[1200..].copy_from_slice(&tag);
        k.open(i, &aad, &mut buf).unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// Seal + open per second of 1200 B: ring ChaCha20-Poly1305, ring
/// AES-256-GCM, the `chacha20poly1305` crate.
fn aead() -> (f64, f64, f64) {
    let key = [7u8; 32];
    let n = scaled(200_000);
    // Interleaved rounds, best of each: both ciphers see the same machine.
    let (mut chacha, mut aes) = (0f64, 0f64);
    for _ in 0..3 {
        chacha = chacha.max(packet_key_rate(Cipher::ChaCha20Poly1305, n));
        aes = aes.max(packet_key_rate(Cipher::Aes256Gcm, n));
    }
    let crate_rate = best_of(3, || {
        let c = chacha20poly1305::ChaCha20Poly1305::new(&key.into());
        let aad = [0u8; 52];
        let mut buf = vec![0u8; 1200];
        let t = Instant::now();
        for i in 0..n {
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&i.to_le_bytes());
            let tag = c
                .encrypt_in_place_detached(&nonce.into(), &aad, &mut buf)
                .unwrap();
            c.decrypt_in_place_detached(&nonce.into(), &aad, &mut buf, &tag)
                .unwrap();
        }
        n as f64 / t.elapsed().as_secs_f64()
    });
    (chacha, aes, crate_rate)
}

/// Raw UDP + ring seal/open of 1216-byte datagrams: datagrams/s received.
fn raw_udp_baseline(secs: f64) -> f64 {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket2::SockRef::from(&rx)
        .set_recv_buffer_size(4 << 20)
        .unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let to = rx.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let key = [3u8; 32];
    let sender = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket2::SockRef::from(&tx)
                .set_send_buffer_size(4 << 20)
                .unwrap();
            // 1216 bytes: an 8-byte counter, 1192 sealed bytes, the tag.
            let k = PacketKey::new(&key, 1);
            let aad = [0u8; 52];
            let mut buf = vec![0u8; 1216];
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                buf[..8].copy_from_slice(&i.to_le_bytes());
                let tag = k.seal(i, &aad, &mut buf[8..1200]);
                buf[1200..].copy_from_slice(&tag);
                let _ = tx.send_to(&buf, to);
                i += 1;
            }
        })
    };
    let k = PacketKey::new(&key, 1);
    let aad = [0u8; 52];
    let mut buf = vec![0u8; 2048];
    let mut got = 0u64;
    let t = Instant::now();
    while t.elapsed().as_secs_f64() < secs {
        if let Ok(n) = rx.recv(&mut buf)
            && n == 1216
        {
            let counter = u64::from_le_bytes(buf[..8].try_into().unwrap());
            if k.open(counter, &aad, &mut buf[8..n]).is_ok() {
                got += 1;
            }
        }
    }
    let rate = got as f64 / t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    rate
}

/// Events/s `node` receives over `secs`, taking up to `max` per call.
fn receive_rate(node: &MeshNode, secs: f64, max: usize) -> f64 {
    let mut got = 0u64;
    let t = Instant::now();
    while t.elapsed().as_secs_f64() < secs {
        if let Ok(events) = node.recv(max, Some(Duration::from_millis(100))) {
            got += events.len() as u64;
        }
    }
    got as f64 / t.elapsed().as_secs_f64()
}

/// Our stream: 1200-byte events, one per packet; events/s received.
/// With a window, the sender blocks on credit and the receiver grants.
fn stream_throughput(secs: f64, window: Option<u64>) -> f64 {
    let (a, b) = pair_with(window.unwrap_or(0));
    let b = Arc::new(b);
    let stop = Arc::new(AtomicBool::new(false));
    let peer = b.node_id();
    a.open_stream(peer, 1, false, Some(window.unwrap_or(0)))
        .unwrap();
    let a = Arc::new(a);
    let sender = {
        let (a, stop) = (a.clone(), stop.clone());
        std::thread::spawn(move || {
            let event = vec![0u8; 1200];
            let deadline = || Some(Instant::now() + Duration::from_millis(100));
            while !stop.load(Ordering::Relaxed) {
                let _ = match window {
                    None => a.send(peer, 1, &[&event]),
                    Some(_) => a.send_blocking(peer, 1, &[&event], deadline()),
                };
            }
        })
    };
    let rate = receive_rate(&b, secs, 4096);
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    rate
}

/// Events of `size` bytes, one per `send_blocking` call, default 64 KiB
/// window (the receiver grants as it goes); events/s received and the
/// sender's datagrams per event.
fn per_call(secs: f64, size: usize) -> (f64, f64) {
    let (a, b) = pair_with(DEFAULT_WINDOW);
    let peer = b.node_id();
    a.open_stream(peer, 4, false, None).unwrap();
    let a = Arc::new(a);
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (a, stop) = (a.clone(), stop.clone());
        std::thread::spawn(move || {
            let event = vec![5u8; size];
            while !stop.load(Ordering::Relaxed) {
                let _ = a.send_blocking(
                    peer,
                    4,
                    &[&event],
                    Some(Instant::now() + Duration::from_millis(100)),
                );
            }
        })
    };
    let rate = receive_rate(&b, secs, 65_536);
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    let per_event = a.stat("datagrams_sent") as f64 / a.stat("events_sent").max(1) as f64;
    (rate, per_event)
}

/// 64-byte events, batched 1000 per send; events/s received.
fn small_events(secs: f64) -> f64 {
    let (a, b) = pair();
    let peer = b.node_id();
    a.open_stream(peer, 2, false, Some(0)).unwrap();
    let a = Arc::new(a);
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (a, stop) = (a.clone(), stop.clone());
        std::thread::spawn(move || {
            let events = vec![[1u8; 64]; 1000];
            while !stop.load(Ordering::Relaxed) {
                let _ = a.send(peer, 2, &events);
            }
        })
    };
    let rate = receive_rate(&b, secs, 65_536);
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    rate
}

/// Routed handshakes against a node, each from a fresh node_id, over UDP.
///
/// The node answers msg2 and then sends (and re-sends, until
/// `hello_timeout`) its identity hello to every caller; this initiator
/// sends none back and skips them. Its socket gets the node's 4 MiB
/// receive buffer so those hellos cannot crowd out a msg2; a msg2 that
/// still does not come within 250 ms is a lost handshake (counted, its
/// wait included in the time) and the next one starts.
/// Returns the rate and the CPU time per handshake (the node's threads and
/// this initiator together).
fn node_handshakes(n: u64) -> (f64, Duration) {
    let b = node(r#","max_pending_handshakes":100000"#);
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    sock.set_recv_buffer_size(4 << 20).unwrap();
    sock.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    let sock: UdpSocket = sock.into();
    sock.set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    let psk = [0x5a; 32];
    let mut buf = [0u8; 2048];
    let mut lost = 0u64;
    let cpu = process_cpu();
    let t = Instant::now();
    for i in 0..n {
        let init = Initiator::new(
            HandshakeForm::Routed,
            &psk,
            1_000_000 + i,
            b.node_id(),
            &b.public_key(),
        )
        .unwrap();
        sock.send_to(init.msg1(), b.local_addr()).unwrap();
        loop {
            let Ok((len, _)) = sock.recv_from(&mut buf) else {
                lost += 1;
                break;
            };
            if len == 130 {
                let keys = init.finish(&buf[..len]).unwrap();
                let _ = Session::new(&keys, Role::Initiator);
                break;
            }
        }
    }
    let rate = (n - lost) as f64 / t.elapsed().as_secs_f64();
    let cpu = process_cpu().saturating_sub(cpu) / (n - lost).max(1) as u32;
    if lost > 0 {
        println!("  ({lost} of {n} handshakes got no msg2 within 250 ms)");
    }
    (rate, cpu)
}

/// CPU time the live threads of this process have used so far (Linux
/// schedstat; zero elsewhere). Under load a two-thread ping-pong and a
/// one-thread loop get different shares of the machine; CPU time per
/// handshake compares the work itself.
fn process_cpu() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let ns: u64 = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(ns)
}

/// Our two handshake state machines (`Initiator`, `Responder`: the routed
/// form, our X25519) in one thread, no sockets: what the node's crypto
/// costs, against [`raw_noise_handshakes`].
fn machine_handshakes(n: u64) -> (f64, Duration) {
    let responder = Responder::new([9u8; 32], [0x5a; 32], 2);
    let public = net::identity::x25519_public_key(&[9u8; 32]);
    let cpu = process_cpu();
    let t = Instant::now();
    for i in 0..n {
        let init =
            Initiator::new(HandshakeForm::Routed, &[0x5a; 32], 1_000 + i, 2, &public).unwrap();
        let accepted = responder.accept_routed(init.msg1()).unwrap();
        let _ = init.finish(&accepted.msg2).unwrap();
    }
    (
        n as f64 / t.elapsed().as_secs_f64(),
        process_cpu().saturating_sub(cpu) / n as u32,
    )
}

/// Two snow state machines in one thread; rate and CPU time per handshake.
fn raw_noise_handshakes(n: u64) -> (f64, Duration) {
    let secret = [9u8; 32];
    let public = net::identity::x25519_public_key(&secret);
    let psk = [0x5a; 32];
    let params: snow::params::NoiseParams =
        "Noise_NKpsk0_25519_ChaChaPoly_BLAKE2s".parse().unwrap();
    let cpu = process_cpu();
    let t = Instant::now();
    for _ in 0..n {
        let mut i = snow::Builder::new(params.clone())
            .remote_public_key(&public)
            .unwrap()
            .psk(0, &psk)
            .unwrap()
            .build_initiator()
            .unwrap();
        let mut r = snow::Builder::new(params.clone())
            .local_private_key(&secret)
            .unwrap()
            .psk(0, &psk)
            .unwrap()
            .build_responder()
            .unwrap();
        let (mut m1, mut m2, mut p) = ([0u8; 128], [0u8; 128], [0u8; 128]);
        let l1 = i.write_message(&[], &mut m1).unwrap();
        r.read_message(&m1[..l1], &mut p).unwrap();
        let l2 = r.write_message(&[], &mut m2).unwrap();
        i.read_message(&m2[..l2], &mut p).unwrap();
    }
    (
        n as f64 / t.elapsed().as_secs_f64(),
        process_cpu().saturating_sub(cpu) / n as u32,
    )
}

/// Half of a ping-pong round trip through two nodes (one event each way).
fn latency(n: usize) -> (Duration, Duration) {
    let (a, b) = pair();
    let (pa, pb) = (a.node_id(), b.node_id());
    a.open_stream(pb, 3, false, Some(0)).unwrap();
    b.open_stream(pa, 3, false, Some(0)).unwrap();
    let b = Arc::new(b);
    let stop = Arc::new(AtomicBool::new(false));
    let echoed = Arc::new(AtomicU64::new(0));
    let echo = {
        let (b, stop, echoed) = (b.clone(), stop.clone(), echoed.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(e) = b.recv_next(Some(Duration::from_millis(50))) {
                    let _ = b.send(pa, 3, &[&e.data]);
                    echoed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let mut samples = Vec::with_capacity(n);
    for i in 0..n + 100 {
        let t = Instant::now();
        a.send(pb, 3, &[&(i as u64).to_le_bytes()]).unwrap();
        if a.recv_next(Some(Duration::from_secs(1))).is_ok() && i >= 100 {
            samples.push(t.elapsed() / 2);
        }
    }
    stop.store(true, Ordering::Relaxed);
    echo.join().unwrap();
    samples.sort();
    let p = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (p(0.5), p(0.99))
}

/// Whether section `name` runs: all of them, unless names are given after
/// `--` (`cargo bench --bench mesh -- stream`).
fn wanted(name: &str) -> bool {
    let picked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    picked.is_empty() || picked.iter().any(|p| p == name)
}

fn main() {
    let secs = if full() { 1.5 } else { 0.2 };
    println!("mesh (best of rounds; loopback, 2 vCPUs)");
    if wanted("aead") {
        let (ring_rate, aes_rate, crate_rate) = aead();
        println!(
            "AEAD seal+open 1200 B: ring ChaCha20-Poly1305 {:.0}/s ({:.0} MB/s)   chacha20poly1305 crate {:.0}/s   ring / crate {:.2}",
            ring_rate,
            ring_rate * 1200.0 / 1e6,
            crate_rate,
            ring_rate / crate_rate
        );
        println!(
            "AEAD seal+open 1200 B: ring AES-256-GCM {:.0}/s ({:.0} MB/s)   AES / ChaCha {:.2}   (AES instructions: {})",
            aes_rate,
            aes_rate * 1200.0 / 1e6,
            aes_rate / ring_rate,
            if crypto::aes_hardware() { "yes" } else { "no" }
        );
    }
    if wanted("stream") {
        // Interleaved rounds, best of each: both see the same machine state.
        let (mut baseline, mut ours) = (0f64, 0f64);
        for _ in 0..if full() { 4 } else { 1 } {
            baseline = baseline.max(raw_udp_baseline(secs));
            ours = ours.max(stream_throughput(secs, None));
        }
        let windowed = best_of(2, || stream_throughput(secs, Some(65_536)));
        println!(
            "stream 1200 B events, 1/packet      {:.0} events/s ({:.0} MB/s)   vs raw UDP + seal/open {:.0} datagrams/s   ratio {:.2} (target 0.70)",
            ours,
            ours * 1200.0 / 1e6,
            baseline,
            ours / baseline
        );
        println!(
            "  same, 64 KiB windows with grants  {:.0} events/s   ratio {:.2}",
            windowed,
            windowed / baseline
        );
    }
    if wanted("percall") {
        for size in [64usize, 1200] {
            let mut best = (0f64, 0f64);
            for _ in 0..2 {
                let r = per_call(secs, size);
                if r.0 > best.0 {
                    best = r;
                }
            }
            println!(
                "{size} B events, one per send call   {:.3} M events/s   ({:.3} datagrams per event)",
                best.0 / 1e6,
                best.1
            );
        }
    }
    if wanted("small") {
        let small = best_of(2, || small_events(secs));
        println!(
            "small events, 64 B batched          {:.2} M events/s   (target 3 M/s)",
            small / 1e6
        );
    }
    if wanted("handshake") {
        let (hs_node, cpu_node) = node_handshakes(scaled(2000));
        let (hs_raw, cpu_raw) = raw_noise_handshakes(scaled(2000));
        println!(
            "handshakes through a node (UDP)     {:.0}/s   vs raw in-process NKpsk0 {:.0}/s   ratio {:.2}",
            hs_node,
            hs_raw,
            hs_node / hs_raw
        );
        println!(
            "  CPU per handshake (both ends)     {cpu_node:.1?}   vs raw {cpu_raw:.1?}   ratio {:.2}",
            cpu_raw.as_secs_f64() / cpu_node.as_secs_f64().max(1e-9)
        );
        let (hs_machines, cpu_machines) = machine_handshakes(scaled(2000));
        println!(
            "  our state machines, in-process    {:.0}/s   CPU {cpu_machines:.1?}   ratio to raw {:.2}",
            hs_machines,
            hs_machines / hs_raw
        );
    }
    if wanted("handshake-node") {
        // The node's half alone, for profiling.
        let (hs_node, cpu_node) = node_handshakes(scaled(2000));
        println!("handshakes through a node (UDP)     {hs_node:.0}/s   CPU {cpu_node:.1?}");
    }
    if wanted("latency") {
        let (p50, p99) = latency(scaled(2000) as usize);
        println!("one-way latency (half RTT)          p50 {p50:?}, p99 {p99:?}");
    }
}
