package netmesh

/*
#include <net.h>
*/
import "C"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"unsafe"
)

// CortEX: folded, queryable state over RedEX logs. One generic model type,
// Model[R, F] over libnet's net_model_* calls, drives every kind; a kind is a
// thin definition adding its typed rows (R), filters (F) and its own writes:
// Tasks (cortex_tasks.go) and Memories (cortex_memories.go), byte-compatible
// with Net v0.11. A model opens on a Redex manager (channel "cortex/tasks" /
// "cortex/memories"); writes append an event and return its RedEX sequence
// number, and a fold thread inside libnet applies events to the in-memory
// state that queries read.

// ErrorPolicy is what a model's fold does when an event fails to apply.
type ErrorPolicy string

const (
	// PolicyStop halts the fold (the default): writes are refused and
	// WaitForSeq fails with ErrCortexHalted.
	PolicyStop ErrorPolicy = "stop"
	// PolicyLogAndContinue skips the event and goes on.
	PolicyLogAndContinue ErrorPolicy = "log_and_continue"
)

// addTo sets cfg["policy"] (configuration JSON) unless p is "".
func (p ErrorPolicy) addTo(cfg map[string]any) error {
	switch p {
	case "":
	case PolicyStop, PolicyLogAndContinue:
		cfg["policy"] = string(p)
	default:
		return fmt.Errorf(`policy: expected "stop" or "log_and_continue", got %q`, string(p))
	}
	return nil
}

// openInputs is what every open on a Redex starts with: the configuration
// JSON (marshal's error as ErrCortexInvalidConfig) and the Redex handle.
func openInputs(op string, r *Redex, marshal func() ([]byte, error)) ([]byte, *C.net_redex_t, error) {
	js, err := marshal()
	if err != nil {
		if abiErr != nil {
			return nil, nil, abiErr
		}
		return nil, nil, &Error{Op: op, Status: StatusCortexInvalidConfig, Message: err.Error()}
	}
	rp, err := r.handle(op)
	if err != nil {
		return nil, nil, err
	}
	return js, rp, nil
}

// StartPosition is where a model's fold starts reading its log.
type StartPosition struct {
	kind uint8
	seq  uint64
}

// StartBeginning replays the whole log (the default).
var StartBeginning = StartPosition{}

// StartLive skips the existing log and folds only new events.
var StartLive = StartPosition{kind: 1}

// StartFromSeq starts at RedEX sequence number seq.
func StartFromSeq(seq uint64) StartPosition { return StartPosition{kind: 2, seq: seq} }

// ModelConfig is how a model opens. The zero value is a memory-only log,
// PolicyStop, StartBeginning and the default watch capacity.
type ModelConfig struct {
	// File configures the model's RedEX file (persistence, fsync, retention,
	// repair).
	File FileConfig
	// Policy is the fold's error policy ("" = PolicyStop).
	Policy ErrorPolicy
	// Start is where the fold starts.
	Start StartPosition
	// ChangesCapacity is how many changes a watch may fall behind before it
	// gets a *WatchLaggedError (0 = libnet's default, 4096).
	ChangesCapacity uint64
}

func (c ModelConfig) marshal() ([]byte, error) {
	file, err := c.File.marshal()
	if err != nil {
		return nil, err
	}
	cfg := map[string]any{}
	if len(file) > 0 {
		if err := json.Unmarshal(file, &cfg); err != nil {
			return nil, err
		}
	}
	if err := c.Policy.addTo(cfg); err != nil {
		return nil, err
	}
	switch c.Start.kind {
	case 1:
		cfg["start"] = "live"
	case 2:
		cfg["start"] = map[string]uint64{"from_seq": c.Start.seq}
	}
	if c.ChangesCapacity != 0 {
		cfg["changes_capacity"] = c.ChangesCapacity
	}
	if len(cfg) == 0 {
		return nil, nil
	}
	return json.Marshal(cfg)
}

