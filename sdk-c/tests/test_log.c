/*
 * libnet's log, pulled (libnet never calls into C): nothing is queued while
 * logging is off (the default), records at or above the level set reach
 * net_log_next as "target: message key=value" text, levels above
 * NET_LOG_TRACE are refused, and a net_log_next blocked forever is woken by
 * a cancel of its net_cancel_t (NET_ERR_CANCELLED "while it waited"; retried
 * until a round proves the pull was waiting). The log has no handle to free:
 * the cancel is the only way to stop a pull blocked forever.
 *
 * One process, one collector: the test cases run in order.
 */
#define _XOPEN_SOURCE 700

#include <sys/stat.h>

#include "block_util.h"
#include "redex_util.h"

/* Opens a persistent channel whose manifest is garbage: recovery rewrites
 * it and logs a warning ("recovery ..."). */
static void provoke_a_recovery_warning(const char *base)
{
    char path[512];
    FILE *manifest;
    net_redex_t *r;
    net_redex_file_t *f;
    snprintf(path, sizeof path, "%s/log", base);
    CHECK(mkdir(path, 0700) == 0);
    snprintf(path, sizeof path, "%s/log/chan", base);
    CHECK(mkdir(path, 0700) == 0);
    snprintf(path, sizeof path, "%s/log/chan/manifest", base);
    manifest = fopen(path, "wb");
    if (!CHECK(manifest != NULL)) {
        return;
    }
    fputs("not a manifest at all", manifest);
    fclose(manifest);
    r = redex_new(base);
    f = r ? redex_open(r, "log/chan", "{\"persistent\": true}") : NULL;
    CHECK_OK(net_redex_file_free(f));
    CHECK_OK(net_redex_free(r));
}

/* net_log_next with a timeout; the text NUL-terminated into `text`. */
static int pull(uint32_t timeout_ms, uint32_t *level, char *text, size_t cap)
{
    net_bytes_t b = {NULL, 0};
    int st = net_log_next(timeout_ms, level, &b, NULL, NULL);
    size_t n = b.len < cap - 1 ? b.len : cap - 1;
    if (n > 0) {
        memcpy(text, b.ptr, n);
    }
    text[n] = '\0';
    net_bytes_free(&b);
    return st;
}

/* Drops whatever is queued (records from earlier steps). */
static void drain(void)
{
    uint32_t level;
    char text[1024];
    while (pull(0, &level, text, sizeof text) == NET_OK) {
    }
}

static void test_levels(void)
{
    char *off = temp_dir_new("log-off"), *on = temp_dir_new("log-on"),
         *quiet = temp_dir_new("log-quiet");
    uint32_t level = 4242;
    char text[1024];
    int st, found = 0;

    /* Off (the default): nothing is queued. */
    provoke_a_recovery_warning(off);
    CHECK_OK(net_log_set_level(NET_LOG_WARN));
    CHECK_STATUS(pull(0, &level, text, sizeof text), NET_TIMEOUT);
    CHECK_U64(level, 4242); /* no output without a record */

    /* At WARN: the recovery's warning is queued, with its level and target. */
    provoke_a_recovery_warning(on);
    while ((st = pull(5000, &level, text, sizeof text)) == NET_OK) {
        CHECK(level >= NET_LOG_ERROR && level <= NET_LOG_WARN);
        if (strstr(text, "recovery") != NULL) {
            found = 1;
            CHECK_U64(level, NET_LOG_WARN);
            CHECK(strchr(text, ':') != NULL); /* "target: message ..." */
            break;
        }
    }
    CHECK(found);
    if (!found) {
        fprintf(stderr, "       last pull: %s \"%s\"\n", status_name(st), text);
    }

    /* At ERROR: a warning is not queued. */
    drain();
    CHECK_OK(net_log_set_level(NET_LOG_ERROR));
    provoke_a_recovery_warning(quiet);
    CHECK_STATUS(pull(0, &level, text, sizeof text), NET_TIMEOUT);

    CHECK_STATUS(net_log_set_level(NET_LOG_TRACE + 1), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_log_next(0, NULL, NULL, NULL, NULL), NET_ERR_INVALID_ARGUMENT);
    CHECK_OK(net_log_set_level(NET_LOG_OFF));
    drain();
    rm_rf(off);
    rm_rf(on);
    rm_rf(quiet);
}

struct blocked_pull {
    net_cancel_t *cancel;
    int status;
    uint32_t level;
    struct call_error error;
};

static void *pull_forever(void *arg)
{
    struct blocked_pull *p = (struct blocked_pull *)arg;
    net_bytes_t text = {NULL, 0};
    net_error_t error = error_slot();
    p->status = net_log_next(NET_WAIT_FOREVER, &p->level, &text, p->cancel, &error);
    error_take(&error, &p->error);
    CHECK(text.ptr == NULL);
    net_bytes_free(&text);
    return NULL;
}

static int pull_cancel_round(void *ctx, int round)
{
    struct blocked_pull p;
    int won;
    (void)round;
    memset(&p, 0, sizeof p);
    p.level = 4242;
    won = CANCEL_ROUND(pull_forever, p, (unsigned long *)ctx);
    CHECK_U64(p.level, 4242);
    return won;
}

static void test_cancel_wakes_a_pull_blocked_forever(void)
{
    unsigned long refused = 0;
    /* With logging on and nothing logged, a pull waits until cancelled. */
    CHECK_OK(net_log_set_level(NET_LOG_ERROR));
    drain();
    UNTIL_WON(200, 3, pull_cancel_round, &refused);
    CHECK_OK(net_log_set_level(NET_LOG_OFF));
}

int main(void)
{
    RUN_TEST(test_levels);
    RUN_TEST(test_cancel_wakes_a_pull_blocked_forever);
    return check_finish("test_log");
}
