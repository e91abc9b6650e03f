//! `MeshConfig`: everything a node is configured with, and its JSON form
//! (the `config_json` of `net_mesh_new`). Unknown keys and out-of-range
//! values are rejected with a message naming the key.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use zeroize::Zeroizing;

use super::capability::CapabilityConfig;
use super::capability::plane::DEFAULT_GC_INTERVAL;
use super::channels::{ChannelsSettings, SubnetPolicy, SubnetRule, SubnetSettings};
use super::credit::DEFAULT_WINDOW;

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mesh configuration: {0}")]
pub struct ConfigError(pub String);

/// How `connect` reaches a peer (WIRE.md §3.4–3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectForm {
    /// Behind a routing header: accepted by any started node, ours or v0.11.
    #[default]
    Routed,
    /// A bare handshake: for a v0.11 node inside `accept`, or one of ours
    /// that `accept`s the caller's node_id.
    Direct,
}

/// A node's configuration. `Default` is v0.11's defaults on an ephemeral
/// loopback port with a random identity and a random PSK (set `psk` for
/// nodes that must talk to each other).
#[derive(Clone)]
pub struct MeshConfig {
    /// Where the UDP socket binds.
    pub bind: SocketAddr,
    /// The mesh-wide pre-shared key.
    pub psk: Zeroizing<[u8; 32]>,
    /// The node's ed25519 identity seed (random when `None`); the node_id
    /// derives from it.
    pub identity_seed: Option<Zeroizing<[u8; 32]>>,
    /// The static X25519 secret of the Noise responder (random when `None`;
    /// v0.11 makes it random per node).
    pub static_secret: Option<Zeroizing<[u8; 32]>>,
    /// Heartbeat (and maintenance tick) period.
    pub heartbeat_interval: Duration,
    /// The failure-detector unit T (Suspected at 2 T, Failed at 3 T).
    pub session_timeout: Duration,
    /// One handshake attempt's timeout.
    pub handshake_timeout: Duration,
    /// Handshake attempts before `connect` gives up.
    pub handshake_retries: u32,
    /// Inbound event shards (`stream_id mod num_shards`).
    pub num_shards: usize,
    /// Events each inbound shard holds before backpressure.
    pub shard_capacity: usize,
    /// Default per-stream send window in bytes (0 = unlimited).
    pub window: u64,
    /// Between Net nodes, how far a default window may widen while its
    /// sender is held back by credit and the reader keeps up (bytes; at
    /// most `window` turns growth off). `docs/mesh.md`, *Window growth*.
    pub max_window: u64,
    /// Receive-window bytes beyond the default that all streams of the node
    /// may hold together once widened.
    pub window_budget: u64,
    /// Between Net nodes, datagrams of up to 65 000 bytes where the route
    /// carries them unfragmented and a probe gets through
    /// (`mesh::pathsize`); v0.11's 8 KiB otherwise.
    pub large_datagrams: bool,
    /// How often a peer's large-datagram path is probed again.
    pub path_probe_interval: Duration,
    /// Socket receive buffer (bytes).
    pub recv_buffer: usize,
    /// Socket send buffer (bytes).
    pub send_buffer: usize,
    /// Send runs of equal-sized datagrams as one `sendmsg` (Linux UDP GSO;
    /// falls back to plain sends by itself when the kernel refuses).
    pub gso: bool,
    /// Receive datagrams coalesced by the kernel (Linux UDP GRO).
    pub gro: bool,
    /// Streams per session before the least recently active is evicted.
    pub max_streams: usize,
    /// Streams idle this long are evicted.
    pub stream_idle_timeout: Duration,
    /// How `connect` reaches peers.
    pub connect_form: ConnectForm,
    /// How long to wait for a peer's identity hello before treating it as a
    /// v0.11 node (reliable streams wait this long at most).
    pub hello_timeout: Duration,
    /// Refuse peers that do not bind their identity (v0.11 peers).
    pub require_identity: bool,
    /// Run the continuity plane (partition records, the heal exchange,
    /// reconciliation; `docs/continuity.md`). Default true; advertised in
    /// the hello, so peers send its messages only to nodes that run it.
    pub continuity: bool,
    /// How often each followed chain heard on a causal stream is proved
    /// against the peer it came from (`docs/continuity.md`); zero turns
    /// the node's own proofs off. Default 10 s.
    pub proof_interval: Duration,
    /// Unanswered handshakes kept in flight at once (a flood beyond this is
    /// dropped before any Diffie-Hellman work).
    pub max_pending_handshakes: usize,
    /// Depth cap of the self-addressed (loopback) dispatch path.
    pub loopback_depth: usize,
    /// Offer AES-256-GCM to Net peers (it is used only when both CPUs have
    /// AES instructions and both sides offer it; `false` keeps every
    /// session on ChaCha20-Poly1305). v0.11 peers never get it.
    pub aes: bool,
    /// Channel limits and timers (MESH2.md §6): `membership_ack_timeout`,
    /// `max_channels_per_peer`, the auth throttle, `token_sweep_interval`.
    pub channels: ChannelsSettings,
    /// Capability announcements: TTL, `min_announce_interval`,
    /// `require_signed_capabilities`, index bounds.
    pub capabilities: CapabilityConfig,
    /// How often expired capability entries and dedup records are swept
    /// (60 s).
    pub capability_gc_interval: Duration,
    /// NAT classification and the reflex override (`node/traversal.rs`).
    pub traversal: super::TraversalSettings,
    /// The node's subnet (explicit id and/or assignment policy; MESH2.md
    /// §5, `docs/mesh.md` "Subnets"). Default: none, every node GLOBAL.
    pub subnets: SubnetSettings,
}

