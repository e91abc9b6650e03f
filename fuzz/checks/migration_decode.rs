//! Migration (0x0500) message decoding on untrusted bytes: never panics;
//! a decoded message uses at most the input and re-encodes to exactly the
//! bytes it used (one canonical encoding; trailing bytes are ignored). The
//! in-place SnapshotReady reader agrees with the full decoder.

use net::compute::migration::MigrationMessage;
use net::compute::migration::wire::SnapshotChunk;

/// Panics if `data` breaks a property above.
pub fn check(data: &[u8]) {
    if let Ok((msg, used)) = MigrationMessage::decode_prefix(data) {
        assert!(used <= data.len());
        let encoded = msg.encode().expect("a decoded message re-encodes");
        assert_eq!(encoded.as_slice(), &data[..used]);
        assert_eq!(MigrationMessage::decode(&encoded).as_ref(), Ok(&msg));
    }
    match (SnapshotChunk::parse(data), MigrationMessage::decode(data)) {
        (Ok(None), decoded) => assert!(!matches!(
            decoded,
            Ok(MigrationMessage::SnapshotReady { .. })
        )),
        (
            Ok(Some(chunk)),
            Ok(MigrationMessage::SnapshotReady {
                origin,
                seq_through,
                chunk_index,
                total_chunks,
                bytes,
            }),
        ) => {
            assert_eq!(
                (chunk.origin, chunk.seq_through, chunk.index, chunk.total),
                (origin, seq_through, chunk_index, total_chunks)
            );
            assert_eq!(chunk.bytes, bytes.as_slice());
        }
        (Err(_), Err(_)) => {}
        (parsed, decoded) => panic!("reader {parsed:?} vs decoder {decoded:?}"),
    }
}
