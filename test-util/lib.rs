//! Empty on purpose: this crate exists only for its dependency on `net`
//! with the `test-util` feature (see Cargo.toml).
