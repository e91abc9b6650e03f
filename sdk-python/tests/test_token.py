"""Permission tokens against the v0.11 vectors."""

from __future__ import annotations

import time

import pytest

import netmesh

from netmesh import (
    NET_TOKEN_SIZE,
    Identity,
    InvalidArgumentError,
    ReadOnlyError,
    Scope,
    Token,
    TokenDelegationExhaustedError,
    TokenDelegationNotAllowedError,
    TokenError,
    TokenExpiredError,
    TokenInvalidFormatError,
    TokenInvalidSignatureError,
    TokenNotAuthorizedError,
    TokenNotYetValidError,
    TokenZeroTtlError,
    channel_hash,
)
from netmesh._ffi import lib

from conftest import SEED_A, SEED_B, SEED_C, h


@pytest.fixture
def det(token_vectors):
    return Token.from_bytes(h(token_vectors["deterministic"]["token_159"]))


def test_scope_matches_header():
    assert Scope.PUBLISH == lib.NET_SCOPE_PUBLISH == 1
    assert Scope.ALL == Scope.PUBLISH | Scope.SUBSCRIBE | Scope.ADMIN | Scope.DELEGATE
    assert not Scope.ALL & Scope.WILDCARD
    assert str(Scope.PUBLISH | Scope.DELEGATE) == "PUBLISH|DELEGATE"
    assert str(Scope.NONE) == "NONE"


def test_deterministic_fields(det, token_vectors):
    v = token_vectors["deterministic"]
    assert len(bytes(det)) == NET_TOKEN_SIZE == len(det)
    assert bytes(det) == h(v["token_159"])
    assert det.issuer == h(v["issuer_pub"])
    assert det.subject == h(v["subject_pub"])
    assert det.scope == v["scope_bits"] and isinstance(det.scope, Scope)
    assert det.channel_hash == int(v["channel_hash"], 16) == channel_hash(v["channel"])
    assert det.not_before == v["not_before"]
    assert det.not_after == v["not_after"]
    assert det.delegation_depth == v["delegation_depth"]
    assert det.nonce == int(v["nonce"], 16)
    info = det.parse()
    assert info == det.info and info.scope == det.scope and info.nonce == det.nonce
    assert h(v["signing_input_95"]) + h(v["signature"]) == bytes(det)
    assert Token(bytes(det)) == det and hash(Token(bytes(det))) == hash(det)
    assert "PUBLISH|SUBSCRIBE|DELEGATE" in repr(det)


def test_deterministic_validity(det):
    det.verify()
    det.validate(1700000000)
    assert det.is_valid(1700000000)
    with pytest.raises(TokenExpiredError) as info:
        det.validate(4102444800)
    assert info.value.status == lib.NET_ERR_TOKEN_EXPIRED
    assert not det.is_valid(4102444800)
    with pytest.raises(TokenNotYetValidError):
        det.validate(1699999999)
    det.validate()  # now is inside [2023, 2100)
    assert det.is_valid()
    assert not det.is_expired()


def test_tampered(token_vectors, det):
    tampered = Token.from_bytes(h(token_vectors["tampered_scope_byte64_xor_0x04"]["token_159"]))
    assert int(tampered.scope) == int(det.scope) ^ 0x04
    with pytest.raises(TokenInvalidSignatureError) as info:
        tampered.verify()
    assert isinstance(info.value, TokenError)
    with pytest.raises(TokenInvalidSignatureError):
        tampered.validate(1700000000)
    assert not tampered.is_valid(1700000000)
    # Flip a signature bit ourselves too.
    raw = bytearray(bytes(det))
    raw[-1] ^= 0x80
    with pytest.raises(TokenInvalidSignatureError):
        Token(raw).verify()


def test_expired(token_vectors):
    v = token_vectors["expired"]
    tok = Token.from_bytes(h(v["token_159"]))
    tok.verify()
    assert tok.is_expired()
    with pytest.raises(TokenExpiredError):
        tok.validate()
    assert not tok.is_valid()
    tok.validate(v["not_before"])
    with pytest.raises(TokenExpiredError):
        tok.validate(v["not_after"])
    assert tok.scope == v["scope_bits"] and tok.nonce == v["nonce"]


def test_reference_issued_verifies(token_vectors):
    v = token_vectors["reference_issued"]
    tok = Token.from_bytes(h(v["token_159"]))
    tok.verify()
    assert tok.scope == Scope(v["scope_bits"])
    assert (tok.not_before, tok.not_after, tok.nonce) == (
        v["not_before"],
        v["not_after"],
        int(v["nonce"], 16),
    )


def test_authorizes_truth_table(det, token_vectors):
    v = token_vectors["deterministic"]
    ch = int(v["channel_hash"], 16)
    assert det.authorizes(Scope.SUBSCRIBE, ch) is v["authorizes_subscribe_on_channel"]
    assert det.authorizes(Scope.ADMIN, ch) is v["authorizes_admin_on_channel"]
    assert det.authorizes(Scope.SUBSCRIBE, 0x0000) is v["authorizes_subscribe_on_other_channel_0x0000"]
    assert det.authorizes(Scope.NONE, ch) is v["authorizes_NONE"]
    assert det.authorizes(Scope.PUBLISH, ch)
    assert det.authorizes(Scope.PUBLISH | Scope.SUBSCRIBE, ch)
    assert not det.authorizes(Scope.PUBLISH | Scope.ADMIN, ch)
    w = token_vectors["wildcard"]
    wild = Token.from_bytes(h(w["token_159"]))
    wild.verify()
    assert wild.scope == w["scope_bits"] and Scope.WILDCARD in wild.scope
    assert wild.authorizes(Scope.SUBSCRIBE, 0x1234) is w["authorizes_subscribe_on_0x1234"]
    assert wild.authorizes(Scope.PUBLISH, 0x1234) is w["authorizes_publish_on_0x1234"]
    with pytest.raises(ValueError):
        det.authorizes(Scope.PUBLISH, 0x10000)


