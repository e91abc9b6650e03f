package netmesh

/*
#include <stdlib.h>
#include <net.h>
*/
import "C"

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"runtime"
	"sync"
	"unsafe"
)

// The event bus: producers ingest raw bytes at high rates; the bus spreads
// them over shards, batches them and hands them to a durable adapter (the
// embedded RedEX one by default, NATS JetStream or Redis Streams); Poll
// merges the shards back through one opaque cursor.

// BusConfig is the bus configuration as JSON-able values: every key of
// libnet's bus configuration ("num_shards", "shard_capacity",
// "backpressure", "batch", "adapter_timeout_ms", "max_attempts",
// "retry_base_ms", "retry_max_ms", "shutdown_timeout_ms", "scaling"), plus
// "adapter" ({"type": "redex", "dir": D} — the default, memory files
// without "dir" —, {"type": "jetstream", "url": U} or {"type": "redis",
// "url": U}) and "producer_state_dir" (the producer's dedup nonce and
// sequences persist there). libnet validates it; a bad key is ErrBusConfig
// naming it.
type BusConfig map[string]any

// Bus is an event bus (net_bus_t). Safe for concurrent use; Close shuts it
// down, draining what is buffered, and wakes a Flush or Poll blocked on it.
type Bus struct {
	h handle // *C.net_bus_t
}

func freeBus(p unsafe.Pointer) error {
	return freeStatus("net_bus_free", func() C.net_status_t { return C.net_bus_free((*C.net_bus_t)(p)) })
}

// BusEvent is one polled event.
type BusEvent struct {
	Shard       uint16
	TimestampNs uint64
	ID          string // the event's position in its shard (adapter-specific)
	DedupID     string // "nonce:shard:sequence:index" where the adapter keeps it, else ""
	Payload     []byte
}

// IngestReport says what IngestBatch did: events [0, Taken) were queued or
// sampled; the rest were refused by backpressure (retry them later).
type IngestReport struct {
	Queued, Sampled, Taken int
}

// PollRequest selects what Poll returns. A zero Limit means 1000.
type PollRequest struct {
	Cursor        string         `json:"cursor,omitempty"` // "" : from the beginning
	Limit         int            `json:"limit"`
	PerShardLimit int            `json:"per_shard_limit,omitempty"`
	Shards        []uint16       `json:"shards,omitempty"`
	Filter        map[string]any `json:"filter,omitempty"` // the JSON predicate language
}

// PollResult is a page of events and where to continue.
type PollResult struct {
	Events                 []BusEvent `json:"-"`
	NextCursor             string     `json:"next_cursor"`
	HasMore                bool       `json:"has_more"`
	TruncatedAtPerShardCap bool       `json:"truncated_at_per_shard_cap"`
	StalledShards          []uint16   `json:"stalled_shards"`
}

// ShutdownReport is what Shutdown (net_bus_close) achieved.
type ShutdownReport struct {
	EventsDropped    uint64  `json:"events_dropped"`
	EventsStranded   uint64  `json:"events_stranded"`
	ShutdownWasLossy bool    `json:"shutdown_was_lossy"`
	AdapterError     *string `json:"adapter_error"`
}

// NewBus starts a bus (cfg nil: every default, embedded adapter in memory).
func NewBus(cfg BusConfig) (*Bus, error) {
	var js []byte
	if len(cfg) > 0 {
		var err error
		if js, err = json.Marshal(map[string]any(cfg)); err != nil {
			return nil, &Error{Op: "net_bus_new", Status: StatusBusConfig, Message: err.Error()}
		}
	}
	var out *C.net_bus_t
	err := check("net_bus_new", func() C.net_status_t {
		return C.net_bus_new(bytesPtr(js), C.size_t(len(js)), &out)
	})
	runtime.KeepAlive(js)
	if err != nil {
		return nil, err
	}
	b := &Bus{h: newHandle(unsafe.Pointer(out))}
	runtime.SetFinalizer(b, func(b *Bus) { b.h.leaked("netmesh.Bus", freeBus) })
	return b, nil
}

