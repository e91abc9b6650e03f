//! Property test: random task and memory operations, with snapshots,
//! restores and reopens in between, against a plain model of the state.

use std::collections::BTreeMap;
use std::time::Duration;

use net::cortex::*;
use net::redex::Redex;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Create(u64, String),
    Rename(u64, String),
    Complete(u64),
    DeleteTask(u64),
    Store(u64, String, Vec<String>),
    Retag(u64, Vec<String>),
    Pin(u64),
    Unpin(u64),
    DeleteMemory(u64),
    Snapshot,
    Restore,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let id = 0u64..6;
    let text = "[a-z]{0,6}";
    let tags = proptest::collection::vec("[a-c]", 0..3);
    prop_oneof![
        4 => (id.clone(), text).prop_map(|(i, t)| Op::Create(i, t)),
        2 => (id.clone(), text).prop_map(|(i, t)| Op::Rename(i, t)),
        2 => id.clone().prop_map(Op::Complete),
        1 => id.clone().prop_map(Op::DeleteTask),
        3 => (id.clone(), text, tags.clone()).prop_map(|(i, c, t)| Op::Store(i, c, t)),
        1 => (id.clone(), tags).prop_map(|(i, t)| Op::Retag(i, t)),
        1 => id.clone().prop_map(Op::Pin),
        1 => id.clone().prop_map(Op::Unpin),
        1 => id.prop_map(Op::DeleteMemory),
        1 => Just(Op::Snapshot),
        1 => Just(Op::Restore),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Default)]
struct Expected {
    tasks: BTreeMap<u64, (String, TaskStatus, u64, u64)>,
    memories: BTreeMap<u64, (String, Vec<String>, u64, u64, bool)>,
}

const ORIGIN: u64 = 0x5eed;

fn run(ops: &[Op], dir: &std::path::Path) -> Result<(), TestCaseError> {
    let redex = Redex::with_persistent_dir(dir);
    let config = ModelConfig::persistent();
    let mut tasks = TasksAdapter::open(&redex, ORIGIN, config).unwrap();
    let mut memories = MemoriesAdapter::open(&redex, ORIGIN, config).unwrap();
    let mut expected = Expected::default();
    let mut snapshots: Option<(ModelSnapshot, ModelSnapshot)> = None;
    let mut clock = 1_000u64;
    for op in ops {
        clock += 1;
        let mut last_task = None;
        let mut last_memory = None;
        match op {
            Op::Create(id, title) => {
                last_task = Some(tasks.create_at(*id, title, clock).unwrap());
                expected
                    .tasks
                    .insert(*id, (title.clone(), TaskStatus::Pending, clock, clock));
            }
            Op::Rename(id, title) => {
                last_task = Some(tasks.rename_at(*id, title, clock).unwrap());
                if let Some(t) = expected.tasks.get_mut(id) {
                    t.0 = title.clone();
                    t.3 = clock;
                }
            }
            Op::Complete(id) => {
                last_task = Some(tasks.complete_at(*id, clock).unwrap());
                if let Some(t) = expected.tasks.get_mut(id) {
                    t.1 = TaskStatus::Completed;
                    t.3 = clock;
                }
            }
            Op::DeleteTask(id) => {
                last_task = Some(tasks.delete(*id).unwrap());
                expected.tasks.remove(id);
            }
            Op::Store(id, content, tags) => {
                let refs: Vec<&str> = tags.iter().map(String::as_str).collect();
                last_memory = Some(
                    memories
                        .store_at(*id, content, &refs, "src", clock)
                        .unwrap(),
                );
                let entry = expected.memories.entry(*id).or_insert((
                    String::new(),
                    vec![],
                    clock,
                    clock,
                    false,
                ));
                entry.0 = content.clone();
                entry.1 = tags.clone();
                entry.3 = clock;
            }
            Op::Retag(id, tags) => {
                let refs: Vec<&str> = tags.iter().map(String::as_str).collect();
                last_memory = Some(memories.retag_at(*id, &refs, clock).unwrap());
                if let Some(m) = expected.memories.get_mut(id) {
                    m.1 = tags.clone();
                    m.3 = clock;
                }
            }
            Op::Pin(id) | Op::Unpin(id) => {
                let pin = matches!(op, Op::Pin(_));
                last_memory = Some(
                    if pin {
                        memories.pin_at(*id, clock)
                    } else {
                        memories.unpin_at(*id, clock)
                    }
                    .unwrap(),
                );
                if let Some(m) = expected.memories.get_mut(id) {
                    m.4 = pin;
                    m.3 = clock;
                }
            }
            Op::DeleteMemory(id) => {
                last_memory = Some(memories.delete(*id).unwrap());
                expected.memories.remove(id);
            }
            Op::Snapshot => {
                snapshots = Some((tasks.snapshot().unwrap(), memories.snapshot().unwrap()))
            }
            Op::Restore | Op::Reopen => {
                tasks.close().unwrap();
                memories.close().unwrap();
                match (&snapshots, op) {
                    (Some((ts, ms)), Op::Restore) => {
                        tasks = TasksAdapter::restore(&redex, ORIGIN, config, ts).unwrap();
                        memories = MemoriesAdapter::restore(&redex, ORIGIN, config, ms).unwrap();
                    }
                    _ => {
                        tasks = TasksAdapter::open(&redex, ORIGIN, config).unwrap();
                        memories = MemoriesAdapter::open(&redex, ORIGIN, config).unwrap();
                    }
                }
                // Everything written before the reopen is folded in again.
                let tasks_end = tasks.file().next_seq();
                let memories_end = memories.file().next_seq();
                if tasks_end > 0 {
                    last_task = Some(tasks_end - 1);
                }
                if memories_end > 0 {
                    last_memory = Some(memories_end - 1);
                }
            }
        }
        if let Some(seq) = last_task {
            prop_assert!(tasks.wait_for_seq(seq, Duration::from_secs(10)));
        }
        if let Some(seq) = last_memory {
            prop_assert!(memories.wait_for_seq(seq, Duration::from_secs(10)));
        }
        let got: BTreeMap<u64, (String, TaskStatus, u64, u64)> = tasks
            .find_many(&TaskQuery::new())
            .into_iter()
            .map(|t| (t.id, (t.title, t.status, t.created_ns, t.updated_ns)))
            .collect();
        prop_assert_eq!(&got, &expected.tasks, "tasks after {:?}", op);
        let got: BTreeMap<u64, (String, Vec<String>, u64, u64, bool)> = memories
            .find_many(&MemoryQuery::new())
            .into_iter()
            .map(|m| {
                (
                    m.id,
                    (m.content, m.tags, m.created_ns, m.updated_ns, m.pinned),
                )
            })
            .collect();
        prop_assert_eq!(&got, &expected.memories, "memories after {:?}", op);
        // The app sequence never repeats for this origin.
        let writes = tasks.file().next_seq();
        prop_assert_eq!(tasks.app_seq(), writes);
    }
    tasks.close().unwrap();
    memories.close().unwrap();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn models_match_the_reference_across_snapshot_restore_and_reopen(ops in proptest::collection::vec(op(), 1..30)) {
        let dir = std::env::temp_dir().join(format!(
            "net-cortex-model-{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        ));
        let result = run(&ops, &dir);
        let _ = std::fs::remove_dir_all(&dir);
        result?;
    }
}
