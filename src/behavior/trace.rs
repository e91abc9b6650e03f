//! Trace context in the W3C `traceparent` form and the sampling policies
//! (COMPUTE.md §4.2).
//!
//! A [`TraceContext`] is a 128-bit trace id, a 64-bit span id, the parent
//! span (when the context came from a peer) and the flags (bit 0: sampled).
//! [`TraceContext::from_traceparent`] parses `00-<32 hex>-<16 hex>-<2 hex>`;
//! the peer's span becomes the parent, a fresh span id is minted, and the
//! hop count goes up by one.
//!
//! Departs from v0.11 (better, per §8):
//! - Parsing is strict W3C: lowercase hex only, exact field widths, all-zero
//!   trace or span ids refused, version `ff` refused, and a later version may
//!   carry extra fields after the flags (the W3C forward-compatibility rule)
//!   while version `00` must not. Parsing is a decoder of untrusted bytes
//!   (fuzz target `traceparent`): it never panics and bounds its input.
//! - `Ratio` sampling decides from the trace id (its low 64 bits against the
//!   ratio), so every node of a trace takes the same decision without
//!   coordination, instead of an independent coin per node.
//! - `RateLimited` is a sliding one-second window over the sampled
//!   timestamps (at most `per_second` in any 1 000 ms), not a fixed window
//!   that lets twice the rate through around its boundary. Time is passed in.
//! - `ParentBased` with no parent asks its root policy (v0.11 always samples).

use std::collections::VecDeque;
use std::sync::Mutex;

/// The `traceparent` version this module writes.
pub const TRACEPARENT_VERSION: u8 = 0;
/// The flag bit meaning "sampled".
pub const FLAG_SAMPLED: u8 = 0x01;
/// Longest `traceparent` accepted (a later version's extra fields included).
pub const MAX_TRACEPARENT_LEN: usize = 512;
/// Length of a version-00 `traceparent`.
pub const TRACEPARENT_LEN: usize = 55;

/// Why a `traceparent` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// Longer than [`MAX_TRACEPARENT_LEN`].
    #[error("traceparent is {0} bytes, more than {MAX_TRACEPARENT_LEN}")]
    TooLong(usize),
    /// Not `version-traceid-spanid-flags` with the right widths.
    #[error("traceparent is malformed: {0}")]
    Malformed(&'static str),
    /// Version `ff` (forbidden by W3C).
    #[error("traceparent version ff is invalid")]
    InvalidVersion,
    /// The trace id or the span id is all zeros.
    #[error("traceparent {0} id is all zeros")]
    ZeroId(&'static str),
}

/// A position in a distributed trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// The trace (never 0).
    pub trace_id: u128,
    /// This span (never 0).
    pub span_id: u64,
    /// The span this one continues, when it came from a peer.
    pub parent_span_id: Option<u64>,
    /// W3C trace flags (bit 0: sampled).
    pub flags: u8,
    /// Hops since the trace started here (0 for a new root).
    pub hop_count: u32,
}

fn hex_field(field: &str, width: usize, what: &'static str) -> Result<u128, TraceError> {
    if field.len() != width {
        return Err(TraceError::Malformed(what));
    }
    let mut value: u128 = 0;
    for b in field.bytes() {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return Err(TraceError::Malformed(what)),
        };
        value = (value << 4) | u128::from(digit);
    }
    Ok(value)
}

impl TraceContext {
    /// A new root context (sampled as `sampled` says). Ids of 0 are
    /// replaced by 1 (W3C forbids all-zero ids).
    pub fn new_root(trace_id: u128, span_id: u64, sampled: bool) -> Self {
        Self {
            trace_id: trace_id.max(1),
            span_id: span_id.max(1),
            parent_span_id: None,
            flags: if sampled { FLAG_SAMPLED } else { 0 },
            hop_count: 0,
        }
    }

    /// A new root with random ids.
    pub fn random_root(sampled: bool) -> Self {
        Self::new_root(rand::random(), rand::random(), sampled)
    }

    /// Whether the sampled flag is set.
    pub fn is_sampled(&self) -> bool {
        self.flags & FLAG_SAMPLED != 0
    }

    /// The context a peer continues from this one: same trace and flags,
    /// this span as the parent, `new_span_id` (0 → 1) as the span, one hop
    /// more (saturating).
    pub fn child(&self, new_span_id: u64) -> Self {
        Self {
            trace_id: self.trace_id,
            span_id: new_span_id.max(1),
            parent_span_id: Some(self.span_id),
            flags: self.flags,
            hop_count: self.hop_count.saturating_add(1),
        }
    }

