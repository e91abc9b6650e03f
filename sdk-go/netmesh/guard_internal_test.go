package netmesh

import (
	"bytes"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
)

// These tests go around the Go-side closed check and call libnet through
// the raw C pointer, to show that libnet's HandleGuard itself refuses calls
// on a freed handle.

func TestRawPointerAfterFreeIsShuttingDown(t *testing.T) {
	for i := 0; i < 100; i++ {
		id, err := IdentityFromSeed(bytes.Repeat([]byte{byte(i)}, 32))
		if err != nil {
			t.Fatal(err)
		}
		raw := rawHandleForTest(id)
		if raw.isNil() {
			t.Fatal("no raw handle")
		}
		want, err := id.OriginHash()
		if err != nil {
			t.Fatal(err)
		}
		if got, st, _ := raw.originHash(); st != StatusOK || got != want {
			t.Fatalf("raw call on live handle: %#x %v", got, st)
		}
		if err := id.Close(); err != nil {
			t.Fatal(err)
		}
		if !rawHandleForTest(id).isNil() {
			t.Fatal("Close left the handle in place")
		}
		_, st, msg := raw.originHash()
		if st != StatusShuttingDown {
			t.Fatalf("raw call after free: status %v, want NET_ERR_SHUTTING_DOWN", st)
		}
		if msg == "" {
			t.Fatal("no net_last_error_message after NET_ERR_SHUTTING_DOWN")
		}
		if _, st := raw.sign([]byte("x")); st != StatusShuttingDown {
			t.Fatalf("raw sign after free: %v", st)
		}
		raw.free() // idempotent: a second free of the same pointer is a no-op
		if _, st, _ := raw.originHash(); st != StatusShuttingDown {
			t.Fatalf("after double free: %v", st)
		}
	}
}

// Raw calls race a raw free on many goroutines: every call returns OK or
// NET_ERR_SHUTTING_DOWN, never anything else, and nothing crashes.
func TestRawCallsRacingFree(t *testing.T) {
	for round := 0; round < 200; round++ {
		id, err := GenerateIdentity()
		if err != nil {
			t.Fatal(err)
		}
		raw := rawHandleForTest(id)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for k := 0; k < 50; k++ {
					_, st, _ := raw.originHash()
					if st != StatusOK && st != StatusShuttingDown {
						t.Errorf("raw call racing free: %v", st)
						return
					}
					if _, st := raw.sign([]byte("m")); st != StatusOK && st != StatusShuttingDown {
						t.Errorf("raw sign racing free: %v", st)
						return
					}
				}
			}()
		}
		for f := 0; f < 2; f++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				runtime.Gosched()
				raw.free()
			}()
		}
		close(start)
		wg.Wait()
		if _, st, _ := raw.originHash(); st != StatusShuttingDown {
			t.Fatalf("after the racing frees: %v", st)
		}
		_ = id.Close() // the Go side still frees (a no-op in libnet now)
	}
}

// The finalizer frees an identity that was never closed.
func TestFinalizerFreesHandle(t *testing.T) {
	raw := func() rawIdentity {
		id, err := GenerateIdentity()
		if err != nil {
			t.Fatal(err)
		}
		return rawHandleForTest(id)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		runtime.GC()
		if _, st, _ := raw.originHash(); st == StatusShuttingDown {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the finalizer never freed an unreachable Identity")
}

func TestRawChannelHashMatchesWrapper(t *testing.T) {
	h, st := rawChannelHash([]byte("sensors/lidar"))
	if st != StatusOK || h != 0xe5d8 {
		t.Fatalf("raw channel hash %#x %v", h, st)
	}
	w, err := ChannelHash("sensors/lidar")
	if err != nil || w != h {
		t.Fatalf("wrapper %#x %v", w, err)
	}
	if _, err := ChannelHash(""); !errors.Is(err, ErrChannelInvalidName) {
		t.Fatalf("empty name: %v", err)
	}
}

func TestStatusTableMatchesLibnetNames(t *testing.T) {
	for s, info := range statusInfos {
		if got := statusNameFromLibnet(s); got != info.name {
			t.Fatalf("libnet names %d %q, the SDK table says %q", int32(s), got, info.name)
		}
	}
	if got := Status(-9999).String(); got != "NET_UNKNOWN_STATUS(-9999)" {
		t.Fatalf("unknown status String() = %q", got)
	}
}
