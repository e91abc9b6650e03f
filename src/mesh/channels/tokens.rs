//! Token checks for channels: a presented token must name the peer, cover
//! the action on the channel, be live, and chain through valid delegations
//! to an issuer the channel trusts (MESH2.md §7 item 4, IDENTITY.md §4).
//!
//! Tokens carry no reference to their parent (IDENTITY.md §4.5), so a
//! chain is rebuilt by finding, among the tokens presented and the tokens
//! in the [`TokenStore`], one whose subject is the child's issuer and that
//! allowed the delegation: DELEGATE scope, a remaining depth above the
//! child's, a scope containing the child's, the same channel (or
//! WILDCARD), not outlived by the child, and itself live.

use std::collections::{HashMap, VecDeque};

use super::config::{IssuerTrust, MAX_TOKEN_CHAIN};
use crate::identity::{EntityId, PermissionToken, TokenError, TokenScope};

/// Why no token authorizes a peer. Each maps to the wire's Unauthorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum TokenProblem {
    /// No token was presented or stored for the peer (an unparsable or
    /// badly signed token counts as none, as in v0.11).
    #[error("no token")]
    Missing,
    /// The token's scope lacks the action.
    #[error("token scope lacks the action")]
    WrongScope,
    /// The token is for another channel (and not WILDCARD).
    #[error("token is for another channel")]
    WrongChannel,
    /// The token is not live yet.
    #[error("token is not yet valid")]
    NotYetValid,
    /// The token (or a token in its chain) has expired.
    #[error("token has expired")]
    Expired,
    /// The chain ends at an issuer the channel does not trust (this is
    /// what a self-minted token gets).
    #[error("token issuer is not trusted for this channel")]
    UntrustedIssuer,
    /// A parent in the chain lacks the DELEGATE scope.
    #[error("a parent token does not allow delegation")]
    DelegationNotAllowed,
    /// A parent in the chain had no delegation depth left for its child.
    #[error("a parent token's delegation depth is exhausted")]
    DelegationExhausted,
    /// A child claims more than its parent (scope, channel or lifetime).
    #[error("a delegated token exceeds its parent")]
    ExceedsParent,
    /// The chain is longer than [`MAX_TOKEN_CHAIN`].
    #[error("token chain is too long")]
    ChainTooLong,
}

impl TokenProblem {
    /// How specific a finding is, to report the most telling one when
    /// several candidate tokens fail.
    fn specificity(self) -> u8 {
        match self {
            TokenProblem::Missing => 0,
            TokenProblem::UntrustedIssuer => 1,
            TokenProblem::WrongChannel | TokenProblem::WrongScope => 2,
            _ => 3,
        }
    }
}

fn liveness(token: &PermissionToken, now: u64) -> Result<(), TokenProblem> {
    match token.is_valid_at(now) {
        Ok(()) => Ok(()),
        Err(TokenError::NotYetValid) => Err(TokenProblem::NotYetValid),
        Err(TokenError::Expired) => Err(TokenProblem::Expired),
        Err(_) => Err(TokenProblem::Missing),
    }
}

/// What is being asked of a token chain.
#[derive(Debug, Clone, Copy)]
pub struct TokenQuery<'a> {
    /// The entity that must be the leaf's subject.
    pub subject: &'a EntityId,
    /// The action (PUBLISH or SUBSCRIBE).
    pub action: TokenScope,
    /// The channel's hash.
    pub channel_hash: u16,
    /// Trusted roots of the channel.
    pub trust: &'a IssuerTrust,
    /// The local node's entity (always a trusted root).
    pub local: Option<&'a EntityId>,
    /// UNIX seconds.
    pub now: u64,
}

/// Finds a chain that authorizes `query`, trying the `presented` tokens
/// first and then the store's. Returns the chain, leaf first.
///
/// # Errors
/// The most specific [`TokenProblem`] found among the candidates.
pub fn find_chain(
    query: &TokenQuery<'_>,
    presented: &[PermissionToken],
    store: &TokenStore,
) -> Result<Vec<PermissionToken>, TokenProblem> {
    let leaves = presented
        .iter()
        .chain(store.by_subject(query.subject))
        .filter(|t| t.subject() == query.subject);
    let mut best = TokenProblem::Missing;
    for leaf in leaves {
        if leaf.verify().is_err() {
            continue;
        }
        match check_leaf(query, leaf).and_then(|()| walk_to_root(query, leaf, presented, store)) {
            Ok(chain) => return Ok(chain),
            Err(problem) if problem.specificity() >= best.specificity() => best = problem,
            Err(_) => {}
        }
    }
    Err(best)
}

fn check_leaf(query: &TokenQuery<'_>, leaf: &PermissionToken) -> Result<(), TokenProblem> {
    if !leaf.scope().contains(query.action) {
        return Err(TokenProblem::WrongScope);
    }
    if !leaf.authorizes(query.action, query.channel_hash) {
        return Err(TokenProblem::WrongChannel);
    }
    liveness(leaf, query.now)
}

