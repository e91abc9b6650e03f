/*
 * cortex_util.h: helpers shared by the CortEX C tests (test_cortex.c,
 * test_cortex_races.c). Header-only, like check.h and redex_util.h.
 *
 *  - json_has(): substring checks on the JSON libnet returns (the tests
 *    assert on exact fragments such as "\"id\":9223372036854788153");
 *  - task_create() / memory_store(): writes that CHECK their status;
 *  - a gate: a worker signals it is about to make its call.
 */
#ifndef NET_SDK_C_CORTEX_UTIL_H
#define NET_SDK_C_CORTEX_UTIL_H

#include "redex_util.h"

/* Whether the JSON in `b` contains `fragment`. */
static inline int json_has(const net_bytes_t *b, const char *fragment)
{
    size_t n = strlen(fragment), i;
    if (b->ptr == NULL || b->len < n) {
        return 0;
    }
    for (i = 0; i + n <= b->len; i++) {
        if (memcmp(b->ptr + i, fragment, n) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Occurrences of `fragment` in the JSON in `b`. */
static inline size_t json_count(const net_bytes_t *b, const char *fragment)
{
    size_t n = strlen(fragment), i, count = 0;
    for (i = 0; b->ptr != NULL && i + n <= b->len; i++) {
        if (memcmp(b->ptr + i, fragment, n) == 0) {
            count++;
        }
    }
    return count;
}

static inline uint64_t task_create(const net_model_t *t, uint64_t id, const char *title)
{
    uint64_t seq = UINT64_MAX;
    CHECK_OK(net_tasks_create(t, id, (const uint8_t *)title, strlen(title), &seq));
    return seq;
}

static inline uint64_t memory_store(const net_model_t *m, uint64_t id,
                                    const char *content, const char *tag, const char *source)
{
    uint64_t seq = UINT64_MAX;
    net_slice_t tags[1];
    tags[0].ptr = (const uint8_t *)tag;
    tags[0].len = tag ? strlen(tag) : 0;
    CHECK_OK(net_memories_store(m, id, (const uint8_t *)content, strlen(content),
                                tag ? tags : NULL, tag ? 1 : 0, (const uint8_t *)source,
                                strlen(source), &seq));
    return seq;
}

#define FILTER(s) (const uint8_t *)(s), strlen(s)

struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int open;
};

static inline void gate_init(struct gate *g)
{
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->open = 0;
}

static inline void gate_signal(struct gate *g)
{
    pthread_mutex_lock(&g->lock);
    g->open = 1;
    pthread_cond_signal(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

static inline void gate_wait(struct gate *g)
{
    pthread_mutex_lock(&g->lock);
    while (!g->open) {
        pthread_cond_wait(&g->cond, &g->lock);
    }
    pthread_mutex_unlock(&g->lock);
}

static inline void gate_destroy(struct gate *g)
{
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->cond);
}

#endif /* NET_SDK_C_CORTEX_UTIL_H */
