//! The C ABI: the only module with `extern "C"`.
//!
//! Conventions (DESIGN.md, "The C ABI"): every fallible call returns a
//! [`net_status_t`]; details go to the thread-local
//! [`net_last_error_message`]; outputs are written through out-parameters only
//! on success; variable-size results are [`net_bytes_t`] released with
//! [`net_bytes_free`]; every handle embeds a [`handle_guard::HandleGuard`] and
//! every entry point runs through the `ffi_export!` macro (argument checks,
//! guard entry, `catch_unwind`).
//!
//! One file per area: `identity.rs`, `token.rs`, `envelope.rs`, `channel.rs`,
//! `redex.rs`, `cortex.rs`, `mesh.rs`, `compute.rs`, `bus.rs`, `behavior.rs`, `version.rs`.

mod behavior;
mod bus;
mod bytes;
mod cancel;
mod channel;
mod channels;
mod compute;
mod compute_channels;
mod compute_group;
mod continuity;
mod cortex;
mod envelope;
mod error;
mod export;
pub(crate) mod handle;
pub mod handle_guard;
mod identity;
mod log;
mod mesh;
mod netdb;
mod redex;
mod status;
mod sync;
mod token;
mod traversal;
mod turn;
mod version;

// Handle pointers carry a generation in bits a 64-bit address leaves free.
const _: () = assert!(usize::BITS == 64, "libnet's C ABI needs a 64-bit target");

#[cfg(test)]
mod handle_guard_tests;

// Every public item of the area files is part of the C ABI.
pub use behavior::*;
pub use bus::*;
pub use bytes::*;
pub use cancel::*;
pub use channel::*;
pub use channels::*;
pub use compute::*;
pub use compute_channels::*;
pub use compute_group::*;
pub use continuity::*;
pub use cortex::*;
pub use envelope::*;
pub use error::net_last_error_message;
#[cfg(feature = "test-util")]
pub use handle::calls_in_flight;
pub use handle::{handle_slot_count, live_handle_count};
pub use identity::*;
pub use log::*;
pub use mesh::*;
pub use netdb::*;
pub use redex::*;
pub use status::*;
pub use token::*;
pub use version::*;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity;

    /// The header's constants are literals (cbindgen cannot follow paths into
    /// other modules); pin each one to the Rust constant it mirrors.
    #[test]
    fn abi_constants_match_the_rust_constants() {
        assert_eq!(NET_SEED_LEN, identity::SEED_LEN);
        assert_eq!(NET_PUBLIC_KEY_LEN, identity::PUBLIC_KEY_LEN);
        assert_eq!(NET_SIGNATURE_LEN, identity::SIGNATURE_LEN);
        assert_eq!(NET_TOKEN_SIZE, identity::TOKEN_SIZE);
        assert_eq!(NET_ENVELOPE_SIZE, identity::IDENTITY_ENVELOPE_SIZE);
        assert_eq!(NET_CHAIN_LINK_LEN, identity::CHAIN_LINK_LEN);
        assert_eq!(NET_X25519_KEY_LEN, identity::X25519_KEY_LEN);
        assert_eq!(NET_SCOPE_PUBLISH, identity::TokenScope::PUBLISH.bits());
        assert_eq!(NET_SCOPE_SUBSCRIBE, identity::TokenScope::SUBSCRIBE.bits());
        assert_eq!(NET_SCOPE_ADMIN, identity::TokenScope::ADMIN.bits());
        assert_eq!(NET_SCOPE_DELEGATE, identity::TokenScope::DELEGATE.bits());
        assert_eq!(NET_SCOPE_WILDCARD, identity::TokenScope::WILDCARD.bits());
        assert_eq!(NET_SCOPE_ALL, identity::TokenScope::ALL.bits());
    }

    #[test]
    fn status_codes_are_unique_and_signed_as_documented() {
        let mut codes: Vec<i32> = net_status_t::ALL.iter().map(|s| s.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), net_status_t::ALL.len());
        assert_eq!(net_status_t::NET_OK.code(), 0);
        assert_eq!(net_status_t::NET_TIMEOUT.code(), 1);
        assert_eq!(net_status_t::NET_END.code(), 2);
        for status in net_status_t::ALL {
            assert_eq!(
                status.is_ok(),
                !format!("{status:?}").starts_with("NET_ERR_")
            );
        }
    }
}
