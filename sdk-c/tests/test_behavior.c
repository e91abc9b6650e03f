/*
 * The behavior plane from C: a rules engine (JSON rule set in, matched
 * actions JSON out), a safety envelope whose permits hold their claims
 * until freed (exact cap under racing threads, kill switch, limits update,
 * audit), and a load balancer whose selections release their slot.
 */
#define _POSIX_C_SOURCE 200809L

#include "check.h"

#define S(lit) (const uint8_t *)(lit), strlen(lit)

static int bytes_contain(net_bytes_t b, const char *needle)
{
    size_t n = strlen(needle);
    if (b.len < n) return 0;
    for (size_t i = 0; i + n <= b.len; i++)
        if (memcmp(b.ptr + i, needle, n) == 0) return 1;
    return 0;
}

static const char RULES[] =
    "{\"name\": \"edge\", \"rules\": [{\"id\": \"big\", \"priority\": \"high\","
    " \"condition\": {\"single\": {\"field\": \"size\", \"op\": \"Gt\", \"value\": 1000}},"
    " \"action\": {\"reject\": {\"reason\": \"too large\"}},"
    " \"rate_limit\": {\"max_executions\": 1, \"window_ms\": 3600000}}]}";

static void test_rules(void)
{
    net_rules_t *rules = NULL;
    CHECK_OK(net_rules_new(S(RULES), &rules));
    net_bytes_t out = {0};
    CHECK_OK(net_rules_evaluate(rules, S("{\"size\": 5000.0}"), NULL, 0, &out));
    CHECK(bytes_contain(out, "\"too large\""));
    net_bytes_free(&out);
    CHECK_OK(net_rules_evaluate(rules, S("{\"size\": 5000}"), NULL, 0, &out));
    CHECK(bytes_contain(out, "\"rate_limited\""));
    net_bytes_free(&out);
    CHECK_OK(net_rules_stats(rules, S("big"), &out));
    CHECK(bytes_contain(out, "\"executions\":1"));
    net_bytes_free(&out);
    CHECK_STATUS(net_rules_stats(rules, S("nope"), &out), NET_ERR_RULES_UNKNOWN_RULE);
    CHECK(out.ptr == NULL);
    CHECK_STATUS(net_rules_evaluate(rules, S("{broken"), NULL, 0, &out), NET_ERR_RULES_INVALID);
    CHECK(strstr(net_last_error_message(), "context") != NULL);
    CHECK_OK(net_rules_to_json(rules, &out));
    net_rules_t *again = NULL;
    CHECK_OK(net_rules_new(out.ptr, out.len, &again));
    net_bytes_free(&out);
    CHECK_OK(net_rules_free(again));
    CHECK_STATUS(net_rules_new(S("{\"name\": \"x\", \"rulez\": []}"), &again), NET_ERR_RULES_INVALID);
    CHECK(strstr(net_last_error_message(), "rulez") != NULL);
    CHECK_OK(net_rules_free(rules));
    CHECK_OK(net_rules_free(rules));
    CHECK_STATUS(net_rules_to_json(rules, &out), NET_ERR_SHUTTING_DOWN);
}

static void test_safety(void)
{
    net_safety_t *safety = NULL;
    CHECK_OK(net_safety_new(S("{\"limits\": {\"max_concurrent\": 1},"
                              " \"policies\": [{\"name\": \"no-secrets\", \"rule\": {\"block\": \"(?i)password\"}}]}"),
                            &safety));
    net_safety_permit_t *permit = NULL, *other = NULL;
    CHECK_OK(net_safety_acquire(safety, S("{\"source\": \"a\", \"tokens\": 10}"), &permit));
    CHECK_STATUS(net_safety_acquire(safety, S("{\"source\": \"b\"}"), &other), NET_ERR_SAFETY_LIMIT);
    CHECK(other == NULL);
    CHECK_OK(net_safety_permit_consume(permit, 4, 0));
    CHECK_OK(net_safety_permit_free(permit));
    CHECK_OK(net_safety_permit_free(permit));
    net_bytes_t out = {0};
    CHECK_OK(net_safety_usage(safety, &out));
    CHECK(bytes_contain(out, "\"concurrent\":0"));
    CHECK(bytes_contain(out, "\"tokens_last_minute\":4"));
    net_bytes_free(&out);
    CHECK_STATUS(net_safety_acquire(safety, S("{\"source\": \"a\", \"content\": \"my password\"}"), &other),
                 NET_ERR_SAFETY_CONTENT);
    CHECK_OK(net_safety_kill(safety, S("maintenance"), 0));
    CHECK_STATUS(net_safety_check(safety, S("{\"source\": \"a\"}"), &out), NET_ERR_SAFETY_KILL_SWITCH);
    CHECK(strstr(net_last_error_message(), "maintenance") != NULL);
    CHECK_OK(net_safety_reset_kill_switch(safety));
    CHECK_OK(net_safety_set_limits(safety, S("{\"per_source_rpm\": 1}")));
    CHECK_OK(net_safety_acquire(safety, S("{\"source\": \"fresh\"}"), &permit));
    CHECK_OK(net_safety_permit_free(permit));
    CHECK_STATUS(net_safety_acquire(safety, S("{\"source\": \"fresh\"}"), &other), NET_ERR_SAFETY_RATE_LIMITED);
    CHECK_STATUS(net_safety_set_limits(safety, S("{\"per_source_rmp\": 1}")), NET_ERR_SAFETY_CONFIG);
    CHECK(strstr(net_last_error_message(), "per_source_rmp") != NULL);
    CHECK_OK(net_safety_audit(safety, true, &out));
    CHECK(bytes_contain(out, "\"blocked\""));
    net_bytes_free(&out);
    CHECK_OK(net_safety_free(safety));
}

