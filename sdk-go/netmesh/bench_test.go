package netmesh

import (
	"testing"
	"time"

	"github.com/netmesh/net/sdk-go/netmesh/internal/ffitest"
)

var benchSink uint16

// BenchmarkChannelHash is the cost of one net_channel_hash call from Go
// through the public wrapper (cgo transition, OS-thread lock, status check).
// `make bench-ffi` runs it and reports channel_hash_ns_per_call.
func BenchmarkChannelHash(b *testing.B) {
	const name = "sensors/lidar"
	for i := 0; i < b.N; i++ {
		h, err := ChannelHash(name)
		if err != nil {
			b.Fatal(err)
		}
		benchSink = h
	}
}

// BenchmarkRawChannelHashCall is the bare cgo call, with no wrapper.
func BenchmarkRawChannelHashCall(b *testing.B) {
	name := []byte("sensors/lidar")
	for i := 0; i < b.N; i++ {
		h, st := ffitest.ChannelHash(name)
		if st != ffitest.OK {
			b.Fatal(st)
		}
		benchSink = h
	}
}

func BenchmarkSign64B(b *testing.B) {
	id, err := GenerateIdentity()
	if err != nil {
		b.Fatal(err)
	}
	defer id.Close()
	msg := make([]byte, 64)
	b.SetBytes(int64(len(msg)))
	for i := 0; i < b.N; i++ {
		if _, err := id.Sign(msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBusIngestBatch is one round of the SDK batch-ingest benchmark
// (make bench-bus): 2 000 batches of 1 024 events of 64 bytes through
// Bus.IngestBatch into a bus over the embedded adapter with memory files,
// reported as events/s (compared with the same batches from C,
// sdk-c/bench/bench_bus.c). The discard adapter exists only in libnet's test
// builds, and the ingest path measured here does not depend on the adapter.
func BenchmarkBusIngestBatch(b *testing.B) {
	const event, batchLen, batches = 64, 1024, 2000
	batch := make([][]byte, batchLen)
	for i := range batch {
		batch[i] = make([]byte, event)
		for j := range batch[i] {
			batch[i][j] = byte('a' + i%26)
		}
	}
	for n := 0; n < b.N; n++ {
		bus, err := NewBus(BusConfig{"num_shards": 2, "shard_capacity": 4194304, "adapter": map[string]any{"type": "redex"}})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for i := 0; i < batches; i++ {
			r, err := bus.IngestBatch(batch)
			if err != nil || r.Taken != batchLen {
				b.Fatalf("%+v %v", r, err)
			}
		}
		b.ReportMetric(float64(batchLen*batches)/time.Since(start).Seconds(), "events/s")
		bus.Close()
	}
}
