/*
 * Subnets through the C ABI (issue 16): the `subnet` and `subnet_policy`
 * keys of the node configuration; a publisher in 3.7, a subscriber placed
 * in 3.7 by the policy over its announced tags and one in 3.8: the
 * SubnetLocal channel admits the first (which receives the event) and
 * refuses the second with NET_ERR_CHANNEL_UNAUTHORIZED; the peers JSON and
 * the channels JSON show the subnets; bad subnet keys are
 * NET_ERR_MESH_CONFIG naming the key. Polls are bounded (never a fixed
 * sleep).
 *
 * Run under AddressSanitizer + LeakSanitizer.
 */
#define _XOPEN_SOURCE 700

#include <stdio.h>
#include <time.h>

#include "block_util.h"
#include "mesh_util.h"

#define BASE                                                                         \
    "\"psk_hex\":\"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a\"," \
    "\"heartbeat_interval_ms\":50,\"session_timeout_ms\":1000,\"hello_timeout_ms\":500,"
#define POLICY                                                    \
    "\"subnet_policy\":[{\"prefix\":\"zone:\",\"level\":0,\"values\":{\"a\":3}}," \
    "{\"prefix\":\"site:\",\"level\":1,\"values\":{\"x\":7,\"y\":8}}]"

static net_mesh_t *node(const char *config)
{
    net_mesh_t *m = NULL;
    if (!CHECK_OK(net_mesh_new((const uint8_t *)config, strlen(config), &m))) {
        return NULL;
    }
    CHECK_OK(net_mesh_start(m));
    return m;
}

static int announce(const net_mesh_t *m, const char *caps)
{
    return CHECK_OK(net_mesh_announce(m, (const uint8_t *)caps, strlen(caps)));
}

static net_status_t subscribe(const net_mesh_t *m, uint64_t publisher, const char *name)
{
    return net_mesh_subscribe(m, publisher, (const uint8_t *)name, strlen(name), NULL, 0, NULL, NULL);
}

static void test_subnet_local_channel(void)
{
    net_mesh_t *pub = node("{" BASE "\"subnet\":\"3.7\"," POLICY "}");
    net_mesh_t *mate = node("{" BASE POLICY "}");
    net_mesh_t *other = node("{" BASE "\"subnet\":\"3.8\"," POLICY "}");
    static const char CHANNEL[] = "local";
    static const char CONFIG[] = "{\"visibility\":\"subnet_local\"}";
    net_slice_t event = {(const uint8_t *)"inside", 6};
    net_bytes_t report = {NULL, 0}, data = {NULL, 0}, name = {NULL, 0};
    uint64_t from = 0, stream = 0;
    if (pub == NULL || mate == NULL || other == NULL) {
        goto done;
    }
    if (!announce(pub, "{}") || !announce(mate, "{\"tags\":[\"zone:a\",\"site:x\"]}") ||
        !announce(other, "{}") || !mesh_link(mate, pub) || !mesh_link(other, pub)) {
        goto done;
    }
    CHECK(wait_json(net_mesh_peers, pub, "\"subnet\":\"3.7\"", "\"subnet\":\"3.8\""));
    CHECK(wait_json(net_mesh_channels, mate, "\"subnet\":\"3.7\"", NULL));
    CHECK_OK(net_mesh_register_channel(pub, (const uint8_t *)CHANNEL, strlen(CHANNEL),
                                       (const uint8_t *)CONFIG, strlen(CONFIG), NULL));
    CHECK_OK(subscribe(mate, mesh_node_id(pub), CHANNEL));
    CHECK_STATUS(subscribe(other, mesh_node_id(pub), CHANNEL), NET_ERR_CHANNEL_UNAUTHORIZED);
    if (CHECK_OK(net_mesh_publish(pub, (const uint8_t *)CHANNEL, strlen(CHANNEL), &event, 1, true, &report))) {
        CHECK(json_has(&report, "\"delivered\":1"));
    }
    if (CHECK_OK(net_mesh_recv_next(mate, WAIT_MS, &from, &stream, &data, NULL, &name, NULL, NULL))) {
        CHECK_U64(from, mesh_node_id(pub));
        CHECK_MEM(data.ptr, data.len, "inside", 6);
        CHECK_MEM(name.ptr, name.len, CHANNEL, strlen(CHANNEL));
    }
    {
        static const char OUT[] = "out";
        static const char EXPORTED[] = "{\"visibility\":\"exported\",\"export_to\":[\"3.8\"]}";
        static const char BAD[] = "{\"export_to\":[\"9.9.9.9.9\"]}";
        CHECK_OK(net_mesh_register_channel(pub, (const uint8_t *)OUT, strlen(OUT), (const uint8_t *)EXPORTED,
                                           strlen(EXPORTED), NULL));
        CHECK_OK(subscribe(other, mesh_node_id(pub), OUT));
        CHECK_STATUS(subscribe(mate, mesh_node_id(pub), OUT), NET_ERR_CHANNEL_UNAUTHORIZED);
        CHECK_STATUS(net_mesh_register_channel(pub, (const uint8_t *)"bad", 3, (const uint8_t *)BAD, strlen(BAD), NULL),
                     NET_ERR_CHANNEL_CONFIG);
        CHECK(strstr(net_last_error_message(), "export_to") != NULL);
    }
done:
    net_bytes_free(&report);
    net_bytes_free(&data);
    net_bytes_free(&name);
    CHECK_OK(net_mesh_free(pub));
    CHECK_OK(net_mesh_free(mate));
    CHECK_OK(net_mesh_free(other));
}

static void test_bad_subnet_keys(void)
{
    const char *bad[] = {
        "{\"subnet\":\"1.2.3.4.5\"}",
        "{\"subnet\":7}",
        "{\"subnet_policy\":[{\"prefix\":\"x:\",\"level\":4,\"values\":{\"a\":1}}]}",
        "{\"subnet_policy\":[{\"prefix\":\"x:\",\"level\":0,\"values\":{\"a\":0}}]}",
    };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        net_mesh_t *m = NULL;
        CHECK_STATUS(net_mesh_new((const uint8_t *)bad[i], strlen(bad[i]), &m), NET_ERR_MESH_CONFIG);
        CHECK(m == NULL);
        CHECK(strstr(net_last_error_message(), "subnet") != NULL);
    }
}

int main(void)
{
    RUN_TEST(test_subnet_local_channel);
    RUN_TEST(test_bad_subnet_keys);
    return check_finish("test_mesh_subnets");
}
