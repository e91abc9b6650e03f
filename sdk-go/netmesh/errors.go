package netmesh

/*
#include <net.h>
*/
import "C"

import "fmt"

// Status is a libnet status code (net_status_t): NET_OK (0) for success,
// small positive values (NET_TIMEOUT, NET_END, NET_LAGGED) for non-error
// outcomes,
// negative NET_ERR_* values for errors.
//
// Status implements error so that the Err* sentinels below work with
// errors.Is and errors.As; only negative statuses are ever returned as
// errors.
type Status int32

// Every status code of net.h.
const (
	StatusOK                         Status = C.NET_OK
	StatusTimeout                    Status = C.NET_TIMEOUT
	StatusEnd                        Status = C.NET_END
	StatusLagged                     Status = C.NET_LAGGED
	StatusInvalidArgument            Status = C.NET_ERR_INVALID_ARGUMENT
	StatusShuttingDown               Status = C.NET_ERR_SHUTTING_DOWN
	StatusPanic                      Status = C.NET_ERR_PANIC
	StatusInternal                   Status = C.NET_ERR_INTERNAL
	StatusReadOnly                   Status = C.NET_ERR_READ_ONLY
	StatusInvalidPublicKey           Status = C.NET_ERR_INVALID_PUBLIC_KEY
	StatusInvalidSignature           Status = C.NET_ERR_INVALID_SIGNATURE
	StatusTokenInvalidSignature      Status = C.NET_ERR_TOKEN_INVALID_SIGNATURE
	StatusTokenNotYetValid           Status = C.NET_ERR_TOKEN_NOT_YET_VALID
	StatusTokenExpired               Status = C.NET_ERR_TOKEN_EXPIRED
	StatusTokenDelegationExhausted   Status = C.NET_ERR_TOKEN_DELEGATION_EXHAUSTED
	StatusTokenDelegationNotAllowed  Status = C.NET_ERR_TOKEN_DELEGATION_NOT_ALLOWED
	StatusTokenNotAuthorized         Status = C.NET_ERR_TOKEN_NOT_AUTHORIZED
	StatusTokenInvalidFormat         Status = C.NET_ERR_TOKEN_INVALID_FORMAT
	StatusTokenZeroTTL               Status = C.NET_ERR_TOKEN_ZERO_TTL
	StatusEnvelopeUnknownVersion     Status = C.NET_ERR_ENVELOPE_UNKNOWN_VERSION
	StatusEnvelopeInvalidLength      Status = C.NET_ERR_ENVELOPE_INVALID_LENGTH
	StatusEnvelopeInvalidSignerKey   Status = C.NET_ERR_ENVELOPE_INVALID_SIGNER_KEY
	StatusEnvelopeInvalidAttestation Status = C.NET_ERR_ENVELOPE_INVALID_ATTESTATION
	StatusEnvelopeSealOpenFailed     Status = C.NET_ERR_ENVELOPE_SEAL_OPEN_FAILED
	StatusEnvelopeOriginHashMismatch Status = C.NET_ERR_ENVELOPE_ORIGIN_HASH_MISMATCH
	StatusChannelInvalidName         Status = C.NET_ERR_CHANNEL_INVALID_NAME
	StatusRedexIO                    Status = C.NET_ERR_REDEX_IO
	StatusRedexPoisoned              Status = C.NET_ERR_REDEX_POISONED
	StatusRedexSyncFailed            Status = C.NET_ERR_REDEX_SYNC_FAILED
	StatusRedexLocked                Status = C.NET_ERR_REDEX_LOCKED
	StatusRedexClosed                Status = C.NET_ERR_REDEX_CLOSED
	StatusRedexInvalidConfig         Status = C.NET_ERR_REDEX_INVALID_CONFIG
	StatusRedexInlineLength          Status = C.NET_ERR_REDEX_INLINE_LENGTH
	StatusRedexTooLarge              Status = C.NET_ERR_REDEX_TOO_LARGE
	StatusRedexGenerationOverflow    Status = C.NET_ERR_REDEX_GENERATION_OVERFLOW
	StatusRedexNoPersistentDir       Status = C.NET_ERR_REDEX_NO_PERSISTENT_DIR
	StatusRedexCorrupt               Status = C.NET_ERR_REDEX_CORRUPT
	StatusRedexSeqExhausted          Status = C.NET_ERR_REDEX_SEQ_EXHAUSTED
	StatusMeshConfig                 Status = C.NET_ERR_MESH_CONFIG
	StatusMeshIO                     Status = C.NET_ERR_MESH_IO
	StatusMeshHandshakeTimeout       Status = C.NET_ERR_MESH_HANDSHAKE_TIMEOUT
	StatusMeshSessionExists          Status = C.NET_ERR_MESH_SESSION_EXISTS
	StatusMeshUnknownPeer            Status = C.NET_ERR_MESH_UNKNOWN_PEER
	StatusMeshBackpressure           Status = C.NET_ERR_MESH_BACKPRESSURE
	StatusMeshTooLarge               Status = C.NET_ERR_MESH_TOO_LARGE
	StatusMeshIdentityRefused        Status = C.NET_ERR_MESH_IDENTITY_REFUSED
	StatusMeshHandshakeInProgress    Status = C.NET_ERR_MESH_HANDSHAKE_IN_PROGRESS
	StatusMeshStreamClosed           Status = C.NET_ERR_MESH_STREAM_CLOSED
	StatusCortexHalted               Status = C.NET_ERR_CORTEX_HALTED
	StatusCortexInvalidQuery         Status = C.NET_ERR_CORTEX_INVALID_QUERY
	StatusCortexInvalidConfig        Status = C.NET_ERR_CORTEX_INVALID_CONFIG
	StatusCortexSnapshot             Status = C.NET_ERR_CORTEX_SNAPSHOT
	StatusBusConfig                  Status = C.NET_ERR_BUS_CONFIG
	StatusBusBackpressure            Status = C.NET_ERR_BUS_BACKPRESSURE
	StatusBusSampled                 Status = C.NET_ERR_BUS_SAMPLED
	StatusBusUnrouted                Status = C.NET_ERR_BUS_UNROUTED
	StatusBusNotConnected            Status = C.NET_ERR_BUS_NOT_CONNECTED
	StatusBusAdapter                 Status = C.NET_ERR_BUS_ADAPTER
	StatusBusAdapterFatal            Status = C.NET_ERR_BUS_ADAPTER_FATAL
	StatusBusInvalidRequest          Status = C.NET_ERR_BUS_INVALID_REQUEST
	StatusBusProducerState           Status = C.NET_ERR_BUS_PRODUCER_STATE
)

