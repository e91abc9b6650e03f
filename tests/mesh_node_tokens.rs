//! Every token case of issue 13 through real nodes (MESH2.md §1.3, §7
//! item 4): a subscriber presents a token in its Subscribe and the
//! publisher's node decides. No token, an expired one, the wrong scope,
//! the wrong channel, an untrusted issuer (and the same issuer once the
//! channel names it), a delegated token (refused until the publisher holds
//! the parent, then delivered to), and delegations that were not allowed:
//! a depth already spent and a parent without the DELEGATE scope. Each
//! refusal is checked to leave no subscriber behind; each acceptance is
//! checked by a publish that arrives.
//!
//! `tests/mesh_channels.rs` proves the chain rules on the pure hub; these
//! prove the node carries the token over the wire and applies them.

mod mesh_common;

use std::time::Duration;

use mesh_common::{bound_link, channel_subscribers, nothing_for, recv_n, started_node};
use net::identity::{
    ChannelName, EntityKeypair, PermissionToken, TokenClaims, TokenScope, unix_now,
};
use net::mesh::channels::{ChannelConfig, IssuerTrust};
use net::mesh::*;
use net::wire::AckReason;

const PUBLISHER_SEED: u8 = 0x41;
const SUBSCRIBER_SEED: u8 = 0x42;

/// A started node whose identity derives from `[seed; 32]`. The refusals
/// of one test stay under the auth-failure throttle (it is proved
/// elsewhere), so every refusal here is the token's.
fn seeded(seed: u8) -> MeshNode {
    let seed_hex: String = std::iter::repeat_n(format!("{seed:02x}"), 32).collect();
    started_node(&format!(
        r#","identity_seed_hex":"{seed_hex}","max_auth_failures_per_window":1000"#
    ))
}

fn key(seed: u8) -> EntityKeypair {
    EntityKeypair::from_seed(&[seed; 32])
}

fn name(s: &str) -> ChannelName {
    ChannelName::new(s).unwrap()
}

/// Publisher and subscriber, linked, with the identity exchange done.
fn pair() -> (MeshNode, MeshNode) {
    let publisher = seeded(PUBLISHER_SEED);
    let subscriber = seeded(SUBSCRIBER_SEED);
    bound_link(&subscriber, &publisher);
    (publisher, subscriber)
}

fn gated(publisher: &MeshNode, channel: &ChannelName, trusted: IssuerTrust) {
    publisher
        .register_channel(
            channel,
            ChannelConfig {
                require_token: true,
                trusted_issuers: trusted,
                ..ChannelConfig::default()
            },
        )
        .unwrap();
}

fn subscribers(n: &MeshNode, channel: &ChannelName) -> u64 {
    channel_subscribers(n, channel.as_str())
}

/// The subscribe with `token` is refused as Unauthorized and leaves the
/// publisher's roster as it was.
fn refused(
    publisher: &MeshNode,
    subscriber: &MeshNode,
    channel: &ChannelName,
    token: Option<&PermissionToken>,
    case: &str,
) {
    let before = subscribers(publisher, channel);
    match subscriber.subscribe(publisher.node_id(), channel, token, None) {
        Err(ChannelError::Rejected(AckReason::Unauthorized)) => {}
        other => panic!("{case}: expected Unauthorized, got {other:?}"),
    }
    assert_eq!(subscribers(publisher, channel), before, "{case}");
}

/// The subscribe with `token` is accepted and a publish then arrives,
/// tagged with the channel, exactly once.
fn accepted(
    publisher: &MeshNode,
    subscriber: &MeshNode,
    channel: &ChannelName,
    token: &PermissionToken,
) {
    subscriber
        .subscribe(publisher.node_id(), channel, Some(token), None)
        .unwrap();
    assert_eq!(subscribers(publisher, channel), 1);
    let report = publisher.publish(channel, &[b"granted"], true).unwrap();
    assert_eq!((report.attempted, report.delivered), (1, 1));
    let got = recv_n(subscriber, 1);
    assert_eq!(got[0].data, b"granted");
    assert_eq!(got[0].channel.as_ref(), Some(channel));
    assert!(nothing_for(subscriber, 200), "delivered once");
}

