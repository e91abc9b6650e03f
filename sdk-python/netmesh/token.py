"""Permission tokens: 159 signed bytes granting a subject a scope on a channel."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional, Union

from ._ffi import BytesLike, buf, call_bytes, check, ffi, lib
from .errors import TokenError
from .identity import Identity, _public_key_of

__all__ = ["Scope", "Token", "TokenInfo", "NET_TOKEN_SIZE"]

#: Size of a serialized permission token.
NET_TOKEN_SIZE: int = lib.NET_TOKEN_SIZE


class Scope(enum.IntFlag):
    """Scope bits of a token (``NET_SCOPE_*``)."""

    NONE = 0
    PUBLISH = lib.NET_SCOPE_PUBLISH
    SUBSCRIBE = lib.NET_SCOPE_SUBSCRIBE
    ADMIN = lib.NET_SCOPE_ADMIN
    DELEGATE = lib.NET_SCOPE_DELEGATE
    #: Valid on every channel; never implied by ALL.
    WILDCARD = lib.NET_SCOPE_WILDCARD
    #: PUBLISH | SUBSCRIBE | ADMIN | DELEGATE.
    ALL = lib.NET_SCOPE_ALL

    def __str__(self) -> str:
        """The set bits joined by ``|`` (``PUBLISH|DELEGATE``), ``NONE`` for 0."""
        names = [
            bit.name
            for bit in (Scope.PUBLISH, Scope.SUBSCRIBE, Scope.ADMIN, Scope.DELEGATE, Scope.WILDCARD)
            if self & bit and bit.name
        ]
        rest = int(self) & ~int(Scope.ALL | Scope.WILDCARD)
        if rest:
            names.append(hex(rest))
        return "|".join(names) or "NONE"


@dataclass(frozen=True)
class TokenInfo:
    """The fields of a token (as parsed; parsing does not verify)."""

    issuer: bytes
    subject: bytes
    scope: Scope
    channel_hash: int
    not_before: int
    not_after: int
    delegation_depth: int
    nonce: int


SubjectKey = Union[BytesLike, Identity]


def _u32(value: int, name: str) -> int:
    value = int(value)
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{name} must fit in 32 bits, got {value}")
    return value


def _u16(value: int, name: str) -> int:
    value = int(value)
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"{name} must fit in 16 bits, got {value}")
    return value


class Token:
    """A permission token: immutable, hashable, ``bytes(token)`` gives its
    159 bytes. Construct with :meth:`issue`, :meth:`from_bytes` or
    :meth:`delegate`; the fields are available as attributes
    (``token.subject``, ``token.scope``, ...).
    """

    __slots__ = ("_bytes", "_info")

    def __init__(self, data: BytesLike) -> None:
        """Parses ``data`` (does not verify). Raises TokenInvalidFormatError
        unless exactly 159 bytes."""
        raw = bytes(data) if not isinstance(data, bytes) else data
        ptr, n = buf(raw, "token")
        out = ffi.new("net_token_info_t *")
        check(lib.net_token_parse(ptr, n, out))
        self._bytes = raw
        self._info = TokenInfo(
            issuer=bytes(out.issuer),
            subject=bytes(out.subject),
            scope=Scope(out.scope),
            channel_hash=int(out.channel_hash),
            not_before=int(out.not_before),
            not_after=int(out.not_after),
            delegation_depth=int(out.delegation_depth),
            nonce=int(out.nonce),
        )

    @classmethod
    def from_bytes(cls, data: BytesLike) -> "Token":
        """Parses a serialized token (does not verify it)."""
        return cls(data)

    @classmethod
    def issue(
        cls,
        issuer: Identity,
        subject_public_key: SubjectKey,
        scope: Union[Scope, int],
        channel_hash: int,
        ttl_secs: int,
        delegation_depth: int = 0,
    ) -> "Token":
        """Issues a token from ``issuer`` to ``subject_public_key`` (32 bytes,
        or an Identity) valid for ``ttl_secs`` seconds from now.

        Raises TokenZeroTtlError for a zero TTL, ReadOnlyError when the
        issuer has no secret key.
        """
        handle = issuer._handle()
        sptr, slen = buf(_public_key_of(subject_public_key, "subject"), "subject_public_key")
        ttl = int(ttl_secs)
        if not 0 <= ttl <= 0xFFFFFFFFFFFFFFFF:
            raise ValueError(f"ttl_secs must be a non-negative 64-bit integer, got {ttl}")
        depth = int(delegation_depth)
        if not 0 <= depth <= 0xFF:
            raise ValueError(f"delegation_depth must be 0..255, got {depth}")
        raw = call_bytes(
            lib.net_token_issue,
            handle,
            sptr,
            slen,
            _u32(scope, "scope"),
            _u16(channel_hash, "channel_hash"),
            ttl,
            depth,
        )
        return cls(raw)

    # -- value behaviour ---------------------------------------------------

    def __bytes__(self) -> bytes:
        return self._bytes

    def __len__(self) -> int:
        return len(self._bytes)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Token):
            return self._bytes == other._bytes
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._bytes)

    def __repr__(self) -> str:
        i = self._info
        return (
            f"<Token issuer={i.issuer.hex()[:12]}… subject={i.subject.hex()[:12]}… "
            f"scope={i.scope!s} channel=0x{i.channel_hash:04x} depth={i.delegation_depth} "
            f"valid=[{i.not_before}, {i.not_after})>"
        )

    # -- fields ------------------------------------------------------------

    def parse(self) -> TokenInfo:
        """All fields at once."""
        return self._info

    @property
    def info(self) -> TokenInfo:
        """All fields at once."""
        return self._info

    @property
    def issuer(self) -> bytes:
        return self._info.issuer

    @property
    def subject(self) -> bytes:
        return self._info.subject

    @property
    def scope(self) -> Scope:
        return self._info.scope

    @property
    def channel_hash(self) -> int:
        return self._info.channel_hash

    @property
    def not_before(self) -> int:
        """First live second (UNIX time)."""
        return self._info.not_before

    @property
    def not_after(self) -> int:
        """First expired second (UNIX time)."""
        return self._info.not_after

    @property
    def delegation_depth(self) -> int:
        return self._info.delegation_depth

    @property
    def nonce(self) -> int:
        return self._info.nonce

    # -- checks ------------------------------------------------------------

    def verify(self) -> None:
        """Checks the signature (not the time). Raises TokenInvalidSignatureError."""
        ptr, n = buf(self._bytes)
        check(lib.net_token_verify(ptr, n))

    def validate(self, now: Optional[int] = None) -> None:
        """Checks the signature, then ``not_before <= now < not_after``
        (``now`` in UNIX seconds; the current time when None).

        Raises TokenInvalidSignatureError, TokenNotYetValidError or
        TokenExpiredError.
        """
        ptr, n = buf(self._bytes)
        if now is None:
            check(lib.net_token_is_valid(ptr, n))
        else:
            check(lib.net_token_is_valid_at(ptr, n, int(now)))

    def is_valid(self, now: Optional[int] = None) -> bool:
        """Like :meth:`validate`, but returns False instead of raising."""
        try:
            self.validate(now)
        except TokenError:
            return False
        return True

    def is_expired(self, now: Optional[int] = None) -> bool:
        """Whether the token has expired (``now >= not_after``, no signature
        check); ``now`` in UNIX seconds, the current time when None."""
        ptr, n = buf(self._bytes)
        out = ffi.new("bool *")
        if now is None:
            check(lib.net_token_is_expired(ptr, n, out))
        else:
            check(lib.net_token_is_expired_at(ptr, n, int(now), out))
        return bool(out[0])

    def authorizes(self, action: Union[Scope, int], channel_hash: int) -> bool:
        """Whether the scope covers ``action`` on ``channel_hash`` (validity
        is checked separately)."""
        ptr, n = buf(self._bytes)
        out = ffi.new("bool *")
        check(
            lib.net_token_authorizes(
                ptr, n, _u32(action, "action"), _u16(channel_hash, "channel_hash"), out
            )
        )
        return bool(out[0])

    # -- delegation --------------------------------------------------------

    def delegate(
        self,
        signer: Identity,
        new_subject: SubjectKey,
        requested_scope: Union[Scope, int],
    ) -> "Token":
        """A child token for ``new_subject`` (32-byte key or Identity) with
        ``requested_scope`` narrowed by this token's scope and one less
        delegation depth, signed by ``signer``, who must be this token's subject.

        Raises this token's validity errors, then TokenDelegationExhaustedError,
        TokenDelegationNotAllowedError, TokenNotAuthorizedError, ReadOnlyError.
        """
        handle = signer._handle()
        pptr, plen = buf(self._bytes)
        sptr, slen = buf(_public_key_of(new_subject, "new_subject"), "new_subject")
        raw = call_bytes(
            lib.net_token_delegate,
            handle,
            pptr,
            plen,
            sptr,
            slen,
            _u32(requested_scope, "requested_scope"),
        )
        return Token(raw)
