/*
 * RedEX handle lifetimes under threads: the three races for each of
 * net_redex_t, net_redex_file_t and net_redex_tail_t.
 *
 *  1. a call after free returns NET_ERR_SHUTTING_DOWN (the handle's header is
 *     never deallocated, so the raw pointer stays safe to pass);
 *  2. concurrent frees (and, for files, closes) of one handle are idempotent,
 *     and calls racing them get a result or NET_ERR_SHUTTING_DOWN, never a
 *     crash;
 *  3. free waits for a call in flight:
 *     - manager: an open_file recovering a ~48 MiB persistent channel;
 *     - file: a 48 MiB append to a persistent file, which either completes
 *       (and is on disk after reopening) or is refused with SHUTTING_DOWN;
 *     a round counts when the call got in and was still running when the free
 *     began (how long to let it run adapts, struct delay); its output being
 *     visible when the free returns proves the free waited for it;
 *  4. the tail's blocking call: a next blocked with NET_WAIT_FOREVER is woken
 *     by the tail's free (NET_END), and by a cancel of its net_cancel_t
 *     (NET_ERR_CANCELLED "while it waited", the error in its net_error_t);
 *     rounds are retried until the outcome proves the call was waiting.
 *
 * Run under AddressSanitizer + LeakSanitizer: a use-after-free, double free
 * or leak in any interleaving fails the run even when every CHECK passes.
 */
#define _XOPEN_SOURCE 700

#include "block_util.h"
#include "redex_util.h"

static const char PERSISTENT[] = "{\"persistent\": true}";
static const net_bytes_t EMPTY = {NULL, 0};

/* Wait until a worker says it is about to make its call. */
struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int open;
};

static void gate_init(struct gate *g)
{
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->open = 0;
}

