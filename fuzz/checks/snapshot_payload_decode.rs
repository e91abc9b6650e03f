//! A reassembled migration snapshot payload (`CDS1` record, optionally
//! followed by the `NSX1` extension) on untrusted bytes: never panics; an
//! accepted payload re-encodes to the same bytes and its extension is the
//! record's.

use net::compute::{decode_migration_payload, encode_migration_payload};

/// Panics if `data` breaks a property above.
pub fn check(data: &[u8]) {
    if let Ok((snapshot, ext)) = decode_migration_payload(data) {
        if let Some(ext) = &ext {
            assert_eq!(ext.head, snapshot.chain_link);
        }
        let again = encode_migration_payload(&snapshot, ext.as_ref()).expect("re-encodes");
        assert_eq!(again.as_slice(), data);
    }
}
