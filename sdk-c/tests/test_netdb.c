/*
 * NetDB through the C ABI: open with both/one/no model, the models lent as
 * net_model_t (every net_model_* / net_tasks_* / net_memories_* call works
 * on them), a bundle restored into a fresh redex, bundles naming a model not
 * enabled and corrupt bundles refused, idempotent close, and the three
 * handle races: a call after free, concurrent frees, a free waiting for an
 * in-flight snapshot.
 */
#define _XOPEN_SOURCE 700

#include <pthread.h>

#include "cortex_util.h"

#define ORIGIN 7
#define BOTH "{\"with_tasks\":true,\"with_memories\":true}"

static const net_bytes_t EMPTY = {NULL, 0};

static net_netdb_t *db_open(net_redex_t *r, const char *config)
{
    net_netdb_t *db = NULL;
    if (!CHECK_OK(net_netdb_open(r, ORIGIN, FILTER(config), &db))) {
        return NULL;
    }
    return db;
}

static void test_models_and_bundles(void)
{
    net_redex_t *r = redex_new(NULL), *fresh = redex_new(NULL);
    net_netdb_t *db = db_open(r, BOTH), *restored = NULL;
    net_model_t *t = NULL, *m = NULL, *again = NULL;
    net_bytes_t bundle = EMPTY;
    uint64_t count = 0, seq;
    if (db == NULL) {
        goto out;
    }
    CHECK_OK(net_netdb_model(db, NET_MODEL_TASKS, &t));
    CHECK_OK(net_netdb_model(db, NET_MODEL_MEMORIES, &m));
    CHECK_OK(net_netdb_model(db, NET_MODEL_TASKS, &again));
    CHECK(again == t);
    task_create(t, 1, "write the spec");
    memory_store(m, 2, "note", NULL, "src");
    CHECK_OK(net_netdb_snapshot(db, &bundle));
    CHECK(bundle.len > 4);
    CHECK_OK(net_netdb_close(db));
    CHECK_OK(net_netdb_close(db));
    CHECK_OK(net_netdb_free(db));
    db = NULL;
    /* The lent models went with the NetDB. */
    CHECK_STATUS(net_model_count_where(t, NULL, 0, &count), NET_ERR_SHUTTING_DOWN);

    CHECK_OK(net_netdb_open_from_bundle(fresh, ORIGIN, FILTER(BOTH), bundle.ptr, bundle.len,
                                        &restored));
    CHECK_OK(net_netdb_model(restored, NET_MODEL_TASKS, &t));
    CHECK_OK(net_model_count_where(t, NULL, 0, &count));
    CHECK_U64(count, 1);
    seq = task_create(t, 3, "after");
    CHECK_U64(seq, 0);
    CHECK_OK(net_model_wait_for_seq(t, seq, 5000, NULL, NULL));
    CHECK_OK(net_model_count_where(t, NULL, 0, &count));
    CHECK_U64(count, 2);
out:
    net_bytes_free(&bundle);
    CHECK_OK(net_netdb_free(restored));
    CHECK_OK(net_netdb_free(db));
    CHECK_OK(net_redex_free(fresh));
    CHECK_OK(net_redex_free(r));
}

static void test_refusals(void)
{
    net_redex_t *r = redex_new(NULL);
    net_netdb_t *db = db_open(r, "{\"with_memories\":true}"), *other = NULL;
    net_model_t *model = NULL;
    net_bytes_t bundle = EMPTY;
    static const uint8_t garbage[] = {1, 9, 1};
    if (db == NULL) {
        CHECK_OK(net_redex_free(r));
        return;
    }
    CHECK_STATUS(net_netdb_model(db, NET_MODEL_TASKS, &model), NET_ERR_INVALID_ARGUMENT);
    CHECK(model == NULL);
    CHECK(strstr(net_last_error_message(), "without the tasks model") != NULL);
    CHECK_STATUS(net_netdb_model(db, 42, &model), NET_ERR_INVALID_ARGUMENT);
    CHECK_OK(net_netdb_model(db, NET_MODEL_MEMORIES, &model));
    memory_store(model, 1, "x", NULL, "");
    CHECK_OK(net_netdb_snapshot(db, &bundle));
    /* A bundle with a model the new NetDB does not enable. */
    CHECK_STATUS(net_netdb_open_from_bundle(r, 1, FILTER("{\"with_tasks\":true}"), bundle.ptr,
                                            bundle.len, &other),
                 NET_ERR_CORTEX_SNAPSHOT);
    CHECK(other == NULL);
    CHECK_STATUS(net_netdb_open_from_bundle(r, 1, FILTER(BOTH), garbage, sizeof garbage, &other),
                 NET_ERR_CORTEX_SNAPSHOT);
    CHECK_STATUS(net_netdb_open(r, 1, FILTER("{\"with_task\":true}"), &other),
                 NET_ERR_CORTEX_INVALID_CONFIG);
    CHECK(strstr(net_last_error_message(), "with_task") != NULL);
    CHECK_STATUS(net_netdb_open(r, 1, FILTER("{\"with_tasks\":true,\"persistent\":true}"), &other),
                 NET_ERR_REDEX_NO_PERSISTENT_DIR);
    CHECK_OK(net_netdb_free(NULL));
    net_bytes_free(&bundle);
    CHECK_OK(net_netdb_free(db));
    CHECK_OK(net_redex_free(r));
}

