'use strict';
// The suite runs against the packed and installed package, with its bundled libnet.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');
const { spawnSync, execFileSync } = require('node:child_process');
const netmesh = require('netmesh');

const project = process.env.NETMESH_TEST_PROJECT;
const source = process.env.NETMESH_SOURCE_DIR;

test('netmesh resolves from the installed tarball, not the source tree', () => {
  assert.ok(project, 'NETMESH_TEST_PROJECT is set by scripts/test-packed.sh');
  const resolved = fs.realpathSync(require.resolve('netmesh'));
  const installed = fs.realpathSync(path.join(project, 'node_modules', 'netmesh'));
  assert.ok(resolved.startsWith(installed + path.sep), `${resolved} is not under ${installed}`);
  if (source) {
    assert.ok(!resolved.startsWith(fs.realpathSync(source) + path.sep), 'resolved from the source tree');
  }
  const koffiPath = fs.realpathSync(require.resolve('koffi', { paths: [installed] }));
  assert.ok(koffiPath.startsWith(fs.realpathSync(path.join(project, 'node_modules')) + path.sep));
});

test('the bundled libnet is what loaded (NET_LIBRARY_PATH unset)', () => {
  assert.equal(process.env.NET_LIBRARY_PATH, undefined);
  const { libraryPath, bundledLibraryPath } = netmesh.internal;
  assert.equal(libraryPath, bundledLibraryPath);
  assert.ok(fs.existsSync(libraryPath));
  assert.ok(
    fs.realpathSync(libraryPath).startsWith(fs.realpathSync(path.join(project, 'node_modules', 'netmesh'))),
  );
  assert.match(libraryPath, /[\\/]lib[\\/]native[\\/]libnet\.so$/);
});

test('version and ABI version', () => {
  assert.match(netmesh.version(), /^\d+\.\d+\.\d+/);
  assert.equal(netmesh.abiVersion(), 2);
  assert.equal(netmesh.ABI_VERSION, 2);
  assert.equal(netmesh.Constants.NET_ABI_VERSION, netmesh.abiVersion());
});

test('a libnet of another ABI version is refused with a clear error', (t) => {
  const cc = ['cc', 'gcc', 'clang'].find((c) => spawnSync(c, ['--version']).status === 0);
  assert.ok(cc, 'a C compiler is needed to build the fake libnet');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netmesh-abi-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const src = path.join(dir, 'fake.c');
  const lib = path.join(dir, 'libfake.so');
  fs.writeFileSync(
    src,
    '#include <stdint.h>\n' +
      'uint32_t net_abi_version(void) { return 3; }\n' +
      'const char *net_version(void) { return "9.9.9"; }\n',
  );
  execFileSync(cc, ['-shared', '-fPIC', '-o', lib, src]);
  const r = spawnSync(process.execPath, ['-e', "require('netmesh')"], {
    cwd: project,
    env: { ...process.env, NET_LIBRARY_PATH: lib },
    encoding: 'utf8',
  });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /ABI version mismatch/);
  assert.match(r.stderr, /written for libnet ABI version 2/);
  assert.match(r.stderr, /implements ABI version 3/);
});

test('NET_LIBRARY_PATH overrides the bundled copy', () => {
  const bundled = netmesh.internal.bundledLibraryPath;
  const copy = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'netmesh-lib-')), 'libnet.so');
  fs.copyFileSync(bundled, copy);
  try {
    const out = execFileSync(
      process.execPath,
      ['-p', "require('netmesh').internal.libraryPath"],
      { cwd: project, env: { ...process.env, NET_LIBRARY_PATH: copy }, encoding: 'utf8' },
    );
    assert.equal(out.trim(), copy);
  } finally {
    fs.rmSync(path.dirname(copy), { recursive: true, force: true });
  }
});
