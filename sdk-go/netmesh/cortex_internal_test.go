package netmesh

import (
	"testing"
	"unsafe"

	"github.com/netmesh/net/sdk-go/netmesh/internal/ffitest"
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
	models := []unsafe.Pointer{tasks.h.load(), mem.h.load()}
	watches := []unsafe.Pointer{tw.h.load(), mw.h.load()}
	for _, w := range watches {
		if st := ffitest.WatchNext(w, 1000); st != ffitest.OK {
			t.Fatalf("first watch next: %v", Status(st))
		}
	}
	for _, c := range []func() error{tw.Close, mw.Close, tasks.Close, mem.Close} {
		if err := c(); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range models {
		if st := ffitest.ModelCountWhere(m); st != ffitest.ShuttingDown {
			t.Fatalf("count_where after free: %v, want NET_ERR_SHUTTING_DOWN", Status(st))
		}
		if st, msg := ffitest.ModelWaitForSeq(m, 0, 0); st != ffitest.ShuttingDown || msg == "" {
			t.Fatalf("wait_for_seq after free: %v %q", Status(st), msg)
		}
		if st := ffitest.ModelFree(m); st != ffitest.OK { // idempotent
			t.Fatalf("second free: %v", Status(st))
		}
	}
	for _, w := range watches {
		if st := ffitest.WatchNext(w, 0); st != ffitest.ShuttingDown {
			t.Fatalf("watch next after free: %v", Status(st))
		}
		if st := ffitest.WatchFree(w); st != ffitest.OK {
			t.Fatalf("second watch free: %v", Status(st))
		}
	}
}

// A watch free wakes a next blocked forever (NET_END) and returns only once
// that call has left libnet (C-side flag, see the RedEX tail's test).
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
	for kind := 0; kind < 2; kind++ {
		UntilWon(t, 200, 3, func(int) bool {
			var rw unsafe.Pointer
			var closeIt func() error
			if kind == 0 {
				w, err := tasks.Watch(nil)
				if err != nil {
					t.Fatal(err)
				}
				rw, closeIt = w.h.load(), w.Close
			} else {
				w, err := mem.Watch(nil)
				if err != nil {
					t.Fatal(err)
				}
				rw, closeIt = w.h.load(), w.Close
			}
			// The Go handle's Close after the raw free: a no-op in libnet.
			defer closeIt()
			// The current rows.
			if st := ffitest.WatchNext(rw, 5000); st != ffitest.OK {
				t.Fatalf("first next: %v", Status(st))
			}
			return freeWakesBlockedCall(t, "net_model_watch_next", "net_model_watch_free",
				func(left ffitest.Flag) int32 { return ffitest.WatchNextMarked(rw, left) },
				func(left ffitest.Flag) (bool, int32) { return ffitest.WatchFreeCheck(rw, left) })
		})
	}
}
