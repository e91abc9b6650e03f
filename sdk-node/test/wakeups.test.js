'use strict';
// Every handle type with blocking calls, through the SDK: "close wakes a
// call blocked forever" and "an abort (AbortSignal -> net_cancel_t) wakes a
// blocked call". No sleeps: each round starts the call (a koffi async call
// on libuv's threadpool), lets the event loop turn so it reaches its wait,
// closes or aborts, and counts only if the call's own outcome (status and
// net_error_t message, from internal.callEvents) proves it was interrupted
// *while it waited* — NET_END for a pull call woken by a free, "while the
// call waited" / "while it waited" in the message otherwise — and the round
// is retried until enough did.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const netmesh = require('netmesh');
const {
  Redex,
  Tasks,
  Memories,
  Mesh,
  Bus,
  ShuttingDownError,
  MeshStreamClosedError,
  internal,
} = netmesh;
const { letItBlock, untilWon, interruptedWhileWaiting } = require('./race-helpers');

const S = netmesh.Status;
const DONE = { done: true, value: undefined };
const PSK = Buffer.alloc(32, 0x5a);
const FAST = { psk: PSK, heartbeatIntervalMs: 50, sessionTimeoutMs: 1000, helloTimeoutMs: 500 };
/** A bus whose flush waits far longer than any round (tests/ffi_bus.rs). */
const PATIENT = {
  num_shards: 1,
  adapter: { type: 'redex' },
  batch: { min_size: 1000, max_size: 1000, max_delay_ms: 60000 },
  shutdown_timeout_ms: 600000,
};

/** Records the attempts of blocking call `op` (internal.callEvents) until stopped. */
function record(t, op) {
  const seen = [];
  const on = (e) => {
    if (e.op === op) seen.push(e);
  };
  internal.callEvents.on('call', on);
  t.after(() => internal.callEvents.off('call', on));
  return {
    /** The last attempt, after the call settled. */
    last: () => seen[seen.length - 1],
    clear: () => {
      seen.length = 0;
    },
  };
}

async function settle(promise) {
  try {
    return { value: await promise };
  } catch (error) {
    return { error };
  }
}

function isAbort(err) {
  return err instanceof Error && err.name === 'AbortError';
}

/**
 * Whether a mesh or bus call was cancelled while it waited: they say "the
 * call was cancelled" for a wait they cut short, and "... already cancelled
 * when it started" for one they never began.
 */
const cutShort = (message) => !/already cancelled/.test(message);

/**
 * Rounds of "an abort wakes a blocked call": `call(signal)` starts it, an
 * abort follows once it had the chance to block, and it must reject with an
 * AbortError. A round counts when the call's last attempt (`calls`) was
 * cancelled while it waited, as `waited(message)` tells.
 */
async function abortWakes(calls, call, waited) {
  await untilWon(200, 3, async () => {
    calls.clear();
    const ac = new AbortController();
    const pending = settle(call(ac.signal));
    await letItBlock();
    ac.abort();
    const { error } = await pending;
    assert.ok(isAbort(error), String(error));
    const last = calls.last();
    return last !== undefined && last.status === S.NET_ERR_CANCELLED && waited(last.message);
  });
}

// ---- RedEX tail ------------------------------------------------------------------

test('redex tail: close() wakes a next() blocked forever', async (t) => {
  const redex = Redex.open();
  t.after(() => redex.close());
  const file = redex.openFile('wake/tail');
  t.after(() => file.close());
  const calls = record(t, 'redex_tail_next');
  await untilWon(200, 3, async () => {
    calls.clear();
    const tail = file.tail(file.nextSeq); // nothing will come
    const pending = tail.next();
    await letItBlock();
    tail.close();
    assert.deepEqual(await pending, DONE);
    // NET_END: woken in its wait by the free; SHUTTING_DOWN (or no call at
    // all): the close came first, which proves nothing.
    return calls.last()?.status === S.NET_END;
  });
});

test('redex tail: an abort wakes a blocked next(), which consumed nothing; the tail reads on', async (t) => {
  const redex = Redex.open();
  t.after(() => redex.close());
  const file = redex.openFile('wake/tail-abort');
  t.after(() => file.close());
  const tail = file.tail(0n);
  t.after(() => tail.close());
  const calls = record(t, 'redex_tail_next');
  await abortWakes(calls, (signal) => tail.next(undefined, { signal }), interruptedWhileWaiting);
  file.append('after');
  const r = await tail.next(5000);
  assert.equal(r.value.seq, 0n);
  assert.equal(r.value.payload.toString(), 'after');
});

