/*
 * test_soak.c: ten million identity handles created and freed; the
 * process's memory stays flat, because libnet reuses the slot of a freed
 * handle instead of keeping something behind for every handle ever made.
 * A stale pointer to a reused slot is still refused.
 */
#include <stdio.h>
#include <unistd.h>

#include "check.h"

/* Resident set size in KiB (Linux). */
static long rss_kib(void)
{
    long pages_total = 0, pages_resident = 0;
    FILE *statm = fopen("/proc/self/statm", "r");
    if (!statm) return -1;
    if (fscanf(statm, "%ld %ld", &pages_total, &pages_resident) != 2) pages_resident = -1;
    fclose(statm);
    return pages_resident < 0 ? -1 : pages_resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void test_ten_million_handles_keep_memory_flat(void)
{
    static const uint8_t seed[NET_SEED_LEN] = {7};
    net_identity_t *origin = NULL;
    CHECK_OK(net_identity_from_seed(seed, sizeof seed, &origin));
    net_identity_t *first = NULL;
    CHECK_OK(net_identity_clone(origin, &first));
    CHECK_OK(net_identity_free(first));

    long warm = 0;
    const long total = 10L * 1000 * 1000;
    for (long i = 0; i < total; i++) {
        net_identity_t *copy = NULL;
        if (net_identity_clone(origin, &copy) != NET_OK || net_identity_free(copy) != NET_OK) {
            CHECK(0 && "clone + free failed");
            break;
        }
        if (i == 1000 * 1000) warm = rss_kib();
    }
    long after = rss_kib();
    fprintf(stderr, "  rss after 1M handles: %ld KiB, after 10M: %ld KiB\n", warm, after);
    CHECK(warm > 0 && after > 0);
    /* Nine million more handles may not cost memory (1 MiB of slack for the
     * allocator's own bookkeeping). */
    CHECK(after - warm < 1024);

    /* The first handle's slot has been reused millions of times since;
     * its pointer is still refused, not mistaken for a live handle. */
    net_bytes_t key = {NULL, 0};
    CHECK_STATUS(net_identity_public_key(first, &key), NET_ERR_SHUTTING_DOWN);
    CHECK_OK(net_identity_free(first));
    CHECK_OK(net_identity_free(origin));
}

int main(void)
{
    RUN_TEST(test_ten_million_handles_keep_memory_flat);
    return check_finish("test_soak");
}
