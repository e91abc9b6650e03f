package netmesh_test

import (
	"bytes"
	"errors"
	"regexp"
	"testing"

	"github.com/netmesh/net/sdk-go/netmesh"
)

func mustSeed(t testing.TB, seed []byte) *netmesh.Identity {
	t.Helper()
	id, err := netmesh.IdentityFromSeed(seed)
	if err != nil {
		t.Fatalf("IdentityFromSeed: %v", err)
	}
	t.Cleanup(func() { _ = id.Close() })
	return id
}

func mustPublicKey(t testing.TB, id *netmesh.Identity) []byte {
	t.Helper()
	pk, err := id.PublicKey()
	if err != nil {
		t.Fatalf("PublicKey: %v", err)
	}
	return pk
}

func expectIs(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want one matching %v", err, target)
	}
}

func TestABIAndVersion(t *testing.T) {
	if err := netmesh.CheckABI(); err != nil {
		t.Fatal(err)
	}
	if got := netmesh.ABIVersion(); got != netmesh.WantABIVersion {
		t.Fatalf("ABIVersion() = %d, want %d", got, netmesh.WantABIVersion)
	}
	if v := netmesh.Version(); !regexp.MustCompile(`^\d+\.\d+\.\d+`).MatchString(v) {
		t.Fatalf("Version() = %q, want MAJOR.MINOR.PATCH", v)
	}
	mismatch := &netmesh.ABIMismatchError{Want: 1, Header: 1, Library: 2}
	if msg := mismatch.Error(); !regexp.MustCompile(`ABI 1\b.*net_abi_version\(\) = 2`).MatchString(msg) {
		t.Fatalf("mismatch message does not name both versions: %q", msg)
	}
}

func TestIdentityVectors(t *testing.T) {
	var v identityVectors
	loadVectors(t, "identity.json", &v)
	if len(v.Vectors) != 3 {
		t.Fatalf("expected 3 identity vectors, got %d", len(v.Vectors))
	}
	for _, vec := range v.Vectors {
		t.Run(vec.Label, func(t *testing.T) {
			seed := unhex(t, vec.Seed)
			id := mustSeed(t, seed)
			if pk := mustPublicKey(t, id); !bytes.Equal(pk, unhex(t, vec.PublicKey)) {
				t.Errorf("public key %x, want %s", pk, vec.PublicKey)
			}
			eid, err := id.EntityID()
			if err != nil || !bytes.Equal(eid, unhex(t, vec.PublicKey)) {
				t.Errorf("entity id %x (%v), want %s", eid, err, vec.PublicKey)
			}
			gotSeed, err := id.Seed()
			if err != nil || !bytes.Equal(gotSeed, seed) {
				t.Errorf("seed %x (%v), want %x", gotSeed, err, seed)
			}
			oh, err := id.OriginHash()
			if err != nil || oh != num(t, vec.OriginHash) {
				t.Errorf("origin hash %#x (%v), want %s", oh, err, vec.OriginHash)
			}
			nid, err := id.NodeID()
			if err != nil || nid != num(t, vec.NodeID) {
				t.Errorf("node id %#x (%v), want %s", nid, err, vec.NodeID)
			}
			ro, err := id.IsReadOnly()
			if err != nil || ro {
				t.Errorf("IsReadOnly = %v (%v), want false", ro, err)
			}
			msg := []byte(vec.Message)
			sig, err := id.Sign(msg)
			if err != nil || !bytes.Equal(sig, unhex(t, vec.Signature)) {
				t.Errorf("signature %x (%v), want %s", sig, err, vec.Signature)
			}
			if err := id.Verify(msg, sig); err != nil {
				t.Errorf("Verify: %v", err)
			}
			bad := bytes.Clone(sig)
			bad[0] ^= 1
			expectIs(t, id.Verify(msg, bad), netmesh.ErrInvalidSignature)
			expectIs(t, id.Verify([]byte("other"), sig), netmesh.ErrInvalidSignature)
			expectIs(t, id.Verify(msg, sig[:63]), netmesh.ErrInvalidArgument)

			// The public-key-only twin verifies but cannot sign.
			ro2, err := netmesh.IdentityFromPublicKey(unhex(t, vec.PublicKey))
			if err != nil {
				t.Fatal(err)
			}
			defer ro2.Close()
			if isRO, err := ro2.IsReadOnly(); err != nil || !isRO {
				t.Errorf("public-key identity IsReadOnly = %v (%v)", isRO, err)
			}
			if err := ro2.Verify(msg, sig); err != nil {
				t.Errorf("read-only Verify: %v", err)
			}
			if oh2, _ := ro2.OriginHash(); oh2 != oh {
				t.Errorf("read-only origin hash %#x, want %#x", oh2, oh)
			}
			_, err = ro2.Sign(msg)
			expectIs(t, err, netmesh.ErrReadOnly)
			_, err = ro2.Seed()
			expectIs(t, err, netmesh.ErrReadOnly)
		})
	}
}

