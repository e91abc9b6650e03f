package netmesh_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/netmesh/net/sdk-go/netmesh"
)

// For every handle type with blocking calls (RedEX tail, model, model watch,
// mesh node, mesh stream, bus; the log pull is in log_internal_test.go): a
// test that Close wakes a call blocked forever, and one that cancelling its
// context wakes a blocked call. No sleeps: each round starts the call, lets
// it run (netmesh.LetItBlock yields the processor), closes or cancels, and
// the round counts only when the outcome proves the call was waiting:
//
//   - pull calls (Next, Recv) woken by Close return io.EOF (NET_END), while
//     one that Close beat fails with ErrShuttingDown;
//   - other calls woken by Close, and calls woken by a cancel, carry
//     libnet's message "... while the call waited" / "... while it waited"
//     (netmesh.InterruptedWhileWaiting), not "already cancelled when it
//     started" or the Go side's "has been closed".

const rounds, wins = 200, 3

// blockedCall runs call on its own goroutine and returns its result
// channel once it is about to call (and has been let run a while).
func blockedCall[T any](call func() T) <-chan T {
	started := make(chan struct{})
	res := make(chan T, 1)
	go func() {
		close(started)
		res <- call()
	}()
	<-started
	netmesh.LetItBlock()
	return res
}

// expectCancelled checks err is a cancellation by ctx's cancel and says
// whether the call was cancelled while it waited.
func expectCancelled(t *testing.T, err error) bool {
	t.Helper()
	if !errors.Is(err, netmesh.ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call returned %v, want ErrCancelled and context.Canceled", err)
	}
	return netmesh.InterruptedWhileWaiting(err)
}

// ---- RedEX tail ----------------------------------------------------------------

func TestTailCloseWakesNextBlockedForever(t *testing.T) {
	f := memFile(t, "wake/tail", netmesh.FileConfig{})
	netmesh.UntilWon(t, rounds, wins, func(int) bool {
		tail, err := f.Tail(1 << 40) // far ahead: nothing will ever arrive
		if err != nil {
			t.Fatal(err)
		}
		res := blockedCall(func() error { _, err := tail.Next(context.Background()); return err })
		if err := tail.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		switch err := <-res; {
		case err == io.EOF:
			return true // woken in its wait (NET_END)
		case errors.Is(err, netmesh.ErrShuttingDown):
			return false // Close came first
		default:
			t.Fatalf("Next woken by Close: %v", err)
			return false
		}
	})
}

func TestTailCancelWakesBlockedNextAndTheTailReadsOn(t *testing.T) {
	f := memFile(t, "wake/tail-cancel", netmesh.FileConfig{})
	tail := mustTail(t, f, 0)
	netmesh.UntilWon(t, rounds, wins, func(int) bool {
		ctx, cancel := context.WithCancel(context.Background())
		res := blockedCall(func() error { _, err := tail.Next(ctx); return err })
		cancel()
		return expectCancelled(t, <-res)
	})
	// A cancelled Next consumed nothing.
	mustAppend(t, f, []byte("after"))
	if e := mustNext(t, tail); e.Seq != 0 || string(e.Payload) != "after" {
		t.Fatalf("after cancelled Nexts: %d %q", e.Seq, e.Payload)
	}
}

