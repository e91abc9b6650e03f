'use strict';
// The one place that talks to libnet: it finds the library, checks its ABI
// version, and declares every function of include/net.h with koffi. Loaded
// once per JS thread (the main thread and each worker of the async pool).

const fs = require('node:fs');
const path = require('node:path');
const koffi = require('koffi');

/** The libnet ABI version this SDK was written for. */
const SDK_ABI_VERSION = 1;

/**
 * Every status code of `net_status_t` in include/net.h, by name. A test parses
 * the header and checks this table against it, both ways.
 */
const STATUS = Object.freeze({
  NET_OK: 0,
  NET_TIMEOUT: 1,
  NET_END: 2,
  NET_LAGGED: 3,
  NET_ERR_INVALID_ARGUMENT: -1,
  NET_ERR_SHUTTING_DOWN: -2,
  NET_ERR_PANIC: -3,
  NET_ERR_INTERNAL: -4,
  NET_ERR_READ_ONLY: -10,
  NET_ERR_INVALID_PUBLIC_KEY: -11,
  NET_ERR_INVALID_SIGNATURE: -12,
  NET_ERR_TOKEN_INVALID_SIGNATURE: -20,
  NET_ERR_TOKEN_NOT_YET_VALID: -21,
  NET_ERR_TOKEN_EXPIRED: -22,
  NET_ERR_TOKEN_DELEGATION_EXHAUSTED: -23,
  NET_ERR_TOKEN_DELEGATION_NOT_ALLOWED: -24,
  NET_ERR_TOKEN_NOT_AUTHORIZED: -25,
  NET_ERR_TOKEN_INVALID_FORMAT: -26,
  NET_ERR_TOKEN_ZERO_TTL: -27,
  NET_ERR_ENVELOPE_UNKNOWN_VERSION: -30,
  NET_ERR_ENVELOPE_INVALID_LENGTH: -31,
  NET_ERR_ENVELOPE_INVALID_SIGNER_KEY: -32,
  NET_ERR_ENVELOPE_INVALID_ATTESTATION: -33,
  NET_ERR_ENVELOPE_SEAL_OPEN_FAILED: -34,
  NET_ERR_ENVELOPE_ORIGIN_HASH_MISMATCH: -35,
  NET_ERR_CHANNEL_INVALID_NAME: -40,
  NET_ERR_REDEX_IO: -100,
  NET_ERR_REDEX_POISONED: -101,
  NET_ERR_REDEX_SYNC_FAILED: -102,
  NET_ERR_REDEX_LOCKED: -103,
  NET_ERR_REDEX_CLOSED: -104,
  NET_ERR_REDEX_INVALID_CONFIG: -105,
  NET_ERR_REDEX_INLINE_LENGTH: -106,
  NET_ERR_REDEX_TOO_LARGE: -107,
  NET_ERR_REDEX_GENERATION_OVERFLOW: -108,
  NET_ERR_REDEX_NO_PERSISTENT_DIR: -109,
  NET_ERR_REDEX_CORRUPT: -110,
  NET_ERR_REDEX_SEQ_EXHAUSTED: -111,
  NET_ERR_MESH_CONFIG: -200,
  NET_ERR_MESH_IO: -201,
  NET_ERR_MESH_HANDSHAKE_TIMEOUT: -202,
  NET_ERR_MESH_SESSION_EXISTS: -203,
  NET_ERR_MESH_UNKNOWN_PEER: -204,
  NET_ERR_MESH_BACKPRESSURE: -205,
  NET_ERR_MESH_TOO_LARGE: -206,
  NET_ERR_MESH_IDENTITY_REFUSED: -207,
  NET_ERR_MESH_HANDSHAKE_IN_PROGRESS: -208,
  NET_ERR_MESH_STREAM_CLOSED: -209,
  NET_ERR_CORTEX_HALTED: -300,
  NET_ERR_CORTEX_INVALID_QUERY: -301,
  NET_ERR_CORTEX_INVALID_CONFIG: -302,
  NET_ERR_CORTEX_SNAPSHOT: -303,
  NET_ERR_BUS_CONFIG: -400,
  NET_ERR_BUS_BACKPRESSURE: -401,
  NET_ERR_BUS_SAMPLED: -402,
  NET_ERR_BUS_UNROUTED: -403,
  NET_ERR_BUS_NOT_CONNECTED: -404,
  NET_ERR_BUS_ADAPTER: -405,
  NET_ERR_BUS_ADAPTER_FATAL: -406,
  NET_ERR_BUS_INVALID_REQUEST: -407,
  NET_ERR_BUS_PRODUCER_STATE: -408,
});

