package netmesh_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netmesh/net/sdk-go/netmesh"
)

// The three close/free races of every RedEX handle type (manager, file,
// tail): (1) calls after Close fail with ErrShuttingDown, also while Close
// runs on another goroutine; (2) concurrent Closes are idempotent and racing
// calls do not crash; (3) Close waits for a call in flight. The raw-pointer
// halves (libnet's own guard answering NET_ERR_SHUTTING_DOWN) are in
// redex_internal_test.go.

// bigPayload is the ~48 MiB payload of the in-flight races.
var bigPayload = sync.OnceValue(func() []byte {
	b := make([]byte, 48<<20)
	for i := range b {
		b[i] = byte(i*131 + i>>16)
	}
	return b
})

// okOrShuttingDown fails the test for any error but ErrShuttingDown.
func okOrShuttingDown(t *testing.T, what string, err error) bool {
	t.Helper()
	if err != nil && !errors.Is(err, netmesh.ErrShuttingDown) {
		t.Errorf("%s racing Close: %v", what, err)
		return false
	}
	return err == nil
}

// ---- manager ----

func TestRedexManagerOpAfterClose(t *testing.T) {
	r, err := netmesh.OpenRedex("")
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Close()
	_, err = r.OpenFile("after/close", netmesh.FileConfig{})
	expectIs(t, err, netmesh.ErrShuttingDown)
	_, err = r.OpenFileJSON("after/close", "")
	expectIs(t, err, netmesh.ErrShuttingDown)

	for round := 0; round < 50; round++ {
		r, err := netmesh.OpenRedex("")
		if err != nil {
			t.Fatal(err)
		}
		var closed atomic.Bool
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				<-start
				for k := 0; ; k++ {
					after := closed.Load()
					f, err := r.OpenFile(fmt.Sprintf("race/w%d/f%d", w, k%8), netmesh.FileConfig{})
					if err == nil {
						_ = f.Close()
					}
					switch {
					case err == nil && after:
						t.Error("OpenFile succeeded after Close returned")
						return
					case !okOrShuttingDown(t, "OpenFile", err):
						return
					}
				}
			}(w)
		}
		close(start)
		runtime.Gosched()
		_ = r.Close()
		closed.Store(true)
		wg.Wait()
	}
}

func TestRedexManagerConcurrentClose(t *testing.T) {
	for round := 0; round < 50; round++ {
		r, err := netmesh.OpenRedex(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for c := 0; c < 8; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if err := r.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
		}
		for u := 0; u < 3; u++ {
			wg.Add(1)
			go func(u int) {
				defer wg.Done()
				<-start
				for k := 0; k < 5; k++ {
					f, err := r.OpenFile(fmt.Sprintf("cc/u%d", u), netmesh.FileConfig{Persistent: k%2 == 0})
					if !okOrShuttingDown(t, "OpenFile", err) {
						continue
					}
					if _, err := f.Append([]byte("x")); err != nil {
						t.Errorf("Append on a file opened while its manager closes: %v", err)
					}
					_ = f.Close()
				}
			}(u)
		}
		close(start)
		wg.Wait()
		_ = r.Close()
	}
}

