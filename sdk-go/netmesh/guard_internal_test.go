package netmesh

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/netmesh/net/sdk-go/netmesh/internal/ffitest"
)

// These tests go around the Go-side closed check and call libnet through
// the raw C pointer (internal/ffitest), to show that libnet's HandleGuard
// itself refuses calls on a freed handle, and check the finalizers.

func TestRawPointerAfterFreeIsShuttingDown(t *testing.T) {
	for i := 0; i < 100; i++ {
		id, err := IdentityFromSeed(bytes.Repeat([]byte{byte(i)}, 32))
		if err != nil {
			t.Fatal(err)
		}
		raw := id.h.load()
		if raw == nil {
			t.Fatal("no raw handle")
		}
		want, err := id.OriginHash()
		if err != nil {
			t.Fatal(err)
		}
		if got, st, _ := ffitest.IdentityOriginHash(raw); st != ffitest.OK || got != want {
			t.Fatalf("raw call on live handle: %#x %v", got, Status(st))
		}
		if err := id.Close(); err != nil {
			t.Fatal(err)
		}
		if id.h.load() != nil {
			t.Fatal("Close left the handle in place")
		}
		_, st, msg := ffitest.IdentityOriginHash(raw)
		if st != ffitest.ShuttingDown {
			t.Fatalf("raw call after free: status %v, want NET_ERR_SHUTTING_DOWN", Status(st))
		}
		if msg == "" {
			t.Fatal("no net_last_error_message after NET_ERR_SHUTTING_DOWN")
		}
		if _, st := ffitest.IdentitySign(raw, []byte("x")); st != ffitest.ShuttingDown {
			t.Fatalf("raw sign after free: %v", Status(st))
		}
		// Idempotent: a second free of the same pointer is a no-op, NET_OK.
		if st := ffitest.IdentityFree(raw); st != ffitest.OK {
			t.Fatalf("second free: %v", Status(st))
		}
		if _, st, _ := ffitest.IdentityOriginHash(raw); st != ffitest.ShuttingDown {
			t.Fatalf("after double free: %v", Status(st))
		}
	}
}

// Raw calls race raw frees on many goroutines: every call returns OK or
// NET_ERR_SHUTTING_DOWN, never anything else, every free NET_OK, and
// nothing crashes.
func TestRawCallsRacingFree(t *testing.T) {
	for round := 0; round < 200; round++ {
		id, err := GenerateIdentity()
		if err != nil {
			t.Fatal(err)
		}
		raw := id.h.load()
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for k := 0; k < 50; k++ {
					_, st, _ := ffitest.IdentityOriginHash(raw)
					if st != ffitest.OK && st != ffitest.ShuttingDown {
						t.Errorf("raw call racing free: %v", Status(st))
						return
					}
					if _, st := ffitest.IdentitySign(raw, []byte("m")); st != ffitest.OK && st != ffitest.ShuttingDown {
						t.Errorf("raw sign racing free: %v", Status(st))
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
				if st := ffitest.IdentityFree(raw); st != ffitest.OK {
					t.Errorf("racing free: %v", Status(st))
				}
			}()
		}
		close(start)
		wg.Wait()
		if _, st, _ := ffitest.IdentityOriginHash(raw); st != ffitest.ShuttingDown {
			t.Fatalf("after the racing frees: %v", Status(st))
		}
		if err := id.Close(); err != nil { // the Go side still frees (a no-op in libnet now)
			t.Fatal(err)
		}
	}
}

// captureLogs sends the SDK's log records (and libnet's) to a buffer for the
// rest of the test.
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
	h   slog.Handler
}

func captureLogs(t *testing.T) *logCapture {
	c := &logCapture{}
	c.h = slog.NewTextHandler(lockedWriter{c}, &slog.HandlerOptions{Level: slog.LevelDebug - 4})
	SetLogger(slog.New(c.h))
	t.Cleanup(func() { SetLogger(nil) })
	return c
}

type lockedWriter struct{ c *logCapture }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	return w.c.buf.Write(p)
}

func (c *logCapture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// waitFor polls cond (after garbage collections) for up to 30 s: garbage
// collection and finalizers run when the runtime decides, so this waits for
// an eventual effect and asserts nothing about how soon it comes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
}

// The finalizer frees an identity that was never closed, on a goroutine of
// its own, and logs the leak.
func TestFinalizerFreesHandleAndWarns(t *testing.T) {
	logs := captureLogs(t)
	raw := func() unsafe.Pointer {
		id, err := GenerateIdentity()
		if err != nil {
			t.Fatal(err)
		}
		return id.h.load()
	}()
	waitFor(t, "the finalizer freed an unreachable Identity", func() bool {
		_, st, _ := ffitest.IdentityOriginHash(raw)
		return st == ffitest.ShuttingDown
	})
	if !strings.Contains(logs.String(), "netmesh.Identity was garbage collected without Close") {
		t.Fatalf("no leak warning logged: %q", logs.String())
	}
}

