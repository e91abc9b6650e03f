//! RedEX behaviour: appends and reads in both modes, tails (handoff, Lagged,
//! long backfill), retention, the single-writer lock, next_seq monotonicity,
//! typed files, the ordered appender and the secondary index.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use net::redex::fault::{Fault, FaultyStorage, OpKind};
use net::redex::{
    OrderedAppender, Redex, RedexError, RedexFile, RedexFileConfig, RedexIndex, RetentionPolicy,
    TailItem, TailPoll, TypedItem, TypedRedexFile,
};
use serde::{Deserialize, Serialize};

fn temp_base(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("net-redex-file-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn heap(name: &str) -> RedexFile {
    Redex::new()
        .open_file(name, RedexFileConfig::heap())
        .unwrap()
}

fn entry(item: TailItem) -> (u64, Vec<u8>) {
    match item {
        TailItem::Entry(e) => (e.seq, e.payload),
        other => panic!("expected an entry, got {other:?}"),
    }
}

#[test]
fn appends_take_consecutive_seqs_in_both_modes() {
    let base = temp_base("modes");
    let redex = Redex::with_persistent_dir(&base);
    for config in [RedexFileConfig::heap(), RedexFileConfig::persistent()] {
        let file = redex
            .open_file(&format!("modes/{}", config.persistent), config)
            .unwrap();
        assert_eq!(file.append(b"a").unwrap(), 0);
        assert_eq!(file.append_inline(b"12345678").unwrap(), 1);
        assert!(matches!(
            file.append_inline(b"1234567"),
            Err(RedexError::InlineLength(7))
        ));
        assert_eq!(file.append_batch::<&[u8]>(&[]).unwrap(), None);
        assert_eq!(file.append_batch(&[b"b", b"c"]).unwrap(), Some(2));
        assert_eq!(file.append_batch_ordered(&[b"d"]).unwrap(), Some(4));
        assert_eq!(file.next_seq(), 5);
        assert_eq!(file.len(), 5);
        assert_eq!(file.read(1).unwrap().unwrap(), b"12345678");
        assert_eq!(file.read(9).unwrap(), None);
        let range: Vec<u64> = file
            .read_range(2..4)
            .unwrap()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(range, vec![2, 3]);
        file.close().unwrap();
        assert!(matches!(file.append(b"late"), Err(RedexError::Closed)));
        file.close().unwrap();
    }
    let _ = std::fs::remove_dir_all(base);
}

#[test]
fn opening_an_open_name_shares_the_file() {
    let redex = Redex::new();
    let a = redex
        .open_file("shared/name", RedexFileConfig::heap())
        .unwrap();
    let b = redex
        .open_file("shared/name", RedexFileConfig::heap())
        .unwrap();
    a.append(b"x").unwrap();
    assert_eq!(b.len(), 1);
    assert!(matches!(
        redex.open_file("bad//name", RedexFileConfig::heap()),
        Err(RedexError::InvalidChannel(_))
    ));
    assert!(matches!(
        redex.open_file("p", RedexFileConfig::persistent()),
        Err(RedexError::NoPersistentDir(_))
    ));
}

#[test]
fn tail_handoff_under_concurrent_appends_has_no_gap_and_no_duplicate() {
    const TOTAL: u64 = 20_000;
    let file = heap("tail/handoff");
    for i in 0..500u64 {
        file.append(&i.to_le_bytes()).unwrap();
    }
    let start = Arc::new(Barrier::new(4));
    let writer = {
        let (file, start) = (file.clone(), start.clone());
        thread::spawn(move || {
            start.wait();
            let mut i = 500u64;
            while i < TOTAL {
                if i.is_multiple_of(7) {
                    let batch: Vec<[u8; 8]> =
                        (i..(i + 5).min(TOTAL)).map(|v| v.to_le_bytes()).collect();
                    file.append_batch(&batch).unwrap();
                    i += batch.len() as u64;
                } else {
                    file.append(&i.to_le_bytes()).unwrap();
                    i += 1;
                }
            }
        })
    };
    // Readers starting in the backfill, at the live edge, and in the future.
    let readers: Vec<_> = [0u64, 250, 500]
        .into_iter()
        .map(|from| {
            let (file, start) = (file.clone(), start.clone());
            thread::spawn(move || {
                let mut tail = file.tail(from);
                start.wait();
                let mut expected = from;
                while expected < TOTAL {
                    let (seq, payload) = entry(tail.next().unwrap().unwrap());
                    assert_eq!(seq, expected, "gap or duplicate at the handoff");
                    assert_eq!(payload, seq.to_le_bytes());
                    expected += 1;
                }
                assert_eq!(tail.try_next().unwrap(), TailPoll::Timeout);
            })
        })
        .collect();
    writer.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
}

#[test]
fn backfill_of_any_length_streams() {
    let base = temp_base("backfill");
    let redex = Redex::with_persistent_dir(&base);
    let file = redex
        .open_file("long/backfill", RedexFileConfig::persistent())
        .unwrap();
    let payloads: Vec<Vec<u8>> = (0..30_000u32).map(|i| i.to_le_bytes().to_vec()).collect();
    file.append_batch(&payloads).unwrap();
    file.close().unwrap();
    let file = redex
        .open_file("long/backfill", RedexFileConfig::persistent())
        .unwrap();
    let mut count = 0u32;
    let mut tail = file.tail(0);
    while let TailPoll::Item(item) = tail.try_next().unwrap() {
        let (seq, payload) = entry(item);
        assert_eq!(seq, u64::from(count));
        assert_eq!(payload, count.to_le_bytes());
        count += 1;
    }
    assert_eq!(count, 30_000, "v0.11 stops at 1024");
    file.close().unwrap();
    let _ = std::fs::remove_dir_all(base);
}

#[test]
fn lagged_is_signalled_during_backfill_under_retention_rollover() {
    let config = RedexFileConfig::heap().with_retention(RetentionPolicy {
        max_events: Some(10),
        ..Default::default()
    });
    let file = Redex::new().open_file("lag/backfill", config).unwrap();
    for i in 0..30u64 {
        file.append(&i.to_le_bytes()).unwrap();
    }
    let mut tail = file.tail(0);
    // The reader is partway through its backfill...
    for expected in 0..5 {
        assert_eq!(entry(tail.next().unwrap().unwrap()).0, expected);
    }
    // ...when retention removes everything up to seq 20.
    assert_eq!(file.sweep_retention().unwrap(), 20);
    assert_eq!(
        tail.next().unwrap().unwrap(),
        TailItem::Lagged {
            missed_from: 5,
            missed_to: 20
        }
    );
    for expected in 20..30 {
        assert_eq!(entry(tail.next().unwrap().unwrap()).0, expected);
    }
    // A tail asking for history that is gone is told so straight away.
    let mut late = file.tail(3);
    assert_eq!(
        late.next().unwrap().unwrap(),
        TailItem::Lagged {
            missed_from: 3,
            missed_to: 20
        }
    );
}

#[test]
fn tails_end_when_the_file_closes_or_the_tail_is_closed() {
    let file = heap("tail/end");
    let mut blocked = file.tail(0);
    let closer = blocked.closer();
    let waiter = thread::spawn(move || blocked.next_timeout(None).unwrap());
    wait_until(|| file.blocked_readers() == 1);
    closer.close();
    assert_eq!(waiter.join().unwrap(), TailPoll::End);

    let mut tail = file.tail(0);
    let waiter = thread::spawn(move || tail.next_timeout(None).unwrap());
    wait_until(|| file.blocked_readers() == 1);
    file.close().unwrap();
    assert_eq!(waiter.join().unwrap(), TailPoll::End);
}

#[test]
fn tail_timeout() {
    let file = heap("tail/timeout");
    let mut tail = file.tail_live();
    let started = std::time::Instant::now();
    assert_eq!(
        tail.next_timeout(Some(Duration::from_millis(30))).unwrap(),
        TailPoll::Timeout
    );
    assert!(started.elapsed() >= Duration::from_millis(30));
}

#[test]
fn age_retention_keeps_recent_entries() {
    let config = RedexFileConfig::heap().with_retention(RetentionPolicy {
        max_age: Some(Duration::from_millis(200)),
        ..Default::default()
    });
    let file = Redex::new().open_file("ret/age", config).unwrap();
    file.append(b"old").unwrap();
    thread::sleep(Duration::from_millis(300));
    file.append(b"new").unwrap();
    assert_eq!(file.sweep_retention().unwrap(), 1);
    assert_eq!(file.read_range(..).unwrap(), vec![(1, b"new".to_vec())]);
}

#[test]
fn bytes_retention() {
    let config = RedexFileConfig::heap().with_retention(RetentionPolicy {
        max_bytes: Some(2 * (20 + 10)),
        ..Default::default()
    });
    let file = Redex::new().open_file("ret/bytes", config).unwrap();
    for i in 0..5u8 {
        file.append(&[i; 10]).unwrap();
    }
    assert_eq!(file.sweep_retention().unwrap(), 3);
    assert_eq!(file.first_seq(), Some(3));
}

#[test]
fn persistent_retention_frees_disk_space() {
    let base = temp_base("ret-disk");
    let config = RedexFileConfig::persistent().with_retention(RetentionPolicy {
        max_events: Some(1),
        ..Default::default()
    });
    let redex = Redex::with_persistent_dir(&base);
    let file = redex.open_file("ret/disk", config).unwrap();
    for _ in 0..10 {
        file.append(&[7u8; 4096]).unwrap();
    }
    let dat = |generation: &str| {
        std::fs::metadata(base.join("ret/disk").join(generation).join("dat")).map(|m| m.len())
    };
    assert_eq!(dat("v0000000001").unwrap(), 40960);
    assert_eq!(file.sweep_retention().unwrap(), 9);
    assert_eq!(dat("v0000000002").unwrap(), 4096);
    assert!(dat("v0000000001").is_err(), "the old generation is removed");
    file.close().unwrap();
    let _ = std::fs::remove_dir_all(base);
}

#[test]
fn a_second_writer_is_refused() {
    let base = temp_base("lock");
    let first = Redex::with_persistent_dir(&base);
    let second = Redex::with_persistent_dir(&base);
    let file = first
        .open_file("locked/chan", RedexFileConfig::persistent())
        .unwrap();
    match second.open_file("locked/chan", RedexFileConfig::persistent()) {
        Err(RedexError::Locked(dir)) => assert!(dir.ends_with("locked/chan")),
        other => panic!("expected Locked, got {other:?}"),
    }
    // A different channel sharing a directory prefix is independent.
    second
        .open_file("locked/chan/child", RedexFileConfig::persistent())
        .unwrap()
        .close()
        .unwrap();
    file.close().unwrap();
    second
        .open_file("locked/chan", RedexFileConfig::persistent())
        .unwrap()
        .close()
        .unwrap();

    // And on the fault-injecting storage, which keeps its own lock table.
    let storage = Arc::new(FaultyStorage::new());
    let a = Redex::with_storage("/b", storage.clone());
    let b = Redex::with_storage("/b", storage);
    let held = a.open_file("x", RedexFileConfig::persistent()).unwrap();
    assert!(matches!(
        b.open_file("x", RedexFileConfig::persistent()),
        Err(RedexError::Locked(_))
    ));
    drop(held);
    let _ = std::fs::remove_dir_all(base);
}

/// Helper process for `a_writer_in_another_process_is_refused`: holds the
/// channel open until its stdin closes. Does nothing in a normal test run.
#[test]
fn lock_holder_child() {
    let Ok(base) = std::env::var("NET_REDEX_LOCK_CHILD_BASE") else {
        return;
    };
    let redex = Redex::with_persistent_dir(base);
    let file = redex
        .open_file("xproc/chan", RedexFileConfig::persistent())
        .unwrap();
    println!("LOCKED");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    file.close().unwrap();
}

#[test]
fn a_writer_in_another_process_is_refused() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let base = temp_base("xproc");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lock_holder_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("NET_REDEX_LOCK_CHILD_BASE", &base)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("LOCKED") {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "child exited before locking"
        );
    }
    let redex = Redex::with_persistent_dir(&base);
    assert!(matches!(
        redex.open_file("xproc/chan", RedexFileConfig::persistent()),
        Err(RedexError::Locked(_))
    ));
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    redex
        .open_file("xproc/chan", RedexFileConfig::persistent())
        .unwrap()
        .close()
        .unwrap();
    let _ = std::fs::remove_dir_all(base);
}