func TestIdentityArgumentErrors(t *testing.T) {
	_, err := netmesh.IdentityFromSeed(make([]byte, 31))
	expectIs(t, err, netmesh.ErrInvalidArgument)
	var e *netmesh.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T is not a *netmesh.Error", err)
	}
	if e.Op != "net_identity_from_seed" || e.Status != netmesh.StatusInvalidArgument || e.Message == "" {
		t.Fatalf("unexpected error details: %+v", e)
	}
	_, err = netmesh.IdentityFromSeed(nil)
	expectIs(t, err, netmesh.ErrInvalidArgument)
	_, err = netmesh.IdentityFromPublicKey(make([]byte, 33))
	expectIs(t, err, netmesh.ErrInvalidArgument)
	notAPoint := make([]byte, 32)
	notAPoint[0] = 2
	_, err = netmesh.IdentityFromPublicKey(notAPoint)
	expectIs(t, err, netmesh.ErrInvalidPublicKey)

	var nilID *netmesh.Identity
	_, err = nilID.PublicKey()
	expectIs(t, err, netmesh.ErrInvalidArgument)
	if err := nilID.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestGenerateIdentity(t *testing.T) {
	a, err := netmesh.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := netmesh.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if bytes.Equal(mustPublicKey(t, a), mustPublicKey(t, b)) {
		t.Fatal("two generated identities share a public key")
	}
	// An empty message crosses the ABI as (NULL, 0).
	for _, msg := range [][]byte{nil, {}, []byte("x")} {
		sig, err := a.Sign(msg)
		if err != nil || len(sig) != netmesh.SignatureLen {
			t.Fatalf("Sign(%q) = %x, %v", msg, sig, err)
		}
		if err := a.Verify(msg, sig); err != nil {
			t.Fatalf("Verify(%q): %v", msg, err)
		}
		expectIs(t, b.Verify(msg, sig), netmesh.ErrInvalidSignature)
	}
	seed, err := a.Seed()
	if err != nil {
		t.Fatal(err)
	}
	twin := mustSeed(t, seed)
	if !bytes.Equal(mustPublicKey(t, twin), mustPublicKey(t, a)) {
		t.Fatal("identity rebuilt from its seed differs")
	}
}

