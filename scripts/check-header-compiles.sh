#!/usr/bin/env bash
# The header must compile cleanly as C99 and as C++ with warnings as errors.
set -euo pipefail
header="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/use.c" <<'C'
#include "net.h"
int main(void) {
    net_bytes_t b = {0, 0};
    net_bytes_free(&b);
    return net_abi_version() == NET_ABI_VERSION ? 0 : 1;
}
C
cp "$tmp/use.c" "$tmp/use.cpp"
inc="$(dirname "$header")"
gcc -std=c99 -Wall -Wextra -Werror -pedantic -I"$inc" -c "$tmp/use.c" -o "$tmp/c.o"
g++ -std=c++11 -Wall -Wextra -Werror -pedantic -I"$inc" -c "$tmp/use.cpp" -o "$tmp/cpp.o"
