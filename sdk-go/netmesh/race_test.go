package netmesh_test

import (
	"bytes"
	"errors"
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

// Race 3: Close waits for a Sign already inside libnet. A 64 MiB Sign takes
// a few hundred ms; Close is called ~50 ms into it. Either the Sign wins (it
// completes with a valid signature and Close returns only after it), or it
// lost the race to enter libnet (ErrShuttingDown) and the round is retried.
func TestCloseWaitsForInFlightSign(t *testing.T) {
	seed := bytes.Repeat([]byte{0x07}, 32)
	verifier := mustSeed(t, seed) // a second handle on the same key

	msg := make([]byte, 64<<20)
	for i := range msg {
		msg[i] = byte(i * 31)
	}
	begin := time.Now()
	if _, err := verifier.Sign(msg); err != nil {
		t.Fatal(err)
	}
	signTime := time.Since(begin)
	// Keep the Sign long enough that "Close returned early" is unambiguous.
	for signTime < 150*time.Millisecond && len(msg) < 512<<20 {
		msg = append(msg, msg...)
		signTime *= 2
	}
	slack := signTime / 4
	t.Logf("signing %d MiB takes ~%v", len(msg)>>20, signTime)

	type result struct {
		sig  []byte
		err  error
		done time.Time
	}
	won := 0
	for attempt := 1; attempt <= 20 && won < 3; attempt++ {
		id := mustSeed(t, seed)
		res := make(chan result, 1)
		go func() {
			sig, err := id.Sign(msg)
			res <- result{sig, err, time.Now()}
		}()
		time.Sleep(50 * time.Millisecond)
		closeStart := time.Now()
		if err := id.Close(); err != nil {
			t.Fatal(err)
		}
		closeEnd := time.Now()
		r := <-res

		if errors.Is(r.err, netmesh.ErrShuttingDown) {
			t.Logf("attempt %d: Sign lost the race to Close, retrying", attempt)
			continue
		}
		if r.err != nil {
			t.Fatalf("in-flight Sign: %v", r.err)
		}
		if err := verifier.Verify(msg, r.sig); err != nil {
			t.Fatalf("signature from the in-flight Sign does not verify: %v", err)
		}
		if r.done.Before(closeStart) {
			t.Logf("attempt %d: Sign finished before Close was called, retrying", attempt)
			continue
		}
		if closeEnd.Before(r.done.Add(-slack)) {
			t.Fatalf("Close returned %v before the in-flight Sign completed", r.done.Sub(closeEnd))
		}
		t.Logf("attempt %d: Close waited %v for the in-flight Sign", attempt, closeEnd.Sub(closeStart))
		won++
	}
	if won == 0 {
		t.Fatal("never caught Close racing an in-flight Sign")
	}
}

// An Identity that is never closed is freed by its finalizer; a closed one
// has its finalizer cleared. Either way nothing crashes.
func TestFinalizerSafetyNet(t *testing.T) {
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
