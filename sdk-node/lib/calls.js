'use strict';
// Raw libnet operations shared by the synchronous API (main thread) and the
// async pool's workers: each does the C call and, on failure, reads
// net_last_error_message() on the same thread before anything else runs.
// The blocking calls (those taking a net_cancel_t) are not here: each class
// builds their attempts for lib/async.js, which runs them as koffi async calls.
//
// A byte input is a Uint8Array, or `{ addr, len }` (a bigint address plus a
// length) for large buffers the async pool passes without copying.

const { fns, lastErrorMessage, takeBytes, STATUS, CONSTANTS } = require('./native');
const { errorFor } = require('./errors');

/** Throws the NetError for a negative status; returns the status otherwise. */
function check(status) {
  if (status < 0) {
    throw errorFor(status, lastErrorMessage());
  }
  return status;
}

function ptr(input) {
  if (input == null) return null;
  return input instanceof Uint8Array ? input : input.addr;
}

function len(input) {
  if (input == null) return 0;
  return input instanceof Uint8Array ? input.byteLength : input.len;
}

function identityFromSeed(seed) {
  const out = [null];
  check(fns.net_identity_from_seed(seed, seed.byteLength, out));
  return out[0];
}

function identityClone(handle) {
  const out = [null];
  check(fns.net_identity_clone(handle, out));
  return out[0];
}

function identityFromPublicKey(publicKey) {
  const out = [null];
  check(fns.net_identity_from_public_key(publicKey, publicKey.byteLength, out));
  return out[0];
}

function identityGenerate() {
  const out = [null];
  check(fns.net_identity_generate(out));
  return out[0];
}

function identityBytes(fn, handle) {
  const out = {};
  check(fn(handle, out));
  return takeBytes(out);
}

function identityU64(fn, handle) {
  const out = [0n];
  check(fn(handle, out));
  return BigInt(out[0]);
}

function identityIsReadOnly(handle) {
  const out = [false];
  check(fns.net_identity_is_read_only(handle, out));
  return Boolean(out[0]);
}

/**
 * Frees a handle with C function `name` (say 'net_identity_free'): throws
 * BusyError when libnet could not finish (calls still running after 5 s, or
 * a close that failed), with libnet's message.
 */
function free(name, handle) {
  check(fns[name](handle));
}

function identityFree(handle) {
  free('net_identity_free', handle);
}

function sign(handle, message) {
  const out = {};
  check(fns.net_identity_sign(handle, ptr(message), len(message), out));
  return takeBytes(out);
}

/** true when the signature verifies, false on NET_ERR_INVALID_SIGNATURE. */
function verify(handle, message, signature) {
  const status = fns.net_identity_verify(
    handle,
    ptr(message),
    len(message),
    ptr(signature),
    len(signature),
  );
  if (status === STATUS.NET_ERR_INVALID_SIGNATURE) return false;
  check(status);
  return true;
}

function tokenIssue(handle, subject, scope, channelHash, ttlSecs, delegationDepth) {
  const out = {};
  check(
    fns.net_token_issue(
      handle,
      ptr(subject),
      len(subject),
      scope,
      channelHash,
      ttlSecs,
      delegationDepth,
      out,
    ),
  );
  return takeBytes(out);
}

function tokenDelegate(handle, parent, newSubject, requestedScope) {
  const out = {};
  check(
    fns.net_token_delegate(
      handle,
      ptr(parent),
      len(parent),
      ptr(newSubject),
      len(newSubject),
      requestedScope,
      out,
    ),
  );
  return takeBytes(out);
}

function envelopeSeal(handle, targetPublicKey, chainLink) {
  const out = {};
  check(
    fns.net_envelope_seal(
      handle,
      ptr(targetPublicKey),
      len(targetPublicKey),
      ptr(chainLink),
      len(chainLink),
      out,
    ),
  );
  return takeBytes(out);
}

