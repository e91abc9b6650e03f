'use strict';
// A worker thread for the race tests: it calls libnet directly on a raw
// identity handle (a bigint pointer shared by the main thread), bypassing the
// SDK's JS-side checks, so only libnet's HandleGuard stands between it and a
// freed handle.

const { parentPort } = require('node:worker_threads');
const { internal } = require('netmesh');
const { fns, lastErrorMessage, koffi } = internal;

const SHUTTING_DOWN = -2;
const WAIT_FOREVER = 0xffffffff;
const REDEX_CLOSED = -104;
const now = () => process.hrtime.bigint();
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms) => Atomics.wait(sleeper, 0, 0, ms);

/** A zeroed net_error_t, and the message a failed call wrote to it (released). */
function errorSlot() {
  return { status: 0, message: { ptr: null, len: 0 } };
}
function errorText(error) {
  if (!error.message.ptr) return '';
  const view = koffi.decode(error.message.ptr, 'uint8_t', Number(error.message.len));
  const text = Buffer.from(view).toString('utf8');
  fns.net_error_clear(error);
  return text;
}

function waitGate(gate) {
  parentPort.postMessage({ ready: true });
  while (Atomics.load(gate, 0) === 0) Atomics.wait(gate, 0, 0, 1000);
}

const commands = {
  // Calls origin_hash until the handle is freed, then `after` more times.
  hammer({ handle, expected, gate, after, maxMs }) {
    const out = [0n];
    const r = { ok: 0, shutting: 0, mismatches: 0, other: 0, violations: 0, message: '' };
    waitGate(gate);
    const deadline = Date.now() + maxMs;
    for (;;) {
      const s = fns.net_identity_origin_hash(handle, out);
      if (s === 0) {
        if (r.ok === 0) {
          Atomics.add(gate, 1, 1); // tell the main thread this hammer is running
          Atomics.notify(gate, 1);
        }
        r.ok++;
        if (BigInt(out[0]) !== expected) r.mismatches++;
      } else if (s === SHUTTING_DOWN) {
        r.shutting++;
        r.message = lastErrorMessage();
        break;
      } else {
        r.other = s;
        break;
      }
      if ((r.ok & 1023) === 0 && Date.now() > deadline) break;
    }
    if (r.shutting) {
      for (let i = 0; i < after; i++) {
        if (fns.net_identity_origin_hash(handle, out) !== SHUTTING_DOWN) r.violations++;
        if (fns.net_identity_sign(handle, Buffer.from('m'), 1, {}) !== SHUTTING_DOWN) r.violations++;
      }
    }
    return r;
  },
  // Frees the handle as soon as the gate opens.
  free({ handle, gate }) {
    waitGate(gate);
    const t0 = process.hrtime.bigint();
    fns.net_identity_free(handle);
    return { t0, t1: process.hrtime.bigint() };
  },
  // Frees the handle `delayMs` after the command arrives.
  freeAfter({ handle, delayMs }) {
    sleep(delayMs);
    const t0 = process.hrtime.bigint();
    fns.net_identity_free(handle);
    return { t0, t1: process.hrtime.bigint() };
  },
  // One raw call on the handle: its status and this thread's error message.
  call({ handle }) {
    const status = fns.net_identity_origin_hash(handle, [0n]);
    return { status, message: status < 0 ? lastErrorMessage() : '' };
  },
};

// ---- the bus: raw ingests and frees -------------------------------------------

commands.busIngestUntilFreed = ({ handle, dedup, maxMs }) => {
  const r = { ok: 0, shutting: 0, other: 0 };
  const event = Buffer.from('race');
  const deadline = Date.now() + maxMs;
  for (;;) {
    const a = fns.net_bus_ingest_raw(handle, event, event.length);
    const b = fns.net_redis_dedup_is_duplicate(dedup, event, event.length, [false]);
    for (const s of [a, b]) {
      if (s === 0 || s === -401) r.ok++;
      else if (s === SHUTTING_DOWN) r.shutting++;
      else r.other = s;
    }
    if (r.other || (a === SHUTTING_DOWN && b === SHUTTING_DOWN) || Date.now() > deadline) return r;
  }
};

