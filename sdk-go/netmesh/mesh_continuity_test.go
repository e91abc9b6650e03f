package netmesh_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/netmesh/net/sdk-go/netmesh"
)

const chainOrigin = uint64(0x1234_5678_9ABC)

// link is a 32-byte causal link: origin, horizon, sequence, parent hash (LE).
func link(origin, seq, parent uint64) []byte {
	b := make([]byte, 32)
	binary.LittleEndian.PutUint64(b[0:], origin)
	binary.LittleEndian.PutUint64(b[16:], seq)
	binary.LittleEndian.PutUint64(b[24:], parent)
	return b
}

// A followed chain checked event by event: a second writer breaks it, and
// the node says so as an event and in its status. (The partition itself
// runs on five real nodes in the Rust suite, tests/mesh_partitions.rs.)
func TestMeshContinuityChain(t *testing.T) {
	m := fastMesh(t, nil)
	if p := must(m.Partitions()); len(p) != 0 {
		t.Fatalf("partitions: %+v", p)
	}
	if c := must(m.ContinuityStatus()); len(c) != 0 {
		t.Fatalf("chains: %+v", c)
	}
	if _, err := m.ObserveChainEvent(link(chainOrigin, 1, 0), []byte("x")); !errors.Is(err, netmesh.ErrInvalidArgument) {
		t.Fatalf("not followed: %v", err)
	}
	must(0, m.FollowChain(chainOrigin))
	must(0, m.FollowChain(chainOrigin))
	chains := must(m.ContinuityStatus())
	if len(chains) != 1 || chains[0].Origin != chainOrigin || chains[0].Head.Seq != 0 || chains[0].Held != 1 || chains[0].Broken != nil {
		t.Fatalf("followed: %+v", chains)
	}
	if _, err := m.ObserveChainEvent(link(chainOrigin, 1, 0)[:31], nil); !errors.Is(err, netmesh.ErrInvalidArgument) {
		t.Fatalf("short link: %v", err)
	}
	if got := must(m.ObserveChainEvent(link(chainOrigin, 1, 0xDEAD), []byte("x"))); got != "broke" {
		t.Fatalf("observe: %s", got)
	}
	if got := must(m.ObserveChainEvent(link(chainOrigin, 2, 0xBEEF), []byte("y"))); got != "ignored" {
		t.Fatalf("observe after the break: %s", got)
	}
	event := must(m.ContinuityNext(ctx5(t)))
	if event.Type != "chain_broken" || event.Origin != chainOrigin {
		t.Fatalf("event: %+v", event)
	}
	chains = must(m.ContinuityStatus())
	if chains[0].Broken == nil || chains[0].Broken.Reason != "conflicting_chains" {
		t.Fatalf("broken: %+v", chains[0].Broken)
	}
}

// A proof asked of a connected peer: both follow the chain from its
// genesis, which both hold, so the verdict is consistent.
func TestMeshContinuityProof(t *testing.T) {
	a, b := connectPair(t)
	peer := must(b.NodeID())
	if err := a.RequestContinuityProof(peer, chainOrigin, 0, 0); !errors.Is(err, netmesh.ErrInvalidArgument) {
		t.Fatalf("not followed: %v", err)
	}
	must(0, a.FollowChain(chainOrigin))
	must(0, b.FollowChain(chainOrigin))
	if err := a.RequestContinuityProof(peer, chainOrigin, 3, 2); !errors.Is(err, netmesh.ErrInvalidArgument) {
		t.Fatalf("empty range: %v", err)
	}
	must(0, a.RequestContinuityProof(peer, chainOrigin, 0, 0))
	ctx := ctx5(t)
	for {
		event := must(a.ContinuityNext(ctx))
		if event.Type != "proof_checked" {
			continue
		}
		if event.Peer != peer || event.Origin != chainOrigin || event.Verdict != "consistent" {
			t.Fatalf("verdict: %+v", event)
		}
		return
	}
}

