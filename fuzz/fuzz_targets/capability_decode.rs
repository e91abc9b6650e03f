//! The `capability_decode` fuzz target; the property lives in `checks/capability_decode.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| net_fuzz::capability_decode::check(data));
