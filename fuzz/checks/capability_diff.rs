//! Capability-diff JSON on untrusted bytes: decoding never panics; a diff
//! that decodes re-encodes to an equal diff and applies (strict or not)
//! without panic, all or nothing.

use net::behavior::diff::CapabilityDiff;
use net::mesh::capability::caps::CapabilitySet;

/// Panics if `data` breaks a property above.
pub fn check(data: &[u8]) {
    let Ok(diff) = CapabilityDiff::from_json(data) else {
        return;
    };
    if let Ok(bytes) = diff.to_json() {
        assert_eq!(
            CapabilityDiff::from_json(&bytes).expect("re-encoded diff decodes"),
            diff
        );
    }
    for strict in [true, false] {
        let mut set = CapabilitySet::default();
        match diff.apply(&mut set, diff.base_version, strict) {
            Ok(v) => assert_eq!(v, diff.new_version),
            Err(_) => assert_eq!(
                set,
                CapabilitySet::default(),
                "a failed apply changed the set"
            ),
        }
    }
}
