//! ForkRecord bytes (COMPUTE.md §3.3) on untrusted input: never panics; an
//! accepted record verifies and re-encodes to the same 65 bytes, except a
//! non-zero flag other than 1 (any non-zero means present) or an ignored
//! snapshot sequence behind a zero flag, which re-encode canonically.

use net::compute::groups::{FORK_RECORD_SIZE, ForkRecord};

/// Panics if `data` breaks a property above.
pub fn check(data: &[u8]) {
    let Ok(record) = ForkRecord::from_bytes(data) else {
        return;
    };
    assert_eq!(data.len(), FORK_RECORD_SIZE);
    assert_eq!(record.verify(), Ok(()));
    let encoded = record.to_bytes();
    assert_eq!(ForkRecord::from_bytes(&encoded), Ok(record));
    assert_eq!(encoded[..56], data[..56]);
    assert_eq!(encoded[56] != 0, data[56] != 0);
}
