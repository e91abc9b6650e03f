//! Replays every committed fuzz input through the same checks the cargo-fuzz
//! targets run (`fuzz/checks/`), on the stable toolchain, so a regression
//! fails `make test` without nightly or libFuzzer.
//!
//! - `fuzz/corpus/<target>/`: the minimized corpora `make fuzz` grows. Every
//!   input must pass.
//! - `fuzz/regressions/<target>/`: every crash input a fuzzer ever found,
//!   named for what it shows. Every input must pass once its bug is fixed.
//!
//! Each target gets one test per directory, so a failure names the target,
//! and the panic message lists every failing file.

#[path = "../fuzz/checks/mod.rs"]
mod checks;

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files under `fuzz/<kind>/<target>/`, sorted; none if it is missing.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `check` on every input; panics listing the ones that failed.
fn replay(kind: &str, target: &str, check: fn(&[u8])) -> usize {
    let files = inputs(kind, target);
    let failed: Vec<String> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).unwrap();
            catch_unwind(AssertUnwindSafe(|| check(&data))).is_err()
        })
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} inputs in fuzz/{kind}/{target} fail the check: {failed:?}",
        failed.len(),
        files.len(),
    );
    files.len()
}

macro_rules! corpus {
    ($($target:ident),* $(,)?) => {
        mod corpus {
            $(
                #[test]
                fn $target() {
                    let n = super::replay("corpus", stringify!($target), super::checks::$target::check);
                    assert!(n > 0, "fuzz/corpus/{} is empty", stringify!($target));
                }
            )*
        }
        const CORPUS_REPLAYED: &[&str] = &[$(stringify!($target)),*];
    };
}

macro_rules! regressions {
    ($($target:ident),* $(,)?) => {
        mod regressions {
            $(
                #[test]
                fn $target() {
                    super::replay("regressions", stringify!($target), super::checks::$target::check);
                }
            )*
        }
        const REGRESSIONS_REPLAYED: &[&str] = &[$(stringify!($target)),*];
    };
}

corpus!(
    bus_decode,
    capability_decode,
    capability_diff,
    channel_name,
    channels_membership,
    continuity_decode,
    cortex_decode,
    envelope_from_bytes,
    fork_record_decode,
    ledger_decode,
    mesh_decode,
    migration_decode,
    migration_reassembly,
    mesh_routing,
    portmap_decode,
    proximity_pingwaves,
    redex_idx_record,
    redex_recovery,
    snapshot_decode,
    snapshot_ext_decode,
    snapshot_payload_decode,
    rules_json,
    safety_json,
    token_from_bytes,
    traceparent,
    traversal_rendezvous,
    upnp_decode,
    wire_decode,
);

regressions!(
    bus_decode,
    capability_decode,
    capability_diff,
    channel_name,
    channels_membership,
    continuity_decode,
    cortex_decode,
    envelope_from_bytes,
    fork_record_decode,
    ledger_decode,
    mesh_decode,
    migration_decode,
    migration_reassembly,
    mesh_routing,
    portmap_decode,
    proximity_pingwaves,
    redex_idx_record,
    redex_recovery,
    snapshot_decode,
    snapshot_ext_decode,
    snapshot_payload_decode,
    rules_json,
    safety_json,
    token_from_bytes,
    traceparent,
    traversal_rendezvous,
    upnp_decode,
    wire_decode,
);

/// Targets whose regressions are committed but not yet replayed.
const REGRESSIONS_PENDING: &[&str] = &[];

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Names of the subdirectories of `fuzz/<kind>/`.
fn dirs(kind: &str) -> BTreeSet<String> {
    std::fs::read_dir(fuzz_dir().join(kind))
        .map(|entries| {
            entries
                .map(|e| e.unwrap())
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every fuzz target is replayed, and every directory of inputs belongs to
/// a target: a new target or a misnamed directory cannot slip past.
#[test]
fn every_target_is_replayed() {
    let targets: BTreeSet<String> = checks::TARGETS
        .iter()
        .map(|(n, _)| (*n).to_owned())
        .collect();
    assert_eq!(names(CORPUS_REPLAYED), targets);
    let mut regressions = names(REGRESSIONS_REPLAYED);
    regressions.extend(names(REGRESSIONS_PENDING));
    assert_eq!(regressions, targets);
    assert!(dirs("corpus").is_subset(&targets), "{:?}", dirs("corpus"));
    assert!(
        dirs("regressions").is_subset(&targets),
        "{:?}",
        dirs("regressions")
    );

    let bins: BTreeSet<String> = std::fs::read_dir(fuzz_dir().join("fuzz_targets"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| Some(p.file_stem()?.to_string_lossy().into_owned()))
        .collect();
    assert_eq!(bins, targets, "fuzz/fuzz_targets/ and fuzz/checks/ differ");

    let makefile =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Makefile")).unwrap();
    let line = makefile
        .lines()
        .find_map(|l| l.strip_prefix("FUZZ_TARGETS"))
        .expect("FUZZ_TARGETS in the Makefile");
    let listed: BTreeSet<String> = line
        .trim_start_matches([' ', ':', '='])
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(listed, targets, "the Makefile's FUZZ_TARGETS");
}
