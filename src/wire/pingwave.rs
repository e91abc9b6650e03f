//! The 72-byte unencrypted EnhancedPingwave (WIRE.md §8).

use super::error::WireError;

/// Size of a pingwave.
pub const PINGWAVE_SIZE: usize = 72;
/// TTL of pingwaves a node emits.
pub const PINGWAVE_TTL: u8 = 3;
/// Pingwaves that have taken this many hops are dropped.
pub const PINGWAVE_MAX_HOPS: u8 = 16;

/// A node's health as a pingwave reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Health {
    /// 0.
    Healthy,
    /// 1.
    Degraded,
    /// 2.
    Unhealthy,
    /// 3.
    Unknown,
}

impl Health {
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => Self::Healthy,
            1 => Self::Degraded,
            2 => Self::Unhealthy,
            3 => Self::Unknown,
            _ => return None,
        })
    }

    fn to_byte(self) -> u8 {
        match self {
            Self::Healthy => 0,
            Self::Degraded => 1,
            Self::Unhealthy => 2,
            Self::Unknown => 3,
        }
    }
}

/// A decoded pingwave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pingwave {
    /// 32-byte origin id: node_id LE then 24 zero bytes.
    pub origin_id: [u8; 32],
    /// Per-node counter.
    pub seq: u64,
    /// Hops remaining.
    pub ttl: u8,
    /// Hops taken.
    pub hop_count: u8,
    /// Sender wall clock, µs since the UNIX epoch.
    pub origin_timestamp_us: u64,
    /// Capability hash (0 from v0.11).
    pub capability_hash: u64,
    /// Capability version (0 from v0.11).
    pub capability_version: u32,
    /// Load level (0 from v0.11).
    pub load_level: u8,
    /// Health.
    pub health: Health,
    /// Primary capabilities (all 0 from v0.11).
    pub primary_caps: [u8; 8],
}

impl Pingwave {
    /// A pingwave from `node_id` as a v0.11 node emits it.
    pub fn new(node_id: u64, seq: u64, origin_timestamp_us: u64) -> Self {
        Self {
            origin_id: crate::identity::proximity_graph_id(node_id),
            seq,
            ttl: PINGWAVE_TTL,
            hop_count: 0,
            origin_timestamp_us,
            capability_hash: 0,
            capability_version: 0,
            load_level: 0,
            health: Health::Healthy,
            primary_caps: [0; 8],
        }
    }

    /// The origin's node_id (first 8 bytes of `origin_id`).
    pub fn origin_node_id(&self) -> u64 {
        let mut id = [0u8; 8];
        id.copy_from_slice(&self.origin_id[..8]);
        u64::from_le_bytes(id)
    }

    /// The copy a node forwards: ttl − 1, hop_count + 1.
    pub fn forwarded(&self) -> Self {
        Self {
            ttl: self.ttl.saturating_sub(1),
            hop_count: self.hop_count.saturating_add(1),
            ..*self
        }
    }

    /// The 72 bytes.
    pub fn encode(&self) -> [u8; PINGWAVE_SIZE] {
        let mut b = [0u8; PINGWAVE_SIZE];
        b[0..32].copy_from_slice(&self.origin_id);
        b[32..40].copy_from_slice(&self.seq.to_le_bytes());
        b[40] = self.ttl;
        b[41] = self.hop_count;
        b[42..50].copy_from_slice(&self.origin_timestamp_us.to_le_bytes());
        b[50..58].copy_from_slice(&self.capability_hash.to_le_bytes());
        b[58..62].copy_from_slice(&self.capability_version.to_le_bytes());
        b[62] = self.load_level;
        b[63] = self.health.to_byte();
        b[64..72].copy_from_slice(&self.primary_caps);
        b
    }

    /// Decodes exactly 72 bytes.
    ///
    /// # Errors
    /// [`WireError::Truncated`] / [`WireError::TrailingBytes`] for other
    /// lengths; [`WireError::InvalidValue`] for a health byte above 3.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let b: &[u8; PINGWAVE_SIZE] = match bytes.len() {
            PINGWAVE_SIZE => bytes.try_into().map_err(|_| WireError::InvalidValue {
                what: "pingwave length",
                value: 0,
            })?,
            n if n < PINGWAVE_SIZE => {
                return Err(WireError::Truncated {
                    what: "pingwave",
                    needed: PINGWAVE_SIZE,
                    got: n,
                });
            }
            n => {
                return Err(WireError::TrailingBytes {
                    what: "pingwave",
                    extra: n - PINGWAVE_SIZE,
                });
            }
        };
        let u64_at = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[at..at + 8]);
            u64::from_le_bytes(w)
        };
        let health = Health::from_byte(b[63]).ok_or(WireError::InvalidValue {
            what: "pingwave health",
            value: u64::from(b[63]),
        })?;
        let mut origin_id = [0u8; 32];
        origin_id.copy_from_slice(&b[0..32]);
        let mut primary_caps = [0u8; 8];
        primary_caps.copy_from_slice(&b[64..72]);
        Ok(Self {
            origin_id,
            seq: u64_at(32),
            ttl: b[40],
            hop_count: b[41],
            origin_timestamp_us: u64_at(42),
            capability_hash: u64_at(50),
            capability_version: u32::from_le_bytes([b[58], b[59], b[60], b[61]]),
            load_level: b[62],
            health,
            primary_caps,
        })
    }
}