#[test]
fn next_seq_never_goes_backwards_while_appends_fail() {
    let storage = FaultyStorage::new();
    let redex = Redex::with_storage("/m", Arc::new(storage.clone()));
    let file = redex
        .open_file("mono/seq", RedexFileConfig::persistent())
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (file, done) = (file.clone(), done.clone());
        thread::spawn(move || {
            let mut last = 0;
            while !done.load(Ordering::Acquire) {
                let now = file.next_seq();
                assert!(now >= last, "next_seq went from {last} to {now}");
                last = now;
            }
        })
    };
    let mut expected = 0;
    for i in 0..2_000u32 {
        if i % 3 == 0 {
            storage.inject_next(OpKind::Append, Some("/idx"), Fault::Error);
            assert!(file.append(b"fails").is_err());
        } else {
            assert_eq!(file.append(b"ok").unwrap(), expected);
            expected += 1;
        }
    }
    done.store(true, Ordering::Release);
    watcher.join().unwrap();
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reading {
    sensor: String,
    value: i64,
}

#[test]
fn typed_file_round_trips_and_tails() {
    let typed: TypedRedexFile<Reading> = TypedRedexFile::new(heap("typed/readings"));
    let a = Reading {
        sensor: "t1".into(),
        value: -4,
    };
    let b = Reading {
        sensor: "t2".into(),
        value: 1 << 40,
    };
    assert_eq!(typed.append(&a).unwrap(), 0);
    assert_eq!(
        typed.append_batch(&[b.clone(), a.clone()]).unwrap(),
        Some(1)
    );
    assert_eq!(typed.append_batch(&[]).unwrap(), None);
    assert_eq!(typed.read(1).unwrap(), Some(b.clone()));
    assert_eq!(
        typed.read_range(1..).unwrap(),
        vec![(1, b.clone()), (2, a.clone())]
    );
    let mut tail = typed.tail(1);
    assert_eq!(
        tail.next().unwrap().unwrap(),
        TypedItem::Value { seq: 1, value: b }
    );
    // A payload that is not a Reading is a typed codec error, not a panic.
    typed.file().append(&[0xff]).unwrap();
    assert!(matches!(
        typed.read(3),
        Err(RedexError::Codec { seq: Some(3), .. })
    ));
}

