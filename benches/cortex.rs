//! `cargo bench --bench cortex`: CortEX write, fold and query figures, with a
//! same-run baseline where one exists (raw RedEX append of the same bytes).

use std::hint::black_box;
use std::time::{Duration, Instant};

use net::cortex::{
    EventMeta, ModelConfig, TASK_CREATED, TaskOrder, TaskQuery, TaskStatus, TasksAdapter,
};
use net::redex::{Redex, RedexFileConfig};

fn best<T>(rounds: u32, mut run: impl FnMut() -> (f64, T)) -> f64 {
    (0..rounds).map(|_| run().0).fold(0.0, f64::max)
}

fn created_record(id: u64) -> Vec<u8> {
    // postcard(TaskCreated{id, "benchmark task", now}) as the model writes it.
    #[derive(serde::Serialize)]
    struct Created<'a> {
        id: u64,
        title: &'a str,
        now_ns: u64,
    }
    let tail = postcard::to_stdvec(&Created {
        id,
        title: "benchmark task",
        now_ns: 1_700_000_000_000_000_000,
    })
    .unwrap();
    EventMeta::new(TASK_CREATED, 1, id).encode_record(&tail)
}

fn main() {
    const N: u64 = 200_000;
    println!("CortEX (best of 3 rounds)");

    let create_rate = best(3, || {
        let redex = Redex::new();
        let tasks = TasksAdapter::open(&redex, 1, ModelConfig::default()).unwrap();
        let start = Instant::now();
        for id in 0..N {
            black_box(tasks.create(id, "benchmark task").unwrap());
        }
        let rate = N as f64 / start.elapsed().as_secs_f64();
        (rate, tasks)
    });
    let raw_rate = best(3, || {
        let redex = Redex::new();
        let file = redex
            .open_file("bench/raw", RedexFileConfig::heap())
            .unwrap();
        let records: Vec<Vec<u8>> = (0..N).map(created_record).collect();
        let start = Instant::now();
        for record in &records {
            black_box(file.append(record).unwrap());
        }
        (N as f64 / start.elapsed().as_secs_f64(), file)
    });
    println!(
        "tasks.create                       {create_rate:>12.0}/s   vs raw RedEX append (same bytes) {raw_rate:>12.0}/s   ratio {:.2}",
        create_rate / raw_rate
    );

    // create followed by wait_for_seq.
    let redex = Redex::new();
    let tasks = TasksAdapter::open(&redex, 1, ModelConfig::default()).unwrap();
    let mut samples: Vec<Duration> = (0..20_000u64)
        .map(|id| {
            let start = Instant::now();
            let seq = tasks.create(id, "latency").unwrap();
            assert!(tasks.wait_for_seq(seq, Duration::from_secs(5)));
            start.elapsed()
        })
        .collect();
    samples.sort_unstable();
    println!(
        "create + wait_for_seq latency      p50 {:?}, p99 {:?}",
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100]
    );

    // Fold rate on replay: a fresh adapter folding a file it did not write.
    const REPLAY: u64 = 1_000_000;
    let redex = Redex::new();
    let file = redex
        .open_file("cortex/tasks", RedexFileConfig::heap())
        .unwrap();
    let records: Vec<Vec<u8>> = (0..REPLAY).map(created_record).collect();
    for chunk in records.chunks(50_000) {
        file.append_batch(chunk).unwrap();
    }
    let fold_rate = best(3, || {
        let start = Instant::now();
        let tasks = TasksAdapter::open(&redex, 2, ModelConfig::default()).unwrap();
        assert!(tasks.wait_for_seq(REPLAY - 1, Duration::from_secs(120)));
        let rate = REPLAY as f64 / start.elapsed().as_secs_f64();
        tasks.adapter().stop();
        (rate, ())
    });
    println!("fold rate on replay (1M events)    {fold_rate:>12.0} events/s   (target 1 M/s)");

    // Queries over 10k tasks.
    let redex = Redex::new();
    let tasks = TasksAdapter::open(&redex, 1, ModelConfig::default()).unwrap();
    let mut last = 0;
    for id in 0..10_000u64 {
        last = tasks
            .create_at(id, &format!("task {id}"), 1_000 + id)
            .unwrap();
        if id % 3 == 0 {
            last = tasks.complete(id).unwrap();
        }
    }
    assert!(tasks.wait_for_seq(last, Duration::from_secs(10)));
    let unique = {
        let n = 1_000_000u64;
        let start = Instant::now();
        for i in 0..n {
            black_box(tasks.find_unique(black_box(i % 10_000)));
        }
        start.elapsed().as_nanos() as f64 / n as f64
    };
    println!("find_unique (10k tasks)            {unique:>12.0} ns");
    let query = TaskQuery::new()
        .status(TaskStatus::Pending)
        .order_by(TaskOrder::CreatedDesc)
        .limit(50);
    let many = {
        let n = 2_000u64;
        let start = Instant::now();
        for _ in 0..n {
            black_box(tasks.find_many(&query));
        }
        start.elapsed().as_micros() as f64 / n as f64
    };
    println!("find_many pending, newest 50 (10k) {many:>12.1} µs");
    let scan = {
        let n = 2_000u64;
        let start = Instant::now();
        for _ in 0..n {
            black_box(tasks.count_where(&TaskQuery::new().title_contains("task 9")));
        }
        start.elapsed().as_micros() as f64 / n as f64
    };
    println!("count_where title_contains (10k)   {scan:>12.1} µs");
}
