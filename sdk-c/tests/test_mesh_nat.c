/*
 * NAT status through the C ABI (issue 14): a node bound to 127.0.0.1 with
 * two Net peers on 127.0.0.2 and 127.0.0.3 classifies itself by itself
 * (Open: both peers saw its own address; loopback is never advertised as
 * a reflex), counts its reflex probes, takes and clears the operator's
 * reflex override (refusing private, wildcard and malformed addresses),
 * runs a round on demand; the calls on NULL and on a freed node fail
 * cleanly. Polls are bounded (never a fixed sleep).
 *
 * Run under AddressSanitizer + LeakSanitizer.
 */
#define _XOPEN_SOURCE 700

#include <stdio.h>
#include <time.h>

#include "block_util.h"
#include "mesh_util.h"


static net_mesh_t *started_node(const char *ip)
{
    char config[320];
    net_mesh_t *m = NULL;
    snprintf(config, sizeof config,
             "{\"psk_hex\":\"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a\","
             "\"heartbeat_interval_ms\":50,\"session_timeout_ms\":1000,\"hello_timeout_ms\":500,"
             "\"bind\":\"%s:0\"}",
             ip);
    if (!CHECK_OK(net_mesh_new((const uint8_t *)config, strlen(config), &m))) {
        return NULL;
    }
    CHECK_OK(net_mesh_start(m));
    return m;
}

static int nat_has(const net_mesh_t *m, const char *fragment)
{
    net_bytes_t json = {NULL, 0};
    int found = CHECK_OK(net_mesh_nat(m, &json)) && json_has(&json, fragment);
    net_bytes_free(&json);
    return found;
}

static void test_classification_and_override(void)
{
    net_mesh_t *a = started_node("127.0.0.1"), *b = started_node("127.0.0.2"),
               *c = started_node("127.0.0.3");
    static const char PUBLIC[] = "203.0.113.7:4242";
    const char *bad[] = {"10.0.0.1:80", "0.0.0.0:80", "not an address"};
    size_t i;
    if (a == NULL || b == NULL || c == NULL) {
        goto done;
    }
    CHECK(nat_has(a, "\"class\":\"unknown\""));
    CHECK(nat_has(a, "\"rounds\":0"));
    CHECK(nat_has(a, "\"classify\":true"));
    if (!mesh_link(a, b) || !mesh_link(a, c)) {
        goto done;
    }
    CHECK(wait_json(net_mesh_nat, a, "\"rounds\":1", NULL));
    CHECK(nat_has(a, "\"class\":\"open\""));
    CHECK(nat_has(a, "\"reflex\":null"));
    {
        net_bytes_t stats = {NULL, 0};
        CHECK_OK(net_mesh_stats(a, &stats));
        CHECK(json_has(&stats, "\"reflex_probes\":") && !json_has(&stats, "\"reflex_probes\":0,") &&
              !json_has(&stats, "\"reflex_probes\":1,"));
        net_bytes_free(&stats);
    }

    CHECK_OK(net_mesh_set_reflex_override(a, (const uint8_t *)PUBLIC, strlen(PUBLIC)));
    CHECK(nat_has(a, "\"reflex\":\"203.0.113.7:4242\""));
    CHECK(nat_has(a, "\"override\":\"203.0.113.7:4242\""));
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_STATUS(net_mesh_set_reflex_override(a, (const uint8_t *)bad[i], strlen(bad[i])),
                     NET_ERR_INVALID_ARGUMENT);
    }
    CHECK_OK(net_mesh_set_reflex_override(a, NULL, 0));
    CHECK(nat_has(a, "\"override\":null"));

    CHECK_OK(net_mesh_reclassify_nat(a));
    CHECK(wait_json(net_mesh_nat, a, "\"rounds\":2", NULL));
done:
    CHECK_OK(net_mesh_free(a));
    CHECK_OK(net_mesh_free(b));
    CHECK_OK(net_mesh_free(c));
}

/* Whether the peers-JSON entry of `peer` at `m` holds `fragment` (entries
 * hold no nested objects). */
static int entry_has(const net_mesh_t *m, uint64_t peer, const char *fragment)
{
    char node[64];
    net_bytes_t json = {NULL, 0};
    int ok = 0;
    snprintf(node, sizeof node, "\"node_id\":%llu,", (unsigned long long)peer);
    if (CHECK_OK(net_mesh_peers(m, &json)) && json_has(&json, node)) {
        /* The entry's object: from its opening brace (keys are sorted,
         * node_id is not first) to its closing one. */
        const char *at = strstr((const char *)json.ptr, node);
        const char *start = at;
        const char *end = at ? strchr(at, '}') : NULL;
        while (start != NULL && start > (const char *)json.ptr && *start != '{') {
            start--;
        }
        if (start != NULL && end != NULL) {
            net_bytes_t entry;
            entry.ptr = (uint8_t *)start;
            entry.len = (size_t)(end - start);
            ok = json_has(&entry, fragment);
        }
    }
    net_bytes_free(&json);
    return ok;
}

