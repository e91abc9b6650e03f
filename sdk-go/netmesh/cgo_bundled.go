//go:build !netmesh_pkgconfig

package netmesh

// The default: link the static libnet.a that the released module carries
// for each supported platform (lib/<GOOS>_<GOARCH>/libnet.a, with the header
// in include/; see docs/packaging.md), so `go get` needs neither Rust nor
// an installed libnet, and the program needs no libnet.so at run time. The
// repository itself commits no binaries: `make dist` lays the module out,
// and in a checkout the root Makefile points CGO_CFLAGS/CGO_LDFLAGS at a
// staged libnet (or build with -tags netmesh_pkgconfig).
//
// The libraries after -lnet are those Rust's standard library needs
// (`rustc --print native-static-libs`).

/*
#cgo CFLAGS: -I${SRCDIR}/include
#cgo linux,amd64 LDFLAGS: -L${SRCDIR}/lib/linux_amd64
#cgo linux,arm64 LDFLAGS: -L${SRCDIR}/lib/linux_arm64
#cgo LDFLAGS: -lnet -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
*/
import "C"
