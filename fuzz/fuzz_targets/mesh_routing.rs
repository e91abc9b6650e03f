//! The `mesh_routing` fuzz target; the property lives in `checks/mesh_routing.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| net_fuzz::mesh_routing::check(data));
