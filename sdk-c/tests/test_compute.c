/*
 * Compute through the C ABI: a counter daemon written in C migrates between
 * nodes of a three-node mesh (encrypted UDP on 127.0.0.1) while a producer
 * keeps delivering; every event is applied exactly once. libnet never calls
 * into C: each runtime has a pull loop (a thread) that takes work items with
 * net_compute_next and answers them (process, snapshot, restore, create,
 * drop). Also: a work item nobody answers fails its delivery after the work
 * timeout and a late answer is refused; freeing the runtime wakes the pull
 * loop (NET_END) and calls after the free are refused. Groups: a replica
 * group of three C counters over three nodes (routing, scaling, a failed
 * node's member replaced) and a standby group promoted with nothing
 * applied twice; counts are awaited with net_compute_wait_processed.
 *
 * Run under AddressSanitizer + LeakSanitizer.
 */
#define _XOPEN_SOURCE 700

#include "mesh_util.h"

static const char CONFIG[] =
    "{\"psk_hex\":\"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a\","
    "\"heartbeat_interval_ms\":50,\"session_timeout_ms\":5000,\"hello_timeout_ms\":500}";
static const char RUNTIME[] =
    "{\"retry_interval_ms\":50,\"step_timeout_ms\":3000,\"source_timeout_ms\":6000,"
    "\"work_timeout_ms\":5000,\"output_capacity\":1000000}";
static const char KIND[] = "counter";
static const uint64_t PRODUCER = 0xfeed000000000001ULL;
#define MAX_OBJECTS 8

/* One counter object of the SDK (this program). */
struct counter {
    int used;
    uint64_t instance, count, last;
};

/* A runtime and the objects its pull loop serves. */
struct site {
    net_mesh_t *mesh;
    net_compute_t *rt;
    pthread_t loop;
    pthread_mutex_t lock;
    struct counter objects[MAX_OBJECTS];
    uint64_t next_instance;
    unsigned long handled;
    /* Groups: a replica sees every other sequence, so its counter only
     * refuses one it has passed (an event applied twice). */
    int gaps_allowed;
};

static struct counter *find(struct site *s, uint64_t instance)
{
    for (int i = 0; i < MAX_OBJECTS; i++) {
        if (s->objects[i].used && s->objects[i].instance == instance) {
            return &s->objects[i];
        }
    }
    return NULL;
}

/* A new counter object; its instance id. */
static uint64_t add_object(struct site *s)
{
    for (int i = 0; i < MAX_OBJECTS; i++) {
        if (!s->objects[i].used) {
            s->objects[i] = (struct counter){1, ++s->next_instance, 0, 0};
            return s->objects[i].instance;
        }
    }
    CHECK(!"room for another object");
    return 0;
}

static void put_u64(uint8_t *out, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t get_u64(const uint8_t *in)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | in[i];
    }
    return v;
}