/// A token signed by `issuer` with explicit claims (for the cases the
/// issuing helpers refuse to make: already expired, over-delegated).
fn signed(
    issuer: &EntityKeypair,
    subject: &EntityKeypair,
    scope: TokenScope,
    channel: &ChannelName,
    not_before: u64,
    not_after: u64,
    delegation_depth: u8,
) -> PermissionToken {
    PermissionToken::sign(
        issuer,
        TokenClaims {
            subject: *subject.entity_id(),
            scope,
            channel_hash: channel.hash(),
            not_before,
            not_after,
            delegation_depth,
            nonce: next_nonce(),
        },
    )
    .unwrap()
}

/// Distinct nonces (their only job here: no two tokens alike).
fn next_nonce() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0x7e57_0000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[test]
fn no_token_expired_wrong_scope_and_wrong_channel_are_refused_and_a_good_one_is_not() {
    let (publisher, subscriber) = pair();
    let (pk, sk) = (key(PUBLISHER_SEED), key(SUBSCRIBER_SEED));
    let channel = name("tokens/basic");
    let other = name("tokens/other");
    gated(&publisher, &channel, IssuerTrust::default());
    gated(&publisher, &other, IssuerTrust::default());
    let now = unix_now();

    refused(&publisher, &subscriber, &channel, None, "no token");
    let expired = signed(
        &pk,
        &sk,
        TokenScope::SUBSCRIBE,
        &channel,
        now - 120,
        now - 60,
        0,
    );
    refused(&publisher, &subscriber, &channel, Some(&expired), "expired");
    let not_yet = signed(
        &pk,
        &sk,
        TokenScope::SUBSCRIBE,
        &channel,
        now + 600,
        now + 1200,
        0,
    );
    refused(&publisher, &subscriber, &channel, Some(&not_yet), "not yet");
    let publish_only = signed(&pk, &sk, TokenScope::PUBLISH, &channel, now, now + 60, 0);
    refused(
        &publisher,
        &subscriber,
        &channel,
        Some(&publish_only),
        "wrong scope",
    );
    let for_other = signed(&pk, &sk, TokenScope::SUBSCRIBE, &other, now, now + 60, 0);
    refused(
        &publisher,
        &subscriber,
        &channel,
        Some(&for_other),
        "wrong channel",
    );
    // A token for someone else (the publisher's own subject) is not ours.
    let not_ours = signed(&pk, &pk, TokenScope::SUBSCRIBE, &channel, now, now + 60, 0);
    refused(
        &publisher,
        &subscriber,
        &channel,
        Some(&not_ours),
        "wrong subject",
    );
    // A flipped signature byte.
    let good = signed(&pk, &sk, TokenScope::SUBSCRIBE, &channel, now, now + 60, 0);
    let mut bytes = good.to_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    let tampered = PermissionToken::from_bytes(&bytes).unwrap();
    refused(
        &publisher,
        &subscriber,
        &channel,
        Some(&tampered),
        "bad signature",
    );

    // The token for the other channel is good there.
    accepted(&publisher, &subscriber, &other, &for_other);
    // And the right one here (SUBSCRIBE | PUBLISH includes SUBSCRIBE).
    let both = signed(
        &pk,
        &sk,
        TokenScope::SUBSCRIBE | TokenScope::PUBLISH,
        &channel,
        now,
        now + 60,
        0,
    );
    accepted(&publisher, &subscriber, &channel, &both);
    let json: serde_json::Value = serde_json::from_str(&publisher.channels_json()).unwrap();
    assert!(json["counters"]["refused"].as_u64().unwrap() >= 7);
}

#[test]
fn an_untrusted_issuer_is_refused_until_the_channel_names_it() {
    let (publisher, subscriber) = pair();
    let sk = key(SUBSCRIBER_SEED);
    let authority = EntityKeypair::from_seed(&[0x43; 32]);
    let channel = name("tokens/issuers");
    gated(&publisher, &channel, IssuerTrust::default());
    let token = PermissionToken::issue(
        &authority,
        *sk.entity_id(),
        TokenScope::SUBSCRIBE,
        channel.hash(),
        Duration::from_secs(60),
        0,
    )
    .unwrap();
    refused(
        &publisher,
        &subscriber,
        &channel,
        Some(&token),
        "untrusted issuer",
    );
    // Naming the authority as a trusted issuer makes the same token good.
    gated(
        &publisher,
        &channel,
        IssuerTrust::Issuers(vec![*authority.entity_id()]),
    );
    accepted(&publisher, &subscriber, &channel, &token);
    // Replacing the config with one that trusts nobody else evicts it.
    gated(&publisher, &channel, IssuerTrust::default());
    assert_eq!(subscribers(&publisher, &channel), 0);
    assert_eq!(
        publisher
            .publish(&channel, &[b"x"], false)
            .unwrap()
            .attempted,
        0
    );
    assert!(nothing_for(&subscriber, 200));
}

