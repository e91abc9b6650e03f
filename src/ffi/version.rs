//! Library and ABI versions.

use std::ffi::c_char;

/// The ABI version this build of libnet implements. SDKs compare it with the
/// version they were written for and refuse to load on a mismatch. Bumped on
/// any incompatible change to `include/net.h`.
pub const NET_ABI_VERSION: u32 = 2;

const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The library version ("MAJOR.MINOR.PATCH"), a static NUL-terminated string.
#[unsafe(no_mangle)]
pub extern "C" fn net_version() -> *const c_char {
    VERSION.as_ptr().cast()
}

/// The ABI version, [`NET_ABI_VERSION`].
#[unsafe(no_mangle)]
pub extern "C" fn net_abi_version() -> u32 {
    NET_ABI_VERSION
}

#[cfg(test)]
mod tests {
    #[test]
    fn soname_tracks_the_abi_version() {
        assert_eq!(
            env!("NET_SONAME_ABI_VERSION"),
            super::NET_ABI_VERSION.to_string()
        );
    }
}
