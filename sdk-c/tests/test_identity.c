/*
 * Identity: the Net v0.11 vectors, sign/verify, read-only identities,
 * argument checking, the thread-local error message, net_bytes_free and the
 * version calls.
 */
#define _POSIX_C_SOURCE 200809L

#include "check.h"

#ifndef NET_EXPECTED_VERSION
#error "build with -DNET_EXPECTED_VERSION=\"$(pkg-config --modversion net)\""
#endif

/* tests/vectors/identity.json: vectors[*].sign_message_ascii */
static const char VECTOR_MESSAGE[] = "net-spec-vector";

struct identity_vector {
    const char *label;
    const char *seed;       /* vectors[i].seed */
    const char *public_key; /* vectors[i].ed25519_public_key */
    uint64_t origin_hash;   /* vectors[i].origin_hash_u64 */
    uint64_t node_id;       /* vectors[i].node_id_u64 */
    const char *signature;  /* vectors[i].ed25519_signature over VECTOR_MESSAGE */
};

/* tests/vectors/identity.json: vectors[0..2] (labels A, B, C). */
static const struct identity_vector VECTORS[3] = {
    {"A", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
     "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8",
     UINT64_C(0x782a3238801976bf), UINT64_C(0xbd826a5d0a6394f5),
     "817fc208e7aa0e5da310fb70c31379a4037ac2afba938428521a6e72c8761768"
     "d24b2e581b29120a97c0a39e5512f42f3c94fd38496dabc3d0ce98d4dfa0c604"},
    {"B", "4242424242424242424242424242424242424242424242424242424242424242",
     "2152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db12",
     UINT64_C(0xc162c80da6be3de4), UINT64_C(0xc211b9fddfaef86d),
     "98edc817a20b18052051455b4546d02ea2a86b2e71f74c3cc63bc5d9a852334a"
     "e225e4a52f2f88d9732283a03794f6a306a184d603c031eaca005ac7480ead00"},
    {"C", "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
     "76a1592044a6e4f511265bca73a604d90b0529d1df602be30a19a9257660d1f5",
     UINT64_C(0x93f095f2867796a0), UINT64_C(0x7856e43875f9c0a7),
     "ad67cf47c8f77d077027434d714dcf979fdd6d03490c2e5241ba4c680fc6486e"
     "5535cac55a9f9ee4ebc2482432654e9edc8e3aca98f02fe3d19d659e0b8a6200"},
};

static const uint8_t *msg_bytes(const char *s) { return (const uint8_t *)s; }

static void test_identity_vectors(void)
{
    size_t i;
    for (i = 0; i < 3; i++) {
        const struct identity_vector *v = &VECTORS[i];
        uint8_t seed[32], pk[32], sig[64];
        net_identity_t *id = NULL;
        net_bytes_t b = {NULL, 0};
        uint64_t u = 0;
        bool read_only = true;

        hex_exact(v->seed, seed, sizeof seed);
        hex_exact(v->public_key, pk, sizeof pk);
        hex_exact(v->signature, sig, sizeof sig);

        if (!CHECK_OK(net_identity_from_seed(seed, sizeof seed, &id))) {
            continue;
        }
        CHECK(id != NULL);

        CHECK_OK(net_identity_public_key(id, &b));
        CHECK_BYTES(b, pk, sizeof pk);
        net_bytes_free(&b);

        CHECK_OK(net_identity_entity_id(id, &b));
        CHECK_BYTES(b, pk, sizeof pk);
        net_bytes_free(&b);

        CHECK_OK(net_identity_seed(id, &b));
        CHECK_BYTES(b, seed, sizeof seed);
        net_bytes_free(&b);

        CHECK_OK(net_identity_origin_hash(id, &u));
        CHECK_U64(u, v->origin_hash);
        CHECK_OK(net_identity_node_id(id, &u));
        CHECK_U64(u, v->node_id);

        CHECK_OK(net_identity_is_read_only(id, &read_only));
        CHECK(read_only == false);

        CHECK_OK(net_identity_sign(id, msg_bytes(VECTOR_MESSAGE), strlen(VECTOR_MESSAGE), &b));
        CHECK_BYTES(b, sig, sizeof sig);
        net_bytes_free(&b);

        CHECK_OK(net_identity_verify(id, msg_bytes(VECTOR_MESSAGE), strlen(VECTOR_MESSAGE), sig,
                                     sizeof sig));
        CHECK_OK(net_identity_free(id));
    }
}