/** Returns the new identity handle (a bigint pointer). */
function envelopeOpen(envelope, targetSecretKey, chainLink, expectedSigner) {
  const out = [null];
  check(
    fns.net_envelope_open(
      ptr(envelope),
      len(envelope),
      ptr(targetSecretKey),
      len(targetSecretKey),
      ptr(chainLink),
      len(chainLink),
      ptr(expectedSigner),
      len(expectedSigner),
      out,
    ),
  );
  return out[0];
}

// ---- RedEX -----------------------------------------------------------------

/** A new manager handle; `baseDir` (UTF-8 bytes) or null for memory only. */
function redexOpen(baseDir) {
  const out = [null];
  check(fns.net_redex_open(ptr(baseDir), len(baseDir), out));
  return out[0];
}

function redexFree(handle) {
  free('net_redex_free', handle);
}

/** A new file handle; `config` is the JSON (UTF-8 bytes) or null. */
function redexOpenFile(handle, name, config) {
  const out = [null];
  check(fns.net_redex_open_file(handle, ptr(name), len(name), ptr(config), len(config), out));
  return out[0];
}

function redexFileAppend(handle, payload) {
  const out = [0n];
  check(fns.net_redex_file_append(handle, ptr(payload), len(payload), out));
  return BigInt(out[0]);
}

function redexFileAppendInline(handle, payload) {
  const out = [0n];
  check(fns.net_redex_file_append_inline(handle, ptr(payload), len(payload), out));
  return BigInt(out[0]);
}

/** The first sequence number of the batch, or null when it was empty. */
function redexFileAppendBatch(handle, payloads) {
  const slices = payloads.map((p) => ({ ptr: ptr(p), len: len(p) }));
  const first = [0n];
  const appended = [false];
  check(
    fns.net_redex_file_append_batch(
      handle,
      slices.length > 0 ? slices : null,
      slices.length,
      first,
      appended,
    ),
  );
  return appended[0] ? BigInt(first[0]) : null;
}

/** The payload of entry `seq`, or null when there is none. */
function redexFileRead(handle, seq) {
  const out = {};
  const found = [false];
  check(fns.net_redex_file_read(handle, seq, out, found));
  const payload = takeBytes(out); // frees libnet's buffer either way
  return found[0] ? payload : null;
}

/** The raw range buffer: records `seq u64 LE | len u32 LE | payload`. */
function redexFileReadRange(handle, fromSeq, toSeq) {
  const out = {};
  check(fns.net_redex_file_read_range(handle, fromSeq, toSeq, out));
  return takeBytes(out);
}

/** Unpacks a range buffer into [{ seq, payload }] (payloads are copies). */
function decodeRange(buf) {
  const view = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const entries = [];
  let at = 0;
  while (at < view.length) {
    if (at + 12 > view.length) throw new Error('netmesh: truncated RedEX range record header');
    const seq = view.readBigUInt64LE(at);
    const n = view.readUInt32LE(at + 8);
    at += 12;
    if (at + n > view.length) throw new Error('netmesh: truncated RedEX range record payload');
    entries.push({ seq, payload: Buffer.from(view.subarray(at, at + n)) });
    at += n;
  }
  return entries;
}

function redexFileU64(fn, handle) {
  const out = [0n];
  check(fn(handle, out));
  return BigInt(out[0]);
}

/** The recovery report JSON text ('null' for a memory file). */
function redexFileRecoveryReport(handle) {
  const out = {};
  check(fns.net_redex_file_recovery_report(handle, out));
  return takeBytes(out).toString('utf8');
}

function redexFileSync(handle) {
  check(fns.net_redex_file_sync(handle));
}

function redexFileSweepRetention(handle) {
  const out = [0n];
  check(fns.net_redex_file_sweep_retention(handle, out));
  return BigInt(out[0]);
}

