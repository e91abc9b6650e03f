package netmesh_test

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/netmesh/net/sdk-go/netmesh"
)

func ExampleIdentityFromSeed() {
	seed := make([]byte, netmesh.SeedLen)
	for i := range seed {
		seed[i] = byte(i)
	}
	id, err := netmesh.IdentityFromSeed(seed)
	if err != nil {
		log.Fatal(err)
	}
	defer id.Close()

	pk, _ := id.PublicKey()
	origin, _ := id.OriginHash()
	node, _ := id.NodeID()
	sig, _ := id.Sign([]byte("net-spec-vector"))
	fmt.Printf("public key  %x\n", pk)
	fmt.Printf("origin hash %#x\n", origin)
	fmt.Printf("node id     %#x\n", node)
	fmt.Println("verifies:", id.Verify([]byte("net-spec-vector"), sig) == nil)
	// Output:
	// public key  03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8
	// origin hash 0x782a3238801976bf
	// node id     0xbd826a5d0a6394f5
	// verifies: true
}

func ExampleIssueToken() {
	issuer, _ := netmesh.IdentityFromSeed(bytes.Repeat([]byte{1}, 32))
	defer issuer.Close()
	subject, _ := netmesh.IdentityFromSeed(bytes.Repeat([]byte{2}, 32))
	defer subject.Close()
	subjectKey, _ := subject.PublicKey()

	channel, _ := netmesh.ChannelHash("sensors/lidar")
	token, err := netmesh.IssueToken(issuer, subjectKey,
		netmesh.ScopeSubscribe|netmesh.ScopeDelegate, channel, time.Hour, 1)
	if err != nil {
		log.Fatal(err)
	}
	info, _ := token.Parse()
	canSubscribe, _ := token.Authorizes(netmesh.ScopeSubscribe, channel)
	canPublish, _ := token.Authorizes(netmesh.ScopePublish, channel)
	fmt.Println(len(token), "bytes, scope", info.Scope, "ttl", info.NotAfter-info.NotBefore, "s")
	fmt.Println("valid now:", token.IsValid() == nil)
	fmt.Println("subscribe:", canSubscribe, "publish:", canPublish)

	// The subject passes it on, narrowed to SUBSCRIBE.
	third, _ := netmesh.GenerateIdentity()
	defer third.Close()
	thirdKey, _ := third.PublicKey()
	child, err := token.Delegate(subject, thirdKey, netmesh.ScopeSubscribe)
	if err != nil {
		log.Fatal(err)
	}
	childInfo, _ := child.Parse()
	fmt.Println("child scope", childInfo.Scope, "depth", childInfo.DelegationDepth)
	// Output:
	// 159 bytes, scope SUBSCRIBE|DELEGATE ttl 3600 s
	// valid now: true
	// subscribe: true publish: false
	// child scope SUBSCRIBE depth 0
}

func ExampleSealEnvelope() {
	source, _ := netmesh.IdentityFromSeed(bytes.Repeat([]byte{7}, 32))
	defer source.Close()

	recipientSecret := bytes.Repeat([]byte{9}, netmesh.X25519KeyLen)
	recipientPublic, _ := netmesh.X25519PublicKey(recipientSecret)
	chainLink := make([]byte, netmesh.ChainLinkLen)

	envelope, err := netmesh.SealEnvelope(source, recipientPublic, chainLink)
	if err != nil {
		log.Fatal(err)
	}
	sourceKey, _ := source.PublicKey()
	opened, err := netmesh.OpenEnvelope(envelope, recipientSecret, chainLink, sourceKey)
	if err != nil {
		log.Fatal(err)
	}
	defer opened.Close()
	openedKey, _ := opened.PublicKey()
	fmt.Println(len(envelope), "bytes; same identity:", bytes.Equal(openedKey, sourceKey))

	envelope[0] = 0
	_, err = netmesh.OpenEnvelope(envelope, recipientSecret, chainLink, nil)
	fmt.Println(errors.Is(err, netmesh.ErrEnvelopeUnknownVersion))
	// Output:
	// 209 bytes; same identity: true
	// true
}

func ExampleChannelHash() {
	h, err := netmesh.ChannelHash("sensors/lidar")
	fmt.Printf("%#04x %v\n", h, err)

	err = netmesh.ValidateChannel("a//b")
	fmt.Println(errors.Is(err, netmesh.ErrChannelInvalidName))
	// Output:
	// 0xe5d8 <nil>
	// true
}

// Errors carry the libnet status (for errors.Is) and libnet's detail.
func ExampleError() {
	id, _ := netmesh.GenerateIdentity()
	pk, _ := id.PublicKey()
	readOnly, _ := netmesh.IdentityFromPublicKey(pk)
	_ = id.Close()
	defer readOnly.Close()

	_, err := readOnly.Sign([]byte("hello"))
	fmt.Println(errors.Is(err, netmesh.ErrReadOnly))
	var e *netmesh.Error
	if errors.As(err, &e) {
		fmt.Println(e.Op, e.Status.String())
	}

	_, err = id.Sign([]byte("hello")) // closed above
	fmt.Println(errors.Is(err, netmesh.ErrShuttingDown))
	// Output:
	// true
	// net_identity_sign NET_ERR_READ_ONLY
	// true
}
