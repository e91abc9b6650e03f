//! The `token_from_bytes` fuzz target; the property lives in `checks/token_from_bytes.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| net_fuzz::token_from_bytes::check(data));
