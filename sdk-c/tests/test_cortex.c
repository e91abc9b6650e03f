/*
 * CortEX through the C ABI: the tasks and memories models, wait_for_seq,
 * queries with filters/order/paging, u64 ids above 2^53, watches (current
 * rows first, then changes; lag), snapshot_and_watch, snapshot -> restore,
 * persistence across reopen, a halted fold, and error statuses naming keys.
 * Both kinds go through the one model-generic API (net_model_*, opened with
 * NET_MODEL_TASKS or NET_MODEL_MEMORIES); only a kind's own writes are named
 * after it, and refuse a model of the other kind.
 */
#define _XOPEN_SOURCE 700

#include "cortex_util.h"

#define BIG_ID 9223372036854788153ULL /* 2^63 + 12345: above 2^53 */
#define ORIGIN 0x123456789abcdef0ULL

static const net_bytes_t EMPTY = {NULL, 0};

static void test_tasks_writes_and_queries(void)
{
    net_redex_t *r = redex_new(NULL);
    net_model_t *t = NULL;
    net_bytes_t json = EMPTY;
    uint64_t seq, count = 0;
    bool found = false, exists = false;
    int i;
    if (r == NULL || !CHECK_OK(net_model_open(r, NET_MODEL_TASKS, ORIGIN, NULL, 0, &t))) {
        CHECK_OK(net_redex_free(r));
        return;
    }
    CHECK_U64(task_create(t, 1, "write spec"), 0);
    task_create(t, BIG_ID, "big id");
    for (i = 2; i <= 10; i++) {
        task_create(t, (uint64_t)i, i % 3 == 0 ? "task urgent" : "task");
    }
    CHECK_OK(net_tasks_rename(t, 1, (const uint8_t *)"write the spec", 14, &seq));
    CHECK_OK(net_tasks_complete(t, 2, &seq));
    CHECK_OK(net_model_wait_for_seq(t, seq, 5000, NULL, NULL));

    CHECK_OK(net_model_find_unique(t, 1, &json, &found));
    CHECK(found);
    CHECK(json_has(&json, "\"title\":\"write the spec\""));
    CHECK(json_has(&json, "\"status\":\"pending\""));
    net_bytes_free(&json);
    CHECK_OK(net_model_find_unique(t, BIG_ID, &json, &found));
    CHECK(found && json_has(&json, "\"id\":9223372036854788153"));
    net_bytes_free(&json);
    CHECK_OK(net_model_find_unique(t, 99, &json, &found));
    CHECK(!found);
    net_bytes_free(&json);

    CHECK_OK(net_model_find_many(t, FILTER("{\"status\":\"completed\"}"), &json));
    CHECK(json_count(&json, "\"id\":") == 1 && json_has(&json, "\"id\":2,"));
    net_bytes_free(&json);
    CHECK_OK(net_model_find_many(t, FILTER("{\"order_by\":\"id_desc\",\"offset\":1,\"limit\":2}"), &json));
    CHECK(json_count(&json, "\"id\":") == 2);
    CHECK(json_has(&json, "[{\"id\":10,")); /* BIG_ID skipped by offset 1 */
    net_bytes_free(&json);
    CHECK_OK(net_model_count_where(t, FILTER("{\"title_contains\":\"urgent\"}"), &count));
    CHECK_U64(count, 3);
    CHECK_OK(net_model_count_where(t, NULL, 0, &count));
    CHECK_U64(count, 11);
    CHECK_OK(net_model_exists_where(t, FILTER("{\"ids\":[2],\"status\":\"completed\"}"), &exists));
    CHECK(exists);
    CHECK_OK(net_model_delete(t, 1, &seq));
    CHECK_OK(net_model_wait_for_seq(t, seq, NET_WAIT_FOREVER, NULL, NULL));
    CHECK_OK(net_model_progress(t, &json));
    CHECK(json_has(&json, "\"running\":true") && json_has(&json, "\"errors\":0"));
    CHECK(json_has(&json, "\"app_seq\":14"));
    net_bytes_free(&json);

    /* Invalid filters name the key; outputs untouched. */
    count = 77;
    CHECK_STATUS(net_model_count_where(t, FILTER("{\"colour\":1}"), &count),
                 NET_ERR_CORTEX_INVALID_QUERY);
    CHECK(strstr(net_last_error_message(), "colour") != NULL);
    CHECK_U64(count, 77);
    CHECK_STATUS(net_model_find_many(t, FILTER("{not json"), &json), NET_ERR_CORTEX_INVALID_QUERY);
    CHECK(json.ptr == NULL);
    CHECK_OK(net_model_close(t));
    CHECK_OK(net_model_free(t));
    CHECK_OK(net_redex_free(r));
}

