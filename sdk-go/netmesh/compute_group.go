package netmesh

/*
#include <net.h>
*/
import "C"

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"time"
	"unsafe"
)

// ComputeGroup is a replica, fork or standby group (net_compute_group_t)
// of daemons of one registered kind, placed on distinct nodes among the
// Computes it was made over (runtimes of this process: groups spanning
// processes are not there yet). Each member is a Go object built by its
// node's kind factory, called on that node's work goroutine. Safe for
// concurrent use; Close stops the members. Never call its methods from a
// Daemon method: they wait for the members.
type ComputeGroup struct {
	h handle // *C.net_compute_group_t
}

// Routed is where ComputeGroup.Route delivered an event: the member's
// index, origin hash and node, and what its runtime did.
type Routed struct {
	Index   uint32
	Origin  uint64
	Node    uint64
	Outcome Delivery
}

// GroupMember is one member as ComputeGroup.Status reports it.
type GroupMember struct {
	Index      uint32 `json:"index"`
	Origin     uint64 `json:"origin"`
	Node       uint64 `json:"node"`
	Healthy    bool   `json:"healthy"`
	Generation uint32 `json:"generation"`
	// SyncedThrough (standby groups): the active's chain sequence this
	// standby last synced to; nil for the active or an unsynced standby.
	SyncedThrough *uint64 `json:"synced_through,omitempty"`
}

// GroupStatus is a group as ComputeGroup.Status reports it. Kind is
// "replica", "fork" or "standby"; Health "healthy", "degraded" or "dead".
// GroupID is a replica group's; ParentOrigin, ForkSeq, LineageVerified and
// Records (each member's 65-byte ForkRecord in hex) a fork group's; Origin,
// Active and Logged a standby group's.
type GroupStatus struct {
	Kind            string        `json:"kind"`
	DaemonKind      string        `json:"daemon_kind"`
	Nodes           []uint64      `json:"nodes"`
	Health          string        `json:"health"`
	Healthy         int           `json:"healthy"`
	Total           int           `json:"total"`
	Members         []GroupMember `json:"members"`
	GroupID         uint32        `json:"group_id,omitempty"`
	ParentOrigin    uint64        `json:"parent_origin,omitempty"`
	ForkSeq         uint64        `json:"fork_seq,omitempty"`
	LineageVerified bool          `json:"lineage_verified,omitempty"`
	Records         []string      `json:"records,omitempty"`
	Origin          uint64        `json:"origin,omitempty"`
	Active          uint32        `json:"active,omitempty"`
	Logged          int           `json:"logged,omitempty"`
}

// SyncReport is what ComputeGroup.Sync did: the active's chain sequence
// the standbys were synced to, the ones synced, and the ones that failed.
type SyncReport struct {
	ThroughSeq uint64   `json:"through_seq"`
	Synced     []uint32 `json:"synced"`
	Failed     []struct {
		Index uint32 `json:"index"`
		Error string `json:"error"`
	} `json:"failed"`
}

func freeComputeGroup(p unsafe.Pointer) error {
	return freeStatus("net_compute_group_free", func() C.net_status_t {
		return C.net_compute_group_free((*C.net_compute_group_t)(p))
	})
}

// newGroup runs a group constructor over nodes' runtimes.
func newGroup(op string, nodes []*Compute, create func(rts **C.net_compute_t, n C.size_t, out **C.net_compute_group_t) C.net_status_t) (*ComputeGroup, error) {
	if len(nodes) == 0 {
		return nil, invalidArgument(op, "no nodes")
	}
	// C pointers in Go memory: cgo lets libnet read them during the call.
	rts := make([]*C.net_compute_t, len(nodes))
	for i, c := range nodes {
		p, err := c.ptr(op)
		if err != nil {
			return nil, err
		}
		rts[i] = p
	}
	var out *C.net_compute_group_t
	err := check(op, func() C.net_status_t { return create(&rts[0], C.size_t(len(nodes)), &out) })
	runtime.KeepAlive(nodes)
	if err != nil {
		return nil, err
	}
	g := &ComputeGroup{h: newHandle(unsafe.Pointer(out))}
	runtime.SetFinalizer(g, func(g *ComputeGroup) { g.h.leaked("netmesh.ComputeGroup", freeComputeGroup) })
	return g, nil
}