static void gate_signal(struct gate *g)
{
    pthread_mutex_lock(&g->lock);
    g->open = 1;
    pthread_cond_signal(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

static void gate_wait(struct gate *g)
{
    pthread_mutex_lock(&g->lock);
    while (!g->open) {
        pthread_cond_wait(&g->cond, &g->lock);
    }
    pthread_mutex_unlock(&g->lock);
}

static void gate_destroy(struct gate *g)
{
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->cond);
}

#define FREE_THREADS 3
#define OP_THREADS 3
#define FREE_ROUNDS 100
#define RACE_DEADLINE_S 10.0

/* ==== 1. op after free ======================================================= */

static void test_manager_op_after_free(void)
{
    char *dir = temp_dir_new("redex-race1");
    int round;
    for (round = 0; round < 50; round++) {
        net_redex_t *r = redex_new(round % 2 ? dir : NULL);
        net_redex_file_t *f = r ? redex_open(r, "after/free", NULL) : NULL;
        net_redex_file_t *sentinel = (net_redex_file_t *)&round, *g = sentinel;
        if (f == NULL) {
            CHECK_OK(net_redex_free(r));
            break;
        }
        CHECK_OK(net_redex_free(r));
        CHECK_STATUS(redex_open_status(r, "after/other", NULL, &g), NET_ERR_SHUTTING_DOWN);
        CHECK(g == sentinel);
        if (round == 0) {
            CHECK(strstr(net_last_error_message(), "net_redex_t") != NULL);
        }
        /* idempotent, and the file it opened lives on */
        CHECK_OK(net_redex_free(r));
        CHECK_OK(net_redex_free(r));
        CHECK_STATUS(redex_open_status(r, "after/free", PERSISTENT, &g), NET_ERR_SHUTTING_DOWN);
        CHECK_U64(redex_append(f, "still open"), 0);
        CHECK_OK(net_redex_file_free(f));
    }
    rm_rf(dir);
}

static void test_file_op_after_free(void)
{
    int round;
    for (round = 0; round < 50; round++) {
        net_redex_t *r = redex_new(NULL);
        net_redex_file_t *f = r ? redex_open(r, "after/file", NULL) : NULL;
        net_redex_tail_t *tail = NULL, *t2 = (net_redex_tail_t *)&round;
        net_slice_t one;
        net_bytes_t b = EMPTY;
        uint64_t u = 42, first = 42;
        bool flag = true;
        if (f == NULL) {
            CHECK_OK(net_redex_free(r));
            break;
        }
        redex_append(f, "x");
        CHECK_OK(net_redex_file_tail(f, 0, &tail));
        CHECK_OK(net_redex_file_free(f));

        one.ptr = (const uint8_t *)"y";
        one.len = 1;
        CHECK_STATUS(net_redex_file_append(f, one.ptr, 1, &u), NET_ERR_SHUTTING_DOWN);
        CHECK_STATUS(net_redex_file_append_inline(f, (const uint8_t *)"12345678", 8, &u),
                     NET_ERR_SHUTTING_DOWN);
        CHECK_STATUS(net_redex_file_append_batch(f, &one, 1, &first, &flag),
                     NET_ERR_SHUTTING_DOWN);
        CHECK_STATUS(net_redex_file_append_batch(f, NULL, 0, &first, &flag),
                     NET_ERR_SHUTTING_DOWN);
        CHECK_STATUS(net_redex_file_read(f, 0, &b, &flag), NET_ERR_SHUTTING_DOWN);
        CHECK_STATUS(net_redex_file_read_range(f, 0, 10, &b), NET_ERR_SHUTTING_DOWN);
        CHECK_STATUS(net_redex_file_next_seq(f, &u), NET_ERR_SHUTTING_DOWN);
        CHECK_STATUS(net_redex_file_len(f, &u), NET_ERR_SHUTTING_DOWN);
        CHECK_STATUS(net_redex_file_sync(f), NET_ERR_SHUTTING_DOWN);
        CHECK_STATUS(net_redex_file_close(f), NET_ERR_SHUTTING_DOWN);
        CHECK_STATUS(net_redex_file_sweep_retention(f, &u), NET_ERR_SHUTTING_DOWN);
        CHECK_STATUS(net_redex_file_tail(f, 0, &t2), NET_ERR_SHUTTING_DOWN);
        CHECK(u == 42 && first == 42 && flag == true);
        CHECK(b.ptr == NULL && b.len == 0 && t2 == (net_redex_tail_t *)&round);
        if (round == 0) {
            CHECK(strstr(net_last_error_message(), "net_redex_file_t") != NULL);
        }
        CHECK_OK(net_redex_file_free(f));
        CHECK_OK(net_redex_file_free(f));
        CHECK_STATUS(net_redex_file_len(f, &u), NET_ERR_SHUTTING_DOWN);

        /* The file's tail outlives it: it has ended, and is freed on its own. */
        CHECK_STATUS(net_redex_tail_next(tail, NET_WAIT_FOREVER, &u, &b, NULL, NULL), NET_END);
        CHECK_OK(net_redex_tail_free(tail));
        CHECK_OK(net_redex_free(r));
    }
}

static void test_tail_op_after_free(void)
{
    net_redex_t *r = redex_new(NULL);
    net_redex_file_t *f = r ? redex_open(r, "after/tail", NULL) : NULL;
    int round;
    if (f == NULL) {
        CHECK_OK(net_redex_free(r));
        return;
    }
    redex_append(f, "entry");
    for (round = 0; round < 200; round++) {
        net_redex_tail_t *tail = NULL;
        net_bytes_t b = EMPTY;
        uint64_t seq = 42;
        if (!CHECK_OK(net_redex_file_tail(f, 0, &tail))) {
            break;
        }
        if (round % 2 == 0) { /* sometimes with an entry read first */
            CHECK_OK(net_redex_tail_next(tail, 0, &seq, &b, NULL, NULL));
            net_bytes_free(&b);
            seq = 42;
        }
        CHECK_OK(net_redex_tail_free(tail));
        CHECK_STATUS(net_redex_tail_next(tail, 0, &seq, &b, NULL, NULL), NET_ERR_SHUTTING_DOWN);
        CHECK_STATUS(net_redex_tail_next(tail, NET_WAIT_FOREVER, &seq, &b, NULL, NULL),
                     NET_ERR_SHUTTING_DOWN);
        CHECK(seq == 42 && b.ptr == NULL && b.len == 0);
        if (round == 0) {
            CHECK(strstr(net_last_error_message(), "net_redex_tail_t") != NULL);
        }
        CHECK_OK(net_redex_tail_free(tail));
        CHECK_OK(net_redex_tail_free(tail));
        CHECK_STATUS(net_redex_tail_next(tail, 0, &seq, &b, NULL, NULL), NET_ERR_SHUTTING_DOWN);
    }
    /* the file is untouched by its tails' frees */
    CHECK_U64(redex_append(f, "more"), 1);
    CHECK_OK(net_redex_file_free(f));
    CHECK_OK(net_redex_free(r));
}

/* ==== 2. concurrent frees ==================================================== */

struct free_race {
    net_redex_t *redex;
    net_redex_file_t *file;
    net_redex_tail_t *tail;
    pthread_barrier_t start;
    pthread_mutex_t lock;
    unsigned long ok, closed, ended, down;
    int next_index; /* hands each thread of a round its index */
};

/* This thread's index among the round's threads of its kind. */
static int race_index(struct free_race *r)
{
    int i;
    pthread_mutex_lock(&r->lock);
    i = r->next_index++;
    pthread_mutex_unlock(&r->lock);
    return i;
}

static void race_count(struct free_race *r, unsigned long ok, unsigned long closed,
                       unsigned long ended, unsigned long down)
{
    pthread_mutex_lock(&r->lock);
    r->ok += ok;
    r->closed += closed;
    r->ended += ended;
    r->down += down;
    pthread_mutex_unlock(&r->lock);
}

static int race_setup(struct free_race *r, int threads)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    pthread_barrier_init(&r->start, NULL, (unsigned)threads);
    return 1;
}

