//! PermissionToken::from_bytes on untrusted bytes: never panics; anything it
//! accepts re-serializes to the same bytes and can be checked without panics.

use net::identity::{PermissionToken, TokenError, TokenScope};

/// Panics if `data` breaks a property above.
pub fn check(data: &[u8]) {
    match PermissionToken::from_bytes(data) {
        Ok(token) => {
            assert_eq!(token.to_bytes().as_slice(), data);
            let _ = token.verify();
            let _ = token.is_valid_at(u64::from_le_bytes([data[0]; 8]));
            let _ = token.authorizes(TokenScope(u32::from(data[1])), u16::from(data[2]));
        }
        Err(err) => assert_eq!(err, TokenError::InvalidFormat),
    }
}
