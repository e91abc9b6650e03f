//! The identity C ABI exercised from Rust through the same `extern "C"`
//! functions C calls: status codes, out-parameter discipline, last-error
//! messages, and the three handle races.

use std::ffi::CStr;
use std::ptr;
use std::sync::{Arc, Barrier};
use std::thread;

mod ffi_common;

use net::ffi::*;

const SEED_A: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31,
];

/// A handle pointer that may cross threads (the C ABI allows it).
#[derive(Clone, Copy)]
struct SendPtr(*mut net_identity_t);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

fn last_error() -> String {
    unsafe { CStr::from_ptr(net_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}

fn identity(seed: &[u8; 32]) -> *mut net_identity_t {
    let mut out = ptr::null_mut();
    let status = unsafe { net_identity_from_seed(seed.as_ptr(), seed.len(), &mut out) };
    assert_eq!(status, net_status_t::NET_OK);
    assert!(!out.is_null());
    out
}

fn take_bytes(mut bytes: net_bytes_t) -> Vec<u8> {
    let copy = if bytes.ptr.is_null() {
        Vec::new()
    } else {
        unsafe { std::slice::from_raw_parts(bytes.ptr, bytes.len) }.to_vec()
    };
    unsafe { net_bytes_free(&mut bytes) };
    assert!(bytes.ptr.is_null());
    copy
}

fn origin_hash(id: *mut net_identity_t) -> Result<u64, net_status_t> {
    let mut out = 0u64;
    match unsafe { net_identity_origin_hash(id, &mut out) } {
        net_status_t::NET_OK => Ok(out),
        other => Err(other),
    }
}

fn sign(id: *mut net_identity_t, message: &[u8]) -> Result<Vec<u8>, net_status_t> {
    let mut sig = net_bytes_t::EMPTY;
    match unsafe { net_identity_sign(id, message.as_ptr(), message.len(), &mut sig) } {
        net_status_t::NET_OK => Ok(take_bytes(sig)),
        other => Err(other),
    }
}

#[test]
fn versions() {
    assert_eq!(net_abi_version(), NET_ABI_VERSION);
    let version = unsafe { CStr::from_ptr(net_version()) }.to_str().unwrap();
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
}

#[test]
fn accessors_match_the_vectors() {
    let id = identity(&SEED_A);
    assert_eq!(origin_hash(id), Ok(0x782a_3238_8019_76bf));
    let mut node_id = 0;
    assert_eq!(
        unsafe { net_identity_node_id(id, &mut node_id) },
        net_status_t::NET_OK
    );
    assert_eq!(node_id, 0xbd82_6a5d_0a63_94f5);
    let mut pk = net_bytes_t::EMPTY;
    assert_eq!(
        unsafe { net_identity_public_key(id, &mut pk) },
        net_status_t::NET_OK
    );
    let pk = take_bytes(pk);
    assert_eq!(
        hex::encode(&pk),
        "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    );
    let mut eid = net_bytes_t::EMPTY;
    assert_eq!(
        unsafe { net_identity_entity_id(id, &mut eid) },
        net_status_t::NET_OK
    );
    assert_eq!(take_bytes(eid), pk);
    let mut seed = net_bytes_t::EMPTY;
    assert_eq!(
        unsafe { net_identity_seed(id, &mut seed) },
        net_status_t::NET_OK
    );
    assert_eq!(take_bytes(seed), SEED_A);
    let sig = sign(id, b"net-spec-vector").unwrap();
    assert_eq!(
        hex::encode(&sig),
        "817fc208e7aa0e5da310fb70c31379a4037ac2afba938428521a6e72c8761768d24b2e581b29120a97c0a39e5512f42f3c94fd38496dabc3d0ce98d4dfa0c604"
    );
    let verify = |msg: &[u8], sig: &[u8]| unsafe {
        net_identity_verify(id, msg.as_ptr(), msg.len(), sig.as_ptr(), sig.len())
    };
    assert_eq!(verify(b"net-spec-vector", &sig), net_status_t::NET_OK);
    assert_eq!(
        verify(b"net-spec-vectors", &sig),
        net_status_t::NET_ERR_INVALID_SIGNATURE
    );
    assert_eq!(
        verify(b"net-spec-vector", &sig[..63]),
        net_status_t::NET_ERR_INVALID_ARGUMENT
    );
    assert!(last_error().contains("64 bytes"), "{}", last_error());
    unsafe { net_identity_free(id) };
}

#[test]
fn bad_arguments_are_refused_and_outputs_untouched() {
    let mut out: *mut net_identity_t = ptr::null_mut();
    let status = unsafe { net_identity_from_seed(SEED_A.as_ptr(), 31, &mut out) };
    assert_eq!(status, net_status_t::NET_ERR_INVALID_ARGUMENT);
    assert!(out.is_null(), "output written on failure");
    assert!(last_error().contains("seed"), "{}", last_error());

    let status = unsafe { net_identity_from_seed(ptr::null(), 32, &mut out) };
    assert_eq!(status, net_status_t::NET_ERR_INVALID_ARGUMENT);
    let status = unsafe { net_identity_from_seed(SEED_A.as_ptr(), 32, ptr::null_mut()) };
    assert_eq!(status, net_status_t::NET_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("NULL"), "{}", last_error());

    let mut hash = 7u64;
    assert_eq!(
        unsafe { net_identity_origin_hash(ptr::null(), &mut hash) },
        net_status_t::NET_ERR_INVALID_ARGUMENT
    );
    assert_eq!(hash, 7);

    let id = identity(&SEED_A);
    // A misaligned u64 output.
    let mut storage = [0u64; 2];
    let misaligned = unsafe { storage.as_mut_ptr().cast::<u8>().add(1).cast::<u64>() };
    assert_eq!(
        unsafe { net_identity_origin_hash(id, misaligned) },
        net_status_t::NET_ERR_INVALID_ARGUMENT
    );
    assert!(last_error().contains("misaligned"), "{}", last_error());
    unsafe { net_identity_free(id) };

    // A public key that is not on the curve.
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = (2u8..=255)
        .find(|y| {
            let mut key = [0u8; 32];
            key[0] = *y;
            !net::identity::EntityId::from_bytes(key).is_valid_point()
        })
        .unwrap();
    assert_eq!(
        unsafe { net_identity_from_public_key(not_a_point.as_ptr(), 32, &mut out) },
        net_status_t::NET_ERR_INVALID_PUBLIC_KEY
    );
}

#[test]
fn read_only_identity_cannot_sign_issue_or_seal() {
    let full = identity(&SEED_A);
    let mut pk = net_bytes_t::EMPTY;
    unsafe { net_identity_public_key(full, &mut pk) };
    let pk = take_bytes(pk);
    let mut ro = ptr::null_mut();
    assert_eq!(
        unsafe { net_identity_from_public_key(pk.as_ptr(), pk.len(), &mut ro) },
        net_status_t::NET_OK
    );
    let mut read_only = false;
    assert_eq!(
        unsafe { net_identity_is_read_only(ro, &mut read_only) },
        net_status_t::NET_OK
    );
    assert!(read_only);
    assert_eq!(sign(ro, b"x"), Err(net_status_t::NET_ERR_READ_ONLY));
    let mut seed = net_bytes_t::EMPTY;
    assert_eq!(
        unsafe { net_identity_seed(ro, &mut seed) },
        net_status_t::NET_ERR_READ_ONLY
    );
    let mut token = net_bytes_t::EMPTY;
    let status =
        unsafe { net_token_issue(ro, pk.as_ptr(), 32, NET_SCOPE_ALL, 1, 60, 0, &mut token) };
    assert_eq!(status, net_status_t::NET_ERR_READ_ONLY);
    let mut envelope = net_bytes_t::EMPTY;
    let status = unsafe {
        net_envelope_seal(
            ro,
            [9u8; 32].as_ptr(),
            32,
            [0u8; 32].as_ptr(),
            32,
            &mut envelope,
        )
    };
    assert_eq!(status, net_status_t::NET_ERR_READ_ONLY);
    // Verification still works.
    let sig = sign(full, b"hello").unwrap();
    assert_eq!(
        unsafe { net_identity_verify(ro, b"hello".as_ptr(), 5, sig.as_ptr(), sig.len()) },
        net_status_t::NET_OK
    );
    unsafe {
        net_identity_free(ro);
        net_identity_free(full);
    }
}

#[test]
fn tokens_through_the_abi() {
    let a = identity(&SEED_A);
    let b = identity(&[0x42; 32]);
    let c = identity(&[0xff; 32]);
    let public = |id| {
        let mut pk = net_bytes_t::EMPTY;
        unsafe { net_identity_public_key(id, &mut pk) };
        take_bytes(pk)
    };
    let (pb, pc) = (public(b), public(c));
    let mut hash = 0u16;
    let name = b"sensors/lidar";
    assert_eq!(
        unsafe { net_channel_hash(name.as_ptr(), name.len(), &mut hash) },
        net_status_t::NET_OK
    );
    assert_eq!(hash, 0xe5d8);

    let mut zero = net_bytes_t::EMPTY;
    let status =
        unsafe { net_token_issue(a, pb.as_ptr(), 32, NET_SCOPE_ALL, hash, 0, 1, &mut zero) };
    assert_eq!(status, net_status_t::NET_ERR_TOKEN_ZERO_TTL);
    assert!(zero.ptr.is_null());

    let mut raw = net_bytes_t::EMPTY;
    let status =
        unsafe { net_token_issue(a, pb.as_ptr(), 32, NET_SCOPE_ALL, hash, 3600, 1, &mut raw) };
    assert_eq!(status, net_status_t::NET_OK);
    let token = take_bytes(raw);
    assert_eq!(token.len(), NET_TOKEN_SIZE);
    assert_eq!(
        unsafe { net_token_verify(token.as_ptr(), token.len()) },
        net_status_t::NET_OK
    );
    assert_eq!(
        unsafe { net_token_is_valid(token.as_ptr(), token.len()) },
        net_status_t::NET_OK
    );
    let mut info = std::mem::MaybeUninit::<net_token_info_t>::uninit();
    assert_eq!(
        unsafe { net_token_parse(token.as_ptr(), token.len(), info.as_mut_ptr()) },
        net_status_t::NET_OK
    );
    let info = unsafe { info.assume_init() };
    assert_eq!(info.subject.as_slice(), pb.as_slice());
    assert_eq!(info.scope, NET_SCOPE_ALL);
    assert_eq!(info.channel_hash, hash);
    assert_eq!(info.delegation_depth, 1);
    assert_eq!(info.not_after - info.not_before, 3600);
    assert_eq!(
        unsafe { net_token_is_valid_at(token.as_ptr(), token.len(), info.not_after) },
        net_status_t::NET_ERR_TOKEN_EXPIRED
    );
    assert_eq!(
        unsafe { net_token_is_valid_at(token.as_ptr(), token.len(), info.not_before - 1) },
        net_status_t::NET_ERR_TOKEN_NOT_YET_VALID
    );
    let mut expired = true;
    assert_eq!(
        unsafe { net_token_is_expired(token.as_ptr(), token.len(), &mut expired) },
        net_status_t::NET_OK
    );
    assert!(!expired);
    let mut ok = false;
    assert_eq!(
        unsafe {
            net_token_authorizes(
                token.as_ptr(),
                token.len(),
                NET_SCOPE_PUBLISH,
                hash,
                &mut ok,
            )
        },
        net_status_t::NET_OK
    );
    assert!(ok);
    unsafe {
        net_token_authorizes(
            token.as_ptr(),
            token.len(),
            NET_SCOPE_PUBLISH,
            hash ^ 1,
            &mut ok,
        )
    };
    assert!(!ok);

    let mut tampered = token.clone();
    tampered[64] ^= 0x10;
    assert_eq!(
        unsafe { net_token_verify(tampered.as_ptr(), tampered.len()) },
        net_status_t::NET_ERR_TOKEN_INVALID_SIGNATURE
    );
    assert_eq!(
        unsafe { net_token_verify(token.as_ptr(), 158) },
        net_status_t::NET_ERR_TOKEN_INVALID_FORMAT
    );

    let mut child = net_bytes_t::EMPTY;
    let status = unsafe {
        net_token_delegate(
            b,
            token.as_ptr(),
            token.len(),
            pc.as_ptr(),
            32,
            NET_SCOPE_SUBSCRIBE | NET_SCOPE_DELEGATE,
            &mut child,
        )
    };
    assert_eq!(status, net_status_t::NET_OK);
    let child = take_bytes(child);
    assert_eq!(
        unsafe { net_token_verify(child.as_ptr(), child.len()) },
        net_status_t::NET_OK
    );
    let mut wrong = net_bytes_t::EMPTY;
    let status = unsafe {
        net_token_delegate(
            c,
            token.as_ptr(),
            token.len(),
            pc.as_ptr(),
            32,
            NET_SCOPE_ALL,
            &mut wrong,
        )
    };
    assert_eq!(status, net_status_t::NET_ERR_TOKEN_NOT_AUTHORIZED);
    let status = unsafe {
        net_token_delegate(
            c,
            child.as_ptr(),
            child.len(),
            pb.as_ptr(),
            32,
            NET_SCOPE_ALL,
            &mut wrong,
        )
    };
    assert_eq!(status, net_status_t::NET_ERR_TOKEN_DELEGATION_EXHAUSTED);
    unsafe {
        net_identity_free(a);
        net_identity_free(b);
        net_identity_free(c);
    }
}

#[test]
fn envelopes_through_the_abi() {
    let source = identity(&SEED_A);
    let secret = [0x21u8; 32];
    let mut target_pub = net_bytes_t::EMPTY;
    assert_eq!(
        unsafe { net_x25519_public_key(secret.as_ptr(), 32, &mut target_pub) },
        net_status_t::NET_OK
    );
    let target_pub = take_bytes(target_pub);
    let link = [0x5au8; 32];
    let mut sealed = net_bytes_t::EMPTY;
    let status = unsafe {
        net_envelope_seal(
            source,
            target_pub.as_ptr(),
            32,
            link.as_ptr(),
            32,
            &mut sealed,
        )
    };
    assert_eq!(status, net_status_t::NET_OK);
    let sealed = take_bytes(sealed);
    assert_eq!(sealed.len(), NET_ENVELOPE_SIZE);

    let mut signer = net_bytes_t::EMPTY;
    unsafe { net_identity_public_key(source, &mut signer) };
    let signer = take_bytes(signer);
    let open = |env: &[u8], secret: &[u8; 32], expected: Option<&[u8]>| {
        let mut out = ptr::null_mut();
        let (ep, el) = expected.map_or((ptr::null(), 0), |e| (e.as_ptr(), e.len()));
        let status = unsafe {
            net_envelope_open(
                env.as_ptr(),
                env.len(),
                secret.as_ptr(),
                32,
                link.as_ptr(),
                32,
                ep,
                el,
                &mut out,
            )
        };
        (status, out)
    };
    let (status, opened) = open(&sealed, &secret, Some(&signer));
    assert_eq!(status, net_status_t::NET_OK);
    assert_eq!(origin_hash(opened), origin_hash(source));
    unsafe { net_identity_free(opened) };

    let (status, out) = open(&sealed, &[0x09; 32], None);
    assert_eq!(status, net_status_t::NET_ERR_ENVELOPE_SEAL_OPEN_FAILED);
    assert!(out.is_null());
    let mut v0 = sealed.clone();
    v0[0] = 0;
    assert_eq!(
        open(&v0, &secret, None).0,
        net_status_t::NET_ERR_ENVELOPE_UNKNOWN_VERSION
    );
    assert_eq!(
        open(&sealed[..100], &secret, None).0,
        net_status_t::NET_ERR_ENVELOPE_INVALID_LENGTH
    );
    assert_eq!(
        open(&sealed, &secret, Some(&[7u8; 32])).0,
        net_status_t::NET_ERR_ENVELOPE_INVALID_SIGNER_KEY
    );
    assert_eq!(
        open(&sealed, &secret, Some(&[7u8; 31])).0,
        net_status_t::NET_ERR_INVALID_ARGUMENT
    );
    unsafe { net_identity_free(source) };
}

#[test]
fn channel_validation_through_the_abi() {
    let mut hash = 0u16;
    for bad in [&b""[..], b"/a", b"a//b", b"a b", b"../x"] {
        assert_eq!(
            unsafe { net_channel_hash(bad.as_ptr(), bad.len(), &mut hash) },
            net_status_t::NET_ERR_CHANNEL_INVALID_NAME,
            "{bad:?}"
        );
    }
    let not_utf8 = [0xffu8, 0xfe];
    assert_eq!(
        unsafe { net_channel_validate(not_utf8.as_ptr(), 2) },
        net_status_t::NET_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        unsafe { net_channel_validate(b"a/b".as_ptr(), 3) },
        net_status_t::NET_OK
    );
}

#[test]
fn bytes_free_is_null_safe_and_idempotent() {
    unsafe { net_bytes_free(ptr::null_mut()) };
    let mut empty = net_bytes_t::EMPTY;
    unsafe { net_bytes_free(&mut empty) };
    let id = identity(&SEED_A);
    let mut pk = net_bytes_t::EMPTY;
    unsafe { net_identity_public_key(id, &mut pk) };
    unsafe { net_bytes_free(&mut pk) };
    assert!(pk.ptr.is_null() && pk.len == 0);
    unsafe { net_bytes_free(&mut pk) };
    unsafe { net_identity_free(id) };
}

// ---- the three handle races ------------------------------------------------

#[test]
fn race_op_after_free_returns_shutting_down() {
    for _ in 0..200 {
        let id = identity(&SEED_A);
        unsafe { net_identity_free(id) };
        assert_eq!(origin_hash(id), Err(net_status_t::NET_ERR_SHUTTING_DOWN));
        assert!(last_error().contains("freed"), "{}", last_error());
        assert_eq!(sign(id, b"x"), Err(net_status_t::NET_ERR_SHUTTING_DOWN));
    }
    // And while racing: ops either complete or see SHUTTING_DOWN, never garbage.
    for _ in 0..50 {
        let id = SendPtr(identity(&SEED_A));
        let start = Arc::new(Barrier::new(5));
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let start = start.clone();
                thread::spawn(move || {
                    let id = id;
                    start.wait();
                    for _ in 0..200 {
                        match origin_hash(id.0) {
                            Ok(hash) => assert_eq!(hash, 0x782a_3238_8019_76bf),
                            Err(status) => assert_eq!(status, net_status_t::NET_ERR_SHUTTING_DOWN),
                        }
                    }
                })
            })
            .collect();
        start.wait();
        unsafe { net_identity_free(id.0) };
        for w in workers {
            w.join().unwrap();
        }
    }
}

#[test]
fn race_concurrent_frees_are_idempotent() {
    for _ in 0..100 {
        let id = SendPtr(identity(&SEED_A));
        let start = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let start = start.clone();
                thread::spawn(move || {
                    let id = id;
                    start.wait();
                    if i % 2 == 1 {
                        let _ = origin_hash(id.0);
                    }
                    unsafe { net_identity_free(id.0) }
                })
            })
            .collect();
        for t in threads {
            // Every free of the same handle succeeds (one frees it, the
            // others find it freed).
            assert_eq!(t.join().unwrap(), net_status_t::NET_OK);
        }
        assert_eq!(origin_hash(id.0), Err(net_status_t::NET_ERR_SHUTTING_DOWN));
    }
}