static void race_teardown(struct free_race *r)
{
    pthread_barrier_destroy(&r->start);
    pthread_mutex_destroy(&r->lock);
}

static void run_threads(struct free_race *r, void *(*freer)(void *), void *(*op)(void *),
                        int freers, int ops)
{
    pthread_t threads[16];
    int i, n = freers + ops, freers_made = 0, ops_made = 0;
    for (i = 0; i < n && i < 16; i++) {
        /* Interleave the two kinds so neither always starts first. */
        int as_freer = ops_made == ops || (freers_made < freers && i % 2 == 0);
        void *(*fn)(void *) = as_freer ? freer : op;
        freers_made += as_freer;
        ops_made += !as_freer;
        if (!CHECK(pthread_create(&threads[i], NULL, fn, r) == 0)) {
            abort(); /* the barrier would never open */
        }
    }
    for (i = 0; i < n; i++) {
        pthread_join(threads[i], NULL);
    }
}

/* ---- manager ---- */

static void *manager_freer(void *arg)
{
    struct free_race *r = (struct free_race *)arg;
    net_redex_file_t *f = NULL;
    pthread_barrier_wait(&r->start);
    CHECK_OK(net_redex_free(r->redex)); /* every one of the racing frees: NET_OK */
    /* Once any free has returned, no call can enter. */
    CHECK_STATUS(redex_open_status(r->redex, "race/m", NULL, &f), NET_ERR_SHUTTING_DOWN);
    return NULL;
}

static void *manager_opener(void *arg)
{
    struct free_race *r = (struct free_race *)arg;
    unsigned long ok = 0, down = 0;
    double deadline;
    int i;
    pthread_barrier_wait(&r->start);
    deadline = now_s() + RACE_DEADLINE_S;
    for (i = 0;; i++) {
        net_redex_file_t *f = NULL;
        char name[32];
        int st;
        snprintf(name, sizeof name, "race/m%d", i % 4);
        st = redex_open_status(r->redex, name, NULL, &f);
        if (st == NET_OK) {
            ok++;
            /* a file opened in the race is a real file */
            CHECK(f != NULL);
            CHECK_OK(net_redex_file_len(f, (uint64_t[]){0}));
            CHECK_OK(net_redex_file_free(f));
        } else {
            CHECK_STATUS(st, NET_ERR_SHUTTING_DOWN);
            down++;
            break; /* it stays freed */
        }
        if (now_s() > deadline) {
            CHECK(!"open_file still succeeds 10 s after the manager was freed");
            break;
        }
    }
    race_count(r, ok, 0, 0, down);
    return NULL;
}

static char manager_race_info[160];

static void test_manager_concurrent_free(void)
{
    unsigned long total_ok = 0;
    int round;
    for (round = 0; round < FREE_ROUNDS; round++) {
        struct free_race r;
        net_redex_file_t *f = NULL;
        race_setup(&r, FREE_THREADS + OP_THREADS);
        r.redex = redex_new(NULL);
        if (r.redex == NULL) {
            race_teardown(&r);
            return;
        }
        run_threads(&r, manager_freer, manager_opener, FREE_THREADS, OP_THREADS);
        CHECK_U64(r.down, OP_THREADS);
        CHECK_STATUS(redex_open_status(r.redex, "race/m", NULL, &f), NET_ERR_SHUTTING_DOWN);
        CHECK_OK(net_redex_free(r.redex));
        total_ok += r.ok;
        race_teardown(&r);
    }
    snprintf(manager_race_info, sizeof manager_race_info,
             "  %d rounds x (%d freeing + %d opening threads): %lu opens before the free",
             FREE_ROUNDS, FREE_THREADS, OP_THREADS, total_ok);
}

/* ---- file: frees and closes ---- */

static void *file_freer(void *arg)
{
    struct free_race *r = (struct free_race *)arg;
    uint64_t u = 0;
    int st;
    int index = race_index(r);
    pthread_barrier_wait(&r->start);
    /* some close first (close, then free), racing plain frees */
    if (index % 2 == 0) {
        st = net_redex_file_close(r->file);
        CHECK(st == NET_OK || st == NET_ERR_SHUTTING_DOWN);
    }
    CHECK_OK(net_redex_file_free(r->file));
    CHECK_STATUS(net_redex_file_len(r->file, &u), NET_ERR_SHUTTING_DOWN);
    return NULL;
}

