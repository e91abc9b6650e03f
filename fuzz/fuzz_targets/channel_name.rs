//! Channel-name validation on untrusted bytes: never panics; accepted names
//! obey every rule of IDENTITY.md §6.1.
#![no_main]

use libfuzzer_sys::fuzz_target;
use net::identity::ChannelName;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(name) = ChannelName::new(text) {
        let s = name.as_str();
        assert!(!s.is_empty() && s.len() <= 255);
        assert!(!s.starts_with('/') && !s.ends_with('/') && !s.contains("//"));
        assert!(s.split('/').all(|seg| seg != "." && seg != ".."));
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b)));
        let _ = name.hash();
    }
});
