/*
 * Channels and capabilities through the C ABI (issue 13): nodes on
 * 127.0.0.1, every node started.
 *
 *  - A registers "news" (open) and "secret" (require_token); B subscribes:
 *    accepted, NET_ERR_CHANNEL_UNKNOWN for an unregistered name,
 *    NET_ERR_CHANNEL_UNAUTHORIZED for "secret" without a token, accepted
 *    with a token net_token_issue made from A's identity seed;
 *  - net_mesh_publish's report; the events reach B with their channel name
 *    (net_mesh_recv_next's channel_out, net_mesh_recv_batch's records);
 *    after net_mesh_unsubscribe the next event is on "secret";
 *  - a bad channel config names the key (NET_ERR_CHANNEL_CONFIG);
 *  - C announces capabilities; A, linked to C only through B, finds it
 *    (net_mesh_find_nodes, net_mesh_find_best_node, hop_count 1);
 *  - a subscriber relayed through R receives with the channel name;
 *  - a full channel (max_subscribers) refuses with NET_ERR_CHANNEL_FULL, a
 *    publish past max_rate_pps fails with NET_ERR_CHANNEL_RATE_LIMITED;
 *  - token chains (net_mesh_install_channel_token, net_token_delegate): on
 *    a channel whose only trusted issuer is the identity A, a token A gave B
 *    (depth 1) that B delegated to C lets C subscribe once the publisher
 *    holds the parent, and not before; a chain one link past the depth (a
 *    grandchild hand-signed, since net_token_delegate refuses to make it)
 *    and a chain rooted at an untrusted identity are refused with
 *    NET_ERR_CHANNEL_UNAUTHORIZED;
 *  - the calls on a freed node return NET_ERR_SHUTTING_DOWN.
 *
 * Run under AddressSanitizer + LeakSanitizer.
 */
#define _XOPEN_SOURCE 700

#include <stdio.h>
#include <time.h>

#include "block_util.h"
#include "cortex_util.h"

#define PSK "\"psk_hex\":\"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a\""
static const char CONFIG[] = "{" PSK ",\"heartbeat_interval_ms\":50}";
/* A's identity seed: 32 bytes of 7. */
static const char SEEDED[] =
    "{" PSK ",\"heartbeat_interval_ms\":50,"
    "\"identity_seed_hex\":\"0707070707070707070707070707070707070707070707070707070707070707\"}";

#define WAIT_MS 20000

static net_mesh_t *node_with(const char *config)
{
    net_mesh_t *m = NULL;
    if (!CHECK_OK(net_mesh_new((const uint8_t *)config, strlen(config), &m))) {
        return NULL;
    }
    CHECK_OK(net_mesh_start(m));
    return m;
}

static uint64_t id_of(const net_mesh_t *m)
{
    uint64_t id = 0;
    CHECK_OK(net_mesh_node_id(m, &id));
    return id;
}

static int64_t clock_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Whether the JSON `query` finds for `m` holds `fragment`, polled every
 * 5 ms for up to WAIT_MS. */
static int wait_found(const net_mesh_t *m, const char *query, const char *fragment)
{
    const struct timespec pause = {0, 5 * 1000 * 1000};
    int64_t deadline = clock_ms() + WAIT_MS;
    for (;;) {
        net_bytes_t json = {NULL, 0};
        int found = CHECK_OK(net_mesh_find_nodes(m, (const uint8_t *)query, strlen(query), &json)) &&
                    json_has(&json, fragment);
        net_bytes_free(&json);
        if (found) {
            return 1;
        }
        if (clock_ms() > deadline) {
            return CHECK(!"found in time") && 0;
        }
        nanosleep(&pause, NULL);
    }
}

