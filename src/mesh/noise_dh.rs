//! The X25519 both ends of our Noise handshakes use (the rest of the
//! Noise state — BLAKE2s, ChaCha20-Poly1305, the RNG — stays snow's).
//!
//! The output is RFC 7748's X25519, bit for bit; only the computation
//! differs from snow's curve25519-dalek wrapper, none of it on the wire:
//!
//! * **Variable-base multiplication on the Edwards form.** A peer's public
//!   key on the curve maps to an Edwards point (the birational map), the
//!   clamped scalar multiplies it there — dalek's vectorised (AVX2)
//!   variable-base code where the CPU has it, constant time either way —
//!   and the result maps back to its Montgomery `u`. The clamped scalar is
//!   used unreduced (a multiple of the cofactor), so a small-order part of
//!   the point is cleared exactly as the Montgomery ladder clears it. Keys
//!   on the twist (which X25519 also accepts) have no Edwards point and
//!   take the ladder. On this machine kind the Edwards path takes ~60 % of
//!   the ladder's time, and a handshake does two or three of them.
//! * **Public keys from the base-point table** (dalek's fixed-base
//!   multiplication), and the static key's public half computed once.
//! * **Work off the critical path**: the Edwards form of a peer key is
//!   kept per thread for its second use, and a node makes the next
//!   handshake's ephemeral key pair while the caller finishes this one.
//! * **An all-zero shared secret is refused** (a low-order peer key): the
//!   handshake fails instead of deriving keys from a value the peer chose.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::montgomery::MontgomeryPoint;
use rand_core::RngCore;
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::CryptoResolver;
use snow::types::{Cipher, Dh, Hash, Random};
use zeroize::Zeroizing;

/// X25519(`secret`, `their_public`) (RFC 7748 §5): the secret is clamped,
/// the top bit of the `u` coordinate ignored.
pub(crate) fn x25519(secret: &[u8; 32], their_public: &[u8; 32]) -> [u8; 32] {
    match edwards_of(their_public) {
        Some(point) => point.mul_clamped(*secret).to_montgomery().to_bytes(),
        None => MontgomeryPoint(*their_public)
            .mul_clamped(*secret)
            .to_bytes(),
    }
}

/// The Edwards point of a public `u` (None on the twist), from a small
/// per-thread cache: a handshake uses the same peer key twice (the
/// responder's `es` and `ee` both take the initiator's ephemeral key) and
/// an initiator uses a responder's static key on every handshake, and the
/// map costs a square root. Public values only.
fn edwards_of(u: &[u8; 32]) -> Option<EdwardsPoint> {
    RECENT_POINTS.with(|recent| recent.borrow_mut().get(u))
}

/// A peer key and its Edwards point (None: on the twist).
type KnownPoint = ([u8; 32], Option<EdwardsPoint>);

/// The last few keys mapped on this thread, replaced in turn.
struct RecentPoints {
    slots: [Option<KnownPoint>; 4],
    next: usize,
}

thread_local! {
    static RECENT_POINTS: RefCell<RecentPoints> = const {
        RefCell::new(RecentPoints { slots: [None; 4], next: 0 })
    };
}

impl RecentPoints {
    fn get(&mut self, u: &[u8; 32]) -> Option<EdwardsPoint> {
        if let Some((_, point)) = self.slots.iter().flatten().find(|(key, _)| key == u) {
            return *point;
        }
        let point = MontgomeryPoint(*u).to_edwards(0);
        self.slots[self.next] = Some((*u, point));
        self.next = (self.next + 1) % self.slots.len();
        point
    }
}

/// Ephemeral key pairs made ahead of time: taking one moves a
/// fixed-base multiplication off a responder's critical path. Each is
/// handed out once.
pub(crate) struct EphemeralPool {
    ready: Mutex<Vec<EphemeralKey>>,
}

/// The responders' pool; a node refills it through
/// [`make_ephemeral_ahead`].
static EPHEMERALS: EphemeralPool = EphemeralPool::new();

/// How many ready ephemeral key pairs a pool keeps.
const EPHEMERALS_AHEAD: usize = 8;

struct EphemeralKey {
    secret: Zeroizing<[u8; 32]>,
    public: [u8; 32],
}