func (b *Bus) ptr(op string) (*C.net_bus_t, error) {
	if b == nil {
		return nil, invalidArgument(op, "bus is nil")
	}
	p := (*C.net_bus_t)(b.h.load())
	if p == nil {
		return nil, shuttingDown(op, "bus has been closed")
	}
	return p, nil
}

func (b *Bus) do(op string, f func(p *C.net_bus_t) C.net_status_t) error {
	p, err := b.ptr(op)
	if err != nil {
		return err
	}
	err = check(op, func() C.net_status_t { return f(p) })
	runtime.KeepAlive(b)
	return err
}

// blocking runs one blocking net_bus_* call under ctx.
func (b *Bus) blocking(ctx context.Context, op string, f func(p *C.net_bus_t, cancel *C.net_cancel_t, errOut *C.net_error_t) C.net_status_t) error {
	p, err := b.ptr(op)
	if err != nil {
		return err
	}
	_, err = blocking(ctx, op, func(cancel *C.net_cancel_t, errOut *C.net_error_t) C.net_status_t {
		return f(p, cancel, errOut)
	})
	runtime.KeepAlive(b)
	return err
}

func (b *Bus) jsonOf(op string, f func(p *C.net_bus_t, out *C.net_bytes_t) C.net_status_t, v any) error {
	var out C.net_bytes_t
	if err := b.do(op, func(p *C.net_bus_t) C.net_status_t { return f(p, &out) }); err != nil {
		return err
	}
	if err := json.Unmarshal(takeBytes(&out), v); err != nil {
		return &Error{Op: op, Status: StatusInternal, Message: err.Error()}
	}
	return nil
}

// Ingest queues one event (copied). ErrBusBackpressure: the shard is full,
// retry later; ErrBusSampled: decimated by the Sample policy.
func (b *Bus) Ingest(event []byte) error {
	err := b.do("net_bus_ingest_raw", func(p *C.net_bus_t) C.net_status_t {
		return C.net_bus_ingest_raw(p, bytesPtr(event), C.size_t(len(event)))
	})
	runtime.KeepAlive(event)
	return err
}

// IngestBatch queues events on one shard in one libnet call. Small events
// (up to 4 KiB on average) are packed into one buffer first — one copy is
// cheaper than pinning each payload for cgo; larger ones are pinned and
// read in place. Backpressure does not fail the call: see the report's
// Taken.
func (b *Bus) IngestBatch(events [][]byte) (IngestReport, error) {
	total := 0
	for _, e := range events {
		total += len(e)
	}
	if total <= packLimit*len(events) {
		return b.ingestCopied(events, total)
	}
	return b.ingestInPlace(events)
}

// packLimit is the average event size up to which IngestBatch copies.
const packLimit = 4096

type packBuffers struct {
	data    []byte
	lengths []uint32
}

var packPool = sync.Pool{New: func() any { return new(packBuffers) }}

func (b *Bus) ingestCopied(events [][]byte, total int) (IngestReport, error) {
	buf := packPool.Get().(*packBuffers)
	defer packPool.Put(buf)
	buf.data = buf.data[:0]
	buf.lengths = buf.lengths[:0]
	if cap(buf.data) < total {
		buf.data = make([]byte, 0, total)
	}
	for _, e := range events {
		buf.data = append(buf.data, e...)
		buf.lengths = append(buf.lengths, uint32(len(e)))
	}
	return b.IngestPacked(buf.data, buf.lengths)
}

