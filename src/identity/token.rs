//! PermissionToken: a 159-byte signed grant of scopes on a channel
//! (IDENTITY.md §4).

use std::fmt;
use std::ops::{BitAnd, BitOr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand_core::{OsRng, RngCore};

use super::keypair::{EntityId, EntityKeypair, IdentityError, PUBLIC_KEY_LEN, Signature};

/// Serialized size of a token.
pub const TOKEN_SIZE: usize = 159;
/// Length of the signed prefix (everything but the signature).
pub const TOKEN_SIGNING_INPUT_LEN: usize = 95;

mod offset {
    pub const ISSUER: usize = 0;
    pub const SUBJECT: usize = 32;
    pub const SCOPE: usize = 64;
    pub const CHANNEL_HASH: usize = 68;
    pub const NOT_BEFORE: usize = 70;
    pub const NOT_AFTER: usize = 78;
    pub const DELEGATION_DEPTH: usize = 86;
    pub const NONCE: usize = 87;
    pub const SIGNATURE: usize = 95;
}

/// Why a token was refused. Every verification failure has its own variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The signature does not verify under the issuer key (or the issuer key is
    /// not a curve point). The token was forged or altered.
    #[error("token signature does not verify")]
    InvalidSignature,
    /// `now < not_before`: the token is not live yet; retry later.
    #[error("token is not yet valid")]
    NotYetValid,
    /// `now >= not_after`: the token has expired; request a new one.
    #[error("token has expired")]
    Expired,
    /// The parent's delegation depth is 0; it cannot be delegated further.
    #[error("token delegation depth is exhausted")]
    DelegationExhausted,
    /// The parent lacks the DELEGATE scope.
    #[error("token does not allow delegation")]
    DelegationNotAllowed,
    /// The signer is not the parent's subject (or, for checks, no token
    /// authorises the action).
    #[error("not authorized")]
    NotAuthorized,
    /// The bytes are not exactly 159 bytes long.
    #[error("token must be exactly 159 bytes")]
    InvalidFormat,
    /// The issuer/signer keypair is public-only and cannot sign.
    #[error("issuer keypair is public-only and cannot sign")]
    ReadOnly,
    /// `try_issue` with a zero time-to-live: the token would be born expired.
    #[error("token time-to-live must be non-zero")]
    ZeroTtl,
}

/// Scope bits of a token (IDENTITY.md §4.2). Unknown bits are carried through
/// untouched but mean nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TokenScope(pub u32);

impl TokenScope {
    /// No scope at all.
    pub const NONE: Self = Self(0);
    /// Publish on the channel.
    pub const PUBLISH: Self = Self(0x01);
    /// Subscribe to the channel.
    pub const SUBSCRIBE: Self = Self(0x02);
    /// Administer the channel.
    pub const ADMIN: Self = Self(0x04);
    /// Delegate (re-issue a narrower token to someone else).
    pub const DELEGATE: Self = Self(0x08);
    /// Valid on every channel. Never implied; must be set explicitly.
    pub const WILDCARD: Self = Self(0x10);
    /// PUBLISH | SUBSCRIBE | ADMIN | DELEGATE (not WILDCARD).
    pub const ALL: Self = Self(0x0F);

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// True when every bit of `action` is present; false for an empty action.
    pub const fn contains(self, action: Self) -> bool {
        action.0 != 0 && (self.0 & action.0) == action.0
    }
}

impl BitOr for TokenScope {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl BitAnd for TokenScope {
    type Output = Self;
    fn bitand(self, rhs: Self) -> Self {
        Self(self.0 & rhs.0)
    }
}

impl fmt::Debug for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(TokenScope, &str); 5] = [
            (TokenScope::PUBLISH, "PUBLISH"),
            (TokenScope::SUBSCRIBE, "SUBSCRIBE"),
            (TokenScope::ADMIN, "ADMIN"),
            (TokenScope::DELEGATE, "DELEGATE"),
            (TokenScope::WILDCARD, "WILDCARD"),
        ];
        let names: Vec<&str> = NAMES
            .iter()
            .filter(|(bit, _)| self.contains(*bit))
            .map(|(_, name)| *name)
            .collect();
        write!(f, "TokenScope({:#x}: {})", self.0, names.join("|"))
    }
}