impl std::fmt::Debug for MeshConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshConfig")
            .field("bind", &self.bind)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("session_timeout", &self.session_timeout)
            .field("num_shards", &self.num_shards)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl Default for MeshConfig {
    fn default() -> Self {
        let mut psk = Zeroizing::new([0u8; 32]);
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, psk.as_mut());
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            psk,
            identity_seed: None,
            static_secret: None,
            heartbeat_interval: Duration::from_secs(5),
            session_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(5),
            handshake_retries: 3,
            num_shards: 4,
            shard_capacity: 65_536,
            window: DEFAULT_WINDOW,
            max_window: 4 << 20,
            window_budget: 64 << 20,
            large_datagrams: true,
            path_probe_interval: Duration::from_secs(60),
            // Asked for; the kernel caps them at net.core.rmem_max / wmem_max.
            recv_buffer: 4 << 20,
            send_buffer: 4 << 20,
            gso: true,
            gro: true,
            max_streams: 4096,
            stream_idle_timeout: Duration::from_secs(300),
            connect_form: ConnectForm::Routed,
            hello_timeout: Duration::from_secs(2),
            require_identity: false,
            continuity: true,
            proof_interval: Duration::from_secs(10),
            max_pending_handshakes: 256,
            loopback_depth: 64,
            aes: true,
            channels: ChannelsSettings::default(),
            capabilities: CapabilityConfig::default(),
            capability_gc_interval: DEFAULT_GC_INTERVAL,
            traversal: super::TraversalSettings::default(),
            subnets: SubnetSettings::default(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    bind: Option<String>,
    psk_hex: Option<String>,
    identity_seed_hex: Option<String>,
    static_secret_hex: Option<String>,
    heartbeat_interval_ms: Option<u64>,
    session_timeout_ms: Option<u64>,
    handshake_timeout_ms: Option<u64>,
    handshake_retries: Option<u32>,
    num_shards: Option<usize>,
    shard_capacity: Option<usize>,
    window: Option<u64>,
    max_window: Option<u64>,
    window_budget: Option<u64>,
    large_datagrams: Option<bool>,
    path_probe_interval_ms: Option<u64>,
    recv_buffer: Option<usize>,
    send_buffer: Option<usize>,
    gso: Option<bool>,
    gro: Option<bool>,
    max_streams: Option<usize>,
    stream_idle_timeout_ms: Option<u64>,
    connect_form: Option<ConnectForm>,
    hello_timeout_ms: Option<u64>,
    require_identity: Option<bool>,
    continuity: Option<bool>,
    proof_interval_ms: Option<u64>,
    max_pending_handshakes: Option<usize>,
    loopback_depth: Option<usize>,
    aes: Option<bool>,
    membership_ack_timeout_ms: Option<u64>,
    max_channels_per_peer: Option<usize>,
    max_auth_failures_per_window: Option<u16>,
    auth_failure_window_ms: Option<u64>,
    auth_throttle_duration_ms: Option<u64>,
    token_sweep_interval_ms: Option<u64>,
    capability_ttl_secs: Option<u32>,
    min_announce_interval_ms: Option<u64>,
    require_signed_capabilities: Option<bool>,
    capability_gc_interval_ms: Option<u64>,
    nat_classify: Option<bool>,
    classify_period_ms: Option<u64>,
    classify_deadline_ms: Option<u64>,
    reflex_override: Option<String>,
    port_mapping: Option<bool>,
    port_mapping_gateway: Option<String>,
    subnet: Option<serde_json::Value>,
    subnet_policy: Option<serde_json::Value>,
}

/// One rule of `subnet_policy`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    prefix: String,
    level: u8,
    values: std::collections::BTreeMap<String, u8>,
}

