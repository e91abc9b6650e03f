/*
 * CortEX handle lifetimes under threads: the three races for each of
 * net_tasks_adapter_t, net_memories_adapter_t, net_tasks_watch_t and
 * net_memories_watch_t.
 *
 *  1. a call after free returns NET_ERR_SHUTTING_DOWN (the header is never
 *     deallocated, so the raw pointer stays safe to pass);
 *  2. concurrent frees (and, for models, closes) are idempotent, and calls
 *     racing them get a result, NET_ERR_CORTEX_HALTED / NET_ERR_REDEX_CLOSED
 *     (the model closed under them) or NET_ERR_SHUTTING_DOWN — never a crash;
 *  3. free waits for a call in flight: a watch next blocked with
 *     NET_WAIT_FOREVER is woken (NET_END) and the free returns only after it
 *     left; a 32 MiB write in flight when its model is freed completes or is
 *     refused cleanly.
 *
 * Run under AddressSanitizer + LeakSanitizer.
 */
#define _XOPEN_SOURCE 700

#include "cortex_util.h"

enum kind { TASKS, MEMORIES, TASKS_WATCH, MEMORIES_WATCH, KINDS };
static const char *const KIND_NAMES[KINDS] = {"tasks", "memories", "tasks_watch", "memories_watch"};

/* One subject: a model, and for watch kinds a watch on it. */
struct subject {
    enum kind kind;
    net_tasks_adapter_t *tasks;
    net_memories_adapter_t *memories;
    net_tasks_watch_t *tw;
    net_memories_watch_t *mw;
};

static int subject_make(const net_redex_t *r, enum kind kind, struct subject *s)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    if (kind == TASKS || kind == TASKS_WATCH) {
        if (!CHECK_OK(net_tasks_open(r, 1, NULL, 0, &s->tasks))) {
            return 0;
        }
        return kind == TASKS || CHECK_OK(net_tasks_watch(s->tasks, NULL, 0, &s->tw));
    }
    if (!CHECK_OK(net_memories_open(r, 1, NULL, 0, &s->memories))) {
        return 0;
    }
    return kind == MEMORIES || CHECK_OK(net_memories_watch(s->memories, NULL, 0, &s->mw));
}

/* One call on the subject's handle; i varies the operation. */
static int subject_op(const struct subject *s, unsigned i)
{
    uint64_t out = 0;
    net_bytes_t rows = {NULL, 0};
    int st;
    switch (s->kind) {
    case TASKS:
        return i % 2 ? net_tasks_create(s->tasks, i, (const uint8_t *)"r", 1, &out)
                     : net_tasks_count_where(s->tasks, NULL, 0, &out);
    case MEMORIES:
        return i % 2 ? net_memories_pin(s->memories, i, &out)
                     : net_memories_count_where(s->memories, NULL, 0, &out);
    case TASKS_WATCH:
        st = net_tasks_watch_next(s->tw, 0, &rows, &out);
        break;
    default:
        st = net_memories_watch_next(s->mw, 0, &rows, &out);
        break;
    }
    net_bytes_free(&rows);
    return st == NET_TIMEOUT || st == NET_LAGGED || st == NET_END ? NET_OK : st;
}

/* Frees the subject's handle (the watch for watch kinds). */
static void subject_free(const struct subject *s)
{
    switch (s->kind) {
    case TASKS:
        net_tasks_free(s->tasks);
        break;
    case MEMORIES:
        net_memories_free(s->memories);
        break;
    case TASKS_WATCH:
        net_tasks_watch_free(s->tw);
        break;
    default:
        net_memories_watch_free(s->mw);
        break;
    }
}

/* Frees everything the subject owns (idempotent after subject_free). */
static void subject_destroy(const struct subject *s)
{
    if (s->tw) {
        net_tasks_watch_free(s->tw);
    }
    if (s->mw) {
        net_memories_watch_free(s->mw);
    }
    if (s->tasks) {
        net_tasks_free(s->tasks);
    }
    if (s->memories) {
        net_memories_free(s->memories);
    }
}

/* ---- 1. op after free ---------------------------------------------------- */

static void test_op_after_free(void)
{
    net_redex_t *r = redex_new(NULL);
    int k;
    for (k = 0; r != NULL && k < KINDS; k++) {
        struct subject s;
        unsigned i;
        if (!subject_make(r, (enum kind)k, &s)) {
            subject_destroy(&s);
            continue;
        }
        subject_free(&s);
        for (i = 0; i < 4; i++) {
            CHECK_STATUS(subject_op(&s, i), NET_ERR_SHUTTING_DOWN);
        }
        CHECK(strstr(net_last_error_message(), "freed") != NULL);
        subject_free(&s); /* idempotent */
        subject_destroy(&s);
    }
    net_redex_free(r);
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
    pthread_barrier_wait(&f->start);
    sleep_ms(1);
    if (f->s.kind == TASKS) {
        net_tasks_close(f->s.tasks); /* close racing the frees, too */
    } else if (f->s.kind == MEMORIES) {
        net_memories_close(f->s.memories);
    }
    subject_free(&f->s);
    return NULL;
}

