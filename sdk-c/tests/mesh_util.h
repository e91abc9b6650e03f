/*
 * mesh_util.h: helpers shared by the mesh C tests (test_mesh.c,
 * test_mesh_relay.c, test_mesh_nat.c, test_mesh_subnets.c). Header-only,
 * like check.h.
 *
 *  - mesh_node_id(): a node's id, CHECKing the call;
 *  - now_ms() and wait_json(): bounded polls of the JSON a mesh call
 *    returns (never a fixed sleep);
 *  - mesh_link(): one node connects to another and both see a bound Net
 *    session.
 */
#ifndef NET_SDK_C_MESH_UTIL_H
#define NET_SDK_C_MESH_UTIL_H

#include <stdio.h>
#include <time.h>

#include "cortex_util.h"

/* How long a condition may take to hold on a loaded machine. */
#define WAIT_MS 20000

static inline uint64_t mesh_node_id(const net_mesh_t *m)
{
    uint64_t id = 0;
    CHECK_OK(net_mesh_node_id(m, &id));
    return id;
}

static inline int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Whether `fn`'s JSON for `m` holds `fragment` (and, when `also` is not
 * NULL, that too), polled every 5 ms for up to WAIT_MS. */
static inline int wait_json(net_status_t (*fn)(const net_mesh_t *, net_bytes_t *),
                            const net_mesh_t *m, const char *fragment, const char *also)
{
    const struct timespec pause = {0, 5 * 1000 * 1000};
    int64_t deadline = now_ms() + WAIT_MS;
    for (;;) {
        net_bytes_t json = {NULL, 0};
        int found = CHECK_OK(fn(m, &json)) && json_has(&json, fragment) &&
                    (also == NULL || json_has(&json, also));
        net_bytes_free(&json);
        if (found) {
            return 1;
        }
        if (now_ms() > deadline) {
            return CHECK(!"condition held in time") && 0;
        }
        nanosleep(&pause, NULL);
    }
}

/* `a` connects to `b`; returns once both ends hold a bound Net session. */
static inline int mesh_link(const net_mesh_t *a, const net_mesh_t *b)
{
    net_bytes_t key = {NULL, 0}, addr = {NULL, 0};
    char of_a[64], of_b[64];
    int ok = CHECK_OK(net_mesh_public_key(b, &key)) && CHECK_OK(net_mesh_local_addr(b, &addr)) &&
             CHECK_OK(net_mesh_connect(a, addr.ptr, addr.len, key.ptr, key.len, mesh_node_id(b), NULL, NULL));
    net_bytes_free(&key);
    net_bytes_free(&addr);
    snprintf(of_a, sizeof of_a, "\"node_id\":%llu,", (unsigned long long)mesh_node_id(a));
    snprintf(of_b, sizeof of_b, "\"node_id\":%llu,", (unsigned long long)mesh_node_id(b));
    return ok && wait_json(net_mesh_peers, b, of_a, "\"identity\":\"net\"") &&
           wait_json(net_mesh_peers, a, of_b, "\"identity\":\"net\"");
}

#endif
