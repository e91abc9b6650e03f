/*
 * CortEX handle lifetimes under threads, for both handle types (net_model_t,
 * net_model_watch_t) and both kinds (NET_MODEL_TASKS, NET_MODEL_MEMORIES):
 *
 *  1. a call after free returns NET_ERR_SHUTTING_DOWN (the raw pointer stays
 *     safe to pass, even once its slot in the handle table is reused);
 *  2. concurrent frees (and, for models, closes) are idempotent, and calls
 *     racing them get a result, NET_ERR_CORTEX_HALTED / NET_ERR_REDEX_CLOSED
 *     (the model closed under them) or NET_ERR_SHUTTING_DOWN, never a crash;
 *  3. free waits for a call in flight: a 32 MiB write racing its model's free
 *     completes (its seq visible when the free returns) or is refused;
 *  4. every blocking call wakes: a watch next blocked with NET_WAIT_FOREVER
 *     ends (NET_END) when its watch is freed and when its model is freed; a
 *     wait_for_seq blocked forever returns NET_ERR_SHUTTING_DOWN ("freed
 *     while the call waited") when its model is freed; and a cancel of the
 *     call's net_cancel_t wakes both (NET_ERR_CANCELLED "while it waited").
 *     No sleeps: each round starts the call, lets it block (yields), frees or
 *     cancels, and is retried until the outcome proves the call was waiting.
 *
 * Run under AddressSanitizer + LeakSanitizer.
 */
#define _XOPEN_SOURCE 700

#include "block_util.h"
#include "cortex_util.h"

enum kind { TASKS, MEMORIES, TASKS_WATCH, MEMORIES_WATCH, KINDS };
static const char *const KIND_NAMES[KINDS] = {"tasks", "memories", "tasks_watch", "memories_watch"};

static uint32_t model_kind_of(enum kind kind)
{
    return kind == TASKS || kind == TASKS_WATCH ? NET_MODEL_TASKS : NET_MODEL_MEMORIES;
}

/* One subject: a model, and for watch kinds a watch on it. */
struct subject {
    enum kind kind;
    net_model_t *model;
    net_model_watch_t *watch;
};

static int subject_make(const net_redex_t *r, enum kind kind, struct subject *s)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    if (!CHECK_OK(net_model_open(r, model_kind_of(kind), 1, NULL, 0, &s->model))) {
        return 0;
    }
    return kind == TASKS || kind == MEMORIES || CHECK_OK(net_model_watch(s->model, NULL, 0, &s->watch));
}

/* One call on the subject's handle; i varies the operation. */
static int subject_op(const struct subject *s, unsigned i)
{
    uint64_t out = 0;
    net_bytes_t rows = {NULL, 0};
    int st;
    switch (s->kind) {
    case TASKS:
        return i % 2 ? net_tasks_create(s->model, i, (const uint8_t *)"r", 1, &out)
                     : net_model_count_where(s->model, NULL, 0, &out);
    case MEMORIES:
        return i % 2 ? net_memories_pin(s->model, i, &out)
                     : net_model_count_where(s->model, NULL, 0, &out);
    default:
        st = net_model_watch_next(s->watch, 0, &rows, &out, NULL, NULL);
        break;
    }
    net_bytes_free(&rows);
    return st == NET_TIMEOUT || st == NET_LAGGED || st == NET_END ? NET_OK : st;
}

/* Frees the subject's handle (the watch for watch kinds). */
static int subject_free(const struct subject *s)
{
    return s->watch ? net_model_watch_free(s->watch) : net_model_free(s->model);
}

/* Frees everything the subject owns (idempotent after subject_free). */
static void subject_destroy(const struct subject *s)
{
    CHECK_OK(net_model_watch_free(s->watch));
    CHECK_OK(net_model_free(s->model));
}

/* Consumes a watch's first result (the current rows), so its next call blocks. */
static void drain_first(net_model_watch_t *w)
{
    net_bytes_t rows = {NULL, 0};
    uint64_t missed = 0;
    CHECK_OK(net_model_watch_next(w, 5000, &rows, &missed, NULL, NULL));
    net_bytes_free(&rows);
}

/* ---- 1. op after free ---------------------------------------------------- */

