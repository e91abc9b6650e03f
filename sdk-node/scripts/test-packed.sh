#!/usr/bin/env bash
# Tests the package as users get it: npm pack (prepack bundles libnet), install
# the tarball into a fresh temporary project, run node:test there with
# NET_LIBRARY_PATH unset (so the bundled copy is what loads), then type-check
# the declarations with tsc --noEmit.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
export NET_ROOT="${NET_ROOT:-$(cd "$here/.." && pwd)}"

work="$(mktemp -d "${TMPDIR:-/tmp}/netmesh-test.XXXXXX")"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

echo "sdk-node: npm pack"
(cd "$here" && npm pack --pack-destination "$work" --json --loglevel=error) > "$work/pack.json"
tgz="$work/$(node -p 'require(process.argv[1])[0].filename' "$work/pack.json")"
node -e '
  const files = require(process.argv[1])[0].files.map((f) => f.path);
  if (!files.some((f) => /^lib\/native\/libnet\./.test(f))) {
    console.error("the packed tarball does not contain lib/native/libnet.*: " + files.join(", "));
    process.exit(1);
  }' "$work/pack.json"

echo "sdk-node: npm install $(basename "$tgz") into a temporary project"
project="$work/project"
mkdir -p "$project"
cat > "$project/package.json" <<'JSON'
{ "name": "netmesh-test-project", "version": "0.0.0", "private": true }
JSON
(cd "$project" && npm install --no-audit --no-fund --prefer-offline --loglevel=error "$tgz")
cp -r "$here/test" "$project/test"

echo "sdk-node: node --test (installed package, bundled libnet)"
(cd "$project" && env -u NET_LIBRARY_PATH \
  NETMESH_SOURCE_DIR="$here" NETMESH_TEST_PROJECT="$project" \
  node --test --test-concurrency=1 --test-timeout=300000 test/*.test.js)

echo "sdk-node: tsc --noEmit (index.d.ts of the installed package)"
cat > "$project/tsconfig.json" <<JSON
{
  "compilerOptions": {
    "strict": true,
    "noEmit": true,
    "target": "es2022",
    "lib": ["es2022", "esnext.disposable"],
    "module": "nodenext",
    "moduleResolution": "nodenext",
    "types": ["node"],
    "typeRoots": ["$here/node_modules/@types"]
  },
  "files": ["test/types/api-check.ts"]
}
JSON
(cd "$project" && "$here/node_modules/.bin/tsc" --noEmit -p tsconfig.json)
echo "sdk-node: tsc ok"
