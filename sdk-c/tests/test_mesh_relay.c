/*
 * Relays and routes through the C ABI (issue 13): four nodes on 127.0.0.1
 * in a star around a relay R — A, B and C each directly connected to R
 * only, every node started (heartbeats carry the pingwaves routes are
 * learned from).
 *
 *  - B net_mesh_connect_via R to A: events both ways through R, B's routes
 *    JSON names R as A's next hop, both ends' peers JSON name R as "relay",
 *    and R counts what it forwarded;
 *  - net_mesh_connect_via through a node that is no direct peer, and
 *    net_mesh_connect_routed to a node nobody knows, return
 *    NET_ERR_MESH_NO_ROUTE;
 *  - A net_mesh_connect_routed to C once A's routes show C at two hops
 *    (polled, bounded: never a fixed sleep).
 *
 * Run under AddressSanitizer + LeakSanitizer.
 */
#define _XOPEN_SOURCE 700

#include <stdio.h>
#include <time.h>

#include "block_util.h"
#include "mesh_util.h"

static const char CONFIG[] =
    "{\"psk_hex\":\"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a\","
    "\"heartbeat_interval_ms\":50,\"session_timeout_ms\":1000,\"hello_timeout_ms\":500}";


static net_mesh_t *started_node(void)
{
    net_mesh_t *m = NULL;
    if (!CHECK_OK(net_mesh_new((const uint8_t *)CONFIG, strlen(CONFIG), &m))) {
        return NULL;
    }
    CHECK_OK(net_mesh_start(m));
    return m;
}

/* `a` connects to `b` directly; both ends see the session. */
static int link_nodes(const net_mesh_t *a, const net_mesh_t *b)
{
    net_bytes_t key = {NULL, 0}, addr = {NULL, 0};
    char fragment[64];
    int ok = CHECK_OK(net_mesh_public_key(b, &key)) && CHECK_OK(net_mesh_local_addr(b, &addr)) &&
             CHECK_OK(net_mesh_connect(a, addr.ptr, addr.len, key.ptr, key.len, mesh_node_id(b), NULL, NULL));
    net_bytes_free(&key);
    net_bytes_free(&addr);
    snprintf(fragment, sizeof fragment, "\"node_id\":%llu,", (unsigned long long)mesh_node_id(a));
    return ok && wait_json(net_mesh_peers, b, fragment, NULL);
}

static int send_text(const net_mesh_t *from, uint64_t to, uint64_t stream_id, const char *text)
{
    net_mesh_stream_t *s = NULL;
    net_slice_t e;
    int ok;
    e.ptr = (const uint8_t *)text;
    e.len = strlen(text);
    ok = CHECK_OK(net_mesh_open_stream(from, to, stream_id, true, UINT64_MAX, &s)) &&
         CHECK_OK(net_mesh_stream_send_blocking(s, &e, 1, 20000, NULL, NULL));
    CHECK_OK(net_mesh_stream_free(s));
    return ok;
}

static void expect_event(const net_mesh_t *m, uint64_t peer, uint64_t stream_id, const char *text)
{
    uint64_t p = 0, s = 0;
    net_bytes_t data = {NULL, 0};
    if (CHECK_OK(net_mesh_recv_next(m, WAIT_MS, &p, &s, &data, NULL, NULL, NULL, NULL))) {
        CHECK_U64(p, peer);
        CHECK_U64(s, stream_id);
        CHECK_MEM(data.ptr, data.len, text, strlen(text));
    }
    net_bytes_free(&data);
}

/* The peers-JSON fragment of a peer relayed through `relay`: the entry of
 * `peer` names it (entries are objects in the order the keys are listed). */
static int peer_relayed_by(const net_mesh_t *m, uint64_t peer, uint64_t relay)
{
    char node[64], via[64];
    net_bytes_t json = {NULL, 0};
    int ok = 0;
    snprintf(node, sizeof node, "\"node_id\":%llu,", (unsigned long long)peer);
    snprintf(via, sizeof via, "\"relay\":%llu", (unsigned long long)relay);
    if (CHECK_OK(net_mesh_peers(m, &json)) && json_has(&json, node)) {
        /* The object of `peer`: from its node_id to the next closing brace. */
        const char *start = strstr((const char *)json.ptr, node);
        const char *end = start ? strchr(start, '}') : NULL;
        if (start != NULL && end != NULL) {
            net_bytes_t entry;
            entry.ptr = (uint8_t *)start;
            entry.len = (size_t)(end - start);
            ok = json_has(&entry, via);
        }
    }
    net_bytes_free(&json);
    return ok;
}

