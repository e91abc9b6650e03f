"""Identity envelopes against the v0.11 vectors."""

from __future__ import annotations

import os

import pytest

from netmesh import (
    NET_CHAIN_LINK_LEN,
    NET_ENVELOPE_SIZE,
    EnvelopeError,
    EnvelopeInvalidAttestationError,
    EnvelopeInvalidLengthError,
    EnvelopeInvalidSignerKeyError,
    EnvelopeSealOpenFailedError,
    EnvelopeUnknownVersionError,
    Identity,
    InvalidArgumentError,
    ReadOnlyError,
    open_envelope,
    seal_envelope,
    x25519_public_key,
)
from netmesh._ffi import lib

from conftest import SEED_B, h


@pytest.fixture
def inputs(envelope_vectors):
    i = envelope_vectors["inputs"]
    return {
        "secret": h(i["target_x25519_secret"]),
        "public": h(i["target_x25519_pub"]),
        "link": h(i["chain_link"]["bytes_32"]),
        "seed": h(i["source_seed"]),
        "source_pub": h(i["source_ed25519_pub"]),
    }


def test_x25519_public_key(inputs, envelope_vectors):
    assert x25519_public_key(inputs["secret"]) == inputs["public"]
    d = envelope_vectors["deterministic"]
    assert x25519_public_key(h(d["ephemeral_x25519_secret"])) == h(d["ephemeral_x25519_pub"])
    with pytest.raises(InvalidArgumentError):
        x25519_public_key(b"\0" * 31)


@pytest.mark.parametrize("which", ["reference_sealed", "deterministic"])
def test_reference_envelopes_open(envelope_vectors, inputs, which):
    env = h(envelope_vectors[which]["envelope_209"])
    assert len(env) == NET_ENVELOPE_SIZE
    with open_envelope(env, inputs["secret"], inputs["link"]) as opened:
        assert opened.seed() == inputs["seed"]
        assert opened.public_key == inputs["source_pub"]
        assert not opened.is_read_only
    with open_envelope(env, inputs["secret"], inputs["link"], expected_signer=inputs["source_pub"]) as o2:
        assert o2.public_key == inputs["source_pub"]


def test_round_trip():
    secret = os.urandom(32)
    link = os.urandom(NET_CHAIN_LINK_LEN)
    with Identity.generate() as alice:
        env = seal_envelope(alice, x25519_public_key(secret), link)
        assert len(env) == NET_ENVELOPE_SIZE
        assert env != seal_envelope(alice, x25519_public_key(secret), link)  # fresh ephemeral key
        with open_envelope(env, secret, link, expected_signer=alice) as opened:
            assert opened.entity_id == alice.entity_id
            assert opened.seed() == alice.seed()
            assert opened.sign(b"m") == alice.sign(b"m")


def test_failures(envelope_vectors, inputs):
    env = h(envelope_vectors["deterministic"]["envelope_209"])
    secret, link = inputs["secret"], inputs["link"]

    v0 = b"\x00" + env[1:]
    with pytest.raises(EnvelopeUnknownVersionError) as info:
        open_envelope(v0, secret, link)
    assert info.value.status == lib.NET_ERR_ENVELOPE_UNKNOWN_VERSION
    assert isinstance(info.value, EnvelopeError)

    with pytest.raises(EnvelopeSealOpenFailedError) as info:
        open_envelope(env, b"\x09" * 32, link)
    assert info.value.status == lib.NET_ERR_ENVELOPE_SEAL_OPEN_FAILED

    flipped = bytearray(env)
    flipped[80] ^= 0x01
    with pytest.raises(EnvelopeSealOpenFailedError):
        open_envelope(bytes(flipped), secret, link)

    seq6 = bytearray(link)
    seq6[16] = 6  # the little-endian sequence field, 5 -> 6
    with pytest.raises(EnvelopeInvalidAttestationError):
        open_envelope(env, secret, bytes(seq6))

    for bad in (env[:208], env + b"\0"):
        with pytest.raises(EnvelopeInvalidLengthError):
            open_envelope(bad, secret, link)

    with Identity.from_seed(SEED_B) as other:
        with pytest.raises(EnvelopeInvalidSignerKeyError):
            open_envelope(env, secret, link, expected_signer=other.public_key)

    with pytest.raises(InvalidArgumentError):
        open_envelope(env, secret[:31], link)
    with pytest.raises(InvalidArgumentError):
        open_envelope(env, secret, link[:31])
    with pytest.raises(InvalidArgumentError):
        open_envelope(env, secret, link, expected_signer=b"\0" * 31)


def test_seal_errors(inputs):
    with Identity.from_public_key(inputs["source_pub"]) as ro:
        with pytest.raises(ReadOnlyError):
            seal_envelope(ro, inputs["public"], inputs["link"])
    with Identity.from_seed(inputs["seed"]) as src:
        with pytest.raises(InvalidArgumentError):
            seal_envelope(src, inputs["public"][:31], inputs["link"])
        with pytest.raises(InvalidArgumentError):
            seal_envelope(src, inputs["public"], inputs["link"] + b"\0")