static void test_op_after_free(void)
{
    net_redex_t *r = redex_new(NULL);
    int k;
    for (k = 0; r != NULL && k < KINDS; k++) {
        struct subject s;
        unsigned i;
        uint32_t kind = 0;
        if (!subject_make(r, (enum kind)k, &s)) {
            subject_destroy(&s);
            continue;
        }
        CHECK_OK(subject_free(&s));
        for (i = 0; i < 4; i++) {
            CHECK_STATUS(subject_op(&s, i), NET_ERR_SHUTTING_DOWN);
        }
        CHECK(strstr(net_last_error_message(), "freed") != NULL);
        if (s.watch == NULL) {
            uint64_t seq = 0;
            CHECK_STATUS(net_model_kind(s.model, &kind), NET_ERR_SHUTTING_DOWN);
            CHECK_STATUS(net_model_wait_for_seq(s.model, 0, NET_WAIT_FOREVER, NULL, NULL),
                         NET_ERR_SHUTTING_DOWN);
            CHECK_STATUS(net_model_delete(s.model, 1, &seq), NET_ERR_SHUTTING_DOWN);
            /* a kind's own writes see the free before the kind */
            CHECK_STATUS(net_memories_unpin(s.model, 1, &seq), NET_ERR_SHUTTING_DOWN);
            CHECK_STATUS(net_tasks_complete(s.model, 1, &seq), NET_ERR_SHUTTING_DOWN);
        } else {
            net_bytes_t rows = {NULL, 0};
            uint64_t missed = 0;
            CHECK_STATUS(net_model_watch_next(s.watch, NET_WAIT_FOREVER, &rows, &missed, NULL,
                                              NULL),
                         NET_ERR_SHUTTING_DOWN);
        }
        CHECK_OK(subject_free(&s)); /* idempotent */
        subject_destroy(&s);
    }
    CHECK_OK(net_model_free(NULL));
    CHECK_OK(net_model_watch_free(NULL));
    CHECK_OK(net_redex_free(r));
}

/* ---- 2. concurrent frees with racing calls -------------------------------- */

struct free_race {
    struct subject s;
    pthread_barrier_t start;
    pthread_mutex_t lock;
    unsigned long ok, shutting, closed, other;
    int other_status;
};

static void *race_freer(void *arg)
{
    struct free_race *f = (struct free_race *)arg;
    int st;
    pthread_barrier_wait(&f->start);
    let_it_block(); /* let the callers get going */
    if (f->s.watch == NULL) {
        st = net_model_close(f->s.model); /* close racing the frees, too */
        CHECK(st == NET_OK || st == NET_ERR_SHUTTING_DOWN);
    }
    CHECK_OK(subject_free(&f->s)); /* every racing free: NET_OK */
    return NULL;
}

static void *race_caller(void *arg)
{
    struct free_race *f = (struct free_race *)arg;
    unsigned long ok = 0, shutting = 0, closed = 0, other = 0;
    int other_status = 0;
    unsigned i;
    double deadline;
    pthread_barrier_wait(&f->start);
    deadline = now_s() + 30.0;
    /* Until the free lands (it always does: the freers start with us). */
    for (i = 0;; i++) {
        int st = subject_op(&f->s, i);
        if (i % 64 == 0 && now_s() > deadline) {
            CHECK(!"calls still succeed 30 s after the frees began");
            break;
        }
        if (st == NET_OK) {
            ok++;
        } else if (st == NET_ERR_SHUTTING_DOWN) {
            shutting++;
            break;
        } else if (st == NET_ERR_CORTEX_HALTED || st == NET_ERR_REDEX_CLOSED) {
            closed++;
        } else {
            other++;
            other_status = st;
            break;
        }
    }
    pthread_mutex_lock(&f->lock);
    f->ok += ok;
    f->shutting += shutting;
    f->closed += closed;
    f->other += other;
    if (other_status) {
        f->other_status = other_status;
    }
    pthread_mutex_unlock(&f->lock);
    return NULL;
}

static char race_info[300];

