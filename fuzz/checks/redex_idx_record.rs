//! The RedEX index-record and manifest decoders on arbitrary bytes: never
//! panic; records re-encode to the same 20 bytes; a manifest that decodes
//! re-encodes to its first 16 bytes.

use net::redex::format::{IDX_RECORD_LEN, IdxRecord, Manifest};

/// Panics if `data` breaks a property above.
pub fn check(data: &[u8]) {
    for record in IdxRecord::decode_all(data) {
        let _ = record.payload.heap_end();
        let bytes = record.encode();
        assert_eq!(IdxRecord::decode(&bytes), record);
    }
    if let Ok(manifest) = Manifest::decode(data) {
        assert_eq!(&manifest.encode()[..], &data[..16]);
    }
    let _ = IDX_RECORD_LEN;
}
