//! The `cortex_decode` fuzz target; the property lives in `checks/cortex_decode.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| net_fuzz::cortex_decode::check(data));