// One raw net_bus_poll (its events counted), signalling just before it starts.
commands.busPoll = ({ handle, request, signal: gate }) => {
  const req = Buffer.from(request);
  const events = { ptr: null, len: 0 };
  const meta = { ptr: null, len: 0 };
  const error = errorSlot();
  signal(gate);
  const t0 = now();
  const status = fns.net_bus_poll(handle, req, req.length, events, meta, null, error);
  const t1 = now();
  let count = 0;
  if (status === 0) {
    const view = koffi.decode(meta.ptr, 'uint8_t', Number(meta.len));
    count = JSON.parse(Buffer.from(view).toString('utf8')).count;
    fns.net_bytes_free(events);
    fns.net_bytes_free(meta);
  }
  return { status, count, t0, t1, message: errorText(error) };
};

commands.busFreeAfter = ({ handle, dedup, delayMs }) => {
  sleep(delayMs);
  const t0 = process.hrtime.bigint();
  fns.net_bus_free(handle);
  if (dedup) fns.net_redis_dedup_free(dedup);
  return { t0, t1: process.hrtime.bigint() };
};

// ---- RedEX: raw calls on manager / file / tail pointers ----------------------

const FREE = {
  manager: (h) => fns.net_redex_free(h),
  file: (h) => fns.net_redex_file_free(h),
  tail: (h) => fns.net_redex_tail_free(h),
};

/** One raw call on a handle of `kind`; returns its status (outputs released). */
function redexOp(kind, handle, i = 0) {
  switch (kind) {
    case 'manager': {
      const name = Buffer.from(`race/mem${i % 4}`);
      const out = [null];
      const s = fns.net_redex_open_file(handle, name, name.length, null, 0, out);
      if (s === 0) fns.net_redex_file_free(out[0]);
      return s;
    }
    case 'file':
      return i % 2 ? fns.net_redex_file_append(handle, Buffer.from('r'), 1, [0n]) : fns.net_redex_file_len(handle, [0n]);
    case 'tail': {
      const payload = { ptr: null, len: 0 };
      const s = fns.net_redex_tail_next(handle, 0, [0n], payload, null, null);
      if (payload.ptr) fns.net_bytes_free(payload);
      return s === 1 || s === 2 || s === 3 ? 0 : s; // TIMEOUT / END / LAGGED are outcomes, not errors
    }
    default:
      throw new Error(`unknown kind ${kind}`);
  }
}

/** Tells the main thread (gate[1] = 1) that the call is about to start. */
function signal(gate) {
  Atomics.store(gate, 1, 1);
  Atomics.notify(gate, 1);
}