/**
 * Every `#define NET_*` of include/net.h (koffi cannot read macros), checked
 * against the header by a test.
 */
const CONSTANTS = Object.freeze({
  NET_ENVELOPE_SIZE: 209,
  NET_CHAIN_LINK_LEN: 32,
  NET_X25519_KEY_LEN: 32,
  NET_SEED_LEN: 32,
  NET_PUBLIC_KEY_LEN: 32,
  NET_SIGNATURE_LEN: 64,
  NET_WAIT_FOREVER: 4294967295,
  NET_TOKEN_SIZE: 159,
  NET_SCOPE_PUBLISH: 1,
  NET_SCOPE_SUBSCRIBE: 2,
  NET_SCOPE_ADMIN: 4,
  NET_SCOPE_DELEGATE: 8,
  NET_SCOPE_WILDCARD: 16,
  NET_SCOPE_ALL: 15,
  NET_ABI_VERSION: 1,
});

function libraryFileName() {
  switch (process.platform) {
    case 'darwin':
      return 'libnet.dylib';
    case 'win32':
      return 'net.dll';
    default:
      return 'libnet.so';
  }
}

/** Where `npm pack` puts the bundled copy of libnet (see scripts/bundle-native.js). */
const BUNDLED_LIBRARY_PATH = path.join(__dirname, 'native', libraryFileName());

function resolveLibraryPath() {
  // Workers of the async pool load exactly the library the main thread loaded.
  const { isMainThread, workerData } = require('node:worker_threads');
  if (!isMainThread && workerData && typeof workerData.netmeshLibraryPath === 'string') {
    return workerData.netmeshLibraryPath;
  }
  const override = process.env.NET_LIBRARY_PATH;
  if (override) {
    return path.resolve(override);
  }
  if (!fs.existsSync(BUNDLED_LIBRARY_PATH)) {
    throw new Error(
      `netmesh: the bundled libnet is missing (${BUNDLED_LIBRARY_PATH}). ` +
        'Install netmesh from its packed tarball (npm pack runs scripts/bundle-native.js), ' +
        'or set NET_LIBRARY_PATH to a libnet shared library for development.',
    );
  }
  return BUNDLED_LIBRARY_PATH;
}

const libraryPath = resolveLibraryPath();

let lib;
try {
  lib = koffi.load(libraryPath);
} catch (err) {
  throw new Error(`netmesh: cannot load libnet from ${libraryPath}: ${err.message}`, {
    cause: err,
  });
}

// Named types, so that the declarations below read like include/net.h. Koffi
// type names are per-thread globals: reuse them if this module is loaded twice.
function namedType(name, make) {
  try {
    return koffi.type(name);
  } catch {
    return make();
  }
}

namedType('net_status_t', () => koffi.alias('net_status_t', 'int32_t'));
namedType('net_identity_t', () => koffi.opaque('net_identity_t'));
namedType('net_bytes_t', () =>
  koffi.struct('net_bytes_t', {
    ptr: 'uint8_t *',
    len: 'size_t',
  }),
);
// A borrowed byte range passed into libnet (one payload of a batch). `ptr`
// takes a Buffer/Uint8Array, or a bigint address (large inputs of the pool).
namedType('net_slice_t', () =>
  koffi.struct('net_slice_t', {
    ptr: 'const uint8_t *',
    len: 'size_t',
  }),
);
namedType('net_redex_t', () => koffi.opaque('net_redex_t'));
namedType('net_redex_file_t', () => koffi.opaque('net_redex_file_t'));
namedType('net_redex_tail_t', () => koffi.opaque('net_redex_tail_t'));
namedType('net_mesh_t', () => koffi.opaque('net_mesh_t'));
namedType('net_bus_t', () => koffi.opaque('net_bus_t'));
namedType('net_redis_dedup_t', () => koffi.opaque('net_redis_dedup_t'));
namedType('net_bus_ingest_report_t', () =>
  koffi.struct('net_bus_ingest_report_t', {
    queued: 'size_t',
    sampled: 'size_t',
    taken: 'size_t',
  }),
);
namedType('net_mesh_stream_t', () => koffi.opaque('net_mesh_stream_t'));
namedType('net_tasks_adapter_t', () => koffi.opaque('net_tasks_adapter_t'));
namedType('net_tasks_watch_t', () => koffi.opaque('net_tasks_watch_t'));
namedType('net_memories_adapter_t', () => koffi.opaque('net_memories_adapter_t'));
namedType('net_memories_watch_t', () => koffi.opaque('net_memories_watch_t'));
namedType('net_token_info_t', () =>
  koffi.struct('net_token_info_t', {
    issuer: koffi.array('uint8_t', 32),
    subject: koffi.array('uint8_t', 32),
    scope: 'uint32_t',
    channel_hash: 'uint16_t',
    delegation_depth: 'uint8_t',
    reserved: 'uint8_t',
    not_before: 'uint64_t',
    not_after: 'uint64_t',
    nonce: 'uint64_t',
  }),
);

