package netmesh_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/netmesh/net/sdk-go/netmesh"
)

var publisherSeed = bytes.Repeat([]byte{7}, 32)

// expectEvent receives one event and checks its peer, data and channel.
func expectEvent(t *testing.T, m *netmesh.Mesh, peer uint64, data, channel string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ev, err := m.RecvNext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Peer != peer || string(ev.Data) != data || ev.Channel != channel {
		t.Fatalf("got %+v (channel %q), want %q on %q", ev, ev.Channel, data, channel)
	}
}

// Register, subscribe (accepted, unknown, token required without and with
// a token the publisher's identity issued), publish with a report, receive
// with the channel, unsubscribe stops delivery, errors after Close.
func TestMeshChannels(t *testing.T) {
	a := fastMesh(t, func(c *netmesh.MeshConfig) { c.IdentitySeed = publisherSeed })
	b := fastMesh(t, nil)
	must(0, a.Start())
	must(0, b.Start())
	linkTo(t, b, a)
	ida := must(a.NodeID())

	if _, err := a.RegisterChannel("news", netmesh.ChannelConfig{Priority: 1, Visibility: "galaxy"}); !errors.Is(err, netmesh.ErrChannelConfig) ||
		!strings.Contains(err.Error(), "visibility") {
		t.Fatalf("bad visibility: %v", err)
	}
	must(a.RegisterChannel("news", netmesh.ChannelConfig{Reliable: true}))
	must(a.RegisterChannel("secret", netmesh.ChannelConfig{RequireToken: true}))

	if err := b.Subscribe(ctx5(t), ida, "news", nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(ctx5(t), ida, "nope", nil); !errors.Is(err, netmesh.ErrChannelUnknown) {
		t.Fatalf("unknown channel: %v", err)
	}
	if err := b.Subscribe(ctx5(t), ida, "secret", nil); !errors.Is(err, netmesh.ErrChannelUnauthorized) {
		t.Fatalf("no token: %v", err)
	}
	issuer := must(netmesh.IdentityFromSeed(publisherSeed))
	defer issuer.Close()
	token := must(netmesh.IssueToken(issuer, must(b.EntityID()), netmesh.ScopeSubscribe,
		must(netmesh.ChannelHash("secret")), time.Hour, 0))
	if err := b.Subscribe(ctx5(t), ida, "secret", token); err != nil {
		t.Fatal(err)
	}

	report := must(a.Publish("news", [][]byte{[]byte("n1")}, false))
	if report.Attempted != 1 || report.Delivered != 1 || len(report.Errors) != 0 {
		t.Fatalf("report %+v", report)
	}
	expectEvent(t, b, ida, "n1", "news")
	must(a.Publish("secret", [][]byte{[]byte("s1")}, true))
	if got := recvN(t, b, 1); got[0].Channel != "secret" || string(got[0].Data) != "s1" {
		t.Fatalf("batch got %+v", got)
	}
	if _, err := a.Publish("unregistered", [][]byte{[]byte("x")}, false); !errors.Is(err, netmesh.ErrChannelUnknown) {
		t.Fatalf("publish unknown: %v", err)
	}
	channels := must(a.Channels())
	if list, _ := channels["channels"].([]any); len(list) != 2 {
		t.Fatalf("channels %v", channels)
	}

	// Unsubscribe stops delivery: the next event b gets is on "secret".
	if err := b.Unsubscribe(ctx5(t), ida, "news"); err != nil {
		t.Fatal(err)
	}
	if r := must(a.Publish("news", [][]byte{[]byte("gone")}, false)); r.Attempted != 0 {
		t.Fatalf("after unsubscribe: %+v", r)
	}
	must(a.Publish("secret", [][]byte{[]byte("s2")}, false))
	expectEvent(t, b, ida, "s2", "secret")
	if n := must(a.DeregisterChannel("secret")); n != 1 {
		t.Fatalf("evicted %d", n)
	}
	if err := a.InstallChannelToken(token); err != nil {
		t.Fatal(err)
	}

	must(0, a.Close())
	if _, err := a.RegisterChannel("news", netmesh.ChannelConfig{}); !errors.Is(err, netmesh.ErrShuttingDown) {
		t.Fatalf("after close: %v", err)
	}
	if _, err := a.Publish("news", nil, false); !errors.Is(err, netmesh.ErrShuttingDown) {
		t.Fatalf("after close: %v", err)
	}
	if err := a.Subscribe(ctx5(t), 1, "news", nil); !errors.Is(err, netmesh.ErrShuttingDown) {
		t.Fatalf("after close: %v", err)
	}
}

// C announces; A, two hops away through B, finds it; a channel's subscribe
// filter admits the announced capabilities.
func TestMeshCapabilitiesAcrossThreeNodes(t *testing.T) {
	a, b, c := startedMesh(t), startedMesh(t), startedMesh(t)
	linkTo(t, a, b)
	linkTo(t, c, b)
	idc := must(c.NodeID())
	err := c.Announce(netmesh.Capabilities{Tags: []string{"gpu"}, Hardware: netmesh.Hardware{MemoryMB: 4096},
		Software: netmesh.Software{OS: "linux"}, Limits: netmesh.Limits{MaxBatchSize: 8},
		Models: []netmesh.ModelInfo{{ModelID: "m1", Family: "f", ContextLength: 4096, Modalities: []string{"Text"}, Loaded: true}}})
	if err != nil {
		t.Fatal(err)
	}
	gpu := netmesh.NodeQuery{Filter: netmesh.CapabilityFilter{RequireTags: []string{"gpu"}}}
	waitFor(t, "a finds c", func() bool {
		nodes := must(a.FindNodes(gpu))
		return len(nodes) == 1 && nodes[0] == idc
	})
	id, _, ok, err := a.FindBestNode(gpu, netmesh.ScoringWeights{Memory: 1})
	if err != nil || !ok || id != idc {
		t.Fatalf("best: %d %v %v", id, ok, err)
	}
	if _, _, ok, _ := a.FindBestNode(netmesh.NodeQuery{Filter: netmesh.CapabilityFilter{RequireTags: []string{"tpu"}}}, netmesh.ScoringWeights{}); ok {
		t.Fatal("found a tpu")
	}
	if _, err := a.FindNodes(netmesh.NodeQuery{Scope: "everywhere"}); !errors.Is(err, netmesh.ErrMeshCapabilities) {
		t.Fatalf("bad scope: %v", err)
	}
	all := must(a.Capabilities())
	found := false
	for _, n := range all {
		found = found || (n.NodeID == idc && n.HopCount == 1 && strings.Contains(string(n.Capabilities), `"os":"linux"`))
	}
	if !found {
		t.Fatalf("capabilities %+v", all)
	}
	must(a.RegisterChannel("jobs", netmesh.ChannelConfig{SubscribeCaps: &netmesh.CapabilityFilter{RequireTags: []string{"gpu"}}}))
	linkTo(t, c, a)
	ida := must(a.NodeID())
	if err := c.Subscribe(ctx5(t), ida, "jobs", nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(ctx5(t), ida, "jobs", nil); !errors.Is(err, netmesh.ErrChannelUnauthorized) {
		t.Fatalf("b without gpu: %v", err)
	}
}

// B subscribes to A's channel through the relay R and receives what A
// publishes, with the channel name.
func TestMeshChannelThroughRelay(t *testing.T) {
	a, r, b := startedMesh(t), startedMesh(t), startedMesh(t)
	linkTo(t, a, r)
	linkTo(t, b, r)
	ida, idr := must(a.NodeID()), must(r.NodeID())
	if err := b.ConnectVia(ctx5(t), idr, must(a.PublicKey()), ida); err != nil {
		t.Fatal(err)
	}
	must(a.RegisterChannel("relayed", netmesh.ChannelConfig{}))
	if err := b.Subscribe(ctx5(t), ida, "relayed", nil); err != nil {
		t.Fatal(err)
	}
	if r := must(a.Publish("relayed", [][]byte{[]byte("over r")}, true)); r.Delivered != 1 {
		t.Fatalf("report %+v", r)
	}
	expectEvent(t, b, ida, "over r", "relayed")
}