static void test_concurrent_frees_with_racing_calls(void)
{
    net_redex_t *r = redex_new(NULL);
    unsigned long overlapped[KINDS] = {0};
    int round, k;
    const int rounds = 30;
    for (round = 0; r != NULL && round < rounds; round++) {
        for (k = 0; k < KINDS; k++) {
            struct free_race f;
            pthread_t threads[5];
            int i;
            memset(&f, 0, sizeof f);
            if (!subject_make(r, (enum kind)k, &f.s)) {
                subject_destroy(&f.s);
                continue;
            }
            pthread_mutex_init(&f.lock, NULL);
            pthread_barrier_init(&f.start, NULL, 5);
            for (i = 0; i < 5; i++) {
                if (pthread_create(&threads[i], NULL, i < 3 ? race_freer : race_caller, &f) != 0) {
                    abort(); /* the barrier would never open */
                }
            }
            for (i = 0; i < 5; i++) {
                pthread_join(threads[i], NULL);
            }
            CHECK(f.other == 0);
            if (f.other) {
                fprintf(stderr, "       %s: unexpected status %s\n", KIND_NAMES[k],
                        status_name(f.other_status));
            }
            CHECK(f.shutting == 2); /* both callers end refused by the guard */
            if (f.ok > 0) {
                overlapped[k]++;
            }
            CHECK_STATUS(subject_op(&f.s, 0), NET_ERR_SHUTTING_DOWN);
            pthread_barrier_destroy(&f.start);
            pthread_mutex_destroy(&f.lock);
            subject_destroy(&f.s);
        }
    }
    for (k = 0; k < KINDS; k++) {
        CHECK(overlapped[k] > 0); /* the race really ran calls against the frees */
    }
    snprintf(race_info, sizeof race_info,
             "  %d rounds x 3 freers + 2 callers; rounds where calls completed before the free: "
             "tasks %lu, memories %lu, tasks_watch %lu, memories_watch %lu",
             rounds, overlapped[0], overlapped[1], overlapped[2], overlapped[3]);
    CHECK_OK(net_redex_free(r));
}

/* ---- 3. free waits for a write in flight ----------------------------------- */

struct big_write {
    struct subject s;
    struct gate gate;
    uint8_t *text;
    size_t len;
    int status;
    uint64_t seq;
    double t_return;
};

static void *big_writer(void *arg)
{
    struct big_write *w = (struct big_write *)arg;
    gate_signal(&w->gate);
    w->status = w->s.kind == TASKS
                    ? net_tasks_create(w->s.model, 1, w->text, w->len, &w->seq)
                    : net_memories_store(w->s.model, 1, w->text, w->len, NULL, 0, NULL, 0, &w->seq);
    w->t_return = now_s();
    return NULL;
}

struct big_rounds {
    net_redex_t *redex;
    uint8_t *text;
    size_t len;
    struct delay delay;
    unsigned long refused, before;
};

/* A round counts when the write got in and was still running when the free
 * began: the free had to wait for it, which its seq being visible when the
 * free returns proves exactly. */
static int big_write_round(void *ctx, int round)
{
    struct big_rounds *b = (struct big_rounds *)ctx;
    struct big_write w;
    pthread_t t;
    double t_free;
    uint64_t seen_after_free;
    int won = 0;
    memset(&w, 0, sizeof w);
    if (!subject_make(b->redex, round % 2 ? MEMORIES : TASKS, &w.s)) {
        subject_destroy(&w.s);
        return 0;
    }
    w.text = b->text;
    w.len = b->len;
    w.seq = UINT64_MAX;
    gate_init(&w.gate);
    if (pthread_create(&t, NULL, big_writer, &w) != 0) {
        abort();
    }
    gate_wait(&w.gate);
    delay_run(&b->delay);
    t_free = now_s();
    CHECK_OK(net_model_free(w.s.model)); /* stops the fold, closes the file, waits for the write */
    seen_after_free = w.seq;
    pthread_join(t, NULL);
    if (w.status == NET_OK && w.t_return > t_free) {
        CHECK_U64(seen_after_free, w.seq);
        CHECK(w.seq != UINT64_MAX);
        won = 1;
    } else if (w.status == NET_OK) {
        delay_too_late(&b->delay);
        b->before++;
    } else {
        CHECK(w.status == NET_ERR_SHUTTING_DOWN || w.status == NET_ERR_CORTEX_HALTED ||
              w.status == NET_ERR_REDEX_CLOSED);
        delay_too_early(&b->delay);
        b->refused++;
    }
    gate_destroy(&w.gate);
    subject_destroy(&w.s);
    return won;
}

static char big_info[200];

static void test_model_free_waits_for_big_write(void)
{
    struct big_rounds b;
    memset(&b, 0, sizeof b);
    b.redex = redex_new(NULL);
    b.len = (size_t)32 << 20;
    b.text = (uint8_t *)malloc(b.len);
    if (b.text == NULL) {
        abort();
    }
    memset(b.text, 'x', b.len);
    delay_init(&b.delay);
    if (b.redex != NULL) {
        UNTIL_WON(40, 2, big_write_round, &b);
    }
    snprintf(big_info, sizeof big_info,
             "  32 MiB writes racing the model free: 2 waited for; %lu refused cleanly, %lu over "
             "before the free",
             b.refused, b.before);
    free(b.text);
    CHECK_OK(net_redex_free(b.redex));
}