/* `a` connects to `b` directly and waits until `b` lists it. */
static int link_to(const net_mesh_t *a, const net_mesh_t *b)
{
    const struct timespec pause = {0, 5 * 1000 * 1000};
    net_bytes_t key = {NULL, 0}, addr = {NULL, 0};
    char fragment[64];
    int64_t deadline = clock_ms() + WAIT_MS;
    int ok = CHECK_OK(net_mesh_public_key(b, &key)) && CHECK_OK(net_mesh_local_addr(b, &addr)) &&
             CHECK_OK(net_mesh_connect(a, addr.ptr, addr.len, key.ptr, key.len, id_of(b), NULL, NULL));
    net_bytes_free(&key);
    net_bytes_free(&addr);
    snprintf(fragment, sizeof fragment, "\"node_id\":%llu,", (unsigned long long)id_of(a));
    while (ok) {
        net_bytes_t json = {NULL, 0};
        int seen = CHECK_OK(net_mesh_peers(b, &json)) && json_has(&json, fragment);
        net_bytes_free(&json);
        if (seen) {
            return 1;
        }
        if (clock_ms() > deadline) {
            return CHECK(!"link up in time") && 0;
        }
        nanosleep(&pause, NULL);
    }
    return 0;
}

static net_status_t reg(const net_mesh_t *m, const char *name, const char *config)
{
    return net_mesh_register_channel(m, (const uint8_t *)name, strlen(name), (const uint8_t *)config,
                                     strlen(config), NULL);
}

static net_status_t sub(const net_mesh_t *m, uint64_t publisher, const char *name, const net_bytes_t *token)
{
    return net_mesh_subscribe(m, publisher, (const uint8_t *)name, strlen(name), token ? token->ptr : NULL,
                              token ? token->len : 0, NULL, NULL);
}

/* Publishes one event; returns 1 when the report holds `fragment`. */
static int pub(const net_mesh_t *m, const char *name, const char *text, const char *fragment)
{
    net_slice_t e;
    net_bytes_t report = {NULL, 0};
    int ok;
    e.ptr = (const uint8_t *)text;
    e.len = strlen(text);
    ok = CHECK_OK(net_mesh_publish(m, (const uint8_t *)name, strlen(name), &e, 1, false, &report)) &&
         json_has(&report, fragment);
    net_bytes_free(&report);
    return ok;
}

static void expect_on(const net_mesh_t *m, uint64_t peer, const char *text, const char *channel)
{
    uint64_t p = 0, s = 0;
    net_bytes_t data = {NULL, 0}, name = {NULL, 0};
    if (CHECK_OK(net_mesh_recv_next(m, WAIT_MS, &p, &s, &data, NULL, &name, NULL, NULL))) {
        CHECK_U64(p, peer);
        CHECK_MEM(data.ptr, data.len, text, strlen(text));
        CHECK_MEM(name.ptr, name.len, channel, strlen(channel));
    }
    net_bytes_free(&data);
    net_bytes_free(&name);
}