// A deadline is a context too: the call is cancelled inside libnet when it
// passes, and the error matches context.DeadlineExceeded.
func TestTailDeadline(t *testing.T) {
	tail := mustTail(t, memFile(t, "wake/deadline", netmesh.FileConfig{}), 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := tail.Next(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, netmesh.ErrCancelled) || errors.Is(err, context.Canceled) {
		t.Fatalf("Next past its deadline: %v", err)
	}
}

// ---- models ----------------------------------------------------------------------

// anyModel is a model of either kind, seen through what these tests use.
type anyModel struct {
	name  string
	wait  func(context.Context, uint64) error
	write func(id uint64) (uint64, error)
	watch func() (next func(context.Context) error, close func() error)
	close func() error
}

// openKind opens a model of kind 0 (tasks) or 1 (memories) on r.
func openKind(t *testing.T, r *netmesh.Redex, kind int) anyModel {
	if kind == 0 {
		tasks := must(netmesh.OpenTasks(r, 1, netmesh.ModelConfig{}))
		t.Cleanup(func() { _ = tasks.Close() })
		return anyModel{"tasks", tasks.WaitForSeq, func(id uint64) (uint64, error) { return tasks.Create(id, "t") },
			func() (func(context.Context) error, func() error) {
				_, w := must2(tasks.SnapshotAndWatch(nil))
				return func(ctx context.Context) error { _, err := w.Next(ctx); return err }, w.Close
			}, tasks.Close}
	}
	mem := must(netmesh.OpenMemories(r, 1, netmesh.ModelConfig{}))
	t.Cleanup(func() { _ = mem.Close() })
	return anyModel{"memories", mem.WaitForSeq, func(id uint64) (uint64, error) { return mem.Store(id, "m", nil, "") },
		func() (func(context.Context) error, func() error) {
			_, w := must2(mem.SnapshotAndWatch(nil))
			return func(ctx context.Context) error { _, err := w.Next(ctx); return err }, w.Close
		}, mem.Close}
}

// both opens a model of each kind on r.
func both(t *testing.T, r *netmesh.Redex) []anyModel {
	return []anyModel{openKind(t, r, 0), openKind(t, r, 1)}
}

func must2[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		panic(err)
	}
	return a, b
}

func TestModelCloseWakesWaitForSeqBlockedForever(t *testing.T) {
	r := memRedex(t)
	for kind := 0; kind < 2; kind++ {
		netmesh.UntilWon(t, rounds, wins, func(int) bool {
			m := openKind(t, r, kind)
			res := blockedCall(func() error { return m.wait(context.Background(), 1_000_000) })
			if err := m.close(); err != nil {
				t.Fatalf("%s Close: %v", m.name, err)
			}
			err := <-res
			expectIs(t, err, netmesh.ErrShuttingDown)
			return netmesh.InterruptedWhileWaiting(err) // "... freed while the call waited"
		})
	}
}

func TestModelCancelWakesBlockedWaitForSeq(t *testing.T) {
	for _, m := range both(t, memRedex(t)) {
		netmesh.UntilWon(t, rounds, wins, func(int) bool {
			ctx, cancel := context.WithCancel(context.Background())
			res := blockedCall(func() error { return m.wait(ctx, 1_000_000) })
			cancel()
			return expectCancelled(t, <-res)
		})
		// Waiting still works after cancelled waits.
		seq := must(m.write(1))
		if err := m.wait(ctx5(t), seq); err != nil {
			t.Fatalf("%s wait after cancelled waits: %v", m.name, err)
		}
	}
}

func TestWatchCloseWakesNextBlockedForever(t *testing.T) {
	for _, m := range both(t, memRedex(t)) {
		netmesh.UntilWon(t, rounds, wins, func(int) bool {
			next, closeWatch := m.watch()
			res := blockedCall(func() error { return next(context.Background()) })
			if err := closeWatch(); err != nil {
				t.Fatalf("watch Close: %v", err)
			}
			switch err := <-res; {
			case err == io.EOF:
				return true
			case errors.Is(err, netmesh.ErrShuttingDown):
				return false
			default:
				t.Fatalf("%s watch Next woken by Close: %v", m.name, err)
				return false
			}
		})
	}
}

// Closing a model ends its watches: a Next blocked on one returns io.EOF
// (and so does every later Next: the watch outlives its model until its own
// Close). A Next that only starts after the model closed ends the same way,
// so a round counts when the call was under way, and not over, at the close.
func TestModelCloseEndsItsWatchesBlockedForever(t *testing.T) {
	r := memRedex(t)
	for kind := 0; kind < 2; kind++ {
		netmesh.UntilWon(t, rounds, wins, func(int) bool {
			m := openKind(t, r, kind)
			next, closeWatch := m.watch()
			defer closeWatch()
			res := blockedCall(func() error { return next(context.Background()) })
			underWay := len(res) == 0
			if err := m.close(); err != nil {
				t.Fatalf("%s Close: %v", m.name, err)
			}
			if err := <-res; err != io.EOF {
				t.Fatalf("%s watch Next when its model closed: %v", m.name, err)
			}
			if err := next(context.Background()); err != io.EOF {
				t.Fatalf("%s watch Next after its model closed: %v", m.name, err)
			}
			return underWay
		})
	}
}