func seedOf(op string, seed []byte) error {
	if len(seed) != 32 {
		return invalidArgument(op, fmt.Sprintf("seed must be 32 bytes, got %d", len(seed)))
	}
	return nil
}

// NewReplicaGroup places count identical daemons of kind (identities from
// the 32-byte seed), one per node among nodes, sharing routed events
// through a load balancer configured by lb (nil: defaults; a struct, map,
// JSON string or bytes, e.g. map[string]any{"strategy": "round_robin"}).
func NewReplicaGroup(nodes []*Compute, kind string, seed []byte, count uint32, lb any) (*ComputeGroup, error) {
	const op = "net_compute_group_replica"
	if err := seedOf(op, seed); err != nil {
		return nil, err
	}
	cfg, err := encodeJSON(op, lb)
	if err != nil {
		return nil, err
	}
	g, err := newGroup(op, nodes, func(rts **C.net_compute_t, n C.size_t, out **C.net_compute_group_t) C.net_status_t {
		return C.net_compute_group_replica(rts, n, stringPtr(kind), C.size_t(len(kind)), bytesPtr(seed),
			C.size_t(len(seed)), C.uint32_t(count), bytesPtr(cfg), C.size_t(len(cfg)), out)
	})
	runtime.KeepAlive(seed)
	runtime.KeepAlive(cfg)
	return g, err
}

// NewForkGroup starts count forks of daemon parentOrigin (running on node
// parentNode), each from its state with a new identity and a ForkRecord
// (see Status), one per node among nodes; lb as for NewReplicaGroup.
func NewForkGroup(nodes []*Compute, kind string, parentNode, parentOrigin uint64, count uint32, lb any) (*ComputeGroup, error) {
	const op = "net_compute_group_fork"
	cfg, err := encodeJSON(op, lb)
	if err != nil {
		return nil, err
	}
	g, err := newGroup(op, nodes, func(rts **C.net_compute_t, n C.size_t, out **C.net_compute_group_t) C.net_status_t {
		return C.net_compute_group_fork(rts, n, stringPtr(kind), C.size_t(len(kind)), C.uint64_t(parentNode),
			C.uint64_t(parentOrigin), C.uint32_t(count), bytesPtr(cfg), C.size_t(len(cfg)), out)
	})
	runtime.KeepAlive(cfg)
	return g, err
}

// NewStandbyGroup places count (≥ 2) copies of one daemon of kind
// (identity from the 32-byte seed) on distinct nodes: member 0 is active,
// the others standbys brought to its state by Sync and made active by
// Promote.
func NewStandbyGroup(nodes []*Compute, kind string, seed []byte, count uint32) (*ComputeGroup, error) {
	const op = "net_compute_group_standby"
	if err := seedOf(op, seed); err != nil {
		return nil, err
	}
	g, err := newGroup(op, nodes, func(rts **C.net_compute_t, n C.size_t, out **C.net_compute_group_t) C.net_status_t {
		return C.net_compute_group_standby(rts, n, stringPtr(kind), C.size_t(len(kind)), bytesPtr(seed),
			C.size_t(len(seed)), C.uint32_t(count), out)
	})
	runtime.KeepAlive(seed)
	return g, err
}

func (g *ComputeGroup) ptr(op string) (*C.net_compute_group_t, error) {
	if g == nil {
		return nil, invalidArgument(op, "group is nil")
	}
	p := (*C.net_compute_group_t)(g.h.load())
	if p == nil {
		return nil, shuttingDown(op, "group has been closed")
	}
	return p, nil
}