static void test_subscribe_publish_tokens(void)
{
    net_mesh_t *a = node_with(SEEDED), *b = node_with(CONFIG);
    net_identity_t *issuer = NULL;
    net_bytes_t entity = {NULL, 0}, token = {NULL, 0}, records = {NULL, 0};
    uint8_t seed[32];
    uint16_t hash = 0;
    uint64_t ida;
    size_t count = 0;
    net_error_t slot = error_slot();
    struct call_error err;
    if (a == NULL || b == NULL || !link_to(b, a)) {
        goto done;
    }
    ida = id_of(a);
    CHECK_STATUS(reg(a, "news", "{\"max_rate_pps\":0}"), NET_ERR_CHANNEL_CONFIG);
    CHECK(strstr(net_last_error_message(), "`max_rate_pps`") != NULL);
    CHECK_OK(reg(a, "news", "{\"reliable\":true}"));
    CHECK_OK(reg(a, "secret", "{\"require_token\":true}"));

    CHECK_OK(sub(b, ida, "news", NULL));
    CHECK_STATUS(net_mesh_subscribe(b, ida, (const uint8_t *)"nope", 4, NULL, 0, NULL, &slot),
                 NET_ERR_CHANNEL_UNKNOWN);
    if (error_take(&slot, &err)) {
        CHECK(err.status == NET_ERR_CHANNEL_UNKNOWN);
    }
    CHECK_STATUS(sub(b, ida, "secret", NULL), NET_ERR_CHANNEL_UNAUTHORIZED);
    memset(seed, 7, sizeof seed);
    if (CHECK_OK(net_identity_from_seed(seed, sizeof seed, &issuer)) && CHECK_OK(net_mesh_entity_id(b, &entity)) &&
        CHECK_OK(net_channel_hash((const uint8_t *)"secret", 6, &hash)) &&
        CHECK_OK(net_token_issue(issuer, entity.ptr, entity.len, NET_SCOPE_SUBSCRIBE, hash, 3600, 0, &token))) {
        CHECK_OK(sub(b, ida, "secret", &token));
    }

    CHECK(pub(a, "news", "n1", "\"attempted\":1,\"delivered\":1,\"errors\":[],\"evicted\":0"));
    expect_on(b, ida, "n1", "news");
    CHECK(pub(a, "secret", "s1", "\"delivered\":1"));
    if (CHECK_OK(net_mesh_recv_batch(b, 8, WAIT_MS, &records, &count, NULL, NULL))) {
        /* peer, stream, dropped (u64 each), len u32, channel_len u16, channel, bytes */
        CHECK(count == 1 && records.len == 30 + 6 + 2);
        CHECK(records.len == 38 && memcmp(records.ptr + 30, "secrets1", 8) == 0); /* name, then event */
    }
    net_bytes_free(&records);

    CHECK_OK(net_mesh_unsubscribe(b, ida, (const uint8_t *)"news", 4, NULL, NULL));
    CHECK(pub(a, "news", "gone", "\"attempted\":0"));
    CHECK(pub(a, "secret", "s2", "\"delivered\":1"));
    expect_on(b, ida, "s2", "secret");
done:
    net_bytes_free(&entity);
    net_bytes_free(&token);
    CHECK_OK(net_identity_free(issuer));
    CHECK_OK(net_mesh_free(a));
    CHECK_OK(net_mesh_free(b));
}

static void test_capabilities_three_nodes(void)
{
    net_mesh_t *a = node_with(CONFIG), *b = node_with(CONFIG), *c = node_with(CONFIG);
    static const char caps[] = "{\"tags\":[\"gpu\"],\"hardware\":{\"memory_mb\":4096}}";
    static const char query[] = "{\"filter\":{\"require_tags\":[\"gpu\"]}}";
    char fragment[64];
    net_bytes_t json = {NULL, 0};
    if (a == NULL || b == NULL || c == NULL || !link_to(a, b) || !link_to(c, b)) {
        goto done;
    }
    CHECK_OK(net_mesh_announce(c, (const uint8_t *)caps, strlen(caps)));
    CHECK_STATUS(net_mesh_announce(c, (const uint8_t *)"{\"tagz\":[]}", 11), NET_ERR_MESH_CAPABILITIES);
    CHECK(strstr(net_last_error_message(), "`tagz`") != NULL);
    /* List items may leave members out (defaults); an unknown one is named. */
    CHECK_OK(net_mesh_announce(c, (const uint8_t *)"{\"models\":[{\"model_id\":\"m\"}]}", 29));
    CHECK_STATUS(net_mesh_announce(c, (const uint8_t *)"{\"models\":[{\"bogus\":1}]}", 24),
                 NET_ERR_MESH_CAPABILITIES);
    CHECK(strstr(net_last_error_message(), "`models[0].bogus`") != NULL);
    CHECK_OK(net_mesh_announce(c, (const uint8_t *)caps, strlen(caps)));
    snprintf(fragment, sizeof fragment, "{\"nodes\":[%llu]}", (unsigned long long)id_of(c));
    if (wait_found(a, query, fragment)) {
        snprintf(fragment, sizeof fragment, "\"node_id\":%llu,", (unsigned long long)id_of(c));
        CHECK_OK(net_mesh_find_best_node(a, (const uint8_t *)query, strlen(query), &json));
        CHECK(json_has(&json, fragment));
        net_bytes_free(&json);
        CHECK_OK(net_mesh_capabilities(a, &json));
        CHECK(json_has(&json, "\"hop_count\":1"));
        net_bytes_free(&json);
    }
done:
    CHECK_OK(net_mesh_free(a));
    CHECK_OK(net_mesh_free(b));
    CHECK_OK(net_mesh_free(c));
}

