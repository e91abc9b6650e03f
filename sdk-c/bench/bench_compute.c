/*
 * bench-compute: events/s through a stateful counter daemon written in C,
 * the baseline the Go, Python and Node daemons are compared with
 * (scripts/bench-sdk-compute.sh). The daemon is a loop: a thread pulls
 * work items with net_compute_next and answers each Process with the
 * counter's new value (one 8-byte output, chained by the daemon's causal
 * chain). The main thread delivers EVENTS events of 64 bytes, then waits
 * with net_compute_wait_processed until the daemon has processed them all;
 * a round is timed from the first delivery to that wait's return. Two
 * ways, each best of ROUNDS rounds with a fresh daemon (identity) per
 * round, one runtime on one mesh node: in batches of BATCH events with
 * net_compute_deliver_batch (one ProcessBatch work item per batch, the
 * loop applying its events one by one), one event per
 * net_compute_deliver, and in batches the main thread borrows and applies
 * itself (net_compute_lend_batch / net_compute_finish_batch: no thread
 * hand-off, as Python's and Node's batches go). Prints exactly three lines:
 *
 *     compute_daemon_batch_events_per_sec <float>
 *     compute_daemon_events_per_sec <float>
 *     compute_daemon_lent_batch_events_per_sec <float>
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "net.h"

#define EVENT 64
#define EVENTS 20000
#define ROUNDS 5
#define BATCH 256
#define PRODUCER 0xfeed000000000001ULL

static const char MESH[] =
    "{\"psk_hex\":\"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a\"}";
static const char RUNTIME[] = "{\"work_timeout_ms\":10000}";
static const char KIND[] = "counter";

/* The daemon's state: one counter per live object (one at a time here). */
struct counter {
    uint64_t instance, count, last;
    int failed;
};

