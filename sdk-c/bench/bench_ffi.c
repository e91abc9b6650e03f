/*
 * bench-ffi: the cost of one call across the C ABI, measured on a cheap
 * entry point. Times net_channel_hash("sensors/lidar") over CALLS calls,
 * best of ROUNDS, and prints exactly one line:
 *
 *     channel_hash_ns_per_call <float>
 *
 * The figure includes the call, the argument checks, UTF-8 and naming-rule
 * validation, catch_unwind and the XXH3 hash of 13 bytes.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net.h"

#define CALLS 10000000L
#define ROUNDS 5

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(void)
{
    static const char name[] = "sensors/lidar";
    const uint8_t *p = (const uint8_t *)name;
    const size_t len = strlen(name);
    double best = -1.0;
    unsigned long sink = 0;
    uint16_t h = 0;
    int round;

    if (net_abi_version() != NET_ABI_VERSION) {
        fprintf(stderr, "bench_ffi: libnet ABI %u, header ABI %d\n", net_abi_version(),
                NET_ABI_VERSION);
        return 1;
    }
    /* tests/vectors/channels.json: hashes[0] ("sensors/lidar") hash_u16 = 0xe5d8 */
    if (net_channel_hash(p, len, &h) != NET_OK || h != 0xe5d8) {
        fprintf(stderr, "bench_ffi: net_channel_hash gave 0x%04x: %s\n", (unsigned)h,
                net_last_error_message());
        return 1;
    }
    for (round = 0; round < ROUNDS; round++) {
        long i;
        double start = now_ns(), elapsed;
        for (i = 0; i < CALLS; i++) {
            if (net_channel_hash(p, len, &h) != NET_OK) {
                fprintf(stderr, "bench_ffi: call %ld failed\n", i);
                return 1;
            }
            sink += h;
        }
        elapsed = (now_ns() - start) / (double)CALLS;
        if (best < 0 || elapsed < best) {
            best = elapsed;
        }
    }
    if (sink != (unsigned long)ROUNDS * (unsigned long)CALLS * 0xe5d8ul) {
        fprintf(stderr, "bench_ffi: inconsistent results\n");
        return 1;
    }
    printf("channel_hash_ns_per_call %.2f\n", best);
    return 0;
}
