package netmesh

/*
#include <net.h>
*/
import "C"

import (
	"errors"
	"sync"
	"sync/atomic"
	"unsafe"
)

// handle is the lifetime of one libnet handle inside a Go value.
//
// p is the live C pointer, or nil once closing has begun; it is only accessed
// atomically and no Go lock is ever held across a C call. Calls load p, call
// libnet with it and then runtime.KeepAlive their Go value (so its finalizer
// cannot run under them); libnet's per-handle guard makes a call racing the
// free either finish before the free proceeds or return
// NET_ERR_SHUTTING_DOWN, and the free wakes every call blocked on the handle.
//
// Close frees once: concurrent and later Close calls wait for that free and
// return its outcome. A finalizer never frees on the finalizer goroutine (a
// free may wait up to 5 s for calls in flight, or drain a bus): it logs a
// leak warning and hands the free to a new goroutine.
type handle struct {
	p    unsafe.Pointer
	once sync.Once
	err  error
}

func newHandle(p unsafe.Pointer) handle { return handle{p: p} }

// load is the live C pointer, or nil once closing has begun.
func (h *handle) load() unsafe.Pointer { return atomic.LoadPointer(&h.p) }

// close runs free on the pointer once and returns its error to every caller.
func (h *handle) close(free func(p unsafe.Pointer) error) error {
	h.once.Do(func() {
		if p := atomic.SwapPointer(&h.p, nil); p != nil {
			h.err = free(p)
		}
	})
	return h.err
}

// leaked is the finalizer's half of close: the value was garbage collected
// without Close. It returns at once; a new goroutine logs the leak (through
// the logger SetLogger chose) and frees the handle.
func (h *handle) leaked(what string, free func(p unsafe.Pointer) error) {
	p := atomic.SwapPointer(&h.p, nil)
	if p == nil {
		return
	}
	go func() {
		logger().Warn("netmesh: a " + what + " was garbage collected without Close; freeing it in the background (call Close when done with it)")
		if err := free(p); err != nil {
			logger().Warn("netmesh: freeing a leaked "+what+" failed", "err", err)
		}
	}()
}

// freeStatus runs one net_*_free and turns its status into an error; the
// message of a failed free (NET_ERR_BUSY, a failed final sync) is the
// thread-local one, read on the same OS thread.
func freeStatus(op string, free func() C.net_status_t) error {
	return check(op, free)
}

// joinErrors is a or b when only one is non-nil (keeping its type for
// callers that assert it), both joined otherwise.
func joinErrors(a, b error) error {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return errors.Join(a, b)
}
