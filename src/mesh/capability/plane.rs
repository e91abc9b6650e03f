//! `CapabilityPlane`: everything the node needs for capabilities behind one
//! value — our own signed announcement, its broadcast limiter, the receive
//! pipeline and the index — so the node's glue is one call per event:
//!
//! | Node event | Call | Then the node… |
//! |---|---|---|
//! | application announces | [`announce`](CapabilityPlane::announce) | sends the bytes, if any, to every peer |
//! | limiter timer ([`next_due`](CapabilityPlane::next_due)) | [`due`](CapabilityPlane::due) | sends the bytes to every peer |
//! | session up (connect/accept/relayed) | [`on_peer_connected`](CapabilityPlane::on_peer_connected) | sends the bytes to that peer |
//! | peer recovered (Failed → Alive) | [`on_peer_recovered`](CapabilityPlane::on_peer_recovered) | sends the bytes to that peer |
//! | 0x0C00 event frame | [`on_frame`](CapabilityPlane::on_frame) | pins, routes, forwards per the verdict |
//! | peer Failed / evicted | [`on_peer_failed`](CapabilityPlane::on_peer_failed) / [`on_peer_evicted`](CapabilityPlane::on_peer_evicted) | — |
//! | GC tick (60 s) | [`gc`](CapabilityPlane::gc) | — |
//! | reflex override set/cleared | [`set_reflex_addr`](CapabilityPlane::set_reflex_addr) | — |
//!
//! Better than v0.11: versions are time-based (a restarted node is heard at
//! once), a rate-limited announcement is deferred (not dropped), our
//! announcement is pushed to relayed peers and re-pushed to recovered ones.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::announcement::{Announcement, AnnouncementError, DEFAULT_TTL_SECS};
use super::caps::CapabilitySet;
use super::index::{CapabilityIndex, IndexLimits};
use super::pipeline::{PipelineConfig, ReceivePipeline, Verdict};
use super::query::{
    BestNode, BestNodeQuery, FoundNodes, NodeQuery, NodeScorer, find_best_node, find_nodes,
};
use super::scheduler::{AnnounceScheduler, DEFAULT_MIN_ANNOUNCE_INTERVAL};
use super::scope::SubnetView;
use super::version::VersionClock;
use crate::identity::EntityKeypair;

/// Default `capability_gc_interval` (MESH2.md §6); a zero interval is
/// clamped to 1 s by the node.
pub const DEFAULT_GC_INTERVAL: Duration = Duration::from_secs(60);

/// Settings of the capability plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapabilityConfig {
    /// TTL of our announcements, seconds (default 300).
    pub ttl_secs: u32,
    /// At most one broadcast per this interval (default 10 s).
    pub min_announce_interval: Duration,
    /// Receive-side settings.
    pub pipeline: PipelineConfig,
    /// Index bounds.
    pub index: IndexLimits,
}

impl Default for CapabilityConfig {
    fn default() -> Self {
        Self {
            ttl_secs: DEFAULT_TTL_SECS,
            min_announce_interval: DEFAULT_MIN_ANNOUNCE_INTERVAL,
            pipeline: PipelineConfig::default(),
            index: IndexLimits::default(),
        }
    }
}

/// Our announcements, the peers' announcements and the queries over them.
#[derive(Debug)]
pub struct CapabilityPlane {
    keypair: EntityKeypair,
    config: CapabilityConfig,
    versions: VersionClock,
    reflex_addr: Option<SocketAddr>,
    /// Our latest signed announcement and its bytes.
    latest: Option<(Announcement, Vec<u8>)>,
    scheduler: AnnounceScheduler<()>,
    pipeline: ReceivePipeline,
    index: CapabilityIndex,
}

impl CapabilityPlane {
    /// A plane for the node whose entity key is `keypair`, with versions
    /// continuing from `versions` (a fresh [`VersionClock`] is enough; see
    /// its docs).
    pub fn new(keypair: EntityKeypair, config: CapabilityConfig, versions: VersionClock) -> Self {
        let local = keypair.node_id();
        Self {
            config,
            versions,
            reflex_addr: None,
            latest: None,
            scheduler: AnnounceScheduler::new(config.min_announce_interval),
            pipeline: ReceivePipeline::new(local, config.pipeline),
            index: CapabilityIndex::new(local, config.index),
            keypair,
        }
    }

    /// Announces `caps` at `now` (wall clock `now_unix_ns`): builds, signs
    /// and indexes it locally (queries include us), keeps it as the latest.
    /// Returns the bytes to broadcast to every peer now, or `None` when the
    /// limiter deferred the broadcast to [`next_due`](Self::next_due).
    ///
    /// # Errors
    /// [`AnnouncementError::TooLarge`] when the capabilities do not fit a
    /// frame; [`AnnouncementError::ReadOnlyKey`] for a public-only keypair.
    /// Nothing changes on error.
    pub fn announce(
        &mut self,
        caps: CapabilitySet,
        now: Instant,
        now_unix_ns: u64,
    ) -> Result<Option<Vec<u8>>, AnnouncementError> {
        let mut versions = self.versions;
        let mut announcement = Announcement::new(
            *self.keypair.entity_id(),
            versions.next(now_unix_ns),
            now_unix_ns,
            self.config.ttl_secs,
            caps,
        );
        announcement.reflex_addr = self.reflex_addr;
        announcement.sign(&self.keypair)?;
        self.versions = versions;
        let bytes = announcement.encode();
        // Our own entry always fits and our versions always grow.
        let _ = self.index.insert(announcement.clone(), now_unix_ns);
        self.latest = Some((announcement, bytes));
        Ok(self
            .scheduler
            .offer((), now)
            .and_then(|()| self.latest_bytes()))
    }

