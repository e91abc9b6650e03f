'use strict';
// node_api: the public API of the Node SDK as Node itself sees it, as JSON on
// stdout, for scripts/check-sdk-parity.py.
//
//   node scripts/parity/node_api.js <sdk dir> [<NODE_V8_COVERAGE dir>]
//
// Requires the package (libnet from NET_LIBRARY_PATH) and walks
// module.exports: every exported function (with its `length`), and for every
// exported class its static methods, prototype methods and accessors along
// its prototype chain (while the classes are the package's own). Each
// function's source position comes from V8 ([[FunctionLocation]], through
// the inspector). With a coverage directory (raw V8 coverage written by
// NODE_V8_COVERAGE while the SDK's suite ran, from the packed copy of the
// package), each entry also gets `calls`: how many times the suite entered
// that function (0: never), found as the smallest covered function range
// that starts the function, matched by file path below the package root.
// `call_sites` lists, per C function, where the package uses it (with `ran`
// once coverage is known: the innermost covered block around it ran).
const fs = require('fs');
const path = require('path');
const inspector = require('inspector');
const { fileURLToPath } = require('url');

const sdkDir = path.resolve(process.argv[2] || '.');
const coverageDir = process.argv[3];

const session = new inspector.Session();
session.connect();
const scripts = new Map();
session.on('Debugger.scriptParsed', (m) => scripts.set(m.params.scriptId, m.params.url));
session.post('Debugger.enable');

function post(method, params) {
  let out;
  let failure;
  session.post(method, params, (err, result) => {
    failure = err;
    out = result;
  });
  if (failure) throw failure;
  if (out === undefined) throw new Error(`inspector ${method} did not answer synchronously`);
  return out;
}

function locate(fn) {
  globalThis.__netmeshParityProbe = fn;
  const { result } = post('Runtime.evaluate', { expression: 'globalThis.__netmeshParityProbe' });
  const props = post('Runtime.getProperties', { objectId: result.objectId, ownProperties: true });
  post('Runtime.releaseObject', { objectId: result.objectId });
  delete globalThis.__netmeshParityProbe;
  const loc = (props.internalProperties || []).find((p) => p.name === '[[FunctionLocation]]');
  if (!loc) return null;
  const { scriptId, lineNumber, columnNumber } = loc.value.value;
  let url = scripts.get(scriptId) || '';
  let file = url.startsWith('file:') ? fileURLToPath(url) : url;
  return { file, line: lineNumber, column: columnNumber };
}

const pkg = require(sdkDir);
const entries = [];

function ownFile(loc) {
  return loc && loc.file.startsWith(sdkDir + path.sep) && !loc.file.includes(`${path.sep}node_modules${path.sep}`);
}

function keyName(key) {
  return typeof key === 'symbol' ? `[${key.description}]` : key;
}

function add(name, kind, fn, arity) {
  const loc = locate(fn);
  if (!ownFile(loc)) return;
  entries.push({
    name,
    kind,
    arity,
    file: path.relative(sdkDir, loc.file),
    line: loc.line,
    column: loc.column,
    source_names: [...new Set(Function.prototype.toString.call(fn).match(/\bnet_[a-z0-9_]+/g) || [])].sort(),
  });
}

function isClass(fn) {
  return typeof fn === 'function' && /^class\b/.test(Function.prototype.toString.call(fn));
}

function walkClass(exportName, cls) {
  // Static methods, inherited ones included (class Tasks extends Model: Tasks.open).
  const statics = new Set();
  for (let c = cls; typeof c === 'function' && c !== Function.prototype; c = Object.getPrototypeOf(c)) {
    if (c !== cls && !ownFile(locate(c))) break;
    for (const key of Reflect.ownKeys(c)) {
      if (['length', 'name', 'prototype'].includes(key) || statics.has(key)) continue;
      if (typeof key === 'string' && key.startsWith('_')) continue;
      statics.add(key);
      const d = Object.getOwnPropertyDescriptor(c, key);
      if (typeof d.value === 'function') add(`${exportName}.${keyName(key)}`, 'static', d.value, d.value.length);
    }
  }
  const seen = new Set();
  for (let proto = cls.prototype; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    const ctor = proto.constructor;
    if (typeof ctor === 'function' && !ownFile(locate(ctor))) break; // a built-in base (Error, EventEmitter)
    for (const key of Reflect.ownKeys(proto)) {
      if (key === 'constructor' || seen.has(key)) continue;
      if (typeof key === 'string' && key.startsWith('_')) continue;
      seen.add(key);
      const d = Object.getOwnPropertyDescriptor(proto, key);
      const name = `${exportName}.${keyName(key)}`;
      if (typeof d.value === 'function') add(name, 'method', d.value, d.value.length);
      if (d.get) add(name, 'getter', d.get, 'get');
      if (d.set) add(`${name}=`, 'setter', d.set, 'set');
    }
  }
  add(`new ${exportName}`, 'constructor', cls, cls.length);
}

for (const [key, value] of Object.entries(pkg)) {
  if (key.startsWith('_')) continue;
  if (isClass(value)) walkClass(key, value);
  else if (typeof value === 'function') add(key, 'function', value, value.length);
}

// ---- coverage ----------------------------------------------------------------

function lineStarts(text) {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1);
  return starts;
}

// ---- call sites: where the package uses each C function -------------------------