func (b *Bus) ingestInPlace(events [][]byte) (IngestReport, error) {
	// A Go array of net_slice_t pointing at pinned Go memory (cgo forbids
	// unpinned Go pointers inside it).
	var slices []C.net_slice_t
	var pinner runtime.Pinner
	defer pinner.Unpin()
	if len(events) > 0 {
		slices = make([]C.net_slice_t, len(events))
		for i, e := range events {
			if len(e) == 0 {
				continue // {NULL, 0}
			}
			data := unsafe.SliceData(e)
			pinner.Pin(data)
			slices[i] = C.net_slice_t{ptr: (*C.uint8_t)(unsafe.Pointer(data)), len: C.size_t(len(e))}
		}
	}
	var r C.net_bus_ingest_report_t
	err := b.do("net_bus_ingest_raw_batch", func(p *C.net_bus_t) C.net_status_t {
		return C.net_bus_ingest_raw_batch(p, unsafe.SliceData(slices), C.size_t(len(slices)), &r)
	})
	if err != nil {
		return IngestReport{}, err
	}
	return IngestReport{Queued: int(r.queued), Sampled: int(r.sampled), Taken: int(r.taken)}, nil
}

// IngestPacked queues len(lengths) events given back to back in data, in
// one libnet call without pinning: the cheapest batch when the events are
// already contiguous. The lengths must add up to len(data).
func (b *Bus) IngestPacked(data []byte, lengths []uint32) (IngestReport, error) {
	var r C.net_bus_ingest_report_t
	err := b.do("net_bus_ingest_raw_packed", func(p *C.net_bus_t) C.net_status_t {
		return C.net_bus_ingest_raw_packed(p, bytesPtr(data), C.size_t(len(data)),
			(*C.uint32_t)(unsafe.Pointer(unsafe.SliceData(lengths))), C.size_t(len(lengths)), &r)
	})
	runtime.KeepAlive(data)
	runtime.KeepAlive(lengths)
	if err != nil {
		return IngestReport{}, err
	}
	return IngestReport{Queued: int(r.queued), Sampled: int(r.sampled), Taken: int(r.taken)}, nil
}

// Poll returns up to req.Limit events after req.Cursor, merged across
// shards in timestamp order. Pass NextCursor to the next Poll. ctx bounds the
// wait on the adapter (an *Error matching ErrCancelled and ctx.Err() when it
// ends first); Close wakes a Poll blocked on the bus (ErrShuttingDown).
func (b *Bus) Poll(ctx context.Context, req PollRequest) (PollResult, error) {
	if req.Limit == 0 {
		req.Limit = 1000
	}
	js, err := json.Marshal(req)
	if err != nil {
		return PollResult{}, invalidArgument("net_bus_poll", err.Error())
	}
	var events, meta C.net_bytes_t
	err = b.blocking(ctx, "net_bus_poll", func(p *C.net_bus_t, cancel *C.net_cancel_t, errOut *C.net_error_t) C.net_status_t {
		return C.net_bus_poll(p, bytesPtr(js), C.size_t(len(js)), &events, &meta, cancel, errOut)
	})
	runtime.KeepAlive(js)
	if err != nil {
		return PollResult{}, err
	}
	var res PollResult
	raw := takeBytes(&events)
	if err := json.Unmarshal(takeBytes(&meta), &res); err != nil {
		return PollResult{}, &Error{Op: "net_bus_poll", Status: StatusInternal, Message: err.Error()}
	}
	if res.Events, err = decodeBusEvents(raw); err != nil {
		return PollResult{}, err
	}
	return res, nil
}

// decodeBusEvents unpacks net_bus_poll's records:
// shard u16 | ts u64 | id_len u16 | id | dedup_len u16 | dedup | len u32 | payload.
func decodeBusEvents(raw []byte) ([]BusEvent, error) {
	bad := &Error{Op: "net_bus_poll", Status: StatusInternal, Message: "truncated event record"}
	var out []BusEvent
	for len(raw) > 0 {
		if len(raw) < 12 {
			return nil, bad
		}
		e := BusEvent{Shard: binary.LittleEndian.Uint16(raw), TimestampNs: binary.LittleEndian.Uint64(raw[2:])}
		n := int(binary.LittleEndian.Uint16(raw[10:]))
		raw = raw[12:]
		if len(raw) < n+2 {
			return nil, bad
		}
		e.ID, raw = string(raw[:n]), raw[n:]
		n = int(binary.LittleEndian.Uint16(raw))
		raw = raw[2:]
		if len(raw) < n+4 {
			return nil, bad
		}
		e.DedupID, raw = string(raw[:n]), raw[n:]
		n = int(binary.LittleEndian.Uint32(raw))
		raw = raw[4:]
		if len(raw) < n {
			return nil, bad
		}
		e.Payload, raw = raw[:n:n], raw[n:]
		out = append(out, e)
	}
	return out, nil
}