// An OpenFile recovering ~48 MiB is in flight when the manager is closed:
// either it got in first (it completes, and the file it returns works and
// outlives its manager) or it was refused (ErrShuttingDown) and the round
// does not count. The delay before Close adapts (see delay).
func TestRedexManagerCloseWaitsForInFlightOpen(t *testing.T) {
	dir := t.TempDir()
	cfg := netmesh.FileConfig{Persistent: true}
	func() {
		r := mustRedex(t, dir)
		f := mustOpenFile(t, r, "big/recover", cfg)
		chunk := bigPayload()[:1<<20]
		batch := make([][]byte, 48)
		for i := range batch {
			batch[i] = chunk
		}
		if _, _, err := f.AppendBatch(batch); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	entries := uint64(48)
	delay := newDelay()
	netmesh.UntilWon(t, 40, 3, func(int) bool {
		r, err := netmesh.OpenRedex(dir)
		if err != nil {
			t.Fatal(err)
		}
		var f *netmesh.RedexFile
		var openErr error
		closeErr, overWhenClosed := delay.closeDuring(func() { f, openErr = r.OpenFile("big/recover", cfg) }, r.Close)
		if closeErr != nil {
			t.Fatalf("Close with an open in flight: %v", closeErr)
		}
		if errors.Is(openErr, netmesh.ErrShuttingDown) {
			delay.tooEarly()
			return false
		}
		if openErr != nil {
			t.Fatalf("in-flight OpenFile: %v", openErr)
		}
		// The file outlives its manager.
		n, err := f.Len()
		if err != nil || n != entries {
			t.Fatalf("file opened while its manager closed: %d entries, %v; want %d", n, err, entries)
		}
		if _, err := f.Append([]byte("after the manager closed")); err != nil {
			t.Fatalf("append after the manager closed: %v", err)
		}
		entries++
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if overWhenClosed {
			delay.tooLate()
			return false
		}
		return true
	})
}

// ---- file ----

func allFileOps(f *netmesh.RedexFile) []error {
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	_, err := f.Append([]byte("a"))
	add(err)
	_, err = f.AppendInline([]byte("12345678"))
	add(err)
	_, _, err = f.AppendBatch([][]byte{[]byte("b")})
	add(err)
	_, _, err = f.AppendBatch(nil)
	add(err)
	_, _, err = f.Read(0)
	add(err)
	_, err = f.ReadRange(0, 10)
	add(err)
	_, err = f.NextSeq()
	add(err)
	_, err = f.Len()
	add(err)
	add(f.Sync())
	_, err = f.SweepRetention()
	add(err)
	tail, err := f.Tail(0)
	if err == nil {
		_ = tail.Close()
	}
	add(err)
	return errs
}

func TestRedexFileOpAfterClose(t *testing.T) {
	for i := 0; i < 50; i++ {
		f := memFile(t, "file/after", netmesh.FileConfig{})
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		for j, err := range allFileOps(f) {
			if !errors.Is(err, netmesh.ErrShuttingDown) {
				t.Fatalf("op %d after Close: %v, want ErrShuttingDown", j, err)
			}
		}
	}

	dir := t.TempDir()
	for round := 0; round < 25; round++ {
		r := mustRedex(t, dir)
		f, err := r.OpenFile("file/race", netmesh.FileConfig{Persistent: true})
		if err != nil {
			t.Fatal(err)
		}
		var closed atomic.Bool
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for {
					after := closed.Load()
					_, err := f.Append([]byte("racing"))
					switch {
					case err == nil && after:
						t.Error("Append succeeded after Close returned")
						return
					case !okOrShuttingDown(t, "Append", err):
						return
					}
				}
			}()
		}
		close(start)
		netmesh.LetItBlock()
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		closed.Store(true)
		wg.Wait()
		_ = r.Close()
	}
}

func TestRedexFileConcurrentClose(t *testing.T) {
	dir := t.TempDir()
	for round := 0; round < 100; round++ {
		r := mustRedex(t, dir)
		f, err := r.OpenFile("file/cc", netmesh.FileConfig{Persistent: round%2 == 0})
		if err != nil {
			t.Fatal(err)
		}
		tail, err := f.Tail(0)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for c := 0; c < 8; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if err := f.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
		}
		for u := 0; u < 3; u++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for k := 0; k < 5; k++ {
					for _, err := range allFileOps(f) {
						okOrShuttingDown(t, "file op", err)
					}
				}
			}()
		}
		wg.Add(1)
		go func() { // a tail reading through it all ends cleanly
			defer wg.Done()
			for {
				_, err := tail.Next(context.Background())
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Errorf("tail of a closing file: %v", err)
					return
				}
			}
		}()
		close(start)
		wg.Wait()
		_ = tail.Close()
		_ = r.Close()
	}
}

// A 48 MiB Append to a persistent file is in flight when the file is
// closed: either it got in first (it completes, Close syncs it, and the entry
// is on disk after reopening: the close waited for it) or it was refused
// (ErrShuttingDown, nothing appended) and the round does not count. The delay
// before Close adapts (see delay).
func TestRedexFileCloseWaitsForInFlightAppend(t *testing.T) {
	dir := t.TempDir()
	cfg := netmesh.FileConfig{Persistent: true}
	payload := bigPayload()
	r := mustRedex(t, dir)

	delay := newDelay()
	netmesh.UntilWon(t, 40, 3, func(attempt int) bool {
		name := fmt.Sprintf("inflight/a%d", attempt)
		defer os.RemoveAll(filepath.Join(dir, "inflight", fmt.Sprintf("a%d", attempt)))
		f, err := r.OpenFile(name, cfg)
		if err != nil {
			t.Fatal(err)
		}
		mustAppend(t, f, []byte("before"))
		var seq uint64
		var appendErr error
		closeErr, overWhenClosed := delay.closeDuring(func() { seq, appendErr = f.Append(payload) }, f.Close)
		if closeErr != nil {
			t.Fatalf("Close: %v", closeErr)
		}

		reopened := mustOpenFile(t, r, name, cfg)
		defer reopened.Close()
		n, _ := reopened.NextSeq()
		if errors.Is(appendErr, netmesh.ErrShuttingDown) {
			if n != 1 {
				t.Fatalf("a refused Append left %d entries", n)
			}
			delay.tooEarly()
			return false
		}
		if appendErr != nil {
			t.Fatalf("in-flight Append: %v", appendErr)
		}
		onDisk, found, err := reopened.Read(seq)
		if err != nil || !found || !bytes.Equal(onDisk, payload) {
			t.Fatalf("the completed Append is not on disk after reopening (found %v, %d bytes, %v)", found, len(onDisk), err)
		}
		if overWhenClosed {
			delay.tooLate()
			return false
		}
		return true
	})
}