/* ---- 4. blocked calls wake -------------------------------------------------- */

struct blocked {
    net_model_t *model;
    net_model_watch_t *watch;
    net_cancel_t *cancel;
    int status;
    uint64_t missed;
    struct call_error error;
};

static void *blocked_watch_next(void *arg)
{
    struct blocked *b = (struct blocked *)arg;
    net_bytes_t rows = {NULL, 0};
    net_error_t error = error_slot();
    b->status = net_model_watch_next(b->watch, NET_WAIT_FOREVER, &rows, &b->missed, b->cancel,
                                     &error);
    error_take(&error, &b->error);
    CHECK(rows.ptr == NULL); /* nothing is written unless NET_OK */
    net_bytes_free(&rows);
    return NULL;
}

static void *blocked_wait_for_seq(void *arg)
{
    struct blocked *b = (struct blocked *)arg;
    net_error_t error = error_slot();
    /* a seq no write reaches: only a free or a cancel ends this wait */
    b->status = net_model_wait_for_seq(b->model, 1000000, NET_WAIT_FOREVER, b->cancel, &error);
    error_take(&error, &b->error);
    return NULL;
}

struct wake_rounds {
    net_redex_t *redex;
    net_model_t *models[2];  /* one per kind (cancel tests) */
    net_model_watch_t *watches[2];
    unsigned long refused;
};

/* A manager with a model of each kind and, `with_watches`, a watch on each
 * whose first result was consumed (its next call blocks); whether all of
 * it opened (wake_rounds_free() frees what did). */
static int wake_rounds_open(struct wake_rounds *wr, int with_watches)
{
    int k;
    memset(wr, 0, sizeof *wr);
    wr->redex = redex_new(NULL);
    for (k = 0; wr->redex != NULL && k < 2; k++) {
        CHECK_OK(net_model_open(wr->redex, k ? NET_MODEL_MEMORIES : NET_MODEL_TASKS, 1, NULL, 0,
                                &wr->models[k]));
        if (with_watches && wr->models[k] != NULL &&
            CHECK_OK(net_model_watch(wr->models[k], NULL, 0, &wr->watches[k]))) {
            drain_first(wr->watches[k]);
        }
    }
    return wr->models[0] != NULL && wr->models[1] != NULL &&
           (!with_watches || (wr->watches[0] != NULL && wr->watches[1] != NULL));
}

static void wake_rounds_free(struct wake_rounds *wr)
{
    int k;
    for (k = 0; k < 2; k++) {
        CHECK_OK(net_model_watch_free(wr->watches[k]));
        CHECK_OK(net_model_free(wr->models[k]));
    }
    CHECK_OK(net_redex_free(wr->redex));
}

/* Runs run(&b[k]) for both kinds at once, each on its own thread, lets the
 * calls block, frees the handle each is blocked on (its watch, or else its
 * model) and waits for both calls to return. */
static void free_both_blocked(struct blocked b[2], void *(*run)(void *))
{
    pthread_t t[2];
    int k;
    for (k = 0; k < 2; k++) {
        if (pthread_create(&t[k], NULL, run, &b[k]) != 0) {
            abort();
        }
    }
    let_it_block();
    for (k = 0; k < 2; k++) {
        CHECK_OK(b[k].watch != NULL ? net_model_watch_free(b[k].watch) : net_model_free(b[k].model));
    }
    for (k = 0; k < 2; k++) {
        pthread_join(t[k], NULL);
    }
}

/* Watch free: NET_END proves it woke the next in its wait; SHUTTING_DOWN
 * means the free came first. Both kinds, at once. */
static int watch_free_round(void *ctx, int round)
{
    struct wake_rounds *wr = (struct wake_rounds *)ctx;
    struct blocked b[2];
    int k, woken = 0;
    (void)round;
    for (k = 0; k < 2; k++) {
        net_bytes_t current = {NULL, 0};
        memset(&b[k], 0, sizeof b[k]);
        b[k].missed = 4242;
        /* only later changes: the next blocks */
        CHECK_OK(net_model_snapshot_and_watch(wr->models[k], NULL, 0, &current, &b[k].watch));
        net_bytes_free(&current);
    }
    free_both_blocked(b, blocked_watch_next);
    for (k = 0; k < 2; k++) {
        CHECK_U64(b[k].missed, 4242);
        if (b[k].status == NET_END) {
            woken++;
        } else {
            CHECK_STATUS(b[k].status, NET_ERR_SHUTTING_DOWN);
            wr->refused++;
        }
    }
    return woken == 2;
}