#[test]
fn a_delegated_token_counts_once_the_publisher_holds_its_parent() {
    let (publisher, subscriber) = pair();
    let (pk, sk) = (key(PUBLISHER_SEED), key(SUBSCRIBER_SEED));
    let operator = EntityKeypair::from_seed(&[0x44; 32]);
    let channel = name("tokens/delegated");
    gated(&publisher, &channel, IssuerTrust::default());
    // The publisher lets an operator hand out subscriptions (one level).
    let parent = PermissionToken::issue(
        &pk,
        *operator.entity_id(),
        TokenScope::SUBSCRIBE | TokenScope::DELEGATE,
        channel.hash(),
        Duration::from_secs(60),
        1,
    )
    .unwrap();
    let leaf = parent
        .delegate(&operator, *sk.entity_id(), TokenScope::SUBSCRIBE)
        .unwrap();
    // The Subscribe carries only the leaf: the chain cannot be rebuilt.
    refused(
        &publisher,
        &subscriber,
        &channel,
        Some(&leaf),
        "delegated, parent unknown",
    );
    publisher.install_channel_token(parent).unwrap();
    accepted(&publisher, &subscriber, &channel, &leaf);
}

#[test]
fn an_exhausted_or_forbidden_delegation_is_refused() {
    let (publisher, subscriber) = pair();
    let (pk, sk) = (key(PUBLISHER_SEED), key(SUBSCRIBER_SEED));
    let first = EntityKeypair::from_seed(&[0x45; 32]);
    let second = EntityKeypair::from_seed(&[0x46; 32]);
    let channel = name("tokens/exhausted");
    gated(&publisher, &channel, IssuerTrust::default());
    let now = unix_now();
    // publisher -> first (depth 1) -> second (depth 0): second may not
    // delegate again, and the helper refuses to.
    let root = signed(
        &pk,
        &first,
        TokenScope::SUBSCRIBE | TokenScope::DELEGATE,
        &channel,
        now,
        now + 60,
        1,
    );
    let middle = root
        .delegate(&first, *second.entity_id(), TokenScope::ALL)
        .unwrap();
    assert_eq!(middle.delegation_depth(), 0);
    assert!(matches!(
        middle.delegate(&second, *sk.entity_id(), TokenScope::SUBSCRIBE),
        Err(net::identity::TokenError::DelegationExhausted)
    ));
    // A hand-signed grandchild claims what the depth no longer allows.
    let over = signed(
        &second,
        &sk,
        TokenScope::SUBSCRIBE,
        &channel,
        now,
        now + 60,
        0,
    );
    publisher.install_channel_token(root).unwrap();
    publisher.install_channel_token(middle).unwrap();
    refused(
        &publisher,
        &subscriber,
        &channel,
        Some(&over),
        "delegation exhausted",
    );
    // A parent without DELEGATE cannot have children either (on another
    // channel, so `root` is no candidate parent).
    let forbidden = name("tokens/forbidden");
    gated(&publisher, &forbidden, IssuerTrust::default());
    let plain = signed(
        &pk,
        &first,
        TokenScope::SUBSCRIBE,
        &forbidden,
        now,
        now + 60,
        3,
    );
    let child_of_plain = signed(
        &first,
        &sk,
        TokenScope::SUBSCRIBE,
        &forbidden,
        now,
        now + 60,
        0,
    );
    publisher.install_channel_token(plain).unwrap();
    refused(
        &publisher,
        &subscriber,
        &forbidden,
        Some(&child_of_plain),
        "parent without DELEGATE",
    );
    // A child that claims more than its (delegating) parent's lifetime.
    let outliving = signed(
        &first,
        &sk,
        TokenScope::SUBSCRIBE,
        &channel,
        now,
        now + 3600,
        0,
    );
    refused(
        &publisher,
        &subscriber,
        &channel,
        Some(&outliving),
        "child outlives parent",
    );
    // The one legitimate link still works: first's own token is a valid
    // one-hop chain for first, and a proper child of root is for us.
    let proper = root
        .delegate(&first, *sk.entity_id(), TokenScope::SUBSCRIBE)
        .unwrap();
    accepted(&publisher, &subscriber, &channel, &proper);
}