static void test_sign_verify_round_trip(void)
{
    static const char message[] = "hello, mesh";
    static const char other[] = "hello, mess";
    net_identity_t *a = NULL, *b = NULL;
    net_bytes_t sig = {NULL, 0}, pk_a = {NULL, 0}, pk_b = {NULL, 0};
    uint8_t bad_sig[64];

    if (!CHECK_OK(net_identity_generate(&a)) || !CHECK_OK(net_identity_generate(&b))) {
        CHECK_OK(net_identity_free(a));
        return;
    }
    CHECK_OK(net_identity_public_key(a, &pk_a));
    CHECK_OK(net_identity_public_key(b, &pk_b));
    CHECK(pk_a.len == 32 && pk_b.len == 32);
    CHECK(pk_a.ptr != NULL && pk_b.ptr != NULL && memcmp(pk_a.ptr, pk_b.ptr, 32) != 0);

    CHECK_OK(net_identity_sign(a, msg_bytes(message), strlen(message), &sig));
    CHECK(sig.ptr != NULL && sig.len == NET_SIGNATURE_LEN);
    if (sig.len == NET_SIGNATURE_LEN) {
        CHECK_OK(net_identity_verify(a, msg_bytes(message), strlen(message), sig.ptr, sig.len));
        /* Wrong message, wrong key, flipped signature bit. */
        CHECK_STATUS(net_identity_verify(a, msg_bytes(other), strlen(other), sig.ptr, sig.len),
                     NET_ERR_INVALID_SIGNATURE);
        CHECK(strlen(net_last_error_message()) > 0);
        CHECK_STATUS(net_identity_verify(b, msg_bytes(message), strlen(message), sig.ptr,
                                         sig.len),
                     NET_ERR_INVALID_SIGNATURE);
        memcpy(bad_sig, sig.ptr, sizeof bad_sig);
        bad_sig[10] ^= 0x01;
        CHECK_STATUS(net_identity_verify(a, msg_bytes(message), strlen(message), bad_sig,
                                         sizeof bad_sig),
                     NET_ERR_INVALID_SIGNATURE);
        /* Signature of the wrong length is an argument error, not a bad signature. */
        CHECK_STATUS(net_identity_verify(a, msg_bytes(message), strlen(message), sig.ptr, 63),
                     NET_ERR_INVALID_ARGUMENT);
    }
    net_bytes_free(&sig);

    /* The empty message signs and verifies (NULL is fine with length 0). */
    CHECK_OK(net_identity_sign(a, NULL, 0, &sig));
    if (sig.len == NET_SIGNATURE_LEN) {
        CHECK_OK(net_identity_verify(a, NULL, 0, sig.ptr, sig.len));
    }
    net_bytes_free(&sig);

    net_bytes_free(&pk_a);
    net_bytes_free(&pk_b);
    CHECK_OK(net_identity_free(a));
    CHECK_OK(net_identity_free(b));
}

static void test_read_only_identity(void)
{
    const struct identity_vector *v = &VECTORS[0];
    uint8_t pk[32], sig[64], not_a_point[32];
    net_identity_t *ro = NULL;
    net_bytes_t b = {NULL, 0};
    uint64_t u = 0;
    bool read_only = false;

    hex_exact(v->public_key, pk, sizeof pk);
    hex_exact(v->signature, sig, sizeof sig);
    if (!CHECK_OK(net_identity_from_public_key(pk, sizeof pk, &ro))) {
        return;
    }
    CHECK_OK(net_identity_is_read_only(ro, &read_only));
    CHECK(read_only == true);
    CHECK_OK(net_identity_origin_hash(ro, &u));
    CHECK_U64(u, v->origin_hash);
    CHECK_OK(net_identity_node_id(ro, &u));
    CHECK_U64(u, v->node_id);
    CHECK_OK(net_identity_public_key(ro, &b));
    CHECK_BYTES(b, pk, sizeof pk);
    net_bytes_free(&b);

    /* It verifies, but cannot sign or reveal a seed. */
    CHECK_OK(net_identity_verify(ro, msg_bytes(VECTOR_MESSAGE), strlen(VECTOR_MESSAGE), sig,
                                 sizeof sig));
    CHECK_STATUS(net_identity_sign(ro, msg_bytes(VECTOR_MESSAGE), strlen(VECTOR_MESSAGE), &b),
                 NET_ERR_READ_ONLY);
    CHECK(b.ptr == NULL && b.len == 0);
    CHECK(strlen(net_last_error_message()) > 0);
    CHECK_STATUS(net_identity_seed(ro, &b), NET_ERR_READ_ONLY);
    CHECK(b.ptr == NULL && b.len == 0);
    CHECK_OK(net_identity_free(ro));

    /* y = 2 is not the encoding of a curve point. */
    memset(not_a_point, 0, sizeof not_a_point);
    not_a_point[0] = 2;
    ro = NULL;
    CHECK_STATUS(net_identity_from_public_key(not_a_point, sizeof not_a_point, &ro),
                 NET_ERR_INVALID_PUBLIC_KEY);
    CHECK(ro == NULL);
}