func TestWatchCancelWakesBlockedNext(t *testing.T) {
	for _, m := range both(t, memRedex(t)) {
		next, closeWatch := m.watch()
		netmesh.UntilWon(t, rounds, wins, func(int) bool {
			ctx, cancel := context.WithCancel(context.Background())
			res := blockedCall(func() error { return next(ctx) })
			cancel()
			return expectCancelled(t, <-res)
		})
		// The watch still works after cancelled calls.
		must(m.write(9))
		if err := next(ctx5(t)); err != nil {
			t.Fatalf("%s watch after cancelled Nexts: %v", m.name, err)
		}
		_ = closeWatch()
	}
}

// ---- mesh node and stream ----------------------------------------------------------

func TestMeshCloseWakesRecvBlockedForever(t *testing.T) {
	netmesh.UntilWon(t, rounds, wins, func(round int) bool {
		m := must(netmesh.NewMesh(netmesh.MeshConfig{}))
		res := blockedCall(func() error {
			if round%2 == 0 {
				_, err := m.RecvNext(context.Background())
				return err
			}
			_, err := m.Recv(context.Background(), 16)
			return err
		})
		if err := m.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		switch err := <-res; {
		case err == io.EOF:
			return true // woken in its wait (NET_END)
		case errors.Is(err, netmesh.ErrShuttingDown):
			return false
		default:
			t.Fatalf("recv woken by Close: %v", err)
			return false
		}
	})
}

func TestMeshCloseWakesAcceptBlockedForever(t *testing.T) {
	netmesh.UntilWon(t, rounds, wins, func(int) bool {
		m := must(netmesh.NewMesh(netmesh.MeshConfig{}))
		res := blockedCall(func() error { _, err := m.Accept(context.Background(), 99); return err })
		if err := m.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		err := <-res
		expectIs(t, err, netmesh.ErrShuttingDown)
		// Woken in its wait ("shut down"), not refused at the door.
		var e *netmesh.Error
		return errors.As(err, &e) && strings.Contains(e.Message, "shut down")
	})
}

func TestMeshCancelWakesBlockedRecvAcceptAndConnect(t *testing.T) {
	a := must(netmesh.NewMesh(netmesh.MeshConfig{PSK: meshPSK, HandshakeTimeout: time.Hour, HandshakeRetries: 1}))
	defer a.Close()
	// A node with another PSK never answers a's handshakes.
	stranger := must(netmesh.NewMesh(netmesh.MeshConfig{}))
	defer stranger.Close()
	calls := []func(ctx context.Context) error{
		func(ctx context.Context) error { _, err := a.RecvNext(ctx); return err },
		func(ctx context.Context) error { _, err := a.Recv(ctx, 8); return err },
		func(ctx context.Context) error { _, err := a.Accept(ctx, 99); return err },
		func(ctx context.Context) error {
			return a.Connect(ctx, must(stranger.LocalAddr()), must(stranger.PublicKey()), must(stranger.NodeID()))
		},
	}
	for i, call := range calls {
		netmesh.UntilWon(t, rounds, wins, func(int) bool {
			ctx, cancel := context.WithCancel(context.Background())
			res := blockedCall(func() error { return call(ctx) })
			cancel()
			err := <-res
			if !errors.Is(err, netmesh.ErrCancelled) || !errors.Is(err, context.Canceled) {
				t.Fatalf("call %d cancelled: %v", i, err)
			}
			var e *netmesh.Error
			return errors.As(err, &e) && !strings.Contains(e.Message, "already cancelled")
		})
	}
	// The node works on.
	b := fastMesh(t, nil)
	if err := a.Connect(ctx5(t), must(b.LocalAddr()), must(b.PublicKey()), must(b.NodeID())); err != nil {
		t.Fatal(err)
	}
}