#define RACERS 32
static net_safety_t *race_safety;
static int admitted[RACERS];
static net_safety_permit_t *race_permits[RACERS];
static pthread_barrier_t race_start;

static void *racer(void *arg)
{
    size_t i = (size_t)arg;
    pthread_barrier_wait(&race_start);
    int status = net_safety_acquire(race_safety, S("{\"source\": \"r\"}"), &race_permits[i]);
    admitted[i] = status == NET_OK;
    CHECK(status == NET_OK || status == NET_ERR_SAFETY_LIMIT);
    return NULL;
}

static void test_safety_exact_cap_racing(void)
{
    CHECK_OK(net_safety_new(S("{\"limits\": {\"max_concurrent\": 4}}"), &race_safety));
    pthread_t threads[RACERS];
    pthread_barrier_init(&race_start, NULL, RACERS);
    for (size_t i = 0; i < RACERS; i++) pthread_create(&threads[i], NULL, racer, (void *)i);
    int total = 0;
    for (size_t i = 0; i < RACERS; i++) {
        pthread_join(threads[i], NULL);
        total += admitted[i];
    }
    pthread_barrier_destroy(&race_start);
    CHECK(total == 4);
    for (size_t i = 0; i < RACERS; i++)
        if (admitted[i]) CHECK_OK(net_safety_permit_free(race_permits[i]));
    CHECK_OK(net_safety_free(race_safety));
}

static void test_lb(void)
{
    net_lb_t *lb = NULL;
    CHECK_OK(net_lb_new(S("{\"strategy\": \"power_of_two\", \"seed\": 3, \"max_connections\": 1}"), &lb));
    uint8_t one[32], two[32];
    memset(one, 1, sizeof one);
    memset(two, 2, sizeof two);
    net_lb_selection_t *sel = NULL, *other = NULL;
    CHECK_STATUS(net_lb_select(lb, NULL, 0, &sel), NET_ERR_LB_NO_ENDPOINT);
    CHECK_OK(net_lb_add(lb, one, 32, NULL, 0));
    CHECK_OK(net_lb_add(lb, two, 32, S("{\"tags\": [\"gpu\"]}")));
    CHECK_STATUS(net_lb_add(lb, two, 32, NULL, 0), NET_ERR_LB_DUPLICATE_ENDPOINT);
    CHECK_STATUS(net_lb_add(lb, one, 31, NULL, 0), NET_ERR_INVALID_ARGUMENT);
    CHECK_OK(net_lb_select(lb, S("{\"required_tags\": [\"gpu\"]}"), &sel));
    net_bytes_t id = {0};
    bool probe = true;
    CHECK_OK(net_lb_selection_id(sel, &id, &probe));
    CHECK_BYTES(id, two, 32);
    CHECK(!probe);
    net_bytes_free(&id);
    CHECK_OK(net_lb_selection_complete(sel, true));
    CHECK_STATUS(net_lb_selection_complete(sel, true), NET_ERR_INVALID_ARGUMENT);
    CHECK_OK(net_lb_selection_free(sel));
    CHECK_OK(net_lb_select(lb, NULL, 0, &sel));
    CHECK_OK(net_lb_select(lb, NULL, 0, &other));
    net_lb_selection_t *third = NULL;
    CHECK_STATUS(net_lb_select(lb, NULL, 0, &third), NET_ERR_LB_NO_ENDPOINT);
    CHECK_OK(net_lb_selection_free(sel));   /* released without completing */
    CHECK_OK(net_lb_free(lb));              /* the other selection outlives it */
    CHECK_OK(net_lb_selection_complete(other, false));
    CHECK_OK(net_lb_selection_free(other));
}

static net_rules_t *race_rules;
static pthread_barrier_t free_start;

static void *evaluator(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&free_start);
    for (int i = 0; i < 200; i++) {
        net_bytes_t out = {0};
        int status = net_rules_evaluate(race_rules, S("{\"size\": 5000}"), NULL, 0, &out);
        CHECK(status == NET_OK || status == NET_ERR_SHUTTING_DOWN);
        net_bytes_free(&out);
        if (status == NET_ERR_SHUTTING_DOWN) break;
    }
    return NULL;
}

/* Threads evaluate while the engine is freed (twice, concurrently): every
 * call finishes or is refused with NET_ERR_SHUTTING_DOWN, both frees
 * return NET_OK, and ASan sees no use after free. */
static void test_free_races_calls_in_flight(void)
{
    for (int round = 0; round < 20; round++) {
        CHECK_OK(net_rules_new(S(RULES), &race_rules));
        pthread_t threads[4];
        pthread_barrier_init(&free_start, NULL, 5);
        for (int i = 0; i < 4; i++) pthread_create(&threads[i], NULL, evaluator, NULL);
        pthread_barrier_wait(&free_start);
        CHECK_OK(net_rules_free(race_rules));
        CHECK_OK(net_rules_free(race_rules));
        for (int i = 0; i < 4; i++) pthread_join(threads[i], NULL);
        pthread_barrier_destroy(&free_start);
        net_bytes_t out = {0};
        CHECK_STATUS(net_rules_to_json(race_rules, &out), NET_ERR_SHUTTING_DOWN);
    }
}

int main(void)
{
    RUN_TEST(test_rules);
    RUN_TEST(test_safety);
    RUN_TEST(test_safety_exact_cap_racing);
    RUN_TEST(test_lb);
    RUN_TEST(test_free_races_calls_in_flight);
    return check_finish("test_behavior");
}
