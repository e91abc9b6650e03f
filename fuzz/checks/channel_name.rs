//! Channel-name validation on untrusted bytes: never panics; accepted names
//! obey every rule of IDENTITY.md §6.1.

use net::identity::ChannelName;

/// Panics if `data` breaks a property above.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(name) = ChannelName::new(text) {
        let s = name.as_str();
        assert!(!s.is_empty() && s.len() <= 255);
        assert!(!s.starts_with('/') && !s.ends_with('/') && !s.contains("//"));
        assert!(s.split('/').all(|seg| seg != "." && seg != ".."));
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
        );
        let _ = name.hash();
    }
}