// Every function of include/net.h. Pointer inputs (`const uint8_t *`) take a
// Buffer/Uint8Array, or a bigint address (used by the async pool for large
// inputs it does not copy). Handles are bigint pointers (koffi 3).
const PROTOTYPES = [
  'void net_bytes_free(_Inout_ net_bytes_t *bytes)',
  'net_status_t net_channel_validate(const uint8_t *name, size_t name_len)',
  // `out` is a plain pointer so callers can pass a preallocated Uint16Array.
  'net_status_t net_channel_hash(const uint8_t *name, size_t name_len, uint16_t *out)',
  'net_status_t net_envelope_seal(const net_identity_t *source, const uint8_t *target_public_key, size_t target_public_key_len, const uint8_t *chain_link, size_t chain_link_len, _Out_ net_bytes_t *envelope_out)',
  'net_status_t net_envelope_open(const uint8_t *envelope, size_t envelope_len, const uint8_t *target_secret_key, size_t target_secret_key_len, const uint8_t *chain_link, size_t chain_link_len, const uint8_t *expected_signer, size_t expected_signer_len, _Out_ net_identity_t **identity_out)',
  'net_status_t net_x25519_public_key(const uint8_t *secret_key, size_t secret_key_len, _Out_ net_bytes_t *out)',
  'const char *net_last_error_message(void)',
  'net_status_t net_identity_generate(_Out_ net_identity_t **out)',
  'net_status_t net_identity_from_seed(const uint8_t *seed, size_t seed_len, _Out_ net_identity_t **out)',
  'net_status_t net_identity_from_public_key(const uint8_t *public_key, size_t public_key_len, _Out_ net_identity_t **out)',
  'net_status_t net_identity_clone(const net_identity_t *identity, _Out_ net_identity_t **out)',
  'void net_identity_free(net_identity_t *identity)',
  'net_status_t net_identity_public_key(const net_identity_t *identity, _Out_ net_bytes_t *out)',
  'net_status_t net_identity_entity_id(const net_identity_t *identity, _Out_ net_bytes_t *out)',
  'net_status_t net_identity_seed(const net_identity_t *identity, _Out_ net_bytes_t *out)',
  'net_status_t net_identity_is_read_only(const net_identity_t *identity, _Out_ bool *out)',
  'net_status_t net_identity_origin_hash(const net_identity_t *identity, _Out_ uint64_t *out)',
  'net_status_t net_identity_node_id(const net_identity_t *identity, _Out_ uint64_t *out)',
  'net_status_t net_identity_sign(const net_identity_t *identity, const uint8_t *message, size_t message_len, _Out_ net_bytes_t *signature_out)',
  'net_status_t net_identity_verify(const net_identity_t *identity, const uint8_t *message, size_t message_len, const uint8_t *signature, size_t signature_len)',
  'net_status_t net_token_issue(const net_identity_t *issuer, const uint8_t *subject, size_t subject_len, uint32_t scope, uint16_t channel_hash, uint64_t ttl_secs, uint8_t delegation_depth, _Out_ net_bytes_t *token_out)',
  'net_status_t net_token_parse(const uint8_t *token, size_t token_len, _Out_ net_token_info_t *out)',
  'net_status_t net_token_verify(const uint8_t *token, size_t token_len)',
  'net_status_t net_token_is_valid(const uint8_t *token, size_t token_len)',
  'net_status_t net_token_is_valid_at(const uint8_t *token, size_t token_len, uint64_t now_unix_secs)',
  'net_status_t net_token_is_expired(const uint8_t *token, size_t token_len, _Out_ bool *out)',
  'net_status_t net_token_is_expired_at(const uint8_t *token, size_t token_len, uint64_t now_unix_secs, _Out_ bool *out)',
  'net_status_t net_token_authorizes(const uint8_t *token, size_t token_len, uint32_t action, uint16_t channel_hash, _Out_ bool *out)',
  'net_status_t net_token_delegate(const net_identity_t *signer, const uint8_t *parent, size_t parent_len, const uint8_t *new_subject, size_t new_subject_len, uint32_t requested_scope, _Out_ net_bytes_t *token_out)',
  // RedEX. net_redex_tail_next's payload is _Inout_ so that an output libnet
  // does not write (NET_TIMEOUT, NET_END) keeps the caller's { ptr: null, len: 0 }.
  'net_status_t net_redex_open(const uint8_t *base_dir, size_t base_dir_len, _Out_ net_redex_t **out)',
  'void net_redex_free(net_redex_t *redex)',
  'net_status_t net_redex_open_file(const net_redex_t *redex, const uint8_t *name, size_t name_len, const uint8_t *config_json, size_t config_json_len, _Out_ net_redex_file_t **out)',
  'void net_redex_file_free(net_redex_file_t *file)',
  'net_status_t net_redex_file_append(const net_redex_file_t *file, const uint8_t *payload, size_t payload_len, _Out_ uint64_t *seq_out)',
  'net_status_t net_redex_file_append_inline(const net_redex_file_t *file, const uint8_t *payload, size_t payload_len, _Out_ uint64_t *seq_out)',
  'net_status_t net_redex_file_append_batch(const net_redex_file_t *file, const net_slice_t *payloads, size_t count, _Out_ uint64_t *first_seq_out, _Out_ bool *appended_out)',
  'net_status_t net_redex_file_read(const net_redex_file_t *file, uint64_t seq, _Out_ net_bytes_t *payload_out, _Out_ bool *found_out)',
  'net_status_t net_redex_file_read_range(const net_redex_file_t *file, uint64_t from_seq, uint64_t to_seq, _Out_ net_bytes_t *entries_out)',
  'net_status_t net_redex_file_next_seq(const net_redex_file_t *file, _Out_ uint64_t *out)',
  'net_status_t net_redex_file_recovery_report(const net_redex_file_t *file, _Out_ net_bytes_t *json_out)',
  'net_status_t net_redex_file_len(const net_redex_file_t *file, _Out_ uint64_t *out)',
  'net_status_t net_redex_file_sync(const net_redex_file_t *file)',
  'net_status_t net_redex_file_close(const net_redex_file_t *file)',
  'net_status_t net_redex_file_sweep_retention(const net_redex_file_t *file, _Out_ uint64_t *removed_out)',
  'net_status_t net_redex_file_tail(const net_redex_file_t *file, uint64_t from_seq, _Out_ net_redex_tail_t **out)',
  'net_status_t net_redex_tail_next(const net_redex_tail_t *tail, uint32_t timeout_ms, _Out_ uint64_t *seq_out, _Inout_ net_bytes_t *payload_out)',
  'void net_redex_tail_free(net_redex_tail_t *tail)',
  'net_status_t net_tasks_open(const net_redex_t *redex, uint64_t origin_hash, const uint8_t *config_json, size_t config_json_len, _Out_ net_tasks_adapter_t **out)',
  'net_status_t net_tasks_restore(const net_redex_t *redex, uint64_t origin_hash, const uint8_t *config_json, size_t config_json_len, const uint8_t *snapshot, size_t snapshot_len, uint64_t last_seq, bool has_last_seq, _Out_ net_tasks_adapter_t **out)',
  'void net_tasks_free(net_tasks_adapter_t *tasks)',
  'net_status_t net_tasks_close(const net_tasks_adapter_t *tasks)',
  'net_status_t net_tasks_create(const net_tasks_adapter_t *tasks, uint64_t id, const uint8_t *title, size_t title_len, _Out_ uint64_t *seq_out)',
  'net_status_t net_tasks_rename(const net_tasks_adapter_t *tasks, uint64_t id, const uint8_t *new_title, size_t new_title_len, _Out_ uint64_t *seq_out)',
  'net_status_t net_tasks_complete(const net_tasks_adapter_t *tasks, uint64_t id, _Out_ uint64_t *seq_out)',
  'net_status_t net_tasks_delete(const net_tasks_adapter_t *tasks, uint64_t id, _Out_ uint64_t *seq_out)',
  'net_status_t net_tasks_wait_for_seq(const net_tasks_adapter_t *tasks, uint64_t seq, uint32_t timeout_ms)',
  'net_status_t net_tasks_progress(const net_tasks_adapter_t *tasks, _Out_ net_bytes_t *json_out)',
  'net_status_t net_tasks_find_unique(const net_tasks_adapter_t *tasks, uint64_t id, _Out_ net_bytes_t *json_out, _Out_ bool *found_out)',
  'net_status_t net_tasks_find_many(const net_tasks_adapter_t *tasks, const uint8_t *filter_json, size_t filter_json_len, _Out_ net_bytes_t *json_out)',
  'net_status_t net_tasks_count_where(const net_tasks_adapter_t *tasks, const uint8_t *filter_json, size_t filter_json_len, _Out_ uint64_t *count_out)',
  'net_status_t net_tasks_exists_where(const net_tasks_adapter_t *tasks, const uint8_t *filter_json, size_t filter_json_len, _Out_ bool *exists_out)',
  'net_status_t net_tasks_watch(const net_tasks_adapter_t *tasks, const uint8_t *filter_json, size_t filter_json_len, _Out_ net_tasks_watch_t **out)',
  'net_status_t net_tasks_snapshot_and_watch(const net_tasks_adapter_t *tasks, const uint8_t *filter_json, size_t filter_json_len, _Out_ net_bytes_t *current_json_out, _Out_ net_tasks_watch_t **out)',
  'net_status_t net_tasks_watch_next(const net_tasks_watch_t *watch, uint32_t timeout_ms, _Out_ net_bytes_t *rows_out, _Out_ uint64_t *missed_out)',
  'void net_tasks_watch_free(net_tasks_watch_t *watch)',
  'net_status_t net_tasks_snapshot(const net_tasks_adapter_t *tasks, _Out_ net_bytes_t *bytes_out, _Out_ uint64_t *last_seq_out, _Out_ bool *has_last_seq_out)',
  'net_status_t net_memories_open(const net_redex_t *redex, uint64_t origin_hash, const uint8_t *config_json, size_t config_json_len, _Out_ net_memories_adapter_t **out)',
  'net_status_t net_memories_restore(const net_redex_t *redex, uint64_t origin_hash, const uint8_t *config_json, size_t config_json_len, const uint8_t *snapshot, size_t snapshot_len, uint64_t last_seq, bool has_last_seq, _Out_ net_memories_adapter_t **out)',
  'void net_memories_free(net_memories_adapter_t *memories)',
  'net_status_t net_memories_close(const net_memories_adapter_t *memories)',
  'net_status_t net_memories_store(const net_memories_adapter_t *memories, uint64_t id, const uint8_t *content, size_t content_len, const net_slice_t *tags, size_t tag_count, const uint8_t *source, size_t source_len, _Out_ uint64_t *seq_out)',
  'net_status_t net_memories_retag(const net_memories_adapter_t *memories, uint64_t id, const net_slice_t *tags, size_t tag_count, _Out_ uint64_t *seq_out)',
  'net_status_t net_memories_pin(const net_memories_adapter_t *memories, uint64_t id, _Out_ uint64_t *seq_out)',
  'net_status_t net_memories_unpin(const net_memories_adapter_t *memories, uint64_t id, _Out_ uint64_t *seq_out)',
  'net_status_t net_memories_delete(const net_memories_adapter_t *memories, uint64_t id, _Out_ uint64_t *seq_out)',
  'net_status_t net_memories_wait_for_seq(const net_memories_adapter_t *memories, uint64_t seq, uint32_t timeout_ms)',
  'net_status_t net_memories_progress(const net_memories_adapter_t *memories, _Out_ net_bytes_t *json_out)',
  'net_status_t net_memories_find_unique(const net_memories_adapter_t *memories, uint64_t id, _Out_ net_bytes_t *json_out, _Out_ bool *found_out)',
  'net_status_t net_memories_find_many(const net_memories_adapter_t *memories, const uint8_t *filter_json, size_t filter_json_len, _Out_ net_bytes_t *json_out)',
  'net_status_t net_memories_count_where(const net_memories_adapter_t *memories, const uint8_t *filter_json, size_t filter_json_len, _Out_ uint64_t *count_out)',
  'net_status_t net_memories_exists_where(const net_memories_adapter_t *memories, const uint8_t *filter_json, size_t filter_json_len, _Out_ bool *exists_out)',
  'net_status_t net_memories_watch(const net_memories_adapter_t *memories, const uint8_t *filter_json, size_t filter_json_len, _Out_ net_memories_watch_t **out)',
  'net_status_t net_memories_snapshot_and_watch(const net_memories_adapter_t *memories, const uint8_t *filter_json, size_t filter_json_len, _Out_ net_bytes_t *current_json_out, _Out_ net_memories_watch_t **out)',
  'net_status_t net_memories_watch_next(const net_memories_watch_t *watch, uint32_t timeout_ms, _Out_ net_bytes_t *rows_out, _Out_ uint64_t *missed_out)',
  'void net_memories_watch_free(net_memories_watch_t *watch)',
  'net_status_t net_memories_snapshot(const net_memories_adapter_t *memories, _Out_ net_bytes_t *bytes_out, _Out_ uint64_t *last_seq_out, _Out_ bool *has_last_seq_out)',
  'net_status_t net_mesh_new(const uint8_t *config_json, size_t config_json_len, _Out_ net_mesh_t **out)',
  'void net_mesh_free(net_mesh_t *mesh)',
  'net_status_t net_mesh_shutdown(const net_mesh_t *mesh)',
  'net_status_t net_mesh_public_key(const net_mesh_t *mesh, _Out_ net_bytes_t *out)',
  'net_status_t net_mesh_node_id(const net_mesh_t *mesh, _Out_ uint64_t *out)',
  'net_status_t net_mesh_entity_id(const net_mesh_t *mesh, _Out_ net_bytes_t *out)',
  'net_status_t net_mesh_local_addr(const net_mesh_t *mesh, _Out_ net_bytes_t *out)',
  'net_status_t net_mesh_start(const net_mesh_t *mesh)',
  'net_status_t net_mesh_connect(const net_mesh_t *mesh, const uint8_t *addr, size_t addr_len, const uint8_t *peer_static_pub, size_t peer_static_pub_len, uint64_t peer_node_id)',
  'net_status_t net_mesh_accept(const net_mesh_t *mesh, uint64_t peer_node_id, uint32_t timeout_ms, _Out_ net_bytes_t *addr_out)',
  'net_status_t net_mesh_open_stream(const net_mesh_t *mesh, uint64_t peer, uint64_t stream_id, bool reliable, uint64_t window, _Out_ net_mesh_stream_t **out)',
  'net_status_t net_mesh_stream_send(const net_mesh_stream_t *stream, const net_slice_t *events, size_t count)',
  'net_status_t net_mesh_stream_send_blocking(const net_mesh_stream_t *stream, const net_slice_t *events, size_t count, uint32_t timeout_ms)',
  'net_status_t net_mesh_stream_info(const net_mesh_stream_t *stream, _Out_ uint64_t *peer_out, _Out_ uint64_t *stream_id_out)',
  'void net_mesh_stream_free(net_mesh_stream_t *stream)',
  'net_status_t net_mesh_recv_next(const net_mesh_t *mesh, uint32_t timeout_ms, _Out_ uint64_t *peer_out, _Out_ uint64_t *stream_id_out, _Out_ net_bytes_t *data_out)',
  'net_status_t net_mesh_recv_batch(const net_mesh_t *mesh, size_t max, uint32_t timeout_ms, _Out_ net_bytes_t *records_out, _Out_ size_t *count_out)',
  'net_status_t net_mesh_peers(const net_mesh_t *mesh, _Out_ net_bytes_t *json_out)',
  'net_status_t net_mesh_stats(const net_mesh_t *mesh, _Out_ net_bytes_t *json_out)',
  'const char *net_version(void)',
  'uint32_t net_abi_version(void)',
  'const char *net_status_name(int32_t status)',
  // the event bus
  'net_status_t net_bus_new(const uint8_t *config_json, size_t config_json_len, _Out_ net_bus_t **out)',
  'void net_bus_free(net_bus_t *bus)',
  'net_status_t net_bus_ingest_raw(const net_bus_t *bus, const uint8_t *event, size_t event_len)',
  'net_status_t net_bus_ingest_raw_batch(const net_bus_t *bus, const net_slice_t *events, size_t count, _Out_ net_bus_ingest_report_t *report)',
  'net_status_t net_bus_ingest_raw_packed(const net_bus_t *bus, const uint8_t *data, size_t data_len, const uint32_t *lengths, size_t count, _Out_ net_bus_ingest_report_t *report)',
  'net_status_t net_bus_poll(const net_bus_t *bus, const uint8_t *request_json, size_t request_json_len, _Out_ net_bytes_t *events_out, _Out_ net_bytes_t *meta_out)',
  'net_status_t net_bus_flush(const net_bus_t *bus)',
  'net_status_t net_bus_stats(const net_bus_t *bus, _Out_ net_bytes_t *json_out)',
  'net_status_t net_bus_num_shards(const net_bus_t *bus, _Out_ uint16_t *out)',
  'net_status_t net_bus_shutdown(const net_bus_t *bus, _Out_ net_bytes_t *report_json_out)',
  'net_status_t net_redis_dedup_new(size_t capacity, _Out_ net_redis_dedup_t **out)',
  'void net_redis_dedup_free(net_redis_dedup_t *dedup)',
  'net_status_t net_redis_dedup_is_duplicate(const net_redis_dedup_t *dedup, const uint8_t *id, size_t id_len, _Out_ bool *out)',
  'net_status_t net_redis_dedup_check_batch(const net_redis_dedup_t *dedup, const net_slice_t *ids, size_t count, uint8_t *duplicates_out)',
  'net_status_t net_redis_dedup_info(const net_redis_dedup_t *dedup, _Out_ size_t *len_out, _Out_ size_t *capacity_out, _Out_ uint64_t *duplicates_out)',
  'net_status_t net_redis_dedup_clear(const net_redis_dedup_t *dedup)',
];

