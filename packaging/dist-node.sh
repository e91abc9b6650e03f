#!/usr/bin/env bash
# `make dist`, step 3: the npm packages, as tarballs into dist/:
#   netmesh-<version>.tgz
#       the JavaScript (CommonJS index.js, the generated ES module index.mjs,
#       index.d.ts for both, through an `exports` map) and koffi, bundled with
#       its prebuilt binary for this platform so that npm runs no install
#       script (koffi's own would make npm warn);
#   netmesh-<os>-<arch>-gnu-<version>.tgz (package @netmesh/<os>-<arch>-gnu)
#       the stripped libnet.so of step 1, an optional dependency of netmesh
#       that npm installs only where `os`/`cpu`/`libc` match.
#
# Usage: dist-node.sh <repo root> <dist dir> <work dir>
set -euo pipefail

root=$1 dist=$2 work=$3
# shellcheck source=packaging/platform.sh
. "$root/packaging/platform.sh"
sdk=$root/sdk-node
lib=$dist/libnet-$NET_VERSION-$NET_PLATFORM/lib/libnet.so.$NET_VERSION
[ -f "$lib" ] || { echo "dist: $lib missing (packaging/dist-lib.sh first)" >&2; exit 1; }
koffi_version=$(node -p 'require(process.argv[1]).dependencies.koffi' "$sdk/package.json")
koffi_platform=@koromix/koffi-$NET_OS-$NET_NODE_ARCH
npm_flags=(--no-audit --no-fund --loglevel=error)

rm -rf "$work"
main=$work/netmesh platform=$work/platform
mkdir -p "$main" "$platform"

# --- the platform package ------------------------------------------------
cp "$lib" "$platform/libnet.so"
chmod 0755 "$platform/libnet.so"
node - "$platform/package.json" "$NET_VERSION" "$NET_OS" "$NET_NODE_ARCH" <<'JS'
const [file, version, os, cpu] = process.argv.slice(2);
const pkg = {
  name: `@netmesh/${os}-${cpu}-gnu`,
  version,
  description: `libnet for netmesh on ${os}-${cpu} (glibc): installed by netmesh as an optional dependency`,
  license: 'MIT',
  os: [os],
  cpu: [cpu],
  libc: ['glibc'],
  files: ['libnet.so'],
  repository: { type: 'git', url: 'git+https://github.com/netmesh/net.git', directory: 'sdk-node' },
};
require('node:fs').writeFileSync(file, JSON.stringify(pkg, null, 2) + '\n');
JS
printf '# @netmesh/%s\n\nlibnet for [netmesh](https://www.npmjs.com/package/netmesh) on %s.\nInstalled by netmesh; not used directly.\n' \
    "$NET_NODE_PLATFORM" "$NET_NODE_PLATFORM" >"$platform/README.md"

# --- the main package ----------------------------------------------------
# The files package.json lists, never the development copy of libnet.
(cd "$sdk" && git ls-files -co --exclude-standard -- index.js index.d.ts lib README.md) |
    while read -r f; do
        case "$f" in lib/native/*) continue ;; esac
        mkdir -p "$main/$(dirname "$f")"
        cp "$sdk/$f" "$main/$f"
    done
cp "$root/LICENSE" "$main/LICENSE"
# koffi and its prebuilt binary for this platform, without running koffi's
# install script (it only looks for that binary).
echo '{"name":"netmesh-bundle","version":"0.0.0","private":true}' >"$main/package.json"
(cd "$main" && npm install "${npm_flags[@]}" --prefer-offline --ignore-scripts --omit=optional \
    --no-package-lock "koffi@$koffi_version" "$koffi_platform@$koffi_version" >/dev/null)

# index.mjs: the named exports of index.js, generated now (gen-esm.js).
NET_LIBRARY_PATH=$lib node "$sdk/scripts/gen-esm.js" "$main"

node - "$sdk/package.json" "$main/package.json" "$NET_VERSION" "$koffi_platform" "$NET_OS" <<'JS'
const fs = require('node:fs');
const [source, file, version, koffiPlatform, os] = process.argv.slice(2);
const dev = JSON.parse(fs.readFileSync(source, 'utf8'));
const pkg = {
  name: dev.name,
  version,
  description: dev.description,
  license: dev.license,
  keywords: ['mesh', 'p2p', 'event-bus', 'append-log', 'noise', 'encryption'],
  repository: { type: 'git', url: 'git+https://github.com/netmesh/net.git', directory: 'sdk-node' },
  homepage: 'https://github.com/netmesh/net/blob/main/docs/sdk-node.md',
  main: './index.js',
  types: './index.d.ts',
  exports: {
    '.': {
      types: './index.d.ts',
      import: './index.mjs',
      require: './index.js',
    },
    './package.json': './package.json',
  },
  files: ['index.js', 'index.mjs', 'index.d.ts', 'lib/', 'README.md', 'LICENSE'],
  engines: dev.engines,
  os: [os],
  dependencies: {
    koffi: dev.dependencies.koffi,
    [koffiPlatform]: dev.dependencies.koffi,
  },
  bundleDependencies: ['koffi', koffiPlatform],
  optionalDependencies: Object.fromEntries(
    ['x64', 'arm64'].map((cpu) => [`@netmesh/${os}-${cpu}-gnu`, version]),
  ),
};
fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + '\n');
JS

rm -f "$dist"/netmesh-*.tgz
(cd "$platform" && npm pack "${npm_flags[@]}" --pack-destination "$dist" >/dev/null)
(cd "$main" && npm pack "${npm_flags[@]}" --pack-destination "$dist" >/dev/null)
main_tgz=$dist/netmesh-$NET_VERSION.tgz
platform_tgz=$dist/netmesh-$NET_NODE_PLATFORM-$NET_VERSION.tgz
[ -f "$main_tgz" ] && [ -f "$platform_tgz" ] || { echo "dist: npm pack wrote no tarball" >&2; exit 1; }
echo "dist: $(basename "$main_tgz") ($(du -h "$main_tgz" | cut -f1)), $(basename "$platform_tgz") ($(du -h "$platform_tgz" | cut -f1))"
