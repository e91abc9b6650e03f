//! The `channel_name` fuzz target; the property lives in `checks/channel_name.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| net_fuzz::channel_name::check(data));
