'use strict';
// Shared helpers of the node:test suite. The suite runs against the installed
// (packed) netmesh: `require('netmesh')` resolves from the test project.

const fs = require('node:fs');
const path = require('node:path');

const NET_ROOT = process.env.NET_ROOT;
if (!NET_ROOT) throw new Error('NET_ROOT (the repository root) must be set');

function vectors(name) {
  return JSON.parse(fs.readFileSync(path.join(NET_ROOT, 'tests', 'vectors', `${name}.json`), 'utf8'));
}

const hex = (s) => Buffer.from(s.replace(/^0x/, ''), 'hex');
const u64 = (s) => (typeof s === 'number' ? BigInt(s) : BigInt(s));

/** Resolves when `promise` settles, with { ok, value } or { ok: false, error }. */
async function settle(promise) {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Closes `identity` when test `t` ends (Node 20 has no `using` syntax). */
function own(t, identity) {
  t.after(() => identity.close());
  return identity;
}

module.exports = { NET_ROOT, vectors, hex, u64, settle, own };