#[test]
fn race_free_waits_for_in_flight_op() {
    // Large enough that signing takes a good while.
    let message = Arc::new(vec![0xabu8; 32 << 20]);
    for _ in 0..20 {
        let id = SendPtr(identity(&SEED_A));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let worker = {
            let (message, done) = (message.clone(), done.clone());
            thread::spawn(move || {
                let id = id;
                let result = sign(id.0, &message);
                done.store(true, std::sync::atomic::Ordering::SeqCst);
                result
            })
        };
        let in_flight = ffi_common::wait_in_flight(id.0, &done);
        // The free cannot drop the keypair under the sign: it waits for it.
        assert_eq!(unsafe { net_identity_free(id.0) }, net_status_t::NET_OK);
        let result = worker.join().unwrap();
        if !in_flight {
            continue;
        }
        let signature = result.expect("the sign was inside before the free");
        let check = identity(&SEED_A);
        let status = unsafe {
            net_identity_verify(
                check,
                message.as_ptr(),
                message.len(),
                signature.as_ptr(),
                signature.len(),
            )
        };
        assert_eq!(status, net_status_t::NET_OK, "signed with a live key");
        unsafe { net_identity_free(check) };
        return;
    }
    panic!("the sign was never seen in flight in 20 rounds");
}

#[test]
fn status_names() {
    let name = |code: i32| {
        unsafe { CStr::from_ptr(net_status_name(code)) }
            .to_str()
            .unwrap()
            .to_owned()
    };
    for status in net_status_t::ALL {
        assert_eq!(name(status.code()), format!("{status:?}"));
    }
    assert_eq!(name(-9999), "NET_UNKNOWN_STATUS");
    assert_eq!(name(4), "NET_UNKNOWN_STATUS");
}

