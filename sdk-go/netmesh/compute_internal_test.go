package netmesh

import (
	"runtime"
	"testing"
	"time"
)

// A Compute dropped without Close is collected (its work goroutine holds
// the daemon table and the raw pointer, not the Compute), and the free its
// finalizer starts ends the goroutine.
func TestForgottenComputeIsFinalizedAndItsGoroutineEnds(t *testing.T) {
	m, err := NewMesh(MeshConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	done := func() chan struct{} {
		c, err := NewCompute(m, ComputeConfig{})
		if err != nil {
			t.Fatal(err)
		}
		return c.done
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		runtime.GC()
		select {
		case <-done:
			return
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the forgotten Compute's goroutine is still running")
		}
	}
}
