//! Library and ABI versions.

use std::ffi::c_char;

/// The ABI version this build of libnet implements. SDKs compare it with the
/// version they were written for and refuse to load on a mismatch. Bumped on
/// any incompatible change to `include/net.h`.
pub const NET_ABI_VERSION: u32 = 2;

/// The major part of the library version (`MAJOR.MINOR.PATCH`). The version
/// is set once, in `Cargo.toml`; `make set-version` rewrites these constants
/// and a unit test pins them to it.
pub const NET_VERSION_MAJOR: u32 = 0;

/// The minor part of the library version.
pub const NET_VERSION_MINOR: u32 = 1;

/// The patch part of the library version.
pub const NET_VERSION_PATCH: u32 = 0;

/// The library version as one integer for preprocessor comparisons,
/// `MAJOR * 1000000 + MINOR * 1000 + PATCH` (0.1.0 is 1000). The header
/// compiled against says which libnet it describes; `net_version()` says
/// which one is loaded.
pub const NET_VERSION: u32 = 1000;

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
    use super::*;

    #[test]
    fn header_version_constants_are_the_crate_version() {
        let parts: Vec<u32> = env!("CARGO_PKG_VERSION")
            .split('.')
            .map(|p| p.parse().expect("numeric version part"))
            .collect();
        assert_eq!(
            parts,
            [NET_VERSION_MAJOR, NET_VERSION_MINOR, NET_VERSION_PATCH],
            "run `make set-version VERSION=<Cargo.toml's version>`"
        );
        assert_eq!(
            NET_VERSION,
            NET_VERSION_MAJOR * 1_000_000 + NET_VERSION_MINOR * 1_000 + NET_VERSION_PATCH
        );
    }

    #[test]
    fn soname_tracks_the_abi_version() {
        assert_eq!(
            env!("NET_SONAME_ABI_VERSION"),
            super::NET_ABI_VERSION.to_string()
        );
    }
}