// Flush waits until everything ingested so far is stored (or counted
// lost), then flushes the adapter. When ctx ends first it returns an *Error
// matching ErrCancelled and ctx.Err() (the events keep being dispatched; only
// the wait ends). Close wakes a Flush blocked on the bus: it returns
// ErrShuttingDown.
func (b *Bus) Flush(ctx context.Context) error {
	return b.blocking(ctx, "net_bus_flush", func(p *C.net_bus_t, cancel *C.net_cancel_t, errOut *C.net_error_t) C.net_status_t {
		return C.net_bus_flush(p, cancel, errOut)
	})
}

// Stats returns the bus's counters (events_ingested, events_dispatched,
// events_dropped, ..., adapter, producer_nonce).
func (b *Bus) Stats() (map[string]any, error) {
	stats := map[string]any{}
	err := b.jsonOf("net_bus_stats", func(p *C.net_bus_t, out *C.net_bytes_t) C.net_status_t {
		return C.net_bus_stats(p, out)
	}, &stats)
	return stats, err
}

// NumShards returns the number of active shards.
func (b *Bus) NumShards() (int, error) {
	var n C.uint16_t
	err := b.do("net_bus_num_shards", func(p *C.net_bus_t) C.net_status_t { return C.net_bus_num_shards(p, &n) })
	return int(n), err
}

// Shutdown stops ingest, drains the shards and flushes the adapter
// (net_bus_close), and reports what was lost; the bus still answers Stats
// until closed. A second call returns the same report.
func (b *Bus) Shutdown() (ShutdownReport, error) {
	var r ShutdownReport
	err := b.jsonOf("net_bus_close", func(p *C.net_bus_t, out *C.net_bytes_t) C.net_status_t {
		return C.net_bus_close(p, out)
	}, &r)
	return r, err
}

// Close shuts the bus down (if not yet: draining what is buffered, within the
// configured shutdown timeout) and frees it (net_bus_free). A Flush or Poll
// blocked on it returns ErrShuttingDown first; Close waits for calls in
// flight. It returns the free's outcome: nil, or an error matching ErrBusy
// when the shutdown lost events (the message says how many; call Shutdown
// first for the full report) or calls were still running at libnet's 5 s
// deadline. Idempotent and safe to call concurrently; every call returns the
// one free's outcome.
func (b *Bus) Close() error {
	if b == nil {
		return nil
	}
	runtime.SetFinalizer(b, nil)
	return b.h.close(freeBus)
}

// RedisStreamDedup is a bounded set of recently seen dedup ids
// (net_redis_dedup_t): eviction is FIFO by first sight, not LRU; capacity
// is clamped to 1..2^24. Safe for concurrent use.
type RedisStreamDedup struct {
	h handle // *C.net_redis_dedup_t
}

func freeRedisDedup(p unsafe.Pointer) error {
	return freeStatus("net_redis_dedup_free", func() C.net_status_t {
		return C.net_redis_dedup_free((*C.net_redis_dedup_t)(p))
	})
}

// NewRedisStreamDedup creates a set remembering up to capacity ids.
func NewRedisStreamDedup(capacity int) (*RedisStreamDedup, error) {
	if capacity < 0 {
		return nil, invalidArgument("net_redis_dedup_new", "capacity is negative")
	}
	var out *C.net_redis_dedup_t
	if err := check("net_redis_dedup_new", func() C.net_status_t {
		return C.net_redis_dedup_new(C.size_t(capacity), &out)
	}); err != nil {
		return nil, err
	}
	d := &RedisStreamDedup{h: newHandle(unsafe.Pointer(out))}
	runtime.SetFinalizer(d, func(d *RedisStreamDedup) { d.h.leaked("netmesh.RedisStreamDedup", freeRedisDedup) })
	return d, nil
}

