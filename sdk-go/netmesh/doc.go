// Package netmesh is the Go SDK of Net: a thin cgo layer over libnet's C ABI
// (include/net.h), found through pkg-config ("net").
//
// # Surface
//
// Identities ([Identity]: ed25519 keypairs or public-key-only), permission
// tokens ([Token], 159 bytes, issued, parsed, verified and delegated),
// identity envelopes ([SealEnvelope], [OpenEnvelope], 209 bytes), channel
// names ([ChannelHash], [ValidateChannel]) and the library versions
// ([Version], [ABIVersion]).
//
// # Errors
//
// Every failing call returns an [*Error] carrying the libnet [Status] and the
// detail libnet recorded for it (net_last_error_message, read on the same OS
// thread as the failing call). Each error status has a sentinel (ErrReadOnly,
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
// An [Identity], [Redex], [RedexFile] and [RedexTail] each own a libnet
// handle. Call Close when done; a finalizer frees handles that were never
// closed, as a safety net only. They are safe for concurrent use, including
// Close racing in-flight calls: Close never holds a Go lock across a C call,
// libnet's handle guard makes a racing call fail with [ErrShuttingDown] or
// makes the free wait (up to 5 s) for a call already inside the library.
//
// # Blocking and contexts
//
// The only call that waits for something to happen is [RedexTail.Next],
// which takes a context.Context: it waits inside libnet in slices of at most
// 100 ms and checks the context between them, so cancellation is noticed
// promptly and no goroutine stays blocked in C; closing the tail or its file
// wakes it at once (io.EOF). RedEX file calls do disk I/O (appends, syncs,
// recovery when opening) but do not wait for other parties.
package netmesh
