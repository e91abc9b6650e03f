"""Identity: the v0.11 vectors, read-only identities, lengths, lifetime."""

from __future__ import annotations

import gc
import pickle

import pytest

import netmesh

from netmesh import (
    NET_PUBLIC_KEY_LEN,
    NET_SEED_LEN,
    NET_SIGNATURE_LEN,
    Identity,
    InvalidArgumentError,
    InvalidPublicKeyError,
    InvalidSignatureError,
    ReadOnlyError,
    ShuttingDownError,
)
from netmesh._ffi import ffi, lib

from conftest import SEED_A, h


def test_vectors(identity_vectors):
    assert len(identity_vectors["vectors"]) == 3
    for v in identity_vectors["vectors"]:
        with Identity.from_seed(h(v["seed"])) as ident:
            assert ident.public_key == h(v["ed25519_public_key"])
            assert ident.entity_id == ident.public_key
            assert ident.origin_hash == int(v["origin_hash_u64"], 16)
            assert ident.node_id == int(v["node_id_u64"], 16)
            msg = v["sign_message_ascii"].encode()
            sig = ident.sign(msg)
            assert sig == h(v["ed25519_signature"])
            ident.verify(msg, sig)
            assert ident.seed() == h(v["seed"])
            assert not ident.is_read_only


def test_generate_is_random_and_consistent():
    with Identity.generate() as a, Identity.generate() as b:
        assert a.public_key != b.public_key
        assert len(a.public_key) == NET_PUBLIC_KEY_LEN
        assert len(a.seed()) == NET_SEED_LEN
        with Identity.from_seed(a.seed()) as again:
            assert again.public_key == a.public_key
            assert again.origin_hash == a.origin_hash


def test_verify_failures():
    with Identity.from_seed(SEED_A) as ident:
        sig = ident.sign(b"hello")
        assert len(sig) == NET_SIGNATURE_LEN
        assert ident.is_valid_signature(b"hello", sig)
        assert not ident.is_valid_signature(b"hellO", sig)
        with pytest.raises(InvalidSignatureError) as info:
            ident.verify(b"hellO", sig)
        assert info.value.status == lib.NET_ERR_INVALID_SIGNATURE
        assert info.value.message
        bad = bytearray(sig)
        bad[0] ^= 1
        with pytest.raises(InvalidSignatureError):
            ident.verify(b"hello", bytes(bad))
        with pytest.raises(InvalidArgumentError, match="64"):
            ident.verify(b"hello", sig[:63])
        with pytest.raises(InvalidArgumentError):
            ident.is_valid_signature(b"hello", sig + b"\0")


def test_accepts_any_bytes_like():
    with Identity.from_seed(bytearray(SEED_A)) as ident:
        sig = ident.sign(memoryview(b"net-spec-vector"))
        ident.verify(bytearray(b"net-spec-vector"), memoryview(sig))
        assert ident.sign(b"") == ident.sign(bytearray())
        with pytest.raises(TypeError):
            ident.sign("text")  # type: ignore[arg-type]


def test_read_only(identity_vectors):
    v = identity_vectors["vectors"][0]
    with Identity.from_public_key(h(v["ed25519_public_key"])) as ro:
        assert ro.is_read_only
        assert ro.public_key == h(v["ed25519_public_key"])
        assert ro.origin_hash == int(v["origin_hash_u64"], 16)
        assert ro.node_id == int(v["node_id_u64"], 16)
        ro.verify(v["sign_message_ascii"].encode(), h(v["ed25519_signature"]))
        with pytest.raises(ReadOnlyError) as info:
            ro.sign(b"x")
        assert info.value.status == lib.NET_ERR_READ_ONLY
        with pytest.raises(ReadOnlyError):
            ro.seed()
        assert "read-only" in repr(ro)


def test_bad_lengths_are_invalid_argument():
    for n in (0, 31, 33):
        with pytest.raises(InvalidArgumentError) as info:
            Identity.from_seed(b"\1" * n)
        assert info.value.status == lib.NET_ERR_INVALID_ARGUMENT
        assert "32" in info.value.message
        assert isinstance(info.value, ValueError)
        with pytest.raises(InvalidArgumentError):
            Identity.from_public_key(b"\1" * n)


def test_invalid_public_key():
    # y = 2 has no x on edwards25519: not a curve point.
    with pytest.raises(InvalidPublicKeyError) as info:
        Identity.from_public_key(b"\x02" + b"\x00" * 31)
    assert info.value.status == lib.NET_ERR_INVALID_PUBLIC_KEY


def test_context_manager_closes_and_close_is_idempotent():
    with Identity.from_seed(SEED_A) as ident:
        assert not ident.closed
    assert ident.closed
    ident.close()
    ident.close()
    assert repr(ident) == "<Identity closed>"
    for op in (
        lambda: ident.public_key,
        lambda: ident.entity_id,
        lambda: ident.seed(),
        lambda: ident.is_read_only,
        lambda: ident.origin_hash,
        lambda: ident.node_id,
        lambda: ident.sign(b"x"),
        lambda: ident.verify(b"x", b"\0" * 64),
    ):
        with pytest.raises(ShuttingDownError) as info:
            op()
        assert info.value.status == lib.NET_ERR_SHUTTING_DOWN
    with pytest.raises(ShuttingDownError):
        with ident:
            pass


def test_del_warns_and_frees_the_handle_on_a_background_thread():
    from netmesh._handle import _reaper

    ident = Identity.from_seed(SEED_A)
    raw = ident._ptr
    with pytest.warns(ResourceWarning, match="Identity was never closed"):
        del ident
        gc.collect()
    assert _reaper.wait_idle(30)
    out = ffi.new("uint64_t *")
    assert lib.net_identity_origin_hash(raw, out) == lib.NET_ERR_SHUTTING_DOWN


def test_not_picklable_and_not_constructible_directly():
    with Identity.generate() as ident:
        with pytest.raises(TypeError):
            pickle.dumps(ident)
    with pytest.raises(TypeError):
        Identity(None)


def test_clone_is_independent():
    original = netmesh.Identity.from_seed(bytes(range(32)))
    expected = original.origin_hash
    copy = original.clone()
    original.close()
    with pytest.raises(netmesh.ShuttingDownError):
        original.origin_hash
    assert copy.origin_hash == expected
    copy.sign(b"still works")
    copy.close()


def test_status_names_come_from_libnet():
    for status in netmesh.Status:
        assert netmesh.status_name(int(status)) == f"NET_{status.name}"
    assert netmesh.status_name(-9999) == "NET_UNKNOWN_STATUS"
    err = netmesh.TokenExpiredError(int(netmesh.Status.ERR_TOKEN_EXPIRED), "token has expired")
    assert str(err) == "token has expired [NET_ERR_TOKEN_EXPIRED]"
