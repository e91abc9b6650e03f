//! The behavior plane (COMPUTE.md §4): pure library code, no I/O, no async,
//! time passed in by the caller.
//!
//! - [`rules`]: the rules engine (§4.3) and its JSON rule sets.
//! - [`safety`]: the safety envelope (§4.6): kill switch, caps, rate
//!   limits, content policies, audit.
//! - [`loadbalance`]: endpoint selection strategies and circuit breakers
//!   (§4.4).

pub mod loadbalance;
pub mod pattern;
pub mod rules;
pub mod safety;
