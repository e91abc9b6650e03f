package netmesh_test

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netmesh/net/sdk-go/netmesh"
)

// Every method of an Identity, run once; returns the first error.
func allIdentityOps(id *netmesh.Identity) []error {
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	_, err := id.PublicKey()
	add(err)
	_, err = id.EntityID()
	add(err)
	_, err = id.Seed()
	add(err)
	_, err = id.IsReadOnly()
	add(err)
	_, err = id.OriginHash()
	add(err)
	_, err = id.NodeID()
	add(err)
	sig, err := id.Sign([]byte("m"))
	add(err)
	if sig == nil {
		sig = make([]byte, 64)
	}
	add(id.Verify([]byte("m"), sig))
	_, err = netmesh.IssueToken(id, bytes.Repeat([]byte{1}, 32), netmesh.ScopePublish, 1, time.Hour, 0)
	add(err)
	_, err = netmesh.SealEnvelope(id, bytes.Repeat([]byte{2}, 32), make([]byte, 32))
	add(err)
	return errs
}

// Race 1: any operation after Close fails with ErrShuttingDown, also when
// Close happens on another goroutine while operations are running.
func TestOpAfterCloseIsShuttingDown(t *testing.T) {
	for i := 0; i < 200; i++ {
		id := mustSeed(t, seedA)
		if err := id.Close(); err != nil {
			t.Fatal(err)
		}
		for j, err := range allIdentityOps(id) {
			if !errors.Is(err, netmesh.ErrShuttingDown) {
				t.Fatalf("op %d after Close: %v, want ErrShuttingDown", j, err)
			}
		}
	}

	const rounds, workers = 100, 4
	for i := 0; i < rounds; i++ {
		id := mustSeed(t, seedA)
		var closed atomic.Bool
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for {
					after := closed.Load()
					_, err := id.OriginHash()
					switch {
					case err == nil && after:
						t.Error("OriginHash succeeded after Close returned")
						return
					case err != nil && !errors.Is(err, netmesh.ErrShuttingDown):
						t.Errorf("OriginHash racing Close: %v", err)
						return
					case err != nil:
						return // closed: the expected end
					}
				}
			}()
		}
		close(start)
		runtime.Gosched()
		if err := id.Close(); err != nil {
			t.Fatal(err)
		}
		closed.Store(true)
		wg.Wait()
		_, err := id.Sign([]byte("late"))
		expectIs(t, err, netmesh.ErrShuttingDown)
	}
}

// Race 2: many goroutines close the same identity concurrently with each
// other and with operations; nothing crashes and every Close returns nil.
func TestConcurrentClose(t *testing.T) {
	const rounds, closers, users = 200, 8, 4
	for i := 0; i < rounds; i++ {
		id := mustSeed(t, seedB)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for c := 0; c < closers; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if err := id.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
		}
		for u := 0; u < users; u++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for k := 0; k < 10; k++ {
					for _, err := range allIdentityOps(id) {
						if err != nil && !errors.Is(err, netmesh.ErrShuttingDown) {
							t.Errorf("op racing Close: %v", err)
							return
						}
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		if err := id.Close(); err != nil {
			t.Fatalf("Close after close: %v", err)
		}
	}
}

// Race 3: Close waits for a Sign already inside libnet. A 64 MiB Sign is in
// flight when the identity is closed: either it got in first (it completes
// with a valid signature: the free did not drop the key under it) or it was
// refused (ErrShuttingDown) and the round does not count. The delay before
// Close adapts (see delay); no clock is read. (That the free returns only
// after the call left libnet is shown through raw pointers, with a C-side
// flag, in the internal tests.)
func TestCloseWaitsForInFlightSign(t *testing.T) {
	seed := bytes.Repeat([]byte{0x07}, 32)
	verifier := mustSeed(t, seed) // a second handle on the same key
	msg := make([]byte, 64<<20)
	for i := range msg {
		msg[i] = byte(i * 31)
	}
	delay := newDelay()
	netmesh.UntilWon(t, 40, 3, func(int) bool {
		id := mustSeed(t, seed)
		var sig []byte
		var signErr error
		closeErr, overWhenClosed := delay.closeDuring(func() { sig, signErr = id.Sign(msg) }, id.Close)
		if closeErr != nil {
			t.Fatal(closeErr)
		}
		if errors.Is(signErr, netmesh.ErrShuttingDown) {
			delay.tooEarly()
			return false
		}
		if signErr != nil {
			t.Fatalf("in-flight Sign: %v", signErr)
		}
		if err := verifier.Verify(msg, sig); err != nil {
			t.Fatalf("signature from the in-flight Sign does not verify: %v", err)
		}
		if overWhenClosed {
			delay.tooLate()
			return false
		}
		return true
	})
}

// An Identity that is never closed is freed by its finalizer; a closed one
// has its finalizer cleared. Either way nothing crashes.
func TestFinalizerSafetyNet(t *testing.T) {
	quietLogs(t) // the leaks are on purpose
	for i := 0; i < 100; i++ {
		id, err := netmesh.GenerateIdentity()
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			_ = id.Close()
		}
	}
	runtime.GC()
	runtime.GC()
}

// quietLogs discards the SDK's log records (such as the leak warnings of
// tests that leak on purpose) for the rest of the test.
func quietLogs(t *testing.T) {
	netmesh.SetLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { netmesh.SetLogger(nil) })
}