func TestErrorsAndStatuses(t *testing.T) {
	all := []netmesh.Status{
		netmesh.StatusOK, netmesh.StatusTimeout, netmesh.StatusEnd,
		netmesh.StatusInvalidArgument, netmesh.StatusShuttingDown, netmesh.StatusPanic,
		netmesh.StatusInternal, netmesh.StatusReadOnly, netmesh.StatusInvalidPublicKey,
		netmesh.StatusInvalidSignature, netmesh.StatusTokenInvalidSignature,
		netmesh.StatusTokenNotYetValid, netmesh.StatusTokenExpired,
		netmesh.StatusTokenDelegationExhausted, netmesh.StatusTokenDelegationNotAllowed,
		netmesh.StatusTokenNotAuthorized, netmesh.StatusTokenInvalidFormat,
		netmesh.StatusTokenZeroTTL, netmesh.StatusEnvelopeUnknownVersion,
		netmesh.StatusEnvelopeInvalidLength, netmesh.StatusEnvelopeInvalidSignerKey,
		netmesh.StatusEnvelopeInvalidAttestation, netmesh.StatusEnvelopeSealOpenFailed,
		netmesh.StatusEnvelopeOriginHashMismatch, netmesh.StatusChannelInvalidName,
		netmesh.StatusLagged, netmesh.StatusRedexIO, netmesh.StatusRedexPoisoned,
		netmesh.StatusRedexSyncFailed, netmesh.StatusRedexLocked, netmesh.StatusRedexClosed,
		netmesh.StatusRedexInvalidConfig, netmesh.StatusRedexInlineLength,
		netmesh.StatusRedexTooLarge, netmesh.StatusRedexGenerationOverflow,
		netmesh.StatusRedexNoPersistentDir, netmesh.StatusRedexCorrupt,
		netmesh.StatusRedexSeqExhausted,
	}
	seen := map[netmesh.Status]bool{}
	for _, s := range all {
		if seen[s] {
			t.Errorf("duplicate status value %d", s)
		}
		seen[s] = true
		if !regexp.MustCompile(`^NET_(OK|TIMEOUT|END|LAGGED|ERR_[A-Z_]+)$`).MatchString(s.String()) {
			t.Errorf("status %d has no name: %q", int32(s), s.String())
		}
	}
	if netmesh.StatusOK != 0 || netmesh.StatusTimeout != 1 || netmesh.StatusEnd != 2 || netmesh.StatusTokenExpired != -22 ||
		netmesh.StatusLagged != 3 || netmesh.StatusRedexIO != -100 || netmesh.StatusRedexNoPersistentDir != -109 ||
		netmesh.StatusRedexCorrupt != -110 || netmesh.StatusRedexSeqExhausted != -111 {
		t.Error("status numbers differ from net.h")
	}
	if netmesh.StatusRedexCorrupt.String() != "NET_ERR_REDEX_CORRUPT" ||
		netmesh.StatusRedexSeqExhausted.String() != "NET_ERR_REDEX_SEQ_EXHAUSTED" ||
		!errors.Is(netmesh.ErrRedexCorrupt, netmesh.StatusRedexCorrupt) {
		t.Error("the RedEX corruption statuses are misnamed")
	}
	if got := netmesh.Status(-99).String(); got != "NET_UNKNOWN_STATUS(-99)" {
		t.Errorf("unknown status renders as %q", got)
	}
	err := error(&netmesh.Error{Op: "net_token_is_valid", Status: netmesh.StatusTokenExpired, Message: "token has expired"})
	if !errors.Is(err, netmesh.ErrTokenExpired) || errors.Is(err, netmesh.ErrTokenNotYetValid) {
		t.Error("errors.Is does not match on Status")
	}
	var st netmesh.Status
	if !errors.As(err, &st) || st != netmesh.StatusTokenExpired {
		t.Error("errors.As to Status failed")
	}
	want := "netmesh: net_token_is_valid: a token has expired (NET_ERR_TOKEN_EXPIRED): token has expired"
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

func TestCloneIsIndependent(t *testing.T) {
	id, err := netmesh.IdentityFromSeed(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := id.OriginHash()
	clone, err := id.Clone()
	if err != nil {
		t.Fatal(err)
	}
	defer clone.Close()
	id.Close()
	if _, err := id.OriginHash(); !errors.Is(err, netmesh.ErrShuttingDown) {
		t.Fatalf("closed original: %v", err)
	}
	got, err := clone.OriginHash()
	if err != nil || got != want {
		t.Fatalf("clone origin hash %x, %v; want %x", got, err, want)
	}
}
