//! The behavior plane (COMPUTE.md §4): pure library code, no I/O, no async,
//! no FFI; time is passed in by the caller (`now_ms` / `Instant`), so tests
//! never read a clock.
//!
//! - [`rules`](crate::behavior::rules): the rules engine (§4.3) and its JSON rule sets.
//! - [`safety`](crate::behavior::safety): the safety envelope (§4.6): kill switch, caps, rate
//!   limits, content policies, audit.
//! - [`loadbalance`](crate::behavior::loadbalance): endpoint selection strategies and circuit breakers
//!   (§4.4).
//! - [`proximity`](crate::behavior::proximity): the proximity graph fed by pingwaves and locally
//!   measured round-trip times (§4.5).
//! - [`diff`](crate::behavior::diff): capability diffs with version chains (§4.2).
//! - [`metadata`](crate::behavior::metadata): node status and metadata with an atomic versioned
//!   store (§4.2, §8 item 14).
//! - [`api`](crate::behavior::api): the API schema registry with semver matching (§4.2).
//! - [`trace`](crate::behavior::trace): W3C `traceparent` contexts and the sampling policies
//!   (§4.2).
//! - [`pattern`](crate::behavior::pattern): the bounded regexes shared by rules and safety.
//!
//! Each module's doc lists how it departs from v0.11 (§8 items 7, 11, 12
//! and 14 are fixed here).

pub mod api;
pub mod diff;
pub mod loadbalance;
pub mod metadata;
pub mod pattern;
pub mod proximity;
pub mod rules;
pub mod safety;
pub mod trace;
