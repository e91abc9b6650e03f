/*
 * Envelopes: the Net v0.11 reference envelope opens, seal/open round trip,
 * and every failure case of envelope.json.
 */
#define _POSIX_C_SOURCE 200809L

#include "check.h"

/* tests/vectors/envelope.json: reference_sealed.envelope_209 */
static const char REFERENCE_ENVELOPE[] =
    "01358072d6365880d1aeea329adf9121383851ed21a28e3b75e965d0d2cd166254"
    "f90ca6b8a26d342269932a4be9a7e1c2424f3159fcb1e2ce2404bba9799af166"
    "5c05c0abed4ae008ab84dad7c345fe29e0b67bc1d28dbb968e95a591a963e22b"
    "31f4eb05f921b712ba5a20199e52ca59"
    "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    "06a35ca230e9fb826ad13d72931282088c86d34aae611e6ff876a493d41953cb"
    "acf83a4cdc365a90961202ecdb17e9aeed63396ab7922d4888a56f8de56f6506";
/* tests/vectors/envelope.json: deterministic.envelope_209 */
static const char DETERMINISTIC_ENVELOPE[] =
    "01358072d6365880d1aeea329adf9121383851ed21a28e3b75e965d0d2cd166254"
    "79a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51a"
    "94609b2ceb7c590735a98259d7d8df4b3cebfb8db9fc2356128231330f58e266"
    "77a09f1d9cc8fda74baeb051e5260af1"
    "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    "06a35ca230e9fb826ad13d72931282088c86d34aae611e6ff876a493d41953cb"
    "acf83a4cdc365a90961202ecdb17e9aeed63396ab7922d4888a56f8de56f6506";
