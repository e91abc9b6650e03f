package netmesh_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netmesh/net/sdk-go/netmesh"
)

const computeProducer = uint64(0xfeed_0000_0000_0001)

var computeSeed = bytesOf(7, 32)

func bytesOf(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// counter counts events, refusing any that is not its producer's next one.
type counter struct {
	mu          sync.Mutex
	count, last uint64
}

func (c *counter) Process(ev netmesh.DaemonEvent) ([][]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ev.Sequence != c.last+1 {
		return nil, fmt.Errorf("sequence %d after %d", ev.Sequence, c.last)
	}
	c.last = ev.Sequence
	c.count++
	return [][]byte{binary.LittleEndian.AppendUint64(nil, c.count)}, nil
}

func (c *counter) Snapshot() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, c.count), c.last), nil
}

func (c *counter) Restore(state []byte) error {
	if len(state) != 16 {
		return fmt.Errorf("bad state: %d bytes", len(state))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count = binary.LittleEndian.Uint64(state)
	c.last = binary.LittleEndian.Uint64(state[8:])
	return nil
}

func (c *counter) value() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count
}

func newCounter() netmesh.Daemon { return &counter{} }

func fastCompute(t *testing.T, m *netmesh.Mesh, cfg netmesh.ComputeConfig) *netmesh.Compute {
	t.Helper()
	c := must(netmesh.NewCompute(m, cfg))
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Register("counter", newCounter, true); err != nil {
		t.Fatal(err)
	}
	return c
}

func countOf(c *netmesh.Compute, origin uint64) uint64 {
	d, ok := c.Daemon(origin)
	if !ok {
		return 0
	}
	return d.(*counter).value()
}

