//! `net netdb snapshot|restore` end to end: a bundle cut from a directory
//! our models wrote, read back by the library and by `restore` (alone and
//! over the directory's later events), and the refusals.

use std::fs;

use net::cortex::{MemoriesAdapter, ModelConfig, TaskQuery, TasksAdapter};
use net::netdb::{NetDb, NetDbBundle};
use net::redex::Redex;

#[path = "cli_common/mod.rs"]
mod cli_common;
use cli_common::{json, net, temp_dir};

fn write_models(base: &std::path::Path) {
    let redex = Redex::with_persistent_dir(base);
    let tasks = TasksAdapter::open(&redex, 7, ModelConfig::persistent()).unwrap();
    tasks.create_at(1, "cut a bundle", 1_000).unwrap();
    tasks.create_at(2, "restore it", 2_000).unwrap();
    tasks.complete_at(1, 3_000).unwrap();
    tasks.close().unwrap();
    let memories = MemoriesAdapter::open(&redex, 7, ModelConfig::persistent()).unwrap();
    memories
        .store_at(9, "bundles hold both models", &["fact"], "docs", 5_000)
        .unwrap();
    memories.close().unwrap();
}

#[test]
fn snapshot_writes_a_bundle_the_library_and_restore_read() {
    let base = temp_dir("netdb-snapshot");
    write_models(&base);
    let bundle_path = base.with_extension("bundle");
    let _ = fs::remove_file(&bundle_path);
    let (base_s, bundle_s) = (base.to_str().unwrap(), bundle_path.to_str().unwrap());

    let written = json(&["netdb", "snapshot", base_s, "--out", bundle_s]);
    assert_eq!(written["models"]["tasks"]["last_seq"], 2);
    assert_eq!(written["models"]["memories"]["last_seq"], 0);
    let bytes = fs::read(&bundle_path).unwrap();
    assert_eq!(written["bytes"], bytes.len());

    // The library opens it in memory with both models' rows.
    let bundle = NetDbBundle::decode(&bytes).unwrap();
    assert_eq!(bundle.tasks.as_ref().unwrap().last_seq, Some(2));
    let fresh = Redex::new();
    let db = NetDb::builder(&fresh)
        .with_tasks()
        .with_memories()
        .build_from_bundle(&bytes)
        .unwrap();
    assert_eq!(db.tasks().unwrap().find_many(&TaskQuery::new()).len(), 2);
    db.close().unwrap();

    // restore alone: the bundle's rows.
    let shown = json(&["netdb", "restore", bundle_s]);
    assert_eq!(shown["tasks"]["rows"][0]["title"], "cut a bundle");
    assert_eq!(shown["tasks"]["rows"][0]["status"], "completed");
    assert_eq!(
        shown["memories"]["rows"][0]["content"],
        "bundles hold both models"
    );

    // restore over the directory: events written after the cut are folded
    // on top of the bundle.
    {
        let redex = Redex::with_persistent_dir(&base);
        let tasks = TasksAdapter::open(&redex, 7, ModelConfig::persistent()).unwrap();
        tasks.create_at(3, "after the cut", 7_000).unwrap();
        tasks.close().unwrap();
    }
    let shown = json(&["netdb", "restore", bundle_s, base_s]);
    let titles: Vec<&str> = shown["tasks"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["cut a bundle", "restore it", "after the cut"]);
    assert_eq!(shown["tasks"]["applied_through_seq"], 3);

    // One model only, by flag.
    let only = json(&[
        "netdb", "snapshot", base_s, "--out", bundle_s, "--force", "--tasks",
    ]);
    assert!(only["models"]["memories"].is_null());
    assert_eq!(only["models"]["tasks"]["last_seq"], 3);
}

#[test]
fn refusals_are_one_line_and_change_nothing() {
    let base = temp_dir("netdb-refusals");
    write_models(&base);
    let bundle_path = base.with_extension("bundle");
    fs::write(&bundle_path, b"precious").unwrap();
    let (base_s, bundle_s) = (base.to_str().unwrap(), bundle_path.to_str().unwrap());

    let fails = |args: &[&str], needle: &str| {
        let output = net().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    };
    // An existing file is not replaced without --force.
    fails(&["netdb", "snapshot", base_s, "--out", bundle_s], "--force");
    assert_eq!(fs::read(&bundle_path).unwrap(), b"precious");
    // Not a bundle.
    fails(&["netdb", "restore", bundle_s], "not a NetDB bundle");
    // A directory without models; a model asked for that is not there.
    let empty = temp_dir("netdb-empty");
    fs::create_dir_all(&empty).unwrap();
    let out = empty.join("b");
    fails(
        &[
            "netdb",
            "snapshot",
            empty.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        "no CortEX model",
    );
    assert!(!out.exists());
    assert_eq!(fs::read_dir(&empty).unwrap().count(), 0, "nothing created");
    let tasks_only = temp_dir("netdb-tasks-only");
    {
        let redex = Redex::with_persistent_dir(&tasks_only);
        let tasks = TasksAdapter::open(&redex, 7, ModelConfig::persistent()).unwrap();
        tasks.create_at(1, "alone", 1_000).unwrap();
        tasks.close().unwrap();
    }
    fails(
        &[
            "netdb",
            "snapshot",
            tasks_only.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--memories",
        ],
        "cortex/memories",
    );
    // A directory a running writer holds is refused.
    let redex = Redex::with_persistent_dir(&base);
    let held = TasksAdapter::open(&redex, 7, ModelConfig::persistent()).unwrap();
    fails(
        &["netdb", "snapshot", base_s, "--out", out.to_str().unwrap()],
        "lock",
    );
    held.close().unwrap();
}