fn key32(hex: &str, key: &str) -> Result<Zeroizing<[u8; 32]>, ConfigError> {
    let bytes = Zeroizing::new(
        hex_decode(hex).ok_or_else(|| ConfigError(format!("{key}: expected 64 hex digits")))?,
    );
    let mut out = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(ConfigError(format!(
            "{key}: expected 32 bytes (64 hex digits), got {}",
            bytes.len()
        )));
    }
    out.copy_from_slice(&bytes);
    Ok(out)
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn ms(value: u64, key: &str, min: u64, max: u64) -> Result<Duration, ConfigError> {
    if !(min..=max).contains(&value) {
        return Err(ConfigError(format!(
            "{key}: {value} is out of range ({min}..={max} ms)"
        )));
    }
    Ok(Duration::from_millis(value))
}

fn range<T: PartialOrd + std::fmt::Display + Copy>(
    value: T,
    key: &str,
    min: T,
    max: T,
) -> Result<T, ConfigError> {
    if value < min || value > max {
        return Err(ConfigError(format!(
            "{key}: {value} is out of range ({min}..={max})"
        )));
    }
    Ok(value)
}

const DAY_MS: u64 = 86_400_000;

impl MeshConfig {
    /// Parses the JSON configuration (empty: all defaults). Keys: `bind`,
    /// `psk_hex`, `identity_seed_hex`, `static_secret_hex`,
    /// `heartbeat_interval_ms`, `session_timeout_ms`,
    /// `handshake_timeout_ms`, `handshake_retries`, `num_shards`,
    /// `shard_capacity`, `window`, `max_window` (bytes, default 4 MiB; at
    /// most `window` turns window growth off), `window_budget` (bytes,
    /// default 64 MiB), `large_datagrams` (bool, default true: up to
    /// 65 000-byte datagrams between Net nodes where the route carries them
    /// unfragmented and a probe gets through), `path_probe_interval_ms`
    /// (≥ 100, default 60 000), `recv_buffer`, `send_buffer`, `gso`,
    /// `gro`, `max_streams`, `stream_idle_timeout_ms`, `connect_form`
    /// (`"routed"`/`"direct"`), `hello_timeout_ms`, `require_identity`,
    /// `continuity` (bool, default true), `proof_interval_ms` (default
    /// 10 000; 0: the node proves no chain by itself), `max_pending_handshakes`, `loopback_depth`, `aes` (bool, default
    /// true: offer AES-256-GCM to Net peers when the CPU has AES
    /// instructions; `false` keeps ChaCha20-Poly1305). Channels and
    /// capabilities (MESH2.md §6 defaults): `membership_ack_timeout_ms`,
    /// `max_channels_per_peer`, `max_auth_failures_per_window` (65535
    /// disables throttling), `auth_failure_window_ms`,
    /// `auth_throttle_duration_ms`, `token_sweep_interval_ms`,
    /// `capability_ttl_secs`, `min_announce_interval_ms`,
    /// `require_signed_capabilities`, `capability_gc_interval_ms` (sweep
    /// and GC intervals below 1 s are refused: v0.11 clamps them to 1 s).
    /// NAT (`node/traversal.rs`): `nat_classify` (bool, default true),
    /// `classify_period_ms` (≥ 1000, default 60 000),
    /// `classify_deadline_ms` (≥ 100, default 5 000), `reflex_override`
    /// (`"ip:port"`, a public address: class Open with that reflex),
    /// `port_mapping` (bool, default false: ask the gateway for a mapping
    /// with PCP, NAT-PMP or UPnP IGD), `port_mapping_gateway` (IPv4; default
    /// the default route's gateway). Subnets (`docs/mesh.md` "Subnets"):
    /// `subnet` (`"global"` or dotted levels such as `"3.7.2"`: this
    /// node's subnet), `subnet_policy` (an array of rules
    /// `{"prefix":"region:","level":0,"values":{"eu":3}}`: the first tag
    /// with the prefix whose remainder is in `values` sets that level, 0–3,
    /// to a byte 1–255; our subnet when `subnet` is unset, and peers' that
    /// announce none).
    ///
    /// # Errors
    /// [`ConfigError`] naming the key (unknown keys included).
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        if json.trim().is_empty() {
            return Ok(config);
        }
        let raw: Raw = serde_json::from_str(json).map_err(|e| ConfigError(e.to_string()))?;
        if let Some(bind) = raw.bind.clone() {
            config.bind = bind
                .parse()
                .map_err(|_| ConfigError(format!("bind: {bind:?} is not an IP:port address")))?;
        }
        if let Some(psk) = raw.psk_hex.as_deref() {
            config.psk = key32(psk, "psk_hex")?;
        }
        if let Some(seed) = raw.identity_seed_hex.as_deref() {
            config.identity_seed = Some(key32(seed, "identity_seed_hex")?);
        }
        if let Some(secret) = raw.static_secret_hex.as_deref() {
            config.static_secret = Some(key32(secret, "static_secret_hex")?);
        }
        if let Some(v) = raw.heartbeat_interval_ms {
            config.heartbeat_interval = ms(v, "heartbeat_interval_ms", 10, DAY_MS)?;
        }
        if let Some(v) = raw.session_timeout_ms {
            config.session_timeout = ms(v, "session_timeout_ms", 20, DAY_MS)?;
        }
        if let Some(v) = raw.handshake_timeout_ms {
            config.handshake_timeout = ms(v, "handshake_timeout_ms", 10, DAY_MS)?;
        }
        if let Some(v) = raw.handshake_retries {
            config.handshake_retries = range(v, "handshake_retries", 1, 100)?;
        }
        if let Some(v) = raw.num_shards {
            config.num_shards = range(v, "num_shards", 1, 1024)?;
        }
        if let Some(v) = raw.shard_capacity {
            config.shard_capacity = range(v, "shard_capacity", 1, 1 << 24)?;
        }
        if let Some(v) = raw.window {
            config.window = v;
        }
        if let Some(v) = raw.max_window {
            config.max_window = range(v, "max_window", 0, 1 << 30)?;
        }
        if let Some(v) = raw.window_budget {
            config.window_budget = range(v, "window_budget", 0, 1 << 40)?;
        }
        if let Some(v) = raw.large_datagrams {
            config.large_datagrams = v;
        }
        if let Some(v) = raw.path_probe_interval_ms {
            config.path_probe_interval = ms(v, "path_probe_interval_ms", 100, DAY_MS)?;
        }
        if let Some(v) = raw.recv_buffer {
            config.recv_buffer = range(v, "recv_buffer", 4096, 1 << 30)?;
        }
        if let Some(v) = raw.send_buffer {
            config.send_buffer = range(v, "send_buffer", 4096, 1 << 30)?;
        }
        if let Some(v) = raw.gso {
            config.gso = v;
        }
        if let Some(v) = raw.gro {
            config.gro = v;
        }
        if let Some(v) = raw.max_streams {
            config.max_streams = range(v, "max_streams", 1, 1 << 20)?;
        }
        if let Some(v) = raw.stream_idle_timeout_ms {
            config.stream_idle_timeout = ms(v, "stream_idle_timeout_ms", 10, DAY_MS * 365)?;
        }
        if let Some(v) = raw.connect_form {
            config.connect_form = v;
        }
        if let Some(v) = raw.hello_timeout_ms {
            config.hello_timeout = ms(v, "hello_timeout_ms", 0, DAY_MS)?;
        }
        if let Some(v) = raw.continuity {
            config.continuity = v;
        }
        if let Some(v) = raw.proof_interval_ms {
            config.proof_interval = ms(v, "proof_interval_ms", 0, DAY_MS)?;
        }
        if let Some(v) = raw.require_identity {
            config.require_identity = v;
        }
        if let Some(v) = raw.max_pending_handshakes {
            config.max_pending_handshakes = range(v, "max_pending_handshakes", 1, 1 << 20)?;
        }
        if let Some(v) = raw.loopback_depth {
            config.loopback_depth = range(v, "loopback_depth", 1, 1 << 16)?;
        }
        if let Some(v) = raw.aes {
            config.aes = v;
        }
        apply_channel_keys(&raw, &mut config)?;
        apply_traversal_keys(&raw, &mut config)?;
        if config.heartbeat_interval >= config.session_timeout {
            return Err(ConfigError(format!(
                "heartbeat_interval_ms ({}) must be below session_timeout_ms ({})",
                config.heartbeat_interval.as_millis(),
                config.session_timeout.as_millis()
            )));
        }
        Ok(config)
    }
}

