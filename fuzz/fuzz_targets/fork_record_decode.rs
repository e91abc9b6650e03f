//! The `fork_record_decode` fuzz target; the property lives in `checks/fork_record_decode.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| net_fuzz::fork_record_decode::check(data));