/// Everything a token says except who signed it and the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenClaims {
    /// The authorised entity.
    pub subject: EntityId,
    /// What the subject may do.
    pub scope: TokenScope,
    /// The channel (IDENTITY.md §6.2); ignored when the scope has WILDCARD.
    pub channel_hash: u16,
    /// First second (UNIX) the token is live.
    pub not_before: u64,
    /// First second (UNIX) the token is expired.
    pub not_after: u64,
    /// How many more times it may be delegated.
    pub delegation_depth: u8,
    /// Random, to make every token unique.
    pub nonce: u64,
}

/// A signed permission token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PermissionToken {
    issuer: EntityId,
    claims: TokenClaims,
    signature: Signature,
}

/// Current UNIX time in whole seconds (0 if the clock is before the epoch).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn random_nonce() -> u64 {
    OsRng.next_u64()
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

fn read_key(bytes: &[u8], at: usize) -> EntityId {
    let mut key = [0u8; PUBLIC_KEY_LEN];
    key.copy_from_slice(&bytes[at..at + PUBLIC_KEY_LEN]);
    EntityId::from_bytes(key)
}

fn signing_error(e: IdentityError) -> TokenError {
    match e {
        IdentityError::ReadOnly => TokenError::ReadOnly,
        _ => TokenError::InvalidSignature,
    }
}

impl PermissionToken {
    /// Signs `claims` as `issuer`. Use this to build a token with explicit
    /// times and nonce; [`try_issue`](Self::try_issue) fills them in.
    ///
    /// # Errors
    /// [`TokenError::ReadOnly`] if `issuer` cannot sign.
    pub fn sign(issuer: &EntityKeypair, claims: TokenClaims) -> Result<Self, TokenError> {
        let issuer_id = *issuer.entity_id();
        let input = signing_input(&issuer_id, &claims);
        let signature = issuer.sign(&input).map_err(signing_error)?;
        Ok(Self {
            issuer: issuer_id,
            claims,
            signature,
        })
    }

    /// Issues a token valid from now for `ttl` (IDENTITY.md §4.4), with a
    /// random nonce. `not_after` saturates at `u64::MAX`.
    ///
    /// # Errors
    /// [`TokenError::ZeroTtl`] when `ttl` is under one second (it would be born
    /// expired); [`TokenError::ReadOnly`] if `issuer` cannot sign.
    pub fn try_issue(
        issuer: &EntityKeypair,
        subject: EntityId,
        scope: TokenScope,
        channel_hash: u16,
        ttl: Duration,
        delegation_depth: u8,
    ) -> Result<Self, TokenError> {
        Self::try_issue_at(
            issuer,
            subject,
            scope,
            channel_hash,
            ttl,
            delegation_depth,
            unix_now(),
        )
    }

    /// [`try_issue`](Self::try_issue) with an explicit "now" (UNIX seconds).
    ///
    /// # Errors
    /// As [`try_issue`](Self::try_issue).
    pub fn try_issue_at(
        issuer: &EntityKeypair,
        subject: EntityId,
        scope: TokenScope,
        channel_hash: u16,
        ttl: Duration,
        delegation_depth: u8,
        now: u64,
    ) -> Result<Self, TokenError> {
        let ttl_secs = ttl.as_secs();
        if ttl_secs == 0 {
            return Err(TokenError::ZeroTtl);
        }
        let claims = TokenClaims {
            subject,
            scope,
            channel_hash,
            not_before: now,
            not_after: now.saturating_add(ttl_secs),
            delegation_depth,
            nonce: random_nonce(),
        };
        Self::sign(issuer, claims)
    }

