package netmesh

/*
#include <net.h>
*/
import "C"

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// DaemonEvent is an event a daemon processes: its producer (origin hash),
// its sequence in the producer's chain, the bytes, and the daemon's own
// origin hash.
type DaemonEvent struct {
	Producer uint64
	Sequence uint64
	Payload  []byte
	Daemon   uint64
}

// DaemonOutput is an output a daemon emitted: the daemon's origin hash, the
// output's sequence in the daemon's causal chain, the bytes.
type DaemonOutput struct {
	Daemon   uint64
	Sequence uint64
	Payload  []byte
}

// Daemon is a daemon written in Go: Process applies one event and returns
// its outputs (an error refuses the event, which must then leave the state
// unchanged); Snapshot serializes the state; Restore replaces it. A
// stateless daemon returns an empty snapshot and accepts only an empty
// state. The runtime calls a daemon's methods from one goroutine at a time.
type Daemon interface {
	Process(ev DaemonEvent) ([][]byte, error)
	Snapshot() ([]byte, error)
	Restore(state []byte) error
}

// Delivery is what Compute.Deliver did with an event.
type Delivery uint32

// The outcomes of Compute.Deliver.
const (
	// DeliveryProcessed: processed here; the outputs are queued for NextOutput.
	DeliveryProcessed Delivery = Delivery(C.NET_COMPUTE_PROCESSED)
	// DeliveryBuffered: kept for the migration in progress; applied once,
	// wherever the daemon ends up.
	DeliveryBuffered Delivery = Delivery(C.NET_COMPUTE_BUFFERED)
	// DeliveryForwarded: the daemon moved; forwarded to its new node.
	DeliveryForwarded Delivery = Delivery(C.NET_COMPUTE_FORWARDED)
	// DeliveryDuplicate: already applied; dropped.
	DeliveryDuplicate Delivery = Delivery(C.NET_COMPUTE_DUPLICATE)
)

