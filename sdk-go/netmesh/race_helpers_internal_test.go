package netmesh

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/netmesh/net/sdk-go/netmesh/internal/ffitest"
)

// Helpers for the races of both test packages (exported here, in a _test
// file, so that package netmesh_test can use them too). They follow libnet's
// own suites (tests/ffi_common): no sleeps, and a race counts only when its
// outcome proves it was won.

// LetItBlock lets a call just started on another goroutine reach its wait,
// without a clock: it yields the processor a number of times. Whether the
// call got there is not assumed; UntilWon checks it from the outcome.
func LetItBlock() {
	for i := 0; i < 2000; i++ {
		runtime.Gosched()
	}
}

// UntilWon runs attempt until wanted rounds have shown the race was really
// won (the blocked call was interrupted while it waited, which attempt
// reports by returning true), at most rounds times, and fails the test if
// fewer were. A round whose interruption came before the call waited proves
// nothing, so it does not count.
func UntilWon(t testing.TB, rounds, wanted int, attempt func(round int) bool) {
	t.Helper()
	won := 0
	for round := 0; round < rounds; round++ {
		if attempt(round) {
			won++
			if won == wanted {
				t.Logf("won %d of %d rounds", won, round+1)
				return
			}
		}
		if t.Failed() {
			return
		}
	}
	t.Fatalf("the call was interrupted while waiting in only %d of %d rounds (wanted %d)", won, rounds, wanted)
}

// InterruptedWhileWaiting tells from a blocking call's error message whether
// it was interrupted (cancelled, or its handle freed) while it waited, as
// opposed to before it started.
func InterruptedWhileWaiting(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	return strings.Contains(e.Message, "while the call waited") || strings.Contains(e.Message, "while it waited")
}

// freeWakesBlockedCall runs one round of a raw-handle race: call (named
// callName) blocks forever in libnet on another goroutine and sets left
// C-side right after libnet returns; free (named freeName) frees the handle
// and reports whether left was already set when the free returned. The round
// counts (true) when the free woke the waiting call (NET_END) and returned
// only after that call had left libnet; a free that came before the call
// waited (NET_ERR_SHUTTING_DOWN) proves nothing (false).
func freeWakesBlockedCall(t *testing.T, callName, freeName string, call func(left ffitest.Flag) int32, free func(left ffitest.Flag) (leftFirst bool, st int32)) bool {
	t.Helper()
	left := ffitest.NewFlag()
	defer left.Release()
	started := make(chan struct{})
	res := make(chan int32, 1)
	go func() {
		close(started)
		res <- call(left)
	}()
	<-started
	LetItBlock()
	leftFirst, st := free(left)
	if st != ffitest.OK {
		t.Fatalf("%s: %v", freeName, Status(st))
	}
	switch got := <-res; got {
	case ffitest.End:
		if !leftFirst {
			t.Fatalf("%s returned while %s was still inside libnet", freeName, callName)
		}
		return true
	case ffitest.ShuttingDown:
		return false
	default:
		t.Fatalf("blocked %s woken by %s returned %v", callName, freeName, Status(got))
		return false
	}
}
