//! One connected peer: its session, address, failure detector, identity
//! binding state and streams.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::crypto::Role;
use super::failure::{FailureDetector, Health};
use super::pathsize::PathSize;
use super::session::Session;
use super::stream::StreamTable;
use crate::identity::EntityId;
use crate::wire::MAX_PAYLOAD_SIZE;

/// What we know of the peer's identity (see `hello.rs`).
#[derive(Debug, Clone)]
pub(crate) struct Binding {
    /// The entity the peer proved (a verified hello), if any.
    pub peer_entity: Option<EntityId>,
    /// The peer acknowledged our hello (it knows we are a Net node).
    pub acked: bool,
    /// No hello within the timeout: a v0.11 peer.
    pub legacy: bool,
    /// The `FLAG_*` bits of the peer's verified hello (0 before it).
    pub peer_flags: u8,
    /// The peer's X25519 static public key: the one we dialed (proved by
    /// the handshake), or the one its verified hello carried.
    pub peer_static: Option<[u8; 32]>,
    /// When the binding started (the session's creation).
    pub since: Instant,
    /// When we last sent our hello, and how many times.
    pub last_sent: Option<Instant>,
    pub sends: u32,
}

impl Binding {
    fn new(now: Instant) -> Self {
        Self {
            peer_entity: None,
            acked: false,
            legacy: false,
            peer_flags: 0,
            peer_static: None,
            since: now,
            last_sent: None,
            sends: 0,
        }
    }

    /// Net reliable streams may be used: both sides know each other.
    pub fn is_net(&self) -> bool {
        self.peer_entity.is_some() && self.acked
    }

    /// Whether the peer's verified hello set `flag` (a Net capability).
    pub fn peer_has(&self, flag: u8) -> bool {
        self.peer_entity.is_some() && self.peer_flags & flag != 0
    }

    /// The mode of new reliable streams is known.
    pub fn resolved(&self) -> bool {
        self.is_net() || self.legacy
    }

    /// "net", "legacy" or "pending", for the peers JSON.
    pub fn describe(&self) -> &'static str {
        if self.is_net() {
            "net"
        } else if self.legacy {
            "legacy"
        } else {
            "pending"
        }
    }
}

/// A connected peer.
pub(crate) struct Peer {
    pub node_id: u64,
    /// For a direct peer, its address; for a relayed one, the address of
    /// the relay its session came through.
    addr: Mutex<SocketAddr>,
    /// The relay (node_id) of a relayed session: every packet to it
    /// travels behind a routing header, to the route's next hop. A relayed
    /// session may move to a direct path (`node/traversal.rs`).
    relay: Mutex<Option<u64>>,
    pub session: Session,
    epoch: Instant,
    last_activity_ms: AtomicU64,
    detector: Mutex<FailureDetector>,
    binding: Mutex<Binding>,
    pub binding_changed: Condvar,
    streams: Mutex<StreamTable>,
    pub credit_granted: Condvar,
    /// Sequence of our reliability messages (stream 0x1A00).
    pub rel_seq: AtomicU64,
    /// Our signed hellos for this session (flags byte, encoded event), at
    /// most two (with and without the ack flag): re-sends reuse them
    /// instead of signing again.
    hellos: Mutex<Vec<(u8, Vec<u8>)>>,
    /// The heartbeat round reported it Failed (and not yet recovered):
    /// makes the Failed and recovery hooks run once per transition.
    pub failed_reported: AtomicBool,
    /// A candidate session (`node/session_install.rs`): held aside until
    /// its hello proves the entity pinned for its node_id.
    candidate: AtomicBool,
    /// The datagram size the path takes and its probing (`pathsize.rs`).
    path: Mutex<PathSize>,
    /// `path`'s payload limit, read by every send without the lock.
    max_payload: AtomicUsize,
    /// The reliability tick's schedule for this peer (`node/tasks.rs`):
    /// set by every holder of the binding, stream or path lock (state the
    /// tick examines may have changed), cleared by the tick before it
    /// looks. A peer with it clear is visited only at `tick_at_ms`.
    tick_wanted: AtomicBool,
    /// Milliseconds since `epoch` at which the tick must look again even
    /// unasked (a hello re-send, a path probe); `u64::MAX`: never.
    tick_at_ms: AtomicU64,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("node_id", &format_args!("{:#018x}", self.node_id))
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// Stream-table limits a peer is created with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamLimits {
    pub max_streams: usize,
    pub idle_timeout: Duration,
    pub window: u64,
}

