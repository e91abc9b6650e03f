//! Bounded regular expressions, shared by rule `Matches` conditions and
//! safety content policies: a pattern is at most [`MAX_PATTERN_LEN`] bytes,
//! its compiled program at most [`MAX_PROGRAM`] bytes, its nesting at most
//! 64 deep. The `regex` crate matches in linear time, so no input can make
//! a match slow.

use regex::{Regex, RegexBuilder};

/// Longest pattern accepted, in bytes.
pub const MAX_PATTERN_LEN: usize = 4096;
/// Bound on a compiled program (the regex crate's size limits).
pub const MAX_PROGRAM: usize = 1 << 20;

/// Compiles `pattern` within the bounds; the error says why not.
pub(crate) fn compile(pattern: &str) -> Result<Regex, String> {
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(format!(
            "{} bytes, more than {MAX_PATTERN_LEN}",
            pattern.len()
        ));
    }
    RegexBuilder::new(pattern)
        .size_limit(MAX_PROGRAM)
        .dfa_size_limit(MAX_PROGRAM)
        .nest_limit(64)
        .build()
        .map_err(|e| e.to_string())
}

/// The first 128 characters of a pattern, for error messages.
pub(crate) fn excerpt(pattern: &str) -> String {
    pattern.chars().take(128).collect()
}