/// The NAT keys of [`MeshConfig::from_json`].
fn apply_traversal_keys(raw: &Raw, config: &mut MeshConfig) -> Result<(), ConfigError> {
    let t = &mut config.traversal;
    if let Some(v) = raw.nat_classify {
        t.classify = v;
    }
    if let Some(v) = raw.classify_period_ms {
        t.classify_period = ms(v, "classify_period_ms", 1000, DAY_MS)?;
    }
    if let Some(v) = raw.classify_deadline_ms {
        t.classify_deadline = ms(v, "classify_deadline_ms", 100, DAY_MS)?;
    }
    if let Some(addr) = raw.reflex_override.as_deref() {
        let parsed: SocketAddr = addr.parse().map_err(|_| {
            ConfigError(format!(
                "reflex_override: {addr:?} is not an IP:port address"
            ))
        })?;
        if !crate::mesh::traversal::is_advertisable(parsed) {
            return Err(ConfigError(format!(
                "reflex_override: {addr} is not reachable from other networks (private, loopback, wildcard or port 0)"
            )));
        }
        t.reflex_override = Some(parsed);
    }
    if let Some(v) = raw.port_mapping {
        t.port_mapping = v;
    }
    if let Some(gw) = raw.port_mapping_gateway.as_deref() {
        t.port_mapping_gateway = Some(gw.parse().map_err(|_| {
            ConfigError(format!(
                "port_mapping_gateway: {gw:?} is not an IPv4 address"
            ))
        })?);
    }
    Ok(())
}

