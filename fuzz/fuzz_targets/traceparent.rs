//! The `traceparent` fuzz target; the property lives in `checks/traceparent.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| net_fuzz::traceparent::check(data));
