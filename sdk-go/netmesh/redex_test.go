package netmesh_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netmesh/net/sdk-go/netmesh"
)

func mustRedex(t testing.TB, baseDir string) *netmesh.Redex {
	t.Helper()
	r, err := netmesh.OpenRedex(baseDir)
	if err != nil {
		t.Fatalf("OpenRedex(%q): %v", baseDir, err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func mustOpenFile(t testing.TB, r *netmesh.Redex, name string, cfg netmesh.FileConfig) *netmesh.RedexFile {
	t.Helper()
	f, err := r.OpenFile(name, cfg)
	if err != nil {
		t.Fatalf("OpenFile(%q): %v", name, err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// memFile is a memory-only file on its own manager.
func memFile(t testing.TB, name string, cfg netmesh.FileConfig) *netmesh.RedexFile {
	t.Helper()
	return mustOpenFile(t, mustRedex(t, ""), name, cfg)
}

func mustTail(t testing.TB, f *netmesh.RedexFile, from uint64) *netmesh.RedexTail {
	t.Helper()
	tail, err := f.Tail(from)
	if err != nil {
		t.Fatalf("Tail(%d): %v", from, err)
	}
	t.Cleanup(func() { _ = tail.Close() })
	return tail
}

func mustAppend(t testing.TB, f *netmesh.RedexFile, payload []byte) uint64 {
	t.Helper()
	seq, err := f.Append(payload)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return seq
}

func mustNext(t testing.TB, tail *netmesh.RedexTail) netmesh.Entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := tail.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return e
}

func payloadOf(i int) []byte { return []byte(fmt.Sprintf("entry-%06d", i)) }

func TestRedexFileOps(t *testing.T) {
	f := memFile(t, "redex/ops", netmesh.FileConfig{})
	if f.Name() != "redex/ops" {
		t.Fatalf("Name() = %q", f.Name())
	}
	if n, err := f.NextSeq(); err != nil || n != 0 {
		t.Fatalf("NextSeq on a new file: %d, %v", n, err)
	}
	if n, err := f.Len(); err != nil || n != 0 {
		t.Fatalf("Len on a new file: %d, %v", n, err)
	}

	if seq := mustAppend(t, f, []byte("first")); seq != 0 {
		t.Fatalf("first append got seq %d", seq)
	}
	if seq := mustAppend(t, f, nil); seq != 1 { // an empty payload is an entry too
		t.Fatalf("empty append got seq %d", seq)
	}
	seq, err := f.AppendInline([]byte("8 bytes!"))
	if err != nil || seq != 2 {
		t.Fatalf("AppendInline: %d, %v", seq, err)
	}
	for _, bad := range [][]byte{nil, []byte("7 bytes"), []byte("nine byte")} {
		_, err := f.AppendInline(bad)
		expectIs(t, err, netmesh.ErrRedexInlineLength)
	}
	first, ok, err := f.AppendBatch([][]byte{[]byte("b0"), {}, []byte("b2")})
	if err != nil || !ok || first != 3 {
		t.Fatalf("AppendBatch: %d, %v, %v", first, ok, err)
	}
	for _, empty := range [][][]byte{nil, {}} {
		first, ok, err := f.AppendBatch(empty)
		if err != nil || ok || first != 0 {
			t.Fatalf("empty AppendBatch = (%d, %v, %v), want (0, false, nil)", first, ok, err)
		}
	}
	if n, _ := f.NextSeq(); n != 6 {
		t.Fatalf("NextSeq = %d, want 6", n)
	}
	if n, _ := f.Len(); n != 6 {
		t.Fatalf("Len = %d, want 6", n)
	}

	want := [][]byte{[]byte("first"), {}, []byte("8 bytes!"), []byte("b0"), {}, []byte("b2")}
	for i, w := range want {
		got, found, err := f.Read(uint64(i))
		if err != nil || !found || !bytes.Equal(got, w) || got == nil {
			t.Fatalf("Read(%d) = %q, %v, %v; want %q", i, got, found, err, w)
		}
	}
	got, found, err := f.Read(6)
	if err != nil || found || got != nil {
		t.Fatalf("Read past the end = %q, %v, %v", got, found, err)
	}

	entries, err := f.ReadRange(0, 100)
	if err != nil || len(entries) != len(want) {
		t.Fatalf("ReadRange(0, 100): %d entries, %v", len(entries), err)
	}
	for i, e := range entries {
		if e.Seq != uint64(i) || !bytes.Equal(e.Payload, want[i]) {
			t.Fatalf("entry %d = {%d %q}", i, e.Seq, e.Payload)
		}
	}
	entries, err = f.ReadRange(2, 4)
	if err != nil || len(entries) != 2 || entries[0].Seq != 2 || entries[1].Seq != 3 {
		t.Fatalf("ReadRange(2, 4) = %v, %v", entries, err)
	}
	entries, err = f.ReadRange(4, 4)
	if err != nil || entries == nil || len(entries) != 0 {
		t.Fatalf("empty ReadRange = %#v, %v", entries, err)
	}
	if err := f.Sync(); err != nil { // a no-op on a memory file
		t.Fatalf("Sync: %v", err)
	}
	if removed, err := f.SweepRetention(); err != nil || removed != 0 {
		t.Fatalf("SweepRetention without limits: %d, %v", removed, err)
	}
}

func TestRedexPersistentSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	cfg := netmesh.FileConfig{Persistent: true, Fsync: netmesh.FsyncEveryN(1)}
	var want []netmesh.Entry
	func() {
		r := mustRedex(t, dir)
		f := mustOpenFile(t, r, "orders/eu", cfg)
		for i := 0; i < 20; i++ {
			seq := mustAppend(t, f, payloadOf(i))
			want = append(want, netmesh.Entry{Seq: seq, Payload: payloadOf(i)})
		}
		seq, err := f.AppendInline([]byte("inline!!"))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, netmesh.Entry{Seq: seq, Payload: []byte("inline!!")})
		batch := [][]byte{[]byte("x"), bytes.Repeat([]byte{0xAB}, 100_000), nil}
		first, ok, err := f.AppendBatch(batch)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		for i, p := range batch {
			want = append(want, netmesh.Entry{Seq: first + uint64(i), Payload: p})
		}
		if err := f.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := f.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	}()

	r := mustRedex(t, dir)
	f := mustOpenFile(t, r, "orders/eu", cfg)
	got, err := f.ReadRange(0, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("after reopen: %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Seq != want[i].Seq || !bytes.Equal(got[i].Payload, want[i].Payload) {
			t.Fatalf("entry %d after reopen: seq %d (%d bytes), want seq %d (%d bytes)",
				i, got[i].Seq, len(got[i].Payload), want[i].Seq, len(want[i].Payload))
		}
	}
	if n, _ := f.NextSeq(); n != uint64(len(want)) {
		t.Fatalf("NextSeq after reopen = %d, want %d", n, len(want))
	}
	if seq := mustAppend(t, f, []byte("more")); seq != uint64(len(want)) {
		t.Fatalf("append after reopen got seq %d", seq)
	}
}

func TestRedexTailBackfillThenLive(t *testing.T) {
	f := memFile(t, "redex/tail", netmesh.FileConfig{})
	const backfill, live = 300, 2000
	for i := 0; i < backfill; i++ {
		mustAppend(t, f, payloadOf(i))
	}
	tail := mustTail(t, f, 0)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // appends from another goroutine while the tail reads
		defer wg.Done()
		for i := backfill; i < backfill+live; {
			if i%7 == 0 && i+3 <= backfill+live {
				_, _, err := f.AppendBatch([][]byte{payloadOf(i), payloadOf(i + 1), payloadOf(i + 2)})
				if err != nil {
					t.Errorf("AppendBatch: %v", err)
					return
				}
				i += 3
				continue
			}
			if _, err := f.Append(payloadOf(i)); err != nil {
				t.Errorf("Append: %v", err)
				return
			}
			i++
		}
	}()
	for i := 0; i < backfill+live; i++ {
		e := mustNext(t, tail)
		if e.Seq != uint64(i) || !bytes.Equal(e.Payload, payloadOf(i)) {
			t.Fatalf("tail delivered seq %d %q, want %d %q (gap or duplicate)", e.Seq, e.Payload, i, payloadOf(i))
		}
	}
	wg.Wait()
	if pos := tail.Position(); pos != backfill+live {
		t.Fatalf("Position = %d", pos)
	}
	// Nothing more: a short wait times out with the context's error.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := tail.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next with nothing to read: %v", err)
	}

	// A tail from the middle, and one past the end waiting for its entry.
	mid := mustTail(t, f, 1234)
	if e := mustNext(t, mid); e.Seq != 1234 {
		t.Fatalf("tail from 1234 starts at %d", e.Seq)
	}
	ahead := mustTail(t, f, backfill+live+1)
	mustAppend(t, f, []byte("skipped by ahead"))
	mustAppend(t, f, []byte("for ahead"))
	if e := mustNext(t, ahead); e.Seq != backfill+live+1 || string(e.Payload) != "for ahead" {
		t.Fatalf("tail from the future got %d %q", e.Seq, e.Payload)
	}
}

func TestRedexTailLagged(t *testing.T) {
	f := memFile(t, "redex/lag", netmesh.FileConfig{Retention: netmesh.Retention{MaxEvents: 2}})
	for i := 0; i < 5; i++ {
		mustAppend(t, f, payloadOf(i)) // seqs 0..4
	}
	tail := mustTail(t, f, 0)
	if e := mustNext(t, tail); e.Seq != 0 {
		t.Fatalf("first entry %d", e.Seq)
	}
	removed, err := f.SweepRetention()
	if err != nil || removed != 3 {
		t.Fatalf("SweepRetention: %d, %v (want 3 removed)", removed, err)
	}
	if n, _ := f.Len(); n != 2 {
		t.Fatalf("Len after sweep = %d", n)
	}
	if _, found, _ := f.Read(2); found {
		t.Fatal("entry 2 still readable after retention removed it")
	}

	_, err = tail.Next(context.Background())
	if !errors.Is(err, netmesh.ErrLagged) {
		t.Fatalf("Next after retention: %v, want ErrLagged", err)
	}
	var lag *netmesh.LaggedError
	if !errors.As(err, &lag) || lag.MissedFrom != 1 || lag.ResumeAt != 3 {
		t.Fatalf("lagged = %+v, want missed [1, 3)", lag)
	}
	if !strings.Contains(err.Error(), "resuming at 3") {
		t.Fatalf("lagged message %q", err)
	}
	// The tail goes on with the oldest entry still there.
	for _, want := range []uint64{3, 4} {
		if e := mustNext(t, tail); e.Seq != want || !bytes.Equal(e.Payload, payloadOf(int(want))) {
			t.Fatalf("after lag got %d, want %d", e.Seq, want)
		}
	}
	mustAppend(t, f, payloadOf(5))
	if e := mustNext(t, tail); e.Seq != 5 {
		t.Fatalf("live after lag got %d", e.Seq)
	}

	// A tail created below the retained range lags at once.
	low := mustTail(t, f, 0)
	_, err = low.Next(context.Background())
	if !errors.As(err, &lag) || lag.MissedFrom != 0 || lag.ResumeAt != 3 {
		t.Fatalf("new low tail: %v", err)
	}
}

func TestRedexSecondWriterLocked(t *testing.T) {
	dir := t.TempDir()
	cfg := netmesh.FileConfig{Persistent: true}
	first := mustOpenFile(t, mustRedex(t, dir), "locked/ch", cfg)
	other := mustRedex(t, dir)
	_, err := other.OpenFile("locked/ch", cfg)
	expectIs(t, err, netmesh.ErrRedexLocked)
	var e *netmesh.Error
	if !errors.As(err, &e) || e.Op != "net_redex_open_file" || e.Message == "" {
		t.Fatalf("locked error details: %#v", e)
	}
	// A different channel in the same directory is not locked.
	mustOpenFile(t, other, "locked/other", cfg)

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second, err := other.OpenFile("locked/ch", cfg)
	if err != nil {
		t.Fatalf("open after the first writer closed: %v", err)
	}
	_ = second.Close()
}

func TestRedexConfigErrors(t *testing.T) {
	r := mustRedex(t, "")
	for _, c := range []struct{ json, key string }{
		{`{"persistant": true}`, "persistant"},
		{`{"fsync": "always"}`, "always"},
		{`{"retention": {"max_event": 1}}`, "max_event"},
		{`{"fsync": {"evry_n": 1}}`, "evry_n"},
		{`not json`, "config JSON"},
	} {
		_, err := r.OpenFileJSON("cfg/bad", c.json)
		expectIs(t, err, netmesh.ErrRedexInvalidConfig)
		if !strings.Contains(err.Error(), c.key) {
			t.Errorf("config %s: error %q does not name %q", c.json, err, c.key)
		}
	}
	// From the Go struct: an fsync policy on a memory file, negative durations.
	for _, c := range []struct {
		cfg netmesh.FileConfig
		key string
	}{
		{netmesh.FileConfig{Fsync: netmesh.FsyncEveryN(2)}, "fsync"},
		{netmesh.FileConfig{Retention: netmesh.Retention{MaxAge: -time.Second}}, "max_age_ms"},
		{netmesh.FileConfig{Persistent: true, Fsync: netmesh.FsyncInterval(-1)}, "fsync.interval_ms"},
	} {
		_, err := r.OpenFile("cfg/bad", c.cfg)
		expectIs(t, err, netmesh.ErrRedexInvalidConfig)
		if !strings.Contains(err.Error(), c.key) {
			t.Errorf("config %+v: error %q does not name %q", c.cfg, err, c.key)
		}
	}
	_, err := r.OpenFile("cfg/persistent", netmesh.FileConfig{Persistent: true})
	expectIs(t, err, netmesh.ErrRedexNoPersistentDir)
	_, err = r.OpenFile("", netmesh.FileConfig{})
	expectIs(t, err, netmesh.ErrChannelInvalidName)

	// The same name again is the same file; another configuration is refused.
	a := mustOpenFile(t, r, "cfg/same", netmesh.FileConfig{})
	b := mustOpenFile(t, r, "cfg/same", netmesh.FileConfig{})
	mustAppend(t, a, []byte("via a"))
	if got, found, _ := b.Read(0); !found || string(got) != "via a" {
		t.Fatalf("second handle does not see the first's append: %q %v", got, found)
	}
	_, err = r.OpenFile("cfg/same", netmesh.FileConfig{Retention: netmesh.Retention{MaxEvents: 1}})
	expectIs(t, err, netmesh.ErrRedexInvalidConfig)
	// Closing one handle closes the file: the other one reports ErrRedexClosed.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = b.Append([]byte("late"))
	expectIs(t, err, netmesh.ErrRedexClosed)
	_, err = a.Append([]byte("late"))
	expectIs(t, err, netmesh.ErrShuttingDown)
	if err := b.Close(); err != nil { // already closed through a: not an error
		t.Fatal(err)
	}
}

func TestRedexFileConfigJSON(t *testing.T) {
	for _, c := range []struct {
		cfg  netmesh.FileConfig
		want string
	}{
		{netmesh.FileConfig{}, `{"persistent":false,"fsync":"never","retention":{}}`},
		{netmesh.FileConfig{Persistent: true, Fsync: netmesh.FsyncNever}, `{"persistent":true,"fsync":"never","retention":{}}`},
		{netmesh.FileConfig{Persistent: true, Fsync: netmesh.FsyncEveryN(4)}, `{"persistent":true,"fsync":{"every_n":4},"retention":{}}`},
		{netmesh.FileConfig{Persistent: true, Fsync: netmesh.FsyncInterval(1500 * time.Microsecond)}, `{"persistent":true,"fsync":{"interval_ms":2},"retention":{}}`},
		{netmesh.FileConfig{Persistent: true, Fsync: netmesh.FsyncIntervalOrBytes(time.Second, 4096)}, `{"persistent":true,"fsync":{"interval_ms":1000,"max_bytes":4096},"retention":{}}`},
		{netmesh.FileConfig{Retention: netmesh.Retention{MaxEvents: 10, MaxBytes: 1 << 20, MaxAge: time.Hour}},
			`{"persistent":false,"fsync":"never","retention":{"max_events":10,"max_bytes":1048576,"max_age_ms":3600000}}`},
		{netmesh.FileConfig{Persistent: true, Repair: true}, `{"persistent":true,"fsync":"never","retention":{},"repair":true}`},
	} {
		got, err := json.Marshal(c.cfg)
		if err != nil || string(got) != c.want {
			t.Errorf("json.Marshal(%+v) = %s, %v; want %s", c.cfg, got, err, c.want)
		}
	}
	if s := netmesh.FsyncIntervalOrBytes(time.Second, 8).String(); s != "interval_or_bytes(1s, 8)" {
		t.Errorf("String() = %q", s)
	}
	// Every form opens on a persistent manager.
	r := mustRedex(t, t.TempDir())
	for i, p := range []netmesh.FsyncPolicy{netmesh.FsyncNever, netmesh.FsyncEveryN(2),
		netmesh.FsyncInterval(10 * time.Millisecond), netmesh.FsyncIntervalOrBytes(0, 1024)} {
		f := mustOpenFile(t, r, fmt.Sprintf("cfg/p%d", i), netmesh.FileConfig{Persistent: true, Fsync: p})
		mustAppend(t, f, []byte("x"))
	}
}

func TestRedexCloseEndsTails(t *testing.T) {
	f := memFile(t, "redex/end", netmesh.FileConfig{})
	mustAppend(t, f, []byte("one"))
	blocked := mustTail(t, f, 1) // waits for entry 1, forever
	backfill := mustTail(t, f, 0)
	stream := mustTail(t, f, 0)
	events := stream.Entries(context.Background())
	if ev := <-events; ev.Err != nil || string(ev.Entry.Payload) != "one" {
		t.Fatalf("first event %+v", ev)
	}

	// Whether or not the Next was already waiting when the file closed, it
	// ends with io.EOF (a tail of a closed file ends).
	res := blockedCall(func() error { _, err := blocked.Next(context.Background()); return err })
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-res; err != io.EOF {
		t.Fatalf("blocked Next after file Close: %v, want io.EOF", err)
	}
	// A tail that had unread entries ends too, and keeps ending.
	for i := 0; i < 2; i++ {
		if _, err := backfill.Next(context.Background()); err != io.EOF {
			t.Fatalf("Next on a tail of a closed file: %v", err)
		}
	}
	if ev, ok := <-events; ok {
		t.Fatalf("Entries delivered %+v after the file closed", ev)
	}
	// A new tail on a closed file cannot be made.
	_, err := f.Tail(0)
	expectIs(t, err, netmesh.ErrShuttingDown)
}

func TestRedexTailContext(t *testing.T) {
	f := memFile(t, "redex/ctx", netmesh.FileConfig{})
	tail := mustTail(t, f, 0)

	// A deadline: returns DeadlineExceeded, never before it.
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	_, err := tail.Next(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, netmesh.ErrCancelled) {
		t.Fatalf("Next past its deadline: %v", err)
	}
	if d := time.Since(begin); d < 150*time.Millisecond {
		t.Fatalf("Next with a 150 ms deadline returned after %v", d)
	}

	// Cancellation from another goroutine wakes the call inside libnet
	// (wake_test.go proves it was waiting).
	ctx, cancel = context.WithCancel(context.Background())
	res := blockedCall(func() error { _, err := tail.Next(ctx); return err })
	cancel()
	if err := <-res; !errors.Is(err, context.Canceled) || !errors.Is(err, netmesh.ErrCancelled) {
		t.Fatalf("cancelled Next: %v", err)
	}

	// An already-done context returns at once, even with an entry ready.
	mustAppend(t, f, []byte("ready"))
	_, err = tail.Next(ctx)
	expectIs(t, err, context.Canceled)
	expectIs(t, err, netmesh.ErrCancelled)
	// The tail is unaffected: the entry is still the next one.
	if e := mustNext(t, tail); e.Seq != 0 || string(e.Payload) != "ready" {
		t.Fatalf("after cancellations got %d %q", e.Seq, e.Payload)
	}

	// An entry arriving while Next waits under a cancellable context.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	type got struct {
		e   netmesh.Entry
		err error
	}
	next := blockedCall(func() got { e, err := tail.Next(ctx); return got{e, err} })
	mustAppend(t, f, []byte("later"))
	if r := <-next; r.err != nil || r.e.Seq != 1 || string(r.e.Payload) != "later" {
		t.Fatalf("Next while waiting: %v %q %v", r.e.Seq, r.e.Payload, r.err)
	}

	var nilCtx context.Context // refused, not a crash
	_, err = tail.Next(nilCtx)
	expectIs(t, err, netmesh.ErrInvalidArgument)
}

