/*
 * Continuity through the C ABI (issue 16 item 3): a followed chain checked
 * event by event (a second writer breaks it; the node says so as an event
 * and in its status), partition records as JSON, the event wait with a
 * timeout and a cancellation token, continuity off refused, a causal stream
 * followed and proved by the receiving node itself, a peer that fails and
 * returns healing the partition on both sides, and the calls on NULL and
 * on a freed node. The partition itself runs on five real nodes
 * in the Rust suite (tests/mesh_partitions.rs).
 *
 * Run under AddressSanitizer + LeakSanitizer.
 */
#define _XOPEN_SOURCE 700

#include <stdio.h>

#include "block_util.h"
#include "mesh_util.h"

#define ORIGIN 0x123456789ABCull

static net_mesh_t *node(const char *extra)
{
    char config[320];
    net_mesh_t *m = NULL;
    snprintf(config, sizeof config,
             "{\"psk_hex\":\"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a\"%s}", extra);
    if (!CHECK_OK(net_mesh_new((const uint8_t *)config, strlen(config), &m))) {
        return NULL;
    }
    return m;
}

/* A 32-byte causal link: origin, horizon, sequence, parent hash (LE). */
static void causal_link(uint8_t out[32], uint64_t origin, uint64_t seq, uint64_t parent)
{
    uint64_t words[4] = {origin, 0, seq, parent};
    for (int w = 0; w < 4; w++) {
        for (int i = 0; i < 8; i++) {
            out[w * 8 + i] = (uint8_t)(words[w] >> (8 * i));
        }
    }
}

static int json_is(net_status_t (*fn)(const net_mesh_t *, net_bytes_t *), const net_mesh_t *m,
                   const char *fragment)
{
    net_bytes_t json = {NULL, 0};
    int found = CHECK_OK(fn(m, &json)) && json_has(&json, fragment);
    net_bytes_free(&json);
    return found;
}

static void test_a_chain_followed_and_broken(void)
{
    net_mesh_t *m = node("");
    uint8_t link[32];
    uint32_t seen = 99;
    net_bytes_t event = {NULL, 0};
    net_error_t error = {NET_OK, {NULL, 0}};
    if (m == NULL) {
        return;
    }
    CHECK(json_is(net_mesh_partitions, m, "[]"));
    CHECK(json_is(net_mesh_continuity_status, m, "[]"));
    causal_link(link, ORIGIN, 1, 0);
    CHECK_STATUS(net_mesh_observe_chain_event(m, link, 32, (const uint8_t *)"x", 1, &seen),
                 NET_ERR_INVALID_ARGUMENT);
    CHECK(seen == 99);
    CHECK_OK(net_mesh_follow_chain(m, ORIGIN));
    CHECK_OK(net_mesh_follow_chain(m, ORIGIN));
    CHECK(json_is(net_mesh_continuity_status, m, "\"held\":1"));
    CHECK_STATUS(net_mesh_observe_chain_event(m, link, 31, (const uint8_t *)"x", 1, &seen),
                 NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_mesh_continuity_next(m, 10, &event, NULL, &error), NET_TIMEOUT);
    CHECK(event.ptr == NULL);
    /* A parent hash that is not the genesis's: the chain breaks. */
    causal_link(link, ORIGIN, 1, 0xDEAD);
    CHECK_OK(net_mesh_observe_chain_event(m, link, 32, (const uint8_t *)"x", 1, &seen));
    CHECK(seen == NET_CHAIN_BROKE);
    causal_link(link, ORIGIN, 2, 0xBEEF);
    CHECK_OK(net_mesh_observe_chain_event(m, link, 32, NULL, 0, &seen));
    CHECK(seen == NET_CHAIN_IGNORED);
    if (CHECK_OK(net_mesh_continuity_next(m, 5000, &event, NULL, &error))) {
        CHECK(json_has(&event, "\"type\":\"chain_broken\""));
        net_bytes_free(&event);
    }
    CHECK(json_is(net_mesh_continuity_status, m, "\"reason\":\"conflicting_chains\""));
    CHECK_OK(net_mesh_free(m));
}

