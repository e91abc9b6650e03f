/*
 * redex_util.h: helpers shared by the RedEX C tests (test_redex.c,
 * test_redex_races.c). Header-only, like check.h, which it includes.
 *
 *  - clocks: now_s(), sleep_ms();
 *  - temporary directories: temp_dir_new() (mkdtemp) and rm_rf() (nftw);
 *  - handle helpers that CHECK their status: redex_new(), redex_open(),
 *    redex_append();
 *  - the record format of net_redex_file_read_range:
 *      seq (u64 LE) | len (u32 LE) | payload, repeated
 *    decoded by range_next() without trusting the buffer.
 *
 * Every .c file that includes it defines _XOPEN_SOURCE 700 first (mkdtemp,
 * nftw, pthread barriers, clock_gettime under -std=c99).
 */
#ifndef NET_SDK_C_REDEX_UTIL_H
#define NET_SDK_C_REDEX_UTIL_H

#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void sleep_ms(long ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- temporary directories ---------------------------------------------- */

/* A new empty directory under $TMPDIR (or /tmp); aborts if none can be made. */
static inline char *temp_dir_new(const char *label)
{
    const char *base = getenv("TMPDIR");
    size_t n;
    char *path;
    if (base == NULL || base[0] == '\0') {
        base = "/tmp";
    }
    n = strlen(base) + strlen(label) + 32;
    path = (char *)malloc(n);
    if (path == NULL) {
        abort();
    }
    snprintf(path, n, "%s/net-sdk-c-%s.XXXXXX", base, label);
    if (mkdtemp(path) == NULL) {
        perror("mkdtemp");
        abort();
    }
    return path;
}

static inline int rm_rf_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (remove(path) != 0) {
        fprintf(stderr, "rm_rf: cannot remove %s (flag %d): %s\n", path, flag, strerror(errno));
        return -1;
    }
    return 0;
}

/* Removes `path` and everything under it (no symlinks followed); frees it. */
static inline void rm_rf(char *path)
{
    if (path == NULL) {
        return;
    }
    CHECK(nftw(path, rm_rf_entry, 16, FTW_DEPTH | FTW_PHYS) == 0);
    free(path);
}

/* ---- handles ------------------------------------------------------------ */

/* A manager: persistent under `dir`, or memory-only when `dir` is NULL. */
static inline net_redex_t *redex_new(const char *dir)
{
    net_redex_t *r = NULL;
    CHECK_OK(net_redex_open((const uint8_t *)dir, dir ? strlen(dir) : 0, &r));
    return r;
}

/* Opens `name` with `config` (NULL: defaults); the status of the call. */
static inline int redex_open_status(const net_redex_t *r, const char *name, const char *config,
                                    net_redex_file_t **out)
{
    return net_redex_open_file(r, (const uint8_t *)name, strlen(name),
                               (const uint8_t *)config, config ? strlen(config) : 0, out);
}

/* Opens `name`, CHECKing for NET_OK; NULL on failure. */
static inline net_redex_file_t *redex_open(const net_redex_t *r, const char *name,
                                           const char *config)
{
    net_redex_file_t *f = NULL;
    if (!CHECK_OK(redex_open_status(r, name, config, &f))) {
        return NULL;
    }
    return f;
}

/* Appends a NUL-terminated string, CHECKing NET_OK; returns its seq. */
static inline uint64_t redex_append(const net_redex_file_t *f, const char *s)
{
    uint64_t seq = UINT64_MAX;
    CHECK_OK(net_redex_file_append(f, (const uint8_t *)s, strlen(s), &seq));
    return seq;
}

/* ---- read_range records ------------------------------------------------- */

static inline uint64_t le_u64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;
    for (i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static inline uint32_t le_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

/* A cursor over a net_redex_file_read_range buffer. */
struct range_cursor {
    const uint8_t *at, *end;
};

static inline struct range_cursor range_cursor_of(const net_bytes_t *b)
{
    struct range_cursor c;
    c.at = b->ptr;
    c.end = b->ptr ? b->ptr + b->len : b->ptr;
    return c;
}

/*
 * The next record: 1 with *seq, *payload (pointing into the buffer) and *len
 * set; 0 at the end; -1 if the buffer is malformed (a truncated header or a
 * payload running past the end).
 */
static inline int range_next(struct range_cursor *c, uint64_t *seq, const uint8_t **payload,
                             uint32_t *len)
{
    size_t left = (size_t)(c->end - c->at);
    uint32_t n;
    if (c->at == NULL || left == 0) {
        return 0;
    }
    if (left < 12) {
        return -1;
    }
    n = le_u32(c->at + 8);
    if ((size_t)n > left - 12) {
        return -1;
    }
    *seq = le_u64(c->at);
    *len = n;
    *payload = c->at + 12;
    c->at += 12 + (size_t)n;
    return 1;
}

#endif /* NET_SDK_C_REDEX_UTIL_H */
