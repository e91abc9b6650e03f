"""FFI overhead: nanoseconds per lib.net_channel_hash call through cffi.

The name buffer and the out pointer are allocated once, so the loop measures
the cffi call itself plus libnet's work (UTF-8 and name checks, XXH3 of a
13-byte name). Prints exactly one line: ``channel_hash_ns_per_call <float>``.
"""

import time
from typing import Any

from netmesh._ffi import ffi, lib

CALLS = 1_000_000
RUNS = 5


def run_once(fn: Any, name: Any, n: int, out: Any, calls: int) -> int:
    t0 = time.perf_counter_ns()
    for _ in range(calls):
        fn(name, n, out)
    return time.perf_counter_ns() - t0


def main() -> None:
    raw = b"sensors/lidar"
    name = ffi.new("uint8_t[]", raw)
    out = ffi.new("uint16_t *")
    fn = lib.net_channel_hash  # bound once: no attribute lookup in the loop
    n = len(raw)
    assert fn(name, n, out) == lib.NET_OK and out[0] == 0xE5D8
    run_once(fn, name, n, out, 50_000)  # warm-up
    best = min(run_once(fn, name, n, out, CALLS) for _ in range(RUNS))
    print(f"channel_hash_ns_per_call {best / CALLS:.1f}")


if __name__ == "__main__":
    main()
