//! The `rules_json` fuzz target; the property lives in `checks/rules_json.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| net_fuzz::rules_json::check(data));