impl EphemeralPool {
    const fn new() -> Self {
        Self {
            ready: Mutex::new(Vec::new()),
        }
    }

    /// Makes one key pair if fewer than [`EPHEMERALS_AHEAD`] are ready.
    fn make_ahead(&self) {
        if self.keys().len() >= EPHEMERALS_AHEAD {
            return;
        }
        let mut secret = Zeroizing::new([0u8; 32]);
        if rand_core::OsRng.try_fill_bytes(&mut secret[..]).is_err() {
            return;
        }
        let public = crate::identity::x25519_public_key(&secret);
        let mut ready = self.keys();
        if ready.len() < EPHEMERALS_AHEAD {
            ready.push(EphemeralKey { secret, public });
        }
    }

    fn take(&self) -> Option<EphemeralKey> {
        self.keys().pop()
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, Vec<EphemeralKey>> {
        self.ready.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Makes one ephemeral key pair for a later answer if fewer than a few
/// are ready. Called where a node has just answered a handshake and the
/// caller is busy with its reply, so the work overlaps the round trip.
pub(crate) fn make_ephemeral_ahead() {
    EPHEMERALS.make_ahead();
}

/// A static X25519 key pair, its public half computed once.
pub(crate) struct StaticKey {
    secret: Zeroizing<[u8; 32]>,
    public: [u8; 32],
}

impl StaticKey {
    pub(crate) fn new(secret: [u8; 32]) -> Self {
        Self {
            public: crate::identity::x25519_public_key(&secret),
            secret: Zeroizing::new(secret),
        }
    }

    pub(crate) fn secret(&self) -> &[u8; 32] {
        &self.secret
    }
}

/// The resolver handing snow our X25519 (and nothing else: snow falls back
/// to its own resolvers for the hash, the cipher and the RNG). `ours` is
/// the responder's static key, whose public half snow would otherwise
/// derive again on every handshake.
pub(crate) struct X25519Resolver {
    pub(crate) ours: Option<Arc<StaticKey>>,
}

impl CryptoResolver for X25519Resolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        None
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        match choice {
            DHChoice::Curve25519 => Some(Box::new(X25519Key {
                // A responder's ephemeral: one made ahead, if ready.
                made_ahead: self.ours.as_ref().map(|_| &EPHEMERALS),
                ours: self.ours.clone(),
                secret: Zeroizing::new([0; 32]),
                public: [0; 32],
                set: false,
            })),
            _ => None,
        }
    }

    fn resolve_hash(&self, _choice: &HashChoice) -> Option<Box<dyn Hash>> {
        None
    }

    fn resolve_cipher(&self, _choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        None
    }
}

/// One of a Noise state's key slots (`s` or `e`).
pub(crate) struct X25519Key {
    ours: Option<Arc<StaticKey>>,
    made_ahead: Option<&'static EphemeralPool>,
    secret: Zeroizing<[u8; 32]>,
    public: [u8; 32],
    set: bool,
}

impl Dh for X25519Key {
    fn name(&self) -> &'static str {
        "25519"
    }

    fn pub_len(&self) -> usize {
        32
    }

    fn priv_len(&self) -> usize {
        32
    }

    fn set(&mut self, privkey: &[u8]) {
        let mut secret = Zeroizing::new([0u8; 32]);
        let n = privkey.len().min(32);
        secret[..n].copy_from_slice(&privkey[..n]);
        self.public = match &self.ours {
            Some(ours) if constant_time_eq(&secret, ours.secret()) => ours.public,
            _ => crate::identity::x25519_public_key(&secret),
        };
        self.secret = secret;
        self.set = true;
    }

    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        let ready = self.made_ahead.and_then(EphemeralPool::take);
        if let Some(EphemeralKey { secret, public }) = ready {
            self.secret = secret;
            self.public = public;
            self.set = true;
            return Ok(());
        }
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.try_fill_bytes(&mut secret[..])?;
        self.public = crate::identity::x25519_public_key(&secret);
        self.secret = secret;
        self.set = true;
        Ok(())
    }

    fn pubkey(&self) -> &[u8] {
        &self.public
    }

    fn privkey(&self) -> &[u8] {
        &self.secret[..]
    }

    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        let theirs: [u8; 32] = pubkey
            .get(..32)
            .and_then(|p| p.try_into().ok())
            .ok_or(snow::Error::Dh)?;
        let out = out.get_mut(..32).ok_or(snow::Error::Dh)?;
        if !self.set {
            return Err(snow::Error::Dh);
        }
        let shared = Zeroizing::new(x25519(&self.secret, &theirs));
        if constant_time_eq(&shared, &[0; 32]) {
            return Err(snow::Error::Dh);
        }
        out.copy_from_slice(&shared[..]);
        Ok(())
    }
}

