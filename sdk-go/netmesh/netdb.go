package netmesh

/*
#include <net.h>
*/
import "C"

import (
	"encoding/json"
	"runtime"
	"unsafe"
)

// NetDB: one handle over the tasks and memories models of one Redex
// (net_netdb_*), opened together (failure-atomic: when one model cannot
// open, nothing stays open), bundled together (one snapshot point for
// both) and closed together. Its models are the ordinary Tasks and Memories
// types, lent by the NetDB: every query, watch and write is theirs.

// NetDBConfig says which models a NetDB opens and how. The zero value opens
// no model; set WithTasks and/or WithMemories.
type NetDBConfig struct {
	// WithTasks opens the tasks model (channel "cortex/tasks").
	WithTasks bool
	// WithMemories opens the memories model (channel "cortex/memories").
	WithMemories bool
	// Persistent keeps the models' logs on disk (the Redex needs a
	// directory); they replay on the next open.
	Persistent bool
	// Policy is both folds' error policy ("" = PolicyStop).
	Policy ErrorPolicy
}

func (c NetDBConfig) marshal() ([]byte, error) {
	cfg := map[string]any{
		"with_tasks":    c.WithTasks,
		"with_memories": c.WithMemories,
		"persistent":    c.Persistent,
	}
	if err := c.Policy.addTo(cfg); err != nil {
		return nil, err
	}
	return json.Marshal(cfg)
}

// NetDB is the tasks and memories models of one Redex behind one handle
// (net_netdb_t). Open it with OpenNetDB or OpenNetDBFromBundle; reach the
// models with Tasks and Memories; take a consistent bundle of both with
// SnapshotBundle; Close frees it and its models. A finalizer frees a NetDB
// garbage collected unclosed (on another goroutine, with a warning logged).
// Safe for concurrent use, Close included.
type NetDB struct {
	core     *netdbCore
	tasks    *Tasks
	memories *Memories
}

// netdbCore is the NetDB's handle, referenced by the NetDB and by the models
// it lent (so it lives while any of them is reachable) and referencing
// neither: the finalizer sits on it, outside any cycle, and runs once
// nothing can use the handle any more.
type netdbCore struct {
	h handle // *C.net_netdb_t
}

func freeNetDB(p unsafe.Pointer) error {
	return freeStatus("net_netdb_free", func() C.net_status_t { return C.net_netdb_free((*C.net_netdb_t)(p)) })
}

// OpenNetDB opens the models cfg enables on r for the writer origin (use an
// identity's OriginHash), tasks first, each replaying its log to the tail
// before it returns. Failure-atomic: on an error nothing stays open.
//
// Errors: ErrCortexInvalidConfig naming the bad key; ErrRedexNoPersistentDir
// for a persistent NetDB on a memory-only Redex; ErrCortexHalted when a
// model's fold stops while replaying its log (open with
// PolicyLogAndContinue to skip what it cannot fold); the models' open
// errors.
func OpenNetDB(r *Redex, origin uint64, cfg NetDBConfig) (*NetDB, error) {
	return openNetDB(r, origin, cfg, nil)
}

// OpenNetDBFromBundle opens a NetDB from a bundle (SnapshotBundle): each
// model in it is restored and folds the events its log has after the
// bundle's cut; each enabled model not in it opens fresh.
//
// Errors: ErrCortexSnapshot when the bundle does not decode, or holds a
// model cfg does not enable (a bundle is never applied in part); as
// OpenNetDB otherwise.
func OpenNetDBFromBundle(r *Redex, origin uint64, cfg NetDBConfig, bundle []byte) (*NetDB, error) {
	if bundle == nil {
		bundle = []byte{}
	}
	return openNetDB(r, origin, cfg, bundle)
}

