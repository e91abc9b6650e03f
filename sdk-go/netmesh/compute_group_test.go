package netmesh_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/netmesh/net/sdk-go/netmesh"
)

// groupCounter is the counter (state, Snapshot, Restore) refusing only an
// event whose sequence it has passed (one applied twice): a replica sees
// every other sequence.
type groupCounter struct {
	counter
}

func (c *groupCounter) Process(ev netmesh.DaemonEvent) ([][]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ev.Sequence <= c.last {
		return nil, fmt.Errorf("sequence %d after %d", ev.Sequence, c.last)
	}
	c.last = ev.Sequence
	c.count++
	return nil, nil
}

func (c *groupCounter) values() (uint64, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count, c.last
}

type groupNode struct {
	id      uint64
	mesh    *netmesh.Mesh
	compute *netmesh.Compute
}

func groupNodes(t *testing.T, n int) []groupNode {
	t.Helper()
	out := make([]groupNode, n)
	for i := range out {
		m := fastMesh(t, nil)
		c := must(netmesh.NewCompute(m, netmesh.ComputeConfig{WorkTimeout: 5 * time.Second}))
		t.Cleanup(func() { _ = c.Close() })
		if err := c.Register("counter", func() netmesh.Daemon { return &groupCounter{} }, true); err != nil {
			t.Fatal(err)
		}
		out[i] = groupNode{id: must(m.NodeID()), mesh: m, compute: c}
	}
	return out
}

func computes(nodes []groupNode) []*netmesh.Compute {
	out := make([]*netmesh.Compute, len(nodes))
	for i, n := range nodes {
		out[i] = n.compute
	}
	return out
}

func (n groupNode) counter(t *testing.T, origin uint64) *groupCounter {
	t.Helper()
	d, ok := n.compute.Daemon(origin)
	if !ok {
		t.Fatalf("no daemon %#x on node %#x", origin, n.id)
	}
	return d.(*groupCounter)
}

func nodeByID(t *testing.T, nodes []groupNode, id uint64) groupNode {
	t.Helper()
	for _, n := range nodes {
		if n.id == id {
			return n
		}
	}
	t.Fatalf("no node %#x", id)
	return groupNode{}
}

const groupProducer = 0xfeed_0000_0000_0003

var groupSeed = bytesOf(9, 32)