static uint32_t get_u32(const uint8_t *in)
{
    return (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 | (uint32_t)in[3] << 24;
}

#define MAX_BATCH 256

/* A ProcessBatch item: the counter per event until one is refused (out of
 * order, or the payload "fail"), then one answer. Called with the lock. */
static net_status_t answer_batch(struct site *s, uint64_t id, struct counter *c, const net_bytes_t *payload)
{
    static uint8_t outputs[MAX_BATCH * 8];
    static uint32_t lengths[MAX_BATCH], per_event[MAX_BATCH];
    size_t applied = 0;
    const char *failure = NULL;
    for (size_t at = 0; at < payload->len;) {
        const uint8_t *rec = payload->ptr + at;
        uint64_t sequence = get_u64(rec + 8);
        uint32_t len = get_u32(rec + 16);
        at += NET_COMPUTE_BATCH_RECORD_HEADER + len;
        int refused = c == NULL || sequence <= c->last || (!s->gaps_allowed && sequence != c->last + 1) ||
                      (len == 4 && memcmp(rec + NET_COMPUTE_BATCH_RECORD_HEADER, "fail", 4) == 0);
        if (refused || applied == MAX_BATCH) {
            failure = refused ? "refused" : "batch too large for this test";
            break;
        }
        c->last = sequence;
        c->count++;
        put_u64(outputs + 8 * applied, c->count);
        lengths[applied] = 8;
        per_event[applied] = 1;
        applied++;
    }
    return net_compute_complete_batch(s->rt, id, applied, outputs, 8 * applied, lengths, applied, per_event,
                                      (const uint8_t *)failure, failure ? strlen(failure) : 0);
}

/* Answers one work item. */
static void answer(struct site *s, uint64_t id, uint32_t kind, uint64_t instance, uint64_t sequence,
                   const net_bytes_t *payload)
{
    net_status_t st = NET_OK;
    pthread_mutex_lock(&s->lock);
    struct counter *c = find(s, instance);
    switch (kind) {
    case NET_COMPUTE_WORK_PROCESS:
        if (c == NULL || sequence <= c->last || (!s->gaps_allowed && sequence != c->last + 1)) {
            static const char msg[] = "out of order";
            st = net_compute_fail(s->rt, id, (const uint8_t *)msg, strlen(msg));
        } else {
            uint8_t out[8];
            c->last = sequence;
            c->count++;
            put_u64(out, c->count);
            net_slice_t slice = {out, sizeof out};
            st = net_compute_complete_process(s->rt, id, &slice, 1);
        }
        break;
    case NET_COMPUTE_WORK_PROCESS_BATCH:
        st = answer_batch(s, id, c, payload);
        break;
    case NET_COMPUTE_WORK_SNAPSHOT: {
        uint8_t state[16];
        put_u64(state, c ? c->count : 0);
        put_u64(state + 8, c ? c->last : 0);
        st = net_compute_complete_snapshot(s->rt, id, state, sizeof state);
        break;
    }
    case NET_COMPUTE_WORK_RESTORE:
        if (c == NULL || payload->len != 16) {
            static const char msg[] = "bad state";
            st = net_compute_fail(s->rt, id, (const uint8_t *)msg, strlen(msg));
        } else {
            c->count = get_u64(payload->ptr);
            c->last = get_u64(payload->ptr + 8);
            st = net_compute_complete_restore(s->rt, id);
        }
        break;
    case NET_COMPUTE_WORK_CREATE:
        CHECK(payload->len == strlen(KIND) && memcmp(payload->ptr, KIND, payload->len) == 0);
        st = net_compute_complete_create(s->rt, id, add_object(s));
        break;
    case NET_COMPUTE_WORK_DROP:
        if (c != NULL) {
            c->used = 0;
        }
        break;
    default:
        CHECK(!"a known work kind");
    }
    pthread_mutex_unlock(&s->lock);
    CHECK(st == NET_OK || st == NET_ERR_SHUTTING_DOWN);
}

/* The pull loop: until the runtime is freed (NET_END). */
static void *pull_loop(void *arg)
{
    struct site *s = arg;
    for (;;) {
        uint64_t id = 0, instance = 0, daemon = 0, producer = 0, sequence = 0;
        uint32_t kind = 0;
        net_bytes_t payload = {NULL, 0};
        net_status_t st = net_compute_next(s->rt, NET_WAIT_FOREVER, &id, &kind, &instance, &daemon, &producer,
                                           &sequence, &payload, NULL, NULL);
        if (st == NET_END || st == NET_ERR_SHUTTING_DOWN) {
            return NULL;
        }
        if (!CHECK_OK(st)) {
            return NULL;
        }
        s->handled++;
        answer(s, id, kind, instance, sequence, &payload);
        net_bytes_free(&payload);
    }
}

static void site_open_with(struct site *s, const char *config, const char *runtime)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    CHECK_OK(net_mesh_new((const uint8_t *)config, strlen(config), &s->mesh));
    CHECK_OK(net_compute_new(s->mesh, (const uint8_t *)runtime, strlen(runtime), &s->rt));
    CHECK_OK(net_compute_register_kind(s->rt, (const uint8_t *)KIND, strlen(KIND), true));
    CHECK(pthread_create(&s->loop, NULL, pull_loop, s) == 0);
}

static void site_open(struct site *s, const char *runtime)
{
    site_open_with(s, CONFIG, runtime);
}

static void site_close(struct site *s)
{
    CHECK_OK(net_compute_free(s->rt));
    CHECK(pthread_join(s->loop, NULL) == 0);
    CHECK_OK(net_mesh_free(s->mesh));
    pthread_mutex_destroy(&s->lock);
}

static int connect_to(const net_mesh_t *a, const net_mesh_t *b)
{
    net_bytes_t key = {NULL, 0}, addr = {NULL, 0};
    int ok = CHECK_OK(net_mesh_public_key(b, &key)) && CHECK_OK(net_mesh_local_addr(b, &addr)) &&
             CHECK_OK(net_mesh_connect(a, addr.ptr, addr.len, key.ptr, key.len, mesh_node_id(b), NULL, NULL));
    net_bytes_free(&key);
    net_bytes_free(&addr);
    return ok;
}