static void *file_user(void *arg)
{
    struct free_race *r = (struct free_race *)arg;
    unsigned long ok = 0, closed = 0, ended = 0, down = 0;
    double deadline;
    int i;
    pthread_barrier_wait(&r->start);
    deadline = now_s() + RACE_DEADLINE_S;
    for (i = 0;; i++) {
        net_bytes_t b = EMPTY;
        net_redex_tail_t *t = NULL;
        net_slice_t two[2];
        uint64_t u = 0;
        bool flag = false;
        int st;
        switch (i % 6) {
        case 0:
            st = net_redex_file_append(r->file, (const uint8_t *)"race", 4, &u);
            break;
        case 1:
            two[0].ptr = (const uint8_t *)"a";
            two[0].len = 1;
            two[1].ptr = (const uint8_t *)"b";
            two[1].len = 1;
            st = net_redex_file_append_batch(r->file, two, 2, &u, &flag);
            break;
        case 2:
            st = net_redex_file_read(r->file, 0, &b, &flag);
            if (st == NET_OK && CHECK(flag)) {
                CHECK_BYTES(b, "seed", 4);
            }
            break;
        case 3:
            st = net_redex_file_read_range(r->file, 0, 3, &b);
            break;
        case 4:
            st = net_redex_file_len(r->file, &u);
            break;
        default:
            st = net_redex_file_tail(r->file, 0, &t);
            if (st == NET_OK) {
                /* the first entry, or END if the file closed meanwhile */
                int ts = net_redex_tail_next(t, 1000, &u, &b, NULL, NULL);
                CHECK(ts == NET_OK || ts == NET_END);
                if (ts == NET_END) {
                    ended++;
                }
                CHECK_OK(net_redex_tail_free(t));
            }
            break;
        }
        net_bytes_free(&b);
        if (st == NET_OK) {
            ok++;
        } else if (st == NET_ERR_REDEX_CLOSED) {
            closed++; /* a close landed first; the free is coming */
        } else {
            CHECK_STATUS(st, NET_ERR_SHUTTING_DOWN);
            down++;
            break;
        }
        if (i % 16 == 0 && now_s() > deadline) {
            CHECK(!"file calls still succeed 10 s after it was freed");
            break;
        }
    }
    race_count(r, ok, closed, ended, down);
    return NULL;
}

static char file_race_info[200];

static void test_file_concurrent_free_and_close(void)
{
    unsigned long total_ok = 0, total_closed = 0;
    int round;
    for (round = 0; round < FREE_ROUNDS; round++) {
        struct free_race r;
        uint64_t u = 0;
        race_setup(&r, FREE_THREADS + OP_THREADS);
        r.redex = redex_new(NULL);
        r.file = r.redex ? redex_open(r.redex, "race/file", NULL) : NULL;
        if (r.file == NULL) {
            CHECK_OK(net_redex_free(r.redex));
            race_teardown(&r);
            return;
        }
        redex_append(r.file, "seed");
        run_threads(&r, file_freer, file_user, FREE_THREADS, OP_THREADS);
        CHECK_U64(r.down, OP_THREADS);
        CHECK_STATUS(net_redex_file_append(r.file, (const uint8_t *)"x", 1, &u),
                     NET_ERR_SHUTTING_DOWN);
        CHECK_OK(net_redex_file_free(r.file));
        CHECK_OK(net_redex_free(r.redex));
        total_ok += r.ok;
        total_closed += r.closed;
        race_teardown(&r);
    }
    snprintf(file_race_info, sizeof file_race_info,
             "  %d rounds x (%d freeing/closing + %d calling threads): %lu calls ok, %lu saw "
             "CLOSED before the free",
             FREE_ROUNDS, FREE_THREADS, OP_THREADS, total_ok, total_closed);
}

/* ---- tail ---- */

static void *tail_freer(void *arg)
{
    struct free_race *r = (struct free_race *)arg;
    uint64_t u = 0;
    net_bytes_t b = EMPTY;
    pthread_barrier_wait(&r->start);
    CHECK_OK(net_redex_tail_free(r->tail));
    CHECK_STATUS(net_redex_tail_next(r->tail, 0, &u, &b, NULL, NULL), NET_ERR_SHUTTING_DOWN);
    return NULL;
}