/* The session with `peer` is relayed by `relay` (0: direct). */
static int relay_is(const net_mesh_t *m, uint64_t peer, uint64_t relay)
{
    char via[64];
    if (relay == 0) {
        snprintf(via, sizeof via, "\"relay\":null");
    } else {
        snprintf(via, sizeof via, "\"relay\":%llu", (unsigned long long)relay);
    }
    return entry_has(m, peer, via);
}

/* Polls until `a` and `b` both hold a bound Net session with each other. */
static int wait_bound(const net_mesh_t *a, const net_mesh_t *b)
{
    const struct timespec pause = {0, 5 * 1000 * 1000};
    int64_t deadline = now_ms() + WAIT_MS;
    while (!(entry_has(a, mesh_node_id(b), "\"identity\":\"net\"") &&
             entry_has(b, mesh_node_id(a), "\"identity\":\"net\""))) {
        if (now_ms() > deadline) {
            return CHECK(!"bound in time") && 0;
        }
        nanosleep(&pause, NULL);
    }
    return 1;
}

/* A session relayed by R moves to a direct path through one punch. */
static void test_connect_direct(void)
{
    net_mesh_t *a = started_node("127.0.0.1"), *r = started_node("127.0.0.1"),
               *b = started_node("127.0.0.1");
    net_bytes_t key_b = {NULL, 0};
    uint32_t outcome = 99;
    if (a == NULL || r == NULL || b == NULL || !mesh_link(a, r) || !mesh_link(b, r)) {
        goto done;
    }
    CHECK_OK(net_mesh_public_key(b, &key_b));
    if (!CHECK_OK(net_mesh_connect_via(a, mesh_node_id(r), key_b.ptr, key_b.len, mesh_node_id(b), NULL, NULL))) {
        goto done;
    }
    CHECK(relay_is(a, mesh_node_id(b), mesh_node_id(r)));
    CHECK_STATUS(net_mesh_connect_direct(a, mesh_node_id(b), key_b.ptr, key_b.len, 0x1234, NULL, NULL, &outcome),
                 NET_ERR_MESH_NO_ROUTE);
    CHECK_STATUS(net_mesh_connect_direct(a, mesh_node_id(b), key_b.ptr, key_b.len, mesh_node_id(r), NULL, NULL, NULL),
                 NET_ERR_INVALID_ARGUMENT);
    /* The identity exchange done on both ends: only Net nodes move. */
    if (wait_bound(a, b) && CHECK_OK(net_mesh_connect_direct(a, mesh_node_id(b), key_b.ptr, key_b.len, mesh_node_id(r), NULL, NULL, &outcome))) {
        CHECK(outcome == NET_DIRECT_OUTCOME_DIRECT);
        CHECK(relay_is(a, mesh_node_id(b), 0));
        CHECK(nat_has(a, "\"punches_succeeded\":1"));
    }
done:
    net_bytes_free(&key_b);
    CHECK_OK(net_mesh_free(a));
    CHECK_OK(net_mesh_free(r));
    CHECK_OK(net_mesh_free(b));
}

/* The calls on NULL and on a freed node fail cleanly. */
static void test_after_free_and_null(void)
{
    net_mesh_t *m = started_node("127.0.0.1");
    net_bytes_t json = {NULL, 0};
    if (m == NULL) {
        return;
    }
    CHECK_STATUS(net_mesh_nat(NULL, &json), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_mesh_nat(m, NULL), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_mesh_set_reflex_override(NULL, NULL, 0), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_mesh_reclassify_nat(NULL), NET_ERR_INVALID_ARGUMENT);
    CHECK_OK(net_mesh_free(m));
    CHECK_STATUS(net_mesh_nat(m, &json), NET_ERR_SHUTTING_DOWN);
    CHECK(json.ptr == NULL);
    CHECK_STATUS(net_mesh_set_reflex_override(m, NULL, 0), NET_ERR_SHUTTING_DOWN);
    CHECK_STATUS(net_mesh_reclassify_nat(m), NET_ERR_SHUTTING_DOWN);
}

int main(void)
{
    RUN_TEST(test_classification_and_override);
    RUN_TEST(test_connect_direct);
    RUN_TEST(test_after_free_and_null);
    return check_finish("test_mesh_nat");
}