/**
 * Closes (net_redex_file_close, reporting a failed final sync) and then frees
 * the handle, whatever the close said; throws the close's error, else the
 * free's (BusyError). A handle already freed elsewhere (NET_ERR_SHUTTING_DOWN)
 * is not an error: close is idempotent.
 */
function redexFileCloseFree(handle) {
  let closeError = null;
  const status = fns.net_redex_file_close(handle);
  if (status < 0 && status !== STATUS.NET_ERR_SHUTTING_DOWN) closeError = errorFor(status, lastErrorMessage());
  const freed = fns.net_redex_file_free(handle);
  if (closeError) throw closeError;
  check(freed);
}

function redexFileTail(handle, fromSeq) {
  const out = [null];
  check(fns.net_redex_file_tail(handle, fromSeq, out));
  return out[0];
}

/**
 * One item of a tail without waiting (timeout 0, on the calling thread):
 * `{ status, seq?, payload? }`, status NET_OK / NET_LAGGED (an item),
 * NET_TIMEOUT (nothing ready) or NET_END; errors throw.
 */
function redexTailTryNext(handle) {
  const seq = [0n];
  const payload = { ptr: null, len: 0 };
  const status = check(fns.net_redex_tail_next(handle, 0, seq, payload, null, null));
  if (status === STATUS.NET_OK || status === STATUS.NET_LAGGED) {
    return { status, seq: BigInt(seq[0]), payload: takeBytes(payload) };
  }
  return { status };
}

/** An attempt of a blocking net_redex_tail_next for lib/async.js. */
function redexTailNextAttempt(handle) {
  return (token, error, timeoutMs) => {
    const seq = [0n];
    const payload = { ptr: null, len: 0 };
    return {
      fn: fns.net_redex_tail_next,
      args: [handle, timeoutMs, seq, payload, token, error],
      result: (status) =>
        status === STATUS.NET_OK || status === STATUS.NET_LAGGED
          ? { seq: BigInt(seq[0]), payload: takeBytes(payload) }
          : null,
    };
  };
}

// ---- CortEX ----------------------------------------------------------------
// One generic path over net_model_*: a model is a handle of a kind
// (NET_MODEL_TASKS, NET_MODEL_MEMORIES); only the kinds' own writes are named
// after them (net_tasks_create, net_memories_store, ...).

/** A new model handle of `kind` (open, or restore when `snapshot` is given). */
function modelOpen(redex, kind, origin, config, snapshot, lastSeq, hasLastSeq) {
  const out = [null];
  if (snapshot == null) {
    check(fns.net_model_open(redex, kind, origin, ptr(config), len(config), out));
  } else {
    check(
      fns.net_model_restore(
        redex, kind, origin, ptr(config), len(config), ptr(snapshot), len(snapshot), lastSeq, hasLastSeq, out,
      ),
    );
  }
  return out[0];
}

/**
 * net_model_close: stops the fold and closes the file (syncing it), throwing
 * its error; the handle stays valid for queries until freed. A model already
 * closed or freed is not an error.
 */
function modelClose(handle) {
  const status = fns.net_model_close(handle);
  if (status === STATUS.NET_ERR_SHUTTING_DOWN || status === STATUS.NET_ERR_REDEX_CLOSED) return;
  check(status);
}

function modelKind(handle) {
  const out = [0];
  check(fns.net_model_kind(handle, out));
  return Number(out[0]);
}

/** The C write of each write op: its name, and how the op's arguments after `id` are passed. */
const WRITES = {
  create: 'net_tasks_create',
  rename: 'net_tasks_rename',
  complete: 'net_tasks_complete',
  store: 'net_memories_store',
  retag: 'net_memories_retag',
  pin: 'net_memories_pin',
  unpin: 'net_memories_unpin',
  delete: 'net_model_delete',
};

function slicesOf(list) {
  const slices = list.map((t) => ({ ptr: ptr(t), len: len(t) }));
  return [slices.length ? slices : null, slices.length];
}

