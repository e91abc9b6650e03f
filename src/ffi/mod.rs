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
//! One file per area: `identity.rs`, `token.rs`, `envelope.rs`, `channel.rs`.

mod bytes;
mod channel;
mod envelope;
mod error;
mod export;
pub(crate) mod handle;
pub mod handle_guard;
mod identity;
mod status;
mod sync;
mod token;
mod version;

#[cfg(test)]
mod handle_guard_tests;

pub use bytes::{net_bytes_free, net_bytes_t};
pub use channel::{net_channel_hash, net_channel_validate};
pub use envelope::{
    NET_CHAIN_LINK_LEN, NET_ENVELOPE_SIZE, NET_X25519_KEY_LEN, net_envelope_open,
    net_envelope_seal, net_x25519_public_key,
};
pub use error::net_last_error_message;
pub use handle::retired_handle_count;
pub use identity::{
    NET_PUBLIC_KEY_LEN, NET_SEED_LEN, NET_SIGNATURE_LEN, net_identity_entity_id, net_identity_free,
    net_identity_from_public_key, net_identity_from_seed, net_identity_generate,
    net_identity_is_read_only, net_identity_node_id, net_identity_origin_hash,
    net_identity_public_key, net_identity_seed, net_identity_sign, net_identity_t,
    net_identity_verify,
};
pub use status::net_status_t;
pub use token::{
    NET_SCOPE_ADMIN, NET_SCOPE_ALL, NET_SCOPE_DELEGATE, NET_SCOPE_PUBLISH, NET_SCOPE_SUBSCRIBE,
    NET_SCOPE_WILDCARD, NET_TOKEN_SIZE, net_token_authorizes, net_token_delegate, net_token_info_t,
    net_token_is_expired, net_token_is_valid, net_token_is_valid_at, net_token_issue,
    net_token_parse, net_token_verify,
};
pub use version::{NET_ABI_VERSION, net_abi_version, net_version};

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