func (d *RedisStreamDedup) do(op string, f func(p *C.net_redis_dedup_t) C.net_status_t) error {
	if d == nil {
		return invalidArgument(op, "dedup is nil")
	}
	p := (*C.net_redis_dedup_t)(d.h.load())
	if p == nil {
		return shuttingDown(op, "dedup has been closed")
	}
	err := check(op, func() C.net_status_t { return f(p) })
	runtime.KeepAlive(d)
	return err
}

// IsDuplicate reports whether id was seen (and is still remembered);
// otherwise it remembers id and returns false.
func (d *RedisStreamDedup) IsDuplicate(id string) (bool, error) {
	var dup C.bool
	raw := []byte(id)
	err := d.do("net_redis_dedup_is_duplicate", func(p *C.net_redis_dedup_t) C.net_status_t {
		return C.net_redis_dedup_is_duplicate(p, bytesPtr(raw), C.size_t(len(raw)), &dup)
	})
	runtime.KeepAlive(raw)
	return bool(dup), err
}

// CheckBatch is IsDuplicate for each id, in order, in one libnet call.
func (d *RedisStreamDedup) CheckBatch(ids []string) ([]bool, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	// One buffer holds every id (C memory: the slice array may point into it).
	total := 0
	for _, id := range ids {
		total += len(id)
	}
	n := C.size_t(len(ids))
	buf := C.malloc(C.size_t(total) + 1)
	defer C.free(buf)
	slicesMem := C.malloc(n * C.size_t(unsafe.Sizeof(C.net_slice_t{})))
	defer C.free(slicesMem)
	slices := unsafe.Slice((*C.net_slice_t)(slicesMem), n)
	dupsMem := C.malloc(n * C.size_t(unsafe.Sizeof(C.bool(false))))
	defer C.free(dupsMem)
	dups := unsafe.Slice((*C.bool)(dupsMem), n)
	at := 0
	all := unsafe.Slice((*byte)(buf), C.size_t(total)+1)
	for i, id := range ids {
		copy(all[at:], id)
		slices[i] = C.net_slice_t{ptr: (*C.uint8_t)(unsafe.Pointer(&all[at])), len: C.size_t(len(id))}
		at += len(id)
	}
	err := d.do("net_redis_dedup_check_batch", func(p *C.net_redis_dedup_t) C.net_status_t {
		return C.net_redis_dedup_check_batch(p, &slices[0], n, &dups[0])
	})
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(ids))
	for i := range out {
		out[i] = bool(dups[i])
	}
	return out, nil
}

// Info returns the ids remembered now, the effective capacity and the
// duplicates reported so far.
func (d *RedisStreamDedup) Info() (length, capacity int, duplicates uint64, err error) {
	var l, c C.size_t
	var dup C.uint64_t
	err = d.do("net_redis_dedup_info", func(p *C.net_redis_dedup_t) C.net_status_t {
		return C.net_redis_dedup_info(p, &l, &c, &dup)
	})
	return int(l), int(c), uint64(dup), err
}

// Clear forgets every id.
func (d *RedisStreamDedup) Clear() error {
	return d.do("net_redis_dedup_clear", func(p *C.net_redis_dedup_t) C.net_status_t { return C.net_redis_dedup_clear(p) })
}

// Close frees the set (net_redis_dedup_free) and returns the free's outcome
// (an error matching ErrBusy when calls were still running at libnet's 5 s
// deadline). Idempotent and safe to call concurrently.
func (d *RedisStreamDedup) Close() error {
	if d == nil {
		return nil
	}
	runtime.SetFinalizer(d, nil)
	return d.h.close(freeRedisDedup)
}