// ---- tail ----

func TestRedexTailOpAfterClose(t *testing.T) {
	f := memFile(t, "tail/after", netmesh.FileConfig{})
	mustAppend(t, f, []byte("x"))
	for i := 0; i < 50; i++ {
		tail, err := f.Tail(0)
		if err != nil {
			t.Fatal(err)
		}
		_ = tail.Close()
		_, err = tail.Next(context.Background())
		expectIs(t, err, netmesh.ErrShuttingDown)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err = tail.Next(ctx)
		cancel()
		expectIs(t, err, netmesh.ErrShuttingDown)
		if ev, ok := <-tail.Entries(context.Background()); ok {
			t.Fatalf("Entries of a closed tail delivered %+v", ev)
		}
	}

	// Next racing Close on other goroutines: an entry, io.EOF (closed while
	// in the call) or ErrShuttingDown (called after), and after Close
	// returned only ErrShuttingDown.
	for round := 0; round < 50; round++ {
		tail, err := f.Tail(0)
		if err != nil {
			t.Fatal(err)
		}
		var closed atomic.Bool
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := 0; w < 3; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				<-start
				ctx := context.Background()
				if w == 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithCancel(ctx)
					defer cancel()
				}
				for {
					after := closed.Load()
					_, err := tail.Next(ctx)
					switch {
					case after && !errors.Is(err, netmesh.ErrShuttingDown):
						t.Errorf("Next after Close returned: %v", err)
						return
					case err == nil, err == io.EOF:
					case errors.Is(err, netmesh.ErrShuttingDown):
						return
					default:
						t.Errorf("Next racing Close: %v", err)
						return
					}
				}
			}(w)
		}
		close(start)
		netmesh.LetItBlock()
		if err := tail.Close(); err != nil {
			t.Fatal(err)
		}
		closed.Store(true)
		wg.Wait()
	}
}

func TestRedexTailConcurrentClose(t *testing.T) {
	f := memFile(t, "tail/cc", netmesh.FileConfig{})
	for round := 0; round < 100; round++ {
		tail, err := f.Tail(0)
		if err != nil {
			t.Fatal(err)
		}
		events := tail.Entries(context.Background())
		var wg sync.WaitGroup
		start := make(chan struct{})
		for c := 0; c < 8; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if err := tail.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
		}
		for u := 0; u < 3; u++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for k := 0; k < 20; k++ {
					_, _ = f.Append([]byte("x"))
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
					_, err := tail.Next(ctx)
					cancel()
					if err != nil && err != io.EOF && !errors.Is(err, context.DeadlineExceeded) &&
						!errors.Is(err, netmesh.ErrShuttingDown) {
						t.Errorf("Next racing Close: %v", err)
						return
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		for range events { // closed once the tail is
		}
	}
}

// Handles that are never closed are freed by their finalizers, in any
// order; nothing crashes, and a persistent channel is unlocked once its
// unreachable file has been finalized.
func TestRedexFinalizers(t *testing.T) {
	quietLogs(t) // the leaks are on purpose
	dir := t.TempDir()
	func() {
		r, _ := netmesh.OpenRedex(dir)
		f, err := r.OpenFile("gc/ch", netmesh.FileConfig{Persistent: true})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = f.Append([]byte("x"))
		_, _ = f.Tail(0)
	}()
	r := mustRedex(t, dir)
	deadline := time.Now().Add(30 * time.Second)
	for {
		runtime.GC()
		f, err := r.OpenFile("gc/ch", netmesh.FileConfig{Persistent: true})
		if err == nil {
			if n, _ := f.Len(); n != 1 {
				t.Fatalf("after finalization: %d entries", n)
			}
			_ = f.Close()
			return
		}
		if !errors.Is(err, netmesh.ErrRedexLocked) || time.Now().After(deadline) {
			t.Fatalf("channel still unavailable: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
