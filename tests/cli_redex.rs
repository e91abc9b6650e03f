//! `net redex` and `net cortex` end to end: v0.11's directories from
//! tests/vectors/redex_disk.json, directories our writers make, a
//! deliberately corrupted one, following a live writer, compaction.

use std::fs;
use std::time::Duration;

use net::cortex::{MemoriesAdapter, ModelConfig, TasksAdapter};
use net::redex::{Redex, RedexFileConfig};

#[path = "cli_common/mod.rs"]
mod cli_common;
use cli_common::{Running, json, json_lines, materialise, net, redex_vectors, temp_dir};

#[test]
fn v011_scenario_1_is_listed_read_and_verified() {
    let v = redex_vectors();
    let base = temp_dir("s1");
    materialise(&v["scenario_1_appends"], &base.join("vec"));
    let base_s = base.to_str().unwrap();

    let ls = json(&["redex", "ls", base_s]);
    assert_eq!(ls[0]["channel"], "vec/basic");
    assert_eq!(ls[0]["generation"], 1);
    assert_eq!(ls[0]["entries"], 6);
    assert_eq!(ls[0]["next_seq"], 6);

    let entries = json_lines(&["redex", "cat", base_s, "vec/basic"]);
    let expected = v["scenario_1_appends"]["idx_decoded"].as_array().unwrap();
    assert_eq!(entries.len(), expected.len());
    let ts = v["scenario_1_appends"]["ts_values_ns"].as_array().unwrap();
    for ((entry, want), ts) in entries.iter().zip(expected).zip(ts) {
        assert_eq!(entry["seq"], want["seq"]);
        assert_eq!(entry["payload_hex"], want["payload"]);
        assert_eq!(entry["inline"], want["inline"]);
        assert_eq!(&entry["ts_ns"], ts);
    }

    let verdict = json(&["redex", "verify", base_s]);
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["channels"][0]["entries"], 6);
    net().args(["redex", "verify", base_s]).assert().success();
    let stat = net()
        .args(["redex", "stat", base_s, "vec/basic"])
        .output()
        .unwrap();
    assert!(stat.status.success());
    let stat = String::from_utf8(stat.stdout).unwrap();
    assert!(stat.contains("seqs        0..=5, next 6"), "{stat}");
}

