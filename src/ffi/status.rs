//! `net_status_t`: the one list of status codes every entry point returns.
//!
//! `NET_OK` is 0, small positive values are non-error outcomes, negative values
//! are errors. The numbers are part of the ABI: never renumber, only add.
//! Ranges: -1..-9 generic, -10..-19 identity, -20..-29 tokens, -30..-39
//! envelopes, -40..-49 channels; later areas take their own blocks of 100
//! (RedEX -100, mesh -200, CortEX -300, bus -400, compute -500, behavior -600: rules
//! -600, safety -620, load balancing -640).

use std::ffi::{CStr, c_char};

/// Status code returned by every fallible `net_*` call.
#[allow(non_camel_case_types)]
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum net_status_t {
    /// Success.
    NET_OK = 0,
    /// A blocking call reached its timeout without a result (not an error).
    NET_TIMEOUT = 1,
    /// A stream has no more items and never will (not an error).
    NET_END = 2,
    /// A reader fell behind and entries it had not read were removed; the
    /// call reports where delivery resumes (not an error).
    NET_LAGGED = 3,
    /// A pointer was NULL or misaligned, a length was wrong, a string was not
    /// UTF-8, or a handle was of the wrong type. The message names the argument.
    NET_ERR_INVALID_ARGUMENT = -1,
    /// The handle has been freed (or is being freed).
    NET_ERR_SHUTTING_DOWN = -2,
    /// A bug in libnet panicked; the call had no effect. Please report it.
    NET_ERR_PANIC = -3,
    /// An internal invariant failed; the message says which.
    NET_ERR_INTERNAL = -4,
    /// The call was cancelled through its `net_cancel_t` before it finished;
    /// it had no effect beyond what its documentation says of cancellation.
    NET_ERR_CANCELLED = -5,
    /// A free or close could not finish: calls on the handle were still
    /// running at the deadline (its resources were leaked rather than freed
    /// under them) or releasing them failed; the message says which.
    NET_ERR_BUSY = -6,
    /// The identity holds only a public key and cannot sign or be sealed.
    NET_ERR_READ_ONLY = -10,
    /// 32 bytes that are not a valid ed25519 public key.
    NET_ERR_INVALID_PUBLIC_KEY = -11,
    /// A signature did not verify.
    NET_ERR_INVALID_SIGNATURE = -12,
    /// A token's signature does not verify under its issuer.
    NET_ERR_TOKEN_INVALID_SIGNATURE = -20,
    /// A token is not live yet (`now < not_before`).
    NET_ERR_TOKEN_NOT_YET_VALID = -21,
    /// A token has expired (`now >= not_after`).
    NET_ERR_TOKEN_EXPIRED = -22,
    /// A token's delegation depth is 0.
    NET_ERR_TOKEN_DELEGATION_EXHAUSTED = -23,
    /// A token's scope lacks DELEGATE.
    NET_ERR_TOKEN_DELEGATION_NOT_ALLOWED = -24,
    /// The signer is not the token's subject.
    NET_ERR_TOKEN_NOT_AUTHORIZED = -25,
    /// The bytes are not a 159-byte token.
    NET_ERR_TOKEN_INVALID_FORMAT = -26,
    /// A token was requested with a zero time-to-live.
    NET_ERR_TOKEN_ZERO_TTL = -27,
    /// The envelope's leading version byte is not 1.
    NET_ERR_ENVELOPE_UNKNOWN_VERSION = -30,
    /// The bytes are not a 209-byte envelope.
    NET_ERR_ENVELOPE_INVALID_LENGTH = -31,
    /// The envelope's signer is not the expected one or not a valid key.
    NET_ERR_ENVELOPE_INVALID_SIGNER_KEY = -32,
    /// The envelope's attestation does not verify (tampered, or another chain link).
    NET_ERR_ENVELOPE_INVALID_ATTESTATION = -33,
    /// The envelope cannot be opened with this key, or was altered.
    NET_ERR_ENVELOPE_SEAL_OPEN_FAILED = -34,
    /// The opened identity's origin hash is not the expected one.
    NET_ERR_ENVELOPE_ORIGIN_HASH_MISMATCH = -35,
    /// A channel name breaks the naming rules; the message says which.
    NET_ERR_CHANNEL_INVALID_NAME = -40,
    /// The publisher refused the subscription: no token, or one that does
    /// not authorize it, or capabilities its filter rejects; or this node
    /// fails its own channel's publish policy.
    NET_ERR_CHANNEL_UNAUTHORIZED = -41,
    /// The channel is not registered at the publisher (subscribe) or on this
    /// node (publish).
    NET_ERR_CHANNEL_UNKNOWN = -42,
    /// The publisher throttles this node's requests, or the channel's
    /// `max_rate_pps` is spent (nothing was published).
    NET_ERR_CHANNEL_RATE_LIMITED = -43,
    /// The publisher refused the subscription: this node holds its most
    /// channels there, or the channel has `max_subscribers` already (v0.11
    /// acks both with one reason).
    NET_ERR_CHANNEL_FULL = -44,
    /// Another channel name with the same 16-bit hash is registered here, or
    /// subscribed to at that publisher; its events would be indistinguishable.
    NET_ERR_CHANNEL_HASH_COLLISION = -45,
    /// Too many subscribe and unsubscribe requests are waiting for acks;
    /// retry later.
    NET_ERR_CHANNEL_TOO_MANY_PENDING = -46,
    /// The channel configuration is invalid; the message names the key.
    NET_ERR_CHANNEL_CONFIG = -47,
    /// The publisher did not answer the subscribe or unsubscribe within the
    /// membership ack timeout (it may be down, or a v0.11 node without the
    /// channel machinery).
    NET_ERR_CHANNEL_NO_ANSWER = -48,
    /// A RedEX file operation failed in the storage layer (nothing appended).
    NET_ERR_REDEX_IO = -100,
    /// The RedEX file refuses appends after a failed fsync or an unrecoverable
    /// partial write; close and reopen it.
    NET_ERR_REDEX_POISONED = -101,
    /// The append landed but its required fsync failed; the file is poisoned.
    NET_ERR_REDEX_SYNC_FAILED = -102,
    /// Another writer holds the RedEX channel directory.
    NET_ERR_REDEX_LOCKED = -103,
    /// The RedEX file has been closed.
    NET_ERR_REDEX_CLOSED = -104,
    /// The RedEX configuration is invalid; the message names the key.
    NET_ERR_REDEX_INVALID_CONFIG = -105,
    /// `append_inline` needs exactly 8 bytes.
    NET_ERR_REDEX_INLINE_LENGTH = -106,
    /// The append would exceed the file's size limits (4 GiB offsets, 3 GiB heap).
    NET_ERR_REDEX_TOO_LARGE = -107,
    /// The RedEX generation counter is exhausted; no further compaction.
    NET_ERR_REDEX_GENERATION_OVERFLOW = -108,
    /// A persistent RedEX file needs a manager with a base directory.
    NET_ERR_REDEX_NO_PERSISTENT_DIR = -109,
    /// A file the RedEX channel needs is missing or damaged beyond what
    /// recovery may decide alone; nothing was changed. The message names the
    /// file. Restore it, or open with `"repair": true`.
    NET_ERR_REDEX_CORRUPT = -110,
    /// The RedEX file has no sequence numbers left (below 2^63); nothing
    /// was appended.
    NET_ERR_REDEX_SEQ_EXHAUSTED = -111,
    /// The mesh configuration is invalid; the message names the key.
    NET_ERR_MESH_CONFIG = -200,
    /// A mesh socket operation failed (bind, send).
    NET_ERR_MESH_IO = -201,
    /// No valid handshake answer in time (every attempt): wrong address,
    /// key, node_id or PSK, or the peer is down.
    NET_ERR_MESH_HANDSHAKE_TIMEOUT = -202,
    /// A live session with that node exists (re-keying is refused while it
    /// is inside its idle window), or a concurrent handshake with it won.
    NET_ERR_MESH_SESSION_EXISTS = -203,
    /// No session with that node.
    NET_ERR_MESH_UNKNOWN_PEER = -204,
    /// The stream's send window is spent: retry after a grant, or use
    /// `net_mesh_stream_send_blocking`.
    NET_ERR_MESH_BACKPRESSURE = -205,
    /// An event too large for a packet, or a batch larger than the stream's
    /// whole window (use `net_mesh_stream_send_blocking`).
    NET_ERR_MESH_TOO_LARGE = -206,
    /// The peer failed identity binding (a different entity than the one
    /// pinned for its node_id, or none when one is required).
    NET_ERR_MESH_IDENTITY_REFUSED = -207,
    /// Another connect to the same node or address is in flight.
    NET_ERR_MESH_HANDSHAKE_IN_PROGRESS = -208,
    /// The stream was closed (its handle freed) while the call waited.
    NET_ERR_MESH_STREAM_CLOSED = -209,
    /// No route to the node (`net_mesh_connect_routed`), or the relay named
    /// is not a direct peer (`net_mesh_connect_via`).
    NET_ERR_MESH_NO_ROUTE = -210,
    /// A capability set or query is invalid (the message names the key), or
    /// the set does not fit one announcement.
    NET_ERR_MESH_CAPABILITIES = -211,
    /// The CortEX fold is not running (halted on an error under the stop
    /// policy, or closed); reopen the model.
    NET_ERR_CORTEX_HALTED = -300,
    /// A CortEX query filter is invalid; the message names the key.
    NET_ERR_CORTEX_INVALID_QUERY = -301,
    /// A CortEX model configuration is invalid; the message names the key.
    NET_ERR_CORTEX_INVALID_CONFIG = -302,
    /// A CortEX snapshot does not decode.
    NET_ERR_CORTEX_SNAPSHOT = -303,
    /// The bus configuration is invalid; the message names the key.
    NET_ERR_BUS_CONFIG = -400,
    /// The shard's buffer is full: the event was not queued (retry later).
    NET_ERR_BUS_BACKPRESSURE = -401,
    /// The Sample backpressure policy decimated the event on purpose.
    NET_ERR_BUS_SAMPLED = -402,
    /// No shard is active to take the event (scaling in progress).
    NET_ERR_BUS_UNROUTED = -403,
    /// The adapter has no connection to its server.
    NET_ERR_BUS_NOT_CONNECTED = -404,
    /// The adapter failed in a way a retry may heal (timeout, lost
    /// connection); the message carries the cause.
    NET_ERR_BUS_ADAPTER = -405,
    /// The adapter failed for good (malformed remote data, an id that does
    /// not fit, a closed log); the message carries the cause.
    NET_ERR_BUS_ADAPTER_FATAL = -406,
    /// A poll request is invalid (JSON, cursor, filter or limit); the
    /// message says which.
    NET_ERR_BUS_INVALID_REQUEST = -407,
    /// The producer state file could not be read or written.
    NET_ERR_BUS_PRODUCER_STATE = -408,
    /// No daemon with that origin runs here (it may have migrated away), or
    /// no factory expects it.
    NET_ERR_COMPUTE_NOT_FOUND = -500,
    /// The daemon was replaced or stopped while the call waited for it; the
    /// call did nothing. Look it up again.
    NET_ERR_COMPUTE_STALE = -501,
    /// A daemon kind, daemon or expected origin with that name is already
    /// registered; the existing one was kept.
    NET_ERR_COMPUTE_ALREADY_REGISTERED = -502,
    /// The daemon failed: its process, snapshot or restore reported an error,
    /// or it did not answer its work item in time. The message says which.
    NET_ERR_COMPUTE_DAEMON = -503,
    /// No daemon kind with that name is registered on this runtime.
    NET_ERR_COMPUTE_UNKNOWN_KIND = -504,
    /// A migration of that daemon is already orchestrated here.
    NET_ERR_COMPUTE_ALREADY_MIGRATING = -505,
    /// No migration of that daemon is known here.
    NET_ERR_COMPUTE_NO_MIGRATION = -506,
    /// A migration message could not be sent (no session with the node), or
    /// the node already has a compute runtime.
    NET_ERR_COMPUTE_TRANSPORT = -507,
    /// The migration's event buffer is full; the event was not taken.
    NET_ERR_COMPUTE_BUFFER_FULL = -508,
    /// The compute configuration is invalid; the message names the key.
    NET_ERR_COMPUTE_CONFIG = -509,
    /// The work item is no longer awaited: answered already, or its daemon
    /// call stopped waiting (its timeout passed). The answer was dropped.
    NET_ERR_COMPUTE_WORK_EXPIRED = -510,
    /// No node can take a group member: none matches the kind's requirements
    /// outside the nodes the group already uses or knows to have failed.
    /// Nothing the call placed stays spawned.
    NET_ERR_COMPUTE_GROUP_PLACEMENT = -511,
    /// No member of the group can take the event (all unhealthy); report a
    /// failed node with `net_compute_group_node_failed` to get it replaced.
    NET_ERR_COMPUTE_GROUP_NO_HEALTHY_MEMBER = -512,
    /// The group does not know that node (it is not one of the group's
    /// compute runtimes).
    NET_ERR_COMPUTE_GROUP_UNKNOWN_NODE = -513,
    /// A standby group's daemon kind is stateless: there is no state to sync.
    NET_ERR_COMPUTE_GROUP_STATELESS = -514,
    /// A promoted standby failed to replay a logged event; the new active is in
    /// place and the rest of the log stays pending (promote again resumes).
    NET_ERR_COMPUTE_GROUP_REPLAY = -515,
    /// The operation does not apply to this kind of group (e.g. scaling a
    /// standby group, promoting in a replica group).
    NET_ERR_COMPUTE_GROUP_WRONG_KIND = -516,
    /// The daemon's identity cannot travel with the migration (the target's
    /// static key is not known here, or the keypair is public-only); nothing
    /// was started.
    NET_ERR_COMPUTE_IDENTITY_TRANSPORT = -517,
    /// Moving a group member with the migration protocol failed; it stays on
    /// its node (the message has the failure every side agreed on).
    NET_ERR_COMPUTE_GROUP_MIGRATION = -518,
    /// No node known here may take the daemon: none in the capability index
    /// announces `subprotocol:0x0500` and matches its requirements.
    NET_ERR_COMPUTE_NO_TARGET = -519,
    /// A rule set, rule or context is invalid (malformed JSON, an unknown key,
    /// a bad operand or regex, a duplicate id); the message names it.
    NET_ERR_RULES_INVALID = -600,
    /// No rule has that id.
    NET_ERR_RULES_UNKNOWN_RULE = -601,
    /// A safety configuration, limits or request is invalid; the message
    /// names the key or pattern.
    NET_ERR_SAFETY_CONFIG = -620,
    /// The safety kill switch is engaged; nothing was admitted.
    NET_ERR_SAFETY_KILL_SWITCH = -621,
    /// A safety cap is reached (concurrency, memory, tokens per request,
    /// hourly cost, sources tracked); retry after a permit is released.
    NET_ERR_SAFETY_LIMIT = -622,
    /// A safety rate is reached (global or per-source requests per minute,
    /// tokens per minute); retry later.
    NET_ERR_SAFETY_RATE_LIMITED = -623,
    /// The content breaks a Block policy (a blocked pattern, a missing
    /// required one, or too large); the message names the policy.
    NET_ERR_SAFETY_CONTENT = -624,
    /// A load-balancer configuration, endpoint or request is invalid; the
    /// message names the key.
    NET_ERR_LB_CONFIG = -640,
    /// No endpoint can take the request (none added, none healthy or under
    /// its connection cap, none carrying the required tags or in the zone).
    NET_ERR_LB_NO_ENDPOINT = -641,
    /// An endpoint with that id is already in the balancer.
    NET_ERR_LB_DUPLICATE_ENDPOINT = -642,
    /// No endpoint has that id.
    NET_ERR_LB_UNKNOWN_ENDPOINT = -643,
}