struct daemon_loop {
    net_compute_t *rt;
    struct counter counter;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail_item(net_compute_t *rt, uint64_t id, const char *why)
{
    net_compute_fail(rt, id, (const uint8_t *)why, strlen(why));
}

enum mode { SINGLE, BATCHED, LENT };

/* A batch's answer: the counter's value after each applied event. */
struct answer {
    uint8_t outputs[BATCH * 8];
    uint32_t lengths[BATCH], per_event[BATCH];
    size_t applied;
};

/* Applies event `sequence` to the counter and records its output; 0 (and
 * nothing applied) if it is not the counter's next one. */
static int apply_event(struct counter *c, struct answer *a, uint64_t sequence)
{
    if (sequence != c->last + 1 || a->applied == BATCH) {
        return 0;
    }
    c->last = sequence;
    c->count++;
    memcpy(a->outputs + 8 * a->applied, &c->count, 8);
    a->lengths[a->applied] = 8;
    a->per_event[a->applied] = 1;
    a->applied++;
    return 1;
}

/* The counter over a lent batch of n events from first, applied here and
 * answered; 0 on failure. */
static int lend_and_apply(net_compute_t *rt, struct counter *c, uint64_t origin, uint64_t first, size_t n)
{
    static struct answer a;
    static const char failure[] = "out of order";
    uint64_t lease = 0, instance = 0;
    size_t delivered = 0;
    if (net_compute_lend_batch(rt, origin, PRODUCER, first, n, &lease, &instance, NULL) != NET_OK || lease == 0 ||
        instance != c->instance) {
        fprintf(stderr, "lend at %llu: %s\n", (unsigned long long)first, net_last_error_message());
        return 0;
    }
    a.applied = 0;
    for (uint64_t sequence = first; a.applied < n && apply_event(c, &a, sequence); sequence++) {
    }
    int complete = a.applied == n;
    if (net_compute_finish_batch(rt, lease, a.applied, a.outputs, 8 * a.applied, a.lengths, a.applied, a.per_event,
                                 complete ? NULL : (const uint8_t *)failure, complete ? 0 : strlen(failure),
                                 &delivered, NULL) != NET_OK) {
        fprintf(stderr, "finish at %llu: %s\n", (unsigned long long)first, net_last_error_message());
        return 0;
    }
    return 1;
}

/* A ProcessBatch item: the counter per event, one answer. */
static void answer_batch(net_compute_t *rt, uint64_t id, struct counter *c, uint64_t instance,
                         const net_bytes_t *payload)
{
    static struct answer a;
    const char *failure = NULL;
    a.applied = 0;
    for (size_t at = 0; at < payload->len;) {
        uint64_t sequence;
        uint32_t len;
        memcpy(&sequence, payload->ptr + at + 8, sizeof sequence); /* little-endian host */
        memcpy(&len, payload->ptr + at + 16, sizeof len);
        at += NET_COMPUTE_BATCH_RECORD_HEADER + len;
        if (instance != c->instance || !apply_event(c, &a, sequence)) {
            c->failed = 1;
            failure = "out of order";
            break;
        }
    }
    if (net_compute_complete_batch(rt, id, a.applied, a.outputs, 8 * a.applied, a.lengths, a.applied, a.per_event,
                                   (const uint8_t *)failure, failure ? strlen(failure) : 0) != NET_OK) {
        c->failed = 1;
    }
}

/* The daemon: answers work items until the runtime is freed (NET_END). */
static void *daemon_loop(void *arg)
{
    struct daemon_loop *d = arg;
    struct counter *c = &d->counter;
    for (;;) {
        uint64_t id = 0, instance = 0, origin = 0, producer = 0, sequence = 0;
        uint32_t kind = 0;
        net_bytes_t payload = {NULL, 0};
        net_status_t st = net_compute_next(d->rt, NET_WAIT_FOREVER, &id, &kind, &instance, &origin, &producer,
                                           &sequence, &payload, NULL, NULL);
        if (st != NET_OK) {
            return NULL;
        }
        if (kind == NET_COMPUTE_WORK_PROCESS_BATCH) {
            answer_batch(d->rt, id, c, instance, &payload);
        } else if (kind == NET_COMPUTE_WORK_PROCESS) {
            if (instance != c->instance || sequence != c->last + 1) {
                c->failed = 1;
                fail_item(d->rt, id, "out of order");
            } else {
                uint8_t out[8];
                c->last = sequence;
                c->count++;
                memcpy(out, &c->count, sizeof out);
                net_slice_t slice = {out, sizeof out};
                if (net_compute_complete_process(d->rt, id, &slice, 1) != NET_OK) {
                    c->failed = 1;
                }
            }
        } else if (kind != NET_COMPUTE_WORK_DROP) {
            fail_item(d->rt, id, "the benchmark's daemon only processes");
        }
        net_bytes_free(&payload);
    }
}

/* Delivers EVENTS events to a fresh daemon (one by one, in batches of
 * BATCH, or lent in batches of BATCH) and waits until all are processed;
 * events/s, or 0 on failure. */
static double round_rate(struct daemon_loop *d, int round, enum mode mode)
{
    static uint8_t events[BATCH * EVENT];
    static uint32_t lengths[BATCH];
    uint8_t seed[32];
    uint64_t origin = 0, seq;
    uint32_t outcome = 0;
    net_bytes_t stats = {NULL, 0};
    double t0, rate = 0.0;
    int ok = 1;
    memset(events, 'e', sizeof events);
    for (int i = 0; i < BATCH; i++) {
        lengths[i] = EVENT;
    }
    memset(seed, 0x40 + round, sizeof seed);
    /* The pull loop reads the counter only while a Process of this daemon
     * is in flight, which the spawn precedes. */
    d->counter = (struct counter){(uint64_t)round + 1, 0, 0, 0};
    if (net_compute_spawn(d->rt, (const uint8_t *)KIND, strlen(KIND), seed, sizeof seed, d->counter.instance,
                          &origin) != NET_OK) {
        fprintf(stderr, "spawn: %s\n", net_last_error_message());
        return 0.0;
    }
    t0 = now_s();
    for (seq = 1; ok && seq <= EVENTS;) {
        if (mode == LENT) {
            size_t n = EVENTS - seq + 1 < BATCH ? (size_t)(EVENTS - seq + 1) : BATCH;
            ok = lend_and_apply(d->rt, &d->counter, origin, seq, n);
            seq += n;
        } else if (mode == BATCHED) {
            size_t n = EVENTS - seq + 1 < BATCH ? (size_t)(EVENTS - seq + 1) : BATCH, delivered = 0;
            if (net_compute_deliver_batch(d->rt, origin, PRODUCER, seq, events, n * EVENT, lengths, n,
                                          NET_WAIT_FOREVER, NULL, &delivered, NULL, NULL) != NET_OK) {
                fprintf(stderr, "deliver batch at %llu: %s\n", (unsigned long long)seq, net_last_error_message());
                ok = 0;
            }
            seq += n;
        } else {
            if (net_compute_deliver(d->rt, origin, PRODUCER, seq, events, EVENT, &outcome, NULL) != NET_OK ||
                outcome != NET_COMPUTE_PROCESSED) {
                fprintf(stderr, "deliver %llu: %s\n", (unsigned long long)seq, net_last_error_message());
                ok = 0;
            }
            seq++;
        }
    }
    if (ok && net_compute_wait_processed(d->rt, origin, EVENTS, 10000, &stats, NULL, NULL) != NET_OK) {
        fprintf(stderr, "wait_processed: %s\n", net_last_error_message());
        ok = 0;
    }
    if (ok) {
        rate = (double)EVENTS / (now_s() - t0);
    }
    net_bytes_free(&stats);
    if (ok && (d->counter.failed || d->counter.count != EVENTS)) {
        fprintf(stderr, "the counter is at %llu, not %d\n", (unsigned long long)d->counter.count, EVENTS);
        rate = 0.0;
    }
    if (net_compute_stop(d->rt, origin) != NET_OK) {
        fprintf(stderr, "stop: %s\n", net_last_error_message());
        rate = 0.0;
    }
    return rate;
}

int main(void)
{
    net_mesh_t *mesh = NULL;
    struct daemon_loop d;
    pthread_t loop;
    double best[3] = {0.0, 0.0, 0.0};
    int r, ok = 1;

    memset(&d, 0, sizeof d);
    if (net_mesh_new((const uint8_t *)MESH, strlen(MESH), &mesh) != NET_OK ||
        net_compute_new(mesh, (const uint8_t *)RUNTIME, strlen(RUNTIME), &d.rt) != NET_OK ||
        net_compute_register_kind(d.rt, (const uint8_t *)KIND, strlen(KIND), true) != NET_OK) {
        fprintf(stderr, "setup: %s\n", net_last_error_message());
        return 1;
    }
    if (pthread_create(&loop, NULL, daemon_loop, &d) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        return 1;
    }
    for (r = 0; r < 3 * ROUNDS && ok; r++) {
        static const enum mode order[3] = {BATCHED, SINGLE, LENT};
        enum mode mode = order[r % 3];
        double rate = round_rate(&d, r, mode);
        ok = rate > 0.0;
        best[mode] = rate > best[mode] ? rate : best[mode];
    }
    net_compute_free(d.rt);
    pthread_join(loop, NULL);
    net_mesh_free(mesh);
    if (!ok) {
        return 1;
    }
    printf("compute_daemon_batch_events_per_sec %.0f\n", best[BATCHED]);
    printf("compute_daemon_events_per_sec %.0f\n", best[SINGLE]);
    printf("compute_daemon_lent_batch_events_per_sec %.0f\n", best[LENT]);
    return 0;
}