Object.assign(commands, {
  redexCall({ kind, handle }) {
    const status = redexOp(kind, handle, 1);
    return { status, message: status < 0 ? lastErrorMessage() : '' };
  },
  // Calls ops on the handle until it is freed, then `after` more times.
  // With `closedIsOk`, NET_ERR_REDEX_CLOSED (the SDK's close closes the file
  // before freeing the handle) counts as a completed call.
  redexHammer({ kind, handle, gate, after, maxMs, closedIsOk = false }) {
    const r = { ok: 0, closed: 0, shutting: 0, other: 0, violations: 0, message: '' };
    waitGate(gate);
    const deadline = Date.now() + maxMs;
    for (let i = 0; ; i++) {
      let s = redexOp(kind, handle, i);
      if (s === REDEX_CLOSED && closedIsOk) {
        r.closed++;
        s = 0;
      }
      if (s === 0) {
        if (r.ok === 0) {
          Atomics.add(gate, 1, 1);
          Atomics.notify(gate, 1);
        }
        r.ok++;
      } else if (s === SHUTTING_DOWN) {
        r.shutting++;
        r.message = lastErrorMessage();
        break;
      } else {
        r.other = s;
        r.message = lastErrorMessage();
        break;
      }
      if ((i & 63) === 0 && Date.now() > deadline) break;
    }
    if (r.shutting) {
      for (let i = 0; i < after; i++) if (redexOp(kind, handle, i) !== SHUTTING_DOWN) r.violations++;
    }
    return r;
  },
  // Frees when the gate opens (with `afterHammer`: once a hammer has completed a call).
  redexFree({ kind, handle, gate, afterHammer = false }) {
    waitGate(gate);
    if (afterHammer) {
      const deadline = Date.now() + 2000;
      while (Atomics.load(gate, 1) === 0 && Date.now() < deadline) Atomics.wait(gate, 1, 0, 100);
    }
    const t0 = now();
    FREE[kind](handle);
    return { t0, t1: now() };
  },
  redexFreeAfter({ kind, handle, delayMs }) {
    sleep(delayMs);
    const t0 = now();
    FREE[kind](handle);
    return { t0, t1: now() };
  },
  // net_redex_tail_next(NET_WAIT_FOREVER), signalling just before it blocks;
  // with `cancel`, a token the main thread cancels.
  tailNextForever({ handle, signal: gate, cancel = null }) {
    const payload = { ptr: null, len: 0 };
    const error = errorSlot();
    signal(gate);
    const t0 = now();
    const status = fns.net_redex_tail_next(handle, WAIT_FOREVER, [0n], payload, cancel, error);
    const t1 = now();
    if (payload.ptr) fns.net_bytes_free(payload);
    return { status, t0, t1, message: errorText(error) };
  },
  // One big append (the buffer is made before the signal).
  appendBig({ handle, size, fill, signal: gate }) {
    const payload = Buffer.alloc(size, fill);
    const seq = [0n];
    signal(gate);
    const t0 = now();
    const status = fns.net_redex_file_append(handle, payload, payload.length, seq);
    const t1 = now();
    return { status, seq: BigInt(seq[0]), t0, t1, message: status < 0 ? lastErrorMessage() : '' };
  },
  // One open_file on a manager pointer; the new file handle comes back as a bigint.
  openFile({ handle, name, config, signal: gate }) {
    const n = Buffer.from(name);
    const c = Buffer.from(config);
    const out = [null];
    signal(gate);
    const t0 = now();
    const status = fns.net_redex_open_file(handle, n, n.length, c, c.length, out);
    const t1 = now();
    return { status, file: status === 0 ? out[0] : null, t0, t1, message: status < 0 ? lastErrorMessage() : '' };
  },
  // `count` appends of `tag:i` (a payload the reader can check), pacing with a
  // tiny sleep every `every` appends so they interleave with the reader.
  appendMany({ handle, count, tag, every }) {
    const seqs = [];
    const out = [0n];
    for (let i = 0; i < count; i++) {
      const p = Buffer.from(`${tag}:${i}`);
      const s = fns.net_redex_file_append(handle, p, p.length, out);
      if (s !== 0) return { status: s, message: lastErrorMessage(), seqs };
      seqs.push(BigInt(out[0]));
      if (every && i % every === every - 1) sleep(1);
    }
    return { status: 0, seqs };
  },
});

// ---- CortEX: raw calls on model / watch pointers ------------------------------

/**
 * One raw call on a CortEX handle; `kind` is tasks | memories (a model of
 * that kind: a kind write or a generic query) | tasksWatch | memoriesWatch.
 */
function cortexOp(kind, handle, i = 0) {
  switch (kind) {
    case 'tasks':
      return i % 2 ? fns.net_tasks_create(handle, BigInt(i), Buffer.from('r'), 1, [0n]) : fns.net_model_count_where(handle, null, 0, [0n]);
    case 'memories':
      return i % 2
        ? fns.net_memories_store(handle, BigInt(i), Buffer.from('r'), 1, null, 0, Buffer.from('s'), 1, [0n])
        : fns.net_model_count_where(handle, null, 0, [0n]);
    case 'tasksWatch':
    case 'memoriesWatch': {
      const rows = { ptr: null, len: 0 };
      const s = fns.net_model_watch_next(handle, 0, rows, [0n], null, null);
      if (rows.ptr) fns.net_bytes_free(rows);
      return s === 1 || s === 2 || s === 3 ? 0 : s;
    }
    default:
      throw new Error(`unknown kind ${kind}`);
  }
}

const CORTEX_FREE = {
  tasks: (h) => fns.net_model_free(h),
  memories: (h) => fns.net_model_free(h),
  tasksWatch: (h) => fns.net_model_watch_free(h),
  memoriesWatch: (h) => fns.net_model_watch_free(h),
};

const CORTEX_HALTED = -300;

