/*
 * block_util.h: proving that a free or a cancel woke a call that was really
 * blocked, and that a free waited for a call really in flight, without
 * sleeping "long enough" and without wall-clock assertions a loaded machine
 * breaks. Header-only, like check.h (which it includes). The patterns are
 * those of the Rust suites (tests/ffi_common/mod.rs):
 *
 *  - let_it_block(): lets a call just started on another thread reach its
 *    wait by yielding the processor; whether it got there is never assumed;
 *  - until_won(): repeats a round until enough rounds PROVED the call was
 *    interrupted while it waited (a round where the free or cancel came
 *    first proves nothing and does not count), failing if too few did. The
 *    proof is the call's own outcome: for pull calls NET_END (woken by the
 *    free) versus NET_ERR_SHUTTING_DOWN (refused at the door); for the others
 *    the error message: "...while it waited" / "...while the call waited"
 *    versus "already cancelled when it started" / "freed";
 *  - struct delay: how long to let a racing call run before a free (for "the
 *    free waits for a call in flight"), in yields, doubled when the free came
 *    too early and halved when it came too late, so the race is found
 *    whatever the machine's speed and load;
 *  - cancel_new(), call_error / error_take(): a net_cancel_t, and the
 *    net_error_t a blocking call fills, read back as a status and a
 *    NUL-terminated message (then cleared);
 *  - CANCEL_ROUND(): one round of a cancel racing a call blocked forever.
 *
 * Files that include it define _XOPEN_SOURCE 700 or _POSIX_C_SOURCE 200809L
 * first (sched_yield, pthread barriers).
 */
#ifndef NET_SDK_C_BLOCK_UTIL_H
#define NET_SDK_C_BLOCK_UTIL_H

#include <sched.h>

#include "check.h"

/* Yields the processor `n` times. */
static inline void yield_n(unsigned long n)
{
    unsigned long i;
    for (i = 0; i < n; i++) {
        sched_yield();
    }
}

/* Lets a call just started on another thread reach its wait (no clock). */
static inline void let_it_block(void)
{
    yield_n(2000);
}

/*
 * Runs attempt(ctx, round) until `wanted` rounds returned 1 (the call was
 * interrupted while it waited), at most `rounds` times. Fails a CHECK naming
 * `what` if fewer rounds were won; returns the number won.
 */
static inline int until_won_check(int rounds, int wanted, int (*attempt)(void *ctx, int round),
                                  void *ctx, const char *what, const char *file, int line)
{
    int won = 0, round;
    for (round = 0; round < rounds && won < wanted; round++) {
        if (attempt(ctx, round)) {
            won++;
        }
    }
    if (won < wanted) {
        char text[300];
        snprintf(text, sizeof text,
                 "%s: the call was interrupted while it waited in only %d of %d rounds "
                 "(wanted %d)",
                 what, won, round, wanted);
        check_record(0, file, line, text);
    } else {
        check_record(1, file, line, what);
    }
    return won;
}

#define UNTIL_WON(rounds, wanted, attempt, ctx) \
    until_won_check((rounds), (wanted), (attempt), (ctx), #attempt, __FILE__, __LINE__)

/* A new cancellation token (aborts the test if libnet cannot make one). */
static inline net_cancel_t *cancel_new(void)
{
    net_cancel_t *token = NULL;
    if (!CHECK_OK(net_cancel_new(&token)) || token == NULL) {
        abort();
    }
    return token;
}

/* What a blocking call wrote to its net_error_t, copied out. */
struct call_error {
    int status;
    char message[512];
};

/* Copies `error` into `out` (message NUL-terminated, truncated if need be)
 * and clears it; returns out->status. */
static inline int error_take(net_error_t *error, struct call_error *out)
{
    size_t n = error->message.len < sizeof out->message - 1 ? error->message.len
                                                            : sizeof out->message - 1;
    out->status = (int)error->status;
    if (n > 0 && error->message.ptr != NULL) {
        memcpy(out->message, error->message.ptr, n);
    }
    out->message[n] = '\0';
    net_error_clear(error);
    return out->status;
}

/* A zeroed net_error_t, as libnet wants it before a call. */
static inline net_error_t error_slot(void)
{
    net_error_t e;
    memset(&e, 0, sizeof e);
    return e;
}

/* Whether a message says the call was interrupted while it waited (by a
 * cancel or a free), as opposed to before it started. */
static inline int interrupted_while_waiting(const char *message)
{
    return strstr(message, "while the call waited") != NULL ||
           strstr(message, "while it waited") != NULL;
}

/* Whether a message says the token was cancelled before the call started. */
static inline int cancelled_before_start(const char *message)
{
    return strstr(message, "already cancelled") != NULL;
}

/*
 * One round of a cancel racing a call blocked forever. `run(arg)` is a
 * thread routine that makes the call with the token *cancel, then stores
 * what it returned in *status and what it wrote to its net_error_t in
 * *error. This makes the token, starts `run` on another thread and, once
 * the call had the chance to block, cancels the token; the call must come
 * back with NET_ERR_CANCELLED, its net_error_t saying so too. Returns 1 when
 * the message says the call was cancelled while it waited; 0 when the token
 * was cancelled before the call started, which proves nothing (counted in
 * *refused).
 */
static inline int cancel_wakes_round(void *(*run)(void *), void *arg, net_cancel_t **cancel,
                                     const int *status, const struct call_error *error,
                                     unsigned long *refused)
{
    pthread_t t;
    *cancel = cancel_new();
    if (pthread_create(&t, NULL, run, arg) != 0) {
        abort();
    }
    let_it_block();
    CHECK_OK(net_cancel_cancel(*cancel));
    pthread_join(t, NULL);
    CHECK_OK(net_cancel_free(*cancel));
    CHECK_STATUS(*status, NET_ERR_CANCELLED);
    CHECK_STATUS(error->status, NET_ERR_CANCELLED); /* the error comes back with the call */
    if (interrupted_while_waiting(error->message)) {
        return 1;
    }
    CHECK(cancelled_before_start(error->message));
    (*refused)++;
    return 0;
}

/* cancel_wakes_round() for `b`, a test's struct for one blocked call, whose
 * members `cancel`, `status` and `error` are its token and outcome. */
#define CANCEL_ROUND(run, b, refused) \
    cancel_wakes_round((run), &(b), &(b).cancel, &(b).status, &(b).error, (refused))

/*
 * How long to let a racing call run before a free, in yields of the
 * processor: doubled when the free came too early (the call was refused) and
 * halved when it came too late (the call was over before the free began).
 */
struct delay {
    unsigned long yields;
};

static inline void delay_init(struct delay *d)
{
    d->yields = 2000;
}

static inline void delay_run(const struct delay *d)
{
    yield_n(d->yields);
}

static inline void delay_too_early(struct delay *d)
{
    d->yields = d->yields * 2 > (1ul << 24) ? (1ul << 24) : d->yields * 2;
}

static inline void delay_too_late(struct delay *d)
{
    d->yields = d->yields / 2 > 0 ? d->yields / 2 : 1;
}

#endif /* NET_SDK_C_BLOCK_UTIL_H */