/// The channel and capability keys of [`MeshConfig::from_json`].
fn apply_channel_keys(raw: &Raw, config: &mut MeshConfig) -> Result<(), ConfigError> {
    let channels = &mut config.channels;
    if let Some(v) = raw.membership_ack_timeout_ms {
        channels.membership_ack_timeout = ms(v, "membership_ack_timeout_ms", 10, DAY_MS)?;
    }
    if let Some(v) = raw.max_channels_per_peer {
        channels.max_channels_per_peer = range(v, "max_channels_per_peer", 1, 1 << 20)?;
    }
    if let Some(v) = raw.max_auth_failures_per_window {
        channels.max_auth_failures_per_window =
            range(v, "max_auth_failures_per_window", 1, u16::MAX)?;
    }
    if let Some(v) = raw.auth_failure_window_ms {
        channels.auth_failure_window = ms(v, "auth_failure_window_ms", 1, DAY_MS)?;
    }
    if let Some(v) = raw.auth_throttle_duration_ms {
        channels.auth_throttle_duration = ms(v, "auth_throttle_duration_ms", 1, DAY_MS)?;
    }
    if let Some(v) = raw.token_sweep_interval_ms {
        channels.token_sweep_interval = ms(v, "token_sweep_interval_ms", 1000, DAY_MS)?;
    }
    let capabilities = &mut config.capabilities;
    if let Some(v) = raw.capability_ttl_secs {
        capabilities.ttl_secs = range(v, "capability_ttl_secs", 0, 86_400 * 365)?;
    }
    if let Some(v) = raw.min_announce_interval_ms {
        capabilities.min_announce_interval = ms(v, "min_announce_interval_ms", 0, DAY_MS)?;
    }
    if let Some(v) = raw.require_signed_capabilities {
        capabilities.pipeline.require_signed = v;
    }
    if let Some(v) = raw.capability_gc_interval_ms {
        config.capability_gc_interval = ms(v, "capability_gc_interval_ms", 1000, DAY_MS)?;
    }
    apply_subnet_keys(raw, config)
}