#[test]
fn v011_scenario_3_compacted_generation_is_read() {
    let v = redex_vectors();
    let base = temp_dir("s3");
    materialise(
        &v["scenario_3_retention_compaction"],
        &base.join("vec/compact"),
    );
    let ls = json(&["redex", "ls", base.to_str().unwrap()]);
    assert_eq!(ls[0]["channel"], "vec/compact");
    assert_eq!(ls[0]["generation"], 2);
    assert_eq!(ls[0]["first_seq"], 2);
    let entries = json_lines(&["redex", "cat", base.to_str().unwrap()]);
    let seqs: Vec<_> = entries.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    let want: Vec<_> = v["scenario_3_retention_compaction"]["idx_decoded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, want);
    net()
        .args(["redex", "verify", base.to_str().unwrap()])
        .assert()
        .success();
}

#[test]
fn v011_scenario_2_damage_is_reported_with_its_offset() {
    // v0.11 leaves a record with a bad checksum in idx after its reopen.
    let v = redex_vectors();
    let base = temp_dir("s2");
    materialise(&v["scenario_1_appends"], &base.join("vec"));
    let gen_dir = base.join("vec/basic/v0000000001");
    fs::write(
        gen_dir.join("idx"),
        hex::decode(
            v["scenario_2_recovery"]["idx_after_reopen"]
                .as_str()
                .unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let mut dat = fs::read(gen_dir.join("dat")).unwrap();
    dat[0] = b'j';
    fs::write(gen_dir.join("dat"), dat).unwrap();
    let output = net()
        .args(["--json", "redex", "verify", base.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let verdict: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let findings = verdict["channels"][0]["findings"].as_array().unwrap();
    let error = findings.iter().find(|f| f["severity"] == "error").unwrap();
    assert!(
        error["file"].as_str().unwrap().ends_with("v0000000001/dat"),
        "{error}"
    );
    assert_eq!(error["offset"], 0);
    assert!(
        error["message"].as_str().unwrap().contains("seq 0"),
        "{error}"
    );
    // cat skips the damaged entry and says so on stderr.
    let entries = json_lines(&["redex", "cat", base.to_str().unwrap()]);
    assert_eq!(entries[0]["seq"], 1);
}

fn write_channel(base: &std::path::Path, name: &str, payloads: &[&[u8]]) {
    let redex = Redex::with_persistent_dir(base);
    let file = redex
        .open_file(name, RedexFileConfig::persistent())
        .unwrap();
    for p in payloads {
        file.append(p).unwrap();
    }
    file.append_inline(b"inline-8").unwrap();
    file.append_batch(&[b"b1".as_slice(), b"b2"]).unwrap();
    file.close().unwrap();
}

#[test]
fn our_directories_verify_and_corruption_is_found_at_its_offset() {
    let base = temp_dir("ours");
    write_channel(&base, "app/events", &[b"first", b"second", b"third"]);
    write_channel(&base, "app/other", &[b"x"]);
    let base_s = base.to_str().unwrap();
    let ls = json(&["redex", "ls", base_s]);
    let names: Vec<_> = ls
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel"].clone())
        .collect();
    assert_eq!(names, ["app/events", "app/other"]);
    assert_eq!(ls[0]["entries"], 6);
    let entries = json_lines(&[
        "redex",
        "cat",
        base_s,
        "app/events",
        "--from",
        "1",
        "--limit",
        "3",
    ]);
    let texts: Vec<_> = entries.iter().map(|e| e["payload_text"].clone()).collect();
    assert_eq!(texts, ["second", "third", "inline-8"]);
    net().args(["redex", "verify", base_s]).assert().success();

    // Damage one byte inside "second" (dat offset 5..11).
    let dat_path = base.join("app/events/v0000000001/dat");
    let mut dat = fs::read(&dat_path).unwrap();
    dat[7] ^= 0x20;
    fs::write(&dat_path, dat).unwrap();
    let output = net().args(["redex", "verify", base_s]).output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains(
            "app/events/v0000000001/dat at offset 5: record 1 (seq 1): checksum mismatch"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("app/other: ok"), "{stdout}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "one error line: {stderr}");
    assert!(
        stderr.starts_with("net: error: verify found 1 error(s)"),
        "{stderr}"
    );

    // A damaged manifest is found at its checksum's offset.
    let manifest = base.join("app/other/manifest");
    let mut bytes = fs::read(&manifest).unwrap();
    bytes[13] ^= 1;
    fs::write(&manifest, bytes).unwrap();
    let verdict = net()
        .args(["--json", "redex", "verify", base_s, "app/other"])
        .output()
        .unwrap();
    assert_eq!(verdict.status.code(), Some(3));
    let verdict: serde_json::Value = serde_json::from_slice(&verdict.stdout).unwrap();
    let finding = &verdict["channels"][0]["findings"][0];
    assert!(
        finding["file"]
            .as_str()
            .unwrap()
            .ends_with("app/other/manifest")
    );
    assert_eq!(finding["offset"], 12);
}

#[test]
fn tail_follows_a_live_writer() {
    let base = temp_dir("tail");
    let redex = Redex::with_persistent_dir(&base);
    let file = redex
        .open_file("live", RedexFileConfig::persistent())
        .unwrap();
    file.append(b"before").unwrap();
    file.sync().unwrap();
    let (_tail, lines) = Running::spawn(&[
        "--json",
        "redex",
        "tail",
        "-f",
        "--interval-ms",
        "20",
        base.to_str().unwrap(),
        "live",
    ]);
    let first = lines.wait_for(Duration::from_secs(20), |_| true);
    assert!(first.contains("\"before\""), "{first}");
    file.append(b"after").unwrap();
    let next = lines.wait_for(Duration::from_secs(20), |_| true);
    let next: serde_json::Value = serde_json::from_str(&next).unwrap();
    assert_eq!(next["seq"], 1);
    assert_eq!(next["payload_text"], "after");
    file.close().unwrap();
}

#[test]
fn compact_applies_retention_and_refuses_a_held_channel() {
    let base = temp_dir("compact");
    write_channel(&base, "c", &[b"a", b"b", b"c"]);
    let base_s = base.to_str().unwrap();
    let result = json(&["redex", "compact", base_s, "c", "--max-events", "2"]);
    assert_eq!(result["generation_before"], 1);
    assert_eq!(result["generation_after"], 2);
    assert_eq!(result["removed"], 4);
    assert_eq!(result["next_seq"], 6);
    let ls = json(&["redex", "ls", base_s]);
    assert_eq!(ls[0]["generation"], 2);
    assert_eq!(ls[0]["entries"], 2);
    net().args(["redex", "verify", base_s]).assert().success();

    let redex = Redex::with_persistent_dir(&base);
    let held = redex.open_file("c", RedexFileConfig::persistent()).unwrap();
    let output = net()
        .args(["redex", "compact", base_s, "c"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("locked"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1);
    held.close().unwrap();
}

#[test]
fn cortex_models_are_folded_from_their_logs() {
    let base = temp_dir("cortex");
    let redex = Redex::with_persistent_dir(&base);
    let tasks = TasksAdapter::open(&redex, 7, ModelConfig::persistent()).unwrap();
    tasks.create_at(1, "write the CLI", 1_000).unwrap();
    tasks.create_at(2, "test it", 2_000).unwrap();
    tasks.complete_at(1, 3_000).unwrap();
    tasks.close().unwrap();
    let memories = MemoriesAdapter::open(&redex, 7, ModelConfig::persistent()).unwrap();
    memories
        .store_at(9, "the sky is blue", &["fact"], "eyes", 5_000)
        .unwrap();
    memories.pin_at(9, 6_000).unwrap();
    memories.close().unwrap();
    let base_s = base.to_str().unwrap();

    let state = json(&["cortex", "tasks", base_s]);
    assert_eq!(state["total"], 2);
    assert_eq!(state["tasks"][0]["title"], "write the CLI");
    assert_eq!(state["tasks"][0]["status"], "completed");
    assert_eq!(state["tasks"][1]["status"], "pending");
    let pending = json(&[
        "cortex",
        "tasks",
        base_s,
        "--query",
        r#"{"status":"pending"}"#,
    ]);
    assert_eq!(pending["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(pending["tasks"][0]["id"], 2);

    let state = json(&["cortex", "memories", base_s]);
    assert_eq!(state["memories"][0]["content"], "the sky is blue");
    assert_eq!(state["memories"][0]["pinned"], true);

    let output = net()
        .args(["cortex", "tasks", base_s, "--query", r#"{"colour":1}"#])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("colour"));
}
