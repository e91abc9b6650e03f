package netmesh

import (
	"testing"
	"time"
)

// Raw-pointer halves of the CortEX handle races: libnet's guard refuses
// calls on freed models and watches (NET_ERR_SHUTTING_DOWN), frees are
// idempotent, and a watch free wakes a blocked next and returns only after
// it left libnet.

func TestCortexRawPointersAfterFree(t *testing.T) {
	r, err := OpenRedex("")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tasks, err := OpenTasks(r, 1, ModelConfig{})
	if err != nil {
		t.Fatal(err)
	}
	mem, err := OpenMemories(r, 1, ModelConfig{})
	if err != nil {
		t.Fatal(err)
	}
	tw, _ := tasks.Watch(nil)
	mw, _ := mem.Watch(nil)
	raws := []rawModel{rawTasksForTest(tasks), rawMemoriesForTest(mem)}
	watches := []rawWatch{rawWatchForTest(tw), rawWatchForTest(mw)}
	for _, w := range watches {
		if st := w.next(1000); st != StatusOK {
			t.Fatalf("first watch next: %v", st)
		}
	}
	_ = tw.Close()
	_ = mw.Close()
	_ = tasks.Close()
	_ = mem.Close()
	for _, raw := range raws {
		if st := raw.countWhere(); st != StatusShuttingDown {
			t.Fatalf("count_where after free: %v, want NET_ERR_SHUTTING_DOWN", st)
		}
		if st := raw.waitForSeq(0, 0); st != StatusShuttingDown {
			t.Fatalf("wait_for_seq after free: %v", st)
		}
		raw.free() // idempotent
	}
	for _, w := range watches {
		if st := w.next(0); st != StatusShuttingDown {
			t.Fatalf("watch next after free: %v", st)
		}
		w.free()
	}
}

func TestCortexRawWatchFreeWaitsForBlockedNext(t *testing.T) {
	r, err := OpenRedex("")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tasks, _ := OpenTasks(r, 1, ModelConfig{})
	defer tasks.Close()
	mem, _ := OpenMemories(r, 1, ModelConfig{})
	defer mem.Close()
	for round := 0; round < 10; round++ {
		for kind := 0; kind < 2; kind++ {
			var rw rawWatch
			var closeIt func()
			if kind == 0 {
				w, err := tasks.Watch(nil)
				if err != nil {
					t.Fatal(err)
				}
				rw, closeIt = rawWatchForTest(w), func() { _ = w.Close() }
			} else {
				w, err := mem.Watch(nil)
				if err != nil {
					t.Fatal(err)
				}
				rw, closeIt = rawWatchForTest(w), func() { _ = w.Close() }
			}
			if st := rw.next(1000); st != StatusOK { // the current rows
				t.Fatalf("first next: %v", st)
			}
			left := newCFlag()
			res := make(chan Status, 1)
			go func() { res <- rw.nextMarked(waitForever, left) }()
			time.Sleep(20 * time.Millisecond)
			if left.load() {
				t.Fatal("watch next returned with no change")
			}
			begin := time.Now()
			if !rw.freeCheck(left) {
				t.Fatal("watch free returned while watch next was still inside libnet")
			}
			if d := time.Since(begin); d > 2*time.Second {
				t.Fatalf("the free took %v", d)
			}
			if st := <-res; st != StatusEnd {
				t.Fatalf("blocked next woken by the free returned %v, want NET_END", st)
			}
			left.release()
			closeIt() // the Go handle's Close after the raw free: a no-op in libnet
		}
	}
}