func TestComputeReplicaGroupRoutesScalesAndReplaces(t *testing.T) {
	nodes := groupNodes(t, 3)
	g := must(netmesh.NewReplicaGroup(computes(nodes), "counter", groupSeed, 3, map[string]any{"strategy": "round_robin"}))
	defer g.Close()
	st := must(g.Status())
	if st.Kind != "replica" || st.Health != "healthy" || st.Total != 3 {
		t.Fatalf("status %+v", st)
	}
	placed := map[uint64]bool{}
	for _, m := range st.Members {
		placed[m.Node] = true
	}
	if len(placed) != 3 {
		t.Fatalf("members not on distinct nodes: %+v", st.Members)
	}
	taken := map[[2]uint64]uint64{}
	for seq := uint64(1); seq <= 30; seq++ {
		r := must(g.Route(groupProducer, seq, nil, ""))
		if r.Outcome != netmesh.DeliveryProcessed {
			t.Fatalf("outcome %v", r.Outcome)
		}
		taken[[2]uint64{r.Node, r.Origin}]++
	}
	for key, n := range taken {
		node := nodeByID(t, nodes, key[0])
		stats, ok, err := node.compute.WaitProcessed(context.Background(), key[1], 10, 5*time.Second)
		if err != nil || !ok || n != 10 || stats.EventsProcessed != 10 {
			t.Fatalf("member %#x took %d, stats %+v ok=%v err=%v", key[1], n, stats, ok, err)
		}
		if count, _ := node.counter(t, key[1]).values(); count != 10 {
			t.Fatalf("member object count %d", count)
		}
	}

	if err := g.Scale(2); err != nil {
		t.Fatal(err)
	}
	if st := must(g.Status()); st.Total != 2 {
		t.Fatalf("after scale: %+v", st)
	}
	for seq := uint64(31); seq <= 34; seq++ {
		if r := must(g.Route(groupProducer, seq, nil, "")); r.Index > 1 {
			t.Fatalf("routed to removed member %d", r.Index)
		}
	}
	if err := g.Scale(4); !errors.Is(err, netmesh.ErrComputeGroupPlacement) {
		t.Fatalf("scale 4: %v", err)
	}
	if err := g.Scale(0); !errors.Is(err, netmesh.ErrComputeConfig) {
		t.Fatalf("scale 0: %v", err)
	}
	if _, err := g.Promote(); !errors.Is(err, netmesh.ErrComputeGroupWrongKind) {
		t.Fatalf("promote: %v", err)
	}

	// Member 1's node is reported failed: re-created on the free node under
	// a new identity.
	before := must(g.Status()).Members[1]
	replaced := must(g.NodeFailed(before.Node))
	if len(replaced) != 1 || replaced[0] != 1 {
		t.Fatalf("replaced %v", replaced)
	}
	after := must(g.Status()).Members[1]
	if after.Node == before.Node || after.Generation != 1 || after.Origin == before.Origin {
		t.Fatalf("before %+v after %+v", before, after)
	}
	if r := must(g.Route(groupProducer, 100, nil, "")); r.Outcome != netmesh.DeliveryProcessed {
		t.Fatalf("after replacement: %+v", r)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Status(); !errors.Is(err, netmesh.ErrShuttingDown) {
		t.Fatalf("status after close: %v", err)
	}
}

// A node reported failed with no free node to take its member: the member
// is out of service until the node is reported back.
func TestComputeReplicaMemberReturnsWithItsNode(t *testing.T) {
	nodes := groupNodes(t, 2)
	g := must(netmesh.NewReplicaGroup(computes(nodes), "counter", groupSeed, 2, map[string]any{"strategy": "round_robin"}))
	defer g.Close()
	member := must(g.Status()).Members[1]
	if replaced := must(g.NodeFailed(member.Node)); len(replaced) != 0 {
		t.Fatalf("replaced %v with no free node", replaced)
	}
	if st := must(g.Status()); st.Health != "degraded" {
		t.Fatalf("after the failure: %+v", st)
	}
	for seq := uint64(1); seq <= 4; seq++ {
		if r := must(g.Route(groupProducer, seq, nil, "")); r.Node == member.Node {
			t.Fatalf("routed to the failed node: %+v", r)
		}
	}
	restored := must(g.NodeRecovered(member.Node))
	if len(restored) != 1 || restored[0] != 1 {
		t.Fatalf("restored %v", restored)
	}
	st := must(g.Status())
	if st.Health != "healthy" || st.Members[1].Origin != member.Origin {
		t.Fatalf("after the return: %+v", st)
	}
}

// A group following a failure detector (WatchFailures) re-creates the
// member of a node that dies, with nobody calling NodeFailed.
func TestComputeWatchingGroupReplacesADeadNodesMember(t *testing.T) {
	nodes := groupNodes(t, 4)
	for _, n := range nodes {
		must(0, n.mesh.Start())
	}
	for _, n := range nodes[1:] {
		if err := nodes[0].mesh.Connect(ctx5(t), must(n.mesh.LocalAddr()), must(n.mesh.PublicKey()), n.id); err != nil {
			t.Fatal(err)
		}
	}
	g := must(netmesh.NewReplicaGroup(computes(nodes), "counter", groupSeed, 2, nil))
	defer g.Close()
	if err := g.WatchFailures(nodes[0].compute, 0); !errors.Is(err, netmesh.ErrInvalidArgument) {
		t.Fatalf("every 0: %v", err)
	}
	must(0, g.WatchFailures(nodes[0].compute, 20*time.Millisecond))
	must(0, g.WatchFailures(nodes[0].compute, 20*time.Millisecond)) // replaces the watch
	index, victim := -1, uint64(0)
	for i, m := range must(g.Status()).Members {
		if m.Node != nodes[0].id {
			index, victim = i, m.Node
			break
		}
	}
	dead := nodeByID(t, nodes, victim)
	must(0, dead.compute.Close())
	must(0, dead.mesh.Close())
	waitFor(t, "the dead node's member replaced", func() bool {
		return must(g.Status()).Members[index].Node != victim
	})
	st := must(g.Status())
	if st.Health != "healthy" || st.Members[index].Generation != 1 {
		t.Fatalf("after the replacement: %+v", st)
	}
	for seq := uint64(1); seq <= 4; seq++ {
		if r := must(g.Route(groupProducer, seq, nil, "")); r.Node == victim {
			t.Fatalf("routed to the dead node: %+v", r)
		}
	}
	must(0, g.UnwatchFailures())
	must(0, g.UnwatchFailures())
	// Still watching when the group closes.
	must(0, g.WatchFailures(nodes[0].compute, 20*time.Millisecond))
}

func TestComputeStandbyGroupPromotesWithNothingAppliedTwice(t *testing.T) {
	nodes := groupNodes(t, 3)
	g := must(netmesh.NewStandbyGroup(computes(nodes), "counter", groupSeed, 2))
	defer g.Close()
	origin := must(g.Status()).Origin
	for seq := uint64(1); seq <= 10; seq++ {
		if r := must(g.Route(groupProducer, seq, nil, "")); r.Index != 0 || r.Origin != origin {
			t.Fatalf("routed %+v", r)
		}
	}
	report := must(g.Sync())
	if len(report.Synced) != 1 || report.Synced[0] != 1 || len(report.Failed) != 0 {
		t.Fatalf("sync %+v", report)
	}
	for seq := uint64(11); seq <= 15; seq++ {
		must(g.Route(groupProducer, seq, nil, ""))
	}
	if st := must(g.Status()); st.Logged != 5 {
		t.Fatalf("logged %d", st.Logged)
	}
	if index := must(g.Promote()); index != 1 {
		t.Fatalf("promoted %d", index)
	}
	st := must(g.Status())
	active := nodeByID(t, nodes, st.Members[1].Node)
	if count, last := active.counter(t, origin).values(); count != 15 || last != 15 {
		t.Fatalf("new active at %d/%d", count, last)
	}
	must(g.Route(groupProducer, 16, nil, ""))
	if count, last := active.counter(t, origin).values(); count != 16 || last != 16 {
		t.Fatalf("new active at %d/%d", count, last)
	}
	if err := g.Scale(3); !errors.Is(err, netmesh.ErrComputeGroupWrongKind) {
		t.Fatalf("scale: %v", err)
	}
}

func TestComputeForkGroupStartsFromItsParent(t *testing.T) {
	nodes := groupNodes(t, 3)
	parent := must(nodes[0].compute.Spawn("counter", bytesOf(3, 32), nil))
	for seq := uint64(1); seq <= 5; seq++ {
		must(nodes[0].compute.Deliver(parent, groupProducer, seq, nil))
	}
	g := must(netmesh.NewForkGroup(computes(nodes), "counter", nodes[0].id, parent, 2, nil))
	defer g.Close()
	st := must(g.Status())
	if st.Kind != "fork" || st.ParentOrigin != parent || !st.LineageVerified || len(st.Records) != 2 {
		t.Fatalf("status %+v", st)
	}
	r := must(g.Route(groupProducer, 6, nil, ""))
	if count, last := nodeByID(t, nodes, r.Node).counter(t, r.Origin).values(); count != 6 || last != 6 {
		t.Fatalf("fork at %d/%d", count, last)
	}
}

func TestComputeWaitProcessedTimesOutAndIsCancelled(t *testing.T) {
	nodes := groupNodes(t, 1)
	c := nodes[0].compute
	origin := must(c.Spawn("counter", bytesOf(4, 32), nil))
	if _, ok, err := c.WaitProcessed(context.Background(), origin, 1, 20*time.Millisecond); ok || err != nil {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := c.WaitProcessed(ctx, origin, 1, -1); !errors.Is(err, netmesh.ErrCancelled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	must(c.Deliver(origin, groupProducer, 1, nil))
	stats, ok, err := c.WaitProcessed(context.Background(), origin, 1, -1)
	if err != nil || !ok || stats.EventsProcessed != 1 || stats.Origin != origin {
		t.Fatalf("stats %+v ok=%v err=%v", stats, ok, err)
	}
}

func TestComputeStandbyActiveMigratesToAFreeNode(t *testing.T) {
	nodes := groupNodes(t, 3)
	// A migration goes node to node: connect them all.
	for i := range nodes {
		for _, b := range nodes[i+1:] {
			if err := nodes[i].mesh.Connect(ctx5(t), must(b.mesh.LocalAddr()), must(b.mesh.PublicKey()), b.id); err != nil {
				t.Fatal(err)
			}
		}
	}
	g := must(netmesh.NewStandbyGroup(computes(nodes), "counter", groupSeed, 2))
	defer g.Close()
	st := must(g.Status())
	origin := st.Origin
	for seq := uint64(1); seq <= 5; seq++ {
		must(g.Route(groupProducer, seq, nil, ""))
	}
	var free uint64
	for _, n := range nodes {
		if n.id != st.Members[0].Node && n.id != st.Members[1].Node {
			free = n.id
		}
	}
	if err := g.Migrate(0, st.Members[1].Node); !errors.Is(err, netmesh.ErrComputeGroupPlacement) {
		t.Fatalf("onto a standby's node: %v", err)
	}
	if err := g.Migrate(1, free); !errors.Is(err, netmesh.ErrInvalidArgument) {
		t.Fatalf("a standby: %v", err)
	}
	if err := g.Migrate(0, free); err != nil {
		t.Fatal(err)
	}
	if st = must(g.Status()); st.Members[0].Node != free {
		t.Fatalf("the active is on %#x, not %#x", st.Members[0].Node, free)
	}
	moved := nodeByID(t, nodes, free)
	if count, last := moved.counter(t, origin).values(); count != 5 || last != 5 {
		t.Fatalf("moved at %d/%d", count, last)
	}
	if r := must(g.Route(groupProducer, 6, nil, "")); r.Node != free {
		t.Fatalf("routed to %#x", r.Node)
	}
	if count, last := moved.counter(t, origin).values(); count != 6 || last != 6 {
		t.Fatalf("moved at %d/%d", count, last)
	}
}
