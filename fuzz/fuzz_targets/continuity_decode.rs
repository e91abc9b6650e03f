//! The `continuity_decode` fuzz target; the property lives in `checks/continuity_decode.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| net_fuzz::continuity_decode::check(data));
