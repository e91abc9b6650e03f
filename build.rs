//! Gives libnet.so an ELF soname, `libnetmesh.so.<ABI version>`, so programs
//! linked against it record that name (not a path) and a future ABI break
//! installs side by side. The file stays `libnet.so` (`-lnet`); the soname
//! lives outside the `libnet.so.N` names of Debian's unrelated packet
//! library (`libnet1`), whose next major version could take any N. Keep ABI_VERSION equal to `NET_ABI_VERSION` in
//! src/ffi/version.rs (a unit test checks).

const ABI_VERSION: u32 = 2;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-env=NET_SONAME_ABI_VERSION={ABI_VERSION}");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libnetmesh.so.{ABI_VERSION}");
    }
}