static void *tail_reader(void *arg)
{
    struct free_race *r = (struct free_race *)arg;
    unsigned long ok = 0, ended = 0, down = 0;
    double deadline;
    pthread_barrier_wait(&r->start);
    deadline = now_s() + RACE_DEADLINE_S;
    for (;;) {
        net_bytes_t b = EMPTY;
        uint64_t seq = 0;
        /* Blocks forever once the backfill is read: only the free ends it. */
        int st = net_redex_tail_next(r->tail, NET_WAIT_FOREVER, &seq, &b, NULL, NULL);
        net_bytes_free(&b);
        if (st == NET_OK) {
            ok++;
        } else if (st == NET_END) {
            ended++; /* woken (or stopped) by the free */
            break;
        } else {
            CHECK_STATUS(st, NET_ERR_SHUTTING_DOWN);
            down++;
            break;
        }
        if (now_s() > deadline) {
            CHECK(!"tail_next still delivers 10 s after the tail was freed");
            break;
        }
    }
    race_count(r, ok, 0, ended, down);
    return NULL;
}

static char tail_race_info[200];

static void test_tail_concurrent_free(void)
{
    net_redex_t *redex = redex_new(NULL);
    net_redex_file_t *f = redex ? redex_open(redex, "race/tail", NULL) : NULL;
    unsigned long total_ok = 0, total_ended = 0, total_down = 0;
    int round, i;
    if (f == NULL) {
        CHECK_OK(net_redex_free(redex));
        return;
    }
    for (i = 0; i < 20; i++) {
        redex_append(f, "backfill");
    }
    for (round = 0; round < FREE_ROUNDS; round++) {
        struct free_race r;
        uint64_t u = 0;
        net_bytes_t b = EMPTY;
        race_setup(&r, FREE_THREADS + OP_THREADS);
        if (!CHECK_OK(net_redex_file_tail(f, 0, &r.tail))) {
            race_teardown(&r);
            break;
        }
        run_threads(&r, tail_freer, tail_reader, FREE_THREADS, OP_THREADS);
        CHECK_U64(r.ended + r.down, OP_THREADS);
        CHECK(r.ok <= 20);
        CHECK_STATUS(net_redex_tail_next(r.tail, 0, &u, &b, NULL, NULL), NET_ERR_SHUTTING_DOWN);
        CHECK_OK(net_redex_tail_free(r.tail));
        total_ok += r.ok;
        total_ended += r.ended;
        total_down += r.down;
        race_teardown(&r);
    }
    /* The file is unaffected. */
    CHECK_U64(redex_append(f, "after"), 20);
    CHECK_OK(net_redex_file_free(f));
    CHECK_OK(net_redex_free(redex));
    snprintf(tail_race_info, sizeof tail_race_info,
             "  %d rounds x (%d freeing + %d reading threads): %lu entries read, %lu nexts "
             "ended by the free, %lu refused after it",
             FREE_ROUNDS, FREE_THREADS, OP_THREADS, total_ok, total_ended, total_down);
}

/* ==== 3. free waits for an in-flight call ==================================== */

#define BIG_LEN ((size_t)48 * 1024 * 1024)
/* Rounds of a "free waits for a call in flight" race before giving up: each
 * round adapts how long the call runs before the free (struct delay). */
#define ATTEMPTS 40

/* ---- manager: an open_file recovering ~48 MiB ---- */

struct slow_open {
    net_redex_t *redex;
    struct gate gate;
    int status;
    net_redex_file_t *file;
    double t_call, t_return;
};

static void *slow_open_thread(void *arg)
{
    struct slow_open *s = (struct slow_open *)arg;
    double t0;
    int st;
    gate_signal(&s->gate);
    t0 = now_s();
    st = redex_open_status(s->redex, "slow/open", PERSISTENT, &s->file);
    s->t_return = now_s();
    s->t_call = t0;
    s->status = st;
    return NULL;
}

static char manager_waits_info[300];

