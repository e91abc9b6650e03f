//! Subprotocol ids and message layouts (WIRE.md §9–10): stream-window
//! grants, channel membership, NAT reflex and rendezvous, the punch
//! keep-alive, and the (unused) NACK payload.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::error::WireError;
use crate::identity::{ChannelName, TOKEN_SIZE};

/// Subprotocol ids.
pub mod ids {
    /// Plain events.
    pub const EVENTS: u16 = 0x0000;
    /// Causal events (delivered as plain events).
    pub const CAUSAL: u16 = 0x0400;
    /// Compute migration.
    pub const MIGRATION: u16 = 0x0500;
    /// Channel membership.
    pub const MEMBERSHIP: u16 = 0x0A00;
    /// Stream window grants.
    pub const STREAM_WINDOW: u16 = 0x0B00;
    /// Capability announcement.
    pub const CAPABILITY: u16 = 0x0C00;
    /// NAT reflex probe.
    pub const REFLEX: u16 = 0x0D00;
    /// NAT rendezvous.
    pub const RENDEZVOUS: u16 = 0x0D01;
    /// Continuity: chain heads and proof requests (`crate::continuity::wire`).
    pub const CONTINUITY: u16 = 0x0700;
    /// Fork announcements.
    pub const FORK_ANNOUNCE: u16 = 0x0701;
    /// Continuity proof transfer.
    pub const PROOF_TRANSFER: u16 = 0x0702;
    /// Partition: the heal hello.
    pub const PARTITION: u16 = 0x0800;
    /// Reconcile: branch requests and branches.
    pub const RECONCILE: u16 = 0x0801;
    /// Net-to-Net reliability (NACKs). In the vendor range, which v0.11
    /// would deliver as plain events, so it is only ever sent to peers that
    /// proved they are Net nodes (see docs/mesh.md).
    pub const NET_RELIABILITY: u16 = 0x1A00;
}

/// The stream id of StreamWindow grants.
pub const CONTROL_STREAM_ID: u64 = u64::MAX;

fn exact<'a, const N: usize>(
    bytes: &'a [u8],
    what: &'static str,
) -> Result<&'a [u8; N], WireError> {
    match bytes.len() {
        n if n < N => Err(WireError::Truncated {
            what,
            needed: N,
            got: n,
        }),
        n if n > N => Err(WireError::TrailingBytes { what, extra: n - N }),
        _ => bytes.try_into().map_err(|_| WireError::Truncated {
            what,
            needed: N,
            got: bytes.len(),
        }),
    }
}

fn u64_le(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

fn u64_be(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_be_bytes(w)
}

/// A StreamWindow grant (0x0B00, exactly 16 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamWindow {
    /// The stream being credited.
    pub stream_id: u64,
    /// The receiver's cumulative consumed bytes for it.
    pub total_consumed: u64,
}

impl StreamWindow {
    /// Size of a grant.
    pub const SIZE: usize = 16;

    /// The 16 bytes.
    pub fn encode(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.stream_id.to_le_bytes());
        b[8..].copy_from_slice(&self.total_consumed.to_le_bytes());
        b
    }

    /// Decodes exactly 16 bytes.
    ///
    /// # Errors
    /// [`WireError::Truncated`] or [`WireError::TrailingBytes`].
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let b = exact::<16>(bytes, "stream window grant")?;
        Ok(Self {
            stream_id: u64_le(&b[..8]),
            total_consumed: u64_le(&b[8..]),
        })
    }
}

/// Why a membership request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AckReason {
    /// 0.
    Ok,
    /// 1.
    Unauthorized,
    /// 2.
    UnknownChannel,
    /// 3.
    RateLimited,
    /// 4.
    TooManyChannels,
}

impl AckReason {
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => Self::Ok,
            1 => Self::Unauthorized,
            2 => Self::UnknownChannel,
            3 => Self::RateLimited,
            4 => Self::TooManyChannels,
            _ => return None,
        })
    }

    fn to_byte(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Unauthorized => 1,
            Self::UnknownChannel => 2,
            Self::RateLimited => 3,
            Self::TooManyChannels => 4,
        }
    }
}

