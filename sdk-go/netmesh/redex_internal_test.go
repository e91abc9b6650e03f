package netmesh

import (
	"sync"
	"testing"
	"time"
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
		rr, rf, rt := rawRedexHandleForTest(r), rawFileHandleForTest(f), rawTailHandleForTest(tail)
		if rr.isNil() || rf.isNil() || rt.isNil() {
			t.Fatal("no raw handle")
		}
		if seq, st, _ := rf.append([]byte("live")); st != StatusOK || seq != 0 {
			t.Fatalf("raw append on a live file: %d %v", seq, st)
		}
		if seq, payload, st, _ := rt.next(0); st != StatusOK || seq != 0 || string(payload) != "live" {
			t.Fatalf("raw next on a live tail: %d %q %v", seq, payload, st)
		}
		if _, _, st, _ := rt.next(0); st != StatusTimeout {
			t.Fatalf("raw next with nothing to read: %v", st)
		}

		_ = tail.Close()
		_ = f.Close()
		_ = r.Close()
		if !rawRedexHandleForTest(r).isNil() || !rawFileHandleForTest(f).isNil() || !rawTailHandleForTest(tail).isNil() {
			t.Fatal("Close left a handle in place")
		}

		if _, st, msg := rr.openFile("raw/after2", ""); st != StatusShuttingDown || msg == "" {
			t.Fatalf("raw open_file after free: %v %q", st, msg)
		}
		if _, st, msg := rf.append([]byte("x")); st != StatusShuttingDown || msg == "" {
			t.Fatalf("raw append after free: %v %q", st, msg)
		}
		if _, st, _ := rf.nextSeq(); st != StatusShuttingDown {
			t.Fatalf("raw next_seq after free: %v", st)
		}
		if _, st := rf.tail(0); st != StatusShuttingDown {
			t.Fatalf("raw tail after free: %v", st)
		}
		if _, _, st, msg := rt.next(0); st != StatusShuttingDown || msg == "" {
			t.Fatalf("raw tail next after free: %v %q", st, msg)
		}
		if _, _, st, _ := rt.next(waitForever); st != StatusShuttingDown {
			t.Fatalf("raw blocking tail next after free: %v", st)
		}
		// A second free of the same pointer is a no-op.
		rr.free()
		rf.free()
		rt.free()
		if _, st, _ := rf.nextSeq(); st != StatusShuttingDown {
			t.Fatalf("after double free: %v", st)
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
		rr, rf, rt := rawRedexHandleForTest(r), rawFileHandleForTest(f), rawTailHandleForTest(tail)
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
			file, st, _ := rr.openFile("raw/race", "")
			switch st {
			case StatusOK:
				file.free() // another handle on the same file: closes it
			case StatusShuttingDown:
			default:
				t.Errorf("raw open_file racing free: %v", st)
				return false
			}
			return true
		})
		worker(func() bool {
			// Closing the file through a second handle (above) makes
			// appends fail with NET_ERR_REDEX_CLOSED: also a clean answer.
			if _, st, _ := rf.append([]byte("m")); st != StatusOK && st != StatusShuttingDown && st != StatusRedexClosed {
				t.Errorf("raw append racing free: %v", st)
				return false
			}
			return true
		})
		worker(func() bool {
			if _, _, st, _ := rt.next(1); st != StatusOK && st != StatusTimeout && st != StatusEnd && st != StatusShuttingDown {
				t.Errorf("raw tail next racing free: %v", st)
				return false
			}
			return true
		})
		for _, free := range []func(){rr.free, rr.free, rf.free, rf.free, rt.free, rt.free} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				time.Sleep(50 * time.Microsecond)
				free()
			}()
		}
		close(start)
		wg.Wait()
		if _, st, _ := rf.nextSeq(); st != StatusShuttingDown {
			t.Fatalf("after the racing frees: %v", st)
		}
		_ = tail.Close() // the Go side still frees (no-ops in libnet now)
		_ = f.Close()
		_ = r.Close()
	}
}

// A net_redex_tail_next blocked with NET_WAIT_FOREVER is woken by
// net_redex_tail_free and returns NET_END, and the free returns only after
// that call has left libnet: the C helper sets a flag right after
// net_redex_tail_next returns and reads it right after net_redex_tail_free
// returns.
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
	for round := 0; round < 20; round++ {
		tail, err := f.Tail(0)
		if err != nil {
			t.Fatal(err)
		}
		rt := rawTailHandleForTest(tail)
		left := newCFlag()
		res := make(chan Status, 1)
		go func() { res <- rt.nextMarked(waitForever, left) }()
		time.Sleep(20 * time.Millisecond)
		if left.load() {
			t.Fatal("net_redex_tail_next returned with nothing to read")
		}
		begin := time.Now()
		if !rt.freeCheck(left) {
			t.Fatal("net_redex_tail_free returned while net_redex_tail_next was still inside libnet")
		}
		if d := time.Since(begin); d > 2*time.Second {
			t.Fatalf("the free took %v (drain timeout?)", d)
		}
		if st := <-res; st != StatusEnd {
			t.Fatalf("blocked next woken by the free returned %v, want NET_END", st)
		}
		left.release()
		_ = tail.Close()
	}
}
