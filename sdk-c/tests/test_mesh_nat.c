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
#include "cortex_util.h"

/* How long a condition may take to hold on a loaded machine. */
#define WAIT_MS 20000

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

static uint64_t node_id(const net_mesh_t *m)
{
    uint64_t id = 0;
    CHECK_OK(net_mesh_node_id(m, &id));
    return id;
}

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Whether `fn`'s JSON for `m` holds `fragment` (and, when `also` is not
 * NULL, that too), polled every 5 ms for up to WAIT_MS. */
static int wait_json(net_status_t (*fn)(const net_mesh_t *, net_bytes_t *), const net_mesh_t *m,
                     const char *fragment, const char *also)
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

/* `a` connects to `b`; both ends hold a bound Net session. */
static int link_nodes(const net_mesh_t *a, const net_mesh_t *b)
{
    net_bytes_t key = {NULL, 0}, addr = {NULL, 0};
    char of_a[64], of_b[64];
    int ok = CHECK_OK(net_mesh_public_key(b, &key)) && CHECK_OK(net_mesh_local_addr(b, &addr)) &&
             CHECK_OK(net_mesh_connect(a, addr.ptr, addr.len, key.ptr, key.len, node_id(b), NULL, NULL));
    net_bytes_free(&key);
    net_bytes_free(&addr);
    snprintf(of_a, sizeof of_a, "\"node_id\":%llu,", (unsigned long long)node_id(a));
    snprintf(of_b, sizeof of_b, "\"node_id\":%llu,", (unsigned long long)node_id(b));
    return ok && wait_json(net_mesh_peers, b, of_a, "\"identity\":\"net\"") &&
           wait_json(net_mesh_peers, a, of_b, "\"identity\":\"net\"");
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
    if (!link_nodes(a, b) || !link_nodes(a, c)) {
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
    RUN_TEST(test_after_free_and_null);
    return check_finish("test_mesh_nat");
}
