'use strict';
// bench-async: what an async (off-the-event-loop) call costs from Node, one
// line per measure, `<name> <float>`:
//   sign_async_seq_per_sec      signAsync of 64 B, one at a time (round-trip latency)
//   sign_async_par_per_sec      signAsync of 64 B, 64 in flight (throughput)
//   koffi_sign_seq_per_sec      the same call as a bare koffi async call (libuv's
//   koffi_sign_par_per_sec      threadpool; no error detail), one at a time / 64 in flight
//   append_async_seq_per_sec    appendAsync of 100 B to a memory file, one at a time
//   sign_64mib_async_ms         one signAsync of 64 MiB (sync_ms for the same call next to it)
//   tail_backfill_per_sec       for-await over a tail of 200 000 entries of 100 B
//   tail_live_latency_us        append -> delivery to a tail whose next() was pending (median)
// Best of ROUNDS. Loads the package from NETMESH_BENCH_PACKAGE (default `..`),
// so the same script can measure another build of the SDK.

const path = require('node:path');

const pkg = process.env.NETMESH_BENCH_PACKAGE ? path.resolve(process.env.NETMESH_BENCH_PACKAGE) : '..';
const { Identity, Redex, internal } = require(pkg);

const ROUNDS = 3;

async function best(fn) {
  let b = 0;
  for (let r = 0; r < ROUNDS; r++) b = Math.max(b, await fn());
  return b;
}

async function bestMin(fn) {
  let b = Infinity;
  for (let r = 0; r < ROUNDS; r++) b = Math.min(b, await fn());
  return b;
}

function secs(t0) {
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function main() {
  const id = Identity.fromSeed(Buffer.alloc(32, 1));
  const small = Buffer.alloc(64, 2);
  for (let i = 0; i < 200; i++) await id.signAsync(small); // warm up

  const seq = await best(async () => {
    const n = 5000;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await id.signAsync(small);
    return n / secs(t0);
  });
  console.log(`sign_async_seq_per_sec ${seq.toFixed(0)}`);

  const par = await best(async () => {
    const n = 20000;
    const inFlight = 64;
    let next = 0;
    const t0 = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < n) {
          next++;
          await id.signAsync(small);
        }
      }),
    );
    return n / secs(t0);
  });
  console.log(`sign_async_par_per_sec ${par.toFixed(0)}`);

  // The bare koffi async call behind what signAsync does on the worker pool.
  const { fns, rawHandle } = internal;
  const handle = rawHandle(id);
  const koffiSign = () =>
    new Promise((resolve, reject) => {
      const out = {};
      fns.net_identity_sign.async(handle, small, small.length, out, (err, status) => {
        if (err || status !== 0) return reject(err || new Error(`status ${status}`));
        fns.net_bytes_free(out);
        resolve();
      });
    });
  const kseq = await best(async () => {
    const n = 5000;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await koffiSign();
    return n / secs(t0);
  });
  console.log(`koffi_sign_seq_per_sec ${kseq.toFixed(0)}`);
  const kpar = await best(async () => {
    const n = 20000;
    let next = 0;
    const t0 = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < n) {
          next++;
          await koffiSign();
        }
      }),
    );
    return n / secs(t0);
  });
  console.log(`koffi_sign_par_per_sec ${kpar.toFixed(0)}`);

  const redex = new Redex();
  const file = redex.openFile('bench/async');
  const payload = Buffer.alloc(100, 3);
  const app = await best(async () => {
    const n = 5000;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await file.appendAsync(payload);
    return n / secs(t0);
  });
  console.log(`append_async_seq_per_sec ${app.toFixed(0)}`);

  const big = Buffer.alloc(64 << 20, 4);
  let t0 = process.hrtime.bigint();
  id.sign(big);
  const syncMs = secs(t0) * 1000;
  const bigMs = await bestMin(async () => {
    const t = process.hrtime.bigint();
    await id.signAsync(big);
    return secs(t) * 1000;
  });
  console.log(`sign_64mib_async_ms ${bigMs.toFixed(1)} (sync_ms ${syncMs.toFixed(1)})`);

  const log = redex.openFile('bench/tail');
  const ENTRIES = 200_000;
  const batch = Array(1000).fill(payload);
  for (let i = 0; i < ENTRIES; i += batch.length) log.appendBatch(batch);
  const backfill = await best(async () => {
    const tail = log.tail(0n);
    let n = 0;
    t0 = process.hrtime.bigint();
    for await (const item of tail) {
      if (item.lagged) continue;
      if (++n === ENTRIES) break;
    }
    return ENTRIES / secs(t0);
  });
  console.log(`tail_backfill_per_sec ${backfill.toFixed(0)}`);

  const live = await bestMin(async () => {
    const tail = log.tail(log.nextSeq);
    const samples = [];
    for (let i = 0; i < 300; i++) {
      const pending = tail.next();
      await new Promise((r) => setImmediate(r)); // let the next() reach its wait
      const t = process.hrtime.bigint();
      log.append(payload);
      await pending;
      samples.push(Number(process.hrtime.bigint() - t) / 1000);
    }
    tail.close();
    samples.sort((a, b) => a - b);
    return samples[samples.length >> 1];
  });
  console.log(`tail_live_latency_us ${live.toFixed(1)}`);

  log.close();
  file.close();
  redex.close();
  id.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
