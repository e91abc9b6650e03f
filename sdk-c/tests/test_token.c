/*
 * Tokens: the Net v0.11 vectors (verify, time window, tamper, parse,
 * authorizes), issuing, and delegation chains.
 */
#define _POSIX_C_SOURCE 200809L

#include <time.h>

#include "check.h"

/* tests/vectors/token.json: deterministic.token_159 */
static const char DETERMINISTIC_TOKEN[] =
    "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    "2152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db12"
    "0b000000d8e500f1536500000000005786f40000000002efcdab8967452301"
    "9f10c2d2ab0a5a8b1ba65dca3303b3de323800d0ad65cb9ce551778d967e62c3"
    "d07b583ab0ab98680cbae81d16183ab90f18ae6f1db5c525c9770b335a38a403";
/* tests/vectors/token.json: tampered_scope_byte64_xor_0x04.token_159 */
static const char TAMPERED_TOKEN[] =
    "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    "2152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db12"
    "0f000000d8e500f1536500000000005786f40000000002efcdab8967452301"
    "9f10c2d2ab0a5a8b1ba65dca3303b3de323800d0ad65cb9ce551778d967e62c3"
    "d07b583ab0ab98680cbae81d16183ab90f18ae6f1db5c525c9770b335a38a403";
/* tests/vectors/token.json: expired.token_159 */
static const char EXPIRED_TOKEN[] =
    "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    "2152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db12"
    "02000000d8e500105e5f000000003c105e5f00000000000700000000000000"
    "3695212ef302b358580ad7571282e7fcfb30b5724c7b968527d9499aa0794f40"
    "de49e3ed947ed9c085f3c08ad8231803db5700e0ee295ef33da07c328831c90e";
/* tests/vectors/token.json: wildcard.token_159 */
static const char WILDCARD_TOKEN[] =
    "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    "2152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db12"
    "12000000000000f1536500000000005786f400000000000900000000000000"
    "7c04e97cb4ed3344f8ca9a795ecfd7c0960d7c1b64ef93ffb441dc3c3864c3f1"
    "2deb7e8406710ac542e5d3b094d2f01fb0e14d90669236bb29873e8605513805";
/* tests/vectors/token.json: delegated_child_from_deterministic.token_159 */
static const char DELEGATED_CHILD_TOKEN[] =
    "2152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db12"
    "76a1592044a6e4f511265bca73a604d90b0529d1df602be30a19a9257660d1f5"
    "0a000000d8e56e8d036b00000000005786f40000000001202412077c8c0a15"
    "945e955b549656b0942c42a0ef96d7276b2b99eea6fc3f2de10732131e075034"
    "667f0075a764076fb2153782bf635c64106b8be78b78bab3100b8cc0f2aac60f";

