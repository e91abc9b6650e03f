/*
 * The mesh through the C ABI: two nodes in one process handshake over UDP on
 * 127.0.0.1 and exchange events both ways (reliable and fire-and-forget),
 * credit and backpressure, configuration errors naming the key, and the
 * three handle races for net_mesh_t and net_mesh_stream_t:
 *
 *  1. calls after a free return NET_ERR_SHUTTING_DOWN;
 *  2. concurrent frees are idempotent while calls race them;
 *  3. every blocking call wakes, for both handle types: freeing the node
 *     wakes a recv_next / recv_batch blocked forever (NET_END), an accept
 *     blocked forever and a connect waiting for an answer
 *     (NET_ERR_SHUTTING_DOWN, "mesh node is shut down"); freeing a stream
 *     wakes a send_blocking waiting for credit forever
 *     (NET_ERR_MESH_STREAM_CLOSED); and a cancel of the call's net_cancel_t
 *     wakes each of them (NET_ERR_CANCELLED, the error in its net_error_t).
 *     No sleeps: each round starts the call, lets it block (yields), frees or
 *     cancels, and is retried until the outcome proves the call was waiting
 *     (refused at the door, a call says the handle "has been freed" or was
 *     "already cancelled when it started").
 *
 * Run under AddressSanitizer + LeakSanitizer.
 */
#define _XOPEN_SOURCE 700

#include "block_util.h"
#include "mesh_util.h"

static const char CONFIG[] =
    "{\"psk_hex\":\"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a\","
    "\"heartbeat_interval_ms\":50,\"session_timeout_ms\":1000,\"hello_timeout_ms\":500}";

/* A node whose connects wait (almost) forever for an answer. */
static const char PATIENT[] =
    "{\"psk_hex\":\"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a\","
    "\"handshake_timeout_ms\":600000,\"handshake_retries\":1}";

static net_mesh_t *mesh_with(const char *config)
{
    net_mesh_t *m = NULL;
    CHECK_OK(net_mesh_new((const uint8_t *)config, strlen(config), &m));
    return m;
}

static net_mesh_t *mesh_new(void)
{
    return mesh_with(CONFIG);
}

static int mesh_connect(const net_mesh_t *a, const net_mesh_t *b)
{
    net_bytes_t key = {NULL, 0}, addr = {NULL, 0};
    int ok = CHECK_OK(net_mesh_public_key(b, &key)) && CHECK_OK(net_mesh_local_addr(b, &addr)) &&
             CHECK(key.len == 32) &&
             CHECK_OK(net_mesh_connect(a, addr.ptr, addr.len, key.ptr, key.len, mesh_node_id(b), NULL, NULL));
    net_bytes_free(&key);
    net_bytes_free(&addr);
    return ok;
}

static int send_text(const net_mesh_stream_t *s, const char *text)
{
    net_slice_t e;
    e.ptr = (const uint8_t *)text;
    e.len = strlen(text);
    return net_mesh_stream_send(s, &e, 1);
}

/* Receives one event within 5 s; checks its sender, stream and text, and
 * that no event was dropped before it. */
static void expect_event(const net_mesh_t *m, uint64_t peer, uint64_t stream_id, const char *text)
{
    uint64_t p = 0, s = 0, dropped = 99;
    net_bytes_t data = {NULL, 0};
    if (CHECK_OK(net_mesh_recv_next(m, 5000, &p, &s, &data, &dropped, NULL, NULL, NULL))) {
        CHECK_U64(p, peer);
        CHECK_U64(s, stream_id);
        CHECK_U64(dropped, 0);
        CHECK_MEM(data.ptr, data.len, text, strlen(text));
    }
    net_bytes_free(&data);
}

