package netmesh

import (
	"strings"
	"testing"
)

// A NetDB dropped without Close, whose lent models were used and dropped
// too, is freed by its finalizer (the models refer to the NetDB's handle,
// never the other way round, so no cycle holds a finalizer back), and the
// leak is logged.
func TestNetDBFinalizerFreesALeakedNetDB(t *testing.T) {
	logs := captureLogs(t)
	r, err := OpenRedex("")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	func() {
		db, err := OpenNetDB(r, 7, NetDBConfig{WithTasks: true, WithMemories: true})
		if err != nil {
			t.Fatal(err)
		}
		tasks, err := db.Tasks()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tasks.Create(1, "leaked"); err != nil {
			t.Fatal(err)
		}
	}()
	waitFor(t, "the finalizer freed an unreachable NetDB", func() bool {
		return strings.Contains(logs.String(), "netmesh NetDB was garbage collected without Close")
	})
	// Its models were freed with it: the tasks channel opens again.
	waitFor(t, "the leaked NetDB's models closed", func() bool {
		tasks, err := OpenTasks(r, 7, ModelConfig{})
		if err != nil {
			return false
		}
		return tasks.Close() == nil
	})
}