static void test_memories_writes_and_queries(void)
{
    net_redex_t *r = redex_new(NULL);
    net_model_t *m = NULL;
    net_bytes_t json = EMPTY;
    uint64_t seq, count = 0;
    net_slice_t tags[2];
    if (r == NULL || !CHECK_OK(net_model_open(r, NET_MODEL_MEMORIES, ORIGIN, NULL, 0, &m))) {
        CHECK_OK(net_redex_free(r));
        return;
    }
    memory_store(m, 1, "the sky is blue", "fact", "alice");
    memory_store(m, 2, "meet at noon", "todo", "bob");
    memory_store(m, BIG_ID, "big", NULL, "");
    tags[0].ptr = (const uint8_t *)"todo";
    tags[0].len = 4;
    tags[1].ptr = (const uint8_t *)"urgent";
    tags[1].len = 6;
    CHECK_OK(net_memories_retag(m, 2, tags, 2, &seq));
    CHECK_OK(net_memories_pin(m, 1, &seq));
    CHECK_OK(net_memories_unpin(m, 1, &seq));
    CHECK_OK(net_memories_pin(m, 2, &seq));
    CHECK_OK(net_model_wait_for_seq(m, seq, 5000, NULL, NULL));
    CHECK_OK(net_model_find_many(m, FILTER("{\"tags_all\":[\"todo\",\"urgent\"]}"), &json));
    CHECK(json_count(&json, "\"id\":") == 1 && json_has(&json, "\"pinned\":true"));
    CHECK(json_has(&json, "\"tags\":[\"todo\",\"urgent\"]"));
    net_bytes_free(&json);
    CHECK_OK(net_model_count_where(m, FILTER("{\"tags_any\":[\"fact\",\"urgent\"]}"), &count));
    CHECK_U64(count, 2);
    CHECK_OK(net_model_count_where(m, FILTER("{\"source\":\"bob\",\"content_contains\":\"noon\"}"), &count));
    CHECK_U64(count, 1);
    CHECK_OK(net_model_find_many(m, FILTER("{\"order_by\":\"id_desc\",\"limit\":1}"), &json));
    CHECK(json_has(&json, "\"id\":9223372036854788153"));
    net_bytes_free(&json);
    CHECK_OK(net_model_delete(m, 2, &seq));
    CHECK_OK(net_model_wait_for_seq(m, seq, 5000, NULL, NULL));
    CHECK_OK(net_model_count_where(m, NULL, 0, &count));
    CHECK_U64(count, 2);
    CHECK_OK(net_model_free(m));
    CHECK_OK(net_redex_free(r));
}