// Sentinel errors, one per error status, for errors.Is:
//
//	if errors.Is(err, netmesh.ErrTokenExpired) { ... }
//
// They are constants of type Status; every *Error unwraps to its Status.
const (
	ErrInvalidArgument            = StatusInvalidArgument
	ErrShuttingDown               = StatusShuttingDown
	ErrPanic                      = StatusPanic
	ErrInternal                   = StatusInternal
	ErrReadOnly                   = StatusReadOnly
	ErrInvalidPublicKey           = StatusInvalidPublicKey
	ErrInvalidSignature           = StatusInvalidSignature
	ErrTokenInvalidSignature      = StatusTokenInvalidSignature
	ErrTokenNotYetValid           = StatusTokenNotYetValid
	ErrTokenExpired               = StatusTokenExpired
	ErrTokenDelegationExhausted   = StatusTokenDelegationExhausted
	ErrTokenDelegationNotAllowed  = StatusTokenDelegationNotAllowed
	ErrTokenNotAuthorized         = StatusTokenNotAuthorized
	ErrTokenInvalidFormat         = StatusTokenInvalidFormat
	ErrTokenZeroTTL               = StatusTokenZeroTTL
	ErrEnvelopeUnknownVersion     = StatusEnvelopeUnknownVersion
	ErrEnvelopeInvalidLength      = StatusEnvelopeInvalidLength
	ErrEnvelopeInvalidSignerKey   = StatusEnvelopeInvalidSignerKey
	ErrEnvelopeInvalidAttestation = StatusEnvelopeInvalidAttestation
	ErrEnvelopeSealOpenFailed     = StatusEnvelopeSealOpenFailed
	ErrEnvelopeOriginHashMismatch = StatusEnvelopeOriginHashMismatch
	ErrChannelInvalidName         = StatusChannelInvalidName
	ErrRedexIO                    = StatusRedexIO
	ErrRedexPoisoned              = StatusRedexPoisoned
	ErrRedexSyncFailed            = StatusRedexSyncFailed
	ErrRedexLocked                = StatusRedexLocked
	ErrRedexClosed                = StatusRedexClosed
	ErrRedexInvalidConfig         = StatusRedexInvalidConfig
	ErrRedexInlineLength          = StatusRedexInlineLength
	ErrRedexTooLarge              = StatusRedexTooLarge
	ErrRedexGenerationOverflow    = StatusRedexGenerationOverflow
	ErrRedexNoPersistentDir       = StatusRedexNoPersistentDir
	ErrRedexCorrupt               = StatusRedexCorrupt
	ErrRedexSeqExhausted          = StatusRedexSeqExhausted
	ErrMeshConfig                 = StatusMeshConfig
	ErrMeshIO                     = StatusMeshIO
	ErrMeshHandshakeTimeout       = StatusMeshHandshakeTimeout
	ErrMeshSessionExists          = StatusMeshSessionExists
	ErrMeshUnknownPeer            = StatusMeshUnknownPeer
	ErrMeshBackpressure           = StatusMeshBackpressure
	ErrMeshTooLarge               = StatusMeshTooLarge
	ErrMeshIdentityRefused        = StatusMeshIdentityRefused
	ErrMeshHandshakeInProgress    = StatusMeshHandshakeInProgress
	ErrMeshStreamClosed           = StatusMeshStreamClosed
	ErrCortexHalted               = StatusCortexHalted
	ErrCortexInvalidQuery         = StatusCortexInvalidQuery
	ErrCortexInvalidConfig        = StatusCortexInvalidConfig
	ErrCortexSnapshot             = StatusCortexSnapshot
	ErrBusConfig                  = StatusBusConfig
	ErrBusBackpressure            = StatusBusBackpressure
	ErrBusSampled                 = StatusBusSampled
	ErrBusUnrouted                = StatusBusUnrouted
	ErrBusNotConnected            = StatusBusNotConnected
	ErrBusAdapter                 = StatusBusAdapter
	ErrBusAdapterFatal            = StatusBusAdapterFatal
	ErrBusInvalidRequest          = StatusBusInvalidRequest
	ErrBusProducerState           = StatusBusProducerState
)