static void test_bad_lengths(void)
{
    uint8_t buf[64];
    net_identity_t *id = (net_identity_t *)NULL;
    net_identity_t *good = NULL;
    net_bytes_t b = {NULL, 0};

    memset(buf, 7, sizeof buf);
    CHECK_STATUS(net_identity_from_seed(buf, 31, &id), NET_ERR_INVALID_ARGUMENT);
    CHECK(strstr(net_last_error_message(), "32") != NULL);
    CHECK_STATUS(net_identity_from_seed(buf, 33, &id), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_identity_from_seed(buf, 0, &id), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_identity_from_seed(NULL, 32, &id), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_identity_from_public_key(buf, 31, &id), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_identity_from_public_key(buf, 64, &id), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_identity_from_public_key(NULL, 32, &id), NET_ERR_INVALID_ARGUMENT);
    CHECK(id == NULL);

    if (CHECK_OK(net_identity_from_seed(buf, 32, &good))) {
        /* A message pointer of NULL with a non-zero length is refused. */
        CHECK_STATUS(net_identity_sign(good, NULL, 5, &b), NET_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(net_identity_verify(good, buf, 4, buf, 65), NET_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(net_identity_verify(good, buf, 4, NULL, 64), NET_ERR_INVALID_ARGUMENT);
        CHECK(b.ptr == NULL);
        CHECK_OK(net_identity_free(good));
    }
}

static void test_null_out_pointers(void)
{
    uint8_t seed[32];
    net_identity_t *id = NULL;
    net_identity_t *sentinel = (net_identity_t *)&seed; /* never dereferenced */
    net_identity_t *out = sentinel;
    uint64_t u = 0xdeadbeef;
    bool flag = true;

    memset(seed, 1, sizeof seed);
    CHECK_STATUS(net_identity_generate(NULL), NET_ERR_INVALID_ARGUMENT);
    CHECK(strstr(net_last_error_message(), "NULL") != NULL);
    CHECK_STATUS(net_identity_from_seed(seed, sizeof seed, NULL), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_identity_from_public_key(seed, sizeof seed, NULL), NET_ERR_INVALID_ARGUMENT);

    /* A NULL handle is an argument error, and outputs stay untouched on failure. */
    CHECK_STATUS(net_identity_origin_hash(NULL, &u), NET_ERR_INVALID_ARGUMENT);
    CHECK(u == 0xdeadbeef);
    CHECK_STATUS(net_identity_is_read_only(NULL, &flag), NET_ERR_INVALID_ARGUMENT);
    CHECK(flag == true);
    CHECK_STATUS(net_identity_from_seed(seed, 31, &out), NET_ERR_INVALID_ARGUMENT);
    CHECK(out == sentinel);

    if (CHECK_OK(net_identity_from_seed(seed, sizeof seed, &id))) {
        CHECK_STATUS(net_identity_origin_hash(id, NULL), NET_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(net_identity_node_id(id, NULL), NET_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(net_identity_public_key(id, NULL), NET_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(net_identity_entity_id(id, NULL), NET_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(net_identity_seed(id, NULL), NET_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(net_identity_is_read_only(id, NULL), NET_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(net_identity_sign(id, seed, sizeof seed, NULL), NET_ERR_INVALID_ARGUMENT);
        CHECK_OK(net_identity_free(id));
    }
}

static void *fresh_thread_error(void *arg)
{
    const char **out = (const char **)arg;
    /* Copy: the pointer is only valid on its own thread. */
    *out = strlen(net_last_error_message()) == 0 ? "empty" : "non-empty";
    return NULL;
}

static void test_last_error_message(void)
{
    const char *msg;
    const char *other_thread = NULL;
    pthread_t t;
    uint8_t seed[32];

    memset(seed, 0, sizeof seed);
    CHECK_STATUS(net_identity_from_seed(seed, 5, NULL), NET_ERR_INVALID_ARGUMENT);
    msg = net_last_error_message();
    CHECK(msg != NULL);
    CHECK(msg != NULL && strlen(msg) > 0);

    /* Thread-local: a thread with no failure of its own sees an empty string. */
    CHECK(pthread_create(&t, NULL, fresh_thread_error, (void *)&other_thread) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(other_thread != NULL && strcmp(other_thread, "empty") == 0);
    /* ... and did not disturb ours. */
    CHECK(strlen(net_last_error_message()) > 0);
}

static void test_bytes_free(void)
{
    net_identity_t *id = NULL;
    net_bytes_t b = {NULL, 0};
    uint8_t seed[32];

    net_bytes_free(NULL);          /* NULL-safe */
    net_bytes_free(&b);            /* never filled */
    CHECK(b.ptr == NULL && b.len == 0);

    memset(seed, 9, sizeof seed);
    if (CHECK_OK(net_identity_from_seed(seed, sizeof seed, &id))) {
        CHECK_OK(net_identity_public_key(id, &b));
        CHECK(b.ptr != NULL && b.len == 32);
        net_bytes_free(&b);
        CHECK(b.ptr == NULL && b.len == 0); /* reset */
        net_bytes_free(&b);                 /* idempotent */
        CHECK(b.ptr == NULL && b.len == 0);
    }
    CHECK_OK(net_identity_free(id));
    CHECK_OK(net_identity_free(NULL)); /* NULL-safe */
}

static void test_versions(void)
{
    const char *v = net_version();
    CHECK(net_abi_version() == NET_ABI_VERSION);
    CHECK(v != NULL);
    /* The library, the header and net.pc agree. */
    if (CHECK(v != NULL && strcmp(v, NET_EXPECTED_VERSION) == 0) == 0) {
        fprintf(stderr, "       net_version() = \"%s\", pkg-config says \"%s\"\n",
                v ? v : "(null)", NET_EXPECTED_VERSION);
    }
    CHECK(v == net_version()); /* static string */
}

static void test_generate_is_random(void)
{
    net_identity_t *a = NULL, *b = NULL;
    uint64_t ha = 0, hb = 0;
    if (CHECK_OK(net_identity_generate(&a)) && CHECK_OK(net_identity_generate(&b))) {
        CHECK_OK(net_identity_origin_hash(a, &ha));
        CHECK_OK(net_identity_origin_hash(b, &hb));
        CHECK(ha != hb);
    }
    CHECK_OK(net_identity_free(a));
    CHECK_OK(net_identity_free(b));
}

static void test_clone_is_independent(void)
{
    static const uint8_t seed[32] = {9};
    net_identity_t *original = NULL, *copy = NULL;
    uint64_t want = 0, got = 0;
    if (CHECK_OK(net_identity_from_seed(seed, sizeof seed, &original))) {
        CHECK_OK(net_identity_origin_hash(original, &want));
        CHECK_OK(net_identity_clone(original, &copy));
        CHECK(copy != NULL && copy != original);
        CHECK_OK(net_identity_free(original));
        CHECK_STATUS(net_identity_origin_hash(original, &got), NET_ERR_SHUTTING_DOWN);
        CHECK_OK(net_identity_origin_hash(copy, &got));
        CHECK_U64(got, want);
    }
    CHECK_OK(net_identity_free(copy));
}

static void test_status_names(void)
{
    CHECK(strcmp(net_status_name(NET_OK), "NET_OK") == 0);
    CHECK(strcmp(net_status_name(NET_ERR_TOKEN_EXPIRED), "NET_ERR_TOKEN_EXPIRED") == 0);
    CHECK(strcmp(net_status_name(NET_ERR_CHANNEL_INVALID_NAME), "NET_ERR_CHANNEL_INVALID_NAME") == 0);
    CHECK(strcmp(net_status_name(-9999), "NET_UNKNOWN_STATUS") == 0);
    CHECK(net_status_name(NET_END) == net_status_name(NET_END)); /* static strings */
}

int main(void)
{
    RUN_TEST(test_identity_vectors);
    RUN_TEST(test_sign_verify_round_trip);
    RUN_TEST(test_read_only_identity);
    RUN_TEST(test_bad_lengths);
    RUN_TEST(test_null_out_pointers);
    RUN_TEST(test_last_error_message);
    RUN_TEST(test_bytes_free);
    RUN_TEST(test_versions);
    RUN_TEST(test_generate_is_random);
    RUN_TEST(test_clone_is_independent);
    RUN_TEST(test_status_names);
    return check_finish("test_identity");
}