#[test]
fn ordered_appender_keeps_each_producers_order() {
    let file = heap("ordered/appender");
    let appender = Arc::new(OrderedAppender::new(file.clone()));
    let threads: Vec<_> = (0..4u8)
        .map(|producer| {
            let appender = appender.clone();
            thread::spawn(move || {
                for i in 0..500u16 {
                    let [hi, lo] = i.to_be_bytes();
                    if i % 10 == 0 {
                        appender
                            .append_batch(&[[producer, hi, lo, 0], [producer, hi, lo, 1]])
                            .unwrap();
                    } else {
                        appender.append(&[producer, hi, lo, 9]).unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let entries = file.read_range(..).unwrap();
    assert_eq!(appender.last_seq(), Some(entries.len() as u64 - 1));
    // Batches are contiguous and each producer's entries are in its order.
    for window in entries.windows(2) {
        if window[0].1[3] == 0 {
            assert_eq!(window[1].1[..3], window[0].1[..3]);
            assert_eq!(window[1].1[3], 1);
        }
    }
    for producer in 0..4u8 {
        let mine: Vec<u16> = entries
            .iter()
            .filter(|(_, p)| p[0] == producer)
            .map(|(_, p)| u16::from_be_bytes([p[1], p[2]]))
            .collect();
        assert!(
            mine.windows(2).all(|w| w[0] <= w[1]),
            "producer {producer} out of order"
        );
    }
    let extra = appender.with_exclusive(|f| {
        let a = f.append(b"one").unwrap();
        let b = f.append(b"two").unwrap();
        (a, b)
    });
    assert_eq!(extra.1, extra.0 + 1);
    assert_eq!(appender.last_seq(), Some(extra.1));
}

#[test]
fn index_follows_the_log_and_resets_on_lag() {
    let config = RedexFileConfig::heap().with_retention(RetentionPolicy {
        max_events: Some(5),
        ..Default::default()
    });
    let file = Redex::new().open_file("index/users", config).unwrap();
    let index: RedexIndex<String, u64> = RedexIndex::new(&file, |seq, payload| {
        let text = std::str::from_utf8(payload).ok()?;
        Some((text.split('=').next()?.to_owned(), seq))
    });
    for i in 0..10u64 {
        file.append(format!("user{}={i}", i % 3).as_bytes())
            .unwrap();
    }
    assert!(index.wait_for_seq(9, Duration::from_secs(5)));
    assert_eq!(index.get(&"user0".to_owned()), Some(9));
    assert_eq!(index.get(&"user1".to_owned()), Some(7));
    assert_eq!(index.lag_resets(), 0);

    // Retention overtakes an index that is far behind: stall it by
    // appending faster than it can see, then sweep.
    let keys: HashSet<String> = (0..3).map(|i| format!("user{i}")).collect();
    for i in 10..10_000u64 {
        file.append(format!("user{}={i}", i % 3).as_bytes())
            .unwrap();
        if i % 1000 == 0 {
            file.sweep_retention().unwrap();
        }
    }
    file.sweep_retention().unwrap();
    assert!(index.wait_for_seq(9_999, Duration::from_secs(10)));
    // Whatever happened, the index reflects the retained entries exactly.
    for key in &keys {
        let seq = index.get(key).unwrap();
        assert!(seq >= 9_995, "{key} -> {seq}");
    }
    let resets = index.lag_resets();
    eprintln!("index lag resets: {resets}");
    drop(index);
}

/// Polls `condition` until it holds (panics after a minute).
fn wait_until(mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "condition never held");
        thread::yield_now();
    }
}