static void test_relayed_subscriber(void)
{
    net_mesh_t *a = node_with(CONFIG), *r = node_with(CONFIG), *b = node_with(CONFIG);
    net_bytes_t key = {NULL, 0};
    if (a == NULL || r == NULL || b == NULL || !link_to(a, r) || !link_to(b, r)) {
        goto done;
    }
    if (CHECK_OK(net_mesh_public_key(a, &key)) &&
        CHECK_OK(net_mesh_connect_via(b, id_of(r), key.ptr, key.len, id_of(a), NULL, NULL)) &&
        CHECK_OK(reg(a, "relayed", "")) && CHECK_OK(sub(b, id_of(a), "relayed", NULL)) &&
        CHECK(pub(a, "relayed", "over r", "\"delivered\":1"))) {
        expect_on(b, id_of(a), "over r", "relayed");
    }
done:
    net_bytes_free(&key);
    CHECK_OK(net_mesh_free(a));
    CHECK_OK(net_mesh_free(r));
    CHECK_OK(net_mesh_free(b));
}

static void test_full_channel_and_spent_rate(void)
{
    net_mesh_t *a = node_with(CONFIG), *b = node_with(CONFIG), *c = node_with(CONFIG);
    net_slice_t e = {(const uint8_t *)"second", 6};
    net_bytes_t report = {NULL, 0};
    if (a == NULL || b == NULL || c == NULL || !link_to(b, a) || !link_to(c, a)) {
        goto done;
    }
    CHECK_OK(reg(a, "one", "{\"max_subscribers\":1}"));
    CHECK_OK(sub(b, id_of(a), "one", NULL));
    CHECK_OK(sub(b, id_of(a), "one", NULL)); /* idempotent at the cap */
    CHECK_STATUS(sub(c, id_of(a), "one", NULL), NET_ERR_CHANNEL_FULL);
    CHECK_OK(reg(a, "slow", "{\"max_rate_pps\":1}"));
    CHECK(pub(a, "slow", "first", "\"attempted\":0"));
    CHECK_STATUS(net_mesh_publish(a, (const uint8_t *)"slow", 4, &e, 1, false, &report),
                 NET_ERR_CHANNEL_RATE_LIMITED);
    CHECK(report.ptr == NULL);
done:
    CHECK_OK(net_mesh_free(a));
    CHECK_OK(net_mesh_free(b));
    CHECK_OK(net_mesh_free(c));
}

static net_identity_t *identity_of(uint8_t fill)
{
    uint8_t seed[32];
    net_identity_t *id = NULL;
    memset(seed, fill, sizeof seed);
    CHECK_OK(net_identity_from_seed(seed, sizeof seed, &id));
    return id;
}

/* Whether `publisher` accepts `token` for C's subscription to "chain". */
static net_status_t sub_with(const net_mesh_t *c, uint64_t publisher, const net_bytes_t *token)
{
    return sub(c, publisher, "chain", token);
}

/* A SUBSCRIBE token from `signer` to `subject` claiming `parent`'s lifetime
 * and channel with depth 0, signed by hand: what a holder of a spent depth
 * would forge (IDENTITY.md §4.1 layout, signature over bytes 0..95). */
static int forge_child(const net_identity_t *signer, const net_bytes_t *parent, const net_bytes_t *subject,
                       uint8_t out[NET_TOKEN_SIZE])
{
    net_token_info_t info;
    net_bytes_t key = {NULL, 0}, sig = {NULL, 0};
    int ok = CHECK_OK(net_token_parse(parent->ptr, parent->len, &info)) &&
             CHECK_OK(net_identity_public_key(signer, &key)) && CHECK(key.len == 32 && subject->len == 32);
    if (ok) {
        uint32_t scope = NET_SCOPE_SUBSCRIBE;
        uint64_t nonce = 0x5eed;
        memcpy(out, key.ptr, 32);
        memcpy(out + 32, subject->ptr, 32);
        for (int i = 0; i < 4; i++) {
            out[64 + i] = (uint8_t)(scope >> (8 * i));
        }
        out[68] = (uint8_t)info.channel_hash;
        out[69] = (uint8_t)(info.channel_hash >> 8);
        for (int i = 0; i < 8; i++) {
            out[70 + i] = (uint8_t)(info.not_before >> (8 * i));
            out[78 + i] = (uint8_t)(info.not_after >> (8 * i));
            out[87 + i] = (uint8_t)(nonce >> (8 * i));
        }
        out[86] = 0;
        ok = CHECK_OK(net_identity_sign(signer, out, 95, &sig)) && CHECK(sig.len == 64);
        if (ok) {
            memcpy(out + 95, sig.ptr, 64);
            ok = CHECK_OK(net_token_verify(out, NET_TOKEN_SIZE));
        }
    }
    net_bytes_free(&key);
    net_bytes_free(&sig);
    return ok;
}

