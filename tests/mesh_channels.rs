//! Channels (MESH2.md §1) through `ChannelHub`, the pure machine the node
//! drives: the membership vectors of v0.11 (subprotocols.json) and the
//! channel hashes (channels.json) byte for byte, every token case, the
//! reference's channel and subnet scenarios (MESH2.md §8), and each
//! "better than v0.11" item of issue 13 for channels (MESH2.md §7 items
//! 4–9). No sockets, no sleeps: time is an argument.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use net::identity::{
    ChannelName, EntityKeypair, PermissionToken, TokenClaims, TokenScope, publish_stream_id,
};
use net::mesh::channels::*;
use net::wire::{AckReason, Membership, flags};
use proptest::prelude::*;
use serde_json::Value;

const T0: u64 = 1_700_000_000;
const LOCAL: u64 = 1;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn hex_of(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn name(s: &str) -> ChannelName {
    ChannelName::new(s).unwrap()
}

fn key(n: u64) -> EntityKeypair {
    EntityKeypair::from_seed(&[n as u8; 32])
}

/// A token signed by `issuer` for `subject`, live from T0−10 until
/// T0+`ttl`.
fn token(
    issuer: &EntityKeypair,
    subject: &EntityKeypair,
    scope: TokenScope,
    channel: &ChannelName,
    ttl: u64,
    depth: u8,
) -> PermissionToken {
    PermissionToken::sign(
        issuer,
        TokenClaims {
            subject: *subject.entity_id(),
            scope,
            channel_hash: channel.hash(),
            not_before: T0 - 10,
            not_after: T0 + ttl,
            delegation_depth: depth,
            nonce: ttl ^ u64::from(depth),
        },
    )
    .unwrap()
}

fn tags(list: &[&str]) -> Option<BTreeSet<String>> {
    Some(list.iter().map(|s| s.to_string()).collect())
}

/// A sequence counter for request nonces of the peers we simulate.
struct World {
    hub: ChannelHub,
    peers: BTreeMap<u64, PeerFacts>,
    start: Instant,
    elapsed: Duration,
    next_nonce: u64,
}

impl World {
    fn new() -> Self {
        Self::with(ChannelsSettings::default(), SubnetId::GLOBAL)
    }

    fn with(settings: ChannelsSettings, subnet: SubnetId) -> Self {
        let local = LocalNode {
            node_id: LOCAL,
            entity: Some(*key(LOCAL).entity_id()),
            subnet,
        };
        Self {
            hub: ChannelHub::new(local, settings),
            peers: BTreeMap::new(),
            start: Instant::now(),
            elapsed: Duration::ZERO,
            next_nonce: 1,
        }
    }

    fn now(&self) -> Now {
        Now {
            instant: self.start + self.elapsed,
            unix_secs: T0 + self.elapsed.as_secs(),
        }
    }

    fn advance(&mut self, by: Duration) {
        self.elapsed += by;
    }

    /// A peer with the entity `key(id)`, GLOBAL, no capabilities, `kind`.
    fn peer(&mut self, id: u64, kind: PeerKind) {
        self.peers.insert(
            id,
            PeerFacts {
                entity: Some(*key(id).entity_id()),
                kind,
                ..PeerFacts::default()
            },
        );
    }

    fn register(&mut self, channel: &str, config: ChannelConfig) -> Vec<Eviction> {
        let now = self.now();
        self.hub
            .register(name(channel), config, &self.peers, now)
            .unwrap()
    }

    /// `peer` sends a Subscribe (through the codec); returns the Ack.
    fn subscribe(
        &mut self,
        peer: u64,
        channel: &str,
        token: Option<&PermissionToken>,
    ) -> (bool, AckReason, Vec<ChannelEvent>) {
        let nonce = self.next_nonce;
        self.next_nonce += 1;
        let message = Membership::Subscribe {
            nonce,
            channel: name(channel),
            token: token.map(|t| t.to_bytes().to_vec()),
        };
        self.send(peer, &message.encode(), nonce)
    }

    fn unsubscribe(&mut self, peer: u64, channel: &str) -> (bool, AckReason, Vec<ChannelEvent>) {
        let nonce = self.next_nonce;
        self.next_nonce += 1;
        let message = Membership::Unsubscribe {
            nonce,
            channel: name(channel),
        };
        self.send(peer, &message.encode(), nonce)
    }

    fn send(
        &mut self,
        peer: u64,
        bytes: &[u8],
        nonce: u64,
    ) -> (bool, AckReason, Vec<ChannelEvent>) {
        let now = self.now();
        let facts = self.peers.get(&peer).cloned().unwrap_or_default();
        let outcome = self
            .hub
            .handle_bytes(&facts.context(peer), bytes, now)
            .unwrap();
        match outcome.reply {
            Some(Membership::Ack {
                nonce: echoed,
                accepted,
                reason,
            }) => {
                assert_eq!(echoed, nonce, "the Ack echoes the request's nonce");
                (accepted, reason, outcome.events)
            }
            other => panic!("expected an Ack, got {other:?}"),
        }
    }

    fn accepted(&mut self, peer: u64, channel: &str, token: Option<&PermissionToken>) -> bool {
        self.subscribe(peer, channel, token).0
    }

    fn reason(&mut self, peer: u64, channel: &str, token: Option<&PermissionToken>) -> AckReason {
        self.subscribe(peer, channel, token).1
    }

    fn plan(&mut self, channel: &str) -> (PublishPlan, Vec<Eviction>) {
        let now = self.now();
        self.hub
            .plan_publish(&name(channel), None, &self.peers, now)
            .unwrap()
    }

    fn targets(&mut self, channel: &str) -> Vec<u64> {
        self.plan(channel)
            .0
            .targets
            .iter()
            .map(|t| t.peer)
            .collect()
    }
}

fn token_channel() -> ChannelConfig {
    ChannelConfig {
        require_token: true,
        ..ChannelConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Vectors
// ---------------------------------------------------------------------------

#[test]
fn membership_vectors_through_the_hub() {
    let doc = load("subprotocols.json");
    let m = &doc["membership_0x0A00"];
    let mut w = World::new();
    w.peer(2, PeerKind::Legacy);
    w.register("sensors/lidar", ChannelConfig::default());

    // v0.11's Subscribe (nonce 1, no token) is accepted with v0.11's Ack.
    let subscribe = hex_of(&m["subscribe_no_token(nonce 1, sensors/lidar)"]);
    let (accepted, reason, _) = w.send(2, &subscribe, 1);
    assert!(accepted && reason == AckReason::Ok);
    let now = w.now();
    let reply = w
        .hub
        .handle_bytes(&w.peers[&2].context(2), &subscribe, now)
        .unwrap()
        .reply
        .unwrap();
    assert_eq!(reply.encode(), hex_of(&m["ack_accepted(nonce 1)"]));

    // The legacy form without a token length decodes and is accepted too.
    let legacy = &subscribe[..subscribe.len() - 2];
    assert!(w.send(2, legacy, 1).0);

    // Unsubscribe (nonce 2) is always acked accepted.
    let unsubscribe = hex_of(&m["unsubscribe(nonce 2)"]);
    let now = w.now();
    let reply = w
        .hub
        .handle_bytes(&w.peers[&2].context(2), &unsubscribe, now)
        .unwrap()
        .reply
        .unwrap();
    assert_eq!(
        reply.encode(),
        Membership::Ack {
            nonce: 2,
            accepted: true,
            reason: AckReason::Ok
        }
        .encode()
    );
    assert_eq!(w.hub.roster().subscriber_count(&name("sensors/lidar")), 0);

    // A peer at the channel cap gets exactly v0.11's TooManyChannels Ack.
    let mut capped = World::with(
        ChannelsSettings {
            max_channels_per_peer: 1,
            ..ChannelsSettings::default()
        },
        SubnetId::GLOBAL,
    );
    capped.peer(2, PeerKind::Legacy);
    capped.register("sensors/lidar", ChannelConfig::default());
    capped.register("other", ChannelConfig::default());
    assert!(capped.accepted(2, "other", None));
    let mut request = Membership::decode(&subscribe).unwrap();
    if let Membership::Subscribe { nonce, .. } = &mut request {
        *nonce = 2;
    }
    let now = capped.now();
    let reply = capped
        .hub
        .handle(&capped.peers[&2].context(2), &request, now)
        .reply
        .unwrap();
    assert_eq!(
        reply.encode(),
        hex_of(&m["ack_rejected_too_many_channels(nonce 2)"])
    );

    // The vector's token (159 × 0xAB) does not verify: it counts as absent,
    // so a token channel refuses with Unauthorized.
    let mut gated = World::new();
    gated.peer(2, PeerKind::Legacy);
    gated.register("sensors/lidar", token_channel());
    let with_token =
        hex_of(&m["subscribe_with_token(nonce 0x1122334455667788, 159 bytes of 0xAB)"]);
    let (accepted, reason, _) = gated.send(2, &with_token, 0x1122_3344_5566_7788);
    assert!(!accepted);
    assert_eq!(reason, AckReason::Unauthorized);

    // A stray byte after the name is a decode error: dropped and counted.
    let mut stray = subscribe[..subscribe.len() - 2].to_vec();
    stray.push(0);
    let now = w.now();
    assert!(
        w.hub
            .handle_bytes(&w.peers[&2].context(2), &stray, now)
            .is_err()
    );
    assert_eq!(w.hub.counters().malformed, 1);
}

#[test]
fn our_requests_are_v011_bytes_with_a_random_nonce() {
    let doc = load("subprotocols.json");
    let m = &doc["membership_0x0A00"];
    let mut w = World::new();
    let now = w.now();
    let lidar = name("sensors/lidar");
    let request = w.hub.subscribe(7, &lidar, None, now).unwrap();
    let mut bytes = request.encode();
    let nonce = u64::from_le_bytes(bytes[1..9].try_into().unwrap());
    // Only the nonce differs from v0.11's Subscribe(nonce 1).
    bytes[1..9].copy_from_slice(&1u64.to_le_bytes());
    assert_eq!(
        bytes,
        hex_of(&m["subscribe_no_token(nonce 1, sensors/lidar)"])
    );
    assert!(nonce > 2, "a random nonce, not v0.11's counter");

    let request = w.hub.unsubscribe(7, &lidar, now).unwrap();
    let mut bytes = request.encode();
    bytes[1..9].copy_from_slice(&2u64.to_le_bytes());
    assert_eq!(bytes, hex_of(&m["unsubscribe(nonce 2)"]));
}

#[test]
fn channel_hashes_and_publish_stream_ids_match_the_vectors() {
    let doc = load("channels.json");
    let mut w = World::new();
    w.peer(2, PeerKind::Legacy);
    for entry in doc["hashes"].as_array().unwrap() {
        let channel = entry["name"].as_str().unwrap();
        let stream_id = u64::from_str_radix(
            entry["publish_stream_id"]
                .as_str()
                .unwrap()
                .trim_start_matches("0x"),
            16,
        )
        .unwrap();
        let hash = u16::from_str_radix(
            entry["hash_u16"].as_str().unwrap().trim_start_matches("0x"),
            16,
        )
        .unwrap();
        w.register(channel, ChannelConfig::default());
        assert!(w.accepted(2, channel, None));
        assert_eq!(
            w.hub.registry().lookup_hash(hash),
            HashLookup::Channel(&name(channel))
        );
        let (plan, _) = w.plan(channel);
        assert_eq!(plan.stream_id, stream_id, "{channel}");
        assert_eq!(publish_stream_id(hash), stream_id);
        assert_eq!(publish_stream_hash(stream_id), Some(hash));
    }
}

// ---------------------------------------------------------------------------
// Tokens: every case
// ---------------------------------------------------------------------------

#[test]
fn every_token_case() {
    let lidar = name("sensors/lidar");
    let other = name("other");
    let (root, alice, bob, mallory) = (key(LOCAL), key(2), key(3), key(4));
    let sub = TokenScope::SUBSCRIBE;
    let mut w = World::new();
    for id in 2..=4 {
        w.peer(id, PeerKind::Net);
    }
    w.register("sensors/lidar", token_channel());
    let denied = |reason| (false, reason);

    // None.
    let r = w.subscribe(2, "sensors/lidar", None);
    assert_eq!((r.0, r.1), denied(AckReason::Unauthorized));
    assert!(matches!(
        &r.2[0],
        ChannelEvent::Refused {
            deny: Deny::Token(TokenProblem::Missing),
            ..
        }
    ));

    let refused = |w: &mut World, peer, t: &PermissionToken| -> Deny {
        let (accepted, reason, events) = w.subscribe(peer, "sensors/lidar", Some(t));
        assert!(!accepted);
        assert_eq!(reason, AckReason::Unauthorized);
        match &events[0] {
            ChannelEvent::Refused { deny, .. } => *deny,
            other => panic!("{other:?}"),
        }
    };

    // Expired: not_after is already expired (T0 + 0 at T0).
    let expired = token(&root, &alice, sub, &lidar, 0, 0);
    assert_eq!(
        refused(&mut w, 2, &expired),
        Deny::Token(TokenProblem::Expired)
    );
    // Not yet valid.
    let mut claims = *token(&root, &alice, sub, &lidar, 60, 0).claims();
    claims.not_before = T0 + 30;
    let early = PermissionToken::sign(&root, claims).unwrap();
    assert_eq!(
        refused(&mut w, 2, &early),
        Deny::Token(TokenProblem::NotYetValid)
    );
    // Wrong scope.
    let publish_only = token(&root, &alice, TokenScope::PUBLISH, &lidar, 60, 0);
    assert_eq!(
        refused(&mut w, 2, &publish_only),
        Deny::Token(TokenProblem::WrongScope)
    );
    // Wrong channel.
    let elsewhere = token(&root, &alice, sub, &other, 60, 0);
    assert_eq!(
        refused(&mut w, 2, &elsewhere),
        Deny::Token(TokenProblem::WrongChannel)
    );
    // Wrong subject: Alice's token presented by Bob is no token of Bob's.
    let alices = token(&root, &alice, sub, &lidar, 60, 0);
    assert_eq!(
        refused(&mut w, 3, &alices),
        Deny::Token(TokenProblem::Missing)
    );
    // Untrusted issuer: Mallory mints her own token.
    let self_minted = token(&mallory, &mallory, TokenScope::ALL, &lidar, 60, 3);
    assert_eq!(
        refused(&mut w, 4, &self_minted),
        Deny::Token(TokenProblem::UntrustedIssuer)
    );
    // Forged: a valid token with one flipped byte verifies no more.
    let mut forged = alices.to_bytes();
    forged[100] ^= 1;
    let forged = PermissionToken::from_bytes(&forged).unwrap();
    assert_eq!(
        refused(&mut w, 2, &forged),
        Deny::Token(TokenProblem::Missing)
    );

    // Valid, from the local node (the channel's root).
    assert!(w.accepted(2, "sensors/lidar", Some(&alices)));

    // Delegated: root → Alice (DELEGATE, depth 1) → Bob. v0.11 Subscribes
    // carry one token, so the parent must be known: installed here.
    let parent = token(&root, &alice, sub | TokenScope::DELEGATE, &lidar, 120, 1);
    let child = parent
        .delegate_at(&alice, *bob.entity_id(), sub | TokenScope::DELEGATE, T0)
        .unwrap();
    assert_eq!(child.delegation_depth(), 0);
    // Until then the only token of Alice's known here is her plain
    // subscribe token, which allows no delegation.
    assert_eq!(
        refused(&mut w, 3, &child),
        Deny::Token(TokenProblem::DelegationNotAllowed)
    );
    w.hub.install_token(parent);
    assert!(w.accepted(3, "sensors/lidar", Some(&child)));

    // Delegation exhausted: Bob re-delegates to Mallory although his depth
    // is 0 (signed by hand: `delegate` itself refuses).
    let mut claims = *child.claims();
    claims.subject = *mallory.entity_id();
    let exhausted = PermissionToken::sign(&bob, claims).unwrap();
    assert_eq!(
        refused(&mut w, 4, &exhausted),
        Deny::Token(TokenProblem::DelegationExhausted)
    );
    assert!(
        child
            .delegate_at(&bob, *mallory.entity_id(), sub, T0)
            .is_err()
    );

    // Delegation not allowed: a parent without DELEGATE (Carol's).
    let carol = key(5);
    let plain_parent = token(&root, &carol, sub, &lidar, 120, 2);
    w.hub.install_token(plain_parent);
    let mut claims = *plain_parent.claims();
    claims.subject = *mallory.entity_id();
    claims.delegation_depth = 0;
    let no_delegate = PermissionToken::sign(&carol, claims).unwrap();
    assert_eq!(
        refused(&mut w, 4, &no_delegate),
        Deny::Token(TokenProblem::DelegationNotAllowed)
    );

    // A child that outlives its parent is refused (Dave has no other token).
    let dave = key(6);
    w.peer(6, PeerKind::Net);
    let mut claims = *child.claims();
    claims.subject = *dave.entity_id();
    claims.not_after = parent.not_after() + 1;
    let outliving = PermissionToken::sign(&alice, claims).unwrap();
    assert_eq!(
        refused(&mut w, 6, &outliving),
        Deny::Token(TokenProblem::ExceedsParent)
    );

    // WILDCARD covers every channel; a plain token only its own.
    let wildcard = token(&root, &mallory, sub | TokenScope::WILDCARD, &other, 60, 0);
    assert!(w.accepted(4, "sensors/lidar", Some(&wildcard)));
}

#[test]
fn trusted_issuers_are_per_channel_and_any_issuer_is_an_explicit_opt_in() {
    let lidar = name("sensors/lidar");
    let (authority, alice) = (key(9), key(2));
    let sub = TokenScope::SUBSCRIBE;
    let mut w = World::new();
    w.peer(2, PeerKind::Legacy);
    w.register(
        "sensors/lidar",
        ChannelConfig {
            require_token: true,
            trusted_issuers: IssuerTrust::Issuers(vec![*authority.entity_id()]),
            ..ChannelConfig::default()
        },
    );
    w.register(
        "legacy",
        ChannelConfig {
            require_token: true,
            trusted_issuers: IssuerTrust::AnyIssuer,
            ..ChannelConfig::default()
        },
    );
    assert!(w.accepted(
        2,
        "sensors/lidar",
        Some(&token(&authority, &alice, sub, &lidar, 60, 0))
    ));
    // v0.11's rule on an opted-in channel: a self-minted token passes.
    let self_minted = token(&alice, &alice, sub, &name("legacy"), 60, 0);
    assert!(w.accepted(2, "legacy", Some(&self_minted)));
}

#[test]
fn a_chain_longer_than_the_limit_is_refused() {
    let lidar = name("sensors/lidar");
    let scope = TokenScope::SUBSCRIBE | TokenScope::DELEGATE;
    let mut w = World::new();
    w.peer(30, PeerKind::Net);
    w.register("sensors/lidar", token_channel());
    // root → 20 → 21 → … → 30, each link a valid delegation.
    let mut holder = key(20);
    let mut current = token(&key(LOCAL), &holder, scope, &lidar, 600, 200);
    w.hub.install_token(current);
    for next in 21..=30 {
        let subject = key(next);
        current = current
            .delegate_at(&holder, *subject.entity_id(), scope, T0)
            .unwrap();
        w.hub.install_token(current);
        holder = subject;
    }
    let (accepted, _, events) = w.subscribe(30, "sensors/lidar", Some(&current));
    assert!(!accepted);
    assert!(matches!(
        &events[0],
        ChannelEvent::Refused {
            deny: Deny::Token(TokenProblem::ChainTooLong),
            ..
        }
    ));
}

// ---------------------------------------------------------------------------
// One decision for subscribe, publish and sweep (MESH2 §7 items 5, 7)
// ---------------------------------------------------------------------------

#[test]
fn an_accepted_token_subscriber_is_delivered_until_its_token_expires() {
    let lidar = name("sensors/lidar");
    let mut w = World::new();
    w.peer(2, PeerKind::Net);
    w.peer(3, PeerKind::Legacy);
    w.register("sensors/lidar", token_channel());
    let short = token(&key(LOCAL), &key(2), TokenScope::SUBSCRIBE, &lidar, 40, 0);
    let long = token(&key(LOCAL), &key(3), TokenScope::SUBSCRIBE, &lidar, 600, 0);
    assert!(w.accepted(2, "sensors/lidar", Some(&short)));
    assert!(w.accepted(3, "sensors/lidar", Some(&long)));
    // Accepted through the presented token ⇒ delivered (v0.11 drops them
    // without a shared cache).
    assert_eq!(w.targets("sensors/lidar"), vec![2, 3]);

    // At expiry the next publish leaves the subscriber out and evicts it.
    w.advance(Duration::from_secs(40));
    let (plan, evictions) = w.plan("sensors/lidar");
    assert_eq!(
        plan.targets.iter().map(|t| t.peer).collect::<Vec<_>>(),
        vec![3]
    );
    assert_eq!(
        evictions,
        vec![Eviction {
            channel: lidar.clone(),
            peer: 2,
            reason: EvictionReason::NoLongerAuthorized(Deny::Token(TokenProblem::Expired)),
        }]
    );
    // An expired token admits no new subscribe.
    assert_eq!(
        w.reason(2, "sensors/lidar", Some(&short)),
        AckReason::Unauthorized
    );
}

/// A subscribe reads the clock fresh; a publish reads the one the
/// reliability tick cached, which can be a second behind across a second
/// boundary (more on a loaded machine). A token that became live in that
/// second was accepted, and the publish must not evict its subscriber as
/// "not yet valid" (a Go test lost its events this way under load).
#[test]
fn a_publish_on_a_clock_behind_the_subscribes_keeps_a_just_live_token() {
    let lidar = name("sensors/lidar");
    let mut w = World::new();
    w.peer(2, PeerKind::Net);
    w.register("sensors/lidar", token_channel());
    w.advance(Duration::from_secs(30));
    // Live from exactly the subscribe's second.
    let fresh = PermissionToken::sign(
        &key(LOCAL),
        TokenClaims {
            subject: *key(2).entity_id(),
            scope: TokenScope::SUBSCRIBE,
            channel_hash: lidar.hash(),
            not_before: T0 + 30,
            not_after: T0 + 3600,
            delegation_depth: 0,
            nonce: 77,
        },
    )
    .unwrap();
    assert!(w.accepted(2, "sensors/lidar", Some(&fresh)));
    let behind = Now {
        instant: w.now().instant,
        unix_secs: T0 + 29,
    };
    let (plan, evictions) = w.hub.plan_publish(&lidar, None, &w.peers, behind).unwrap();
    assert!(
        evictions.is_empty(),
        "evicted on a stale clock: {evictions:?}"
    );
    assert_eq!(
        plan.targets.iter().map(|t| t.peer).collect::<Vec<_>>(),
        vec![2]
    );
    // Expiry still evicts.
    w.advance(Duration::from_secs(3600));
    let (_, evictions) = w.plan("sensors/lidar");
    assert_eq!(evictions.len(), 1);
}

#[test]
fn the_sweep_evicts_expired_subscribers_and_keeps_the_rest() {
    let lidar = name("sensors/lidar");
    let mut w = World::new();
    w.peer(2, PeerKind::Net);
    w.peer(3, PeerKind::Net);
    w.register("sensors/lidar", token_channel());
    w.register("open", ChannelConfig::default());
    assert!(w.accepted(
        2,
        "sensors/lidar",
        Some(&token(
            &key(LOCAL),
            &key(2),
            TokenScope::SUBSCRIBE,
            &lidar,
            30,
            0
        ))
    ));
    assert!(w.accepted(
        3,
        "sensors/lidar",
        Some(&token(
            &key(LOCAL),
            &key(3),
            TokenScope::SUBSCRIBE,
            &lidar,
            90,
            0
        ))
    ));
    assert!(w.accepted(2, "open", None));
    let now = w.now();
    assert!(w.hub.sweep(&w.peers, now).is_empty());
    w.advance(Duration::from_secs(30));
    let now = w.now();
    let evicted = w.hub.sweep(&w.peers, now);
    assert_eq!(evicted.len(), 1);
    assert_eq!((evicted[0].peer, &evicted[0].channel), (2, &lidar));
    assert!(w.hub.roster().contains(&name("open"), 2));
    assert!(w.hub.roster().contains(&lidar, 3));
    // A re-subscribe without a token does not find the expired one: the
    // sweep purged it from the store.
    assert_eq!(w.reason(2, "sensors/lidar", None), AckReason::Unauthorized);
}

#[test]
fn a_re_subscribe_without_a_token_finds_the_accepted_one() {
    let lidar = name("sensors/lidar");
    let mut w = World::new();
    w.peer(2, PeerKind::Legacy);
    w.register("sensors/lidar", token_channel());
    let t = token(&key(LOCAL), &key(2), TokenScope::SUBSCRIBE, &lidar, 60, 0);
    assert!(w.accepted(2, "sensors/lidar", Some(&t)));
    assert!(w.accepted(2, "sensors/lidar", None));
}

#[test]
fn a_refused_subscribe_leaves_no_token_behind() {
    let lidar = name("sensors/lidar");
    let mut w = World::new();
    w.peer(2, PeerKind::Legacy);
    w.register(
        "sensors/lidar",
        ChannelConfig {
            require_token: true,
            subscribe_caps: Some(Arc::new(RequireTags::new(["gpu"]))),
            ..ChannelConfig::default()
        },
    );
    let t = token(&key(LOCAL), &key(2), TokenScope::SUBSCRIBE, &lidar, 60, 0);
    // Refused by the capability filter before the token is looked at.
    assert_eq!(
        w.reason(2, "sensors/lidar", Some(&t)),
        AckReason::Unauthorized
    );
    // With the capability, a token-less subscribe still finds nothing: the
    // refused token was not kept.
    w.peers.get_mut(&2).unwrap().capabilities = tags(&["gpu"]);
    assert_eq!(w.reason(2, "sensors/lidar", None), AckReason::Unauthorized);
    assert!(w.accepted(2, "sensors/lidar", Some(&t)));
}

#[test]
fn a_refused_re_subscribe_ends_the_subscription() {
    let lidar = name("sensors/lidar");
    let mut w = World::new();
    w.peer(2, PeerKind::Net);
    w.register("sensors/lidar", token_channel());
    let t = token(&key(LOCAL), &key(2), TokenScope::SUBSCRIBE, &lidar, 60, 0);
    assert!(w.accepted(2, "sensors/lidar", Some(&t)));
    w.advance(Duration::from_secs(60));
    let (accepted, _, events) = w.subscribe(2, "sensors/lidar", Some(&t));
    assert!(!accepted);
    assert!(events.iter().any(|e| matches!(e, ChannelEvent::Evicted(_))));
    assert!(!w.hub.roster().contains(&lidar, 2));
}

#[test]
fn tightening_or_deregistering_a_channel_evicts_who_no_longer_qualifies() {
    let lidar = name("sensors/lidar");
    let mut w = World::new();
    w.peer(2, PeerKind::Net);
    w.peer(3, PeerKind::Net);
    w.peers.get_mut(&3).unwrap().capabilities = tags(&["gpu"]);
    w.register("sensors/lidar", ChannelConfig::default());
    assert!(w.accepted(2, "sensors/lidar", None));
    assert!(w.accepted(3, "sensors/lidar", None));

    let evicted = w.register(
        "sensors/lidar",
        ChannelConfig {
            subscribe_caps: Some(Arc::new(RequireTags::new(["gpu"]))),
            ..ChannelConfig::default()
        },
    );
    assert_eq!(
        evicted,
        vec![Eviction {
            channel: lidar.clone(),
            peer: 2,
            reason: EvictionReason::NoLongerAuthorized(Deny::CapabilityMismatch),
        }]
    );
    assert_eq!(w.targets("sensors/lidar"), vec![3]);

    // Visibility tightening: the publisher moves into a subnet; SubnetLocal
    // now hides it from the GLOBAL peer 3.
    w.hub.set_local(LocalNode {
        node_id: LOCAL,
        entity: Some(*key(LOCAL).entity_id()),
        subnet: SubnetId::from_levels(&[3, 7]).unwrap(),
    });
    let evicted = w.register(
        "sensors/lidar",
        ChannelConfig {
            visibility: Visibility::SubnetLocal,
            ..ChannelConfig::default()
        },
    );
    assert_eq!(
        evicted[0].reason,
        EvictionReason::NoLongerAuthorized(Deny::NotVisible)
    );

    w.register("sensors/lidar", ChannelConfig::default());
    assert!(w.accepted(2, "sensors/lidar", None));
    let evicted = w.hub.deregister(&lidar);
    assert_eq!(evicted[0].reason, EvictionReason::ChannelDeregistered);
    assert_eq!(
        w.reason(2, "sensors/lidar", None),
        AckReason::UnknownChannel
    );
}

// ---------------------------------------------------------------------------
// MESH2 §8 channel scenarios
// ---------------------------------------------------------------------------

#[test]
fn two_subscribers_get_a_publish_and_a_failed_peer_leaves_the_roster() {
    let mut w = World::new();
    w.peer(2, PeerKind::Net);
    w.peer(3, PeerKind::Legacy);
    w.register("sensors/lidar", ChannelConfig::default());
    assert!(w.accepted(2, "sensors/lidar", None));
    assert!(w.accepted(3, "sensors/lidar", None));
    assert_eq!(w.targets("sensors/lidar"), vec![2, 3]);
    let gone = w.hub.peer_gone(2);
    assert_eq!(gone.evictions[0].reason, EvictionReason::PeerGone);
    assert_eq!(w.targets("sensors/lidar"), vec![3]);
    assert_eq!(w.hub.roster().channel_count(2), 0);
}

#[test]
fn unsubscribe_evicts_and_is_idempotent_and_an_empty_roster_is_fine() {
    let mut w = World::new();
    w.peer(2, PeerKind::Net);
    w.register("sensors/lidar", ChannelConfig::default());
    assert!(w.targets("sensors/lidar").is_empty());
    assert!(w.accepted(2, "sensors/lidar", None));
    let (accepted, _, events) = w.unsubscribe(2, "sensors/lidar");
    assert!(accepted);
    assert_eq!(events.len(), 1);
    let (accepted, _, events) = w.unsubscribe(2, "sensors/lidar");
    assert!(accepted && events.is_empty());
    // Unsubscribing from an unknown channel is acked too.
    assert!(w.unsubscribe(2, "never").0);
    assert!(!w.hub.roster().contains(&name("sensors/lidar"), 2));
}

#[test]
fn unknown_channel_for_subscribe_and_publish() {
    let mut w = World::new();
    w.peer(2, PeerKind::Net);
    assert_eq!(w.reason(2, "nope", None), AckReason::UnknownChannel);
    let now = w.now();
    assert_eq!(
        w.hub
            .plan_publish(&name("nope"), None, &w.peers, now)
            .unwrap_err(),
        PublishError::UnknownChannel
    );
}

#[test]
fn capability_filters_and_the_publishers_own_filter() {
    let mut w = World::new();
    w.peer(2, PeerKind::Net);
    w.peer(3, PeerKind::Net);
    w.peers.get_mut(&3).unwrap().capabilities = tags(&["gpu", "zone:eu"]);
    w.register(
        "jobs",
        ChannelConfig {
            subscribe_caps: Some(Arc::new(RequireTags::new(["gpu"]))),
            publish_caps: Some(Arc::new(RequireTags::new(["scheduler"]))),
            ..ChannelConfig::default()
        },
    );
    // A peer that never announced has no capabilities: fail closed.
    assert_eq!(w.reason(2, "jobs", None), AckReason::Unauthorized);
    assert!(w.accepted(3, "jobs", None));
    // The publisher is checked against its own announcement.
    let now = w.now();
    let err = w
        .hub
        .plan_publish(&name("jobs"), None, &w.peers, now)
        .unwrap_err();
    assert_eq!(err, PublishError::NotAuthorized(Deny::CapabilityMismatch));
    let own: BTreeSet<String> = ["scheduler".to_string()].into();
    let (plan, _) = w
        .hub
        .plan_publish(&name("jobs"), Some(&own), &w.peers, now)
        .unwrap();
    assert_eq!(plan.targets.len(), 1);
}

#[test]
fn a_token_channel_needs_a_known_entity_and_the_local_node_publishes_freely() {
    let mut w = World::new();
    w.peers.insert(2, PeerFacts::default());
    w.register("secure", token_channel());
    let (_, _, events) = w.subscribe(2, "secure", None);
    assert!(matches!(
        &events[0],
        ChannelEvent::Refused {
            deny: Deny::UnknownEntity,
            ..
        }
    ));
    assert!(w.plan("secure").0.targets.is_empty());
}

#[test]
fn sixteen_failures_rate_limit_and_a_success_clears_the_count() {
    let mut w = World::new();
    w.peer(2, PeerKind::Net);
    w.register("open", ChannelConfig::default());
    for _ in 0..15 {
        assert_eq!(w.reason(2, "nope", None), AckReason::UnknownChannel);
    }
    assert!(w.accepted(2, "open", None));
    for _ in 0..16 {
        assert_eq!(w.reason(2, "nope", None), AckReason::UnknownChannel);
    }
    assert_eq!(w.reason(2, "open", None), AckReason::RateLimited);
    // A throttled re-subscribe keeps the subscription.
    assert!(w.hub.roster().contains(&name("open"), 2));
    w.advance(Duration::from_secs(30));
    assert!(w.accepted(2, "open", None));
}

#[test]
fn zero_intervals_do_not_crash() {
    let mut w = World::with(
        ChannelsSettings {
            auth_failure_window: Duration::ZERO,
            auth_throttle_duration: Duration::ZERO,
            membership_ack_timeout: Duration::ZERO,
            token_sweep_interval: Duration::ZERO,
            max_auth_failures_per_window: 1,
            ..ChannelsSettings::default()
        },
        SubnetId::GLOBAL,
    );
    w.peer(2, PeerKind::Net);
    for _ in 0..3 {
        assert_eq!(w.reason(2, "nope", None), AckReason::UnknownChannel);
    }
    let now = w.now();
    w.hub.subscribe(2, &name("a"), None, now).unwrap();
    assert_eq!(w.hub.expire_requests(now).len(), 1);
    assert!(w.hub.sweep(&w.peers, now).is_empty());
}

// ---------------------------------------------------------------------------
// MESH2 §8 subnet scenarios
// ---------------------------------------------------------------------------

#[test]
fn subnet_visibility_scenarios() {
    let ab = SubnetId::from_levels(&[3, 7, 2]).unwrap();
    let mut w = World::with(ChannelsSettings::default(), ab);
    w.peer(2, PeerKind::Net);
    w.peer(3, PeerKind::Net);
    w.peer(4, PeerKind::Net);
    w.peer(5, PeerKind::Net);
    w.peers.get_mut(&2).unwrap().subnet = ab; // B
    w.peers.get_mut(&3).unwrap().subnet = SubnetId::from_levels(&[3, 8, 1]).unwrap(); // C
    w.peers.get_mut(&4).unwrap().subnet = SubnetId::from_levels(&[3, 7]).unwrap(); // ancestor
    w.peers.get_mut(&5).unwrap().subnet = SubnetId::from_levels(&[3, 7, 3]).unwrap(); // sibling
    let local = |v| ChannelConfig {
        visibility: v,
        ..ChannelConfig::default()
    };
    w.register("local", local(Visibility::SubnetLocal));
    w.register("parent", local(Visibility::ParentVisible));
    w.register("exported", local(Visibility::Exported));
    w.register("global", local(Visibility::Global));
    assert!(w.accepted(2, "local", None));
    assert_eq!(w.reason(3, "local", None), AckReason::Unauthorized);
    assert!(w.accepted(4, "parent", None));
    assert_eq!(w.reason(5, "parent", None), AckReason::Unauthorized);
    assert_eq!(w.reason(2, "exported", None), AckReason::Unauthorized);
    for peer in 2..=5 {
        assert!(w.accepted(peer, "global", None));
    }
    // The registered visibility wins at publish time: making "global"
    // SubnetLocal leaves only B.
    w.register("global", local(Visibility::SubnetLocal));
    assert_eq!(w.targets("global"), vec![2]);

    // The confinement stamp each Net target's packets carry: the
    // publisher's subnet for SubnetLocal, the subscriber's for
    // ParentVisible (GLOBAL here: the ancestor 3.7), none for Global; a
    // v0.11 subscriber never gets one.
    let stamp = |w: &mut World, channel: &str, peer: u64| {
        let (plan, _) = w.plan(channel);
        plan.targets
            .iter()
            .find(|t| t.peer == peer)
            .unwrap()
            .subnet_stamp
    };
    assert_eq!(stamp(&mut w, "local", 2), ab);
    assert!(w.accepted(4, "parent", None));
    assert_eq!(
        stamp(&mut w, "parent", 4),
        SubnetId::from_levels(&[3, 7]).unwrap()
    );
    w.register("open", local(Visibility::Global));
    assert!(w.accepted(3, "open", None));
    assert_eq!(stamp(&mut w, "open", 3), SubnetId::GLOBAL);
    w.peer(6, PeerKind::Legacy);
    w.peers.get_mut(&6).unwrap().subnet = ab;
    assert!(w.accepted(6, "local", None));
    assert_eq!(stamp(&mut w, "local", 6), SubnetId::GLOBAL);
    assert_eq!(stamp(&mut w, "local", 2), ab);

    // No subnet policy: everyone GLOBAL, SubnetLocal delivers everywhere.
    let mut flat = World::new();
    flat.peer(2, PeerKind::Net);
    flat.register("local", local(Visibility::SubnetLocal));
    assert!(flat.accepted(2, "local", None));
    assert_eq!(flat.targets("local"), vec![2]);
}

// ---------------------------------------------------------------------------
// Roster limits
// ---------------------------------------------------------------------------

#[test]
fn re_subscribing_at_the_cap_is_idempotent_and_new_channels_are_refused() {
    let mut w = World::with(
        ChannelsSettings {
            max_channels_per_peer: 2,
            ..ChannelsSettings::default()
        },
        SubnetId::GLOBAL,
    );
    w.peer(2, PeerKind::Net);
    for c in ["a", "b", "c"] {
        w.register(c, ChannelConfig::default());
    }
    assert!(w.accepted(2, "a", None));
    assert!(w.accepted(2, "b", None));
    assert!(w.accepted(2, "a", None));
    assert_eq!(w.reason(2, "c", None), AckReason::TooManyChannels);
    assert_eq!(w.hub.roster().channel_count(2), 2);
    // Capacity refusals do not count towards the throttle.
    for _ in 0..20 {
        assert_eq!(w.reason(2, "c", None), AckReason::TooManyChannels);
    }
    assert!(w.accepted(2, "b", None));
}

#[test]
fn max_subscribers_is_enforced_but_members_may_re_subscribe() {
    let mut w = World::new();
    for id in 2..=4 {
        w.peer(id, PeerKind::Net);
    }
    w.register(
        "small",
        ChannelConfig {
            max_subscribers: Some(2),
            ..ChannelConfig::default()
        },
    );
    assert!(w.accepted(2, "small", None));
    assert!(w.accepted(3, "small", None));
    let (_, reason, events) = w.subscribe(4, "small", None);
    assert_eq!(reason, AckReason::TooManyChannels);
    assert!(matches!(
        &events[0],
        ChannelEvent::Refused {
            deny: Deny::ChannelFull,
            ..
        }
    ));
    assert!(w.accepted(3, "small", None));
}

#[test]
fn a_channel_with_one_hundred_subscribers() {
    let mut w = World::new();
    w.register("wide", ChannelConfig::default());
    for id in 100..200 {
        w.peer(
            id,
            if id % 2 == 0 {
                PeerKind::Net
            } else {
                PeerKind::Legacy
            },
        );
        assert!(w.accepted(id, "wide", None));
    }
    let (plan, evictions) = w.plan("wide");
    assert!(evictions.is_empty());
    assert_eq!(plan.targets.len(), 100);
    assert_eq!(
        plan.targets.iter().map(|t| t.peer).collect::<Vec<_>>(),
        (100..200).collect::<Vec<_>>()
    );
    // A subscriber whose session is gone without a peer_gone yet is
    // reported unreachable, not dropped.
    w.peers.remove(&150);
    let (plan, _) = w.plan("wide");
    assert_eq!(plan.targets.len(), 99);
    assert_eq!(plan.unreachable, vec![150]);
}

// ---------------------------------------------------------------------------
// Publish: transport, framing, priority, rate (MESH2 §7 item 8)
// ---------------------------------------------------------------------------

#[test]
fn transport_and_framing_per_peer_kind() {
    let mut w = World::new();
    w.peer(2, PeerKind::Net);
    w.peer(3, PeerKind::Legacy);
    w.register("plain", ChannelConfig::default());
    w.register(
        "reliable",
        ChannelConfig {
            reliable: true,
            priority: 5,
            ..ChannelConfig::default()
        },
    );
    for c in ["plain", "reliable"] {
        assert!(w.accepted(2, c, None));
        assert!(w.accepted(3, c, None));
    }
    let (plain, _) = w.plan("plain");
    assert_eq!(
        plain.targets,
        vec![
            PublishTarget {
                peer: 2,
                transport: Transport::NetBestEffort,
                header_priority: 0,
                subnet_stamp: SubnetId::GLOBAL,
            },
            PublishTarget {
                peer: 3,
                transport: Transport::Legacy { header_flags: 0 },
                header_priority: 0,
                subnet_stamp: SubnetId::GLOBAL,
            },
        ]
    );
    let (reliable, _) = w.plan("reliable");
    assert_eq!(
        reliable.targets,
        vec![
            PublishTarget {
                peer: 2,
                transport: Transport::NetReliable,
                header_priority: 5,
                subnet_stamp: SubnetId::GLOBAL,
            },
            // v0.11 bytes: the RELIABLE flag, priority 0.
            PublishTarget {
                peer: 3,
                transport: Transport::Legacy {
                    header_flags: flags::RELIABLE
                },
                header_priority: 0,
                subnet_stamp: SubnetId::GLOBAL,
            },
        ]
    );
    assert_eq!(
        reliable.stream_id,
        0x0001_0000_0000_0000 | u64::from(name("reliable").hash())
    );
    assert_eq!((PUBLISH_SUBPROTOCOL, PUBLISH_HEADER_CHANNEL_HASH), (0, 0));
}

#[test]
fn max_rate_pps_is_enforced_exactly() {
    let mut w = World::new();
    w.peer(2, PeerKind::Net);
    w.register(
        "limited",
        ChannelConfig {
            max_rate_pps: NonZeroU32::new(4),
            ..ChannelConfig::default()
        },
    );
    let channel = name("limited");
    let publish = |w: &mut World| {
        let now = w.now();
        w.hub.plan_publish(&channel, None, &w.peers, now)
    };
    for _ in 0..4 {
        publish(&mut w).unwrap();
    }
    match publish(&mut w) {
        Err(PublishError::RateLimited(limited)) => {
            assert_eq!(limited.retry_after, Duration::from_millis(250))
        }
        other => panic!("{other:?}"),
    }
    w.advance(Duration::from_millis(249));
    assert!(publish(&mut w).is_err());
    w.advance(Duration::from_millis(1));
    publish(&mut w).unwrap();
    // Re-registering with the same rate keeps the bucket (no fresh burst).
    w.register(
        "limited",
        ChannelConfig {
            max_rate_pps: NonZeroU32::new(4),
            ..ChannelConfig::default()
        },
    );
    assert!(publish(&mut w).is_err());
    // Removing the limit removes the bucket.
    w.register("limited", ChannelConfig::default());
    for _ in 0..100 {
        publish(&mut w).unwrap();
    }
}

// ---------------------------------------------------------------------------
// Our requests: (peer, random nonce), timeouts, names (MESH2 §7 items 6, 9)
// ---------------------------------------------------------------------------

fn ack_from(
    w: &mut World,
    peer: u64,
    nonce: u64,
    accepted: bool,
    reason: AckReason,
) -> Vec<ChannelEvent> {
    let now = w.now();
    let facts = w.peers.get(&peer).cloned().unwrap_or_default();
    let outcome = w.hub.handle(
        &facts.context(peer),
        &Membership::Ack {
            nonce,
            accepted,
            reason,
        },
        now,
    );
    assert!(outcome.reply.is_none(), "an Ack is never answered");
    outcome.events
}

fn nonce_of(m: &Membership) -> u64 {
    match m {
        Membership::Subscribe { nonce, .. } | Membership::Unsubscribe { nonce, .. } => *nonce,
        other => panic!("{other:?}"),
    }
}

#[test]
fn spoofed_acks_are_ignored_and_counted() {
    let mut w = World::new();
    w.peer(7, PeerKind::Net);
    w.peer(8, PeerKind::Net);
    let lidar = name("sensors/lidar");
    let now = w.now();
    let nonce = nonce_of(&w.hub.subscribe(7, &lidar, None, now).unwrap());
    // Another peer with the right nonce, a guessed counter nonce, and the
    // right peer with a wrong nonce: all ignored.
    assert!(ack_from(&mut w, 8, nonce, true, AckReason::Ok).is_empty());
    assert!(ack_from(&mut w, 7, 1, true, AckReason::Ok).is_empty());
    assert!(ack_from(&mut w, 7, nonce.wrapping_add(1), true, AckReason::Ok).is_empty());
    assert_eq!(w.hub.counters().unmatched_acks, 3);
    let events = ack_from(&mut w, 7, nonce, true, AckReason::Ok);
    match &events[0] {
        ChannelEvent::RequestCompleted(done) => {
            assert_eq!((done.peer, done.outcome), (7, RequestOutcome::Accepted))
        }
        other => panic!("{other:?}"),
    }
    let stream = publish_stream_id(lidar.hash());
    assert_eq!(
        w.hub.resolve_inbound(7, stream),
        InboundChannel::Named(lidar.clone())
    );
    assert_eq!(
        w.hub.resolve_inbound(8, stream),
        InboundChannel::Unsubscribed(lidar.hash())
    );
    assert_eq!(
        w.hub.resolve_inbound(7, 0x0A00),
        InboundChannel::NotAChannel
    );
}

#[test]
fn requests_time_out_fail_with_the_peer_and_release_their_name() {
    let mut w = World::new();
    w.peer(7, PeerKind::Net);
    let lidar = name("sensors/lidar");
    let now = w.now();
    w.hub.subscribe(7, &lidar, None, now).unwrap();
    assert_eq!(
        w.hub.next_deadline(),
        Some(now.instant + Duration::from_secs(5))
    );
    w.advance(Duration::from_millis(4999));
    assert!(w.hub.expire_requests(w.now()).is_empty());
    w.advance(Duration::from_millis(1));
    let events = w.hub.expire_requests(w.now());
    assert!(matches!(
        &events[0],
        ChannelEvent::RequestCompleted(CompletedRequest {
            outcome: RequestOutcome::TimedOut,
            ..
        })
    ));
    let stream = publish_stream_id(lidar.hash());
    assert_eq!(
        w.hub.resolve_inbound(7, stream),
        InboundChannel::Unsubscribed(lidar.hash())
    );

    let now = w.now();
    w.hub.subscribe(7, &lidar, None, now).unwrap();
    let gone = w.hub.peer_gone(7);
    assert_eq!(gone.requests[0].outcome, RequestOutcome::PeerGone);
    assert_eq!(w.hub.next_deadline(), None);
}

#[test]
fn colliding_channels_are_never_merged() {
    // Find two names with the same hash.
    let mut seen = BTreeMap::new();
    let (first, second) = (0u32..)
        .find_map(|i| {
            let candidate = name(&format!("c{i}"));
            seen.insert(candidate.hash(), candidate.clone())
                .map(|first| (first, candidate))
        })
        .unwrap();
    let mut w = World::new();
    w.peer(7, PeerKind::Net);
    let now = w.now();
    // Publisher side: the second registration is refused.
    w.hub
        .register(first.clone(), ChannelConfig::default(), &w.peers, now)
        .unwrap();
    assert!(matches!(
        w.hub
            .register(second.clone(), ChannelConfig::default(), &w.peers, now),
        Err(RegistryError::HashCollision { .. })
    ));
    // Subscriber side: a second name with the same hash at one publisher
    // is refused before anything is sent.
    w.hub.subscribe(7, &first, None, now).unwrap();
    assert!(matches!(
        w.hub.subscribe(7, &second, None, now),
        Err(SubscribeError::HashCollision(_))
    ));
}

#[test]
fn a_rejected_subscribe_releases_the_name_and_unsubscribe_drops_it() {
    let mut w = World::new();
    w.peer(7, PeerKind::Legacy);
    let lidar = name("sensors/lidar");
    let stream = publish_stream_id(lidar.hash());
    let now = w.now();
    let nonce = nonce_of(&w.hub.subscribe(7, &lidar, None, now).unwrap());
    ack_from(&mut w, 7, nonce, false, AckReason::Unauthorized);
    assert_eq!(
        w.hub.resolve_inbound(7, stream),
        InboundChannel::Unsubscribed(lidar.hash())
    );

    let nonce = nonce_of(&w.hub.subscribe(7, &lidar, None, now).unwrap());
    ack_from(&mut w, 7, nonce, true, AckReason::Ok);
    // A v0.11 publisher keeps a subscription whose re-subscribe it refuses.
    let nonce = nonce_of(&w.hub.subscribe(7, &lidar, None, now).unwrap());
    ack_from(&mut w, 7, nonce, false, AckReason::RateLimited);
    assert_eq!(
        w.hub.resolve_inbound(7, stream),
        InboundChannel::Named(lidar.clone())
    );
    let nonce = nonce_of(&w.hub.unsubscribe(7, &lidar, now).unwrap());
    ack_from(&mut w, 7, nonce, true, AckReason::Ok);
    assert_eq!(
        w.hub.resolve_inbound(7, stream),
        InboundChannel::Unsubscribed(lidar.hash())
    );
}

// ---------------------------------------------------------------------------
// Hostile input
// ---------------------------------------------------------------------------

proptest! {
    /// Any bytes from any peer: never a panic; a reply is always an Ack
    /// that echoes a request; the per-peer cap always holds.
    #[test]
    fn arbitrary_membership_bytes_are_harmless(
        messages in proptest::collection::vec(
            (0u64..4, proptest::collection::vec(any::<u8>(), 0..200)), 1..64),
    ) {
        let mut w = World::with(
            ChannelsSettings { max_channels_per_peer: 3, ..ChannelsSettings::default() },
            SubnetId::GLOBAL,
        );
        for id in 0..4 {
            w.peer(id, PeerKind::Net);
        }
        w.register("a", ChannelConfig::default());
        w.register("b", token_channel());
        for (peer, bytes) in messages {
            let now = w.now();
            let context = w.peers[&peer].context(peer);
            if let Ok(outcome) = w.hub.handle_bytes(&context, &bytes, now)
                && let Some(reply) = outcome.reply
            {
                let is_ack = matches!(reply, Membership::Ack { .. });
                prop_assert!(is_ack, "replied {:?}", reply);
            }
            prop_assert!(w.hub.roster().channel_count(peer) <= 3);
        }
    }

    /// Random subscribe/unsubscribe/peer-gone sequences keep the roster's
    /// two indexes consistent.
    #[test]
    fn roster_indexes_stay_consistent(
        ops in proptest::collection::vec((0u8..3, 0u64..5, 0usize..4), 1..100),
    ) {
        let channels = ["a", "b", "c", "d"];
        let mut w = World::new();
        for id in 0..5 {
            w.peer(id, PeerKind::Legacy);
        }
        for c in channels {
            w.register(c, ChannelConfig::default());
        }
        for (op, peer, channel) in ops {
            match op {
                0 => { w.subscribe(peer, channels[channel], None); }
                1 => { w.unsubscribe(peer, channels[channel]); }
                _ => { w.hub.peer_gone(peer); }
            }
        }
        for peer in 0..5 {
            let by_peer = w.hub.roster().channel_count(peer);
            let by_channel = channels
                .iter()
                .filter(|c| w.hub.roster().contains(&name(c), peer))
                .count();
            prop_assert_eq!(by_peer, by_channel);
        }
    }
}

#[test]
fn changing_the_trusted_issuers_re_verifies_every_subscriber() {
    let lidar = name("sensors/lidar");
    let authority = key(9);
    let trusting = |keys: Vec<_>| ChannelConfig {
        require_token: true,
        trusted_issuers: IssuerTrust::Issuers(keys),
        ..ChannelConfig::default()
    };
    let mut w = World::new();
    w.peer(2, PeerKind::Net);
    w.register("sensors/lidar", trusting(vec![*authority.entity_id()]));
    let t = token(&authority, &key(2), TokenScope::SUBSCRIBE, &lidar, 600, 0);
    assert!(w.accepted(2, "sensors/lidar", Some(&t)));
    // Publishing reuses the verified chain; it stays a target.
    assert_eq!(w.targets("sensors/lidar"), vec![2]);
    assert_eq!(w.targets("sensors/lidar"), vec![2]);
    // Revoking trust in the authority evicts at once.
    let evicted = w.register("sensors/lidar", trusting(vec![]));
    assert_eq!(
        evicted[0].reason,
        EvictionReason::NoLongerAuthorized(Deny::Token(TokenProblem::UntrustedIssuer))
    );
}

#[test]
fn a_peer_whose_entity_changes_is_re_verified() {
    let lidar = name("sensors/lidar");
    let mut w = World::new();
    w.peer(2, PeerKind::Net);
    w.register("sensors/lidar", token_channel());
    let t = token(&key(LOCAL), &key(2), TokenScope::SUBSCRIBE, &lidar, 600, 0);
    assert!(w.accepted(2, "sensors/lidar", Some(&t)));
    assert_eq!(w.targets("sensors/lidar"), vec![2]);
    // The node id now proves another entity: the cached verification was
    // for the old one, and no token names the new one.
    w.peers.get_mut(&2).unwrap().entity = Some(*key(5).entity_id());
    let (plan, evicted) = w.plan("sensors/lidar");
    assert!(plan.targets.is_empty());
    assert_eq!(
        evicted[0].reason,
        EvictionReason::NoLongerAuthorized(Deny::Token(TokenProblem::Missing))
    );
}

#[test]
fn a_token_presented_on_an_open_channel_still_counts_when_it_is_tightened() {
    let lidar = name("sensors/lidar");
    let mut w = World::new();
    w.peer(2, PeerKind::Net);
    w.peer(3, PeerKind::Net);
    w.register("sensors/lidar", ChannelConfig::default());
    let t = token(&key(LOCAL), &key(2), TokenScope::SUBSCRIBE, &lidar, 600, 0);
    assert!(w.accepted(2, "sensors/lidar", Some(&t)));
    assert!(w.accepted(3, "sensors/lidar", None));
    let evicted = w.register("sensors/lidar", token_channel());
    assert_eq!(evicted.len(), 1);
    assert_eq!(evicted[0].peer, 3);
    assert_eq!(w.targets("sensors/lidar"), vec![2]);
}

// The fuzz target's property (fuzz/checks/channels_membership.rs), run
// here on its seed corpus and on random inputs so it holds on stable too.
#[path = "../fuzz/checks/channels_membership.rs"]
mod channels_membership_check;

#[test]
fn the_fuzz_property_holds_on_the_seed_corpus() {
    let dir = format!(
        "{}/fuzz/corpus/channels_membership",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut seeds = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        channels_membership_check::check(&std::fs::read(entry.unwrap().path()).unwrap());
        seeds += 1;
    }
    assert!(seeds >= 3);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn the_fuzz_property_holds_on_random_inputs(
        data in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        channels_membership_check::check(&data);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// The same property on well-formed messages (which random bytes
    /// rarely are), mixed with garbage.
    #[test]
    fn the_fuzz_property_holds_on_structured_inputs(
        messages in proptest::collection::vec(
            (any::<u8>(), 0u8..4, 0u64..4, 0usize..4, proptest::option::of(any::<u8>())),
            0..40,
        ),
    ) {
        let channels = ["a", "b", "c", "d"];
        let mut data = Vec::new();
        for (peer, kind, nonce, channel, token_fill) in messages {
            let channel = name(channels[channel]);
            let message = match kind {
                0 => Membership::Subscribe {
                    nonce,
                    channel,
                    token: token_fill.map(|b| vec![b; 159]),
                },
                1 => Membership::Unsubscribe { nonce, channel },
                2 => Membership::Ack { nonce, accepted: nonce % 2 == 0, reason: AckReason::Ok },
                _ => {
                    data.extend_from_slice(&[peer, 3, 0xff, 0, 1]);
                    continue;
                }
            };
            let bytes = message.encode();
            data.push(peer);
            data.push(bytes.len() as u8);
            data.extend_from_slice(&bytes);
        }
        channels_membership_check::check(&data);
    }
}

#[test]
fn overlapping_subscribes_keep_the_name_while_one_is_in_flight() {
    let mut w = World::new();
    w.peer(7, PeerKind::Legacy);
    let lidar = name("sensors/lidar");
    let stream = publish_stream_id(lidar.hash());
    let now = w.now();
    w.hub.subscribe(7, &lidar, None, now).unwrap();
    w.advance(Duration::from_secs(3));
    let second = nonce_of(&w.hub.subscribe(7, &lidar, None, w.now()).unwrap());
    // The first times out while the second is pending: the name stays.
    w.advance(Duration::from_secs(2));
    assert_eq!(w.hub.expire_requests(w.now()).len(), 1);
    assert_eq!(
        w.hub.resolve_inbound(7, stream),
        InboundChannel::Named(lidar.clone())
    );
    ack_from(&mut w, 7, second, true, AckReason::Ok);
    assert_eq!(
        w.hub.resolve_inbound(7, stream),
        InboundChannel::Named(lidar)
    );
}

#[test]
fn a_name_reserved_by_failed_overlapping_subscribes_is_released() {
    let mut w = World::new();
    w.peer(7, PeerKind::Legacy);
    let lidar = name("sensors/lidar");
    let stream = publish_stream_id(lidar.hash());
    w.hub.subscribe(7, &lidar, None, w.now()).unwrap();
    w.advance(Duration::from_secs(3));
    let second = nonce_of(&w.hub.subscribe(7, &lidar, None, w.now()).unwrap());
    w.advance(Duration::from_secs(2));
    w.hub.expire_requests(w.now());
    // Never accepted: the v0.11 publisher's refusal releases the name.
    ack_from(&mut w, 7, second, false, AckReason::Unauthorized);
    assert_eq!(
        w.hub.resolve_inbound(7, stream),
        InboundChannel::Unsubscribed(lidar.hash())
    );
}
