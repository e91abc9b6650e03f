//! The capability announcement (WIRE.md §10.4): one compact serde_json
//! object per 0x0C00 event frame, signed with the announcer's entity key
//! over its canonical form without `signature` and `hop_count`.
//!
//! Verification re-serialises the parsed announcement canonically, exactly
//! as v0.11 does, so whatever v0.11 verifies we verify and the reverse.
//! The byte length is checked before parsing, so an oversized announcement
//! costs nothing but the length comparison.

use std::net::SocketAddr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::caps::CapabilitySet;
use crate::identity::{EntityId, EntityKeypair, IdentityError, Signature};
use crate::wire::frames::FRAME_PREFIX;
use crate::wire::header::MAX_PAYLOAD_SIZE;

/// The largest announcement accepted or produced, in bytes: one event
/// frame filling a whole packet payload (8112 − 4).
pub const MAX_ANNOUNCEMENT_LEN: usize = MAX_PAYLOAD_SIZE - FRAME_PREFIX;
/// Bytes a forwarder may add (`,"hop_count":15`): our own announcements
/// leave this much room so every forwarded copy still fits.
pub const HOP_COUNT_HEADROOM: usize = 15;
/// Default `ttl_secs` (MESH2.md §6).
pub const DEFAULT_TTL_SECS: u32 = 300;

/// Why an announcement could not be decoded, built or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnnouncementError {
    /// The bytes exceed [`MAX_ANNOUNCEMENT_LEN`]; they were not parsed.
    /// Drop the frame (from a peer) or announce fewer capabilities (own).
    #[error("announcement is {len} bytes; at most {max} allowed")]
    TooLarge {
        /// Length of the bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not the JSON of an announcement (syntax, a missing member, a wrong
    /// type, an out-of-range integer, an unknown enum name). Drop it.
    #[error("malformed announcement: {0}")]
    Malformed(String),
    /// No signature, where one is required.
    #[error("announcement is unsigned")]
    Unsigned,
    /// The signature does not verify (strict ed25519) under `entity_id`,
    /// or `entity_id` is not a curve point: forged or altered.
    #[error("announcement signature does not verify")]
    BadSignature,
    /// `node_id` is not the node_id derived from `entity_id`.
    #[error("node_id {claimed:#018x} is not derived from entity_id ({derived:#018x})")]
    NodeIdMismatch {
        /// The announced node_id.
        claimed: u64,
        /// The node_id of the entity key.
        derived: u64,
    },
    /// Signing with a public-only keypair.
    #[error("keypair is public-only and cannot sign")]
    ReadOnlyKey,
}

/// A capability announcement. Field order is the wire order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    /// Announcer's node_id (must be derived from `entity_id`).
    pub node_id: u64,
    /// Announcer's ed25519 public key, 64 lowercase hex chars on the wire.
    #[serde(with = "entity_hex")]
    pub entity_id: EntityId,
    /// Per-announcer version; receivers index only strictly greater ones.
    pub version: u64,
    /// Creation time, UNIX ns.
    pub timestamp_ns: u64,
    /// Lifetime from `timestamp_ns`, seconds (0 = until the next GC).
    pub ttl_secs: u32,
    /// What the node offers.
    pub capabilities: CapabilitySet,
    /// ed25519 signature; omitted on the wire when `None`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "signature_hex"
    )]
    pub signature: Option<Signature>,
    /// Hops taken so far (0 from the announcer; not covered by the
    /// signature); omitted on the wire when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hop_count: u8,
    /// The announcer's reflexive address, if known; omitted when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reflex_addr: Option<SocketAddr>,
}

/// The signed view: every member but `signature` and `hop_count`, in wire
/// order, borrowed so signing and verifying copy nothing.
#[derive(Serialize)]
struct SigningView<'a> {
    node_id: u64,
    #[serde(with = "entity_hex")]
    entity_id: &'a EntityId,
    version: u64,
    timestamp_ns: u64,
    ttl_secs: u32,
    capabilities: &'a CapabilitySet,
    #[serde(skip_serializing_if = "Option::is_none")]
    reflex_addr: Option<SocketAddr>,
}

fn is_zero(hop_count: &u8) -> bool {
    *hop_count == 0
}

/// serde_json cannot fail on these types: string keys, integers, strings,
/// booleans, sequences and unit enum variants only.
fn to_json(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).expect("announcement types always serialise")
}

impl Announcement {
    /// An unsigned announcement at hop 0 (sign it with [`sign`](Self::sign)).
    pub fn new(
        entity_id: EntityId,
        version: u64,
        timestamp_ns: u64,
        ttl_secs: u32,
        capabilities: CapabilitySet,
    ) -> Self {
        Self {
            node_id: entity_id.node_id(),
            entity_id,
            version,
            timestamp_ns,
            ttl_secs,
            capabilities,
            signature: None,
            hop_count: 0,
            reflex_addr: None,
        }
    }