// Progress is where a model's fold is. AppliedThroughSeq is the read-your-
// writes watermark (every event up to it applied; nil before the first);
// FoldedThroughSeq the last event attempted; Running is false once the fold
// stopped; Errors and LastError count events that failed to apply; AppSeq is
// the sequence the next write carries in its EventMeta.
type Progress struct {
	AppliedThroughSeq *uint64 `json:"applied_through_seq"`
	FoldedThroughSeq  *uint64 `json:"folded_through_seq"`
	Running           bool    `json:"running"`
	Errors            uint64  `json:"errors"`
	LastError         *string `json:"last_error"`
	AppSeq            uint64  `json:"app_seq"`
}

// ModelSnapshot is a model's state as of LastSeq (the RedEX sequence of the
// last event it contains; HasLastSeq false for an empty log), in Net
// v0.11's postcard form.
type ModelSnapshot struct {
	Data       []byte
	LastSeq    uint64
	HasLastSeq bool
}

// U64 returns a pointer to v, for the optional fields of filters.
func U64(v uint64) *uint64 { return &v }

// Bool returns a pointer to v.
func Bool(v bool) *bool { return &v }

// Str returns a pointer to v.
func Str(v string) *string { return &v }

// WatchLaggedError is returned by Watch.Next when the reader fell behind:
// Missed changes were coalesced, and the next rows include them all. It is
// not a failure.
type WatchLaggedError struct {
	Missed uint64
}

func (e *WatchLaggedError) Error() string {
	return fmt.Sprintf("netmesh: watch lagged: %d changes coalesced; the next rows include them", e.Missed)
}

// Unwrap makes errors.Is(err, ErrLagged) true.
func (e *WatchLaggedError) Unwrap() error { return StatusLagged }

// ModelKind is a CortEX model kind (NET_MODEL_*): which rows, filters and
// writes a model has.
type ModelKind uint32

// The model kinds.
const (
	ModelTasks    ModelKind = C.NET_MODEL_TASKS    // rows Task, filter TaskFilter, writes on Tasks
	ModelMemories ModelKind = C.NET_MODEL_MEMORIES // rows Memory, filter MemoryFilter, writes on Memories
)

// String is the kind's name: "tasks" or "memories".
func (k ModelKind) String() string {
	switch k {
	case ModelTasks:
		return "tasks"
	case ModelMemories:
		return "memories"
	}
	return fmt.Sprintf("ModelKind(%d)", uint32(k))
}

// Model is one CortEX model (net_model_t): folded, queryable state over one
// RedEX channel, whose rows decode into R and whose filters F encode (with
// json.Marshal) into the kind's filter JSON. Every kind is driven by these
// methods; a kind's own writes are on its definition (Tasks, Memories), which
// embeds *Model.
//
// It owns a libnet handle. Close stops the fold, closes the model's RedEX
// file and frees it; a finalizer does the same for a model garbage collected
// unclosed (on another goroutine, with a warning logged). Safe for concurrent
// use, Close included.
type Model[R, F any] struct {
	h    handle // *C.net_model_t
	kind ModelKind
	// lender is the handle of the NetDB that lent this model (nil for a
	// model opened on its own): it owns the model's handle, and this
	// reference keeps it reachable.
	lender *netdbCore
}

func freeModel(p unsafe.Pointer) error {
	return freeStatus("net_model_free", func() C.net_status_t { return C.net_model_free((*C.net_model_t)(p)) })
}