func TestRedexEntriesStream(t *testing.T) {
	f := memFile(t, "redex/stream", netmesh.FileConfig{Retention: netmesh.Retention{MaxEvents: 3}})
	for i := 0; i < 3; i++ {
		mustAppend(t, f, payloadOf(i))
	}
	tail := mustTail(t, f, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := tail.Entries(ctx)

	recv := func() netmesh.TailEvent {
		t.Helper()
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("Entries closed early")
			}
			return ev
		case <-time.After(30 * time.Second):
			t.Fatal("no event from Entries")
		}
		panic("unreachable")
	}
	for i := 0; i < 3; i++ {
		if ev := recv(); ev.Err != nil || ev.Entry.Seq != uint64(i) || !bytes.Equal(ev.Entry.Payload, payloadOf(i)) {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}
	// Retention removes entries the stream has not delivered yet: since the
	// stream goroutine may be holding a read entry, append and sweep so that
	// a lag is certain, then check the stream goes on after it.
	for i := 3; i < 10; i++ {
		mustAppend(t, f, payloadOf(i))
	}
	if _, err := f.SweepRetention(); err != nil { // keeps 7, 8, 9
		t.Fatal(err)
	}
	var lagged bool
	var last uint64
	for last != 9 {
		ev := recv()
		var lag *netmesh.LaggedError
		switch {
		case errors.As(ev.Err, &lag):
			if lagged || lag.ResumeAt != 7 {
				t.Fatalf("lag %+v", lag)
			}
			lagged = true
		case ev.Err != nil:
			t.Fatalf("stream error %v", ev.Err)
		default:
			if ev.Entry.Seq <= last {
				t.Fatalf("stream went back from %d to %d", last, ev.Entry.Seq)
			}
			last = ev.Entry.Seq
		}
	}
	if !lagged {
		t.Fatal("the stream never reported the lag")
	}

	// Cancelling the context closes the channel.
	cancel()
	select {
	case ev, ok := <-events:
		if ok {
			t.Fatalf("event after cancel: %+v", ev)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Entries not closed after cancel")
	}

	// A stream nobody reads any more ends when the tail is closed.
	other := mustTail(t, f, 0)
	abandoned := other.Entries(context.Background())
	mustAppend(t, f, []byte("never received"))
	netmesh.LetItBlock() // let the stream's goroutine block on sending it
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	for {
		select {
		case _, ok := <-abandoned:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("abandoned Entries never closed after the tail closed")
		}
	}
}

// writeChannel creates the persistent channel name under dir with n entries
// (payloadOf(0..n-1)) and closes it.
func writeChannel(t *testing.T, dir, name string, n int) {
	t.Helper()
	r := mustRedex(t, dir)
	f := mustOpenFile(t, r, name, netmesh.FileConfig{Persistent: true})
	for i := 0; i < n; i++ {
		mustAppend(t, f, payloadOf(i))
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	_ = r.Close()
}

// snapshotDir maps each file under dir to its contents.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		files[path] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestRedexLostDatIsCorruptUntilRepaired(t *testing.T) {
	dir := t.TempDir()
	writeChannel(t, dir, "orders/eu", 3)
	dat := filepath.Join(dir, "orders", "eu", "v0000000001", "dat")
	if err := os.Remove(dat); err != nil {
		t.Fatal(err)
	}
	before := snapshotDir(t, dir)

	r := mustRedex(t, dir)
	_, err := r.OpenFile("orders/eu", netmesh.FileConfig{Persistent: true})
	expectIs(t, err, netmesh.ErrRedexCorrupt)
	var nerr *netmesh.Error
	if !errors.As(err, &nerr) || nerr.Status != netmesh.StatusRedexCorrupt || !strings.Contains(nerr.Message, dat) {
		t.Fatalf("error %v does not name %s", err, dat)
	}
	if after := snapshotDir(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("a refused open changed the files:\nbefore %v\nafter  %v", before, after)
	}

	f := mustOpenFile(t, r, "orders/eu", netmesh.FileConfig{Persistent: true, Repair: true})
	report, err := f.RecoveryReport()
	if err != nil || report == nil {
		t.Fatalf("RecoveryReport: %v, %v", report, err)
	}
	if !report.Repaired || report.Clean || report.Entries != 0 || len(report.Dropped) != 3 {
		t.Fatalf("report after repair: %+v", report)
	}
	for i, d := range report.Dropped {
		if d.Reason != netmesh.DropPayloadOutOfRange || d.Position != uint64(i) || d.StoredSeq != uint64(i) ||
			d.Seq == nil || *d.Seq != uint64(i) {
			t.Errorf("dropped[%d] = %+v (seq %v)", i, d, d.Seq)
		}
	}
	if _, found, err := f.Read(0); err != nil || found {
		t.Fatalf("Read(0) after repair: found %v, %v", found, err)
	}
	// The lost seqs are never reused.
	if seq := mustAppend(t, f, []byte("after repair")); seq != 3 {
		t.Fatalf("append after repair got seq %d, want 3", seq)
	}
}

func TestRedexRecoveryReport(t *testing.T) {
	dir := t.TempDir()
	writeChannel(t, dir, "orders/eu", 3)
	dat := filepath.Join(dir, "orders", "eu", "v0000000001", "dat")
	b, err := os.ReadFile(dat)
	if err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xFF
	if err := os.WriteFile(dat, b, 0o644); err != nil {
		t.Fatal(err)
	}

	r := mustRedex(t, dir)
	f := mustOpenFile(t, r, "orders/eu", netmesh.FileConfig{Persistent: true})
	report, err := f.RecoveryReport()
	if err != nil || report == nil {
		t.Fatalf("RecoveryReport: %v, %v", report, err)
	}
	if report.Clean || report.Repaired || report.Entries != 2 || len(report.Dropped) != 1 {
		t.Fatalf("report: %+v", report)
	}
	d := report.Dropped[0]
	if d.Reason != netmesh.DropChecksumMismatch || d.Seq == nil || *d.Seq != 0 || d.StoredSeq != 0 || d.Position != 0 {
		t.Fatalf("dropped: %+v", d)
	}
	if _, found, _ := f.Read(0); found {
		t.Fatal("the damaged entry is still readable")
	}
	if got, found, _ := f.Read(1); !found || !bytes.Equal(got, payloadOf(1)) {
		t.Fatalf("Read(1) = %q, %v", got, found)
	}

	// A fresh channel opens clean; a memory file has no report.
	fresh := mustOpenFile(t, r, "orders/us", netmesh.FileConfig{Persistent: true})
	if report, err := fresh.RecoveryReport(); err != nil || report == nil || !report.Clean ||
		len(report.Dropped) != 0 || report.Generation != 1 {
		t.Fatalf("fresh channel report: %+v, %v", report, err)
	}
	mem := memFile(t, "orders/mem", netmesh.FileConfig{})
	if report, err := mem.RecoveryReport(); err != nil || report != nil {
		t.Fatalf("memory file report: %+v, %v", report, err)
	}
	// A closed file reports ErrShuttingDown.
	_ = mem.Close()
	_, err = mem.RecoveryReport()
	expectIs(t, err, netmesh.ErrShuttingDown)
}

func TestRedexRepairNeedsPersistent(t *testing.T) {
	r := mustRedex(t, t.TempDir())
	_, err := r.OpenFile("cfg/repair", netmesh.FileConfig{Repair: true})
	expectIs(t, err, netmesh.ErrRedexInvalidConfig)
	if !strings.Contains(err.Error(), "repair") {
		t.Fatalf("error %q does not name repair", err)
	}
	_, err = r.OpenFileJSON("cfg/repair", `{"repair": true}`)
	expectIs(t, err, netmesh.ErrRedexInvalidConfig)
}