struct racer {
    net_netdb_t *db;
    int status;
    int refused;
};

static void *snapshot_loop(void *arg)
{
    struct racer *racer = arg;
    int i;
    for (i = 0; i < 200; i++) {
        net_bytes_t b = EMPTY;
        int status = net_netdb_snapshot(racer->db, &b);
        net_bytes_free(&b);
        if (status != NET_OK) {
            racer->status = status;
            racer->refused = 1;
            break;
        }
    }
    return NULL;
}

static void *free_it(void *arg)
{
    struct racer *racer = arg;
    racer->status = net_netdb_free(racer->db);
    return NULL;
}

static void test_race_op_after_free(void)
{
    net_redex_t *r = redex_new(NULL);
    int round;
    for (round = 0; round < 20; round++) {
        struct racer racer = {db_open(r, BOTH), NET_OK, 0};
        pthread_t thread;
        net_bytes_t b = EMPTY;
        net_model_t *model = NULL;
        if (racer.db == NULL) {
            break;
        }
        pthread_create(&thread, NULL, snapshot_loop, &racer);
        CHECK_OK(net_netdb_free(racer.db));
        pthread_join(thread, NULL);
        if (racer.refused) {
            CHECK_STATUS(racer.status, NET_ERR_SHUTTING_DOWN);
        }
        CHECK_STATUS(net_netdb_snapshot(racer.db, &b), NET_ERR_SHUTTING_DOWN);
        CHECK_STATUS(net_netdb_model(racer.db, NET_MODEL_TASKS, &model), NET_ERR_SHUTTING_DOWN);
        CHECK_STATUS(net_netdb_close(racer.db), NET_ERR_SHUTTING_DOWN);
    }
    CHECK_OK(net_redex_free(r));
}

static void test_race_concurrent_frees(void)
{
    net_redex_t *r = redex_new(NULL);
    int round, i;
    for (round = 0; round < 20; round++) {
        net_netdb_t *db = db_open(r, BOTH);
        struct racer racers[4];
        pthread_t threads[4];
        for (i = 0; i < 4; i++) {
            racers[i].db = db;
            racers[i].status = -1;
            pthread_create(&threads[i], NULL, free_it, &racers[i]);
        }
        for (i = 0; i < 4; i++) {
            pthread_join(threads[i], NULL);
            CHECK_OK(racers[i].status);
        }
    }
    CHECK_OK(net_redex_free(r));
}

static void *one_snapshot(void *arg)
{
    struct racer *racer = arg;
    net_bytes_t b = EMPTY;
    racer->status = net_netdb_snapshot(racer->db, &b);
    racer->refused = (int)(b.len > 1000000);
    net_bytes_free(&b);
    return NULL;
}

static void test_race_free_waits_for_in_flight_snapshot(void)
{
    /* A large state makes the snapshot long: a free racing it either
     * refused it (it had not begun) or waited for it to complete whole. */
    net_redex_t *r = redex_new(NULL);
    net_netdb_t *db = db_open(r, BOTH);
    net_model_t *t = NULL;
    static char title[4097];
    struct racer racer;
    pthread_t thread;
    uint64_t id;
    if (db == NULL || !CHECK_OK(net_netdb_model(db, NET_MODEL_TASKS, &t))) {
        CHECK_OK(net_redex_free(r));
        return;
    }
    memset(title, 't', 4096);
    for (id = 0; id < 2000; id++) {
        task_create(t, id, title);
    }
    racer.db = db;
    racer.status = -1;
    racer.refused = 0;
    pthread_create(&thread, NULL, one_snapshot, &racer);
    sched_yield();
    CHECK_OK(net_netdb_free(db));
    pthread_join(thread, NULL);
    if (racer.status == NET_OK) {
        CHECK(racer.refused); /* the whole bundle, not a cut-short one */
    } else {
        CHECK_STATUS(racer.status, NET_ERR_SHUTTING_DOWN);
    }
    CHECK_OK(net_redex_free(r));
}

int main(void)
{
    RUN_TEST(test_models_and_bundles);
    RUN_TEST(test_refusals);
    RUN_TEST(test_race_op_after_free);
    RUN_TEST(test_race_concurrent_frees);
    RUN_TEST(test_race_free_waits_for_in_flight_snapshot);
    return check_finish("test_netdb");
}