static void test_token_chains(void)
{
    net_mesh_t *p = node_with(CONFIG), *c = node_with(CONFIG);
    net_identity_t *ida = identity_of(0xa1), *idb = identity_of(0xb2), *idd = identity_of(0xd3),
                   *idu = identity_of(0xe4);
    net_bytes_t a_entity = {NULL, 0}, b_entity = {NULL, 0}, d_entity = {NULL, 0}, c_entity = {NULL, 0};
    net_bytes_t parent = {NULL, 0}, leaf = {NULL, 0}, middle = {NULL, 0}, refused = {NULL, 0};
    net_bytes_t rogue_parent = {NULL, 0}, rogue_leaf = {NULL, 0}, rogue_direct = {NULL, 0};
    net_bytes_t forged = {NULL, 0};
    uint8_t grandchild[NET_TOKEN_SIZE];
    net_token_info_t info;
    char config[256], hex[65];
    uint16_t hash = 0;
    uint64_t idp;
    if (p == NULL || c == NULL || ida == NULL || idb == NULL || idd == NULL || idu == NULL || !link_to(c, p) ||
        !CHECK_OK(net_identity_entity_id(ida, &a_entity)) || !CHECK_OK(net_identity_entity_id(idb, &b_entity)) ||
        !CHECK_OK(net_identity_entity_id(idd, &d_entity)) || !CHECK_OK(net_mesh_entity_id(c, &c_entity)) ||
        !CHECK_OK(net_channel_hash((const uint8_t *)"chain", 5, &hash))) {
        goto done;
    }
    idp = id_of(p);
    for (size_t i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", a_entity.ptr[i]);
    }
    snprintf(config, sizeof config, "{\"require_token\":true,\"trusted_issuers\":[\"%s\"]}", hex);
    CHECK_OK(reg(p, "chain", config));

    /* A -> B (SUBSCRIBE | DELEGATE, depth 1) -> C. */
    if (!CHECK_OK(net_token_issue(ida, b_entity.ptr, 32, NET_SCOPE_SUBSCRIBE | NET_SCOPE_DELEGATE, hash, 3600, 1,
                                  &parent)) ||
        !CHECK_OK(net_token_delegate(idb, parent.ptr, parent.len, c_entity.ptr, 32, NET_SCOPE_SUBSCRIBE, &leaf))) {
        goto done;
    }
    /* The Subscribe carries only the leaf: refused until P holds the parent. */
    CHECK_STATUS(sub_with(c, idp, &leaf), NET_ERR_CHANNEL_UNAUTHORIZED);

    /* A chain rooted at U, whom the channel does not trust, even with U's
     * parent installed; and U's direct token. (Before A's parent is
     * installed: the publisher pins one parent per subject, channel and
     * scope, the newest replacing the older, so A's parent replaces U's.) */
    if (CHECK_OK(net_token_issue(idu, b_entity.ptr, 32, NET_SCOPE_SUBSCRIBE | NET_SCOPE_DELEGATE, hash, 3600, 1,
                                 &rogue_parent)) &&
        CHECK_OK(net_token_delegate(idb, rogue_parent.ptr, rogue_parent.len, c_entity.ptr, 32, NET_SCOPE_SUBSCRIBE,
                                    &rogue_leaf)) &&
        CHECK_OK(net_token_issue(idu, c_entity.ptr, 32, NET_SCOPE_SUBSCRIBE, hash, 3600, 0, &rogue_direct))) {
        CHECK_OK(net_mesh_install_channel_token(p, rogue_parent.ptr, rogue_parent.len));
        CHECK_STATUS(sub_with(c, idp, &rogue_leaf), NET_ERR_CHANNEL_UNAUTHORIZED);
        CHECK_STATUS(sub_with(c, idp, &rogue_direct), NET_ERR_CHANNEL_UNAUTHORIZED);
    }
    /* One link past the depth: A -> B -> D (depth 0) -> C. */
    if (CHECK_OK(net_token_delegate(idb, parent.ptr, parent.len, d_entity.ptr, 32, NET_SCOPE_ALL, &middle)) &&
        CHECK_OK(net_token_parse(middle.ptr, middle.len, &info))) {
        CHECK(info.delegation_depth == 0);
        CHECK_STATUS(net_token_delegate(idd, middle.ptr, middle.len, c_entity.ptr, 32, NET_SCOPE_SUBSCRIBE, &refused),
                     NET_ERR_TOKEN_DELEGATION_EXHAUSTED);
        CHECK(refused.ptr == NULL);
        if (forge_child(idd, &middle, &c_entity, grandchild)) {
            forged.ptr = grandchild;
            forged.len = sizeof grandchild;
            CHECK_OK(net_mesh_install_channel_token(p, parent.ptr, parent.len));
            CHECK_OK(net_mesh_install_channel_token(p, middle.ptr, middle.len));
            CHECK_STATUS(sub_with(c, idp, &forged), NET_ERR_CHANNEL_UNAUTHORIZED);
        }
    }

    CHECK_STATUS(net_mesh_install_channel_token(p, leaf.ptr, 100), NET_ERR_TOKEN_INVALID_FORMAT);

    /* The parent is installed now: the proper leaf subscribes and receives. */
    if (CHECK_OK(sub_with(c, idp, &leaf))) {
        CHECK(pub(p, "chain", "chained", "\"delivered\":1"));
        expect_on(c, idp, "chained", "chain");
    }
done:
    {
        net_bytes_t *owned[] = {&a_entity, &b_entity, &d_entity, &c_entity, &parent,
                                &leaf, &middle, &rogue_parent, &rogue_leaf, &rogue_direct};
        for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) {
            net_bytes_free(owned[i]);
        }
    }
    CHECK_OK(net_identity_free(ida));
    CHECK_OK(net_identity_free(idb));
    CHECK_OK(net_identity_free(idd));
    CHECK_OK(net_identity_free(idu));
    CHECK_OK(net_mesh_free(p));
    CHECK_OK(net_mesh_free(c));
}