static void test_watch_and_snapshot_and_watch(void)
{
    net_redex_t *r = redex_new(NULL);
    net_model_t *t = NULL;
    net_model_watch_t *w = NULL, *w2 = NULL;
    net_bytes_t rows = EMPTY, current = EMPTY;
    uint64_t missed = 0, seq;
    int i, lagged = 0, full = 0;
    if (r == NULL || !CHECK_OK(net_model_open(r, NET_MODEL_TASKS, ORIGIN, FILTER("{\"changes_capacity\":2}"), &t))) {
        CHECK_OK(net_redex_free(r));
        return;
    }
    CHECK_OK(net_model_wait_for_seq(t, task_create(t, 1, "a"), 5000, NULL, NULL));
    CHECK_OK(net_model_watch(t, FILTER("{\"status\":\"pending\"}"), &w));
    CHECK_OK(net_model_watch_next(w, 5000, &rows, &missed, NULL, NULL));
    CHECK(json_count(&rows, "\"id\":") == 1);
    net_bytes_free(&rows);
    task_create(t, 2, "b");
    CHECK_OK(net_model_watch_next(w, 5000, &rows, &missed, NULL, NULL));
    CHECK(json_count(&rows, "\"id\":") == 2);
    net_bytes_free(&rows);
    CHECK_STATUS(net_model_watch_next(w, 20, &rows, &missed, NULL, NULL), NET_TIMEOUT);
    CHECK(rows.ptr == NULL);

    /* A slow reader: told it lagged, then gets everything. */
    for (i = 3; i <= 40; i++) {
        seq = task_create(t, (uint64_t)i, "x");
    }
    CHECK_OK(net_model_wait_for_seq(t, seq, 5000, NULL, NULL));
    for (i = 0; i < 60 && !full; i++) {
        int st = net_model_watch_next(w, 1000, &rows, &missed, NULL, NULL);
        if (st == NET_LAGGED) {
            lagged = 1;
            CHECK(missed > 0);
        } else if (CHECK_OK(st)) {
            full = json_count(&rows, "\"id\":") == 40;
            net_bytes_free(&rows);
        }
    }
    CHECK(lagged && full);

    /* snapshot_and_watch: rows now, only later changes on the watch. */
    CHECK_OK(net_model_snapshot_and_watch(t, NULL, 0, &current, &w2));
    CHECK(json_count(&current, "\"id\":") == 40);
    net_bytes_free(&current);
    CHECK_STATUS(net_model_watch_next(w2, 20, &rows, &missed, NULL, NULL), NET_TIMEOUT);
    CHECK_OK(net_tasks_complete(t, 1, &seq));
    CHECK_OK(net_model_watch_next(w2, 5000, &rows, &missed, NULL, NULL));
    CHECK(json_has(&rows, "\"status\":\"completed\""));
    net_bytes_free(&rows);

    /* Closing the model ends its watches. */
    CHECK_OK(net_model_close(t));
    CHECK_STATUS(net_model_watch_next(w2, 5000, &rows, &missed, NULL, NULL), NET_END);
    CHECK_OK(net_model_watch_free(w));
    CHECK_OK(net_model_watch_free(w2));
    CHECK_OK(net_model_free(t));
    CHECK_OK(net_redex_free(r));
}

static void test_snapshot_restore_and_persistence(void)
{
    char *dir = temp_dir_new("cortex");
    net_redex_t *r = redex_new(dir);
    net_model_t *t = NULL, *again = NULL, *restored = NULL;
    net_bytes_t snap = EMPTY, before = EMPTY, after = EMPTY, progress = EMPTY;
    uint64_t last_seq = 0, seq = 0;
    bool has_last = false;
    const char *cfg = "{\"persistent\":true,\"fsync\":{\"every_n\":1}}";
    int i;
    if (r == NULL || !CHECK_OK(net_model_open(r, NET_MODEL_TASKS, ORIGIN, FILTER(cfg), &t))) {
        CHECK_OK(net_redex_free(r));
        rm_rf(dir);
        return;
    }
    for (i = 0; i < 5; i++) {
        seq = task_create(t, (uint64_t)i, "t");
    }
    CHECK_OK(net_tasks_complete(t, 3, &seq));
    CHECK_OK(net_model_wait_for_seq(t, seq, 5000, NULL, NULL));
    CHECK_OK(net_model_find_many(t, NULL, 0, &before));
    CHECK_OK(net_model_snapshot(t, &snap, &last_seq, &has_last));
    CHECK(has_last);
    CHECK_U64(last_seq, seq);
    CHECK_OK(net_model_close(t));
    CHECK_OK(net_model_free(t));

    /* Reopened from disk: same state, same app seq. */
    if (CHECK_OK(net_model_open(r, NET_MODEL_TASKS, ORIGIN, FILTER(cfg), &again))) {
        CHECK_OK(net_model_wait_for_seq(again, seq, 5000, NULL, NULL));
        CHECK_OK(net_model_find_many(again, NULL, 0, &after));
        CHECK_MEM(after.ptr, after.len, before.ptr, before.len);
        net_bytes_free(&after);
        CHECK_OK(net_model_progress(again, &progress));
        CHECK(json_has(&progress, "\"app_seq\":6"));
        net_bytes_free(&progress);
        CHECK_OK(net_model_free(again));
    }
    CHECK_OK(net_redex_free(r));

    /* Restored from the snapshot into a memory-only manager. */
    r = redex_new(NULL);
    if (r != NULL && CHECK_OK(net_model_restore(r, NET_MODEL_TASKS, ORIGIN, NULL, 0, snap.ptr, snap.len, last_seq,
                                                has_last, &restored))) {
        CHECK_OK(net_model_find_many(restored, NULL, 0, &after));
        CHECK_MEM(after.ptr, after.len, before.ptr, before.len);
        net_bytes_free(&after);
        CHECK_OK(net_model_free(restored));
    }
    restored = NULL;
    CHECK_STATUS(net_model_restore(r, NET_MODEL_TASKS, ORIGIN, NULL, 0, (const uint8_t *)"\xff\xff\xff", 3, 0, true,
                                   &restored),
                 NET_ERR_CORTEX_SNAPSHOT);
    CHECK(restored == NULL);
    net_bytes_free(&snap);
    net_bytes_free(&before);
    CHECK_OK(net_redex_free(r));
    rm_rf(dir);
}