static void test_cancel_off_null_and_freed(void)
{
    net_mesh_t *m = node("");
    net_mesh_t *off = node(",\"continuity\":false");
    net_cancel_t *cancel = NULL;
    net_bytes_t event = {NULL, 0};
    net_error_t error = {NET_OK, {NULL, 0}};
    uint8_t link[32];
    uint32_t seen = 0;
    if (m == NULL || off == NULL || !CHECK_OK(net_cancel_new(&cancel))) {
        return;
    }
    /* A cancelled token: the wait does not start. */
    CHECK_OK(net_cancel_cancel(cancel));
    CHECK_STATUS(net_mesh_continuity_next(m, NET_WAIT_FOREVER, &event, cancel, &error), NET_ERR_CANCELLED);
    CHECK(error.status == NET_ERR_CANCELLED);
    net_error_clear(&error);
    CHECK_STATUS(net_mesh_follow_chain(off, 1), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_mesh_request_continuity_proof(off, 2, 1, 0, 0), NET_ERR_INVALID_ARGUMENT);
    /* Not followed, then a span that is empty, then no such peer. */
    CHECK_STATUS(net_mesh_request_continuity_proof(m, 2, ORIGIN, 0, 0), NET_ERR_INVALID_ARGUMENT);
    CHECK_OK(net_mesh_follow_chain(m, ORIGIN));
    CHECK_STATUS(net_mesh_request_continuity_proof(m, 2, ORIGIN, 3, 2), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_mesh_request_continuity_proof(m, 2, ORIGIN, 0, 0), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_mesh_continuity_next(off, 0, &event, NULL, NULL), NET_ERR_INVALID_ARGUMENT);
    CHECK(json_is(net_mesh_partitions, off, "[]"));
    CHECK_STATUS(net_mesh_partitions(NULL, &event), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_mesh_continuity_status(m, NULL), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_mesh_follow_chain(NULL, 1), NET_ERR_INVALID_ARGUMENT);
    CHECK_OK(net_mesh_free(m));
    causal_link(link, ORIGIN, 1, 0);
    CHECK_STATUS(net_mesh_partitions(m, &event), NET_ERR_SHUTTING_DOWN);
    CHECK_STATUS(net_mesh_request_continuity_proof(m, 2, ORIGIN, 0, 0), NET_ERR_SHUTTING_DOWN);
    CHECK_STATUS(net_mesh_continuity_status(m, &event), NET_ERR_SHUTTING_DOWN);
    CHECK_STATUS(net_mesh_follow_chain(m, 1), NET_ERR_SHUTTING_DOWN);
    CHECK_STATUS(net_mesh_observe_chain_event(m, link, 32, NULL, 0, &seen), NET_ERR_SHUTTING_DOWN);
    CHECK_STATUS(net_mesh_continuity_next(m, 0, &event, NULL, NULL), NET_ERR_SHUTTING_DOWN);
    CHECK(event.ptr == NULL);
    CHECK_OK(net_mesh_free(off));
    net_cancel_free(cancel);
}

/* Ten events of ORIGIN sent on a causal stream: the receiver checks them
 * as they arrive and proves the chain against the sender by itself; the
 * sender followed what it sent. */
static void test_a_causal_stream_followed_and_proved(void)
{
    net_mesh_t *a = node("");
    net_mesh_t *b = node(",\"proof_interval_ms\":100");
    net_mesh_stream_t *stream = NULL;
    uint8_t prev[32], frames[10][40];
    net_slice_t events[10];
    net_bytes_t next = {NULL, 0};
    char source[64];
    if (a == NULL || b == NULL || !CHECK_OK(net_mesh_start(a)) || !CHECK_OK(net_mesh_start(b)) ||
        !mesh_link(a, b)) {
        goto done;
    }
    CHECK_OK(net_mesh_follow_chain(a, ORIGIN));
    CHECK_OK(net_mesh_follow_chain(b, ORIGIN));
    CHECK_STATUS(net_mesh_open_causal_stream(a, 12345, 1, true, UINT64_MAX, &stream),
                 NET_ERR_MESH_UNKNOWN_PEER);
    CHECK_STATUS(net_causal_next_link(prev, 31, NULL, 0, 0, &next), NET_ERR_INVALID_ARGUMENT);
    /* Each frame: u32 LE 36 (link + 4-byte payload), the link, the payload. */
    causal_link(prev, ORIGIN, 0, 0);
    for (int i = 0; i < 10; i++) {
        const uint8_t *payload = i == 0 ? NULL : frames[i - 1] + 36;
        if (!CHECK_OK(net_causal_next_link(prev, 32, payload, i == 0 ? 0 : 4, 0, &next)) ||
            !CHECK(next.len == 32)) {
            net_bytes_free(&next);
            goto done;
        }
        memcpy(prev, next.ptr, 32);
        net_bytes_free(&next);
        frames[i][0] = 36;
        frames[i][1] = frames[i][2] = frames[i][3] = 0;
        memcpy(frames[i] + 4, prev, 32);
        memcpy(frames[i] + 36, "evt", 3);
        frames[i][39] = (uint8_t)('0' + i);
        events[i].ptr = frames[i];
        events[i].len = sizeof frames[i];
    }
    if (!CHECK_OK(net_mesh_open_causal_stream(a, mesh_node_id(b), 7, true, UINT64_MAX, &stream))) {
        goto done;
    }
    CHECK_OK(net_mesh_stream_send(stream, events, 10));
    snprintf(source, sizeof source, "\"source\":%llu}", (unsigned long long)mesh_node_id(a));
    CHECK(wait_json(net_mesh_continuity_status, b, "\"proved_to\":10,", source));
    CHECK(json_is(net_mesh_continuity_status, b, "\"seq\":10}"));
    CHECK(json_is(net_mesh_continuity_status, b, "\"proof_conflicted\":false"));
    CHECK(json_is(net_mesh_continuity_status, a, "\"seq\":10}"));
done:
    net_mesh_stream_free(stream);
    net_mesh_free(a);
    net_mesh_free(b);
}

