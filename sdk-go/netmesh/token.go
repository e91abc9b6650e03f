package netmesh

/*
#include <net.h>
*/
import "C"

import (
	"math"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// Scope is a set of token permission bits (NET_SCOPE_*).
type Scope uint32

// Scope bits.
const (
	ScopePublish   Scope = C.NET_SCOPE_PUBLISH   // publish on the channel
	ScopeSubscribe Scope = C.NET_SCOPE_SUBSCRIBE // subscribe to the channel
	ScopeAdmin     Scope = C.NET_SCOPE_ADMIN     // administer the channel
	ScopeDelegate  Scope = C.NET_SCOPE_DELEGATE  // delegate the token
	ScopeWildcard  Scope = C.NET_SCOPE_WILDCARD  // valid on every channel (never implied)
	ScopeAll       Scope = C.NET_SCOPE_ALL       // Publish | Subscribe | Admin | Delegate
	ScopeNone      Scope = 0
)

var scopeNames = []struct {
	bit  Scope
	name string
}{
	{ScopePublish, "PUBLISH"},
	{ScopeSubscribe, "SUBSCRIBE"},
	{ScopeAdmin, "ADMIN"},
	{ScopeDelegate, "DELEGATE"},
	{ScopeWildcard, "WILDCARD"},
}

// Has reports whether s contains every bit of other.
func (s Scope) Has(other Scope) bool { return s&other == other }

// String renders the bits, e.g. "PUBLISH|SUBSCRIBE", or "NONE".
func (s Scope) String() string {
	if s == 0 {
		return "NONE"
	}
	var parts []string
	rest := s
	for _, n := range scopeNames {
		if s&n.bit != 0 {
			parts = append(parts, n.name)
			rest &^= n.bit
		}
	}
	if rest != 0 {
		parts = append(parts, "0x"+strconv.FormatUint(uint64(rest), 16))
	}
	return strings.Join(parts, "|")
}

// Token is a serialized permission token: 159 bytes (TokenSize), signed by
// its issuer. It is a []byte, so it can be stored and sent as is; the
// methods are the package functions of the same names.
type Token []byte

// TokenInfo holds the fields of a parsed token.
type TokenInfo struct {
	Issuer          []byte // 32-byte public key of the signer
	Subject         []byte // 32-byte public key of the authorised entity
	Scope           Scope
	ChannelHash     uint16 // ignored when Scope has ScopeWildcard
	DelegationDepth uint8  // remaining delegation depth
	NotBefore       uint64 // first live second (UNIX)
	NotAfter        uint64 // first expired second (UNIX)
	Nonce           uint64
}

// NotBeforeTime is NotBefore as a time.Time.
func (i TokenInfo) NotBeforeTime() time.Time { return unixTime(i.NotBefore) }

// NotAfterTime is NotAfter as a time.Time.
func (i TokenInfo) NotAfterTime() time.Time { return unixTime(i.NotAfter) }

func unixTime(secs uint64) time.Time {
	if secs > math.MaxInt64/2 { // far beyond any representable date
		secs = math.MaxInt64 / 2
	}
	return time.Unix(int64(secs), 0).UTC()
}

// IssueToken issues a token from issuer to subject (a 32-byte public key)
// for scope on channelHash, live from now for ttl (truncated to whole
// seconds), with a random nonce. ttl under one second is ErrTokenZeroTTL; a
// read-only issuer is ErrReadOnly.
func IssueToken(issuer *Identity, subject []byte, scope Scope, channelHash uint16, ttl time.Duration, delegationDepth uint8) (Token, error) {
	const op = "net_token_issue"
	if ttl < 0 {
		return nil, invalidArgument(op, "ttl is negative")
	}
	p, err := issuer.handle(op)
	if err != nil {
		return nil, err
	}
	var out C.net_bytes_t
	err = check(op, func() C.net_status_t {
		return C.net_token_issue(p, bytesPtr(subject), C.size_t(len(subject)), C.uint32_t(scope),
			C.uint16_t(channelHash), C.uint64_t(ttl/time.Second), C.uint8_t(delegationDepth), &out)
	})
	runtime.KeepAlive(issuer)
	if err != nil {
		return nil, err
	}
	return Token(takeBytes(&out)), nil
}

// DelegateToken delegates parent to newSubject (a 32-byte public key) with
// requestedScope narrowed by the parent's scope, signed by signer, who must
// be the parent's subject. Errors, in libnet's order: the parent's validity
// errors, ErrTokenDelegationExhausted, ErrTokenDelegationNotAllowed,
// ErrTokenNotAuthorized, ErrReadOnly.
func DelegateToken(signer *Identity, parent, newSubject []byte, requestedScope Scope) (Token, error) {
	const op = "net_token_delegate"
	p, err := signer.handle(op)
	if err != nil {
		return nil, err
	}
	var out C.net_bytes_t
	err = check(op, func() C.net_status_t {
		return C.net_token_delegate(p, bytesPtr(parent), C.size_t(len(parent)),
			bytesPtr(newSubject), C.size_t(len(newSubject)), C.uint32_t(requestedScope), &out)
	})
	runtime.KeepAlive(signer)
	if err != nil {
		return nil, err
	}
	return Token(takeBytes(&out)), nil
}

// ParseToken parses a token's fields without verifying it.
// ErrTokenInvalidFormat unless exactly 159 bytes.
func ParseToken(token []byte) (TokenInfo, error) {
	var out C.net_token_info_t
	if err := check("net_token_parse", func() C.net_status_t {
		return C.net_token_parse(bytesPtr(token), C.size_t(len(token)), &out)
	}); err != nil {
		return TokenInfo{}, err
	}
	return TokenInfo{
		Issuer:          cBytes(unsafe.Pointer(&out.issuer[0]), C.size_t(len(out.issuer))),
		Subject:         cBytes(unsafe.Pointer(&out.subject[0]), C.size_t(len(out.subject))),
		Scope:           Scope(out.scope),
		ChannelHash:     uint16(out.channel_hash),
		DelegationDepth: uint8(out.delegation_depth),
		NotBefore:       uint64(out.not_before),
		NotAfter:        uint64(out.not_after),
		Nonce:           uint64(out.nonce),
	}, nil
}

// VerifyToken checks the token's signature under its issuer (no time
// check): nil if it verifies, else ErrTokenInvalidSignature or
// ErrTokenInvalidFormat.
func VerifyToken(token []byte) error {
	return check("net_token_verify", func() C.net_status_t {
		return C.net_token_verify(bytesPtr(token), C.size_t(len(token)))
	})
}

// TokenIsValid verifies the signature, then checks not_before <= now <
// not_after: nil if the token is valid now, else (in this order)
// ErrTokenInvalidFormat, ErrTokenInvalidSignature, ErrTokenNotYetValid or
// ErrTokenExpired.
func TokenIsValid(token []byte) error {
	return check("net_token_is_valid", func() C.net_status_t {
		return C.net_token_is_valid(bytesPtr(token), C.size_t(len(token)))
	})
}

// TokenIsValidAt is TokenIsValid at now instead of the current time.
func TokenIsValidAt(token []byte, now time.Time) error {
	const op = "net_token_is_valid_at"
	secs := now.Unix()
	if secs < 0 {
		return invalidArgument(op, "now is before the UNIX epoch")
	}
	return check(op, func() C.net_status_t {
		return C.net_token_is_valid_at(bytesPtr(token), C.size_t(len(token)), C.uint64_t(secs))
	})
}

// TokenIsExpiredAt reports whether the token has expired at now
// (now >= not_after), without checking its signature.
func TokenIsExpiredAt(token []byte, now time.Time) (bool, error) {
	const op = "net_token_is_expired_at"
	secs := now.Unix()
	if secs < 0 {
		return false, invalidArgument(op, "now is before the UNIX epoch")
	}
	var out C.bool
	err := check(op, func() C.net_status_t {
		return C.net_token_is_expired_at(bytesPtr(token), C.size_t(len(token)), C.uint64_t(secs), &out)
	})
	return bool(out), err
}

// TokenIsExpired reports whether the token has expired (now >= not_after),
// without checking its signature.
func TokenIsExpired(token []byte) (bool, error) {
	var out C.bool
	err := check("net_token_is_expired", func() C.net_status_t {
		return C.net_token_is_expired(bytesPtr(token), C.size_t(len(token)), &out)
	})
	return bool(out), err
}

// TokenAuthorizes reports whether the token's scope covers action (scope
// bits) on channelHash. Validity is checked separately (TokenIsValid).
func TokenAuthorizes(token []byte, action Scope, channelHash uint16) (bool, error) {
	var out C.bool
	err := check("net_token_authorizes", func() C.net_status_t {
		return C.net_token_authorizes(bytesPtr(token), C.size_t(len(token)), C.uint32_t(action), C.uint16_t(channelHash), &out)
	})
	return bool(out), err
}

// Parse is ParseToken(t).
func (t Token) Parse() (TokenInfo, error) { return ParseToken(t) }

// Verify is VerifyToken(t).
func (t Token) Verify() error { return VerifyToken(t) }

// IsValid is TokenIsValid(t).
func (t Token) IsValid() error { return TokenIsValid(t) }

// IsValidAt is TokenIsValidAt(t, now).
func (t Token) IsValidAt(now time.Time) error { return TokenIsValidAt(t, now) }

// IsExpired is TokenIsExpired(t).
func (t Token) IsExpired() (bool, error) { return TokenIsExpired(t) }

// Authorizes is TokenAuthorizes(t, action, channelHash).
func (t Token) Authorizes(action Scope, channelHash uint16) (bool, error) {
	return TokenAuthorizes(t, action, channelHash)
}

// Delegate is DelegateToken(signer, t, newSubject, requestedScope).
func (t Token) Delegate(signer *Identity, newSubject []byte, requestedScope Scope) (Token, error) {
	return DelegateToken(signer, t, newSubject, requestedScope)
}
