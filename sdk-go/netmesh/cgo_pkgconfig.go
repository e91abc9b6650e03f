//go:build netmesh_pkgconfig

package netmesh

// -tags netmesh_pkgconfig: use the libnet installed on the system (`make
// install` of the C SDK, or a distribution package), found through
// `pkg-config net`; the program then loads libnet.so at run time.

/*
#cgo pkg-config: net
*/
import "C"
