//! `MeshNode`: one UDP socket, tasks on the shared tokio runtime (or an
//! injected one), a `DashMap` of peers.
//!
//! * `recv.rs` — the receive task: batched reads, classification,
//!   handshakes, packet opening and dispatch (events, grants, hellos,
//!   reliability acks, heartbeats).
//! * `send.rs` — the send path, run on the caller's thread: framing,
//!   credit, sealing, batched writes, the loopback path.
//! * `writer.rs` — draining a peer's outbox (seal in place, batched
//!   writes) and the writer thread that takes over when sends come hot.
//! * `tasks.rs` — the timers: heartbeats + failure detection + eviction
//!   (after `start`), and the reliability tick (retransmissions, hellos,
//!   membership request expiry, token sweeps, deferred announcements,
//!   capability GC).
//! * `channels/` — the `ChannelHub` glue (0x0A00, subscribe, publish,
//!   channel tagging of inbound events) and the channel calls.
//! * `capabilities.rs` — the `CapabilityPlane` glue (0x0C00, announce,
//!   pushes on session-up and recovery, queries).
//! * `session_install.rs` — session installation and the re-key rules:
//!   candidate sessions that let a restarted Net peer replace its session,
//!   and what `connect` waits for after its handshake.
//! * this file — construction, handshakes as the caller sees them
//!   (`connect`, `accept`), streams, `recv`, introspection and shutdown.
//!
//! Locking rules: no lock or map guard is held across an `.await` (the
//! async tasks never await while holding one; the heartbeat loop snapshots
//! its peers first), and the peers map is only ever entered through one
//! guard at a time. The capability plane's lock comes before the channel
//! hub's; neither is held across a send.

mod capabilities;
mod channels;
mod continuity;
mod pathsize;
mod recv;
mod send;
mod session_install;
mod subnets;
mod subprotocols;
mod tasks;
#[cfg(feature = "test-util")]
mod testing;
mod traversal;
mod writer;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use serde_json::json;
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

use super::bufpool::BufferPool;
use super::config::{ConfigError, ConnectForm, MeshConfig};
use super::credit::Backpressure;
use super::handshake::{HandshakeError, HandshakeForm, Initiator, Responder};
use super::hello::FLAG_WINDOW_GROWTH;
use super::inbound::{Inbound, InboundEvent, Recv};
use super::peer::{Peer, StreamLimits};
use super::routing::{Router, RoutingConfig};
use super::stream::WindowPool;
use crate::cancel::CancelToken;
use crate::identity::{EntityId, EntityKeypair, routing_id};
use crate::wire::ids;

pub use capabilities::CapabilityError;
pub(crate) use capabilities::TagStamp;
pub use channels::{ChannelError, PublishReport};
pub use continuity::{
    CONTINUITY_SUBPROTOCOLS, ChainStatusInfo, ContinuityError, ContinuityEvent, PartitionStatus,
    ProofVerdict, ReconcileOutcome,
};
pub use subprotocols::{SUBPROTOCOL_STREAM_BASE, SubprotocolHandler};
pub use traversal::{DirectOutcome, NatStatus, RelayReason, TraversalSettings};

/// Why a mesh call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeshError {
    /// The configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A socket operation failed.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// The handshake got no valid answer in time (all attempts).
    #[error("handshake with {peer:#018x} timed out after {attempts} attempts")]
    HandshakeTimeout {
        /// The node called.
        peer: u64,
        /// Attempts made.
        attempts: u32,
    },
    /// A handshake could not even be built (bad key).
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// A live session with this node exists (re-keying is refused while it
    /// is inside its idle window), or another handshake with it won.
    #[error("a live session with {0:#018x} exists")]
    SessionExists(u64),
    /// Another `connect` to the same node or address is in flight.
    #[error("a handshake with {0:#018x} is already in progress")]
    HandshakeInProgress(u64),
    /// No session with this node.
    #[error("no session with {0:#018x}")]
    UnknownPeer(u64),
    /// No route to this node (`connect_routed`), or the relay named is not
    /// a direct peer (`connect_via`).
    #[error("no route to {0:#018x}")]
    NoRoute(u64),
    /// The stream's window is spent (non-blocking send).
    #[error(transparent)]
    Backpressure(#[from] Backpressure),
    /// A batch that can never fit the stream's window in one go.
    #[error(
        "batch needs {needed} bytes of credit; the stream window is {window}: use send_blocking"
    )]
    BatchExceedsWindow {
        /// The batch's cost.
        needed: u64,
        /// The window.
        window: u64,
    },
    /// An event too large for one packet.
    #[error("event of {0} bytes does not fit a packet (max 8108)")]
    EventTooLarge(usize),
    /// The deadline passed.
    #[error("timed out")]
    Timeout,
    /// The node is shutting down.
    #[error("mesh node is shut down")]
    ShuttingDown,
    /// The peer proved another identity than the one pinned for its node_id.
    #[error("peer {0:#018x} presented an identity that does not match")]
    IdentityRefused(u64),
    /// Connecting to ourselves.
    #[error("cannot connect to our own node_id")]
    SelfConnect,
    /// The stream was closed while the call waited.
    #[error("stream {0} was closed")]
    StreamClosed(u64),
    /// The call's [`CancelToken`] was cancelled.
    #[error("the call was cancelled through its token while it waited")]
    Cancelled,
    /// The subprotocol id is dispatched by the node itself or already has
    /// a handler; the existing handler was kept.
    #[error("subprotocol {0:#06x} is reserved or already has a handler")]
    SubprotocolInUse(u16),
    /// A continuity call was refused (continuity off, chain not followed).
    #[error(transparent)]
    Continuity(#[from] continuity::ContinuityError),
    /// The peer's hello did not offer what the call needs (a v0.11 node,
    /// or a Net node with the feature off).
    #[error("peer {peer:#018x} does not take {feature}")]
    PeerLacks {
        /// The peer.
        peer: u64,
        /// What it lacks.
        feature: &'static str,
    },
}