// openModel opens (snap == nil) or restores a model of kind on r.
func openModel[R, F any](kind ModelKind, r *Redex, origin uint64, cfg ModelConfig, snap *ModelSnapshot) (*Model[R, F], error) {
	op := "net_model_open"
	if snap != nil {
		op = "net_model_restore"
	}
	js, rp, err := openInputs(op, r, cfg.marshal)
	if err != nil {
		return nil, err
	}
	var cfgPtr *C.uint8_t
	if len(js) > 0 {
		cfgPtr = bytesPtr(js)
	}
	var out *C.net_model_t
	err = check(op, func() C.net_status_t {
		if snap == nil {
			return C.net_model_open(rp, C.uint32_t(kind), C.uint64_t(origin), cfgPtr, C.size_t(len(js)), &out)
		}
		return C.net_model_restore(rp, C.uint32_t(kind), C.uint64_t(origin), cfgPtr, C.size_t(len(js)),
			bytesPtr(snap.Data), C.size_t(len(snap.Data)), C.uint64_t(snap.LastSeq), C.bool(snap.HasLastSeq), &out)
	})
	runtime.KeepAlive(r)
	runtime.KeepAlive(js)
	if snap != nil {
		runtime.KeepAlive(snap.Data)
	}
	if err != nil {
		return nil, err
	}
	m := &Model[R, F]{h: newHandle(unsafe.Pointer(out)), kind: kind}
	runtime.SetFinalizer(m, func(m *Model[R, F]) { m.h.leaked("netmesh CortEX "+m.kind.String()+" model", freeModel) })
	// The handle says what it is; a mismatch would be a libnet bug.
	var got C.uint32_t
	if err := m.do("net_model_kind", func(p *C.net_model_t) C.net_status_t { return C.net_model_kind(p, &got) }); err != nil || ModelKind(got) != kind {
		_ = m.Close()
		if err == nil {
			err = &Error{Op: "net_model_kind", Status: StatusInternal,
				Message: fmt.Sprintf("opened a %v model, libnet says it is %v", kind, ModelKind(got))}
		}
		return nil, err
	}
	return m, nil
}

// openDefinition opens (snap == nil) or restores a model of kind on r, as
// openModel, and wraps it in its kind's definition (Tasks, Memories) with
// define.
func openDefinition[R, F, D any](kind ModelKind, r *Redex, origin uint64, cfg ModelConfig, snap *ModelSnapshot, define func(*Model[R, F]) *D) (*D, error) {
	m, err := openModel[R, F](kind, r, origin, cfg, snap)
	if err != nil {
		return nil, err
	}
	return define(m), nil
}

func (m *Model[R, F]) ptr(op string) (*C.net_model_t, error) {
	if m == nil {
		return nil, invalidArgument(op, "model is nil")
	}
	p := (*C.net_model_t)(m.h.load())
	if p == nil {
		return nil, shuttingDown(op, m.kind.String()+" model has been closed")
	}
	return p, nil
}

// do runs one call on the live handle.
func (m *Model[R, F]) do(op string, f func(p *C.net_model_t) C.net_status_t) error {
	p, err := m.ptr(op)
	if err != nil {
		return err
	}
	err = check(op, func() C.net_status_t { return f(p) })
	runtime.KeepAlive(m)
	return err
}

// write runs one write of the model's kind (op is its C name) and returns
// the event's RedEX sequence number.
func (m *Model[R, F]) write(op string, f func(p *C.net_model_t, seq *C.uint64_t) C.net_status_t) (uint64, error) {
	var seq C.uint64_t
	err := m.do(op, func(p *C.net_model_t) C.net_status_t { return f(p, &seq) })
	return uint64(seq), err
}

// Kind is the model's kind.
func (m *Model[R, F]) Kind() ModelKind { return m.kind }

// Delete deletes row id (no effect if absent) and returns the event's RedEX
// sequence number.
func (m *Model[R, F]) Delete(id uint64) (uint64, error) {
	return m.write("net_model_delete", func(p *C.net_model_t, seq *C.uint64_t) C.net_status_t {
		return C.net_model_delete(p, C.uint64_t(id), seq)
	})
}

// WaitForSeq waits until the fold has attempted RedEX sequence seq (the
// sequence a write returned: a write, then WaitForSeq, reads your writes).
// It returns nil then; ErrCortexHalted at once when the fold stopped short of
// seq (halted, or Shutdown); an *Error matching ErrCancelled and ctx.Err()
// when ctx ends first; ErrShuttingDown when the model is closed during the
// wait (Close wakes it) or was closed before.
func (m *Model[R, F]) WaitForSeq(ctx context.Context, seq uint64) error {
	const op = "net_model_wait_for_seq"
	p, err := m.ptr(op)
	if err != nil {
		return err
	}
	st, err := blocking(ctx, op, func(cancel *C.net_cancel_t, errOut *C.net_error_t) C.net_status_t {
		return C.net_model_wait_for_seq(p, C.uint64_t(seq), C.uint32_t(waitForever), cancel, errOut)
	})
	runtime.KeepAlive(m)
	if err == nil && st != StatusOK {
		err = unexpected(op, st)
	}
	return err
}

