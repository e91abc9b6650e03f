//! The `portmap_decode` fuzz target; the property lives in `checks/portmap_decode.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| net_fuzz::portmap_decode::check(data));