/// A counter per thing worth counting; all monotonic.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub datagrams_sent: AtomicU64,
    pub datagrams_received: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    pub events_sent: AtomicU64,
    pub events_received: AtomicU64,
    pub handshakes_initiated: AtomicU64,
    pub handshakes_completed: AtomicU64,
    pub handshakes_refused: AtomicU64,
    pub handshakes_failed: AtomicU64,
    pub handshakes_throttled: AtomicU64,
    pub auth_failures: AtomicU64,
    pub replays: AtomicU64,
    pub malformed: AtomicU64,
    pub unknown_session: AtomicU64,
    pub oversized: AtomicU64,
    pub not_for_us: AtomicU64,
    /// Stamped channel packets not handed to a hop outside their subnet.
    pub subnet_blocked: AtomicU64,
    pub inbound_dropped: AtomicU64,
    pub retransmits: AtomicU64,
    pub grants_sent: AtomicU64,
    /// `sendmmsg` (or plain send) calls: datagrams_sent / write_calls is
    /// what batching achieves.
    pub write_calls: AtomicU64,
    /// Large-datagram probes sent, answered ones that raised a peer's
    /// datagram size, and probes given up (`node/pathsize.rs`).
    pub path_probes_sent: AtomicU64,
    pub paths_enlarged: AtomicU64,
    pub path_probes_failed: AtomicU64,
    /// Wider windows offered to Net senders (receiver side).
    pub windows_offered: AtomicU64,
    /// Windows widened on a receiver's offer (sender side).
    pub windows_widened: AtomicU64,
    pub acks_sent: AtomicU64,
    pub heartbeats_sent: AtomicU64,
    pub heartbeats_received: AtomicU64,
    pub session_scans: AtomicU64,
    pub identity_refused: AtomicU64,
    pub counter_jumps: AtomicU64,
    pub loopback_dropped: AtomicU64,
    pub send_dropped: AtomicU64,
    pub evictions: AtomicU64,
    /// Data packets the writers took from outboxes (each one datagram).
    pub packets_written: AtomicU64,
    /// Writes handed to the writer thread (the path was hot).
    pub writer_handoffs: AtomicU64,
    /// `sendmsg` calls carrying several datagrams as one (UDP GSO).
    pub gso_sends: AtomicU64,
    /// GSO refused by the kernel: the socket went back to plain sends.
    pub gso_fallbacks: AtomicU64,
    /// Datagrams that arrived coalesced by the kernel (UDP GRO).
    pub gro_datagrams: AtomicU64,
    /// Capability announcements accepted by the receive pipeline.
    pub capabilities_accepted: AtomicU64,
    /// Capability announcements dropped by it (garbage, unsigned, forged,
    /// stale, already seen: the debug log says why).
    pub capabilities_dropped: AtomicU64,
    /// Handshakes taken as candidates to replace a live bound session.
    pub session_candidates: AtomicU64,
    /// Candidates whose hello proved the pinned entity: sessions replaced.
    pub sessions_replaced: AtomicU64,
    /// Candidates dropped: hello refused, superseded or never came.
    pub candidates_dropped: AtomicU64,
    /// Reflex probes (empty 0x0D00 events) we sent.
    pub reflex_probes: AtomicU64,
    /// Reflex answers we received.
    pub reflex_answers: AtomicU64,
    /// Reflex probes we answered.
    pub reflex_answered: AtomicU64,
    /// Relayed sessions moved to a direct path (`connect_direct`).
    pub paths_upgraded: AtomicU64,
    /// Causal events (0x0400) whose frames did not decode, met while
    /// following chains (`continuity/streams.rs`); the application still
    /// receives them.
    pub causal_malformed: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What a waiting `connect` or `accept` is told.
#[derive(Debug)]
struct Waiter<T> {
    slot: Mutex<Option<Result<T, String>>>,
    done: Condvar,
}

impl<T> Waiter<T> {
    fn new() -> Self {
        Self {
            slot: Mutex::new(None),
            done: Condvar::new(),
        }
    }

    fn complete(&self, result: Result<T, String>) {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(result);
        }
        self.done.notify_all();
    }

    /// Wakes a waiter so it re-checks its stop conditions.
    fn poke(&self) {
        drop(self.slot.lock().unwrap_or_else(|e| e.into_inner()));
        self.done.notify_all();
    }

    fn wait(
        &self,
        deadline: Instant,
        stop: &AtomicBool,
        cancel: Option<&CancelToken>,
    ) -> Option<Result<T, String>> {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(r) = slot.take() {
                return Some(r);
            }
            let now = Instant::now();
            if now >= deadline
                || stop.load(Ordering::SeqCst)
                || cancel.is_some_and(CancelToken::is_cancelled)
            {
                return None;
            }
            slot = self
                .done
                .wait_timeout(slot, (deadline - now).min(Duration::from_millis(50)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// Where a handshake reply for our `connect` will come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PendingKey {
    /// Direct form: the responder's address.
    Addr(SocketAddr),
    /// Routed form: the responder's routing id (low 32 bits).
    Rid(u32),
}

struct PendingConnect {
    initiator: Mutex<Option<Initiator>>,
    peer_node_id: u64,
    addr: SocketAddr,
    /// The relay of a `connect_via` / `connect_routed`.
    relay: Option<u64>,
    /// The responder's static key we dialed.
    peer_static: [u8; 32],
    waiter: Waiter<()>,
}

struct PendingAccept {
    node_id: u64,
    waiter: Waiter<SocketAddr>,
}

/// The state every task shares.
/// The maps every packet looks up (peer by id, by address, by session):
/// a randomly seeded fast hash instead of SipHash (their keys are only
/// inserted for authenticated sessions).
type FastMap<K, V> = DashMap<K, V, foldhash::fast::RandomState>;

pub(crate) struct Inner {
    config: MeshConfig,
    identity: EntityKeypair,
    node_id: u64,
    static_public: [u8; 32],
    /// Kept to open identity envelopes sealed to this node
    /// ([`MeshNode::open_identity_envelope`]).
    static_secret: Zeroizing<[u8; 32]>,
    responder: Responder,
    socket: UdpSocket,
    local_addr: SocketAddr,
    peers: FastMap<u64, Arc<Peer>>,
    addr_index: FastMap<SocketAddr, u64>,
    session_index: FastMap<u64, u64>,
    pending_connects: DashMap<PendingKey, Arc<PendingConnect>>,
    pending_accepts: Mutex<Vec<Arc<PendingAccept>>>,
    accept_in_flight: AtomicUsize,
    started: AtomicBool,
    shutdown: AtomicBool,
    inbound: Arc<Inbound>,
    /// Datagram buffers reused by the send and receive paths (`bufpool.rs`).
    buffers: Arc<BufferPool>,
    /// The most consumed bytes that wait for a grant: a quarter of our
    /// window, so a sender with our window never waits on credit. Each
    /// stream grants sooner when its sender's window looks smaller
    /// (`RxState::grant_threshold`); remainders go out on the reliability
    /// tick.
    grant_threshold: u64,
    /// Receive-window bytes beyond the default that widened streams hold
    /// (`window_budget`).
    window_pool: Arc<WindowPool>,
    pub(crate) stats: Stats,
    pins: Mutex<HashMap<u64, EntityId>>,
    /// Sessions waiting to replace a bound one (`session_install.rs`).
    candidates: session_install::Candidates,
    #[cfg(feature = "test-util")]
    testing: testing::Testing,
    handshake_tokens: Mutex<(f64, Instant)>,
    /// The routing table, pingwave distance vector and forwarding
    /// decisions (`routing/`); locked briefly per pingwave, routed
    /// datagram, heartbeat tick and peer change.
    router: Mutex<Router>,
    epoch: Instant,
    /// Seconds since the UNIX epoch, refreshed by the reliability tick
    /// (every 5 ms): the publish path's clock for token expiry, without a
    /// wall-clock read per call.
    unix_secs: AtomicU64,
    runtime: tokio::runtime::Handle,
    /// The writer thread (`writer.rs`).
    pump: Arc<writer::Pump>,
    /// Which kernel offloads the socket uses (`io.rs`).
    offload: super::io::Offload,
    /// Route MTUs, for large datagrams (`node/pathsize.rs`).
    mtu_oracle: super::io::MtuOracle,
    /// Channel registry, rosters and our subscriptions (`channels.rs`).
    channels: channels::ChannelGlue,
    /// Our announcements and the capability index (`capabilities.rs`).
    capabilities: capabilities::CapabilityGlue,
    /// NAT classification and the reflex (`traversal.rs`).
    traversal: traversal::TraversalGlue,
    /// Handlers of subsystem subprotocols (`subprotocols.rs`).
    subprotocols: subprotocols::SubprotocolHooks,
    /// Partition records, followed chains, the heal exchange
    /// (`continuity.rs`).
    continuity: continuity::ContinuityGlue,
}

/// A mesh node. Cheap to share behind an `Arc`; every method takes `&self`
/// and is safe to call from any thread. Its tasks run on the process's
/// shared runtime ([`crate::runtime`]) or on one passed to
/// [`MeshNode::with_runtime`]; `shutdown` ends them, never the runtime.
pub struct MeshNode {
    inner: Arc<Inner>,
    /// The receive, reliability and heartbeat tasks: ended at shutdown.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    started_once: AtomicBool,
}

/// How long `shutdown` waits for the node's tasks to end (they end at
/// their next await point; this bounds a task stuck in a send).
const TASK_STOP_TIMEOUT: Duration = Duration::from_secs(2);

impl std::fmt::Debug for MeshNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshNode")
            .field("node_id", &format_args!("{:#018x}", self.inner.node_id))
            .field("local_addr", &self.inner.local_addr)
            .finish_non_exhaustive()
    }
}

