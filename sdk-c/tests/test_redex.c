/*
 * RedEX from C: the manager, files and tails.
 *
 *  - append / append_inline / append_batch (an empty batch is NET_OK with
 *    appended == false), read, read_range (its record encoding decoded and
 *    checked byte for byte), next_seq, len;
 *  - a persistent file survives close + reopen with the same content;
 *  - a tail backfills, then follows appends made by other threads with no gap
 *    and no duplicate; NET_TIMEOUT; closing the file ends tails (NET_END);
 *  - NET_LAGGED after retention, with the resume seq (memory and persistent);
 *  - a second writer of a persistent channel is refused (NET_ERR_REDEX_LOCKED);
 *  - configuration errors name the key; argument checks; status names;
 *  - recovery: a lost dat is NET_ERR_REDEX_CORRUPT (naming it, changing
 *    nothing) until opened with "repair"; net_redex_file_recovery_report
 *    lists dropped records (a checksum mismatch, the entries a repair lost),
 *    is clean for a fresh channel and null for a memory file.
 *
 * The handle races (free vs. in-flight calls) are in test_redex_races.c.
 * Persistent files live under a mkdtemp directory removed at the end.
 */
#define _XOPEN_SOURCE 700

#include "block_util.h"
#include "redex_util.h"

static const net_bytes_t EMPTY = {NULL, 0};

/* The expected content of one entry, for comparing whole files. */
struct expect {
    uint64_t seq;
    const char *payload; /* may contain no NUL; `len` bytes */
    size_t len;
};

/*
 * Decodes `b` (a read_range result) and checks it holds exactly `want`.
 * Also checks the raw layout: each record is 12 + len bytes and the buffer
 * is their exact concatenation.
 */
static void check_range(const net_bytes_t *b, const struct expect *want, size_t n)
{
    struct range_cursor c = range_cursor_of(b);
    size_t i = 0, total = 0;
    uint64_t seq = 0;
    const uint8_t *p = NULL;
    uint32_t len = 0;
    int r;
    while ((r = range_next(&c, &seq, &p, &len)) == 1) {
        if (!CHECK(i < n)) {
            return;
        }
        CHECK_U64(seq, want[i].seq);
        CHECK_MEM(len ? p : NULL, len, want[i].payload, want[i].len);
        total += 12 + want[i].len;
        i++;
    }
    CHECK(r == 0); /* not malformed */
    CHECK_U64(i, n);
    CHECK_U64(b->len, total);
    if (n == 0) {
        CHECK(b->ptr == NULL && b->len == 0);
    }
}

/* ---- append, batch, read, read_range --------------------------------------- */