static void test_two_nodes_both_ways(void)
{
    net_mesh_t *a = mesh_new(), *b = mesh_new();
    net_mesh_stream_t *ab = NULL, *ba = NULL;
    net_bytes_t json = {NULL, 0};
    uint64_t p, s;
    net_bytes_t data = {NULL, 0};
    if (a == NULL || b == NULL) {
        goto done;
    }
    CHECK_OK(net_mesh_start(a));
    CHECK_OK(net_mesh_start(b));
    if (!mesh_connect(a, b)) {
        goto done;
    }
    CHECK_OK(net_mesh_open_stream(a, mesh_node_id(b), 7, true, UINT64_MAX, &ab));
    CHECK_OK(send_text(ab, "hello from a"));
    expect_event(b, mesh_node_id(a), 7, "hello from a");
    CHECK_OK(net_mesh_open_stream(b, mesh_node_id(a), 9, false, UINT64_MAX, &ba));
    CHECK_OK(send_text(ba, "hello from b"));
    expect_event(a, mesh_node_id(b), 9, "hello from b");
    CHECK_STATUS(net_mesh_recv_next(a, 10, &p, &s, &data, NULL, NULL, NULL, NULL), NET_TIMEOUT);
    CHECK(data.ptr == NULL);
    CHECK_OK(net_mesh_peers(a, &json));
    CHECK(json_has(&json, "\"identity\":\"net\"") && json_has(&json, "\"health\":\"alive\""));
    net_bytes_free(&json);
    CHECK_OK(net_mesh_stats(b, &json));
    CHECK(json_has(&json, "\"events_received\":"));
    net_bytes_free(&json);
done:
    CHECK_OK(net_mesh_stream_free(ab));
    CHECK_OK(net_mesh_stream_free(ba));
    CHECK_OK(net_mesh_free(a));
    CHECK_OK(net_mesh_free(b));
}

/* Takes `want` events from `node` (a reader running beside a blocked sender:
 * credit comes back as the application takes events). */
struct reader {
    const net_mesh_t *node;
    int want;
    int got;
};

static void *read_events(void *arg)
{
    struct reader *r = arg;
    while (r->got < r->want) {
        uint64_t p = 0, s = 0;
        net_bytes_t data = {NULL, 0};
        if (net_mesh_recv_next(r->node, 20000, &p, &s, &data, NULL, NULL, NULL, NULL) != NET_OK) {
            break;
        }
        net_bytes_free(&data);
        r->got++;
    }
    return NULL;
}

static void test_backpressure_and_errors(void)
{
    net_mesh_t *a = mesh_new(), *b = mesh_new(), *bad = NULL;
    net_mesh_stream_t *s = NULL;
    static uint8_t big[900];
    net_slice_t two[2];
    const char *cfg = "{\"colour\":\"blue\"}";
    if (a == NULL || b == NULL || !mesh_connect(a, b)) {
        goto done;
    }
    CHECK_OK(net_mesh_open_stream(a, mesh_node_id(b), 4, false, 1000, &s));
    two[0].ptr = big;
    two[0].len = sizeof big;
    two[1] = two[0];
    CHECK_OK(net_mesh_stream_send(s, two, 1));
    CHECK_STATUS(net_mesh_stream_send(s, two, 2), NET_ERR_MESH_TOO_LARGE);
    {
        /* send_blocking waits for grants, which come as b's reader takes events. */
        struct reader r = {b, 3, 0};
        pthread_t t;
        if (CHECK(pthread_create(&t, NULL, read_events, &r) == 0)) {
            CHECK_OK(net_mesh_stream_send_blocking(s, two, 2, 5000, NULL, NULL));
            pthread_join(t, NULL);
            CHECK(r.got == 3);
        }
    }
    CHECK_STATUS(net_mesh_open_stream(a, 4242, 1, false, UINT64_MAX, NULL), NET_ERR_INVALID_ARGUMENT);
    {
        net_mesh_stream_t *none = NULL;
        CHECK_STATUS(net_mesh_open_stream(a, 4242, 1, false, UINT64_MAX, &none), NET_ERR_MESH_UNKNOWN_PEER);
        CHECK(none == NULL);
    }
    CHECK_STATUS(net_mesh_new((const uint8_t *)cfg, strlen(cfg), &bad), NET_ERR_MESH_CONFIG);
    CHECK(strstr(net_last_error_message(), "colour") != NULL);
    CHECK(bad == NULL);
done:
    CHECK_OK(net_mesh_stream_free(s));
    CHECK_OK(net_mesh_free(a));
    CHECK_OK(net_mesh_free(b));
}

/* ---- race 1 -------------------------------------------------------------- */

