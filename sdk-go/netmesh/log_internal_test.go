package netmesh

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The log pull: records reach log/slog through the forwarding goroutine,
// stopping the forwarder wakes its pull blocked forever, and cancelling a
// pull's context wakes it. The forwarder is process-wide: each test puts the
// level back as it found it.

func restoreLogLevel(t *testing.T) {
	before := CurrentLogLevel()
	t.Cleanup(func() {
		if err := SetLogLevel(before); err != nil {
			t.Errorf("restoring the log level: %v", err)
		}
	})
}

// provokeRecoveryWarning opens a persistent channel whose manifest is
// garbage: recovery rewrites it and libnet logs a warning.
func provokeRecoveryWarning(t *testing.T) {
	base := t.TempDir()
	channel := filepath.Join(base, "log", "chan")
	if err := os.MkdirAll(channel, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(channel, "manifest"), []byte("not a manifest at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := OpenRedex(base)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, err := r.OpenFile("log/chan", FileConfig{Persistent: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestLogLevelDefaultsToWarnAndParses(t *testing.T) {
	if _, set := os.LookupEnv(LogLevelEnv); !set && CurrentLogLevel() != LogWarn {
		t.Fatalf("level at load = %v, want warn", CurrentLogLevel())
	}
	for _, name := range []string{"off", "error", "warn", "info", "debug", "trace"} {
		l, err := ParseLogLevel(strings.ToUpper(name))
		if err != nil || l.String() != name {
			t.Fatalf("ParseLogLevel(%q) = %v, %v", name, l, err)
		}
	}
	if _, err := ParseLogLevel("loud"); err == nil {
		t.Fatal("an unknown level parsed")
	}
	restoreLogLevel(t)
	if err := SetLogLevel(LogTrace + 1); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("a level above trace: %v", err)
	}
}

func TestLogRecordsReachSlog(t *testing.T) {
	restoreLogLevel(t)
	logs := captureLogs(t)
	if err := SetLogLevel(LogWarn); err != nil {
		t.Fatal(err)
	}
	provokeRecoveryWarning(t)
	waitFor(t, "libnet's recovery warning reached slog", func() bool {
		return strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "recovery") &&
			strings.Contains(logs.String(), "libnet=")
	})
}

// Stopping the forwarder (SetLogLevel(LogOff)) wakes its pull blocked
// forever: the pull's error says it was cancelled while it waited.
func TestLogStopWakesTheForwardersBlockedPull(t *testing.T) {
	restoreLogLevel(t)
	UntilWon(t, 200, 3, func(int) bool {
		if err := SetLogLevel(LogWarn); err != nil {
			t.Fatal(err)
		}
		LetItBlock()
		if err := SetLogLevel(LogOff); err != nil {
			t.Fatal(err)
		}
		err := forwarder.lastExit
		if !errors.Is(err, ErrCancelled) || !errors.Is(err, context.Canceled) {
			t.Fatalf("the stopped forwarder's pull returned %v", err)
		}
		return InterruptedWhileWaiting(err)
	})
}

func TestLogCancelWakesABlockedPull(t *testing.T) {
	restoreLogLevel(t)
	if err := SetLogLevel(LogOff); err != nil { // no forwarder competing for records
		t.Fatal(err)
	}
	UntilWon(t, 200, 3, func(int) bool {
		ctx, cancel := context.WithCancel(context.Background())
		started := make(chan struct{})
		res := make(chan error, 1)
		go func() {
			close(started)
			_, _, err := logNext(ctx)
			res <- err
		}()
		<-started
		LetItBlock()
		cancel()
		err := <-res
		if !errors.Is(err, ErrCancelled) || !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled pull: %v", err)
		}
		return InterruptedWhileWaiting(err)
	})
}
