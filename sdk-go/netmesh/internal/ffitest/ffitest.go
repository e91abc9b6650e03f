// Package ffitest calls libnet through raw handle pointers, around the
// netmesh package's Go-side checks, for netmesh's own tests (cgo cannot be
// used in _test.go files). The netmesh package never imports it, so none of
// it is linked into programs using the SDK.
//
// Handles cross as unsafe.Pointer (each cgo package has its own C types);
// statuses come back as int32 and messages as the calling thread's
// net_last_error_message (read on the same locked OS thread) or the call's
// net_error_t.
package ffitest

/*
#cgo pkg-config: net
#include <stdlib.h>
#include <string.h>
#include <net.h>

static int load_flag(int *flag) { return __atomic_load_n(flag, __ATOMIC_SEQ_CST); }

// net_redex_tail_next(NET_WAIT_FOREVER), then *left = 1 (C-side, right after
// libnet returned).
static net_status_t tail_next_marked(const net_redex_tail_t *tail, int *left) {
	uint64_t seq = 0;
	net_bytes_t payload = {0};
	net_status_t st = net_redex_tail_next(tail, NET_WAIT_FOREVER, &seq, &payload, NULL, NULL);
	__atomic_store_n(left, 1, __ATOMIC_SEQ_CST);
	net_bytes_free(&payload);
	return st;
}

// net_redex_tail_free, then *left as seen the moment the free returned.
static int tail_free_check(net_redex_tail_t *tail, int *left, net_status_t *st) {
	*st = net_redex_tail_free(tail);
	return __atomic_load_n(left, __ATOMIC_SEQ_CST);
}

static net_status_t watch_next_marked(const net_model_watch_t *watch, int *left) {
	net_bytes_t rows = {0};
	uint64_t missed = 0;
	net_status_t st = net_model_watch_next(watch, NET_WAIT_FOREVER, &rows, &missed, NULL, NULL);
	__atomic_store_n(left, 1, __ATOMIC_SEQ_CST);
	net_bytes_free(&rows);
	return st;
}

static int watch_free_check(net_model_watch_t *watch, int *left, net_status_t *st) {
	*st = net_model_watch_free(watch);
	return __atomic_load_n(left, __ATOMIC_SEQ_CST);
}

static net_status_t mesh_recv_marked(const net_mesh_t *mesh, int *left) {
	uint64_t peer = 0, sid = 0;
	net_bytes_t data = {0};
	net_status_t st = net_mesh_recv_next(mesh, NET_WAIT_FOREVER, &peer, &sid, &data, NULL, NULL, NULL, NULL);
	__atomic_store_n(left, 1, __ATOMIC_SEQ_CST);
	net_bytes_free(&data);
	return st;
}

static int mesh_free_check(net_mesh_t *mesh, int *left, net_status_t *st) {
	*st = net_mesh_free(mesh);
	return __atomic_load_n(left, __ATOMIC_SEQ_CST);
}

// Signs len bytes of C memory, then *left = 1.
static net_status_t sign_marked(const net_identity_t *id, const uint8_t *msg, size_t len, int *left) {
	net_bytes_t sig = {0};
	net_status_t st = net_identity_sign(id, msg, len, &sig);
	__atomic_store_n(left, 1, __ATOMIC_SEQ_CST);
	net_bytes_free(&sig);
	return st;
}
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// Status codes the tests compare against.
const (
	OK           = int32(C.NET_OK)
	Timeout      = int32(C.NET_TIMEOUT)
	End          = int32(C.NET_END)
	ShuttingDown = int32(C.NET_ERR_SHUTTING_DOWN)
	WaitForever  = uint32(C.NET_WAIT_FOREVER)
)

func ptr8(b []byte) *C.uint8_t { return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(b))) }

func str8(s string) *C.uint8_t { return (*C.uint8_t)(unsafe.Pointer(unsafe.StringData(s))) }

func take(b *C.net_bytes_t) []byte {
	out := []byte{}
	if b.ptr != nil && b.len > 0 {
		out = make([]byte, b.len)
		copy(out, unsafe.Slice((*byte)(unsafe.Pointer(b.ptr)), b.len))
	}
	C.net_bytes_free(b)
	return out
}

// lastError is net_last_error_message after a failed call (the caller holds
// its OS thread).
func lastError(st C.net_status_t) string {
	if st < 0 {
		return C.GoString(C.net_last_error_message())
	}
	return ""
}

// errorMessage is the message a blocking call wrote to its net_error_t
// (which is then cleared).
func errorMessage(e *C.net_error_t) string {
	msg := string(take(&e.message))
	C.net_error_clear(e)
	return msg
}

// Flag is an int in C memory, set and read atomically by the C helpers.
type Flag struct{ p *C.int }

// NewFlag allocates a cleared flag; Release it when done.
func NewFlag() Flag { return Flag{(*C.int)(C.calloc(1, C.size_t(unsafe.Sizeof(C.int(0)))))} }

// Load reads the flag.
func (f Flag) Load() bool { return C.load_flag(f.p) != 0 }

// Release frees the flag's memory.
func (f Flag) Release() { C.free(unsafe.Pointer(f.p)) }

// ---- identities --------------------------------------------------------------

// IdentityOriginHash is net_identity_origin_hash on a raw pointer.
func IdentityOriginHash(p unsafe.Pointer) (uint64, int32, string) {
	var out C.uint64_t
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	st := C.net_identity_origin_hash((*C.net_identity_t)(p), &out)
	return uint64(out), int32(st), lastError(st)
}

// IdentitySign is net_identity_sign on a raw pointer.
func IdentitySign(p unsafe.Pointer, msg []byte) ([]byte, int32) {
	var out C.net_bytes_t
	st := C.net_identity_sign((*C.net_identity_t)(p), ptr8(msg), C.size_t(len(msg)), &out)
	if st < 0 {
		return nil, int32(st)
	}
	return take(&out), int32(st)
}

// IdentityFree is net_identity_free on a raw pointer.
func IdentityFree(p unsafe.Pointer) int32 { return int32(C.net_identity_free((*C.net_identity_t)(p))) }

// CBuffer is n bytes of C memory (a message too big to copy per call).
type CBuffer struct {
	p unsafe.Pointer
	n C.size_t
}

// NewCBuffer allocates n bytes filled with a pattern; Release it when done.
func NewCBuffer(n int) CBuffer {
	p := C.malloc(C.size_t(n))
	b := unsafe.Slice((*byte)(p), n)
	for i := range b {
		b[i] = byte(i * 31)
	}
	return CBuffer{p, C.size_t(n)}
}

// Release frees the buffer.
func (b CBuffer) Release() { C.free(b.p) }

// IdentitySignMarked signs the buffer through a raw pointer, then sets left
// (in C, right after libnet returned).
func IdentitySignMarked(p unsafe.Pointer, msg CBuffer, left Flag) int32 {
	return int32(C.sign_marked((*C.net_identity_t)(p), (*C.uint8_t)(msg.p), msg.n, left.p))
}

// ---- RedEX -------------------------------------------------------------------

// RedexOpenFile is net_redex_open_file on a raw manager pointer.
func RedexOpenFile(p unsafe.Pointer, name, config string) (unsafe.Pointer, int32, string) {
	var out *C.net_redex_file_t
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var cfg *C.uint8_t
	if config != "" {
		cfg = str8(config)
	}
	st := C.net_redex_open_file((*C.net_redex_t)(p), str8(name), C.size_t(len(name)), cfg, C.size_t(len(config)), &out)
	return unsafe.Pointer(out), int32(st), lastError(st)
}

// RedexFree is net_redex_free on a raw pointer.
func RedexFree(p unsafe.Pointer) int32 { return int32(C.net_redex_free((*C.net_redex_t)(p))) }

// FileAppend is net_redex_file_append on a raw pointer.
func FileAppend(p unsafe.Pointer, payload []byte) (uint64, int32, string) {
	var seq C.uint64_t
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	st := C.net_redex_file_append((*C.net_redex_file_t)(p), ptr8(payload), C.size_t(len(payload)), &seq)
	return uint64(seq), int32(st), lastError(st)
}

// FileNextSeq is net_redex_file_next_seq on a raw pointer.
func FileNextSeq(p unsafe.Pointer) (uint64, int32) {
	var out C.uint64_t
	st := C.net_redex_file_next_seq((*C.net_redex_file_t)(p), &out)
	return uint64(out), int32(st)
}

// FileTail is net_redex_file_tail on a raw pointer.
func FileTail(p unsafe.Pointer, from uint64) (unsafe.Pointer, int32) {
	var out *C.net_redex_tail_t
	st := C.net_redex_file_tail((*C.net_redex_file_t)(p), C.uint64_t(from), &out)
	return unsafe.Pointer(out), int32(st)
}

// FileFree is net_redex_file_free on a raw pointer.
func FileFree(p unsafe.Pointer) int32 { return int32(C.net_redex_file_free((*C.net_redex_file_t)(p))) }

// TailNext is net_redex_tail_next on a raw pointer (no cancellation token;
// the message comes from the call's net_error_t).
func TailNext(p unsafe.Pointer, timeoutMs uint32) (uint64, []byte, int32, string) {
	var seq C.uint64_t
	var payload C.net_bytes_t
	var e C.net_error_t
	st := C.net_redex_tail_next((*C.net_redex_tail_t)(p), C.uint32_t(timeoutMs), &seq, &payload, nil, &e)
	msg := errorMessage(&e)
	if st != C.NET_OK && st != C.NET_LAGGED {
		return 0, nil, int32(st), msg
	}
	return uint64(seq), take(&payload), int32(st), ""
}

// TailNextMarked waits forever in net_redex_tail_next, then sets left.
func TailNextMarked(p unsafe.Pointer, left Flag) int32 {
	return int32(C.tail_next_marked((*C.net_redex_tail_t)(p), left.p))
}

// TailFreeCheck frees the tail and reports whether left was already set
// when net_redex_tail_free returned (read in C, with no Go scheduling
// between), and the free's status.
func TailFreeCheck(p unsafe.Pointer, left Flag) (bool, int32) {
	var st C.net_status_t
	set := C.tail_free_check((*C.net_redex_tail_t)(p), left.p, &st) != 0
	return set, int32(st)
}

// TailFree is net_redex_tail_free on a raw pointer.
func TailFree(p unsafe.Pointer) int32 { return int32(C.net_redex_tail_free((*C.net_redex_tail_t)(p))) }

// ---- CortEX ------------------------------------------------------------------

// ModelCountWhere is net_model_count_where (every row) on a raw pointer.
func ModelCountWhere(p unsafe.Pointer) int32 {
	var n C.uint64_t
	return int32(C.net_model_count_where((*C.net_model_t)(p), nil, 0, &n))
}

// ModelWaitForSeq is net_model_wait_for_seq on a raw pointer.
func ModelWaitForSeq(p unsafe.Pointer, seq uint64, timeoutMs uint32) (int32, string) {
	var e C.net_error_t
	st := C.net_model_wait_for_seq((*C.net_model_t)(p), C.uint64_t(seq), C.uint32_t(timeoutMs), nil, &e)
	return int32(st), errorMessage(&e)
}

// ModelFree is net_model_free on a raw pointer.
func ModelFree(p unsafe.Pointer) int32 { return int32(C.net_model_free((*C.net_model_t)(p))) }

// WatchNext is net_model_watch_next on a raw pointer.
func WatchNext(p unsafe.Pointer, timeoutMs uint32) int32 {
	var rows C.net_bytes_t
	var missed C.uint64_t
	st := C.net_model_watch_next((*C.net_model_watch_t)(p), C.uint32_t(timeoutMs), &rows, &missed, nil, nil)
	C.net_bytes_free(&rows)
	return int32(st)
}

// WatchNextMarked waits forever in net_model_watch_next, then sets left.
func WatchNextMarked(p unsafe.Pointer, left Flag) int32 {
	return int32(C.watch_next_marked((*C.net_model_watch_t)(p), left.p))
}

// WatchFreeCheck is TailFreeCheck for a watch.
func WatchFreeCheck(p unsafe.Pointer, left Flag) (bool, int32) {
	var st C.net_status_t
	set := C.watch_free_check((*C.net_model_watch_t)(p), left.p, &st) != 0
	return set, int32(st)
}

// WatchFree is net_model_watch_free on a raw pointer.
func WatchFree(p unsafe.Pointer) int32 {
	return int32(C.net_model_watch_free((*C.net_model_watch_t)(p)))
}

// ---- mesh --------------------------------------------------------------------

// MeshNodeID is net_mesh_node_id on a raw pointer.
func MeshNodeID(p unsafe.Pointer) int32 {
	var id C.uint64_t
	return int32(C.net_mesh_node_id((*C.net_mesh_t)(p), &id))
}

// MeshFree is net_mesh_free on a raw pointer.
func MeshFree(p unsafe.Pointer) int32 { return int32(C.net_mesh_free((*C.net_mesh_t)(p))) }

// MeshRecvMarked waits forever in net_mesh_recv_next, then sets left.
func MeshRecvMarked(p unsafe.Pointer, left Flag) int32 {
	return int32(C.mesh_recv_marked((*C.net_mesh_t)(p), left.p))
}

// MeshFreeCheck is TailFreeCheck for a node.
func MeshFreeCheck(p unsafe.Pointer, left Flag) (bool, int32) {
	var st C.net_status_t
	set := C.mesh_free_check((*C.net_mesh_t)(p), left.p, &st) != 0
	return set, int32(st)
}

// StreamSend is net_mesh_stream_send of no events on a raw pointer.
func StreamSend(p unsafe.Pointer) int32 {
	var ev C.net_slice_t
	return int32(C.net_mesh_stream_send((*C.net_mesh_stream_t)(p), &ev, 0))
}

// StreamFree is net_mesh_stream_free on a raw pointer.
func StreamFree(p unsafe.Pointer) int32 {
	return int32(C.net_mesh_stream_free((*C.net_mesh_stream_t)(p)))
}

// ---- misc --------------------------------------------------------------------

// ChannelHash calls net_channel_hash with no wrapper around it (no thread
// lock, no closure): the bare cgo cost, for the benchmarks.
func ChannelHash(name []byte) (uint16, int32) {
	var out C.uint16_t
	st := C.net_channel_hash(ptr8(name), C.size_t(len(name)), &out)
	return uint16(out), int32(st)
}

// StatusName is net_status_name(s).
func StatusName(s int32) string { return C.GoString(C.net_status_name(C.int32_t(s))) }
