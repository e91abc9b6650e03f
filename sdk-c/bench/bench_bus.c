/*
 * bench-bus: batch ingest into the event bus from C, the baseline the SDKs'
 * batch ingest is compared with. 2 000 batches of 1 024 events of 64 bytes
 * through net_bus_ingest_raw_batch (the slices prebuilt, read in place) into
 * a bus over the embedded adapter with memory files (the discard adapter is
 * test-only; the ingest path measured does not depend on the adapter); best
 * of ROUNDS, a fresh bus per round.
 * Prints exactly one line:
 *
 *     bus_batch_events_per_sec <float>
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "net.h"

#define EVENT 64
#define BATCH 1024
#define BATCHES 2000
#define ROUNDS 5

static const char CONFIG[] =
    "{\"num_shards\":2,\"shard_capacity\":4194304,\"adapter\":{\"type\":\"redex\"}}";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
    static uint8_t data[BATCH][EVENT];
    static net_slice_t slices[BATCH];
    double best = 0.0;
    int i, r;

    for (i = 0; i < BATCH; i++) {
        memset(data[i], 'a' + i % 26, EVENT);
        slices[i].ptr = data[i];
        slices[i].len = EVENT;
    }
    for (r = 0; r < ROUNDS; r++) {
        net_bus_t *bus = NULL;
        net_bus_ingest_report_t report;
        double t0, rate;
        int b;
        if (net_bus_new((const uint8_t *)CONFIG, strlen(CONFIG), &bus) != NET_OK) {
            fprintf(stderr, "net_bus_new: %s\n", net_last_error_message());
            return 1;
        }
        t0 = now_s();
        for (b = 0; b < BATCHES; b++) {
            if (net_bus_ingest_raw_batch(bus, slices, BATCH, &report) != NET_OK || report.taken != BATCH) {
                fprintf(stderr, "ingest: %s (taken %zu)\n", net_last_error_message(), report.taken);
                return 1;
            }
        }
        rate = (double)BATCH * BATCHES / (now_s() - t0);
        if (rate > best) {
            best = rate;
        }
        net_bus_free(bus);
    }
    printf("bus_batch_events_per_sec %.0f\n", best);
    return 0;
}
