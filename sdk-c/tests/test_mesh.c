/*
 * The mesh through the C ABI: two nodes in one process handshake over UDP on
 * 127.0.0.1 and exchange events both ways (reliable and fire-and-forget),
 * credit and backpressure, configuration errors naming the key, and the
 * three handle races for net_mesh_t and net_mesh_stream_t:
 *
 *  1. calls after a free return NET_ERR_SHUTTING_DOWN;
 *  2. concurrent frees are idempotent while calls race them;
 *  3. a free wakes a blocked call and returns after it left: a
 *     net_mesh_recv_next blocked with NET_WAIT_FOREVER (NET_END), and a
 *     blocking send waiting for credit (NET_ERR_MESH_STREAM_CLOSED).
 *
 * Run under AddressSanitizer + LeakSanitizer.
 */
#define _XOPEN_SOURCE 700

#include "cortex_util.h"

static const char CONFIG[] =
    "{\"psk_hex\":\"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a\","
    "\"heartbeat_interval_ms\":50,\"session_timeout_ms\":1000,\"hello_timeout_ms\":500}";

static net_mesh_t *mesh_new(void)
{
    net_mesh_t *m = NULL;
    CHECK_OK(net_mesh_new((const uint8_t *)CONFIG, strlen(CONFIG), &m));
    return m;
}

static uint64_t node_id(const net_mesh_t *m)
{
    uint64_t id = 0;
    CHECK_OK(net_mesh_node_id(m, &id));
    return id;
}

static int mesh_connect(const net_mesh_t *a, const net_mesh_t *b)
{
    net_bytes_t key = {NULL, 0}, addr = {NULL, 0};
    int ok = CHECK_OK(net_mesh_public_key(b, &key)) && CHECK_OK(net_mesh_local_addr(b, &addr)) &&
             CHECK(key.len == 32) &&
             CHECK_OK(net_mesh_connect(a, addr.ptr, addr.len, key.ptr, key.len, node_id(b)));
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

/* Receives one event within 5 s; checks its sender, stream and text. */
static void expect_event(const net_mesh_t *m, uint64_t peer, uint64_t stream_id, const char *text)
{
    uint64_t p = 0, s = 0;
    net_bytes_t data = {NULL, 0};
    if (CHECK_OK(net_mesh_recv_next(m, 5000, &p, &s, &data))) {
        CHECK_U64(p, peer);
        CHECK_U64(s, stream_id);
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
    CHECK_OK(net_mesh_open_stream(a, node_id(b), 7, true, UINT64_MAX, &ab));
    CHECK_OK(send_text(ab, "hello from a"));
    expect_event(b, node_id(a), 7, "hello from a");
    CHECK_OK(net_mesh_open_stream(b, node_id(a), 9, false, UINT64_MAX, &ba));
    CHECK_OK(send_text(ba, "hello from b"));
    expect_event(a, node_id(b), 9, "hello from b");
    CHECK_STATUS(net_mesh_recv_next(a, 10, &p, &s, &data), NET_TIMEOUT);
    CHECK(data.ptr == NULL);
    CHECK_OK(net_mesh_peers(a, &json));
    CHECK(json_has(&json, "\"identity\":\"net\"") && json_has(&json, "\"health\":\"alive\""));
    net_bytes_free(&json);
    CHECK_OK(net_mesh_stats(b, &json));
    CHECK(json_has(&json, "\"events_received\":"));
    net_bytes_free(&json);
done:
    net_mesh_stream_free(ab);
    net_mesh_stream_free(ba);
    net_mesh_free(a);
    net_mesh_free(b);
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
    CHECK_OK(net_mesh_open_stream(a, node_id(b), 4, false, 1000, &s));
    two[0].ptr = big;
    two[0].len = sizeof big;
    two[1] = two[0];
    CHECK_OK(net_mesh_stream_send(s, two, 1));
    CHECK_STATUS(net_mesh_stream_send(s, two, 2), NET_ERR_MESH_TOO_LARGE);
    CHECK_OK(net_mesh_stream_send_blocking(s, two, 2, 5000)); /* waits for grants */
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
    net_mesh_stream_free(s);
    net_mesh_free(a);
    net_mesh_free(b);
}

/* ---- race 1 -------------------------------------------------------------- */

static void test_op_after_free(void)
{
    net_mesh_t *a = mesh_new(), *b = mesh_new();
    net_mesh_stream_t *s = NULL;
    uint64_t id;
    if (a == NULL || b == NULL || !mesh_connect(a, b)) {
        net_mesh_free(a);
        net_mesh_free(b);
        return;
    }
    CHECK_OK(net_mesh_open_stream(a, node_id(b), 1, false, UINT64_MAX, &s));
    net_mesh_stream_free(s);
    CHECK_STATUS(send_text(s, "x"), NET_ERR_SHUTTING_DOWN);
    net_mesh_stream_free(s); /* idempotent */
    net_mesh_free(a);
    CHECK_STATUS(net_mesh_node_id(a, &id), NET_ERR_SHUTTING_DOWN);
    CHECK(strstr(net_last_error_message(), "freed") != NULL);
    net_mesh_free(a);
    net_mesh_free(b);
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
    sleep_ms(1);
    net_mesh_stream_free(r->stream);
    net_mesh_free(r->mesh);
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
        int st = i % 2 ? send_text(r->stream, "x") : net_mesh_recv_next(r->mesh, 1, &p, &s, &d);
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
            !CHECK_OK(net_mesh_open_stream(r.mesh, node_id(b), 1, false, UINT64_MAX, &r.stream))) {
            net_mesh_free(r.mesh);
            net_mesh_free(b);
            return;
        }
        pthread_barrier_init(&r.start, NULL, 5);
        for (i = 0; i < 5; i++) {
            pthread_create(&t[i], NULL, i < 3 ? race_freer : race_caller, &r);
        }
        for (i = 0; i < 5; i++) {
            pthread_join(t[i], NULL);
        }
        CHECK_STATUS(r.bad_status, 0);
        pthread_barrier_destroy(&r.start);
        net_mesh_free(b);
    }
}