test("redex tail: the tail's own signal ends a for-await loop blocked in libnet, and closes the tail", async (t) => {
  const redex = Redex.open();
  t.after(() => redex.close());
  const file = redex.openFile('wake/tail-loop');
  t.after(() => file.close());
  const calls = record(t, 'redex_tail_next');
  await untilWon(200, 3, async () => {
    calls.clear();
    const ac = new AbortController();
    const tail = file.tail(file.nextSeq, { signal: ac.signal });
    const loop = settle(
      (async () => {
        for await (const _ of tail) assert.fail('nothing was appended');
      })(),
    );
    await letItBlock();
    ac.abort();
    const { error } = await loop;
    assert.ok(isAbort(error), String(error));
    assert.equal(tail.closed, true);
    // The abort closed the tail (its free woke the call: NET_END) and cancelled the call.
    const last = calls.last();
    return last !== undefined && (last.status === S.NET_END || interruptedWhileWaiting(last.message));
  });
});

// ---- CortEX model and watch ------------------------------------------------------------

test('model: close() wakes a waitForSeq blocked forever (ShuttingDownError)', async (t) => {
  const redex = Redex.open();
  t.after(() => redex.close());
  const calls = record(t, 'model_wait_for_seq');
  await untilWon(200, 3, async (round) => {
    calls.clear();
    const model = round % 2 ? Memories.open(redex, 1) : Tasks.open(redex, 1);
    const pending = settle(model.waitForSeq(1_000_000n));
    await letItBlock();
    model.close();
    const { error } = await pending;
    assert.ok(error instanceof ShuttingDownError, String(error));
    const last = calls.last();
    return last !== undefined && interruptedWhileWaiting(last.message);
  });
});

test('model: an abort wakes a blocked waitForSeq; the model works on', async (t) => {
  const redex = Redex.open();
  t.after(() => redex.close());
  const tasks = Tasks.open(redex, 1);
  t.after(() => tasks.close());
  const calls = record(t, 'model_wait_for_seq');
  await untilWon(200, 3, async () => {
    calls.clear();
    const ac = new AbortController();
    const pending = settle(tasks.waitForSeq(1_000_000n, undefined, { signal: ac.signal }));
    await letItBlock();
    ac.abort(new Error('stop waiting'));
    const { error } = await pending;
    assert.equal(error.message, 'stop waiting', 'rejects with the signal reason');
    const last = calls.last();
    return last !== undefined && last.status === S.NET_ERR_CANCELLED && interruptedWhileWaiting(last.message);
  });
  assert.equal(await tasks.waitForSeq(tasks.create(1, 'after'), 5000), true);
});

test('watch: close() wakes a next() blocked forever', async (t) => {
  const redex = Redex.open();
  t.after(() => redex.close());
  const models = [Tasks.open(redex, 1), Memories.open(redex, 1)];
  t.after(() => models.forEach((m) => m.close()));
  const calls = record(t, 'model_watch_next');
  await untilWon(200, 3, async (round) => {
    calls.clear();
    const { watch } = models[round % 2].snapshotAndWatch(); // only later changes: next() blocks
    const pending = watch.next();
    await letItBlock();
    watch.close();
    assert.deepEqual(await pending, DONE);
    return calls.last()?.status === S.NET_END;
  });
});

test("watch: closing its model ends a next() blocked forever", async (t) => {
  const redex = Redex.open();
  t.after(() => redex.close());
  const calls = record(t, 'model_watch_next');
  await untilWon(200, 3, async (round) => {
    calls.clear();
    const model = round % 2 ? Memories.open(redex, 1) : Tasks.open(redex, 1);
    const { watch } = model.snapshotAndWatch();
    const pending = watch.next();
    await letItBlock();
    // Under way: the call was issued and has not come back yet.
    const underWay = calls.last() === undefined && internal.waits().live > 0;
    model.close();
    assert.deepEqual(await pending, DONE);
    assert.equal(calls.last().status, S.NET_END);
    assert.equal(watch.closed, true, 'an ended watch releases its handle');
    return underWay;
  });
});

