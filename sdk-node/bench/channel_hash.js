'use strict';
// bench-ffi: nanoseconds per synchronous koffi call of net_channel_hash from
// Node, with a preallocated name buffer and output slot. Prints one line:
//   channel_hash_ns_per_call <float>
// Uses the bundled libnet, or NET_LIBRARY_PATH (the Makefile defaults it to
// the staged build).

const { internal } = require('..');

const CALLS = 1_000_000;
const RUNS = 5;
const fn = internal.fns.net_channel_hash;
const name = Buffer.from('sensors/lidar');
const nameLen = name.length;
const out = new Uint16Array(1);

if (fn(name, nameLen, out) !== 0 || out[0] !== 0xe5d8) {
  console.error('net_channel_hash gave an unexpected result');
  process.exit(1);
}

function run(n) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(name, nameLen, out);
  return Number(process.hrtime.bigint() - t0) / n;
}

run(50_000); // warm up (JIT, koffi call path)
let best = Infinity;
for (let r = 0; r < RUNS; r++) best = Math.min(best, run(CALLS));
console.log(`channel_hash_ns_per_call ${best.toFixed(1)}`);