/// A summary of one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its node_id.
    pub node_id: u64,
    /// Where it is.
    pub addr: SocketAddr,
    /// The session id.
    pub session_id: u64,
    /// "alive", "suspected" or "failed".
    pub health: &'static str,
    /// "net" (identity bound), "legacy" (v0.11) or "pending".
    pub identity: &'static str,
    /// The entity it proved, when bound.
    pub entity: Option<EntityId>,
    /// Streams open with it.
    pub streams: usize,
    /// Milliseconds since its last authenticated packet.
    pub idle_ms: u64,
    /// The cipher our data packets to it are sealed with:
    /// "chacha20-poly1305", or "aes-256-gcm" once negotiated.
    pub cipher: &'static str,
    /// Events from it dropped because the inbound queue was full and not
    /// yet reported on a later event of their stream
    /// ([`InboundEvent::dropped_before`]).
    pub dropped_unreported: u64,
    /// For a relayed session, the relay (node_id) its packets go through
    /// now: the next hop of the best route, which moves when a relay dies
    /// (the session's first relay while no route is known); `None` for a
    /// direct peer.
    pub relay: Option<u64>,
    /// The largest datagram we send it: 8192 (v0.11's), or up to 65 000
    /// between Net nodes once a large-datagram probe went through.
    pub max_datagram: usize,
    /// Its subnet as this node knows it (its signed announcement's
    /// `subnet:` tag or our policy over its tags; `docs/mesh.md`
    /// "Subnets"); `None` when unknown.
    pub subnet: Option<crate::mesh::channels::SubnetId>,
}

impl MeshNode {
    /// Binds the socket and starts the receive and reliability tasks. The
    /// node accepts handshakes (both forms) and traffic at once; `start`
    /// adds heartbeats and failure detection.
    ///
    /// # Errors
    /// [`MeshError::Io`] when the socket cannot be bound (or the shared
    /// runtime cannot start its threads).
    pub fn new(config: MeshConfig) -> Result<Self, MeshError> {
        Self::start_on(config, crate::runtime::shared()?)
    }

    /// As [`new`](Self::new), with the node's tasks on `runtime` (a
    /// multi-thread runtime with its I/O and time drivers enabled) instead
    /// of the shared one. The node never shuts the runtime down.
    ///
    /// # Errors
    /// As [`new`](Self::new); [`MeshError::Config`] for a current-thread
    /// runtime.
    pub fn with_runtime(
        config: MeshConfig,
        runtime: tokio::runtime::Handle,
    ) -> Result<Self, MeshError> {
        crate::runtime::check_injected(&runtime)
            .map_err(|e| ConfigError(format!("runtime: {e}")))?;
        Self::start_on(config, runtime)
    }