static void test_append_batch_read_range(void)
{
    static const uint8_t inline8[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    net_redex_t *r = redex_new(NULL);
    net_redex_file_t *f = r ? redex_open(r, "sdk-c/basic", NULL) : NULL;
    net_slice_t batch[3];
    net_bytes_t b = EMPTY;
    uint64_t seq = 77, first = 77, u = 0;
    bool appended = true, found = false;
    struct expect all[7];

    if (f == NULL) {
        CHECK_OK(net_redex_free(r));
        return;
    }
    CHECK_OK(net_redex_file_next_seq(f, &u));
    CHECK_U64(u, 0);
    CHECK_OK(net_redex_file_len(f, &u));
    CHECK_U64(u, 0);

    /* single */
    CHECK_U64(redex_append(f, "alpha"), 0);
    /* inline: exactly 8 bytes; anything else is refused and appends nothing */
    CHECK_OK(net_redex_file_append_inline(f, inline8, 8, &seq));
    CHECK_U64(seq, 1);
    seq = 77;
    CHECK_STATUS(net_redex_file_append_inline(f, inline8, 7, &seq), NET_ERR_REDEX_INLINE_LENGTH);
    CHECK(strstr(net_last_error_message(), "7") != NULL);
    CHECK_STATUS(net_redex_file_append_inline(f, NULL, 0, &seq), NET_ERR_REDEX_INLINE_LENGTH);
    CHECK_U64(seq, 77); /* outputs are written on success only */

    /* batch: consecutive seqs, one of them empty */
    batch[0].ptr = (const uint8_t *)"b0";
    batch[0].len = 2;
    batch[1].ptr = NULL; /* NULL is allowed with length 0 */
    batch[1].len = 0;
    batch[2].ptr = (const uint8_t *)"batch two";
    batch[2].len = 9;
    CHECK_OK(net_redex_file_append_batch(f, batch, 3, &first, &appended));
    CHECK_U64(first, 2);
    CHECK(appended == true);

    /* the empty batch: NET_OK, explicitly "nothing appended", no made-up seq */
    first = 77;
    appended = true;
    CHECK_OK(net_redex_file_append_batch(f, NULL, 0, &first, &appended));
    CHECK(appended == false);
    CHECK_U64(first, 0); /* documented: set to 0, meaningless */
    appended = true;
    CHECK_OK(net_redex_file_append_batch(f, batch, 0, &first, &appended));
    CHECK(appended == false);

    /* a bad slice fails the whole batch: nothing of it is appended */
    batch[1].len = 4; /* NULL with a length */
    first = 77;
    appended = true;
    CHECK_STATUS(net_redex_file_append_batch(f, batch, 3, &first, &appended),
                 NET_ERR_INVALID_ARGUMENT);
    CHECK(strstr(net_last_error_message(), "payloads[1]") != NULL);
    CHECK_U64(first, 77);
    CHECK(appended == true);
    CHECK_STATUS(net_redex_file_append_batch(f, NULL, 2, &first, &appended),
                 NET_ERR_INVALID_ARGUMENT);

    /* an empty single payload, then a 70 000-byte one */
    CHECK_OK(net_redex_file_append(f, NULL, 0, &seq));
    CHECK_U64(seq, 5);
    {
        size_t big_len = 70000, i;
        uint8_t *big = (uint8_t *)malloc(big_len);
        if (CHECK(big != NULL)) {
            for (i = 0; i < big_len; i++) {
                big[i] = (uint8_t)(i * 7u + 3u);
            }
            CHECK_OK(net_redex_file_append(f, big, big_len, &seq));
            CHECK_U64(seq, 6);
            CHECK_OK(net_redex_file_read(f, 6, &b, &found));
            CHECK(found);
            CHECK_BYTES(b, big, big_len);
            net_bytes_free(&b);
            free(big);
        }
    }

    CHECK_OK(net_redex_file_next_seq(f, &u));
    CHECK_U64(u, 7);
    CHECK_OK(net_redex_file_len(f, &u));
    CHECK_U64(u, 7);

    /* read */
    CHECK_OK(net_redex_file_read(f, 0, &b, &found));
    CHECK(found);
    CHECK_BYTES(b, "alpha", 5);
    net_bytes_free(&b);
    CHECK_OK(net_redex_file_read(f, 1, &b, &found));
    CHECK(found);
    CHECK_BYTES(b, inline8, 8);
    net_bytes_free(&b);
    CHECK_OK(net_redex_file_read(f, 3, &b, &found));
    CHECK(found); /* found, and empty */
    CHECK(b.ptr == NULL && b.len == 0);
    CHECK_OK(net_redex_file_read(f, 99, &b, &found));
    CHECK(!found);
    CHECK(b.ptr == NULL && b.len == 0);

    /* read_range: decoded records */
    all[0].seq = 0; all[0].payload = "alpha"; all[0].len = 5;
    all[1].seq = 1; all[1].payload = (const char *)inline8; all[1].len = 8;
    all[2].seq = 2; all[2].payload = "b0"; all[2].len = 2;
    all[3].seq = 3; all[3].payload = ""; all[3].len = 0;
    all[4].seq = 4; all[4].payload = "batch two"; all[4].len = 9;
    all[5].seq = 5; all[5].payload = ""; all[5].len = 0;
    CHECK_OK(net_redex_file_read_range(f, 0, 6, &b));
    check_range(&b, all, 6);
    /* the raw bytes of the first record: seq 0 LE, len 5 LE, "alpha" */
    if (CHECK(b.len >= 17)) {
        static const uint8_t rec0[17] = {0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0,
                                         'a', 'l', 'p', 'h', 'a'};
        CHECK_MEM(b.ptr, 17, rec0, 17);
    }
    net_bytes_free(&b);
    CHECK(b.ptr == NULL && b.len == 0);

    CHECK_OK(net_redex_file_read_range(f, 2, 5, &b)); /* a middle slice */
    check_range(&b, all + 2, 3);
    net_bytes_free(&b);
    CHECK_OK(net_redex_file_read_range(f, 6, 7, &b)); /* the big one alone */
    CHECK(b.len == 12 + 70000);
    {
        struct range_cursor c = range_cursor_of(&b);
        const uint8_t *p = NULL;
        uint32_t len = 0;
        CHECK(range_next(&c, &seq, &p, &len) == 1);
        CHECK_U64(seq, 6);
        CHECK_U64(len, 70000);
        CHECK(range_next(&c, &seq, &p, &len) == 0);
    }
    net_bytes_free(&b);
    CHECK_OK(net_redex_file_read_range(f, 7, 100, &b)); /* past the end: empty */
    check_range(&b, NULL, 0);
    CHECK_OK(net_redex_file_read_range(f, 4, 2, &b)); /* inverted: empty */
    check_range(&b, NULL, 0);
    CHECK_OK(net_redex_file_read_range(f, 0, UINT64_MAX, &b)); /* everything */
    {
        struct range_cursor c = range_cursor_of(&b);
        const uint8_t *p = NULL;
        uint32_t len = 0;
        uint64_t count = 0;
        while (range_next(&c, &seq, &p, &len) == 1) {
            CHECK_U64(seq, count);
            count++;
        }
        CHECK_U64(count, 7);
    }
    /* the decoder refuses a truncated buffer instead of reading past it */
    {
        net_bytes_t cut = b;
        struct range_cursor c;
        const uint8_t *p = NULL;
        uint32_t len = 0;
        cut.len = 10;
        c = range_cursor_of(&cut);
        CHECK(range_next(&c, &seq, &p, &len) == -1);
        cut.len = 15;
        c = range_cursor_of(&cut);
        CHECK(range_next(&c, &seq, &p, &len) == -1);
    }
    net_bytes_free(&b);

    CHECK_OK(net_redex_file_free(f));
    CHECK_OK(net_redex_free(r));
}

/* ---- persistence ------------------------------------------------------------- */

static const char *const PERSISTENT_CONFIGS[] = {
    "{\"persistent\": true}",
    "{\"persistent\": true, \"fsync\": \"never\"}",
    "{\"persistent\": true, \"fsync\": {\"every_n\": 1}}",
    "{\"persistent\": true, \"fsync\": {\"interval_ms\": 5}}",
    "{\"persistent\": true, \"fsync\": {\"interval_ms\": 50, \"max_bytes\": 4096}}",
    "{\"persistent\": true, \"retention\": {\"max_events\": 1000, \"max_bytes\": 1048576, "
    "\"max_age_ms\": 3600000}}",
};

static void test_persistent_survives_reopen(void)
{
    static const uint8_t inline8[8] = {'i', 'n', 'l', 'i', 'n', 'e', '!', '!'};
    char *dir = temp_dir_new("redex-persist");
    size_t k;
    for (k = 0; k < sizeof PERSISTENT_CONFIGS / sizeof PERSISTENT_CONFIGS[0]; k++) {
        const char *config = PERSISTENT_CONFIGS[k];
        char name[32];
        net_redex_t *r = redex_new(dir), *r2 = NULL;
        net_redex_file_t *f, *g;
        net_slice_t batch[2];
        net_bytes_t before = EMPTY, after = EMPTY;
        uint64_t seq = 0, first = 0, u = 0, removed = 0;
        bool appended = false;

        snprintf(name, sizeof name, "persist/k%u", (unsigned)k);
        f = r ? redex_open(r, name, config) : NULL;
        if (f == NULL) {
            CHECK_OK(net_redex_free(r));
            break;
        }
        CHECK_U64(redex_append(f, "first"), 0);
        CHECK_OK(net_redex_file_append_inline(f, inline8, 8, &seq));
        CHECK_U64(seq, 1);
        batch[0].ptr = (const uint8_t *)"b-one";
        batch[0].len = 5;
        batch[1].ptr = (const uint8_t *)"b-two";
        batch[1].len = 5;
        CHECK_OK(net_redex_file_append_batch(f, batch, 2, &first, &appended));
        CHECK(appended && first == 2);
        CHECK_OK(net_redex_file_sync(f));
        CHECK_OK(net_redex_file_sweep_retention(f, &removed));
        CHECK_U64(removed, 0);
        CHECK_OK(net_redex_file_read_range(f, 0, UINT64_MAX, &before));

        /* close: idempotent, later ops say CLOSED, the handle still needs free */
        CHECK_OK(net_redex_file_close(f));
        CHECK_OK(net_redex_file_close(f));
        CHECK_STATUS(net_redex_file_append(f, (const uint8_t *)"x", 1, &seq),
                     NET_ERR_REDEX_CLOSED);
        CHECK_OK(net_redex_file_free(f));
        CHECK_OK(net_redex_free(r));

        /* a fresh manager on the same directory sees the same entries */
        r2 = redex_new(dir);
        g = r2 ? redex_open(r2, name, config) : NULL;
        if (g != NULL) {
            CHECK_OK(net_redex_file_len(g, &u));
            CHECK_U64(u, 4);
            CHECK_OK(net_redex_file_next_seq(g, &u));
            CHECK_U64(u, 4);
            CHECK_OK(net_redex_file_read_range(g, 0, UINT64_MAX, &after));
            CHECK_MEM(after.ptr, after.len, before.ptr, before.len);
            {
                struct expect want[4];
                want[0].seq = 0; want[0].payload = "first"; want[0].len = 5;
                want[1].seq = 1; want[1].payload = (const char *)inline8; want[1].len = 8;
                want[2].seq = 2; want[2].payload = "b-one"; want[2].len = 5;
                want[3].seq = 3; want[3].payload = "b-two"; want[3].len = 5;
                check_range(&after, want, 4);
            }
            /* appends continue where the log left off */
            CHECK_U64(redex_append(g, "after reopen"), 4);
        }
        net_bytes_free(&before);
        net_bytes_free(&after);
        CHECK_OK(net_redex_file_free(g));
        CHECK_OK(net_redex_free(r2));
    }
    rm_rf(dir);
}

/* ---- tails ------------------------------------------------------------------- */

#define BACKFILL 100
#define WRITERS 2
#define PER_WRITER 1000

struct writer_arg {
    net_redex_file_t *file;
    unsigned id;
    pthread_barrier_t *start;
};

static pthread_mutex_t writers_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned writers_done = 0;
static char tail_info[160];

/* Payload "w<id>:<i>" */
static void *tail_writer(void *arg)
{
    struct writer_arg *w = (struct writer_arg *)arg;
    unsigned i;
    pthread_barrier_wait(w->start);
    for (i = 0; i < PER_WRITER; i++) {
        char p[32];
        uint64_t seq = 0;
        int n = snprintf(p, sizeof p, "w%u:%u", w->id, i);
        if (!CHECK_OK(net_redex_file_append(w->file, (const uint8_t *)p, (size_t)n, &seq))) {
            break;
        }
    }
    pthread_mutex_lock(&writers_lock);
    writers_done++;
    pthread_mutex_unlock(&writers_lock);
    return NULL;
}

static void test_tail_backfill_then_live(void)
{
    net_redex_t *r = redex_new(NULL);
    net_redex_file_t *f = r ? redex_open(r, "sdk-c/tail", NULL) : NULL;
    net_redex_tail_t *tail = NULL, *mid = NULL;
    pthread_barrier_t start;
    pthread_t threads[WRITERS];
    struct writer_arg args[WRITERS];
    unsigned next_of[WRITERS] = {0};
    uint64_t expect_seq = 0, seq = 0;
    net_bytes_t b = EMPTY;
    unsigned i, backfilled = 0, live = 0, while_writing = 0;
    int st;
    double t0;

    if (f == NULL) {
        CHECK_OK(net_redex_free(r));
        return;
    }
    for (i = 0; i < BACKFILL; i++) {
        char p[32];
        snprintf(p, sizeof p, "old:%u", i);
        redex_append(f, p);
    }
    if (!CHECK_OK(net_redex_file_tail(f, 0, &tail))) {
        goto out;
    }

    /* A tail that has caught up: 0 ms returns at once, N ms waits ~N ms. */
    CHECK_OK(net_redex_file_tail(f, BACKFILL, &mid));
    seq = 4242;
    CHECK_STATUS(net_redex_tail_next(mid, 0, &seq, &b, NULL, NULL), NET_TIMEOUT);
    t0 = now_s();
    CHECK_STATUS(net_redex_tail_next(mid, 30, &seq, &b, NULL, NULL), NET_TIMEOUT);
    CHECK(now_s() - t0 >= 0.025);
    CHECK_U64(seq, 4242); /* outputs untouched on NET_TIMEOUT */
    CHECK(b.ptr == NULL && b.len == 0);

    writers_done = 0;
    pthread_barrier_init(&start, NULL, WRITERS + 1);
    for (i = 0; i < WRITERS; i++) {
        args[i].file = f;
        args[i].id = i;
        args[i].start = &start;
        if (!CHECK(pthread_create(&threads[i], NULL, tail_writer, &args[i]) == 0)) {
            abort(); /* the barrier would never open */
        }
    }
    pthread_barrier_wait(&start);

    /* Read everything: the backfill in order, then the writers' entries as
     * they land, each exactly once and in each writer's order. */
    while (expect_seq < BACKFILL + WRITERS * PER_WRITER) {
        st = net_redex_tail_next(tail, 5000, &seq, &b, NULL, NULL);
        if (!CHECK_STATUS(st, NET_OK)) {
            break;
        }
        CHECK_U64(seq, expect_seq); /* no gap, no duplicate */
        if (expect_seq < BACKFILL) {
            char p[32];
            int n = snprintf(p, sizeof p, "old:%u", (unsigned)expect_seq);
            CHECK_BYTES(b, p, (size_t)n);
            backfilled++;
        } else {
            unsigned w = 0, k = 0;
            char text[40];
            size_t n = b.len < sizeof text - 1 ? b.len : sizeof text - 1;
            memcpy(text, b.ptr, n);
            text[n] = '\0';
            if (CHECK(sscanf(text, "w%u:%u", &w, &k) == 2) && CHECK(w < WRITERS)) {
                CHECK_U64(k, next_of[w]);
                next_of[w] = k + 1;
            }
            live++;
            pthread_mutex_lock(&writers_lock);
            while_writing += writers_done < WRITERS;
            pthread_mutex_unlock(&writers_lock);
        }
        net_bytes_free(&b);
        expect_seq++;
    }
    for (i = 0; i < WRITERS; i++) {
        pthread_join(threads[i], NULL);
        CHECK_U64(next_of[i], PER_WRITER);
    }
    pthread_barrier_destroy(&start);
    CHECK_U64(backfilled, BACKFILL);
    CHECK_U64(live, WRITERS * PER_WRITER);
    snprintf(tail_info, sizeof tail_info,
             "  %u backfilled, then %u live from %d writer threads (%u read while they wrote)",
             backfilled, live, WRITERS, while_writing);
    /* caught up: nothing more */
    CHECK_STATUS(net_redex_tail_next(tail, 0, &seq, &b, NULL, NULL), NET_TIMEOUT);

    /* A tail started in the middle begins exactly there. */
    CHECK_OK(net_redex_tail_next(mid, 0, &seq, &b, NULL, NULL));
    CHECK_U64(seq, BACKFILL);
    net_bytes_free(&b);

out:
    CHECK_OK(net_redex_tail_free(mid));
    CHECK_OK(net_redex_tail_free(tail));
    CHECK_OK(net_redex_file_free(f));
    CHECK_OK(net_redex_free(r));
}

struct blocked_next {
    net_redex_tail_t *tail;
    int status;
};

static void *next_forever(void *arg)
{
    struct blocked_next *bn = (struct blocked_next *)arg;
    uint64_t seq = 0;
    net_bytes_t b = EMPTY;
    bn->status = net_redex_tail_next(bn->tail, NET_WAIT_FOREVER, &seq, &b, NULL, NULL);
    net_bytes_free(&b);
    return NULL;
}

static void test_close_ends_tails(void)
{
    net_redex_t *r = redex_new(NULL);
    net_redex_file_t *f = r ? redex_open(r, "sdk-c/close", NULL) : NULL;
    net_redex_tail_t *blocked = NULL, *behind = NULL, *late = NULL;
    struct blocked_next bn;
    pthread_t t;
    net_bytes_t b = EMPTY;
    uint64_t seq = 0, u = 0, removed = 0;
    bool found = false, appended = false;

    if (f == NULL) {
        CHECK_OK(net_redex_free(r));
        return;
    }
    redex_append(f, "one");
    redex_append(f, "two");
    CHECK_OK(net_redex_file_tail(f, 2, &blocked)); /* caught up: will block */
    CHECK_OK(net_redex_file_tail(f, 0, &behind));  /* has two unread entries */
    CHECK_OK(net_redex_tail_next(behind, 0, &seq, &b, NULL, NULL));
    CHECK_U64(seq, 0);
    net_bytes_free(&b);

    memset(&bn, 0, sizeof bn);
    bn.tail = blocked;
    bn.status = 1000;
    if (!CHECK(pthread_create(&t, NULL, next_forever, &bn) == 0)) {
        goto out;
    }
    /* Let the next reach its wait (no clock). Whether it waited or started
     * after the close, it ends with NET_END: a closed file's tails are over.
     * (That a wait is really woken is proven in test_redex_races.c.) */
    yield_n(2000);
    CHECK_OK(net_redex_file_close(f));
    pthread_join(t, NULL); /* returns: the close ended the blocked next */
    CHECK_STATUS(bn.status, NET_END);

    /* Closing ends every tail at once, even one with unread entries
     * (they stay in the log: read them with read_range after reopening). */
    CHECK_STATUS(net_redex_tail_next(behind, 0, &seq, &b, NULL, NULL), NET_END);
    CHECK_STATUS(net_redex_tail_next(behind, NET_WAIT_FOREVER, &seq, &b, NULL, NULL), NET_END);
    CHECK_STATUS(net_redex_tail_next(blocked, 100, &seq, &b, NULL, NULL), NET_END);
    /* A tail started after the close ends at once too. */
    if (CHECK_OK(net_redex_file_tail(f, 0, &late))) {
        CHECK_STATUS(net_redex_tail_next(late, NET_WAIT_FOREVER, &seq, &b, NULL, NULL), NET_END);
    }

    /* Every other op on the closed file: NET_ERR_REDEX_CLOSED. */
    CHECK_STATUS(net_redex_file_append(f, (const uint8_t *)"x", 1, &seq), NET_ERR_REDEX_CLOSED);
    CHECK_STATUS(net_redex_file_append_inline(f, (const uint8_t *)"12345678", 8, &seq),
                 NET_ERR_REDEX_CLOSED);
    {
        /* an empty batch has nothing to refuse: libnet answers NET_OK (appended
         * false) before looking at the file; CLOSED would be as good */
        int st = net_redex_file_append_batch(f, NULL, 0, &seq, &appended);
        CHECK(st == NET_OK || st == NET_ERR_REDEX_CLOSED);
        CHECK(st != NET_OK || appended == false);
    }
    {
        net_slice_t one;
        one.ptr = (const uint8_t *)"x";
        one.len = 1;
        CHECK_STATUS(net_redex_file_append_batch(f, &one, 1, &seq, &appended),
                     NET_ERR_REDEX_CLOSED);
    }
    CHECK_STATUS(net_redex_file_read(f, 0, &b, &found), NET_ERR_REDEX_CLOSED);
    CHECK_STATUS(net_redex_file_read_range(f, 0, 2, &b), NET_ERR_REDEX_CLOSED);
    CHECK_STATUS(net_redex_file_sync(f), NET_ERR_REDEX_CLOSED);
    CHECK_STATUS(net_redex_file_sweep_retention(f, &removed), NET_ERR_REDEX_CLOSED);
    CHECK(strlen(net_last_error_message()) > 0);
    /* The counters stay readable. */
    CHECK_OK(net_redex_file_next_seq(f, &u));
    CHECK_U64(u, 2);
    CHECK_OK(net_redex_file_close(f)); /* idempotent */

out:
    CHECK_OK(net_redex_tail_free(late));
    CHECK_OK(net_redex_tail_free(behind));
    CHECK_OK(net_redex_tail_free(blocked));
    CHECK_OK(net_redex_file_free(f));
    CHECK_OK(net_redex_free(r));
}

/* ---- retention: NET_LAGGED ------------------------------------------------------ */

/* `dir` NULL: a memory file; otherwise a persistent one (the sweep compacts). */
static void lagged_case(const char *dir)
{
    net_redex_t *r = redex_new(dir);
    net_redex_file_t *f =
        r ? redex_open(r, "sdk-c/lag",
                       dir ? "{\"persistent\": true, \"retention\": {\"max_events\": 2}}"
                           : "{\"retention\": {\"max_events\": 2}}")
          : NULL;
    net_redex_tail_t *fresh = NULL, *reader = NULL;
    net_bytes_t b = EMPTY;
    uint64_t seq = 0, removed = 99, u = 0, i;
    bool found = true;

    if (f == NULL) {
        CHECK_OK(net_redex_free(r));
        return;
    }
    CHECK_OK(net_redex_file_tail(f, 0, &fresh));
    CHECK_OK(net_redex_file_tail(f, 0, &reader));
    for (i = 0; i < 5; i++) {
        char p[8];
        snprintf(p, sizeof p, "e%u", (unsigned)i);
        CHECK_U64(redex_append(f, p), i);
    }
    /* `reader` has read entry 0; `fresh` has read nothing. */
    CHECK_OK(net_redex_tail_next(reader, 0, &seq, &b, NULL, NULL));
    CHECK_U64(seq, 0);
    CHECK_BYTES(b, "e0", 2);
    net_bytes_free(&b);

    CHECK_OK(net_redex_file_sweep_retention(f, &removed));
    CHECK_U64(removed, 3);
    CHECK_OK(net_redex_file_len(f, &u));
    CHECK_U64(u, 2);
    CHECK_OK(net_redex_file_next_seq(f, &u));
    CHECK_U64(u, 5); /* never goes backwards */
    CHECK_OK(net_redex_file_read(f, 1, &b, &found));
    CHECK(!found);

    /* NET_LAGGED: seq = where delivery resumes; the payload is empty.
     * Missed: [previous position, seq) = [0, 3) for `fresh`, [1, 3) for `reader`. */
    seq = 0;
    {
        /* a non-empty sentinel proves the payload is written as {NULL, 0} */
        net_bytes_t lag;
        lag.ptr = (uint8_t *)&u;
        lag.len = 1;
        CHECK_STATUS(net_redex_tail_next(fresh, 0, &seq, &lag, NULL, NULL), NET_LAGGED);
        CHECK_U64(seq, 3);
        CHECK(lag.ptr == NULL && lag.len == 0);
        if (lag.ptr != (uint8_t *)&u) {
            net_bytes_free(&lag);
        }
    }
    CHECK_STATUS(net_redex_tail_next(reader, NET_WAIT_FOREVER, &seq, &b, NULL, NULL), NET_LAGGED);
    CHECK_U64(seq, 3);
    CHECK(b.ptr == NULL && b.len == 0);

    /* then delivery resumes at seq 3, once */
    CHECK_OK(net_redex_tail_next(fresh, 0, &seq, &b, NULL, NULL));
    CHECK_U64(seq, 3);
    CHECK_BYTES(b, "e3", 2);
    net_bytes_free(&b);
    CHECK_OK(net_redex_tail_next(fresh, 0, &seq, &b, NULL, NULL));
    CHECK_U64(seq, 4);
    net_bytes_free(&b);
    CHECK_STATUS(net_redex_tail_next(fresh, 0, &seq, &b, NULL, NULL), NET_TIMEOUT);

    /* nothing more to sweep */
    CHECK_OK(net_redex_file_sweep_retention(f, &removed));
    CHECK_U64(removed, 0);

    CHECK_OK(net_redex_tail_free(reader));
    CHECK_OK(net_redex_tail_free(fresh));
    CHECK_OK(net_redex_file_free(f));
    CHECK_OK(net_redex_free(r));
}

static void test_lagged_after_retention(void)
{
    char *dir = temp_dir_new("redex-lag");
    lagged_case(NULL);
    lagged_case(dir);
    /* the compacted persistent file reopens with the survivors only */
    {
        net_redex_t *r = redex_new(dir);
        net_redex_file_t *f = r ? redex_open(r, "sdk-c/lag", "{\"persistent\": true, "
                                             "\"retention\": {\"max_events\": 2}}")
                                : NULL;
        net_bytes_t b = EMPTY;
        uint64_t u = 0;
        if (f != NULL) {
            struct expect want[2];
            want[0].seq = 3; want[0].payload = "e3"; want[0].len = 2;
            want[1].seq = 4; want[1].payload = "e4"; want[1].len = 2;
            CHECK_OK(net_redex_file_next_seq(f, &u));
            CHECK_U64(u, 5);
            CHECK_OK(net_redex_file_read_range(f, 0, UINT64_MAX, &b));
            check_range(&b, want, 2);
            net_bytes_free(&b);
        }
        CHECK_OK(net_redex_file_free(f));
        CHECK_OK(net_redex_free(r));
    }
    rm_rf(dir);
}

/* ---- locking: one writer per channel directory --------------------------------- */

static void test_second_writer_locked(void)
{
    static const char config[] = "{\"persistent\": true}";
    char *dir = temp_dir_new("redex-lock");
    net_redex_t *a = redex_new(dir), *b = redex_new(dir);
    net_redex_file_t *fa = NULL, *fb = (net_redex_file_t *)&fa, *again = NULL;
    uint64_t u = 0;

    if (a == NULL || b == NULL) {
        goto out;
    }
    fa = redex_open(a, "shared/log", config);
    if (fa == NULL) {
        goto out;
    }
    redex_append(fa, "from a");
    /* another manager (as another process would be) is refused */
    CHECK_STATUS(redex_open_status(b, "shared/log", config, &fb), NET_ERR_REDEX_LOCKED);
    CHECK(strstr(net_last_error_message(), "locked") != NULL);
    CHECK(fb == (net_redex_file_t *)&fa); /* out untouched */
    /* other channels under the same base are free */
    again = redex_open(b, "shared/other", config);
    CHECK_OK(net_redex_file_free(again));
    again = NULL;

    /* close releases the directory (free would too) */
    CHECK_OK(net_redex_file_close(fa));
    fb = NULL;
    if (CHECK_OK(redex_open_status(b, "shared/log", config, &fb))) {
        CHECK_OK(net_redex_file_len(fb, &u));
        CHECK_U64(u, 1);
        /* and now `a` is the one refused */
        CHECK_STATUS(redex_open_status(a, "shared/log", config, &again), NET_ERR_REDEX_LOCKED);
        CHECK_OK(net_redex_file_free(fb));
    }
    CHECK_OK(net_redex_file_free(fa));
    /* after free, `a` can have it back */
    again = redex_open(a, "shared/log", config);
    CHECK_OK(net_redex_file_free(again));
out:
    CHECK_OK(net_redex_free(b));
    CHECK_OK(net_redex_free(a));
    rm_rf(dir);
}

/* ---- configuration and argument errors --------------------------------------- */

struct bad_config {
    const char *json;
    const char *needle; /* must appear in net_last_error_message() */
};

static const struct bad_config BAD_CONFIGS[] = {
    {"{\"persistant\": true}", "persistant"},
    {"{\"fsync\": \"always\"}", "always"},
    {"{\"persistent\": true, \"fsync\": {\"evry_n\": 1}}", "evry_n"},
    {"{\"persistent\": true, \"fsync\": {\"every_n\": -1}}", "fsync.every_n"},
    {"{\"persistent\": true, \"fsync\": {\"every_n\": 1, \"interval_ms\": 5}}", "exactly one"},
    {"{\"retention\": {\"max_event\": 1}}", "max_event"},
    {"{\"fsync\": {\"every_n\": 2}}", "persistent"},
    {"not json", "config JSON"},
};

static void test_config_and_argument_errors(void)
{
    char *dir = temp_dir_new("redex-config");
    net_redex_t *mem = redex_new(NULL), *disk = redex_new(dir);
    net_redex_file_t *sentinel = (net_redex_file_t *)&dir, *f = sentinel, *ok = NULL;
    net_redex_tail_t *tail = NULL;
    net_identity_t *id = NULL;
    net_bytes_t b = EMPTY;
    uint64_t seq = 0;
    size_t i;

    if (mem == NULL || disk == NULL) {
        goto out;
    }
    for (i = 0; i < sizeof BAD_CONFIGS / sizeof BAD_CONFIGS[0]; i++) {
        f = sentinel;
        if (!CHECK_STATUS(redex_open_status(disk, "cfg/x", BAD_CONFIGS[i].json, &f),
                          NET_ERR_REDEX_INVALID_CONFIG)) {
            fprintf(stderr, "       config: %s\n", BAD_CONFIGS[i].json);
            continue;
        }
        if (!CHECK(strstr(net_last_error_message(), BAD_CONFIGS[i].needle) != NULL)) {
            fprintf(stderr, "       config %s: message \"%s\" lacks \"%s\"\n",
                    BAD_CONFIGS[i].json, net_last_error_message(), BAD_CONFIGS[i].needle);
        }
        CHECK(f == sentinel);
    }
    /* empty string = defaults (a memory file), like NULL */
    f = NULL;
    CHECK_OK(net_redex_open_file(mem, (const uint8_t *)"cfg/empty", 9, (const uint8_t *)"", 0, &f));
    CHECK_OK(net_redex_file_free(f));

    /* persistent needs a base directory */
    f = sentinel;
    CHECK_STATUS(redex_open_status(mem, "cfg/p", "{\"persistent\": true}", &f),
                 NET_ERR_REDEX_NO_PERSISTENT_DIR);
    CHECK(f == sentinel);
    /* channel names follow the channel rules */
    CHECK_STATUS(redex_open_status(mem, "bad//name", NULL, &f), NET_ERR_CHANNEL_INVALID_NAME);
    CHECK_STATUS(redex_open_status(mem, "", NULL, &f), NET_ERR_CHANNEL_INVALID_NAME);
    CHECK_STATUS(net_redex_open_file(mem, (const uint8_t *)"\xff\xfe", 2, NULL, 0, &f),
                 NET_ERR_INVALID_ARGUMENT);
    /* NULL config with a length, NULL name, NULL out */
    CHECK_STATUS(net_redex_open_file(mem, (const uint8_t *)"cfg/a", 5, NULL, 3, &f),
                 NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_redex_open_file(mem, NULL, 5, NULL, 0, &f), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(redex_open_status(mem, "cfg/a", NULL, NULL), NET_ERR_INVALID_ARGUMENT);
    CHECK(f == sentinel);
    CHECK_STATUS(net_redex_open((const uint8_t *)"x", 1, NULL), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_redex_open(NULL, 4, (net_redex_t **)&f), NET_ERR_INVALID_ARGUMENT);

    /* the same name twice on one manager: the same file, unless configs differ */
    ok = redex_open(mem, "cfg/same", NULL);
    if (ok != NULL) {
        CHECK_STATUS(redex_open_status(mem, "cfg/same", "{\"retention\": {\"max_events\": 3}}", &f),
                     NET_ERR_REDEX_INVALID_CONFIG);
        CHECK(strstr(net_last_error_message(), "different configuration") != NULL);
    }

    /* NULL handles and handles of the wrong type */
    CHECK_STATUS(net_redex_file_append(NULL, (const uint8_t *)"x", 1, &seq),
                 NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_redex_tail_next(NULL, 0, &seq, &b, NULL, NULL), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(redex_open_status(NULL, "cfg/a", NULL, &f), NET_ERR_INVALID_ARGUMENT);
    if (ok != NULL) {
        CHECK_STATUS(net_redex_file_append(ok, NULL, 3, &seq), NET_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(net_redex_file_append(ok, (const uint8_t *)"x", 1, NULL),
                     NET_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(net_redex_file_read(ok, 0, &b, NULL), NET_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(net_redex_file_tail(ok, 0, NULL), NET_ERR_INVALID_ARGUMENT);
        /* a file handle passed as a tail, a manager or an identity is refused */
        CHECK_STATUS(net_redex_tail_next((const net_redex_tail_t *)ok, 0, &seq, &b, NULL, NULL),
                     NET_ERR_INVALID_ARGUMENT);
        CHECK(strstr(net_last_error_message(), "net_redex_tail_t") != NULL);
        CHECK_STATUS(redex_open_status((const net_redex_t *)ok, "cfg/a", NULL, &f),
                     NET_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(net_identity_node_id((const net_identity_t *)ok, &seq),
                     NET_ERR_INVALID_ARGUMENT);
        CHECK_OK(net_redex_file_tail(ok, 0, &tail));
        CHECK_STATUS(net_redex_tail_next(tail, 0, NULL, &b, NULL, NULL), NET_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(net_redex_file_len((const net_redex_file_t *)tail, &seq),
                     NET_ERR_INVALID_ARGUMENT);
        /* the wrong-type frees are refused and do nothing: the handles still work */
        CHECK_STATUS(net_redex_tail_free((net_redex_tail_t *)ok), NET_ERR_INVALID_ARGUMENT);
        CHECK(strstr(net_last_error_message(), "net_redex_tail_t") != NULL);
        CHECK_STATUS(net_redex_free((net_redex_t *)ok), NET_ERR_INVALID_ARGUMENT);
        CHECK_OK(net_redex_file_len(ok, &seq));
    }
    if (CHECK_OK(net_identity_generate(&id))) {
        CHECK_STATUS(net_redex_file_len((const net_redex_file_t *)id, &seq),
                     NET_ERR_INVALID_ARGUMENT);
        /* refused: the identity lives on */
        CHECK_STATUS(net_redex_file_free((net_redex_file_t *)id), NET_ERR_INVALID_ARGUMENT);
        CHECK_OK(net_identity_node_id(id, &seq));
    }
    CHECK(b.ptr == NULL && b.len == 0);
    /* NULL frees are no-ops that succeed */
    CHECK_OK(net_redex_free(NULL));
    CHECK_OK(net_redex_file_free(NULL));
    CHECK_OK(net_redex_tail_free(NULL));

out:
    CHECK_OK(net_identity_free(id));
    CHECK_OK(net_redex_tail_free(tail));
    CHECK_OK(net_redex_file_free(ok));
    CHECK_OK(net_redex_free(disk));
    CHECK_OK(net_redex_free(mem));
    rm_rf(dir);
}

/* ---- recovery ------------------------------------------------------------------ */

/* The number of occurrences of `needle` in the NUL-terminated `hay`. */
static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0, len = strlen(needle);
    const char *at = hay;
    while ((at = strstr(at, needle)) != NULL) {
        n++;
        at += len;
    }
    return n;
}

/* The recovery report of `f` as a NUL-terminated string (free it), or NULL. */
static char *recovery_report(const net_redex_file_t *f)
{
    net_bytes_t b = EMPTY;
    char *text;
    if (!CHECK_OK(net_redex_file_recovery_report(f, &b))) {
        return NULL;
    }
    text = (char *)malloc(b.len + 1);
    if (CHECK(text != NULL)) {
        memcpy(text, b.ptr, b.len);
        text[b.len] = '\0';
    }
    net_bytes_free(&b);
    return text;
}

/* Creates persistent channel `name` under `dir` with `n` entries, closed. */
static void write_channel(const char *dir, const char *name, int n)
{
    net_redex_t *r = redex_new(dir);
    net_redex_file_t *f = r ? redex_open(r, name, "{\"persistent\": true}") : NULL;
    char payload[32];
    int i;
    for (i = 0; f != NULL && i < n; i++) {
        snprintf(payload, sizeof payload, "entry-%d", i);
        redex_append(f, payload);
    }
    if (f != NULL) {
        CHECK_OK(net_redex_file_close(f));
    }
    CHECK_OK(net_redex_file_free(f));
    CHECK_OK(net_redex_free(r));
}

/* Every file under a directory (path, size, contents), for "nothing changed". */
static char *snapshot_buf;
static size_t snapshot_len;

static void snapshot_add(const void *p, size_t n)
{
    char *grown = (char *)realloc(snapshot_buf, snapshot_len + n);
    if (grown == NULL) {
        abort();
    }
    snapshot_buf = grown;
    memcpy(snapshot_buf + snapshot_len, p, n);
    snapshot_len += n;
}

static int snapshot_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    char chunk[4096];
    size_t n;
    FILE *fp;
    (void)ftw;
    snapshot_add(path, strlen(path) + 1);
    if (flag != FTW_F) {
        return 0;
    }
    snapshot_add(&sb->st_size, sizeof sb->st_size);
    fp = fopen(path, "rb");
    if (fp == NULL) {
        return -1;
    }
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0) {
        snapshot_add(chunk, n);
    }
    fclose(fp);
    return 0;
}

/* The snapshot of `dir` (free it); *len gets its length. */
static char *snapshot_dir(const char *dir, size_t *len)
{
    char *out;
    snapshot_buf = NULL;
    snapshot_len = 0;
    CHECK(nftw(dir, snapshot_entry, 16, FTW_PHYS) == 0);
    out = snapshot_buf;
    *len = snapshot_len;
    snapshot_buf = NULL;
    return out;
}

static void test_lost_dat_is_corrupt_until_repaired(void)
{
    static const char *const persistent = "{\"persistent\": true}";
    char *dir = temp_dir_new("redex-corrupt");
    char dat[512];
    char *before = NULL, *after = NULL, *report = NULL;
    size_t before_len = 0, after_len = 0;
    net_redex_t *r = NULL;
    net_redex_file_t *sentinel = (net_redex_file_t *)&dir, *f = sentinel;
    net_bytes_t b = EMPTY;
    bool found = true;

    write_channel(dir, "orders/eu", 3);
    snprintf(dat, sizeof dat, "%s/orders/eu/v0000000001/dat", dir);
    if (!CHECK(remove(dat) == 0)) {
        goto out;
    }
    before = snapshot_dir(dir, &before_len);
    r = redex_new(dir);
    if (r == NULL) {
        goto out;
    }
    CHECK_STATUS(redex_open_status(r, "orders/eu", persistent, &f), NET_ERR_REDEX_CORRUPT);
    CHECK(f == sentinel);
    if (!CHECK(strstr(net_last_error_message(), dat) != NULL)) {
        fprintf(stderr, "       message \"%s\" does not name %s\n", net_last_error_message(), dat);
    }
    after = snapshot_dir(dir, &after_len);
    CHECK_MEM(after, after_len, before, before_len); /* nothing was changed */

    /* repair: the heap entries are lost (listed), their seqs never reused */
    f = redex_open(r, "orders/eu", "{\"persistent\": true, \"repair\": true}");
    if (f == NULL) {
        goto out;
    }
    report = recovery_report(f);
    if (report != NULL) {
        CHECK(strstr(report, "\"repaired\":true") != NULL);
        CHECK(strstr(report, "\"clean\":false") != NULL);
        CHECK(strstr(report, "\"entries\":0") != NULL);
        CHECK_U64(count_of(report, "\"reason\":\"payload_out_of_range\""), 3);
        CHECK_U64(count_of(report, "\"reason\":"), 3);
        CHECK(strstr(report, "\"stored_seq\":0") != NULL);
        CHECK(strstr(report, "\"stored_seq\":2") != NULL);
    }
    CHECK_OK(net_redex_file_read(f, 0, &b, &found));
    CHECK(!found);
    net_bytes_free(&b);
    CHECK_U64(redex_append(f, "after repair"), 3);

out:
    free(report);
    free(before);
    free(after);
    if (f != sentinel) {
        CHECK_OK(net_redex_file_free(f));
    }
    CHECK_OK(net_redex_free(r));
    rm_rf(dir);
}

static void test_recovery_report(void)
{
    static const char *const persistent = "{\"persistent\": true}";
    char *dir = temp_dir_new("redex-report");
    char dat[512];
    char *report = NULL;
    net_redex_t *r = NULL, *mem = NULL;
    net_redex_file_t *f = NULL, *fresh = NULL, *m = NULL, *sentinel = (net_redex_file_t *)&dir;
    net_bytes_t b = EMPTY;
    FILE *fp;
    int c;

    write_channel(dir, "orders/eu", 3);
    /* flip the first byte of dat: entry 0's payload */
    snprintf(dat, sizeof dat, "%s/orders/eu/v0000000001/dat", dir);
    fp = fopen(dat, "r+b");
    if (!CHECK(fp != NULL)) {
        goto out;
    }
    c = fgetc(fp);
    CHECK(c != EOF);
    CHECK(fseek(fp, 0, SEEK_SET) == 0);
    CHECK(fputc(c ^ 0xFF, fp) != EOF);
    CHECK(fclose(fp) == 0);

    r = redex_new(dir);
    f = r ? redex_open(r, "orders/eu", persistent) : NULL;
    if (f == NULL) {
        goto out;
    }
    report = recovery_report(f);
    if (report != NULL) {
        CHECK(strstr(report, "\"clean\":false") != NULL);
        CHECK(strstr(report, "\"repaired\":false") != NULL);
        CHECK(strstr(report, "\"entries\":2") != NULL);
        CHECK_U64(count_of(report, "\"reason\":"), 1);
        CHECK(strstr(report, "\"reason\":\"checksum_mismatch\"") != NULL);
        CHECK(strstr(report, "\"seq\":0") != NULL);
        CHECK(strstr(report, "\"stored_seq\":0") != NULL);
    }
    free(report);
    report = NULL;

    /* a fresh channel opens clean */
    fresh = redex_open(r, "orders/fresh", persistent);
    if (fresh != NULL) {
        report = recovery_report(fresh);
        CHECK(report != NULL && strstr(report, "\"clean\":true") != NULL);
        CHECK(report != NULL && strstr(report, "\"dropped\":[]") != NULL);
        free(report);
        report = NULL;
    }
    /* a memory file has no report: JSON null */
    mem = redex_new(NULL);
    m = mem ? redex_open(mem, "orders/mem", NULL) : NULL;
    if (m != NULL) {
        CHECK_OK(net_redex_file_recovery_report(m, &b));
        CHECK_BYTES(b, "null", 4);
        net_bytes_free(&b);
        CHECK_STATUS(net_redex_file_recovery_report(m, NULL), NET_ERR_INVALID_ARGUMENT);
    }
    CHECK_STATUS(net_redex_file_recovery_report(NULL, &b), NET_ERR_INVALID_ARGUMENT);
    CHECK(b.ptr == NULL && b.len == 0);

    /* repair needs a persistent file */
    {
        net_redex_file_t *x = sentinel;
        if (mem != NULL) {
            CHECK_STATUS(redex_open_status(mem, "orders/repair", "{\"repair\": true}", &x),
                         NET_ERR_REDEX_INVALID_CONFIG);
            CHECK(strstr(net_last_error_message(), "repair") != NULL);
            CHECK(x == sentinel);
        }
        CHECK_STATUS(redex_open_status(r, "orders/repair", "{\"repair\": true}", &x),
                     NET_ERR_REDEX_INVALID_CONFIG);
        CHECK(x == sentinel);
    }

out:
    free(report);
    CHECK_OK(net_redex_file_free(m));
    CHECK_OK(net_redex_file_free(fresh));
    CHECK_OK(net_redex_file_free(f));
    CHECK_OK(net_redex_free(mem));
    CHECK_OK(net_redex_free(r));
    rm_rf(dir);
}

/* ---- lifetimes across handles ---------------------------------------------------- */

static void test_handle_lifetimes(void)
{
    net_redex_t *r = redex_new(NULL);
    net_redex_file_t *f = r ? redex_open(r, "sdk-c/life", NULL) : NULL, *g = NULL;
    net_redex_tail_t *tail = NULL;
    net_bytes_t b = EMPTY;
    uint64_t seq = 0;

    if (f == NULL) {
        CHECK_OK(net_redex_free(r));
        return;
    }
    /* Freeing the manager leaves its files open and usable. */
    CHECK_OK(net_redex_free(r));
    CHECK_U64(redex_append(f, "still here"), 0);
    CHECK_OK(net_redex_file_tail(f, 0, &tail));

    /* Freeing the file closes it: its tails end, but stay valid until freed. */
    CHECK_OK(net_redex_file_free(f));
    CHECK_STATUS(net_redex_tail_next(tail, NET_WAIT_FOREVER, &seq, &b, NULL, NULL), NET_END);
    CHECK_OK(net_redex_tail_free(tail));

    /* Two handles on one channel from one manager share one file: closing
     * (or freeing) either closes it for both. */
    r = redex_new(NULL);
    f = r ? redex_open(r, "sdk-c/twice", NULL) : NULL;
    g = r ? redex_open(r, "sdk-c/twice", NULL) : NULL;
    if (f != NULL && g != NULL) {
        CHECK_U64(redex_append(f, "via f"), 0);
        CHECK_U64(redex_append(g, "via g"), 1);
        CHECK_OK(net_redex_file_read(g, 0, &b, (bool[]){false}));
        CHECK_BYTES(b, "via f", 5);
        net_bytes_free(&b);
        CHECK_OK(net_redex_file_free(f));
        f = NULL;
        CHECK_STATUS(net_redex_file_append(g, (const uint8_t *)"x", 1, &seq),
                     NET_ERR_REDEX_CLOSED);
    }
    CHECK_OK(net_redex_file_free(g));
    CHECK_OK(net_redex_file_free(f));
    CHECK_OK(net_redex_free(r));
}

/* ---- the header -------------------------------------------------------------- */

static void test_redex_header(void)
{
    static const struct {
        int code;
        const char *name;
    } names[] = {
        {NET_LAGGED, "NET_LAGGED"},
        {NET_ERR_REDEX_IO, "NET_ERR_REDEX_IO"},
        {NET_ERR_REDEX_POISONED, "NET_ERR_REDEX_POISONED"},
        {NET_ERR_REDEX_SYNC_FAILED, "NET_ERR_REDEX_SYNC_FAILED"},
        {NET_ERR_REDEX_LOCKED, "NET_ERR_REDEX_LOCKED"},
        {NET_ERR_REDEX_CLOSED, "NET_ERR_REDEX_CLOSED"},
        {NET_ERR_REDEX_INVALID_CONFIG, "NET_ERR_REDEX_INVALID_CONFIG"},
        {NET_ERR_REDEX_INLINE_LENGTH, "NET_ERR_REDEX_INLINE_LENGTH"},
        {NET_ERR_REDEX_TOO_LARGE, "NET_ERR_REDEX_TOO_LARGE"},
        {NET_ERR_REDEX_GENERATION_OVERFLOW, "NET_ERR_REDEX_GENERATION_OVERFLOW"},
        {NET_ERR_REDEX_NO_PERSISTENT_DIR, "NET_ERR_REDEX_NO_PERSISTENT_DIR"},
        {NET_ERR_REDEX_CORRUPT, "NET_ERR_REDEX_CORRUPT"},
        {NET_ERR_REDEX_SEQ_EXHAUSTED, "NET_ERR_REDEX_SEQ_EXHAUSTED"},
    };
    size_t i;
    uint32_t forever = NET_WAIT_FOREVER;
    CHECK(NET_LAGGED == 3);
    CHECK(NET_ERR_REDEX_IO == -100 && NET_ERR_REDEX_NO_PERSISTENT_DIR == -109);
    CHECK(NET_ERR_REDEX_CORRUPT == -110 && NET_ERR_REDEX_SEQ_EXHAUSTED == -111);
    CHECK_U64(forever, 0xFFFFFFFFu);
    CHECK(sizeof(net_slice_t) == 2 * sizeof(void *));
    CHECK(offsetof(net_slice_t, len) == sizeof(void *));
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        CHECK(strcmp(net_status_name(names[i].code), names[i].name) == 0);
    }
}

int main(void)
{
    RUN_TEST(test_append_batch_read_range);
    RUN_TEST(test_persistent_survives_reopen);
    RUN_TEST(test_tail_backfill_then_live);
    printf("%s\n", tail_info);
    RUN_TEST(test_close_ends_tails);
    RUN_TEST(test_lagged_after_retention);
    RUN_TEST(test_second_writer_locked);
    RUN_TEST(test_config_and_argument_errors);
    RUN_TEST(test_lost_dat_is_corrupt_until_repaired);
    RUN_TEST(test_recovery_report);
    RUN_TEST(test_handle_lifetimes);
    RUN_TEST(test_redex_header);
    return check_finish("test_redex");
}