static void test_watch_free_wakes_next_blocked_forever(void)
{
    struct wake_rounds wr;
    if (wake_rounds_open(&wr, 0)) {
        UNTIL_WON(200, 5, watch_free_round, &wr);
    }
    wake_rounds_free(&wr);
}

struct under_way {
    struct blocked b;
    pthread_mutex_t lock;
    int inside, returned;
};

static void *watch_next_under_way(void *arg)
{
    struct under_way *u = (struct under_way *)arg;
    pthread_mutex_lock(&u->lock);
    u->inside = 1;
    pthread_mutex_unlock(&u->lock);
    blocked_watch_next(&u->b);
    pthread_mutex_lock(&u->lock);
    u->returned = 1;
    pthread_mutex_unlock(&u->lock);
    return NULL;
}

/* Model free: its watches end (NET_END) whether their next was waiting or
 * started after, so the round counts only when each call was under way (and
 * not over) when its model was freed. The watches outlive their models. */
static int model_free_ends_watches_round(void *ctx, int round)
{
    struct wake_rounds *wr = (struct wake_rounds *)ctx;
    struct under_way u[2];
    pthread_t t[2];
    int k, under = 1;
    net_bytes_t rows = {NULL, 0};
    uint64_t missed = 0;
    (void)round;
    for (k = 0; k < 2; k++) {
        memset(&u[k], 0, sizeof u[k]);
        pthread_mutex_init(&u[k].lock, NULL);
        CHECK_OK(net_model_open(wr->redex, k ? NET_MODEL_MEMORIES : NET_MODEL_TASKS, 1, NULL, 0,
                                &u[k].b.model));
        CHECK_OK(net_model_watch(u[k].b.model, NULL, 0, &u[k].b.watch));
        drain_first(u[k].b.watch);
    }
    for (k = 0; k < 2; k++) {
        if (pthread_create(&t[k], NULL, watch_next_under_way, &u[k]) != 0) {
            abort();
        }
    }
    let_it_block();
    for (k = 0; k < 2; k++) {
        pthread_mutex_lock(&u[k].lock);
        under = under && u[k].inside && !u[k].returned;
        pthread_mutex_unlock(&u[k].lock);
    }
    for (k = 0; k < 2; k++) {
        CHECK_OK(net_model_free(u[k].b.model));
    }
    for (k = 0; k < 2; k++) {
        pthread_join(t[k], NULL);
        CHECK_STATUS(u[k].b.status, NET_END);
        /* the watch stays ended, and frees cleanly after its model */
        CHECK_STATUS(net_model_watch_next(u[k].b.watch, NET_WAIT_FOREVER, &rows, &missed, NULL,
                                          NULL),
                     NET_END);
        CHECK_OK(net_model_watch_free(u[k].b.watch));
        pthread_mutex_destroy(&u[k].lock);
    }
    return under;
}

static void test_model_free_ends_watches_blocked_forever(void)
{
    struct wake_rounds wr;
    net_model_t *m = NULL;
    net_model_watch_t *w = NULL;
    net_bytes_t rows = {NULL, 0};
    uint64_t missed = 0;
    memset(&wr, 0, sizeof wr);
    wr.redex = redex_new(NULL);
    if (wr.redex == NULL) {
        return;
    }
    UNTIL_WON(200, 5, model_free_ends_watches_round, &wr);
    /* A watch that has not delivered its first result yet ends too. */
    if (CHECK_OK(net_model_open(wr.redex, NET_MODEL_MEMORIES, 1, NULL, 0, &m)) &&
        CHECK_OK(net_model_watch(m, NULL, 0, &w))) {
        CHECK_OK(net_model_free(m));
        CHECK_STATUS(net_model_watch_next(w, NET_WAIT_FOREVER, &rows, &missed, NULL, NULL),
                     NET_END);
    }
    CHECK_OK(net_model_watch_free(w));
    CHECK_OK(net_model_free(m));
    CHECK_OK(net_redex_free(wr.redex));
}

/* Cancel of a blocked watch next, on the kind `round % 2`; the watch stays usable. */
static int watch_cancel_round(void *ctx, int round)
{
    struct wake_rounds *wr = (struct wake_rounds *)ctx;
    struct blocked b;
    int won;
    memset(&b, 0, sizeof b);
    b.watch = wr->watches[round % 2];
    b.missed = 4242;
    won = CANCEL_ROUND(blocked_watch_next, b, &wr->refused);
    CHECK_U64(b.missed, 4242);
    return won;
}

