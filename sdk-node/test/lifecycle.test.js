'use strict';
// Lifetimes that need a fresh process: the finalizer safety net (it warns
// and frees in the background, never on the event loop), the worker pool and
// the log puller never keeping a process alive, a pending blocking call
// keeping it alive until it settles, an exit (process.exit(), an uncaught
// exception) never hanging on a call blocked in libnet, and never crashing
// while a worker thread's call returns.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');

function runChild(code, args = [], env = {}) {
  return spawnSync(process.execPath, [...args, '-e', code], {
    cwd: process.cwd(),
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

test('an unreachable Identity is freed by the finalizer, in the background, with one warning', () => {
  const r = runChild(
    `
    const { Identity, internal } = require('netmesh');
    const warnings = [];
    process.on('warning', (w) => warnings.push(w));
    let handles = [];
    (function () {
      for (let i = 0; i < 20; i++) handles.push(internal.rawHandle(Identity.generate()));
    })();
    (async () => {
      for (let i = 0; i < 200; i++) {
        global.gc();
        await new Promise((r) => setTimeout(r, 5));
        const freed = handles.filter((h) => internal.fns.net_identity_origin_hash(h, [0n]) === -2).length;
        if (freed === handles.length) {
          await new Promise((r) => setTimeout(r, 5));
          const leaks = internal.leaks();
          const leakWarnings = warnings.filter((w) => w.name === 'NetmeshLeakWarning');
          console.log('freed', freed, 'background', leaks.freed, 'leaked', leaks.leaked.Identity);
          console.log('warnings', leakWarnings.length, leakWarnings.map((w) => w.code + ': ' + w.message).join(' | '));
          return;
        }
      }
      console.log('not all freed');
      process.exitCode = 1;
    })();
    `,
    ['--expose-gc'],
  );
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /freed 20 background 20 leaked 20/);
  // One warning per turn of the event loop, saying how many (not 20 lines).
  const [, count] = /warnings (\d+)/.exec(r.stdout);
  assert.ok(Number(count) >= 1 && Number(count) < 20, r.stdout);
  assert.match(r.stdout, /NETMESH_LEAK: \d+ Identity objects? (was|were) garbage-collected without close\(\)/);
});

test('the finalizers of every handle type free in the background (a bus with events drains off the event loop)', () => {
  const r = runChild(
    `
    const netmesh = require('netmesh');
    const { internal } = netmesh;
    process.on('warning', () => {});
    (function () {
      const redex = netmesh.Redex.open();
      const file = redex.openFile('leak/file');
      file.append('x');
      file.tail(0n);
      const tasks = netmesh.Tasks.open(redex, 1);
      tasks.watch();
      netmesh.Memories.open(redex, 2);
      const mesh = netmesh.Mesh.open();
      const bus = netmesh.Bus.open({ num_shards: 1, adapter: { type: 'redex' } });
      bus.ingestBatch(Array.from({ length: 1000 }, () => Buffer.alloc(64)));
      new netmesh.RedisStreamDedup(8);
      void mesh;
    })();
    (async () => {
      const want = ['Redex', 'RedexFile', 'RedexTail', 'Tasks', 'Memories', 'Watch', 'Mesh', 'Bus', 'RedisStreamDedup'];
      for (let i = 0; i < 400; i++) {
        global.gc();
        await new Promise((r) => setTimeout(r, 5));
        const l = internal.leaks();
        if (want.every((k) => l.leaked[k] === 1) && l.inFlight === 0) {
          console.log('leaked', Object.keys(l.leaked).sort().join(','), 'freed', l.freed, 'failed', l.failed);
          return;
        }
      }
      console.log('not all finalized', JSON.stringify(internal.leaks()));
      process.exitCode = 1;
    })();
    `,
    ['--expose-gc'],
  );
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /freed 9 failed 0/);
});

test('a closed Identity is not freed again by the finalizer', () => {
  const r = runChild(
    `
    const { Identity } = require('netmesh');
    (function () { for (let i = 0; i < 50; i++) Identity.generate().close(); })();
    (async () => {
      for (let i = 0; i < 20; i++) { global.gc(); await new Promise((r) => setTimeout(r, 2)); }
      console.log('ok');
    })();
    `,
    ['--expose-gc'],
  );
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /ok/);
});