/** The koffi functions, keyed by their C name. */
const fns = Object.create(null);

// The ABI check comes first, before any other symbol is looked up, so that a
// mismatched library gets this message rather than a missing-symbol error.
fns.net_abi_version = lib.func('uint32_t net_abi_version(void)');
fns.net_version = lib.func('const char *net_version(void)');
const abiVersion = fns.net_abi_version();
if (abiVersion !== SDK_ABI_VERSION) {
  throw new Error(
    `netmesh: ABI version mismatch: this SDK was written for libnet ABI version ${SDK_ABI_VERSION}, ` +
      `but ${libraryPath} (libnet ${fns.net_version()}) implements ABI version ${abiVersion}`,
  );
}

for (const proto of PROTOTYPES) {
  const name = /\b(net_[a-z0-9_]+)\(/.exec(proto)[1];
  if (!(name in fns)) fns[name] = lib.func(proto);
}

/** The calling thread's last libnet failure detail (read right after the call). */
function lastErrorMessage() {
  return fns.net_last_error_message() || '';
}

/**
 * Copies the bytes of a filled `net_bytes_t` into a new Buffer and releases
 * the libnet allocation (which zeroes it). Always frees, even on error.
 */
function takeBytes(bytes) {
  try {
    const len = Number(bytes.len);
    if (!bytes.ptr || len === 0) {
      return Buffer.alloc(0);
    }
    const copy = koffi.decode(bytes.ptr, 'uint8_t', len);
    return Buffer.from(copy.buffer, copy.byteOffset, copy.byteLength);
  } finally {
    fns.net_bytes_free(bytes);
  }
}

module.exports = {
  koffi,
  fns,
  libraryPath,
  BUNDLED_LIBRARY_PATH,
  SDK_ABI_VERSION,
  STATUS,
  CONSTANTS,
  lastErrorMessage,
  takeBytes,
};