/** A write (create/rename/complete/store/retag/pin/unpin/delete): its RedEX seq. */
function modelWrite(op, handle, id, ...rest) {
  const fn = fns[WRITES[op]];
  if (!fn) throw new Error(`netmesh: unknown model write ${op}`);
  const out = [0n];
  let status;
  switch (op) {
    case 'create':
    case 'rename':
      status = fn(handle, id, ptr(rest[0]), len(rest[0]), out);
      break;
    case 'store': {
      const [content, tags, source] = rest;
      status = fn(handle, id, ptr(content), len(content), ...slicesOf(tags), ptr(source), len(source), out);
      break;
    }
    case 'retag':
      status = fn(handle, id, ...slicesOf(rest[0]), out);
      break;
    default:
      status = fn(handle, id, out);
  }
  check(status);
  return BigInt(out[0]);
}

/** The fold's progress JSON text. */
function modelProgress(handle) {
  const out = {};
  check(fns.net_model_progress(handle, out));
  return takeBytes(out).toString('utf8');
}

/** The rows matching a filter (JSON bytes or null), as JSON text. */
function modelFindMany(handle, filter) {
  const out = {};
  check(fns.net_model_find_many(handle, ptr(filter), len(filter), out));
  return takeBytes(out).toString('utf8');
}

/** The JSON text of row `id`, or null. */
function modelFindUnique(handle, id) {
  const out = {};
  const found = [false];
  check(fns.net_model_find_unique(handle, id, out, found));
  const text = takeBytes(out).toString('utf8');
  return found[0] ? text : null;
}

function modelCountWhere(handle, filter) {
  const out = [0n];
  check(fns.net_model_count_where(handle, ptr(filter), len(filter), out));
  return BigInt(out[0]);
}

function modelExistsWhere(handle, filter) {
  const out = [false];
  check(fns.net_model_exists_where(handle, ptr(filter), len(filter), out));
  return Boolean(out[0]);
}

/** A new watch; with `withCurrent`, `{ watch, current }` (snapshot_and_watch). */
function modelWatch(handle, filter, withCurrent) {
  const out = [null];
  if (!withCurrent) {
    check(fns.net_model_watch(handle, ptr(filter), len(filter), out));
    return out[0];
  }
  const current = {};
  check(fns.net_model_snapshot_and_watch(handle, ptr(filter), len(filter), current, out));
  return { watch: out[0], current: takeBytes(current).toString('utf8') };
}

/** The outcome of a watch next: `{ rows }` (JSON text), `{ missed }`, or null. */
function watchOutcome(status, rows, missed) {
  if (status === STATUS.NET_OK) return { rows: takeBytes(rows).toString('utf8') };
  if (status === STATUS.NET_LAGGED) return { missed: BigInt(missed[0]) };
  return null;
}

/** One watch update without waiting (timeout 0): `{ status, value }`; errors throw. */
function watchTryNext(handle) {
  const rows = { ptr: null, len: 0 };
  const missed = [0n];
  const status = check(fns.net_model_watch_next(handle, 0, rows, missed, null, null));
  return { status, value: watchOutcome(status, rows, missed) };
}

/** An attempt of a blocking net_model_watch_next for lib/async.js. */
function watchNextAttempt(handle) {
  return (token, error, timeoutMs) => {
    const rows = { ptr: null, len: 0 };
    const missed = [0n];
    return {
      fn: fns.net_model_watch_next,
      args: [handle, timeoutMs, rows, missed, token, error],
      result: (status) => watchOutcome(status, rows, missed),
    };
  };
}

/** An attempt of a blocking net_model_wait_for_seq for lib/async.js. */
function waitForSeqAttempt(handle, seq) {
  return (token, error, timeoutMs) => ({
    fn: fns.net_model_wait_for_seq,
    args: [handle, seq, timeoutMs, token, error],
    result: () => null,
  });
}

