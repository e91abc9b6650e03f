//! The `redex_idx_record` fuzz target; the property lives in `checks/redex_idx_record.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| net_fuzz::redex_idx_record::check(data));