    /// The forgiving form of [`try_issue`](Self::try_issue): a TTL under one
    /// second is raised to one second instead of refused. Never panics.
    ///
    /// # Errors
    /// Only [`TokenError::ReadOnly`], if `issuer` cannot sign.
    pub fn issue(
        issuer: &EntityKeypair,
        subject: EntityId,
        scope: TokenScope,
        channel_hash: u16,
        ttl: Duration,
        delegation_depth: u8,
    ) -> Result<Self, TokenError> {
        let ttl = ttl.max(Duration::from_secs(1));
        Self::try_issue(issuer, subject, scope, channel_hash, ttl, delegation_depth)
    }

    /// Parses exactly 159 bytes. Does not verify the signature.
    ///
    /// # Errors
    /// [`TokenError::InvalidFormat`] for any other length.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TokenError> {
        if bytes.len() != TOKEN_SIZE {
            return Err(TokenError::InvalidFormat);
        }
        let scope = u32::from_le_bytes([
            bytes[offset::SCOPE],
            bytes[offset::SCOPE + 1],
            bytes[offset::SCOPE + 2],
            bytes[offset::SCOPE + 3],
        ]);
        let channel_hash =
            u16::from_le_bytes([bytes[offset::CHANNEL_HASH], bytes[offset::CHANNEL_HASH + 1]]);
        let claims = TokenClaims {
            subject: read_key(bytes, offset::SUBJECT),
            scope: TokenScope(scope),
            channel_hash,
            not_before: read_u64(bytes, offset::NOT_BEFORE),
            not_after: read_u64(bytes, offset::NOT_AFTER),
            delegation_depth: bytes[offset::DELEGATION_DEPTH],
            nonce: read_u64(bytes, offset::NONCE),
        };
        let signature = Signature::from_slice(&bytes[offset::SIGNATURE..])
            .map_err(|_| TokenError::InvalidFormat)?;
        Ok(Self {
            issuer: read_key(bytes, offset::ISSUER),
            claims,
            signature,
        })
    }

    /// The 159-byte wire form.
    pub fn to_bytes(&self) -> [u8; TOKEN_SIZE] {
        let mut out = [0u8; TOKEN_SIZE];
        out[..TOKEN_SIGNING_INPUT_LEN].copy_from_slice(&self.signing_input());
        out[offset::SIGNATURE..].copy_from_slice(&self.signature.0);
        out
    }

    /// The 95 signed bytes.
    pub fn signing_input(&self) -> [u8; TOKEN_SIGNING_INPUT_LEN] {
        signing_input(&self.issuer, &self.claims)
    }

    /// The signer's public key.
    pub fn issuer(&self) -> &EntityId {
        &self.issuer
    }

    /// The authorised entity.
    pub fn subject(&self) -> &EntityId {
        &self.claims.subject
    }

    /// All claims.
    pub fn claims(&self) -> &TokenClaims {
        &self.claims
    }

    /// The scope.
    pub fn scope(&self) -> TokenScope {
        self.claims.scope
    }

    /// The channel hash (0 is an ordinary channel, not a wildcard).
    pub fn channel_hash(&self) -> u16 {
        self.claims.channel_hash
    }

    /// First live second.
    pub fn not_before(&self) -> u64 {
        self.claims.not_before
    }

    /// First expired second.
    pub fn not_after(&self) -> u64 {
        self.claims.not_after
    }

    /// Remaining delegation depth.
    pub fn delegation_depth(&self) -> u8 {
        self.claims.delegation_depth
    }

    /// The nonce.
    pub fn nonce(&self) -> u64 {
        self.claims.nonce
    }

    /// The issuer's signature.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// Strictly verifies the signature with the issuer key.
    ///
    /// # Errors
    /// [`TokenError::InvalidSignature`] if it does not verify or the issuer
    /// key is not a curve point.
    pub fn verify(&self) -> Result<(), TokenError> {
        self.issuer
            .verify(&self.signing_input(), &self.signature)
            .map_err(|_| TokenError::InvalidSignature)
    }

    /// Verifies, then checks the live interval `not_before <= now < not_after`
    /// against the current time.
    ///
    /// # Errors
    /// [`TokenError::InvalidSignature`], [`TokenError::NotYetValid`] or
    /// [`TokenError::Expired`], in that order.
    pub fn is_valid(&self) -> Result<(), TokenError> {
        self.is_valid_at(unix_now())
    }

    /// [`is_valid`](Self::is_valid) at `now` (UNIX seconds).
    ///
    /// # Errors
    /// As [`is_valid`](Self::is_valid).
    pub fn is_valid_at(&self, now: u64) -> Result<(), TokenError> {
        self.verify()?;
        if now < self.claims.not_before {
            return Err(TokenError::NotYetValid);
        }
        if self.is_expired_at(now) {
            return Err(TokenError::Expired);
        }
        Ok(())
    }

    /// True when the current time is at or past `not_after` (no signature check).
    pub fn is_expired(&self) -> bool {
        self.is_expired_at(unix_now())
    }

    /// [`is_expired`](Self::is_expired) at `now`.
    pub fn is_expired_at(&self, now: u64) -> bool {
        now >= self.claims.not_after
    }

    /// True when the scope contains `action` and the token covers `channel_hash`
    /// (its own channel, or any channel with WILDCARD). Validity is separate.
    pub fn authorizes(&self, action: TokenScope, channel_hash: u16) -> bool {
        self.claims.scope.contains(action)
            && (self.claims.scope.contains(TokenScope::WILDCARD)
                || self.claims.channel_hash == channel_hash)
    }

    /// Delegates this token to `new_subject` with `requested_scope` narrowed by
    /// the parent's scope, signed by `signer` (IDENTITY.md §4.5).
    ///
    /// # Errors
    /// In order: the parent's [`is_valid`](Self::is_valid) error;
    /// [`TokenError::DelegationExhausted`]; [`TokenError::DelegationNotAllowed`];
    /// [`TokenError::NotAuthorized`] when `signer` is not the parent's subject;
    /// [`TokenError::ReadOnly`] when `signer` cannot sign.
    pub fn delegate(
        &self,
        signer: &EntityKeypair,
        new_subject: EntityId,
        requested_scope: TokenScope,
    ) -> Result<Self, TokenError> {
        self.delegate_at(signer, new_subject, requested_scope, unix_now())
    }

    /// [`delegate`](Self::delegate) at `now` (UNIX seconds).
    ///
    /// # Errors
    /// As [`delegate`](Self::delegate).
    pub fn delegate_at(
        &self,
        signer: &EntityKeypair,
        new_subject: EntityId,
        requested_scope: TokenScope,
        now: u64,
    ) -> Result<Self, TokenError> {
        self.is_valid_at(now)?;
        if self.claims.delegation_depth == 0 {
            return Err(TokenError::DelegationExhausted);
        }
        if !self.claims.scope.contains(TokenScope::DELEGATE) {
            return Err(TokenError::DelegationNotAllowed);
        }
        if signer.entity_id() != &self.claims.subject {
            return Err(TokenError::NotAuthorized);
        }
        let claims = TokenClaims {
            subject: new_subject,
            scope: self.claims.scope & requested_scope,
            channel_hash: self.claims.channel_hash,
            not_before: now,
            not_after: self.claims.not_after,
            delegation_depth: self.claims.delegation_depth - 1,
            nonce: random_nonce(),
        };
        Self::sign(signer, claims)
    }
}