// The wait ends with the context, and with io.EOF once the node is closed.
func TestMeshContinuityNextEnds(t *testing.T) {
	m := fastMesh(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.ContinuityNext(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := m.ContinuityNext(context.Background())
		done <- err
	}()
	must(0, m.Close())
	if err := <-done; !errors.Is(err, io.EOF) && !errors.Is(err, netmesh.ErrShuttingDown) {
		t.Fatalf("after close: %v", err)
	}
}

func TestMeshContinuityOff(t *testing.T) {
	m := fastMesh(t, func(c *netmesh.MeshConfig) { c.NoContinuity = true })
	err := m.FollowChain(1)
	if !errors.Is(err, netmesh.ErrInvalidArgument) || !strings.Contains(err.Error(), "continuity is off") {
		t.Fatalf("follow: %v", err)
	}
}

// A causal stream: both nodes follow the chain; the receiver checks each
// event as it arrives and proves the chain against the sender by itself.
func TestMeshCausalStream(t *testing.T) {
	a := fastMesh(t, nil)
	b := fastMesh(t, func(c *netmesh.MeshConfig) { c.ProofInterval = 100 * time.Millisecond })
	must(0, a.Start())
	must(0, b.Start())
	bid, aid := must(b.NodeID()), must(a.NodeID())
	if err := a.Connect(ctx5(t), must(b.LocalAddr()), must(b.PublicKey()), bid); err != nil {
		t.Fatal(err)
	}
	must(0, a.FollowChain(chainOrigin))
	must(0, b.FollowChain(chainOrigin))
	if _, err := netmesh.CausalFrame(make([]byte, 31), nil); !errors.Is(err, netmesh.ErrInvalidArgument) {
		t.Fatalf("short link: %v", err)
	}
	if _, err := a.OpenCausalStream(12345, 1, true, nil); !errors.Is(err, netmesh.ErrMeshUnknownPeer) {
		t.Fatalf("unknown peer: %v", err)
	}
	s := must(a.OpenCausalStream(bid, 7, true, nil))
	defer s.Close()
	if _, err := netmesh.NextCausalLink(make([]byte, 31), nil, 0); !errors.Is(err, netmesh.ErrInvalidArgument) {
		t.Fatalf("short link: %v", err)
	}
	// Ten events of the chain, from its genesis.
	prev, prevPayload := netmesh.GenesisLink(chainOrigin), []byte{}
	if string(prev) != string(link(chainOrigin, 0, 0)) {
		t.Fatal("genesis")
	}
	events := make([][]byte, 0, 10)
	for i := uint64(1); i <= 10; i++ {
		l := must(netmesh.NextCausalLink(prev, prevPayload, 0))
		if binary.LittleEndian.Uint64(l[16:]) != i || binary.LittleEndian.Uint64(l[0:]) != chainOrigin {
			t.Fatalf("link %d: %x", i, l)
		}
		payload := []byte{byte(i)}
		events = append(events, must(netmesh.CausalFrame(l, payload)))
		prev, prevPayload = l, payload
	}
	must(0, s.Send(events...))
	got := recvN(t, b, 10)
	for i := range got {
		if string(got[i].Data) != string(events[i]) {
			t.Fatalf("event %d changed", i)
		}
	}
	ctx := ctx5(t)
	for {
		event := must(b.ContinuityNext(ctx))
		if event.Type != "proof_checked" {
			continue
		}
		if event.Verdict != "consistent" || event.Peer != aid {
			t.Fatalf("verdict: %+v", event)
		}
		if event.ToSeq == 10 {
			break
		}
	}
	chain := must(b.ContinuityStatus())[0]
	if chain.Head.Seq != 10 || chain.Source == nil || *chain.Source != aid || chain.ProvedTo != 10 || chain.ProofConflicted {
		t.Fatalf("status: %+v", chain)
	}
	if head := must(a.ContinuityStatus())[0].Head.Seq; head != 10 {
		t.Fatalf("the sender's own chain: %d", head)
	}
}

// waitContinuity takes m's continuity events until every type in want came.
func waitContinuity(t *testing.T, m *netmesh.Mesh, want ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	seen := map[string]bool{}
	for {
		done := true
		for _, w := range want {
			done = done && seen[w]
		}
		if done {
			return
		}
		event, err := m.ContinuityNext(ctx)
		if err != nil {
			t.Fatalf("waiting for %v (saw %v): %v", want, seen, err)
		}
		seen[event.Type] = true
	}
}

// b goes away: a detects the split; b comes back (same keys) and the split
// heals, both sides naming the same partition key — b learns of the split
// from a's greeting.
func TestMeshPartitionDetectedAndHealed(t *testing.T) {
	quick := func(seed, secret []byte) func(*netmesh.MeshConfig) {
		return func(c *netmesh.MeshConfig) {
			c.HeartbeatInterval, c.SessionTimeout = 20*time.Millisecond, 100*time.Millisecond
			c.IdentitySeed, c.StaticSecret = seed, secret
		}
	}
	seed, secret := make([]byte, 32), make([]byte, 32)
	must(rand.Read(seed))
	must(rand.Read(secret))
	a := fastMesh(t, quick(nil, nil))
	b := fastMesh(t, quick(seed, secret))
	must(0, a.Start())
	must(0, b.Start())
	aid, bid := must(a.NodeID()), must(b.NodeID())
	if err := a.Connect(ctx5(t), must(b.LocalAddr()), must(b.PublicKey()), bid); err != nil {
		t.Fatal(err)
	}
	must(0, b.Close())
	waitContinuity(t, a, "detected")
	record := must(a.Partitions())[0]
	if len(record.OtherSide) != 1 || record.OtherSide[0] != bid || record.PartitionKey != nil {
		t.Fatalf("record: %+v", record)
	}
	b2 := fastMesh(t, quick(seed, secret))
	must(0, b2.Start())
	if must(b2.NodeID()) != bid {
		t.Fatal("same keys, another node id")
	}
	// Its identity proves it: a's old session to b is replaced.
	if err := b2.Connect(ctx5(t), must(a.LocalAddr()), must(a.PublicKey()), aid); err != nil {
		t.Fatal(err)
	}
	waitContinuity(t, a, "healed", "agreed")
	waitContinuity(t, b2, "healed", "agreed")
	healed, adopted := must(a.Partitions())[0], must(b2.Partitions())[0]
	if healed.Phase != "healed" || adopted.Phase != "healed" || len(adopted.OtherSide) != 1 || adopted.OtherSide[0] != aid {
		t.Fatalf("records: %+v / %+v", healed, adopted)
	}
	if healed.PartitionKey == nil || adopted.PartitionKey == nil || *healed.PartitionKey != *adopted.PartitionKey {
		t.Fatalf("keys: %v / %v", healed.PartitionKey, adopted.PartitionKey)
	}
}
