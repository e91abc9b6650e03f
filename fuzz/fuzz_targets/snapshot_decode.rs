//! The `snapshot_decode` fuzz target; the property lives in `checks/snapshot_decode.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| net_fuzz::snapshot_decode::check(data));