    fn start_on(config: MeshConfig, runtime: tokio::runtime::Handle) -> Result<Self, MeshError> {
        let identity = match &config.identity_seed {
            Some(seed) => EntityKeypair::from_seed(seed),
            None => EntityKeypair::generate(),
        };
        let static_secret = match &config.static_secret {
            Some(secret) => Zeroizing::new(**secret),
            None => {
                let mut s = Zeroizing::new([0u8; 32]);
                rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, s.as_mut());
                s
            }
        };
        let static_public = crate::identity::x25519_public_key(&static_secret);
        let node_id = identity.node_id();
        let socket = UdpSocket::bind(config.bind)?;
        socket.set_nonblocking(true)?;
        super::io::set_buffers(&socket, config.recv_buffer, config.send_buffer)?;
        let offload = super::io::Offload::enable(&socket, config.gso, config.gro);
        let local_addr = socket.local_addr()?;
        let recv_socket = socket.try_clone()?;
        let routing = RoutingConfig {
            heartbeat_interval: config.heartbeat_interval,
            ..RoutingConfig::default()
        };
        let channel_glue = channels::ChannelGlue::new(
            node_id,
            *identity.entity_id(),
            config.subnets.own_subnet::<String>(&[]),
            config.channels.clone(),
        );
        let capability_glue = capabilities::CapabilityGlue::new(
            &identity,
            config.capabilities,
            config.capability_gc_interval,
        );
        let traversal = traversal::TraversalGlue::new(&config.traversal, local_addr, node_id);
        let buffers = Arc::new(BufferPool::new());
        let inner = Arc::new(Inner {
            subprotocols: subprotocols::SubprotocolHooks::default(),
            continuity: continuity::ContinuityGlue::new(
                node_id,
                config.continuity,
                config.proof_interval,
            ),
            traversal,
            channels: channel_glue,
            capabilities: capability_glue,
            responder: Responder::new(*static_secret, *config.psk, node_id),
            inbound: Arc::new(Inbound::new(
                config.num_shards,
                config.shard_capacity,
                buffers.clone(),
            )),
            buffers,
            grant_threshold: (config.window / 4).clamp(1, 16 * 1024),
            window_pool: WindowPool::new(config.window_budget),
            handshake_tokens: Mutex::new((config.max_pending_handshakes as f64, Instant::now())),
            config,
            identity,
            node_id,
            static_public,
            static_secret,
            socket,
            local_addr,
            peers: FastMap::default(),
            addr_index: FastMap::default(),
            session_index: FastMap::default(),
            pending_connects: DashMap::new(),
            pending_accepts: Mutex::new(Vec::new()),
            accept_in_flight: AtomicUsize::new(0),
            started: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            stats: Stats::default(),
            pins: Mutex::new(HashMap::new()),
            candidates: session_install::Candidates::default(),
            #[cfg(feature = "test-util")]
            testing: testing::Testing::default(),
            router: Mutex::new(Router::with_first_pingwave_seq(
                node_id,
                routing,
                first_pingwave_seq(),
            )),
            epoch: Instant::now(),
            unix_secs: AtomicU64::new(unix_secs_now()),
            runtime: runtime.clone(),
            pump: Arc::new(writer::Pump::default()),
            offload,
            mtu_oracle: super::io::MtuOracle::new(),
        });
        inner.install_continuity();
        inner.pump.start(Arc::downgrade(&inner))?;
        inner.start_port_mapping()?;
        inner.start_interface_watch()?;
        let readable = {
            let _enter = runtime.enter();
            super::io::register_readable(recv_socket)?
        };
        let tasks = vec![
            runtime.spawn(recv::receive_loop(inner.clone(), readable)),
            runtime.spawn(tasks::reliability_loop(inner.clone())),
        ];
        Ok(Self {
            inner,
            tasks: Mutex::new(tasks),
            started_once: AtomicBool::new(false),
        })
    }

    /// Our node_id (from the identity).
    pub fn node_id(&self) -> u64 {
        self.inner.node_id
    }

    /// Our static X25519 public key: what initiators need to `connect`.
    pub fn public_key(&self) -> [u8; 32] {
        self.inner.static_public
    }

    /// Our ed25519 entity.
    pub fn entity_id(&self) -> EntityId {
        *self.inner.identity.entity_id()
    }

    /// `peer`'s X25519 static public key, when known: the key we dialed
    /// it with, or the one its verified hello carried (every Net node
    /// sends it; a v0.11 peer that dialed us never tells). What an
    /// identity envelope for `peer` is sealed to.
    pub fn peer_static_key(&self, peer: u64) -> Option<[u8; 32]> {
        self.inner
            .peer(peer)
            .ok()
            .and_then(|p| p.binding().peer_static)
    }

    /// Whether `peer` is a Net node: `Some(true)` once its signed hello
    /// arrived, `Some(false)` once the identity exchange timed out (a
    /// v0.11 node), `None` without a session or while the exchange is
    /// under way. What Net-only additions to v0.11's messages are decided
    /// by.
    pub fn peer_is_net(&self, peer: u64) -> Option<bool> {
        let peer = self.inner.peer(peer).ok()?;
        let binding = peer.binding();
        if binding.peer_entity.is_some() {
            Some(true)
        } else if binding.legacy {
            Some(false)
        } else {
            None
        }
    }

    /// Opens an identity envelope sealed to this node's static key (a
    /// daemon's identity travelling with a migration), checking that
    /// `signer` sealed it for `chain_link`. The secret never leaves the
    /// node.
    ///
    /// # Errors
    /// As [`IdentityEnvelope::open`](crate::identity::IdentityEnvelope::open).
    pub fn open_identity_envelope(
        &self,
        envelope: &crate::identity::IdentityEnvelope,
        chain_link: &[u8; 32],
        signer: &EntityId,
    ) -> Result<EntityKeypair, crate::identity::EnvelopeError> {
        envelope.open(&self.inner.static_secret, chain_link, Some(signer))
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// Starts heartbeats, pingwaves, failure detection and eviction.
    /// Idempotent. Handshakes are accepted before and after.
    pub fn start(&self) -> Result<(), MeshError> {
        self.inner.check_running()?;
        self.inner.started.store(true, Ordering::SeqCst);
        if !self.started_once.swap(true, Ordering::SeqCst) {
            let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
            // Under the tasks lock: a racing shutdown either took the list
            // before us (its flag is set, so we spawn nothing) or will take
            // the heartbeat task with the others.
            if self.inner.check_running().is_ok() {
                tasks.push(
                    self.inner
                        .runtime
                        .spawn(tasks::heartbeat_loop(self.inner.clone())),
                );
            }
        }
        Ok(())
    }

    /// Whether `start` was called.
    pub fn is_started(&self) -> bool {
        self.inner.started.load(Ordering::SeqCst)
    }

    /// Handshakes with the node `peer_node_id` at `addr`, whose static
    /// X25519 key is `peer_static`, in the configured form (retries with
    /// back-off). A Net peer's hello, sent right behind its msg2, gets a
    /// grace of a few handshake round trips (at least 50 ms): with it, the
    /// call returns once the identity binding is complete; without it (a
    /// v0.11 peer), the call returns with the binding pending, and reliable
    /// streams wait for it at their first send (at most `hello_timeout`).
    /// With `require_identity` the whole `hello_timeout` is waited.
    ///
    /// # Errors
    /// [`MeshError::SessionExists`] when a live session exists,
    /// [`MeshError::HandshakeTimeout`], [`MeshError::ShuttingDown`].
    pub fn connect(
        &self,
        addr: SocketAddr,
        peer_static: &[u8; 32],
        peer_node_id: u64,
    ) -> Result<(), MeshError> {
        self.inner
            .connect(addr, peer_static, peer_node_id, None, None)
    }

    /// Handshakes with `peer_node_id` through `relay`, one of our direct
    /// peers (the routed handshake of WIRE.md §3.5, forwarded by the
    /// relay). The session is relayed: every packet to the peer travels
    /// behind a routing header towards the best route (the relay, or
    /// another path if the relay fails), heartbeats included, so the peer
    /// is liveness-checked like a direct one.
    ///
    /// # Errors
    /// [`MeshError::NoRoute`] when `relay` is not a direct peer; as
    /// [`connect`](Self::connect) otherwise.
    pub fn connect_via(
        &self,
        relay: u64,
        peer_static: &[u8; 32],
        peer_node_id: u64,
        cancel: Option<&CancelToken>,
    ) -> Result<(), MeshError> {
        self.inner
            .connect_through(relay, peer_static, peer_node_id, cancel)
    }

    /// [`connect_via`](Self::connect_via) through the next hop of the
    /// routing table's best route to `peer_node_id`.
    ///
    /// # Errors
    /// [`MeshError::NoRoute`] when no route is known; as
    /// [`connect_via`](Self::connect_via) otherwise.
    pub fn connect_routed(
        &self,
        peer_static: &[u8; 32],
        peer_node_id: u64,
        cancel: Option<&CancelToken>,
    ) -> Result<(), MeshError> {
        let hop = self
            .inner
            .router()
            .route_for(peer_node_id, Instant::now())
            .map(|route| route.next_hop)
            .ok_or(MeshError::NoRoute(peer_node_id))?;
        self.inner
            .connect_through(hop, peer_static, peer_node_id, cancel)
    }

    /// The routing table as JSON: `node_id`, `routes` (per destination:
    /// `destination`, `next_hop`, `hops`, `kind` ("direct" | "relayed" |
    /// "learned"), `age_ms`, `stale`, `alternates`), and the `forwarding`
    /// and `pingwaves` counters. Ids are exact JSON integers.
    pub fn routes_json(&self) -> String {
        let snapshot = self.inner.router().snapshot(Instant::now());
        serde_json::to_string(&snapshot).unwrap_or_else(|_| "{}".into())
    }

    /// [`connect`](Self::connect) that also gives up with
    /// [`MeshError::Cancelled`] as soon as `cancel` is cancelled.
    ///
    /// # Errors
    /// As [`connect`](Self::connect), plus [`MeshError::Cancelled`].
    pub fn connect_cancellable(
        &self,
        addr: SocketAddr,
        peer_static: &[u8; 32],
        peer_node_id: u64,
        cancel: Option<&CancelToken>,
    ) -> Result<(), MeshError> {
        self.inner
            .connect(addr, peer_static, peer_node_id, None, cancel)
    }

    /// Waits up to `timeout` (forever with `None`) for the node
    /// `peer_node_id` to handshake with us in the direct form (which needs
    /// the caller's node_id in advance); returns its address. Routed
    /// handshakes need no `accept`.
    ///
    /// # Errors
    /// [`MeshError::Timeout`], [`MeshError::ShuttingDown`].
    pub fn accept(
        &self,
        peer_node_id: u64,
        timeout: Option<Duration>,
    ) -> Result<SocketAddr, MeshError> {
        self.inner.accept(peer_node_id, timeout, None)
    }

    /// [`accept`](Self::accept) that also gives up with
    /// [`MeshError::Cancelled`] as soon as `cancel` is cancelled.
    ///
    /// # Errors
    /// As [`accept`](Self::accept), plus [`MeshError::Cancelled`].
    pub fn accept_cancellable(
        &self,
        peer_node_id: u64,
        timeout: Option<Duration>,
        cancel: Option<&CancelToken>,
    ) -> Result<SocketAddr, MeshError> {
        self.inner.accept(peer_node_id, timeout, cancel)
    }

    /// Opens (or reconfigures, before its first send) a stream to `peer`.
    /// `window` None = the configured default; 0 = unlimited.
    ///
    /// # Errors
    /// [`MeshError::UnknownPeer`], [`MeshError::ShuttingDown`].
    pub fn open_stream(
        &self,
        peer: u64,
        stream_id: u64,
        reliable: bool,
        window: Option<u64>,
    ) -> Result<(), MeshError> {
        self.open_stream_of(peer, stream_id, reliable, window, 0)
    }

    /// [`open_stream`](Self::open_stream) for a causal stream: its packets
    /// carry subprotocol 0x0400 (WIRE.md §9), so each event is read as
    /// CausalLink frames (`u32 LE length ‖ link ‖ payload`, STORAGE.md
    /// §14; build them with [`encode_frame`](crate::cortex::causal::encode_frame)).
    /// A Net receiver checks the frames of every chain it follows as they
    /// arrive ([`follow_chain`](Self::follow_chain)), in stream order on a
    /// reliable stream, and proves them against this node
    /// (`docs/continuity.md`); the application receives the events as
    /// usual, as it does from v0.11, which delivers them as plain events.
    /// Opening an existing stream as causal (or as plain with
    /// `open_stream`) applies to the packets written from then on.
    ///
    /// # Errors
    /// As [`open_stream`](Self::open_stream).
    pub fn open_causal_stream(
        &self,
        peer: u64,
        stream_id: u64,
        reliable: bool,
        window: Option<u64>,
    ) -> Result<(), MeshError> {
        self.open_stream_of(peer, stream_id, reliable, window, ids::CAUSAL)
    }

    fn open_stream_of(
        &self,
        peer: u64,
        stream_id: u64,
        reliable: bool,
        window: Option<u64>,
        subprotocol: u16,
    ) -> Result<(), MeshError> {
        self.inner.check_running()?;
        if peer == self.inner.node_id {
            return Ok(());
        }
        let p = self.inner.peer(peer)?;
        p.streams()
            .open(stream_id, reliable, window, Instant::now())
            .tx
            .subprotocol = subprotocol;
        Ok(())
    }

    /// Closes a stream (its id ignores grants for 2 s); a `send_blocking`
    /// waiting on it returns [`MeshError::StreamClosed`].
    pub fn close_stream(&self, peer: u64, stream_id: u64) -> Result<(), MeshError> {
        let p = self.inner.peer(peer)?;
        p.streams().close(stream_id, Instant::now());
        p.credit_granted.notify_all();
        Ok(())
    }

    /// Sends `events` on a stream, now or not at all: fails with
    /// [`MeshError::Backpressure`] when the window cannot take the whole
    /// batch. Events are framed into as few packets as fit.
    ///
    /// # Errors
    /// As above, plus [`MeshError::UnknownPeer`], [`MeshError::EventTooLarge`],
    /// [`MeshError::BatchExceedsWindow`], [`MeshError::ShuttingDown`].
    pub fn send<E: AsRef<[u8]>>(
        &self,
        peer: u64,
        stream_id: u64,
        events: &[E],
    ) -> Result<(), MeshError> {
        self.inner.send_events(peer, stream_id, events, None, None)
    }

    /// Sends `events`, waiting for credit packet by packet until
    /// `deadline` (forever with `None`).
    ///
    /// # Errors
    /// [`MeshError::Timeout`] (the packets before the one that timed out
    /// were sent), and as [`MeshNode::send`].
    pub fn send_blocking<E: AsRef<[u8]>>(
        &self,
        peer: u64,
        stream_id: u64,
        events: &[E],
        deadline: Option<Instant>,
    ) -> Result<(), MeshError> {
        self.send_blocking_cancellable(peer, stream_id, events, deadline, None)
    }

    /// [`send_blocking`](Self::send_blocking) that also gives up with
    /// [`MeshError::Cancelled`] as soon as `cancel` is cancelled (the packets
    /// before the one it waited for were sent).
    ///
    /// # Errors
    /// As [`send_blocking`](Self::send_blocking), plus [`MeshError::Cancelled`].
    pub fn send_blocking_cancellable<E: AsRef<[u8]>>(
        &self,
        peer: u64,
        stream_id: u64,
        events: &[E],
        deadline: Option<Instant>,
        cancel: Option<&CancelToken>,
    ) -> Result<(), MeshError> {
        self.inner
            .send_events(peer, stream_id, events, Some(deadline), cancel)
    }

    /// Waits up to `timeout` (forever with `None`) for received events;
    /// returns up to `max`, round-robin across the inbound shards.
    ///
    /// # Errors
    /// [`MeshError::Timeout`], [`MeshError::ShuttingDown`].
    pub fn recv(
        &self,
        max: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<InboundEvent>, MeshError> {
        self.recv_cancellable(max, timeout, None)
    }

    /// [`recv`](Self::recv) that also gives up with [`MeshError::Cancelled`]
    /// (taking nothing) as soon as `cancel` is cancelled.
    ///
    /// # Errors
    /// As [`recv`](Self::recv), plus [`MeshError::Cancelled`].
    pub fn recv_cancellable(
        &self,
        max: usize,
        timeout: Option<Duration>,
        cancel: Option<&CancelToken>,
    ) -> Result<Vec<InboundEvent>, MeshError> {
        let mut consumed = Vec::new();
        let got = self
            .inner
            .inbound
            .recv_cancellable(max, timeout, cancel, &mut consumed);
        self.inner.credit_consumed(&consumed);
        match got {
            Recv::Events(events) => Ok(events),
            Recv::Timeout => Err(MeshError::Timeout),
            Recv::Closed => Err(MeshError::ShuttingDown),
            Recv::Cancelled => Err(MeshError::Cancelled),
        }
    }

    /// One received event (see [`MeshNode::recv`]).
    ///
    /// # Errors
    /// As [`MeshNode::recv`].
    pub fn recv_next(&self, timeout: Option<Duration>) -> Result<InboundEvent, MeshError> {
        self.recv(1, timeout).map(|mut v| v.remove(0))
    }

    /// The connected peers.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.inner.peer_infos()
    }

    /// The peers as JSON (an array of objects; ids as exact integers).
    pub fn peers_json(&self) -> String {
        let peers: Vec<_> = self
            .peers()
            .into_iter()
            .map(|p| {
                json!({
                    "node_id": p.node_id,
                    "addr": p.addr.to_string(),
                    "session_id": p.session_id,
                    "health": p.health,
                    "identity": p.identity,
                    "entity": p.entity.map(|e| e.to_hex()),
                    "streams": p.streams,
                    "idle_ms": p.idle_ms,
                    "cipher": p.cipher,
                    "dropped_unreported": p.dropped_unreported,
                    "relay": p.relay,
                    "max_datagram": p.max_datagram,
                    "subnet": p.subnet.map(|s| s.to_string()),
                })
            })
            .collect();
        serde_json::Value::Array(peers).to_string()
    }

    /// Counters as JSON.
    pub fn stats_json(&self) -> String {
        self.inner.stats_json().to_string()
    }

    /// Stops everything: blocked `connect`, `accept`, `send_blocking` and
    /// `recv` calls return [`MeshError::ShuttingDown`]; the tasks end; the
    /// socket closes when the last reference goes. Idempotent.
    pub fn shutdown(&self) {
        self.inner.shutdown();
        self.inner.continuity.wake_all();
        self.inner.pump.stop();
        // The mapping is deleted at the gateway (bounded wait).
        self.inner.stop_traversal_threads();
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        if tasks.is_empty() {
            return;
        }
        // Abort and wait: the receive task owns the socket's reactor
        // registration (a clone of the socket), so when this returns the
        // port is released once the last `MeshNode` reference goes.
        for task in &tasks {
            task.abort();
        }
        crate::runtime::block_on(&self.inner.runtime, async move {
            let _ = tokio::time::timeout(TASK_STOP_TIMEOUT, async {
                for task in tasks {
                    let _ = task.await;
                }
            })
            .await;
        });
    }
}