static void test_manager_free_waits_for_open(void)
{
    char *dir = temp_dir_new("redex-race3m");
    uint8_t *chunk = (uint8_t *)malloc(1 << 20);
    net_redex_t *setup = redex_new(dir);
    net_redex_file_t *f = setup ? redex_open(setup, "slow/open", PERSISTENT) : NULL;
    int attempt, done = 0, i;
    double t_plain = 0;
    struct delay delay;

    delay_init(&delay);

    if (!CHECK(chunk != NULL) || f == NULL) {
        goto out;
    }
    /* A channel big enough that recovery (checksumming every payload) takes a while. */
    for (i = 0; i < 48; i++) {
        uint64_t seq = 0;
        memset(chunk, i, 1 << 20);
        if (!CHECK_OK(net_redex_file_append(f, chunk, 1 << 20, &seq))) {
            goto out;
        }
    }
    CHECK_OK(net_redex_file_free(f));
    f = NULL;
    /* How long an open takes with nobody in the way. */
    {
        double t0 = now_s();
        f = redex_open(setup, "slow/open", PERSISTENT);
        t_plain = now_s() - t0;
        CHECK_OK(net_redex_file_free(f));
        f = NULL;
    }

    for (attempt = 1; attempt <= ATTEMPTS && !done; attempt++) {
        struct slow_open s;
        pthread_t t;
        double t_free_call, t_free_return;
        net_redex_file_t *seen_after_free;

        memset(&s, 0, sizeof s);
        gate_init(&s.gate);
        s.status = 1000;
        s.redex = redex_new(dir);
        if (s.redex == NULL || !CHECK(pthread_create(&t, NULL, slow_open_thread, &s) == 0)) {
            CHECK_OK(net_redex_free(s.redex));
            gate_destroy(&s.gate);
            break;
        }
        gate_wait(&s.gate);
        delay_run(&delay);
        t_free_call = now_s();
        CHECK_OK(net_redex_free(s.redex));
        t_free_return = now_s();
        /* libnet writes the output before the call leaves the handle's guard,
         * and the free returns only once the guard has drained. */
        seen_after_free = s.file;
        pthread_join(t, NULL);

        if (s.status == NET_ERR_SHUTTING_DOWN) {
            CHECK(s.file == NULL); /* the free came first: let the open run longer */
            delay_too_early(&delay);
        } else if (s.status == NET_OK && s.t_return < t_free_call) {
            delay_too_late(&delay); /* the open was over before the free began */
        } else if (CHECK_STATUS(s.status, NET_OK)) {
            uint64_t len = 0;
            net_bytes_t b = EMPTY;
            bool found = false;
            done = 1;
            /* The exact proof that the free waited: the open's output, written
             * before the call left the handle, is visible when the free returns. */
            CHECK(seen_after_free != NULL);
            /* the manager is gone, the file it opened is not */
            CHECK_OK(net_redex_file_len(s.file, &len));
            CHECK_U64(len, 48);
            CHECK_OK(net_redex_file_read(s.file, 47, &b, &found));
            CHECK(found && b.len == (1u << 20) && b.ptr != NULL && b.ptr[0] == 47 &&
                  b.ptr[b.len - 1] == 47);
            net_bytes_free(&b);
            snprintf(manager_waits_info, sizeof manager_waits_info,
                     "  open of a 48 MiB channel took %.0f ms (%.0f ms unraced); free called "
                     "%.1f ms into it, returned %.0f ms later, %.3f ms after the open returned",
                     (s.t_return - s.t_call) * 1e3, t_plain * 1e3,
                     (t_free_call - s.t_call) * 1e3, (t_free_return - t_free_call) * 1e3,
                     (t_free_return - s.t_return) * 1e3);
        }
        CHECK_OK(net_redex_file_free(s.file));
        gate_destroy(&s.gate);
    }
    CHECK(done);
out:
    CHECK_OK(net_redex_file_free(f));
    CHECK_OK(net_redex_free(setup));
    free(chunk);
    rm_rf(dir);
}

/* ---- file: a 48 MiB append ---- */

struct slow_append {
    net_redex_file_t *file;
    const uint8_t *payload;
    struct gate gate;
    int status;
    uint64_t seq;
    double t_call, t_return;
};

static void *slow_append_thread(void *arg)
{
    struct slow_append *s = (struct slow_append *)arg;
    double t0;
    int st;
    gate_signal(&s->gate);
    t0 = now_s();
    st = net_redex_file_append(s->file, s->payload, BIG_LEN, &s->seq);
    s->t_return = now_s();
    s->t_call = t0;
    s->status = st;
    return NULL;
}

static char file_waits_info[300];

