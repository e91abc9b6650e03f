/*
 * identity_demo: a tour of libnet's identity API from C.
 *
 *   cc -std=c99 identity_demo.c $(pkg-config --cflags --libs net) -o identity_demo
 *
 * Alice gets an identity, signs a message, issues Bob a token to publish on
 * "sensors/lidar", and seals her identity to a recipient's X25519 key so that
 * it can be moved to another machine.
 *
 * The rules on show: every call returns a net_status_t (NET_OK or an error),
 * net_last_error_message() explains the last failure on this thread, results
 * arrive through out-parameters, net_bytes_t buffers go back with
 * net_bytes_free(), handles with net_identity_free(). Both frees are
 * NULL-safe, so one cleanup block can release whatever was created.
 */
#include <stdio.h>
#include <string.h>

#include "net.h"

/* Prints what failed and why; returns 1 if `status` is an error. */
static int failed(net_status_t status, const char *what)
{
    if (status == NET_OK) {
        return 0;
    }
    fprintf(stderr, "identity_demo: %s failed (status %d): %s\n", what, (int)status,
            net_last_error_message());
    return 1;
}

static void print_hex(const char *label, const uint8_t *bytes, size_t len)
{
    size_t i;
    printf("%-22s", label);
    for (i = 0; i < len; i++) {
        printf("%02x", bytes[i]);
    }
    printf("\n");
}

/* 32 random bytes for the recipient's X25519 secret. */
static int random_bytes(uint8_t *out, size_t len)
{
    FILE *f = fopen("/dev/urandom", "rb");
    size_t got = f ? fread(out, 1, len, f) : 0;
    if (f) {
        fclose(f);
    }
    return got == len ? 0 : -1;
}

int main(void)
{
    static const char message[] = "hello from alice";
    static const char channel[] = "sensors/lidar";
    /* An envelope is bound to a 32-byte chain link (a serialized CausalLink
     * from the log); any fixed 32 bytes do for the demo. */
    uint8_t chain_link[NET_CHAIN_LINK_LEN] = {0};
    uint8_t recipient_secret[NET_X25519_KEY_LEN];

    int rc = 1;
    net_identity_t *alice = NULL, *bob = NULL, *moved = NULL;
    net_bytes_t signature = {NULL, 0}, bob_key = {NULL, 0}, token = {NULL, 0};
    net_bytes_t recipient_public = {NULL, 0}, envelope = {NULL, 0};
    uint64_t origin_hash = 0, node_id = 0, moved_origin = 0;
    uint16_t channel_hash = 0;
    net_token_info_t info;
    bool allowed = false;
    net_status_t st;

    if (net_abi_version() != NET_ABI_VERSION) {
        fprintf(stderr, "identity_demo: libnet ABI %u, built for %d\n", net_abi_version(),
                NET_ABI_VERSION);
        return 1;
    }
    printf("libnet %s (ABI %u)\n", net_version(), net_abi_version());

    /* 1. Identities, and the ids derived from them. */
    if (failed(net_identity_generate(&alice), "generate alice") ||
        failed(net_identity_generate(&bob), "generate bob") ||
        failed(net_identity_origin_hash(alice, &origin_hash), "origin hash") ||
        failed(net_identity_node_id(alice, &node_id), "node id")) {
        goto cleanup;
    }
    printf("alice origin_hash     0x%016llx\n", (unsigned long long)origin_hash);
    printf("alice node_id         0x%016llx\n", (unsigned long long)node_id);

    /* 2. Sign and verify. */
    if (failed(net_identity_sign(alice, (const uint8_t *)message, strlen(message), &signature),
               "sign")) {
        goto cleanup;
    }
    print_hex("signature", signature.ptr, signature.len);
    if (failed(net_identity_verify(alice, (const uint8_t *)message, strlen(message),
                                   signature.ptr, signature.len),
               "verify")) {
        goto cleanup;
    }
    /* A signature over another message is rejected with a status, not a crash. */
    st = net_identity_verify(alice, (const uint8_t *)"tampered", 8, signature.ptr, signature.len);
    printf("verify(tampered)      %s\n",
           st == NET_ERR_INVALID_SIGNATURE ? "rejected, as expected" : "UNEXPECTED");
    if (st != NET_ERR_INVALID_SIGNATURE) {
        goto cleanup;
    }

    /* 3. Alice lets Bob publish on a channel for an hour; anyone can check it. */
    if (failed(net_channel_hash((const uint8_t *)channel, strlen(channel), &channel_hash),
               "channel hash") ||
        failed(net_identity_public_key(bob, &bob_key), "bob's public key") ||
        failed(net_token_issue(alice, bob_key.ptr, bob_key.len, NET_SCOPE_PUBLISH, channel_hash,
                               3600, 0, &token),
               "issue token") ||
        failed(net_token_is_valid(token.ptr, token.len), "token validity") ||
        failed(net_token_authorizes(token.ptr, token.len, NET_SCOPE_PUBLISH, channel_hash,
                                    &allowed),
               "authorizes") ||
        failed(net_token_parse(token.ptr, token.len, &info), "parse token")) {
        goto cleanup;
    }
    printf("token                 %lu bytes, valid, publish on %s (0x%04x): %s, "
           "expires in %llu s\n",
           (unsigned long)token.len, channel, (unsigned)channel_hash, allowed ? "yes" : "no",
           (unsigned long long)(info.not_after - info.not_before));

    /* 4. Seal Alice's identity to a recipient, then open it as the recipient. */
    if (random_bytes(recipient_secret, sizeof recipient_secret) != 0) {
        fprintf(stderr, "identity_demo: cannot read /dev/urandom\n");
        goto cleanup;
    }
    if (failed(net_x25519_public_key(recipient_secret, sizeof recipient_secret,
                                     &recipient_public),
               "x25519 public key") ||
        failed(net_envelope_seal(alice, recipient_public.ptr, recipient_public.len, chain_link,
                                 sizeof chain_link, &envelope),
               "seal") ||
        failed(net_envelope_open(envelope.ptr, envelope.len, recipient_secret,
                                 sizeof recipient_secret, chain_link, sizeof chain_link,
                                 NULL, 0, &moved),
               "open") ||
        failed(net_identity_origin_hash(moved, &moved_origin), "moved origin hash")) {
        goto cleanup;
    }
    printf("envelope              %lu bytes; opened identity is alice: %s\n",
           (unsigned long)envelope.len, moved_origin == origin_hash ? "yes" : "NO");
    if (moved_origin != origin_hash) {
        goto cleanup;
    }

    printf("identity_demo: ok\n");
    rc = 0;

cleanup:
    /* NULL-safe and idempotent: release everything, whatever was reached. */
    net_bytes_free(&signature);
    net_bytes_free(&bob_key);
    net_bytes_free(&token);
    net_bytes_free(&recipient_public);
    net_bytes_free(&envelope);
    net_identity_free(moved);
    net_identity_free(bob);
    net_identity_free(alice);
    memset(recipient_secret, 0, sizeof recipient_secret);
    return rc;
}
