//! Safety configuration, limits and request JSON on untrusted bytes: no
//! decoder panics, and a configuration that decodes builds an envelope that
//! admits and releases a decoded request without panic.

use net::behavior::safety::{SafetyConfig, SafetyEnvelope, SafetyLimits, SafetyRequest};

/// Panics if `data` breaks a property above.
pub fn check(data: &[u8]) {
    let _ = SafetyLimits::from_json(data);
    let request = SafetyRequest::from_json(data)
        .unwrap_or_else(|_| SafetyRequest::new("fuzz").content(String::from_utf8_lossy(data)));
    let Ok(config) = SafetyConfig::from_json(data) else {
        return;
    };
    let envelope = SafetyEnvelope::new(config);
    let _ = envelope.check_at(&request, 0);
    if let Ok(guard) = envelope.acquire_at(&request, u64::MAX) {
        drop(guard);
        assert_eq!(envelope.usage_at(u64::MAX).concurrent, 0);
    }
}