static void test_op_after_free(void)
{
    net_mesh_t *a = mesh_new(), *b = mesh_new();
    net_mesh_stream_t *s = NULL, *s2 = NULL;
    net_bytes_t bytes = {NULL, 0};
    uint64_t id = 42, p, sid;
    size_t count = 42;
    net_slice_t e;
    if (a == NULL || b == NULL || !mesh_connect(a, b)) {
        CHECK_OK(net_mesh_free(a));
        CHECK_OK(net_mesh_free(b));
        return;
    }
    e.ptr = (const uint8_t *)"x";
    e.len = 1;
    CHECK_OK(net_mesh_open_stream(a, mesh_node_id(b), 1, false, UINT64_MAX, &s));
    CHECK_OK(net_mesh_stream_free(s));
    CHECK_STATUS(send_text(s, "x"), NET_ERR_SHUTTING_DOWN);
    CHECK_STATUS(net_mesh_stream_send_blocking(s, &e, 1, NET_WAIT_FOREVER, NULL, NULL),
                 NET_ERR_SHUTTING_DOWN);
    CHECK_STATUS(net_mesh_stream_info(s, &p, &sid), NET_ERR_SHUTTING_DOWN);
    CHECK_OK(net_mesh_stream_free(s)); /* idempotent */
    /* A stream whose node is freed refuses (shut down) but stays safe to free. */
    CHECK_OK(net_mesh_open_stream(a, mesh_node_id(b), 2, false, UINT64_MAX, &s2));
    CHECK_OK(net_mesh_free(a));
    CHECK_STATUS(send_text(s2, "x"), NET_ERR_SHUTTING_DOWN);
    CHECK_OK(net_mesh_stream_free(s2));
    CHECK_STATUS(net_mesh_node_id(a, &id), NET_ERR_SHUTTING_DOWN);
    CHECK(strstr(net_last_error_message(), "freed") != NULL);
    CHECK_U64(id, 42);
    CHECK_STATUS(net_mesh_recv_next(a, NET_WAIT_FOREVER, &p, &sid, &bytes, NULL, NULL, NULL, NULL),
                 NET_ERR_SHUTTING_DOWN);
    CHECK_STATUS(net_mesh_recv_batch(a, 8, NET_WAIT_FOREVER, &bytes, &count, NULL, NULL),
                 NET_ERR_SHUTTING_DOWN);
    CHECK_STATUS(net_mesh_accept(a, 99, NET_WAIT_FOREVER, &bytes, NULL, NULL),
                 NET_ERR_SHUTTING_DOWN);
    CHECK_STATUS(net_mesh_close(a), NET_ERR_SHUTTING_DOWN);
    CHECK(bytes.ptr == NULL && count == 42);
    CHECK_OK(net_mesh_free(a));
    CHECK_OK(net_mesh_free(b));
}

/* ---- race 2 -------------------------------------------------------------- */

struct race {
    net_mesh_t *mesh;
    net_mesh_stream_t *stream;
    pthread_barrier_t start;
    int bad_status;
};

static void *race_freer(void *arg)
{
    struct race *r = (struct race *)arg;
    pthread_barrier_wait(&r->start);
    let_it_block(); /* let the callers get going */
    CHECK_OK(net_mesh_stream_free(r->stream));
    CHECK_OK(net_mesh_free(r->mesh));
    return NULL;
}

static void *race_caller(void *arg)
{
    struct race *r = (struct race *)arg;
    int i;
    pthread_barrier_wait(&r->start);
    for (i = 0; i < 200; i++) {
        uint64_t p, s;
        net_bytes_t d = {NULL, 0};
        int st = i % 2 ? send_text(r->stream, "x")
                       : net_mesh_recv_next(r->mesh, 1, &p, &s, &d, NULL, NULL, NULL, NULL);
        net_bytes_free(&d);
        if (st != NET_OK && st != NET_TIMEOUT && st != NET_END && st != NET_ERR_SHUTTING_DOWN &&
            st != NET_ERR_MESH_BACKPRESSURE && st != NET_ERR_MESH_UNKNOWN_PEER &&
            st != NET_ERR_MESH_STREAM_CLOSED) {
            r->bad_status = st;
        }
    }
    return NULL;
}