    /// The `traceparent` header of this context (version 00).
    pub fn to_traceparent(&self) -> String {
        format!(
            "{:02x}-{:032x}-{:016x}-{:02x}",
            TRACEPARENT_VERSION, self.trace_id, self.span_id, self.flags
        )
    }

    /// Parses a peer's `traceparent` and continues it: the peer's span
    /// becomes the parent, `new_span_id` the span, and the hop count is 1.
    ///
    /// # Errors
    /// [`TraceError`] for anything but a strict W3C `traceparent`.
    pub fn from_traceparent(header: &str, new_span_id: u64) -> Result<Self, TraceError> {
        let (trace_id, peer_span, flags) = parse_traceparent(header)?;
        Ok(Self {
            trace_id,
            span_id: new_span_id.max(1),
            parent_span_id: Some(peer_span),
            flags,
            hop_count: 1,
        })
    }
}

/// Parses a `traceparent` into (trace id, span id, flags).
///
/// # Errors
/// As [`TraceContext::from_traceparent`].
pub fn parse_traceparent(header: &str) -> Result<(u128, u64, u8), TraceError> {
    if header.len() > MAX_TRACEPARENT_LEN {
        return Err(TraceError::TooLong(header.len()));
    }
    let mut fields = header.split('-');
    let version = fields.next().ok_or(TraceError::Malformed("version"))?;
    let version = hex_field(version, 2, "version")? as u8;
    if version == 0xff {
        return Err(TraceError::InvalidVersion);
    }
    let trace_id = hex_field(
        fields.next().ok_or(TraceError::Malformed("trace id"))?,
        32,
        "trace id",
    )?;
    let span_id = hex_field(
        fields.next().ok_or(TraceError::Malformed("span id"))?,
        16,
        "span id",
    )? as u64;
    let flags = hex_field(
        fields.next().ok_or(TraceError::Malformed("flags"))?,
        2,
        "flags",
    )? as u8;
    // Version 00 has exactly four fields; later versions may append more.
    if version == 0 && fields.next().is_some() {
        return Err(TraceError::Malformed(
            "trailing data after version-00 flags",
        ));
    }
    if trace_id == 0 {
        return Err(TraceError::ZeroId("trace"));
    }
    if span_id == 0 {
        return Err(TraceError::ZeroId("span"));
    }
    Ok((trace_id, span_id, flags))
}

/// How a new span decides whether it is sampled.
#[derive(Debug)]
#[non_exhaustive]
pub enum Sampler {
    /// Every trace.
    AlwaysOn,
    /// No trace.
    AlwaysOff,
    /// A fraction of traces, decided from the trace id (the same decision
    /// on every node). Clamped to 0..=1; NaN samples nothing.
    Ratio(f64),
    /// At most `per_second` sampled spans in any 1 000 ms.
    RateLimited(RateLimitedSampler),
    /// The parent's decision when there is one; the root policy otherwise.
    ParentBased(Box<Sampler>),
}

/// The state of [`Sampler::RateLimited`].
#[derive(Debug)]
pub struct RateLimitedSampler {
    per_second: u32,
    sampled_at: Mutex<VecDeque<u64>>,
}

impl RateLimitedSampler {
    /// At most `per_second` samples in any second.
    pub fn new(per_second: u32) -> Self {
        Self {
            per_second,
            sampled_at: Mutex::new(VecDeque::new()),
        }
    }

    fn admit(&self, now_ms: u64) -> bool {
        let mut window = self.sampled_at.lock().unwrap_or_else(|e| e.into_inner());
        while window
            .front()
            .is_some_and(|&t| now_ms.saturating_sub(t) >= 1_000)
        {
            window.pop_front();
        }
        if window.len() >= self.per_second as usize {
            return false;
        }
        window.push_back(now_ms);
        true
    }
}

/// The default policy (COMPUTE.md §7): a 0.1 ratio.
pub const DEFAULT_SAMPLING_RATIO: f64 = 0.1;

impl Default for Sampler {
    fn default() -> Self {
        Self::Ratio(DEFAULT_SAMPLING_RATIO)
    }
}

impl Sampler {
    /// Whether a span of `trace_id` (with `parent`, if it continues one)
    /// is sampled at `now_ms`.
    pub fn should_sample(
        &self,
        trace_id: u128,
        parent: Option<&TraceContext>,
        now_ms: u64,
    ) -> bool {
        match self {
            Self::AlwaysOn => true,
            Self::AlwaysOff => false,
            Self::Ratio(ratio) => ratio_decision(*ratio, trace_id),
            Self::RateLimited(limiter) => limiter.admit(now_ms),
            Self::ParentBased(root) => match parent {
                Some(p) => p.is_sampled(),
                None => root.should_sample(trace_id, None, now_ms),
            },
        }
    }
}