/// A channel membership message (0x0A00).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Membership {
    /// Subscribe (type 0), with an optional 159-byte token.
    Subscribe {
        /// Request correlation.
        nonce: u64,
        /// The channel.
        channel: ChannelName,
        /// A PermissionToken, if presented.
        token: Option<Vec<u8>>,
    },
    /// Unsubscribe (type 1).
    Unsubscribe {
        /// Request correlation.
        nonce: u64,
        /// The channel.
        channel: ChannelName,
    },
    /// Ack (type 2, exactly 11 bytes).
    Ack {
        /// Echo of the request's nonce.
        nonce: u64,
        /// Whether it was accepted.
        accepted: bool,
        /// Why (Ok when accepted).
        reason: AckReason,
    },
}

fn channel_at(bytes: &[u8]) -> Result<(ChannelName, &[u8]), WireError> {
    let (&len, rest) = bytes.split_first().ok_or(WireError::Truncated {
        what: "membership channel name length",
        needed: 1,
        got: 0,
    })?;
    let (name, rest) = rest
        .split_at_checked(usize::from(len))
        .ok_or(WireError::Truncated {
            what: "membership channel name",
            needed: usize::from(len),
            got: rest.len(),
        })?;
    let name = std::str::from_utf8(name).map_err(|e| WireError::InvalidChannel(e.to_string()))?;
    let channel = ChannelName::new(name).map_err(|e| WireError::InvalidChannel(e.to_string()))?;
    Ok((channel, rest))
}

impl Membership {
    /// The message bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Self::Subscribe {
                nonce,
                channel,
                token,
            } => {
                out.push(0);
                out.extend_from_slice(&nonce.to_le_bytes());
                out.push(channel.as_str().len() as u8);
                out.extend_from_slice(channel.as_str().as_bytes());
                let token = token.as_deref().unwrap_or(&[]);
                out.extend_from_slice(&(token.len() as u16).to_le_bytes());
                out.extend_from_slice(token);
            }
            Self::Unsubscribe { nonce, channel } => {
                out.push(1);
                out.extend_from_slice(&nonce.to_le_bytes());
                out.push(channel.as_str().len() as u8);
                out.extend_from_slice(channel.as_str().as_bytes());
            }
            Self::Ack {
                nonce,
                accepted,
                reason,
            } => {
                out.push(2);
                out.extend_from_slice(&nonce.to_le_bytes());
                out.push(u8::from(*accepted));
                out.push(reason.to_byte());
            }
        }
        out
    }

    /// Decodes a membership message with the reference's strictness: a
    /// Subscribe with nothing after the name has no token (legacy form), one
    /// stray byte is an error, and nothing may follow a token, an
    /// Unsubscribe, or an Ack.
    ///
    /// # Errors
    /// [`WireError`] variants naming what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let (&kind, rest) = bytes.split_first().ok_or(WireError::Truncated {
            what: "membership type",
            needed: 1,
            got: 0,
        })?;
        let nonce_bytes = rest.get(..8).ok_or(WireError::Truncated {
            what: "membership nonce",
            needed: 8,
            got: rest.len(),
        })?;
        let nonce = u64_le(nonce_bytes);
        let rest = &rest[8..];
        match kind {
            0 => {
                let (channel, rest) = channel_at(rest)?;
                let token = match rest.len() {
                    0 => None,
                    1 => {
                        return Err(WireError::Truncated {
                            what: "subscribe token length prefix",
                            needed: 2,
                            got: 1,
                        });
                    }
                    _ => {
                        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
                        let body = &rest[2..];
                        if body.len() < len {
                            return Err(WireError::Truncated {
                                what: "subscribe token",
                                needed: len,
                                got: body.len(),
                            });
                        }
                        if body.len() > len {
                            return Err(WireError::TrailingBytes {
                                what: "subscribe",
                                extra: body.len() - len,
                            });
                        }
                        (len > 0).then(|| body.to_vec())
                    }
                };
                if let Some(token) = &token
                    && token.len() != TOKEN_SIZE
                {
                    return Err(WireError::InvalidValue {
                        what: "subscribe token length",
                        value: token.len() as u64,
                    });
                }
                Ok(Self::Subscribe {
                    nonce,
                    channel,
                    token,
                })
            }
            1 => {
                let (channel, rest) = channel_at(rest)?;
                if !rest.is_empty() {
                    return Err(WireError::TrailingBytes {
                        what: "unsubscribe",
                        extra: rest.len(),
                    });
                }
                Ok(Self::Unsubscribe { nonce, channel })
            }
            2 => {
                let b = exact::<2>(rest, "membership ack")?;
                let accepted = match b[0] {
                    0 => false,
                    1 => true,
                    v => {
                        return Err(WireError::InvalidValue {
                            what: "ack accepted",
                            value: u64::from(v),
                        });
                    }
                };
                let reason = AckReason::from_byte(b[1]).ok_or(WireError::InvalidValue {
                    what: "ack reason",
                    value: u64::from(b[1]),
                })?;
                Ok(Self::Ack {
                    nonce,
                    accepted,
                    reason,
                })
            }
            other => Err(WireError::InvalidValue {
                what: "membership type",
                value: u64::from(other),
            }),
        }
    }
}

