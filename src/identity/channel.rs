//! Channel names and their 16-bit hash (IDENTITY.md §6).

use std::fmt;

/// Longest valid channel name, in bytes.
pub const MAX_CHANNEL_NAME_LEN: usize = 255;

/// Why a string is not a valid channel name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelNameError {
    /// The name is the empty string.
    #[error("channel name is empty")]
    Empty,
    /// The name is longer than 255 bytes (the length is carried).
    #[error("channel name is {0} bytes; the limit is 255")]
    TooLong(usize),
    /// The `/` structure is wrong; the reason is carried.
    #[error("channel name has an invalid format: {0}")]
    InvalidFormat(&'static str),
    /// A character outside `a–z A–Z 0–9 - _ . /`.
    #[error("channel name contains the invalid character {0:?}")]
    InvalidChar(char),
}

/// Bytes allowed in a channel name: `a–z A–Z 0–9 - _ . /`.
const ALLOWED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.' || c == b'/';
        b += 1;
    }
    table
};

const EDGE_SLASH: &str = "must not start or end with '/'";
const DOUBLE_SLASH: &str = "must not contain '//'";
const DOT_SEGMENT: &str = "segment \".\" is reserved";
const DOT_DOT_SEGMENT: &str = "segment \"..\" is reserved";

/// Checks `name` against the channel-name rules of IDENTITY.md §6.1.
///
/// # Errors
/// The first rule broken, checked in this order: empty, too long, invalid
/// character (anywhere in the name), leading/trailing `/`, `//`, a `.` or
/// `..` segment.
pub fn validate_channel_name(name: &str) -> Result<(), ChannelNameError> {
    let bytes = name.as_bytes();
    if bytes.is_empty() {
        return Err(ChannelNameError::Empty);
    }
    if bytes.len() > MAX_CHANNEL_NAME_LEN {
        return Err(ChannelNameError::TooLong(bytes.len()));
    }
    // One pass: an invalid character wins over any format error, so format
    // findings are only remembered until the scan completes.
    let mut double_slash = false;
    let mut bad_segment: Option<&'static str> = None;
    let mut segment_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !ALLOWED[usize::from(b)] {
            let bad = name[i..]
                .chars()
                .next()
                .unwrap_or(char::REPLACEMENT_CHARACTER);
            return Err(ChannelNameError::InvalidChar(bad));
        }
        if b == b'/' {
            double_slash |= i > 0 && bytes[i - 1] == b'/';
            bad_segment = bad_segment.or(dot_segment(&bytes[segment_start..i]));
            segment_start = i + 1;
        }
    }
    bad_segment = bad_segment.or(dot_segment(&bytes[segment_start..]));
    if bytes[0] == b'/' || bytes[bytes.len() - 1] == b'/' {
        return Err(ChannelNameError::InvalidFormat(EDGE_SLASH));
    }
    if double_slash {
        return Err(ChannelNameError::InvalidFormat(DOUBLE_SLASH));
    }
    match bad_segment {
        Some(reason) => Err(ChannelNameError::InvalidFormat(reason)),
        None => Ok(()),
    }
}

fn dot_segment(segment: &[u8]) -> Option<&'static str> {
    match segment {
        b"." => Some(DOT_SEGMENT),
        b".." => Some(DOT_DOT_SEGMENT),
        _ => None,
    }
}

/// `channel_hash`: the low 16 bits of XXH3-64 (seed 0) of the name's bytes.
///
/// Defined for any bytes; use [`ChannelName`] to hash only valid names.
/// Collisions are expected: authorisation uses the full name.
pub fn channel_hash(name: &[u8]) -> u16 {
    xxhash_rust::xxh3::xxh3_64(name) as u16
}

/// Validates `name` and returns its hash, without allocating.
///
/// # Errors
/// See [`validate_channel_name`].
pub fn checked_channel_hash(name: &str) -> Result<u16, ChannelNameError> {
    validate_channel_name(name)?;
    Ok(channel_hash(name.as_bytes()))
}

/// The stream id a node publishes channel `hash` on (WIRE.md §10.3).
pub const fn publish_stream_id(hash: u16) -> u64 {
    0x0001_0000_0000_0000 | hash as u64
}

/// A validated channel name. Cloning it is a reference count (every event
/// received on a channel carries its name). Comparisons order and equate
/// by the name; two clones of one name compare without reading it.
#[derive(Clone, Eq)]
pub struct ChannelName(std::sync::Arc<str>);

impl std::hash::Hash for ChannelName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialEq for ChannelName {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Ord for ChannelName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if std::sync::Arc::ptr_eq(&self.0, &other.0) {
            std::cmp::Ordering::Equal
        } else {
            self.0.cmp(&other.0)
        }
    }
}

impl PartialOrd for ChannelName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl ChannelName {
    /// Validates and wraps `name`.
    ///
    /// # Errors
    /// See [`validate_channel_name`].
    pub fn new(name: &str) -> Result<Self, ChannelNameError> {
        validate_channel_name(name)?;
        Ok(Self(std::sync::Arc::from(name)))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 16-bit hash of the name.
    pub fn hash(&self) -> u16 {
        channel_hash(self.0.as_bytes())
    }

    /// True when `self` equals `other` or is a `/`-delimited ancestor of it
    /// (`a/b` is a prefix of `a/b/c` but not of `a/bc`).
    pub fn is_prefix_of(&self, other: &ChannelName) -> bool {
        match other.0.strip_prefix(&*self.0) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }
}

impl fmt::Debug for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChannelName({:?})", self.0)
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ChannelName {
    type Err = ChannelNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clones (one allocation) and separately built names (two) compare
    /// alike: by the name.
    #[test]
    fn comparisons_are_by_name() {
        use std::cmp::Ordering;
        let a = ChannelName::new("a/b").unwrap();
        let same = ChannelName::new("a/b").unwrap();
        let later = ChannelName::new("a/c").unwrap();
        assert_eq!(a, a.clone());
        assert_eq!(a, same);
        assert_eq!(a.cmp(&same), Ordering::Equal);
        assert_eq!(a.cmp(&a.clone()), Ordering::Equal);
        assert_eq!(a.cmp(&later), Ordering::Less);
        assert_eq!(later.partial_cmp(&same), Some(Ordering::Greater));
        assert_ne!(a, later);
        let set: std::collections::BTreeSet<_> = [a.clone(), same, later].into();
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn prefix_is_segment_aware() {
        let ab = ChannelName::new("a/b").unwrap();
        assert!(ab.is_prefix_of(&ChannelName::new("a/b").unwrap()));
        assert!(ab.is_prefix_of(&ChannelName::new("a/b/c").unwrap()));
        assert!(!ab.is_prefix_of(&ChannelName::new("a/bc").unwrap()));
        assert!(!ab.is_prefix_of(&ChannelName::new("a").unwrap()));
    }

    #[test]
    fn publish_stream_id_sets_the_channel_bit() {
        assert_eq!(publish_stream_id(0xe5d8), 0x0001_0000_0000_e5d8);
    }
}