// ErrLagged matches the [*LaggedError] a [RedexTail] returns when entries it
// had not yet read were removed by retention. It is not a failure: the tail
// goes on with the oldest entry still there.
const ErrLagged = StatusLagged

type statusInfo struct {
	name string // the C constant
	text string // a short description
}

var statusInfos = map[Status]statusInfo{
	StatusOK:                         {"NET_OK", "success"},
	StatusTimeout:                    {"NET_TIMEOUT", "timed out"},
	StatusEnd:                        {"NET_END", "end of stream"},
	StatusLagged:                     {"NET_LAGGED", "tail lagged: unread entries were removed by retention"},
	StatusInvalidArgument:            {"NET_ERR_INVALID_ARGUMENT", "invalid argument"},
	StatusShuttingDown:               {"NET_ERR_SHUTTING_DOWN", "handle closed or closing"},
	StatusPanic:                      {"NET_ERR_PANIC", "libnet panicked (a bug: please report it)"},
	StatusInternal:                   {"NET_ERR_INTERNAL", "internal error"},
	StatusReadOnly:                   {"NET_ERR_READ_ONLY", "identity is read-only"},
	StatusInvalidPublicKey:           {"NET_ERR_INVALID_PUBLIC_KEY", "invalid public key"},
	StatusInvalidSignature:           {"NET_ERR_INVALID_SIGNATURE", "invalid signature"},
	StatusTokenInvalidSignature:      {"NET_ERR_TOKEN_INVALID_SIGNATURE", "token signature invalid"},
	StatusTokenNotYetValid:           {"NET_ERR_TOKEN_NOT_YET_VALID", "token not yet valid"},
	StatusTokenExpired:               {"NET_ERR_TOKEN_EXPIRED", "token expired"},
	StatusTokenDelegationExhausted:   {"NET_ERR_TOKEN_DELEGATION_EXHAUSTED", "token delegation depth exhausted"},
	StatusTokenDelegationNotAllowed:  {"NET_ERR_TOKEN_DELEGATION_NOT_ALLOWED", "token scope does not allow delegation"},
	StatusTokenNotAuthorized:         {"NET_ERR_TOKEN_NOT_AUTHORIZED", "signer is not the token's subject"},
	StatusTokenInvalidFormat:         {"NET_ERR_TOKEN_INVALID_FORMAT", "invalid token format"},
	StatusTokenZeroTTL:               {"NET_ERR_TOKEN_ZERO_TTL", "token time-to-live is zero"},
	StatusEnvelopeUnknownVersion:     {"NET_ERR_ENVELOPE_UNKNOWN_VERSION", "unknown envelope version"},
	StatusEnvelopeInvalidLength:      {"NET_ERR_ENVELOPE_INVALID_LENGTH", "invalid envelope length"},
	StatusEnvelopeInvalidSignerKey:   {"NET_ERR_ENVELOPE_INVALID_SIGNER_KEY", "invalid or unexpected envelope signer"},
	StatusEnvelopeInvalidAttestation: {"NET_ERR_ENVELOPE_INVALID_ATTESTATION", "envelope attestation does not verify"},
	StatusEnvelopeSealOpenFailed:     {"NET_ERR_ENVELOPE_SEAL_OPEN_FAILED", "envelope cannot be opened"},
	StatusEnvelopeOriginHashMismatch: {"NET_ERR_ENVELOPE_ORIGIN_HASH_MISMATCH", "envelope origin hash mismatch"},
	StatusChannelInvalidName:         {"NET_ERR_CHANNEL_INVALID_NAME", "invalid channel name"},
	StatusRedexIO:                    {"NET_ERR_REDEX_IO", "RedEX storage error (nothing appended)"},
	StatusRedexPoisoned:              {"NET_ERR_REDEX_POISONED", "RedEX file poisoned by an earlier failure; close and reopen it"},
	StatusRedexSyncFailed:            {"NET_ERR_REDEX_SYNC_FAILED", "RedEX append landed but its fsync failed (file poisoned)"},
	StatusRedexLocked:                {"NET_ERR_REDEX_LOCKED", "RedEX channel directory locked by another writer"},
	StatusRedexClosed:                {"NET_ERR_REDEX_CLOSED", "RedEX file closed"},
	StatusRedexInvalidConfig:         {"NET_ERR_REDEX_INVALID_CONFIG", "invalid RedEX configuration"},
	StatusRedexInlineLength:          {"NET_ERR_REDEX_INLINE_LENGTH", "inline RedEX payload must be exactly 8 bytes"},
	StatusRedexTooLarge:              {"NET_ERR_REDEX_TOO_LARGE", "RedEX append exceeds the file's size limits"},
	StatusRedexGenerationOverflow:    {"NET_ERR_REDEX_GENERATION_OVERFLOW", "RedEX generation counter exhausted"},
	StatusRedexNoPersistentDir:       {"NET_ERR_REDEX_NO_PERSISTENT_DIR", "persistent RedEX file needs a manager with a base directory"},
	StatusRedexCorrupt:               {"NET_ERR_REDEX_CORRUPT", "a file the RedEX channel needs is missing or damaged (nothing changed; restore it or open with repair)"},
	StatusRedexSeqExhausted:          {"NET_ERR_REDEX_SEQ_EXHAUSTED", "RedEX file has no sequence numbers left (nothing appended)"},
	StatusMeshConfig:                 {"NET_ERR_MESH_CONFIG", "invalid mesh configuration"},
	StatusMeshIO:                     {"NET_ERR_MESH_IO", "mesh socket error"},
	StatusMeshHandshakeTimeout:       {"NET_ERR_MESH_HANDSHAKE_TIMEOUT", "mesh handshake got no valid answer in time"},
	StatusMeshSessionExists:          {"NET_ERR_MESH_SESSION_EXISTS", "a live mesh session with that node exists"},
	StatusMeshUnknownPeer:            {"NET_ERR_MESH_UNKNOWN_PEER", "no mesh session with that node"},
	StatusMeshBackpressure:           {"NET_ERR_MESH_BACKPRESSURE", "mesh stream window spent"},
	StatusMeshTooLarge:               {"NET_ERR_MESH_TOO_LARGE", "event or batch too large for the packet or the stream window"},
	StatusMeshIdentityRefused:        {"NET_ERR_MESH_IDENTITY_REFUSED", "mesh peer failed identity binding"},
	StatusMeshHandshakeInProgress:    {"NET_ERR_MESH_HANDSHAKE_IN_PROGRESS", "another mesh handshake with that node is in flight"},
	StatusMeshStreamClosed:           {"NET_ERR_MESH_STREAM_CLOSED", "mesh stream closed"},
	StatusCortexHalted:               {"NET_ERR_CORTEX_HALTED", "CortEX fold has stopped (an event failed under the stop policy, or the model closed)"},
	StatusCortexInvalidQuery:         {"NET_ERR_CORTEX_INVALID_QUERY", "invalid CortEX query filter"},
	StatusCortexInvalidConfig:        {"NET_ERR_CORTEX_INVALID_CONFIG", "invalid CortEX model configuration"},
	StatusCortexSnapshot:             {"NET_ERR_CORTEX_SNAPSHOT", "CortEX snapshot bytes do not decode"},
	StatusBusConfig:                  {"NET_ERR_BUS_CONFIG", "invalid bus configuration"},
	StatusBusBackpressure:            {"NET_ERR_BUS_BACKPRESSURE", "bus shard is full (retry later)"},
	StatusBusSampled:                 {"NET_ERR_BUS_SAMPLED", "event decimated by the Sample backpressure policy"},
	StatusBusUnrouted:                {"NET_ERR_BUS_UNROUTED", "no active bus shard to route the event to"},
	StatusBusNotConnected:            {"NET_ERR_BUS_NOT_CONNECTED", "bus adapter not connected to its server"},
	StatusBusAdapter:                 {"NET_ERR_BUS_ADAPTER", "bus adapter failed (a retry may heal it)"},
	StatusBusAdapterFatal:            {"NET_ERR_BUS_ADAPTER_FATAL", "bus adapter failed for good"},
	StatusBusInvalidRequest:          {"NET_ERR_BUS_INVALID_REQUEST", "invalid bus poll request"},
	StatusBusProducerState:           {"NET_ERR_BUS_PRODUCER_STATE", "bus producer state file could not be read or written"},
}