/// Size of an encoded address (family, 16 address bytes, big-endian port).
pub const ADDRESS_SIZE: usize = 19;

/// Encodes a socket address as the reflex/rendezvous 19-byte form.
pub fn encode_address(addr: &SocketAddr) -> [u8; ADDRESS_SIZE] {
    let mut b = [0u8; ADDRESS_SIZE];
    match addr.ip() {
        IpAddr::V4(v4) => {
            b[0] = 4;
            b[1..5].copy_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            b[0] = 6;
            b[1..17].copy_from_slice(&v6.octets());
        }
    }
    b[17..19].copy_from_slice(&addr.port().to_be_bytes());
    b
}

/// Decodes a 19-byte address.
///
/// An IPv4 address fills the first 4 of the 16 address bytes; the other 12
/// must be zero (WIRE.md §10.5, and what v0.11 writes), so every address has
/// exactly one encoding.
///
/// # Errors
/// [`WireError::Truncated`] or [`WireError::TrailingBytes`] for a length
/// other than 19, [`WireError::InvalidValue`] for a family byte other than 4
/// or 6, [`WireError::NonZeroPadding`] for an IPv4 address whose 12 padding
/// bytes are not all zero.
pub fn decode_address(bytes: &[u8]) -> Result<SocketAddr, WireError> {
    let b = exact::<ADDRESS_SIZE>(bytes, "address")?;
    let port = u16::from_be_bytes([b[17], b[18]]);
    let ip = match b[0] {
        4 => {
            if b[5..17].iter().any(|&byte| byte != 0) {
                return Err(WireError::NonZeroPadding {
                    what: "IPv4 address",
                });
            }
            IpAddr::V4(Ipv4Addr::new(b[1], b[2], b[3], b[4]))
        }
        6 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&b[1..17]);
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        other => {
            return Err(WireError::InvalidValue {
                what: "address family",
                value: u64::from(other),
            });
        }
    };
    Ok(SocketAddr::new(ip, port))
}

/// A rendezvous message (0x0D01; integers big-endian, exact lengths).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rendezvous {
    /// Ask the rendezvous server to introduce `target`.
    PunchRequest {
        /// The peer to reach.
        target: u64,
        /// The requester's reflexive address.
        requester_reflex: SocketAddr,
    },
    /// The server tells each side about the other.
    PunchIntroduce {
        /// The other peer.
        peer: u64,
        /// Its reflexive address.
        peer_reflex: SocketAddr,
        /// When to start punching (ms since the epoch).
        fire_at_ms: u64,
    },
    /// A punch succeeded.
    PunchAck {
        /// Sender.
        from_peer: u64,
        /// Receiver.
        to_peer: u64,
        /// Punch correlation.
        punch_id: u32,
    },
}

