/*
 * The event bus from C: raw, batch and packed ingest, polls decoded from the
 * record buffer, stats and the shutdown report, configuration errors, the
 * Redis dedup helper, and the three handle races for net_bus_t and
 * net_redis_dedup_t:
 *
 *  1. a call after free returns NET_ERR_SHUTTING_DOWN;
 *  2. several threads free the same handles while others call into them;
 *  3. a free waits for an ingest in flight (a million-event batch): a round
 *     counts when the ingest got in and was still running when the free
 *     began, and its report being visible when the free returns proves it;
 *  4. the bus's blocking call wakes: a flush blocked forever (its one event
 *     waits for a batch of a thousand or a minute) returns
 *     NET_ERR_SHUTTING_DOWN "freed while the call waited" when the bus is
 *     freed (which then drains the event losslessly: NET_OK), and
 *     NET_ERR_CANCELLED when its net_cancel_t is cancelled. No sleeps: each
 *     round is retried until the outcome proves the flush was waiting.
 *
 * The buses run over the embedded RedEX adapter with memory files (the
 * memory and discard adapters are test-only and not in the shipped libnet).
 */
#define _POSIX_C_SOURCE 200809L

#include <time.h>

#include "block_util.h"

static const char MEMORY[] =
    "{\"num_shards\":3,\"adapter\":{\"type\":\"redex\"},"
    "\"batch\":{\"min_size\":16,\"max_size\":256,\"max_delay_ms\":1}}";

/* A bus whose flush waits far longer than any test round: its one event
 * sits in the batcher (a minute's delay, a batch of a thousand) and the flush
 * (and the shutdown) may wait ten minutes. */
