package netmesh

import "testing"

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
		h, st := rawChannelHash(name)
		if st != StatusOK {
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