/* The count of the (last) live object at `s`, and how many objects live there. */
static uint64_t live_count(struct site *s, int *objects)
{
    uint64_t count = 0;
    *objects = 0;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < MAX_OBJECTS; i++) {
        if (s->objects[i].used) {
            (*objects)++;
            count = s->objects[i].count;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return count;
}

struct producer {
    net_compute_t *rt;
    uint64_t origin;
    volatile int stop;
    volatile uint64_t sent;
    unsigned long outcomes[4];
    int failed;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    for (uint64_t seq = 1; !p->stop || seq <= 200; seq++) {
        uint8_t payload[8];
        uint32_t outcome = 99;
        put_u64(payload, seq);
        net_error_t err = {NET_OK, {NULL, 0}};
        net_status_t st = net_compute_deliver(p->rt, p->origin, PRODUCER, seq, payload, sizeof payload, &outcome, &err);
        if (st != NET_OK || outcome == NET_COMPUTE_DUPLICATE || outcome > 3) {
            fprintf(stderr, "event %llu: %s outcome %u: %.*s\n", (unsigned long long)seq, status_name(st), outcome,
                    (int)err.message.len, err.message.ptr ? (const char *)err.message.ptr : "");
            net_error_clear(&err);
            p->failed = 1;
            return NULL;
        }
        p->outcomes[outcome]++;
        p->sent = seq;
        /* The load under test, not a synchronisation: once the source has
         * cut over, a delivery is a forward and returns at once, and an
         * unpaced producer queued ~900 000 of them for the target before
         * the test could stop it (more than a sanitized C daemon works
         * through within WAIT_MS). */
        const struct timespec pace = {0, 20 * 1000};
        nanosleep(&pace, NULL);
    }
    return NULL;
}

static int json_phase_index(const net_bytes_t *json)
{
    static const char *const phases[] = {"snapshot", "transfer", "restore", "replay", "cutover", "complete"};
    char fragment[64];
    for (int i = 0; i < 6; i++) {
        snprintf(fragment, sizeof fragment, "\"phase\":\"%s\"", phases[i]);
        if (json_has(json, fragment)) {
            return i;
        }
    }
    return -1;
}

static void test_c_counter_migrates_under_load_exactly_once(void)
{
    static struct site sites[3];
    for (int i = 0; i < 3; i++) {
        site_open(&sites[i], RUNTIME);
    }
    CHECK(connect_to(sites[0].mesh, sites[1].mesh));
    CHECK(connect_to(sites[0].mesh, sites[2].mesh));
    CHECK(connect_to(sites[1].mesh, sites[2].mesh));

    uint8_t seed[32];
    memset(seed, 7, sizeof seed);
    uint64_t origin = 0, expected = 0;
    pthread_mutex_lock(&sites[0].lock);
    uint64_t instance = add_object(&sites[0]);
    pthread_mutex_unlock(&sites[0].lock);
    CHECK_OK(net_compute_spawn(sites[0].rt, (const uint8_t *)KIND, strlen(KIND), seed, 32, instance, &origin));
    CHECK_OK(net_compute_expect(sites[1].rt, (const uint8_t *)KIND, strlen(KIND), seed, 32, &expected));
    CHECK_U64(expected, origin);

    struct producer p = {sites[0].rt, origin, 0, 0, {0}, 0};
    pthread_t producer;
    CHECK(pthread_create(&producer, NULL, produce, &p) == 0);
    net_bytes_t stats = {NULL, 0};
    CHECK_OK(net_compute_wait_processed(sites[0].rt, origin, 50, WAIT_MS, &stats, NULL, NULL));
    net_bytes_free(&stats);
    CHECK(!p.failed);
    CHECK_OK(net_compute_start_migration(sites[2].rt, origin, mesh_node_id(sites[0].mesh),
                                         mesh_node_id(sites[1].mesh)));
    int last_phase = -1, in_order = 1;
    net_bytes_t done = {NULL, 0};
    for (;;) {
        net_bytes_t status = {NULL, 0};
        if (CHECK_OK(net_compute_migration_status(sites[2].rt, origin, &status))) {
            int phase = json_phase_index(&status);
            in_order &= phase >= last_phase;
            last_phase = phase;
        }
        net_bytes_free(&status);
        net_status_t st = net_compute_wait_migration(sites[2].rt, origin, 5, &done, NULL, NULL);
        if (st != NET_TIMEOUT) {
            CHECK_OK(st);
            break;
        }
    }
    CHECK(in_order);
    CHECK(json_has(&done, "\"state\":\"completed\""));
    net_bytes_free(&done);
    p.stop = 1;
    CHECK(pthread_join(producer, NULL) == 0);
    CHECK(!p.failed);
    CHECK(p.outcomes[NET_COMPUTE_FORWARDED] > 0);

    /* Every event applied once, on the target; the source's object dropped. */
    /* B applies what A did not: the events buffered during the move and
     * those forwarded after it. */
    int objects = 0;
    CHECK_OK(net_compute_wait_processed(sites[1].rt, origin, p.sent - p.outcomes[NET_COMPUTE_PROCESSED], WAIT_MS,
                                        &stats, NULL, NULL));
    net_bytes_free(&stats);
    CHECK_U64(live_count(&sites[1], &objects), p.sent);
    CHECK(objects == 1);
    const struct timespec pause = {0, 5 * 1000 * 1000};
    int64_t deadline = now_ms() + WAIT_MS;
    while ((live_count(&sites[0], &objects), objects) != 0 && now_ms() < deadline) {
        nanosleep(&pause, NULL);
    }
    CHECK(objects == 0);
    CHECK_STATUS(net_compute_stats(sites[0].rt, origin, &stats), NET_ERR_COMPUTE_NOT_FOUND);
    CHECK_OK(net_compute_stats(sites[1].rt, origin, &stats));
    CHECK(json_has(&stats, "\"errors\":0"));
    net_bytes_free(&stats);
    CHECK(sites[2].handled == 0); /* the orchestrator runs no daemon */

    for (int i = 0; i < 3; i++) {
        site_close(&sites[i]);
    }
}

static void deliver_one(struct site *s, uint64_t origin, uint64_t seq)
{
    uint8_t payload[8];
    uint32_t outcome = 99;
    put_u64(payload, seq);
    CHECK_OK(net_compute_deliver(s->rt, origin, PRODUCER, seq, payload, sizeof payload, &outcome, NULL));
    CHECK(outcome == NET_COMPUTE_PROCESSED);
}

static void test_identity_travels_to_a_node_without_the_seed(void)
{
    static struct site sites[2];
    for (int i = 0; i < 2; i++) {
        site_open(&sites[i], RUNTIME);
    }
    CHECK(connect_to(sites[0].mesh, sites[1].mesh));
    uint64_t a = mesh_node_id(sites[0].mesh), b = mesh_node_id(sites[1].mesh);
    uint8_t seed[32];
    memset(seed, 9, sizeof seed);
    uint64_t origin = 0;
    pthread_mutex_lock(&sites[0].lock);
    uint64_t instance = add_object(&sites[0]);
    pthread_mutex_unlock(&sites[0].lock);
    CHECK_OK(net_compute_spawn(sites[0].rt, (const uint8_t *)KIND, strlen(KIND), seed, 32, instance, &origin));
    for (uint64_t seq = 1; seq <= 3; seq++) {
        deliver_one(&sites[0], origin, seq);
    }
    CHECK_OK(net_compute_expect_origin(sites[1].rt, (const uint8_t *)KIND, strlen(KIND), origin));
    CHECK_STATUS(net_compute_expect_origin(sites[1].rt, (const uint8_t *)KIND, strlen(KIND), origin),
                 NET_ERR_COMPUTE_ALREADY_REGISTERED);

    /* Bad options; a node whose key is not known here: nothing starts. */
    static const char BAD[] = "{\"transport_identity\": 1}";
    static const char UNKNOWN[] = "{\"sealed\": true}";
    CHECK_STATUS(net_compute_start_migration_opts(sites[0].rt, origin, a, b, (const uint8_t *)BAD, strlen(BAD)),
                 NET_ERR_COMPUTE_CONFIG);
    CHECK_STATUS(
        net_compute_start_migration_opts(sites[0].rt, origin, a, b, (const uint8_t *)UNKNOWN, strlen(UNKNOWN)),
        NET_ERR_COMPUTE_CONFIG);
    CHECK_STATUS(net_compute_start_migration(sites[0].rt, origin, a, 0x1234), NET_ERR_COMPUTE_IDENTITY_TRANSPORT);

    /* Without its identity B cannot run the daemon: the move fails, it stays. */
    static const char UNSEALED[] = "{\"transport_identity\": false}";
    CHECK_OK(net_compute_start_migration_opts(sites[0].rt, origin, a, b, (const uint8_t *)UNSEALED, strlen(UNSEALED)));
    net_bytes_t done = {NULL, 0};
    CHECK_OK(net_compute_wait_migration(sites[0].rt, origin, WAIT_MS, &done, NULL, NULL));
    CHECK(json_has(&done, "\"state\":\"failed\""));
    CHECK(json_has(&done, "identity-transport-failed"));
    net_bytes_free(&done);
    deliver_one(&sites[0], origin, 4);

    /* Sealed (the default, also with empty options), it moves with its state. */
    CHECK_OK(net_compute_start_migration_opts(sites[0].rt, origin, a, b, NULL, 0));
    CHECK_OK(net_compute_wait_migration(sites[0].rt, origin, WAIT_MS, &done, NULL, NULL));
    CHECK(json_has(&done, "\"state\":\"completed\""));
    net_bytes_free(&done);
    int objects = 0;
    CHECK_U64(live_count(&sites[1], &objects), 4);
    CHECK(objects == 1);
    deliver_one(&sites[1], origin, 5);
    for (int i = 0; i < 2; i++) {
        site_close(&sites[i]);
    }
}

/* A daemon's channel subscription is recorded with it and follows it: the
 * target subscribes before the migration completes, the source lets go,
 * and unsubscribing ends the node's subscription. */
static void test_channel_subscription_follows_its_daemon(void)
{
    static struct site sites[2];
    for (int i = 0; i < 2; i++) {
        site_open(&sites[i], RUNTIME);
        CHECK_OK(net_mesh_start(sites[i].mesh));
    }
    net_mesh_t *pub = NULL;
    CHECK_OK(net_mesh_new((const uint8_t *)CONFIG, strlen(CONFIG), &pub));
    CHECK_OK(net_mesh_start(pub));
    CHECK(mesh_link(sites[0].mesh, pub));
    CHECK(mesh_link(sites[1].mesh, pub));
    CHECK(mesh_link(sites[0].mesh, sites[1].mesh));
    static const char TICKS[] = "ticks";
    uint64_t evicted = 0;
    CHECK_OK(net_mesh_register_channel(pub, (const uint8_t *)TICKS, strlen(TICKS), (const uint8_t *)"{}", 2, &evicted));
    uint64_t p = mesh_node_id(pub);
    uint64_t a = mesh_node_id(sites[0].mesh), b = mesh_node_id(sites[1].mesh);

    uint8_t seed[32];
    memset(seed, 11, sizeof seed);
    uint64_t origin = 0;
    pthread_mutex_lock(&sites[0].lock);
    uint64_t instance = add_object(&sites[0]);
    pthread_mutex_unlock(&sites[0].lock);
    CHECK_OK(net_compute_spawn(sites[0].rt, (const uint8_t *)KIND, strlen(KIND), seed, 32, instance, &origin));

    net_error_t err = {0};
    CHECK_OK(net_compute_subscribe_channel(sites[0].rt, origin, p, (const uint8_t *)TICKS, strlen(TICKS), NULL, 0, NULL, &err));
    CHECK_STATUS(net_compute_subscribe_channel(sites[0].rt, 0x42, p, (const uint8_t *)TICKS, strlen(TICKS), NULL, 0, NULL, &err),
                 NET_ERR_COMPUTE_NOT_FOUND);
    net_error_clear(&err);
    CHECK_STATUS(net_compute_subscribe_channel(sites[0].rt, origin, p, (const uint8_t *)"nope", 4, NULL, 0, NULL, &err),
                 NET_ERR_CHANNEL_UNKNOWN);
    net_error_clear(&err);
    net_bytes_t stats = {NULL, 0};
    CHECK_OK(net_compute_stats(sites[0].rt, origin, &stats));
    CHECK(json_has(&stats, "\"channel\":\"ticks\""));
    net_bytes_free(&stats);
    CHECK(wait_json(net_mesh_channels, pub, "\"subscribers\":1", NULL));

    /* It migrates; B subscribed before the migration completed, A lets go. */
    CHECK_OK(net_compute_expect_origin(sites[1].rt, (const uint8_t *)KIND, strlen(KIND), origin));
    CHECK_OK(net_compute_start_migration(sites[0].rt, origin, a, b));
    net_bytes_t done = {NULL, 0};
    CHECK_OK(net_compute_wait_migration(sites[0].rt, origin, WAIT_MS, &done, NULL, NULL));
    CHECK(json_has(&done, "\"state\":\"completed\""));
    net_bytes_free(&done);
    CHECK_OK(net_compute_stats(sites[1].rt, origin, &stats));
    CHECK(json_has(&stats, "\"channel\":\"ticks\""));
    net_bytes_free(&stats);
    CHECK(wait_json(net_mesh_channels, pub, "\"subscribers\":1", NULL));

    CHECK_OK(net_compute_unsubscribe_channel(sites[1].rt, origin, p, (const uint8_t *)TICKS, strlen(TICKS), NULL, NULL));
    CHECK(wait_json(net_mesh_channels, pub, "\"subscribers\":0", NULL));
    CHECK_OK(net_compute_stats(sites[1].rt, origin, &stats));
    CHECK(json_has(&stats, "\"channels\":[]"));
    net_bytes_free(&stats);
    for (int i = 0; i < 2; i++) {
        site_close(&sites[i]);
    }
    CHECK_OK(net_mesh_free(pub));
}

static void test_unanswered_work_and_free(void)
{
    net_mesh_t *mesh = NULL;
    net_compute_t *rt = NULL;
    static const char SHORT[] = "{\"work_timeout_ms\":100}";
    CHECK_OK(net_mesh_new((const uint8_t *)CONFIG, strlen(CONFIG), &mesh));
    CHECK_STATUS(net_compute_new(mesh, (const uint8_t *)"{\"x\":1}", 7, &rt), NET_ERR_COMPUTE_CONFIG);
    CHECK_OK(net_compute_new(mesh, (const uint8_t *)SHORT, strlen(SHORT), &rt));
    CHECK_OK(net_compute_register_kind(rt, (const uint8_t *)KIND, strlen(KIND), true));
    uint8_t seed[32];
    memset(seed, 9, sizeof seed);
    uint64_t origin = 0;
    CHECK_OK(net_compute_spawn(rt, (const uint8_t *)KIND, strlen(KIND), seed, 32, 1, &origin));

    /* Nobody pulls: the delivery fails after the work timeout. */
    uint32_t outcome = 0;
    net_error_t err = {NET_OK, {NULL, 0}};
    CHECK_STATUS(net_compute_deliver(rt, origin, PRODUCER, 1, NULL, 0, &outcome, &err), NET_ERR_COMPUTE_DAEMON);
    CHECK(err.status == NET_ERR_COMPUTE_DAEMON);
    net_error_clear(&err);
    /* The withdrawn item is not handed out; an answer to it is refused. */
    uint64_t id = 0, instance = 0, daemon = 0, producer = 0, sequence = 0;
    uint32_t kind = 0;
    net_bytes_t payload = {NULL, 0};
    CHECK_STATUS(net_compute_next(rt, 0, &id, &kind, &instance, &daemon, &producer, &sequence, &payload, NULL, NULL),
                 NET_TIMEOUT);
    CHECK_STATUS(net_compute_complete_process(rt, 1, NULL, 0), NET_ERR_COMPUTE_WORK_EXPIRED);

    CHECK_OK(net_compute_free(rt));
    CHECK_OK(net_compute_free(rt));
    CHECK_STATUS(net_compute_next(rt, 0, &id, &kind, &instance, &daemon, &producer, &sequence, &payload, NULL, NULL),
                 NET_ERR_SHUTTING_DOWN);
    CHECK_OK(net_compute_free(NULL));
    CHECK_OK(net_mesh_free(mesh));
}

/* net_compute_deliver_batch: 64 events applied in order through one work
 * item (outputs chained in order), a refused event partway stops the batch
 * (the delivered count and outcomes come back with the error), and a zero
 * timeout gives up before the pull loop can take the batch. */
static void test_batch_delivery(void)
{
    struct site s;
    site_open(&s, RUNTIME);
    uint8_t seed[32];
    memset(seed, 5, sizeof seed);
    pthread_mutex_lock(&s.lock);
    uint64_t instance = add_object(&s);
    pthread_mutex_unlock(&s.lock);
    uint64_t origin = 0;
    CHECK_OK(net_compute_spawn(s.rt, (const uint8_t *)KIND, strlen(KIND), seed, 32, instance, &origin));
    uint8_t data[72 * 8];
    uint32_t lengths[72], outcomes[72];
    for (uint64_t i = 0; i < 72; i++) {
        put_u64(data + 8 * i, i + 1);
        lengths[i] = 8;
    }
    size_t delivered = 0;
    unsigned long handled = s.handled;
    CHECK_OK(net_compute_deliver_batch(s.rt, origin, PRODUCER, 1, data, 64 * 8, lengths, 64, NET_WAIT_FOREVER,
                                       outcomes, &delivered, NULL, NULL));
    CHECK(delivered == 64);
    CHECK(s.handled == handled + 1); /* one work item for the batch */
    for (uint64_t i = 1; i <= 64; i++) {
        CHECK(outcomes[i - 1] == NET_COMPUTE_PROCESSED);
        uint64_t from = 0, sequence = 0;
        net_bytes_t out = {NULL, 0};
        CHECK_OK(net_compute_next_output(s.rt, 5000, &from, &sequence, &out, NULL, NULL));
        CHECK(from == origin && sequence == i && out.len == 8 && get_u64(out.ptr) == i);
        net_bytes_free(&out);
    }
    /* Event 69 says "fail": 65..68 are applied, 70.. are not attempted. */
    uint8_t failing[8 * 8];
    uint32_t failing_lengths[8];
    size_t len = 0;
    for (uint64_t seq = 65; seq <= 72; seq++) {
        failing_lengths[seq - 65] = seq == 69 ? 4 : 8;
        if (seq == 69) {
            memcpy(failing + len, "fail", 4);
        } else {
            put_u64(failing + len, seq);
        }
        len += failing_lengths[seq - 65];
    }
    net_error_t err = {NET_OK, {NULL, 0}};
    CHECK_STATUS(net_compute_deliver_batch(s.rt, origin, PRODUCER, 65, failing, len, failing_lengths, 8,
                                           NET_WAIT_FOREVER, outcomes, &delivered, NULL, &err),
                 NET_ERR_COMPUTE_DAEMON);
    CHECK(delivered == 4 && err.status == NET_ERR_COMPUTE_DAEMON);
    net_error_clear(&err);
    CHECK_OK(net_compute_deliver_batch(s.rt, origin, PRODUCER, 69, data + 68 * 8, 4 * 8, lengths, 4,
                                       NET_WAIT_FOREVER, NULL, &delivered, NULL, NULL));
    CHECK(delivered == 4);
    CHECK_STATUS(net_compute_deliver_batch(s.rt, origin, PRODUCER, 73, data, 8, lengths, 1, 0, outcomes,
                                           &delivered, NULL, NULL),
                 NET_TIMEOUT);
    CHECK(delivered == 0);
    net_bytes_t stats = {NULL, 0};
    CHECK_OK(net_compute_stats(s.rt, origin, &stats));
    char text[512] = {0};
    memcpy(text, stats.ptr, stats.len < sizeof text - 1 ? stats.len : sizeof text - 1);
    net_bytes_free(&stats);
    CHECK(strstr(text, "\"events_processed\":72") != NULL);
    CHECK(strstr(text, "\"errors\":1,") != NULL);
    site_close(&s);
}

/* Three sites whose counters accept sequence gaps, and their runtimes. */
static void open_group_sites(struct site *sites, const net_compute_t **rts)
{
    for (int i = 0; i < 3; i++) {
        site_open(&sites[i], RUNTIME);
        sites[i].gaps_allowed = 1;
        rts[i] = sites[i].rt;
    }
}

/* The site of node `node`. */
static struct site *site_of(struct site *sites, uint64_t node)
{
    for (int i = 0; i < 3; i++) {
        if (mesh_node_id(sites[i].mesh) == node) {
            return &sites[i];
        }
    }
    CHECK(!"a site of the group");
    return &sites[0];
}

struct routed {
    uint32_t index, outcome;
    uint64_t origin, node;
};

static int route(net_compute_group_t *g, uint64_t seq, struct routed *r)
{
    uint8_t payload[8];
    put_u64(payload, seq);
    return CHECK_OK(net_compute_group_route(g, PRODUCER, seq, payload, sizeof payload, NULL, 0, &r->index, &r->origin,
                                           &r->node, &r->outcome, NULL));
}

static void test_replica_group_over_three_nodes(void)
{
    static struct site sites[3];
    const net_compute_t *rts[3];
    open_group_sites(sites, rts);
    uint8_t seed[32];
    memset(seed, 9, sizeof seed);
    static const char LB[] = "{\"strategy\":\"round_robin\"}";
    net_compute_group_t *g = NULL;
    CHECK_OK(net_compute_group_replica(rts, 3, (const uint8_t *)KIND, strlen(KIND), seed, 32, 3, (const uint8_t *)LB,
                                       strlen(LB), &g));
    int objects = 0;
    for (int i = 0; i < 3; i++) {
        live_count(&sites[i], &objects);
        CHECK(objects == 1); /* one member, built on each node */
    }
    /* Round robin: ten events per member; each node processed its ten. */
    struct routed r, by_index[3];
    unsigned taken[3] = {0, 0, 0};
    for (uint64_t seq = 1; seq <= 30; seq++) {
        if (route(g, seq, &r) && CHECK(r.index < 3 && r.outcome == NET_COMPUTE_PROCESSED)) {
            taken[r.index]++;
            by_index[r.index] = r;
        }
    }
    for (int i = 0; i < 3; i++) {
        CHECK(taken[i] == 10);
        struct site *s = site_of(sites, by_index[i].node);
        net_bytes_t stats = {NULL, 0};
        CHECK_OK(net_compute_wait_processed(s->rt, by_index[i].origin, 10, WAIT_MS, &stats, NULL, NULL));
        CHECK(json_has(&stats, "\"events_processed\":10"));
        net_bytes_free(&stats);
        CHECK_U64(live_count(s, &objects), 10);
    }
    /* A count not reached yet times out. */
    net_bytes_t stats = {NULL, 0};
    CHECK_STATUS(net_compute_wait_processed(rts[0], by_index[0].origin, 11, 20, &stats, NULL, NULL), NET_TIMEOUT);

    CHECK_OK(net_compute_group_scale(g, 2));
    net_bytes_t status = {NULL, 0};
    CHECK_OK(net_compute_group_status(g, &status));
    CHECK(json_has(&status, "\"kind\":\"replica\"") && json_has(&status, "\"total\":2"));
    net_bytes_free(&status);
    for (uint64_t seq = 31; seq <= 34; seq++) {
        CHECK(route(g, seq, &r) && r.index < 2);
    }
    CHECK_STATUS(net_compute_group_scale(g, 4), NET_ERR_COMPUTE_GROUP_PLACEMENT);
    uint32_t index = 0;
    CHECK_STATUS(net_compute_group_promote(g, &index), NET_ERR_COMPUTE_GROUP_WRONG_KIND);

    /* Member 1's node is reported failed: re-created on the free node. */
    net_bytes_t replaced = {NULL, 0};
    CHECK_OK(net_compute_group_node_failed(g, by_index[1].node, &replaced));
    CHECK(json_has(&replaced, "\"replaced\":[1]"));
    net_bytes_free(&replaced);
    /* It comes back: nothing to restore (its member was replaced; the copy
     * left there is stopped). */
    net_bytes_t restored = {NULL, 0};
    CHECK_OK(net_compute_group_node_recovered(g, by_index[1].node, &restored));
    CHECK(json_has(&restored, "\"restored\":[]"));
    net_bytes_free(&restored);
    for (uint64_t seq = 35; seq <= 36; seq++) {
        CHECK(route(g, seq, &r));
        CHECK(r.node != by_index[1].node || r.index != 1);
    }
    CHECK_OK(net_compute_group_free(g));
    CHECK_OK(net_compute_group_free(g));
    CHECK_STATUS(net_compute_group_status(g, &status), NET_ERR_SHUTTING_DOWN);
    CHECK_STATUS(net_compute_group_node_recovered(g, 1, &restored), NET_ERR_SHUTTING_DOWN);
    for (int i = 0; i < 3; i++) {
        site_close(&sites[i]);
    }
}

/* A mesh whose failure detector calls a silent peer failed after 3 s. */
static const char QUICK_DETECTOR[] =
    "{\"psk_hex\":\"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a\","
    "\"heartbeat_interval_ms\":50,\"session_timeout_ms\":1000,\"hello_timeout_ms\":500}";

/* A group following node 0's failure detector replaces the member of a
 * node that dies, with nobody calling net_compute_group_node_failed. */
static void test_watching_group_replaces_a_dead_nodes_member(void)
{
    static struct site sites[4];
    const net_compute_t *rts[4];
    for (int i = 0; i < 4; i++) {
        site_open_with(&sites[i], QUICK_DETECTOR, RUNTIME);
        sites[i].gaps_allowed = 1;
        rts[i] = sites[i].rt;
        CHECK_OK(net_mesh_start(sites[i].mesh));
    }
    for (int i = 1; i < 4; i++) {
        CHECK(connect_to(sites[0].mesh, sites[i].mesh));
    }
    uint8_t seed[32];
    memset(seed, 9, sizeof seed);
    net_compute_group_t *g = NULL;
    CHECK_OK(net_compute_group_replica(rts, 4, (const uint8_t *)KIND, strlen(KIND), seed, 32, 2, NULL, 0, &g));
    CHECK_STATUS(net_compute_group_watch_failures(g, sites[0].rt, 0), NET_ERR_INVALID_ARGUMENT);
    CHECK_OK(net_compute_group_watch_failures(g, sites[0].rt, 20));
    CHECK_OK(net_compute_group_watch_failures(g, sites[0].rt, 20)); /* replaces the watch */
    /* A member not on node 0 (the observer): its node dies. */
    struct routed r;
    uint64_t observer = mesh_node_id(sites[0].mesh), victim = 0;
    net_bytes_t before = {NULL, 0};
    CHECK_OK(net_compute_group_status(g, &before));
    char *text = strndup((const char *)before.ptr, before.len);
    net_bytes_free(&before);
    const char *at = text ? strstr(text, "\"members\":[") : NULL;
    while (at && victim == 0 && (at = strstr(at, "\"node\":")) != NULL) {
        at += strlen("\"node\":");
        uint64_t node = strtoull(at, NULL, 10);
        if (node != observer) {
            victim = node;
        }
    }
    free(text);
    CHECK(victim != 0);
    int dead = 0;
    for (int i = 0; i < 4; i++) {
        if (mesh_node_id(sites[i].mesh) == victim) {
            dead = i;
        }
    }
    site_close(&sites[dead]);
    /* Replaced (generation 1) once the detector reports the node. */
    int replaced = 0;
    for (int tries = 0; tries < 2000 && !replaced; tries++) {
        net_bytes_t status = {NULL, 0};
        CHECK_OK(net_compute_group_status(g, &status));
        replaced = json_has(&status, "\"generation\":1") && json_has(&status, "\"health\":\"healthy\"");
        net_bytes_free(&status);
        if (!replaced) {
            struct timespec pause = {0, 10 * 1000 * 1000};
            nanosleep(&pause, NULL);
        }
    }
    CHECK(replaced);
    for (uint64_t seq = 10; seq <= 13; seq++) {
        CHECK(route(g, seq, &r) && r.node != victim);
    }
    CHECK_OK(net_compute_group_unwatch_failures(g));
    CHECK_OK(net_compute_group_unwatch_failures(g));
    CHECK_OK(net_compute_group_watch_failures(g, sites[0].rt, 20)); /* ended by the free */
    CHECK_OK(net_compute_group_free(g));
    CHECK_STATUS(net_compute_group_watch_failures(g, sites[0].rt, 20), NET_ERR_SHUTTING_DOWN);
    for (int i = 0; i < 4; i++) {
        if (i != dead) {
            site_close(&sites[i]);
        }
    }
}

static void test_standby_group_promotion(void)
{
    static struct site sites[3];
    const net_compute_t *rts[3];
    open_group_sites(sites, rts);
    uint8_t seed[32];
    memset(seed, 10, sizeof seed);
    net_compute_group_t *g = NULL;
    CHECK_OK(net_compute_group_standby(rts, 3, (const uint8_t *)KIND, strlen(KIND), seed, 32, 2, &g));
    struct routed r = {0, 0, 0, 0};
    for (uint64_t seq = 1; seq <= 10; seq++) {
        CHECK(route(g, seq, &r) && r.index == 0);
    }
    const uint64_t first_active = r.node;
    net_bytes_t report = {NULL, 0};
    CHECK_OK(net_compute_group_sync(g, &report));
    CHECK(json_has(&report, "\"synced\":[1]") && json_has(&report, "\"failed\":[]"));
    net_bytes_free(&report);
    for (uint64_t seq = 11; seq <= 15; seq++) {
        CHECK(route(g, seq, &r));
    }
    uint32_t index = 0;
    CHECK_OK(net_compute_group_promote(g, &index));
    CHECK(index == 1);
    CHECK(route(g, 16, &r) && r.index == 1 && r.node != first_active);
    /* The synced ten, the five replayed and the new one: each once. */
    int objects = 0;
    CHECK_U64(live_count(site_of(sites, r.node), &objects), 16);
    CHECK_STATUS(net_compute_group_scale(g, 3), NET_ERR_COMPUTE_GROUP_WRONG_KIND);

    /* The active moves to the free node with the migration protocol (the
     * nodes connected: a migration goes node to node); a standby does not. */
    CHECK(connect_to(sites[0].mesh, sites[1].mesh));
    CHECK(connect_to(sites[0].mesh, sites[2].mesh));
    CHECK(connect_to(sites[1].mesh, sites[2].mesh));
    uint64_t free_node = 0;
    for (int i = 0; i < 3; i++) {
        uint64_t id = mesh_node_id(sites[i].mesh);
        if (id != first_active && id != r.node) {
            free_node = id;
        }
    }
    CHECK_STATUS(net_compute_group_migrate(g, 0, free_node), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_compute_group_migrate(g, 1, first_active), NET_ERR_COMPUTE_GROUP_PLACEMENT);
    CHECK_OK(net_compute_group_migrate(g, 1, free_node));
    CHECK(route(g, 17, &r) && r.index == 1 && r.node == free_node);
    CHECK_U64(live_count(site_of(sites, free_node), &objects), 17);
    CHECK_OK(net_compute_group_free(g));
    for (int i = 0; i < 3; i++) {
        site_close(&sites[i]);
    }
}

int main(void)
{
    RUN_TEST(test_c_counter_migrates_under_load_exactly_once);
    RUN_TEST(test_identity_travels_to_a_node_without_the_seed);
    RUN_TEST(test_channel_subscription_follows_its_daemon);
    RUN_TEST(test_unanswered_work_and_free);
    RUN_TEST(test_batch_delivery);
    RUN_TEST(test_replica_group_over_three_nodes);
    RUN_TEST(test_watching_group_replaces_a_dead_nodes_member);
    RUN_TEST(test_standby_group_promotion);
    return check_finish("test_compute");
}
