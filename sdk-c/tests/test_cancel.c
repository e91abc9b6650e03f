/*
 * net_cancel_t and net_error_t: the token's own API, what a blocking call
 * does with a token (cancelled before it started, cancelled while it waited,
 * never cancelled), the net_error_t it fills, and the three handle races for
 * the token itself:
 *
 *  1. a call after free returns NET_ERR_SHUTTING_DOWN, and a freed token
 *     passed to a blocking call is refused the same way;
 *  2. concurrent frees are idempotent while other threads cancel and query
 *     the token;
 *  3. a free right behind the cancel that wakes a call blocked on the token:
 *     the free waits for the call to leave (the call keeps the token alive),
 *     the call returns NET_ERR_CANCELLED, the free NET_OK; nothing is used
 *     after free.
 *
 * Run under AddressSanitizer + LeakSanitizer.
 */
#define _XOPEN_SOURCE 700

#include "block_util.h"
#include "redex_util.h"

static const net_bytes_t EMPTY = {NULL, 0};

static void test_token_lifecycle(void)
{
    net_cancel_t *t = NULL;
    bool cancelled = true;
    CHECK_OK(net_cancel_new(&t));
    CHECK(t != NULL);
    CHECK_OK(net_cancel_is_cancelled(t, &cancelled));
    CHECK(!cancelled);
    CHECK_OK(net_cancel_cancel(t));
    CHECK_OK(net_cancel_is_cancelled(t, &cancelled));
    CHECK(cancelled);
    CHECK_OK(net_cancel_cancel(t)); /* idempotent */
    CHECK_OK(net_cancel_free(t));
    CHECK_OK(net_cancel_free(t)); /* idempotent */
    CHECK_OK(net_cancel_free(NULL));

    /* Arguments are checked; outputs are untouched on error. */
    CHECK_STATUS(net_cancel_new(NULL), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_cancel_cancel(NULL), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_cancel_is_cancelled(NULL, &cancelled), NET_ERR_INVALID_ARGUMENT);
    t = cancel_new();
    CHECK_STATUS(net_cancel_is_cancelled(t, NULL), NET_ERR_INVALID_ARGUMENT);
    CHECK_OK(net_cancel_free(t));

    /* net_error_clear: NULL-safe, idempotent, on a zeroed struct too. */
    {
        net_error_t e = error_slot();
        net_error_clear(NULL);
        net_error_clear(&e);
        net_error_clear(&e);
        CHECK(e.status == NET_OK && e.message.ptr == NULL && e.message.len == 0);
    }
}

