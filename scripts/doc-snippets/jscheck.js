'use strict';
// Checks the JS blocks of the guides against the netmesh package in sdk-node.
//
// Run by scripts/check-doc-snippets.py: `node jscheck.js BLOCKS.json WORKDIR`
// with NETMESH_SDK naming sdk-node (its node_modules installed) and
// NET_LIBRARY_PATH the staged libnet. Prints one JSON line: a list of
// {id, kind, errors, detail}.
//
// Each block becomes the body of `async function snippet() { ... }` in a
// file of its own (after its declarations and setup), and is
//   1. syntax-checked by `node --check`;
//   2. type-checked against the SDK's index.d.ts by tsc (allowJs, checkJs,
//      strictNullChecks; one tsc run for all blocks): unknown exports,
//      methods and properties, wrong arity and argument types are errors;
//   3. required at run time: every name destructured from require('netmesh')
//      must exist in the loaded module;
//   4. executed (node, with a timeout) when it has no `declare:` context and
//      no `no-run:` reason: its free variables all have values.
// A placeholder body `{ … }` / `{ ... }` in a block is read as an empty one.

const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const [specPath, work] = process.argv.slice(2);
const sdk = process.env.NETMESH_SDK;
const blocks = JSON.parse(fs.readFileSync(specPath, 'utf8'));
const results = new Map(blocks.map((b) => [b.id, { id: b.id, kind: 'fragment', errors: [], detail: '' }]));

fs.mkdirSync(path.join(work, 'node_modules'), { recursive: true });
const link = path.join(work, 'node_modules', 'netmesh');
if (!fs.existsSync(link)) fs.symlinkSync(sdk, link);

function placeholders(code) {
  return code.replace(/\{\s*(?:…|\.\.\.)\s*\}/g, '{ /* … */ }').replace(/^(\s*)(?:…|\.\.\.)\s*$/gm, '$1/* … */');
}

// file line (1-based) -> guide line, per block
const lineMaps = new Map();
const files = [];
for (const b of blocks) {
  const out = ['// @ts-check', "'use strict';"];
  const map = [null, null, null]; // index 0 unused; lines 1 and 2 are the prologue
  const push = (text, docLine) => {
    for (const [i, l] of text.split('\n').entries()) {
      out.push(l);
      map.push(docLine === null ? null : docLine + i);
    }
  };
  // A declared variable has a type and no value: initialise it (as any) so
  // that strictNullChecks does not call its uses "used before assigned".
  for (const d of b.declare) push(d.replace(/\blet\s+(\w+)\s*;/g, 'let $1 = /** @type {any} */ (undefined);'), null);
  push('async function snippet() {', null);
  for (const s of b.setup) push(s, null);
  push(placeholders(b.code).replace(/\n$/, ''), b.line);
  push('}', null);
  push('module.exports = snippet;', null);
  const file = path.join(work, `b${b.id}.js`);
  fs.writeFileSync(file, out.join('\n') + '\n');
  lineMaps.set(b.id, map);
  files.push(file);
}

function where(b, fileLine) {
  const docLine = lineMaps.get(b.id)[fileLine];
  return docLine == null ? `${b.path}:${b.line} (context)` : `${b.path}:${docLine}`;
}

// 1. syntax
for (const b of blocks) {
  const r = spawnSync(process.execPath, ['--check', path.join(work, `b${b.id}.js`)], { encoding: 'utf8' });
  if (r.status !== 0) {
    const m = /:(\d+)\n/.exec(r.stderr);
    results.get(b.id).errors.push(`${m ? where(b, Number(m[1])) : b.path + ':' + b.line}: node --check: ${r.stderr.trim()}`);
  }
}

// 2. types
const tsconfig = {
  compilerOptions: {
    allowJs: true, checkJs: true, noEmit: true, strict: false, strictNullChecks: true, skipLibCheck: true,
    target: 'es2022', lib: ['es2022', 'esnext.disposable'],
    module: 'nodenext', moduleResolution: 'nodenext', moduleDetection: 'force',
    types: ['node'], typeRoots: [path.join(sdk, 'node_modules', '@types')],
  },
  files: files.map((f) => path.basename(f)),
};
fs.writeFileSync(path.join(work, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
const tsc = spawnSync(path.join(sdk, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json', '--pretty', 'false'],
  { cwd: work, encoding: 'utf8' });
for (const line of (tsc.stdout + tsc.stderr).split('\n')) {
  const m = /^b(\d+)\.js\((\d+),(\d+)\): (error .*)$/.exec(line);
  if (m) {
    const b = blocks.find((x) => x.id === Number(m[1]));
    results.get(b.id).errors.push(`${where(b, Number(m[2]))}: tsc: ${m[4]}`);
  } else if (line.trim() && tsc.status !== 0 && !/^\s/.test(line)) {
    for (const b of blocks) results.get(b.id).errors.push(`tsc: ${line}`);
  }
}

// 3. names required from 'netmesh' exist at run time
const netmesh = require(sdk);
const requireRe = /(?:const|let|var)\s*\{([^}]*)\}\s*=\s*require\(\s*['"]netmesh['"]\s*\)/g;
for (const b of blocks) {
  for (const text of [...b.setup, b.code]) {
    for (const m of text.matchAll(requireRe)) {
      for (const part of m[1].split(',')) {
        const name = part.split(':')[0].trim();
        if (name && !(name in netmesh)) {
          results.get(b.id).errors.push(`${b.path}:${b.line}: require('netmesh').${name} is undefined at run time`);
        }
      }
    }
  }
}

// 4. run what can run
for (const b of blocks) {
  const r = results.get(b.id);
  if (b.declare.length) {
    r.detail = 'type-checked (tsc), exports checked';
    continue;
  }
  r.kind = 'program';
  if (b.no_run) {
    r.detail = `type-checked, not run (${b.no_run})`;
    continue;
  }
  if (r.errors.length) continue;
  const runner = `require(${JSON.stringify(path.join(work, `b${b.id}.js`))})()` +
    '.then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });';
  const p = spawnSync(process.execPath, ['-e', runner], {
    cwd: b.tmp, encoding: 'utf8', timeout: 60000,
    env: { ...process.env, NODE_PATH: path.join(work, 'node_modules') },
  });
  if (p.status !== 0) {
    r.errors.push(`${b.path}:${b.line}: running it failed (${p.signal || 'exit status ' + p.status}):\n${p.stdout}${p.stderr}`);
  } else {
    r.detail = 'type-checked and run';
  }
}

process.stdout.write(JSON.stringify([...results.values()]) + '\n', () => process.exit(0));
