//! The `wire_decode` fuzz target; the property lives in `checks/wire_decode.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| net_fuzz::wire_decode::check(data));
