//! Migration (0x0500) message decoding on untrusted bytes: never panics;
//! a decoded message uses at most the input and re-encodes to exactly the
//! bytes it used (one canonical encoding; trailing bytes are ignored).

use net::compute::migration::MigrationMessage;

/// Panics if `data` breaks a property above.
pub fn check(data: &[u8]) {
    if let Ok((msg, used)) = MigrationMessage::decode_prefix(data) {
        assert!(used <= data.len());
        let encoded = msg.encode().expect("a decoded message re-encodes");
        assert_eq!(encoded.as_slice(), &data[..used]);
        assert_eq!(MigrationMessage::decode(&encoded).as_ref(), Ok(&msg));
    }
}
