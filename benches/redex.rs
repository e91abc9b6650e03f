//! `cargo bench --bench redex`: RedEX appends and tail latency next to
//! baselines measured in the same run (ratio = our throughput / baseline's).
//!
//! Baselines: a raw `Vec` push of the same bytes (heap appends); one raw
//! `write()` per append of the same bytes (payload + 20-byte record + 8-byte
//! timestamp) to a single file (disk appends); write + fsync per append
//! (EveryN(1)).

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use net::redex::{FsyncPolicy, Redex, RedexFileConfig, TailPoll};

fn bench_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("net-redex-bench-{name}-{}", std::process::id()))
}

/// A fresh, empty directory for one round; the previous round's is removed
/// first and [`remove_bench_dir`] removes the last, so a run leaves nothing
/// behind (a full run writes ~1.5 GB over its rounds).
fn bench_dir(name: &str) -> PathBuf {
    let dir = bench_path(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn remove_bench_dir(name: &str) {
    let _ = std::fs::remove_dir_all(bench_path(name));
}

/// `cargo bench` passes `--bench`; `cargo test --all-targets` (make test)
/// runs this file as a smoke test of every row with 1/100 of the work.
fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Best of `rounds` runs of `op` called `n` times (`n / 100` outside a full
/// run); returns operations/second.
fn throughput(n: u64, rounds: u32, mut setup: impl FnMut() -> Box<dyn FnMut(u64)>) -> f64 {
    let n = if full_run() { n } else { (n / 100).max(10) };
    (0..rounds)
        .map(|_| {
            let mut op = setup();
            let start = Instant::now();
            for i in 0..n {
                op(i);
            }
            n as f64 / start.elapsed().as_secs_f64()
        })
        .fold(0.0, f64::max)
}

fn row(name: &str, ours: f64, baseline_name: &str, baseline: f64) {
    println!(
        "{name:<36} {:>12.0}/s   vs {baseline_name:<34} {:>12.0}/s   ratio {:.2}",
        ours,
        baseline,
        ours / baseline
    );
}

fn heap_append(size: usize, inline: bool) -> f64 {
    let payload = vec![0x5au8; size];
    throughput(2_000_000, 5, || {
        let file = Redex::new()
            .open_file("bench/heap", RedexFileConfig::heap())
            .unwrap();
        let payload = payload.clone();
        Box::new(move |_| {
            if inline {
                black_box(file.append_inline(&payload).unwrap());
            } else {
                black_box(file.append(&payload).unwrap());
            }
        })
    })
}

fn vec_push(size: usize) -> f64 {
    let payload = vec![0x5au8; size];
    throughput(2_000_000, 5, || {
        let mut log: Vec<u8> = Vec::new();
        let payload = payload.clone();
        Box::new(move |_| {
            log.extend_from_slice(black_box(&payload));
            black_box(log.len());
        })
    })
}

fn disk_append(size: usize, fsync: FsyncPolicy, n: u64) -> f64 {
    let payload = vec![0x5au8; size];
    let rate = throughput(n, 3, || {
        let dir = bench_dir("append");
        let redex = Redex::with_persistent_dir(&dir);
        let file = redex
            .open_file(
                "bench/disk",
                RedexFileConfig::persistent().with_fsync(fsync),
            )
            .unwrap();
        let payload = payload.clone();
        Box::new(move |_| {
            black_box(file.append(&payload).unwrap());
        })
    });
    remove_bench_dir("append");
    rate
}

fn raw_write(size: usize, fsync: bool, n: u64) -> f64 {
    let bytes = vec![0x5au8; size + 20 + 8];
    let rate = throughput(n, 3, || {
        let dir = bench_dir("raw");
        let mut file: File = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("raw"))
            .unwrap();
        let bytes = bytes.clone();
        Box::new(move |_| {
            file.write_all(black_box(&bytes)).unwrap();
            if fsync {
                file.sync_data().unwrap();
            }
        })
    });
    remove_bench_dir("raw");
    rate
}

fn tail_latency() -> (Duration, Duration) {
    let file = Redex::new()
        .open_file("bench/tail", RedexFileConfig::heap())
        .unwrap();
    let mut tail = file.tail_live();
    let (tx, rx) = std::sync::mpsc::channel::<Instant>();
    let reader = std::thread::spawn(move || {
        let mut samples = Vec::new();
        for sent in rx {
            match tail.next_timeout(Some(Duration::from_secs(5))).unwrap() {
                TailPoll::Item(_) => samples.push(sent.elapsed()),
                other => panic!("{other:?}"),
            }
        }
        samples
    });
    for i in 0..20_000u64 {
        let now = Instant::now();
        tx.send(now).unwrap();
        file.append(&i.to_le_bytes()).unwrap();
        if i % 64 == 0 {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    drop(tx);
    let mut samples = reader.join().unwrap();
    samples.sort_unstable();
    (
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
    )
}

/// A persistent channel of `n` 64-byte entries, closed; returns its base dir.
fn populated_channel(n: u64) -> PathBuf {
    let dir = bench_dir("open");
    let redex = Redex::with_persistent_dir(&dir);
    let file = redex
        .open_file("bench/open", RedexFileConfig::persistent())
        .unwrap();
    let payloads: Vec<Vec<u8>> = (0..1024u64)
        .map(|i| {
            let mut p = vec![0x5au8; 64];
            p[..8].copy_from_slice(&i.to_le_bytes());
            p
        })
        .collect();
    for _ in 0..n / 1024 {
        file.append_batch(&payloads).unwrap();
    }
    file.close().unwrap();
    dir
}

/// Seconds to open (recover) the channel in `dir`, best of `rounds`.
fn open_time(dir: &std::path::Path, rounds: u32) -> f64 {
    (0..rounds)
        .map(|_| {
            let redex = Redex::with_persistent_dir(dir);
            let start = Instant::now();
            let file = redex
                .open_file("bench/open", RedexFileConfig::persistent())
                .unwrap();
            let took = start.elapsed().as_secs_f64();
            black_box(file.next_seq());
            file.close().unwrap();
            took
        })
        .fold(f64::MAX, f64::min)
}

/// The raw baseline: read the generation's idx and dat and checksum every
/// payload once (what any verifying open must at least do).
fn raw_read_and_checksum(dir: &std::path::Path, rounds: u32) -> f64 {
    let generation = dir.join("bench/open/v0000000001");
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            let idx = std::fs::read(generation.join("idx")).unwrap();
            let dat = std::fs::read(generation.join("dat")).unwrap();
            let mut acc = 0u64;
            for record in idx.chunks_exact(20) {
                let off = u32::from_le_bytes(record[8..12].try_into().unwrap()) as usize;
                let len = u32::from_le_bytes(record[12..16].try_into().unwrap()) as usize;
                acc ^= xxhash_rust::xxh3::xxh3_64(&dat[off..off + len]);
            }
            black_box(acc);
            start.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

fn recovery_figures() {
    let n: u64 = if full_run() { 1 << 20 } else { 1 << 14 };
    let dir = populated_channel(n);
    let ours = open_time(&dir, 5);
    let raw = raw_read_and_checksum(&dir, 5);
    println!(
        "open, {:>4} Ki x 64 B entries, clean   {:>9.1} ms   vs raw read idx+dat + xxh3 each {:>9.1} ms   ratio {:.2} (time)",
        n >> 10,
        ours * 1e3,
        raw * 1e3,
        ours / raw
    );
    // One flipped payload byte in the middle: recovery drops that entry and
    // (since the issue-11 rework) rewrites idx and ts once; later opens are
    // clean again. Each round opens a fresh corrupted copy.
    let generation = dir.join("bench/open/v0000000001");
    let pristine: Vec<(&str, Vec<u8>)> = ["idx", "dat", "ts"]
        .into_iter()
        .map(|name| (name, std::fs::read(generation.join(name)).unwrap()))
        .collect();
    let corrupt = (0..3)
        .map(|_| {
            for (name, bytes) in &pristine {
                let mut bytes = bytes.clone();
                if *name == "dat" {
                    let mid = bytes.len() / 2;
                    bytes[mid] ^= 0x01;
                }
                std::fs::write(generation.join(name), &bytes).unwrap();
                // On disk before the clock starts: the open pays only for
                // its own writes.
                File::open(generation.join(name))
                    .unwrap()
                    .sync_all()
                    .unwrap();
            }
            open_time(&dir, 1)
        })
        .fold(f64::MAX, f64::min);
    println!(
        "open, {:>4} Ki entries, corrupt payload {:>9.1} ms   vs raw read idx+dat + xxh3 each {:>9.1} ms   ratio {:.2} (time)",
        n >> 10,
        corrupt * 1e3,
        raw * 1e3,
        corrupt / raw
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    recovery_figures();
    println!("RedEX appends (best of N rounds; ratio = our rate / baseline rate)");
    row(
        "heap append 8 B inline",
        heap_append(8, true),
        "Vec push 8 B",
        vec_push(8),
    );
    row(
        "heap append 32 B",
        heap_append(32, false),
        "Vec push 32 B",
        vec_push(32),
    );
    row(
        "heap append 1 KiB",
        heap_append(1024, false),
        "Vec push 1 KiB",
        vec_push(1024),
    );
    row(
        "disk append 32 B, no fsync",
        disk_append(32, FsyncPolicy::Never, 200_000),
        "raw write() 60 B",
        raw_write(32, false, 200_000),
    );
    row(
        "disk append 1 KiB, no fsync",
        disk_append(1024, FsyncPolicy::Never, 200_000),
        "raw write() 1052 B",
        raw_write(1024, false, 200_000),
    );
    row(
        "disk append 1 KiB, EveryN(1)",
        disk_append(1024, FsyncPolicy::EveryN(1), 2_000),
        "raw write() + fsync 1052 B",
        raw_write(1024, true, 2_000),
    );
    let (p50, p99) = tail_latency();
    println!("tail latency, append to delivery (heap, 20k appends): p50 {p50:?}, p99 {p99:?}");
}
