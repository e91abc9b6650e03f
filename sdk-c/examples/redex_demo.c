/*
 * redex_demo: RedEX, Net's crash-safe append-only log, from C.
 *
 *   cc -std=c99 -pthread redex_demo.c $(pkg-config --cflags --libs net) -o redex_demo
 *
 * Opens a persistent channel under a fresh temporary directory, appends a few
 * entries (one at a time, an 8-byte inline one, a batch), reads them back as a
 * range, then starts a tail on a reader thread that prints entries as they
 * arrive while the main thread appends more, and stops the reader's blocked
 * call by cancelling its net_cancel_t. Finally it closes everything and
 * reopens the channel to show the entries survived.
 *
 * The rules on show: every call returns a net_status_t and
 * net_last_error_message() explains a failure (per thread: the reader prints
 * its own, or reads it from the net_error_t its blocking call filled);
 * payloads and ranges are net_bytes_t, released with net_bytes_free();
 * a blocking call is stopped from another thread with net_cancel_cancel();
 * net_redex_file_free() closes a file; closing a file ends its tails
 * (NET_END); the frees are NULL-safe and return a status too.
 */
#define _XOPEN_SOURCE 700 /* mkdtemp, nftw */

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"

/* Prints what failed and why; returns 1 if `status` is an error. */
static int failed(net_status_t status, const char *what)
{
    if (status == NET_OK) {
        return 0;
    }
    fprintf(stderr, "redex_demo: %s failed (%s): %s\n", what, net_status_name(status),
            net_last_error_message());
    return 1;
}

/* ---- read_range records: seq (u64 LE) | len (u32 LE) | payload ---------- */