/* envelope.json: inputs.target_x25519_secret / target_x25519_pub */
static const char TARGET_SECRET[] = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";
static const char TARGET_PUB[] = "358072d6365880d1aeea329adf9121383851ed21a28e3b75e965d0d2cd166254";
/* envelope.json: inputs.chain_link.bytes_32 (sequence 5 at bytes 16..23, LE) */
static const char CHAIN_LINK[] = "bf76198038322a78010000020010000005000000000000008877665544332211";
/* envelope.json: inputs.source_seed / source_ed25519_pub; reference_sealed.opened_seed */
static const char SOURCE_SEED[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static const char SOURCE_PUB[] = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
static const char OPENED_SEED[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

static uint8_t reference[NET_ENVELOPE_SIZE];
static uint8_t target_secret[32], target_pub[32], chain_link[32], source_seed[32], source_pub[32];

/* Opens `env` with the vector's secret and chain link; NULL on failure. */
static net_status_t open_env(const uint8_t *env, size_t len, const uint8_t *secret,
                             const uint8_t *link, const uint8_t *signer, net_identity_t **out)
{
    return net_envelope_open(env, len, secret, 32, link, 32, signer, signer ? 32 : 0, out);
}

static void check_opened_is_source(net_identity_t *id)
{
    net_bytes_t b = {NULL, 0};
    uint8_t opened_seed[32];
    hex_exact(OPENED_SEED, opened_seed, sizeof opened_seed);
    CHECK_OK(net_identity_seed(id, &b));
    CHECK_BYTES(b, opened_seed, sizeof opened_seed);
    CHECK_BYTES(b, source_seed, sizeof source_seed);
    net_bytes_free(&b);
    CHECK_OK(net_identity_public_key(id, &b));
    CHECK_BYTES(b, source_pub, sizeof source_pub);
    net_bytes_free(&b);
}

static void test_reference_envelope_opens(void)
{
    uint8_t deterministic[NET_ENVELOPE_SIZE];
    net_identity_t *id = NULL;

    if (CHECK_OK(open_env(reference, sizeof reference, target_secret, chain_link, NULL, &id))) {
        check_opened_is_source(id);
        CHECK_OK(net_identity_free(id));
    }
    id = NULL;
    if (CHECK_OK(open_env(reference, sizeof reference, target_secret, chain_link, source_pub,
                          &id))) {
        check_opened_is_source(id);
        CHECK_OK(net_identity_free(id));
    }
    /* envelope.json: deterministic.reference_open = Ok(seed) */
    hex_exact(DETERMINISTIC_ENVELOPE, deterministic, sizeof deterministic);
    id = NULL;
    if (CHECK_OK(open_env(deterministic, sizeof deterministic, target_secret, chain_link, NULL,
                          &id))) {
        check_opened_is_source(id);
        CHECK_OK(net_identity_free(id));
    }
}

static void test_x25519_public_key(void)
{
    net_bytes_t b = {NULL, 0};
    CHECK_OK(net_x25519_public_key(target_secret, sizeof target_secret, &b));
    CHECK_BYTES(b, target_pub, sizeof target_pub);
    net_bytes_free(&b);
    CHECK_STATUS(net_x25519_public_key(target_secret, 31, &b), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_x25519_public_key(target_secret, 32, NULL), NET_ERR_INVALID_ARGUMENT);
    CHECK(b.ptr == NULL);
}

static void test_seal_open_round_trip(void)
{
    net_identity_t *source = NULL, *opened = NULL, *stranger = NULL, *ro = NULL;
    net_bytes_t env = {NULL, 0}, env2 = {NULL, 0}, src_seed = {NULL, 0}, got = {NULL, 0};
    net_bytes_t src_pub = {NULL, 0}, stranger_pub = {NULL, 0};
    uint8_t secret[32];
    net_bytes_t pub = {NULL, 0};
    uint64_t h1 = 0, h2 = 0;
    size_t i;

    for (i = 0; i < sizeof secret; i++) {
        secret[i] = (uint8_t)(0x80 + i);
    }
    if (!CHECK_OK(net_identity_generate(&source)) || !CHECK_OK(net_identity_generate(&stranger)) ||
        !CHECK_OK(net_x25519_public_key(secret, sizeof secret, &pub))) {
        goto out;
    }
    CHECK_OK(net_identity_seed(source, &src_seed));
    CHECK_OK(net_identity_public_key(source, &src_pub));
    CHECK_OK(net_identity_public_key(stranger, &stranger_pub));

    if (!CHECK_OK(net_envelope_seal(source, pub.ptr, pub.len, chain_link, sizeof chain_link,
                                    &env))) {
        goto out;
    }
    CHECK(env.len == NET_ENVELOPE_SIZE);
    CHECK(env.ptr != NULL && env.ptr[0] == 1);
    /* Fresh ephemeral key: sealing twice gives different bytes. */
    CHECK_OK(net_envelope_seal(source, pub.ptr, pub.len, chain_link, sizeof chain_link, &env2));
    CHECK(env2.len == env.len && memcmp(env.ptr, env2.ptr, env.len) != 0);

    /* Open with the expected signer. */
    if (CHECK_OK(open_env(env.ptr, env.len, secret, chain_link, src_pub.ptr, &opened))) {
        CHECK_OK(net_identity_seed(opened, &got));
        CHECK_MEM(got.ptr, got.len, src_seed.ptr, src_seed.len);
        CHECK_OK(net_identity_origin_hash(source, &h1));
        CHECK_OK(net_identity_origin_hash(opened, &h2));
        CHECK_U64(h2, h1);
        CHECK_OK(net_identity_free(opened));
    }
    /* Another expected signer is refused. */
    opened = NULL;
    CHECK_STATUS(open_env(env.ptr, env.len, secret, chain_link, stranger_pub.ptr, &opened),
                 NET_ERR_ENVELOPE_INVALID_SIGNER_KEY);
    CHECK(opened == NULL);
    /* expected_signer of the wrong length. */
    CHECK_STATUS(net_envelope_open(env.ptr, env.len, secret, 32, chain_link, 32, src_pub.ptr, 31,
                                   &opened),
                 NET_ERR_INVALID_ARGUMENT);

    /* A read-only identity cannot be sealed. */
    if (CHECK_OK(net_identity_from_public_key(src_pub.ptr, src_pub.len, &ro))) {
        CHECK_STATUS(net_envelope_seal(ro, pub.ptr, pub.len, chain_link, 32, &env2),
                     NET_ERR_READ_ONLY);
    }
    CHECK_STATUS(net_envelope_seal(source, pub.ptr, 31, chain_link, 32, &env2),
                 NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_envelope_seal(source, pub.ptr, 32, chain_link, 31, &env2),
                 NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_envelope_seal(source, pub.ptr, 32, chain_link, 32, NULL),
                 NET_ERR_INVALID_ARGUMENT);

out:
    net_bytes_free(&env);
    net_bytes_free(&env2);
    net_bytes_free(&src_seed);
    net_bytes_free(&src_pub);
    net_bytes_free(&stranger_pub);
    net_bytes_free(&got);
    net_bytes_free(&pub);
    CHECK_OK(net_identity_free(ro));
    CHECK_OK(net_identity_free(source));
    CHECK_OK(net_identity_free(stranger));
}

static void test_failure_cases(void)
{
    uint8_t env[NET_ENVELOPE_SIZE], wrong_secret[32], link6[32];
    net_identity_t *sentinel = (net_identity_t *)&env; /* never dereferenced */
    net_identity_t *id = sentinel;

    /* envelope.json: from_bytes_with_version_byte_0_is_none */
    memcpy(env, reference, sizeof env);
    env[0] = 0;
    CHECK_STATUS(open_env(env, sizeof env, target_secret, chain_link, NULL, &id),
                 NET_ERR_ENVELOPE_UNKNOWN_VERSION);
    CHECK(strlen(net_last_error_message()) > 0);
    env[0] = 2;
    CHECK_STATUS(open_env(env, sizeof env, target_secret, chain_link, NULL, &id),
                 NET_ERR_ENVELOPE_UNKNOWN_VERSION);
    /* The version is checked before the length. */
    CHECK_STATUS(open_env(env, 10, target_secret, chain_link, NULL, &id),
                 NET_ERR_ENVELOPE_UNKNOWN_VERSION);

    /* envelope.json: open_with_wrong_target_secret_0909.. = SealOpenFailed */
    memset(wrong_secret, 0x09, sizeof wrong_secret);
    CHECK_STATUS(open_env(reference, sizeof reference, wrong_secret, chain_link, NULL, &id),
                 NET_ERR_ENVELOPE_SEAL_OPEN_FAILED);

    /* envelope.json: open_after_flipping_byte_80_(ciphertext) = SealOpenFailed */
    memcpy(env, reference, sizeof env);
    env[80] ^= 0x01;
    CHECK_STATUS(open_env(env, sizeof env, target_secret, chain_link, NULL, &id),
                 NET_ERR_ENVELOPE_SEAL_OPEN_FAILED);

    /* envelope.json: open_with_chain_link_sequence_6 = InvalidAttestation */
    memcpy(link6, chain_link, sizeof link6);
    CHECK(link6[16] == 5);
    link6[16] = 6;
    CHECK_STATUS(open_env(reference, sizeof reference, target_secret, link6, NULL, &id),
                 NET_ERR_ENVELOPE_INVALID_ATTESTATION);

    /* Lengths. */
    CHECK_STATUS(open_env(reference, NET_ENVELOPE_SIZE - 1, target_secret, chain_link, NULL, &id),
                 NET_ERR_ENVELOPE_INVALID_LENGTH);
    CHECK_STATUS(net_envelope_open(reference, sizeof reference, target_secret, 31, chain_link, 32,
                                   NULL, 0, &id),
                 NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_envelope_open(reference, sizeof reference, target_secret, 32, chain_link, 33,
                                   NULL, 0, &id),
                 NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_envelope_open(reference, sizeof reference, target_secret, 32, chain_link, 32,
                                   NULL, 0, NULL),
                 NET_ERR_INVALID_ARGUMENT);
    CHECK(id == sentinel); /* never written on failure */
}

int main(void)
{
    hex_exact(REFERENCE_ENVELOPE, reference, sizeof reference);
    hex_exact(TARGET_SECRET, target_secret, sizeof target_secret);
    hex_exact(TARGET_PUB, target_pub, sizeof target_pub);
    hex_exact(CHAIN_LINK, chain_link, sizeof chain_link);
    hex_exact(SOURCE_SEED, source_seed, sizeof source_seed);
    hex_exact(SOURCE_PUB, source_pub, sizeof source_pub);

    RUN_TEST(test_reference_envelope_opens);
    RUN_TEST(test_x25519_public_key);
    RUN_TEST(test_seal_open_round_trip);
    RUN_TEST(test_failure_cases);
    return check_finish("test_envelope");
}
