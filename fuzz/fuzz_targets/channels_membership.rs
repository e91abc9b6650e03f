//! The `channels_membership` fuzz target; the property lives in `checks/channels_membership.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| net_fuzz::channels_membership::check(data));
