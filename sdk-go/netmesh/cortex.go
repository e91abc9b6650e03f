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
	"sync/atomic"
	"time"
	"unsafe"
)

// CortEX: folded, queryable state over RedEX logs. Two models, byte-
// compatible with Net v0.11: Tasks and Memories. Each opens on a Redex
// manager (channel "cortex/tasks" / "cortex/memories"); writes append an
// event and return its RedEX sequence number, and a fold thread inside
// libnet applies events to the in-memory state that queries read.

// ErrorPolicy is what a model's fold does when an event fails to apply.
type ErrorPolicy string

const (
	// PolicyStop halts the fold (the default): writes are refused and
	// WaitForSeq fails with ErrCortexHalted.
	PolicyStop ErrorPolicy = "stop"
	// PolicyLogAndContinue skips the event and goes on.
	PolicyLogAndContinue ErrorPolicy = "log_and_continue"
)

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
	switch c.Policy {
	case "":
	case PolicyStop, PolicyLogAndContinue:
		cfg["policy"] = string(c.Policy)
	default:
		return nil, fmt.Errorf(`policy: expected "stop" or "log_and_continue", got %q`, string(c.Policy))
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

// TaskStatus is a task's status.
type TaskStatus string

const (
	// TaskPending is a task not yet completed.
	TaskPending TaskStatus = "pending"
	// TaskCompleted is a completed task.
	TaskCompleted TaskStatus = "completed"
)

// Task is a row of the tasks model. Timestamps are nanoseconds since the
// Unix epoch.
type Task struct {
	ID        uint64     `json:"id"`
	Title     string     `json:"title"`
	Status    TaskStatus `json:"status"`
	CreatedNs uint64     `json:"created_ns"`
	UpdatedNs uint64     `json:"updated_ns"`
}

// Memory is a row of the memories model.
type Memory struct {
	ID        uint64   `json:"id"`
	Content   string   `json:"content"`
	Tags      []string `json:"tags"`
	Source    string   `json:"source"`
	CreatedNs uint64   `json:"created_ns"`
	UpdatedNs uint64   `json:"updated_ns"`
	Pinned    bool     `json:"pinned"`
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

// TaskFilter selects tasks; every set field must match. OrderBy is one of
// "id_asc" (default), "id_desc", "created_asc", "created_desc",
// "updated_asc", "updated_desc", "title_asc", "title_desc". json.Marshal
// gives libnet's filter JSON.
type TaskFilter struct {
	IDs           []uint64   `json:"ids,omitempty"`
	Status        TaskStatus `json:"status,omitempty"`
	TitleContains string     `json:"title_contains,omitempty"`
	CreatedAfter  *uint64    `json:"created_after,omitempty"`
	CreatedBefore *uint64    `json:"created_before,omitempty"`
	UpdatedAfter  *uint64    `json:"updated_after,omitempty"`
	UpdatedBefore *uint64    `json:"updated_before,omitempty"`
	OrderBy       string     `json:"order_by,omitempty"`
	Offset        *uint64    `json:"offset,omitempty"`
	Limit         *uint64    `json:"limit,omitempty"`
}

// MemoryFilter selects memories; every set field must match. TagsAny: at
// least one of these tags; TagsAll: every one. OrderBy: "id", "created" or
// "updated" with "_asc" or "_desc".
type MemoryFilter struct {
	IDs             []uint64 `json:"ids,omitempty"`
	TagsAny         []string `json:"tags_any,omitempty"`
	TagsAll         []string `json:"tags_all,omitempty"`
	Source          *string  `json:"source,omitempty"`
	Pinned          *bool    `json:"pinned,omitempty"`
	ContentContains string   `json:"content_contains,omitempty"`
	CreatedAfter    *uint64  `json:"created_after,omitempty"`
	CreatedBefore   *uint64  `json:"created_before,omitempty"`
	UpdatedAfter    *uint64  `json:"updated_after,omitempty"`
	UpdatedBefore   *uint64  `json:"updated_before,omitempty"`
	OrderBy         string   `json:"order_by,omitempty"`
	Offset          *uint64  `json:"offset,omitempty"`
	Limit           *uint64  `json:"limit,omitempty"`
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

type modelKind uint8

const (
	tasksModel modelKind = iota
	memoriesModel
)

func (k modelKind) String() string {
	if k == tasksModel {
		return "tasks"
	}
	return "memories"
}

// model is what Tasks and Memories share: the handle and the calls that
// differ only in which C function they use.
type model struct {
	h    unsafe.Pointer // *C.net_tasks_adapter_t or *C.net_memories_adapter_t; nil once closed
	kind modelKind
}

func (m *model) ptr(op string) (unsafe.Pointer, error) {
	if m == nil {
		return nil, invalidArgument(op, "model is nil")
	}
	p := atomic.LoadPointer(&m.h)
	if p == nil {
		return nil, shuttingDown(op, m.kind.String()+" model has been closed")
	}
	return p, nil
}

func (m *model) opName(name string) string { return "net_" + m.kind.String() + "_" + name }

// do runs one call on the live handle.
func (m *model) do(name string, f func(p unsafe.Pointer) C.net_status_t) error {
	op := m.opName(name)
	p, err := m.ptr(op)
	if err != nil {
		return err
	}
	err = check(op, func() C.net_status_t { return f(p) })
	runtime.KeepAlive(m)
	return err
}

func openModel(kind modelKind, r *Redex, origin uint64, cfg ModelConfig, snap *ModelSnapshot) (*model, error) {
	op := "net_" + kind.String() + "_open"
	if snap != nil {
		op = "net_" + kind.String() + "_restore"
	}
	js, err := cfg.marshal()
	if err != nil {
		if abiErr != nil {
			return nil, abiErr
		}
		return nil, &Error{Op: op, Status: StatusCortexInvalidConfig, Message: err.Error()}
	}
	rp, err := r.handle(op)
	if err != nil {
		return nil, err
	}
	var cfgPtr *C.uint8_t
	if len(js) > 0 {
		cfgPtr = bytesPtr(js)
	}
	var out unsafe.Pointer
	err = check(op, func() C.net_status_t {
		switch {
		case kind == tasksModel && snap == nil:
			return C.net_tasks_open(rp, C.uint64_t(origin), cfgPtr, C.size_t(len(js)), (**C.net_tasks_adapter_t)(unsafe.Pointer(&out)))
		case kind == tasksModel:
			return C.net_tasks_restore(rp, C.uint64_t(origin), cfgPtr, C.size_t(len(js)),
				bytesPtr(snap.Data), C.size_t(len(snap.Data)), C.uint64_t(snap.LastSeq), C.bool(snap.HasLastSeq),
				(**C.net_tasks_adapter_t)(unsafe.Pointer(&out)))
		case snap == nil:
			return C.net_memories_open(rp, C.uint64_t(origin), cfgPtr, C.size_t(len(js)), (**C.net_memories_adapter_t)(unsafe.Pointer(&out)))
		default:
			return C.net_memories_restore(rp, C.uint64_t(origin), cfgPtr, C.size_t(len(js)),
				bytesPtr(snap.Data), C.size_t(len(snap.Data)), C.uint64_t(snap.LastSeq), C.bool(snap.HasLastSeq),
				(**C.net_memories_adapter_t)(unsafe.Pointer(&out)))
		}
	})
	runtime.KeepAlive(r)
	runtime.KeepAlive(js)
	if err != nil {
		return nil, err
	}
	return &model{h: out, kind: kind}, nil
}

func (m *model) close() error {
	if m == nil {
		return nil
	}
	p := atomic.SwapPointer(&m.h, nil)
	if p == nil {
		return nil
	}
	op := m.opName("close")
	err := check(op, func() C.net_status_t {
		if m.kind == tasksModel {
			return C.net_tasks_close((*C.net_tasks_adapter_t)(p))
		}
		return C.net_memories_close((*C.net_memories_adapter_t)(p))
	})
	if m.kind == tasksModel {
		C.net_tasks_free((*C.net_tasks_adapter_t)(p))
	} else {
		C.net_memories_free((*C.net_memories_adapter_t)(p))
	}
	if errors.Is(err, ErrRedexClosed) || errors.Is(err, ErrShuttingDown) {
		return nil
	}
	return err
}

func (m *model) write(name string, f func(p unsafe.Pointer, seq *C.uint64_t) C.net_status_t) (uint64, error) {
	var seq C.uint64_t
	err := m.do(name, func(p unsafe.Pointer) C.net_status_t { return f(p, &seq) })
	return uint64(seq), err
}

// waitForSeq polls in slices while ctx can be cancelled, so cancellation is
// noticed within 100 ms; with context.Background it waits in one call.
func (m *model) waitForSeq(ctx context.Context, seq uint64) error {
	op := m.opName("wait_for_seq")
	if ctx == nil {
		return invalidArgument(op, "nil context")
	}
	p, err := m.ptr(op)
	if err != nil {
		return err
	}
	defer runtime.KeepAlive(m)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		timeout, ok := sliceTimeout(ctx)
		if !ok {
			<-ctx.Done()
			return ctx.Err()
		}
		st, err := call(op, func() C.net_status_t {
			if m.kind == tasksModel {
				return C.net_tasks_wait_for_seq((*C.net_tasks_adapter_t)(p), C.uint64_t(seq), C.uint32_t(timeout))
			}
			return C.net_memories_wait_for_seq((*C.net_memories_adapter_t)(p), C.uint64_t(seq), C.uint32_t(timeout))
		})
		if err != nil {
			return err
		}
		if st == StatusOK {
			return nil
		}
	}
}

// sliceTimeout is the timeout of one blocking C call under ctx: forever for
// a context that cannot be cancelled, else at most tailPollSlice (and at
// most what is left before its deadline). ok is false when the deadline has
// passed.
func sliceTimeout(ctx context.Context) (uint32, bool) {
	if ctx.Done() == nil {
		return waitForever, true
	}
	slice := tailPollSlice
	if deadline, ok := ctx.Deadline(); ok {
		if left := time.Until(deadline); left < slice {
			slice = left
		}
	}
	if slice <= 0 {
		return 0, false
	}
	return uint32((slice + time.Millisecond - 1) / time.Millisecond), true
}

func (m *model) jsonCall(name string, f func(p unsafe.Pointer, out *C.net_bytes_t) C.net_status_t, v any) error {
	var out C.net_bytes_t
	if err := m.do(name, func(p unsafe.Pointer) C.net_status_t { return f(p, &out) }); err != nil {
		return err
	}
	if err := json.Unmarshal(takeBytes(&out), v); err != nil {
		return &Error{Op: m.opName(name), Status: StatusInternal, Message: "decoding libnet's JSON: " + err.Error()}
	}
	return nil
}

func (m *model) progress() (Progress, error) {
	var p Progress
	err := m.jsonCall("progress", func(h unsafe.Pointer, out *C.net_bytes_t) C.net_status_t {
		if m.kind == tasksModel {
			return C.net_tasks_progress((*C.net_tasks_adapter_t)(h), out)
		}
		return C.net_memories_progress((*C.net_memories_adapter_t)(h), out)
	}, &p)
	return p, err
}

func (m *model) findUnique(id uint64, v any) (bool, error) {
	var out C.net_bytes_t
	var found C.bool
	err := m.do("find_unique", func(p unsafe.Pointer) C.net_status_t {
		if m.kind == tasksModel {
			return C.net_tasks_find_unique((*C.net_tasks_adapter_t)(p), C.uint64_t(id), &out, &found)
		}
		return C.net_memories_find_unique((*C.net_memories_adapter_t)(p), C.uint64_t(id), &out, &found)
	})
	if err != nil {
		return false, err
	}
	raw := takeBytes(&out)
	if !bool(found) {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, &Error{Op: m.opName("find_unique"), Status: StatusInternal, Message: err.Error()}
	}
	return true, nil
}

func filterJSON(filter any) ([]byte, error) {
	if filter == nil {
		return nil, nil
	}
	return json.Marshal(filter)
}

func (m *model) findMany(filter any, v any) error {
	js, err := filterJSON(filter)
	if err != nil {
		return invalidArgument(m.opName("find_many"), err.Error())
	}
	err = m.jsonCall("find_many", func(p unsafe.Pointer, out *C.net_bytes_t) C.net_status_t {
		if m.kind == tasksModel {
			return C.net_tasks_find_many((*C.net_tasks_adapter_t)(p), bytesPtr(js), C.size_t(len(js)), out)
		}
		return C.net_memories_find_many((*C.net_memories_adapter_t)(p), bytesPtr(js), C.size_t(len(js)), out)
	}, v)
	runtime.KeepAlive(js)
	return err
}

func (m *model) countWhere(filter any) (uint64, error) {
	js, err := filterJSON(filter)
	if err != nil {
		return 0, invalidArgument(m.opName("count_where"), err.Error())
	}
	var n C.uint64_t
	err = m.do("count_where", func(p unsafe.Pointer) C.net_status_t {
		if m.kind == tasksModel {
			return C.net_tasks_count_where((*C.net_tasks_adapter_t)(p), bytesPtr(js), C.size_t(len(js)), &n)
		}
		return C.net_memories_count_where((*C.net_memories_adapter_t)(p), bytesPtr(js), C.size_t(len(js)), &n)
	})
	runtime.KeepAlive(js)
	return uint64(n), err
}

func (m *model) existsWhere(filter any) (bool, error) {
	js, err := filterJSON(filter)
	if err != nil {
		return false, invalidArgument(m.opName("exists_where"), err.Error())
	}
	var b C.bool
	err = m.do("exists_where", func(p unsafe.Pointer) C.net_status_t {
		if m.kind == tasksModel {
			return C.net_tasks_exists_where((*C.net_tasks_adapter_t)(p), bytesPtr(js), C.size_t(len(js)), &b)
		}
		return C.net_memories_exists_where((*C.net_memories_adapter_t)(p), bytesPtr(js), C.size_t(len(js)), &b)
	})
	runtime.KeepAlive(js)
	return bool(b), err
}

func (m *model) snapshot() (ModelSnapshot, error) {
	var out C.net_bytes_t
	var last C.uint64_t
	var has C.bool
	err := m.do("snapshot", func(p unsafe.Pointer) C.net_status_t {
		if m.kind == tasksModel {
			return C.net_tasks_snapshot((*C.net_tasks_adapter_t)(p), &out, &last, &has)
		}
		return C.net_memories_snapshot((*C.net_memories_adapter_t)(p), &out, &last, &has)
	})
	if err != nil {
		return ModelSnapshot{}, err
	}
	return ModelSnapshot{Data: takeBytes(&out), LastSeq: uint64(last), HasLastSeq: bool(has)}, nil
}

// watch starts a watch; with current != nil it is snapshot_and_watch and
// the current rows are decoded into current.
func (m *model) watch(filter any, current any) (unsafe.Pointer, error) {
	name := "watch"
	if current != nil {
		name = "snapshot_and_watch"
	}
	js, err := filterJSON(filter)
	if err != nil {
		return nil, invalidArgument(m.opName(name), err.Error())
	}
	var out unsafe.Pointer
	var rows C.net_bytes_t
	err = m.do(name, func(p unsafe.Pointer) C.net_status_t {
		jp, jn := bytesPtr(js), C.size_t(len(js))
		switch {
		case m.kind == tasksModel && current == nil:
			return C.net_tasks_watch((*C.net_tasks_adapter_t)(p), jp, jn, (**C.net_tasks_watch_t)(unsafe.Pointer(&out)))
		case m.kind == tasksModel:
			return C.net_tasks_snapshot_and_watch((*C.net_tasks_adapter_t)(p), jp, jn, &rows, (**C.net_tasks_watch_t)(unsafe.Pointer(&out)))
		case current == nil:
			return C.net_memories_watch((*C.net_memories_adapter_t)(p), jp, jn, (**C.net_memories_watch_t)(unsafe.Pointer(&out)))
		default:
			return C.net_memories_snapshot_and_watch((*C.net_memories_adapter_t)(p), jp, jn, &rows, (**C.net_memories_watch_t)(unsafe.Pointer(&out)))
		}
	})
	runtime.KeepAlive(js)
	if err != nil {
		return nil, err
	}
	if current != nil {
		if err := json.Unmarshal(takeBytes(&rows), current); err != nil {
			freeWatch(m.kind, out)
			return nil, &Error{Op: m.opName(name), Status: StatusInternal, Message: err.Error()}
		}
	}
	return out, nil
}

func freeWatch(kind modelKind, p unsafe.Pointer) {
	if kind == tasksModel {
		C.net_tasks_watch_free((*C.net_tasks_watch_t)(p))
	} else {
		C.net_memories_watch_free((*C.net_memories_watch_t)(p))
	}
}

// Watch is a live query over a model. Its first Next returns the current
// rows (for Watch; SnapshotAndWatch returns those itself), then the new
// rows after each change. Close it when done; closing the model, or the
// fold halting, ends it. Safe for concurrent use, Close included.
type Watch[T any] struct {
	h      unsafe.Pointer // *C.net_tasks_watch_t / *C.net_memories_watch_t; nil once closed
	kind   modelKind
	owner  any           // keeps the model reachable
	closed chan struct{} // closed by Close: stops Updates goroutines
}

func newWatch[T any](kind modelKind, p unsafe.Pointer, owner any) *Watch[T] {
	w := &Watch[T]{h: p, kind: kind, owner: owner, closed: make(chan struct{})}
	runtime.SetFinalizer(w, (*Watch[T]).Close)
	return w
}

// Next waits for the next update (ctx bounds the wait). It returns the rows,
// or a *WatchLaggedError when this reader fell behind (the following rows
// include everything missed), or io.EOF when the watch ended (its model
// closed or halted, or the watch was closed).
func (w *Watch[T]) Next(ctx context.Context) ([]T, error) {
	op := "net_" + w.kind.String() + "_watch_next"
	if ctx == nil {
		return nil, invalidArgument(op, "nil context")
	}
	p := atomic.LoadPointer(&w.h)
	if p == nil {
		return nil, shuttingDown(op, "watch has been closed")
	}
	defer runtime.KeepAlive(w)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		timeout, ok := sliceTimeout(ctx)
		if !ok {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		var rows C.net_bytes_t
		var missed C.uint64_t
		st, err := call(op, func() C.net_status_t {
			if w.kind == tasksModel {
				return C.net_tasks_watch_next((*C.net_tasks_watch_t)(p), C.uint32_t(timeout), &rows, &missed)
			}
			return C.net_memories_watch_next((*C.net_memories_watch_t)(p), C.uint32_t(timeout), &rows, &missed)
		})
		switch {
		case errors.Is(err, ErrShuttingDown):
			return nil, io.EOF
		case err != nil:
			return nil, err
		case st == StatusOK:
			var out []T
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
		case st == StatusTimeout:
		default:
			return nil, &Error{Op: op, Status: StatusInternal, Message: fmt.Sprintf("unexpected status %v", st)}
		}
	}
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
				if !errors.Is(err, io.EOF) && ctx.Err() == nil {
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

// Close ends and frees the watch (net_*_watch_free); a Next blocked on
// another goroutine returns io.EOF, and Close returns once it has left
// libnet. Idempotent; always returns nil.
func (w *Watch[T]) Close() error {
	if w == nil {
		return nil
	}
	if p := atomic.SwapPointer(&w.h, nil); p != nil {
		runtime.SetFinalizer(w, nil)
		close(w.closed)
		freeWatch(w.kind, p)
	}
	return nil
}

// -- Tasks -------------------------------------------------------------------

// Tasks is the tasks model (net_tasks_adapter_t). Safe for concurrent use,
// Close included.
type Tasks struct{ m model }

// OpenTasks opens the tasks model on r for the writer origin (use an
// identity's OriginHash). A persistent model (cfg.File.Persistent) recovers
// its state and app sequence from its log.
func OpenTasks(r *Redex, origin uint64, cfg ModelConfig) (*Tasks, error) {
	m, err := openModel(tasksModel, r, origin, cfg, nil)
	if err != nil {
		return nil, err
	}
	t := &Tasks{m: *m}
	runtime.SetFinalizer(t, (*Tasks).Close)
	return t, nil
}

// RestoreTasks opens the tasks model from snap (state and app sequence),
// replaying only the events after snap.LastSeq. ErrCortexSnapshot when the
// bytes do not decode.
func RestoreTasks(r *Redex, origin uint64, cfg ModelConfig, snap ModelSnapshot) (*Tasks, error) {
	m, err := openModel(tasksModel, r, origin, cfg, &snap)
	if err != nil {
		return nil, err
	}
	t := &Tasks{m: *m}
	runtime.SetFinalizer(t, (*Tasks).Close)
	return t, nil
}

func (t *Tasks) model() *model {
	if t == nil {
		return nil
	}
	return &t.m
}

// Create creates task id (pending); returns the event's RedEX sequence.
func (t *Tasks) Create(id uint64, title string) (uint64, error) {
	return t.model().write("create", func(p unsafe.Pointer, seq *C.uint64_t) C.net_status_t {
		return C.net_tasks_create((*C.net_tasks_adapter_t)(p), C.uint64_t(id), stringPtr(title), C.size_t(len(title)), seq)
	})
}

// Rename renames task id.
func (t *Tasks) Rename(id uint64, title string) (uint64, error) {
	return t.model().write("rename", func(p unsafe.Pointer, seq *C.uint64_t) C.net_status_t {
		return C.net_tasks_rename((*C.net_tasks_adapter_t)(p), C.uint64_t(id), stringPtr(title), C.size_t(len(title)), seq)
	})
}

// Complete marks task id completed.
func (t *Tasks) Complete(id uint64) (uint64, error) {
	return t.model().write("complete", func(p unsafe.Pointer, seq *C.uint64_t) C.net_status_t {
		return C.net_tasks_complete((*C.net_tasks_adapter_t)(p), C.uint64_t(id), seq)
	})
}

// Delete deletes task id.
func (t *Tasks) Delete(id uint64) (uint64, error) {
	return t.model().write("delete", func(p unsafe.Pointer, seq *C.uint64_t) C.net_status_t {
		return C.net_tasks_delete((*C.net_tasks_adapter_t)(p), C.uint64_t(id), seq)
	})
}

// WaitForSeq waits until the fold has attempted RedEX sequence seq. It
// returns ctx's error when ctx ends first, and ErrCortexHalted at once when
// the fold stopped short of seq.
func (t *Tasks) WaitForSeq(ctx context.Context, seq uint64) error {
	return t.model().waitForSeq(ctx, seq)
}

// Progress reports the fold's watermarks and health.
func (t *Tasks) Progress() (Progress, error) { return t.model().progress() }

// FindUnique returns task id, and whether it exists.
func (t *Tasks) FindUnique(id uint64) (Task, bool, error) {
	var task Task
	ok, err := t.model().findUnique(id, &task)
	return task, ok, err
}

// FindMany returns the tasks matching filter (nil: all).
func (t *Tasks) FindMany(filter *TaskFilter) ([]Task, error) {
	rows := []Task{}
	err := t.model().findMany(optFilter(filter), &rows)
	return rows, err
}

// CountWhere counts the tasks matching filter (offset and limit ignored).
func (t *Tasks) CountWhere(filter *TaskFilter) (uint64, error) {
	return t.model().countWhere(optFilter(filter))
}

// ExistsWhere reports whether any task matches filter.
func (t *Tasks) ExistsWhere(filter *TaskFilter) (bool, error) {
	return t.model().existsWhere(optFilter(filter))
}

// Watch watches the tasks matching filter; the first Next returns the
// current rows.
func (t *Tasks) Watch(filter *TaskFilter) (*Watch[Task], error) {
	p, err := t.model().watch(optFilter(filter), nil)
	if err != nil {
		return nil, err
	}
	return newWatch[Task](tasksModel, p, t), nil
}

// SnapshotAndWatch returns the current rows and a watch that delivers only
// later changes (nothing lost in between).
func (t *Tasks) SnapshotAndWatch(filter *TaskFilter) ([]Task, *Watch[Task], error) {
	rows := []Task{}
	p, err := t.model().watch(optFilter(filter), &rows)
	if err != nil {
		return nil, nil, err
	}
	return rows, newWatch[Task](tasksModel, p, t), nil
}

// Snapshot captures the state as of the applied watermark.
func (t *Tasks) Snapshot() (ModelSnapshot, error) { return t.model().snapshot() }

// Close stops the fold, closes the model's RedEX file and frees the handle
// (net_tasks_close + net_tasks_free). Idempotent; a write in flight on
// another goroutine completes first, later calls fail with ErrShuttingDown.
// It returns the close error (e.g. a failed final fsync).
func (t *Tasks) Close() error {
	if t == nil {
		return nil
	}
	runtime.SetFinalizer(t, nil)
	return t.m.close()
}

// -- Memories ------------------------------------------------------------------

// Memories is the memories model (net_memories_adapter_t). Safe for
// concurrent use, Close included.
type Memories struct{ m model }

// OpenMemories opens the memories model on r for the writer origin.
func OpenMemories(r *Redex, origin uint64, cfg ModelConfig) (*Memories, error) {
	m, err := openModel(memoriesModel, r, origin, cfg, nil)
	if err != nil {
		return nil, err
	}
	mm := &Memories{m: *m}
	runtime.SetFinalizer(mm, (*Memories).Close)
	return mm, nil
}

// RestoreMemories opens the memories model from snap.
func RestoreMemories(r *Redex, origin uint64, cfg ModelConfig, snap ModelSnapshot) (*Memories, error) {
	m, err := openModel(memoriesModel, r, origin, cfg, &snap)
	if err != nil {
		return nil, err
	}
	mm := &Memories{m: *m}
	runtime.SetFinalizer(mm, (*Memories).Close)
	return mm, nil
}

func (mm *Memories) model() *model {
	if mm == nil {
		return nil
	}
	return &mm.m
}

// tagSlices is the C view of tags: a Go array of net_slice_t pointing at
// the tags' bytes, pinned with pinner (cgo forbids unpinned Go pointers
// inside memory passed to C). Empty tags are {NULL, 0}.
func tagSlices(tags []string, pinner *runtime.Pinner) []C.net_slice_t {
	if len(tags) == 0 {
		return nil
	}
	out := make([]C.net_slice_t, len(tags))
	for i, tag := range tags {
		if len(tag) == 0 {
			continue
		}
		data := unsafe.StringData(tag)
		pinner.Pin(data)
		out[i] = C.net_slice_t{ptr: (*C.uint8_t)(unsafe.Pointer(data)), len: C.size_t(len(tag))}
	}
	return out
}

// Store stores memory id.
func (mm *Memories) Store(id uint64, content string, tags []string, source string) (uint64, error) {
	var pinner runtime.Pinner
	defer pinner.Unpin()
	slices := tagSlices(tags, &pinner)
	return mm.model().write("store", func(p unsafe.Pointer, seq *C.uint64_t) C.net_status_t {
		return C.net_memories_store((*C.net_memories_adapter_t)(p), C.uint64_t(id), stringPtr(content), C.size_t(len(content)),
			unsafe.SliceData(slices), C.size_t(len(slices)), stringPtr(source), C.size_t(len(source)), seq)
	})
}

// Retag replaces the tags of memory id.
func (mm *Memories) Retag(id uint64, tags []string) (uint64, error) {
	var pinner runtime.Pinner
	defer pinner.Unpin()
	slices := tagSlices(tags, &pinner)
	return mm.model().write("retag", func(p unsafe.Pointer, seq *C.uint64_t) C.net_status_t {
		return C.net_memories_retag((*C.net_memories_adapter_t)(p), C.uint64_t(id), unsafe.SliceData(slices), C.size_t(len(slices)), seq)
	})
}

// Pin pins memory id.
func (mm *Memories) Pin(id uint64) (uint64, error) {
	return mm.model().write("pin", func(p unsafe.Pointer, seq *C.uint64_t) C.net_status_t {
		return C.net_memories_pin((*C.net_memories_adapter_t)(p), C.uint64_t(id), seq)
	})
}

// Unpin unpins memory id.
func (mm *Memories) Unpin(id uint64) (uint64, error) {
	return mm.model().write("unpin", func(p unsafe.Pointer, seq *C.uint64_t) C.net_status_t {
		return C.net_memories_unpin((*C.net_memories_adapter_t)(p), C.uint64_t(id), seq)
	})
}

// Delete deletes memory id.
func (mm *Memories) Delete(id uint64) (uint64, error) {
	return mm.model().write("delete", func(p unsafe.Pointer, seq *C.uint64_t) C.net_status_t {
		return C.net_memories_delete((*C.net_memories_adapter_t)(p), C.uint64_t(id), seq)
	})
}

// WaitForSeq is Tasks.WaitForSeq for memories.
func (mm *Memories) WaitForSeq(ctx context.Context, seq uint64) error {
	return mm.model().waitForSeq(ctx, seq)
}

// Progress reports the fold's watermarks and health.
func (mm *Memories) Progress() (Progress, error) { return mm.model().progress() }

// FindUnique returns memory id, and whether it exists.
func (mm *Memories) FindUnique(id uint64) (Memory, bool, error) {
	var m Memory
	ok, err := mm.model().findUnique(id, &m)
	return m, ok, err
}

// FindMany returns the memories matching filter (nil: all).
func (mm *Memories) FindMany(filter *MemoryFilter) ([]Memory, error) {
	rows := []Memory{}
	err := mm.model().findMany(optFilter(filter), &rows)
	return rows, err
}

// CountWhere counts the memories matching filter.
func (mm *Memories) CountWhere(filter *MemoryFilter) (uint64, error) {
	return mm.model().countWhere(optFilter(filter))
}

// ExistsWhere reports whether any memory matches filter.
func (mm *Memories) ExistsWhere(filter *MemoryFilter) (bool, error) {
	return mm.model().existsWhere(optFilter(filter))
}

// Watch watches the memories matching filter.
func (mm *Memories) Watch(filter *MemoryFilter) (*Watch[Memory], error) {
	p, err := mm.model().watch(optFilter(filter), nil)
	if err != nil {
		return nil, err
	}
	return newWatch[Memory](memoriesModel, p, mm), nil
}

// SnapshotAndWatch returns the current rows and a watch of later changes.
func (mm *Memories) SnapshotAndWatch(filter *MemoryFilter) ([]Memory, *Watch[Memory], error) {
	rows := []Memory{}
	p, err := mm.model().watch(optFilter(filter), &rows)
	if err != nil {
		return nil, nil, err
	}
	return rows, newWatch[Memory](memoriesModel, p, mm), nil
}

// Snapshot captures the state as of the applied watermark.
func (mm *Memories) Snapshot() (ModelSnapshot, error) { return mm.model().snapshot() }

// Close is Tasks.Close for memories.
func (mm *Memories) Close() error {
	if mm == nil {
		return nil
	}
	runtime.SetFinalizer(mm, nil)
	return mm.m.close()
}

// optFilter turns a nil typed filter pointer into a nil interface (no
// filter JSON at all).
func optFilter[F any](f *F) any {
	if f == nil {
		return nil
	}
	return f
}
