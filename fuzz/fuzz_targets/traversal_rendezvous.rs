//! The `traversal_rendezvous` fuzz target; the property lives in `checks/traversal_rendezvous.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| net_fuzz::traversal_rendezvous::check(data));
