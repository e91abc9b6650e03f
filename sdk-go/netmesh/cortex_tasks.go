package netmesh

/*
#include <net.h>
*/
import "C"

// The tasks model (NET_MODEL_TASKS, channel "cortex/tasks"): a thin
// definition over Model, adding its rows (Task), filter (TaskFilter) and its
// own writes.

// TaskStatus is a task's status.
type TaskStatus string

const (
	// TaskPending is a task not yet completed.
	TaskPending TaskStatus = "pending"
	// TaskCompleted is a completed task.
	TaskCompleted TaskStatus = "completed"
)

// Task is a row of the tasks model. Timestamps are nanoseconds since the
// Unix epoch.
type Task struct {
	ID        uint64     `json:"id"`
	Title     string     `json:"title"`
	Status    TaskStatus `json:"status"`
	CreatedNs uint64     `json:"created_ns"`
	UpdatedNs uint64     `json:"updated_ns"`
}

// TaskFilter selects tasks; every set field must match. OrderBy is one of
// "id_asc" (default), "id_desc", "created_asc", "created_desc",
// "updated_asc", "updated_desc", "title_asc", "title_desc". json.Marshal
// gives libnet's filter JSON.
type TaskFilter struct {
	IDs           []uint64   `json:"ids,omitempty"`
	Status        TaskStatus `json:"status,omitempty"`
	TitleContains string     `json:"title_contains,omitempty"`
	CreatedAfter  *uint64    `json:"created_after,omitempty"`
	CreatedBefore *uint64    `json:"created_before,omitempty"`
	UpdatedAfter  *uint64    `json:"updated_after,omitempty"`
	UpdatedBefore *uint64    `json:"updated_before,omitempty"`
	OrderBy       string     `json:"order_by,omitempty"`
	Offset        *uint64    `json:"offset,omitempty"`
	Limit         *uint64    `json:"limit,omitempty"`
}

// Tasks is the tasks model: a *Model[Task, TaskFilter] (queries, watches,
// snapshots, WaitForSeq, Delete, Shutdown, Close) plus Create, Rename and
// Complete. Safe for concurrent use, Close included.
type Tasks struct {
	*Model[Task, TaskFilter]
}

func newTasks(m *Model[Task, TaskFilter]) *Tasks { return &Tasks{m} }

// OpenTasks opens the tasks model on r for the writer origin (use an
// identity's OriginHash). A persistent model (cfg.File.Persistent) recovers
// its state and app sequence from its log.
func OpenTasks(r *Redex, origin uint64, cfg ModelConfig) (*Tasks, error) {
	return openDefinition(ModelTasks, r, origin, cfg, nil, newTasks)
}

// RestoreTasks opens the tasks model from snap (state and app sequence),
// replaying only the events after snap.LastSeq. ErrCortexSnapshot when the
// bytes do not decode as tasks.
func RestoreTasks(r *Redex, origin uint64, cfg ModelConfig, snap ModelSnapshot) (*Tasks, error) {
	return openDefinition(ModelTasks, r, origin, cfg, &snap, newTasks)
}

// Create creates (or overwrites) task id, pending, and returns the event's
// RedEX sequence number.
func (t *Tasks) Create(id uint64, title string) (uint64, error) {
	return t.write("net_tasks_create", func(p *C.net_model_t, seq *C.uint64_t) C.net_status_t {
		return C.net_tasks_create(p, C.uint64_t(id), stringPtr(title), C.size_t(len(title)), seq)
	})
}

// Rename renames task id (no effect if absent).
func (t *Tasks) Rename(id uint64, title string) (uint64, error) {
	return t.write("net_tasks_rename", func(p *C.net_model_t, seq *C.uint64_t) C.net_status_t {
		return C.net_tasks_rename(p, C.uint64_t(id), stringPtr(title), C.size_t(len(title)), seq)
	})
}

// Complete marks task id completed (no effect if absent).
func (t *Tasks) Complete(id uint64) (uint64, error) {
	return t.write("net_tasks_complete", func(p *C.net_model_t, seq *C.uint64_t) C.net_status_t {
		return C.net_tasks_complete(p, C.uint64_t(id), seq)
	})
}