func openNetDB(r *Redex, origin uint64, cfg NetDBConfig, bundle []byte) (*NetDB, error) {
	op := "net_netdb_open"
	if bundle != nil {
		op = "net_netdb_open_from_bundle"
	}
	js, rp, err := openInputs(op, r, cfg.marshal)
	if err != nil {
		return nil, err
	}
	var out *C.net_netdb_t
	err = check(op, func() C.net_status_t {
		if bundle == nil {
			return C.net_netdb_open(rp, C.uint64_t(origin), bytesPtr(js), C.size_t(len(js)), &out)
		}
		return C.net_netdb_open_from_bundle(rp, C.uint64_t(origin), bytesPtr(js), C.size_t(len(js)),
			bytesPtr(bundle), C.size_t(len(bundle)), &out)
	})
	runtime.KeepAlive(r)
	runtime.KeepAlive(js)
	runtime.KeepAlive(bundle)
	if err != nil {
		return nil, err
	}
	db := &NetDB{core: &netdbCore{h: newHandle(unsafe.Pointer(out))}}
	runtime.SetFinalizer(db.core, func(c *netdbCore) { c.h.leaked("netmesh NetDB", freeNetDB) })
	if cfg.WithTasks {
		m, err := lendModel[Task, TaskFilter](db, ModelTasks)
		if err != nil {
			return nil, joinErrors(err, db.Close())
		}
		db.tasks = newTasks(m)
	}
	if cfg.WithMemories {
		m, err := lendModel[Memory, MemoryFilter](db, ModelMemories)
		if err != nil {
			return nil, joinErrors(err, db.Close())
		}
		db.memories = newMemories(m)
	}
	return db, nil
}

// lendModel wraps the NetDB's model of kind (net_netdb_model) as a Model
// the NetDB owns.
func lendModel[R, F any](db *NetDB, kind ModelKind) (*Model[R, F], error) {
	var out *C.net_model_t
	err := db.do("net_netdb_model", func(p *C.net_netdb_t) C.net_status_t {
		return C.net_netdb_model(p, C.uint32_t(kind), &out)
	})
	if err != nil {
		return nil, err
	}
	return &Model[R, F]{h: newHandle(unsafe.Pointer(out)), kind: kind, lender: db.core}, nil
}

// do runs one call on the live handle.
func (db *NetDB) do(op string, f func(p *C.net_netdb_t) C.net_status_t) error {
	if db == nil {
		return invalidArgument(op, "NetDB is nil")
	}
	p := (*C.net_netdb_t)(db.core.h.load())
	if p == nil {
		return shuttingDown(op, "NetDB has been closed")
	}
	err := check(op, func() C.net_status_t { return f(p) })
	runtime.KeepAlive(db.core)
	return err
}

// Tasks is the NetDB's tasks model (the same value on every call). It stays
// the NetDB's: Close on it only lets go of it, and the NetDB's Close frees
// it. ErrInvalidArgument when the NetDB was opened without it.
func (db *NetDB) Tasks() (*Tasks, error) {
	if db == nil || db.tasks == nil {
		return nil, invalidArgument("net_netdb_model", "this NetDB was opened without the tasks model (WithTasks)")
	}
	return db.tasks, nil
}

// Memories is the NetDB's memories model, as Tasks is its tasks model.
func (db *NetDB) Memories() (*Memories, error) {
	if db == nil || db.memories == nil {
		return nil, invalidArgument("net_netdb_model", "this NetDB was opened without the memories model (WithMemories)")
	}
	return db.memories, nil
}

// SnapshotBundle is a bundle of both models cut at one point (STORAGE.md
// §12 bytes, byte-compatible with Net v0.11's): every write that returned
// before the call is in it, and a write in it comes with every write, to
// either model, that returned before that write began. Open it with
// OpenNetDBFromBundle.
func (db *NetDB) SnapshotBundle() ([]byte, error) {
	var out C.net_bytes_t
	err := db.do("net_netdb_snapshot", func(p *C.net_netdb_t) C.net_status_t {
		return C.net_netdb_snapshot(p, &out)
	})
	if err != nil {
		return nil, err
	}
	return takeBytes(&out), nil
}

// Shutdown stops both models' folds and closes their RedEX files, syncing
// them (net_netdb_close), tasks first, and returns the first failure.
// Queries keep answering from the last state; writes fail. Idempotent. The
// NetDB still needs Close.
func (db *NetDB) Shutdown() error {
	return db.do("net_netdb_close", func(p *C.net_netdb_t) C.net_status_t { return C.net_netdb_close(p) })
}

// Close frees the NetDB and its models (net_netdb_free): the lent Tasks and
// Memories values fail later calls with ErrShuttingDown, calls blocked on
// them wake, calls in flight finish first (up to libnet's 5 s). It returns
// nil, or an error matching ErrBusy when calls were still running at that
// deadline or closing a model failed (call Shutdown first to get that error
// itself). Idempotent and safe to call concurrently.
func (db *NetDB) Close() error {
	if db == nil {
		return nil
	}
	runtime.SetFinalizer(db.core, nil)
	return db.core.h.close(func(p unsafe.Pointer) error {
		if db.tasks != nil {
			_ = db.tasks.Close()
		}
		if db.memories != nil {
			_ = db.memories.Close()
		}
		return freeNetDB(p)
	})
}