static const char PATIENT[] =
    "{\"num_shards\":1,\"adapter\":{\"type\":\"redex\"},"
    "\"batch\":{\"min_size\":1000,\"max_size\":1000,\"max_delay_ms\":60000},"
    "\"shutdown_timeout_ms\":600000}";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static net_bus_t *new_bus(const char *config)
{
    net_bus_t *bus = NULL;
    CHECK_OK(net_bus_new((const uint8_t *)config, strlen(config), &bus));
    return bus;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Walks a poll's record buffer; counts the events, marks their u32 payloads
 * in `seen` (when non-NULL) and checks every record is well formed. */
static size_t walk_events(const net_bytes_t *b, uint8_t *seen, size_t seen_len)
{
    size_t at = 0, n = 0;
    while (at < b->len) {
        uint16_t shard = rd16(b->ptr + at);
        size_t id_len = rd16(b->ptr + at + 10), dedup_len, len;
        at += 12 + id_len;
        dedup_len = rd16(b->ptr + at);
        at += 2 + dedup_len;
        len = rd32(b->ptr + at);
        at += 4;
        /* the embedded RedEX adapter ids events by their seq and keeps no dedup id */
        CHECK(shard < 3 && id_len > 0);
        if (seen != NULL && CHECK(len == 4)) {
            uint32_t v = rd32(b->ptr + at);
            if (CHECK(v < seen_len)) {
                CHECK(!seen[v]);
                seen[v] = 1;
            }
        }
        at += len;
        n++;
    }
    CHECK(at == b->len);
    return n;
}

/* A NUL-terminated copy of a JSON result (libnet's buffers are not terminated). */
static char *text_of(const net_bytes_t *b)
{
    char *t = malloc(b->len + 1);
    if (t != NULL) {
        if (b->len > 0) {
            memcpy(t, b->ptr, b->len);
        }
        t[b->len] = 0;
    }
    return t;
}

/* Polls everything from the start; returns the number of events. */
static size_t poll_all(net_bus_t *bus, uint8_t *seen, size_t seen_len)
{
    char request[512];
    char cursor[256] = "";
    size_t total = 0;
    for (;;) {
        net_bytes_t events = {0}, meta = {0};
        size_t got;
        const char *c, *end;
        char *text;
        int has_more;
        if (cursor[0]) {
            snprintf(request, sizeof request, "{\"cursor\":\"%s\",\"limit\":500}", cursor);
        } else {
            snprintf(request, sizeof request, "{\"limit\":500}");
        }
        if (!CHECK_OK(net_bus_poll(bus, (const uint8_t *)request, strlen(request), &events, &meta, NULL, NULL))) {
            return total;
        }
        got = walk_events(&events, seen, seen_len);
        total += got;
        /* meta: {"next_cursor":"...","has_more":b,...} */
        text = text_of(&meta);
        if (!CHECK(text != NULL)) {
            return total;
        }
        c = strstr(text, "\"next_cursor\":\"");
        if (CHECK(c != NULL)) {
            c += strlen("\"next_cursor\":\"");
            end = strchr(c, '"');
            if (CHECK(end != NULL && end > c && (size_t)(end - c) < sizeof cursor)) {
                memcpy(cursor, c, (size_t)(end - c));
                cursor[end - c] = 0;
            }
        }
        has_more = strstr(text, "\"has_more\":true") != NULL;
        free(text);
        net_bytes_free(&events);
        net_bytes_free(&meta);
        if (got == 0 && !has_more) {
            return total;
        }
    }
}

static void test_ingest_and_poll_back(void)
{
    enum { N = 6000 };
    static uint8_t seen[N];
    static uint32_t values[N];
    net_slice_t slices[3000];
    uint32_t lengths[1000];
    net_bus_ingest_report_t report;
    net_bytes_t stats = {0}, shutdown = {0};
    uint16_t shards = 0;
    uint32_t i;
    char *text;
    net_bus_t *bus = new_bus(MEMORY);

    CHECK_OK(net_bus_num_shards(bus, &shards));
    CHECK(shards == 3);
    for (i = 0; i < N; i++) {
        values[i] = i; /* little-endian hosts: the bytes are the LE encoding */
    }
    for (i = 0; i < 2000; i++) {
        CHECK_OK(net_bus_ingest_raw(bus, (const uint8_t *)&values[i], 4));
    }
    for (i = 0; i < 3000; i++) {
        slices[i].ptr = (const uint8_t *)&values[2000 + i];
        slices[i].len = 4;
    }
    CHECK_OK(net_bus_ingest_raw_batch(bus, slices, 3000, &report));
    CHECK(report.queued == 3000 && report.taken == 3000 && report.sampled == 0);
    for (i = 0; i < 1000; i++) {
        lengths[i] = 4;
    }
    CHECK_OK(net_bus_ingest_raw_packed(bus, (const uint8_t *)&values[5000], 4000, lengths, 1000, &report));
    CHECK(report.taken == 1000);
    CHECK_STATUS(net_bus_ingest_raw_packed(bus, (const uint8_t *)&values[5000], 3999, lengths, 1000, &report),
                 NET_ERR_INVALID_ARGUMENT);
    CHECK_OK(net_bus_flush(bus, NULL, NULL));
    memset(seen, 0, sizeof seen);
    CHECK(poll_all(bus, seen, N) == N);
    for (i = 0; i < N; i++) {
        if (!seen[i]) {
            CHECK(seen[i]);
            break;
        }
    }
    CHECK_OK(net_bus_stats(bus, &stats));
    text = text_of(&stats);
    CHECK(text != NULL && strstr(text, "\"events_dispatched\":6000") != NULL);
    free(text);
    net_bytes_free(&stats);
    CHECK_OK(net_bus_close(bus, &shutdown));
    text = text_of(&shutdown);
    CHECK(text != NULL && strstr(text, "\"shutdown_was_lossy\":false") != NULL);
    free(text);
    net_bytes_free(&shutdown);
    CHECK_STATUS(net_bus_ingest_raw(bus, (const uint8_t *)"x", 1), NET_ERR_SHUTTING_DOWN);
    CHECK_OK(net_bus_free(bus));
}

static void test_errors(void)
{
    static const struct {
        const char *config;
        const char *needle;
    } bad[] = {
        {"{\"num_shards\":0}", "num_shards"},
        {"{\"shards\":2}", "shards"},
        {"{\"adapter\":{\"type\":\"kafka\"}}", "adapter"},
        {"[1]", "object"},
    };
    size_t i;
    net_bus_t *bus = NULL;
    net_bytes_t events = {0}, meta = {0};
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_STATUS(net_bus_new((const uint8_t *)bad[i].config, strlen(bad[i].config), &bus), NET_ERR_BUS_CONFIG);
        CHECK(strstr(net_last_error_message(), bad[i].needle) != NULL);
        CHECK(bus == NULL);
    }
    bus = new_bus(MEMORY);
    CHECK_STATUS(net_bus_poll(bus, (const uint8_t *)"{\"limit\":0}", 11, &events, &meta, NULL, NULL), NET_ERR_BUS_INVALID_REQUEST);
    CHECK(events.ptr == NULL && meta.ptr == NULL);
    CHECK_STATUS(net_bus_ingest_raw(bus, NULL, 1), NET_ERR_INVALID_ARGUMENT);
    CHECK_OK(net_bus_free(bus));
    CHECK_OK(net_bus_free(NULL));
}

