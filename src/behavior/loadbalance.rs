//! Load balancing (COMPUTE.md §4.4): endpoints with health, weights, tags
//! and zones; eleven selection strategies; a circuit breaker per endpoint.
//!
//! `select_at` filters the eligible endpoints (enabled, Healthy or
//! Degraded, circuit closed or ready for its single half-open probe, under
//! `max_connections`, carrying every required tag; same-zone endpoints
//! first when zone-aware), lets the strategy pick one, claims the probe
//! slot if the circuit is open, and reserves a connection — up to
//! `max_attempts` times if a race takes the pick away.
//!
//! Departs from v0.11:
//! - `select_at` returns a [`Selection`] guard that releases the
//!   connection slot when completed ([`Selection::complete`]) **or
//!   dropped**, so a slot can never leak (§8 item 7: v0.11's group routing
//!   never reports completions, and after 10 000 routes per member no
//!   member is ever picked again).
//! - Random picks are unbiased (`rand`'s `gen_range`, Lemire's method)
//!   instead of `random u64 mod n`; power-of-two-choices draws two
//!   *distinct* indices uniformly (v0.11's "second + 1 if equal" favours
//!   the neighbour of the first).
//! - The consistent-hash ring hashes the id bytes (xxh3-64 of the 32 id
//!   bytes and the point's index, little-endian), not a debug print; it
//!   covers every endpoint, so an endpoint turning ineligible only moves
//!   its own keys (to the next eligible point).
//! - RoundRobin runs over the endpoints in insertion order (v0.11: map
//!   order).
//! - Time is passed in (`now_ms`) for the circuit breaker.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// An endpoint id: 32 bytes (a node or entity id).
pub type EndpointId = [u8; 32];

/// Default endpoint weight.
pub const DEFAULT_WEIGHT: u32 = 100;

/// An endpoint's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Health {
    /// Full traffic (multiplier 1).
    Healthy,
    /// Half traffic in weighted strategies (multiplier 0.5).
    Degraded,
    /// No traffic (multiplier 0).
    Unhealthy,
    /// Not yet known: no traffic (multiplier 0.25, for scores only).
    #[default]
    Unknown,
}

impl Health {
    /// The weight multiplier.
    pub fn multiplier(self) -> f64 {
        match self {
            Self::Healthy => 1.0,
            Self::Degraded => 0.5,
            Self::Unhealthy => 0.0,
            Self::Unknown => 0.25,
        }
    }

    /// Only Healthy and Degraded endpoints receive traffic.
    pub fn receives_traffic(self) -> bool {
        matches!(self, Self::Healthy | Self::Degraded)
    }

    fn to_u8(self) -> u8 {
        match self {
            Self::Healthy => 0,
            Self::Degraded => 1,
            Self::Unhealthy => 2,
            Self::Unknown => 3,
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Healthy,
            1 => Self::Degraded,
            2 => Self::Unhealthy,
            _ => Self::Unknown,
        }
    }
}

/// Load figures an endpoint reports (fractions in 0..=1).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointMetrics {
    /// CPU use.
    pub cpu: f64,
    /// Memory use.
    pub memory: f64,
    /// Mean response time, ms.
    pub response_ms: f64,
    /// Error rate.
    pub error_rate: f64,
}

/// An endpoint as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// Id (unique in a balancer).
    pub id: EndpointId,
    /// Relative weight (100).
    pub weight: u32,
    /// Health.
    pub health: Health,
    /// Load figures.
    pub metrics: EndpointMetrics,
    /// Labels a request may require.
    pub tags: Vec<String>,
    /// Informational priority.
    pub priority: u8,
    /// A disabled endpoint gets no traffic.
    pub enabled: bool,
    /// Zone, for zone-aware selection.
    pub zone: Option<String>,
}