test('the async pool does not keep the process alive, and does until a call settles', () => {
  const t0 = Date.now();
  const r = runChild(`
    const { Identity } = require('netmesh');
    const id = Identity.generate();
    // No await at top level and nothing else pending: the process must stay
    // up until the sign settles, then exit on its own.
    id.signAsync(Buffer.alloc(8 << 20)).then((sig) => { console.log('signed', sig.length); id.close(); });
  `);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /signed 64/);
  assert.ok(Date.now() - t0 < 20_000);
});

test('a pending tail.next() keeps the process alive until it settles, then the process exits', () => {
  const r = runChild(`
    const { Redex } = require('netmesh');
    const redex = Redex.open();
    const file = redex.openFile('alive/tail');
    const tail = file.tail(0n);
    tail.next().then((item) => {
      console.log('got', item.value.payload.toString());
      tail.close();
      file.close();
      redex.close();
    });
    // Nothing else is pending but this (unref'd) timer: the blocked call keeps the loop alive.
    setTimeout(() => file.append('late'), 200).unref();
  `);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /got late/);
});

test('process.exit() and an uncaught exception do not hang on calls blocked forever in libnet', () => {
  for (const ending of ['process.exit(3)', "throw new Error('boom')"]) {
    const t0 = Date.now();
    const r = runChild(`
      const netmesh = require('netmesh');
      const redex = netmesh.Redex.open();
      const file = redex.openFile('exit/tail');
      file.tail(0n).next(); // blocked in net_redex_tail_next for ever
      const tasks = netmesh.Tasks.open(redex, 1);
      tasks.waitForSeq(1000000n); // and in net_model_wait_for_seq
      const mesh = netmesh.Mesh.open();
      mesh.recv(); // and in net_mesh_recv_batch
      setTimeout(() => { ${ending}; }, 100);
    `);
    assert.equal(r.signal, null, `${ending}: killed (hung?) after ${Date.now() - t0} ms: ${r.stderr}`);
    assert.equal(r.status, ending.startsWith('process') ? 3 : 1, r.stdout + r.stderr);
  }
});

test('the log puller never keeps the process alive; NETMESH_LOG_LEVEL=off starts none', () => {
  let r = runChild(`
    const { internal, getLogLevel } = require('netmesh');
    const hold = setInterval(() => {}, 1000);
    internal.logPullerPulling().then((pulling) => {
      console.log('pulling', pulling, getLogLevel());
      clearInterval(hold); // the process ends now, with the puller blocked in net_log_next
    });
  `);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /pulling true warn/);
  r = runChild(
    `
    const { internal, getLogLevel } = require('netmesh');
    console.log('running', internal.logPullerRunning(), getLogLevel());
  `,
    [],
    { NETMESH_LOG_LEVEL: 'off' },
  );
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /running false off/);
});

test('a process exiting while the log puller or a pool worker returns from a call never crashes', async () => {
  // On exit the puller's pull is cancelled, and Node then terminates the
  // worker threads: a termination landing while koffi converted a returning
  // call crashed the process (SIGSEGV) — after meshes had run, about one
  // natural exit in 40; with pooled calls under way at process.exit(),
  // about one in 75. Many short-lived processes of each kind, side by side.
  const puller = `
    const { internal, Mesh } = require('netmesh');
    const hold = setInterval(() => {}, 1000);
    internal.logPullerPulling().then(() => {
      const psk = Buffer.alloc(32, 0x5a);
      for (const m of [Mesh.open({ psk }), Mesh.open({ psk })]) {
        m.start();
        m.close();
      }
      clearInterval(hold); // the process ends now, the puller blocked in net_log_next
    });
  `;
  const pool = `
    const { Identity } = require('netmesh');
    const id = Identity.generate();
    const message = Buffer.alloc(1 << 20, 1);
    Promise.all([id.signAsync(message), id.signAsync(message)]).then(() => { // the pool is up
      for (let i = 0; i < 8; i++) id.signAsync(message);
      setImmediate(() => process.exit(0)); // with pooled calls under way
    });
  `;
  const once = (code) =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, ['-e', code], { cwd: process.cwd(), stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.on('exit', (status, signal) => resolve({ status, signal, stderr }));
    });
  for (let i = 0; i < 60; i++) {
    const [a, b] = await Promise.all([once(puller), once(pool)]);
    assert.deepEqual([a.status, a.signal], [0, null], `exit ${i} (puller): ${a.stderr}`);
    assert.deepEqual([b.status, b.signal], [0, null], `exit ${i} (pool): ${b.stderr}`);
  }
});
