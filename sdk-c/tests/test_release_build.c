/*
 * The shipped libnet is a release build: the test-only bus adapters
 * ("memory", "discard") exist only in libnet's `test-util` builds, so its C
 * configuration refuses them with NET_ERR_BUS_CONFIG and says why, while
 * the embedded adapter (memory files without "dir") takes their place.
 */
#define _POSIX_C_SOURCE 200809L

#include "check.h"

static net_status_t new_bus(const char *config, net_bus_t **out)
{
    return net_bus_new((const uint8_t *)config, strlen(config), out);
}

static void test_test_only_adapters_are_refused(void)
{
    static const char *const CONFIGS[] = {
        "{\"adapter\":{\"type\":\"memory\"}}",
        "{\"adapter\":{\"type\":\"discard\"}}",
    };
    size_t i;
    for (i = 0; i < sizeof CONFIGS / sizeof CONFIGS[0]; i++) {
        net_bus_t *bus = NULL;
        if (CHECK_STATUS(new_bus(CONFIGS[i], &bus), NET_ERR_BUS_CONFIG)) {
            CHECK(strstr(net_last_error_message(), "test-only") != NULL);
        }
        CHECK(bus == NULL);
    }
}

static void test_the_embedded_adapter_stands_in(void)
{
    net_bus_t *bus = NULL;
    if (!CHECK_OK(new_bus("{\"num_shards\":2,\"adapter\":{\"type\":\"redex\"}}", &bus))) {
        return;
    }
    CHECK_OK(net_bus_ingest_raw(bus, (const uint8_t *)"x", 1));
    net_bus_free(bus);
}

int main(void)
{
    RUN_TEST(test_test_only_adapters_are_refused);
    RUN_TEST(test_the_embedded_adapter_stands_in);
    return check_finish("test_release_build");
}
