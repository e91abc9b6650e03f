//! `cargo bench --bench identity`: identity hot paths next to baselines
//! measured in the same run, printed as ratios (ours / baseline time).
//!
//! Baselines are the raw libraries underneath: ed25519-dalek for sign and
//! verify, keyed BLAKE2s for origin_hash, xxh3 for the channel hash. The
//! `net_channel_hash` rows show what the C ABI costs over native Rust.
//!
//! `-- --channel-hash-only` prints just `channel_hash_ns_per_call <ns>` for
//! native Rust, which scripts/bench-ffi-overhead.sh compares the SDKs against.

mod common;
use common::{ns_per_call, row};

use std::hint::black_box;

use blake2::Blake2sMac256;
use blake2::digest::{FixedOutput, KeyInit, Update};
use ed25519_dalek::{Signer, SigningKey};
use net::ffi::{net_channel_hash, net_status_t};
use net::identity::{EntityKeypair, Signature, checked_channel_hash, origin_hash_of};

const CHANNEL: &str = "sensors/lidar";

fn native_channel_hash() -> f64 {
    ns_per_call(2_000_000, 10, || {
        black_box(checked_channel_hash(black_box(CHANNEL)).ok());
    })
}

fn main() {
    if std::env::args().any(|a| a == "--channel-hash-only") {
        println!("channel_hash_ns_per_call {:.2}", native_channel_hash());
        return;
    }
    let seed = [7u8; 32];
    let ours = EntityKeypair::from_seed(&seed);
    let raw = SigningKey::from_bytes(&seed);
    let message = [0x5au8; 64];

    println!("identity hot paths (best of 5 rounds; ratio = ours / baseline time)");
    let sign_ours = ns_per_call(5_000, 5, || {
        black_box(ours.sign(black_box(&message)).unwrap());
    });
    let sign_raw = ns_per_call(5_000, 5, || {
        black_box(raw.sign(black_box(&message)));
    });
    row("sign (64 B)", sign_ours, "ed25519-dalek sign", sign_raw);

    let signature = ours.sign(&message).unwrap();
    let raw_signature = ed25519_dalek::Signature::from_bytes(&signature.0);
    let raw_verifying = raw.verifying_key();
    let verify_ours = ns_per_call(3_000, 5, || {
        black_box(ours.verify(black_box(&message), &signature)).unwrap();
    });
    let verify_raw = ns_per_call(3_000, 5, || {
        black_box(raw_verifying.verify_strict(black_box(&message), &raw_signature)).unwrap();
    });
    row(
        "verify (keypair, 64 B)",
        verify_ours,
        "ed25519-dalek verify_strict",
        verify_raw,
    );

    let id = *ours.entity_id();
    let verify_id = ns_per_call(3_000, 5, || {
        black_box(id.verify(black_box(&message), &Signature(signature.0))).unwrap();
    });
    let verify_raw_parse = ns_per_call(3_000, 5, || {
        let key = ed25519_dalek::VerifyingKey::from_bytes(black_box(id.as_bytes())).unwrap();
        black_box(key.verify_strict(black_box(&message), &raw_signature)).unwrap();
    });
    row(
        "verify (EntityId bytes, 64 B)",
        verify_id,
        "dalek from_bytes+verify_strict",
        verify_raw_parse,
    );

    let public_key = *ours.public_key();
    let origin_ours = ns_per_call(1_000_000, 5, || {
        black_box(origin_hash_of(black_box(&public_key)));
    });
    let origin_raw = ns_per_call(1_000_000, 5, || {
        let mut mac = <Blake2sMac256 as KeyInit>::new_from_slice(b"net-origin-v1").unwrap();
        mac.update(black_box(&public_key));
        black_box(mac.finalize_fixed());
    });
    row("origin_hash", origin_ours, "keyed BLAKE2s-256", origin_raw);

    let native = native_channel_hash();
    let raw_xxh3 = ns_per_call(2_000_000, 5, || {
        black_box(xxhash_rust::xxh3::xxh3_64(black_box(CHANNEL.as_bytes())) as u16);
    });
    row(
        "channel hash (validate + xxh3)",
        native,
        "raw xxh3_64",
        raw_xxh3,
    );

    let mut out = 0u16;
    let via_abi = ns_per_call(2_000_000, 5, || {
        let status =
            unsafe { net_channel_hash(black_box(CHANNEL.as_ptr()), CHANNEL.len(), &mut out) };
        debug_assert_eq!(status, net_status_t::NET_OK);
        black_box(out);
    });
    row(
        "net_channel_hash via the C ABI",
        via_abi,
        "native Rust channel hash",
        native,
    );
}
