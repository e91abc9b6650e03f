//! The `ledger_decode` fuzz target; the property lives in `checks/ledger_decode.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| net_fuzz::ledger_decode::check(data));
