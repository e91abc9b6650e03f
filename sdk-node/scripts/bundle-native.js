#!/usr/bin/env node
'use strict';
// prepack: copies libnet into lib/native/ so that `npm pack` bundles it.
// Source, in order: $NET_LIBRARY_PATH, $NET_STAGE/lib/<lib>, ../target/stage/lib/<lib>.

const fs = require('node:fs');
const path = require('node:path');

const { libraryFileName } = require('../lib/native-path');

const fileName = libraryFileName();
const pkgDir = path.resolve(__dirname, '..');
const candidates = [
  process.env.NET_LIBRARY_PATH,
  process.env.NET_STAGE && path.join(process.env.NET_STAGE, 'lib', fileName),
  path.join(pkgDir, '..', 'target', 'stage', 'lib', fileName),
].filter(Boolean);

const source = candidates.find((p) => fs.existsSync(p));
if (!source) {
  console.error(
    `netmesh prepack: no libnet to bundle; looked at:\n  ${candidates.join('\n  ')}\n` +
      "Run 'make stage' at the repository root, or set NET_LIBRARY_PATH.",
  );
  process.exit(1);
}

const destDir = path.join(pkgDir, 'lib', 'native');
const dest = path.join(destDir, fileName);
fs.mkdirSync(destDir, { recursive: true });
// Copy, then rename over the old copy: a process that has the old one mapped
// (another test run, a dev loop) keeps its file; overwriting it in place
// would kill that process with SIGBUS.
const tmp = `${dest}.${process.pid}.tmp`;
fs.copyFileSync(source, tmp);
fs.chmodSync(tmp, 0o755);
fs.renameSync(tmp, dest);
console.error(`netmesh prepack: bundled ${path.resolve(source)} -> ${path.relative(pkgDir, dest)}`);
