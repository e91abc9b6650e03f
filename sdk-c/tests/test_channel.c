/*
 * Channel names: the Net v0.11 hash vectors and the naming rules.
 */
#define _POSIX_C_SOURCE 200809L

#include "check.h"

struct hash_vector {
    const char *name;
    uint16_t hash;
};

/* tests/vectors/channels.json: hashes[*].name / hash_u16 */
static const struct hash_vector HASHES[] = {
    {"sensors/lidar", 0xe5d8},
    {"cortex/tasks", 0xca60},
    {"cortex/memories", 0xe90c},
    {"a", 0x4e1f},
    {"lab/room-1/temp_C.v2", 0x844f},
    {"interop/demo", 0xdeed},
};

/* tests/vectors/channels.json: name_validation[*] with valid = false (except the 256-char one, built below) */
static const char *const INVALID_NAMES[] = {
    "",      /* empty */
    "/a",    /* leading slash */
    "a/",    /* trailing slash */
    "a//b",  /* double slash */
    "a/./b", /* dot segment */
    "../a",  /* dotdot segment */
    "a b",   /* space */
    "a:b",   /* colon */
    "caf\xc3\xa9", /* non-ascii: "café" in UTF-8 */
};

/* tests/vectors/channels.json: name_validation[*] with valid = true (except the 255-char one) */
static const char *const VALID_NAMES[] = {
    "a/.b/c..d", /* dots inside segment ok */
    "...",       /* single dot-ish ok */
};

static const uint8_t *u8(const char *s) { return (const uint8_t *)s; }

static void test_hash_vectors(void)
{
    size_t i;
    for (i = 0; i < sizeof HASHES / sizeof HASHES[0]; i++) {
        uint16_t h = 0;
        CHECK_OK(net_channel_validate(u8(HASHES[i].name), strlen(HASHES[i].name)));
        CHECK_OK(net_channel_hash(u8(HASHES[i].name), strlen(HASHES[i].name), &h));
        if (!CHECK_U64(h, HASHES[i].hash)) {
            fprintf(stderr, "       channel \"%s\"\n", HASHES[i].name);
        }
    }
}

static void test_invalid_names(void)
{
    size_t i;
    for (i = 0; i < sizeof INVALID_NAMES / sizeof INVALID_NAMES[0]; i++) {
        const char *name = INVALID_NAMES[i];
        uint16_t h = 0x5a5a;
        if (!CHECK_STATUS(net_channel_validate(u8(name), strlen(name)),
                          NET_ERR_CHANNEL_INVALID_NAME)) {
            fprintf(stderr, "       channel \"%s\"\n", name);
        }
        CHECK(strlen(net_last_error_message()) > 0);
        CHECK_STATUS(net_channel_hash(u8(name), strlen(name), &h), NET_ERR_CHANNEL_INVALID_NAME);
        CHECK(h == 0x5a5a); /* untouched on failure */
    }
    /* Empty via NULL with length 0. */
    CHECK_STATUS(net_channel_validate(NULL, 0), NET_ERR_CHANNEL_INVALID_NAME);
}

static void test_valid_names_and_length_limit(void)
{
    char name[257];
    uint16_t h = 0;
    size_t i;

    for (i = 0; i < sizeof VALID_NAMES / sizeof VALID_NAMES[0]; i++) {
        CHECK_OK(net_channel_validate(u8(VALID_NAMES[i]), strlen(VALID_NAMES[i])));
        CHECK_OK(net_channel_hash(u8(VALID_NAMES[i]), strlen(VALID_NAMES[i]), &h));
    }
    /* channels.json: "255 chars" valid, "256 chars" TooLong(256) */
    memset(name, 'x', sizeof name);
    CHECK_OK(net_channel_validate(u8(name), 255));
    CHECK_STATUS(net_channel_validate(u8(name), 256), NET_ERR_CHANNEL_INVALID_NAME);
    CHECK_STATUS(net_channel_hash(u8(name), 256, &h), NET_ERR_CHANNEL_INVALID_NAME);
}

static void test_argument_errors(void)
{
    static const uint8_t not_utf8[] = {'a', 0xff, 'b'};
    uint16_t h = 0;
    /* Not UTF-8 is an argument error, not a naming-rule error. */
    CHECK_STATUS(net_channel_validate(not_utf8, sizeof not_utf8), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_channel_hash(not_utf8, sizeof not_utf8, &h), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_channel_validate(NULL, 3), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_channel_hash(u8("a"), 1, NULL), NET_ERR_INVALID_ARGUMENT);
    /* The length is honoured: no NUL terminator needed or read. */
    CHECK_OK(net_channel_hash(u8("sensors/lidar/extra"), 13, &h));
    CHECK_U64(h, 0xe5d8);
}

int main(void)
{
    RUN_TEST(test_hash_vectors);
    RUN_TEST(test_invalid_names);
    RUN_TEST(test_valid_names_and_length_limit);
    RUN_TEST(test_argument_errors);
    return check_finish("test_channel");
}
