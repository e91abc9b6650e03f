// The header from C++: it must compile with -std=c++11 -Wall -Wextra -Werror
// -pedantic, declare everything extern "C", and link against libnet.
#include <cstdio>
#include <cstring>

#include "net.h"

int main()
{
    std::printf("%-52s ", "test_header_cpp");
    // In C++ net_status_t is the enum itself (with int32_t as its underlying type).
    static_assert(sizeof(net_status_t) == sizeof(int32_t), "net_status_t is 32 bits");
    const char name[] = "sensors/lidar";
    uint16_t hash = 0;
    net_status_t st = net_channel_hash(reinterpret_cast<const uint8_t *>(name),
                                       std::strlen(name), &hash);
    // tests/vectors/channels.json: hashes[0] ("sensors/lidar") hash_u16 = 0xe5d8
    bool ok = net_abi_version() == NET_ABI_VERSION && st == NET_OK && hash == 0xe5d8;

    // RedEX from C++: net_slice_t aggregates, NET_WAIT_FOREVER as a uint32_t
    // timeout, NET_LAGGED as an enumerator.
    static_assert(NET_WAIT_FOREVER == 0xFFFFFFFFu, "NET_WAIT_FOREVER is UINT32_MAX");
    static_assert(NET_LAGGED == 3, "NET_LAGGED is 3");
    net_redex_t *redex = nullptr;
    net_redex_file_t *file = nullptr;
    net_redex_tail_t *tail = nullptr;
    const char channel[] = "cpp/log";
    const net_slice_t batch[2] = {{reinterpret_cast<const uint8_t *>("a"), 1},
                                  {reinterpret_cast<const uint8_t *>("bc"), 2}};
    uint64_t first = 0, seq = 0;
    bool appended = false;
    net_bytes_t payload = {nullptr, 0};
    ok = ok && net_redex_open(nullptr, 0, &redex) == NET_OK &&
         net_redex_open_file(redex, reinterpret_cast<const uint8_t *>(channel),
                             std::strlen(channel), nullptr, 0, &file) == NET_OK &&
         net_redex_file_append_batch(file, batch, 2, &first, &appended) == NET_OK && appended &&
         net_redex_file_tail(file, 1, &tail) == NET_OK &&
         net_redex_tail_next(tail, NET_WAIT_FOREVER, &seq, &payload, NULL, NULL) == NET_OK && seq == 1 &&
         payload.len == 2;
    net_bytes_free(&payload);

    // ABI 2 from C++: a cancellation token and the per-call error; frees
    // return a status; the model-generic CortEX handle.
    static_assert(NET_ERR_CANCELLED == -5 && NET_ERR_BUSY == -6, "ABI 2 statuses");
    net_cancel_t *cancel = nullptr;
    net_error_t error = {NET_OK, {nullptr, 0}};
    ok = ok && net_cancel_new(&cancel) == NET_OK && net_cancel_cancel(cancel) == NET_OK &&
         net_redex_tail_next(tail, NET_WAIT_FOREVER, &seq, &payload, cancel, &error) ==
             NET_ERR_CANCELLED &&
         error.status == NET_ERR_CANCELLED && error.message.len > 0;
    net_error_clear(&error);
    ok = ok && error.message.ptr == nullptr && net_cancel_free(cancel) == NET_OK;
    net_model_t *model = nullptr;
    uint32_t kind = 0;
    ok = ok && net_model_open(redex, NET_MODEL_MEMORIES, 1, nullptr, 0, &model) == NET_OK &&
         net_model_kind(model, &kind) == NET_OK && kind == NET_MODEL_MEMORIES &&
         net_model_free(model) == NET_OK;

    ok = ok && net_redex_tail_free(tail) == NET_OK && net_redex_file_free(file) == NET_OK &&
         net_redex_free(redex) == NET_OK;
    std::printf("%s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