// MigrationStatus is where a migration orchestrated by this node stands:
// State is "running", "completed" or "failed"; Phase one of snapshot,
// transfer, restore, replay, cutover, complete (empty once failed); a
// failure has the v0.11 Code and a Reason ("factory-not-found",
// "state-failed: ...").
type MigrationStatus struct {
	State  string `json:"state"`
	Phase  string `json:"phase,omitempty"`
	Code   int    `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Done reports whether the migration has finished (completed or failed).
func (s MigrationStatus) Done() bool { return s.State != "running" }

// ComputeConfig configures a Compute; zero fields keep libnet's defaults.
type ComputeConfig struct {
	// RetryInterval: how often an unanswered migration message is re-sent (200 ms).
	RetryInterval time.Duration
	// StepTimeout: a phase before cut-over taking longer aborts (10 s).
	StepTimeout time.Duration
	// SourceTimeout: a source hearing nothing from its orchestrator aborts (30 s).
	SourceTimeout time.Duration
	// WorkTimeout: how long a daemon call waits for the Go daemon (30 s).
	WorkTimeout time.Duration
	// NoExtension: never send the Net snapshot extension (by default it goes
	// to Net targets only; a v0.11 target never gets it).
	NoExtension bool
	// OutputCapacity: outputs queued for NextOutput (65 536).
	OutputCapacity int
	// TransferRate: bytes per second at which snapshot chunks leave for
	// another node (0: the default, 256 MiB/s; negative: unpaced).
	TransferRate int64
}

func (c ComputeConfig) json() []byte {
	out := map[string]any{}
	ms := func(key string, d time.Duration) {
		if d > 0 {
			out[key] = max(d.Milliseconds(), 1)
		}
	}
	ms("retry_interval_ms", c.RetryInterval)
	ms("step_timeout_ms", c.StepTimeout)
	ms("source_timeout_ms", c.SourceTimeout)
	ms("work_timeout_ms", c.WorkTimeout)
	if c.NoExtension {
		out["send_extension"] = false
	}
	if c.OutputCapacity > 0 {
		out["output_capacity"] = c.OutputCapacity
	}
	switch {
	case c.TransferRate > 0:
		out["transfer_rate"] = c.TransferRate
	case c.TransferRate < 0:
		out["transfer_rate"] = 0
	}
	if len(out) == 0 {
		return nil
	}
	b, _ := json.Marshal(out)
	return b
}

// Compute is a node's compute runtime (net_compute_t), installed as the
// mesh node's migration handler (one per node). libnet never calls into Go:
// every call it makes on a daemon is a work item a goroutine of the
// Compute pulls (net_compute_next) and answers by calling the Daemon. Safe
// for concurrent use; Close ends that goroutine and wakes every call.
type Compute struct {
	h    handle // *C.net_compute_t
	done chan struct{}
	// Shared with the work goroutine, which holds it and the raw pointer
	// but not the Compute: a Compute dropped without Close is collected,
	// and its finalizer's free ends the goroutine.
	t *daemonTable
}

// daemonTable is one Compute's daemon objects: factories by kind, objects
// by instance id, and the instance running each daemon (origin) here.
type daemonTable struct {
	mu        sync.Mutex
	factories map[string]func() Daemon
	objects   map[uint64]Daemon
	origins   map[uint64]uint64
	next      uint64
}

func (t *daemonTable) keep(d Daemon) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next++
	t.objects[t.next] = d
	return t.next
}

func (t *daemonTable) drop(instance uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.objects, instance)
}

func (t *daemonTable) setOrigin(origin, instance uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.origins[origin] = instance
}

func freeCompute(p unsafe.Pointer) error {
	return freeStatus("net_compute_free", func() C.net_status_t { return C.net_compute_free((*C.net_compute_t)(p)) })
}

// NewCompute creates the compute runtime of mesh and starts its work
// goroutine.
func NewCompute(mesh *Mesh, cfg ComputeConfig) (*Compute, error) {
	const op = "net_compute_new"
	mp, err := mesh.ptr(op)
	if err != nil {
		return nil, err
	}
	js := cfg.json()
	var out *C.net_compute_t
	err = check(op, func() C.net_status_t {
		return C.net_compute_new(mp, bytesPtr(js), C.size_t(len(js)), &out)
	})
	runtime.KeepAlive(js)
	runtime.KeepAlive(mesh)
	if err != nil {
		return nil, err
	}
	t := &daemonTable{factories: map[string]func() Daemon{}, objects: map[uint64]Daemon{}, origins: map[uint64]uint64{}}
	c := &Compute{h: newHandle(unsafe.Pointer(out)), done: make(chan struct{}), t: t}
	go serveCompute(out, c.done, t)
	runtime.SetFinalizer(c, func(c *Compute) { c.h.leaked("netmesh.Compute", freeCompute) })
	return c, nil
}

func (c *Compute) ptr(op string) (*C.net_compute_t, error) {
	if c == nil {
		return nil, invalidArgument(op, "compute is nil")
	}
	p := (*C.net_compute_t)(c.h.load())
	if p == nil {
		return nil, shuttingDown(op, "compute has been closed")
	}
	return p, nil
}

func (c *Compute) do(op string, f func(p *C.net_compute_t) C.net_status_t) (Status, error) {
	p, err := c.ptr(op)
	if err != nil {
		return 0, err
	}
	st, err := call(op, func() C.net_status_t { return f(p) })
	runtime.KeepAlive(c)
	return st, err
}

// withError runs a call that reports its failure through a net_error_t.
func (c *Compute) withError(op string, f func(p *C.net_compute_t, errOut *C.net_error_t) C.net_status_t) (Status, error) {
	p, err := c.ptr(op)
	if err != nil {
		return 0, err
	}
	var errOut C.net_error_t
	st := f(p, &errOut)
	runtime.KeepAlive(c)
	return Status(st), statusError(op, st, &errOut)
}

func (c *Compute) jsonOf(op string, v any, f func(p *C.net_compute_t, out *C.net_bytes_t) C.net_status_t) error {
	var out C.net_bytes_t
	if _, err := c.do(op, func(p *C.net_compute_t) C.net_status_t { return f(p, &out) }); err != nil {
		return err
	}
	return json.Unmarshal(takeBytes(&out), v)
}

// Register registers daemon kind kind: factory builds a fresh Daemon (for
// Spawn without a daemon, and for a daemon arriving by migration). stateful
// says whether its daemons carry state. ErrComputeAlreadyRegistered if the
// kind exists.
func (c *Compute) Register(kind string, factory func() Daemon, stateful bool) error {
	if factory == nil {
		return invalidArgument("net_compute_register_kind", "nil factory")
	}
	_, err := c.do("net_compute_register_kind", func(p *C.net_compute_t) C.net_status_t {
		return C.net_compute_register_kind(p, stringPtr(kind), C.size_t(len(kind)), C.bool(stateful))
	})
	runtime.KeepAlive(kind)
	if err == nil {
		c.t.mu.Lock()
		c.t.factories[kind] = factory
		c.t.mu.Unlock()
	}
	return err
}

// Spawn runs daemon d (nil: one from the kind's factory) of kind kind here
// under the identity of seed (32 bytes), and returns its origin hash, which
// names it everywhere.
func (c *Compute) Spawn(kind string, seed []byte, d Daemon) (uint64, error) {
	const op = "net_compute_spawn"
	if len(seed) != 32 {
		return 0, invalidArgument(op, fmt.Sprintf("seed must be 32 bytes, got %d", len(seed)))
	}
	c.t.mu.Lock()
	factory := c.t.factories[kind]
	c.t.mu.Unlock()
	if d == nil && factory != nil {
		d = factory()
	}
	if d == nil {
		return 0, &Error{Op: op, Status: StatusComputeUnknownKind, Message: fmt.Sprintf("no daemon kind %q is registered", kind)}
	}
	instance := c.t.keep(d)
	var origin C.uint64_t
	_, err := c.do(op, func(p *C.net_compute_t) C.net_status_t {
		return C.net_compute_spawn(p, stringPtr(kind), C.size_t(len(kind)), bytesPtr(seed), C.size_t(len(seed)),
			C.uint64_t(instance), &origin)
	})
	runtime.KeepAlive(kind)
	runtime.KeepAlive(seed)
	if err != nil {
		c.t.drop(instance)
		return 0, err
	}
	c.t.setOrigin(uint64(origin), instance)
	return uint64(origin), nil
}

// Expect lets the daemon of kind kind with the identity of seed arrive here
// by migration (its object is built by the kind's factory when it comes).
// It returns the daemon's origin hash; ErrComputeAlreadyRegistered if it is
// already expected here.
func (c *Compute) Expect(kind string, seed []byte) (uint64, error) {
	var origin C.uint64_t
	_, err := c.do("net_compute_expect", func(p *C.net_compute_t) C.net_status_t {
		return C.net_compute_expect(p, stringPtr(kind), C.size_t(len(kind)), bytesPtr(seed), C.size_t(len(seed)), &origin)
	})
	runtime.KeepAlive(kind)
	runtime.KeepAlive(seed)
	return uint64(origin), err
}

// ExpectOrigin lets daemon origin of kind kind arrive here by migration
// without its seed: its identity travels with it, sealed to this node (see
// MigrationOptions). A snapshot that comes without one is refused (the
// migration fails with "identity-transport-failed"). ErrComputeAlreadyRegistered
// if it is already expected here.
func (c *Compute) ExpectOrigin(kind string, origin uint64) error {
	_, err := c.do("net_compute_expect_origin", func(p *C.net_compute_t) C.net_status_t {
		return C.net_compute_expect_origin(p, stringPtr(kind), C.size_t(len(kind)), C.uint64_t(origin))
	})
	runtime.KeepAlive(kind)
	return err
}

// Stop stops daemon origin here (ErrComputeNotFound if it does not run here).
func (c *Compute) Stop(origin uint64) error {
	_, err := c.do("net_compute_stop", func(p *C.net_compute_t) C.net_status_t {
		return C.net_compute_stop(p, C.uint64_t(origin))
	})
	return err
}

// Daemon is the Go object of daemon origin if it runs here.
func (c *Compute) Daemon(origin uint64) (Daemon, bool) {
	list, err := c.Daemons()
	if err != nil {
		return nil, false
	}
	for _, e := range list {
		if e.Origin == origin {
			c.t.mu.Lock()
			defer c.t.mu.Unlock()
			d, ok := c.t.objects[c.t.origins[origin]]
			return d, ok
		}
	}
	return nil, false
}

// DaemonEntry is one daemon running on a node.
type DaemonEntry struct {
	Origin uint64 `json:"origin"`
	Name   string `json:"name"`
}

// Daemons lists the daemons running here, in origin order.
func (c *Compute) Daemons() ([]DaemonEntry, error) {
	var out []DaemonEntry
	err := c.jsonOf("net_compute_daemons", &out, func(p *C.net_compute_t, o *C.net_bytes_t) C.net_status_t {
		return C.net_compute_daemons(p, o)
	})
	return out, err
}

// DaemonStats are a daemon's counters since it started or arrived here.
type DaemonStats struct {
	Origin          uint64 `json:"origin"`
	Name            string `json:"name"`
	EventsProcessed uint64 `json:"events_processed"`
	EventsEmitted   uint64 `json:"events_emitted"`
	Errors          uint64 `json:"errors"`
	HeadSequence    uint64 `json:"head_sequence"`
	// Channels are the daemon's channel subscriptions (SubscribeChannel).
	Channels []DaemonChannel `json:"channels"`
}

// DaemonChannel is one of a daemon's channel subscriptions.
type DaemonChannel struct {
	Publisher uint64 `json:"publisher"`
	Channel   string `json:"channel"`
}

// SubscribeChannel subscribes daemon origin (running here) to channel name
// at publisher, presenting token (nil: none), and waits for the
// publisher's answer or ctx. The subscription is the node's and is
// recorded with the daemon: when the daemon migrates, its new node
// subscribes before the daemon is restored there and the old node lets go
// at cut-over. Daemons of one node share the node's subscription; it ends
// when the last one lets go (UnsubscribeChannel, Stop). The channel's
// events arrive through this node's Mesh.Recv; deliver them to the daemon.
// Errors: ErrComputeNotFound, and those of Mesh.Subscribe.
func (c *Compute) SubscribeChannel(ctx context.Context, origin, publisher uint64, name string, token []byte) error {
	_, err := c.blocking(ctx, "net_compute_subscribe_channel", func(p *C.net_compute_t, cancel *C.net_cancel_t, errOut *C.net_error_t) C.net_status_t {
		var t *C.uint8_t
		if token != nil {
			t = bytesPtr(token)
		}
		return C.net_compute_subscribe_channel(p, C.uint64_t(origin), C.uint64_t(publisher),
			stringPtr(name), C.size_t(len(name)), t, C.size_t(len(token)), cancel, errOut)
	})
	runtime.KeepAlive(token)
	return err
}

// UnsubscribeChannel ends daemon origin's subscription to channel name at
// publisher; the node unsubscribes (waiting for the answer or ctx) once no
// daemon here holds the channel. Errors: ErrComputeNotFound, and those of
// Mesh.Unsubscribe.
func (c *Compute) UnsubscribeChannel(ctx context.Context, origin, publisher uint64, name string) error {
	_, err := c.blocking(ctx, "net_compute_unsubscribe_channel", func(p *C.net_compute_t, cancel *C.net_cancel_t, errOut *C.net_error_t) C.net_status_t {
		return C.net_compute_unsubscribe_channel(p, C.uint64_t(origin), C.uint64_t(publisher),
			stringPtr(name), C.size_t(len(name)), cancel, errOut)
	})
	return err
}

// Stats returns daemon origin's counters (ErrComputeNotFound if it does not
// run here).
func (c *Compute) Stats(origin uint64) (DaemonStats, error) {
	var out DaemonStats
	err := c.jsonOf("net_compute_stats", &out, func(p *C.net_compute_t, o *C.net_bytes_t) C.net_status_t {
		return C.net_compute_stats(p, C.uint64_t(origin), o)
	})
	return out, err
}

// Deliver delivers an event to daemon origin wherever it is (a producer's
// sequences start at 1 and are contiguous per daemon) and waits until it is
// processed, buffered or forwarded. ErrComputeDaemon if the daemon refused
// it or did not answer in time. Never call it from a Daemon method.
func (c *Compute) Deliver(origin, producer, sequence uint64, payload []byte) (Delivery, error) {
	var outcome C.uint32_t
	_, err := c.withError("net_compute_deliver", func(p *C.net_compute_t, e *C.net_error_t) C.net_status_t {
		return C.net_compute_deliver(p, C.uint64_t(origin), C.uint64_t(producer), C.uint64_t(sequence),
			bytesPtr(payload), C.size_t(len(payload)), &outcome, e)
	})
	runtime.KeepAlive(payload)
	return Delivery(outcome), err
}

// DeliverBatch delivers payloads from producer at sequences firstSequence,
// firstSequence+1, … to daemon origin in order, as one call and — for the
// events processed here — one work item, which the work goroutine applies
// by calling the daemon's Process once per event. It returns each event's
// Delivery. ok is false (nothing delivered) when the daemon did not take
// the batch up within timeout (negative: no limit) or ctx was done first
// (then err matches ErrCancelled); once taken up, the call waits for the
// daemon. When an event fails, err says why and outcomes holds the events
// delivered before it; the ones after it were not delivered. Never call it
// from a Daemon method.
//
// Under a context that is never done (context.Background()), a batch for
// a daemon of this Compute that is free is lent to the call instead
// (net_compute_lend_batch): Process runs on the calling goroutine,
// with no hand-off to the work goroutine, and gets the caller's payload
// slices (copy what the daemon keeps). A daemon's methods never run two at
// a time; two daemons' methods may then run on two goroutines at once. A
// lent batch's Process is not interrupted by Close (the call then returns
// ErrShuttingDown with what was recorded before).
func (c *Compute) DeliverBatch(ctx context.Context, origin, producer, firstSequence uint64, payloads [][]byte, timeout time.Duration) (outcomes []Delivery, ok bool, err error) {
	if ctx != nil && ctx.Done() == nil { // a context that can be cancelled takes the usual path
		if outcomes, lent, err := c.lendBatch(origin, producer, firstSequence, payloads); lent {
			return outcomes, err == nil, err
		}
	}
	data := make([]byte, 0, packedSize(payloads))
	lengths := make([]C.uint32_t, len(payloads))
	for i, p := range payloads {
		data = append(data, p...)
		lengths[i] = C.uint32_t(len(p))
	}
	raw := make([]C.uint32_t, len(payloads))
	var delivered C.size_t
	st, err := c.blocking(ctx, "net_compute_deliver_batch", func(p *C.net_compute_t, cancel *C.net_cancel_t, e *C.net_error_t) C.net_status_t {
		return C.net_compute_deliver_batch(p, C.uint64_t(origin), C.uint64_t(producer), C.uint64_t(firstSequence),
			bytesPtr(data), C.size_t(len(data)), unsafe.SliceData(lengths), C.size_t(len(lengths)), timeoutMs(timeout),
			unsafe.SliceData(raw), &delivered, cancel, e)
	})
	runtime.KeepAlive(data)
	runtime.KeepAlive(lengths)
	if n := int(delivered); n <= len(raw) {
		outcomes = make([]Delivery, n)
		for i := range outcomes {
			outcomes[i] = Delivery(raw[i])
		}
	}
	if err != nil || st != StatusOK {
		return outcomes, false, err
	}
	return outcomes, true, nil
}

// lendBatch applies payloads on this goroutine to daemon origin's object
// if libnet lends the batch (net_compute_lend_batch: the daemon is this
// Compute's, here and free), and answers the lease; lent is false (nothing
// done) when the batch must take the usual path.
func (c *Compute) lendBatch(origin, producer, first uint64, payloads [][]byte) (outcomes []Delivery, lent bool, err error) {
	if len(payloads) == 0 {
		return nil, false, nil
	}
	var lease, instance C.uint64_t
	if _, err := c.withError("net_compute_lend_batch", func(p *C.net_compute_t, e *C.net_error_t) C.net_status_t {
		return C.net_compute_lend_batch(p, C.uint64_t(origin), C.uint64_t(producer), C.uint64_t(first),
			C.size_t(len(payloads)), &lease, &instance, e)
	}); err != nil || lease == 0 {
		return nil, err != nil, err
	}
	c.t.mu.Lock()
	d := c.t.objects[uint64(instance)]
	c.t.mu.Unlock()
	i := 0
	a := applyBatch(d, func() (DaemonEvent, bool) {
		if i == len(payloads) {
			return DaemonEvent{}, false
		}
		i++
		return DaemonEvent{Producer: producer, Sequence: first + uint64(i-1), Payload: payloads[i-1], Daemon: origin}, true
	})
	var delivered C.size_t
	_, err = c.withError("net_compute_finish_batch", func(p *C.net_compute_t, e *C.net_error_t) C.net_status_t {
		return C.net_compute_finish_batch(p, lease, C.size_t(len(a.perEvent)), bytesPtr(a.outputs), C.size_t(len(a.outputs)),
			unsafe.SliceData(a.lengths), C.size_t(len(a.lengths)), unsafe.SliceData(a.perEvent), a.failPtr, a.failLen,
			&delivered, e)
	})
	a.keepAlive()
	outcomes = make([]Delivery, int(delivered))
	for i := range outcomes {
		outcomes[i] = DeliveryProcessed
	}
	return outcomes, true, err
}

func packedSize(payloads [][]byte) int {
	n := 0
	for _, p := range payloads {
		n += len(p)
	}
	return n
}

// NextOutput waits up to timeout (negative: no limit) for the next output
// of any daemon here; ok is false on timeout or once closed. ctx cancels
// the wait (an *Error matching ErrCancelled and ctx.Err(); nothing taken).
func (c *Compute) NextOutput(ctx context.Context, timeout time.Duration) (out DaemonOutput, ok bool, err error) {
	var origin, seq C.uint64_t
	var data C.net_bytes_t
	st, err := c.blocking(ctx, "net_compute_next_output", func(p *C.net_compute_t, cancel *C.net_cancel_t, e *C.net_error_t) C.net_status_t {
		return C.net_compute_next_output(p, timeoutMs(timeout), &origin, &seq, &data, cancel, e)
	})
	if err != nil || st != StatusOK {
		return DaemonOutput{}, false, err
	}
	return DaemonOutput{Daemon: uint64(origin), Sequence: uint64(seq), Payload: takeBytes(&data)}, true, nil
}

// blocking runs one blocking net_compute_* call under ctx.
func (c *Compute) blocking(ctx context.Context, op string, f func(p *C.net_compute_t, cancel *C.net_cancel_t, errOut *C.net_error_t) C.net_status_t) (Status, error) {
	p, err := c.ptr(op)
	if err != nil {
		return 0, err
	}
	st, err := blocking(ctx, op, func(cancel *C.net_cancel_t, errOut *C.net_error_t) C.net_status_t {
		return f(p, cancel, errOut)
	})
	runtime.KeepAlive(c)
	return st, err
}

func timeoutMs(d time.Duration) C.uint32_t {
	if d < 0 {
		return C.uint32_t(waitForever)
	}
	return C.uint32_t(min(d.Milliseconds(), int64(waitForever-1)))
}

// StartMigration starts moving daemon origin from node source to node
// target, orchestrated by this node (either of them, or a third node
// connected to both).
func (c *Compute) StartMigration(origin, source, target uint64) error {
	_, err := c.do("net_compute_start_migration", func(p *C.net_compute_t) C.net_status_t {
		return C.net_compute_start_migration(p, C.uint64_t(origin), C.uint64_t(source), C.uint64_t(target))
	})
	return err
}

// PlaceMigration chooses where daemon origin, running on this node, may
// migrate: of the nodes this node's capability index holds that announce
// "subprotocol:0x0500" (every node with a Compute stamps it, and its
// number of daemons as "compute:load=N", on what it announces with
// Mesh.Announce) and match the daemon's requirements, the least loaded
// (ties: the lower node id). ErrComputeNoTarget when no node qualifies;
// ErrComputeNotFound when the daemon does not run here. Start the move
// with StartMigration(origin, <this node>, target).
func (c *Compute) PlaceMigration(origin uint64) (uint64, error) {
	var target C.uint64_t
	_, err := c.do("net_compute_place_migration", func(p *C.net_compute_t) C.net_status_t {
		return C.net_compute_place_migration(p, C.uint64_t(origin), &target)
	})
	return uint64(target), err
}

// MigrationOptions are StartMigrationWith's options; the zero value is
// StartMigration's defaults.
type MigrationOptions struct {
	// NoIdentityTransport keeps the daemon's identity from travelling with
	// it. By default, when this node is the source, the daemon's seed is
	// sealed to the target's static key, so the target needs only
	// ExpectOrigin; the start fails with ErrComputeIdentityTransport when
	// the target's key is not known here. Without it the target must know
	// the seed (Expect).
	NoIdentityTransport bool
}

// StartMigrationWith is StartMigration with options.
func (c *Compute) StartMigrationWith(origin, source, target uint64, opts MigrationOptions) error {
	options, err := json.Marshal(map[string]any{"transport_identity": !opts.NoIdentityTransport})
	if err != nil {
		return err
	}
	_, err = c.do("net_compute_start_migration_opts", func(p *C.net_compute_t) C.net_status_t {
		return C.net_compute_start_migration_opts(p, C.uint64_t(origin), C.uint64_t(source), C.uint64_t(target), bytesPtr(options), C.size_t(len(options)))
	})
	runtime.KeepAlive(options)
	return err
}

// MigrationStatus returns the migration of origin orchestrated here (the
// last one, once finished); ErrComputeNoMigration if there is none.
func (c *Compute) MigrationStatus(origin uint64) (MigrationStatus, error) {
	var out MigrationStatus
	err := c.jsonOf("net_compute_migration_status", &out, func(p *C.net_compute_t, o *C.net_bytes_t) C.net_status_t {
		return C.net_compute_migration_status(p, C.uint64_t(origin), o)
	})
	return out, err
}

// WaitMigration waits up to timeout (negative: no limit) until the
// migration of origin orchestrated here has completed or failed; ok is
// false if the timeout passed first. ctx cancels the wait.
func (c *Compute) WaitMigration(ctx context.Context, origin uint64, timeout time.Duration) (status MigrationStatus, ok bool, err error) {
	var out C.net_bytes_t
	st, err := c.blocking(ctx, "net_compute_wait_migration", func(p *C.net_compute_t, cancel *C.net_cancel_t, e *C.net_error_t) C.net_status_t {
		return C.net_compute_wait_migration(p, C.uint64_t(origin), timeoutMs(timeout), &out, cancel, e)
	})
	if err != nil || st != StatusOK {
		return MigrationStatus{}, false, err
	}
	err = json.Unmarshal(takeBytes(&out), &status)
	return status, err == nil, err
}

// Close frees the runtime: calls blocked in it return, its daemons stop
// here, and the work goroutine ends (Close waits for the daemon method in
// progress, if any; never call it from a Daemon method). Idempotent.
func (c *Compute) Close() error {
	if c == nil {
		return nil
	}
	err := c.h.close(freeCompute)
	<-c.done
	runtime.KeepAlive(c)
	return err
}

// serveCompute pulls work items until the runtime is freed, and answers
// each by calling the daemon object it names.
func serveCompute(p *C.net_compute_t, done chan struct{}, t *daemonTable) {
	defer close(done)
	for {
		var work, instance, daemon, producer, seq C.uint64_t
		var kind C.uint32_t
		var payload C.net_bytes_t
		st := C.net_compute_next(p, C.uint32_t(waitForever), &work, &kind, &instance, &daemon, &producer, &seq,
			&payload, nil, nil)
		if st != C.NET_OK {
			return // NET_END: freed
		}
		data := takeBytes(&payload)
		answerWork(p, t, uint64(work), uint32(kind), uint64(instance),
			uint64(daemon), DaemonEvent{Producer: uint64(producer), Sequence: uint64(seq), Payload: data, Daemon: uint64(daemon)})
	}
}

func answerWork(p *C.net_compute_t, t *daemonTable, work uint64, kind uint32, instance, origin uint64, ev DaemonEvent) {
	w := C.uint64_t(work)
	fail := func(err error) {
		msg := err.Error()
		C.net_compute_fail(p, w, stringPtr(msg), C.size_t(len(msg)))
		runtime.KeepAlive(msg)
	}
	switch kind {
	case C.NET_COMPUTE_WORK_DROP:
		t.mu.Lock()
		delete(t.objects, instance)
		if t.origins[origin] == instance {
			delete(t.origins, origin)
		}
		t.mu.Unlock()
		return
	case C.NET_COMPUTE_WORK_CREATE:
		t.mu.Lock()
		factory := t.factories[string(ev.Payload)]
		t.mu.Unlock()
		if factory == nil {
			fail(fmt.Errorf("no factory for kind %q", ev.Payload))
			return
		}
		d, err := safeFactory(factory)
		if err != nil {
			fail(err)
			return
		}
		id := t.keep(d)
		if C.net_compute_complete_create(p, w, C.uint64_t(id)) != C.NET_OK {
			t.drop(id)
			return
		}
		t.setOrigin(origin, id)
		return
	}
	t.mu.Lock()
	d := t.objects[instance]
	t.mu.Unlock()
	if d == nil {
		fail(fmt.Errorf("no daemon object %d", instance))
		return
	}
	switch kind {
	case C.NET_COMPUTE_WORK_PROCESS:
		outputs, err := safeProcess(d, ev)
		if err != nil {
			fail(err)
			return
		}
		var pinner runtime.Pinner
		slices := eventSlices(outputs, &pinner)
		C.net_compute_complete_process(p, w, unsafe.SliceData(slices), C.size_t(len(slices)))
		pinner.Unpin()
	case C.NET_COMPUTE_WORK_PROCESS_BATCH:
		answerBatch(p, w, d, ev)
	case C.NET_COMPUTE_WORK_SNAPSHOT:
		state, err := safeCall(func() ([]byte, error) { return d.Snapshot() })
		if err != nil {
			fail(err)
			return
		}
		C.net_compute_complete_snapshot(p, w, bytesPtr(state), C.size_t(len(state)))
		runtime.KeepAlive(state)
	case C.NET_COMPUTE_WORK_RESTORE:
		if _, err := safeCall(func() ([]byte, error) { return nil, d.Restore(ev.Payload) }); err != nil {
			fail(err)
			return
		}
		C.net_compute_complete_restore(p, w)
	}
}

// answerBatch applies a ProcessBatch item's events (ev.Payload, packed as
// NET_COMPUTE_WORK_PROCESS_BATCH describes) with one Process call each, in
// order, until one fails, and answers once.
func answerBatch(p *C.net_compute_t, w C.uint64_t, d Daemon, ev DaemonEvent) {
	rest := ev.Payload
	a := applyBatch(d, func() (DaemonEvent, bool) {
		if len(rest) < C.NET_COMPUTE_BATCH_RECORD_HEADER {
			return DaemonEvent{}, false
		}
		n := int(binary.LittleEndian.Uint32(rest[16:20]))
		body := rest[C.NET_COMPUTE_BATCH_RECORD_HEADER:]
		if n > len(body) {
			return DaemonEvent{}, false // libnet packs whole records; never reached
		}
		event := DaemonEvent{
			Producer: binary.LittleEndian.Uint64(rest[0:8]),
			Sequence: binary.LittleEndian.Uint64(rest[8:16]),
			Payload:  body[:n:n],
			Daemon:   ev.Daemon,
		}
		rest = body[n:]
		return event, true
	})
	C.net_compute_complete_batch(p, w, C.size_t(len(a.perEvent)), bytesPtr(a.outputs), C.size_t(len(a.outputs)),
		unsafe.SliceData(a.lengths), C.size_t(len(a.lengths)), unsafe.SliceData(a.perEvent), a.failPtr, a.failLen)
	a.keepAlive()
}

// batchAnswer is what a batch's answer passes to libnet: the applied
// events' outputs packed, their lengths, the outputs per event, and the
// failure of the event after them (failPtr nil: none).
type batchAnswer struct {
	outputs           []byte
	lengths, perEvent []C.uint32_t
	failure           []byte
	failPtr           *C.uint8_t
	failLen           C.size_t
}

// applyBatch calls d's Process on each event next gives (false: no more),
// in order, until one fails (a nil d fails the first).
func applyBatch(d Daemon, next func() (DaemonEvent, bool)) *batchAnswer {
	a := &batchAnswer{}
	fail := func(err error) {
		// A non-NULL pointer even for an empty message: it marks the failure.
		a.failure = append([]byte(err.Error()), 0)
		a.failPtr, a.failLen = (*C.uint8_t)(unsafe.Pointer(&a.failure[0])), C.size_t(len(a.failure)-1)
	}
	for event, more := next(); more; event, more = next() {
		if d == nil {
			fail(fmt.Errorf("no daemon object for %#x", event.Daemon))
			break
		}
		out, err := safeProcess(d, event)
		if err != nil {
			fail(err)
			break
		}
		for _, o := range out {
			a.outputs = append(a.outputs, o...)
			a.lengths = append(a.lengths, C.uint32_t(len(o)))
		}
		a.perEvent = append(a.perEvent, C.uint32_t(len(out)))
	}
	return a
}

// keepAlive keeps the answer's buffers alive up to here (after the C call
// that reads them).
func (a *batchAnswer) keepAlive() {
	runtime.KeepAlive(a.outputs)
	runtime.KeepAlive(a.lengths)
	runtime.KeepAlive(a.perEvent)
	runtime.KeepAlive(a.failure)
}

// safeProcess runs Process, turning a panic into an error (the daemon call
// fails instead of the work goroutine dying).
func safeProcess(d Daemon, ev DaemonEvent) (out [][]byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("daemon panicked: %v", r)
		}
	}()
	return d.Process(ev)
}

func safeFactory(factory func() Daemon) (d Daemon, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("daemon factory panicked: %v", r)
		}
	}()
	if d = factory(); d == nil {
		err = fmt.Errorf("the daemon factory returned nil")
	}
	return d, err
}

func safeCall(f func() ([]byte, error)) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("daemon panicked: %v", r)
		}
	}()
	return f()
}