impl Rendezvous {
    /// The message bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Self::PunchRequest {
                target,
                requester_reflex,
            } => {
                out.push(1);
                out.extend_from_slice(&target.to_be_bytes());
                out.extend_from_slice(&encode_address(requester_reflex));
            }
            Self::PunchIntroduce {
                peer,
                peer_reflex,
                fire_at_ms,
            } => {
                out.push(2);
                out.extend_from_slice(&peer.to_be_bytes());
                out.extend_from_slice(&encode_address(peer_reflex));
                out.extend_from_slice(&fire_at_ms.to_be_bytes());
            }
            Self::PunchAck {
                from_peer,
                to_peer,
                punch_id,
            } => {
                out.push(3);
                out.extend_from_slice(&from_peer.to_be_bytes());
                out.extend_from_slice(&to_peer.to_be_bytes());
                out.extend_from_slice(&punch_id.to_be_bytes());
            }
        }
        out
    }

    /// Decodes a rendezvous message of exactly its length.
    ///
    /// # Errors
    /// Unknown kind, wrong length, bad address.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        match bytes.first() {
            Some(1) => {
                let b = exact::<28>(bytes, "punch request")?;
                Ok(Self::PunchRequest {
                    target: u64_be(&b[1..9]),
                    requester_reflex: decode_address(&b[9..28])?,
                })
            }
            Some(2) => {
                let b = exact::<36>(bytes, "punch introduce")?;
                Ok(Self::PunchIntroduce {
                    peer: u64_be(&b[1..9]),
                    peer_reflex: decode_address(&b[9..28])?,
                    fire_at_ms: u64_be(&b[28..36]),
                })
            }
            Some(3) => {
                let b = exact::<21>(bytes, "punch ack")?;
                Ok(Self::PunchAck {
                    from_peer: u64_be(&b[1..9]),
                    to_peer: u64_be(&b[9..17]),
                    punch_id: u32::from_be_bytes([b[17], b[18], b[19], b[20]]),
                })
            }
            Some(&other) => Err(WireError::InvalidValue {
                what: "rendezvous kind",
                value: u64::from(other),
            }),
            None => Err(WireError::Truncated {
                what: "rendezvous",
                needed: 1,
                got: 0,
            }),
        }
    }
}

/// The raw 14-byte punch keep-alive (little-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PunchKeepAlive {
    /// Sender node_id.
    pub sender: u64,
    /// Punch correlation.
    pub punch_id: u32,
}

impl PunchKeepAlive {
    /// Size.
    pub const SIZE: usize = 14;
    /// Bytes `50 48`.
    pub const MAGIC: [u8; 2] = [0x50, 0x48];

    /// The 14 bytes.
    pub fn encode(&self) -> [u8; 14] {
        let mut b = [0u8; 14];
        b[0..2].copy_from_slice(&Self::MAGIC);
        b[2..10].copy_from_slice(&self.sender.to_le_bytes());
        b[10..14].copy_from_slice(&self.punch_id.to_le_bytes());
        b
    }

    /// Decodes exactly 14 bytes.
    ///
    /// # Errors
    /// Wrong length or magic.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let b = exact::<14>(bytes, "punch keep-alive")?;
        if b[0..2] != Self::MAGIC {
            return Err(WireError::InvalidValue {
                what: "keep-alive magic",
                value: u64::from(u16::from_le_bytes([b[0], b[1]])),
            });
        }
        Ok(Self {
            sender: u64_le(&b[2..10]),
            punch_id: u32::from_le_bytes([b[10], b[11], b[12], b[13]]),
        })
    }
}

/// The NACK payload (defined by v0.11, never sent by it): the next expected
/// sequence (itself missing) and a bitmap of further missing ones
/// (bit i = `next_expected + 1 + i`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Nack {
    /// The first missing sequence.
    pub next_expected: u64,
    /// Bit i set: `next_expected + 1 + i` is missing too.
    pub missing_bitmap: u64,
}

impl Nack {
    /// Size.
    pub const SIZE: usize = 16;

