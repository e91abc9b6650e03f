//! Property tests for the identity codecs: garbage in gives a typed error,
//! never a panic; whatever parses re-serializes byte for byte; signed tokens
//! round-trip and any single bit flip breaks them. (The same decoders have
//! cargo-fuzz targets under fuzz/ for longer runs.)

use net::identity::*;
use proptest::prelude::*;

fn keypair(seed: u8) -> EntityKeypair {
    EntityKeypair::from_seed(&[seed; 32])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn token_parse_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        match PermissionToken::from_bytes(&bytes) {
            Ok(token) => {
                prop_assert_eq!(bytes.len(), TOKEN_SIZE);
                prop_assert_eq!(token.to_bytes().to_vec(), bytes.clone());
                // Checking garbage never panics either.
                let _ = token.verify();
                let _ = token.is_valid_at(12345);
            }
            Err(err) => {
                prop_assert_ne!(bytes.len(), TOKEN_SIZE);
                prop_assert_eq!(err, TokenError::InvalidFormat);
            }
        }
    }

    #[test]
    fn exact_size_garbage_tokens_fail_verification(bytes in proptest::collection::vec(any::<u8>(), TOKEN_SIZE)) {
        let token = PermissionToken::from_bytes(&bytes).unwrap();
        prop_assert_eq!(token.verify(), Err(TokenError::InvalidSignature));
    }

    #[test]
    fn envelope_parse_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..400), lead in any::<u8>()) {
        let mut bytes = bytes;
        if !bytes.is_empty() {
            bytes[0] = lead;
        }
        match IdentityEnvelope::from_bytes(&bytes) {
            Ok(envelope) => {
                prop_assert_eq!(envelope.to_bytes().to_vec(), bytes.clone());
                prop_assert!(envelope.open(&[1; 32], &[2; 32], None).is_err());
            }
            Err(EnvelopeError::UnknownVersion(v)) => {
                prop_assert_eq!(Some(v), bytes.first().copied());
                prop_assert_ne!(v, IDENTITY_ENVELOPE_VERSION);
            }
            Err(EnvelopeError::InvalidLength(n)) => {
                prop_assert_eq!(n, bytes.len());
                prop_assert_ne!(n, IDENTITY_ENVELOPE_SIZE);
            }
            Err(other) => prop_assert!(false, "unexpected {:?}", other),
        }
    }

    #[test]
    fn channel_validation_is_total(name in "\\PC{0,300}") {
        if let Ok(channel) = ChannelName::new(&name) {
            prop_assert!(!name.is_empty() && name.len() <= MAX_CHANNEL_NAME_LEN);
            prop_assert!(!name.starts_with('/') && !name.ends_with('/') && !name.contains("//"));
            let _ = channel.hash();
        }
    }

    #[test]
    fn valid_looking_names_are_accepted(segments in proptest::collection::vec("[a-zA-Z0-9_-][a-zA-Z0-9_.-]{0,10}", 1..6)) {
        let name = segments.join("/");
        prop_assume!(name.len() <= MAX_CHANNEL_NAME_LEN);
        prop_assert!(validate_channel_name(&name).is_ok(), "{}", name);
    }

    #[test]
    fn signed_tokens_round_trip_and_resist_bit_flips(
        scope in any::<u32>(),
        channel in any::<u16>(),
        not_before in any::<u64>(),
        ttl in 1u64..1_000_000,
        depth in any::<u8>(),
        nonce in any::<u64>(),
        flip in 0usize..TOKEN_SIGNING_INPUT_LEN * 8,
    ) {
        let issuer = keypair(1);
        let claims = TokenClaims {
            subject: *keypair(2).entity_id(),
            scope: TokenScope(scope),
            channel_hash: channel,
            not_before,
            not_after: not_before.saturating_add(ttl),
            delegation_depth: depth,
            nonce,
        };
        let token = PermissionToken::sign(&issuer, claims).unwrap();
        let bytes = token.to_bytes();
        let parsed = PermissionToken::from_bytes(&bytes).unwrap();
        prop_assert_eq!(parsed, token);
        prop_assert_eq!(parsed.verify(), Ok(()));
        let mut tampered = bytes;
        tampered[flip / 8] ^= 1 << (flip % 8);
        let tampered = PermissionToken::from_bytes(&tampered).unwrap();
        prop_assert_eq!(tampered.verify(), Err(TokenError::InvalidSignature));
    }

    #[test]
    fn envelopes_round_trip_and_bind_the_chain_link(
        seed in any::<[u8; 32]>(),
        target_secret in any::<[u8; 32]>(),
        link in any::<[u8; 32]>(),
        flip in 0usize..256,
    ) {
        let source = EntityKeypair::from_seed(&seed);
        let target_pub = x25519_public_key(&target_secret);
        let envelope = IdentityEnvelope::seal(&source, &target_pub, &link).unwrap();
        let reparsed = IdentityEnvelope::from_bytes(&envelope.to_bytes()).unwrap();
        let opened = reparsed.open(&target_secret, &link, Some(source.entity_id())).unwrap();
        prop_assert_eq!(opened.entity_id(), source.entity_id());
        let mut other_link = link;
        other_link[flip / 8] ^= 1 << (flip % 8);
        prop_assert_eq!(
            reparsed.open(&target_secret, &other_link, None).unwrap_err(),
            EnvelopeError::InvalidAttestation
        );
    }
}