// A finalizer never waits for the free: while the free of a leaked identity
// waits for a long Sign still running on its raw pointer, the finalizer has
// already returned and other finalizers keep running. Proven without a
// clock: a probe finalizer runs (on the one finalizer goroutine, after the
// leaked identity's) while the C-side flag says the Sign has not returned,
// so the free is still waiting for it in the background.
func TestFinalizerNeverBlocks(t *testing.T) {
	logs := captureLogs(t)
	msg := ffitest.NewCBuffer(256 << 20) // signing hashes it twice: long enough
	defer msg.Release()
	UntilWon(t, 5, 1, func(int) bool {
		signed := ffitest.NewFlag()
		defer signed.Release()
		started := make(chan struct{})
		result := make(chan int32, 1)
		raw := func() unsafe.Pointer {
			id, err := GenerateIdentity()
			if err != nil {
				t.Fatal(err)
			}
			return id.h.load()
		}()
		go func() {
			close(started)
			result <- ffitest.IdentitySignMarked(raw, msg, signed)
		}()
		<-started
		LetItBlock()
		before := strings.Count(logs.String(), "netmesh.Identity was garbage collected")
		waitFor(t, "the leaked identity's finalizer ran", func() bool {
			return strings.Count(logs.String(), "netmesh.Identity was garbage collected") > before
		})
		probed := make(chan bool, 1)
		func() {
			probe := new([16]byte)
			runtime.SetFinalizer(probe, func(*[16]byte) { probed <- signed.Load() })
		}()
		var signDoneWhenProbed bool
		waitFor(t, "the probe finalizer ran", func() bool {
			select {
			case signDoneWhenProbed = <-probed:
				return true
			default:
				return false
			}
		})
		st := <-result
		if st != ffitest.OK && st != ffitest.ShuttingDown {
			t.Fatalf("sign on the leaked identity: %v", Status(st))
		}
		// The background free completes once the sign is over.
		waitFor(t, "the background free completed", func() bool {
			_, st, _ := ffitest.IdentityOriginHash(raw)
			return st == ffitest.ShuttingDown
		})
		// Won when the sign was inside libnet all along (OK) and still
		// running when the probe ran.
		return st == ffitest.OK && !signDoneWhenProbed
	})
}

// stallingRedis is a Redis server on the loopback interface that answers
// the adapter's startup (CLIENT ..., PING) but never acknowledges an XADD:
// the bus's dispatch of a batch then waits as long as the command timeout.
func stallingRedis(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var open []net.Conn
	var served sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range open {
			_ = c.Close()
		}
		mu.Unlock()
		served.Wait()
	})
	served.Add(1)
	go func() {
		defer served.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			served.Add(1)
			go func() {
				defer served.Done()
				r := bufio.NewReader(c)
				for {
					args, err := readRESPCommand(r)
					if err != nil {
						return
					}
					switch strings.ToUpper(args[0]) {
					case "PING":
						_, err = c.Write([]byte("+PONG\r\n"))
					case "XADD": // never answered
					default:
						_, err = c.Write([]byte("+OK\r\n"))
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return "redis://" + ln.Addr().String()
}

// readRESPCommand reads one command: an array of bulk strings.
func readRESPCommand(r *bufio.Reader) ([]string, error) {
	header := func(kind byte) (int, error) {
		line, err := r.ReadString('\n')
		if err != nil {
			return 0, err
		}
		if len(line) < 3 || line[0] != kind {
			return 0, fmt.Errorf("unexpected RESP line %q", line)
		}
		return strconv.Atoi(strings.TrimSpace(line[1:]))
	}
	n, err := header('*')
	if err != nil {
		return nil, err
	}
	args := make([]string, n)
	for i := range args {
		k, err := header('$')
		if err != nil {
			return nil, err
		}
		b := make([]byte, k+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		args[i] = string(b[:k])
	}
	if n == 0 {
		return nil, errors.New("empty RESP command")
	}
	return args, nil
}

// Close returns the free's status: a bus whose shutdown loses events (its
// adapter never acknowledges them, and the shutdown timeout is 1 ms) returns
// an error matching ErrBusy, saying how many; a second Close returns the
// same outcome. libnet's warning about it reaches slog too.
func TestCloseReturnsBusyWhenTheFreeFails(t *testing.T) {
	logs := captureLogs(t)
	b, err := NewBus(BusConfig{
		"num_shards":          1,
		"adapter":             map[string]any{"type": "redis", "url": stallingRedis(t), "command_timeout_ms": 600000},
		"batch":               map[string]any{"min_size": 1, "max_size": 1, "max_delay_ms": 1},
		"shutdown_timeout_ms": 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{"x", "y"} {
		if err := b.Ingest([]byte(e)); err != nil {
			t.Fatal(err)
		}
	}
	err = b.Close()
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "lossily") || !strings.Contains(err.Error(), "2 stranded") {
		t.Fatalf("Close of a bus that lost events: %v", err)
	}
	if again := b.Close(); again != err {
		t.Fatalf("a second Close returned %v, not the free's outcome %v", again, err)
	}
	if err := b.Ingest([]byte("late")); !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("after Close: %v", err)
	}
	waitFor(t, "libnet's warning about the lost events reached slog", func() bool {
		return strings.Contains(logs.String(), "shutdown lost events")
	})
}

func TestRawChannelHashMatchesWrapper(t *testing.T) {
	h, st := ffitest.ChannelHash([]byte("sensors/lidar"))
	if st != ffitest.OK || h != 0xe5d8 {
		t.Fatalf("raw channel hash %#x %v", h, Status(st))
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
		if got := ffitest.StatusName(int32(s)); got != info.name {
			t.Fatalf("libnet names %d %q, the SDK table says %q", int32(s), got, info.name)
		}
	}
	if got := Status(-9999).String(); got != "NET_UNKNOWN_STATUS(-9999)" {
		t.Fatalf("unknown status String() = %q", got)
	}
}