static void test_after_free(void)
{
    net_mesh_t *m = node_with(CONFIG);
    net_bytes_t json = {NULL, 0};
    net_slice_t e = {(const uint8_t *)"x", 1};
    if (m == NULL) {
        return;
    }
    CHECK_STATUS(net_mesh_channels(NULL, &json), NET_ERR_INVALID_ARGUMENT);
    CHECK_OK(net_mesh_free(m));
    CHECK_STATUS(reg(m, "news", ""), NET_ERR_SHUTTING_DOWN);
    CHECK_STATUS(sub(m, 1, "news", NULL), NET_ERR_SHUTTING_DOWN);
    CHECK_STATUS(net_mesh_publish(m, (const uint8_t *)"news", 4, &e, 1, false, &json), NET_ERR_SHUTTING_DOWN);
    CHECK_STATUS(net_mesh_channels(m, &json), NET_ERR_SHUTTING_DOWN);
    CHECK_STATUS(net_mesh_announce(m, (const uint8_t *)"{}", 2), NET_ERR_SHUTTING_DOWN);
    CHECK_STATUS(net_mesh_find_nodes(m, NULL, 0, &json), NET_ERR_SHUTTING_DOWN);
    CHECK(json.ptr == NULL);
}

int main(void)
{
    RUN_TEST(test_subscribe_publish_tokens);
    RUN_TEST(test_capabilities_three_nodes);
    RUN_TEST(test_relayed_subscriber);
    RUN_TEST(test_full_channel_and_spent_rate);
    RUN_TEST(test_token_chains);
    RUN_TEST(test_after_free);
    return check_finish("test_mesh_channels");
}
