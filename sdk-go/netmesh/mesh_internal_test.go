package netmesh

import (
	"context"
	"testing"

	"github.com/netmesh/net/sdk-go/netmesh/internal/ffitest"
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
	if err := a.Connect(context.Background(), addr, key, id); err != nil {
		t.Fatal(err)
	}
	s, err := a.OpenStream(id, 1, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	rs, rm := s.h.load(), a.h.load()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if st := ffitest.StreamSend(rs); st != ffitest.ShuttingDown {
		t.Fatalf("stream send after free: %v", Status(st))
	}
	if st := ffitest.MeshNodeID(rm); st != ffitest.ShuttingDown {
		t.Fatalf("node_id after free: %v", Status(st))
	}
	if st := ffitest.StreamFree(rs); st != ffitest.OK {
		t.Fatalf("second stream free: %v", Status(st))
	}
	if st := ffitest.MeshFree(rm); st != ffitest.OK {
		t.Fatalf("second node free: %v", Status(st))
	}
}

// The node's free wakes a recv blocked forever (NET_END) and returns only
// once it has left libnet (C-side flag).
func TestMeshRawFreeWakesBlockedRecv(t *testing.T) {
	UntilWon(t, 200, 3, func(int) bool {
		m, err := NewMesh(MeshConfig{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		rm := m.h.load()
		return freeWakesBlockedCall(t, "net_mesh_recv_next", "net_mesh_free",
			func(left ffitest.Flag) int32 { return ffitest.MeshRecvMarked(rm, left) },
			func(left ffitest.Flag) (bool, int32) { return ffitest.MeshFreeCheck(rm, left) })
	})
}