impl Endpoint {
    /// A Healthy, enabled endpoint of weight 100.
    pub fn new(id: EndpointId) -> Self {
        Self {
            id,
            weight: DEFAULT_WEIGHT,
            health: Health::Healthy,
            metrics: EndpointMetrics::default(),
            tags: Vec::new(),
            priority: 0,
            enabled: true,
            zone: None,
        }
    }

    /// Sets the weight.
    pub fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Sets the zone.
    pub fn in_zone(mut self, zone: impl Into<String>) -> Self {
        self.zone = Some(zone.into());
        self
    }

    /// Adds a tag.
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }
}

/// Load score: 0.3 cpu + 0.2 memory + 0.2 min(conns / 10 000, 1)
/// + 0.15 min(response / 1 000 ms, 1) + 0.15 error rate.
pub fn load_score(metrics: &EndpointMetrics, connections: u64) -> f64 {
    0.3 * metrics.cpu
        + 0.2 * metrics.memory
        + 0.2 * (connections as f64 / 10_000.0).min(1.0)
        + 0.15 * (metrics.response_ms / 1_000.0).min(1.0)
        + 0.15 * metrics.error_rate
}

/// How an endpoint is picked among the eligible ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Strategy {
    /// In turn (the default).
    #[default]
    RoundRobin,
    /// In turn, proportionally to weight × health multiplier.
    WeightedRoundRobin,
    /// Fewest connections (ties: first).
    LeastConnections,
    /// Fewest connections per unit of weight.
    WeightedLeastConnections,
    /// Uniformly at random.
    Random,
    /// At random, proportionally to weight × health multiplier.
    WeightedRandom,
    /// By a hash of the request's key on a ring (no key: round robin).
    ConsistentHash,
    /// Lowest response time.
    LeastLatency,
    /// Lowest [`load_score`].
    LeastLoad,
    /// Two distinct endpoints at random, the one with fewer connections.
    PowerOfTwo,
    /// Mean load > 0.7: least connections; keyed: consistent hash; else
    /// weighted round robin.
    Adaptive,
}

/// Balancer settings (COMPUTE.md §7 defaults). JSON: missing fields
/// default, unknown ones are an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LbConfig {
    /// The strategy.
    pub strategy: Strategy,
    /// Prefer endpoints in the request's zone.
    pub zone_aware: bool,
    /// With no endpoint in the zone, use the others (else an error).
    pub zone_fallback: bool,
    /// This balancer's own zone, used when a request names none.
    pub local_zone: Option<String>,
    /// Connections per endpoint (10 000).
    pub max_connections: u64,
    /// Consecutive failures that open a circuit (5).
    pub circuit_failures: u32,
    /// Time before an open circuit lets one probe through, ms (30 000).
    pub circuit_recovery_ms: u64,
    /// Ring points per endpoint (150).
    pub ring_points: u32,
    /// Selection attempts (4).
    pub max_attempts: u32,
    /// Seed for the random strategies (None: from the OS).
    pub seed: Option<u64>,
}

impl Default for LbConfig {
    fn default() -> Self {
        Self {
            strategy: Strategy::RoundRobin,
            zone_aware: true,
            zone_fallback: true,
            local_zone: None,
            max_connections: 10_000,
            circuit_failures: 5,
            circuit_recovery_ms: 30_000,
            ring_points: 150,
            max_attempts: 4,
            seed: None,
        }
    }
}

/// What a request tells the balancer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// Consistent-hash key (first choice).
    pub routing_key: Option<String>,
    /// Consistent-hash key (second choice).
    pub session_id: Option<String>,
    /// Consistent-hash key (third choice).
    pub request_id: Option<String>,
    /// Tags the endpoint must all carry.
    pub required_tags: Vec<String>,
    /// The requester's zone (else the balancer's `local_zone`).
    pub zone: Option<String>,
}

impl RequestContext {
    fn key(&self) -> Option<&str> {
        self.routing_key
            .as_deref()
            .or(self.session_id.as_deref())
            .or(self.request_id.as_deref())
    }
}

