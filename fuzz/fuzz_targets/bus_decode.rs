//! The `bus_decode` fuzz target; the property lives in `checks/bus_decode.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| net_fuzz::bus_decode::check(data));
