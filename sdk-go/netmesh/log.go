package netmesh

/*
#include <net.h>
*/
import "C"

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
)

// libnet never calls into Go. Its log records (a free that could not finish,
// a failed fsync, a recovery that dropped entries, ...) are queued inside
// libnet once a level is set (net_log_set_level) and pulled one at a time
// with a blocking net_log_next. When the package loads it sets the level to
// LogWarn (or the level named by $NETMESH_LOG_LEVEL) and starts one
// goroutine that pulls the records and forwards each one to log/slog.

// LogLevel is the level from which libnet's log records are forwarded
// (NET_LOG_OFF .. NET_LOG_TRACE).
type LogLevel uint32

// Log levels, from none to everything.
const (
	LogOff   LogLevel = C.NET_LOG_OFF   // nothing is queued or forwarded
	LogError LogLevel = C.NET_LOG_ERROR // errors only
	LogWarn  LogLevel = C.NET_LOG_WARN  // warnings and errors (the default)
	LogInfo  LogLevel = C.NET_LOG_INFO  // informational records too
	LogDebug LogLevel = C.NET_LOG_DEBUG // debug records too
	LogTrace LogLevel = C.NET_LOG_TRACE // everything
)

// String is the level's name: "off", "error", "warn", "info", "debug" or
// "trace".
func (l LogLevel) String() string {
	switch l {
	case LogOff:
		return "off"
	case LogError:
		return "error"
	case LogWarn:
		return "warn"
	case LogInfo:
		return "info"
	case LogDebug:
		return "debug"
	case LogTrace:
		return "trace"
	}
	return fmt.Sprintf("LogLevel(%d)", uint32(l))
}

// ParseLogLevel parses a level name as String gives it (case-insensitive;
// "warning" is "warn").
func ParseLogLevel(s string) (LogLevel, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "off", "none":
		return LogOff, nil
	case "error":
		return LogError, nil
	case "warn", "warning":
		return LogWarn, nil
	case "info":
		return LogInfo, nil
	case "debug":
		return LogDebug, nil
	case "trace":
		return LogTrace, nil
	}
	return LogOff, fmt.Errorf("netmesh: unknown log level %q (want off, error, warn, info, debug or trace)", s)
}

// SlogLevel is the log/slog level a record of this level is forwarded at
// (trace is slog.LevelDebug-4).
func (l LogLevel) SlogLevel() slog.Level {
	switch l {
	case LogError:
		return slog.LevelError
	case LogWarn:
		return slog.LevelWarn
	case LogInfo:
		return slog.LevelInfo
	case LogDebug:
		return slog.LevelDebug
	default:
		return slog.LevelDebug - 4
	}
}

// LogLevelEnv is the environment variable read when the package loads: the
// initial level (off, error, warn, info, debug or trace; default warn).
const LogLevelEnv = "NETMESH_LOG_LEVEL"

var sdkLogger atomic.Pointer[slog.Logger]

// SetLogger sets where libnet's records and the SDK's own warnings (a handle
// garbage collected without Close) go. nil (the default) means
// slog.Default(), looked up at each record, so slog.SetDefault applies.
func SetLogger(l *slog.Logger) { sdkLogger.Store(l) }

func logger() *slog.Logger {
	if l := sdkLogger.Load(); l != nil {
		return l
	}
	return slog.Default()
}

// forwarder is the goroutine pulling libnet's records.
var forwarder struct {
	mu    sync.Mutex
	level LogLevel
	stop  func() // stops the running forwarder and waits for it; nil when none runs
	// lastExit is the error that ended the last forwarder's pull (for tests).
	lastExit error
}

// SetLogLevel sets the level from which libnet queues log records
// (net_log_set_level) and forwards them to the logger (SetLogger). LogOff
// stops the forwarding goroutine (waking its blocked pull); any other level
// starts it if it is not running. The goroutine never keeps the process
// alive.
func SetLogLevel(level LogLevel) error {
	if err := check("net_log_set_level", func() C.net_status_t {
		return C.net_log_set_level(C.uint32_t(level))
	}); err != nil {
		return err
	}
	forwarder.mu.Lock()
	defer forwarder.mu.Unlock()
	forwarder.level = level
	switch {
	case level == LogOff && forwarder.stop != nil:
		forwarder.stop()
		forwarder.stop = nil
	case level != LogOff && forwarder.stop == nil:
		forwarder.stop = startForwarder()
	}
	return nil
}

// CurrentLogLevel is the level last set (by SetLogLevel or at load time).
func CurrentLogLevel() LogLevel {
	forwarder.mu.Lock()
	defer forwarder.mu.Unlock()
	return forwarder.level
}

// startForwarder starts the pull loop under a context of its own; the
// returned function cancels it (its blocked net_log_next returns
// NET_ERR_CANCELLED) and waits until the goroutine has left.
func startForwarder() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			level, text, err := logNext(ctx)
			if err != nil {
				forwarder.lastExit = err // read by tests after stop returns
				return
			}
			if text != "" {
				forward(level, text)
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// logNext pulls one record (net_log_next), waiting until one comes or ctx is
// done. An empty text with a nil error is a timeout (never, with
// NET_WAIT_FOREVER).
func logNext(ctx context.Context) (LogLevel, string, error) {
	var level C.uint32_t
	var text C.net_bytes_t
	st, err := blocking(ctx, "net_log_next", func(cancel *C.net_cancel_t, errOut *C.net_error_t) C.net_status_t {
		return C.net_log_next(C.uint32_t(waitForever), &level, &text, cancel, errOut)
	})
	if err != nil || st != StatusOK {
		return 0, "", err
	}
	return LogLevel(level), string(takeBytes(&text)), nil
}

// forward hands one record ("target: message key=value ...") to the logger
// at its slog level, the target as an attribute.
func forward(level LogLevel, text string) {
	target, msg, ok := strings.Cut(text, ": ")
	if !ok {
		target, msg = "", text
	}
	l := logger()
	lvl := level.SlogLevel()
	if !l.Enabled(context.Background(), lvl) {
		return
	}
	l.Log(context.Background(), lvl, msg, slog.String("libnet", target))
}

func init() {
	if abiErr != nil {
		return
	}
	level := LogWarn
	if v, ok := os.LookupEnv(LogLevelEnv); ok && v != "" {
		parsed, err := ParseLogLevel(v)
		if err != nil {
			logger().Warn(err.Error() + "; using warn")
		} else {
			level = parsed
		}
	}
	if err := SetLogLevel(level); err != nil {
		logger().Warn("netmesh: enabling libnet's log records failed", "err", err)
	}
}