static void test_backpressure(void)
{
    static const char config[] =
        "{\"num_shards\":1,\"shard_capacity\":8,\"backpressure\":{\"mode\":\"fail_producer\"},"
        "\"adapter\":{\"type\":\"redex\"},\"batch\":{\"min_size\":8,\"max_size\":8,\"max_delay_ms\":1000}}";
    net_bus_t *bus = new_bus(config);
    int refused = 0, i;
    for (i = 0; i < 1000 && !refused; i++) {
        int st = net_bus_ingest_raw(bus, (const uint8_t *)"y", 1);
        if (st == NET_ERR_BUS_BACKPRESSURE) {
            refused = 1;
        } else {
            CHECK_OK(st);
        }
    }
    CHECK(refused);
    CHECK_OK(net_bus_free(bus));
}

static int dup_of(net_redis_dedup_t *d, const char *id)
{
    bool dup = false;
    CHECK_OK(net_redis_dedup_is_duplicate(d, (const uint8_t *)id, strlen(id), &dup));
    return dup ? 1 : 0;
}

static void test_redis_dedup(void)
{
    net_redis_dedup_t *d = NULL, *big = NULL;
    net_slice_t ids[3] = {{(const uint8_t *)"x", 1}, {(const uint8_t *)"y", 1}, {(const uint8_t *)"x", 1}};
    bool out[3];
    size_t len = 0, cap = 0;
    uint64_t dups = 0;
    CHECK_OK(net_redis_dedup_new(2, &d));
    CHECK(dup_of(d, "a") == 0 && dup_of(d, "b") == 0 && dup_of(d, "a") == 1);
    CHECK(dup_of(d, "c") == 0 && dup_of(d, "a") == 0); /* FIFO: "a" went first */
    CHECK_OK(net_redis_dedup_check_batch(d, ids, 3, out));
    CHECK(!out[0] && !out[1] && out[2]);
    CHECK_OK(net_redis_dedup_info(d, &len, &cap, &dups));
    CHECK(len == 2 && cap == 2 && dups == 2);
    CHECK_OK(net_redis_dedup_clear(d));
    CHECK(dup_of(d, "x") == 0);
    CHECK_OK(net_redis_dedup_free(d));
    CHECK_OK(net_redis_dedup_new(SIZE_MAX, &big));
    CHECK_OK(net_redis_dedup_info(big, &len, &cap, &dups));
    CHECK(cap == (size_t)1 << 24);
    CHECK_OK(net_redis_dedup_free(big));
}

/* ---- race 1: op after free ------------------------------------------------ */

static void test_op_after_free(void)
{
    net_bus_t *bus = new_bus(MEMORY);
    net_redis_dedup_t *d = NULL;
    uint16_t n;
    bool dup;
    net_bytes_t events = {0}, meta = {0};
    CHECK_OK(net_redis_dedup_new(8, &d));
    CHECK_OK(net_bus_free(bus));
    CHECK_OK(net_redis_dedup_free(d));
    CHECK_STATUS(net_bus_ingest_raw(bus, (const uint8_t *)"x", 1), NET_ERR_SHUTTING_DOWN);
    CHECK_STATUS(net_bus_flush(bus, NULL, NULL), NET_ERR_SHUTTING_DOWN);
    CHECK_STATUS(net_bus_num_shards(bus, &n), NET_ERR_SHUTTING_DOWN);
    CHECK_STATUS(net_bus_poll(bus, NULL, 0, &events, &meta, NULL, NULL), NET_ERR_SHUTTING_DOWN);
    CHECK_STATUS(net_redis_dedup_is_duplicate(d, (const uint8_t *)"x", 1, &dup), NET_ERR_SHUTTING_DOWN);
    CHECK_OK(net_bus_free(bus)); /* idempotent */
    CHECK_OK(net_redis_dedup_free(d));
}

/* ---- race 2: concurrent frees with racing ops ------------------------------ */

struct shared {
    net_bus_t *bus;
    net_redis_dedup_t *dedup;
    int kind;
};

