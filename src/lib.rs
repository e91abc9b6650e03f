//! Net: an encrypted peer-to-peer mesh, a high-rate event bus, a crash-safe
//! append log (RedEX) and folded state (CortEX), compiled to `libnet.so` /
//! `libnet.a` behind one C header (`include/net.h`).
//!
//! The Rust API of this crate is the Rust SDK. The C ABI lives in [`ffi`] and
//! is the only place in the crate with `extern "C"`.
//!
//! See `docs/ARCHITECTURE.md` for the map of the code.

/// cbindgen:ignore
pub mod behavior;
/// cbindgen:ignore
pub mod bus;
/// cbindgen:ignore
pub mod cancel;
/// cbindgen:ignore
pub mod compute;
/// cbindgen:ignore
pub mod continuity;
/// cbindgen:ignore
pub mod cortex;
pub mod ffi;
/// cbindgen:ignore
pub mod identity;
/// cbindgen:ignore
pub mod mesh;
/// cbindgen:ignore
pub mod netdb;
/// cbindgen:ignore
pub mod redex;
/// cbindgen:ignore
pub mod runtime;
/// cbindgen:ignore
pub(crate) mod wallclock;
/// cbindgen:ignore
pub mod wire;
