package netmesh_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/netmesh/net/sdk-go/netmesh"
)

var bothModels = netmesh.NetDBConfig{WithTasks: true, WithMemories: true}

func openDB(t *testing.T, r *netmesh.Redex, cfg netmesh.NetDBConfig) *netmesh.NetDB {
	t.Helper()
	db, err := netmesh.OpenNetDB(r, 7, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestNetDBOperationsThroughBothModels(t *testing.T) {
	db := openDB(t, memRedex(t), bothModels)
	tasks := must(db.Tasks())
	memories := must(db.Memories())
	if again := must(db.Tasks()); again != tasks {
		t.Fatal("Tasks() is not the same value on every call")
	}
	must(tasks.Create(1, "write the report"))
	must(tasks.Create(big, "big"))
	done := must(tasks.Complete(1))
	must(memories.Store(10, "the sky is blue", []string{"color", "sky"}, "eyes"))
	pin := must(memories.Pin(10))
	if err := tasks.WaitForSeq(ctx5(t), done); err != nil {
		t.Fatal(err)
	}
	if err := memories.WaitForSeq(ctx5(t), pin); err != nil {
		t.Fatal(err)
	}
	one, ok, err := tasks.FindUnique(1)
	if err != nil || !ok || one.Status != netmesh.TaskCompleted {
		t.Fatalf("task 1 = %+v %v %v", one, ok, err)
	}
	if n := must(tasks.CountWhere(nil)); n != 2 {
		t.Fatalf("%d tasks, want 2", n)
	}
	mem, ok, err := memories.FindUnique(10)
	if err != nil || !ok || !mem.Pinned || mem.Source != "eyes" || len(mem.Tags) != 2 {
		t.Fatalf("memory 10 = %+v %v %v", mem, ok, err)
	}
	if got := tasks.Kind(); got != netmesh.ModelTasks {
		t.Fatalf("kind %v", got)
	}
}

func TestNetDBWithOneModelRefusesTheOther(t *testing.T) {
	db := openDB(t, memRedex(t), netmesh.NetDBConfig{WithMemories: true})
	if _, err := db.Tasks(); !errors.Is(err, netmesh.ErrInvalidArgument) {
		t.Fatalf("Tasks() of a memories-only NetDB: %v", err)
	}
	must(db.Memories())
	_, err := netmesh.OpenNetDB(memRedex(t), 7, netmesh.NetDBConfig{WithTasks: true, Policy: "retry"})
	if !errors.Is(err, netmesh.ErrCortexInvalidConfig) {
		t.Fatalf("a bad policy: %v", err)
	}
	_, err = netmesh.OpenNetDB(memRedex(t), 7, netmesh.NetDBConfig{WithTasks: true, Persistent: true})
	if !errors.Is(err, netmesh.ErrRedexNoPersistentDir) {
		t.Fatalf("persistent on a memory-only redex: %v", err)
	}
}

func TestNetDBBundleRoundTrip(t *testing.T) {
	db := openDB(t, memRedex(t), bothModels)
	tasks, memories := must(db.Tasks()), must(db.Memories())
	must(tasks.Create(1, "one"))
	must(tasks.Create(big, "big"))
	must(memories.Store(5, "remember", []string{"x"}, ""))
	bundle := must(db.SnapshotBundle())
	if len(bundle) == 0 {
		t.Fatal("empty bundle")
	}
	// Written after the cut: not in the bundle.
	must(tasks.Create(3, "later"))

	restored, err := netmesh.OpenNetDBFromBundle(memRedex(t), 7, bothModels, bundle)
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	rt, rm := must(restored.Tasks()), must(restored.Memories())
	if got := ids(must(rt.FindMany(nil)), taskID); len(got) != 2 || got[0] != 1 || got[1] != big {
		t.Fatalf("restored tasks %v", got)
	}
	if got := ids(must(rm.FindMany(nil)), memoryID); len(got) != 1 || got[0] != 5 {
		t.Fatalf("restored memories %v", got)
	}
	// The restored models take writes.
	seq := must(rt.Create(9, "after restore"))
	if err := rt.WaitForSeq(ctx5(t), seq); err != nil {
		t.Fatal(err)
	}
	if n := must(rt.CountWhere(nil)); n != 3 {
		t.Fatalf("%d tasks after a write, want 3", n)
	}
}

func TestNetDBBundleNamingADisabledModelIsRefused(t *testing.T) {
	db := openDB(t, memRedex(t), bothModels)
	must(must(db.Memories()).Store(1, "m", nil, ""))
	bundle := must(db.SnapshotBundle())
	r := memRedex(t)
	_, err := netmesh.OpenNetDBFromBundle(r, 7, netmesh.NetDBConfig{WithTasks: true}, bundle)
	var e *netmesh.Error
	if !errors.Is(err, netmesh.ErrCortexSnapshot) || !errors.As(err, &e) || e.Op != "net_netdb_open_from_bundle" {
		t.Fatalf("a bundle holding memories into a tasks-only NetDB: %v", err)
	}
	_, err = netmesh.OpenNetDBFromBundle(r, 7, bothModels, []byte{1, 9, 1})
	if !errors.Is(err, netmesh.ErrCortexSnapshot) {
		t.Fatalf("a corrupt bundle: %v", err)
	}
	// Nothing was left open on r: the tasks model opens.
	other := openDB(t, r, netmesh.NetDBConfig{WithTasks: true})
	must(must(other.Tasks()).Create(1, "fine"))
}

func TestNetDBFailedOpenLeavesNothingOpen(t *testing.T) {
	dir := t.TempDir()
	r, holder := must(netmesh.OpenRedex(dir)), must(netmesh.OpenRedex(dir))
	defer r.Close()
	defer holder.Close()
	persistent := netmesh.ModelConfig{File: netmesh.FileConfig{Persistent: true}}
	// The memories channel is held by another manager on the directory: the
	// tasks model the NetDB opened first must be closed again.
	held := must(netmesh.OpenMemories(holder, 1, persistent))
	cfg := netmesh.NetDBConfig{WithTasks: true, WithMemories: true, Persistent: true}
	if _, err := netmesh.OpenNetDB(r, 7, cfg); !errors.Is(err, netmesh.ErrRedexLocked) {
		t.Fatalf("open with the memories log held elsewhere: %v", err)
	}
	if err := held.Close(); err != nil {
		t.Fatal(err)
	}
	tasks, err := netmesh.OpenTasks(holder, 1, persistent)
	if err != nil {
		t.Fatalf("the tasks log stayed locked after a failed open: %v", err)
	}
	if err := tasks.Close(); err != nil {
		t.Fatal(err)
	}
	db := must(netmesh.OpenNetDB(r, 7, cfg))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestNetDBPersistentReopens(t *testing.T) {
	dir := t.TempDir()
	cfg := netmesh.NetDBConfig{WithTasks: true, WithMemories: true, Persistent: true}
	r := must(netmesh.OpenRedex(dir))
	db := must(netmesh.OpenNetDB(r, 7, cfg))
	must(must(db.Tasks()).Create(4, "kept"))
	if err := db.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := db.Shutdown(); err != nil {
		t.Fatalf("Shutdown is idempotent: %v", err)
	}
	if _, err := must(db.Tasks()).Create(5, "refused"); err == nil {
		t.Fatal("a write after Shutdown succeeded")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = must(netmesh.OpenRedex(dir))
	defer r.Close()
	again := openDB(t, r, cfg)
	if _, ok, err := must(again.Tasks()).FindUnique(4); err != nil || !ok {
		t.Fatalf("task 4 after reopening: %v %v", ok, err)
	}
}

func TestNetDBUseAfterCloseErrorsCleanly(t *testing.T) {
	db := must(netmesh.OpenNetDB(memRedex(t), 7, bothModels))
	tasks := must(db.Tasks())
	must(tasks.Create(1, "x"))
	// Closing a lent model only lets go of it: the NetDB still serves.
	memories := must(db.Memories())
	if err := memories.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := memories.CountWhere(nil); !errors.Is(err, netmesh.ErrShuttingDown) {
		t.Fatalf("a let-go memories model: %v", err)
	}
	must(db.SnapshotBundle())

	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func(i int) { defer wg.Done(); errs[i] = db.Close() }(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if _, err := db.SnapshotBundle(); !errors.Is(err, netmesh.ErrShuttingDown) {
		t.Fatalf("SnapshotBundle after Close: %v", err)
	}
	if err := db.Shutdown(); !errors.Is(err, netmesh.ErrShuttingDown) {
		t.Fatalf("Shutdown after Close: %v", err)
	}
	if _, err := tasks.Create(2, "y"); !errors.Is(err, netmesh.ErrShuttingDown) {
		t.Fatalf("a lent model after its NetDB closed: %v", err)
	}
	if err := tasks.Close(); err != nil {
		t.Fatal(err)
	}
	var nilDB *netmesh.NetDB
	if err := nilDB.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := nilDB.SnapshotBundle(); !errors.Is(err, netmesh.ErrInvalidArgument) {
		t.Fatalf("nil NetDB: %v", err)
	}
}

// Close races calls in flight on the NetDB and on its lent models: every
// call either succeeds (it ran before the free) or fails with
// ErrShuttingDown; nothing else, and nothing crashes.
func TestNetDBCloseRacesCallsInFlight(t *testing.T) {
	for round := 0; round < 50; round++ {
		db := must(netmesh.OpenNetDB(memRedex(t), 7, bothModels))
		tasks, memories := must(db.Tasks()), must(db.Memories())
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		start := make(chan struct{})
		callers := []func(i uint64) error{
			func(i uint64) error { _, err := tasks.Create(i, "t"); return err },
			func(i uint64) error { _, err := memories.Store(i, "m", []string{"x"}, ""); return err },
			func(uint64) error { _, err := db.SnapshotBundle(); return err },
			func(uint64) error { _, err := tasks.CountWhere(nil); return err },
		}
		for _, call := range callers {
			wg.Add(1)
			go func(call func(uint64) error) {
				defer wg.Done()
				<-start
				for i := uint64(0); ; i++ {
					if err := call(i); err != nil {
						errs <- err
						return
					}
				}
			}(call)
		}
		close(start)
		if err := db.Close(); err != nil {
			t.Fatalf("round %d: Close: %v", round, err)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if !errors.Is(err, netmesh.ErrShuttingDown) {
				t.Fatalf("round %d: a call racing Close: %v", round, err)
			}
		}
	}
}