// String is the C name of the status, e.g. "NET_ERR_TOKEN_EXPIRED".
func (s Status) String() string {
	if info, ok := statusInfos[s]; ok {
		return info.name
	}
	// A code this SDK predates: ask libnet (net_status_name), which also
	// knows codes added after this SDK was written.
	name := C.GoString(C.net_status_name(C.int32_t(s)))
	if name == "NET_UNKNOWN_STATUS" {
		return fmt.Sprintf("NET_UNKNOWN_STATUS(%d)", int32(s))
	}
	return name
}

// Error describes the status, e.g. "netmesh: token expired (NET_ERR_TOKEN_EXPIRED)".
func (s Status) Error() string {
	if info, ok := statusInfos[s]; ok {
		return "netmesh: " + info.text + " (" + info.name + ")"
	}
	return fmt.Sprintf("netmesh: unknown status %d", int32(s))
}

// Error is a failed libnet call: the function, its status and the detail
// libnet recorded (net_last_error_message on the calling thread).
//
// errors.Is(err, ErrX) matches on Status; errors.As(err, &e) with
// e *Error gives the details.
type Error struct {
	Op      string // the C function that failed, e.g. "net_identity_sign"
	Status  Status // the negative status it returned
	Message string // libnet's detail (may be empty)
}

func (e *Error) Error() string {
	s := "netmesh: " + e.Op + ": "
	if info, ok := statusInfos[e.Status]; ok {
		s += info.text + " (" + info.name + ")"
	} else {
		s += fmt.Sprintf("status %d", int32(e.Status))
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap returns the Status, so that errors.Is(err, ErrX) works.
func (e *Error) Unwrap() error { return e.Status }