static void test_concurrent_frees(void)
{
    int round;
    for (round = 0; round < 8; round++) {
        struct race r;
        pthread_t t[5];
        net_mesh_t *b = mesh_new();
        int i;
        memset(&r, 0, sizeof r);
        r.mesh = mesh_new();
        if (r.mesh == NULL || b == NULL || !mesh_connect(r.mesh, b) ||
            !CHECK_OK(net_mesh_open_stream(r.mesh, mesh_node_id(b), 1, false, UINT64_MAX, &r.stream))) {
            CHECK_OK(net_mesh_free(r.mesh));
            CHECK_OK(net_mesh_free(b));
            return;
        }
        pthread_barrier_init(&r.start, NULL, 5);
        for (i = 0; i < 5; i++) {
            if (pthread_create(&t[i], NULL, i < 3 ? race_freer : race_caller, &r) != 0) {
                abort(); /* the barrier would never open */
            }
        }
        for (i = 0; i < 5; i++) {
            pthread_join(t[i], NULL);
        }
        CHECK_STATUS(r.bad_status, 0);
        CHECK_STATUS(send_text(r.stream, "x"), NET_ERR_SHUTTING_DOWN);
        pthread_barrier_destroy(&r.start);
        CHECK_OK(net_mesh_free(b));
    }
}

/* ---- race 3: blocked calls wake -------------------------------------------- */

enum call { RECV_NEXT, RECV_BATCH, ACCEPT, CONNECT, SEND_BLOCKING, CALLS };
static const char *const CALL_NAMES[CALLS] = {"recv_next", "recv_batch", "accept", "connect",
                                              "send_blocking"};

struct blocked {
    enum call call;
    net_mesh_t *mesh;
    net_mesh_stream_t *stream;
    net_cancel_t *cancel;
    /* for CONNECT: the peer called (it never answers) */
    net_bytes_t peer_addr, peer_key;
    uint64_t peer_id;
    int status;
    net_bytes_t out;
    size_t count;
    struct call_error error;
};

static void *blocked_call(void *arg)
{
    struct blocked *b = (struct blocked *)arg;
    static const uint8_t payload[100];
    net_error_t error = error_slot();
    uint64_t p = 0, s = 0;
    net_slice_t e;
    switch (b->call) {
    case RECV_NEXT:
        b->status = net_mesh_recv_next(b->mesh, NET_WAIT_FOREVER, &p, &s, &b->out, NULL, NULL, b->cancel,
                                       &error);
        break;
    case RECV_BATCH:
        b->status = net_mesh_recv_batch(b->mesh, 16, NET_WAIT_FOREVER, &b->out, &b->count,
                                        b->cancel, &error);
        break;
    case ACCEPT:
        /* a node that never handshakes in the direct form */
        b->status = net_mesh_accept(b->mesh, 99, NET_WAIT_FOREVER, &b->out, b->cancel, &error);
        break;
    case CONNECT:
        b->status = net_mesh_connect(b->mesh, b->peer_addr.ptr, b->peer_addr.len, b->peer_key.ptr,
                                     b->peer_key.len, b->peer_id, b->cancel, &error);
        break;
    default:
        e.ptr = payload;
        e.len = sizeof payload;
        b->status = net_mesh_stream_send_blocking(b->stream, &e, 1, NET_WAIT_FOREVER, b->cancel,
                                                  &error);
        break;
    }
    error_take(&error, &b->error);
    return NULL;
}

/* Runs `b`'s call on a thread, lets it block, then frees the handle it is on
 * (cancel == NULL) or cancels its token; returns once the call is back. */
static void interrupt(struct blocked *b)
{
    pthread_t t;
    if (pthread_create(&t, NULL, blocked_call, b) != 0) {
        abort();
    }
    let_it_block();
    if (b->cancel != NULL) {
        CHECK_OK(net_cancel_cancel(b->cancel));
    } else if (b->call == SEND_BLOCKING) {
        CHECK_OK(net_mesh_stream_free(b->stream));
    } else {
        CHECK_OK(net_mesh_free(b->mesh));
    }
    pthread_join(t, NULL);
    CHECK(b->out.ptr == NULL); /* no output unless NET_OK */
    net_bytes_free(&b->out);
}

