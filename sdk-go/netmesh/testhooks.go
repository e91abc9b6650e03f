package netmesh

/*
#include <stdlib.h>
#include <net.h>

// net_redex_tail_next, then *left = 1 (C-side, right after libnet returned).
static net_status_t testhook_tail_next_mark(const net_redex_tail_t *tail, uint32_t timeout_ms,
                                            uint64_t *seq, net_bytes_t *payload, int *left) {
	net_status_t st = net_redex_tail_next(tail, timeout_ms, seq, payload);
	__atomic_store_n(left, 1, __ATOMIC_SEQ_CST);
	return st;
}

// net_redex_tail_free, then *left as seen the moment the free returned.
static int testhook_tail_free_check(net_redex_tail_t *tail, int *left) {
	net_redex_tail_free(tail);
	return __atomic_load_n(left, __ATOMIC_SEQ_CST);
}

static int testhook_load_flag(int *flag) { return __atomic_load_n(flag, __ATOMIC_SEQ_CST); }
*/
import "C"

import (
	"runtime"
	"sync/atomic"
	"unsafe"
)

// The hooks below exist for this package's own tests (cgo cannot be used in
// _test.go files). They are unexported and never used by the SDK itself.

// rawIdentity is the C pointer behind an identity, kept past Close so that a
// test can call libnet through it after the free.
type rawIdentity struct{ p *C.net_identity_t }

// rawHandleForTest captures id's current C pointer (nil once closed).
func rawHandleForTest(id *Identity) rawIdentity { return rawIdentity{id.load()} }

// isNil reports whether no pointer was captured.
func (r rawIdentity) isNil() bool { return r.p == nil }

// originHash calls net_identity_origin_hash on the raw pointer, bypassing the
// Go-side closed check, and returns libnet's status.
func (r rawIdentity) originHash() (uint64, Status, string) {
	var out C.uint64_t
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	st := C.net_identity_origin_hash(r.p, &out)
	msg := ""
	if st < 0 {
		msg = C.GoString(C.net_last_error_message())
	}
	return uint64(out), Status(st), msg
}

// sign calls net_identity_sign on the raw pointer, bypassing the Go-side
// closed check.
func (r rawIdentity) sign(msg []byte) ([]byte, Status) {
	var out C.net_bytes_t
	st := C.net_identity_sign(r.p, bytesPtr(msg), C.size_t(len(msg)), &out)
	if st < 0 {
		return nil, Status(st)
	}
	return takeBytes(&out), Status(st)
}

// free calls net_identity_free on the raw pointer directly.
func (r rawIdentity) free() { C.net_identity_free(r.p) }

// rawChannelHash calls net_channel_hash with no Go wrapper around it (no
// thread lock, no closure): the bare cgo cost, for the benchmarks.
func rawChannelHash(name []byte) (uint16, Status) {
	var out C.uint16_t
	st := C.net_channel_hash((*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(name))), C.size_t(len(name)), &out)
	return uint16(out), Status(st)
}

// statusNameFromLibnet is net_status_name(s), for the test that checks the
// SDK's status table against libnet's names.
func statusNameFromLibnet(s Status) string {
	return C.GoString(C.net_status_name(C.int32_t(s)))
}

// lastError is net_last_error_message after a failed raw call (the caller
// holds its OS thread).
func lastError(st C.net_status_t) string {
	if st < 0 {
		return C.GoString(C.net_last_error_message())
	}
	return ""
}

// rawRedex is the C pointer behind a Redex, kept past Close.
type rawRedex struct{ p *C.net_redex_t }

func rawRedexHandleForTest(r *Redex) rawRedex {
	return rawRedex{(*C.net_redex_t)(atomic.LoadPointer(&r.h))}
}

func (r rawRedex) isNil() bool { return r.p == nil }

// openFile calls net_redex_open_file on the raw pointer.
func (r rawRedex) openFile(name, config string) (rawRedexFile, Status, string) {
	var out *C.net_redex_file_t
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var cfg *C.uint8_t
	if config != "" {
		cfg = stringPtr(config)
	}
	st := C.net_redex_open_file(r.p, stringPtr(name), C.size_t(len(name)), cfg, C.size_t(len(config)), &out)
	return rawRedexFile{out}, Status(st), lastError(st)
}

func (r rawRedex) free() { C.net_redex_free(r.p) }

// rawRedexFile is the C pointer behind a RedexFile, kept past Close.
type rawRedexFile struct{ p *C.net_redex_file_t }

func rawFileHandleForTest(f *RedexFile) rawRedexFile {
	return rawRedexFile{(*C.net_redex_file_t)(atomic.LoadPointer(&f.h))}
}

func (f rawRedexFile) isNil() bool { return f.p == nil }

func (f rawRedexFile) append(payload []byte) (uint64, Status, string) {
	var seq C.uint64_t
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	st := C.net_redex_file_append(f.p, bytesPtr(payload), C.size_t(len(payload)), &seq)
	return uint64(seq), Status(st), lastError(st)
}

func (f rawRedexFile) nextSeq() (uint64, Status, string) {
	var out C.uint64_t
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	st := C.net_redex_file_next_seq(f.p, &out)
	return uint64(out), Status(st), lastError(st)
}

func (f rawRedexFile) tail(from uint64) (rawRedexTail, Status) {
	var out *C.net_redex_tail_t
	st := C.net_redex_file_tail(f.p, C.uint64_t(from), &out)
	return rawRedexTail{out}, Status(st)
}

func (f rawRedexFile) free() { C.net_redex_file_free(f.p) }

// rawRedexTail is the C pointer behind a RedexTail, kept past Close.
type rawRedexTail struct{ p *C.net_redex_tail_t }

func rawTailHandleForTest(t *RedexTail) rawRedexTail {
	return rawRedexTail{(*C.net_redex_tail_t)(atomic.LoadPointer(&t.h))}
}

func (t rawRedexTail) isNil() bool { return t.p == nil }

func (t rawRedexTail) next(timeoutMs uint32) (uint64, []byte, Status, string) {
	var seq C.uint64_t
	var payload C.net_bytes_t
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	st := C.net_redex_tail_next(t.p, C.uint32_t(timeoutMs), &seq, &payload)
	if st != C.NET_OK && st != C.NET_LAGGED {
		return 0, nil, Status(st), lastError(st)
	}
	return uint64(seq), takeBytes(&payload), Status(st), ""
}

func (t rawRedexTail) free() { C.net_redex_tail_free(t.p) }

// cFlag is an int in C memory, set and read atomically by the C helpers.
type cFlag struct{ p *C.int }

func newCFlag() cFlag {
	p := (*C.int)(C.calloc(1, C.size_t(unsafe.Sizeof(C.int(0)))))
	return cFlag{p}
}

func (f cFlag) load() bool { return C.testhook_load_flag(f.p) != 0 }
func (f cFlag) release()   { C.free(unsafe.Pointer(f.p)) }

// nextMarked is net_redex_tail_next followed, in C, by setting left.
func (t rawRedexTail) nextMarked(timeoutMs uint32, left cFlag) Status {
	var seq C.uint64_t
	var payload C.net_bytes_t
	st := C.testhook_tail_next_mark(t.p, C.uint32_t(timeoutMs), &seq, &payload, left.p)
	if st == C.NET_OK || st == C.NET_LAGGED {
		C.net_bytes_free(&payload)
	}
	return Status(st)
}

// freeCheck frees the tail and reports whether left was already set when
// net_redex_tail_free returned (read in C, with no Go scheduling between).
func (t rawRedexTail) freeCheck(left cFlag) bool {
	return C.testhook_tail_free_check(t.p, left.p) != 0
}
