# Sourced by the packaging scripts: the version (from Cargo.toml, the one
# place it is set) and this machine's platform in each ecosystem's words.
# Expects $root (the repository root).

NET_VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)
[ -n "$NET_VERSION" ] || { echo "packaging: no version in $root/Cargo.toml" >&2; exit 1; }

case "$(uname -s)" in
    Linux) NET_OS=linux ;;
    *) echo "packaging: $(uname -s) is not a supported build platform (Linux only)" >&2; exit 1 ;;
esac
case "$(uname -m)" in
    x86_64 | amd64) NET_ARCH=x86_64 NET_NODE_ARCH=x64 NET_GO_ARCH=amd64 ;;
    aarch64 | arm64) NET_ARCH=aarch64 NET_NODE_ARCH=arm64 NET_GO_ARCH=arm64 ;;
    *) echo "packaging: $(uname -m) is not a supported architecture (x86_64, aarch64)" >&2; exit 1 ;;
esac
# Tarball and wheel platform (linux-x86_64), npm package suffix
# (linux-x64-gnu) and Go's GOOS_GOARCH (linux_amd64).
NET_PLATFORM=$NET_OS-$NET_ARCH
NET_NODE_PLATFORM=$NET_OS-$NET_NODE_ARCH-gnu
NET_GO_PLATFORM=${NET_OS}_$NET_GO_ARCH
export NET_VERSION NET_OS NET_ARCH NET_NODE_ARCH NET_GO_ARCH NET_PLATFORM NET_NODE_PLATFORM NET_GO_PLATFORM
