//! Continuity and partition messages (0x0700–0x0702, 0x0800–0x0801) on
//! untrusted bytes. The first input byte picks the subprotocol (modulo
//! five), the rest is the body. Never panics; an accepted message
//! re-encodes, and the re-encoding decodes to the same message. Every
//! message but ForkAnnounce re-encodes to exactly the input (a fork
//! record's flag byte and absent snapshot seq may be any value, as v0.11
//! writes them).

use net::continuity::ContinuityMessage;
use net::wire::subproto::ids;

/// The subprotocols, in selector order.
pub const SUBPROTOCOLS: [u16; 5] = [
    ids::CONTINUITY,
    ids::FORK_ANNOUNCE,
    ids::PROOF_TRANSFER,
    ids::PARTITION,
    ids::RECONCILE,
];

/// Panics if `data` breaks a property above.
pub fn check(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let subprotocol = SUBPROTOCOLS[usize::from(selector) % SUBPROTOCOLS.len()];
    if let Ok(message) = ContinuityMessage::decode(subprotocol, body) {
        assert_eq!(message.subprotocol(), subprotocol);
        let encoded = message.encode().expect("a decoded message re-encodes");
        assert_eq!(
            ContinuityMessage::decode(subprotocol, &encoded).as_ref(),
            Ok(&message)
        );
        if subprotocol != ids::FORK_ANNOUNCE {
            assert_eq!(encoded.as_slice(), body);
        }
    }
}
