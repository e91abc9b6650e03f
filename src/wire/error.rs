//! `WireError`: every way bytes from the network can fail to decode.

/// A datagram or message that does not decode. Every decoder in
/// [`crate::wire`] returns this instead of panicking, whatever the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Fewer bytes than the structure needs.
    #[error("{what}: need {needed} bytes, got {got}")]
    Truncated {
        /// What was being decoded.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// More bytes than the structure allows (exact-length messages).
    #[error("{what}: {extra} unexpected trailing bytes")]
    TrailingBytes {
        /// What was being decoded.
        what: &'static str,
        /// How many bytes were left over.
        extra: usize,
    },
    /// The NetHeader magic is not `45 4E`.
    #[error("bad NetHeader magic")]
    BadMagic,
    /// The routing-header magic is not `52 54`.
    #[error("bad routing-header magic")]
    BadRoutingMagic,
    /// A NetHeader version other than 1.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// `payload_len` above 8112.
    #[error("payload length {0} exceeds 8112")]
    PayloadTooLarge(usize),
    /// `event_count` above 2028.
    #[error("event count {0} exceeds 2028")]
    TooManyEvents(usize),
    /// The body after the header does not have the length the header implies.
    #[error("packet body is {got} bytes; the header implies {expected}")]
    BodyLength {
        /// Expected length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// An enum-like byte with a value the format does not define.
    #[error("{what}: invalid value {value}")]
    InvalidValue {
        /// The field.
        what: &'static str,
        /// The value found.
        value: u64,
    },
    /// Bytes the format fixes at zero are not zero (the 12 bytes after an
    /// IPv4 address in the 19-byte address form, WIRE.md §10.5). v0.11
    /// always writes zeros, so the message was not produced by a conforming
    /// peer; drop it rather than guess which bytes were meant.
    #[error("{what}: padding bytes are not zero")]
    NonZeroPadding {
        /// The field whose padding is not zero.
        what: &'static str,
    },
    /// A channel name in a message breaks the naming rules.
    #[error("invalid channel name: {0}")]
    InvalidChannel(String),
    /// The events of a batch cannot fit one packet.
    #[error("events do not fit one packet: {0}")]
    BatchTooLarge(String),
}