impl Peer {
    pub fn new(
        node_id: u64,
        addr: SocketAddr,
        session: Session,
        session_timeout: Duration,
        limits: StreamLimits,
        epoch: Instant,
    ) -> Self {
        let now = Instant::now();
        let peer = Self {
            node_id,
            addr: Mutex::new(addr),
            relay: Mutex::new(None),
            session,
            epoch,
            last_activity_ms: AtomicU64::new(0),
            detector: Mutex::new(FailureDetector::new(now, session_timeout)),
            binding: Mutex::new(Binding::new(now)),
            binding_changed: Condvar::new(),
            streams: Mutex::new(StreamTable::new(
                limits.max_streams,
                limits.idle_timeout,
                limits.window,
            )),
            credit_granted: Condvar::new(),
            rel_seq: AtomicU64::new(0),
            hellos: Mutex::new(Vec::new()),
            failed_reported: AtomicBool::new(false),
            candidate: AtomicBool::new(false),
            path: Mutex::new(PathSize::new()),
            max_payload: AtomicUsize::new(MAX_PAYLOAD_SIZE),
            tick_wanted: AtomicBool::new(true),
            tick_at_ms: AtomicU64::new(0),
        };
        peer.touch(now);
        peer
    }

    /// Our encoded hello with `flags` for this session: the cached one, or
    /// `sign()`'s, cached when it succeeds. A hello binds the session's
    /// handshake hash, so one signature serves every re-send.
    pub fn hello_event<E>(
        &self,
        flags: u8,
        sign: impl FnOnce() -> Result<Vec<u8>, E>,
    ) -> Result<Vec<u8>, E> {
        let mut cached = self.hellos.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, bytes)) = cached.iter().find(|(f, _)| *f == flags) {
            return Ok(bytes.clone());
        }
        let bytes = sign()?;
        if cached.len() >= 2 {
            cached.remove(0);
        }
        cached.push((flags, bytes.clone()));
        Ok(bytes)
    }

    /// The relay of a relayed session (None: direct).
    pub fn relay(&self) -> Option<u64> {
        *self.relay.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the relay (at install) or clears it (the session moved to a
    /// direct path).
    pub fn set_relay(&self, relay: Option<u64>) {
        *self.relay.lock().unwrap_or_else(|e| e.into_inner()) = relay;
    }

    /// The path's datagram size and its probing.
    pub fn path(&self) -> MutexGuard<'_, PathSize> {
        let guard = self.path.lock().unwrap_or_else(|e| e.into_inner());
        self.want_tick();
        guard
    }

    /// The largest framed payload of a packet to this peer now (8112, or
    /// more once a large-datagram probe went through).
    pub fn max_payload(&self) -> usize {
        self.max_payload.load(Ordering::Relaxed)
    }

    /// Publishes the path's payload limit to the senders.
    pub fn set_max_payload(&self, max: usize) {
        self.max_payload.store(max, Ordering::Relaxed);
    }

    pub fn addr(&self) -> SocketAddr {
        *self.addr.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the address; returns the old one when it changed.
    pub fn set_addr(&self, addr: SocketAddr) -> Option<SocketAddr> {
        let mut a = self.addr.lock().unwrap_or_else(|e| e.into_inner());
        (*a != addr).then(|| std::mem::replace(&mut *a, addr))
    }

    pub fn role(&self) -> Role {
        self.session.role()
    }

    /// Records authenticated activity.
    pub fn touch(&self, now: Instant) {
        let ms = now.saturating_duration_since(self.epoch).as_millis() as u64;
        self.last_activity_ms.fetch_max(ms, Ordering::Relaxed);
    }

    pub fn last_activity(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last_activity_ms.load(Ordering::Relaxed))
    }

    /// Whether the session is inside its idle window (re-key refused).
    pub fn is_live(&self, now: Instant, session_timeout: Duration) -> bool {
        now.saturating_duration_since(self.last_activity()) <= session_timeout
    }

    pub fn heartbeat(&self, now: Instant) {
        self.detector
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .heartbeat(now);
    }

    pub fn health(&self, now: Instant) -> Health {
        self.detector
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .health(now)
    }

    pub fn should_evict(&self, now: Instant) -> bool {
        self.detector
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .should_evict(now, self.last_activity())
    }

    pub fn binding(&self) -> MutexGuard<'_, Binding> {
        let guard = self.binding.lock().unwrap_or_else(|e| e.into_inner());
        self.want_tick();
        guard
    }

    /// Whether this is a candidate session, not (yet) the node's session.
    pub fn is_candidate(&self) -> bool {
        self.candidate.load(Ordering::SeqCst)
    }

    pub fn set_candidate(&self, on: bool) {
        self.candidate.store(on, Ordering::SeqCst);
    }

    /// Waits until the binding is resolved or `deadline` passes.
    pub fn wait_resolved(&self, deadline: Instant, stop: &dyn Fn() -> bool) -> Binding {
        self.wait_binding(deadline, stop, &Binding::resolved)
    }

    /// Waits until `done` holds for the binding or `deadline` passes.
    pub fn wait_binding(
        &self,
        deadline: Instant,
        stop: &dyn Fn() -> bool,
        done: &dyn Fn(&Binding) -> bool,
    ) -> Binding {
        let mut b = self.binding();
        loop {
            if done(&b) || stop() {
                return b.clone();
            }
            let now = Instant::now();
            if now >= deadline {
                return b.clone();
            }
            let wait = (deadline - now).min(Duration::from_millis(50));
            b = self
                .binding_changed
                .wait_timeout(b, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    pub fn streams(&self) -> MutexGuard<'_, StreamTable> {
        let guard = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        self.want_tick();
        guard
    }

    /// Asks the reliability tick to look at this peer next time. Called
    /// with one of the locks the tick examines held (the lock accessors
    /// above do; so must a holder that got its guard back from a condvar
    /// wait): the tick clears the flag *before* taking those locks, so a
    /// change made under them either sets the flag after the clear or is
    /// seen by the tick's look.
    pub fn want_tick(&self) {
        // A load first: the hot path finds it set and leaves the cache
        // line shared.
        if !self.tick_wanted.load(Ordering::Relaxed) {
            self.tick_wanted.store(true, Ordering::Release);
        }
    }

    /// Whether the tick should look at this peer at `now_ms` (milliseconds
    /// since the node epoch, read once per round); clears the request (see
    /// [`want_tick`](Self::want_tick)). A peer not asked for costs two
    /// loads and no write to its cache line (a request missed by the
    /// relaxed load stays set for the next round).
    pub fn tick_due(&self, now_ms: u64) -> bool {
        (self.tick_wanted.load(Ordering::Relaxed) && self.tick_wanted.swap(false, Ordering::AcqRel))
            || now_ms >= self.tick_at_ms.load(Ordering::Acquire)
    }

    /// [`tick_due`](Self::tick_due) without clearing the request.
    #[cfg(feature = "test-util")]
    pub fn tick_scheduled(&self, now: Instant) -> bool {
        self.tick_wanted.load(Ordering::Acquire)
            || self.millis_since_epoch(now) >= self.tick_at_ms.load(Ordering::Acquire)
    }

    /// After the tick's look: `busy` (some stream still has timed work)
    /// keeps the peer on every tick; otherwise the tick returns at `next`
    /// (a hello re-send, a path probe) or when asked.
    pub fn tick_done(&self, busy: bool, next: Option<Instant>) {
        if busy {
            self.want_tick();
        }
        let at = next.map_or(u64::MAX, |t| self.millis_since_epoch(t));
        self.tick_at_ms.store(at, Ordering::Release);
    }

    /// The tick's examination locks, without asking for another look.
    pub fn streams_for_tick(&self) -> MutexGuard<'_, StreamTable> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn binding_for_tick(&self) -> MutexGuard<'_, Binding> {
        self.binding.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn path_for_tick(&self) -> MutexGuard<'_, PathSize> {
        self.path.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn millis_since_epoch(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_millis() as u64
    }
}