impl Drop for MeshNode {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Inner {
    /// Queues a packet for `recv`, counting its events as received first
    /// (so a reader never sees events the counters do not); false when the
    /// shard refused it.
    fn deliver(&self, packet: super::inbound::InboundPacket, force: bool) -> bool {
        let n = packet.frames.len() as u64;
        self.stats.events_received.fetch_add(n, Ordering::Relaxed);
        let queued = self.inbound.push(packet, force);
        if !queued {
            self.stats.events_received.fetch_sub(n, Ordering::Relaxed);
        }
        queued
    }

    /// Credits what the application took (`recv`): a stream's grant goes
    /// out once a quarter of the sender's window (as observed, at most a
    /// quarter of ours) was taken since the last one (the reliability tick
    /// sends smaller remainders within 5 ms).
    fn credit_consumed(&self, consumed: &[super::inbound::Consumed]) {
        for c in consumed {
            let Some(peer) = self.peers.get(&c.peer).map(|p| p.value().clone()) else {
                continue;
            };
            self.credit_taken(&peer, c.stream_id, c.credit);
        }
    }

    /// Credits `credit` bytes of `stream_id` taken by their consumer (the
    /// application, or a subprotocol handler): the grant, and a wider
    /// window for a Net sender held back by credit.
    pub(super) fn credit_taken(&self, peer: &Arc<Peer>, stream_id: u64, credit: u64) {
        let grows = peer.binding().peer_has(FLAG_WINDOW_GROWTH)
            && self.hello_flags() & FLAG_WINDOW_GROWTH != 0;
        let (grant, widened) = {
            let mut streams = peer.streams();
            let Some(stream) = streams.get_mut(stream_id) else {
                return;
            };
            stream.rx.on_consumed(credit);
            // A Net sender held back by credit while the application
            // keeps up: offer it a wider window (docs/mesh.md, *Window
            // growth*), sent with a grant now.
            let widened = grows
                && stream
                    .rx
                    .grow_offer(
                        stream.tx.credit.window(),
                        self.config.max_window,
                        &self.window_pool,
                    )
                    .is_some();
            let threshold = if widened {
                1
            } else {
                stream.rx.grant_threshold(self.grant_threshold)
            };
            let grant = stream.rx.take_grant(threshold);
            (grant.map(|total| (total, stream.rx.offer())), widened)
        };
        if widened {
            bump(&self.stats.windows_offered);
        }
        if let Some((total, offer)) = grant {
            self.send_grant(peer, stream_id, total, offer);
        }
    }

