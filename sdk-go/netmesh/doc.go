// Package netmesh is the Go SDK of Net: a thin cgo layer over libnet's C ABI
// (include/net.h): by default it links the static libnet.a a released module
// carries; -tags netmesh_pkgconfig links a system libnet found through
// pkg-config ("net").
//
// # Surface
//
// Identities ([Identity]: ed25519 keypairs or public-key-only), permission
// tokens ([Token], 159 bytes, issued, parsed, verified and delegated),
// identity envelopes ([SealEnvelope], [OpenEnvelope], 209 bytes), channel
// names ([ChannelHash], [ValidateChannel]), RedEX logs ([Redex]), CortEX
// models ([Model], [Tasks], [Memories]) and NetDB over both ([NetDB]), the
// encrypted mesh with relays and routes ([Mesh]), the
// event bus ([Bus]) and the library versions ([Version], [ABIVersion]).
//
// # Errors
//
// Every failing call returns an [*Error] carrying the libnet [Status] and the
// detail libnet recorded for it (a blocking call's own net_error_t, else
// net_last_error_message read on the same OS thread as the failing call). Each error status has a sentinel (ErrReadOnly,
// ErrTokenExpired, ...) usable with [errors.Is]:
//
//	if errors.Is(err, netmesh.ErrTokenExpired) { ... }
//
// # ABI check
//
// At package initialisation the SDK compares net_abi_version() of the loaded
// libnet (and NET_ABI_VERSION of the header it was compiled against) with the
// ABI version it was written for ([WantABIVersion]). On a mismatch nothing
// panics: every call returns an [*ABIMismatchError] naming both versions, and
// [CheckABI] reports it up front.
//
// # Lifetime and thread safety
//
// Every type wrapping a libnet handle ([Identity], [Redex], [RedexFile],
// [RedexTail], [Model] and so [Tasks] and [Memories], [NetDB], [Watch], [Mesh],
// [MeshStream], [Bus], [RedisStreamDedup]) has Close, which frees the handle,
// wakes every call blocked on it and returns the free's outcome: nil, or an
// error matching [ErrBusy] when calls were still running at libnet's 5 s
// deadline (the handle is then leaked, never freed under them) or releasing
// failed (a bus shutdown that lost events, a model whose file failed to
// close). Close is idempotent and safe to call concurrently; every call
// returns the one free's outcome. They are safe for concurrent use, Close
// included: no Go lock is held across a C call, and libnet's handle guard
// makes a racing call fail with [ErrShuttingDown] or makes the free wait (up
// to 5 s) for a call already inside the library.
//
// A finalizer frees a value garbage collected without Close, as a safety net
// only. It never blocks the finalizer goroutine: it logs a leak warning
// (see [SetLogger]) and hands the free to a new goroutine.
//
// # Blocking and contexts
//
// Every call that waits for something to happen takes a context.Context:
// [RedexTail.Next], [Model.WaitForSeq], [Watch.Next], [Mesh.Connect],
// [Mesh.Accept], [Mesh.Recv], [Mesh.RecvNext], [MeshStream.SendBlocking],
// [Bus.Poll] and [Bus.Flush]. Each makes one call into libnet, given a
// libnet cancellation token (net_cancel_t) that is cancelled from Go when
// the context is done, so nothing polls: the call returns promptly with an
// [*Error] matching both [ErrCancelled] and ctx.Err() (context.Canceled or
// context.DeadlineExceeded). Closing the handle wakes the call too: pull
// calls (Next, Recv) return io.EOF, the others [ErrShuttingDown] (a blocked
// SendBlocking, [ErrMeshStreamClosed]).
//
// # Logging
//
// libnet never calls into Go. Its log records (a free that could not finish,
// a failed fsync, a recovery that dropped entries) are pulled by one
// goroutine and forwarded to log/slog at their level, with the record's
// source as the "libnet" attribute. The level is [LogWarn] unless
// $NETMESH_LOG_LEVEL says otherwise; change it with [SetLogLevel] ([LogOff]
// stops the goroutine) and the destination with [SetLogger] (default
// slog.Default()).
package netmesh
