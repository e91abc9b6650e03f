package netmesh_test

import (
	"context"
	"fmt"

	"github.com/netmesh/net/sdk-go/netmesh"
)

// A tasks model: writes return RedEX sequence numbers, WaitForSeq gives
// read-your-writes, and a watch delivers the current rows, then each change.
func ExampleOpenTasks() {
	redex, _ := netmesh.OpenRedex("") // memory only; give a directory to persist
	defer redex.Close()
	tasks, err := netmesh.OpenTasks(redex, 0x1234, netmesh.ModelConfig{})
	if err != nil {
		panic(err)
	}
	defer tasks.Close()

	ctx := context.Background()
	watch, _ := tasks.Watch(&netmesh.TaskFilter{Status: netmesh.TaskPending})
	defer watch.Close()
	rows, _ := watch.Next(ctx)
	fmt.Println("pending:", len(rows))

	tasks.Create(1, "write the spec")
	seq, _ := tasks.Create(2, "build it")
	tasks.WaitForSeq(ctx, seq)
	rows, _ = watch.Next(ctx) // both creates may arrive as one change
	for len(rows) < 2 {
		rows, _ = watch.Next(ctx)
	}
	fmt.Println("pending:", rows[0].Title, "/", rows[1].Title)

	seq, _ = tasks.Complete(1)
	tasks.WaitForSeq(ctx, seq)
	done, _ := tasks.CountWhere(&netmesh.TaskFilter{Status: netmesh.TaskCompleted})
	fmt.Println("completed:", done)
	// Output:
	// pending: 0
	// pending: write the spec / build it
	// completed: 1
}