    /// The 16 bytes.
    pub fn encode(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.next_expected.to_le_bytes());
        b[8..].copy_from_slice(&self.missing_bitmap.to_le_bytes());
        b
    }

    /// Decodes exactly 16 bytes.
    ///
    /// # Errors
    /// Wrong length.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let b = exact::<16>(bytes, "nack")?;
        Ok(Self {
            next_expected: u64_le(&b[..8]),
            missing_bitmap: u64_le(&b[8..]),
        })
    }

    /// Every sequence this NACK reports missing, in order. Bits that would
    /// name a sequence past `u64::MAX` name nothing and are skipped (a
    /// decoded NACK is untrusted; it must not overflow).
    pub fn missing(&self) -> Vec<u64> {
        std::iter::once(self.next_expected)
            .chain(
                (0..64)
                    .filter(|i| self.missing_bitmap >> i & 1 == 1)
                    .map_while(|i| self.next_expected.checked_add(1 + i)),
            )
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lidar() -> ChannelName {
        ChannelName::new("sensors/lidar").unwrap()
    }

    #[test]
    fn ipv4_address_with_nonzero_padding_is_rejected() {
        let addr: SocketAddr = "127.0.0.1:40123".parse().unwrap();
        let canonical = encode_address(&addr);
        assert_eq!(decode_address(&canonical), Ok(addr));
        for at in 5..17 {
            let mut padded = canonical;
            padded[at] = 0x01;
            assert_eq!(
                decode_address(&padded),
                Err(WireError::NonZeroPadding {
                    what: "IPv4 address"
                }),
                "padding byte {at}"
            );
        }
    }

    #[test]
    fn ipv6_address_uses_all_sixteen_bytes() {
        let addr: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        let bytes = encode_address(&addr);
        assert_eq!(decode_address(&bytes), Ok(addr));
        assert_eq!(encode_address(&decode_address(&bytes).unwrap()), bytes);
    }

    /// The `wire_decode` fuzz input that found the missing padding check: a
    /// PunchIntroduce whose IPv4 reflex address carries non-zero padding.
    #[test]
    fn punch_introduce_with_nonzero_ipv4_padding_is_rejected() {
        let bytes = [
            0x02, 0x04, 0xfd, 0x00, 0x00, 0x03, 0xbf, 0xff, 0xff, // kind, peer
            0x04, 0x00, 0x17, 0x17, 0x17, // family 4, 0.23.23.23
            0x17, 0x66, 0x66, 0x66, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, // padding
            0x2f, 0x2f, // port
            0x2f, 0x66, 0x66, 0x66, 0x66, 0x66, 0x00, 0x00, // fire_at_ms
        ];
        assert_eq!(bytes.len(), 36);
        assert_eq!(
            Rendezvous::decode(&bytes),
            Err(WireError::NonZeroPadding {
                what: "IPv4 address"
            })
        );
    }

    /// WIRE.md §10.2: a Subscribe may end right after the name (the legacy
    /// form). It decodes like `token_len = 0`, and encoding always writes the
    /// `00 00` form, so the legacy bytes do not round-trip but the value does.
    #[test]
    fn legacy_subscribe_decodes_as_no_token_and_reencodes_canonically() {
        let canonical = Membership::Subscribe {
            nonce: 1,
            channel: lidar(),
            token: None,
        }
        .encode();
        assert_eq!(&canonical[canonical.len() - 2..], &[0, 0]);
        let legacy = &canonical[..canonical.len() - 2];
        let decoded = Membership::decode(legacy).unwrap();
        assert_eq!(decoded, Membership::decode(&canonical).unwrap());
        assert_eq!(decoded.encode(), canonical);
        assert_eq!(Membership::decode(&decoded.encode()).unwrap(), decoded);
    }

    #[test]
    fn nack_near_the_end_of_the_sequence_space_does_not_overflow() {
        let nack = Nack {
            next_expected: u64::MAX - 1,
            missing_bitmap: u64::MAX,
        };
        assert_eq!(nack.missing(), vec![u64::MAX - 1, u64::MAX]);
        let decoded = Nack::decode(&[0xff; 16]).unwrap();
        assert_eq!(decoded.missing(), vec![u64::MAX]);
        let sparse = Nack {
            next_expected: 10,
            missing_bitmap: 0b101,
        };
        assert_eq!(sparse.missing(), vec![10, 11, 13]);
    }

    /// The `wire_decode` fuzz input `00 | nonce | 01 'O'`: a legacy Subscribe
    /// to channel "O".
    #[test]
    fn legacy_subscribe_fuzz_input_decodes() {
        let bytes = [0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0x01, b'O'];
        let decoded = Membership::decode(&bytes).unwrap();
        assert_eq!(
            decoded,
            Membership::Subscribe {
                nonce: 0x100,
                channel: ChannelName::new("O").unwrap(),
                token: None,
            }
        );
        let mut canonical = bytes.to_vec();
        canonical.extend_from_slice(&[0, 0]);
        assert_eq!(decoded.encode(), canonical);
    }
}
