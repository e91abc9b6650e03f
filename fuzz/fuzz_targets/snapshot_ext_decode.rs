//! The `snapshot_ext_decode` fuzz target; the property lives in `checks/snapshot_ext_decode.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| net_fuzz::snapshot_ext_decode::check(data));