static void *race_caller(void *arg)
{
    struct free_race *f = (struct free_race *)arg;
    unsigned long ok = 0, shutting = 0, closed = 0, other = 0;
    int other_status = 0;
    unsigned i;
    pthread_barrier_wait(&f->start);
    for (i = 0; i < 100000; i++) {
        int st = subject_op(&f->s, i);
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
                pthread_create(&threads[i], NULL, i < 3 ? race_freer : race_caller, &f);
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
    net_redex_free(r);
}

/* ---- 3. free waits for the call in flight ---------------------------------- */

struct blocked {
    struct subject s;
    struct gate gate;
    int status;
    double t_return;
};

static void *blocked_next(void *arg)
{
    struct blocked *b = (struct blocked *)arg;
    net_bytes_t rows = {NULL, 0};
    uint64_t missed = 4242;
    gate_signal(&b->gate);
    b->status = b->s.kind == TASKS_WATCH ? net_tasks_watch_next(b->s.tw, NET_WAIT_FOREVER, &rows, &missed)
                                         : net_memories_watch_next(b->s.mw, NET_WAIT_FOREVER, &rows, &missed);
    b->t_return = now_s();
    net_bytes_free(&rows);
    return NULL;
}

static char wake_info[200];

static void test_watch_free_wakes_blocked_next(void)
{
    net_redex_t *r = redex_new(NULL);
    double worst = 0;
    int round;
    for (round = 0; r != NULL && round < 20; round++) {
        struct blocked b;
        pthread_t t;
        net_bytes_t rows = {NULL, 0};
        uint64_t missed;
        double t_call, t_done;
        memset(&b, 0, sizeof b);
        if (!subject_make(r, round % 2 ? MEMORIES_WATCH : TASKS_WATCH, &b.s)) {
            subject_destroy(&b.s);
            continue;
        }
        /* Consume the current rows, so the next call blocks. */
        if (b.s.kind == TASKS_WATCH) {
            CHECK_OK(net_tasks_watch_next(b.s.tw, 5000, &rows, &missed));
        } else {
            CHECK_OK(net_memories_watch_next(b.s.mw, 5000, &rows, &missed));
        }
        net_bytes_free(&rows);
        gate_init(&b.gate);
        b.status = 1000;
        pthread_create(&t, NULL, blocked_next, &b);
        gate_wait(&b.gate);
        sleep_ms(20);
        t_call = now_s();
        subject_free(&b.s);
        t_done = now_s();
        pthread_join(t, NULL);
        CHECK_STATUS(b.status, NET_END);
        CHECK(b.t_return > t_call);       /* it really was blocked */
        CHECK(t_done - t_call < 1.0);     /* the free woke it */
        CHECK(t_done + 0.010 >= b.t_return); /* and returned after it left */
        if (t_done - t_call > worst) {
            worst = t_done - t_call;
        }
        gate_destroy(&b.gate);
        subject_destroy(&b.s);
    }
    snprintf(wake_info, sizeof wake_info,
             "  20 watch nexts blocked with NET_WAIT_FOREVER, woken by free: slowest free %.2f ms",
             worst * 1e3);
    net_redex_free(r);
}

struct big_write {
    struct subject s;
    struct gate gate;
    uint8_t *text;
    size_t len;
    int status;
};

static void *big_writer(void *arg)
{
    struct big_write *w = (struct big_write *)arg;
    uint64_t seq = 0;
    gate_signal(&w->gate);
    w->status = w->s.kind == TASKS
                    ? net_tasks_create(w->s.tasks, 1, w->text, w->len, &seq)
                    : net_memories_store(w->s.memories, 1, w->text, w->len, NULL, 0, NULL, 0, &seq);
    return NULL;
}

static char big_info[200];

static void test_model_free_waits_for_big_write(void)
{
    net_redex_t *r = redex_new(NULL);
    size_t len = (size_t)32 << 20;
    uint8_t *text = (uint8_t *)malloc(len);
    unsigned long completed = 0, refused = 0;
    int round;
    if (text == NULL) {
        abort();
    }
    memset(text, 'x', len);
    for (round = 0; r != NULL && round < 6; round++) {
        struct big_write w;
        pthread_t t;
        memset(&w, 0, sizeof w);
        if (!subject_make(r, round % 2 ? MEMORIES : TASKS, &w.s)) {
            subject_destroy(&w.s);
            continue;
        }
        w.text = text;
        w.len = len;
        gate_init(&w.gate);
        pthread_create(&t, NULL, big_writer, &w);
        gate_wait(&w.gate);
        sleep_ms(round % 3);
        subject_free(&w.s); /* stops the fold, closes the file, waits for the write */
        pthread_join(t, NULL);
        CHECK(w.status == NET_OK || w.status == NET_ERR_SHUTTING_DOWN ||
              w.status == NET_ERR_CORTEX_HALTED || w.status == NET_ERR_REDEX_CLOSED);
        if (w.status == NET_OK) {
            completed++;
        } else {
            refused++;
        }
        gate_destroy(&w.gate);
        subject_destroy(&w.s);
    }
    snprintf(big_info, sizeof big_info,
             "  6 x 32 MiB writes racing the model free: %lu completed, %lu refused cleanly",
             completed, refused);
    free(text);
    net_redex_free(r);
}

int main(void)
{
    RUN_TEST(test_op_after_free);
    RUN_TEST(test_concurrent_frees_with_racing_calls);
    printf("%s\n", race_info);
    RUN_TEST(test_watch_free_wakes_blocked_next);
    printf("%s\n", wake_info);
    RUN_TEST(test_model_free_waits_for_big_write);
    printf("%s\n", big_info);
    return check_finish("test_cortex_races");
}
