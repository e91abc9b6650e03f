package netmesh_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/netmesh/net/sdk-go/netmesh"
)

var meshPSK = make([]byte, 32)

func fastMesh(t *testing.T, extra func(*netmesh.MeshConfig)) *netmesh.Mesh {
	cfg := netmesh.MeshConfig{PSK: meshPSK, HeartbeatInterval: 50 * time.Millisecond,
		SessionTimeout: time.Second, HelloTimeout: 500 * time.Millisecond}
	if extra != nil {
		extra(&cfg)
	}
	m := must(netmesh.NewMesh(cfg))
	t.Cleanup(func() { _ = m.Close() })
	testMeshes.add(t, m)
	return m
}

// testMeshes remembers each test's meshes, so a receive that times out can
// show what every node of the test saw (peers, counters, channels).
var testMeshes = meshRegistry{byTest: map[*testing.T][]*netmesh.Mesh{}}

type meshRegistry struct {
	mu     sync.Mutex
	byTest map[*testing.T][]*netmesh.Mesh
}

func (r *meshRegistry) add(t *testing.T, m *netmesh.Mesh) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.byTest[t]; !ok {
		t.Cleanup(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			delete(r.byTest, t)
		})
	}
	r.byTest[t] = append(r.byTest[t], m)
}

// dump logs the state of every mesh t created (a failed receive's evidence).
func (r *meshRegistry) dump(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	meshes := append([]*netmesh.Mesh(nil), r.byTest[t]...)
	r.mu.Unlock()
	for _, m := range meshes {
		id, _ := m.NodeID()
		peers, _ := m.Peers()
		channels, _ := m.Channels()
		stats, _ := m.Stats()
		nonzero := map[string]uint64{}
		for k, v := range stats {
			if v != 0 {
				nonzero[k] = v
			}
		}
		t.Logf("mesh %#x: peers %+v\n  stats %v\n  channels %v", id, peers, nonzero, channels)
	}
}

func connectPair(t *testing.T) (*netmesh.Mesh, *netmesh.Mesh) {
	a, b := fastMesh(t, nil), fastMesh(t, nil)
	must(0, a.Start())
	must(0, b.Start())
	if err := a.Connect(ctx5(t), must(b.LocalAddr()), must(b.PublicKey()), must(b.NodeID())); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func recvN(t *testing.T, m *netmesh.Mesh, n int) []netmesh.MeshEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []netmesh.MeshEvent
	for len(got) < n {
		events, err := m.Recv(ctx, n-len(got))
		if err != nil {
			testMeshes.dump(t)
			t.Fatalf("after %d of %d events: %v", len(got), n, err)
		}
		got = append(got, events...)
	}
	return got
}

func TestMeshEventsBothWays(t *testing.T) {
	a, b := connectPair(t)
	aid, bid := must(a.NodeID()), must(b.NodeID())
	if id := must(a.EntityID()); len(id) != 32 {
		t.Fatalf("entity id is %d bytes", len(id))
	}
	s := must(a.OpenStream(bid, 7, true, nil))
	defer s.Close()
	if err := s.Send([]byte("hello"), []byte("from a")); err != nil {
		t.Fatal(err)
	}
	got := recvN(t, b, 2)
	if got[0].Peer != aid || got[0].StreamID != 7 || string(got[0].Data) != "hello" || string(got[1].Data) != "from a" {
		t.Fatalf("got %+v", got)
	}
	back := must(b.OpenStream(aid, 9, false, nil))
	defer back.Close()
	if err := back.Send([]byte("back")); err != nil {
		t.Fatal(err)
	}
	ev, err := a.RecvNext(ctx5(t))
	if err != nil || ev.Peer != bid || string(ev.Data) != "back" {
		t.Fatalf("%+v %v", ev, err)
	}
	peers := must(a.Peers())
	if len(peers) != 1 || peers[0].NodeID != bid || peers[0].Identity != "net" || peers[0].Health != "alive" {
		t.Fatalf("peers %+v", peers)
	}
	if st := must(b.Stats()); st["events_received"] < 2 {
		t.Fatalf("stats %v", st)
	}
	if p, id, err := s.Info(); err != nil || p != bid || id != 7 {
		t.Fatal(p, id, err)
	}
}