fn walk_to_root(
    query: &TokenQuery<'_>,
    leaf: &PermissionToken,
    presented: &[PermissionToken],
    store: &TokenStore,
) -> Result<Vec<PermissionToken>, TokenProblem> {
    let mut chain = vec![*leaf];
    loop {
        let child = chain[chain.len() - 1];
        if query.trust.trusts(child.issuer(), query.local) {
            return Ok(chain);
        }
        if chain.len() >= MAX_TOKEN_CHAIN {
            return Err(TokenProblem::ChainTooLong);
        }
        let mut best = TokenProblem::UntrustedIssuer;
        let mut parent_found = None;
        for parent in presented
            .iter()
            .chain(store.by_subject(child.issuer()))
            .filter(|p| p.subject() == child.issuer() && !chain.contains(p))
        {
            match check_link(parent, &child, query.now) {
                Ok(()) => {
                    parent_found = Some(*parent);
                    break;
                }
                Err(problem) if problem.specificity() >= best.specificity() => best = problem,
                Err(_) => {}
            }
        }
        match parent_found {
            Some(parent) => chain.push(parent),
            None => return Err(best),
        }
    }
}

/// Whether `parent` could have delegated `child` (IDENTITY.md §4.5, checked
/// from the child's side).
fn check_link(
    parent: &PermissionToken,
    child: &PermissionToken,
    now: u64,
) -> Result<(), TokenProblem> {
    if parent.verify().is_err() {
        return Err(TokenProblem::Missing);
    }
    liveness(parent, now)?;
    if !parent.scope().contains(TokenScope::DELEGATE) {
        return Err(TokenProblem::DelegationNotAllowed);
    }
    if parent.delegation_depth() == 0 || child.delegation_depth() >= parent.delegation_depth() {
        return Err(TokenProblem::DelegationExhausted);
    }
    let widened = child.scope().bits() & !parent.scope().bits() != 0;
    let other_channel = !parent.scope().contains(TokenScope::WILDCARD)
        && parent.channel_hash() != child.channel_hash();
    if widened || other_channel || child.not_after() > parent.not_after() {
        return Err(TokenProblem::ExceedsParent);
    }
    Ok(())
}

/// Tokens kept between requests: the chains of accepted subscribers
/// ("learned", so a re-subscribe without a token still finds one, as in
/// v0.11) and the tokens the operator installs ("pinned", typically
/// delegation parents). One token per (subject, slot, scope) where slot is
/// the channel hash or "wildcard", the newest replacing the older. Learned
/// tokens are bounded by the capacity, the oldest going first; pinned ones
/// are never evicted, only purged when expired.
#[derive(Debug)]
pub struct TokenStore {
    capacity: usize,
    pinned: HashMap<EntityId, Vec<PermissionToken>>,
    tokens: HashMap<EntityId, Vec<PermissionToken>>,
    insertion_order: VecDeque<(EntityId, u64)>,
    len: usize,
}

fn slot_key(token: &PermissionToken) -> (Option<u16>, u32) {
    let slot = (!token.scope().contains(TokenScope::WILDCARD)).then_some(token.channel_hash());
    (slot, token.scope().bits())
}