    /// The deferred broadcast, once the limiter allows it: bytes to send to
    /// every peer.
    pub fn due(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.scheduler.due(now).and_then(|()| self.latest_bytes())
    }

    /// When to call [`due`](Self::due) next; `None` when nothing waits.
    pub fn next_due(&self, now: Instant) -> Option<Instant> {
        self.scheduler.next_due(now)
    }

    /// A session with `peer` came up (connect, accept, or a routed
    /// handshake — v0.11 skips the latter): our latest announcement to send
    /// to it, if we made one.
    pub fn on_peer_connected(&self, _peer: u64) -> Option<Vec<u8>> {
        self.latest_bytes()
    }

    /// `peer` came back from Failed: our latest announcement to re-push to
    /// it (v0.11 never does; §7 item 17). The peer re-pushes its own, which
    /// [`on_frame`](Self::on_frame) accepts again because
    /// [`on_peer_failed`](Self::on_peer_failed) forgot its records.
    pub fn on_peer_recovered(&self, _peer: u64) -> Option<Vec<u8>> {
        self.latest_bytes()
    }

    /// One 0x0C00 event frame from `sender`.
    pub fn on_frame(&mut self, frame: &[u8], sender: u64, now_unix_ns: u64) -> Verdict {
        self.pipeline
            .receive(frame, sender, now_unix_ns, &mut self.index)
    }

    /// `peer` was declared Failed: its capabilities leave the index (its
    /// entity pin stays).
    pub fn on_peer_failed(&mut self, peer: u64) {
        self.pipeline.peer_failed(peer, &mut self.index);
    }

    /// `peer` was evicted: its capabilities and its pin go.
    pub fn on_peer_evicted(&mut self, peer: u64) {
        self.pipeline.peer_evicted(peer, &mut self.index);
    }

    /// The GC tick: expired entries and dedup records go; returns the node
    /// ids removed from the index.
    pub fn gc(&mut self, now_unix_ns: u64) -> Vec<u64> {
        self.pipeline.sweep(now_unix_ns, &mut self.index)
    }

    /// Sets or clears our reflexive address (used from the next
    /// announcement on) and, when it changed, resets the limiter, as v0.11
    /// does for the reflex override.
    pub fn set_reflex_addr(&mut self, reflex_addr: Option<SocketAddr>) {
        if self.reflex_addr == reflex_addr {
            return; // unchanged: the limiter keeps its state
        }
        self.reflex_addr = reflex_addr;
        self.scheduler.reset();
    }

    /// `find_nodes` at wall clock `now_unix_ns`.
    pub fn find_nodes(
        &self,
        query: &NodeQuery,
        now_unix_ns: u64,
        subnets: &dyn SubnetView,
    ) -> FoundNodes {
        find_nodes(&self.index, now_unix_ns, query, subnets)
    }

    /// `find_best_node` with the query's weights.
    pub fn find_best_node(
        &self,
        query: &BestNodeQuery,
        now_unix_ns: u64,
        subnets: &dyn SubnetView,
    ) -> BestNode {
        self.find_best_node_with(query, &query.weights, now_unix_ns, subnets)
    }

    /// `find_best_node` with a custom scorer (the behaviour plane's).
    pub fn find_best_node_with(
        &self,
        query: &BestNodeQuery,
        scorer: &dyn NodeScorer,
        now_unix_ns: u64,
        subnets: &dyn SubnetView,
    ) -> BestNode {
        find_best_node(
            &self.index,
            now_unix_ns,
            &query.filter,
            &query.scope,
            scorer,
            subnets,
        )
    }

    /// Every live indexed node as JSON (see
    /// [`capabilities_json`](super::query::capabilities_json)).
    pub fn capabilities_json(&self, now_unix_ns: u64) -> String {
        super::query::capabilities_json(&self.index, now_unix_ns)
    }

    /// Our latest announcement, if we made one.
    pub fn latest(&self) -> Option<&Announcement> {
        self.latest.as_ref().map(|(a, _)| a)
    }

    /// The last version used: persist it to survive a wall-clock step
    /// backwards across a restart ([`VersionClock::resume`]).
    pub fn last_version(&self) -> u64 {
        self.versions.last()
    }

    /// The index (read-only: capabilities JSON, stats).
    pub fn index(&self) -> &CapabilityIndex {
        &self.index
    }

    /// The receive pipeline (read-only: pins, stats).
    pub fn pipeline(&self) -> &ReceivePipeline {
        &self.pipeline
    }

    fn latest_bytes(&self) -> Option<Vec<u8>> {
        self.latest.as_ref().map(|(_, bytes)| bytes.clone())
    }
}