/** `{ data, lastSeq }` (lastSeq null for an empty log). */
function modelSnapshot(handle) {
  const out = {};
  const last = [0n];
  const has = [false];
  check(fns.net_model_snapshot(handle, out, last, has));
  return { data: takeBytes(out), lastSeq: has[0] ? BigInt(last[0]) : null };
}

// ---- NetDB -------------------------------------------------------------------

/** A new NetDB handle (net_netdb_open, or net_netdb_open_from_bundle when `bundle` is given). */
function netdbOpen(redex, origin, config, bundle) {
  const out = [null];
  if (bundle == null) {
    check(fns.net_netdb_open(redex, origin, ptr(config), len(config), out));
  } else {
    check(fns.net_netdb_open_from_bundle(redex, origin, ptr(config), len(config), ptr(bundle), len(bundle), out));
  }
  return out[0];
}

/** The NetDB's model handle of `kind` (lent: the NetDB frees it). */
function netdbModel(handle, kind) {
  const out = [null];
  check(fns.net_netdb_model(handle, kind, out));
  return out[0];
}

function netdbSnapshot(handle) {
  const out = {};
  check(fns.net_netdb_snapshot(handle, out));
  return takeBytes(out);
}

// ---- mesh --------------------------------------------------------------------

function meshNew(config) {
  const out = [null];
  check(fns.net_mesh_new(ptr(config), len(config), out));
  return out[0];
}

/** An attempt of a blocking net_mesh_connect for lib/async.js. */
function meshConnectAttempt(handle, addr, key, nodeId) {
  return (token, error) => ({
    fn: fns.net_mesh_connect,
    args: [handle, addr, addr.byteLength, key, key.byteLength, nodeId, token, error],
    result: () => null,
  });
}

/**
 * An attempt of a blocking net_mesh_connect_via (`relay` a bigint) or, with
 * `relay` null, net_mesh_connect_routed.
 */
function meshConnectViaAttempt(handle, relay, key, nodeId) {
  return (token, error) => ({
    fn: relay === null ? fns.net_mesh_connect_routed : fns.net_mesh_connect_via,
    args:
      relay === null
        ? [handle, key, key.byteLength, nodeId, token, error]
        : [handle, relay, key, key.byteLength, nodeId, token, error],
    result: () => null,
  });
}

/** An attempt of a blocking net_mesh_connect_direct: resolves to the outcome code. */
function meshConnectDirectAttempt(handle, nodeId, key, coordinator) {
  return (token, error) => {
    const outcome = [0];
    return {
      fn: fns.net_mesh_connect_direct,
      args: [handle, nodeId, key, key.byteLength, coordinator, token, error, outcome],
      result: () => outcome[0],
    };
  };
}

/** An attempt of a blocking net_mesh_accept: resolves to the address text (NET_OK). */
function meshAcceptAttempt(handle, nodeId) {
  return (token, error, timeoutMs) => {
    const out = { ptr: null, len: 0 };
    return {
      fn: fns.net_mesh_accept,
      args: [handle, nodeId, timeoutMs, out, token, error],
      result: (status) => (status === STATUS.NET_OK ? takeBytes(out).toString('utf8') : null),
    };
  };
}

function meshOpenStream(handle, peer, streamId, reliable, window) {
  const out = [null];
  check(fns.net_mesh_open_stream(handle, peer, streamId, reliable, window, out));
  return out[0];
}

function meshOpenCausalStream(handle, peer, streamId, reliable, window) {
  const out = [null];
  check(fns.net_mesh_open_causal_stream(handle, peer, streamId, reliable, window, out));
  return out[0];
}

function meshSend(stream, events) {
  check(fns.net_mesh_stream_send(stream, ...slicesOf(events)));
}

/** An attempt of a blocking net_mesh_stream_send_blocking (the events stay referenced by it). */
function meshSendBlockingAttempt(stream, events) {
  return (token, error, timeoutMs) => ({
    fn: fns.net_mesh_stream_send_blocking,
    args: [stream, ...slicesOf(events), timeoutMs, token, error],
    result: () => null,
  });
}

