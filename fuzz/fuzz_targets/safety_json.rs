//! The `safety_json` fuzz target; the property lives in `checks/safety_json.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| net_fuzz::safety_json::check(data));
