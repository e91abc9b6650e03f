//! The `proximity_pingwaves` fuzz target; the property lives in `checks/proximity_pingwaves.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| net_fuzz::proximity_pingwaves::check(data));