/**
 * Bytes before each record's channel name and event: peer, streamId,
 * droppedBefore (u64 LE), the event's length (u32 LE), the name's length (u16 LE).
 */
const RECORD_HEADER = 30;

/** Unpacks net_mesh_recv_batch's records into `[{ peer, streamId, data, droppedBefore, channel }]`. */
function decodeRecords(buf, count) {
  const records = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    const n = buf.readUInt32LE(at + 24);
    const c = buf.readUInt16LE(at + 28);
    const data = at + RECORD_HEADER + c;
    records.push({
      peer: buf.readBigUInt64LE(at),
      streamId: buf.readBigUInt64LE(at + 8),
      data: Buffer.from(buf.subarray(data, data + n)),
      droppedBefore: buf.readBigUInt64LE(at + 16),
      channel: buf.toString('utf8', at + RECORD_HEADER, data),
    });
    at = data + n;
  }
  return records;
}

/** Received events without waiting (timeout 0): `{ status, records? }`; errors throw. */
function meshTryRecvBatch(handle, max) {
  const out = { ptr: null, len: 0 };
  const count = [0];
  const status = check(fns.net_mesh_recv_batch(handle, max, 0, out, count, null, null));
  if (status !== STATUS.NET_OK) return { status };
  return { status, records: decodeRecords(takeBytes(out), Number(count[0])) };
}

/** An attempt of a blocking net_mesh_recv_batch: resolves to the records (NET_OK). */
function meshRecvBatchAttempt(handle, max) {
  return (token, error, timeoutMs) => {
    const out = { ptr: null, len: 0 };
    const count = [0];
    return {
      fn: fns.net_mesh_recv_batch,
      args: [handle, max, timeoutMs, out, count, token, error],
      result: (status) => (status === STATUS.NET_OK ? decodeRecords(takeBytes(out), Number(count[0])) : null),
    };
  };
}

/** An attempt of net_mesh_continuity_next: the event's JSON text. */
function meshContinuityNextAttempt(handle) {
  return (token, error, timeoutMs) => {
    const out = { ptr: null, len: 0 };
    return {
      fn: fns.net_mesh_continuity_next,
      args: [handle, timeoutMs, out, token, error],
      result: (status) => (status === STATUS.NET_OK ? takeBytes(out).toString('utf8') : null),
    };
  };
}

/** One event (net_mesh_recv_next) without waiting: `{ status, event? }`. */
function meshRecvNext(handle) {
  const peer = [0n];
  const sid = [0n];
  const dropped = [0n];
  const data = { ptr: null, len: 0 };
  const channel = { ptr: null, len: 0 };
  const status = check(fns.net_mesh_recv_next(handle, 0, peer, sid, data, dropped, channel, null, null));
  if (status !== STATUS.NET_OK) return { status };
  const event = {
    peer: BigInt(peer[0]),
    streamId: BigInt(sid[0]),
    data: takeBytes(data),
    droppedBefore: BigInt(dropped[0]),
    channel: takeBytes(channel).toString('utf8'),
  };
  return { status, event };
}

/** An attempt of a blocking net_mesh_subscribe (token: a Uint8Array or null) or net_mesh_unsubscribe. */
function meshMembershipAttempt(handle, subscribe, publisher, name, token) {
  return (tok, error) => ({
    fn: subscribe ? fns.net_mesh_subscribe : fns.net_mesh_unsubscribe,
    args: subscribe
      ? [handle, publisher, name, name.byteLength, token, token === null ? 0 : token.byteLength, tok, error]
      : [handle, publisher, name, name.byteLength, tok, error],
    result: () => null,
  });
}

/** net_mesh_publish: the report's JSON text. */
function meshPublish(handle, name, events, reliable) {
  const out = { ptr: null, len: 0 };
  check(fns.net_mesh_publish(handle, name, name.byteLength, ...slicesOf(events), reliable, out));
  return takeBytes(out).toString('utf8');
}

