//! The `capability_diff` fuzz target; the property lives in `checks/capability_diff.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| net_fuzz::capability_diff::check(data));
