package netmesh

/*
#include <net.h>
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"unsafe"
)

// LaggedError is what RedexTail.Next returns when entries the tail had not
// yet read were removed by retention before it got to them: it missed
// sequence numbers [MissedFrom, ResumeAt), and its next entry is ResumeAt or
// later. It is a notice, not a failure: keep calling Next.
//
// errors.Is(err, ErrLagged) matches it; errors.As(err, &lag) gives the
// range.
type LaggedError struct {
	MissedFrom uint64 // first missed sequence number (the tail's position before)
	ResumeAt   uint64 // one past the last missed one: where delivery resumes
}

func (e *LaggedError) Error() string {
	return fmt.Sprintf("netmesh: tail lagged: sequence numbers [%d, %d) were removed by retention before they were read; resuming at %d",
		e.MissedFrom, e.ResumeAt, e.ResumeAt)
}

// Unwrap returns StatusLagged (ErrLagged), so that errors.Is(err, ErrLagged)
// works.
func (e *LaggedError) Unwrap() error { return StatusLagged }

// RedexTail is a reader of a RedEX file from a given sequence number on:
// it backfills the entries already there, then follows new appends, with no
// gap and no duplicate.
//
// It owns a libnet handle (net_redex_tail_t). Close releases it and wakes a
// Next blocked on it. A finalizer frees a tail garbage collected unclosed
// (on another goroutine, with a warning logged).
// A tail is safe for concurrent use, Close included, but it is one reader:
// concurrent Next calls share its entries between them (and the MissedFrom
// of a LaggedError is then only approximate).
type RedexTail struct {
	h      handle        // *C.net_redex_tail_t
	file   *RedexFile    // keeps the file (and so the tail's source) reachable
	pos    atomic.Uint64 // next sequence number this reader expects
	closed chan struct{} // closed by Close: stops Entries goroutines
}

func freeRedexTail(p unsafe.Pointer) error {
	return freeStatus("net_redex_tail_free", func() C.net_status_t {
		return C.net_redex_tail_free((*C.net_redex_tail_t)(p))
	})
}

func newRedexTail(p *C.net_redex_tail_t, f *RedexFile, from uint64) *RedexTail {
	t := &RedexTail{h: newHandle(unsafe.Pointer(p)), file: f, closed: make(chan struct{})}
	t.pos.Store(from)
	runtime.SetFinalizer(t, func(t *RedexTail) { t.h.leaked("netmesh.RedexTail", freeRedexTail) })
	return t
}

func (t *RedexTail) handle(op string) (*C.net_redex_tail_t, error) {
	if t == nil {
		return nil, invalidArgument(op, "tail is nil")
	}
	p := (*C.net_redex_tail_t)(t.h.load())
	if p == nil {
		return nil, shuttingDown(op, "tail has been closed")
	}
	return p, nil
}

// Position is the next sequence number the tail will deliver (or report
// missed).
func (t *RedexTail) Position() uint64 { return t.pos.Load() }

// Close frees the tail (net_redex_tail_free). A Next blocked on it returns
// io.EOF promptly, and Close returns only after that Next has left libnet.
// A Next called after Close began fails with ErrShuttingDown. Entries
// channels of the tail are closed. It returns the free's outcome: nil, or an
// error matching ErrBusy when calls were still running at libnet's 5 s
// deadline. Close is idempotent and safe to call concurrently; every call
// returns the one free's outcome.
func (t *RedexTail) Close() error {
	if t == nil {
		return nil
	}
	runtime.SetFinalizer(t, nil)
	return t.h.close(func(p unsafe.Pointer) error {
		close(t.closed)
		return freeRedexTail(p)
	})
}

// Next waits for the next entry and returns it. Other outcomes:
//
//   - a *LaggedError (errors.Is(err, ErrLagged)) when retention removed
//     entries this tail had not read; the tail goes on, the next call
//     returns the entry at LaggedError.ResumeAt or later;
//   - io.EOF when the file was closed, or the tail was closed while this
//     call was waiting; every later call also ends (io.EOF, or
//     ErrShuttingDown once the tail itself is closed);
//   - an *Error matching ErrCancelled and ctx.Err() (errors.Is(err,
//     context.Canceled) or context.DeadlineExceeded) when ctx is cancelled or
//     its deadline passes; the tail is unaffected (nothing was consumed) and
//     can be read again. An already-done ctx returns at once;
//   - an error matching ErrShuttingDown when called after Close began (or
//     racing it, before the call got into libnet);
//   - ErrRedexIO when an entry cannot be read from disk.
//
// Next makes one call into libnet that waits until one of these happens: a
// ctx that can be done is tied to a libnet cancellation token for the call,
// cancelled from Go when ctx is done, so nothing polls.
func (t *RedexTail) Next(ctx context.Context) (Entry, error) {
	const op = "net_redex_tail_next"
	if ctx == nil {
		return Entry{}, invalidArgument(op, "nil context")
	}
	p, err := t.handle(op)
	if err != nil {
		return Entry{}, err
	}
	defer runtime.KeepAlive(t)
	var seq C.uint64_t
	var payload C.net_bytes_t
	st, err := blocking(ctx, op, func(cancel *C.net_cancel_t, errOut *C.net_error_t) C.net_status_t {
		return C.net_redex_tail_next(p, C.uint32_t(waitForever), &seq, &payload, cancel, errOut)
	})
	switch {
	case err != nil:
		return Entry{}, err
	case st == StatusOK:
		t.pos.Store(uint64(seq) + 1)
		return Entry{Seq: uint64(seq), Payload: takeBytes(&payload)}, nil
	case st == StatusLagged:
		C.net_bytes_free(&payload) // empty, released for form's sake
		from := t.pos.Swap(uint64(seq))
		return Entry{}, &LaggedError{MissedFrom: from, ResumeAt: uint64(seq)}
	case st == StatusEnd:
		return Entry{}, io.EOF
	default: // NET_TIMEOUT cannot come back from a NET_WAIT_FOREVER call
		return Entry{}, &Error{Op: op, Status: StatusInternal, Message: fmt.Sprintf("unexpected status %v", st)}
	}
}

// TailEvent is one item of RedexTail.Entries: an entry (Err == nil), a
// *LaggedError notice (the stream goes on), or a final error after which
// the channel is closed.
type TailEvent struct {
	Entry Entry
	Err   error
}

// Entries streams the tail on a channel:
//
//	for ev := range tail.Entries(ctx) {
//		var lag *netmesh.LaggedError
//		switch {
//		case errors.As(ev.Err, &lag): // missed lag.MissedFrom..lag.ResumeAt, going on
//		case ev.Err != nil: // a final error; the channel closes after it
//		default: use(ev.Entry)
//		}
//	}
//
// The channel is closed, without an event, when the file or the tail is
// closed (Next's io.EOF) or when ctx is done (check ctx.Err() to tell);
// after an event carrying any other error it is closed too. The goroutine
// feeding it exits promptly when ctx is done (its Next is cancelled inside
// libnet) or when the tail is closed, even if nobody reads the channel any
// more. The
// tail is not closed by the stream ending: Close it yourself (a stream whose
// tail is never closed, under a context that is never done, runs for as
// long as the file stays open).
func (t *RedexTail) Entries(ctx context.Context) <-chan TailEvent {
	if ctx == nil || t == nil {
		_, err := t.Next(ctx) // the invalid-argument error
		ch := make(chan TailEvent, 1)
		ch <- TailEvent{Err: err}
		close(ch)
		return ch
	}
	ch := make(chan TailEvent)
	go func() {
		defer close(ch)
		for {
			e, err := t.Next(ctx)
			var lag *LaggedError
			switch {
			case err == nil, errors.As(err, &lag):
				// delivered below; the stream goes on
			case errors.Is(err, io.EOF), errors.Is(err, ErrShuttingDown), errors.Is(err, ErrCancelled), ctx.Err() != nil:
				return
			}
			select {
			case ch <- TailEvent{Entry: e, Err: err}:
			case <-ctx.Done():
				return
			case <-t.closed:
				return
			}
			if err != nil && lag == nil {
				return
			}
		}
	}()
	return ch
}