/** A JSON-in, JSON-out net_mesh_* query (find_nodes, find_best_node): the answer's text. */
function meshQuery(fn, handle, query) {
  const q = Buffer.from(query, 'utf8');
  const out = { ptr: null, len: 0 };
  check(fn(handle, q, q.byteLength, out));
  return takeBytes(out).toString('utf8');
}

function meshBytes(fn, handle) {
  const out = {};
  check(fn(handle, out));
  return takeBytes(out);
}

function meshFree(handle) {
  free('net_mesh_free', handle);
}

function meshStreamFree(handle) {
  free('net_mesh_stream_free', handle);
}

// -- the event bus ------------------------------------------------------------

function busNew(config) {
  const out = [null];
  check(fns.net_bus_new(ptr(config), len(config), out));
  return out[0];
}

function busIngest(handle, event) {
  check(fns.net_bus_ingest_raw(handle, ptr(event), len(event)));
}

function report(r) {
  return { queued: Number(r.queued), sampled: Number(r.sampled), taken: Number(r.taken) };
}

/** A batch given packed: the bytes back to back and a Uint32Array of lengths. */
function busIngestPacked(handle, data, lengths) {
  const r = {};
  check(fns.net_bus_ingest_raw_packed(handle, ptr(data), len(data), lengths.length ? lengths : null, lengths.length, r));
  return report(r);
}

/** A batch in place: an array of Uint8Arrays, passed as net_slice_t without copying. */
function busIngestSlices(handle, events) {
  const slices = events.map((e) => ({ ptr: e.byteLength ? e : null, len: e.byteLength }));
  const r = {};
  check(fns.net_bus_ingest_raw_batch(handle, slices.length ? slices : null, slices.length, r));
  return report(r);
}

/** An attempt of a net_bus_poll: resolves to `{ events, meta }` (raw events, meta JSON text). */
function busPollAttempt(handle, request) {
  return (token, error) => {
    const events = { ptr: null, len: 0 };
    const meta = { ptr: null, len: 0 };
    return {
      fn: fns.net_bus_poll,
      args: [handle, request, request.byteLength, events, meta, token, error],
      result: (status) =>
        status === STATUS.NET_OK
          ? { events: new Uint8Array(takeBytes(events)), meta: takeBytes(meta).toString('utf8') }
          : null,
    };
  };
}

/** An attempt of a blocking net_bus_flush. */
function busFlushAttempt(handle) {
  return (token, error) => ({ fn: fns.net_bus_flush, args: [handle, token, error], result: () => null });
}

function busBytes(fn, handle) {
  const out = {};
  check(fn(handle, out));
  return takeBytes(out);
}

/** net_bus_close: drains and shuts down; the report JSON text. */
function busClose(handle) {
  return busBytes(fns.net_bus_close, handle).toString('utf8');
}

function busFree(handle) {
  free('net_bus_free', handle);
}

// ---- compute: the calls that wait for a runtime lock a daemon call may
// hold (it waits for the main thread), so they run on the worker pool ----

function computeStats(handle, origin) {
  const out = { ptr: null, len: 0 };
  check(fns.net_compute_stats(handle, origin, out));
  return takeBytes(out);
}

function computeMigrationStatus(handle, origin) {
  const out = { ptr: null, len: 0 };
  check(fns.net_compute_migration_status(handle, origin, out));
  return takeBytes(out);
}

function computeStartMigration(handle, origin, source, target, optionsJson) {
  if (optionsJson == null) {
    check(fns.net_compute_start_migration(handle, origin, source, target));
  } else {
    const options = Buffer.from(optionsJson, 'utf8');
    check(fns.net_compute_start_migration_opts(handle, origin, source, target, options, options.length));
  }
  return null;
}

function computeStop(handle, origin) {
  check(fns.net_compute_stop(handle, origin));
  return null;
}