impl TokenStore {
    /// An empty store holding at most `capacity` tokens.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            pinned: HashMap::new(),
            tokens: HashMap::new(),
            insertion_order: VecDeque::new(),
            len: 0,
        }
    }

    /// Tokens whose subject is `subject`, pinned ones first.
    pub fn by_subject(&self, subject: &EntityId) -> impl Iterator<Item = &PermissionToken> {
        let pinned = self.pinned.get(subject).into_iter().flatten();
        pinned.chain(self.tokens.get(subject).into_iter().flatten())
    }

    /// Number of learned tokens held (bounded by the capacity).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Number of pinned tokens held.
    pub fn pinned_len(&self) -> usize {
        self.pinned.values().map(Vec::len).sum()
    }

    /// True when the store holds no token at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0 && self.pinned.is_empty()
    }

    /// Keeps `token` until it expires, whatever the pressure on learned
    /// tokens (replacing a pinned token in the same slot with the same
    /// scope).
    pub fn insert_pinned(&mut self, token: PermissionToken) {
        let key = slot_key(&token);
        let entries = self.pinned.entry(*token.subject()).or_default();
        match entries.iter_mut().find(|t| slot_key(t) == key) {
            Some(existing) => *existing = token,
            None => entries.push(token),
        }
    }

    /// Keeps `token` (replacing the one in the same slot with the same
    /// scope). Does not verify: callers insert only tokens they checked or
    /// trust; every use re-verifies anyway.
    pub fn insert(&mut self, token: PermissionToken) {
        if self.capacity == 0 {
            return;
        }
        let subject = *token.subject();
        let key = slot_key(&token);
        let entries = self.tokens.entry(subject).or_default();
        if let Some(existing) = entries.iter_mut().find(|t| slot_key(t) == key) {
            *existing = token;
        } else {
            entries.push(token);
            self.len += 1;
        }
        self.insertion_order.push_back((subject, token.nonce()));
        while self.len > self.capacity {
            self.evict_oldest();
        }
        // Replacements leave stale order entries behind; keep the queue
        // proportional to the tokens actually held.
        if self.insertion_order.len() > 2 * self.capacity.min(self.len.max(1)) + 16 {
            self.forget_stale_order();
        }
    }

    fn forget_stale_order(&mut self) {
        let tokens = &self.tokens;
        self.insertion_order.retain(|(subject, nonce)| {
            tokens
                .get(subject)
                .is_some_and(|ts| ts.iter().any(|t| t.nonce() == *nonce))
        });
    }

    fn evict_oldest(&mut self) {
        while let Some((subject, nonce)) = self.insertion_order.pop_front() {
            if self.remove_where(&subject, |t| t.nonce() == nonce) > 0 {
                return;
            }
        }
    }

    fn remove_where(
        &mut self,
        subject: &EntityId,
        doomed: impl Fn(&PermissionToken) -> bool,
    ) -> usize {
        let Some(entries) = self.tokens.get_mut(subject) else {
            return 0;
        };
        let before = entries.len();
        entries.retain(|t| !doomed(t));
        let removed = before - entries.len();
        if entries.is_empty() {
            self.tokens.remove(subject);
        }
        self.len -= removed;
        removed
    }

    /// Drops every token expired at `now`; returns how many went.
    pub fn purge_expired(&mut self, now: u64) -> usize {
        let mut pinned_removed = 0;
        self.pinned.retain(|_, entries| {
            let before = entries.len();
            entries.retain(|t| !t.is_expired_at(now));
            pinned_removed += before - entries.len();
            !entries.is_empty()
        });
        let subjects: Vec<EntityId> = self.tokens.keys().copied().collect();
        let removed: usize = subjects
            .iter()
            .map(|s| self.remove_where(s, |t| t.is_expired_at(now)))
            .sum();
        if removed > 0 {
            self.forget_stale_order();
        }
        removed + pinned_removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{EntityKeypair, TokenClaims};

    fn token(subject: u8, channel_hash: u16, scope: TokenScope, not_after: u64) -> PermissionToken {
        let issuer = EntityKeypair::from_seed(&[1; 32]);
        PermissionToken::sign(
            &issuer,
            TokenClaims {
                subject: *EntityKeypair::from_seed(&[subject; 32]).entity_id(),
                scope,
                channel_hash,
                not_before: 0,
                not_after,
                delegation_depth: 0,
                nonce: u64::from(subject) << 32 | u64::from(channel_hash) | not_after << 20,
            },
        )
        .unwrap()
    }

    #[test]
    fn one_token_per_slot_and_scope_newest_wins() {
        let mut store = TokenStore::new(16);
        let old = token(2, 7, TokenScope::SUBSCRIBE, 100);
        let new = token(2, 7, TokenScope::SUBSCRIBE, 200);
        store.insert(old);
        store.insert(new);
        store.insert(token(2, 7, TokenScope::PUBLISH, 100));
        store.insert(token(
            2,
            9,
            TokenScope::SUBSCRIBE | TokenScope::WILDCARD,
            100,
        ));
        // A WILDCARD token lives in the wildcard slot, whatever its hash.
        store.insert(token(
            2,
            8,
            TokenScope::SUBSCRIBE | TokenScope::WILDCARD,
            150,
        ));
        assert_eq!(store.len(), 3);
        let subject = *new.subject();
        assert!(store.by_subject(&subject).any(|t| *t == new));
        assert!(!store.by_subject(&subject).any(|t| *t == old));
    }

    #[test]
    fn learned_tokens_are_bounded_and_pinned_ones_survive() {
        let mut store = TokenStore::new(4);
        let pinned = token(9, 1, TokenScope::ALL, 1000);
        store.insert_pinned(pinned);
        for subject in 10..40 {
            store.insert(token(subject, 1, TokenScope::SUBSCRIBE, 1000));
            // Replacements must not grow the bookkeeping without bound.
            store.insert(token(subject, 1, TokenScope::SUBSCRIBE, 1001));
        }
        assert_eq!(store.len(), 4);
        assert!(store.insertion_order.len() <= 2 * 4 + 16);
        assert_eq!(store.pinned_len(), 1);
        assert!(store.by_subject(pinned.subject()).any(|t| *t == pinned));
        // The newest learned tokens are the ones kept.
        let newest = token(39, 1, TokenScope::SUBSCRIBE, 1001);
        assert!(store.by_subject(newest.subject()).any(|t| *t == newest));
        assert!(TokenStore::new(0).is_empty());
    }

    #[test]
    fn purge_drops_expired_tokens_of_both_kinds() {
        let mut store = TokenStore::new(8);
        store.insert(token(2, 1, TokenScope::SUBSCRIBE, 50));
        store.insert(token(3, 1, TokenScope::SUBSCRIBE, 150));
        store.insert_pinned(token(4, 1, TokenScope::ALL, 50));
        assert_eq!(store.purge_expired(49), 0);
        assert_eq!(store.purge_expired(50), 2);
        assert_eq!((store.len(), store.pinned_len()), (1, 0));
        store.insert(token(5, 1, TokenScope::SUBSCRIBE, 150));
        assert_eq!(store.len(), 2);
    }
}
