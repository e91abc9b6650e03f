package netmesh

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// busRecord is one record of net_bus_poll's buffer, as a server adapter's
// event comes back (the embedded adapter keeps no dedup id).
func busRecord(shard uint16, ts uint64, id, dedup string, payload []byte) []byte {
	var b []byte
	b = binary.LittleEndian.AppendUint16(b, shard)
	b = binary.LittleEndian.AppendUint64(b, ts)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(id)))
	b = append(b, id...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(dedup)))
	b = append(b, dedup...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

func TestPollRecordsDecodeDedupIDs(t *testing.T) {
	raw := append(busRecord(2, 7, "1-0", "00000000000000ab:2:5:0", []byte("x")), busRecord(0, 8, "9", "", nil)...)
	events, err := decodeBusEvents(raw)
	if err != nil || len(events) != 2 {
		t.Fatalf("%v %v", events, err)
	}
	a, b := events[0], events[1]
	if a.Shard != 2 || a.TimestampNs != 7 || a.ID != "1-0" || a.DedupID != "00000000000000ab:2:5:0" || !bytes.Equal(a.Payload, []byte("x")) {
		t.Fatalf("%+v", a)
	}
	if b.Shard != 0 || b.TimestampNs != 8 || b.ID != "9" || b.DedupID != "" || len(b.Payload) != 0 {
		t.Fatalf("%+v", b)
	}
	if _, err := decodeBusEvents(raw[:len(raw)-1]); err == nil {
		t.Fatal("a truncated buffer decoded")
	}
}

func TestTheReleaseLibraryRefusesTestOnlyAdapters(t *testing.T) {
	for _, kind := range []string{"memory", "discard"} {
		b, err := NewBus(BusConfig{"adapter": map[string]any{"type": kind}})
		if err == nil {
			b.Close()
			t.Fatalf("%s: a release libnet built the adapter", kind)
		}
		var e *Error
		if !errors.Is(err, ErrBusConfig) || !errors.As(err, &e) || !strings.Contains(e.Message, "test-only") {
			t.Fatalf("%s: %v", kind, err)
		}
	}
}
