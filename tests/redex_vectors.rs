//! RedEX against the on-disk directories written by Net v0.11
//! (tests/vectors/redex_disk.json), in both directions: we open theirs to the
//! documented state, and we write byte-identical ones (ts excepted: it holds
//! wall-clock time).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use net::redex::format::{Generation, Manifest};
use net::redex::{Redex, RedexFileConfig, RetentionPolicy};
use serde_json::Value;

#[path = "redex_common/mod.rs"]
mod redex_common;

fn vectors() -> Value {
    let path = format!(
        "{}/tests/vectors/redex_disk.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

fn temp_base(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("net-redex-vec-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every file under `root` (relative path → bytes) and every directory.
fn tree(root: &Path) -> (BTreeMap<String, Vec<u8>>, Vec<String>) {
    fn walk(
        root: &Path,
        dir: &Path,
        files: &mut BTreeMap<String, Vec<u8>>,
        dirs: &mut Vec<String>,
    ) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if entry.file_type().unwrap().is_dir() {
                dirs.push(format!("{rel}/"));
                walk(root, &path, files, dirs);
            } else {
                files.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    let (mut files, mut dirs) = (BTreeMap::new(), Vec::new());
    walk(root, root, &mut files, &mut dirs);
    dirs.sort();
    (files, dirs)
}

/// The vector's tree, with paths relative to `prefix` (which is stripped).
fn vector_tree(v: &Value, prefix: &str) -> (BTreeMap<String, Vec<u8>>, Vec<String>) {
    let mut files = BTreeMap::new();
    let mut dirs = Vec::new();
    for node in v["tree"].as_array().unwrap() {
        let path = node["path"]
            .as_str()
            .unwrap()
            .strip_prefix(prefix)
            .unwrap()
            .to_owned();
        if node["kind"] == "dir" {
            if !path.is_empty() {
                dirs.push(path);
            }
        } else {
            files.insert(path, hex::decode(node["hex"].as_str().unwrap()).unwrap());
        }
    }
    dirs.sort();
    (files, dirs)
}

fn assert_same_tree_except_ts_values(ours: &Path, v: &Value, prefix: &str) {
    let (our_files, our_dirs) = tree(ours);
    let (their_files, their_dirs) = vector_tree(v, prefix);
    assert_eq!(our_dirs, their_dirs);
    assert_eq!(
        our_files.keys().collect::<Vec<_>>(),
        their_files.keys().collect::<Vec<_>>()
    );
    for (path, theirs) in &their_files {
        let ours = &our_files[path];
        if path.ends_with("/ts") {
            assert_eq!(ours.len(), theirs.len(), "{path} length");
        } else {
            assert_eq!(hex::encode(ours), hex::encode(theirs), "{path}");
        }
    }
}

#[test]
fn manifest_examples() {
    for example in vectors()["manifest_examples"].as_array().unwrap() {
        let bytes = hex::decode(example["bytes_16"].as_str().unwrap()).unwrap();
        let generation = Generation(example["generation"].as_u64().unwrap() as u32);
        assert_eq!(Manifest { generation }.encode().to_vec(), bytes);
        assert_eq!(Manifest::decode(&bytes).unwrap().generation, generation);
    }
}

fn scenario_1_script(redex: &Redex) {
    let file = redex
        .open_file("vec/basic", RedexFileConfig::persistent())
        .unwrap();
    assert_eq!(file.append(b"hello").unwrap(), 0);
    assert_eq!(file.append_inline(b"INLINE08").unwrap(), 1);
    assert_eq!(file.append(b"").unwrap(), 2);
    assert_eq!(
        file.append_batch(&[&b"batch-0"[..], b"batch-one"]).unwrap(),
        Some(3)
    );
    assert_eq!(file.append(&[0, 1, 2, 3, 4, 5, 6, 7]).unwrap(), 5);
    file.close().unwrap();
}

#[test]
fn scenario_1_we_write_byte_identical_files() {
    let base = temp_base("s1-write");
    scenario_1_script(&Redex::with_persistent_dir(&base));
    assert_same_tree_except_ts_values(&base.join("vec"), &vectors()["scenario_1_appends"], "");
    fs::remove_dir_all(base).unwrap();
}

/// Writes a vector's tree under `dir`.
fn materialise(v: &Value, dir: &Path, prefix: &str) {
    let (files, dirs) = vector_tree(v, prefix);
    for d in dirs {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    for (path, bytes) in files {
        fs::write(dir.join(path), bytes).unwrap();
    }
}

#[test]
fn scenario_1_we_read_their_files() {
    let v = &vectors()["scenario_1_appends"];
    let base = temp_base("s1-read");
    materialise(v, &base.join("vec"), "");
    let redex = Redex::with_persistent_dir(&base);
    let file = redex
        .open_file("vec/basic", RedexFileConfig::persistent())
        .unwrap();
    let entries = file.read_range(..).unwrap();
    let expected: Vec<(u64, Vec<u8>)> = v["idx_decoded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["seq"].as_u64().unwrap(),
                hex::decode(r["payload"].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    assert_eq!(entries, expected);
    assert_eq!(file.next_seq(), 6);
    file.close().unwrap();
    // Opening changed nothing.
    let (files, _) = tree(&base.join("vec"));
    let (theirs, _) = vector_tree(v, "");
    assert_eq!(files, theirs);
    fs::remove_dir_all(base).unwrap();
}

#[test]
fn scenario_2_recovery_from_torn_idx_and_bad_checksum() {
    let all = vectors();
    let v = &all["scenario_2_recovery"];
    let base = temp_base("s2");
    let dir = base.join("vec");
    materialise(&all["scenario_1_appends"], &dir, "");
    let generation_dir = dir.join("basic/v0000000001");
    let original_ts = fs::read(generation_dir.join("ts")).unwrap();
    let mut idx = fs::read(generation_dir.join("idx")).unwrap();
    idx.extend_from_slice(&[0xee; 7]);
    fs::write(generation_dir.join("idx"), idx).unwrap();
    let mut dat = fs::read(generation_dir.join("dat")).unwrap();
    assert_eq!(dat[0], b'h');
    dat[0] = b'j';
    fs::write(generation_dir.join("dat"), dat).unwrap();

    let redex = Redex::with_persistent_dir(&base);
    let file = redex
        .open_file("vec/basic", RedexFileConfig::persistent())
        .unwrap();
    let recovered: Vec<(u64, Vec<u8>)> = v["recovered_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["seq"].as_u64().unwrap(),
                hex::decode(r["payload"].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    assert_eq!(file.read_range(..).unwrap(), recovered);
    assert_eq!(
        file.next_seq(),
        v["next_seq_after_reopen"].as_u64().unwrap()
    );
    file.close().unwrap();

    // Where we depart from v0.11 (docs/redex.md): the dropped record is not
    // left in idx to come back later; it becomes a hole record with the same
    // seq, so idx keeps its length and ts keeps one value per record.
    let report = file.recovery_report().unwrap().clone();
    assert_eq!(report.dropped.len(), 1);
    assert_eq!(report.dropped[0].seq, Some(0));
    assert_eq!(report.torn_idx_bytes, 7);
    file.close().unwrap();

    let idx = fs::read(generation_dir.join("idx")).unwrap();
    let theirs = hex::decode(v["idx_after_reopen"].as_str().unwrap()).unwrap();
    assert_eq!(
        idx.len() as u64,
        v["idx_len_after_reopen"].as_u64().unwrap()
    );
    assert_eq!(idx[20..], theirs[20..], "every other record is untouched");
    assert_eq!(idx[..8], theirs[..8], "the hole keeps seq 0");
    assert_ne!(idx[..20], theirs[..20]);
    let dat = fs::read(generation_dir.join("dat")).unwrap();
    assert_eq!(
        dat.len() as u64,
        v["dat_len_after_reopen"].as_u64().unwrap()
    );
    let ts = fs::read(generation_dir.join("ts")).unwrap();
    assert_eq!(ts, original_ts, "one timestamp per record, none lost");
    assert!(
        v["ts_after_reopen_matches_original_minus_first"]
            .as_bool()
            .unwrap()
    );
    // v0.11 reads the rewritten generation as the same entries.
    let (theirs_read, _) = redex_common::v011_open(&idx, &dat);
    assert_eq!(theirs_read, recovered);
    // And the hole is permanent: a second open finds nothing to drop.
    let file = redex
        .open_file("vec/basic", RedexFileConfig::persistent())
        .unwrap();
    assert_eq!(file.read_range(..).unwrap(), recovered);
    assert!(file.recovery_report().unwrap().is_clean());
    file.close().unwrap();
    fs::remove_dir_all(base).unwrap();
}

#[test]
fn v011_scenario_2_after_its_own_reopen_is_read_with_its_timestamps() {
    // The directory exactly as v0.11 leaves it after scenario 2: record 0
    // still in idx with a bad checksum, ts holding only the 5 survivors'.
    let all = vectors();
    let v = &all["scenario_2_recovery"];
    let base = temp_base("s2-theirs");
    let dir = base.join("vec");
    materialise(&all["scenario_1_appends"], &dir, "");
    let generation_dir = dir.join("basic/v0000000001");
    let original_ts = fs::read(generation_dir.join("ts")).unwrap();
    let idx = hex::decode(v["idx_after_reopen"].as_str().unwrap()).unwrap();
    fs::write(generation_dir.join("idx"), &idx).unwrap();
    let mut dat = fs::read(generation_dir.join("dat")).unwrap();
    dat[0] = b'j';
    fs::write(generation_dir.join("dat"), &dat).unwrap();
    fs::write(generation_dir.join("ts"), &original_ts[8..]).unwrap();

    let redex = Redex::with_persistent_dir(&base);
    let file = redex
        .open_file("vec/basic", RedexFileConfig::persistent())
        .unwrap();
    assert_eq!(file.read_range(..).unwrap().len(), 5);
    assert_eq!(file.next_seq(), 6);
    let report = file.recovery_report().unwrap().clone();
    assert_eq!(
        report.timestamps_restored, 1,
        "only the hole lacks one: {report:?}"
    );
    file.close().unwrap();
    let ts = fs::read(generation_dir.join("ts")).unwrap();
    assert_eq!(ts.len(), 6 * 8);
    assert_eq!(
        ts[8..],
        original_ts[8..],
        "the survivors keep their own timestamps"
    );
    fs::remove_dir_all(base).unwrap();
}

fn scenario_3_script(redex: &Redex) {
    let config = RedexFileConfig::persistent().with_retention(RetentionPolicy {
        max_events: Some(2),
        ..Default::default()
    });
    let file = redex.open_file("vec/compact", config).unwrap();
    assert_eq!(file.append(b"one").unwrap(), 0);
    assert_eq!(file.append_inline(b"two-8byt").unwrap(), 1);
    assert_eq!(file.append(b"three").unwrap(), 2);
    assert_eq!(file.append(b"four!").unwrap(), 3);
    assert_eq!(file.sweep_retention().unwrap(), 2);
    assert_eq!(file.generation(), Some(2));
    assert_eq!(file.append(b"five").unwrap(), 4);
    file.close().unwrap();
}

#[test]
fn scenario_3_compaction_writes_byte_identical_generation_2() {
    let base = temp_base("s3");
    scenario_3_script(&Redex::with_persistent_dir(&base));
    let v = &vectors()["scenario_3_retention_compaction"];
    // Byte-identical to v0.11 except for one departure (docs/redex.md): hole
    // records for seqs 0 and 1 lead the new idx (and their timestamps the new
    // ts), so the first surviving entry is vouched for by neighbours.
    let (mut our_files, our_dirs) = tree(&base.join("vec/compact"));
    let (their_files, their_dirs) = vector_tree(v, "");
    assert_eq!(our_dirs, their_dirs);
    assert_eq!(
        our_files.keys().collect::<Vec<_>>(),
        their_files.keys().collect::<Vec<_>>()
    );
    let idx = our_files.get_mut("v0000000002/idx").unwrap();
    let holes = idx.drain(..40).collect::<Vec<u8>>();
    for (k, hole) in holes.chunks(20).enumerate() {
        assert_eq!(
            hole[..8],
            (k as u64).to_le_bytes(),
            "hole {k} holds seq {k}"
        );
        assert_eq!(hole[19] & 0xF0, 0xC0, "INLINE | TOMBSTONE");
    }
    our_files.get_mut("v0000000002/ts").unwrap().drain(..16);
    for (path, theirs) in &their_files {
        let ours = &our_files[path];
        if path.ends_with("/ts") {
            assert_eq!(ours.len(), theirs.len(), "{path} length");
        } else {
            assert_eq!(hex::encode(ours), hex::encode(theirs), "{path}");
        }
    }
    // v0.11 reads our generation 2 as the same survivors.
    let gen2 = base.join("vec/compact/v0000000002");
    let (theirs_read, their_next) = redex_common::v011_open(
        &fs::read(gen2.join("idx")).unwrap(),
        &fs::read(gen2.join("dat")).unwrap(),
    );
    assert_eq!(
        theirs_read.iter().map(|e| e.0).collect::<Vec<_>>(),
        [2, 3, 4]
    );
    assert_eq!(their_next, 5);
    assert_eq!(
        hex::encode(fs::read(base.join("vec/compact/manifest")).unwrap()),
        v["manifest_gen2"].as_str().unwrap()
    );
    // And reading it back gives the survivors.
    let redex = Redex::with_persistent_dir(&base);
    let file = redex
        .open_file("vec/compact", RedexFileConfig::persistent())
        .unwrap();
    let seqs: Vec<u64> = file
        .read_range(..)
        .unwrap()
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(seqs, vec![2, 3, 4]);
    assert_eq!(file.next_seq(), 5);
    file.close().unwrap();
    fs::remove_dir_all(base).unwrap();
}

#[test]
fn legacy_flat_layout_is_migrated_once() {
    let all = vectors();
    let base = temp_base("legacy");
    // Scenario 1's generation files, laid out flat as pre-v0.11 wrote them.
    let (all_files, _) = vector_tree(&all["scenario_1_appends"], "");
    let files: BTreeMap<String, Vec<u8>> = all_files
        .into_iter()
        .filter_map(|(path, bytes)| {
            Some((path.strip_prefix("basic/v0000000001/")?.to_owned(), bytes))
        })
        .collect();
    assert_eq!(files.len(), 3);
    let channel = base.join("vec/basic");
    fs::create_dir_all(&channel).unwrap();
    for (name, bytes) in &files {
        fs::write(channel.join(name), bytes).unwrap();
    }
    for _ in 0..2 {
        let redex = Redex::with_persistent_dir(&base);
        let file = redex
            .open_file("vec/basic", RedexFileConfig::persistent())
            .unwrap();
        assert_eq!(file.len(), 6);
        assert_eq!(file.read(0).unwrap().unwrap(), b"hello");
        file.close().unwrap();
        let (ours, _) = tree(&channel);
        let names: Vec<&String> = ours.keys().collect();
        assert_eq!(
            names,
            [
                "manifest",
                "v0000000001/dat",
                "v0000000001/idx",
                "v0000000001/ts"
            ]
        );
        assert_eq!(
            hex::encode(&ours["manifest"]),
            "5245444d01010000000000003ee1c150"
        );
        for name in ["idx", "dat", "ts"] {
            assert_eq!(ours[&format!("v0000000001/{name}")], files[name], "{name}");
        }
    }
    fs::remove_dir_all(base).unwrap();
}