func TestMeshReliableManyInOrder(t *testing.T) {
	a, b := connectPair(t)
	zero := uint64(0)
	s := must(a.OpenStream(must(b.NodeID()), 3, true, &zero))
	defer s.Close()
	const n = 5000
	batch := make([][]byte, 0, 500)
	for i := 0; i < n; i++ {
		batch = append(batch, []byte{byte(i), byte(i >> 8)})
		if len(batch) == 500 {
			if err := s.Send(batch...); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	got := recvN(t, b, n)
	for i, e := range got {
		if int(e.Data[0])|int(e.Data[1])<<8 != i {
			t.Fatalf("event %d out of order", i)
		}
	}
}

func TestMeshBackpressureAndBlocking(t *testing.T) {
	a, b := connectPair(t)
	w := uint64(1000)
	s := must(a.OpenStream(must(b.NodeID()), 4, false, &w))
	defer s.Close()
	big := make([]byte, 900)
	if err := s.Send(big); err != nil {
		t.Fatal(err)
	}
	expectIs(t, s.Send(big, big), netmesh.ErrMeshTooLarge)
	if err := s.Send(big); err != nil && !errors.Is(err, netmesh.ErrMeshBackpressure) {
		t.Fatal(err)
	}
	// Credit comes back as the reader takes events: read meanwhile.
	read := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for got := 0; got < 4; {
			events, err := b.Recv(ctx, 4-got)
			if err != nil {
				read <- err
				return
			}
			got += len(events)
		}
		read <- nil
	}()
	if err := s.SendBlocking(ctx5(t), big, big, big); err != nil {
		t.Fatal(err)
	}
	if err := <-read; err != nil {
		t.Fatal(err)
	}
}

func TestMeshErrors(t *testing.T) {
	_, err := netmesh.NewMesh(netmesh.MeshConfig{Bind: "nowhere"})
	expectIs(t, err, netmesh.ErrMeshConfig)
	a := fastMesh(t, func(c *netmesh.MeshConfig) { c.HandshakeTimeout = 100 * time.Millisecond; c.HandshakeRetries = 1 })
	stranger := must(netmesh.NewMesh(netmesh.MeshConfig{}))
	defer stranger.Close()
	err = a.Connect(context.Background(), must(stranger.LocalAddr()), must(stranger.PublicKey()), must(stranger.NodeID()))
	expectIs(t, err, netmesh.ErrMeshHandshakeTimeout)
	_, err = a.OpenStream(12345, 1, false, nil)
	expectIs(t, err, netmesh.ErrMeshUnknownPeer)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := a.Accept(ctx, 999); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, netmesh.ErrCancelled) {
		t.Fatal(err)
	}
}

// Shutdown (net_mesh_close) ends the node without freeing it: a Recv then
// returns io.EOF, other calls ErrShuttingDown, and Close still frees it.
func TestMeshShutdownThenClose(t *testing.T) {
	a, _ := connectPair(t)
	if err := a.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RecvNext(ctx5(t)); err != io.EOF {
		t.Fatalf("recv after Shutdown: %v", err)
	}
	if _, err := a.Recv(ctx5(t), 4); err != io.EOF {
		t.Fatalf("recv batch after Shutdown: %v", err)
	}
	_, err := a.OpenStream(1, 1, false, nil)
	expectIs(t, err, netmesh.ErrShuttingDown)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = a.NodeID()
	expectIs(t, err, netmesh.ErrShuttingDown)
	_, err = a.RecvNext(context.Background())
	expectIs(t, err, netmesh.ErrShuttingDown)
}

func TestMeshConcurrentClosesWithRacingOps(t *testing.T) {
	for round := 0; round < 10; round++ {
		a, b := connectPair(t)
		s := must(a.OpenStream(must(b.NodeID()), 1, false, nil))
		var wg sync.WaitGroup
		start := make(chan struct{})
		op := func(f func() error) {
			defer wg.Done()
			<-start
			for i := 0; i < 100; i++ {
				if err := f(); err != nil && !errors.Is(err, netmesh.ErrShuttingDown) &&
					!errors.Is(err, netmesh.ErrMeshBackpressure) && !errors.Is(err, netmesh.ErrMeshStreamClosed) &&
					!errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, netmesh.ErrMeshUnknownPeer) &&
					err != io.EOF {
					t.Errorf("racing op: %v", err)
					return
				}
			}
		}
		wg.Add(7)
		go op(func() error { return s.Send([]byte("x")) })
		go op(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			defer cancel()
			_, err := a.RecvNext(ctx)
			return err
		})
		go op(func() error { _, err := a.Stats(); return err })
		for _, c := range []func() error{s.Close, s.Close, a.Close, a.Close} {
			go func(c func() error) {
				defer wg.Done()
				<-start
				runtime.Gosched()
				if err := c(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}(c)
		}
		close(start)
		wg.Wait()
	}
}