    /// Parses the bytes of one event frame.
    ///
    /// # Errors
    /// [`AnnouncementError::TooLarge`] before any parsing when `bytes` is
    /// longer than [`MAX_ANNOUNCEMENT_LEN`]; [`AnnouncementError::Malformed`]
    /// for anything that is not an announcement. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, AnnouncementError> {
        if bytes.len() > MAX_ANNOUNCEMENT_LEN {
            return Err(AnnouncementError::TooLarge {
                len: bytes.len(),
                max: MAX_ANNOUNCEMENT_LEN,
            });
        }
        serde_json::from_slice(bytes).map_err(|e| AnnouncementError::Malformed(e.to_string()))
    }

    /// The canonical wire bytes (compact JSON, wire member order).
    pub fn encode(&self) -> Vec<u8> {
        to_json(self)
    }

    /// The bytes the signature covers: the canonical JSON without
    /// `signature` and `hop_count`.
    pub fn signing_input(&self) -> Vec<u8> {
        to_json(&SigningView {
            node_id: self.node_id,
            entity_id: &self.entity_id,
            version: self.version,
            timestamp_ns: self.timestamp_ns,
            ttl_secs: self.ttl_secs,
            capabilities: &self.capabilities,
            reflex_addr: self.reflex_addr,
        })
    }

    /// Signs in place with `keypair`, after checking that the announcement
    /// is `keypair`'s and that it fits a frame even after 15 forwards.
    ///
    /// # Errors
    /// [`AnnouncementError::ReadOnlyKey`] for a public-only keypair;
    /// [`AnnouncementError::NodeIdMismatch`] if `entity_id`/`node_id` are
    /// not the keypair's; [`AnnouncementError::TooLarge`] if the signed
    /// announcement could outgrow a frame.
    pub fn sign(&mut self, keypair: &EntityKeypair) -> Result<(), AnnouncementError> {
        let derived = keypair.node_id();
        if self.entity_id != *keypair.entity_id() || self.node_id != derived {
            return Err(AnnouncementError::NodeIdMismatch {
                claimed: self.node_id,
                derived,
            });
        }
        let signature = keypair.sign(&self.signing_input()).map_err(|e| match e {
            IdentityError::ReadOnly => AnnouncementError::ReadOnlyKey,
            _ => AnnouncementError::BadSignature,
        })?;
        self.signature = Some(signature);
        let len = to_json(&Self {
            hop_count: 0,
            ..self.clone()
        })
        .len();
        if len + HOP_COUNT_HEADROOM > MAX_ANNOUNCEMENT_LEN {
            self.signature = None;
            return Err(AnnouncementError::TooLarge {
                len: len + HOP_COUNT_HEADROOM,
                max: MAX_ANNOUNCEMENT_LEN,
            });
        }
        Ok(())
    }

    /// Strictly verifies the signature and that `node_id` is derived from
    /// `entity_id`.
    ///
    /// # Errors
    /// [`AnnouncementError::Unsigned`], [`AnnouncementError::BadSignature`]
    /// or [`AnnouncementError::NodeIdMismatch`], checked in that order.
    pub fn verify(&self) -> Result<(), AnnouncementError> {
        let signature = self.signature.as_ref().ok_or(AnnouncementError::Unsigned)?;
        self.entity_id
            .verify(&self.signing_input(), signature)
            .map_err(|_| AnnouncementError::BadSignature)?;
        self.check_node_id()
    }

    /// Checks only that `node_id` is derived from `entity_id` (what an
    /// unsigned announcement can prove).
    ///
    /// # Errors
    /// [`AnnouncementError::NodeIdMismatch`].
    pub fn check_node_id(&self) -> Result<(), AnnouncementError> {
        let derived = self.entity_id.node_id();
        if self.node_id == derived {
            Ok(())
        } else {
            Err(AnnouncementError::NodeIdMismatch {
                claimed: self.node_id,
                derived,
            })
        }
    }

    /// The copy a forwarder sends: `hop_count + 1`, signature unchanged.
    /// `None` at hop 255 (never reached: forwarding stops at 15).
    pub fn forwarded(&self) -> Option<Self> {
        Some(Self {
            hop_count: self.hop_count.checked_add(1)?,
            ..self.clone()
        })
    }
}

pub(crate) fn decode_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if bytes.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *slot = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// `EntityId` as 64 hex chars (lowercase out; either case in, as v0.11).
mod entity_hex {
    use super::*;
    use crate::identity::PUBLIC_KEY_LEN;

