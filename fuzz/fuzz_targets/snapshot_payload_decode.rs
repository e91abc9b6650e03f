//! The `snapshot_payload_decode` fuzz target; the property lives in `checks/snapshot_payload_decode.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| net_fuzz::snapshot_payload_decode::check(data));
