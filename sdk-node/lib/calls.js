'use strict';
// Raw libnet operations shared by the synchronous API (main thread) and the
// async pool's workers: each does the C call and, on failure, reads
// net_last_error_message() on the same thread before anything else runs.
//
// A byte input is a Uint8Array, or `{ addr, len }` (a bigint address plus a
// length) for large buffers the async pool passes without copying.

const { fns, lastErrorMessage, takeBytes, STATUS } = require('./native');
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

function identityFree(handle) {
  fns.net_identity_free(handle);
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
  fns.net_redex_free(handle);
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
 * the handle, whatever the close said. A handle already freed elsewhere
 * (NET_ERR_SHUTTING_DOWN) is not an error: close is idempotent.
 */
function redexFileCloseFree(handle) {
  try {
    const status = fns.net_redex_file_close(handle);
    if (status !== STATUS.NET_ERR_SHUTTING_DOWN) check(status);
  } finally {
    fns.net_redex_file_free(handle);
  }
}

function redexFileTail(handle, fromSeq) {
  const out = [null];
  check(fns.net_redex_file_tail(handle, fromSeq, out));
  return out[0];
}

function redexTailFree(handle) {
  fns.net_redex_tail_free(handle);
}

/**
 * One poll of a tail, for a pool worker (never the main thread): waits up to
 * `timeoutMs` for the first item, then gathers what is already there without
 * waiting, up to `maxItems` items or `maxBytes` of payload. Returns
 * `{ items: [{ status, seq, payload }], status, message? }` where the final
 * status is NET_OK (a limit was hit), NET_TIMEOUT (nothing more ready),
 * NET_END, or an error code (with its message) met after some items; an error
 * before any item throws.
 */
function redexTailNext(handle, timeoutMs, maxItems, maxBytes) {
  const items = [];
  let bytes = 0;
  let timeout = timeoutMs;
  for (;;) {
    const seq = [0n];
    const payload = { ptr: null, len: 0 };
    const status = fns.net_redex_tail_next(handle, timeout, seq, payload);
    if (status === STATUS.NET_OK || status === STATUS.NET_LAGGED) {
      const p = takeBytes(payload);
      items.push({ status, seq: BigInt(seq[0]), payload: p });
      bytes += p.byteLength;
      if (items.length >= maxItems || bytes >= maxBytes) return { items, status: STATUS.NET_OK };
      timeout = 0;
    } else if (status === STATUS.NET_TIMEOUT || status === STATUS.NET_END) {
      return { items, status };
    } else if (items.length === 0) {
      check(status);
      throw new Error(`netmesh: unexpected status ${status} from net_redex_tail_next`);
    } else {
      return { items, status, message: lastErrorMessage() };
    }
  }
}

// ---- CortEX ----------------------------------------------------------------
// `kind` is 'tasks' or 'memories': the C functions are net_<kind>_<op>.

function cx(kind, op) {
  return fns[`net_${kind}_${op}`];
}

/** A new model handle (open, or restore when `snapshot` is given). */
function cortexOpen(kind, redex, origin, config, snapshot, lastSeq, hasLastSeq) {
  const out = [null];
  if (snapshot == null) {
    check(cx(kind, 'open')(redex, origin, ptr(config), len(config), out));
  } else {
    check(
      cx(kind, 'restore')(redex, origin, ptr(config), len(config), ptr(snapshot), len(snapshot), lastSeq, hasLastSeq, out),
    );
  }
  return out[0];
}

/**
 * Closes (reporting a failed final sync) and frees a model handle. A handle
 * already closed or freed elsewhere is not an error: close is idempotent.
 */
function cortexCloseFree(kind, handle) {
  try {
    const status = cx(kind, 'close')(handle);
    if (status !== STATUS.NET_ERR_SHUTTING_DOWN && status !== STATUS.NET_ERR_REDEX_CLOSED) check(status);
  } finally {
    cx(kind, 'free')(handle);
  }
}

/** A write (create/rename/complete/delete/store/retag/pin/unpin): its RedEX seq. */
function cortexWrite(kind, op, handle, id, ...rest) {
  const out = [0n];
  let status;
  switch (op) {
    case 'create':
    case 'rename':
      status = cx(kind, op)(handle, id, ptr(rest[0]), len(rest[0]), out);
      break;
    case 'store': {
      const [content, tags, source] = rest;
      const slices = tags.map((t) => ({ ptr: ptr(t), len: len(t) }));
      status = cx(kind, op)(
        handle, id, ptr(content), len(content), slices.length ? slices : null, slices.length,
        ptr(source), len(source), out,
      );
      break;
    }
    case 'retag': {
      const slices = rest[0].map((t) => ({ ptr: ptr(t), len: len(t) }));
      status = cx(kind, op)(handle, id, slices.length ? slices : null, slices.length, out);
      break;
    }
    default:
      status = cx(kind, op)(handle, id, out);
  }
  check(status);
  return BigInt(out[0]);
}

/** One wait: NET_OK or NET_TIMEOUT (errors throw). */
function cortexWaitForSeq(kind, handle, seq, timeoutMs) {
  return check(cx(kind, 'wait_for_seq')(handle, seq, timeoutMs));
}

/** A JSON-returning query (progress / find_many), as the JSON text. */
function cortexJson(kind, op, handle, filter) {
  const out = {};
  if (op === 'progress') check(cx(kind, op)(handle, out));
  else check(cx(kind, op)(handle, ptr(filter), len(filter), out));
  return takeBytes(out).toString('utf8');
}

/** The JSON text of row `id`, or null. */
function cortexFindUnique(kind, handle, id) {
  const out = {};
  const found = [false];
  check(cx(kind, 'find_unique')(handle, id, out, found));
  const text = takeBytes(out).toString('utf8');
  return found[0] ? text : null;
}

function cortexCountWhere(kind, handle, filter) {
  const out = [0n];
  check(cx(kind, 'count_where')(handle, ptr(filter), len(filter), out));
  return BigInt(out[0]);
}

function cortexExistsWhere(kind, handle, filter) {
  const out = [false];
  check(cx(kind, 'exists_where')(handle, ptr(filter), len(filter), out));
  return Boolean(out[0]);
}

/** A new watch; with `withCurrent`, `{ watch, current }` (snapshot_and_watch). */
function cortexWatch(kind, handle, filter, withCurrent) {
  const out = [null];
  if (!withCurrent) {
    check(cx(kind, 'watch')(handle, ptr(filter), len(filter), out));
    return out[0];
  }
  const current = {};
  check(cx(kind, 'snapshot_and_watch')(handle, ptr(filter), len(filter), current, out));
  return { watch: out[0], current: takeBytes(current).toString('utf8') };
}

/** One watch poll: `{ status, rows?, missed? }` (errors throw). */
function cortexWatchNext(kind, handle, timeoutMs) {
  const rows = { ptr: null, len: 0 };
  const missed = [0n];
  const status = check(cx(kind, 'watch_next')(handle, timeoutMs, rows, missed));
  if (status === STATUS.NET_OK) return { status, rows: takeBytes(rows).toString('utf8') };
  if (status === STATUS.NET_LAGGED) return { status, missed: BigInt(missed[0]) };
  return { status };
}

function cortexWatchFree(kind, handle) {
  cx(kind, 'watch_free')(handle);
}

/** `{ data, lastSeq }` (lastSeq null for an empty log). */
function cortexSnapshot(kind, handle) {
  const out = {};
  const last = [0n];
  const has = [false];
  check(cx(kind, 'snapshot')(handle, out, last, has));
  return { data: takeBytes(out), lastSeq: has[0] ? BigInt(last[0]) : null };
}

// ---- mesh --------------------------------------------------------------------

function meshNew(config) {
  const out = [null];
  check(fns.net_mesh_new(ptr(config), len(config), out));
  return out[0];
}

/** A connect (blocks for the handshake: run it on the pool). */
function meshConnect(handle, addr, key, nodeId) {
  check(fns.net_mesh_connect(handle, ptr(addr), len(addr), ptr(key), len(key), nodeId));
}

/** One accept wait: the address text, or null on timeout. */
function meshAccept(handle, nodeId, timeoutMs) {
  const out = {};
  const status = check(fns.net_mesh_accept(handle, nodeId, timeoutMs, out));
  if (status === STATUS.NET_TIMEOUT) return null;
  return takeBytes(out).toString('utf8');
}

function meshOpenStream(handle, peer, streamId, reliable, window) {
  const out = [null];
  check(fns.net_mesh_open_stream(handle, peer, streamId, reliable, window, out));
  return out[0];
}

function meshSend(stream, events) {
  const slices = events.map((e) => ({ ptr: ptr(e), len: len(e) }));
  check(fns.net_mesh_stream_send(stream, slices.length ? slices : null, slices.length));
}

/** true when sent, false on timeout. */
function meshSendBlocking(stream, events, timeoutMs) {
  const slices = events.map((e) => ({ ptr: ptr(e), len: len(e) }));
  return check(fns.net_mesh_stream_send_blocking(stream, slices.length ? slices : null, slices.length, timeoutMs)) === STATUS.NET_OK;
}

/** One receive poll: `{ status, records? }` with records as
 *  `[{ peer, streamId, data }]`. */
function meshRecvBatch(handle, max, timeoutMs) {
  const out = {};
  const count = [0];
  const status = check(fns.net_mesh_recv_batch(handle, max, timeoutMs, out, count));
  if (status !== STATUS.NET_OK) return { status };
  const buf = takeBytes(out);
  const records = [];
  let at = 0;
  for (let i = 0; i < Number(count[0]); i++) {
    const n = buf.readUInt32LE(at + 16);
    records.push({
      peer: buf.readBigUInt64LE(at),
      streamId: buf.readBigUInt64LE(at + 8),
      data: Buffer.from(buf.subarray(at + 20, at + 20 + n)),
    });
    at += 20 + n;
  }
  return { status, records };
}

/** One event (net_mesh_recv_next): `{ status, event? }`. */
function meshRecvNext(handle, timeoutMs) {
  const peer = [0n];
  const sid = [0n];
  const data = {};
  const status = check(fns.net_mesh_recv_next(handle, timeoutMs, peer, sid, data));
  if (status !== STATUS.NET_OK) return { status };
  return { status, event: { peer: BigInt(peer[0]), streamId: BigInt(sid[0]), data: takeBytes(data) } };
}

function meshBytes(fn, handle) {
  const out = {};
  check(fn(handle, out));
  return takeBytes(out);
}

function meshFree(handle) {
  fns.net_mesh_free(handle);
}

function meshStreamFree(handle) {
  fns.net_mesh_stream_free(handle);
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

/** A poll: `{ events, meta }` as raw buffers (decoded by the caller). */
function busPoll(handle, request) {
  const events = {};
  const meta = {};
  const status = fns.net_bus_poll(handle, ptr(request), len(request), events, meta);
  if (status < 0) {
    const err = errorFor(status, lastErrorMessage());
    throw err;
  }
  return { events: new Uint8Array(takeBytes(events)), meta: takeBytes(meta).toString('utf8') };
}

function busBytes(fn, handle) {
  const out = {};
  check(fn(handle, out));
  return takeBytes(out);
}

function busFlush(handle) {
  check(fns.net_bus_flush(handle));
}

function busShutdown(handle) {
  return busBytes(fns.net_bus_shutdown, handle).toString('utf8');
}

function busFree(handle) {
  fns.net_bus_free(handle);
}

module.exports = {
  check,
  busNew,
  busIngest,
  busIngestPacked,
  busIngestSlices,
  busPoll,
  busBytes,
  busFlush,
  busShutdown,
  busFree,
  meshNew,
  meshConnect,
  meshAccept,
  meshOpenStream,
  meshSend,
  meshSendBlocking,
  meshRecvBatch,
  meshRecvNext,
  meshBytes,
  meshFree,
  meshStreamFree,
  cortexOpen,
  cortexCloseFree,
  cortexWrite,
  cortexWaitForSeq,
  cortexJson,
  cortexFindUnique,
  cortexCountWhere,
  cortexExistsWhere,
  cortexWatch,
  cortexWatchNext,
  cortexWatchFree,
  cortexSnapshot,
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
  redexTailFree,
  redexTailNext,
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