// stalledStream is a stream from a whose window (200 bytes) is spent after
// one 100-byte event and will never be granted again: its peer is shut down.
func stalledStream(t *testing.T, a, b *netmesh.Mesh) *netmesh.MeshStream {
	w := uint64(200)
	s := must(a.OpenStream(must(b.NodeID()), 1, false, &w))
	if err := s.Send(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMeshStreamCloseWakesSendBlockedForever(t *testing.T) {
	a, b := connectPair(t)
	if err := b.Shutdown(); err != nil { // no grants will come
		t.Fatal(err)
	}
	netmesh.UntilWon(t, rounds, wins, func(int) bool {
		s := stalledStream(t, a, b)
		res := blockedCall(func() error { return s.SendBlocking(context.Background(), make([]byte, 100)) })
		if err := s.Close(); err != nil {
			t.Fatalf("stream Close: %v", err)
		}
		switch err := <-res; {
		case errors.Is(err, netmesh.ErrMeshStreamClosed):
			return true // woken in its wait
		case errors.Is(err, netmesh.ErrShuttingDown):
			return false
		default:
			t.Fatalf("send woken by the stream's Close: %v", err)
			return false
		}
	})
}

func TestMeshStreamCancelWakesBlockedSend(t *testing.T) {
	a, b := connectPair(t)
	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	s := stalledStream(t, a, b)
	defer s.Close()
	netmesh.UntilWon(t, rounds, wins, func(int) bool {
		ctx, cancel := context.WithCancel(context.Background())
		res := blockedCall(func() error { return s.SendBlocking(ctx, make([]byte, 100)) })
		cancel()
		err := <-res
		if !errors.Is(err, netmesh.ErrCancelled) || !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled send: %v", err)
		}
		var e *netmesh.Error
		return errors.As(err, &e) && !strings.Contains(e.Message, "already cancelled")
	})
}

// ---- bus ---------------------------------------------------------------------------

// patientBus is a bus whose flush waits far longer than any test round: its
// one event sits in the batcher (a minute's delay, a batch of a thousand)
// and the flush may wait ten minutes.
func patientBus(t *testing.T) *netmesh.Bus {
	b := must(netmesh.NewBus(netmesh.BusConfig{
		"num_shards":          1,
		"adapter":             map[string]any{"type": "redex"},
		"batch":               map[string]any{"min_size": 1000, "max_size": 1000, "max_delay_ms": 60000},
		"shutdown_timeout_ms": 600000,
	}))
	t.Cleanup(func() { _ = b.Close() })
	if err := b.Ingest([]byte("one")); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBusCloseWakesFlushBlockedForever(t *testing.T) {
	netmesh.UntilWon(t, rounds, wins, func(int) bool {
		b := patientBus(t)
		res := blockedCall(func() error { return b.Flush(context.Background()) })
		// The free wakes the flush, then shuts the bus down losslessly (the
		// event is dispatched by the shutdown's drain).
		if err := b.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		err := <-res
		expectIs(t, err, netmesh.ErrShuttingDown)
		return netmesh.InterruptedWhileWaiting(err)
	})
}

func TestBusCancelWakesBlockedFlush(t *testing.T) {
	b := patientBus(t)
	netmesh.UntilWon(t, rounds, wins, func(int) bool {
		ctx, cancel := context.WithCancel(context.Background())
		res := blockedCall(func() error { return b.Flush(ctx) })
		cancel()
		err := <-res
		if !errors.Is(err, netmesh.ErrCancelled) || !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled flush: %v", err)
		}
		var e *netmesh.Error
		return errors.As(err, &e) && !strings.Contains(e.Message, "already cancelled")
	})
	// Nothing was lost by the cancelled flushes: the shutdown drains the event.
	rep, err := b.Shutdown()
	if err != nil || rep.ShutdownWasLossy {
		t.Fatalf("%+v %v", rep, err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}