/// Equality of two secrets without an early exit.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic byte stream (splitmix64) for test inputs.
    fn bytes(seed: &mut u64) -> [u8; 32] {
        let mut out = [0u8; 32];
        for chunk in out.chunks_mut(8) {
            *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = *seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        out
    }

    fn ladder(secret: &[u8; 32], public: &[u8; 32]) -> [u8; 32] {
        *x25519_dalek::StaticSecret::from(*secret)
            .diffie_hellman(&x25519_dalek::PublicKey::from(*public))
            .as_bytes()
    }

    /// RFC 7748 §5.2's first vector and §6.1's key exchange.
    #[test]
    fn rfc7748_vectors() {
        let h = |s: &str| -> [u8; 32] { hex::decode(s).unwrap().try_into().unwrap() };
        assert_eq!(
            x25519(
                &h("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"),
                &h("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"),
            ),
            h("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")
        );
        let alice = h("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let alice_public = h("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        let bob = h("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
        let bob_public = h("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
        let shared = h("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        let mut nine = [0u8; 32];
        nine[0] = 9;
        assert_eq!(x25519(&alice, &nine), alice_public);
        assert_eq!(x25519(&bob, &nine), bob_public);
        assert_eq!(x25519(&alice, &bob_public), shared);
        assert_eq!(x25519(&bob, &alice_public), shared);
    }

    /// The Edwards path equals the Montgomery ladder for any input: keys
    /// on the curve and on the twist, the top bit set, non-canonical `u`
    /// (≥ p) and the small-order points.
    #[test]
    fn equals_the_ladder_on_every_kind_of_input() {
        let mut seed = 7;
        let mut on_curve = 0;
        for _ in 0..2000 {
            let secret = bytes(&mut seed);
            let public = bytes(&mut seed);
            if MontgomeryPoint(public).to_edwards(0).is_some() {
                on_curve += 1;
            }
            assert_eq!(x25519(&secret, &public), ladder(&secret, &public));
        }
        // Random u: about half on the curve, half on the twist.
        assert!((700..1300).contains(&on_curve), "{on_curve} on the curve");
        let p_minus = |k: u8| {
            let mut u = [0xffu8; 32];
            u[0] = 0xed - k;
            u[31] = 0x7f;
            u
        };
        let mut small = vec![[0u8; 32], p_minus(0), p_minus(1), p_minus(0x12)];
        let mut one = [0u8; 32];
        one[0] = 1;
        small.push(one);
        // The order-8 points' u coordinates (RFC 7748 implementations'
        // usual low-order list), and u ≥ p variants.
        for hex_u in [
            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
            "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
            "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        ] {
            small.push(hex::decode(hex_u).unwrap().try_into().unwrap());
        }
        for public in small {
            let secret = bytes(&mut seed);
            assert_eq!(x25519(&secret, &public), ladder(&secret, &public));
        }
    }

    #[test]
    fn agreement_matches_and_low_order_keys_are_refused() {
        let mut seed = 11;
        let resolver = X25519Resolver { ours: None };
        let key = |seed: &mut u64| {
            let mut k = resolver.resolve_dh(&DHChoice::Curve25519).unwrap();
            k.set(&bytes(seed));
            k
        };
        let (a, b) = (key(&mut seed), key(&mut seed));
        let (mut ab, mut ba) = ([0u8; 32], [0u8; 32]);
        a.dh(b.pubkey(), &mut ab).unwrap();
        b.dh(a.pubkey(), &mut ba).unwrap();
        assert_eq!(ab, ba);
        assert_ne!(ab, [0; 32]);
        // The zero point and the point of order 8: an all-zero secret.
        let order8: [u8; 32] =
            hex::decode("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")
                .unwrap()
                .try_into()
                .unwrap();
        assert!(a.dh(&[0u8; 32], &mut ab).is_err());
        assert!(a.dh(&order8, &mut ab).is_err());
        // Too short a key, or an unset slot.
        assert!(a.dh(&[1u8; 16], &mut ab).is_err());
        let unset = resolver.resolve_dh(&DHChoice::Curve25519).unwrap();
        assert!(unset.dh(b.pubkey(), &mut ab).is_err());
    }

    #[test]
    fn cached_static_public_key_is_the_derived_one() {
        let secret = [9u8; 32];
        let resolver = X25519Resolver {
            ours: Some(Arc::new(StaticKey::new(secret))),
        };
        let mut key = resolver.resolve_dh(&DHChoice::Curve25519).unwrap();
        key.set(&secret);
        assert_eq!(key.pubkey(), crate::identity::x25519_public_key(&secret));
        let other = [3u8; 32];
        key.set(&other);
        assert_eq!(key.pubkey(), crate::identity::x25519_public_key(&other));
        assert_eq!(key.privkey(), other);
    }

    /// Keys seen again (more of them than the per-thread cache holds, in
    /// a rotating and a repeating order, twist keys among them) give the
    /// ladder's answer every time: the cache never hands out another
    /// key's point.
    #[test]
    fn recently_seen_keys_give_the_ladders_answer() {
        let mut seed = 11;
        let keys: Vec<[u8; 32]> = (0..7).map(|_| bytes(&mut seed)).collect();
        assert!(
            keys.iter()
                .any(|k| MontgomeryPoint(*k).to_edwards(0).is_none())
                && keys
                    .iter()
                    .any(|k| MontgomeryPoint(*k).to_edwards(0).is_some()),
            "the set holds curve and twist keys"
        );
        for round in 0..50 {
            let key = &keys[(round * 3 + round / 7) % keys.len()];
            let secret = bytes(&mut seed);
            assert_eq!(x25519(&secret, key), ladder(&secret, key), "round {round}");
            assert_eq!(
                x25519(&secret, key),
                ladder(&secret, key),
                "round {round} again"
            );
        }
    }

    /// A responder's ephemeral comes from the keys made ahead, each a
    /// valid pair handed out once; with none ready it makes its own; an
    /// initiator's never comes from the pool.
    #[test]
    fn keys_made_ahead_serve_responders_once_each() {
        static POOL: EphemeralPool = EphemeralPool::new();
        for _ in 0..EPHEMERALS_AHEAD + 3 {
            POOL.make_ahead();
        }
        assert_eq!(
            POOL.keys().len(),
            EPHEMERALS_AHEAD,
            "the pool stays bounded"
        );
        let ready: Vec<[u8; 32]> = POOL.keys().iter().map(|k| k.public).collect();
        let key = |made_ahead| X25519Key {
            ours: None,
            made_ahead,
            secret: Zeroizing::new([0; 32]),
            public: [0; 32],
            set: false,
        };
        let mut rng = SnowRng(rand_core::OsRng);
        let mut seen = Vec::new();
        for _ in 0..EPHEMERALS_AHEAD + 1 {
            let mut k = key(Some(&POOL));
            k.generate(&mut rng).unwrap();
            let secret: [u8; 32] = k.privkey().try_into().unwrap();
            assert_eq!(k.pubkey(), crate::identity::x25519_public_key(&secret));
            assert!(!seen.contains(&secret), "an ephemeral handed out twice");
            seen.push(secret);
        }
        let public = |secret| crate::identity::x25519_public_key(secret);
        assert!(
            seen[..EPHEMERALS_AHEAD]
                .iter()
                .all(|s| ready.contains(&public(s)))
        );
        assert!(
            !ready.contains(&public(&seen[EPHEMERALS_AHEAD])),
            "made its own"
        );
        POOL.make_ahead();
        let mut k = key(None);
        k.generate(&mut rng).unwrap();
        assert_eq!(POOL.keys().len(), 1, "an initiator makes its own");
    }

    struct SnowRng(rand_core::OsRng);

    impl Random for SnowRng {
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
            self.0.fill_bytes(dest);
            Ok(())
        }
    }
}