static void *racing_ops(void *arg)
{
    struct shared *s = arg;
    int i;
    for (i = 0; i < 300; i++) {
        int st;
        if (s->kind == 0) {
            st = net_bus_ingest_raw(s->bus, (const uint8_t *)"ev", 2);
        } else if (s->kind == 1) {
            net_bytes_t events = {0}, meta = {0};
            st = net_bus_poll(s->bus, (const uint8_t *)"{\"limit\":10}", 12, &events, &meta, NULL, NULL);
            net_bytes_free(&events);
            net_bytes_free(&meta);
        } else {
            bool dup;
            st = net_redis_dedup_is_duplicate(s->dedup, (const uint8_t *)"id", 2, &dup);
        }
        CHECK(st == NET_OK || st == NET_ERR_SHUTTING_DOWN);
    }
    return NULL;
}

static void *freeing(void *arg)
{
    struct shared *s = arg;
    let_it_block(); /* let the callers get going */
    CHECK_OK(net_bus_free(s->bus));
    CHECK_OK(net_redis_dedup_free(s->dedup));
    return NULL;
}

static void test_concurrent_frees(void)
{
    int round, i;
    for (round = 0; round < 8; round++) {
        pthread_t threads[5];
        struct shared s[5];
        net_bus_t *bus = new_bus(MEMORY);
        net_redis_dedup_t *d = NULL;
        CHECK_OK(net_redis_dedup_new(16, &d));
        for (i = 0; i < 5; i++) {
            s[i].bus = bus;
            s[i].dedup = d;
            s[i].kind = i;
            pthread_create(&threads[i], NULL, i < 3 ? racing_ops : freeing, &s[i]);
        }
        for (i = 0; i < 5; i++) {
            pthread_join(threads[i], NULL);
        }
    }
}

/* ---- race 3: free waits for the op in flight ------------------------------- */

enum { BIG = 1000000 };

struct in_flight {
    net_bus_t *bus;
    const net_slice_t *slices;
    pthread_barrier_t start;
    int status;
    net_bus_ingest_report_t report;
    double end;
};

static void *big_ingest(void *arg)
{
    struct in_flight *f = arg;
    pthread_barrier_wait(&f->start);
    f->status = net_bus_ingest_raw_batch(f->bus, f->slices, BIG, &f->report);
    f->end = now_s();
    return NULL;
}

struct ingest_rounds {
    const net_slice_t *slices;
    struct delay delay;
    unsigned long refused, before;
};

static int ingest_round(void *ctx, int round)
{
    static const char config[] =
        "{\"num_shards\":1,\"shard_capacity\":2097152,\"adapter\":{\"type\":\"redex\"},"
        "\"shutdown_timeout_ms\":600000}";
    struct ingest_rounds *ir = ctx;
    pthread_t t;
    struct in_flight f;
    double t_free;
    size_t taken_seen;
    (void)round;
    memset(&f, 0, sizeof f);
    f.bus = new_bus(config);
    f.slices = ir->slices;
    if (f.bus == NULL) {
        return 0;
    }
    pthread_barrier_init(&f.start, NULL, 2);
    if (pthread_create(&t, NULL, big_ingest, &f) != 0) {
        abort();
    }
    pthread_barrier_wait(&f.start);
    delay_run(&ir->delay);
    t_free = now_s();
    CHECK_OK(net_bus_free(f.bus)); /* drains what was queued: nothing is lost */
    taken_seen = f.report.taken;
    pthread_join(t, NULL);
    pthread_barrier_destroy(&f.start);
    if (f.status == NET_ERR_SHUTTING_DOWN) {
        delay_too_early(&ir->delay); /* the free got there first */
        ir->refused++;
        return 0;
    }
    CHECK_OK(f.status);
    CHECK(f.report.taken == BIG);
    if (f.end < t_free) {
        delay_too_late(&ir->delay); /* it had finished before the free began */
        ir->before++;
        return 0;
    }
    /* Exact: the ingest's report, written before it left the bus, is
     * visible when the free returns. */
    CHECK(taken_seen == BIG);
    return 1;
}

static char ingest_info[200];

static void test_free_waits_for_ingest(void)
{
    static uint32_t payload = 7;
    net_slice_t *slices = malloc(sizeof *slices * BIG);
    struct ingest_rounds ir;
    int i;
    if (!CHECK(slices != NULL)) {
        return;
    }
    for (i = 0; i < BIG; i++) {
        slices[i].ptr = (const uint8_t *)&payload;
        slices[i].len = 4;
    }
    memset(&ir, 0, sizeof ir);
    ir.slices = slices;
    delay_init(&ir.delay);
    UNTIL_WON(40, 2, ingest_round, &ir);
    snprintf(ingest_info, sizeof ingest_info,
             "  2 frees waited for a million-event ingest in flight; %lu rounds refused it, %lu "
             "where it was over first",
             ir.refused, ir.before);
    free(slices);
}

