package netmesh_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
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

// A persistent RedEX file: append, read, and tail it (backfill, then live
// appends, then a lag after retention, then the end when the file closes).
func ExampleRedex() {
	dir, err := os.MkdirTemp("", "redex-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	redex, err := netmesh.OpenRedex(dir) // "" for memory-only files
	if err != nil {
		log.Fatal(err)
	}
	defer redex.Close()
	file, err := redex.OpenFile("sensors/lidar", netmesh.FileConfig{
		Persistent: true,
		Fsync:      netmesh.FsyncEveryN(1), // every returned append is durable
		Retention:  netmesh.Retention{MaxEvents: 2},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer file.Close()

	seq, _ := file.Append([]byte("hello"))
	first, ok, _ := file.AppendBatch([][]byte{[]byte("a"), []byte("b"), []byte("c")})
	_, appended, _ := file.AppendBatch(nil) // empty batch: nothing appended
	payload, found, _ := file.Read(0)
	fmt.Println(seq, first, ok, appended, string(payload), found)

	tail, err := file.Tail(0)
	if err != nil {
		log.Fatal(err)
	}
	defer tail.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, _ := tail.Next(ctx)
	fmt.Println(e.Seq, string(e.Payload))

	removed, _ := file.SweepRetention() // keeps the last 2: seqs 2 and 3
	_, err = tail.Next(ctx)
	var lag *netmesh.LaggedError
	if errors.As(err, &lag) {
		fmt.Printf("removed %d; missed %d up to %d\n", removed, lag.MissedFrom, lag.ResumeAt)
	}
	e, _ = tail.Next(ctx)
	fmt.Println(e.Seq, string(e.Payload))

	_ = file.Close() // ends the tail, even with entry 3 unread
	_, err = tail.Next(ctx)
	fmt.Println(err == io.EOF)
	// Output:
	// 0 1 true false hello true
	// 0 hello
	// removed 2; missed 1 up to 2
	// 2 b
	// true
}