func (m *Model[R, F]) jsonCall(op string, f func(p *C.net_model_t, out *C.net_bytes_t) C.net_status_t, v any) error {
	var out C.net_bytes_t
	if err := m.do(op, func(p *C.net_model_t) C.net_status_t { return f(p, &out) }); err != nil {
		return err
	}
	if err := json.Unmarshal(takeBytes(&out), v); err != nil {
		return &Error{Op: op, Status: StatusInternal, Message: "decoding libnet's JSON: " + err.Error()}
	}
	return nil
}

// Progress reports the fold's watermarks and health.
func (m *Model[R, F]) Progress() (Progress, error) {
	var p Progress
	err := m.jsonCall("net_model_progress", func(h *C.net_model_t, out *C.net_bytes_t) C.net_status_t {
		return C.net_model_progress(h, out)
	}, &p)
	return p, err
}

// FindUnique returns row id, and whether it exists.
func (m *Model[R, F]) FindUnique(id uint64) (R, bool, error) {
	const op = "net_model_find_unique"
	var row R
	var out C.net_bytes_t
	var found C.bool
	err := m.do(op, func(p *C.net_model_t) C.net_status_t {
		return C.net_model_find_unique(p, C.uint64_t(id), &out, &found)
	})
	if err != nil {
		return row, false, err
	}
	raw := takeBytes(&out)
	if !bool(found) {
		return row, false, nil
	}
	if err := json.Unmarshal(raw, &row); err != nil {
		return row, false, &Error{Op: op, Status: StatusInternal, Message: err.Error()}
	}
	return row, true, nil
}

// filterJSON is the filter's JSON, or nil (every row) for a nil filter.
func filterJSON[F any](op string, filter *F) ([]byte, error) {
	if filter == nil {
		return nil, nil
	}
	js, err := json.Marshal(filter)
	if err != nil {
		return nil, invalidArgument(op, err.Error())
	}
	return js, nil
}

// FindMany returns the rows matching filter (nil: all), ordered and paged
// as the filter says.
func (m *Model[R, F]) FindMany(filter *F) ([]R, error) {
	const op = "net_model_find_many"
	js, err := filterJSON(op, filter)
	if err != nil {
		return nil, err
	}
	rows := []R{}
	err = m.jsonCall(op, func(p *C.net_model_t, out *C.net_bytes_t) C.net_status_t {
		return C.net_model_find_many(p, bytesPtr(js), C.size_t(len(js)), out)
	}, &rows)
	runtime.KeepAlive(js)
	if rows == nil {
		rows = []R{}
	}
	return rows, err
}

// CountWhere counts the rows matching filter (its order and page ignored).
func (m *Model[R, F]) CountWhere(filter *F) (uint64, error) {
	const op = "net_model_count_where"
	js, err := filterJSON(op, filter)
	if err != nil {
		return 0, err
	}
	var n C.uint64_t
	err = m.do(op, func(p *C.net_model_t) C.net_status_t {
		return C.net_model_count_where(p, bytesPtr(js), C.size_t(len(js)), &n)
	})
	runtime.KeepAlive(js)
	return uint64(n), err
}

// ExistsWhere reports whether any row matches filter.
func (m *Model[R, F]) ExistsWhere(filter *F) (bool, error) {
	const op = "net_model_exists_where"
	js, err := filterJSON(op, filter)
	if err != nil {
		return false, err
	}
	var b C.bool
	err = m.do(op, func(p *C.net_model_t) C.net_status_t {
		return C.net_model_exists_where(p, bytesPtr(js), C.size_t(len(js)), &b)
	})
	runtime.KeepAlive(js)
	return bool(b), err
}