#[test]
fn clone_is_an_independent_handle() {
    let original = identity(&SEED_A);
    let mut copy = ptr::null_mut();
    assert_eq!(
        unsafe { net_identity_clone(original, &mut copy) },
        net_status_t::NET_OK
    );
    assert_ne!(copy, original);
    unsafe { net_identity_free(original) };
    assert_eq!(
        origin_hash(original),
        Err(net_status_t::NET_ERR_SHUTTING_DOWN)
    );
    assert_eq!(origin_hash(copy), Ok(0x782a_3238_8019_76bf));
    assert!(sign(copy, b"still works").is_ok());
    unsafe { net_identity_free(copy) };
}

#[test]
fn token_expiry_at_a_given_time() {
    let a = identity(&SEED_A);
    let mut raw = net_bytes_t::EMPTY;
    let subject = [0x21u8; 32];
    let status = unsafe {
        net_token_issue(
            a,
            subject.as_ptr(),
            32,
            NET_SCOPE_PUBLISH,
            1,
            60,
            0,
            &mut raw,
        )
    };
    assert_eq!(status, net_status_t::NET_OK);
    let token = take_bytes(raw);
    let mut info = std::mem::MaybeUninit::<net_token_info_t>::uninit();
    unsafe { net_token_parse(token.as_ptr(), token.len(), info.as_mut_ptr()) };
    let info = unsafe { info.assume_init() };
    assert_eq!(info.reserved, 0);
    let expired_at = |now| {
        let mut out = false;
        assert_eq!(
            unsafe { net_token_is_expired_at(token.as_ptr(), token.len(), now, &mut out) },
            net_status_t::NET_OK
        );
        out
    };
    assert!(!expired_at(info.not_after - 1));
    assert!(expired_at(info.not_after));
    unsafe { net_identity_free(a) };
}

#[test]
fn absent_optional_argument_must_have_zero_length() {
    let source = identity(&SEED_A);
    let secret = [0x21u8; 32];
    let mut target_pub = net_bytes_t::EMPTY;
    unsafe { net_x25519_public_key(secret.as_ptr(), 32, &mut target_pub) };
    let target_pub = take_bytes(target_pub);
    let link = [0u8; 32];
    let mut sealed = net_bytes_t::EMPTY;
    unsafe {
        net_envelope_seal(
            source,
            target_pub.as_ptr(),
            32,
            link.as_ptr(),
            32,
            &mut sealed,
        )
    };
    let sealed = take_bytes(sealed);
    let mut out = ptr::null_mut();
    let status = unsafe {
        net_envelope_open(
            sealed.as_ptr(),
            sealed.len(),
            secret.as_ptr(),
            32,
            link.as_ptr(),
            32,
            ptr::null(),
            32,
            &mut out,
        )
    };
    assert_eq!(status, net_status_t::NET_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("expected_signer"), "{}", last_error());
    unsafe { net_identity_free(source) };
}
