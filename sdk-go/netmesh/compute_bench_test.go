package netmesh_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/netmesh/net/sdk-go/netmesh"
)

const (
	benchEvents = 20000
	// benchBatch is the events per DeliverBatch, the same in every SDK's
	// bench-compute.
	benchBatch = 256
)

// BenchmarkComputeDaemon is one round of the SDK daemon benchmark (make
// bench-compute): 20 000 events of 64 bytes delivered one per
// Compute.Deliver to the Go counter daemon of compute_test.go (a Daemon
// served by the Compute's work goroutine; one 8-byte output per event),
// timed from the first delivery until WaitProcessed sees them all, reported
// as events/s (compared with the same daemon written in C,
// sdk-c/bench/bench_compute.c).
func BenchmarkComputeDaemon(b *testing.B) {
	benchDaemon(b, func(c *netmesh.Compute, origin, seq uint64, payload []byte) uint64 {
		if outcome, err := c.Deliver(origin, computeProducer, seq, payload); err != nil || outcome != netmesh.DeliveryProcessed {
			b.Fatalf("event %d: %v (outcome %d)", seq, err, outcome)
		}
		return 1
	})
}

// BenchmarkComputeDaemonBatch is BenchmarkComputeDaemon with the events
// delivered in batches of 256 by Compute.DeliverBatch (each batch lent to
// the call, which calls Process per event on this goroutine).
func BenchmarkComputeDaemonBatch(b *testing.B) {
	batch := make([][]byte, benchBatch)
	benchDaemon(b, func(c *netmesh.Compute, origin, seq uint64, payload []byte) uint64 {
		n := min(benchBatch, benchEvents-int(seq)+1)
		for i := range n {
			batch[i] = payload
		}
		outcomes, ok, err := c.DeliverBatch(context.Background(), origin, computeProducer, seq, batch[:n], -1)
		if err != nil || !ok || len(outcomes) != n {
			b.Fatalf("batch at %d: %v (ok %v, %d delivered)", seq, err, ok, len(outcomes))
		}
		return uint64(n)
	})
}

// benchDaemon runs b.N rounds, each with a fresh daemon, calling deliver
// (which returns how many events it delivered from seq) until every event
// is delivered.
func benchDaemon(b *testing.B, deliver func(c *netmesh.Compute, origin, seq uint64, payload []byte) uint64) {
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
		for seq := uint64(1); seq <= benchEvents; {
			seq += deliver(c, origin, seq, payload)
		}
		if _, ok, err := c.WaitProcessed(context.Background(), origin, benchEvents, 10*time.Second); !ok || err != nil {
			b.Fatalf("wait: ok=%v err=%v", ok, err)
		}
		b.ReportMetric(benchEvents/time.Since(start).Seconds(), "events/s")
		if got := daemon.value(); got != benchEvents {
			b.Fatalf("the counter is at %d, not %d", got, benchEvents)
		}
		if err := c.Stop(origin); err != nil {
			b.Fatal(err)
		}
	}
}
