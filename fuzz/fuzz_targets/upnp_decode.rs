//! The `upnp_decode` fuzz target; the property lives in `checks/upnp_decode.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| net_fuzz::upnp_decode::check(data));
