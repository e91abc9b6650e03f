'use strict';
// bench-compute: events/s through a stateful counter daemon written in
// JavaScript (a Daemon subclass; its methods run on the main thread),
// compared with the same daemon written in C (sdk-c/bench/bench_compute.c):
// 20 000 events of 64 bytes delivered in batches of 256 with
// Compute.deliverBatch (one work item per batch, process() per event) and
// one per Compute.deliver, timed from the first delivery until
// Compute.waitProcessed sees them all; one 8-byte output per event. Best of
// 5 rounds each, a fresh daemon per round. Prints two lines:
// compute_daemon_batch_events_per_sec <float>
// compute_daemon_events_per_sec <float>

const { Compute, Daemon, Delivery, Mesh } = require('..');

const EVENT = 64;
const EVENTS = 20000;
const ROUNDS = 5;
const BATCH = 256;
const PRODUCER = 0xfeed000000000001n;

/** Counts events, refusing any that is not its producer's next one. */
class Counter extends Daemon {
  count = 0n;
  last = 0n;

  process(event) {
    if (event.sequence !== this.last + 1n) throw new Error(`sequence ${event.sequence} after ${this.last}`);
    this.last = event.sequence;
    this.count += 1n;
    const out = Buffer.allocUnsafe(8);
    out.writeBigUInt64LE(this.count);
    return [out];
  }
}

/** One round with a fresh daemon: events/s. */
async function roundRate(rt, r, batched) {
  const payload = Buffer.alloc(EVENT, 0x65);
  const counter = new Counter();
  const origin = rt.spawn('counter', Buffer.alloc(32, 0x40 + r), counter);
  const t0 = process.hrtime.bigint();
  if (batched) {
    const batch = Array(BATCH).fill(payload);
    for (let first = 1; first <= EVENTS; first += BATCH) {
      const n = Math.min(BATCH, EVENTS + 1 - first);
      const done = await rt.deliverBatch(origin, PRODUCER, BigInt(first), n === BATCH ? batch : batch.slice(0, n));
      if (done === null || done.length !== n) throw new Error(`batch at ${first} was not delivered`);
    }
  } else {
    for (let seq = 1n; seq <= BigInt(EVENTS); seq++) {
      if ((await rt.deliver(origin, PRODUCER, seq, payload)) !== Delivery.PROCESSED) {
        throw new Error(`event ${seq} was not processed here`);
      }
    }
  }
  if ((await rt.waitProcessed(origin, EVENTS, 10000)) === null) throw new Error('the daemon did not process every event in time');
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (counter.count !== BigInt(EVENTS)) throw new Error(`the counter is at ${counter.count}, not ${EVENTS}`);
  await rt.stop(origin);
  return EVENTS / secs;
}

async function main() {
  const mesh = Mesh.open({ psk: Buffer.alloc(32, 0x5a) });
  const rt = Compute.open(mesh, { workTimeoutMs: 10000 });
  rt.register('counter', () => new Counter());
  const best = [0, 0];
  try {
    for (let r = 0; r < 2 * ROUNDS; r++) {
      const batched = r % 2 === 0 ? 1 : 0;
      best[batched] = Math.max(best[batched], await roundRate(rt, r, batched === 1));
    }
  } finally {
    await rt.closeAsync();
    mesh.close();
  }
  console.log(`compute_daemon_batch_events_per_sec ${best[1].toFixed(0)}`);
  console.log(`compute_daemon_events_per_sec ${best[0].toFixed(0)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
