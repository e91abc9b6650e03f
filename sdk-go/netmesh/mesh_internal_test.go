package netmesh

import (
	"testing"
	"time"
)

// Raw-pointer halves of the mesh handle races: libnet's guard refuses calls
// on freed nodes and streams, frees are idempotent, and the node's free
// wakes a blocked recv and returns only after it left.

func TestMeshRawPointersAfterFree(t *testing.T) {
	psk := make([]byte, 32)
	a, err := NewMesh(MeshConfig{PSK: psk})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewMesh(MeshConfig{PSK: psk})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	addr, _ := b.LocalAddr()
	key, _ := b.PublicKey()
	id, _ := b.NodeID()
	if err := a.Connect(addr, key, id); err != nil {
		t.Fatal(err)
	}
	s, err := a.OpenStream(id, 1, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	rs, rm := rawMeshStreamForTest(s), rawMeshForTest(a)
	_ = s.Close()
	_ = a.Close()
	if st := rs.send(); st != StatusShuttingDown {
		t.Fatalf("stream send after free: %v", st)
	}
	if st := rm.nodeID(); st != StatusShuttingDown {
		t.Fatalf("node_id after free: %v", st)
	}
	rs.free()
	rm.free()
}

func TestMeshRawFreeWakesBlockedRecv(t *testing.T) {
	for round := 0; round < 10; round++ {
		m, err := NewMesh(MeshConfig{})
		if err != nil {
			t.Fatal(err)
		}
		rm := rawMeshForTest(m)
		left := newCFlag()
		res := make(chan Status, 1)
		go func() { res <- rm.recvMarked(left) }()
		time.Sleep(20 * time.Millisecond)
		if left.load() {
			t.Fatal("recv returned with nothing to receive")
		}
		begin := time.Now()
		if !rm.freeCheck(left) {
			t.Fatal("net_mesh_free returned while net_mesh_recv_next was still inside libnet")
		}
		if d := time.Since(begin); d > 4*time.Second {
			t.Fatalf("free took %v", d)
		}
		if st := <-res; st != StatusEnd {
			t.Fatalf("blocked recv woken by the free returned %v, want NET_END", st)
		}
		left.release()
		_ = m.Close()
	}
}
