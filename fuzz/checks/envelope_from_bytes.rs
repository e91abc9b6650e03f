//! IdentityEnvelope::from_bytes (and open) on untrusted bytes: never panics;
//! any leading byte other than 1 is UnknownVersion; accepted envelopes
//! re-serialize to the same bytes.

use net::identity::{EnvelopeError, IdentityEnvelope};

/// Panics if `data` breaks a property above.
pub fn check(data: &[u8]) {
    match IdentityEnvelope::from_bytes(data) {
        Ok(envelope) => {
            assert_eq!(envelope.to_bytes().as_slice(), data);
            let _ = envelope.open(&[0x20; 32], &[0x5a; 32], None);
        }
        Err(EnvelopeError::UnknownVersion(v)) => assert_eq!(Some(&v), data.first()),
        Err(EnvelopeError::InvalidLength(n)) => assert_eq!(n, data.len()),
        Err(other) => panic!("from_bytes returned {other:?}"),
    }
}