static void test_halted_fold_and_bad_config(void)
{
    net_redex_t *r = redex_new(NULL);
    net_model_t *t = NULL, *bad = NULL;
    net_redex_file_t *log;
    net_bytes_t progress = EMPTY;
    uint64_t seq = 0, garbage;
    double start;
    int i;
    if (r == NULL || !CHECK_OK(net_model_open(r, NET_MODEL_TASKS, ORIGIN, FILTER("{\"policy\":\"stop\"}"), &t))) {
        CHECK_OK(net_redex_free(r));
        return;
    }
    CHECK_OK(net_model_wait_for_seq(t, task_create(t, 1, "ok"), 5000, NULL, NULL));
    /* The same channel through a file handle (shared with the model: it stays
     * open until the end, since closing it would close the model's file). */
    log = redex_open(r, "cortex/tasks", NULL);
    garbage = redex_append(log, "garbage, not an EventMeta record");
    start = now_s();
    CHECK_STATUS(net_model_wait_for_seq(t, garbage + 1, 10000, NULL, NULL), NET_ERR_CORTEX_HALTED);
    CHECK(now_s() - start < 5.0);
    for (i = 0; i < 500; i++) {
        CHECK_OK(net_model_progress(t, &progress));
        if (json_has(&progress, "\"running\":false")) {
            break;
        }
        net_bytes_free(&progress);
        sleep_ms(10);
    }
    CHECK(json_has(&progress, "\"running\":false") && json_has(&progress, "\"errors\":1"));
    net_bytes_free(&progress);
    CHECK_STATUS(net_tasks_create(t, 2, (const uint8_t *)"x", 1, &seq), NET_ERR_CORTEX_HALTED);

    CHECK_STATUS(net_model_open(r, NET_MODEL_TASKS, ORIGIN, FILTER("{\"policy\":\"sometimes\"}"), &bad),
                 NET_ERR_CORTEX_INVALID_CONFIG);
    CHECK(strstr(net_last_error_message(), "policy") != NULL);
    CHECK_STATUS(net_model_open(r, NET_MODEL_TASKS, ORIGIN, FILTER("{\"start\":\"middle\"}"), &bad),
                 NET_ERR_CORTEX_INVALID_CONFIG);
    CHECK(bad == NULL);
    CHECK_OK(net_redex_file_free(log));
    CHECK_OK(net_model_free(t));
    CHECK_OK(net_redex_free(r));
}