/* What a blocking call does with a token, and the net_error_t it fills. */
static void test_calls_and_errors(void)
{
    net_redex_t *r = redex_new(NULL);
    net_redex_file_t *f = r ? redex_open(r, "cancel/calls", NULL) : NULL;
    net_redex_tail_t *tail = NULL;
    net_cancel_t *live = cancel_new(), *dead = cancel_new();
    net_error_t error = error_slot();
    struct call_error e;
    net_bytes_t b = EMPTY;
    uint64_t seq = 4242;
    if (f == NULL || !CHECK_OK(net_redex_file_tail(f, 0, &tail))) {
        goto out;
    }
    CHECK_OK(net_cancel_cancel(dead));

    /* A token never cancelled changes nothing: timeouts and results as usual,
     * and a call that succeeds (or times out) leaves error_out as it was. */
    CHECK_STATUS(net_redex_tail_next(tail, 0, &seq, &b, live, &error), NET_TIMEOUT);
    CHECK(error.status == NET_OK && error.message.ptr == NULL);
    redex_append(f, "one");
    CHECK_OK(net_redex_tail_next(tail, 5000, &seq, &b, live, &error));
    CHECK_U64(seq, 0);
    CHECK_BYTES(b, "one", 3);
    CHECK(error.status == NET_OK && error.message.ptr == NULL);
    net_bytes_free(&b);

    /* A token cancelled before the call: refused at once, even with an entry
     * waiting, which the next call still gets (nothing was consumed). */
    redex_append(f, "two");
    seq = 4242;
    CHECK_STATUS(net_redex_tail_next(tail, NET_WAIT_FOREVER, &seq, &b, dead, &error),
                 NET_ERR_CANCELLED);
    CHECK_U64(seq, 4242);
    CHECK(b.ptr == NULL);
    CHECK_STATUS(error_take(&error, &e), NET_ERR_CANCELLED);
    CHECK(cancelled_before_start(e.message));
    /* the same detail as the thread-local message */
    CHECK(strcmp(e.message, net_last_error_message()) == 0);
    CHECK(error.status == NET_OK && error.message.ptr == NULL); /* cleared */
    CHECK_OK(net_redex_tail_next(tail, 0, &seq, &b, NULL, NULL));
    CHECK_BYTES(b, "two", 3);
    net_bytes_free(&b);

    /* error_out alone (no token): a failure is written there too. */
    CHECK_STATUS(net_redex_tail_next(tail, 0, NULL, &b, NULL, &error), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(error_take(&error, &e), NET_ERR_INVALID_ARGUMENT);
    CHECK(strlen(e.message) > 0);

    /* One token stops several calls: a cancelled token refuses every call. */
    CHECK_STATUS(net_redex_tail_next(tail, 0, &seq, &b, dead, NULL), NET_ERR_CANCELLED);
    CHECK_STATUS(net_redex_tail_next(tail, 10, &seq, &b, dead, NULL), NET_ERR_CANCELLED);
out:
    CHECK_OK(net_cancel_free(live));
    CHECK_OK(net_cancel_free(dead));
    CHECK_OK(net_redex_tail_free(tail));
    CHECK_OK(net_redex_file_free(f));
    CHECK_OK(net_redex_free(r));
}

/* ---- 1. op after free ------------------------------------------------------ */

static void test_op_after_free(void)
{
    net_redex_t *r = redex_new(NULL);
    net_redex_file_t *f = r ? redex_open(r, "cancel/after", NULL) : NULL;
    net_redex_tail_t *tail = NULL;
    int round;
    if (f == NULL || !CHECK_OK(net_redex_file_tail(f, 0, &tail))) {
        goto out;
    }
    for (round = 0; round < 200; round++) {
        net_cancel_t *t = cancel_new();
        bool cancelled = true;
        net_error_t error = error_slot();
        struct call_error e;
        uint64_t seq = 4242;
        net_bytes_t b = EMPTY;
        if (round % 2) {
            CHECK_OK(net_cancel_cancel(t));
        }
        CHECK_OK(net_cancel_free(t));
        CHECK_STATUS(net_cancel_cancel(t), NET_ERR_SHUTTING_DOWN);
        CHECK_STATUS(net_cancel_is_cancelled(t, &cancelled), NET_ERR_SHUTTING_DOWN);
        CHECK(cancelled == true);
        /* a freed token given to a call: refused, the call does nothing */
        CHECK_STATUS(net_redex_tail_next(tail, NET_WAIT_FOREVER, &seq, &b, t, &error),
                     NET_ERR_SHUTTING_DOWN);
        CHECK_STATUS(error_take(&error, &e), NET_ERR_SHUTTING_DOWN);
        if (round == 0) {
            CHECK(strstr(e.message, "net_cancel_t") != NULL);
        }
        CHECK(seq == 4242 && b.ptr == NULL);
        CHECK_OK(net_cancel_free(t)); /* idempotent */
    }
out:
    CHECK_OK(net_redex_tail_free(tail));
    CHECK_OK(net_redex_file_free(f));
    CHECK_OK(net_redex_free(r));
}

/* ---- 2. concurrent frees ----------------------------------------------------- */

struct free_race {
    net_cancel_t *token;
    pthread_barrier_t start;
    pthread_mutex_t lock;
    unsigned long ok, down;
};

static void *token_freer(void *arg)
{
    struct free_race *r = (struct free_race *)arg;
    bool cancelled;
    pthread_barrier_wait(&r->start);
    CHECK_OK(net_cancel_free(r->token)); /* every racing free: NET_OK */
    CHECK_STATUS(net_cancel_is_cancelled(r->token, &cancelled), NET_ERR_SHUTTING_DOWN);
    return NULL;
}

static void *token_user(void *arg)
{
    struct free_race *r = (struct free_race *)arg;
    unsigned long ok = 0, down = 0;
    double deadline;
    int i;
    pthread_barrier_wait(&r->start);
    deadline = now_s() + 10.0;
    for (i = 0;; i++) {
        bool cancelled = false;
        int st = i % 2 ? net_cancel_cancel(r->token) : net_cancel_is_cancelled(r->token, &cancelled);
        if (st == NET_OK) {
            ok++;
        } else {
            CHECK_STATUS(st, NET_ERR_SHUTTING_DOWN);
            down++;
            break; /* it stays freed */
        }
        if (i % 64 == 0 && now_s() > deadline) {
            CHECK(!"token calls still succeed 10 s after it was freed");
            break;
        }
    }
    pthread_mutex_lock(&r->lock);
    r->ok += ok;
    r->down += down;
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

static char free_info[160];

static void test_concurrent_frees(void)
{
    unsigned long total_ok = 0;
    int round, i;
    for (round = 0; round < 200; round++) {
        struct free_race r;
        pthread_t t[6];
        memset(&r, 0, sizeof r);
        r.token = cancel_new();
        pthread_mutex_init(&r.lock, NULL);
        pthread_barrier_init(&r.start, NULL, 6);
        for (i = 0; i < 6; i++) {
            if (pthread_create(&t[i], NULL, i % 2 ? token_freer : token_user, &r) != 0) {
                abort(); /* the barrier would never open */
            }
        }
        for (i = 0; i < 6; i++) {
            pthread_join(t[i], NULL);
        }
        CHECK_U64(r.down, 3);
        total_ok += r.ok;
        CHECK_OK(net_cancel_free(r.token));
        pthread_barrier_destroy(&r.start);
        pthread_mutex_destroy(&r.lock);
    }
    snprintf(free_info, sizeof free_info,
             "  200 rounds x (3 freeing + 3 cancelling/querying threads): %lu calls before the free",
             total_ok);
}

/* ---- 3. a free and a cancel racing a call that uses the token -------------- */

struct in_use {
    net_redex_tail_t *tail;
    net_cancel_t *token;
    int status;
    struct call_error error;
};

static void *next_with_token(void *arg)
{
    struct in_use *u = (struct in_use *)arg;
    net_error_t error = error_slot();
    uint64_t seq = 0;
    net_bytes_t b = EMPTY;
    u->status = net_redex_tail_next(u->tail, NET_WAIT_FOREVER, &seq, &b, u->token, &error);
    error_take(&error, &u->error);
    net_bytes_free(&b);
    return NULL;
}

struct use_rounds {
    net_redex_tail_t *tail;
    unsigned long refused;
};

/* The call keeps the token alive: a free right behind the cancel that wakes
 * it is safe (ASan watches), the call ends cancelled and the free succeeds
 * once the call has left. The round counts when the call was cancelled
 * while it waited. (Free a token only once the calls using it are woken or
 * done: a free while a call still waits on the token holds up to 5 s, then
 * leaks the token with NET_ERR_BUSY.) */
static int in_use_round(void *ctx, int round)
{
    struct use_rounds *ur = (struct use_rounds *)ctx;
    struct in_use u;
    pthread_t caller;
    (void)round;
    memset(&u, 0, sizeof u);
    u.tail = ur->tail;
    u.token = cancel_new();
    if (pthread_create(&caller, NULL, next_with_token, &u) != 0) {
        abort();
    }
    let_it_block();
    CHECK_OK(net_cancel_cancel(u.token));
    CHECK_OK(net_cancel_free(u.token));
    pthread_join(caller, NULL);
    if (u.status == NET_ERR_SHUTTING_DOWN) {
        ur->refused++; /* the free came before the call took the token */
        return 0;
    }
    CHECK_STATUS(u.status, NET_ERR_CANCELLED);
    CHECK_STATUS(u.error.status, NET_ERR_CANCELLED);
    if (interrupted_while_waiting(u.error.message)) {
        return 1;
    }
    ur->refused++;
    return 0;
}

static void test_free_and_cancel_race_a_call_using_the_token(void)
{
    net_redex_t *r = redex_new(NULL);
    net_redex_file_t *f = r ? redex_open(r, "cancel/in-use", NULL) : NULL;
    struct use_rounds ur;
    memset(&ur, 0, sizeof ur);
    if (f != NULL && CHECK_OK(net_redex_file_tail(f, 0, &ur.tail))) {
        UNTIL_WON(200, 5, in_use_round, &ur);
    }
    CHECK_OK(net_redex_tail_free(ur.tail));
    CHECK_OK(net_redex_file_free(f));
    CHECK_OK(net_redex_free(r));
}

int main(void)
{
    RUN_TEST(test_token_lifecycle);
    RUN_TEST(test_calls_and_errors);
    RUN_TEST(test_op_after_free);
    RUN_TEST(test_concurrent_frees);
    printf("%s\n", free_info);
    RUN_TEST(test_free_and_cancel_race_a_call_using_the_token);
    return check_finish("test_cancel");
}