static void test_file_free_waits_for_append(void)
{
    char *dir = temp_dir_new("redex-race3f");
    uint8_t *big = (uint8_t *)malloc(BIG_LEN);
    net_redex_t *r = redex_new(dir);
    int attempt, done = 0;
    size_t i;
    struct delay delay;

    delay_init(&delay);
    if (!CHECK(big != NULL) || r == NULL) {
        goto out;
    }
    for (i = 0; i < BIG_LEN; i++) {
        big[i] = (uint8_t)(i * 131u + (i >> 16));
    }
    for (attempt = 1; attempt <= ATTEMPTS && !done; attempt++) {
        struct slow_append s;
        pthread_t t;
        char name[32];
        double t_free_call, t_free_return;
        uint64_t seq_seen_after_free;

        snprintf(name, sizeof name, "slow/append%d", attempt);
        memset(&s, 0, sizeof s);
        gate_init(&s.gate);
        s.status = 1000;
        s.seq = UINT64_MAX;
        s.payload = big;
        s.file = redex_open(r, name, PERSISTENT);
        if (s.file == NULL || !CHECK(pthread_create(&t, NULL, slow_append_thread, &s) == 0)) {
            CHECK_OK(net_redex_file_free(s.file));
            gate_destroy(&s.gate);
            break;
        }
        gate_wait(&s.gate);
        delay_run(&delay);
        t_free_call = now_s();
        CHECK_OK(net_redex_file_free(s.file)); /* closes the file once the append is out */
        t_free_return = now_s();
        seq_seen_after_free = s.seq;
        pthread_join(t, NULL);

        if (s.status == NET_ERR_SHUTTING_DOWN) {
            CHECK_U64(s.seq, UINT64_MAX); /* the free came first: let it run longer */
            delay_too_early(&delay);
        } else if (s.status == NET_OK && s.t_return < t_free_call) {
            delay_too_late(&delay); /* the append was over before the free began */
        } else if (CHECK_STATUS(s.status, NET_OK)) {
            net_redex_file_t *g;
            done = 1;
            /* Exact: the append's output is visible when the free returns. */
            CHECK_U64(seq_seen_after_free, 0);
            snprintf(file_waits_info, sizeof file_waits_info,
                     "  append of 48 MiB took %.0f ms; free called %.1f ms into it, returned "
                     "%.0f ms later, %.3f ms after the append returned",
                     (s.t_return - s.t_call) * 1e3, (t_free_call - s.t_call) * 1e3,
                     (t_free_return - t_free_call) * 1e3, (t_free_return - s.t_return) * 1e3);
            /* The append finished before the free closed the file: it is on disk. */
            g = redex_open(r, name, PERSISTENT);
            if (g != NULL) {
                uint64_t len = 0;
                net_bytes_t b = EMPTY;
                bool found = false;
                CHECK_OK(net_redex_file_len(g, &len));
                CHECK_U64(len, 1);
                CHECK_OK(net_redex_file_read(g, 0, &b, &found));
                CHECK(found);
                CHECK(b.len == BIG_LEN && b.ptr != NULL && memcmp(b.ptr, big, BIG_LEN) == 0);
                net_bytes_free(&b);
                CHECK_OK(net_redex_file_free(g));
            }
        }
        gate_destroy(&s.gate);
    }
    CHECK(done);
out:
    CHECK_OK(net_redex_free(r));
    free(big);
    rm_rf(dir);
}

/* ---- tail: a next blocked with NET_WAIT_FOREVER ---- */

struct blocked_next {
    net_redex_tail_t *tail;
    net_cancel_t *cancel;
    int status;
    uint64_t seq;
    net_bytes_t payload;
    struct call_error error;
};

static void *blocked_next_thread(void *arg)
{
    struct blocked_next *s = (struct blocked_next *)arg;
    net_error_t error = error_slot();
    s->status = net_redex_tail_next(s->tail, NET_WAIT_FOREVER, &s->seq, &s->payload, s->cancel,
                                    &error);
    error_take(&error, &s->error);
    return NULL;
}

struct tail_round {
    net_redex_file_t *file;
    net_redex_tail_t *tail; /* the cancel test's one tail */
    unsigned long refused;  /* rounds where the free or cancel came first */
};

/* One round: a next blocked forever on a caught-up tail, then the tail freed.
 * NET_END proves the free woke it in its wait (and waited for it to leave);
 * NET_ERR_SHUTTING_DOWN says the free came first, which proves nothing. */
static int tail_free_round(void *ctx, int round)
{
    struct tail_round *tr = (struct tail_round *)ctx;
    struct blocked_next s;
    pthread_t t;
    int st;
    (void)round;
    memset(&s, 0, sizeof s);
    s.status = 1000;
    s.seq = 4242;
    /* from next_seq: nothing to read, so the next blocks */
    if (!CHECK_OK(net_redex_file_tail(tr->file, 1, &s.tail)) ||
        !CHECK(pthread_create(&t, NULL, blocked_next_thread, &s) == 0)) {
        CHECK_OK(net_redex_tail_free(s.tail));
        return 0;
    }
    let_it_block();
    CHECK_OK(net_redex_tail_free(s.tail));
    pthread_join(t, NULL);
    st = s.status;
    CHECK_U64(s.seq, 4242); /* no output on NET_END or an error */
    CHECK(s.payload.ptr == NULL);
    CHECK_STATUS(net_redex_tail_next(s.tail, 0, &s.seq, &s.payload, NULL, NULL),
                 NET_ERR_SHUTTING_DOWN);
    if (st == NET_END) {
        return 1;
    }
    CHECK_STATUS(st, NET_ERR_SHUTTING_DOWN);
    CHECK_STATUS(s.error.status, NET_ERR_SHUTTING_DOWN);
    tr->refused++;
    return 0;
}

static char tail_waits_info[200];