function computeGroupReplica(rts, kind, seed, count, lb) {
  const out = [null];
  check(fns.net_compute_group_replica(rts, rts.length, kind, kind.length, seed, seed.length, count, ptr(lb), len(lb), out));
  return out[0];
}

function computeGroupFork(rts, kind, parentNode, parentOrigin, count, lb) {
  const out = [null];
  check(fns.net_compute_group_fork(rts, rts.length, kind, kind.length, parentNode, parentOrigin, count, ptr(lb), len(lb), out));
  return out[0];
}

function computeGroupStandby(rts, kind, seed, count) {
  const out = [null];
  check(fns.net_compute_group_standby(rts, rts.length, kind, kind.length, seed, seed.length, count, out));
  return out[0];
}

function computeGroupScale(handle, count) {
  check(fns.net_compute_group_scale(handle, count));
  return null;
}

function computeGroupMigrate(handle, index, node) {
  check(fns.net_compute_group_migrate(handle, index, node));
  return null;
}

function computeGroupWatchFailures(handle, observer, everyMs) {
  check(fns.net_compute_group_watch_failures(handle, observer, everyMs));
  return null;
}

function computeGroupUnwatchFailures(handle) {
  check(fns.net_compute_group_unwatch_failures(handle));
  return null;
}

function computeGroupPromote(handle) {
  const index = [0];
  check(fns.net_compute_group_promote(handle, index));
  return index[0];
}

/** A group call writing JSON (status, sync, node_failed): its bytes. */
function computeGroupJson(name, handle, ...extra) {
  const out = { ptr: null, len: 0 };
  check(fns[name](handle, ...extra, out));
  return takeBytes(out);
}

module.exports = {
  computeGroupReplica,
  computeGroupFork,
  computeGroupStandby,
  computeGroupScale,
  computeGroupMigrate,
  computeGroupWatchFailures,
  computeGroupUnwatchFailures,
  computeGroupPromote,
  computeGroupJson,
  computeStats,
  computeMigrationStatus,
  computeStartMigration,
  computeStop,
  check,
  free,
  busNew,
  busIngest,
  busIngestPacked,
  busIngestSlices,
  busPollAttempt,
  busBytes,
  busFlushAttempt,
  busClose,
  busFree,
  meshNew,
  netdbOpen,
  netdbModel,
  netdbSnapshot,
  meshConnectAttempt,
  meshConnectViaAttempt,
  meshConnectDirectAttempt,
  meshAcceptAttempt,
  meshOpenStream,
  meshOpenCausalStream,
  meshSend,
  meshSendBlockingAttempt,
  meshTryRecvBatch,
  meshRecvBatchAttempt,
  meshContinuityNextAttempt,
  meshRecvNext,
  meshMembershipAttempt,
  meshPublish,
  meshQuery,
  meshBytes,
  meshFree,
  meshStreamFree,
  modelOpen,
  modelClose,
  modelKind,
  modelWrite,
  modelProgress,
  modelFindMany,
  modelFindUnique,
  modelCountWhere,
  modelExistsWhere,
  modelWatch,
  watchTryNext,
  watchNextAttempt,
  waitForSeqAttempt,
  modelSnapshot,
  redexOpen,
  redexFree,
  redexOpenFile,
  redexFileAppend,
  redexFileAppendInline,
  redexFileAppendBatch,
  redexFileRead,
  redexFileReadRange,
  decodeRange,
  redexFileU64,
  redexFileRecoveryReport,
  redexFileSync,
  redexFileSweepRetention,
  redexFileCloseFree,
  redexFileTail,
  redexTailTryNext,
  redexTailNextAttempt,
  identityFromSeed,
  identityFromPublicKey,
  identityClone,
  identityGenerate,
  identityBytes,
  identityU64,
  identityIsReadOnly,
  identityFree,
  sign,
  verify,
  tokenIssue,
  tokenDelegate,
  envelopeSeal,
  envelopeOpen,
};