// A small scanner over the package's own JavaScript (comments, strings,
// template literals and regular expressions told apart) finds the uses of
// net_* functions: `fns.net_x(...)`, `fn: fns.net_x`, `free('net_x_free', h)`
// -- not their declarations (`fns.net_x = lib.func(...)`, the *.gen.js files).
function uses(text) {
  const found = [];
  const n = text.length;
  let i = 0;
  let prev = ''; // the previous significant token, to tell a regex from a division
  const regexCanFollow = (tok) => tok === '' || /^[(,=:[!&|?{};+\-*%<>~^]$/.test(tok) ||
    ['return', 'typeof', 'case', 'do', 'else', 'in', 'of', 'new', 'delete', 'void', 'throw', 'yield', 'await', '=>'].includes(tok);
  while (i < n) {
    const c = text[i];
    if (c === '/' && text[i + 1] === '/') { while (i < n && text[i] !== '\n') i++; continue; }
    if (c === '/' && text[i + 1] === '*') { const e = text.indexOf('*/', i + 2); i = e < 0 ? n : e + 2; continue; }
    if (c === '"' || c === "'" || c === '`') {
      const s = i++;
      while (i < n && text[i] !== c) i += text[i] === '\\' ? 2 : 1;
      const body = text.slice(s + 1, i);
      if (c !== '`' && /^net_[a-z0-9_]+$/.test(body)) found.push({ name: body, offset: s });
      i++;
      prev = 'str';
      continue;
    }
    if (c === '/' && regexCanFollow(prev)) {
      i++;
      let cls = false;
      while (i < n && (text[i] !== '/' || cls) && text[i] !== '\n') {
        if (text[i] === '\\') i++;
        else if (text[i] === '[') cls = true;
        else if (text[i] === ']') cls = false;
        i++;
      }
      i++;
      while (i < n && /[a-z]/.test(text[i])) i++;
      prev = 're';
      continue;
    }
    if (/[A-Za-z_$]/.test(c)) {
      const s = i;
      while (i < n && /[\w$]/.test(text[i])) i++;
      const word = text.slice(s, i);
      if (/^net_[a-z0-9_]+$/.test(word)) {
        let k = i;
        while (k < n && /\s/.test(text[k])) k++;
        const declared = text[k] === '=' && text[k + 1] !== '=' && text[k + 1] !== '>';
        if (!declared) found.push({ name: word, offset: s });
      }
      prev = word;
      continue;
    }
    if (/\s/.test(c)) { i++; continue; }
    prev = c === '=' && text[i + 1] === '>' ? '=>' : c;
    i += prev === '=>' ? 2 : 1;
  }
  return found;
}

const callSites = {};
{
  const files = [path.join(sdkDir, 'index.js'),
    ...fs.readdirSync(path.join(sdkDir, 'lib')).filter((f) => f.endsWith('.js') && !f.endsWith('.gen.js'))
      .map((f) => path.join(sdkDir, 'lib', f))];
  for (const file of files) {
    const text = fs.readFileSync(file, 'utf8');
    const starts = lineStarts(text);
    const rel = path.relative(sdkDir, file);
    for (const u of uses(text)) {
      let line = 0;
      while (line + 1 < starts.length && starts[line + 1] <= u.offset) line++;
      (callSites[u.name] = callSites[u.name] || []).push({ file: rel, line: line + 1, offset: u.offset });
    }
  }
}

if (coverageDir) {
  // rel path -> list of functions [{start, end, count}] from every process
  const ranges = new Map();
  // rel path -> one list of block ranges per process that loaded it
  const blocks = new Map();
  for (const f of fs.readdirSync(coverageDir)) {
    if (!f.endsWith('.json')) continue;
    let data;
    try {
      data = JSON.parse(fs.readFileSync(path.join(coverageDir, f), 'utf8'));
    } catch {
      continue;
    }
    for (const script of data.result || []) {
      const m = /\/node_modules\/netmesh\/(.*)$/.exec(script.url) ||
        (script.url.startsWith(`file://${sdkDir}/`) ? [null, script.url.slice(`file://${sdkDir}/`.length)] : null);
      if (!m || m[1].includes('node_modules/')) continue;
      const rel = decodeURIComponent(m[1]);
      if (!ranges.has(rel)) ranges.set(rel, []);
      const all = [];
      for (const fn of script.functions) {
        const r = fn.ranges[0];
        ranges.get(rel).push({ start: r.startOffset, end: r.endOffset, count: r.count, name: fn.functionName });
        for (const b of fn.ranges) all.push({ start: b.startOffset, end: b.endOffset, count: b.count });
      }
      if (!blocks.has(rel)) blocks.set(rel, []);
      blocks.get(rel).push(all);
    }
  }
  const texts = new Map();
  for (const e of entries) {
    if (!texts.has(e.file)) {
      const text = fs.readFileSync(path.join(sdkDir, e.file), 'utf8');
      texts.set(e.file, { starts: lineStarts(text) });
    }
    const offset = texts.get(e.file).starts[e.line] + e.column;
    // The function's own range: the smallest covered range containing its
    // position whose start is at most a declaration's length before it.
    let best = null;
    for (const r of ranges.get(e.file) || []) {
      if (r.start <= offset && offset < r.end && offset - r.start < 200 && (!best || r.end - r.start < best.end - best.start)) {
        best = r;
      }
    }
    // Several processes report the same function: add their counts.
    e.calls = best ? (ranges.get(e.file) || [])
      .filter((r) => r.start === best.start && r.end === best.end)
      .reduce((n, r) => n + r.count, 0) : 0;
    e.coverage_found = best !== null;
  }
  // A use ran when, in some process, the innermost block containing it ran.
  for (const sites of Object.values(callSites)) {
    for (const s of sites) {
      s.ran = (blocks.get(s.file) || []).some((list) => {
        let inner = null;
        for (const b of list) {
          if (b.start <= s.offset && s.offset < b.end && (!inner || b.end - b.start < inner.end - inner.start)) inner = b;
        }
        return inner !== null && inner.count > 0;
      });
    }
  }
}

process.stdout.write(JSON.stringify({ api: entries, call_sites: callSites }, null, 1) + '\n');
