package netmesh_test

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// vectorsDir finds tests/vectors: under $NET_ROOT (set by the top-level
// Makefile), else relative to this package (sdk-go/netmesh) or to sdk-go.
func vectorsDir(t testing.TB) string {
	t.Helper()
	var candidates []string
	if root := os.Getenv("NET_ROOT"); root != "" {
		candidates = append(candidates, filepath.Join(root, "tests", "vectors"))
	}
	candidates = append(candidates, filepath.Join("..", "..", "tests", "vectors"), filepath.Join("..", "tests", "vectors"))
	for _, dir := range candidates {
		if st, err := os.Stat(filepath.Join(dir, "identity.json")); err == nil && !st.IsDir() {
			return dir
		}
	}
	t.Fatalf("test vectors not found (tried %v); set NET_ROOT to the repository root", candidates)
	return ""
}

// loadVectors decodes tests/vectors/<name> into v.
func loadVectors(t testing.TB, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(vectorsDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// num parses a vector number written as "0x..." or in decimal.
func num(t testing.TB, s string) uint64 {
	t.Helper()
	var v uint64
	var err error
	if strings.HasPrefix(s, "0x") {
		v, err = strconv.ParseUint(s[2:], 16, 64)
	} else {
		v, err = strconv.ParseUint(s, 10, 64)
	}
	if err != nil {
		t.Fatalf("bad number %q: %v", s, err)
	}
	return v
}

type identityVectors struct {
	Vectors []struct {
		Label        string `json:"label"`
		Seed         string `json:"seed"`
		PublicKey    string `json:"ed25519_public_key"`
		Signature    string `json:"ed25519_signature"`
		Message      string `json:"sign_message_ascii"`
		OriginHash   string `json:"origin_hash_u64"`
		NodeID       string `json:"node_id_u64"`
		OriginHashLE string `json:"origin_hash_u64_le_bytes"`
	} `json:"vectors"`
}

type tokenVector struct {
	Token           string          `json:"token_159"`
	ScopeBits       uint32          `json:"scope_bits"`
	DelegationDepth uint8           `json:"delegation_depth"`
	IssuerPub       string          `json:"issuer_pub"`
	SubjectPub      string          `json:"subject_pub"`
	IssuerSeed      string          `json:"issuer_seed"`
	SubjectSeed     string          `json:"subject_seed"`
	ChannelHash     json.RawMessage `json:"channel_hash"`
	Channel         string          `json:"channel"`
	NotBefore       uint64          `json:"not_before"`
	NotAfter        uint64          `json:"not_after"`
	Nonce           json.RawMessage `json:"nonce"`
}

type tokenVectors struct {
	Deterministic struct {
		tokenVector
		AuthorizesNone            bool `json:"authorizes_NONE"`
		AuthorizesAdmin           bool `json:"authorizes_admin_on_channel"`
		AuthorizesSubscribe       bool `json:"authorizes_subscribe_on_channel"`
		AuthorizesSubscribeOther0 bool `json:"authorizes_subscribe_on_other_channel_0x0000"`
	} `json:"deterministic"`
	Delegated struct {
		tokenVector
		GrandchildDepth uint8 `json:"grandchild_depth"`
	} `json:"delegated_child_from_deterministic"`
	Expired   tokenVector `json:"expired"`
	Reference tokenVector `json:"reference_issued"`
	Tampered  tokenVector `json:"tampered_scope_byte64_xor_0x04"`
	Wildcard  struct {
		tokenVector
		PublishOn1234   bool `json:"authorizes_publish_on_0x1234"`
		SubscribeOn1234 bool `json:"authorizes_subscribe_on_0x1234"`
	} `json:"wildcard"`
}

// rawNum decodes a JSON number or a "0x..." string.
func rawNum(t testing.TB, raw json.RawMessage) uint64 {
	t.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return num(t, s)
	}
	var n uint64
	if err := json.Unmarshal(raw, &n); err != nil {
		t.Fatalf("bad number %s: %v", raw, err)
	}
	return n
}

type envelopeVectors struct {
	Inputs struct {
		ChainLink struct {
			Bytes string `json:"bytes_32"`
		} `json:"chain_link"`
		SourcePub    string `json:"source_ed25519_pub"`
		SourceSeed   string `json:"source_seed"`
		TargetPub    string `json:"target_x25519_pub"`
		TargetSecret string `json:"target_x25519_secret"`
	} `json:"inputs"`
	Deterministic struct {
		Envelope string `json:"envelope_209"`
	} `json:"deterministic"`
	ReferenceSealed struct {
		Envelope   string `json:"envelope_209"`
		OpenedSeed string `json:"opened_seed"`
	} `json:"reference_sealed"`
}

type channelVectors struct {
	Hashes []struct {
		Name string `json:"name"`
		Hash string `json:"hash_u16"`
	} `json:"hashes"`
	NameValidation []struct {
		Label string  `json:"label"`
		Name  string  `json:"name"`
		Valid bool    `json:"valid"`
		Error *string `json:"error"`
	} `json:"name_validation"`
}
