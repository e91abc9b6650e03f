//! The `redex_recovery` fuzz target; the property lives in `checks/redex_recovery.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| net_fuzz::redex_recovery::check(data));
