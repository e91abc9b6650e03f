//go:build !netmesh_pkgconfig && !(linux && (amd64 || arm64))

package netmesh

// The released module carries libnet.a for linux/amd64 and linux/arm64
// only. Elsewhere, build libnet from source, install it (`make install`),
// and build with -tags netmesh_pkgconfig.
var _ = netmesh_ships_libnet_for_linux_amd64_and_arm64_only__elsewhere_install_libnet_and_build_with_tags_netmesh_pkgconfig
