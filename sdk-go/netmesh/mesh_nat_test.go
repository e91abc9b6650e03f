package netmesh_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/netmesh/net/sdk-go/netmesh"
)

func natOf(t *testing.T, m *netmesh.Mesh) netmesh.MeshNAT {
	t.Helper()
	return must(m.NAT())
}

func boundTo(m *netmesh.Mesh, peer uint64) bool {
	p, ok := peerOf(m, peer)
	return ok && p.Identity == "net"
}

// A node with two Net peers on other loopback addresses classifies itself
// (Open: both saw its own address; loopback is never advertised), takes
// and clears an override, and runs a round on demand.
func TestMeshNAT(t *testing.T) {
	on := func(ip string) *netmesh.Mesh {
		m := fastMesh(t, func(c *netmesh.MeshConfig) { c.Bind = ip + ":0" })
		must(0, m.Start())
		return m
	}
	a, b, c := on("127.0.0.1"), on("127.0.0.2"), on("127.0.0.3")
	if n := natOf(t, a); n.Class != "unknown" || n.Reflex != nil || n.Rounds != 0 || !n.Classify {
		t.Fatalf("before: %+v", n)
	}
	ida := must(a.NodeID())
	for _, peer := range []*netmesh.Mesh{b, c} {
		if err := a.Connect(ctx5(t), must(peer.LocalAddr()), must(peer.PublicKey()), must(peer.NodeID())); err != nil {
			t.Fatal(err)
		}
		idp := must(peer.NodeID())
		waitFor(t, "a bound session", func() bool { return boundTo(a, idp) && boundTo(peer, ida) })
	}
	waitFor(t, "a classification round", func() bool { return natOf(t, a).Rounds >= 1 })
	if n := natOf(t, a); n.Class != "open" || n.Reflex != nil || n.Mapping != "None" {
		t.Fatalf("after: %+v", n)
	}
	if must(a.Stats())["reflex_probes"] < 2 {
		t.Fatal("no reflex probes counted")
	}

	if err := a.SetReflexOverride("203.0.113.7:4242"); err != nil {
		t.Fatal(err)
	}
	if n := natOf(t, a); n.Class != "open" || n.Reflex == nil || *n.Reflex != "203.0.113.7:4242" || n.Override == nil {
		t.Fatalf("override: %+v", n)
	}
	for _, bad := range []string{"10.0.0.1:80", "0.0.0.0:80", "not an address"} {
		if err := a.SetReflexOverride(bad); !errors.Is(err, netmesh.ErrInvalidArgument) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
	must(0, a.SetReflexOverride(""))
	if n := natOf(t, a); n.Override != nil {
		t.Fatalf("cleared: %+v", n)
	}
	rounds := natOf(t, a).Rounds
	must(0, a.ReclassifyNAT())
	waitFor(t, "a second round", func() bool { return natOf(t, a).Rounds > rounds })
}

func TestMeshNATConfig(t *testing.T) {
	m := fastMesh(t, func(c *netmesh.MeshConfig) {
		c.NoNATClassify = true
		c.ReflexOverride = "198.51.100.9:7000"
		c.ClassifyPeriod = 30_000_000_000
	})
	if n := natOf(t, m); n.Classify || n.Reflex == nil || *n.Reflex != "198.51.100.9:7000" {
		t.Fatalf("%+v", n)
	}
	_, err := netmesh.NewMesh(netmesh.MeshConfig{ReflexOverride: "192.168.1.1:7000"})
	if !errors.Is(err, netmesh.ErrMeshConfig) {
		t.Fatalf("private override: %v", err)
	}
	_, err = netmesh.NewMesh(netmesh.MeshConfig{PortMapping: true, PortMappingGateway: "not an address"})
	if !errors.Is(err, netmesh.ErrMeshConfig) {
		t.Fatalf("bad gateway: %v", err)
	}
}

// A session relayed by R moves to a direct path through one punch.
func TestMeshConnectDirect(t *testing.T) {
	a, r, b := startedMesh(t), startedMesh(t), startedMesh(t)
	ida, idr, idb := must(a.NodeID()), must(r.NodeID()), must(b.NodeID())
	for _, n := range []*netmesh.Mesh{a, b} {
		if err := n.Connect(ctx5(t), must(r.LocalAddr()), must(r.PublicKey()), idr); err != nil {
			t.Fatal(err)
		}
		idn := must(n.NodeID())
		waitFor(t, "bound to r", func() bool { return boundTo(n, idr) && boundTo(r, idn) })
	}
	keyB := must(b.PublicKey())
	if err := a.ConnectVia(ctx5(t), idr, keyB, idb); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a relayed session", func() bool { return boundTo(a, idb) && boundTo(b, ida) })
	if !relayedBy(a, idb, idr) {
		t.Fatal("not relayed by r")
	}
	if _, err := a.ConnectDirect(ctx5(t), idb, keyB, 0x1234); !errors.Is(err, netmesh.ErrMeshNoRoute) {
		t.Fatalf("bad coordinator: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	outcome, err := a.ConnectDirect(ctx, idb, keyB, idr)
	if err != nil || outcome != netmesh.DirectPath || outcome.String() != "direct" {
		t.Fatalf("ConnectDirect: %v %v", outcome, err)
	}
	if p, _ := peerOf(a, idb); p.Relay != nil {
		t.Fatalf("still relayed: %+v", p)
	}
	waitFor(t, "b moved too", func() bool { p, _ := peerOf(b, ida); return p.Relay == nil })
	if n := natOf(t, a); n.PunchesAttempted != 1 || n.PunchesSucceeded != 1 {
		t.Fatalf("counters: %+v", n)
	}
}
