//! The Net-only snapshot extension (`NSX1`) on untrusted bytes: never
//! panics; an accepted record re-encodes to the same bytes.

use net::compute::NetSnapshotExt;

/// Panics if `data` breaks a property above.
pub fn check(data: &[u8]) {
    if let Ok(ext) = NetSnapshotExt::from_bytes(data) {
        assert_eq!(ext.to_bytes().expect("re-encodes").as_slice(), data);
    }
}