func (g *ComputeGroup) do(op string, f func(p *C.net_compute_group_t) C.net_status_t) error {
	p, err := g.ptr(op)
	if err != nil {
		return err
	}
	_, err = call(op, func() C.net_status_t { return f(p) })
	runtime.KeepAlive(g)
	return err
}

func (g *ComputeGroup) jsonOf(op string, v any, f func(p *C.net_compute_group_t, out *C.net_bytes_t) C.net_status_t) error {
	var out C.net_bytes_t
	if err := g.do(op, func(p *C.net_compute_group_t) C.net_status_t { return f(p, &out) }); err != nil {
		return err
	}
	return json.Unmarshal(takeBytes(&out), v)
}

// Route routes an event into the group and waits until it is processed: a
// replica or fork group's load balancer picks a member (key, if not empty,
// is the consistent-hash key); a standby group's active takes it.
// ErrComputeGroupNoHealthyMember if no member can.
func (g *ComputeGroup) Route(producer, sequence uint64, payload []byte, key string) (Routed, error) {
	const op = "net_compute_group_route"
	p, err := g.ptr(op)
	if err != nil {
		return Routed{}, err
	}
	var index, outcome C.uint32_t
	var origin, node C.uint64_t
	var errOut C.net_error_t
	keyPtr := (*C.uint8_t)(nil)
	if key != "" {
		keyPtr = stringPtr(key)
	}
	st := C.net_compute_group_route(p, C.uint64_t(producer), C.uint64_t(sequence), bytesPtr(payload),
		C.size_t(len(payload)), keyPtr, C.size_t(len(key)), &index, &origin, &node, &outcome, &errOut)
	runtime.KeepAlive(payload)
	runtime.KeepAlive(key)
	runtime.KeepAlive(g)
	if err := statusError(op, st, &errOut); err != nil {
		return Routed{}, err
	}
	return Routed{Index: uint32(index), Origin: uint64(origin), Node: uint64(node), Outcome: Delivery(outcome)}, nil
}

// Scale scales a replica or fork group to count members (new ones on nodes
// the group does not use; the highest indices stopped).
func (g *ComputeGroup) Scale(count uint32) error {
	return g.do("net_compute_group_scale", func(p *C.net_compute_group_t) C.net_status_t {
		return C.net_compute_group_scale(p, C.uint32_t(count))
	})
}

// Migrate moves member index to node with the migration protocol: a
// replica or fork, or a standby group's active (index = ActiveIndex). The
// same member (identity, state and chain) continues there; node must be one
// of the group's runtimes, not reported failed, holding no member. It waits
// until the move is over; ErrComputeGroupMigration if it failed (the member
// stays).
func (g *ComputeGroup) Migrate(index uint32, node uint64) error {
	return g.do("net_compute_group_migrate", func(p *C.net_compute_group_t) C.net_status_t {
		return C.net_compute_group_migrate(p, C.uint32_t(index), C.uint64_t(node))
	})
}

// NodeFailed reports node failed (shut down, or found dead by the
// application): its members are re-created on other nodes. It returns the
// indices replaced.
func (g *ComputeGroup) NodeFailed(node uint64) ([]uint32, error) {
	var out struct {
		Replaced []uint32 `json:"replaced"`
	}
	err := g.jsonOf("net_compute_group_node_failed", &out, func(p *C.net_compute_group_t, o *C.net_bytes_t) C.net_status_t {
		return C.net_compute_group_node_failed(p, C.uint64_t(node), o)
	})
	return out.Replaced, err
}