// Snapshot captures the state as of the applied watermark (restore it with
// the kind's Restore function).
func (m *Model[R, F]) Snapshot() (ModelSnapshot, error) {
	var out C.net_bytes_t
	var last C.uint64_t
	var has C.bool
	err := m.do("net_model_snapshot", func(p *C.net_model_t) C.net_status_t {
		return C.net_model_snapshot(p, &out, &last, &has)
	})
	if err != nil {
		return ModelSnapshot{}, err
	}
	return ModelSnapshot{Data: takeBytes(&out), LastSeq: uint64(last), HasLastSeq: bool(has)}, nil
}

// Watch watches the rows matching filter (nil: all); the first Next returns
// the current rows, later ones the rows after each change that alters them.
func (m *Model[R, F]) Watch(filter *F) (*Watch[R], error) {
	const op = "net_model_watch"
	js, err := filterJSON(op, filter)
	if err != nil {
		return nil, err
	}
	var out *C.net_model_watch_t
	err = m.do(op, func(p *C.net_model_t) C.net_status_t {
		return C.net_model_watch(p, bytesPtr(js), C.size_t(len(js)), &out)
	})
	runtime.KeepAlive(js)
	if err != nil {
		return nil, err
	}
	return newWatch[R](out, m), nil
}

// SnapshotAndWatch returns the current rows matching filter and a watch
// that delivers only later changes (nothing slips between the two).
func (m *Model[R, F]) SnapshotAndWatch(filter *F) ([]R, *Watch[R], error) {
	const op = "net_model_snapshot_and_watch"
	js, err := filterJSON(op, filter)
	if err != nil {
		return nil, nil, err
	}
	var out *C.net_model_watch_t
	var rows C.net_bytes_t
	err = m.do(op, func(p *C.net_model_t) C.net_status_t {
		return C.net_model_snapshot_and_watch(p, bytesPtr(js), C.size_t(len(js)), &rows, &out)
	})
	runtime.KeepAlive(js)
	if err != nil {
		return nil, nil, err
	}
	w := newWatch[R](out, m)
	current := []R{}
	if err := json.Unmarshal(takeBytes(&rows), &current); err != nil {
		_ = w.Close()
		return nil, nil, &Error{Op: op, Status: StatusInternal, Message: err.Error()}
	}
	if current == nil {
		current = []R{}
	}
	return current, w, nil
}

// Shutdown stops the fold and closes the model's RedEX file, syncing it
// (net_model_close), and returns any error of that (such as a failed final
// fsync). Later writes fail with ErrCortexHalted or a RedEX error, a
// WaitForSeq waiting returns ErrCortexHalted, and watches end; queries keep
// answering from the last state. The model still needs Close.
func (m *Model[R, F]) Shutdown() error {
	return m.do("net_model_close", func(p *C.net_model_t) C.net_status_t { return C.net_model_close(p) })
}

// Close frees the model (net_model_free): it wakes every call blocked on it
// (a WaitForSeq returns ErrShuttingDown), ends its watches (their Next
// returns io.EOF; the watches still need their own Close), waits for calls in
// flight (a write already inside libnet finishes first), then stops the fold
// and closes the model's RedEX file. Later calls fail with ErrShuttingDown.
//
// It returns the free's outcome: nil, or an error matching ErrBusy when
// calls were still running at libnet's 5 s deadline or closing the model's
// file failed (call Shutdown first to get that error itself). Idempotent and
// safe to call concurrently; every call returns the one free's outcome.
//
// A model lent by a NetDB (NetDB.Tasks, NetDB.Memories) is the NetDB's:
// Close only lets go of it (later calls on this value fail with
// ErrShuttingDown) and the NetDB's own Close frees it.
func (m *Model[R, F]) Close() error {
	if m == nil {
		return nil
	}
	if m.lender != nil {
		return m.h.close(func(unsafe.Pointer) error { return nil })
	}
	runtime.SetFinalizer(m, nil)
	return m.h.close(freeModel)
}

// Watch is a live query over a model of any kind, with rows of type T. Its
// first Next returns the current rows (for Model.Watch; SnapshotAndWatch
// returns those itself), then the new rows after each change. Close it when
// done; closing or shutting down the model, or the fold halting, ends it.
// Safe for concurrent use, Close included.
type Watch[T any] struct {
	h      handle        // *C.net_model_watch_t
	owner  any           // keeps the model reachable
	closed chan struct{} // closed by Close: stops Updates goroutines
}

