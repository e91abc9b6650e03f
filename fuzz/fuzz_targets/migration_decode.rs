//! The `migration_decode` fuzz target; the property lives in `checks/migration_decode.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| net_fuzz::migration_decode::check(data));