/// Why nothing was selected or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LbError {
    /// The balancer has no endpoints.
    #[error("no endpoints")]
    NoEndpoints,
    /// No endpoint is eligible (health, circuits, connections, tags), or
    /// every attempt lost a race.
    #[error("no healthy endpoint")]
    NoHealthyEndpoint,
    /// Zone fallback is off and no eligible endpoint is in the zone.
    #[error("no eligible endpoint in zone {0:?}")]
    NoEndpointInZone(String),
    /// An endpoint with this id exists.
    #[error("endpoint already present")]
    DuplicateEndpoint,
    /// No endpoint has this id.
    #[error("no such endpoint")]
    UnknownEndpoint,
}

/// Circuit `open_since` value meaning closed.
const CLOSED: u64 = 0;

struct Member {
    id: EndpointId,
    weight: u32,
    tags: Vec<String>,
    zone: Option<String>,
    priority: u8,
    health: AtomicU8,
    enabled: AtomicBool,
    metrics: Mutex<EndpointMetrics>,
    connections: AtomicU64,
    failures: AtomicU32,
    /// CLOSED, or `opened_at_ms + 1`.
    open_since: AtomicU64,
    probe_in_flight: AtomicBool,
}

impl Member {
    fn health(&self) -> Health {
        Health::from_u8(self.health.load(Ordering::Relaxed))
    }

    fn metrics(&self) -> EndpointMetrics {
        *self.metrics.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn effective_weight(&self) -> f64 {
        f64::from(self.weight) * self.health().multiplier()
    }

    /// Circuit closed, or open long enough with its probe slot free.
    fn circuit_admits(&self, now_ms: u64, recovery_ms: u64) -> bool {
        match self.open_since.load(Ordering::Acquire) {
            CLOSED => true,
            since => {
                now_ms.saturating_sub(since - 1) >= recovery_ms
                    && !self.probe_in_flight.load(Ordering::Acquire)
            }
        }
    }

    fn circuit_is_open(&self) -> bool {
        self.open_since.load(Ordering::Acquire) != CLOSED
    }

    fn reserve_connection(&self, max: u64) -> bool {
        self.connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                (c < max).then_some(c + 1)
            })
            .is_ok()
    }

    fn release_connection(&self) {
        let _ = self
            .connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| c.checked_sub(1));
    }

    fn snapshot(&self) -> Endpoint {
        Endpoint {
            id: self.id,
            weight: self.weight,
            health: self.health(),
            metrics: self.metrics(),
            tags: self.tags.clone(),
            priority: self.priority,
            enabled: self.enabled.load(Ordering::Relaxed),
            zone: self.zone.clone(),
        }
    }
}

struct Members {
    list: Vec<Arc<Member>>,
    /// (point hash, index into `list`), sorted by hash.
    ring: Vec<(u64, usize)>,
}