    fn check_running(&self) -> Result<(), MeshError> {
        if self.shutdown.load(Ordering::SeqCst) {
            return Err(MeshError::ShuttingDown);
        }
        Ok(())
    }

    fn is_shut_down(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// Seconds since the UNIX epoch as of the last reliability tick.
    fn unix_secs(&self) -> u64 {
        self.unix_secs.load(Ordering::Relaxed)
    }

    fn refresh_unix_secs(&self) {
        self.unix_secs.store(unix_secs_now(), Ordering::Relaxed);
    }

    fn peer(&self, node_id: u64) -> Result<Arc<Peer>, MeshError> {
        self.check_running()?;
        self.peers
            .get(&node_id)
            .map(|e| e.value().clone())
            .ok_or(MeshError::UnknownPeer(node_id))
    }

    fn stream_limits(&self) -> StreamLimits {
        StreamLimits {
            max_streams: self.config.max_streams,
            idle_timeout: self.config.stream_idle_timeout,
            window: self.config.window,
        }
    }

    /// The router, whatever a panicking holder left behind.
    fn router(&self) -> std::sync::MutexGuard<'_, Router> {
        self.router.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves a peer to a new address (roaming, or a direct path after a
    /// relayed one) and refreshes the address index.
    fn refresh_addr(&self, peer: &Peer, addr: SocketAddr) {
        if let Some(old) = peer.set_addr(addr) {
            self.addr_index.remove_if(&old, |_, v| *v == peer.node_id);
            self.path_changed(peer);
        }
        self.addr_index.insert(addr, peer.node_id);
    }

    /// `connect` through the direct peer `relay`.
    fn connect_through(
        &self,
        relay: u64,
        peer_static: &[u8; 32],
        peer_node_id: u64,
        cancel: Option<&CancelToken>,
    ) -> Result<(), MeshError> {
        self.check_running()?;
        let addr = self
            .peers
            .get(&relay)
            .filter(|p| p.relay().is_none() && relay != peer_node_id)
            .map(|p| p.addr())
            .ok_or(MeshError::NoRoute(peer_node_id))?;
        self.connect(addr, peer_static, peer_node_id, Some(relay), cancel)
    }

    /// A handshake with `peer_node_id` at `addr`, or through the direct
    /// peer `relay` at `addr` (always the routed form then).
    fn connect(
        &self,
        addr: SocketAddr,
        peer_static: &[u8; 32],
        peer_node_id: u64,
        relay: Option<u64>,
        cancel: Option<&CancelToken>,
    ) -> Result<(), MeshError> {
        self.check_running()?;
        let cancelled = || cancel.is_some_and(CancelToken::is_cancelled);
        if peer_node_id == self.node_id {
            return Err(MeshError::SelfConnect);
        }
        if let Some(existing) = self.peers.get(&peer_node_id).map(|e| e.value().clone())
            && existing.is_live(Instant::now(), self.config.session_timeout)
        {
            return Err(MeshError::SessionExists(peer_node_id));
        }
        let form = match (relay, self.config.connect_form) {
            (Some(_), _) | (None, ConnectForm::Routed) => HandshakeForm::Routed,
            (None, ConnectForm::Direct) => HandshakeForm::Direct,
        };
        let key = match form {
            HandshakeForm::Direct => PendingKey::Addr(addr),
            HandshakeForm::Routed => PendingKey::Rid(routing_id(peer_node_id)),
        };
        let attempts = self.config.handshake_retries.max(1);
        for attempt in 0..attempts {
            let initiator = Initiator::new(
                form,
                &self.config.psk,
                self.node_id,
                peer_node_id,
                peer_static,
            )?;
            let msg1 = initiator.msg1().to_vec();
            let pending = Arc::new(PendingConnect {
                initiator: Mutex::new(Some(initiator)),
                peer_node_id,
                addr,
                relay,
                peer_static: *peer_static,
                waiter: Waiter::new(),
            });
            match self.pending_connects.entry(key) {
                Entry::Occupied(_) => return Err(MeshError::HandshakeInProgress(peer_node_id)),
                Entry::Vacant(e) => {
                    e.insert(pending.clone());
                }
            }
            bump(&self.stats.handshakes_initiated);
            let sent_at = Instant::now();
            self.transmit(addr, vec![msg1], false);
            let deadline = Instant::now() + self.config.handshake_timeout;
            let outcome = {
                let _wake = cancel.map(|token| {
                    let pending = pending.clone();
                    token.on_cancel(move || pending.waiter.poke())
                });
                pending.waiter.wait(deadline, &self.shutdown, cancel)
            };
            self.pending_connects
                .remove_if(&key, |_, v| Arc::ptr_eq(v, &pending));
            if outcome.is_none() && cancelled() {
                return Err(MeshError::Cancelled);
            }
            match outcome {
                Some(Ok(())) => {
                    let peer = self.peer(peer_node_id)?;
                    let rtt = sent_at.elapsed();
                    return self.settle_binding(&peer, rtt, &|| self.is_shut_down() || cancelled());
                }
                Some(Err(_)) if self.is_shut_down() => return Err(MeshError::ShuttingDown),
                Some(Err(message)) if message == "exists" => {
                    return Err(MeshError::SessionExists(peer_node_id));
                }
                Some(Err(_)) => {}
                None => {}
            }
            self.check_running()?;
            self.pause(Duration::from_millis(100 * u64::from(attempt + 1)), cancel)?;
        }
        bump(&self.stats.handshakes_failed);
        Err(MeshError::HandshakeTimeout {
            peer: peer_node_id,
            attempts,
        })
    }

    /// Waits `length` between handshake attempts, giving up early on
    /// shutdown or cancellation.
    fn pause(&self, length: Duration, cancel: Option<&CancelToken>) -> Result<(), MeshError> {
        let end = Instant::now() + length;
        loop {
            self.check_running()?;
            if cancel.is_some_and(CancelToken::is_cancelled) {
                return Err(MeshError::Cancelled);
            }
            let now = Instant::now();
            if now >= end {
                return Ok(());
            }
            std::thread::sleep((end - now).min(Duration::from_millis(10)));
        }
    }

    fn accept(
        &self,
        peer_node_id: u64,
        timeout: Option<Duration>,
        cancel: Option<&CancelToken>,
    ) -> Result<SocketAddr, MeshError> {
        self.check_running()?;
        let pending = Arc::new(PendingAccept {
            node_id: peer_node_id,
            waiter: Waiter::new(),
        });
        // SeqCst, as v0.11's fix: the receive task's view of pending accepts
        // and `started` is one total order with ours.
        self.accept_in_flight.fetch_add(1, Ordering::SeqCst);
        self.pending_accepts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(pending.clone());
        let deadline = timeout
            .and_then(|t| Instant::now().checked_add(t))
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365));
        let outcome = {
            let _wake = cancel.map(|token| {
                let pending = pending.clone();
                token.on_cancel(move || pending.waiter.poke())
            });
            pending.waiter.wait(deadline, &self.shutdown, cancel)
        };
        self.pending_accepts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|p| !Arc::ptr_eq(p, &pending));
        self.accept_in_flight.fetch_sub(1, Ordering::SeqCst);
        match outcome {
            Some(Ok(addr)) => Ok(addr),
            Some(Err(_)) if self.is_shut_down() => Err(MeshError::ShuttingDown),
            Some(Err(_)) => Err(MeshError::SessionExists(peer_node_id)),
            None if self.is_shut_down() => Err(MeshError::ShuttingDown),
            None if cancel.is_some_and(CancelToken::is_cancelled) => Err(MeshError::Cancelled),
            None => Err(MeshError::Timeout),
        }
    }