// WatchFailures makes the group follow observer's failure detector: every
// every (at least a millisecond) it looks at the peers of observer's node,
// and a node it saw alive that is reported failed (or is gone) is handled
// as by NodeFailed, once, and as by NodeRecovered when it is alive again —
// nobody has to report them. observer is one of the group's runtimes, or
// any on a node connected to the members' nodes, its mesh started
// (Mesh.Start). A second call replaces the watch; UnwatchFailures or Close
// ends it.
func (g *ComputeGroup) WatchFailures(observer *Compute, every time.Duration) error {
	const op = "net_compute_group_watch_failures"
	ms := every.Milliseconds()
	if ms < 1 || ms > math.MaxUint32 {
		return invalidArgument(op, fmt.Sprintf("every must be 1 ms to 2^32-1 ms, got %v", every))
	}
	rt, err := observer.ptr(op)
	if err != nil {
		return err
	}
	err = g.do(op, func(p *C.net_compute_group_t) C.net_status_t {
		return C.net_compute_group_watch_failures(p, rt, C.uint32_t(ms))
	})
	runtime.KeepAlive(observer)
	return err
}

// UnwatchFailures ends WatchFailures (no-op without one).
func (g *ComputeGroup) UnwatchFailures() error {
	return g.do("net_compute_group_unwatch_failures", func(p *C.net_compute_group_t) C.net_status_t {
		return C.net_compute_group_unwatch_failures(p)
	})
}

// NodeRecovered reports node back (found alive again, or restarted): it may
// hold members again, copies the group left there are stopped, and an
// unhealthy member still running there takes traffic again. It returns
// the indices back in service (none for a standby group).
func (g *ComputeGroup) NodeRecovered(node uint64) ([]uint32, error) {
	var out struct {
		Restored []uint32 `json:"restored"`
	}
	err := g.jsonOf("net_compute_group_node_recovered", &out, func(p *C.net_compute_group_t, o *C.net_bytes_t) C.net_status_t {
		return C.net_compute_group_node_recovered(p, C.uint64_t(node), o)
	})
	return out.Restored, err
}

// Sync brings a standby group's standbys to the active's state.
func (g *ComputeGroup) Sync() (SyncReport, error) {
	var out SyncReport
	err := g.jsonOf("net_compute_group_sync", &out, func(p *C.net_compute_group_t, o *C.net_bytes_t) C.net_status_t {
		return C.net_compute_group_sync(p, o)
	})
	return out, err
}

// Promote makes a standby group's most recent standby the active (the
// events logged since its sync are replayed into it, each once) and
// returns its index.
func (g *ComputeGroup) Promote() (uint32, error) {
	var index C.uint32_t
	err := g.do("net_compute_group_promote", func(p *C.net_compute_group_t) C.net_status_t {
		return C.net_compute_group_promote(p, &index)
	})
	return uint32(index), err
}

// Status reports the group's members, nodes and health.
func (g *ComputeGroup) Status() (GroupStatus, error) {
	var out GroupStatus
	err := g.jsonOf("net_compute_group_status", &out, func(p *C.net_compute_group_t, o *C.net_bytes_t) C.net_status_t {
		return C.net_compute_group_status(p, o)
	})
	return out, err
}

// Close frees the group: its members are stopped on their nodes.
// Idempotent.
func (g *ComputeGroup) Close() error {
	if g == nil {
		return nil
	}
	err := g.h.close(freeComputeGroup)
	runtime.KeepAlive(g)
	return err
}

// WaitProcessed waits up to timeout (negative: no limit) until daemon
// origin runs here having processed at least count events (it may still be
// arriving by migration), and returns its stats; ok is false if the
// timeout passed first. The count is checked after every delivery here, so
// nothing polls. ctx cancels the wait.
func (c *Compute) WaitProcessed(ctx context.Context, origin, count uint64, timeout time.Duration) (stats DaemonStats, ok bool, err error) {
	var out C.net_bytes_t
	st, err := c.blocking(ctx, "net_compute_wait_processed", func(p *C.net_compute_t, cancel *C.net_cancel_t, e *C.net_error_t) C.net_status_t {
		return C.net_compute_wait_processed(p, C.uint64_t(origin), C.uint64_t(count), timeoutMs(timeout), &out, cancel, e)
	})
	if err != nil || st != StatusOK {
		return DaemonStats{}, false, err
	}
	err = json.Unmarshal(takeBytes(&out), &stats)
	return stats, err == nil, err
}