/* Takes `m`'s continuity events until one of each type in `types` came. */
static int wait_events(const net_mesh_t *m, const char *const *types, int n)
{
    int seen[4] = {0, 0, 0, 0};
    int64_t deadline = now_ms() + WAIT_MS;
    for (;;) {
        int all = 1;
        for (int i = 0; i < n; i++) {
            all = all && seen[i];
        }
        if (all) {
            return 1;
        }
        if (now_ms() > deadline) {
            return CHECK(!"the continuity events came in time") && 0;
        }
        net_bytes_t event = {NULL, 0};
        if (net_mesh_continuity_next(m, 100, &event, NULL, NULL) != NET_OK) {
            continue;
        }
        for (int i = 0; i < n; i++) {
            char fragment[64];
            snprintf(fragment, sizeof fragment, "\"type\":\"%s\"", types[i]);
            seen[i] = seen[i] || json_has(&event, fragment);
        }
        net_bytes_free(&event);
    }
}

/* The partition key in `m`'s first record, or 0 when none is agreed. */
static unsigned long long first_key(const net_mesh_t *m)
{
    net_bytes_t json = {NULL, 0};
    unsigned long long key = 0;
    if (CHECK_OK(net_mesh_partitions(m, &json))) {
        char text[2048] = {0};
        memcpy(text, json.ptr, json.len < sizeof text - 1 ? json.len : sizeof text - 1);
        const char *at = strstr(text, "\"partition_key\":");
        if (at != NULL) {
            key = strtoull(at + strlen("\"partition_key\":"), NULL, 10);
        }
        net_bytes_free(&json);
    }
    return key;
}

/* b goes away: a detects the split; b comes back with the same keys and
 * the split heals, both sides naming the same partition key (b learns of
 * the split from a's greeting). */
static void test_a_peer_that_fails_and_returns_heals_the_partition(void)
{
    static const char *const detected[] = {"detected"};
    static const char *const healed[] = {"healed", "agreed"};
    const char *quick = ",\"heartbeat_interval_ms\":20,\"session_timeout_ms\":100";
    char keyed[256], other[64];
    snprintf(keyed, sizeof keyed,
             "%s,\"identity_seed_hex\":\"%064d\",\"static_secret_hex\":\"%s\"", quick, 7,
             "0707070707070707070707070707070707070707070707070707070707070707");
    net_mesh_t *a = node(quick);
    net_mesh_t *b = node(keyed);
    net_mesh_t *b2 = NULL;
    if (a == NULL || b == NULL || !CHECK_OK(net_mesh_start(a)) || !CHECK_OK(net_mesh_start(b)) ||
        !mesh_link(a, b)) {
        goto done;
    }
    uint64_t b_id = mesh_node_id(b);
    CHECK_OK(net_mesh_free(b));
    b = NULL;
    if (!wait_events(a, detected, 1)) {
        goto done;
    }
    snprintf(other, sizeof other, "\"other_side\":[%llu]", (unsigned long long)b_id);
    CHECK(json_is(net_mesh_partitions, a, other));
    CHECK(json_is(net_mesh_partitions, a, "\"partition_key\":null"));
    b2 = node(keyed);
    /* Its identity proves it: a's old session to b is replaced. */
    if (b2 == NULL || !CHECK_OK(net_mesh_start(b2)) || !CHECK(mesh_node_id(b2) == b_id) ||
        !mesh_link(b2, a)) {
        goto done;
    }
    CHECK(wait_events(a, healed, 2));
    CHECK(wait_events(b2, healed, 2));
    snprintf(other, sizeof other, "\"other_side\":[%llu]", (unsigned long long)mesh_node_id(a));
    CHECK(json_is(net_mesh_partitions, b2, other));
    CHECK(json_is(net_mesh_partitions, b2, "\"phase\":\"healed\""));
    CHECK(first_key(a) != 0 && first_key(a) == first_key(b2));
done:
    net_mesh_free(a);
    net_mesh_free(b);
    net_mesh_free(b2);
}

int main(void)
{
    RUN_TEST(test_a_chain_followed_and_broken);
    RUN_TEST(test_a_causal_stream_followed_and_proved);
    RUN_TEST(test_a_peer_that_fails_and_returns_heals_the_partition);
    RUN_TEST(test_cancel_off_null_and_freed);
    return check_finish("test_mesh_continuity");
}