func TestComputeGoCounterMigratesUnderLoadExactlyOnce(t *testing.T) {
	meshes := []*netmesh.Mesh{fastMesh(t, nil), fastMesh(t, nil), fastMesh(t, nil)}
	for _, pair := range [][2]int{{0, 1}, {0, 2}, {1, 2}} {
		a, b := meshes[pair[0]], meshes[pair[1]]
		if err := a.Connect(ctx5(t), must(b.LocalAddr()), must(b.PublicKey()), must(b.NodeID())); err != nil {
			t.Fatal(err)
		}
	}
	cfg := netmesh.ComputeConfig{RetryInterval: 50 * time.Millisecond, StepTimeout: 3 * time.Second,
		SourceTimeout: 6 * time.Second, WorkTimeout: 5 * time.Second, OutputCapacity: 1 << 20, TransferRate: 1 << 30}
	a, b, c := fastCompute(t, meshes[0], cfg), fastCompute(t, meshes[1], cfg), fastCompute(t, meshes[2], cfg)
	origin := must(a.Spawn("counter", computeSeed, nil))
	if got := must(b.Expect("counter", computeSeed)); got != origin {
		t.Fatalf("expect gave %x, spawn %x", got, origin)
	}
	if list := must(a.Daemons()); len(list) != 1 || list[0] != (netmesh.DaemonEntry{Origin: origin, Name: "counter"}) {
		t.Fatalf("daemons: %+v", list)
	}

	var stop atomic.Bool
	var sent atomic.Uint64
	var forwarded, processedAtA atomic.Uint64
	produced := make(chan error, 1)
	go func() {
		for seq := uint64(1); !stop.Load() || seq <= 200; seq++ {
			outcome, err := a.Deliver(origin, computeProducer, seq, binary.LittleEndian.AppendUint64(nil, seq))
			for errors.Is(err, netmesh.ErrComputeBufferFull) {
				// Pushed back: the old node holds as many forwarded
				// events as it may until B acknowledges some. Retry.
				runtime.Gosched()
				outcome, err = a.Deliver(origin, computeProducer, seq, binary.LittleEndian.AppendUint64(nil, seq))
			}
			if err != nil {
				produced <- fmt.Errorf("event %d: %w", seq, err)
				return
			}
			if outcome == netmesh.DeliveryDuplicate {
				produced <- fmt.Errorf("event %d called a duplicate", seq)
				return
			}
			if outcome == netmesh.DeliveryForwarded {
				forwarded.Add(1)
			}
			if outcome == netmesh.DeliveryProcessed {
				processedAtA.Add(1)
			}
			sent.Store(seq)
		}
		produced <- nil
	}()
	if _, ok, err := a.WaitProcessed(context.Background(), origin, 50, 20*time.Second); !ok || err != nil {
		t.Fatalf("events before the move: ok=%v err=%v", ok, err)
	}
	if err := c.StartMigration(origin, must(meshes[0].NodeID()), must(meshes[1].NodeID())); err != nil {
		t.Fatal(err)
	}
	order := []string{"snapshot", "transfer", "restore", "replay", "cutover", "complete"}
	var seen []int
	var done netmesh.MigrationStatus
	for {
		st := must(c.MigrationStatus(origin))
		if i := slices.Index(order, st.Phase); len(seen) == 0 || seen[len(seen)-1] != i {
			seen = append(seen, i)
		}
		status, ok, err := c.WaitMigration(context.Background(), origin, 5*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			done = status
			break
		}
	}
	stop.Store(true)
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	if done != (netmesh.MigrationStatus{State: "completed", Phase: "complete"}) || !done.Done() {
		t.Fatalf("migration ended %+v", done)
	}
	if !slices.IsSorted(seen) || slices.Contains(seen, -1) {
		t.Fatalf("phases out of order: %v", seen)
	}
	if forwarded.Load() == 0 {
		t.Fatal("no event was forwarded after the cut-over")
	}
	total := sent.Load()
	// B applies what A did not: the events buffered during the move and
	// those forwarded after it. The backlog can be large (the producer
	// delivers as fast as it can), so the wait lasts while B makes
	// progress and fails only after 20 s without any.
	for last := uint64(0); ; {
		_, ok, err := b.WaitProcessed(context.Background(), origin, total-processedAtA.Load(), 20*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		now := must(b.Stats(origin)).EventsProcessed
		if now == last {
			t.Fatalf("the target stopped at %d of %d events", now, total-processedAtA.Load())
		}
		last = now
	}
	if got := countOf(b, origin); got != total {
		t.Fatalf("target count %d, sent %d", got, total)
	}
	if st := must(b.Stats(origin)); st.Errors != 0 || st.Name != "counter" {
		t.Fatalf("target stats %+v", st)
	}
	if _, err := a.Stats(origin); !errors.Is(err, netmesh.ErrComputeNotFound) {
		t.Fatalf("source stats: %v", err)
	}
	var last uint64
	for {
		out, ok, err := b.NextOutput(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if out.Daemon != origin {
			t.Fatalf("output of %x", out.Daemon)
		}
		last = binary.LittleEndian.Uint64(out.Payload)
	}
	if last != total {
		t.Fatalf("last output %d, sent %d", last, total)
	}

	// And back, orchestrated by the node it leaves.
	if _, err := a.Expect("counter", computeSeed); err != nil {
		t.Fatal(err)
	}
	if err := b.StartMigration(origin, must(meshes[1].NodeID()), must(meshes[0].NodeID())); err != nil {
		t.Fatal(err)
	}
	if st, ok, err := b.WaitMigration(context.Background(), origin, 20*time.Second); err != nil || !ok || st.State != "completed" {
		t.Fatalf("return trip: %+v %v %v", st, ok, err)
	}
	if outcome := must(a.Deliver(origin, computeProducer, total+1, nil)); outcome != netmesh.DeliveryProcessed {
		t.Fatalf("outcome %d", outcome)
	}
	if got := countOf(a, origin); got != total+1 {
		t.Fatalf("count %d after the return, want %d", got, total+1)
	}
}

// picky fails events whose payload says so, and blocks on "block".
type picky struct {
	counter
	release chan struct{}
}

func (p *picky) Process(ev netmesh.DaemonEvent) ([][]byte, error) {
	switch string(ev.Payload) {
	case "boom":
		return nil, errors.New("boom")
	case "panic":
		panic("oops")
	case "block":
		<-p.release
	}
	return p.counter.Process(ev)
}

func TestComputeErrorsAreTyped(t *testing.T) {
	m := fastMesh(t, nil)
	if _, err := netmesh.NewCompute(nil, netmesh.ComputeConfig{}); !errors.Is(err, netmesh.ErrInvalidArgument) {
		t.Fatalf("nil mesh: %v", err)
	}
	c := fastCompute(t, m, netmesh.ComputeConfig{WorkTimeout: 200 * time.Millisecond})
	if _, err := netmesh.NewCompute(m, netmesh.ComputeConfig{}); !errors.Is(err, netmesh.ErrComputeTransport) {
		t.Fatalf("second runtime: %v", err)
	}
	if err := c.Register("counter", newCounter, true); !errors.Is(err, netmesh.ErrComputeAlreadyRegistered) {
		t.Fatalf("register twice: %v", err)
	}
	if _, err := c.Spawn("nope", computeSeed, nil); !errors.Is(err, netmesh.ErrComputeUnknownKind) {
		t.Fatalf("unknown kind: %v", err)
	}
	if _, err := c.Spawn("counter", []byte{1}, nil); !errors.Is(err, netmesh.ErrInvalidArgument) {
		t.Fatalf("short seed: %v", err)
	}
	p := &picky{release: make(chan struct{})}
	origin := must(c.Spawn("counter", computeSeed, p))
	if _, err := c.Spawn("counter", computeSeed, nil); !errors.Is(err, netmesh.ErrComputeAlreadyRegistered) {
		t.Fatalf("spawn twice: %v", err)
	}
	must(c.Deliver(origin, computeProducer, 1, []byte("ok")))
	for _, payload := range []string{"boom", "panic", "block"} {
		_, err := c.Deliver(origin, computeProducer, 2, []byte(payload))
		if !errors.Is(err, netmesh.ErrComputeDaemon) {
			t.Fatalf("%s: %v", payload, err)
		}
		t.Logf("%s: %v", payload, err)
	}
	close(p.release)
	if st := must(c.Stats(origin)); st.Errors != 3 || st.EventsProcessed != 1 {
		t.Fatalf("stats %+v", st)
	}
	if _, err := c.Deliver(12345, computeProducer, 1, nil); !errors.Is(err, netmesh.ErrComputeNotFound) {
		t.Fatalf("unknown daemon: %v", err)
	}
	if _, err := c.MigrationStatus(origin); !errors.Is(err, netmesh.ErrComputeNoMigration) {
		t.Fatalf("no migration: %v", err)
	}
	if _, _, err := c.WaitMigration(context.Background(), origin, 0); !errors.Is(err, netmesh.ErrComputeNoMigration) {
		t.Fatalf("wait, no migration: %v", err)
	}
	if err := c.StartMigration(origin, 12345, must(m.NodeID())); !errors.Is(err, netmesh.ErrComputeTransport) {
		t.Fatalf("unreachable source: %v", err)
	}
	if out, ok, err := c.NextOutput(context.Background(), 0); err != nil || !ok || out.Sequence != 1 {
		t.Fatalf("output %+v %v %v", out, ok, err)
	}
	if err := c.Stop(origin); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(origin); !errors.Is(err, netmesh.ErrComputeNotFound) {
		t.Fatalf("stop twice: %v", err)
	}
	if _, ok := c.Daemon(origin); ok {
		t.Fatal("a stopped daemon is still listed")
	}
}

func seqPayloads(from uint64, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = binary.LittleEndian.AppendUint64(nil, from+uint64(i))
	}
	return out
}

// DeliverBatch: one call, applied in order by Process per event, outputs
// chained in order; a failing event stops the batch there (the delivered
// prefix comes back with the error); a zero timeout or a done context gives
// up before the daemon takes the batch, with nothing applied.
func TestComputeDeliverBatch(t *testing.T) {
	m := fastMesh(t, nil)
	c := fastCompute(t, m, netmesh.ComputeConfig{WorkTimeout: 5 * time.Second})
	p := &picky{release: make(chan struct{})}
	origin := must(c.Spawn("counter", computeSeed, p))
	ctx := context.Background()
	outcomes, ok, err := c.DeliverBatch(ctx, origin, computeProducer, 1, seqPayloads(1, 64), -1)
	if err != nil || !ok || len(outcomes) != 64 {
		t.Fatalf("batch: %d %v %v", len(outcomes), ok, err)
	}
	for i, o := range outcomes {
		if o != netmesh.DeliveryProcessed {
			t.Fatalf("outcome %d: %v", i, o)
		}
	}
	for want := uint64(1); want <= 64; want++ {
		out, ok, err := c.NextOutput(ctx, 5*time.Second)
		if err != nil || !ok || out.Sequence != want || binary.LittleEndian.Uint64(out.Payload) != want {
			t.Fatalf("output %d: %+v %v %v", want, out, ok, err)
		}
	}
	batch := seqPayloads(65, 8)
	batch[4] = []byte("boom")
	outcomes, ok, err = c.DeliverBatch(ctx, origin, computeProducer, 65, batch, time.Second)
	if !errors.Is(err, netmesh.ErrComputeDaemon) || ok || len(outcomes) != 4 {
		t.Fatalf("failing batch: %d %v %v", len(outcomes), ok, err)
	}
	if st := must(c.Stats(origin)); st.EventsProcessed != 68 || st.Errors != 1 || st.HeadSequence != 68 {
		t.Fatalf("stats %+v", st)
	}
	if outcomes, ok, err = c.DeliverBatch(ctx, origin, computeProducer, 69, seqPayloads(69, 4), -1); err != nil || !ok || len(outcomes) != 4 {
		t.Fatalf("the rest: %d %v %v", len(outcomes), ok, err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, ok, err = c.DeliverBatch(done, origin, computeProducer, 73, seqPayloads(73, 1), -1); ok || !errors.Is(err, netmesh.ErrCancelled) {
		t.Fatalf("cancelled: %v %v", ok, err)
	}
	// A free daemon's batch is lent to the call: a zero timeout (which gives
	// up before the work goroutine could take a batch up) does not hold it.
	if outcomes, ok, err = c.DeliverBatch(ctx, origin, computeProducer, 73, seqPayloads(73, 1), 0); err != nil || !ok || len(outcomes) != 1 {
		t.Fatalf("zero timeout: %d %v %v", len(outcomes), ok, err)
	}
	if p.value() != 73 {
		t.Fatalf("count %d", p.value())
	}
	if _, _, err = c.DeliverBatch(ctx, 12345, computeProducer, 1, seqPayloads(1, 1), -1); !errors.Is(err, netmesh.ErrComputeNotFound) {
		t.Fatalf("unknown daemon: %v", err)
	}
	close(p.release)
}

// gate is a counter whose Process blocks on an event "block" (after saying
// so on entered) until release is closed.
type gate struct {
	counter
	entered, release chan struct{}
}

func (g *gate) Process(ev netmesh.DaemonEvent) ([][]byte, error) {
	if string(ev.Payload) == "block" {
		close(g.entered)
		<-g.release
	}
	return g.counter.Process(ev)
}

// A free daemon's batch is lent to DeliverBatch under a context that is
// never done: Process runs on the calling goroutine, so the batch is
// applied while the work goroutine is held by another daemon's Process
// (were it not lent, the call would wait for that Process and the test
// would time out).
func TestComputeDeliverBatchIsLentToTheCaller(t *testing.T) {
	m := fastMesh(t, nil)
	c := fastCompute(t, m, netmesh.ComputeConfig{WorkTimeout: 30 * time.Second})
	held := &gate{entered: make(chan struct{}), release: make(chan struct{})}
	a := must(c.Spawn("counter", computeSeed, held))
	free := &picky{release: make(chan struct{})}
	b := must(c.Spawn("counter", bytes.Repeat([]byte{9}, 32), free))
	blocked := make(chan error, 1)
	go func() {
		_, err := c.Deliver(a, computeProducer, 1, []byte("block"))
		blocked <- err
	}()
	<-held.entered              // the work goroutine is inside a's Process
	ctx := context.Background() // never done: the batch may be lent
	outcomes, ok, err := c.DeliverBatch(ctx, b, computeProducer, 1, seqPayloads(1, 32), -1)
	if err != nil || !ok || len(outcomes) != 32 || free.value() != 32 {
		t.Fatalf("lent batch: %d %v %v (count %d)", len(outcomes), ok, err, free.value())
	}
	// A failure partway: the events before it are delivered.
	batch := seqPayloads(33, 4)
	batch[2] = []byte("boom")
	if outcomes, ok, err = c.DeliverBatch(ctx, b, computeProducer, 33, batch, -1); !errors.Is(err, netmesh.ErrComputeDaemon) || ok || len(outcomes) != 2 {
		t.Fatalf("failing lent batch: %d %v %v", len(outcomes), ok, err)
	}
	if st := must(c.Stats(b)); st.EventsProcessed != 34 || st.Errors != 1 {
		t.Fatalf("stats %+v", st)
	}
	select {
	case err := <-blocked:
		t.Fatalf("a's delivery returned while its Process was held: %v", err)
	default:
	}
	close(held.release)
	if err := <-blocked; err != nil {
		t.Fatalf("held delivery: %v", err)
	}
	close(free.release)
}

func TestComputeCloseRacesCallsInFlight(t *testing.T) {
	for round := 0; round < 5; round++ {
		m := fastMesh(t, nil)
		c := must(netmesh.NewCompute(m, netmesh.ComputeConfig{}))
		p := &picky{release: make(chan struct{})}
		must(0, c.Register("counter", newCounter, true))
		origin := must(c.Spawn("counter", computeSeed, p))
		entered := make(chan struct{})
		result := make(chan error, 1)
		// Round 0: one event; 1: a batch through the work goroutine (a
		// context that can be cancelled is not lent); 2: a lent batch.
		lent := round%3 == 2
		go func() {
			close(entered)
			var err error
			switch round % 3 {
			case 1: // a batch in flight is woken the same way
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				_, _, err = c.DeliverBatch(ctx, origin, computeProducer, 1, [][]byte{[]byte("block")}, -1)
			case 2:
				_, _, err = c.DeliverBatch(context.Background(), origin, computeProducer, 1, [][]byte{[]byte("block")}, -1)
			default:
				_, err = c.Deliver(origin, computeProducer, 1, []byte("block"))
			}
			result <- err
		}()
		<-entered
		var wg sync.WaitGroup
		closed := make(chan error, 4)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				closed <- c.Close()
			}()
		}
		if lent {
			// The closes do not wait for a lent batch's Process (it runs on
			// the caller's goroutine); its answer then finds the runtime gone.
			wg.Wait()
			close(p.release)
			if err := <-result; !errors.Is(err, netmesh.ErrShuttingDown) {
				t.Fatalf("lent batch: %v", err)
			}
		} else {
			// The close wakes the delivery (whether it was already waiting
			// for the daemon or not); the closes then wait for the daemon
			// method.
			if err := <-result; !errors.Is(err, netmesh.ErrShuttingDown) {
				t.Fatalf("in-flight delivery: %v", err)
			}
			close(p.release)
			wg.Wait()
		}
		close(closed)
		for err := range closed {
			if err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.Deliver(origin, computeProducer, 1, nil); !errors.Is(err, netmesh.ErrShuttingDown) {
			t.Fatalf("after close: %v", err)
		}
		if _, _, err := c.DeliverBatch(context.Background(), origin, computeProducer, 1, nil, 0); !errors.Is(err, netmesh.ErrShuttingDown) {
			t.Fatalf("batch after close: %v", err)
		}
	}
}

func TestComputeWaitsEndWithTheirContext(t *testing.T) {
	m := fastMesh(t, nil)
	c := fastCompute(t, m, netmesh.ComputeConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	if _, ok, err := c.NextOutput(ctx, -1); ok || !errors.Is(err, netmesh.ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("NextOutput under a cancelled context: %v %v", ok, err)
	}
}

// twoComputes is two connected meshes, each with a Compute (short timers).
func twoComputes(t *testing.T) (ma, mb *netmesh.Mesh, a, b *netmesh.Compute) {
	t.Helper()
	ma, mb = fastMesh(t, nil), fastMesh(t, nil)
	if err := ma.Connect(ctx5(t), must(mb.LocalAddr()), must(mb.PublicKey()), must(mb.NodeID())); err != nil {
		t.Fatal(err)
	}
	cfg := netmesh.ComputeConfig{RetryInterval: 50 * time.Millisecond, StepTimeout: 3 * time.Second,
		SourceTimeout: 6 * time.Second, WorkTimeout: 5 * time.Second}
	return ma, mb, fastCompute(t, ma, cfg), fastCompute(t, mb, cfg)
}

func TestComputeIdentityTravelsToANodeWithoutTheSeed(t *testing.T) {
	ma, mb, a, b := twoComputes(t)
	origin := must(a.Spawn("counter", computeSeed, nil))
	ctx := context.Background()
	for seq := uint64(1); seq <= 3; seq++ {
		if _, err := a.Deliver(origin, computeProducer, seq, binary.LittleEndian.AppendUint64(nil, seq)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.ExpectOrigin("counter", origin); err != nil {
		t.Fatal(err)
	}
	if err := b.ExpectOrigin("counter", origin); !errors.Is(err, netmesh.ErrComputeAlreadyRegistered) {
		t.Fatalf("expected twice: %v", err)
	}
	idA, idB := must(ma.NodeID()), must(mb.NodeID())
	// A node whose static key is not known here cannot be sealed to.
	if err := a.StartMigrationWith(origin, idA, 0x1234, netmesh.MigrationOptions{}); !errors.Is(err, netmesh.ErrComputeIdentityTransport) {
		t.Fatalf("unknown target: %v", err)
	}
	// Without its identity B cannot run the daemon: the move fails, the
	// daemon stays on A.
	if err := a.StartMigrationWith(origin, idA, idB, netmesh.MigrationOptions{NoIdentityTransport: true}); err != nil {
		t.Fatal(err)
	}
	status, ok, err := a.WaitMigration(ctx, origin, 20*time.Second)
	if err != nil || !ok || status.State != "failed" || !strings.HasPrefix(status.Reason, "identity-transport-failed") {
		t.Fatalf("unsealed: %+v %v %v", status, ok, err)
	}
	if outcome, err := a.Deliver(origin, computeProducer, 4, binary.LittleEndian.AppendUint64(nil, 4)); err != nil || outcome != netmesh.DeliveryProcessed {
		t.Fatalf("still on A: %v %v", outcome, err)
	}
	// Sealed (the default), it moves with its state.
	if err := a.StartMigration(origin, idA, idB); err != nil {
		t.Fatal(err)
	}
	status, ok, err = a.WaitMigration(ctx, origin, 20*time.Second)
	if err != nil || !ok || status.State != "completed" {
		t.Fatalf("sealed: %+v %v %v", status, ok, err)
	}
	if got := countOf(b, origin); got != 4 {
		t.Fatalf("count on B: %d", got)
	}
	if outcome, err := b.Deliver(origin, computeProducer, 5, binary.LittleEndian.AppendUint64(nil, 5)); err != nil || outcome != netmesh.DeliveryProcessed {
		t.Fatalf("on B: %v %v", outcome, err)
	}
}

// The scheduler places a migration on a node that announced it takes
// them (a Compute stamps the tag and its load on its node's announcement).
func TestComputePlacesAMigrationWhereItIsTaken(t *testing.T) {
	ma, mb, a, b := twoComputes(t)
	origin := must(a.Spawn("counter", computeSeed, nil))
	if _, err := a.PlaceMigration(origin); !errors.Is(err, netmesh.ErrComputeNoTarget) {
		t.Fatalf("before b announced: %v", err)
	}
	if _, err := a.PlaceMigration(0x77); !errors.Is(err, netmesh.ErrComputeNotFound) {
		t.Fatalf("not here: %v", err)
	}
	if err := mb.Announce(netmesh.Capabilities{Tags: []string{"zone:eu"}}); err != nil {
		t.Fatal(err)
	}
	idA, idB := must(ma.NodeID()), must(mb.NodeID())
	waitFor(t, "b placed", func() bool {
		target, err := a.PlaceMigration(origin)
		return err == nil && target == idB
	})
	if err := b.ExpectOrigin("counter", origin); err != nil {
		t.Fatal(err)
	}
	target := must(a.PlaceMigration(origin))
	if err := a.StartMigration(origin, idA, target); err != nil {
		t.Fatal(err)
	}
	status, ok, err := a.WaitMigration(context.Background(), origin, 20*time.Second)
	if err != nil || !ok || status.State != "completed" {
		t.Fatalf("placed move: %+v %v %v", status, ok, err)
	}
}

// subscriberCount is publisher m's subscriber count of channel name.
func subscriberCount(t *testing.T, m *netmesh.Mesh, name string) float64 {
	t.Helper()
	list, _ := must(m.Channels())["channels"].([]any)
	for _, c := range list {
		if ch, _ := c.(map[string]any); ch["name"] == name {
			n, _ := ch["subscribers"].(float64)
			return n
		}
	}
	return 0
}

// A daemon's channel subscription is recorded with it and follows it: the
// target subscribes before the migration completes (an event published
// then reaches it), the source lets go, and unsubscribing ends the node's.
func TestComputeChannelSubscriptionFollowsItsDaemon(t *testing.T) {
	pub, ma, mb := startedMesh(t), startedMesh(t), startedMesh(t)
	linkTo(t, ma, pub)
	linkTo(t, mb, pub)
	linkTo(t, ma, mb)
	must(pub.RegisterChannel("ticks", netmesh.ChannelConfig{}))
	idp := must(pub.NodeID())
	cfg := netmesh.ComputeConfig{RetryInterval: 50 * time.Millisecond, StepTimeout: 3 * time.Second,
		SourceTimeout: 6 * time.Second, WorkTimeout: 5 * time.Second}
	a, b := fastCompute(t, ma, cfg), fastCompute(t, mb, cfg)
	origin := must(a.Spawn("counter", computeSeed, nil))

	if err := a.SubscribeChannel(ctx5(t), origin, idp, "ticks", nil); err != nil {
		t.Fatal(err)
	}
	if err := a.SubscribeChannel(ctx5(t), 0x42, idp, "ticks", nil); !errors.Is(err, netmesh.ErrComputeNotFound) {
		t.Fatalf("unknown daemon: %v", err)
	}
	if err := a.SubscribeChannel(ctx5(t), origin, idp, "nope", nil); !errors.Is(err, netmesh.ErrChannelUnknown) {
		t.Fatalf("unknown channel: %v", err)
	}
	want := []netmesh.DaemonChannel{{Publisher: idp, Channel: "ticks"}}
	if got := must(a.Stats(origin)).Channels; !slices.Equal(got, want) {
		t.Fatalf("channels on A: %+v", got)
	}
	if n := subscriberCount(t, pub, "ticks"); n != 1 {
		t.Fatalf("subscribers: %v", n)
	}

	if err := b.ExpectOrigin("counter", origin); err != nil {
		t.Fatal(err)
	}
	if err := a.StartMigration(origin, must(ma.NodeID()), must(mb.NodeID())); err != nil {
		t.Fatal(err)
	}
	status, ok, err := a.WaitMigration(context.Background(), origin, 20*time.Second)
	if err != nil || !ok || status.State != "completed" {
		t.Fatalf("migration: %+v %v %v", status, ok, err)
	}
	if got := must(b.Stats(origin)).Channels; !slices.Equal(got, want) {
		t.Fatalf("channels on B: %+v", got)
	}
	must(pub.Publish("ticks", [][]byte{[]byte("t1")}, true))
	expectEvent(t, mb, idp, "t1", "ticks")
	waitFor(t, "A lets go of the channel", func() bool { return subscriberCount(t, pub, "ticks") == 1 })

	if err := b.UnsubscribeChannel(ctx5(t), origin, idp, "ticks"); err != nil {
		t.Fatal(err)
	}
	if n := subscriberCount(t, pub, "ticks"); n != 0 {
		t.Fatalf("subscribers after unsubscribe: %v", n)
	}
	if got := must(b.Stats(origin)).Channels; len(got) != 0 {
		t.Fatalf("channels after unsubscribe: %+v", got)
	}
}
