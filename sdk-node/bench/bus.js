'use strict';
// bench-bus: batch ingest into the event bus from Node, compared with the
// same batches from C (sdk-c/bench/bench_bus.c): 2 000 batches of 1 024
// events of 64 bytes (an array of Buffers, built once) through
// Bus.ingestBatch into a bus over the embedded adapter with memory files (the
// discard adapter is test-only; the ingest path measured does not depend on
// the adapter); best of 5 rounds, a fresh bus per round. Prints one line: bus_batch_events_per_sec <float>

const { Bus } = require('..');

const EVENT = 64;
const BATCH = 1024;
const BATCHES = 2000;
const ROUNDS = 5;
const CONFIG = { num_shards: 2, shard_capacity: 4194304, adapter: { type: 'redex' } };

const batch = Array.from({ length: BATCH }, (_, i) => Buffer.alloc(EVENT, 97 + (i % 26)));
let best = 0;
for (let r = 0; r < ROUNDS; r++) {
  const bus = Bus.open(CONFIG);
  const t0 = process.hrtime.bigint();
  for (let b = 0; b < BATCHES; b++) {
    if (bus.ingestBatch(batch).taken !== BATCH) {
      console.error('backpressure in the benchmark');
      process.exit(1);
    }
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  best = Math.max(best, (BATCH * BATCHES) / secs);
  bus.close();
}
console.log(`bus_batch_events_per_sec ${best.toFixed(0)}`);
