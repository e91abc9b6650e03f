package netmesh_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/netmesh/net/sdk-go/netmesh"
)

// waitFor polls cond every 5 ms until it holds; fails the test after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func startedMesh(t *testing.T) *netmesh.Mesh {
	m := fastMesh(t, nil)
	must(0, m.Start())
	return m
}

// linkTo connects m directly to relay and waits until relay sees it.
func linkTo(t *testing.T, m, relay *netmesh.Mesh) {
	t.Helper()
	if err := m.Connect(ctx5(t), must(relay.LocalAddr()), must(relay.PublicKey()), must(relay.NodeID())); err != nil {
		t.Fatal(err)
	}
	id := must(m.NodeID())
	waitFor(t, "the link up on the relay", func() bool { _, ok := peerOf(relay, id); return ok })
}

func peerOf(m *netmesh.Mesh, id uint64) (netmesh.MeshPeer, bool) {
	for _, p := range must(m.Peers()) {
		if p.NodeID == id {
			return p, true
		}
	}
	return netmesh.MeshPeer{}, false
}

func relayedBy(m *netmesh.Mesh, peer, relay uint64) bool {
	p, ok := peerOf(m, peer)
	return ok && p.Relay != nil && *p.Relay == relay
}

// sendAndReceive sends text from one node to another on a reliable stream
// and checks that it arrives, from the sender, on that stream.
func sendAndReceive(ctx context.Context, t *testing.T, from, to *netmesh.Mesh, stream uint64, text string) {
	t.Helper()
	s := must(from.OpenStream(must(to.NodeID()), stream, true, nil))
	defer s.Close()
	if err := s.SendBlocking(ctx, []byte(text)); err != nil {
		t.Fatal(err)
	}
	got := recvN(t, to, 1)
	if got[0].Peer != must(from.NodeID()) || got[0].StreamID != stream || string(got[0].Data) != text {
		t.Fatalf("got %+v, want %q on stream %d", got, text, stream)
	}
}

// A, B and C each connect directly to R only; B reaches A through R, A
// reaches C along the route it learned, and the relay calls fail cleanly.
func TestMeshRelayAndRoutes(t *testing.T) {
	a, r, b, c := startedMesh(t), startedMesh(t), startedMesh(t), startedMesh(t)
	ida, idr, idb, idc := must(a.NodeID()), must(r.NodeID()), must(b.NodeID()), must(c.NodeID())
	for _, n := range []*netmesh.Mesh{a, b, c} {
		linkTo(t, n, r)
	}
	keyA, keyC := must(a.PublicKey()), must(c.PublicKey())

	// A relay must be a direct peer; a routed connect needs a route.
	if err := b.ConnectVia(ctx5(t), idc, keyA, ida); !errors.Is(err, netmesh.ErrMeshNoRoute) {
		t.Fatalf("ConnectVia a non-peer: %v", err)
	}
	if err := b.ConnectRouted(ctx5(t), keyA, 0x1234); !errors.Is(err, netmesh.ErrMeshNoRoute) {
		t.Fatalf("ConnectRouted to an unknown node: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.ConnectVia(ctx, idr, keyA, ida); err != nil {
		t.Fatal(err)
	}
	if !relayedBy(b, ida, idr) {
		t.Fatalf("b's peers: %+v", must(b.Peers()))
	}
	waitFor(t, "a sees b relayed by r", func() bool { return relayedBy(a, idb, idr) })
	sendAndReceive(ctx, t, b, a, 3, "b to a")
	sendAndReceive(ctx, t, a, b, 4, "a to b")
	waitFor(t, "b's route to a through r", func() bool {
		route, ok := must(b.Routes()).Route(ida)
		return ok && route.NextHop == idr
	})
	relay := must(r.Routes())
	if relay.NodeID != idr || relay.Forwarding["forwarded"] == 0 {
		t.Fatalf("relay routes %+v", relay)
	}

	// A learns C at two hops from the pingwaves R relays, then connects.
	waitFor(t, "a learns c through r", func() bool {
		route, ok := must(a.Routes()).Route(idc)
		return ok && route.NextHop == idr && route.Hops == 2 && route.Kind == "learned"
	})
	if err := a.ConnectRouted(ctx, keyC, idc); err != nil {
		t.Fatal(err)
	}
	if !relayedBy(a, idc, idr) {
		t.Fatalf("a's peers: %+v", must(a.Peers()))
	}
	sendAndReceive(ctx, t, a, c, 5, "a to c")

	// After Close the calls fail cleanly.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Routes(); !errors.Is(err, netmesh.ErrShuttingDown) {
		t.Fatalf("Routes after Close: %v", err)
	}
	if err := b.ConnectVia(ctx5(t), idr, keyA, ida); !errors.Is(err, netmesh.ErrShuttingDown) {
		t.Fatalf("ConnectVia after Close: %v", err)
	}
	if err := b.ConnectRouted(ctx5(t), keyA, ida); !errors.Is(err, netmesh.ErrShuttingDown) {
		t.Fatalf("ConnectRouted after Close: %v", err)
	}
}

// A ConnectVia whose handshake is never answered gives up when its context
// is cancelled.
func TestMeshConnectViaHonoursTheContext(t *testing.T) {
	a := fastMesh(t, func(c *netmesh.MeshConfig) { c.HandshakeTimeout = 10 * time.Minute; c.HandshakeRetries = 1 })
	r := startedMesh(t)
	must(0, a.Start())
	linkTo(t, a, r)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// A valid key (a low-order one such as 32 zero bytes is refused at once)
	// for a node id nobody has.
	key := must(r.PublicKey())
	go func() { done <- a.ConnectVia(ctx, must(r.NodeID()), key, 0x5eed) }()
	time.AfterFunc(50*time.Millisecond, cancel)
	select {
	case err := <-done:
		if !errors.Is(err, netmesh.ErrCancelled) || !errors.Is(err, context.Canceled) {
			t.Fatalf("a cancelled ConnectVia: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("ConnectVia did not return after its context was cancelled")
	}
}
