//! The `migration_reassembly` fuzz target; the property lives in `checks/migration_reassembly.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| net_fuzz::migration_reassembly::check(data));
