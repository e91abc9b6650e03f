//! The `mesh_decode` fuzz target; the property lives in `checks/mesh_decode.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| net_fuzz::mesh_decode::check(data));