    pub fn serialize<S: Serializer>(id: &EntityId, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode_hex(id.as_bytes()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<EntityId, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        decode_hex::<PUBLIC_KEY_LEN>(&text)
            .map(EntityId::from_bytes)
            .ok_or_else(|| serde::de::Error::custom("entity_id must be 64 hex chars"))
    }
}

/// `Option<Signature>` as 128 hex chars.
mod signature_hex {
    use super::*;
    use crate::identity::SIGNATURE_LEN;

    pub fn serialize<S: Serializer>(sig: &Option<Signature>, s: S) -> Result<S::Ok, S::Error> {
        match sig {
            Some(sig) => s.serialize_str(&encode_hex(&sig.0)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Signature>, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        decode_hex::<SIGNATURE_LEN>(&text)
            .map(|bytes| Some(Signature(bytes)))
            .ok_or_else(|| serde::de::Error::custom("signature must be 128 hex chars"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keypair() -> EntityKeypair {
        EntityKeypair::from_seed(&[7; 32])
    }

    fn signed() -> Announcement {
        let kp = keypair();
        let mut a = Announcement::new(*kp.entity_id(), 3, 1_700_000_000_000_000_000, 300, {
            let mut caps = CapabilitySet::default();
            caps.tags.push("role:\"relay\"\n/é".into());
            caps
        });
        a.sign(&kp).unwrap();
        a
    }

    #[test]
    fn sign_verify_and_round_trip() {
        let a = signed();
        a.verify().unwrap();
        let bytes = a.encode();
        let back = Announcement::decode(&bytes).unwrap();
        assert_eq!(back, a);
        assert_eq!(back.encode(), bytes);
        // serde_json escaping: quote and newline escaped, `/` and é raw.
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains(r#""role:\"relay\"\n/é""#), "{text}");
    }

    #[test]
    fn hop_count_is_outside_the_signature() {
        let forwarded = signed().forwarded().unwrap();
        assert_eq!(forwarded.hop_count, 1);
        forwarded.verify().unwrap();
        let text = String::from_utf8(forwarded.encode()).unwrap();
        assert!(text.ends_with(r#","hop_count":1}"#), "{text}");
    }

    #[test]
    fn any_signed_member_change_breaks_the_signature() {
        let base = signed();
        let mut changed = base.clone();
        changed.version += 1;
        assert_eq!(changed.verify(), Err(AnnouncementError::BadSignature));
        let mut changed = base.clone();
        changed.reflex_addr = Some("192.0.2.1:9".parse().unwrap());
        assert_eq!(changed.verify(), Err(AnnouncementError::BadSignature));
        let mut changed = base;
        changed.capabilities.tags.push("gpu".into());
        assert_eq!(changed.verify(), Err(AnnouncementError::BadSignature));
    }

    #[test]
    fn unsigned_and_foreign_node_ids_are_refused() {
        let kp = keypair();
        let mut a = Announcement::new(*kp.entity_id(), 1, 0, 300, CapabilitySet::default());
        assert_eq!(a.verify(), Err(AnnouncementError::Unsigned));
        a.node_id ^= 1;
        assert!(matches!(
            a.sign(&kp),
            Err(AnnouncementError::NodeIdMismatch { .. })
        ));
        let read_only = EntityKeypair::public_only(*kp.entity_id()).unwrap();
        let mut a = Announcement::new(*kp.entity_id(), 1, 0, 300, CapabilitySet::default());
        assert_eq!(a.sign(&read_only), Err(AnnouncementError::ReadOnlyKey));
    }

    #[test]
    fn oversized_is_refused_before_parsing_and_when_signing() {
        let huge = vec![b' '; MAX_ANNOUNCEMENT_LEN + 1];
        assert!(matches!(
            Announcement::decode(&huge),
            Err(AnnouncementError::TooLarge { .. })
        ));
        let kp = keypair();
        let mut caps = CapabilitySet::default();
        caps.tags.push("x".repeat(MAX_ANNOUNCEMENT_LEN));
        let mut a = Announcement::new(*kp.entity_id(), 1, 0, 300, caps);
        assert!(matches!(
            a.sign(&kp),
            Err(AnnouncementError::TooLarge { .. })
        ));
        assert_eq!(a.signature, None);
    }

    #[test]
    fn hex_accepts_either_case_and_rejects_junk() {
        assert_eq!(decode_hex::<2>("aBcD"), Some([0xab, 0xcd]));
        assert_eq!(decode_hex::<2>("abc"), None);
        assert_eq!(decode_hex::<2>("abcg"), None);
        assert_eq!(decode_hex::<1>("é"), None);
        assert_eq!(encode_hex(&[0x0f, 0xa0]), "0fa0");
    }
}
