package netmesh_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/netmesh/net/sdk-go/netmesh"
)

// BenchmarkComputeDaemon is one round of the SDK daemon benchmark (make
// bench-compute): 20 000 events of 64 bytes delivered with Compute.Deliver
// to the Go counter daemon of compute_test.go (a Daemon served by the
// Compute's work goroutine; one 8-byte output per event), timed from the
// first delivery until WaitProcessed sees them all, reported as events/s
// (compared with the same daemon written in C, sdk-c/bench/bench_compute.c).
func BenchmarkComputeDaemon(b *testing.B) {
	const events = 20000
	payload := bytes.Repeat([]byte{'e'}, 64)
	mesh, err := netmesh.NewMesh(netmesh.MeshConfig{PSK: meshPSK})
	if err != nil {
		b.Fatal(err)
	}
	defer mesh.Close()
	c, err := netmesh.NewCompute(mesh, netmesh.ComputeConfig{WorkTimeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.Register("counter", newCounter, true); err != nil {
		b.Fatal(err)
	}
	for n := 0; n < b.N; n++ {
		daemon := &counter{}
		origin, err := c.Spawn("counter", bytesOf(byte(0x40+n), 32), daemon)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for seq := uint64(1); seq <= events; seq++ {
			if outcome, err := c.Deliver(origin, computeProducer, seq, payload); err != nil || outcome != netmesh.DeliveryProcessed {
				b.Fatalf("event %d: %v (outcome %d)", seq, err, outcome)
			}
		}
		if _, ok, err := c.WaitProcessed(context.Background(), origin, events, 10*time.Second); !ok || err != nil {
			b.Fatalf("wait: ok=%v err=%v", ok, err)
		}
		b.ReportMetric(events/time.Since(start).Seconds(), "events/s")
		if got := daemon.value(); got != events {
			b.Fatalf("the counter is at %d, not %d", got, events)
		}
		if err := c.Stop(origin); err != nil {
			b.Fatal(err)
		}
	}
}