/* A node nobody answers: `b` is shut down (its socket stays quiet). */
struct silent_peer {
    net_mesh_t *node;
    net_bytes_t addr, key;
    uint64_t id;
};

static int silent_peer_new(struct silent_peer *s)
{
    memset(s, 0, sizeof *s);
    s->node = mesh_new();
    return s->node != NULL && CHECK_OK(net_mesh_local_addr(s->node, &s->addr)) &&
           CHECK_OK(net_mesh_public_key(s->node, &s->key)) &&
           CHECK_OK(net_mesh_node_id(s->node, &s->id)) && CHECK_OK(net_mesh_close(s->node));
}

static void silent_peer_free(struct silent_peer *s)
{
    net_bytes_free(&s->addr);
    net_bytes_free(&s->key);
    CHECK_OK(net_mesh_free(s->node));
}

struct free_rounds {
    enum call call;
    struct silent_peer *silent;
    unsigned long refused;
};

/* The node freed under a recv (NET_END proves the wake; SHUTTING_DOWN says
 * the free came first) or an accept / connect (SHUTTING_DOWN either way: the
 * message tells "mesh node is shut down", woken, from "has been freed"). */
static int node_free_round(void *ctx, int round)
{
    struct free_rounds *fr = (struct free_rounds *)ctx;
    struct blocked b;
    (void)round;
    memset(&b, 0, sizeof b);
    b.call = fr->call;
    b.count = 4242;
    b.mesh = mesh_with(b.call == CONNECT ? PATIENT : CONFIG);
    if (b.mesh == NULL) {
        return 0;
    }
    if (b.call == CONNECT) {
        b.peer_addr = fr->silent->addr;
        b.peer_key = fr->silent->key;
        b.peer_id = fr->silent->id;
    }
    interrupt(&b);
    CHECK_U64(b.count, 4242);
    if (b.call == RECV_NEXT || b.call == RECV_BATCH) {
        if (b.status == NET_END) {
            return 1;
        }
        CHECK_STATUS(b.status, NET_ERR_SHUTTING_DOWN);
        fr->refused++;
        return 0;
    }
    CHECK_STATUS(b.status, NET_ERR_SHUTTING_DOWN);
    CHECK_STATUS(b.error.status, NET_ERR_SHUTTING_DOWN);
    if (strstr(b.error.message, "shut down") != NULL) {
        return 1;
    }
    CHECK(strstr(b.error.message, "freed") != NULL);
    fr->refused++;
    return 0;
}

static char node_free_info[300];

static void test_node_free_wakes_calls_blocked_forever(void)
{
    struct silent_peer silent;
    struct free_rounds fr;
    int c;
    size_t n = 0;
    if (!silent_peer_new(&silent)) {
        silent_peer_free(&silent);
        return;
    }
    n += (size_t)snprintf(node_free_info, sizeof node_free_info, "  woken by the node's free:");
    for (c = RECV_NEXT; c <= CONNECT; c++) {
        memset(&fr, 0, sizeof fr);
        fr.call = (enum call)c;
        fr.silent = &silent;
        if (UNTIL_WON(200, 3, node_free_round, &fr) < 3) {
            fprintf(stderr, "       (%s)\n", CALL_NAMES[c]);
        }
        if (n < sizeof node_free_info) {
            n += (size_t)snprintf(node_free_info + n, sizeof node_free_info - n,
                                  " %s (%lu rounds refused first)", CALL_NAMES[c], fr.refused);
        }
    }
    silent_peer_free(&silent);
}

/* A stream from `a` to `b` whose window is spent and will never be granted
 * again (b is shut down): a send_blocking on it waits forever. */
static net_mesh_stream_t *stalled_stream(const net_mesh_t *a, const net_mesh_t *b)
{
    net_mesh_stream_t *s = NULL;
    static const uint8_t first[100];
    net_slice_t e;
    e.ptr = first;
    e.len = sizeof first;
    if (!CHECK_OK(net_mesh_open_stream(a, mesh_node_id(b), 1, false, 200, &s))) {
        return NULL;
    }
    CHECK_OK(net_mesh_stream_send(s, &e, 1)); /* 184 of 200 bytes of credit */
    return s;
}

