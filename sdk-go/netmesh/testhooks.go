package netmesh

/*
#include <net.h>
*/
import "C"

import (
	"runtime"
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