    /// Takes a handshake token (a flood of msg1 beyond the configured rate
    /// is dropped before any Diffie-Hellman work).
    fn take_handshake_token(&self) -> bool {
        let mut t = self
            .handshake_tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let cap = self.config.max_pending_handshakes as f64;
        let refill = now.saturating_duration_since(t.1).as_secs_f64() * cap;
        t.0 = (t.0 + refill).min(cap);
        t.1 = now;
        if t.0 >= 1.0 {
            t.0 -= 1.0;
            true
        } else {
            false
        }
    }

    fn shutdown(&self) {
        if self.shutdown.swap(true, Ordering::SeqCst) {
            return;
        }
        self.inbound.close();
        self.channels.wake_all();
        for entry in self.pending_connects.iter() {
            entry.value().waiter.complete(Err("shutdown".into()));
        }
        for pending in self
            .pending_accepts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            pending.waiter.complete(Err("shutdown".into()));
        }
        let peers: Vec<Arc<Peer>> = self.peers.iter().map(|e| e.value().clone()).collect();
        for peer in peers {
            peer.binding_changed.notify_all();
            peer.credit_granted.notify_all();
        }
    }

    fn peer_infos(&self) -> Vec<PeerInfo> {
        let now = Instant::now();
        let peers: Vec<Arc<Peer>> = self.peers.iter().map(|e| e.value().clone()).collect();
        let subnets: Vec<_> = {
            let plane = self.capabilities.plane();
            peers
                .iter()
                .map(|p| self.peer_subnet(&plane, p.node_id))
                .collect()
        };
        let mut out: Vec<PeerInfo> = peers
            .iter()
            .zip(subnets)
            .map(|(p, subnet)| {
                let binding = p.binding().clone();
                PeerInfo {
                    node_id: p.node_id,
                    addr: p.addr(),
                    session_id: p.session.id(),
                    health: p.health(now).as_str(),
                    identity: binding.describe(),
                    entity: binding.peer_entity,
                    streams: p.streams().len(),
                    idle_ms: now.saturating_duration_since(p.last_activity()).as_millis() as u64,
                    cipher: p.session.tx_cipher().name(),
                    dropped_unreported: self.inbound.unreported_drops(p.node_id),
                    // The relay in use now: the route's next hop (the
                    // session's first relay may have died since).
                    relay: p.relay().map(|first| {
                        self.router()
                            .route_for(p.node_id, now)
                            .map_or(first, |route| route.next_hop)
                    }),
                    max_datagram: p.path().datagram(),
                    subnet,
                }
            })
            .collect();
        out.sort_by_key(|p| p.node_id);
        out
    }

    fn stats_json(&self) -> serde_json::Value {
        let s = &self.stats;
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = json!({
            "node_id": self.node_id,
            "peers": self.peers.len(),
            "inbound_queued": self.inbound.len(),
            "datagrams_sent": g(&s.datagrams_sent),
            "datagrams_received": g(&s.datagrams_received),
            "bytes_sent": g(&s.bytes_sent),
            "bytes_received": g(&s.bytes_received),
            "events_sent": g(&s.events_sent),
            "events_received": g(&s.events_received),
            "handshakes_initiated": g(&s.handshakes_initiated),
            "handshakes_completed": g(&s.handshakes_completed),
            "handshakes_refused": g(&s.handshakes_refused),
            "handshakes_failed": g(&s.handshakes_failed),
            "handshakes_throttled": g(&s.handshakes_throttled),
            "auth_failures": g(&s.auth_failures),
            "replays": g(&s.replays),
            "malformed": g(&s.malformed),
            "unknown_session": g(&s.unknown_session),
            "oversized": g(&s.oversized),
            "not_for_us": g(&s.not_for_us),
            "inbound_dropped": g(&s.inbound_dropped),
            "retransmits": g(&s.retransmits),
            "grants_sent": g(&s.grants_sent),
            "acks_sent": g(&s.acks_sent),
            "heartbeats_sent": g(&s.heartbeats_sent),
            "heartbeats_received": g(&s.heartbeats_received),
            "session_scans": g(&s.session_scans),
            "identity_refused": g(&s.identity_refused),
            "counter_jumps": g(&s.counter_jumps),
            "loopback_dropped": g(&s.loopback_dropped),
            "send_dropped": g(&s.send_dropped),
            "evictions": g(&s.evictions),
            "packets_written": g(&s.packets_written),
            "writer_handoffs": g(&s.writer_handoffs),
            "gso_sends": g(&s.gso_sends),
            "gso_fallbacks": g(&s.gso_fallbacks),
            "gro_datagrams": g(&s.gro_datagrams),
            "capabilities_accepted": g(&s.capabilities_accepted),
            "capabilities_dropped": g(&s.capabilities_dropped),
            "gso": u64::from(self.offload.gso()),
            "gro": u64::from(self.offload.gro),
        });
        // Session replacement (session_install.rs), outside the macro's
        // recursion budget.
        out["session_candidates"] = g(&s.session_candidates).into();
        // Stamped channel packets refused at a hop (`subnets.rs`).
        out["subnet_blocked"] = g(&s.subnet_blocked).into();
        out["causal_malformed"] = g(&s.causal_malformed).into();
        out["sessions_replaced"] = g(&s.sessions_replaced).into();
        out["candidates_dropped"] = g(&s.candidates_dropped).into();
        out["candidates_held"] = (self.candidates.len() as u64).into();
        out["reflex_probes"] = g(&s.reflex_probes).into();
        out["reflex_answers"] = g(&s.reflex_answers).into();
        out["reflex_answered"] = g(&s.reflex_answered).into();
        out["paths_upgraded"] = g(&s.paths_upgraded).into();
        out["windows_offered"] = g(&s.windows_offered).into();
        out["windows_widened"] = g(&s.windows_widened).into();
        out["window_budget_used"] = self.window_pool.used().into();
        out["write_calls"] = g(&s.write_calls).into();
        out["path_probes_sent"] = g(&s.path_probes_sent).into();
        out["paths_enlarged"] = g(&s.paths_enlarged).into();
        out["path_probes_failed"] = g(&s.path_probes_failed).into();
        out
    }
}

/// Seconds since the UNIX epoch now (0 before it).
fn unix_secs_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The first pingwave sequence number: milliseconds since the UNIX epoch,
/// so a restarted node's pingwaves are newer than its previous life's and
/// its peers relay them again at once (v0.11 restarts at 1).
fn first_pingwave_seq() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_millis() as u64)
}