/* tests/vectors/token.json: deterministic.issuer_seed / subject_seed (identity.json A, B) */
static const char SEED_A[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static const char SEED_B[] = "4242424242424242424242424242424242424242424242424242424242424242";
/* identity.json: vectors[2].seed (C), the delegation's new subject */
static const char SEED_C[] = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
/* token.json: deterministic.issuer_pub / subject_pub; delegated_child...subject_pub */
static const char PUB_A[] = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
static const char PUB_B[] = "2152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db12";
static const char PUB_C[] = "76a1592044a6e4f511265bca73a604d90b0529d1df602be30a19a9257660d1f5";

/* token.json: deterministic.channel_hash (hash of "sensors/lidar") */
#define LIDAR_HASH 0xe5d8
/* token.json: deterministic.not_before / not_after */
#define DET_NOT_BEFORE UINT64_C(1700000000)
#define DET_NOT_AFTER UINT64_C(4102444800)

static uint8_t det[NET_TOKEN_SIZE];
static uint8_t pub_a[32], pub_b[32], pub_c[32];

static net_identity_t *identity_from_hex(const char *seed_hex)
{
    uint8_t seed[32];
    net_identity_t *id = NULL;
    hex_exact(seed_hex, seed, sizeof seed);
    CHECK_OK(net_identity_from_seed(seed, sizeof seed, &id));
    return id;
}

static void test_deterministic_vector(void)
{
    bool expired = true;
    CHECK_OK(net_token_verify(det, sizeof det));
    CHECK_OK(net_token_is_valid_at(det, sizeof det, DET_NOT_BEFORE));
    CHECK_OK(net_token_is_valid_at(det, sizeof det, DET_NOT_AFTER - 1));
    CHECK_STATUS(net_token_is_valid_at(det, sizeof det, DET_NOT_AFTER), NET_ERR_TOKEN_EXPIRED);
    CHECK_STATUS(net_token_is_valid_at(det, sizeof det, DET_NOT_BEFORE - 1),
                 NET_ERR_TOKEN_NOT_YET_VALID);
    CHECK(strlen(net_last_error_message()) > 0);
    /* Valid now (the vector is valid until 2100). */
    CHECK_OK(net_token_is_valid(det, sizeof det));
    CHECK_OK(net_token_is_expired(det, sizeof det, &expired));
    CHECK(expired == false);
}

static void test_tampered(void)
{
    uint8_t t[NET_TOKEN_SIZE];
    bool out = false;
    hex_exact(TAMPERED_TOKEN, t, sizeof t);
    CHECK_STATUS(net_token_verify(t, sizeof t), NET_ERR_TOKEN_INVALID_SIGNATURE);
    /* The signature is checked before the time window. */
    CHECK_STATUS(net_token_is_valid_at(t, sizeof t, DET_NOT_BEFORE),
                 NET_ERR_TOKEN_INVALID_SIGNATURE);
    CHECK_STATUS(net_token_is_valid(t, sizeof t), NET_ERR_TOKEN_INVALID_SIGNATURE);
    /* authorizes/is_expired/parse do not check the signature. */
    CHECK_OK(net_token_authorizes(t, sizeof t, NET_SCOPE_ADMIN, LIDAR_HASH, &out));
    CHECK(out == true);

    /* Flipping any other byte (the signature, the nonce) breaks it too. */
    memcpy(t, det, sizeof t);
    t[NET_TOKEN_SIZE - 1] ^= 0x80;
    CHECK_STATUS(net_token_verify(t, sizeof t), NET_ERR_TOKEN_INVALID_SIGNATURE);
    memcpy(t, det, sizeof t);
    t[90] ^= 0x01;
    CHECK_STATUS(net_token_verify(t, sizeof t), NET_ERR_TOKEN_INVALID_SIGNATURE);
}

static void test_parse(void)
{
    net_token_info_t info;
    memset(&info, 0, sizeof info);
    if (!CHECK_OK(net_token_parse(det, sizeof det, &info))) {
        return;
    }
    CHECK_MEM(info.issuer, sizeof info.issuer, pub_a, sizeof pub_a);
    CHECK_MEM(info.subject, sizeof info.subject, pub_b, sizeof pub_b);
    CHECK_U64(info.scope, 11); /* deterministic.scope_bits: PUBLISH|SUBSCRIBE|DELEGATE */
    CHECK_U64(info.scope, NET_SCOPE_PUBLISH | NET_SCOPE_SUBSCRIBE | NET_SCOPE_DELEGATE);
    CHECK_U64(info.channel_hash, LIDAR_HASH);
    CHECK_U64(info.delegation_depth, 2);
    CHECK_U64(info.not_before, DET_NOT_BEFORE);
    CHECK_U64(info.not_after, DET_NOT_AFTER);
    CHECK_U64(info.nonce, UINT64_C(0x0123456789abcdef)); /* deterministic.nonce */
}

static void test_invalid_format(void)
{
    uint8_t big[NET_TOKEN_SIZE + 1];
    net_token_info_t info;
    bool out = true;

    memset(&info, 0xAA, sizeof info);
    memcpy(big, det, sizeof det);
    big[NET_TOKEN_SIZE] = 0;
    /* token.json: from_bytes_158_bytes_error = InvalidFormat */
    CHECK_STATUS(net_token_parse(det, NET_TOKEN_SIZE - 1, &info), NET_ERR_TOKEN_INVALID_FORMAT);
    CHECK(info.scope == 0xAAAAAAAAu); /* untouched */
    CHECK_STATUS(net_token_verify(det, NET_TOKEN_SIZE - 1), NET_ERR_TOKEN_INVALID_FORMAT);
    CHECK_STATUS(net_token_is_valid(det, NET_TOKEN_SIZE - 1), NET_ERR_TOKEN_INVALID_FORMAT);
    CHECK_STATUS(net_token_is_valid_at(det, NET_TOKEN_SIZE - 1, DET_NOT_BEFORE),
                 NET_ERR_TOKEN_INVALID_FORMAT);
    CHECK_STATUS(net_token_is_expired(det, NET_TOKEN_SIZE - 1, &out),
                 NET_ERR_TOKEN_INVALID_FORMAT);
    CHECK_STATUS(net_token_authorizes(det, NET_TOKEN_SIZE - 1, NET_SCOPE_PUBLISH, LIDAR_HASH,
                                      &out),
                 NET_ERR_TOKEN_INVALID_FORMAT);
    CHECK(out == true);
    CHECK_STATUS(net_token_verify(big, sizeof big), NET_ERR_TOKEN_INVALID_FORMAT);
    CHECK_STATUS(net_token_verify(NULL, 0), NET_ERR_TOKEN_INVALID_FORMAT);
    /* NULL with a length is an argument error; so is a NULL out pointer. */
    CHECK_STATUS(net_token_verify(NULL, NET_TOKEN_SIZE), NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_token_parse(det, sizeof det, NULL), NET_ERR_INVALID_ARGUMENT);
}

static bool authorizes(const uint8_t *token, uint32_t action, uint16_t channel)
{
    bool out = false;
    CHECK_OK(net_token_authorizes(token, NET_TOKEN_SIZE, action, channel, &out));
    return out;
}

static void test_authorizes_truth_table(void)
{
    uint8_t wildcard[NET_TOKEN_SIZE];
    hex_exact(WILDCARD_TOKEN, wildcard, sizeof wildcard);

    /* token.json: deterministic.authorizes_* (scope PUBLISH|SUBSCRIBE|DELEGATE on 0xe5d8) */
    CHECK(authorizes(det, NET_SCOPE_SUBSCRIBE, LIDAR_HASH) == true);
    CHECK(authorizes(det, NET_SCOPE_ADMIN, LIDAR_HASH) == false);
    CHECK(authorizes(det, NET_SCOPE_SUBSCRIBE, 0x0000) == false);
    CHECK(authorizes(det, 0, LIDAR_HASH) == false); /* NONE is never authorized */
    /* The rest of the table follows from the scope bits. */
    CHECK(authorizes(det, NET_SCOPE_PUBLISH, LIDAR_HASH) == true);
    CHECK(authorizes(det, NET_SCOPE_DELEGATE, LIDAR_HASH) == true);
    CHECK(authorizes(det, NET_SCOPE_PUBLISH | NET_SCOPE_SUBSCRIBE, LIDAR_HASH) == true);
    CHECK(authorizes(det, NET_SCOPE_PUBLISH | NET_SCOPE_ADMIN, LIDAR_HASH) == false);
    CHECK(authorizes(det, NET_SCOPE_ALL, LIDAR_HASH) == false);
    CHECK(authorizes(det, NET_SCOPE_WILDCARD, LIDAR_HASH) == false);
    CHECK(authorizes(det, NET_SCOPE_PUBLISH, 0x1234) == false);

    /* token.json: wildcard.authorizes_* (scope SUBSCRIBE|WILDCARD, channel 0) */
    CHECK_OK(net_token_verify(wildcard, sizeof wildcard));
    CHECK(authorizes(wildcard, NET_SCOPE_SUBSCRIBE, 0x1234) == true);
    CHECK(authorizes(wildcard, NET_SCOPE_PUBLISH, 0x1234) == false);
    CHECK(authorizes(wildcard, NET_SCOPE_SUBSCRIBE, LIDAR_HASH) == true);
    CHECK(authorizes(wildcard, NET_SCOPE_SUBSCRIBE, 0x0000) == true);
    CHECK(authorizes(wildcard, 0, 0x1234) == false);
}

static void test_expired_vector(void)
{
    uint8_t t[NET_TOKEN_SIZE];
    bool expired = false;
    hex_exact(EXPIRED_TOKEN, t, sizeof t);
    /* token.json: expired.reference_verify = Ok, reference_is_valid = Err(Expired) */
    CHECK_OK(net_token_verify(t, sizeof t));
    CHECK_STATUS(net_token_is_valid(t, sizeof t), NET_ERR_TOKEN_EXPIRED);
    CHECK_OK(net_token_is_valid_at(t, sizeof t, UINT64_C(1600000000)));
    CHECK_STATUS(net_token_is_valid_at(t, sizeof t, UINT64_C(1600000060)), NET_ERR_TOKEN_EXPIRED);
    CHECK_OK(net_token_is_expired(t, sizeof t, &expired));
    CHECK(expired == true);
    /* not_after = 1600000060: expired at it, live one second before. */
    CHECK_OK(net_token_is_expired_at(t, sizeof t, UINT64_C(1600000059), &expired));
    CHECK(expired == false);
    CHECK_OK(net_token_is_expired_at(t, sizeof t, UINT64_C(1600000060), &expired));
    CHECK(expired == true);
}

static void test_issue_verify_is_valid(void)
{
    net_identity_t *a = identity_from_hex(SEED_A);
    net_identity_t *ro = NULL;
    net_bytes_t tok = {NULL, 0};
    net_token_info_t info;
    uint16_t hash = 0;
    uint64_t now = (uint64_t)time(NULL);
    static const char channel[] = "sensors/lidar";

    if (a == NULL) {
        return;
    }
    CHECK_OK(net_channel_hash((const uint8_t *)channel, strlen(channel), &hash));
    CHECK_U64(hash, LIDAR_HASH);
    if (CHECK_OK(net_token_issue(a, pub_b, sizeof pub_b, NET_SCOPE_PUBLISH, hash, 3600, 0, &tok))) {
        CHECK(tok.ptr != NULL && tok.len == NET_TOKEN_SIZE);
        CHECK_OK(net_token_verify(tok.ptr, tok.len));
        CHECK_OK(net_token_is_valid(tok.ptr, tok.len));
        CHECK(authorizes(tok.ptr, NET_SCOPE_PUBLISH, hash) == true);
        CHECK(authorizes(tok.ptr, NET_SCOPE_SUBSCRIBE, hash) == false);
        if (CHECK_OK(net_token_parse(tok.ptr, tok.len, &info))) {
            CHECK_MEM(info.issuer, 32, pub_a, 32);
            CHECK_MEM(info.subject, 32, pub_b, 32);
            CHECK_U64(info.scope, NET_SCOPE_PUBLISH);
            CHECK_U64(info.channel_hash, hash);
            CHECK_U64(info.delegation_depth, 0);
            CHECK_U64(info.not_after - info.not_before, 3600);
            CHECK(info.not_before + 5 >= now && info.not_before <= now + 5);
            CHECK_OK(net_token_is_valid_at(tok.ptr, tok.len, info.not_after - 1));
            CHECK_STATUS(net_token_is_valid_at(tok.ptr, tok.len, info.not_after),
                         NET_ERR_TOKEN_EXPIRED);
            /* Depth 0: it cannot be delegated. */
        }
    }
    net_bytes_free(&tok);

    /* Zero TTL, subject of the wrong length, read-only issuer. */
    CHECK_STATUS(net_token_issue(a, pub_b, 32, NET_SCOPE_PUBLISH, hash, 0, 0, &tok),
                 NET_ERR_TOKEN_ZERO_TTL);
    CHECK(tok.ptr == NULL);
    CHECK_STATUS(net_token_issue(a, pub_b, 31, NET_SCOPE_PUBLISH, hash, 60, 0, &tok),
                 NET_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(net_token_issue(a, pub_b, 32, NET_SCOPE_PUBLISH, hash, 60, 0, NULL),
                 NET_ERR_INVALID_ARGUMENT);
    if (CHECK_OK(net_identity_from_public_key(pub_a, 32, &ro))) {
        CHECK_STATUS(net_token_issue(ro, pub_b, 32, NET_SCOPE_PUBLISH, hash, 60, 0, &tok),
                     NET_ERR_READ_ONLY);
    }
    CHECK(tok.ptr == NULL);
    CHECK_OK(net_identity_free(ro));
    CHECK_OK(net_identity_free(a));
}

static void test_delegation(void)
{
    net_identity_t *a = identity_from_hex(SEED_A);
    net_identity_t *b = identity_from_hex(SEED_B);
    net_identity_t *c = identity_from_hex(SEED_C);
    net_bytes_t child = {NULL, 0}, grandchild = {NULL, 0}, none = {NULL, 0};
    net_bytes_t narrow = {NULL, 0};
    net_token_info_t info;
    uint8_t vector_child[NET_TOKEN_SIZE], expired[NET_TOKEN_SIZE];
    const uint32_t requested = NET_SCOPE_SUBSCRIBE | NET_SCOPE_DELEGATE | NET_SCOPE_ADMIN;

    if (a == NULL || b == NULL || c == NULL) {
        goto out;
    }

    /* The reference's delegated child verifies and has the documented fields. */
    hex_exact(DELEGATED_CHILD_TOKEN, vector_child, sizeof vector_child);
    CHECK_OK(net_token_verify(vector_child, sizeof vector_child));

    /* Signer B (the deterministic token's subject) delegates to C. */
    if (!CHECK_OK(net_token_delegate(b, det, sizeof det, pub_c, sizeof pub_c, requested,
                                     &child))) {
        goto out;
    }
    CHECK(child.len == NET_TOKEN_SIZE);
    CHECK_OK(net_token_verify(child.ptr, child.len));
    CHECK_OK(net_token_is_valid(child.ptr, child.len));
    if (CHECK_OK(net_token_parse(child.ptr, child.len, &info))) {
        /* token.json: delegated_child_from_deterministic */
        CHECK_MEM(info.issuer, 32, pub_b, 32);          /* issuer_pub */
        CHECK_MEM(info.subject, 32, pub_c, 32);         /* subject_pub */
        CHECK_U64(info.scope, 10);                      /* scope_bits: requested & parent */
        CHECK_U64(info.channel_hash, LIDAR_HASH);       /* channel_hash */
        CHECK_U64(info.delegation_depth, 1);            /* delegation_depth */
        CHECK_U64(info.not_after, DET_NOT_AFTER);       /* not_after */
    }
    if (CHECK_OK(net_token_parse(vector_child, sizeof vector_child, &info))) {
        CHECK_MEM(info.issuer, 32, pub_b, 32);
        CHECK_MEM(info.subject, 32, pub_c, 32);
        CHECK_U64(info.scope, 10);
        CHECK_U64(info.delegation_depth, 1);
        CHECK_U64(info.nonce, UINT64_C(0x150a8c7c07122420));
    }
    /* ADMIN was requested but the parent lacks it: narrowed away. */
    CHECK(authorizes(child.ptr, NET_SCOPE_ADMIN, LIDAR_HASH) == false);
    CHECK(authorizes(child.ptr, NET_SCOPE_SUBSCRIBE, LIDAR_HASH) == true);
    CHECK(authorizes(child.ptr, NET_SCOPE_PUBLISH, LIDAR_HASH) == false);

    /* token.json: delegate_with_wrong_signer_error = NotAuthorized */
    CHECK_STATUS(net_token_delegate(a, det, sizeof det, pub_c, sizeof pub_c, requested, &none),
                 NET_ERR_TOKEN_NOT_AUTHORIZED);
    CHECK(none.ptr == NULL);

    /* C delegates the child on: the grandchild has depth 0 ... */
    if (CHECK_OK(net_token_delegate(c, child.ptr, child.len, pub_a, sizeof pub_a,
                                    NET_SCOPE_SUBSCRIBE | NET_SCOPE_DELEGATE, &grandchild))) {
        CHECK_OK(net_token_is_valid(grandchild.ptr, grandchild.len));
        if (CHECK_OK(net_token_parse(grandchild.ptr, grandchild.len, &info))) {
            CHECK_U64(info.delegation_depth, 0); /* grandchild_depth */
            CHECK_MEM(info.issuer, 32, pub_c, 32);
            CHECK_MEM(info.subject, 32, pub_a, 32);
        }
        /* ... so it cannot be delegated again (delegate_from_depth0_error). */
        CHECK_STATUS(net_token_delegate(a, grandchild.ptr, grandchild.len, pub_b, sizeof pub_b,
                                        NET_SCOPE_SUBSCRIBE, &none),
                     NET_ERR_TOKEN_DELEGATION_EXHAUSTED);
        CHECK(none.ptr == NULL);
    }

    /* A child without DELEGATE cannot be delegated. */
    if (CHECK_OK(net_token_delegate(b, det, sizeof det, pub_c, sizeof pub_c, NET_SCOPE_SUBSCRIBE,
                                    &narrow))) {
        CHECK_STATUS(net_token_delegate(c, narrow.ptr, narrow.len, pub_a, sizeof pub_a,
                                        NET_SCOPE_SUBSCRIBE, &none),
                     NET_ERR_TOKEN_DELEGATION_NOT_ALLOWED);
    }

    /* The parent's validity errors come first. */
    hex_exact(EXPIRED_TOKEN, expired, sizeof expired);
    CHECK_STATUS(net_token_delegate(b, expired, sizeof expired, pub_c, 32, NET_SCOPE_SUBSCRIBE,
                                    &none),
                 NET_ERR_TOKEN_EXPIRED);
    {
        uint8_t tampered[NET_TOKEN_SIZE];
        hex_exact(TAMPERED_TOKEN, tampered, sizeof tampered);
        CHECK_STATUS(net_token_delegate(b, tampered, sizeof tampered, pub_c, 32,
                                        NET_SCOPE_SUBSCRIBE, &none),
                     NET_ERR_TOKEN_INVALID_SIGNATURE);
    }
    CHECK_STATUS(net_token_delegate(b, det, sizeof det - 1, pub_c, 32, NET_SCOPE_SUBSCRIBE, &none),
                 NET_ERR_TOKEN_INVALID_FORMAT);
    CHECK(none.ptr == NULL);

out:
    net_bytes_free(&child);
    net_bytes_free(&grandchild);
    net_bytes_free(&narrow);
    net_bytes_free(&none);
    CHECK_OK(net_identity_free(a));
    CHECK_OK(net_identity_free(b));
    CHECK_OK(net_identity_free(c));
}

int main(void)
{
    hex_exact(DETERMINISTIC_TOKEN, det, sizeof det);
    hex_exact(PUB_A, pub_a, sizeof pub_a);
    hex_exact(PUB_B, pub_b, sizeof pub_b);
    hex_exact(PUB_C, pub_c, sizeof pub_c);

    RUN_TEST(test_deterministic_vector);
    RUN_TEST(test_tampered);
    RUN_TEST(test_parse);
    RUN_TEST(test_invalid_format);
    RUN_TEST(test_authorizes_truth_table);
    RUN_TEST(test_expired_vector);
    RUN_TEST(test_issue_verify_is_valid);
    RUN_TEST(test_delegation);
    return check_finish("test_token");
}