static void test_model_kinds(void)
{
    net_redex_t *r = redex_new(NULL);
    net_model_t *t = NULL, *m = NULL, *none = NULL, *restored = NULL;
    net_bytes_t json = EMPTY, snap = EMPTY;
    net_slice_t tag;
    uint64_t seq = 4242, last_seq = 0, count = 0;
    uint32_t kind = 0;
    bool has_last = false;
    if (r == NULL || !CHECK_OK(net_model_open(r, NET_MODEL_TASKS, ORIGIN, NULL, 0, &t)) ||
        !CHECK_OK(net_model_open(r, NET_MODEL_MEMORIES, ORIGIN, NULL, 0, &m))) {
        goto out;
    }
    CHECK_OK(net_model_kind(t, &kind));
    CHECK_U64(kind, NET_MODEL_TASKS);
    CHECK_OK(net_model_kind(m, &kind));
    CHECK_U64(kind, NET_MODEL_MEMORIES);

    /* An unknown kind is refused and names the argument. */
    CHECK_STATUS(net_model_open(r, 3, ORIGIN, NULL, 0, &none), NET_ERR_INVALID_ARGUMENT);
    CHECK(strstr(net_last_error_message(), "kind") != NULL);
    CHECK(none == NULL);

    /* A kind's writes refuse a model of the other kind; nothing is written. */
    CHECK_STATUS(net_tasks_create(m, 1, (const uint8_t *)"x", 1, &seq), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_tasks_rename(m, 1, (const uint8_t *)"x", 1, &seq), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_tasks_complete(m, 1, &seq), NET_ERR_INVALID_ARGUMENT);
    tag.ptr = (const uint8_t *)"t";
    tag.len = 1;
    CHECK_STATUS(net_memories_store(t, 1, (const uint8_t *)"x", 1, &tag, 1, NULL, 0, &seq),
                 NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_memories_retag(t, 1, &tag, 1, &seq), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_memories_pin(t, 1, &seq), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_memories_unpin(t, 1, &seq), NET_ERR_INVALID_ARGUMENT);
    CHECK_U64(seq, 4242);
    CHECK_OK(net_model_count_where(m, NULL, 0, &count));
    CHECK_U64(count, 0);

    /* A filter key of the other kind is a bad key. */
    CHECK_STATUS(net_model_count_where(t, FILTER("{\"tags_any\":[\"a\"]}"), &count),
                 NET_ERR_CORTEX_INVALID_QUERY);
    CHECK(strstr(net_last_error_message(), "tags_any") != NULL);
    CHECK_STATUS(net_model_count_where(m, FILTER("{\"status\":\"pending\"}"), &count),
                 NET_ERR_CORTEX_INVALID_QUERY);

    /* A snapshot restores into a model of the same kind. */
    CHECK_OK(net_model_wait_for_seq(m, memory_store(m, 7, "kept", "k", "src"), 5000, NULL, NULL));
    CHECK_OK(net_model_snapshot(m, &snap, &last_seq, &has_last));
    CHECK(has_last);
    if (CHECK_OK(net_model_restore(r, NET_MODEL_MEMORIES, ORIGIN, FILTER("{\"start\":\"live\"}"),
                                   snap.ptr, snap.len, last_seq, has_last, &restored))) {
        CHECK_OK(net_model_find_unique(restored, 7, &json, &has_last));
        CHECK(has_last && json_has(&json, "\"content\":\"kept\""));
        net_bytes_free(&json);
        CHECK_OK(net_model_kind(restored, &kind));
        CHECK_U64(kind, NET_MODEL_MEMORIES);
    }

    /* Close: a wait short of the fold returns HALTED at once, even one with
     * no timeout; queries answer from the last state; the handle needs its free. */
    CHECK_OK(net_model_close(t));
    CHECK_STATUS(net_model_wait_for_seq(t, 1000, NET_WAIT_FOREVER, NULL, NULL),
                 NET_ERR_CORTEX_HALTED);
    CHECK_OK(net_model_count_where(t, NULL, 0, &count));
out:
    net_bytes_free(&snap);
    CHECK_OK(net_model_free(restored));
    CHECK_OK(net_model_free(t));
    CHECK_OK(net_model_free(m));
    CHECK_OK(net_redex_free(r));
}

int main(void)
{
    RUN_TEST(test_tasks_writes_and_queries);
    RUN_TEST(test_memories_writes_and_queries);
    RUN_TEST(test_watch_and_snapshot_and_watch);
    RUN_TEST(test_snapshot_restore_and_persistence);
    RUN_TEST(test_halted_fold_and_bad_config);
    RUN_TEST(test_model_kinds);
    return check_finish("test_cortex");
}