static void test_tail_free_wakes_next_blocked_forever(void)
{
    net_redex_t *r = redex_new(NULL);
    struct tail_round tr;
    memset(&tr, 0, sizeof tr);
    tr.file = r ? redex_open(r, "slow/tail", NULL) : NULL;
    if (tr.file == NULL) {
        CHECK_OK(net_redex_free(r));
        return;
    }
    redex_append(tr.file, "before");
    UNTIL_WON(200, 5, tail_free_round, &tr);
    /* The file goes on. */
    CHECK_U64(redex_append(tr.file, "after"), 1);
    CHECK_OK(net_redex_file_free(tr.file));
    CHECK_OK(net_redex_free(r));
    snprintf(tail_waits_info, sizeof tail_waits_info,
             "  5 nexts blocked with NET_WAIT_FOREVER woken by the free (NET_END); %lu rounds "
             "where the free came first",
             tr.refused);
}

/* One round: a next blocked forever on the shared tail, with a token that is
 * then cancelled. It returns NET_ERR_CANCELLED, with the error in its
 * net_error_t; the round proves something when the message says it was
 * cancelled while it waited, not before it started. */
static int tail_cancel_round(void *ctx, int round)
{
    struct tail_round *tr = (struct tail_round *)ctx;
    struct blocked_next s;
    int won;
    (void)round;
    memset(&s, 0, sizeof s);
    s.tail = tr->tail;
    s.seq = 4242;
    won = CANCEL_ROUND(blocked_next_thread, s, &tr->refused);
    CHECK(s.seq == 4242 && s.payload.ptr == NULL);
    return won;
}

static char tail_cancel_info[200];

static void test_cancel_wakes_blocked_tail_next(void)
{
    net_redex_t *r = redex_new(NULL);
    struct tail_round tr;
    net_cancel_t *token = NULL;
    net_error_t error = error_slot();
    struct call_error e;
    uint64_t seq = 4242;
    net_bytes_t b = EMPTY;
    memset(&tr, 0, sizeof tr);
    tr.file = r ? redex_open(r, "slow/cancel", NULL) : NULL;
    if (tr.file == NULL || !CHECK_OK(net_redex_file_tail(tr.file, 0, &tr.tail))) {
        CHECK_OK(net_redex_file_free(tr.file));
        CHECK_OK(net_redex_free(r));
        return;
    }
    UNTIL_WON(200, 5, tail_cancel_round, &tr);

    /* A token cancelled before the call: refused at once, and says so. */
    token = cancel_new();
    CHECK_OK(net_cancel_cancel(token));
    CHECK_STATUS(net_redex_tail_next(tr.tail, NET_WAIT_FOREVER, &seq, &b, token, &error),
                 NET_ERR_CANCELLED);
    CHECK_STATUS(error_take(&error, &e), NET_ERR_CANCELLED);
    CHECK(cancelled_before_start(e.message));
    CHECK(strcmp(e.message, net_last_error_message()) == 0); /* the same text, this thread */
    CHECK_OK(net_cancel_free(token));

    /* The cancelled nexts consumed nothing: the tail reads on, from seq 0. */
    redex_append(tr.file, "after");
    if (CHECK_OK(net_redex_tail_next(tr.tail, 5000, &seq, &b, NULL, NULL))) {
        CHECK_U64(seq, 0);
        CHECK_BYTES(b, "after", 5);
    }
    net_bytes_free(&b);
    /* A successful call leaves its net_error_t untouched (zeroed). */
    redex_append(tr.file, "more");
    CHECK_OK(net_redex_tail_next(tr.tail, 5000, &seq, &b, NULL, &error));
    CHECK(error.status == NET_OK && error.message.ptr == NULL && error.message.len == 0);
    net_bytes_free(&b);
    CHECK_OK(net_redex_tail_free(tr.tail));
    CHECK_OK(net_redex_file_free(tr.file));
    CHECK_OK(net_redex_free(r));
    snprintf(tail_cancel_info, sizeof tail_cancel_info,
             "  5 nexts blocked with NET_WAIT_FOREVER cancelled while they waited; %lu rounds "
             "where the cancel came first",
             tr.refused);
}

int main(void)
{
    RUN_TEST(test_manager_op_after_free);
    RUN_TEST(test_file_op_after_free);
    RUN_TEST(test_tail_op_after_free);
    RUN_TEST(test_manager_concurrent_free);
    printf("%s\n", manager_race_info);
    RUN_TEST(test_file_concurrent_free_and_close);
    printf("%s\n", file_race_info);
    RUN_TEST(test_tail_concurrent_free);
    printf("%s\n", tail_race_info);
    RUN_TEST(test_manager_free_waits_for_open);
    printf("%s\n", manager_waits_info);
    RUN_TEST(test_file_free_waits_for_append);
    printf("%s\n", file_waits_info);
    RUN_TEST(test_tail_free_wakes_next_blocked_forever);
    printf("%s\n", tail_waits_info);
    RUN_TEST(test_cancel_wakes_blocked_tail_next);
    printf("%s\n", tail_cancel_info);
    return check_finish("test_redex_races");
}