func freeWatch(p unsafe.Pointer) error {
	return freeStatus("net_model_watch_free", func() C.net_status_t {
		return C.net_model_watch_free((*C.net_model_watch_t)(p))
	})
}

func newWatch[T any](p *C.net_model_watch_t, owner any) *Watch[T] {
	w := &Watch[T]{h: newHandle(unsafe.Pointer(p)), owner: owner, closed: make(chan struct{})}
	runtime.SetFinalizer(w, func(w *Watch[T]) { w.h.leaked("netmesh.Watch", freeWatch) })
	return w
}

// Next waits for the next update and returns the rows. Other outcomes: a
// *WatchLaggedError when this reader fell behind (the following rows include
// everything missed); io.EOF when the watch ended (its model was closed,
// shut down or halted, or the watch was closed while Next waited); an
// *Error matching ErrCancelled and ctx.Err() when ctx ends first (the watch
// stays usable); ErrShuttingDown when called after Close.
func (w *Watch[T]) Next(ctx context.Context) ([]T, error) {
	const op = "net_model_watch_next"
	if w == nil {
		return nil, invalidArgument(op, "watch is nil")
	}
	p := (*C.net_model_watch_t)(w.h.load())
	if p == nil {
		return nil, shuttingDown(op, "watch has been closed")
	}
	var rows C.net_bytes_t
	var missed C.uint64_t
	st, err := blocking(ctx, op, func(cancel *C.net_cancel_t, errOut *C.net_error_t) C.net_status_t {
		return C.net_model_watch_next(p, C.uint32_t(waitForever), &rows, &missed, cancel, errOut)
	})
	runtime.KeepAlive(w)
	switch {
	case err != nil:
		return nil, err
	case st == StatusOK:
		out := []T{}
		if err := json.Unmarshal(takeBytes(&rows), &out); err != nil {
			return nil, &Error{Op: op, Status: StatusInternal, Message: err.Error()}
		}
		if out == nil {
			out = []T{}
		}
		return out, nil
	case st == StatusLagged:
		return nil, &WatchLaggedError{Missed: uint64(missed)}
	case st == StatusEnd:
		return nil, io.EOF
	}
	return nil, unexpected(op, st)
}

// WatchEvent is one item of Watch.Updates: the rows, or Err (a
// *WatchLaggedError, or the error that ended the stream).
type WatchEvent[T any] struct {
	Rows []T
	Err  error
}

// Updates delivers Next's results on a channel until the watch ends, ctx is
// done or the watch is closed; the channel is then closed.
func (w *Watch[T]) Updates(ctx context.Context) <-chan WatchEvent[T] {
	ch := make(chan WatchEvent[T])
	go func() {
		defer close(ch)
		for {
			rows, err := w.Next(ctx)
			var lag *WatchLaggedError
			if err != nil && !errors.As(err, &lag) {
				if !errors.Is(err, io.EOF) && !errors.Is(err, ErrCancelled) && ctx.Err() == nil {
					select {
					case ch <- WatchEvent[T]{Err: err}:
					case <-ctx.Done():
					case <-w.closed:
					}
				}
				return
			}
			select {
			case ch <- WatchEvent[T]{Rows: rows, Err: err}:
			case <-ctx.Done():
				return
			case <-w.closed:
				return
			}
		}
	}()
	return ch
}

// Close ends and frees the watch (net_model_watch_free); a Next blocked on
// another goroutine returns io.EOF, and Close returns once it has left
// libnet. It returns the free's outcome (an error matching ErrBusy when calls
// were still running at libnet's 5 s deadline). Idempotent and safe to call
// concurrently; a watch may be closed before or after its model.
func (w *Watch[T]) Close() error {
	if w == nil {
		return nil
	}
	runtime.SetFinalizer(w, nil)
	return w.h.close(func(p unsafe.Pointer) error {
		close(w.closed)
		return freeWatch(p)
	})
}