Object.assign(commands, {
  cortexCall({ kind, handle }) {
    const status = cortexOp(kind, handle, 1);
    return { status, message: status < 0 ? lastErrorMessage() : '' };
  },
  // Calls ops until the handle is freed, then `after` more times. A model
  // closed by the SDK (close before free) answers writes with
  // NET_ERR_CORTEX_HALTED or NET_ERR_REDEX_CLOSED first: counted as completed.
  cortexHammer({ kind, handle, gate, after, maxMs }) {
    const r = { ok: 0, closed: 0, shutting: 0, other: 0, violations: 0, message: '' };
    waitGate(gate);
    const deadline = Date.now() + maxMs;
    for (let i = 0; ; i++) {
      let s = cortexOp(kind, handle, i);
      if (s === CORTEX_HALTED || s === REDEX_CLOSED) {
        r.closed++;
        s = 0;
      }
      if (s === 0) {
        if (r.ok === 0) {
          Atomics.add(gate, 1, 1);
          Atomics.notify(gate, 1);
        }
        r.ok++;
      } else if (s === SHUTTING_DOWN) {
        r.shutting++;
        r.message = lastErrorMessage();
        break;
      } else {
        r.other = s;
        r.message = lastErrorMessage();
        break;
      }
      if ((i & 63) === 0 && Date.now() > deadline) break;
    }
    if (r.shutting) {
      for (let i = 0; i < after; i++) if (cortexOp(kind, handle, i) !== SHUTTING_DOWN) r.violations++;
    }
    return r;
  },
  cortexFree({ kind, handle, gate, afterHammer = false }) {
    waitGate(gate);
    if (afterHammer) {
      const deadline = Date.now() + 2000;
      while (Atomics.load(gate, 1) === 0 && Date.now() < deadline) Atomics.wait(gate, 1, 0, 100);
    }
    const t0 = now();
    CORTEX_FREE[kind](handle);
    return { t0, t1: now() };
  },
  // net_model_watch_next(NET_WAIT_FOREVER), signalling just before it blocks.
  watchNextForever({ handle, signal: gate, cancel = null }) {
    const rows = { ptr: null, len: 0 };
    const error = errorSlot();
    signal(gate);
    const t0 = now();
    const status = fns.net_model_watch_next(handle, WAIT_FOREVER, rows, [0n], cancel, error);
    const t1 = now();
    if (rows.ptr) fns.net_bytes_free(rows);
    return { status, t0, t1, message: errorText(error) };
  },
  // net_model_wait_for_seq(NET_WAIT_FOREVER) for a seq never written.
  waitForSeqForever({ handle, seq, signal: gate, cancel = null }) {
    const error = errorSlot();
    signal(gate);
    const t0 = now();
    const status = fns.net_model_wait_for_seq(handle, seq, WAIT_FOREVER, cancel, error);
    const t1 = now();
    return { status, t0, t1, message: errorText(error) };
  },
  // One write with a big title/content (the buffer is made before the signal).
  cortexWriteBig({ kind, handle, size, signal: gate }) {
    const text = Buffer.alloc(size, 0x61);
    const seq = [0n];
    signal(gate);
    const t0 = now();
    const status =
      kind === 'tasks'
        ? fns.net_tasks_create(handle, 1n, text, text.length, seq)
        : fns.net_memories_store(handle, 1n, text, text.length, null, 0, null, 0, seq);
    const t1 = now();
    return { status, t0, t1, message: status < 0 ? lastErrorMessage() : '' };
  },
});

// ---- mesh ---------------------------------------------------------------------

Object.assign(commands, {
  meshFree({ kind, handle }) {
    if (kind === 'stream') fns.net_mesh_stream_free(handle);
    else fns.net_mesh_free(handle);
    return { ok: true };
  },
  // net_mesh_recv_next(NET_WAIT_FOREVER) on a raw node pointer, signalling just before it blocks.
  meshRecvForever({ handle, signal: gate, cancel = null }) {
    const data = { ptr: null, len: 0 };
    const error = errorSlot();
    if (gate) signal(gate);
    const t0 = now();
    const status = fns.net_mesh_recv_next(handle, WAIT_FOREVER, [0n], [0n], data, null, null, cancel, error);
    const t1 = now();
    if (data.ptr) fns.net_bytes_free(data);
    return { status, t0, t1, message: errorText(error) };
  },
});

parentPort.on('message', (msg) => {
  parentPort.postMessage({ result: commands[msg.cmd](msg) });
});
