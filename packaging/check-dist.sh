#!/usr/bin/env bash
# `make dist-check`: install what dist/ holds as a user would, each in a
# fresh directory outside the repository, with a clean environment (only
# PATH, HOME and what reaches the package registries: no NET_*,
# LD_LIBRARY_PATH, PKG_CONFIG_PATH, CGO_*, PYTHONPATH or NODE_PATH):
#   python  pip install the manylinux wheel into a new venv; a script checks
#           the metadata and uses the bundled libnet;
#   node    npm install the two tarballs; an .mjs (named ES imports), a .cjs
#           and a strict TypeScript program run; the declared exports are the
#           runtime ones (tsc, both ways); no install-script warning;
#   go      a module requiring the packaged module through `replace` builds
#           and runs (static libnet.a: no libnet.so needed);
#   c       the README's recipes (static, and pkg-config + rpath) build and run;
#   libnet1 with Debian's unrelated libnet1 installed, a program linked
#           against ours loads ours (packaging/check-libnet1.sh).
#
# Usage: check-dist.sh <repo root> <dist dir> <log dir>
set -euo pipefail

root=$1 dist=$2 logs=$3
# shellcheck source=packaging/platform.sh
. "$root/packaging/platform.sh"
rm -rf "$logs" && mkdir -p "$logs"
work=$(mktemp -d /tmp/net-dist-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
case "$work" in "$root"/*) echo "dist-check: $work is inside the repository" >&2; exit 1 ;; esac

fail() { echo "dist-check: $*" >&2; exit 1; }

# The clean environment: PATH (the toolchains), HOME (their caches), and the
# variables this machine needs to reach the registries.
clean=(env -i "PATH=$PATH" "HOME=$HOME" "LANG=C.UTF-8")
for v in SSL_CERT_FILE SSL_CERT_DIR PIP_CERT REQUESTS_CA_BUNDLE NODE_EXTRA_CA_CERTS PIP_FIND_LINKS \
    PIP_DEFAULT_TIMEOUT http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy NO_PROXY; do
    [ -n "${!v:-}" ] && clean+=("$v=${!v}")
done
run() { # run <dir> <log name> <command...>: in <dir>, clean env, output to the log
    local dir=$1 log=$logs/$2.log
    shift 2
    if ! (cd "$dir" && "${clean[@]}" "$@") >>"$log" 2>&1; then
        tail -n 40 "$log" >&2
        # A linker that cannot write says little; say how much room there was.
        df -h "$dir" "${TMPDIR:-/tmp}" >&2 || true
        fail "failed in $dir: $*  (log: $log)"
    fi
}

# --- python ---------------------------------------------------------------
wheel=$(ls "$dist"/netmesh-"$NET_VERSION"-py3-none-manylinux_*.whl 2>/dev/null | head -n1)
[ -n "$wheel" ] || fail "no manylinux wheel in $dist"
py=$work/python && mkdir -p "$py"
run "$py" python python3 -m venv venv
run "$py" python venv/bin/python -m pip install --quiet --disable-pip-version-check "$wheel"
cat >"$py/check.py" <<PY
import importlib.metadata as md, os, sys
import netmesh
meta = md.metadata("netmesh")
assert meta["Version"] == "$NET_VERSION" == netmesh.__version__ == netmesh.version(), (meta["Version"], netmesh.version())
assert meta["Summary"].startswith("Python SDK of Net"), meta["Summary"]
assert meta["Requires-Python"] == ">=3.8", meta["Requires-Python"]
assert meta.get("License-Expression") == "MIT", meta.get("License-Expression")
assert any(u.startswith("Source, ") for u in meta.get_all("Project-URL")), meta.get_all("Project-URL")
assert "Operating System :: POSIX :: Linux" in meta.get_all("Classifier")
here = os.path.dirname(netmesh.__file__)
assert here.startswith("$py/venv/"), here
lib = os.path.join(here, "_native", "libnet.so")
assert os.path.getsize(lib) < 20 << 20, "libnet.so is not stripped"
with netmesh.Identity.generate() as me:
    assert me.origin_hash > 0
assert netmesh.channel_hash("sensors/lidar") == netmesh.channel_hash("sensors/lidar")
print("python ok: netmesh", netmesh.__version__)
PY
run "$py" python venv/bin/python check.py
echo "dist-check: python: $(tail -n1 "$logs/python.log")"

# --- node -----------------------------------------------------------------
main_tgz=$dist/netmesh-$NET_VERSION.tgz
platform_tgz=$dist/netmesh-$NET_NODE_PLATFORM-$NET_VERSION.tgz
[ -f "$main_tgz" ] && [ -f "$platform_tgz" ] || fail "npm tarballs missing in $dist"
nd=$work/node && mkdir -p "$nd"
echo '{ "name": "netmesh-dist-check", "version": "0.0.0", "private": true }' >"$nd/package.json"
run "$nd" node npm install --no-audit --no-fund --prefer-offline "$platform_tgz" "$main_tgz"
# npm's wording changes between versions ("install script", "scripts were
# not run", "approve-builds"): any warning line naming scripts fails.
if grep -iE "warn" "$logs/node.log" | grep -qiE "scripts?|approve-builds"; then
    fail "npm warned about install scripts: $(grep -iE 'warn' "$logs/node.log" | grep -iE 'scripts?|approve-builds' | head -n3)"
fi
[ -f "$nd/node_modules/@netmesh/$NET_NODE_PLATFORM/libnet.so" ] || fail "@netmesh/$NET_NODE_PLATFORM was not installed"
cat >"$nd/check.mjs" <<'JS'
import { Identity, Bus, channelHash, version } from 'netmesh';
import * as ns from 'netmesh';
import cjs from 'netmesh';
const missing = Object.keys(cjs).filter((k) => !(k in ns));
if (missing.length) throw new Error(`not ESM named exports: ${missing.join(', ')}`);
if (typeof Bus !== 'function') throw new Error('Bus is not a class');
const me = Identity.generate();
if (typeof me.originHash !== 'bigint') throw new Error('originHash');
me.close();
channelHash('sensors/lidar');
console.log(`mjs ok: netmesh ${version()}, ${Object.keys(cjs).length} named exports`);
JS
cat >"$nd/check.cjs" <<'JS'
const netmesh = require('netmesh');
const { Identity } = netmesh;
const me = Identity.generate();
me.close();
const lib = netmesh.internal.libraryPath;
if (!lib.includes(`node_modules/@netmesh/`)) throw new Error(`libnet loaded from ${lib}, not the platform package`);
if (require('node:fs').existsSync(require('node:path').join(require.resolve('netmesh'), '..', 'lib', 'native'))) {
  throw new Error('netmesh carries its own lib/native/ copy of libnet');
}
console.log(`cjs ok: netmesh ${netmesh.version()} from ${lib}`);
JS
cat >"$nd/check.mts" <<'TS'
import { Identity, channelHash, version } from 'netmesh';
const me: Identity = Identity.generate();
const origin: bigint = me.originHash;
me.close();
const hash: number = channelHash('sensors/lidar');
console.log(`ts ok: netmesh ${version()}, origin ${origin > 0n}, hash ${hash >= 0}`);
TS
# The types are the runtime exports: every runtime name is declared, and
# every declared value is there at run time (tsc fails either way).
names=$(cd "$nd" && "${clean[@]}" node -e 'console.log(Object.keys(require("netmesh")).map((k) => JSON.stringify(k)).join(" | "))')
cat >"$nd/exports.mts" <<TS
import * as netmesh from 'netmesh';
type Runtime = $names;
type Declared = Exclude<keyof typeof netmesh, 'default'>;
// A runtime export index.d.ts lacks:
type Undeclared = Exclude<Runtime, Declared>;
const noUndeclared: [Undeclared] extends [never] ? true : Undeclared = true;
// A declared value that is not exported at run time:
type Phantom = Exclude<Declared, Runtime>;
const noPhantom: [Phantom] extends [never] ? true : Phantom = true;
export { noUndeclared, noPhantom };
TS
cat >"$nd/tsconfig.json" <<JSON
{
  "compilerOptions": {
    "strict": true, "target": "es2022", "lib": ["es2022", "esnext.disposable"],
    "module": "nodenext", "moduleResolution": "nodenext", "outDir": "out",
    "types": ["node"], "typeRoots": ["$root/sdk-node/node_modules/@types"], "skipLibCheck": false
  },
  "files": ["check.mts", "exports.mts"]
}
JSON
run "$nd" node node check.mjs
run "$nd" node node check.cjs
run "$nd" node "$root/sdk-node/node_modules/.bin/tsc" -p tsconfig.json
run "$nd" node node out/check.mjs
echo "dist-check: node: $(grep -c ' ok: ' "$logs/node.log") programs ok (mjs, cjs, ts), types = runtime exports"

# --- go -------------------------------------------------------------------
[ -f "$dist/sdk-go/go.mod" ] || fail "no Go module in $dist/sdk-go"
gd=$work/go && mkdir -p "$gd"
cat >"$gd/go.mod" <<GO
module example.com/netcheck

go 1.22

require github.com/netmesh/net/sdk-go v$NET_VERSION

replace github.com/netmesh/net/sdk-go => $dist/sdk-go
GO
cat >"$gd/main.go" <<'GO'
package main

import (
	"fmt"
	"os"

	"github.com/netmesh/net/sdk-go/netmesh"
)

func main() {
	if err := netmesh.CheckABI(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	id, err := netmesh.GenerateIdentity()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer id.Close()
	origin, err := id.OriginHash()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("go ok: netmesh %s, origin %016x\n", netmesh.Version(), origin)
}
GO
# Offline and with the local toolchain: the module has no dependencies.
run "$gd" go env GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod go build -o netcheck .
if readelf -d "$gd/netcheck" | grep -q 'libnet'; then fail "the Go program needs a libnet shared library"; fi
run "$gd" go ./netcheck
echo "dist-check: go: $(tail -n1 "$logs/go.log")"

# --- c --------------------------------------------------------------------
cd_=$work/c && mkdir -p "$cd_"
cp "$dist/libnet-$NET_VERSION-$NET_PLATFORM.tar.gz" "$cd_/"
# The README's blocks, as a reader copies them (its tarball name says x86_64).
block() { awk -v m="<!-- dist-check: $1 -->" '$0 == m {f=1; next} f && /^```/ {if (n++) exit; next} f && n == 1' "$root/README.md"; }
block c-program >"$cd_/hello.c"
{ block c-recipe; block c-recipe-dynamic; } | sed "s/linux-x86_64/$NET_PLATFORM/g" >"$cd_/recipe.sh"
[ -s "$cd_/hello.c" ] && [ "$(wc -l <"$cd_/recipe.sh")" -ge 6 ] || fail "README.md lost its dist-check blocks"
run "$cd_" c bash -euo pipefail recipe.sh
[ "$(grep -c "^libnet $NET_VERSION, origin " "$logs/c.log")" = 2 ] || fail "the README's C programs did not both print (log: $logs/c.log)"
if readelf -d "$cd_/hello" | grep -q 'libnet'; then fail "README's static recipe links libnet.so"; fi
echo "dist-check: c: the README's static and dynamic recipes run"

# --- Debian's libnet1 beside ours -----------------------------------------
"$root/packaging/check-libnet1.sh" "$dist/libnet-$NET_VERSION-$NET_PLATFORM" "$cd_/hello.c" "$work/libnet1"
echo "dist-check: all install paths work"
