/*
 * check.h: the tiny assertion helper of the libnet C tests.
 *
 * A failed CHECK prints file:line, the expression and (for statuses) the
 * status name plus net_last_error_message(), counts the failure and carries
 * on, so one run shows every broken expectation. Checks are thread-safe (the
 * race tests call them from worker threads). A test binary runs its cases
 * with RUN_TEST and exits with check_finish(): 0 when every check passed.
 *
 * Header-only on purpose: each test is one .c file plus this header.
 */
#ifndef NET_SDK_C_CHECK_H
#define NET_SDK_C_CHECK_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"

static pthread_mutex_t check_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long check_failures = 0;
static unsigned long check_count = 0;

/* The NET_* name of a status code, for failure messages (libnet's own table). */
static inline const char *status_name(int status)
{
    return net_status_name(status);
}

/* Records one check; returns `ok` so callers can guard dependent code. */
static inline int check_record(int ok, const char *file, int line, const char *what)
{
    pthread_mutex_lock(&check_lock);
    check_count++;
    if (!ok) {
        check_failures++;
        fprintf(stderr, "  FAIL %s:%d: %s\n", file, line, what);
    }
    pthread_mutex_unlock(&check_lock);
    return ok;
}

static inline int check_status_record(int got, int want, const char *file, int line,
                               const char *expr)
{
    if (got == want) {
        return check_record(1, file, line, expr);
    }
    pthread_mutex_lock(&check_lock);
    check_count++;
    check_failures++;
    fprintf(stderr, "  FAIL %s:%d: %s\n       returned %s (%d), expected %s (%d); last error: \"%s\"\n",
            file, line, expr, status_name(got), got, status_name(want), want,
            net_last_error_message());
    pthread_mutex_unlock(&check_lock);
    return 0;
}

static inline int check_u64_record(uint64_t got, uint64_t want, const char *file, int line,
                            const char *expr)
{
    if (got == want) {
        return check_record(1, file, line, expr);
    }
    pthread_mutex_lock(&check_lock);
    check_count++;
    check_failures++;
    fprintf(stderr, "  FAIL %s:%d: %s\n       got 0x%016llx, expected 0x%016llx\n", file,
            line, expr, (unsigned long long)got, (unsigned long long)want);
    pthread_mutex_unlock(&check_lock);
    return 0;
}

static inline int check_mem_record(const void *got, size_t got_len, const void *want,
                            size_t want_len, const char *file, int line, const char *expr)
{
    size_t i;
    int ok = got != NULL && got_len == want_len && memcmp(got, want, want_len) == 0;
    if (ok || (got == NULL && want_len == 0 && got_len == 0)) {
        return check_record(1, file, line, expr);
    }
    pthread_mutex_lock(&check_lock);
    check_count++;
    check_failures++;
    fprintf(stderr, "  FAIL %s:%d: %s\n       got %lu bytes:      ", file, line, expr,
            (unsigned long)got_len);
    for (i = 0; got != NULL && i < got_len && i < 80; i++) {
        fprintf(stderr, "%02x", ((const uint8_t *)got)[i]);
    }
    fprintf(stderr, "\n       expected %lu bytes: ", (unsigned long)want_len);
    for (i = 0; i < want_len && i < 80; i++) {
        fprintf(stderr, "%02x", ((const uint8_t *)want)[i]);
    }
    fprintf(stderr, "\n");
    pthread_mutex_unlock(&check_lock);
    return 0;
}

/* CHECK(cond): a boolean expectation. */
#define CHECK(cond) check_record((cond) ? 1 : 0, __FILE__, __LINE__, #cond)
/* CHECK_STATUS(call, NET_X): the call returns exactly NET_X. */
#define CHECK_STATUS(call, want) \
    check_status_record((int)(call), (int)(want), __FILE__, __LINE__, #call " == " #want)
/* CHECK_OK(call): shorthand for CHECK_STATUS(call, NET_OK). */
#define CHECK_OK(call) CHECK_STATUS(call, NET_OK)
/* CHECK_U64(got, want): integer equality, printed in hex on failure. */
#define CHECK_U64(got, want) \
    check_u64_record((uint64_t)(got), (uint64_t)(want), __FILE__, __LINE__, #got " == " #want)
/* CHECK_MEM(ptr, len, want, want_len): byte-for-byte equality. */
#define CHECK_MEM(got, got_len, want, want_len) \
    check_mem_record((got), (got_len), (want), (want_len), __FILE__, __LINE__, \
                     #got " == " #want)
/* CHECK_BYTES(net_bytes, want, want_len): a net_bytes_t holds exactly `want`. */
#define CHECK_BYTES(b, want, want_len) CHECK_MEM((b).ptr, (b).len, (want), (want_len))

/* Runs one test case and prints its name and outcome. */
#define RUN_TEST(fn)                                                            \
    do {                                                                        \
        unsigned long before_ = check_failures;                                 \
        printf("%-52s ", #fn);                                                  \
        fflush(stdout);                                                         \
        fn();                                                                   \
        printf("%s\n", check_failures == before_ ? "ok" : "FAILED");            \
        fflush(stdout);                                                         \
    } while (0)

/* Prints the summary; the process exit status. */
static inline int check_finish(const char *suite)
{
    printf("%s: %lu checks, %lu failed\n", suite, check_count, check_failures);
    return check_failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/*
 * Decodes the hex string `hex` into `out` (capacity `cap`); returns the number
 * of bytes, aborting the test on malformed input (a bug in the test itself).
 */
static inline size_t hex_decode(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex), i;
    if (n % 2 != 0 || n / 2 > cap) {
        fprintf(stderr, "hex_decode: bad vector constant (%lu chars, cap %lu)\n",
                (unsigned long)n, (unsigned long)cap);
        abort();
    }
    for (i = 0; i < n / 2; i++) {
        unsigned v = 0;
        int j;
        for (j = 0; j < 2; j++) {
            char c = hex[2 * i + (size_t)j];
            v <<= 4;
            if (c >= '0' && c <= '9') {
                v |= (unsigned)(c - '0');
            } else if (c >= 'a' && c <= 'f') {
                v |= (unsigned)(c - 'a' + 10);
            } else if (c >= 'A' && c <= 'F') {
                v |= (unsigned)(c - 'A' + 10);
            } else {
                fprintf(stderr, "hex_decode: bad character '%c'\n", c);
                abort();
            }
        }
        out[i] = (uint8_t)v;
    }
    return n / 2;
}

/* Decodes a hex constant that must be exactly `len` bytes. */
static inline void hex_exact(const char *hex, uint8_t *out, size_t len)
{
    if (hex_decode(hex, out, len) != len) {
        fprintf(stderr, "hex_exact: vector constant is not %lu bytes\n", (unsigned long)len);
        abort();
    }
}

#endif /* NET_SDK_C_CHECK_H */