test('watch: an abort wakes a blocked next(); the watch reads on', async (t) => {
  const redex = Redex.open();
  t.after(() => redex.close());
  const tasks = Tasks.open(redex, 1);
  t.after(() => tasks.close());
  const { watch } = tasks.snapshotAndWatch();
  t.after(() => watch.close());
  const calls = record(t, 'model_watch_next');
  await abortWakes(calls, (signal) => watch.next(undefined, { signal }), interruptedWhileWaiting);
  tasks.create(7, 'seen');
  const r = await watch.next(5000);
  assert.deepEqual(r.value.rows.map((row) => row.id), [7n]);
});

// ---- mesh node and stream ---------------------------------------------------------------

test('mesh node: close() wakes a recv() blocked forever (it resolves null)', async (t) => {
  const calls = record(t, 'mesh_recv_batch');
  await untilWon(200, 3, async () => {
    calls.clear();
    const node = Mesh.open(FAST);
    const pending = node.recv(16);
    await letItBlock();
    node.close();
    assert.equal(await pending, null);
    return calls.last()?.status === S.NET_END;
  });
});

test('mesh node: close() wakes an accept() blocked forever (ShuttingDownError)', async (t) => {
  const calls = record(t, 'mesh_accept');
  await untilWon(200, 3, async () => {
    calls.clear();
    const node = Mesh.open(FAST);
    const pending = settle(node.accept(99n));
    await letItBlock();
    node.close();
    const { error } = await pending;
    assert.ok(error instanceof ShuttingDownError, String(error));
    // Woken in its wait ("shut down"), not refused at the door ("freed").
    return /shut down/.test(calls.last()?.message ?? '');
  });
});

test('mesh node: an abort wakes a blocked recv() and accept(); the node works on', async (t) => {
  const [a, b] = [Mesh.open(FAST), Mesh.open(FAST)];
  t.after(() => {
    a.close();
    b.close();
  });
  const recvs = record(t, 'mesh_recv_batch');
  const accepts = record(t, 'mesh_accept');
  await untilWon(200, 4, async (round) => {
    recvs.clear();
    accepts.clear();
    const ac = new AbortController();
    const pending = settle(round % 2 ? a.accept(99n, undefined, { signal: ac.signal }) : a.recv(16, undefined, { signal: ac.signal }));
    await letItBlock();
    ac.abort();
    const { error } = await pending;
    assert.ok(isAbort(error), String(error));
    const last = (round % 2 ? accepts : recvs).last();
    return last !== undefined && last.status === S.NET_ERR_CANCELLED && cutShort(last.message);
  });
  await b.connect(a.localAddr, a.publicKey, a.nodeId);
  b.openStream(a.nodeId, 1n, { reliable: true }).send('still here');
  const [e] = await a.recv(1, 10000);
  assert.equal(e.data.toString(), 'still here');
});

/** A stream from `a` to `b` (already shut down) whose window of 200 is spent: a send blocks forever. */
function stalledStream(a, b, id) {
  const s = a.openStream(b.nodeId, id, { window: 200 });
  s.send(Buffer.alloc(100, 7)); // 184 of 200 spent
  return s;
}

test('mesh stream: close() wakes a sendBlocking() blocked forever (MeshStreamClosedError)', async (t) => {
  const [a, b] = [Mesh.open(FAST), Mesh.open(FAST)];
  t.after(() => {
    a.close();
    b.close();
  });
  await a.connect(b.localAddr, b.publicKey, b.nodeId);
  b.shutdown(); // no grant will ever come
  const calls = record(t, 'mesh_stream_send_blocking');
  await untilWon(200, 3, async (round) => {
    calls.clear();
    const s = stalledStream(a, b, BigInt(round + 1));
    const pending = settle(s.sendBlocking([Buffer.alloc(100, 8)]));
    await letItBlock();
    s.close();
    const { error } = await pending;
    // MeshStreamClosedError: woken in its wait; ShuttingDownError: freed before it began.
    assert.ok(error instanceof MeshStreamClosedError || error instanceof ShuttingDownError, String(error));
    return calls.last()?.status === S.NET_ERR_MESH_STREAM_CLOSED;
  });
});

test('mesh stream: an abort wakes a blocked sendBlocking(); no thread stays held', async (t) => {
  const [a, b] = [Mesh.open(FAST), Mesh.open(FAST)];
  t.after(() => {
    a.close();
    b.close();
  });
  await a.connect(b.localAddr, b.publicKey, b.nodeId);
  b.shutdown();
  const s = stalledStream(a, b, 1n);
  t.after(() => s.close());
  const calls = record(t, 'mesh_stream_send_blocking');
  await abortWakes(calls, (signal) => s.sendBlocking([Buffer.alloc(100, 8)], undefined, { signal }), cutShort);
  assert.equal(internal.waits().live, 0, 'no blocking call is left in flight');
});