fn ring_point(id: &EndpointId, i: u32) -> u64 {
    let mut bytes = [0u8; 36];
    bytes[..32].copy_from_slice(id);
    bytes[32..].copy_from_slice(&i.to_le_bytes());
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

impl Members {
    fn rebuild_ring(&mut self, points: u32) {
        self.ring = self
            .list
            .iter()
            .enumerate()
            .flat_map(|(idx, m)| (0..points).map(move |i| (ring_point(&m.id, i), idx)))
            .collect();
        self.ring.sort_unstable();
    }
}

/// A load balancer over endpoints. Every method takes `&self`; share it
/// with an `Arc`.
pub struct LoadBalancer {
    config: LbConfig,
    members: RwLock<Members>,
    counter: AtomicU64,
    rng: Mutex<SmallRng>,
}

impl LoadBalancer {
    /// An empty balancer.
    pub fn new(config: LbConfig) -> Self {
        let rng = match config.seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => SmallRng::from_entropy(),
        };
        Self {
            config,
            members: RwLock::new(Members {
                list: Vec::new(),
                ring: Vec::new(),
            }),
            counter: AtomicU64::new(0),
            rng: Mutex::new(rng),
        }
    }

    /// The settings.
    pub fn config(&self) -> &LbConfig {
        &self.config
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Members> {
        self.members.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Members> {
        self.members.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an endpoint.
    ///
    /// # Errors
    /// [`LbError::DuplicateEndpoint`] if the id is present.
    pub fn add(&self, endpoint: Endpoint) -> Result<(), LbError> {
        let mut members = self.write();
        if members.list.iter().any(|m| m.id == endpoint.id) {
            return Err(LbError::DuplicateEndpoint);
        }
        members.list.push(Arc::new(Member {
            id: endpoint.id,
            weight: endpoint.weight,
            tags: endpoint.tags,
            zone: endpoint.zone,
            priority: endpoint.priority,
            health: AtomicU8::new(endpoint.health.to_u8()),
            enabled: AtomicBool::new(endpoint.enabled),
            metrics: Mutex::new(endpoint.metrics),
            connections: AtomicU64::new(0),
            failures: AtomicU32::new(0),
            open_since: AtomicU64::new(CLOSED),
            probe_in_flight: AtomicBool::new(false),
        }));
        members.rebuild_ring(self.config.ring_points);
        Ok(())
    }

    /// Removes an endpoint (selections already made still release into
    /// it harmlessly).
    ///
    /// # Errors
    /// [`LbError::UnknownEndpoint`].
    pub fn remove(&self, id: &EndpointId) -> Result<Endpoint, LbError> {
        let mut members = self.write();
        let at = members
            .list
            .iter()
            .position(|m| &m.id == id)
            .ok_or(LbError::UnknownEndpoint)?;
        let gone = members.list.remove(at);
        members.rebuild_ring(self.config.ring_points);
        Ok(gone.snapshot())
    }

    fn with_member<T>(&self, id: &EndpointId, f: impl FnOnce(&Member) -> T) -> Result<T, LbError> {
        let members = self.read();
        let m = members
            .list
            .iter()
            .find(|m| &m.id == id)
            .ok_or(LbError::UnknownEndpoint)?;
        Ok(f(m))
    }

    /// Sets an endpoint's health.
    ///
    /// # Errors
    /// [`LbError::UnknownEndpoint`].
    pub fn set_health(&self, id: &EndpointId, health: Health) -> Result<(), LbError> {
        self.with_member(id, |m| m.health.store(health.to_u8(), Ordering::Relaxed))
    }

    /// Enables or disables an endpoint.
    ///
    /// # Errors
    /// [`LbError::UnknownEndpoint`].
    pub fn set_enabled(&self, id: &EndpointId, enabled: bool) -> Result<(), LbError> {
        self.with_member(id, |m| m.enabled.store(enabled, Ordering::Relaxed))
    }

    /// Replaces an endpoint's load figures.
    ///
    /// # Errors
    /// [`LbError::UnknownEndpoint`].
    pub fn update_metrics(&self, id: &EndpointId, metrics: EndpointMetrics) -> Result<(), LbError> {
        self.with_member(id, |m| {
            *m.metrics.lock().unwrap_or_else(|e| e.into_inner()) = metrics;
        })
    }

    /// Connections in flight to an endpoint.
    ///
    /// # Errors
    /// [`LbError::UnknownEndpoint`].
    pub fn connections(&self, id: &EndpointId) -> Result<u64, LbError> {
        self.with_member(id, |m| m.connections.load(Ordering::Acquire))
    }

    /// Whether an endpoint's circuit is open (or half-open).
    ///
    /// # Errors
    /// [`LbError::UnknownEndpoint`].
    pub fn circuit_open(&self, id: &EndpointId) -> Result<bool, LbError> {
        self.with_member(id, Member::circuit_is_open)
    }

    /// Every endpoint, in insertion order.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.read().list.iter().map(|m| m.snapshot()).collect()
    }

    /// Picks an endpoint for `ctx` at `now_ms` and reserves a connection
    /// on it, released when the [`Selection`] completes or drops.
    ///
    /// # Errors
    /// [`LbError::NoEndpoints`], [`LbError::NoEndpointInZone`] (zone
    /// fallback off), or [`LbError::NoHealthyEndpoint`] when nothing is
    /// eligible or every attempt lost its pick to a race.
    pub fn select_at(&self, ctx: &RequestContext, now_ms: u64) -> Result<Selection, LbError> {
        let members = self.read();
        if members.list.is_empty() {
            return Err(LbError::NoEndpoints);
        }
        for _ in 0..self.config.max_attempts.max(1) {
            let index = match self.sampled_pick(&members.list, ctx, now_ms) {
                Some(index) => index,
                None => {
                    let eligible = self.eligible(&members.list, ctx, now_ms)?;
                    if eligible.is_empty() {
                        return Err(LbError::NoHealthyEndpoint);
                    }
                    eligible[self.pick(&members, &eligible, ctx)]
                }
            };
            let member = &members.list[index];
            let probe = member.circuit_is_open();
            if probe
                && member
                    .probe_in_flight
                    .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
            {
                continue;
            }
            if !member.reserve_connection(self.config.max_connections) {
                if probe {
                    member.probe_in_flight.store(false, Ordering::Release);
                }
                continue;
            }
            return Ok(Selection {
                member: member.clone(),
                probe,
                finished: false,
                failure_threshold: self.config.circuit_failures,
            });
        }
        Err(LbError::NoHealthyEndpoint)
    }

    /// Indices (into `list`) of the endpoints `ctx` may use.
    fn eligible(
        &self,
        list: &[Arc<Member>],
        ctx: &RequestContext,
        now_ms: u64,
    ) -> Result<Vec<usize>, LbError> {
        let cfg = &self.config;
        let all: Vec<usize> = (0..list.len())
            .filter(|&i| self.admits(&list[i], ctx, now_ms))
            .collect();
        let Some(zone) = self.zone_of(ctx) else {
            return Ok(all);
        };
        let local: Vec<usize> = all
            .iter()
            .copied()
            .filter(|&i| list[i].zone.as_ref() == Some(zone))
            .collect();
        if !local.is_empty() {
            Ok(local)
        } else if cfg.zone_fallback {
            Ok(all)
        } else {
            Err(LbError::NoEndpointInZone(zone.clone()))
        }
    }

    /// Whether `m` may take `ctx` at `now_ms` (zones aside).
    fn admits(&self, m: &Member, ctx: &RequestContext, now_ms: u64) -> bool {
        let cfg = &self.config;
        m.enabled.load(Ordering::Relaxed)
            && m.health().receives_traffic()
            && m.circuit_admits(now_ms, cfg.circuit_recovery_ms)
            && m.connections.load(Ordering::Acquire) < cfg.max_connections
            && ctx.required_tags.iter().all(|t| m.tags.contains(t))
    }

    /// The zone `ctx` is confined to, if zone-aware.
    fn zone_of<'a>(&'a self, ctx: &'a RequestContext) -> Option<&'a String> {
        let zone = ctx.zone.as_ref().or(self.config.local_zone.as_ref());
        zone.filter(|_| self.config.zone_aware)
    }

    /// Random and PowerOfTwo without a zone: draw from all endpoints and
    /// keep the draw if every drawn endpoint is eligible (O(1) instead of
    /// filtering them all). Conditioned on success the draw is uniform over
    /// the eligible ones, and on failure the caller filters and draws
    /// uniformly again, so the mixture stays uniform. `None`: filter.
    fn sampled_pick(
        &self,
        list: &[Arc<Member>],
        ctx: &RequestContext,
        now_ms: u64,
    ) -> Option<usize> {
        let n = list.len();
        if n < 2 || self.zone_of(ctx).is_some() {
            return None;
        }
        match self.config.strategy {
            Strategy::Random => {
                let a = self.rng().gen_range(0..n);
                self.admits(&list[a], ctx, now_ms).then_some(a)
            }
            Strategy::PowerOfTwo => {
                let (a, b) = self.distinct_pair(n);
                if !(self.admits(&list[a], ctx, now_ms) && self.admits(&list[b], ctx, now_ms)) {
                    return None;
                }
                let conns = |i: usize| list[i].connections.load(Ordering::Acquire);
                Some(if conns(b) < conns(a) { b } else { a })
            }
            _ => None,
        }
    }

    /// Two distinct indices below `n` (≥ 2), uniformly.
    fn distinct_pair(&self, n: usize) -> (usize, usize) {
        let mut rng = self.rng();
        let a = rng.gen_range(0..n);
        // Uniform over the n − 1 others.
        let b = rng.gen_range(0..n - 1);
        (a, if b >= a { b + 1 } else { b })
    }

    fn rng(&self) -> std::sync::MutexGuard<'_, SmallRng> {
        self.rng.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn round_robin(&self, n: usize) -> usize {
        (self.counter.fetch_add(1, Ordering::Relaxed) % n as u64) as usize
    }

    /// Position in `eligible` of the strategy's pick (`eligible` is not
    /// empty).
    fn pick(&self, members: &Members, eligible: &[usize], ctx: &RequestContext) -> usize {
        let list = &members.list;
        let n = eligible.len();
        let member = |pos: usize| &list[eligible[pos]];
        let conns = |pos: usize| member(pos).connections.load(Ordering::Acquire);
        let min_by = |score: &dyn Fn(usize) -> f64| {
            (0..n)
                .min_by(|&a, &b| score(a).total_cmp(&score(b)))
                .unwrap_or(0)
        };
        match self.config.strategy {
            Strategy::RoundRobin => self.round_robin(n),
            Strategy::WeightedRoundRobin => self.weighted_round_robin(list, eligible),
            Strategy::LeastConnections => min_by(&|p| conns(p) as f64),
            Strategy::WeightedLeastConnections => {
                min_by(&|p| conns(p) as f64 / member(p).effective_weight().max(1e-6))
            }
            Strategy::Random => self.rng().gen_range(0..n),
            Strategy::WeightedRandom => {
                let weights: Vec<f64> = eligible
                    .iter()
                    .map(|&i| list[i].effective_weight())
                    .collect();
                let total: f64 = weights.iter().sum();
                if total <= 0.0 {
                    return self.rng().gen_range(0..n);
                }
                let target = self.rng().gen_range(0.0..total);
                cumulative_pick(&weights, target)
            }
            Strategy::ConsistentHash => match ctx.key() {
                Some(key) => self.ring_pick(members, eligible, key),
                None => self.round_robin(n),
            },
            Strategy::LeastLatency => min_by(&|p| member(p).metrics().response_ms),
            Strategy::LeastLoad => min_by(&|p| load_score(&member(p).metrics(), conns(p))),
            Strategy::PowerOfTwo => {
                if n < 2 {
                    return self.round_robin(n);
                }
                let (a, b) = self.distinct_pair(n);
                if conns(b) < conns(a) { b } else { a }
            }
            Strategy::Adaptive => {
                let mean = eligible
                    .iter()
                    .map(|&i| {
                        load_score(
                            &list[i].metrics(),
                            list[i].connections.load(Ordering::Acquire),
                        )
                    })
                    .sum::<f64>()
                    / n as f64;
                if mean > 0.7 {
                    min_by(&|p| conns(p) as f64)
                } else if let Some(key) = ctx.key() {
                    self.ring_pick(members, eligible, key)
                } else {
                    self.weighted_round_robin(list, eligible)
                }
            }
        }
    }

    /// Counter mod the total weight, over integer weights (weight × 2
    /// Healthy, × 1 Degraded) divided by their gcd, so equal weights take
    /// turns one by one instead of in runs of `weight`.
    fn weighted_round_robin(&self, list: &[Arc<Member>], eligible: &[usize]) -> usize {
        let weights: Vec<u64> = eligible
            .iter()
            .map(|&i| {
                let m = &list[i];
                let factor = if m.health() == Health::Healthy { 2 } else { 1 };
                u64::from(m.weight) * factor
            })
            .collect();
        let g = weights.iter().fold(0, |g, &w| gcd(g, w));
        if g == 0 {
            return self.round_robin(eligible.len());
        }
        let total: u64 = weights.iter().map(|w| w / g).sum();
        let mut target = self.counter.fetch_add(1, Ordering::Relaxed) % total;
        for (i, w) in weights.iter().enumerate() {
            let w = w / g;
            if target < w {
                return i;
            }
            target -= w;
        }
        eligible.len() - 1
    }

    /// First ring point at or after hash(key) whose endpoint is eligible.
    fn ring_pick(&self, members: &Members, eligible: &[usize], key: &str) -> usize {
        let h = xxhash_rust::xxh3::xxh3_64(key.as_bytes());
        let ring = &members.ring;
        // Position in `eligible` of each endpoint (usize::MAX: not eligible),
        // so the walk is O(ring) even when most endpoints are out.
        let mut position = vec![usize::MAX; members.list.len()];
        for (pos, &idx) in eligible.iter().enumerate() {
            position[idx] = pos;
        }
        let start = ring.partition_point(|&(p, _)| p < h);
        (0..ring.len())
            .map(|k| position[ring[(start + k) % ring.len()].1])
            .find(|&pos| pos != usize::MAX)
            .unwrap_or(0)
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Index of the first cumulative weight above `target` (last if none).
fn cumulative_pick(weights: &[f64], target: f64) -> usize {
    let mut acc = 0.0;
    for (i, w) in weights.iter().enumerate() {
        acc += w;
        if acc > target {
            return i;
        }
    }
    weights.len() - 1
}

/// A reserved connection on the selected endpoint. Report the outcome
/// with [`Selection::complete`]; dropping it without doing so releases
/// the slot (and a half-open probe slot) without touching the circuit.
#[must_use = "dropping a Selection releases its connection slot at once"]
pub struct Selection {
    member: Arc<Member>,
    probe: bool,
    finished: bool,
    failure_threshold: u32,
}

impl Selection {
    /// The selected endpoint.
    pub fn id(&self) -> EndpointId {
        self.member.id
    }

    /// Whether this selection is the circuit's half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// Records the outcome and releases the slot. A success closes a
    /// half-open circuit and resets the failure count; a failure re-arms
    /// an open circuit from `now_ms`, or counts towards opening a closed
    /// one.
    pub fn complete(mut self, ok: bool, now_ms: u64) {
        let m = &self.member;
        if ok {
            m.failures.store(0, Ordering::Release);
            if self.probe {
                m.open_since.store(CLOSED, Ordering::Release);
            }
        } else if self.probe {
            m.open_since
                .store(now_ms.saturating_add(1), Ordering::Release);
        } else {
            let failures = m.failures.fetch_add(1, Ordering::AcqRel).saturating_add(1);
            if failures >= self.failure_threshold {
                let _ = m.open_since.compare_exchange(
                    CLOSED,
                    now_ms.saturating_add(1),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
            }
        }
        self.release();
    }

    fn release(&mut self) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        self.member.release_connection();
        if self.probe {
            self.member.probe_in_flight.store(false, Ordering::Release);
        }
    }
}

impl Drop for Selection {
    fn drop(&mut self) {
        self.release();
    }
}

impl std::fmt::Debug for Selection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Selection")
            .field("id", &self.member.id)
            .field("probe", &self.probe)
            .finish()
    }
}

#[cfg(test)]
#[path = "loadbalance_tests.rs"]
mod tests;