/// `subnet` and `subnet_policy` of [`MeshConfig::from_json`].
fn apply_subnet_keys(raw: &Raw, config: &mut MeshConfig) -> Result<(), ConfigError> {
    if let Some(value) = raw.subnet.as_ref() {
        let text = value
            .as_str()
            .ok_or_else(|| ConfigError(format!("subnet: {value} is not a string")))?;
        let id = text
            .parse()
            .map_err(|e| ConfigError(format!("subnet: {e}")))?;
        config.subnets.id = Some(id);
    }
    if let Some(value) = raw.subnet_policy.as_ref() {
        let rules: Vec<RawRule> = serde_json::from_value(value.clone())
            .map_err(|e| ConfigError(format!("subnet_policy: {e}")))?;
        let rules = rules
            .into_iter()
            .map(|r| SubnetRule {
                prefix: r.prefix,
                level: r.level,
                values: r.values,
            })
            .collect();
        let policy =
            SubnetPolicy::new(rules).map_err(|e| ConfigError(format!("subnet_policy: {e}")))?;
        config.subnets.policy = Some(policy);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = MeshConfig::from_json("").unwrap();
        assert_eq!(c.heartbeat_interval, Duration::from_secs(5));
        assert_eq!(c.window, 65_536);
        assert!(c.aes);
        let c = MeshConfig::from_json(
            r#"{"bind":"127.0.0.1:0","psk_hex":"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
                "heartbeat_interval_ms":100,"session_timeout_ms":1000,"num_shards":2,
                "window":0,"connect_form":"direct","aes":false}"#,
        )
        .unwrap();
        assert_eq!(*c.psk, [0x5a; 32]);
        assert_eq!(c.connect_form, ConnectForm::Direct);
        assert_eq!(c.window, 0);
        assert!(!c.aes);
        let c = MeshConfig::from_json(
            r#"{"membership_ack_timeout_ms":700,"max_channels_per_peer":2,
                "token_sweep_interval_ms":1000,"min_announce_interval_ms":0,
                "require_signed_capabilities":false,"capability_ttl_secs":60,
                "capability_gc_interval_ms":2000}"#,
        )
        .unwrap();
        assert_eq!(
            c.channels.membership_ack_timeout,
            Duration::from_millis(700)
        );
        assert_eq!(c.channels.max_channels_per_peer, 2);
        assert_eq!(c.channels.token_sweep_interval, Duration::from_secs(1));
        assert_eq!(c.capabilities.min_announce_interval, Duration::ZERO);
        assert!(!c.capabilities.pipeline.require_signed);
        assert_eq!(c.capabilities.ttl_secs, 60);
        assert_eq!(c.capability_gc_interval, Duration::from_secs(2));
        assert_eq!(c.subnets, SubnetSettings::default());
        let c = MeshConfig::from_json(
            r#"{"subnet":"3.7.2","subnet_policy":[
                {"prefix":"region:","level":0,"values":{"eu":3,"us":4}}]}"#,
        )
        .unwrap();
        assert_eq!(
            c.subnets.id.map(|s| s.to_string()).as_deref(),
            Some("3.7.2")
        );
        let policy = c.subnets.policy.as_ref().unwrap();
        assert_eq!(policy.assign(&["region:us"]).to_string(), "4");
    }

    #[test]
    fn errors_name_the_key() {
        for (json, key) in [
            (r#"{"colour":1}"#, "colour"),
            (r#"{"psk_hex":"abc"}"#, "psk_hex"),
            (r#"{"bind":"nowhere"}"#, "bind"),
            (r#"{"num_shards":0}"#, "num_shards"),
            (
                r#"{"heartbeat_interval_ms":5000,"session_timeout_ms":1000}"#,
                "heartbeat_interval_ms",
            ),
            (r#"{"connect_form":"sideways"}"#, "sideways"),
            (
                r#"{"token_sweep_interval_ms":0}"#,
                "token_sweep_interval_ms",
            ),
            (
                r#"{"membership_ack_timeout_ms":5}"#,
                "membership_ack_timeout_ms",
            ),
            (r#"{"max_channels_per_peer":0}"#, "max_channels_per_peer"),
            (
                r#"{"capability_gc_interval_ms":10}"#,
                "capability_gc_interval_ms",
            ),
            (r#"{"subnet":"3.7.2.1.1"}"#, "subnet"),
            (r#"{"subnet":7}"#, "subnet"),
            (r#"{"subnet_policy":{}}"#, "subnet_policy"),
            (
                r#"{"subnet_policy":[{"prefix":"r:","level":4,"values":{}}]}"#,
                "subnet_policy",
            ),
            (
                r#"{"subnet_policy":[{"prefix":"r:","level":0,"values":{"x":0}}]}"#,
                "subnet_policy",
            ),
            (
                r#"{"subnet_policy":[{"prefix":"r:","level":0,"values":{"x":256}}]}"#,
                "subnet_policy",
            ),
            (
                r#"{"subnet_policy":[{"prefix":"r:","level":0,"value":{}}]}"#,
                "subnet_policy",
            ),
        ] {
            let err = MeshConfig::from_json(json).unwrap_err();
            assert!(err.0.contains(key), "{json}: {err}");
        }
    }
}