// ---- bus ----------------------------------------------------------------------------------

test('bus: close() wakes a flush() blocked forever (ShuttingDownError), and drains losslessly', async (t) => {
  const calls = record(t, 'bus_flush');
  await untilWon(200, 3, async () => {
    calls.clear();
    const bus = Bus.open(PATIENT);
    bus.ingest(Buffer.alloc(8, 1));
    const pending = settle(bus.flush());
    await letItBlock();
    bus.close(); // the free wakes the flush, then shuts down (the drain dispatches the event)
    const { error } = await pending;
    assert.ok(error instanceof ShuttingDownError, String(error));
    return interruptedWhileWaiting(calls.last()?.message ?? '');
  });
});

test('bus: an abort wakes a blocked flush(); nothing is lost', async (t) => {
  const bus = Bus.open(PATIENT);
  t.after(() => bus.close());
  bus.ingest(Buffer.alloc(8, 1));
  const calls = record(t, 'bus_flush');
  await abortWakes(calls, (signal) => bus.flush({ signal }), cutShort);
  const report = await bus.shutdown();
  assert.equal(report.shutdown_was_lossy, false);
});

// ---- the log puller ---------------------------------------------------------------------------

/**
 * The puller never keeps the process alive (its thread is unref'd): a test
 * awaiting one of its messages keeps the event loop alive itself.
 */
function keepAlive(t) {
  const timer = setInterval(() => {}, 1000);
  t.after(() => clearInterval(timer));
}

test('log: stopping the puller (its cancel) wakes its pull blocked forever', async (t) => {
  keepAlive(t);
  t.after(() => netmesh.setLogLevel('warn'));
  await untilWon(100, 3, async () => {
    netmesh.setLogLevel('warn'); // (re)starts the puller thread, blocked in net_log_next
    assert.equal(internal.logPullerRunning(), true);
    assert.equal(await internal.logPullerPulling(), true); // its thread is about to pull
    await letItBlock();
    const stopped = internal.logPullerStopped();
    netmesh.setLogLevel('off'); // cancels its token
    const { status, message } = await stopped;
    assert.equal(status, S.NET_ERR_CANCELLED, message);
    return interruptedWhileWaiting(message);
  });
});

test('log: records reach the hook (and process.emitWarning by default)', async (t) => {
  keepAlive(t);
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'netmesh-log-'));
  t.after(() => fs.rmSync(base, { recursive: true, force: true }));
  const provoke = (dir) => {
    // A garbage manifest: recovery rewrites it and logs a warning.
    fs.mkdirSync(path.join(dir, 'log', 'chan'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'log', 'chan', 'manifest'), 'not a manifest at all');
    const redex = new Redex(dir);
    redex.openFile('log/chan', { persistent: true }).close();
    redex.close();
  };
  netmesh.setLogLevel('warn');
  const records = [];
  let resolveRecord;
  const got = new Promise((resolve) => {
    resolveRecord = resolve;
  });
  const old = netmesh.setLogHook((r) => {
    records.push(r);
    if (/recovery/.test(r.text)) resolveRecord(r);
  });
  t.after(() => netmesh.setLogHook(null));
  assert.equal(old, netmesh.defaultLogHook);
  provoke(path.join(base, 'hook'));
  const r = await got;
  assert.equal(r.level, 'warn');
  assert.equal(r.levelNumber, netmesh.Constants.NET_LOG_WARN);
  assert.ok(r.target.length > 0 && r.text.startsWith(`${r.target}: `), r.text);

  // The default hook: a process warning.
  netmesh.setLogHook(null);
  const warned = new Promise((resolve) => {
    const on = (w) => {
      if (w.name === 'NetmeshWarning' && /recovery/.test(w.message)) {
        process.off('warning', on);
        resolve(w);
      }
    };
    process.on('warning', on);
  });
  provoke(path.join(base, 'default'));
  const w = await warned;
  assert.equal(w.code, 'NETMESH_LOG_WARN');
  assert.throws(() => netmesh.setLogLevel('loud'), TypeError);
  assert.equal(netmesh.getLogLevel(), 'warn');
});