/* ---- the flush wakes --------------------------------------------------------- */

struct blocked_flush {
    net_bus_t *bus;
    net_cancel_t *cancel;
    int status;
    struct call_error error;
};

static void *flush_thread(void *arg)
{
    struct blocked_flush *b = arg;
    net_error_t error = error_slot();
    b->status = net_bus_flush(b->bus, b->cancel, &error);
    error_take(&error, &b->error);
    return NULL;
}

static void run_flush(struct blocked_flush *b)
{
    pthread_t t;
    if (pthread_create(&t, NULL, flush_thread, b) != 0) {
        abort();
    }
    let_it_block();
    if (b->cancel != NULL) {
        CHECK_OK(net_cancel_cancel(b->cancel));
    } else {
        /* Wakes the flush, then shuts the bus down losslessly (the event is
         * dispatched by the shutdown's drain). */
        CHECK_OK(net_bus_free(b->bus));
    }
    pthread_join(t, NULL);
}

static int flush_free_round(void *ctx, int round)
{
    struct blocked_flush b;
    (void)round;
    (void)ctx;
    memset(&b, 0, sizeof b);
    b.bus = new_bus(PATIENT);
    if (b.bus == NULL || !CHECK_OK(net_bus_ingest_raw(b.bus, (const uint8_t *)"12345678", 8))) {
        CHECK_OK(net_bus_free(b.bus));
        return 0;
    }
    run_flush(&b);
    CHECK_STATUS(b.status, NET_ERR_SHUTTING_DOWN);
    CHECK_STATUS(b.error.status, NET_ERR_SHUTTING_DOWN);
    return interrupted_while_waiting(b.error.message);
}

static void test_free_wakes_flush_blocked_forever(void)
{
    UNTIL_WON(200, 3, flush_free_round, NULL);
}

static int flush_cancel_round(void *ctx, int round)
{
    struct blocked_flush b;
    (void)round;
    memset(&b, 0, sizeof b);
    b.bus = (net_bus_t *)ctx;
    b.cancel = cancel_new();
    run_flush(&b);
    CHECK_OK(net_cancel_free(b.cancel));
    CHECK_STATUS(b.status, NET_ERR_CANCELLED);
    CHECK_STATUS(b.error.status, NET_ERR_CANCELLED);
    return !cancelled_before_start(b.error.message);
}

static void test_cancel_wakes_blocked_flush(void)
{
    net_bus_t *bus = new_bus(PATIENT);
    net_cancel_t *token = NULL;
    net_bytes_t report = {0}, events = {0}, meta = {0};
    net_error_t error = error_slot();
    struct call_error e;
    char *text;
    if (bus == NULL || !CHECK_OK(net_bus_ingest_raw(bus, (const uint8_t *)"12345678", 8))) {
        CHECK_OK(net_bus_free(bus));
        return;
    }
    UNTIL_WON(200, 3, flush_cancel_round, bus);
    /* A poll with a cancelled token is refused at once, and says so. */
    token = cancel_new();
    CHECK_OK(net_cancel_cancel(token));
    CHECK_STATUS(net_bus_poll(bus, NULL, 0, &events, &meta, token, &error), NET_ERR_CANCELLED);
    CHECK_STATUS(error_take(&error, &e), NET_ERR_CANCELLED);
    CHECK(cancelled_before_start(e.message));
    CHECK(events.ptr == NULL && meta.ptr == NULL);
    CHECK_OK(net_cancel_free(token));
    /* Nothing was lost by the cancelled flushes: close drains the event. */
    CHECK_OK(net_bus_close(bus, &report));
    text = text_of(&report);
    CHECK(text != NULL && strstr(text, "\"shutdown_was_lossy\":false") != NULL);
    free(text);
    net_bytes_free(&report);
    CHECK_OK(net_bus_free(bus));
}

int main(void)
{
    RUN_TEST(test_ingest_and_poll_back);
    RUN_TEST(test_errors);
    RUN_TEST(test_backpressure);
    RUN_TEST(test_redis_dedup);
    RUN_TEST(test_op_after_free);
    RUN_TEST(test_concurrent_frees);
    RUN_TEST(test_free_waits_for_ingest);
    printf("%s\n", ingest_info);
    RUN_TEST(test_free_wakes_flush_blocked_forever);
    RUN_TEST(test_cancel_wakes_blocked_flush);
    return check_finish("test_bus");
}
