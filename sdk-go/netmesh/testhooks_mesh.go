package netmesh

/*
#include <net.h>

// net_mesh_recv_next(NET_WAIT_FOREVER), then *left = 1 (C-side).
static net_status_t testhook_mesh_recv_mark(const net_mesh_t *mesh, int *left) {
	uint64_t peer = 0, sid = 0;
	net_bytes_t data = {0};
	net_status_t st = net_mesh_recv_next(mesh, NET_WAIT_FOREVER, &peer, &sid, &data);
	if (st == NET_OK) net_bytes_free(&data);
	__atomic_store_n(left, 1, __ATOMIC_SEQ_CST);
	return st;
}

// net_mesh_free, then *left as seen the moment the free returned.
static int testhook_mesh_free_check(net_mesh_t *mesh, int *left) {
	net_mesh_free(mesh);
	return __atomic_load_n(left, __ATOMIC_SEQ_CST);
}
*/
import "C"

import (
	"sync/atomic"
	"unsafe"
)

// Test hooks for the mesh handles (see testhooks.go).

type rawMesh struct{ p *C.net_mesh_t }

func rawMeshForTest(m *Mesh) rawMesh { return rawMesh{(*C.net_mesh_t)(atomic.LoadPointer(&m.h))} }

func (r rawMesh) nodeID() Status {
	var id C.uint64_t
	return Status(C.net_mesh_node_id(r.p, &id))
}

func (r rawMesh) free() { C.net_mesh_free(r.p) }

func (r rawMesh) recvMarked(left cFlag) Status { return Status(C.testhook_mesh_recv_mark(r.p, left.p)) }

func (r rawMesh) freeCheck(left cFlag) bool { return C.testhook_mesh_free_check(r.p, left.p) != 0 }

type rawMeshStream struct{ p *C.net_mesh_stream_t }

func rawMeshStreamForTest(s *MeshStream) rawMeshStream {
	return rawMeshStream{(*C.net_mesh_stream_t)(atomic.LoadPointer(&s.h))}
}

func (r rawMeshStream) send() Status {
	var ev C.net_slice_t
	return Status(C.net_mesh_stream_send(r.p, &ev, 0))
}

func (r rawMeshStream) free() { C.net_mesh_stream_free(r.p) }

var _ = unsafe.Pointer(nil)
