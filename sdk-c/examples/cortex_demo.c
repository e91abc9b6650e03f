/*
 * cortex_demo: the CortEX tasks model through the C ABI.
 *
 * Opens a tasks model (net_model_open with NET_MODEL_TASKS: every kind is
 * driven by the same net_model_* calls, only its writes are named after it)
 * on a memory-only RedEX manager, writes tasks, waits for the fold
 * (read-your-writes), runs queries, watches a live query from a second
 * thread, snapshots the state and restores it into a second model.
 * Ends with "cortex_demo: ok".
 *
 *   cc cortex_demo.c $(pkg-config --cflags --libs net) -pthread -o cortex_demo
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"

static int failed(const char *what, net_status_t st)
{
    fprintf(stderr, "cortex_demo: %s: %s: %s\n", what, net_status_name(st), net_last_error_message());
    return 1;
}

#define TRY(call)                       \
    do {                                \
        net_status_t st_ = (call);      \
        if (st_ != NET_OK) {            \
            return failed(#call, st_);  \
        }                               \
    } while (0)

static void print_json(const char *label, const net_bytes_t *b)
{
    printf("  %-10s %.*s\n", label, (int)b->len, (const char *)b->ptr);
}

/* The watcher: prints the pending tasks after each change until the watch ends. */
static void *watcher(void *arg)
{
    net_model_watch_t *watch = (net_model_watch_t *)arg;
    for (;;) {
        net_bytes_t rows = {NULL, 0};
        uint64_t missed = 0;
        net_status_t st = net_model_watch_next(watch, NET_WAIT_FOREVER, &rows, &missed, NULL, NULL);
        if (st == NET_OK) {
            print_json("watch", &rows);
            net_bytes_free(&rows);
        } else if (st == NET_LAGGED) {
            printf("  watch      (missed %llu changes; the next rows include them)\n",
                   (unsigned long long)missed);
        } else {
            return NULL; /* NET_END: the watch was freed or the model closed */
        }
    }
}

int main(void)
{
    net_redex_t *redex = NULL;
    net_model_t *tasks = NULL, *restored = NULL;
    net_model_watch_t *watch = NULL;
    net_bytes_t json = {NULL, 0}, snapshot = {NULL, 0}, again = {NULL, 0};
    uint64_t seq = 0, count = 0, last_seq = 0;
    bool has_last = false, found = false;
    const char *titles[] = {"write the spec", "build it", "ship it"};
    const char pending[] = "{\"status\":\"pending\",\"order_by\":\"id_asc\"}";
    pthread_t thread;
    unsigned i;

    if (net_abi_version() != NET_ABI_VERSION) {
        fprintf(stderr, "cortex_demo: libnet ABI %u, header ABI %u\n", net_abi_version(), NET_ABI_VERSION);
        return 1;
    }
    TRY(net_redex_open(NULL, 0, &redex));
    TRY(net_model_open(redex, NET_MODEL_TASKS, 0x1234, NULL, 0, &tasks));
    TRY(net_model_watch(tasks, (const uint8_t *)pending, strlen(pending), &watch));
    if (pthread_create(&thread, NULL, watcher, watch) != 0) {
        return 1;
    }
    for (i = 0; i < 3; i++) {
        TRY(net_tasks_create(tasks, i + 1, (const uint8_t *)titles[i], strlen(titles[i]), &seq));
        TRY(net_model_wait_for_seq(tasks, seq, 5000, NULL, NULL)); /* read-your-writes */
    }
    TRY(net_tasks_complete(tasks, 1, &seq));
    TRY(net_model_wait_for_seq(tasks, seq, 5000, NULL, NULL));

    TRY(net_model_find_unique(tasks, 1, &json, &found));
    print_json("task 1", &json);
    net_bytes_free(&json);
    TRY(net_model_count_where(tasks, (const uint8_t *)pending, strlen(pending), &count));
    printf("  pending    %llu\n", (unsigned long long)count);
    TRY(net_model_progress(tasks, &json));
    print_json("progress", &json);
    net_bytes_free(&json);

    TRY(net_model_snapshot(tasks, &snapshot, &last_seq, &has_last));
    printf("  snapshot   %zu bytes through seq %llu\n", snapshot.len, (unsigned long long)last_seq);
    TRY(net_model_find_many(tasks, NULL, 0, &json));

    TRY(net_model_watch_free(watch)); /* wakes the watcher: its next returns NET_END */
    pthread_join(thread, NULL);
    TRY(net_model_close(tasks)); /* reports a failed final sync */
    TRY(net_model_free(tasks));  /* NET_OK, or NET_ERR_BUSY if calls were stuck on it */
    TRY(net_redex_free(redex));

    /* Restore into a fresh manager: the same rows. */
    TRY(net_redex_open(NULL, 0, &redex));
    TRY(net_model_restore(redex, NET_MODEL_TASKS, 0x1234, NULL, 0, snapshot.ptr, snapshot.len, last_seq, has_last, &restored));
    TRY(net_model_find_many(restored, NULL, 0, &again));
    if (again.len != json.len || memcmp(again.ptr, json.ptr, json.len) != 0) {
        fprintf(stderr, "cortex_demo: restored state differs\n");
        return 1;
    }
    printf("  restored   same %zu-byte state from the snapshot\n", again.len);
    net_bytes_free(&again);
    net_bytes_free(&json);
    net_bytes_free(&snapshot);
    TRY(net_model_free(restored));
    TRY(net_redex_free(redex));
    printf("cortex_demo: ok\n");
    return 0;
}