static void test_cancel_wakes_blocked_watch_next(void)
{
    struct wake_rounds wr;
    int k;
    if (!wake_rounds_open(&wr, 1)) {
        goto out;
    }
    UNTIL_WON(200, 6, watch_cancel_round, &wr);
    /* The watches work on after cancelled calls: a write reaches each. */
    for (k = 0; k < 2; k++) {
        net_bytes_t rows = {NULL, 0};
        uint64_t missed = 0;
        if (k == 0) {
            task_create(wr.models[0], 9, "after the cancels");
        } else {
            memory_store(wr.models[1], 9, "after the cancels", NULL, "test");
        }
        CHECK_OK(net_model_watch_next(wr.watches[k], 5000, &rows, &missed, NULL, NULL));
        CHECK(json_has(&rows, "\"id\":9"));
        net_bytes_free(&rows);
    }
out:
    wake_rounds_free(&wr);
}

/* Model free: a wait_for_seq blocked forever returns NET_ERR_SHUTTING_DOWN,
 * its message saying the model was freed while the call waited (refused at
 * the door, it says the handle was freed). Both kinds, at once. */
static int wait_free_round(void *ctx, int round)
{
    struct wake_rounds *wr = (struct wake_rounds *)ctx;
    struct blocked b[2];
    int k, woken = 0;
    (void)round;
    for (k = 0; k < 2; k++) {
        memset(&b[k], 0, sizeof b[k]);
        CHECK_OK(net_model_open(wr->redex, k ? NET_MODEL_MEMORIES : NET_MODEL_TASKS, 2, NULL, 0,
                                &b[k].model));
    }
    free_both_blocked(b, blocked_wait_for_seq);
    for (k = 0; k < 2; k++) {
        CHECK_STATUS(b[k].status, NET_ERR_SHUTTING_DOWN);
        CHECK_STATUS(b[k].error.status, NET_ERR_SHUTTING_DOWN);
        if (interrupted_while_waiting(b[k].error.message)) {
            woken++;
        } else {
            wr->refused++;
        }
    }
    return woken == 2;
}

static void test_model_free_wakes_wait_for_seq_blocked_forever(void)
{
    struct wake_rounds wr;
    memset(&wr, 0, sizeof wr);
    wr.redex = redex_new(NULL);
    if (wr.redex != NULL) {
        UNTIL_WON(200, 5, wait_free_round, &wr);
    }
    CHECK_OK(net_redex_free(wr.redex));
}

/* Cancel of a wait_for_seq blocked forever, on the kind `round % 2`. */
static int wait_cancel_round(void *ctx, int round)
{
    struct wake_rounds *wr = (struct wake_rounds *)ctx;
    struct blocked b;
    memset(&b, 0, sizeof b);
    b.model = wr->models[round % 2];
    return CANCEL_ROUND(blocked_wait_for_seq, b, &wr->refused);
}

static void test_cancel_wakes_blocked_wait_for_seq(void)
{
    struct wake_rounds wr;
    if (wake_rounds_open(&wr, 0)) {
        UNTIL_WON(200, 6, wait_cancel_round, &wr);
        /* Waiting works on after cancelled waits. */
        CHECK_OK(net_model_wait_for_seq(wr.models[0], task_create(wr.models[0], 1, "t"), 5000,
                                        NULL, NULL));
        CHECK_OK(net_model_wait_for_seq(wr.models[1], memory_store(wr.models[1], 1, "m", NULL, ""),
                                        5000, NULL, NULL));
    }
    wake_rounds_free(&wr);
}

int main(void)
{
    RUN_TEST(test_op_after_free);
    RUN_TEST(test_concurrent_frees_with_racing_calls);
    printf("%s\n", race_info);
    RUN_TEST(test_model_free_waits_for_big_write);
    printf("%s\n", big_info);
    RUN_TEST(test_watch_free_wakes_next_blocked_forever);
    RUN_TEST(test_model_free_ends_watches_blocked_forever);
    RUN_TEST(test_cancel_wakes_blocked_watch_next);
    RUN_TEST(test_model_free_wakes_wait_for_seq_blocked_forever);
    RUN_TEST(test_cancel_wakes_blocked_wait_for_seq);
    return check_finish("test_cortex_races");
}