/// Samples when the trace id's low 64 bits fall under `ratio` of the range.
fn ratio_decision(ratio: f64, trace_id: u128) -> bool {
    if ratio.is_nan() || ratio <= 0.0 {
        return false;
    }
    if ratio >= 1.0 {
        return true;
    }
    // ratio × 2^64, exact enough: the comparison is against a u64.
    let bound = (ratio * 18_446_744_073_709_551_616.0) as u64;
    (trace_id as u64) < bound
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEADER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_w3c_example_and_continues_it() {
        let ctx = TraceContext::from_traceparent(HEADER, 7).unwrap();
        assert_eq!(ctx.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(ctx.parent_span_id, Some(0x00f067aa0ba902b7));
        assert_eq!(ctx.span_id, 7);
        assert_eq!(ctx.hop_count, 1);
        assert!(ctx.is_sampled());
        assert_eq!(HEADER.len(), TRACEPARENT_LEN);
        let child = ctx.child(9);
        assert_eq!((child.parent_span_id, child.hop_count), (Some(7), 2));
        assert_eq!(
            child.to_traceparent(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000009-01"
        );
    }

    #[test]
    fn refuses_what_w3c_refuses() {
        let bad = [
            "",
            "00",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ];
        for header in bad {
            assert!(parse_traceparent(header).is_err(), "{header:?}");
        }
        // A later version may carry more fields.
        assert!(
            parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz")
                .is_ok()
        );
        let long = "0".repeat(MAX_TRACEPARENT_LEN + 1);
        assert_eq!(
            parse_traceparent(&long),
            Err(TraceError::TooLong(MAX_TRACEPARENT_LEN + 1))
        );
    }

    #[test]
    fn samplers_decide_as_documented() {
        let root = TraceContext::new_root(5, 6, true);
        assert!(Sampler::AlwaysOn.should_sample(1, None, 0));
        assert!(!Sampler::AlwaysOff.should_sample(1, None, 0));
        assert!(!Sampler::Ratio(f64::NAN).should_sample(1, None, 0));
        assert!(Sampler::Ratio(1.0).should_sample(u128::MAX, None, 0));
        assert!(!Sampler::Ratio(0.0).should_sample(0, None, 0));
        let parent_based = Sampler::ParentBased(Box::new(Sampler::AlwaysOff));
        assert!(parent_based.should_sample(1, Some(&root), 0));
        assert!(!parent_based.should_sample(1, None, 0));
        let unsampled = TraceContext::new_root(5, 6, false);
        assert!(!parent_based.should_sample(1, Some(&unsampled), 0));
        // The default ratio samples about a tenth of uniform trace ids.
        let sampler = Sampler::default();
        let sampled = (0..10_000u64)
            .filter(|i| {
                sampler.should_sample(u128::from(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)), None, 0)
            })
            .count();
        assert!((800..1_200).contains(&sampled), "{sampled}");
    }

    #[test]
    fn rate_limited_sampler_is_exact_at_the_window_boundary() {
        let s = Sampler::RateLimited(RateLimitedSampler::new(3));
        let at = |t| s.should_sample(1, None, t);
        assert!(at(0) && at(500) && at(999));
        assert!(!at(999));
        assert!(at(1_000), "the first sample left the window");
        assert!(!at(1_000));
        assert!(!at(1_499));
        assert!(at(1_500));
    }

    proptest! {
        #[test]
        fn traceparent_round_trips(trace in 1u128.., span in 1u64.., flags in any::<u8>()) {
            let ctx = TraceContext { trace_id: trace, span_id: span, parent_span_id: None, flags, hop_count: 0 };
            let header = ctx.to_traceparent();
            prop_assert_eq!(parse_traceparent(&header), Ok((trace, span, flags)));
        }

        #[test]
        fn a_rate_limited_sampler_never_exceeds_its_rate(
            per_second in 0u32..20,
            steps in proptest::collection::vec(0u64..400, 1..300),
        ) {
            let s = Sampler::RateLimited(RateLimitedSampler::new(per_second));
            let mut now = 0u64;
            let mut sampled = Vec::new();
            for step in steps {
                now += step;
                if s.should_sample(1, None, now) {
                    sampled.push(now);
                }
            }
            for (i, &t) in sampled.iter().enumerate() {
                let in_window = sampled[i..].iter().take_while(|&&u| u < t + 1_000).count();
                prop_assert!(in_window <= per_second as usize);
            }
        }

        #[test]
        fn parsing_never_panics(s in ".{0,80}") {
            let _ = parse_traceparent(&s);
        }
    }
}