fn signing_input(issuer: &EntityId, claims: &TokenClaims) -> [u8; TOKEN_SIGNING_INPUT_LEN] {
    let mut out = [0u8; TOKEN_SIGNING_INPUT_LEN];
    out[offset::ISSUER..offset::SUBJECT].copy_from_slice(issuer.as_bytes());
    out[offset::SUBJECT..offset::SCOPE].copy_from_slice(claims.subject.as_bytes());
    out[offset::SCOPE..offset::CHANNEL_HASH].copy_from_slice(&claims.scope.0.to_le_bytes());
    out[offset::CHANNEL_HASH..offset::NOT_BEFORE]
        .copy_from_slice(&claims.channel_hash.to_le_bytes());
    out[offset::NOT_BEFORE..offset::NOT_AFTER].copy_from_slice(&claims.not_before.to_le_bytes());
    out[offset::NOT_AFTER..offset::DELEGATION_DEPTH]
        .copy_from_slice(&claims.not_after.to_le_bytes());
    out[offset::DELEGATION_DEPTH] = claims.delegation_depth;
    out[offset::NONCE..offset::SIGNATURE].copy_from_slice(&claims.nonce.to_le_bytes());
    out
}

impl fmt::Debug for PermissionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PermissionToken")
            .field("issuer", &self.issuer)
            .field("subject", &self.claims.subject)
            .field("scope", &self.claims.scope)
            .field(
                "channel_hash",
                &format_args!("{:#06x}", self.claims.channel_hash),
            )
            .field("not_before", &self.claims.not_before)
            .field("not_after", &self.claims.not_after)
            .field("delegation_depth", &self.claims.delegation_depth)
            .field("nonce", &format_args!("{:#018x}", self.claims.nonce))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_offsets_match_the_spec() {
        assert_eq!(offset::ISSUER, 0);
        assert_eq!(offset::SUBJECT, 32);
        assert_eq!(offset::SCOPE, 64);
        assert_eq!(offset::CHANNEL_HASH, 68);
        assert_eq!(offset::NOT_BEFORE, 70);
        assert_eq!(offset::NOT_AFTER, 78);
        assert_eq!(offset::DELEGATION_DEPTH, 86);
        assert_eq!(offset::NONCE, 87);
        assert_eq!(offset::SIGNATURE, 95);
        assert_eq!(TOKEN_SIGNING_INPUT_LEN, 95);
        assert_eq!(TOKEN_SIZE, 159);
    }

    #[test]
    fn scope_constants_match_the_spec() {
        assert_eq!(TokenScope::PUBLISH.bits(), 0x01);
        assert_eq!(TokenScope::SUBSCRIBE.bits(), 0x02);
        assert_eq!(TokenScope::ADMIN.bits(), 0x04);
        assert_eq!(TokenScope::DELEGATE.bits(), 0x08);
        assert_eq!(TokenScope::WILDCARD.bits(), 0x10);
        assert_eq!(TokenScope::ALL.bits(), 0x0F);
        assert!(!TokenScope::ALL.contains(TokenScope::NONE));
        assert!(!TokenScope::ALL.contains(TokenScope::WILDCARD));
    }

    #[test]
    fn zero_ttl_is_refused_by_try_issue_and_clamped_by_issue() {
        let issuer = EntityKeypair::from_seed(&[7; 32]);
        let subject = *EntityKeypair::from_seed(&[8; 32]).entity_id();
        let err =
            PermissionToken::try_issue(&issuer, subject, TokenScope::PUBLISH, 1, Duration::ZERO, 0)
                .unwrap_err();
        assert_eq!(err, TokenError::ZeroTtl);
        let sub_second = PermissionToken::try_issue(
            &issuer,
            subject,
            TokenScope::PUBLISH,
            1,
            Duration::from_millis(999),
            0,
        );
        assert_eq!(sub_second.unwrap_err(), TokenError::ZeroTtl);

        let token =
            PermissionToken::issue(&issuer, subject, TokenScope::PUBLISH, 1, Duration::ZERO, 0)
                .unwrap();
        assert_eq!(token.not_after() - token.not_before(), 1);
        token.is_valid_at(token.not_before()).unwrap();
    }

    #[test]
    fn not_after_saturates() {
        let issuer = EntityKeypair::from_seed(&[7; 32]);
        let token = PermissionToken::try_issue_at(
            &issuer,
            *issuer.entity_id(),
            TokenScope::ALL,
            0,
            Duration::from_secs(u64::MAX),
            0,
            10,
        )
        .unwrap();
        assert_eq!(token.not_after(), u64::MAX);
    }

    #[test]
    fn read_only_issuer_is_refused() {
        let full = EntityKeypair::from_seed(&[7; 32]);
        let public = EntityKeypair::public_only(*full.entity_id()).unwrap();
        let err = PermissionToken::issue(
            &public,
            *full.entity_id(),
            TokenScope::ALL,
            0,
            Duration::from_secs(5),
            0,
        )
        .unwrap_err();
        assert_eq!(err, TokenError::ReadOnly);
    }
}
