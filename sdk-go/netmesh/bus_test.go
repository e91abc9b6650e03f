package netmesh_test

import (
	"context"
	"encoding/binary"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/netmesh/net/sdk-go/netmesh"
)

// memoryBus is a bus over the embedded adapter with memory files (the
// "memory" and "discard" adapters exist only in libnet's test builds).
func memoryBus(t *testing.T) *netmesh.Bus {
	t.Helper()
	b, err := netmesh.NewBus(netmesh.BusConfig{
		"num_shards": 3,
		"adapter":    map[string]any{"type": "redex"},
		"batch":      map[string]any{"min_size": 16, "max_size": 256, "max_delay_ms": 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func u32(i uint32) []byte { return binary.LittleEndian.AppendUint32(nil, i) }

func pollAll(t *testing.T, b *netmesh.Bus) []netmesh.BusEvent {
	t.Helper()
	var all []netmesh.BusEvent
	cursor := ""
	for {
		page, err := b.Poll(ctx5(t), netmesh.PollRequest{Cursor: cursor, Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		if page.NextCursor == "" {
			t.Fatal("empty cursor")
		}
		all = append(all, page.Events...)
		cursor = page.NextCursor
		if len(page.Events) == 0 && !page.HasMore {
			return all
		}
	}
}

func TestBusIngestBatchPackedAndPollBack(t *testing.T) {
	b := memoryBus(t)
	if n, err := b.NumShards(); err != nil || n != 3 {
		t.Fatalf("shards %d %v", n, err)
	}
	for i := uint32(0); i < 1000; i++ {
		if err := b.Ingest(u32(i)); err != nil {
			t.Fatal(err)
		}
	}
	var batch [][]byte
	for i := uint32(1000); i < 4000; i++ {
		batch = append(batch, u32(i))
	}
	r, err := b.IngestBatch(batch)
	if err != nil || r != (netmesh.IngestReport{Queued: 3000, Taken: 3000}) {
		t.Fatalf("%+v %v", r, err)
	}
	var packed []byte
	var lengths []uint32
	for i := uint32(4000); i < 5000; i++ {
		packed = append(packed, u32(i)...)
		lengths = append(lengths, 4)
	}
	if r, err := b.IngestPacked(packed, lengths); err != nil || r.Taken != 1000 {
		t.Fatalf("%+v %v", r, err)
	}
	// Large events go in place (pinned) rather than packed.
	big := [][]byte{make([]byte, 64<<10), make([]byte, 64<<10)}
	if r, err := b.IngestBatch(big); err != nil || r.Taken != 2 {
		t.Fatalf("%+v %v", r, err)
	}
	if _, err := b.IngestPacked(packed, lengths[1:]); !errors.Is(err, netmesh.ErrInvalidArgument) {
		t.Fatalf("mismatched lengths: %v", err)
	}
	if err := b.Flush(ctx5(t)); err != nil {
		t.Fatal(err)
	}
	events := pollAll(t, b)
	seen := map[uint32]bool{}
	bigSeen := 0
	for _, e := range events {
		if len(e.Payload) == 64<<10 {
			bigSeen++
			continue
		}
		seen[binary.LittleEndian.Uint32(e.Payload)] = true
		// The embedded adapter keeps no dedup id ("").
		if e.Shard >= 3 || e.TimestampNs == 0 || e.ID == "" || (e.DedupID != "" && strings.Count(e.DedupID, ":") != 3) {
			t.Fatalf("bad event %+v", e)
		}
	}
	if len(events) != 5002 || len(seen) != 5000 || bigSeen != 2 {
		t.Fatalf("%d events, %d distinct, %d large", len(events), len(seen), bigSeen)
	}
	stats, err := b.Stats()
	if err != nil || stats["events_dispatched"].(float64) != 5002 || stats["adapter"] != "redex" {
		t.Fatalf("%v %v", stats, err)
	}
	rep, err := b.Shutdown()
	if err != nil || rep.ShutdownWasLossy || rep.EventsDropped != 0 {
		t.Fatalf("%+v %v", rep, err)
	}
	if again, err := b.Shutdown(); err != nil || again != rep {
		t.Fatalf("a second Shutdown: %+v %v", again, err)
	}
	if err := b.Ingest([]byte("late")); !errors.Is(err, netmesh.ErrShuttingDown) {
		t.Fatalf("after shutdown: %v", err)
	}
	if _, err := b.Stats(); err != nil {
		t.Fatalf("stats after shutdown: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close after a lossless shutdown: %v", err)
	}
}

func TestBusEmbeddedAdapterPersists(t *testing.T) {
	dir := t.TempDir()
	cfg := netmesh.BusConfig{
		"num_shards":         2,
		"adapter":            map[string]any{"type": "redex", "dir": filepath.Join(dir, "redex")},
		"producer_state_dir": filepath.Join(dir, "producer"),
	}
	b, err := netmesh.NewBus(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var batch [][]byte
	for i := uint32(0); i < 3000; i++ {
		batch = append(batch, u32(i))
	}
	if _, err := b.IngestBatch(batch); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = netmesh.NewBus(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := len(pollAll(t, b)); got != 3000 {
		t.Fatalf("%d events after reopening", got)
	}
}

func TestBusErrorsAreTyped(t *testing.T) {
	for _, tc := range []struct {
		cfg    netmesh.BusConfig
		needle string
	}{
		{netmesh.BusConfig{"num_shards": 0}, "num_shards"},
		{netmesh.BusConfig{"shards": 2}, "shards"},
		{netmesh.BusConfig{"adapter": map[string]any{"type": "kafka"}}, "adapter"},
		{netmesh.BusConfig{"bad": func() {}}, "json"},
	} {
		_, err := netmesh.NewBus(tc.cfg)
		var e *netmesh.Error
		if !errors.Is(err, netmesh.ErrBusConfig) || !errors.As(err, &e) || !strings.Contains(strings.ToLower(e.Message), tc.needle) {
			t.Fatalf("%v: %v", tc.cfg, err)
		}
	}
	b := memoryBus(t)
	if _, err := b.Poll(ctx5(t), netmesh.PollRequest{Cursor: "%%%"}); !errors.Is(err, netmesh.ErrBusInvalidRequest) {
		t.Fatalf("bad cursor: %v", err)
	}
	full, err := netmesh.NewBus(netmesh.BusConfig{
		"num_shards": 1, "shard_capacity": 8, "backpressure": map[string]any{"mode": "fail_producer"},
		"adapter": map[string]any{"type": "redex"},
		"batch":   map[string]any{"min_size": 8, "max_size": 8, "max_delay_ms": 1000},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	refused := false
	for i := 0; i < 1000 && !refused; i++ {
		refused = errors.Is(full.Ingest([]byte("x")), netmesh.ErrBusBackpressure)
	}
	if !refused {
		t.Fatal("no backpressure")
	}
}

func TestRedisStreamDedupIsFIFOAndClamped(t *testing.T) {
	d, err := netmesh.NewRedisStreamDedup(2)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var got []bool
	for _, id := range []string{"a", "b", "a", "c", "a"} {
		dup, err := d.IsDuplicate(id)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, dup)
	}
	if want := []bool{false, false, true, false, false}; !equalBools(got, want) {
		t.Fatalf("%v", got)
	}
	batch, err := d.CheckBatch([]string{"x", "y", "x"})
	if err != nil || !equalBools(batch, []bool{false, false, true}) {
		t.Fatalf("%v %v", batch, err)
	}
	if l, c, dups, err := d.Info(); err != nil || l != 2 || c != 2 || dups != 2 {
		t.Fatalf("%d %d %d %v", l, c, dups, err)
	}
	// Clear forgets every id (the duplicate count stays).
	if err := d.Clear(); err != nil {
		t.Fatal(err)
	}
	if dup, err := d.IsDuplicate("x"); err != nil || dup {
		t.Fatalf("after Clear: %v %v", dup, err)
	}
	big, _ := netmesh.NewRedisStreamDedup(1 << 40)
	defer big.Close()
	if _, c, _, _ := big.Info(); c != 1<<24 {
		t.Fatalf("capacity %d", c)
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBusRaceOpAfterClose(t *testing.T) {
	b := memoryBus(t)
	d, _ := netmesh.NewRedisStreamDedup(8)
	b.Close()
	d.Close()
	if err := b.Ingest([]byte("x")); !errors.Is(err, netmesh.ErrShuttingDown) {
		t.Fatal(err)
	}
	if _, err := b.Poll(context.Background(), netmesh.PollRequest{}); !errors.Is(err, netmesh.ErrShuttingDown) {
		t.Fatal(err)
	}
	if err := b.Flush(context.Background()); !errors.Is(err, netmesh.ErrShuttingDown) {
		t.Fatal(err)
	}
	if _, err := d.IsDuplicate("x"); !errors.Is(err, netmesh.ErrShuttingDown) {
		t.Fatal(err)
	}
	b.Close()
	d.Close()
}

func TestBusRaceConcurrentCloses(t *testing.T) {
	for round := 0; round < 5; round++ {
		b := memoryBus(t)
		d, _ := netmesh.NewRedisStreamDedup(64)
		var wg sync.WaitGroup
		for k := 0; k < 3; k++ {
			wg.Add(1)
			go func(k int) {
				defer wg.Done()
				for i := uint32(0); i < 200; i++ {
					var err error
					switch k {
					case 0:
						err = b.Ingest(u32(i))
					case 1:
						_, err = b.Poll(context.Background(), netmesh.PollRequest{Limit: 10})
					default:
						_, err = d.IsDuplicate(string(rune('a' + i%26)))
					}
					if err != nil && !errors.Is(err, netmesh.ErrShuttingDown) {
						t.Errorf("round %d: %v", round, err)
						return
					}
				}
			}(k)
		}
		for k := 0; k < 2; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runtime.Gosched()
				if err := b.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				if err := d.Close(); err != nil {
					t.Errorf("dedup Close: %v", err)
				}
			}()
		}
		wg.Wait()
	}
}

// Race 3: Close waits for an ingest in flight. A million-event batch is
// under way when the bus is closed: either it got in first (every event
// taken, and the free waited for it: the shutdown drains them all, so Close
// reports no loss) or it was refused (ErrShuttingDown) and the round does
// not count. The delay before Close adapts (no clock): doubled when the
// close came too early, halved when the ingest was already over.
func TestBusRaceCloseWaitsForIngestInFlight(t *testing.T) {
	const n = 1_000_000
	packed := make([]byte, 4*n)
	lengths := make([]uint32, n)
	for i := range lengths {
		lengths[i] = 4
	}
	delay := newDelay()
	netmesh.UntilWon(t, 40, 2, func(int) bool {
		b, err := netmesh.NewBus(netmesh.BusConfig{"num_shards": 1, "shard_capacity": 1 << 21, "adapter": map[string]any{"type": "redex"}})
		if err != nil {
			t.Fatal(err)
		}
		var report netmesh.IngestReport
		var ingestErr error
		closeErr, overWhenClosed := delay.closeDuring(func() { report, ingestErr = b.IngestPacked(packed, lengths) }, b.Close)
		if closeErr != nil {
			t.Fatalf("Close with an ingest in flight: %v", closeErr)
		}
		switch {
		case errors.Is(ingestErr, netmesh.ErrShuttingDown):
			delay.tooEarly()
			return false
		case ingestErr != nil || report.Taken != n:
			t.Fatalf("%+v %v", report, ingestErr)
		case overWhenClosed:
			delay.tooLate()
			return false
		}
		return true
	})
}

// delay is how long to let a racing call run before the close, in yields
// of the processor (no clock), adapted to the machine's speed and load.
type delay struct{ n int }

func newDelay() *delay { return &delay{n: 2000} }

func (d *delay) run() {
	for i := 0; i < d.n; i++ {
		runtime.Gosched()
	}
}

func (d *delay) tooEarly() { d.n = min(d.n*2, 1<<24) }

func (d *delay) tooLate() { d.n = max(d.n/2, 1) }

// closeDuring runs call on another goroutine and, after the delay, closeIt
// on this one, then waits for call to return. It reports closeIt's error
// (then without waiting: the caller fails the test) and whether call had
// already returned when the close began (a round that then proves nothing
// about the close waiting for it).
func (d *delay) closeDuring(call func(), closeIt func() error) (closeErr error, overWhenClosed bool) {
	var returned atomic.Bool
	done := make(chan struct{})
	started := make(chan struct{})
	go func() {
		close(started)
		call()
		returned.Store(true)
		close(done)
	}()
	<-started
	d.run()
	overWhenClosed = returned.Load()
	if closeErr = closeIt(); closeErr != nil {
		return closeErr, overWhenClosed
	}
	<-done
	return nil, overWhenClosed
}