def test_invalid_format(token_vectors):
    raw = h(token_vectors["deterministic"]["token_159"])
    for bad in (raw[:158], raw + b"\0", b""):
        with pytest.raises(TokenInvalidFormatError) as info:
            Token.from_bytes(bad)
        assert info.value.status == lib.NET_ERR_TOKEN_INVALID_FORMAT
        assert isinstance(info.value, ValueError)


def test_delegation_chain(det, token_vectors):
    v = token_vectors["delegated_child_from_deterministic"]
    with Identity.from_seed(SEED_B) as b, Identity.from_seed(SEED_C) as c, Identity.from_seed(SEED_A) as a:
        requested = Scope.SUBSCRIBE | Scope.DELEGATE | Scope.ADMIN
        child = det.delegate(b, c.public_key, requested)
        child.verify()
        child.validate()
        assert child.issuer == h(v["issuer_pub"]) == b.public_key
        assert child.subject == h(v["subject_pub"]) == c.public_key
        assert child.scope == v["scope_bits"]  # narrowed by the parent: no ADMIN
        assert child.channel_hash == int(v["channel_hash"], 16)
        assert child.delegation_depth == v["delegation_depth"]
        assert child.not_after == v["not_after"]
        # Accepts an Identity as the new subject, too.
        assert det.delegate(b, c, requested).subject == c.public_key

        with pytest.raises(TokenNotAuthorizedError):
            det.delegate(a, c.public_key, Scope.SUBSCRIBE)

        grandchild = child.delegate(c, a.public_key, Scope.SUBSCRIBE | Scope.DELEGATE)
        grandchild.verify()
        assert grandchild.delegation_depth == v["grandchild_depth"] == 0
        with pytest.raises(TokenDelegationExhaustedError):
            grandchild.delegate(a, b.public_key, Scope.SUBSCRIBE)

        with Identity.from_public_key(b.public_key) as b_ro:
            with pytest.raises(ReadOnlyError):
                det.delegate(b_ro, c.public_key, Scope.SUBSCRIBE)

    ref_child = Token.from_bytes(h(v["token_159"]))
    ref_child.verify()
    assert ref_child.delegation_depth == v["delegation_depth"]


def test_delegation_not_allowed_without_delegate_scope():
    with Identity.generate() as a, Identity.generate() as b, Identity.generate() as c:
        tok = Token.issue(a, b.public_key, Scope.SUBSCRIBE, 7, ttl_secs=60, delegation_depth=3)
        with pytest.raises(TokenDelegationNotAllowedError):
            tok.delegate(b, c.public_key, Scope.SUBSCRIBE)


def test_issue_round_trip():
    with Identity.generate() as a, Identity.generate() as b:
        ch = channel_hash("sensors/lidar")
        before = int(time.time())
        tok = Token.issue(a, b.public_key, Scope.PUBLISH | Scope.SUBSCRIBE, ch, 3600, 2)
        tok.verify()
        tok.validate()
        assert tok.issuer == a.public_key and tok.subject == b.public_key
        assert tok.scope == Scope.PUBLISH | Scope.SUBSCRIBE
        assert tok.channel_hash == ch and tok.delegation_depth == 2
        assert before - 1 <= tok.not_before <= int(time.time()) + 1
        assert tok.not_after - tok.not_before == 3600
        other = Token.issue(a, b, Scope.PUBLISH, ch, 3600)
        assert other.nonce != tok.nonce and other.delegation_depth == 0


def test_issue_errors():
    with Identity.generate() as a, Identity.generate() as b:
        with pytest.raises(TokenZeroTtlError) as info:
            Token.issue(a, b.public_key, Scope.PUBLISH, 1, ttl_secs=0)
        assert info.value.status == lib.NET_ERR_TOKEN_ZERO_TTL
        with pytest.raises(InvalidArgumentError):
            Token.issue(a, b.public_key[:31], Scope.PUBLISH, 1, ttl_secs=10)
        with Identity.from_public_key(a.public_key) as ro:
            with pytest.raises(ReadOnlyError):
                Token.issue(ro, b.public_key, Scope.PUBLISH, 1, ttl_secs=10)
        with pytest.raises(ValueError):
            Token.issue(a, b.public_key, Scope.PUBLISH, 1, ttl_secs=10, delegation_depth=256)
        with pytest.raises(ValueError):
            Token.issue(a, b.public_key, Scope.PUBLISH, -1, ttl_secs=10)


def test_is_expired_at_a_given_time():
    issuer = netmesh.Identity.from_seed(b"\x07" * 32)
    token = netmesh.Token.issue(issuer, b"\x21" * 32, netmesh.Scope.PUBLISH, 1, 60)
    assert not token.is_expired(now=token.not_after - 1)
    assert token.is_expired(now=token.not_after)
    issuer.close()
