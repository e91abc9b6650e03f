package netmesh

/*
#cgo pkg-config: net
#include <stdlib.h>
#include <net.h>
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// WantABIVersion is the libnet ABI version (NET_ABI_VERSION) this SDK was
// written for.
const WantABIVersion uint32 = 1

// Sizes of the fixed-length values crossing the ABI.
const (
	SeedLen      = C.NET_SEED_LEN       // ed25519 seed
	PublicKeyLen = C.NET_PUBLIC_KEY_LEN // ed25519 public key (and entity id)
	SignatureLen = C.NET_SIGNATURE_LEN  // ed25519 signature
	TokenSize    = C.NET_TOKEN_SIZE     // serialized permission token
	EnvelopeSize = C.NET_ENVELOPE_SIZE  // serialized identity envelope (v1)
	ChainLinkLen = C.NET_CHAIN_LINK_LEN // chain link an envelope is bound to
	X25519KeyLen = C.NET_X25519_KEY_LEN // X25519 key, secret or public
)

// ABIMismatchError reports that the loaded libnet (or the header this package
// was compiled against) implements another ABI version than this SDK was
// written for. Every call returns it when the versions differ.
type ABIMismatchError struct {
	Want    uint32 // the version this SDK was written for (WantABIVersion)
	Header  uint32 // NET_ABI_VERSION in the net.h compiled against
	Library uint32 // net_abi_version() of the loaded libnet
}

func (e *ABIMismatchError) Error() string {
	return fmt.Sprintf("netmesh: libnet ABI version mismatch: this Go SDK was written for ABI %d, "+
		"but net.h declares NET_ABI_VERSION %d and the loaded libnet reports net_abi_version() = %d; "+
		"install a libnet and SDK of matching versions", e.Want, e.Header, e.Library)
}

// abiErr is non-nil when the ABI check made at init failed.
var abiErr = checkABI()

func checkABI() error {
	header := uint32(C.NET_ABI_VERSION)
	library := uint32(C.net_abi_version())
	if header != WantABIVersion || library != WantABIVersion {
		return &ABIMismatchError{Want: WantABIVersion, Header: header, Library: library}
	}
	return nil
}

// CheckABI returns nil when the loaded libnet implements the ABI this SDK was
// written for, else the *ABIMismatchError every other call also returns.
func CheckABI() error { return abiErr }

// Version is the version of the loaded libnet ("MAJOR.MINOR.PATCH").
func Version() string { return C.GoString(C.net_version()) }

// ABIVersion is the ABI version the loaded libnet implements.
func ABIVersion() uint32 { return uint32(C.net_abi_version()) }

// call runs one libnet call and turns its status into an error. The call and
// the read of net_last_error_message (a thread-local) happen with the
// goroutine locked to its OS thread, so the message is the one for this
// call. Positive statuses (NET_TIMEOUT, NET_END, NET_LAGGED) are returned
// as-is with a nil error.
func call(op string, f func() C.net_status_t) (Status, error) {
	if abiErr != nil {
		return 0, abiErr
	}
	runtime.LockOSThread()
	st := f()
	if st >= 0 {
		runtime.UnlockOSThread()
		return Status(st), nil
	}
	msg := C.GoString(C.net_last_error_message())
	runtime.UnlockOSThread()
	return Status(st), &Error{Op: op, Status: Status(st), Message: msg}
}

// check is call for the calls whose only non-error outcome is NET_OK.
func check(op string, f func() C.net_status_t) error {
	_, err := call(op, f)
	return err
}

// bytesPtr is the C view of b: NULL for a nil slice, else its first byte (a
// non-NULL pointer even for an empty, non-nil slice).
func bytesPtr(b []byte) *C.uint8_t {
	return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(b)))
}

// stringPtr is the C view of s's bytes (not NUL-terminated).
func stringPtr(s string) *C.uint8_t {
	return (*C.uint8_t)(unsafe.Pointer(unsafe.StringData(s)))
}

// takeBytes copies a libnet buffer into Go memory and releases it with
// net_bytes_free (which also zeroes it).
func takeBytes(b *C.net_bytes_t) []byte {
	out := C.GoBytes(unsafe.Pointer(b.ptr), C.int(b.len))
	C.net_bytes_free(b)
	return out
}

// invalidArgument is a Go-side argument error, shaped like libnet's own.
func invalidArgument(op, msg string) error {
	if abiErr != nil {
		return abiErr
	}
	return &Error{Op: op, Status: StatusInvalidArgument, Message: msg}
}
