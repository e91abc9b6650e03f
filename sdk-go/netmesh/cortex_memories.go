package netmesh

/*
#include <net.h>
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// The memories model (NET_MODEL_MEMORIES, channel "cortex/memories"): a thin
// definition over Model, adding its rows (Memory), filter (MemoryFilter) and
// its own writes.

// Memory is a row of the memories model.
type Memory struct {
	ID        uint64   `json:"id"`
	Content   string   `json:"content"`
	Tags      []string `json:"tags"`
	Source    string   `json:"source"`
	CreatedNs uint64   `json:"created_ns"`
	UpdatedNs uint64   `json:"updated_ns"`
	Pinned    bool     `json:"pinned"`
}

// MemoryFilter selects memories; every set field must match. TagsAny: at
// least one of these tags; TagsAll: every one. OrderBy: "id", "created" or
// "updated" with "_asc" or "_desc".
type MemoryFilter struct {
	IDs             []uint64 `json:"ids,omitempty"`
	TagsAny         []string `json:"tags_any,omitempty"`
	TagsAll         []string `json:"tags_all,omitempty"`
	Source          *string  `json:"source,omitempty"`
	Pinned          *bool    `json:"pinned,omitempty"`
	ContentContains string   `json:"content_contains,omitempty"`
	CreatedAfter    *uint64  `json:"created_after,omitempty"`
	CreatedBefore   *uint64  `json:"created_before,omitempty"`
	UpdatedAfter    *uint64  `json:"updated_after,omitempty"`
	UpdatedBefore   *uint64  `json:"updated_before,omitempty"`
	OrderBy         string   `json:"order_by,omitempty"`
	Offset          *uint64  `json:"offset,omitempty"`
	Limit           *uint64  `json:"limit,omitempty"`
}

// Memories is the memories model: a *Model[Memory, MemoryFilter] (queries,
// watches, snapshots, WaitForSeq, Delete, Shutdown, Close) plus Store,
// Retag, Pin and Unpin. Safe for concurrent use, Close included.
type Memories struct {
	*Model[Memory, MemoryFilter]
}

func newMemories(m *Model[Memory, MemoryFilter]) *Memories { return &Memories{m} }

// OpenMemories opens the memories model on r for the writer origin.
func OpenMemories(r *Redex, origin uint64, cfg ModelConfig) (*Memories, error) {
	return openDefinition(ModelMemories, r, origin, cfg, nil, newMemories)
}

// RestoreMemories opens the memories model from snap (see RestoreTasks).
func RestoreMemories(r *Redex, origin uint64, cfg ModelConfig, snap ModelSnapshot) (*Memories, error) {
	return openDefinition(ModelMemories, r, origin, cfg, &snap, newMemories)
}

// tagSlices is the C view of tags: a Go array of net_slice_t pointing at
// the tags' bytes, pinned with pinner (cgo forbids unpinned Go pointers
// inside memory passed to C). Empty tags are {NULL, 0}.
func tagSlices(tags []string, pinner *runtime.Pinner) []C.net_slice_t {
	if len(tags) == 0 {
		return nil
	}
	out := make([]C.net_slice_t, len(tags))
	for i, tag := range tags {
		if len(tag) == 0 {
			continue
		}
		data := unsafe.StringData(tag)
		pinner.Pin(data)
		out[i] = C.net_slice_t{ptr: (*C.uint8_t)(unsafe.Pointer(data)), len: C.size_t(len(tag))}
	}
	return out
}

// Store stores memory id (creating it, or replacing its content, tags and
// source) and returns the event's RedEX sequence number.
func (mm *Memories) Store(id uint64, content string, tags []string, source string) (uint64, error) {
	var pinner runtime.Pinner
	defer pinner.Unpin()
	slices := tagSlices(tags, &pinner)
	return mm.write("net_memories_store", func(p *C.net_model_t, seq *C.uint64_t) C.net_status_t {
		return C.net_memories_store(p, C.uint64_t(id), stringPtr(content), C.size_t(len(content)),
			unsafe.SliceData(slices), C.size_t(len(slices)), stringPtr(source), C.size_t(len(source)), seq)
	})
}

// Retag replaces the tags of memory id (no effect if absent).
func (mm *Memories) Retag(id uint64, tags []string) (uint64, error) {
	var pinner runtime.Pinner
	defer pinner.Unpin()
	slices := tagSlices(tags, &pinner)
	return mm.write("net_memories_retag", func(p *C.net_model_t, seq *C.uint64_t) C.net_status_t {
		return C.net_memories_retag(p, C.uint64_t(id), unsafe.SliceData(slices), C.size_t(len(slices)), seq)
	})
}

// Pin pins memory id (no effect if absent).
func (mm *Memories) Pin(id uint64) (uint64, error) {
	return mm.write("net_memories_pin", func(p *C.net_model_t, seq *C.uint64_t) C.net_status_t {
		return C.net_memories_pin(p, C.uint64_t(id), seq)
	})
}

// Unpin unpins memory id (no effect if absent).
func (mm *Memories) Unpin(id uint64) (uint64, error) {
	return mm.write("net_memories_unpin", func(p *C.net_model_t, seq *C.uint64_t) C.net_status_t {
		return C.net_memories_unpin(p, C.uint64_t(id), seq)
	})
}