/* ---- race 3 -------------------------------------------------------------- */

struct blocked {
    net_mesh_t *mesh;
    net_mesh_stream_t *stream;
    struct gate gate;
    int status;
    double t_return;
};

static void *blocked_recv(void *arg)
{
    struct blocked *b = (struct blocked *)arg;
    uint64_t p, s;
    net_bytes_t d = {NULL, 0};
    gate_signal(&b->gate);
    b->status = net_mesh_recv_next(b->mesh, NET_WAIT_FOREVER, &p, &s, &d);
    b->t_return = now_s();
    net_bytes_free(&d);
    return NULL;
}

static void *blocked_send(void *arg)
{
    struct blocked *b = (struct blocked *)arg;
    static uint8_t payload[100];
    net_slice_t e;
    e.ptr = payload;
    e.len = sizeof payload;
    gate_signal(&b->gate);
    b->status = net_mesh_stream_send_blocking(b->stream, &e, 1, NET_WAIT_FOREVER);
    b->t_return = now_s();
    return NULL;
}

static void test_free_wakes_blocked_calls(void)
{
    int round;
    for (round = 0; round < 5; round++) {
        struct blocked b;
        pthread_t t;
        double t0, t1;
        memset(&b, 0, sizeof b);
        b.mesh = mesh_new();
        gate_init(&b.gate);
        pthread_create(&t, NULL, blocked_recv, &b);
        gate_wait(&b.gate);
        sleep_ms(20);
        t0 = now_s();
        net_mesh_free(b.mesh);
        t1 = now_s();
        pthread_join(t, NULL);
        CHECK_STATUS(b.status, NET_END);
        CHECK(b.t_return > t0 && t1 + 0.010 >= b.t_return && t1 - t0 < 4.0);
        gate_destroy(&b.gate);
    }
    {
        /* A blocking send waiting for credit that will never come. */
        struct blocked b;
        pthread_t t;
        net_mesh_t *peer = mesh_new();
        double t0, t1;
        static uint8_t first[100];
        net_slice_t e;
        memset(&b, 0, sizeof b);
        b.mesh = mesh_new();
        if (b.mesh == NULL || peer == NULL || !mesh_connect(b.mesh, peer) ||
            !CHECK_OK(net_mesh_open_stream(b.mesh, node_id(peer), 1, false, 200, &b.stream))) {
            net_mesh_free(b.mesh);
            net_mesh_free(peer);
            return;
        }
        CHECK_OK(net_mesh_shutdown(peer));
        e.ptr = first;
        e.len = sizeof first;
        CHECK_OK(net_mesh_stream_send(b.stream, &e, 1)); /* 184 of 200 bytes of credit */
        gate_init(&b.gate);
        pthread_create(&t, NULL, blocked_send, &b);
        gate_wait(&b.gate);
        sleep_ms(30);
        t0 = now_s();
        net_mesh_stream_free(b.stream);
        t1 = now_s();
        pthread_join(t, NULL);
        CHECK_STATUS(b.status, NET_ERR_MESH_STREAM_CLOSED);
        CHECK(t1 + 0.010 >= b.t_return && t1 - t0 < 2.0);
        gate_destroy(&b.gate);
        net_mesh_free(b.mesh);
        net_mesh_free(peer);
    }
}

int main(void)
{
    RUN_TEST(test_two_nodes_both_ways);
    RUN_TEST(test_backpressure_and_errors);
    RUN_TEST(test_op_after_free);
    RUN_TEST(test_concurrent_frees);
    RUN_TEST(test_free_wakes_blocked_calls);
    return check_finish("test_mesh");
}
