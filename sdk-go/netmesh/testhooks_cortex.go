package netmesh

/*
#include <net.h>

// net_*_watch_next, then *left = 1 (C-side, right after libnet returned).
static net_status_t testhook_watch_next_mark(int tasks, const void *watch, uint32_t timeout_ms, int *left) {
	net_bytes_t rows = {0};
	uint64_t missed = 0;
	net_status_t st = tasks
		? net_tasks_watch_next((const net_tasks_watch_t *)watch, timeout_ms, &rows, &missed)
		: net_memories_watch_next((const net_memories_watch_t *)watch, timeout_ms, &rows, &missed);
	if (st == NET_OK) net_bytes_free(&rows);
	__atomic_store_n(left, 1, __ATOMIC_SEQ_CST);
	return st;
}

// net_*_watch_free, then *left as seen the moment the free returned.
static int testhook_watch_free_check(int tasks, void *watch, int *left) {
	if (tasks) net_tasks_watch_free((net_tasks_watch_t *)watch);
	else net_memories_watch_free((net_memories_watch_t *)watch);
	return __atomic_load_n(left, __ATOMIC_SEQ_CST);
}
*/
import "C"

import (
	"sync/atomic"
	"unsafe"
)

// Test hooks for the CortEX handles (see testhooks.go).

// rawModel is the C pointer behind a Tasks or Memories, kept past Close.
type rawModel struct {
	p    unsafe.Pointer
	kind modelKind
}

func rawTasksForTest(t *Tasks) rawModel {
	return rawModel{atomic.LoadPointer(&t.m.h), tasksModel}
}

func rawMemoriesForTest(m *Memories) rawModel {
	return rawModel{atomic.LoadPointer(&m.m.h), memoriesModel}
}

// countWhere calls net_*_count_where on the raw pointer.
func (r rawModel) countWhere() Status {
	var n C.uint64_t
	if r.kind == tasksModel {
		return Status(C.net_tasks_count_where((*C.net_tasks_adapter_t)(r.p), nil, 0, &n))
	}
	return Status(C.net_memories_count_where((*C.net_memories_adapter_t)(r.p), nil, 0, &n))
}

// waitForSeq calls net_*_wait_for_seq on the raw pointer.
func (r rawModel) waitForSeq(seq uint64, timeoutMs uint32) Status {
	if r.kind == tasksModel {
		return Status(C.net_tasks_wait_for_seq((*C.net_tasks_adapter_t)(r.p), C.uint64_t(seq), C.uint32_t(timeoutMs)))
	}
	return Status(C.net_memories_wait_for_seq((*C.net_memories_adapter_t)(r.p), C.uint64_t(seq), C.uint32_t(timeoutMs)))
}

func (r rawModel) free() {
	if r.kind == tasksModel {
		C.net_tasks_free((*C.net_tasks_adapter_t)(r.p))
	} else {
		C.net_memories_free((*C.net_memories_adapter_t)(r.p))
	}
}

// rawWatch is the C pointer behind a Watch, kept past Close.
type rawWatch struct {
	p    unsafe.Pointer
	kind modelKind
}

func rawWatchForTest[T any](w *Watch[T]) rawWatch {
	return rawWatch{atomic.LoadPointer(&w.h), w.kind}
}

func (w rawWatch) tasks() C.int {
	if w.kind == tasksModel {
		return 1
	}
	return 0
}

// next calls net_*_watch_next on the raw pointer.
func (w rawWatch) next(timeoutMs uint32) Status {
	var left cFlag = newCFlag()
	defer left.release()
	return Status(C.testhook_watch_next_mark(w.tasks(), w.p, C.uint32_t(timeoutMs), left.p))
}

// nextMarked is net_*_watch_next followed, in C, by setting left.
func (w rawWatch) nextMarked(timeoutMs uint32, left cFlag) Status {
	return Status(C.testhook_watch_next_mark(w.tasks(), w.p, C.uint32_t(timeoutMs), left.p))
}

// freeCheck frees the watch and reports whether left was already set when
// the free returned.
func (w rawWatch) freeCheck(left cFlag) bool {
	return C.testhook_watch_free_check(w.tasks(), w.p, left.p) != 0
}

func (w rawWatch) free() { freeWatch(w.kind, w.p) }
