"""Entity identities: an ed25519 keypair, or only its public key."""

from __future__ import annotations

from typing import Any

from ._ffi import BytesLike, buf, call_bytes, check, ffi, lib
from ._handle import _Handle
from .errors import InvalidSignatureError

__all__ = ["Identity", "NET_SEED_LEN", "NET_PUBLIC_KEY_LEN", "NET_SIGNATURE_LEN"]

#: Length of an ed25519 seed.
NET_SEED_LEN: int = lib.NET_SEED_LEN
#: Length of an ed25519 public key (and entity id).
NET_PUBLIC_KEY_LEN: int = lib.NET_PUBLIC_KEY_LEN
#: Length of an ed25519 signature.
NET_SIGNATURE_LEN: int = lib.NET_SIGNATURE_LEN


class Identity(_Handle):
    """An entity identity backed by a libnet ``net_identity_t`` handle.

    Create one with :meth:`generate`, :meth:`from_seed` or
    :meth:`from_public_key` (read-only: it can verify but not sign). Release
    it with :meth:`close` or a ``with`` block; a forgotten identity is
    released on a background thread when it is garbage-collected, with a
    ``ResourceWarning``.

    Thread-safe: any method may be called from any thread, concurrently with
    :meth:`close`. A call that starts after ``close()`` raises
    :class:`~netmesh.ShuttingDownError`; ``close()`` waits for calls already
    inside libnet to finish.
    """

    __slots__ = ()
    _kind = "Identity"
    _free = staticmethod(lib.net_identity_free)

    def __init__(self, _handle: Any) -> None:
        """Internal: wraps a handle returned by libnet. Use the constructors."""
        if _handle is None or _handle == ffi.NULL:
            raise TypeError("use Identity.generate(), from_seed() or from_public_key()")
        super().__init__(_handle)

    # -- constructors ------------------------------------------------------

    @classmethod
    def generate(cls) -> "Identity":
        """A new identity from 32 bytes of OS randomness."""
        out = ffi.new("net_identity_t **")
        check(lib.net_identity_generate(out))
        return cls(out[0])

    @classmethod
    def from_seed(cls, seed: BytesLike) -> "Identity":
        """The identity of a 32-byte seed (RFC 8032 derivation)."""
        ptr, n = buf(seed, "seed")
        out = ffi.new("net_identity_t **")
        check(lib.net_identity_from_seed(ptr, n, out))
        return cls(out[0])

    @classmethod
    def from_public_key(cls, public_key: BytesLike) -> "Identity":
        """A read-only identity: it verifies, but signing raises ReadOnlyError.

        Raises InvalidArgumentError unless 32 bytes, InvalidPublicKeyError if
        they are not a curve point.
        """
        ptr, n = buf(public_key, "public_key")
        out = ffi.new("net_identity_t **")
        check(lib.net_identity_from_public_key(ptr, n, out))
        return cls(out[0])

    def clone(self) -> "Identity":
        """A new, independent Identity for the same keypair; close each one
        separately. Hands an identity to another owner without copying the
        seed through Python memory."""
        out = ffi.new("net_identity_t **")
        check(lib.net_identity_clone(self._handle(), out))
        return type(self)(out[0])

    # -- lifetime ----------------------------------------------------------

    def close(self) -> None:
        """Releases the identity. Idempotent and thread-safe.

        Waits (up to 5 s, inside libnet) for calls on other threads that are
        already in flight; later calls raise ShuttingDownError. Raises
        BusyError if calls were still running after that (the key is then
        leaked, never freed under them).
        """
        super().close()

    def __repr__(self) -> str:
        ptr = self._ptr
        if ptr is None:
            return "<Identity closed>"
        try:
            key = call_bytes(lib.net_identity_public_key, ptr).hex()
            out = ffi.new("bool *")
            check(lib.net_identity_is_read_only(ptr, out))
        except Exception:
            return "<Identity closed>"
        ro = " read-only" if out[0] else ""
        return f"<Identity {key[:16]}…{ro}>"

    def __reduce__(self) -> Any:
        raise TypeError("Identity holds a secret and cannot be pickled; use seed()")

    # -- queries -----------------------------------------------------------

    @property
    def public_key(self) -> bytes:
        """The 32-byte ed25519 public key."""
        return call_bytes(lib.net_identity_public_key, self._handle())

    @property
    def entity_id(self) -> bytes:
        """The 32-byte entity id (the same bytes as the public key)."""
        return call_bytes(lib.net_identity_entity_id, self._handle())

    def seed(self) -> bytes:
        """The 32-byte seed: the secret. Raises ReadOnlyError if there is none."""
        return call_bytes(lib.net_identity_seed, self._handle())

    @property
    def is_read_only(self) -> bool:
        """Whether the identity holds only a public key."""
        out = ffi.new("bool *")
        check(lib.net_identity_is_read_only(self._handle(), out))
        return bool(out[0])

    @property
    def origin_hash(self) -> int:
        """The 64-bit origin hash (application event origin)."""
        out = ffi.new("uint64_t *")
        check(lib.net_identity_origin_hash(self._handle(), out))
        return int(out[0])

    @property
    def node_id(self) -> int:
        """The 64-bit node id (mesh peer identity)."""
        out = ffi.new("uint64_t *")
        check(lib.net_identity_node_id(self._handle(), out))
        return int(out[0])

    # -- signatures --------------------------------------------------------

    def sign(self, message: BytesLike) -> bytes:
        """The 64-byte deterministic ed25519 signature of ``message``.

        Raises ReadOnlyError for a public-key-only identity. The GIL is
        released while libnet signs.
        """
        handle = self._handle()
        ptr, n = buf(message, "message")
        return call_bytes(lib.net_identity_sign, handle, ptr, n)

    def verify(self, message: BytesLike, signature: BytesLike) -> None:
        """Strictly verifies ``signature`` over ``message``.

        Returns None when it verifies; raises InvalidSignatureError when it
        does not, InvalidArgumentError unless the signature is 64 bytes.
        """
        handle = self._handle()
        mptr, mlen = buf(message, "message")
        sptr, slen = buf(signature, "signature")
        check(lib.net_identity_verify(handle, mptr, mlen, sptr, slen))

    def is_valid_signature(self, message: BytesLike, signature: BytesLike) -> bool:
        """Like :meth:`verify`, but returns False instead of raising
        InvalidSignatureError (other errors still raise)."""
        try:
            self.verify(message, signature)
        except InvalidSignatureError:
            return False
        return True


def _public_key_of(key: "BytesLike | Identity", name: str) -> BytesLike:
    """Accepts a 32-byte public key or an Identity (whose key is used)."""
    if isinstance(key, Identity):
        return key.public_key
    return key

