package netmesh

import (
	"runtime"
	"sync"
	"testing"

	"github.com/netmesh/net/sdk-go/netmesh/internal/ffitest"
)

// These tests call libnet through the raw RedEX handle pointers, around the
// Go-side closed checks, to show that libnet's own handle guard refuses
// calls on freed handles (NET_ERR_SHUTTING_DOWN) and makes frees wait.

func TestRedexRawPointersAfterFree(t *testing.T) {
	for i := 0; i < 20; i++ {
		r, err := OpenRedex("")
		if err != nil {
			t.Fatal(err)
		}
		f, err := r.OpenFile("raw/after", FileConfig{})
		if err != nil {
			t.Fatal(err)
		}
		tail, err := f.Tail(0)
		if err != nil {
			t.Fatal(err)
		}
		rr, rf, rt := r.h.load(), f.h.load(), tail.h.load()
		if rr == nil || rf == nil || rt == nil {
			t.Fatal("no raw handle")
		}
		if seq, st, _ := ffitest.FileAppend(rf, []byte("live")); st != ffitest.OK || seq != 0 {
			t.Fatalf("raw append on a live file: %d %v", seq, Status(st))
		}
		if seq, payload, st, _ := ffitest.TailNext(rt, 0); st != ffitest.OK || seq != 0 || string(payload) != "live" {
			t.Fatalf("raw next on a live tail: %d %q %v", seq, payload, Status(st))
		}
		if _, _, st, _ := ffitest.TailNext(rt, 0); st != ffitest.Timeout {
			t.Fatalf("raw next with nothing to read: %v", Status(st))
		}

		for _, c := range []func() error{tail.Close, f.Close, r.Close} {
			if err := c(); err != nil {
				t.Fatal(err)
			}
		}
		if r.h.load() != nil || f.h.load() != nil || tail.h.load() != nil {
			t.Fatal("Close left a handle in place")
		}

		if _, st, msg := ffitest.RedexOpenFile(rr, "raw/after2", ""); st != ffitest.ShuttingDown || msg == "" {
			t.Fatalf("raw open_file after free: %v %q", Status(st), msg)
		}
		if _, st, msg := ffitest.FileAppend(rf, []byte("x")); st != ffitest.ShuttingDown || msg == "" {
			t.Fatalf("raw append after free: %v %q", Status(st), msg)
		}
		if _, st := ffitest.FileNextSeq(rf); st != ffitest.ShuttingDown {
			t.Fatalf("raw next_seq after free: %v", Status(st))
		}
		if _, st := ffitest.FileTail(rf, 0); st != ffitest.ShuttingDown {
			t.Fatalf("raw tail after free: %v", Status(st))
		}
		// A pull call on a handle freed before it started is refused at the
		// door (NET_ERR_SHUTTING_DOWN), never NET_END, with its message in
		// the call's net_error_t.
		if _, _, st, msg := ffitest.TailNext(rt, 0); st != ffitest.ShuttingDown || msg == "" {
			t.Fatalf("raw tail next after free: %v %q", Status(st), msg)
		}
		if _, _, st, _ := ffitest.TailNext(rt, ffitest.WaitForever); st != ffitest.ShuttingDown {
			t.Fatalf("raw blocking tail next after free: %v", Status(st))
		}
		// A second free of the same pointer is a no-op that returns NET_OK.
		for _, st := range []int32{ffitest.RedexFree(rr), ffitest.FileFree(rf), ffitest.TailFree(rt)} {
			if st != ffitest.OK {
				t.Fatalf("second free: %v", Status(st))
			}
		}
		if _, st := ffitest.FileNextSeq(rf); st != ffitest.ShuttingDown {
			t.Fatalf("after double free: %v", Status(st))
		}
	}
}

// Raw calls race raw frees on many goroutines: every call returns a normal
// outcome or NET_ERR_SHUTTING_DOWN, and nothing crashes.
func TestRedexRawCallsRacingFree(t *testing.T) {
	for round := 0; round < 100; round++ {
		r, err := OpenRedex("")
		if err != nil {
			t.Fatal(err)
		}
		f, err := r.OpenFile("raw/race", FileConfig{})
		if err != nil {
			t.Fatal(err)
		}
		tail, err := f.Tail(0)
		if err != nil {
			t.Fatal(err)
		}
		rr, rf, rt := r.h.load(), f.h.load(), tail.h.load()
		var wg sync.WaitGroup
		start := make(chan struct{})
		worker := func(body func() bool) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for k := 0; k < 30; k++ {
					if !body() {
						return
					}
				}
			}()
		}
		worker(func() bool {
			file, st, _ := ffitest.RedexOpenFile(rr, "raw/race", "")
			switch st {
			case ffitest.OK:
				ffitest.FileFree(file) // another handle on the same file: closes it
			case ffitest.ShuttingDown:
			default:
				t.Errorf("raw open_file racing free: %v", Status(st))
				return false
			}
			return true
		})
		worker(func() bool {
			// Closing the file through a second handle (above) makes
			// appends fail with NET_ERR_REDEX_CLOSED: also a clean answer.
			if _, st, _ := ffitest.FileAppend(rf, []byte("m")); st != ffitest.OK && st != ffitest.ShuttingDown && Status(st) != StatusRedexClosed {
				t.Errorf("raw append racing free: %v", Status(st))
				return false
			}
			return true
		})
		worker(func() bool {
			if _, _, st, _ := ffitest.TailNext(rt, 1); st != ffitest.OK && st != ffitest.Timeout && st != ffitest.End && st != ffitest.ShuttingDown {
				t.Errorf("raw tail next racing free: %v", Status(st))
				return false
			}
			return true
		})
		frees := []func() int32{
			func() int32 { return ffitest.RedexFree(rr) }, func() int32 { return ffitest.RedexFree(rr) },
			func() int32 { return ffitest.FileFree(rf) }, func() int32 { return ffitest.FileFree(rf) },
			func() int32 { return ffitest.TailFree(rt) }, func() int32 { return ffitest.TailFree(rt) },
		}
		for _, free := range frees {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				runtime.Gosched()
				if st := free(); st != ffitest.OK {
					t.Errorf("racing free: %v", Status(st))
				}
			}()
		}
		close(start)
		wg.Wait()
		if _, st := ffitest.FileNextSeq(rf); st != ffitest.ShuttingDown {
			t.Fatalf("after the racing frees: %v", Status(st))
		}
		// The Go side still frees (no-ops in libnet now).
		for _, c := range []func() error{tail.Close, f.Close, r.Close} {
			if err := c(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// A net_redex_tail_next blocked with NET_WAIT_FOREVER is woken by
// net_redex_tail_free and returns NET_END, and the free returns only after
// that call has left libnet: the C helper sets a flag right after
// net_redex_tail_next returns and reads it right after net_redex_tail_free
// returns. A round counts when the call was really waiting (NET_END; a
// free that came first gives NET_ERR_SHUTTING_DOWN).
func TestRedexRawTailFreeWaitsForBlockedNext(t *testing.T) {
	r, err := OpenRedex("")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, err := r.OpenFile("raw/wake", FileConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	UntilWon(t, 200, 5, func(int) bool {
		tail, err := f.Tail(0)
		if err != nil {
			t.Fatal(err)
		}
		defer tail.Close()
		rt := tail.h.load()
		return freeWakesBlockedCall(t, "net_redex_tail_next", "net_redex_tail_free",
			func(left ffitest.Flag) int32 { return ffitest.TailNextMarked(rt, left) },
			func(left ffitest.Flag) (bool, int32) { return ffitest.TailFreeCheck(rt, left) })
	})
}
