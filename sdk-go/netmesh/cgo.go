package netmesh

/*
// How libnet is found (its #cgo lines) is chosen by build tag:
// cgo_bundled.go (default: the static libnet.a shipped in the released
// module) or cgo_pkgconfig.go (-tags netmesh_pkgconfig: a system libnet).
#include <stdlib.h>
#include <net.h>
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"unsafe"
)

// WantABIVersion is the libnet ABI version (NET_ABI_VERSION) this SDK was
// written for.
const WantABIVersion uint32 = 2

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

// waitForever is NET_WAIT_FOREVER, the timeout_ms that waits as long as it
// takes. Blocking calls pass it and leave every other way of stopping to the
// context (through a cancellation token) and to Close (libnet's free wakes
// every call blocked on the handle).
const waitForever = uint32(C.NET_WAIT_FOREVER)

// cBytes copies n bytes at p into Go memory. The length is a size_t end to
// end (C.GoBytes takes a C int and would truncate above 2 GiB). A nil p or a
// zero n gives an empty, non-nil slice.
func cBytes(p unsafe.Pointer, n C.size_t) []byte {
	if p == nil || n == 0 {
		return []byte{}
	}
	out := make([]byte, n)
	copy(out, unsafe.Slice((*byte)(p), n))
	return out
}

// takeBytes copies a libnet buffer into Go memory and releases it with
// net_bytes_free (which also zeroes it).
func takeBytes(b *C.net_bytes_t) []byte {
	out := cBytes(unsafe.Pointer(b.ptr), b.len)
	C.net_bytes_free(b)
	return out
}

// blocking runs one blocking libnet call (one that takes a net_cancel_t and
// a net_error_t last) under ctx, and turns its status into an error:
//
//   - A ctx that is already done returns its cancellation error at once,
//     without calling libnet.
//   - A ctx that can be done gets a net_cancel_t for this call only;
//     context.AfterFunc runs net_cancel_cancel on its own goroutine when ctx
//     is done, and is stopped (and waited for) when the call returns, before
//     the token is freed. A cancelled call returns NET_ERR_CANCELLED promptly,
//     reported as an *Error matching both ErrCancelled and ctx.Err()
//     (context.Canceled or context.DeadlineExceeded).
//   - A ctx that can never be done (context.Background()) passes no token.
//
// The failure detail comes from the call's own net_error_t, not from the
// thread-local net_last_error_message, so the goroutine is not locked to its
// thread. Positive statuses (NET_TIMEOUT, NET_END, NET_LAGGED) are returned
// with a nil error.
func blocking(ctx context.Context, op string, f func(cancel *C.net_cancel_t, errOut *C.net_error_t) C.net_status_t) (Status, error) {
	if abiErr != nil {
		return 0, abiErr
	}
	if ctx == nil {
		return 0, invalidArgument(op, "nil context")
	}
	if err := ctx.Err(); err != nil {
		return StatusCancelled, &Error{Op: op, Status: StatusCancelled,
			Message: "the context was done before the call started", ctxErr: err}
	}
	var token *C.net_cancel_t
	if ctx.Done() != nil {
		var errOut C.net_error_t
		if st := C.net_cancel_new(&token); st != C.NET_OK {
			return Status(st), &Error{Op: "net_cancel_new", Status: Status(st), Message: "could not make a cancellation token"}
		}
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			C.net_cancel_cancel(token)
			close(fired)
		})
		st := f(token, &errOut)
		if !stop() {
			<-fired // the token was (or is being) cancelled: let that finish first
		}
		err := statusError(op, st, &errOut)
		if st == C.NET_ERR_CANCELLED {
			var was C.bool
			if C.net_cancel_is_cancelled(token, &was) == C.NET_OK && bool(was) {
				var e *Error
				if errors.As(err, &e) {
					e.ctxErr = ctx.Err()
				}
			}
		}
		C.net_cancel_free(token)
		return Status(st), err
	}
	var errOut C.net_error_t
	st := f(nil, &errOut)
	return Status(st), statusError(op, st, &errOut)
}

// statusError is the error of a blocking call's status, with the message it
// wrote to its net_error_t (which is then cleared); nil for st >= 0.
func statusError(op string, st C.net_status_t, errOut *C.net_error_t) error {
	if st >= 0 {
		C.net_error_clear(errOut)
		return nil
	}
	msg := string(cBytes(unsafe.Pointer(errOut.message.ptr), errOut.message.len))
	C.net_error_clear(errOut)
	return &Error{Op: op, Status: Status(st), Message: msg}
}

// invalidArgument is a Go-side argument error, shaped like libnet's own.
func invalidArgument(op, msg string) error {
	if abiErr != nil {
		return abiErr
	}
	return &Error{Op: op, Status: StatusInvalidArgument, Message: msg}
}
