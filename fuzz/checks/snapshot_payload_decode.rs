//! A reassembled migration snapshot payload (`CDS1` record, optionally
//! followed by the `NSX1` extension) on untrusted bytes: never panics; an
//! accepted payload re-encodes to the same bytes and its extension is the
//! record's; decoded in two parts (as a migration target's reassembler
//! hands it over, split where the state begins, or elsewhere) it decodes
//! alike.

use net::compute::{
    SNAPSHOT_STATE_OFFSET, decode_migration_payload, decode_owned_migration_parts,
    encode_migration_payload,
};

/// Panics if `data` breaks a property above.
pub fn check(data: &[u8]) {
    let whole = decode_migration_payload(data);
    for at in [SNAPSHOT_STATE_OFFSET, data.len() / 2] {
        let (head, rest) = data.split_at(at.min(data.len()));
        let parts = decode_owned_migration_parts(head.to_vec(), rest.to_vec());
        assert_eq!(parts, whole, "split at {at}");
    }
    if let Ok((snapshot, ext)) = whole {
        if let Some(ext) = &ext {
            assert_eq!(ext.head, snapshot.chain_link);
        }
        let again = encode_migration_payload(&snapshot, ext.as_ref()).expect("re-encodes");
        assert_eq!(again.as_slice(), data);
    }
}