impl net_status_t {
    /// Every status code, for tests and parity checks.
    ///
    /// cbindgen:ignore
    pub const ALL: &'static [net_status_t] = &[
        Self::NET_OK,
        Self::NET_TIMEOUT,
        Self::NET_END,
        Self::NET_LAGGED,
        Self::NET_ERR_INVALID_ARGUMENT,
        Self::NET_ERR_SHUTTING_DOWN,
        Self::NET_ERR_PANIC,
        Self::NET_ERR_INTERNAL,
        Self::NET_ERR_CANCELLED,
        Self::NET_ERR_BUSY,
        Self::NET_ERR_READ_ONLY,
        Self::NET_ERR_INVALID_PUBLIC_KEY,
        Self::NET_ERR_INVALID_SIGNATURE,
        Self::NET_ERR_TOKEN_INVALID_SIGNATURE,
        Self::NET_ERR_TOKEN_NOT_YET_VALID,
        Self::NET_ERR_TOKEN_EXPIRED,
        Self::NET_ERR_TOKEN_DELEGATION_EXHAUSTED,
        Self::NET_ERR_TOKEN_DELEGATION_NOT_ALLOWED,
        Self::NET_ERR_TOKEN_NOT_AUTHORIZED,
        Self::NET_ERR_TOKEN_INVALID_FORMAT,
        Self::NET_ERR_TOKEN_ZERO_TTL,
        Self::NET_ERR_ENVELOPE_UNKNOWN_VERSION,
        Self::NET_ERR_ENVELOPE_INVALID_LENGTH,
        Self::NET_ERR_ENVELOPE_INVALID_SIGNER_KEY,
        Self::NET_ERR_ENVELOPE_INVALID_ATTESTATION,
        Self::NET_ERR_ENVELOPE_SEAL_OPEN_FAILED,
        Self::NET_ERR_ENVELOPE_ORIGIN_HASH_MISMATCH,
        Self::NET_ERR_CHANNEL_INVALID_NAME,
        Self::NET_ERR_CHANNEL_UNAUTHORIZED,
        Self::NET_ERR_CHANNEL_UNKNOWN,
        Self::NET_ERR_CHANNEL_RATE_LIMITED,
        Self::NET_ERR_CHANNEL_FULL,
        Self::NET_ERR_CHANNEL_HASH_COLLISION,
        Self::NET_ERR_CHANNEL_TOO_MANY_PENDING,
        Self::NET_ERR_CHANNEL_CONFIG,
        Self::NET_ERR_CHANNEL_NO_ANSWER,
        Self::NET_ERR_REDEX_IO,
        Self::NET_ERR_REDEX_POISONED,
        Self::NET_ERR_REDEX_SYNC_FAILED,
        Self::NET_ERR_REDEX_LOCKED,
        Self::NET_ERR_REDEX_CLOSED,
        Self::NET_ERR_REDEX_INVALID_CONFIG,
        Self::NET_ERR_REDEX_INLINE_LENGTH,
        Self::NET_ERR_REDEX_TOO_LARGE,
        Self::NET_ERR_REDEX_GENERATION_OVERFLOW,
        Self::NET_ERR_REDEX_NO_PERSISTENT_DIR,
        Self::NET_ERR_REDEX_CORRUPT,
        Self::NET_ERR_REDEX_SEQ_EXHAUSTED,
        Self::NET_ERR_MESH_CONFIG,
        Self::NET_ERR_MESH_IO,
        Self::NET_ERR_MESH_HANDSHAKE_TIMEOUT,
        Self::NET_ERR_MESH_SESSION_EXISTS,
        Self::NET_ERR_MESH_UNKNOWN_PEER,
        Self::NET_ERR_MESH_BACKPRESSURE,
        Self::NET_ERR_MESH_TOO_LARGE,
        Self::NET_ERR_MESH_IDENTITY_REFUSED,
        Self::NET_ERR_MESH_HANDSHAKE_IN_PROGRESS,
        Self::NET_ERR_MESH_STREAM_CLOSED,
        Self::NET_ERR_MESH_NO_ROUTE,
        Self::NET_ERR_MESH_CAPABILITIES,
        Self::NET_ERR_CORTEX_HALTED,
        Self::NET_ERR_CORTEX_INVALID_QUERY,
        Self::NET_ERR_CORTEX_INVALID_CONFIG,
        Self::NET_ERR_CORTEX_SNAPSHOT,
        Self::NET_ERR_BUS_CONFIG,
        Self::NET_ERR_BUS_BACKPRESSURE,
        Self::NET_ERR_BUS_SAMPLED,
        Self::NET_ERR_BUS_UNROUTED,
        Self::NET_ERR_BUS_NOT_CONNECTED,
        Self::NET_ERR_BUS_ADAPTER,
        Self::NET_ERR_BUS_ADAPTER_FATAL,
        Self::NET_ERR_BUS_INVALID_REQUEST,
        Self::NET_ERR_BUS_PRODUCER_STATE,
        Self::NET_ERR_COMPUTE_NOT_FOUND,
        Self::NET_ERR_COMPUTE_STALE,
        Self::NET_ERR_COMPUTE_ALREADY_REGISTERED,
        Self::NET_ERR_COMPUTE_DAEMON,
        Self::NET_ERR_COMPUTE_UNKNOWN_KIND,
        Self::NET_ERR_COMPUTE_ALREADY_MIGRATING,
        Self::NET_ERR_COMPUTE_NO_MIGRATION,
        Self::NET_ERR_COMPUTE_TRANSPORT,
        Self::NET_ERR_COMPUTE_BUFFER_FULL,
        Self::NET_ERR_COMPUTE_CONFIG,
        Self::NET_ERR_COMPUTE_WORK_EXPIRED,
        Self::NET_ERR_COMPUTE_GROUP_PLACEMENT,
        Self::NET_ERR_COMPUTE_GROUP_NO_HEALTHY_MEMBER,
        Self::NET_ERR_COMPUTE_GROUP_UNKNOWN_NODE,
        Self::NET_ERR_COMPUTE_GROUP_STATELESS,
        Self::NET_ERR_COMPUTE_GROUP_REPLAY,
        Self::NET_ERR_COMPUTE_GROUP_WRONG_KIND,
        Self::NET_ERR_COMPUTE_IDENTITY_TRANSPORT,
        Self::NET_ERR_COMPUTE_GROUP_MIGRATION,
        Self::NET_ERR_COMPUTE_NO_TARGET,
        Self::NET_ERR_RULES_INVALID,
        Self::NET_ERR_RULES_UNKNOWN_RULE,
        Self::NET_ERR_SAFETY_CONFIG,
        Self::NET_ERR_SAFETY_KILL_SWITCH,
        Self::NET_ERR_SAFETY_LIMIT,
        Self::NET_ERR_SAFETY_RATE_LIMITED,
        Self::NET_ERR_SAFETY_CONTENT,
        Self::NET_ERR_LB_CONFIG,
        Self::NET_ERR_LB_NO_ENDPOINT,
        Self::NET_ERR_LB_DUPLICATE_ENDPOINT,
        Self::NET_ERR_LB_UNKNOWN_ENDPOINT,
    ];

    /// The status with this numeric code, if there is one.
    pub fn from_code(code: i32) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.code() == code)
    }

    /// The C name of the status, e.g. `"NET_ERR_TOKEN_EXPIRED"`.
    pub fn name(self) -> &'static str {
        self.c_name().to_str().unwrap_or("NET_UNKNOWN_STATUS")
    }

    /// [`name`](Self::name) as a C string.
    pub const fn c_name(self) -> &'static CStr {
        match self {
            Self::NET_OK => c"NET_OK",
            Self::NET_TIMEOUT => c"NET_TIMEOUT",
            Self::NET_END => c"NET_END",
            Self::NET_LAGGED => c"NET_LAGGED",
            Self::NET_ERR_INVALID_ARGUMENT => c"NET_ERR_INVALID_ARGUMENT",
            Self::NET_ERR_SHUTTING_DOWN => c"NET_ERR_SHUTTING_DOWN",
            Self::NET_ERR_PANIC => c"NET_ERR_PANIC",
            Self::NET_ERR_INTERNAL => c"NET_ERR_INTERNAL",
            Self::NET_ERR_CANCELLED => c"NET_ERR_CANCELLED",
            Self::NET_ERR_BUSY => c"NET_ERR_BUSY",
            Self::NET_ERR_READ_ONLY => c"NET_ERR_READ_ONLY",
            Self::NET_ERR_INVALID_PUBLIC_KEY => c"NET_ERR_INVALID_PUBLIC_KEY",
            Self::NET_ERR_INVALID_SIGNATURE => c"NET_ERR_INVALID_SIGNATURE",
            Self::NET_ERR_TOKEN_INVALID_SIGNATURE => c"NET_ERR_TOKEN_INVALID_SIGNATURE",
            Self::NET_ERR_TOKEN_NOT_YET_VALID => c"NET_ERR_TOKEN_NOT_YET_VALID",
            Self::NET_ERR_TOKEN_EXPIRED => c"NET_ERR_TOKEN_EXPIRED",
            Self::NET_ERR_TOKEN_DELEGATION_EXHAUSTED => c"NET_ERR_TOKEN_DELEGATION_EXHAUSTED",
            Self::NET_ERR_TOKEN_DELEGATION_NOT_ALLOWED => c"NET_ERR_TOKEN_DELEGATION_NOT_ALLOWED",
            Self::NET_ERR_TOKEN_NOT_AUTHORIZED => c"NET_ERR_TOKEN_NOT_AUTHORIZED",
            Self::NET_ERR_TOKEN_INVALID_FORMAT => c"NET_ERR_TOKEN_INVALID_FORMAT",
            Self::NET_ERR_TOKEN_ZERO_TTL => c"NET_ERR_TOKEN_ZERO_TTL",
            Self::NET_ERR_ENVELOPE_UNKNOWN_VERSION => c"NET_ERR_ENVELOPE_UNKNOWN_VERSION",
            Self::NET_ERR_ENVELOPE_INVALID_LENGTH => c"NET_ERR_ENVELOPE_INVALID_LENGTH",
            Self::NET_ERR_ENVELOPE_INVALID_SIGNER_KEY => c"NET_ERR_ENVELOPE_INVALID_SIGNER_KEY",
            Self::NET_ERR_ENVELOPE_INVALID_ATTESTATION => c"NET_ERR_ENVELOPE_INVALID_ATTESTATION",
            Self::NET_ERR_ENVELOPE_SEAL_OPEN_FAILED => c"NET_ERR_ENVELOPE_SEAL_OPEN_FAILED",
            Self::NET_ERR_ENVELOPE_ORIGIN_HASH_MISMATCH => c"NET_ERR_ENVELOPE_ORIGIN_HASH_MISMATCH",
            Self::NET_ERR_CHANNEL_INVALID_NAME => c"NET_ERR_CHANNEL_INVALID_NAME",
            Self::NET_ERR_CHANNEL_UNAUTHORIZED => c"NET_ERR_CHANNEL_UNAUTHORIZED",
            Self::NET_ERR_CHANNEL_UNKNOWN => c"NET_ERR_CHANNEL_UNKNOWN",
            Self::NET_ERR_CHANNEL_RATE_LIMITED => c"NET_ERR_CHANNEL_RATE_LIMITED",
            Self::NET_ERR_CHANNEL_FULL => c"NET_ERR_CHANNEL_FULL",
            Self::NET_ERR_CHANNEL_HASH_COLLISION => c"NET_ERR_CHANNEL_HASH_COLLISION",
            Self::NET_ERR_CHANNEL_TOO_MANY_PENDING => c"NET_ERR_CHANNEL_TOO_MANY_PENDING",
            Self::NET_ERR_CHANNEL_CONFIG => c"NET_ERR_CHANNEL_CONFIG",
            Self::NET_ERR_CHANNEL_NO_ANSWER => c"NET_ERR_CHANNEL_NO_ANSWER",
            Self::NET_ERR_REDEX_IO => c"NET_ERR_REDEX_IO",
            Self::NET_ERR_REDEX_POISONED => c"NET_ERR_REDEX_POISONED",
            Self::NET_ERR_REDEX_SYNC_FAILED => c"NET_ERR_REDEX_SYNC_FAILED",
            Self::NET_ERR_REDEX_LOCKED => c"NET_ERR_REDEX_LOCKED",
            Self::NET_ERR_REDEX_CLOSED => c"NET_ERR_REDEX_CLOSED",
            Self::NET_ERR_REDEX_INVALID_CONFIG => c"NET_ERR_REDEX_INVALID_CONFIG",
            Self::NET_ERR_REDEX_INLINE_LENGTH => c"NET_ERR_REDEX_INLINE_LENGTH",
            Self::NET_ERR_REDEX_TOO_LARGE => c"NET_ERR_REDEX_TOO_LARGE",
            Self::NET_ERR_REDEX_GENERATION_OVERFLOW => c"NET_ERR_REDEX_GENERATION_OVERFLOW",
            Self::NET_ERR_REDEX_NO_PERSISTENT_DIR => c"NET_ERR_REDEX_NO_PERSISTENT_DIR",
            Self::NET_ERR_REDEX_CORRUPT => c"NET_ERR_REDEX_CORRUPT",
            Self::NET_ERR_REDEX_SEQ_EXHAUSTED => c"NET_ERR_REDEX_SEQ_EXHAUSTED",
            Self::NET_ERR_MESH_CONFIG => c"NET_ERR_MESH_CONFIG",
            Self::NET_ERR_MESH_IO => c"NET_ERR_MESH_IO",
            Self::NET_ERR_MESH_HANDSHAKE_TIMEOUT => c"NET_ERR_MESH_HANDSHAKE_TIMEOUT",
            Self::NET_ERR_MESH_SESSION_EXISTS => c"NET_ERR_MESH_SESSION_EXISTS",
            Self::NET_ERR_MESH_UNKNOWN_PEER => c"NET_ERR_MESH_UNKNOWN_PEER",
            Self::NET_ERR_MESH_BACKPRESSURE => c"NET_ERR_MESH_BACKPRESSURE",
            Self::NET_ERR_MESH_TOO_LARGE => c"NET_ERR_MESH_TOO_LARGE",
            Self::NET_ERR_MESH_IDENTITY_REFUSED => c"NET_ERR_MESH_IDENTITY_REFUSED",
            Self::NET_ERR_MESH_HANDSHAKE_IN_PROGRESS => c"NET_ERR_MESH_HANDSHAKE_IN_PROGRESS",
            Self::NET_ERR_MESH_STREAM_CLOSED => c"NET_ERR_MESH_STREAM_CLOSED",
            Self::NET_ERR_MESH_NO_ROUTE => c"NET_ERR_MESH_NO_ROUTE",
            Self::NET_ERR_MESH_CAPABILITIES => c"NET_ERR_MESH_CAPABILITIES",
            Self::NET_ERR_CORTEX_HALTED => c"NET_ERR_CORTEX_HALTED",
            Self::NET_ERR_CORTEX_INVALID_QUERY => c"NET_ERR_CORTEX_INVALID_QUERY",
            Self::NET_ERR_CORTEX_INVALID_CONFIG => c"NET_ERR_CORTEX_INVALID_CONFIG",
            Self::NET_ERR_CORTEX_SNAPSHOT => c"NET_ERR_CORTEX_SNAPSHOT",
            Self::NET_ERR_BUS_CONFIG => c"NET_ERR_BUS_CONFIG",
            Self::NET_ERR_BUS_BACKPRESSURE => c"NET_ERR_BUS_BACKPRESSURE",
            Self::NET_ERR_BUS_SAMPLED => c"NET_ERR_BUS_SAMPLED",
            Self::NET_ERR_BUS_UNROUTED => c"NET_ERR_BUS_UNROUTED",
            Self::NET_ERR_BUS_NOT_CONNECTED => c"NET_ERR_BUS_NOT_CONNECTED",
            Self::NET_ERR_BUS_ADAPTER => c"NET_ERR_BUS_ADAPTER",
            Self::NET_ERR_BUS_ADAPTER_FATAL => c"NET_ERR_BUS_ADAPTER_FATAL",
            Self::NET_ERR_BUS_INVALID_REQUEST => c"NET_ERR_BUS_INVALID_REQUEST",
            Self::NET_ERR_BUS_PRODUCER_STATE => c"NET_ERR_BUS_PRODUCER_STATE",
            Self::NET_ERR_COMPUTE_NOT_FOUND => c"NET_ERR_COMPUTE_NOT_FOUND",
            Self::NET_ERR_COMPUTE_STALE => c"NET_ERR_COMPUTE_STALE",
            Self::NET_ERR_COMPUTE_ALREADY_REGISTERED => c"NET_ERR_COMPUTE_ALREADY_REGISTERED",
            Self::NET_ERR_COMPUTE_DAEMON => c"NET_ERR_COMPUTE_DAEMON",
            Self::NET_ERR_COMPUTE_UNKNOWN_KIND => c"NET_ERR_COMPUTE_UNKNOWN_KIND",
            Self::NET_ERR_COMPUTE_ALREADY_MIGRATING => c"NET_ERR_COMPUTE_ALREADY_MIGRATING",
            Self::NET_ERR_COMPUTE_NO_MIGRATION => c"NET_ERR_COMPUTE_NO_MIGRATION",
            Self::NET_ERR_COMPUTE_TRANSPORT => c"NET_ERR_COMPUTE_TRANSPORT",
            Self::NET_ERR_COMPUTE_BUFFER_FULL => c"NET_ERR_COMPUTE_BUFFER_FULL",
            Self::NET_ERR_COMPUTE_CONFIG => c"NET_ERR_COMPUTE_CONFIG",
            Self::NET_ERR_COMPUTE_WORK_EXPIRED => c"NET_ERR_COMPUTE_WORK_EXPIRED",
            Self::NET_ERR_COMPUTE_GROUP_PLACEMENT => c"NET_ERR_COMPUTE_GROUP_PLACEMENT",
            Self::NET_ERR_COMPUTE_GROUP_NO_HEALTHY_MEMBER => {
                c"NET_ERR_COMPUTE_GROUP_NO_HEALTHY_MEMBER"
            }
            Self::NET_ERR_COMPUTE_GROUP_UNKNOWN_NODE => c"NET_ERR_COMPUTE_GROUP_UNKNOWN_NODE",
            Self::NET_ERR_COMPUTE_GROUP_STATELESS => c"NET_ERR_COMPUTE_GROUP_STATELESS",
            Self::NET_ERR_COMPUTE_GROUP_REPLAY => c"NET_ERR_COMPUTE_GROUP_REPLAY",
            Self::NET_ERR_COMPUTE_GROUP_WRONG_KIND => c"NET_ERR_COMPUTE_GROUP_WRONG_KIND",
            Self::NET_ERR_COMPUTE_IDENTITY_TRANSPORT => c"NET_ERR_COMPUTE_IDENTITY_TRANSPORT",
            Self::NET_ERR_COMPUTE_GROUP_MIGRATION => c"NET_ERR_COMPUTE_GROUP_MIGRATION",
            Self::NET_ERR_COMPUTE_NO_TARGET => c"NET_ERR_COMPUTE_NO_TARGET",
            Self::NET_ERR_RULES_INVALID => c"NET_ERR_RULES_INVALID",
            Self::NET_ERR_RULES_UNKNOWN_RULE => c"NET_ERR_RULES_UNKNOWN_RULE",
            Self::NET_ERR_SAFETY_CONFIG => c"NET_ERR_SAFETY_CONFIG",
            Self::NET_ERR_SAFETY_KILL_SWITCH => c"NET_ERR_SAFETY_KILL_SWITCH",
            Self::NET_ERR_SAFETY_LIMIT => c"NET_ERR_SAFETY_LIMIT",
            Self::NET_ERR_SAFETY_RATE_LIMITED => c"NET_ERR_SAFETY_RATE_LIMITED",
            Self::NET_ERR_SAFETY_CONTENT => c"NET_ERR_SAFETY_CONTENT",
            Self::NET_ERR_LB_CONFIG => c"NET_ERR_LB_CONFIG",
            Self::NET_ERR_LB_NO_ENDPOINT => c"NET_ERR_LB_NO_ENDPOINT",
            Self::NET_ERR_LB_DUPLICATE_ENDPOINT => c"NET_ERR_LB_DUPLICATE_ENDPOINT",
            Self::NET_ERR_LB_UNKNOWN_ENDPOINT => c"NET_ERR_LB_UNKNOWN_ENDPOINT",
        }
    }

    /// The numeric code.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// True for `NET_OK` and the positive non-error outcomes.
    pub const fn is_ok(self) -> bool {
        self.code() >= 0
    }
}

/// The C name of a status code (`"NET_ERR_TOKEN_EXPIRED"`), a static
/// NUL-terminated string; `"NET_UNKNOWN_STATUS"` for a code libnet does not
/// define. For logs and error messages in every SDK.
#[unsafe(no_mangle)]
pub extern "C" fn net_status_name(status: i32) -> *const c_char {
    super::export::guarded(UNKNOWN_STATUS.as_ptr(), || {
        net_status_t::from_code(status)
            .map_or(UNKNOWN_STATUS, net_status_t::c_name)
            .as_ptr()
    })
}

const UNKNOWN_STATUS: &CStr = c"NET_UNKNOWN_STATUS";
