//! Subscription ledger `bindings_bytes` on untrusted bytes: never panics;
//! an accepted ledger re-encodes to bytes that decode to the same ledger
//! and are never longer than the input (repeated entries collapse).

use net::compute::SubscriptionLedger;

/// Panics if `data` breaks a property above.
pub fn check(data: &[u8]) {
    if let Ok(ledger) = SubscriptionLedger::from_bytes(data) {
        let encoded = ledger.to_bytes().expect("re-encodes");
        assert!(encoded.len() <= data.len());
        assert_eq!(
            SubscriptionLedger::from_bytes(&encoded).as_ref(),
            Ok(&ledger)
        );
    }
}
