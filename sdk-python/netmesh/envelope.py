"""Identity envelopes: an identity's seed sealed to a recipient's X25519 key,
bound to a 32-byte chain link."""

from __future__ import annotations

from typing import Optional, Union

from ._ffi import BytesLike, buf, call_bytes, ffi, lib, opt_buf, check
from .identity import Identity, _public_key_of

__all__ = [
    "seal_envelope",
    "open_envelope",
    "x25519_public_key",
    "NET_ENVELOPE_SIZE",
    "NET_CHAIN_LINK_LEN",
    "NET_X25519_KEY_LEN",
]

#: Size of a serialized identity envelope (version 1).
NET_ENVELOPE_SIZE: int = lib.NET_ENVELOPE_SIZE
#: Size of the chain link (a serialized CausalLink) an envelope is bound to.
NET_CHAIN_LINK_LEN: int = lib.NET_CHAIN_LINK_LEN
#: Size of an X25519 key, secret or public.
NET_X25519_KEY_LEN: int = lib.NET_X25519_KEY_LEN


def seal_envelope(source: Identity, target_public_key: BytesLike, chain_link: BytesLike) -> bytes:
    """Seals ``source``'s seed to the recipient's 32-byte X25519 public key,
    bound to the 32-byte ``chain_link``; returns the 209-byte envelope.

    Raises ReadOnlyError when ``source`` has no secret key.
    """
    handle = source._handle()
    kptr, klen = buf(target_public_key, "target_public_key")
    cptr, clen = buf(chain_link, "chain_link")
    return call_bytes(lib.net_envelope_seal, handle, kptr, klen, cptr, clen)


def open_envelope(
    envelope: BytesLike,
    target_secret_key: BytesLike,
    chain_link: BytesLike,
    expected_signer: Optional[Union[BytesLike, Identity]] = None,
) -> Identity:
    """Opens an envelope with the recipient's X25519 secret and the same
    chain link; returns the sealed identity (close it when done).

    With ``expected_signer`` (a 32-byte public key or an Identity) the
    envelope must come from it. Raises an EnvelopeError subclass:
    EnvelopeUnknownVersionError, EnvelopeInvalidLengthError,
    EnvelopeInvalidSignerKeyError, EnvelopeInvalidAttestationError,
    EnvelopeSealOpenFailedError.
    """
    eptr, elen = buf(envelope, "envelope")
    sptr, slen = buf(target_secret_key, "target_secret_key")
    cptr, clen = buf(chain_link, "chain_link")
    signer = None if expected_signer is None else _public_key_of(expected_signer, "expected_signer")
    xptr, xlen = opt_buf(signer, "expected_signer")
    out = ffi.new("net_identity_t **")
    check(lib.net_envelope_open(eptr, elen, sptr, slen, cptr, clen, xptr, xlen, out))
    return Identity(out[0])


def x25519_public_key(secret_key: BytesLike) -> bytes:
    """The X25519 public key of a 32-byte secret (for envelope recipients)."""
    ptr, n = buf(secret_key, "secret_key")
    return call_bytes(lib.net_x25519_public_key, ptr, n)
