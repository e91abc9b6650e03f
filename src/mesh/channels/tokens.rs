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

/// Tokens kept between requests: leaves of accepted subscribers (so a
/// re-subscribe without a token still finds one, as in v0.11) and
/// delegation parents installed by the operator. Bounded: one token per
/// (subject, slot, scope) where slot is the channel hash or "wildcard",
/// the newest replacing the older; the oldest entry goes when full.
#[derive(Debug)]
pub struct TokenStore {
    capacity: usize,
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
            tokens: HashMap::new(),
            insertion_order: VecDeque::new(),
            len: 0,
        }
    }

    /// Tokens whose subject is `subject`.
    pub fn by_subject(&self, subject: &EntityId) -> impl Iterator<Item = &PermissionToken> {
        self.tokens.get(subject).into_iter().flatten()
    }

    /// Number of tokens held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
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
        let subjects: Vec<EntityId> = self.tokens.keys().copied().collect();
        let removed: usize = subjects
            .iter()
            .map(|s| self.remove_where(s, |t| t.is_expired_at(now)))
            .sum();
        if removed > 0 {
            self.forget_stale_order();
        }
        removed
    }
}
