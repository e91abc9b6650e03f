'use strict';
// Lifetimes that need a fresh process: the finalizer safety net, and the
// async pool never keeping a process alive.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');

function runChild(code, args = []) {
  return spawnSync(process.execPath, [...args, '-e', code], {
    cwd: process.cwd(),
    env: process.env,
    encoding: 'utf8',
    timeout: 30_000,
  });
}

test('an unreachable Identity is freed by the finalizer', () => {
  const r = runChild(
    `
    const { Identity, internal } = require('netmesh');
    let handles = [];
    (function () {
      for (let i = 0; i < 20; i++) handles.push(internal.rawHandle(Identity.generate()));
    })();
    (async () => {
      for (let i = 0; i < 200; i++) {
        global.gc();
        await new Promise((r) => setTimeout(r, 5));
        const freed = handles.filter((h) => internal.fns.net_identity_origin_hash(h, [0n]) === -2).length;
        if (freed === handles.length) { console.log('freed', freed); return; }
      }
      console.log('not all freed');
      process.exitCode = 1;
    })();
    `,
    ['--expose-gc'],
  );
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /freed 20/);
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
