package netmesh_test

import (
	"bytes"
	"context"
	"errors"
	"reflect"
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
		testMeshes.dump(t)
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
		Models: []netmesh.ModelInfo{{ModelID: "m1", Family: "f", ContextLength: 4096, Modalities: []netmesh.Modality{netmesh.ModalityText}, Loaded: true}}})
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
		found = found || (n.NodeID == idc && n.HopCount == 1 && n.Capabilities.Software.OS == "linux")
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

// fullCapabilities sets every member of the capability set.
func fullCapabilities() netmesh.Capabilities {
	cuda, q, in, out := "12.4", "q4_k_m", `{"type":"object"}`, `{"type":"string"}`
	return netmesh.Capabilities{
		Hardware: netmesh.Hardware{
			CPUCores: 16, CPUThreads: 32, MemoryMB: 65536,
			GPU: &netmesh.GPUInfo{Vendor: netmesh.GPUVendorNvidia, Model: "RTX 4090", VRAMMB: 24576,
				ComputeUnits: 128, TensorCores: 512, FP16TflopsX10: 825},
			AdditionalGPUs: []netmesh.GPUInfo{{Vendor: netmesh.GPUVendorAMD, Model: "MI300", VRAMMB: 8192,
				ComputeUnits: 304, TensorCores: 0, FP16TflopsX10: 1307}},
			StorageMB: 2_000_000, NetworkMbps: 10000,
			Accelerators: []netmesh.AcceleratorInfo{{Type: netmesh.AcceleratorTPU, Model: "v5e", MemoryMB: 16384, TopsX10: 3940}},
		},
		Software: netmesh.Software{
			OS: "linux", OSVersion: "6.8",
			Runtimes:    []netmesh.NameVersion{{Name: "python", Version: "3.12"}},
			Frameworks:  []netmesh.NameVersion{{Name: "torch", Version: "2.3"}},
			CUDAVersion: &cuda,
			Drivers:     []netmesh.NameVersion{{Name: "nvidia", Version: "550.54"}},
		},
		Models: []netmesh.ModelInfo{{ModelID: "llama-3-8b", Family: "llama", ParametersBX10: 80, ContextLength: 8192,
			Quantization: &q, Modalities: []netmesh.Modality{netmesh.ModalityText, netmesh.ModalityToolUse},
			TokensPerSecond: 95, Loaded: true}},
		Tools: []netmesh.ToolInfo{{ToolID: "grep", Name: "Grep", Version: "3.11", InputSchema: &in, OutputSchema: &out,
			Requires: []string{"fs"}, EstimatedTimeMs: 40, Stateless: true}},
		Tags: []string{"gpu", "zone:eu"},
		Limits: netmesh.Limits{MaxConcurrentRequests: 4, MaxTokensPerRequest: 4096, RateLimitRPM: 600,
			MaxBatchSize: 8, MaxInputBytes: 1 << 20, MaxOutputBytes: 1 << 21},
	}
}

// A set with every member set, announced by C, reads back field for field
// from A's index (through B), and a filter on each kind of field finds it.
func TestMeshCapabilitiesRoundTrip(t *testing.T) {
	a, b, c := startedMesh(t), startedMesh(t), startedMesh(t)
	linkTo(t, a, b)
	linkTo(t, c, b)
	idc := must(c.NodeID())
	caps := fullCapabilities()
	if err := c.Announce(caps); err != nil {
		t.Fatal(err)
	}
	finds := func(f netmesh.CapabilityFilter) bool {
		nodes := must(a.FindNodes(netmesh.NodeQuery{Filter: f}))
		return len(nodes) == 1 && nodes[0] == idc
	}
	waitFor(t, "a finds c", func() bool { return finds(netmesh.CapabilityFilter{RequireTags: []string{"zone:eu"}}) })
	var got *netmesh.Capabilities
	for _, n := range must(a.Capabilities()) {
		if n.NodeID == idc && n.HopCount == 1 {
			got = &n.Capabilities
		}
	}
	if got == nil || !reflect.DeepEqual(*got, caps) {
		t.Fatalf("read back\n%+v\nannounced\n%+v", got, caps)
	}
	for name, f := range map[string]netmesh.CapabilityFilter{
		"model":    {RequireModels: []string{"llama-3-8b"}},
		"tool":     {RequireTools: []string{"grep"}},
		"memory":   {MinMemoryMB: 65536},
		"gpu":      {RequireGPU: true, GPUVendor: "nvidia"},
		"vram":     {MinVRAMMB: 24576 + 8192},
		"context":  {MinContextLength: 8192},
		"modality": {RequireModalities: []string{"tool-use"}},
	} {
		if !finds(f) {
			t.Errorf("%s filter does not find c", name)
		}
	}
	for name, f := range map[string]netmesh.CapabilityFilter{
		"model":  {RequireModels: []string{"gpt"}},
		"memory": {MinMemoryMB: 65537},
		"vendor": {GPUVendor: "amd"}, // only the primary GPU counts
		"vram":   {MinVRAMMB: 24576 + 8192 + 1},
	} {
		if finds(f) {
			t.Errorf("%s filter finds c", name)
		}
	}
	// Items left mostly zero announce (nil lists included), and the full set again.
	partial := netmesh.Capabilities{Models: []netmesh.ModelInfo{{ModelID: "partial"}}, Tools: []netmesh.ToolInfo{{ToolID: "t"}},
		Hardware: netmesh.Hardware{GPU: &netmesh.GPUInfo{}, Accelerators: []netmesh.AcceleratorInfo{{}}}}
	if err := c.Announce(partial); err != nil {
		t.Fatal(err)
	}
	bad := caps
	bad.Hardware.GPU = &netmesh.GPUInfo{Vendor: "nvidea"}
	if err := c.Announce(bad); !errors.Is(err, netmesh.ErrMeshCapabilities) || !strings.Contains(err.Error(), "nvidea") {
		t.Fatalf("typo vendor: %v", err)
	}
}

// A full channel, a spent publish rate: each with its own typed error.
func TestMeshChannelFullAndRateLimited(t *testing.T) {
	a, b, c := startedMesh(t), startedMesh(t), startedMesh(t)
	linkTo(t, b, a)
	linkTo(t, c, a)
	ida := must(a.NodeID())
	must(a.RegisterChannel("one", netmesh.ChannelConfig{MaxSubscribers: 1}))
	if err := b.Subscribe(ctx5(t), ida, "one", nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(ctx5(t), ida, "one", nil); err != nil { // idempotent at the cap
		t.Fatal(err)
	}
	if err := c.Subscribe(ctx5(t), ida, "one", nil); !errors.Is(err, netmesh.ErrChannelFull) {
		t.Fatalf("full channel: %v", err)
	}
	must(a.RegisterChannel("slow", netmesh.ChannelConfig{MaxRatePPS: 1}))
	must(a.Publish("slow", [][]byte{[]byte("first")}, false))
	if _, err := a.Publish("slow", [][]byte{[]byte("second")}, false); !errors.Is(err, netmesh.ErrChannelRateLimited) {
		t.Fatalf("spent rate: %v", err)
	}
}