// A sender that does not wait for credit (window 0) overflows a reader
// that does not read: every dropped event reaches the application, as
// DroppedBefore on the stream's next event and at once as the peer's
// DroppedUnreported.
func TestMeshDropsReachTheApplication(t *testing.T) {
	a := fastMesh(t, nil)
	b := fastMesh(t, func(c *netmesh.MeshConfig) { c.ShardCapacity = 100 })
	bid := must(b.NodeID())
	if err := a.Connect(ctx5(t), must(b.LocalAddr()), must(b.PublicKey()), bid); err != nil {
		t.Fatal(err)
	}
	var zero uint64
	s := must(a.OpenStream(bid, 12, false, &zero))
	const n = 2000
	event := func(i uint32) []byte { // 64 bytes: the burst exceeds the 64 KiB receive window
		e := make([]byte, 64)
		binary.LittleEndian.PutUint32(e, i)
		return e
	}
	for i := uint32(0); i < n; i++ {
		if err := s.Send(event(i)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	var dropped uint64
	for {
		stats := must(b.Stats())
		dropped = stats["inbound_dropped"]
		if dropped+stats["inbound_queued"] == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never settled: %v", stats)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if dropped == 0 {
		t.Fatal("a 100-event shard took a 2000-event burst without dropping")
	}
	expected := uint32(0)
	for _, e := range recvN(t, b, int(n-dropped)) {
		number := binary.LittleEndian.Uint32(e.Data)
		if uint64(number-expected) != e.DroppedBefore {
			t.Fatalf("event %d: DroppedBefore %d, gap %d", number, e.DroppedBefore, number-expected)
		}
		expected = number + 1
	}
	unreported := uint64(n - expected)
	if got := must(b.Peers())[0].DroppedUnreported; got != unreported {
		t.Fatalf("DroppedUnreported %d, want %d", got, unreported)
	}
	if err := s.Send(event(n)); err != nil {
		t.Fatal(err)
	}
	if next := recvN(t, b, 1)[0]; next.DroppedBefore != unreported {
		t.Fatalf("last event: DroppedBefore %d, want %d", next.DroppedBefore, unreported)
	}
}

// Window growth and large datagrams are options; a node with large
// datagrams off keeps its peer at v0.11's 8 KiB, two nodes with them on
// reach 65 000 on loopback.
func TestMeshDatagramAndWindowOptions(t *testing.T) {
	maxWindow := uint64(1 << 20)
	big := func(c *netmesh.MeshConfig) {
		c.MaxWindow = &maxWindow
		c.WindowBudget = 8 << 20
		c.PathProbeInterval = 200 * time.Millisecond
	}
	small := func(c *netmesh.MeshConfig) { c.NoLargeDatagrams = true }
	for _, tc := range []struct {
		name string
		b    func(*netmesh.MeshConfig)
		want int
	}{{"large", big, 65000}, {"small", small, 8192}} {
		a, b := fastMesh(t, big), fastMesh(t, tc.b)
		if err := a.Connect(ctx5(t), must(b.LocalAddr()), must(b.PublicKey()), must(b.NodeID())); err != nil {
			t.Fatal(err)
		}
		waitFor(t, tc.name+" datagram size", func() bool {
			peers := must(a.Peers())
			return len(peers) == 1 && peers[0].Identity == "net" && peers[0].MaxDatagram == tc.want &&
				(tc.want == 8192 || must(a.Stats())["paths_enlarged"] >= 1)
		})
		if tc.want == 8192 && must(a.Stats())["path_probes_sent"] != 0 {
			t.Fatalf("probed a node without large datagrams: %v", must(a.Stats()))
		}
	}
}