struct stream_rounds {
    net_mesh_t *a, *b;
    net_mesh_stream_t *stream; /* the cancel test's one stream */
    unsigned long refused;
};

/* The stream freed under a send_blocking: NET_ERR_MESH_STREAM_CLOSED proves
 * the wake; NET_ERR_SHUTTING_DOWN says the free came first. */
static int stream_free_round(void *ctx, int round)
{
    struct stream_rounds *sr = (struct stream_rounds *)ctx;
    struct blocked b;
    (void)round;
    memset(&b, 0, sizeof b);
    b.call = SEND_BLOCKING;
    b.stream = stalled_stream(sr->a, sr->b);
    if (b.stream == NULL) {
        return 0;
    }
    interrupt(&b);
    if (b.status == NET_ERR_MESH_STREAM_CLOSED) {
        CHECK_STATUS(b.error.status, NET_ERR_MESH_STREAM_CLOSED);
        return 1;
    }
    CHECK_STATUS(b.status, NET_ERR_SHUTTING_DOWN);
    sr->refused++;
    return 0;
}

static void test_stream_free_wakes_send_blocked_forever(void)
{
    struct stream_rounds sr;
    memset(&sr, 0, sizeof sr);
    sr.a = mesh_new();
    sr.b = mesh_new();
    if (sr.a != NULL && sr.b != NULL && mesh_connect(sr.a, sr.b) && CHECK_OK(net_mesh_close(sr.b))) {
        UNTIL_WON(200, 5, stream_free_round, &sr);
    }
    CHECK_OK(net_mesh_free(sr.a));
    CHECK_OK(net_mesh_free(sr.b));
}

struct cancel_rounds {
    net_mesh_t *node;
    net_mesh_stream_t *stream;
    struct silent_peer *silent;
    unsigned long refused[CALLS];
    int won[CALLS];
};

/* A cancel of the token of a blocked call, cycling through every blocking
 * call: NET_ERR_CANCELLED, and a round counts unless the token was
 * "already cancelled when it started". Counts as won once every call has
 * been woken at least twice. */
static int cancel_round(void *ctx, int round)
{
    struct cancel_rounds *cr = (struct cancel_rounds *)ctx;
    struct blocked b;
    int c;
    memset(&b, 0, sizeof b);
    b.call = (enum call)(round % CALLS);
    b.mesh = cr->node;
    b.stream = cr->stream;
    b.cancel = cancel_new();
    b.count = 4242;
    b.peer_addr = cr->silent->addr;
    b.peer_key = cr->silent->key;
    b.peer_id = cr->silent->id;
    interrupt(&b);
    CHECK_OK(net_cancel_free(b.cancel));
    CHECK_U64(b.count, 4242);
    if (!CHECK_STATUS(b.status, NET_ERR_CANCELLED) ||
        !CHECK_STATUS(b.error.status, NET_ERR_CANCELLED)) {
        fprintf(stderr, "       (%s: \"%s\")\n", CALL_NAMES[b.call], b.error.message);
    }
    if (cancelled_before_start(b.error.message)) {
        cr->refused[b.call]++;
    } else {
        cr->won[b.call]++;
    }
    for (c = 0; c < CALLS; c++) {
        if (cr->won[c] < 2) {
            return 0;
        }
    }
    return 1;
}

static char cancel_info[300];

