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
    std::printf("%s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
