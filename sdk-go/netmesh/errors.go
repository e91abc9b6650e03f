package netmesh

/*
#include <net.h>
*/
import "C"

import (
	"errors"
	"fmt"
)

// Status is a libnet status code (net_status_t): NET_OK (0) for success,
// small positive values (NET_TIMEOUT, NET_END, NET_LAGGED) for non-error
// outcomes,
// negative NET_ERR_* values for errors.
//
// Status implements error so that the Err* sentinels (errors_gen.go) work with
// errors.Is and errors.As; only negative statuses are ever returned as
// errors.
type Status int32

// The Status* constants (one per status code of net.h), the Err* sentinels
// (one per error status, for errors.Is) and the table behind String and
// Error are generated from include/net.h into errors_gen.go.

// ErrLagged matches the [*LaggedError] a [RedexTail] returns when entries it
// had not yet read were removed by retention. It is not a failure: the tail
// goes on with the oldest entry still there.
const ErrLagged = StatusLagged

// String is the C name of the status, e.g. "NET_ERR_TOKEN_EXPIRED".
func (s Status) String() string {
	if info, ok := statusInfos[s]; ok {
		return info.name
	}
	// A code this SDK predates: ask libnet (net_status_name), which also
	// knows codes added after this SDK was written.
	name := C.GoString(C.net_status_name(C.int32_t(s)))
	if name == "NET_UNKNOWN_STATUS" {
		return fmt.Sprintf("NET_UNKNOWN_STATUS(%d)", int32(s))
	}
	return name
}

// Error describes the status, e.g. "netmesh: token expired (NET_ERR_TOKEN_EXPIRED)".
func (s Status) Error() string {
	if info, ok := statusInfos[s]; ok {
		return "netmesh: " + info.text + " (" + info.name + ")"
	}
	return fmt.Sprintf("netmesh: unknown status %d", int32(s))
}

// Error is a failed libnet call: the function, its status and the detail
// libnet recorded (the call's net_error_t for blocking calls, else
// net_last_error_message on the calling thread).
//
// errors.Is(err, ErrX) matches on Status; errors.As(err, &e) with
// e *Error gives the details. A blocking call stopped by its context is an
// *Error with Status StatusCancelled that also matches the context's error:
// errors.Is(err, context.Canceled) or errors.Is(err, context.DeadlineExceeded).
type Error struct {
	Op      string // the C function that failed, e.g. "net_identity_sign"
	Status  Status // the negative status it returned
	Message string // libnet's detail (may be empty)

	ctxErr error // for StatusCancelled: the context error that cancelled the call
}

func (e *Error) Error() string {
	s := "netmesh: " + e.Op + ": "
	if info, ok := statusInfos[e.Status]; ok {
		s += info.text + " (" + info.name + ")"
	} else {
		s += fmt.Sprintf("status %d", int32(e.Status))
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.ctxErr != nil {
		s += " (" + e.ctxErr.Error() + ")"
	}
	return s
}

// Unwrap returns the Status, so that errors.Is(err, ErrX) works.
func (e *Error) Unwrap() error { return e.Status }

// Is reports whether target is the context error (context.Canceled or
// context.DeadlineExceeded) that cancelled this call; matching on Status goes
// through Unwrap.
func (e *Error) Is(target error) bool {
	return e.ctxErr != nil && errors.Is(e.ctxErr, target)
}