static void test_cancel_wakes_every_blocked_call(void)
{
    struct silent_peer silent;
    struct cancel_rounds cr;
    net_mesh_t *peer = NULL, *late = NULL;
    int c;
    size_t n = 0;
    memset(&cr, 0, sizeof cr);
    if (!silent_peer_new(&silent)) {
        silent_peer_free(&silent);
        return;
    }
    cr.silent = &silent;
    cr.node = mesh_with(PATIENT);
    peer = mesh_new();
    if (cr.node == NULL || peer == NULL || !mesh_connect(cr.node, peer) ||
        !CHECK_OK(net_mesh_close(peer)) || (cr.stream = stalled_stream(cr.node, peer)) == NULL) {
        goto out;
    }
    /* One "win" = every call cancelled while it waited at least twice. */
    if (UNTIL_WON(400, 1, cancel_round, &cr) < 1) {
        for (c = 0; c < CALLS; c++) {
            fprintf(stderr, "       %s: woken %d times while waiting\n", CALL_NAMES[c], cr.won[c]);
        }
    }
    n += (size_t)snprintf(cancel_info, sizeof cancel_info, "  cancelled while waiting:");
    for (c = 0; c < CALLS && n < sizeof cancel_info; c++) {
        n += (size_t)snprintf(cancel_info + n, sizeof cancel_info - n, " %s %d (%lu before)",
                              CALL_NAMES[c], cr.won[c], cr.refused[c]);
    }
    /* The node works on after every cancelled call: it connects, and receives. */
    late = mesh_new();
    if (late != NULL && mesh_connect(late, cr.node)) {
        net_mesh_stream_t *s = NULL;
        if (CHECK_OK(net_mesh_open_stream(late, mesh_node_id(cr.node), 3, true, UINT64_MAX, &s))) {
            CHECK_OK(send_text(s, "still here"));
            expect_event(cr.node, mesh_node_id(late), 3, "still here");
        }
        CHECK_OK(net_mesh_stream_free(s));
    }
out:
    CHECK_OK(net_mesh_stream_free(cr.stream));
    CHECK_OK(net_mesh_free(late));
    CHECK_OK(net_mesh_free(peer));
    CHECK_OK(net_mesh_free(cr.node));
    silent_peer_free(&silent);
}

/* Window growth and large datagrams are configuration keys: two nodes
 * with large datagrams reach 65 000-byte datagrams on loopback (the peers
 * JSON shows it once a probe got through); a node that turned them off
 * keeps its peer at v0.11's 8192 and is never probed. */
static void test_large_datagrams_and_window_options(void)
{
    static const char BIG[] =
        "{\"psk_hex\":\"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a\","
        "\"heartbeat_interval_ms\":50,\"session_timeout_ms\":1000,\"hello_timeout_ms\":500,"
        "\"max_window\":1048576,\"window_budget\":8388608,\"path_probe_interval_ms\":200}";
    static const char SMALL[] =
        "{\"psk_hex\":\"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a\","
        "\"large_datagrams\":false}";
    net_mesh_t *a = mesh_with(BIG), *b = mesh_with(BIG), *c = mesh_with(SMALL);
    if (mesh_connect(a, b) && mesh_connect(a, c)) {
        char of_b[64], of_c[64];
        snprintf(of_b, sizeof of_b, "\"max_datagram\":65000,\"node_id\":%llu,",
                 (unsigned long long)mesh_node_id(b));
        snprintf(of_c, sizeof of_c, "\"max_datagram\":8192,\"node_id\":%llu,",
                 (unsigned long long)mesh_node_id(c));
        CHECK(wait_json(net_mesh_peers, a, of_b, of_c));
        CHECK(wait_json(net_mesh_stats, a, "\"paths_enlarged\":1,", NULL));
    }
    /* Probing more often than every 100 ms is refused, naming the key. */
    net_mesh_t *bad = NULL;
    static const char FAST_PROBES[] = "{\"path_probe_interval_ms\":10}";
    CHECK_STATUS(net_mesh_new((const uint8_t *)FAST_PROBES, strlen(FAST_PROBES), &bad), NET_ERR_MESH_CONFIG);
    CHECK(strstr(net_last_error_message(), "path_probe_interval_ms") != NULL);
    net_mesh_free(a);
    net_mesh_free(b);
    net_mesh_free(c);
}

int main(void)
{
    RUN_TEST(test_two_nodes_both_ways);
    RUN_TEST(test_backpressure_and_errors);
    RUN_TEST(test_large_datagrams_and_window_options);
    RUN_TEST(test_op_after_free);
    RUN_TEST(test_concurrent_frees);
    RUN_TEST(test_node_free_wakes_calls_blocked_forever);
    printf("%s\n", node_free_info);
    RUN_TEST(test_stream_free_wakes_send_blocked_forever);
    RUN_TEST(test_cancel_wakes_every_blocked_call);
    printf("%s\n", cancel_info);
    return check_finish("test_mesh");
}