static uint64_t le_u64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;
    for (i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static uint32_t le_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

/* Prints a payload as text when it is printable, as hex otherwise. */
static void print_payload(const uint8_t *p, size_t len)
{
    size_t i;
    int text = 1;
    for (i = 0; i < len; i++) {
        text &= p[i] >= 0x20 && p[i] < 0x7f;
    }
    if (text) {
        printf("\"%.*s\"", (int)len, (const char *)p);
    } else {
        printf("0x");
        for (i = 0; i < len; i++) {
            printf("%02x", p[i]);
        }
    }
}

/* Walks a read_range buffer; returns the number of records, -1 if malformed. */
static long print_range(const net_bytes_t *range)
{
    size_t at = 0;
    long count = 0;
    while (at < range->len) {
        uint64_t seq;
        uint32_t len;
        if (range->len - at < 12) {
            return -1;
        }
        seq = le_u64(range->ptr + at);
        len = le_u32(range->ptr + at + 8);
        if (len > range->len - at - 12) {
            return -1;
        }
        printf("  range  #%llu ", (unsigned long long)seq);
        print_payload(range->ptr + at + 12, len);
        printf("\n");
        at += 12 + (size_t)len;
        count++;
    }
    return count;
}

/* ---- the reader thread ------------------------------------------------- */

struct reader {
    net_redex_tail_t *tail;
    net_cancel_t *cancel; /* cancelled by the main thread to stop the reader */
    pthread_mutex_t lock;
    pthread_cond_t progressed;
    uint64_t next; /* the seq it expects next */
    int status;    /* how the loop ended */
};

static void *reader_main(void *arg)
{
    struct reader *rd = (struct reader *)arg;
    for (;;) {
        uint64_t seq = 0;
        net_bytes_t payload = {NULL, 0};
        net_error_t error = {NET_OK, {NULL, 0}}; /* zeroed before the call */
        /* Blocks until an entry arrives, the file is closed or the token is
         * cancelled; a failure's detail also lands in `error`. */
        net_status_t st = net_redex_tail_next(rd->tail, NET_WAIT_FOREVER, &seq, &payload,
                                              rd->cancel, &error);
        if (st == NET_OK) {
            printf("  tail   #%llu ", (unsigned long long)seq);
            print_payload(payload.ptr, payload.len);
            printf("\n");
            fflush(stdout);
            net_bytes_free(&payload);
        } else if (st == NET_LAGGED) {
            /* Retention removed entries this reader had not read yet. */
            printf("  tail   lagged: missed [#%llu, #%llu)\n", (unsigned long long)rd->next,
                   (unsigned long long)seq);
        } else {
            /* NET_ERR_CANCELLED: the main thread cancelled our token (the tail
             * is untouched and could be read on). NET_END: the file (or this
             * tail) was closed. Anything else is an error. */
            if (st == NET_ERR_CANCELLED) {
                printf("  tail   stopped: %.*s\n", (int)error.message.len,
                       (const char *)error.message.ptr);
            } else if (st == NET_END) {
                printf("  tail   end of stream\n");
            } else {
                failed(st, "tail next");
            }
            net_error_clear(&error);
            pthread_mutex_lock(&rd->lock);
            rd->status = st;
            pthread_cond_broadcast(&rd->progressed);
            pthread_mutex_unlock(&rd->lock);
            return NULL;
        }
        pthread_mutex_lock(&rd->lock);
        rd->next = seq + (st == NET_OK);
        pthread_cond_broadcast(&rd->progressed);
        pthread_mutex_unlock(&rd->lock);
    }
}

/* Waits until the reader has printed everything before `seq` (or stopped). */
static void wait_for_reader(struct reader *rd, uint64_t seq)
{
    pthread_mutex_lock(&rd->lock);
    while (rd->next < seq && rd->status == NET_OK) {
        pthread_cond_wait(&rd->progressed, &rd->lock);
    }
    pthread_mutex_unlock(&rd->lock);
}

/* ---- cleanup of the temporary directory ---------------------------------- */

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void)
{
    static const char channel[] = "demo/events";
    /* Persistent, and every append made durable before it returns. */
    static const char config[] = "{\"persistent\": true, \"fsync\": {\"every_n\": 1}}";
    static const char *const batch_text[] = {"batch: one", "batch: two", "batch: three"};
    static const char *const live_text[] = {"live: sensor up", "live: 21.5 C", "live: 21.7 C",
                                            "live: sensor down"};

    int rc = 1, reader_started = 0;
    char dir[256];
    const char *tmp = getenv("TMPDIR");
    net_redex_t *redex = NULL, *again = NULL;
    net_redex_file_t *file = NULL, *reopened = NULL;
    net_bytes_t range = {NULL, 0};
    struct reader rd;
    pthread_t reader_thread;
    uint64_t seq = 0, first = 0, next_seq = 0, len = 0;
    bool appended = false;
    net_slice_t batch[3];
    /* An 8-byte value stored inside the index record: a little-endian counter. */
    uint8_t inline8[8] = {0x2a, 0, 0, 0, 0, 0, 0, 0};
    size_t i;

    memset(&rd, 0, sizeof rd);
    pthread_mutex_init(&rd.lock, NULL);
    pthread_cond_init(&rd.progressed, NULL);
    rd.status = NET_OK;

    if (net_abi_version() != NET_ABI_VERSION) {
        fprintf(stderr, "redex_demo: libnet ABI %u, built for %d\n", net_abi_version(),
                NET_ABI_VERSION);
        return 1;
    }
    printf("libnet %s (ABI %u)\n", net_version(), net_abi_version());

    snprintf(dir, sizeof dir, "%s/redex_demo.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("redex_demo: mkdtemp");
        return 1;
    }

    /* 1. A manager for persistent channels under `dir`, and one channel. */
    if (failed(net_redex_open((const uint8_t *)dir, strlen(dir), &redex), "open manager") ||
        failed(net_redex_open_file(redex, (const uint8_t *)channel, strlen(channel),
                                   (const uint8_t *)config, strlen(config), &file),
               "open channel")) {
        goto cleanup;
    }
    printf("opened %s (persistent) under a temporary directory\n", channel);

    /* 2. Appends: one payload, one 8-byte inline payload, a batch. */
    if (failed(net_redex_file_append(file, (const uint8_t *)"hello, log", 10, &seq), "append")) {
        goto cleanup;
    }
    printf("append         -> #%llu\n", (unsigned long long)seq);
    if (failed(net_redex_file_append_inline(file, inline8, sizeof inline8, &seq),
               "append inline")) {
        goto cleanup;
    }
    printf("append_inline  -> #%llu\n", (unsigned long long)seq);
    for (i = 0; i < 3; i++) {
        batch[i].ptr = (const uint8_t *)batch_text[i];
        batch[i].len = strlen(batch_text[i]);
    }
    if (failed(net_redex_file_append_batch(file, batch, 3, &first, &appended), "append batch")) {
        goto cleanup;
    }
    printf("append_batch   -> #%llu..#%llu\n", (unsigned long long)first,
           (unsigned long long)(first + 2));
    /* An empty batch appends nothing and says so: `appended` is false. */
    if (failed(net_redex_file_append_batch(file, NULL, 0, &first, &appended), "empty batch")) {
        goto cleanup;
    }
    printf("empty batch    -> %s\n", appended ? "UNEXPECTED seq" : "nothing appended");

    /* 3. Read them back: one buffer of records, decoded here. */
    if (failed(net_redex_file_next_seq(file, &next_seq), "next_seq") ||
        failed(net_redex_file_read_range(file, 0, next_seq, &range), "read_range")) {
        goto cleanup;
    }
    printf("read_range(0, %llu):\n", (unsigned long long)next_seq);
    if (print_range(&range) != (long)next_seq) {
        fprintf(stderr, "redex_demo: the range is not what was appended\n");
        goto cleanup;
    }
    net_bytes_free(&range);

    /* 4. A tail on a reader thread: it starts at the next seq (live only; a
     *    lower from_seq would backfill first), and prints as entries land. */
    rd.next = next_seq;
    if (failed(net_cancel_new(&rd.cancel), "cancel token") ||
        failed(net_redex_file_tail(file, next_seq, &rd.tail), "tail")) {
        goto cleanup;
    }
    if (pthread_create(&reader_thread, NULL, reader_main, &rd) != 0) {
        fprintf(stderr, "redex_demo: cannot start the reader thread\n");
        goto cleanup;
    }
    reader_started = 1;
    printf("tailing from #%llu while appending:\n", (unsigned long long)next_seq);
    for (i = 0; i < sizeof live_text / sizeof live_text[0]; i++) {
        if (failed(net_redex_file_append(file, (const uint8_t *)live_text[i],
                                         strlen(live_text[i]), &seq),
                   "live append")) {
            goto cleanup;
        }
        /* Wait for the reader before the next one, so the output reads in order. */
        wait_for_reader(&rd, seq + 1);
    }

    /* 5. Stop the reader: cancel its token from this thread. Its next, blocked
     *    with NET_WAIT_FOREVER, returns NET_ERR_CANCELLED and its loop ends. */
    if (failed(net_cancel_cancel(rd.cancel), "cancel")) {
        goto cleanup;
    }
    pthread_join(reader_thread, NULL);
    reader_started = 0;
    if (rd.status != NET_ERR_CANCELLED) {
        goto cleanup;
    }

    /* 6. Close: tails end at once (a tail gets no entries it had not read yet,
     *    which is why we waited for the reader above). */
    if (failed(net_redex_file_close(file), "close")) {
        goto cleanup;
    }
    {
        net_bytes_t payload = {NULL, 0};
        net_status_t st = net_redex_tail_next(rd.tail, NET_WAIT_FOREVER, &seq, &payload, NULL, NULL);
        printf("next after close -> %s\n", net_status_name(st));
        if (st != NET_END) {
            goto cleanup;
        }
    }

    /* 7. Free the handles (each returns NET_OK, or NET_ERR_BUSY if calls on it
     *    were still running 5 s later); the channel directory is released. */
    if (failed(net_redex_tail_free(rd.tail), "free tail") ||
        failed(net_cancel_free(rd.cancel), "free token")) {
        goto cleanup;
    }
    rd.tail = NULL;
    rd.cancel = NULL;
    if (failed(net_redex_file_free(file), "free file")) {
        goto cleanup;
    }
    file = NULL;
    if (failed(net_redex_free(redex), "free manager")) {
        goto cleanup;
    }
    redex = NULL;

    /* 8. A new manager on the same directory recovers every entry. */
    if (failed(net_redex_open((const uint8_t *)dir, strlen(dir), &again), "reopen manager") ||
        failed(net_redex_open_file(again, (const uint8_t *)channel, strlen(channel),
                                   (const uint8_t *)config, strlen(config), &reopened),
               "reopen channel") ||
        failed(net_redex_file_len(reopened, &len), "len") ||
        failed(net_redex_file_next_seq(reopened, &next_seq), "next_seq")) {
        goto cleanup;
    }
    printf("reopened: %llu entries, next seq #%llu\n", (unsigned long long)len,
           (unsigned long long)next_seq);
    if (len != 9 || next_seq != 9) {
        fprintf(stderr, "redex_demo: expected 9 entries after reopening\n");
        goto cleanup;
    }

    printf("redex_demo: ok\n");
    rc = 0;

cleanup:
    if (reader_started) {
        /* Error path: cancel the reader's blocked next so it returns. */
        net_cancel_cancel(rd.cancel);
        pthread_join(reader_thread, NULL);
    }
    /* NULL-safe and idempotent: release whatever was created. */
    net_bytes_free(&range);
    net_redex_tail_free(rd.tail);
    net_cancel_free(rd.cancel);
    net_redex_file_free(reopened);
    net_redex_file_free(file);
    net_redex_free(again);
    net_redex_free(redex);
    pthread_mutex_destroy(&rd.lock);
    pthread_cond_destroy(&rd.progressed);
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        fprintf(stderr, "redex_demo: could not remove %s\n", dir);
        rc = 1;
    }
    return rc;
}
