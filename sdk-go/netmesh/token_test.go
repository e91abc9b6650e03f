package netmesh_test

import (
	"bytes"
	"encoding/hex"
	"testing"
	"time"

	"github.com/netmesh/net/sdk-go/netmesh"
)

var (
	seedA = mustHexConst("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	seedB = bytes.Repeat([]byte{0x42}, 32)
	seedC = bytes.Repeat([]byte{0xff}, 32)
)

func mustHexConst(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func loadTokens(t testing.TB) tokenVectors {
	var v tokenVectors
	loadVectors(t, "token.json", &v)
	return v
}

func TestTokenDeterministicVector(t *testing.T) {
	v := loadTokens(t)
	d := v.Deterministic
	tok := netmesh.Token(unhex(t, d.Token))
	if len(tok) != netmesh.TokenSize {
		t.Fatalf("vector token is %d bytes", len(tok))
	}
	info, err := tok.Parse()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(info.Issuer, unhex(t, d.IssuerPub)) || !bytes.Equal(info.Subject, unhex(t, d.SubjectPub)) {
		t.Errorf("issuer/subject %x/%x", info.Issuer, info.Subject)
	}
	if uint32(info.Scope) != d.ScopeBits || uint64(info.ChannelHash) != rawNum(t, d.ChannelHash) ||
		info.DelegationDepth != d.DelegationDepth || info.NotBefore != d.NotBefore ||
		info.NotAfter != d.NotAfter || info.Nonce != rawNum(t, d.Nonce) {
		t.Errorf("parsed %+v", info)
	}
	if info.Scope != netmesh.ScopePublish|netmesh.ScopeSubscribe|netmesh.ScopeDelegate {
		t.Errorf("scope %v", info.Scope)
	}
	if got := info.NotBeforeTime(); !got.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("NotBeforeTime %v", got)
	}
	if h, err := netmesh.ChannelHash(d.Channel); err != nil || h != info.ChannelHash {
		t.Errorf("channel hash of %q = %#x (%v), token has %#x", d.Channel, h, err, info.ChannelHash)
	}

	if err := netmesh.VerifyToken(tok); err != nil {
		t.Errorf("VerifyToken: %v", err)
	}
	if err := netmesh.TokenIsValidAt(tok, time.Unix(1700000000, 0)); err != nil {
		t.Errorf("valid at not_before: %v", err)
	}
	expectIs(t, netmesh.TokenIsValidAt(tok, time.Unix(1699999999, 0)), netmesh.ErrTokenNotYetValid)
	expectIs(t, netmesh.TokenIsValidAt(tok, time.Unix(4102444800, 0)), netmesh.ErrTokenExpired)
	expectIs(t, netmesh.TokenIsValidAt(tok, time.Unix(-1, 0)), netmesh.ErrInvalidArgument)
	if err := netmesh.TokenIsValid(tok); err != nil { // valid until 2100
		t.Errorf("TokenIsValid now: %v", err)
	}
	if exp, err := netmesh.TokenIsExpired(tok); err != nil || exp {
		t.Errorf("TokenIsExpired = %v (%v)", exp, err)
	}

	hash := uint16(rawNum(t, d.ChannelHash))
	for _, c := range []struct {
		action netmesh.Scope
		hash   uint16
		want   bool
	}{
		{netmesh.ScopeNone, hash, d.AuthorizesNone},
		{netmesh.ScopeAdmin, hash, d.AuthorizesAdmin},
		{netmesh.ScopeSubscribe, hash, d.AuthorizesSubscribe},
		{netmesh.ScopeSubscribe, 0x0000, d.AuthorizesSubscribeOther0},
		{netmesh.ScopePublish, hash, true},
		{netmesh.ScopePublish | netmesh.ScopeSubscribe, hash, true},
		{netmesh.ScopePublish | netmesh.ScopeAdmin, hash, false},
	} {
		got, err := netmesh.TokenAuthorizes(tok, c.action, c.hash)
		if err != nil || got != c.want {
			t.Errorf("authorizes(%v, %#x) = %v (%v), want %v", c.action, c.hash, got, err, c.want)
		}
	}
}

func TestTokenOtherVectors(t *testing.T) {
	v := loadTokens(t)

	tampered := unhex(t, v.Tampered.Token)
	expectIs(t, netmesh.VerifyToken(tampered), netmesh.ErrTokenInvalidSignature)
	expectIs(t, netmesh.TokenIsValidAt(tampered, time.Unix(1700000000, 0)), netmesh.ErrTokenInvalidSignature)

	expired := netmesh.Token(unhex(t, v.Expired.Token))
	if err := expired.Verify(); err != nil {
		t.Errorf("expired token signature: %v", err)
	}
	if exp, err := expired.IsExpired(); err != nil || !exp {
		t.Errorf("expired IsExpired = %v (%v)", exp, err)
	}
	expectIs(t, expired.IsValid(), netmesh.ErrTokenExpired)
	if err := expired.IsValidAt(time.Unix(1600000030, 0)); err != nil {
		t.Errorf("expired token within its window: %v", err)
	}

	wild := netmesh.Token(unhex(t, v.Wildcard.Token))
	if err := wild.Verify(); err != nil {
		t.Errorf("wildcard verify: %v", err)
	}
	if got, err := wild.Authorizes(netmesh.ScopeSubscribe, 0x1234); err != nil || got != v.Wildcard.SubscribeOn1234 {
		t.Errorf("wildcard subscribe on 0x1234 = %v (%v)", got, err)
	}
	if got, err := wild.Authorizes(netmesh.ScopePublish, 0x1234); err != nil || got != v.Wildcard.PublishOn1234 {
		t.Errorf("wildcard publish on 0x1234 = %v (%v)", got, err)
	}

	for _, tv := range []tokenVector{v.Reference, v.Delegated.tokenVector} {
		if err := netmesh.VerifyToken(unhex(t, tv.Token)); err != nil {
			t.Errorf("reference token verify: %v", err)
		}
	}

	short := unhex(t, v.Deterministic.Token)[:158]
	_, err := netmesh.ParseToken(short)
	expectIs(t, err, netmesh.ErrTokenInvalidFormat)
	expectIs(t, netmesh.VerifyToken(short), netmesh.ErrTokenInvalidFormat)
	expectIs(t, netmesh.TokenIsValid(nil), netmesh.ErrTokenInvalidFormat)
	_, err = netmesh.TokenIsExpired(short)
	expectIs(t, err, netmesh.ErrTokenInvalidFormat)
	_, err = netmesh.TokenAuthorizes(short, netmesh.ScopePublish, 0)
	expectIs(t, err, netmesh.ErrTokenInvalidFormat)
}

func TestIssueToken(t *testing.T) {
	a, b := mustSeed(t, seedA), mustSeed(t, seedB)
	pkA, pkB := mustPublicKey(t, a), mustPublicKey(t, b)
	hash, err := netmesh.ChannelHash("sensors/lidar")
	if err != nil {
		t.Fatal(err)
	}
	before := uint64(time.Now().Unix())
	tok, err := netmesh.IssueToken(a, pkB, netmesh.ScopePublish, hash, time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	after := uint64(time.Now().Unix())
	if len(tok) != netmesh.TokenSize {
		t.Fatalf("token is %d bytes", len(tok))
	}
	info, err := tok.Parse()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(info.Issuer, pkA) || !bytes.Equal(info.Subject, pkB) || info.Scope != netmesh.ScopePublish ||
		info.ChannelHash != hash || info.DelegationDepth != 0 || info.NotAfter-info.NotBefore != 3600 ||
		info.NotBefore < before || info.NotBefore > after {
		t.Errorf("issued token fields %+v", info)
	}
	if err := tok.IsValid(); err != nil {
		t.Errorf("fresh token invalid: %v", err)
	}
	if ok, err := tok.Authorizes(netmesh.ScopePublish, hash); err != nil || !ok {
		t.Errorf("fresh token does not authorize publish: %v %v", ok, err)
	}
	other, err := netmesh.IssueToken(a, pkB, netmesh.ScopePublish, hash, time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other, tok) {
		t.Error("two issued tokens are identical (nonce not random?)")
	}

	_, err = netmesh.IssueToken(a, pkB, netmesh.ScopePublish, hash, 0, 0)
	expectIs(t, err, netmesh.ErrTokenZeroTTL)
	_, err = netmesh.IssueToken(a, pkB, netmesh.ScopePublish, hash, 500*time.Millisecond, 0)
	expectIs(t, err, netmesh.ErrTokenZeroTTL)
	_, err = netmesh.IssueToken(a, pkB, netmesh.ScopePublish, hash, -time.Second, 0)
	expectIs(t, err, netmesh.ErrInvalidArgument)
	_, err = netmesh.IssueToken(a, pkB[:31], netmesh.ScopePublish, hash, time.Hour, 0)
	expectIs(t, err, netmesh.ErrInvalidArgument)

	ro, err := netmesh.IdentityFromPublicKey(pkA)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	_, err = netmesh.IssueToken(ro, pkB, netmesh.ScopePublish, hash, time.Hour, 0)
	expectIs(t, err, netmesh.ErrReadOnly)
}

func TestDelegateToken(t *testing.T) {
	v := loadTokens(t)
	parent := netmesh.Token(unhex(t, v.Deterministic.Token))
	a, b, c := mustSeed(t, seedA), mustSeed(t, seedB), mustSeed(t, seedC)
	pkA, pkB, pkC := mustPublicKey(t, a), mustPublicKey(t, b), mustPublicKey(t, c)
	if !bytes.Equal(pkC, unhex(t, v.Delegated.SubjectPub)) {
		t.Fatalf("seed C public key %x differs from the vector's subject", pkC)
	}

	requested := netmesh.ScopeSubscribe | netmesh.ScopeDelegate | netmesh.ScopeAdmin
	child, err := netmesh.DelegateToken(b, parent, pkC, requested)
	if err != nil {
		t.Fatal(err)
	}
	info, err := child.Parse()
	if err != nil {
		t.Fatal(err)
	}
	ref := v.Delegated
	if !bytes.Equal(info.Issuer, pkB) || !bytes.Equal(info.Subject, pkC) ||
		uint32(info.Scope) != ref.ScopeBits || info.DelegationDepth != ref.DelegationDepth ||
		uint64(info.ChannelHash) != rawNum(t, ref.ChannelHash) || info.NotAfter != ref.NotAfter {
		t.Errorf("child %+v does not match the reference child", info)
	}
	if err := child.Verify(); err != nil {
		t.Errorf("child verify: %v", err)
	}
	if err := child.IsValid(); err != nil {
		t.Errorf("child validity: %v", err)
	}

	// Only the parent's subject (B) may delegate it.
	_, err = netmesh.DelegateToken(a, parent, pkC, requested)
	expectIs(t, err, netmesh.ErrTokenNotAuthorized)

	// Child depth 1 -> grandchild depth 0 -> no further delegation.
	grandchild, err := child.Delegate(c, pkA, netmesh.ScopeSubscribe|netmesh.ScopeDelegate)
	if err != nil {
		t.Fatal(err)
	}
	gInfo, err := grandchild.Parse()
	if err != nil || gInfo.DelegationDepth != ref.GrandchildDepth {
		t.Fatalf("grandchild %+v (%v)", gInfo, err)
	}
	_, err = grandchild.Delegate(a, pkB, netmesh.ScopeSubscribe)
	expectIs(t, err, netmesh.ErrTokenDelegationExhausted)

	// A token without DELEGATE cannot be delegated even with depth left.
	noDelegate, err := netmesh.IssueToken(a, pkB, netmesh.ScopePublish, 7, time.Hour, 3)
	if err != nil {
		t.Fatal(err)
	}
	_, err = noDelegate.Delegate(b, pkC, netmesh.ScopePublish)
	expectIs(t, err, netmesh.ErrTokenDelegationNotAllowed)

	// The parent's validity comes first.
	_, err = netmesh.DelegateToken(b, unhex(t, v.Expired.Token), pkC, netmesh.ScopeSubscribe)
	expectIs(t, err, netmesh.ErrTokenExpired)
	_, err = netmesh.DelegateToken(b, unhex(t, v.Tampered.Token), pkC, netmesh.ScopeSubscribe)
	expectIs(t, err, netmesh.ErrTokenInvalidSignature)

	// A read-only signer fails last.
	roB, err := netmesh.IdentityFromPublicKey(pkB)
	if err != nil {
		t.Fatal(err)
	}
	defer roB.Close()
	_, err = netmesh.DelegateToken(roB, parent, pkC, requested)
	expectIs(t, err, netmesh.ErrReadOnly)
}

func TestScopeString(t *testing.T) {
	for s, want := range map[netmesh.Scope]string{
		netmesh.ScopeNone: "NONE",
		netmesh.ScopePublish | netmesh.ScopeSubscribe: "PUBLISH|SUBSCRIBE",
		netmesh.ScopeAll: "PUBLISH|SUBSCRIBE|ADMIN|DELEGATE",
		netmesh.ScopeWildcard | netmesh.Scope(0x40):    "WILDCARD|0x40",
		netmesh.ScopeSubscribe | netmesh.ScopeWildcard: "SUBSCRIBE|WILDCARD",
	} {
		if got := s.String(); got != want {
			t.Errorf("Scope(%#x).String() = %q, want %q", uint32(s), got, want)
		}
	}
	if !netmesh.ScopeAll.Has(netmesh.ScopeAdmin|netmesh.ScopeDelegate) || netmesh.ScopeAll.Has(netmesh.ScopeWildcard) {
		t.Error("Scope.Has")
	}
}

func TestTokenIsExpiredAt(t *testing.T) {
	issuer, err := netmesh.IdentityFromSeed(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	defer issuer.Close()
	subject := bytes.Repeat([]byte{0x21}, 32)
	tok, err := netmesh.IssueToken(issuer, subject, netmesh.ScopePublish, 1, time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	info, err := netmesh.ParseToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	before, err := netmesh.TokenIsExpiredAt(tok, time.Unix(int64(info.NotAfter)-1, 0))
	if err != nil || before {
		t.Fatalf("expired one second before not_after: %v %v", before, err)
	}
	at, err := netmesh.TokenIsExpiredAt(tok, time.Unix(int64(info.NotAfter), 0))
	if err != nil || !at {
		t.Fatalf("not expired at not_after: %v %v", at, err)
	}
}
