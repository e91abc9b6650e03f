package netmesh_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netmesh/net/sdk-go/netmesh"
)

const big = uint64(1)<<63 + 12345 // above 2^53: must round-trip exactly

func ctx5(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func memRedex(t *testing.T) *netmesh.Redex {
	r, err := netmesh.OpenRedex("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// must returns v, failing the test (by panicking: only use it on the test's
// own goroutine) when err is non-nil.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func ids[T any](rows []T, id func(T) uint64) []uint64 {
	out := []uint64{}
	for _, r := range rows {
		out = append(out, id(r))
	}
	return out
}

func taskID(t netmesh.Task) uint64     { return t.ID }
func memoryID(m netmesh.Memory) uint64 { return m.ID }

func TestTasksWritesAndQueries(t *testing.T) {
	tasks := must(netmesh.OpenTasks(memRedex(t), 7, netmesh.ModelConfig{}))
	defer tasks.Close()
	for i := uint64(1); i <= 10; i++ {
		title := "task"
		if i%3 == 0 {
			title += " urgent"
		}
		must(tasks.Create(i, title))
	}
	must(tasks.Create(big, "big"))
	must(tasks.Rename(1, "first"))
	last := must(tasks.Complete(2))
	if err := tasks.WaitForSeq(ctx5(t), last); err != nil {
		t.Fatal(err)
	}
	one, ok, err := tasks.FindUnique(1)
	if err != nil {
		t.Fatal(err)
	}
	if !ok || one.Title != "first" || one.Status != netmesh.TaskPending || one.CreatedNs == 0 {
		t.Fatalf("find_unique(1) = %+v %v", one, ok)
	}
	b, ok, _ := tasks.FindUnique(big)
	if !ok || b.ID != big {
		t.Fatalf("big id did not round-trip: %+v", b)
	}
	if _, ok, _ := tasks.FindUnique(99); ok {
		t.Fatal("found a task that does not exist")
	}
	pending := must(tasks.FindMany(&netmesh.TaskFilter{Status: netmesh.TaskPending, Limit: netmesh.U64(3)}))
	if got := ids(pending, taskID); !reflect.DeepEqual(got, []uint64{1, 3, 4}) {
		t.Fatalf("pending = %v", got)
	}
	desc := must(tasks.FindMany(&netmesh.TaskFilter{OrderBy: "id_desc", Offset: netmesh.U64(1), Limit: netmesh.U64(2)}))
	if got := ids(desc, taskID); !reflect.DeepEqual(got, []uint64{10, 9}) {
		t.Fatalf("desc = %v", got)
	}
	if n := must(tasks.CountWhere(&netmesh.TaskFilter{TitleContains: "urgent"})); n != 3 {
		t.Fatalf("count urgent = %d", n)
	}
	if !must(tasks.ExistsWhere(&netmesh.TaskFilter{IDs: []uint64{2}, Status: netmesh.TaskCompleted})) {
		t.Fatal("task 2 should be completed")
	}
	if n := must(tasks.CountWhere(nil)); n != 11 {
		t.Fatalf("count all = %d", n)
	}
	last = must(tasks.Delete(1))
	_ = tasks.WaitForSeq(ctx5(t), last)
	p := must(tasks.Progress())
	if p.AppliedThroughSeq == nil || *p.AppliedThroughSeq != last || !p.Running || p.AppSeq != last+1 {
		t.Fatalf("progress = %+v", p)
	}
}

func TestMemoriesWritesAndQueries(t *testing.T) {
	mem := must(netmesh.OpenMemories(memRedex(t), 7, netmesh.ModelConfig{}))
	defer mem.Close()
	must(mem.Store(1, "the sky is blue", []string{"fact", "color"}, "alice"))
	must(mem.Store(2, "meet at noon", []string{"todo"}, "bob"))
	must(mem.Store(big, "big", nil, ""))
	must(mem.Pin(1))
	must(mem.Retag(2, []string{"todo", "urgent", ""}))
	must(mem.Unpin(1))
	last := must(mem.Pin(2))
	if err := mem.WaitForSeq(ctx5(t), last); err != nil {
		t.Fatal(err)
	}
	m, ok, err := mem.FindUnique(1)
	if err != nil || !ok || m.Pinned || !reflect.DeepEqual(m.Tags, []string{"fact", "color"}) || m.Source != "alice" {
		t.Fatalf("memory 1 = %+v %v %v", m, ok, err)
	}
	if m, ok, _ := mem.FindUnique(big); !ok || m.ID != big {
		t.Fatal("big id did not round-trip")
	}
	all := must(mem.FindMany(&netmesh.MemoryFilter{TagsAll: []string{"todo", "urgent"}}))
	if got := ids(all, memoryID); !reflect.DeepEqual(got, []uint64{2}) {
		t.Fatalf("tags_all = %v", got)
	}
	anyOf := must(mem.FindMany(&netmesh.MemoryFilter{TagsAny: []string{"fact", "urgent"}}))
	if got := ids(anyOf, memoryID); !reflect.DeepEqual(got, []uint64{1, 2}) {
		t.Fatalf("tags_any = %v", got)
	}
	if n := must(mem.CountWhere(&netmesh.MemoryFilter{Pinned: netmesh.Bool(true)})); n != 1 {
		t.Fatalf("pinned = %d", n)
	}
	if !must(mem.ExistsWhere(&netmesh.MemoryFilter{Source: netmesh.Str("bob"), ContentContains: "noon"})) {
		t.Fatal("bob's memory not found")
	}
	last = must(mem.Delete(2))
	_ = mem.WaitForSeq(ctx5(t), last)
	if n := must(mem.CountWhere(nil)); n != 2 {
		t.Fatalf("count after delete = %d", n)
	}
	// A snapshot restores into an equal model.
	before := must(mem.FindMany(nil))
	restored := must(netmesh.RestoreMemories(memRedex(t), 7, netmesh.ModelConfig{}, must(mem.Snapshot())))
	defer restored.Close()
	if after := must(restored.FindMany(nil)); !reflect.DeepEqual(after, before) {
		t.Fatalf("restored %v != %v", after, before)
	}
}

func TestTasksWatch(t *testing.T) {
	tasks := must(netmesh.OpenTasks(memRedex(t), 7, netmesh.ModelConfig{}))
	defer tasks.Close()
	_ = tasks.WaitForSeq(ctx5(t), must(tasks.Create(1, "a")))
	w := must(tasks.Watch(&netmesh.TaskFilter{Status: netmesh.TaskPending}))
	defer w.Close()
	rows := must(w.Next(ctx5(t)))
	if got := ids(rows, taskID); !reflect.DeepEqual(got, []uint64{1}) {
		t.Fatalf("first = %v", got)
	}
	must(tasks.Create(2, "b"))
	rows = must(w.Next(ctx5(t)))
	if got := ids(rows, taskID); !reflect.DeepEqual(got, []uint64{1, 2}) {
		t.Fatalf("after create = %v", got)
	}
	must(tasks.Complete(1))
	rows = must(w.Next(ctx5(t)))
	if got := ids(rows, taskID); !reflect.DeepEqual(got, []uint64{2}) {
		t.Fatalf("after complete = %v", got)
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := w.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("idle next: %v", err)
	}
	// Updates: a channel; closing the watch ends it.
	ch := w.Updates(context.Background())
	must(tasks.Create(3, "c"))
	ev := <-ch
	if ev.Err != nil || len(ev.Rows) != 2 {
		t.Fatalf("update = %+v", ev)
	}
	_ = w.Close()
	for range ch {
	}
}

func TestWatchLagAndSnapshotAndWatch(t *testing.T) {
	tasks := must(netmesh.OpenTasks(memRedex(t), 7, netmesh.ModelConfig{ChangesCapacity: 2}))
	defer tasks.Close()
	_ = tasks.WaitForSeq(ctx5(t), must(tasks.Create(1, "a")))
	current, w, err := tasks.SnapshotAndWatch(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if got := ids(current, taskID); !reflect.DeepEqual(got, []uint64{1}) {
		t.Fatalf("current = %v", got)
	}
	var last uint64
	for i := uint64(2); i <= 40; i++ {
		last = must(tasks.Create(i, "x"))
	}
	_ = tasks.WaitForSeq(ctx5(t), last)
	lagged := false
	for {
		rows, err := w.Next(ctx5(t))
		var lag *netmesh.WatchLaggedError
		if errors.As(err, &lag) {
			if lag.Missed == 0 || !errors.Is(err, netmesh.ErrLagged) {
				t.Fatalf("lag = %+v", lag)
			}
			lagged = true
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 40 {
			break
		}
	}
	if !lagged {
		t.Fatal("a reader 39 changes behind with capacity 2 was not told it lagged")
	}
}

func TestSnapshotRestoreAndPersistence(t *testing.T) {
	dir := t.TempDir()
	r := must(netmesh.OpenRedex(dir))
	cfg := netmesh.ModelConfig{File: netmesh.FileConfig{Persistent: true}}
	tasks := must(netmesh.OpenTasks(r, 7, cfg))
	for i := uint64(0); i < 5; i++ {
		must(tasks.Create(i, "t"))
	}
	last := must(tasks.Complete(3))
	_ = tasks.WaitForSeq(ctx5(t), last)
	before := must(tasks.FindMany(nil))
	snap := must(tasks.Snapshot())
	if !snap.HasLastSeq || snap.LastSeq != last || len(snap.Data) == 0 {
		t.Fatalf("snapshot = %+v", snap)
	}
	appSeq := must(tasks.Progress()).AppSeq
	if err := tasks.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cortex", "tasks")); err != nil {
		t.Fatal(err)
	}
	reopened := must(netmesh.OpenTasks(r, 7, cfg))
	_ = reopened.WaitForSeq(ctx5(t), last)
	if after := must(reopened.FindMany(nil)); !reflect.DeepEqual(after, before) {
		t.Fatalf("reopened state %v != %v", after, before)
	}
	if p := must(reopened.Progress()); p.AppSeq != appSeq {
		t.Fatalf("app seq %d != %d", p.AppSeq, appSeq)
	}
	_ = reopened.Close()
	_ = r.Close()

	restored := must(netmesh.RestoreTasks(memRedex(t), 7, netmesh.ModelConfig{}, snap))
	defer restored.Close()
	if after := must(restored.FindMany(nil)); !reflect.DeepEqual(after, before) {
		t.Fatalf("restored state %v != %v", after, before)
	}
	_, err := netmesh.RestoreTasks(memRedex(t), 7, netmesh.ModelConfig{}, netmesh.ModelSnapshot{Data: []byte{0xff, 0xff, 0xff}})
	expectIs(t, err, netmesh.ErrCortexSnapshot)
}

func TestHaltedFoldAndInvalidInput(t *testing.T) {
	r := memRedex(t)
	tasks := must(netmesh.OpenTasks(r, 7, netmesh.ModelConfig{Policy: netmesh.PolicyStop}))
	defer tasks.Close()
	_ = tasks.WaitForSeq(ctx5(t), must(tasks.Create(1, "ok")))
	log := must(r.OpenFile("cortex/tasks", netmesh.FileConfig{}))
	// The log handle shares the model's file: closing it would close the
	// model's file too, so it stays open until the test ends.
	defer log.Close()
	bad := must(log.Append([]byte("\x00garbage, not an EventMeta record")))
	// Waits forever unless the halted fold ends the wait (it does, at once).
	expectIs(t, tasks.WaitForSeq(context.Background(), bad+1), netmesh.ErrCortexHalted)
	deadline := time.Now().Add(30 * time.Second)
	for must(tasks.Progress()).Running && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	p := must(tasks.Progress())
	if p.Running || p.Errors != 1 || p.LastError == nil {
		t.Fatalf("progress = %+v", p)
	}
	_, err := tasks.Create(2, "refused")
	expectIs(t, err, netmesh.ErrCortexHalted)

	_, err = tasks.FindMany(&netmesh.TaskFilter{OrderBy: "nope"})
	expectIs(t, err, netmesh.ErrCortexInvalidQuery)
	if !strings.Contains(err.Error(), "nope") {
		t.Fatalf("query error does not name the value: %v", err)
	}
	_, err = netmesh.OpenTasks(r, 7, netmesh.ModelConfig{Policy: "sometimes"})
	expectIs(t, err, netmesh.ErrCortexInvalidConfig)
	if !strings.Contains(err.Error(), "policy") {
		t.Fatalf("config error does not name the key: %v", err)
	}
}

func TestStartLive(t *testing.T) {
	r := memRedex(t)
	tasks := must(netmesh.OpenTasks(r, 7, netmesh.ModelConfig{}))
	_ = tasks.WaitForSeq(ctx5(t), must(tasks.Create(1, "old")))
	_ = tasks.Close()
	live := must(netmesh.OpenTasks(r, 7, netmesh.ModelConfig{Start: netmesh.StartLive}))
	defer live.Close()
	_ = live.WaitForSeq(ctx5(t), must(live.Create(2, "new")))
	if got := ids(must(live.FindMany(nil)), taskID); !reflect.DeepEqual(got, []uint64{2}) {
		t.Fatalf("live = %v", got)
	}
}

// ---- the three races, per handle type ----

func TestCortexOpAfterClose(t *testing.T) {
	r := memRedex(t)
	tasks := must(netmesh.OpenTasks(r, 1, netmesh.ModelConfig{}))
	mem := must(netmesh.OpenMemories(r, 1, netmesh.ModelConfig{}))
	tw := must(tasks.Watch(nil))
	mw := must(mem.Watch(nil))
	_ = tw.Close()
	_ = mw.Close()
	_ = tasks.Close()
	_ = mem.Close()
	_, err := tasks.Create(1, "x")
	expectIs(t, err, netmesh.ErrShuttingDown)
	_, err = mem.Store(1, "x", nil, "")
	expectIs(t, err, netmesh.ErrShuttingDown)
	_, err = tw.Next(context.Background())
	expectIs(t, err, netmesh.ErrShuttingDown)
	_, err = mw.Next(context.Background())
	expectIs(t, err, netmesh.ErrShuttingDown)
	expectIs(t, tasks.WaitForSeq(context.Background(), 0), netmesh.ErrShuttingDown)
}

func okOrClosing(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil && !errors.Is(err, netmesh.ErrShuttingDown) && !errors.Is(err, netmesh.ErrCortexHalted) &&
		!errors.Is(err, netmesh.ErrRedexClosed) && !errors.Is(err, io.EOF) {
		t.Errorf("%s racing Close: %v", what, err)
	}
}

func TestCortexConcurrentClosesWithRacingOps(t *testing.T) {
	r := memRedex(t)
	for round := 0; round < 20; round++ {
		tasks := must(netmesh.OpenTasks(r, 1, netmesh.ModelConfig{}))
		mem := must(netmesh.OpenMemories(r, 1, netmesh.ModelConfig{}))
		tw := must(tasks.Watch(nil))
		mw := must(mem.Watch(nil))
		var wg sync.WaitGroup
		start := make(chan struct{})
		op := func(f func() error, what string) {
			defer wg.Done()
			<-start
			for i := 0; i < 20; i++ {
				okOrClosing(t, what, f())
			}
		}
		short := func() context.Context {
			ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			_ = cancel
			return ctx
		}
		wg.Add(6)
		go op(func() error { _, err := tasks.Create(uint64(round), "t"); return err }, "create")
		go op(func() error { _, err := mem.Store(uint64(round), "m", []string{"a"}, "s"); return err }, "store")
		go op(func() error { _, err := tasks.FindMany(nil); return err }, "find_many")
		go op(func() error { _, err := mem.Snapshot(); return err }, "snapshot")
		go op(func() error {
			_, err := tw.Next(short())
			if errors.Is(err, context.DeadlineExceeded) {
				return nil
			}
			return err
		}, "tasks watch next")
		go op(func() error {
			_, err := mw.Next(short())
			if errors.Is(err, context.DeadlineExceeded) {
				return nil
			}
			return err
		}, "memories watch next")
		closers := []func() error{tasks.Close, tasks.Close, mem.Close, mem.Close, tw.Close, tw.Close, mw.Close, mw.Close}
		wg.Add(len(closers))
		for _, c := range closers {
			go func(c func() error) {
				defer wg.Done()
				<-start
				if err := c(); err != nil {
					t.Errorf("close: %v", err)
				}
			}(c)
		}
		close(start)
		wg.Wait()
	}
}

// Race 3: Close waits for a write in flight. A 32 MiB write to a persistent
// model is under way when the model is closed: either it got in first (it
// returns its seq, and the free waited for it: the event is in the log when
// the model is opened again) or it was refused (ErrShuttingDown) and the
// round does not count. The delay before Close adapts (see delay).
func TestCortexCloseWaitsForInFlightWrite(t *testing.T) {
	title := strings.Repeat("x", 32<<20)
	for _, kind := range []string{"tasks", "memories"} {
		dir := t.TempDir()
		cfg := netmesh.ModelConfig{File: netmesh.FileConfig{Persistent: true}}
		delay := newDelay()
		netmesh.UntilWon(t, 40, 1, func(round int) bool {
			r := must(netmesh.OpenRedex(dir))
			defer r.Close()
			id := uint64(round)
			var write func() (uint64, error)
			var closeIt func() error
			if kind == "tasks" {
				tasks := must(netmesh.OpenTasks(r, 1, cfg))
				write = func() (uint64, error) { return tasks.Create(id, title) }
				closeIt = tasks.Close
			} else {
				mem := must(netmesh.OpenMemories(r, 1, cfg))
				write = func() (uint64, error) { return mem.Store(id, title, nil, "") }
				closeIt = mem.Close
			}
			var seq uint64
			var writeErr error
			closeErr, overWhenClosed := delay.closeDuring(func() { seq, writeErr = write() }, closeIt)
			if closeErr != nil {
				t.Fatalf("%s close: %v", kind, closeErr)
			}
			switch {
			case errors.Is(writeErr, netmesh.ErrShuttingDown):
				delay.tooEarly()
				return false
			case writeErr != nil:
				t.Fatalf("%s write in flight: %v", kind, writeErr)
			}
			// The write completed before the model's file closed.
			var found bool
			if kind == "tasks" {
				again := must(netmesh.OpenTasks(r, 1, cfg))
				_ = again.WaitForSeq(ctx5(t), seq)
				_, found, _ = again.FindUnique(id)
				_ = again.Close()
			} else {
				again := must(netmesh.OpenMemories(r, 1, cfg))
				_ = again.WaitForSeq(ctx5(t), seq)
				_, found, _ = again.FindUnique(id)
				_ = again.Close()
			}
			if !found {
				t.Fatalf("%s: the write that returned seq %d is not in the reopened model", kind, seq)
			}
			if overWhenClosed {
				delay.tooLate()
				return false
			}
			return true
		})
	}
}

// The generic model: Kind, and Shutdown (net_model_close) ending the fold
// while the handle stays valid until Close.
func TestModelKindAndShutdown(t *testing.T) {
	r := memRedex(t)
	tasks := must(netmesh.OpenTasks(r, 1, netmesh.ModelConfig{}))
	mem := must(netmesh.OpenMemories(r, 1, netmesh.ModelConfig{}))
	if tasks.Kind() != netmesh.ModelTasks || mem.Kind() != netmesh.ModelMemories ||
		tasks.Kind().String() != "tasks" || mem.Kind().String() != "memories" {
		t.Fatalf("kinds %v %v", tasks.Kind(), mem.Kind())
	}
	seq := must(tasks.Create(1, "kept"))
	if err := tasks.WaitForSeq(ctx5(t), seq); err != nil {
		t.Fatal(err)
	}
	w := must(tasks.Watch(nil))
	defer w.Close()
	must(w.Next(ctx5(t)))
	if err := tasks.Shutdown(); err != nil {
		t.Fatal(err)
	}
	// Writes are refused, a wait for a later seq ends at once, the watch
	// ends, and queries answer from the last state.
	if _, err := tasks.Create(2, "refused"); err == nil {
		t.Fatal("a write after Shutdown succeeded")
	}
	expectIs(t, tasks.WaitForSeq(context.Background(), seq+10), netmesh.ErrCortexHalted)
	if _, err := w.Next(context.Background()); err != io.EOF {
		t.Fatalf("watch Next after the model's Shutdown: %v", err)
	}
	if got := ids(must(tasks.FindMany(nil)), taskID); !reflect.DeepEqual(got, []uint64{1}) {
		t.Fatalf("rows after Shutdown = %v", got)
	}
	if err := tasks.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := tasks.FindMany(nil)
	expectIs(t, err, netmesh.ErrShuttingDown)
	if err := mem.Close(); err != nil {
		t.Fatal(err)
	}
}