static void test_relay_star(void)
{
    net_mesh_t *a = started_node(), *r = started_node(), *b = started_node(), *c = started_node();
    net_bytes_t key_a = {NULL, 0}, key_c = {NULL, 0}, json = {NULL, 0};
    char fragment[160];
    uint64_t ida, idr, idb, idc;
    struct call_error err;
    net_error_t slot;
    if (a == NULL || r == NULL || b == NULL || c == NULL) {
        goto done;
    }
    ida = mesh_node_id(a), idr = mesh_node_id(r), idb = mesh_node_id(b), idc = mesh_node_id(c);
    if (!link_nodes(a, r) || !link_nodes(b, r) || !link_nodes(c, r)) {
        goto done;
    }
    CHECK_OK(net_mesh_public_key(a, &key_a));
    CHECK_OK(net_mesh_public_key(c, &key_c));

    /* A relay must be a direct peer; a routed connect needs a known route. */
    slot = error_slot();
    CHECK_STATUS(net_mesh_connect_via(b, idc, key_a.ptr, key_a.len, ida, NULL, &slot),
                 NET_ERR_MESH_NO_ROUTE);
    if (error_take(&slot, &err)) {
        CHECK(err.status == NET_ERR_MESH_NO_ROUTE);
    }
    CHECK_STATUS(net_mesh_connect_routed(b, key_a.ptr, key_a.len, 0x1234, NULL, NULL),
                 NET_ERR_MESH_NO_ROUTE);
    CHECK_STATUS(net_mesh_connect_via(b, idr, key_a.ptr, 31, ida, NULL, NULL),
                 NET_ERR_INVALID_ARGUMENT);

    /* B reaches A through R; events travel both ways through it. */
    if (!CHECK_OK(net_mesh_connect_via(b, idr, key_a.ptr, key_a.len, ida, NULL, NULL))) {
        goto done;
    }
    CHECK(peer_relayed_by(b, ida, idr));
    snprintf(fragment, sizeof fragment, "\"node_id\":%llu,", (unsigned long long)idb);
    if (wait_json(net_mesh_peers, a, fragment, NULL)) {
        CHECK(peer_relayed_by(a, idb, idr));
    }
    if (send_text(b, ida, 3, "b to a via r")) {
        expect_event(a, idb, 3, "b to a via r");
    }
    if (send_text(a, idb, 4, "a to b via r")) {
        expect_event(b, ida, 4, "a to b via r");
    }
    snprintf(fragment, sizeof fragment, "\"destination\":%llu,\"next_hop\":%llu,",
             (unsigned long long)ida, (unsigned long long)idr);
    CHECK(wait_json(net_mesh_routes, b, fragment, NULL));
    CHECK_OK(net_mesh_routes(r, &json));
    snprintf(fragment, sizeof fragment, "\"node_id\":%llu,", (unsigned long long)idr);
    CHECK(json_has(&json, fragment) && json_has(&json, "\"forwarding\":{\"forwarded\":"));
    CHECK(!json_has(&json, "\"forwarded\":0,"));
    net_bytes_free(&json);

    /* A learns C from the pingwaves R relays, then connects along the route. */
    snprintf(fragment, sizeof fragment, "\"destination\":%llu,\"next_hop\":%llu,\"hops\":2,",
             (unsigned long long)idc, (unsigned long long)idr);
    if (wait_json(net_mesh_routes, a, fragment, NULL) &&
        CHECK_OK(net_mesh_connect_routed(a, key_c.ptr, key_c.len, idc, NULL, NULL))) {
        CHECK(peer_relayed_by(a, idc, idr));
        if (send_text(a, idc, 5, "a to c routed")) {
            expect_event(c, ida, 5, "a to c routed");
        }
    }
done:
    net_bytes_free(&key_a);
    net_bytes_free(&key_c);
    CHECK_OK(net_mesh_free(a));
    CHECK_OK(net_mesh_free(b));
    CHECK_OK(net_mesh_free(c));
    CHECK_OK(net_mesh_free(r));
}

/* The new calls on a freed node, and with NULL arguments, fail cleanly. */
static void test_after_free_and_null(void)
{
    net_mesh_t *m = started_node();
    uint8_t key[32] = {0};
    net_bytes_t json = {NULL, 0};
    if (m == NULL) {
        return;
    }
    CHECK_STATUS(net_mesh_routes(NULL, &json), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_mesh_routes(m, NULL), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_mesh_connect_via(m, 1, NULL, 32, 2, NULL, NULL), NET_ERR_INVALID_ARGUMENT);
    CHECK_OK(net_mesh_routes(m, &json));
    CHECK(json_has(&json, "\"routes\":[]"));
    net_bytes_free(&json);
    CHECK_OK(net_mesh_free(m));
    CHECK_STATUS(net_mesh_routes(m, &json), NET_ERR_SHUTTING_DOWN);
    CHECK(json.ptr == NULL);
    CHECK_STATUS(net_mesh_connect_via(m, 1, key, 32, 2, NULL, NULL), NET_ERR_SHUTTING_DOWN);
    CHECK_STATUS(net_mesh_connect_routed(m, key, 32, 2, NULL, NULL), NET_ERR_SHUTTING_DOWN);
}

int main(void)
{
    RUN_TEST(test_relay_star);
    RUN_TEST(test_after_free_and_null);
    return check_finish("test_mesh_relay");
}
