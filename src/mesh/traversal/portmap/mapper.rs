//! The port-mapping lease lifecycle (MESH2.md §4.6): probe and install,
//! renew, refresh the external address, tear down. Off by default
//! ([`MapperConfig::enabled`]).
//!
//! - **Install**: the backends are tried in order PCP → NAT-PMP → UPnP IGD
//!   (a PCP gateway that answers version 0 is a NAT-PMP gateway, RFC 6887
//!   §9); the first that grants a mapping of our port for `lease` (3600 s)
//!   wins and is kept for the renewals.
//! - **Renew** at install + min(30 min, lifetime / 2) by re-issuing the
//!   mapping (same PCP nonce, same NAT-PMP internal port, UPnP
//!   AddPortMapping of the **same** external port, so a renewal never
//!   leaves a second mapping behind — v0.11's AddAnyPortMapping renewals
//!   could). A failure is retried once after 200 ms; a failed renewal is
//!   tried again after a quarter of the renewal interval, so three can
//!   fail before the lease runs out; three in a row ⇒ teardown.
//! - **External address**: NAT-PMP and UPnP ask for it at every renewal,
//!   PCP returns it with each MAP; a change is reported
//!   ([`MapperEvent::Renewed`] with `external_changed`).
//! - **Gateway reboot** (the NAT-PMP or PCP epoch going backwards, RFC
//!   6886 §3.6, RFC 6887 §8.5): seen in a renewal's answers, the renewal
//!   itself re-created the mapping; seen in the gateway's multicast
//!   announcement ([`PortMapper::on_gateway_announcement`]), the mapping
//!   is renewed at once. Counted in [`MapperStats::gateway_reboots`].
//! - **Teardown** on [`PortMapper::shutdown`] and after the failures.
//!
//! # Node event → call → then the node…
//!
//! | Node event | Call | Then the node… |
//! |---|---|---|
//! | start with `try_port_mapping` | [`PortMapper::start`] (blocking task) | on `Installed`: `ReflexState::set_override(external, PortMapping)`, adds `nat-mapped`, announces |
//! | timer at [`PortMapper::next_deadline`] | [`PortMapper::tick`] (blocking task) | `Renewed` with a new external: updates the override and announces; `Removed`: `clear_override(PortMapping)`, announces |
//! | datagram on 224.0.0.1:5350 from the gateway | [`PortMapper::on_gateway_announcement`] | re-arms its timer at [`PortMapper::next_deadline`] |
//! | shutdown | [`PortMapper::shutdown`] (blocking task, bounded by the backend deadlines) | `clear_override(PortMapping)` |
//! | stats query | [`PortMapper::stats`] | — |

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use super::natpmp::{NatPmpClient, NatPmpError};
use super::pcp::{PcpClient, PcpError};
use super::upnp::{IgdClient, SSDP_MULTICAST, UpnpError, UpnpErrorCode};
use super::{GATEWAY_PORT, Lease, Protocol, Retransmit};

/// Default lease (MESH2.md §6).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(3600);
/// Longest time between renewals.
pub const MAX_RENEW_INTERVAL: Duration = Duration::from_secs(30 * 60);
/// Wait before the one retry of a failed renewal.
pub const RENEW_RETRY_DELAY: Duration = Duration::from_millis(200);
/// Failed renewals in a row before teardown.
pub const MAX_FAILED_RENEWALS: u32 = 3;

/// A backend error, by protocol.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PortMapError {
    /// Port mapping is off in the configuration.
    #[error("port mapping is disabled")]
    Disabled,
    /// The node is bound to port 0 (v0.11 mapped port 0; we refuse).
    #[error("no local port to map (bound to port 0)")]
    NoPort,
    /// PCP failed.
    #[error(transparent)]
    Pcp(#[from] PcpError),
    /// NAT-PMP failed.
    #[error(transparent)]
    NatPmp(#[from] NatPmpError),
    /// UPnP failed.
    #[error(transparent)]
    Upnp(#[from] UpnpError),
    /// No gateway known for NAT-PMP/PCP.
    #[error("no default gateway")]
    NoGateway,
    /// Every backend failed; one line per protocol tried.
    #[error("no gateway granted a mapping: {0:?}")]
    Unavailable(Vec<(Protocol, String)>),
}

/// One way of talking to the gateway.
pub trait Backend: Send {
    /// Which protocol.
    fn protocol(&self) -> Protocol;
    /// Creates or refreshes the mapping of `internal_port` (keeping
    /// `previous`'s external port when given).
    ///
    /// # Errors
    /// The protocol's error.
    fn map(
        &mut self,
        internal_port: u16,
        previous: Option<&Lease>,
        lifetime: Duration,
    ) -> Result<Lease, PortMapError>;
    /// Removes the mapping.
    ///
    /// # Errors
    /// The protocol's error.
    fn unmap(&mut self, lease: &Lease) -> Result<(), PortMapError>;
    /// Whether the gateway showed a reboot since the last call.
    fn take_reboot(&mut self) -> bool {
        false
    }
    /// An epoch from the gateway's announcement: does it show a reboot?
    /// (Only NAT-PMP gateways announce.)
    fn observe_epoch(&mut self, _epoch: u32, _now: Instant) -> bool {
        false
    }
}

/// Settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapperConfig {
    /// Off by default.
    pub enabled: bool,
    /// The mesh socket's port.
    pub internal_port: u16,
    /// Lease asked for.
    pub lease: Duration,
    /// The gateway for PCP and NAT-PMP (None: the default route's).
    pub gateway: Option<SocketAddrV4>,
    /// Where to send SSDP searches.
    pub ssdp_target: SocketAddr,
    /// PCP schedule.
    pub pcp_schedule: Retransmit,
    /// NAT-PMP schedule for renewals and deletes (RFC 6886's by default).
    pub natpmp_schedule: Retransmit,
    /// NAT-PMP schedule for the install, while it is not known whether the
    /// gateway speaks NAT-PMP at all: short, so a silent gateway does not
    /// hold up UPnP for the RFC's 64 s (v0.11 gave it one 1 s try).
    pub natpmp_probe_schedule: Retransmit,
    /// UPnP search and per-request deadline.
    pub upnp_timeout: Duration,
    /// Retry delay of a failed renewal.
    pub renew_retry_delay: Duration,
}

impl MapperConfig {
    /// Defaults for a node bound to `internal_port` (disabled).
    pub fn new(internal_port: u16) -> Self {
        Self {
            enabled: false,
            internal_port,
            lease: DEFAULT_LEASE,
            gateway: None,
            ssdp_target: SocketAddr::V4(SSDP_MULTICAST),
            // PCP first: short, so a NAT-PMP-only or silent gateway does
            // not hold up the others (RFC 6887's 3 s initial wait is for
            // a known PCP server).
            pcp_schedule: Retransmit {
                initial: Duration::from_millis(250),
                tries: 3,
            },
            natpmp_schedule: Retransmit::NAT_PMP,
            natpmp_probe_schedule: Retransmit {
                initial: Duration::from_millis(250),
                tries: 4,
            },
            upnp_timeout: Duration::from_secs(2),
            renew_retry_delay: RENEW_RETRY_DELAY,
        }
    }
}

/// Counters and state (MESH2.md §4.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MapperStats {
    /// A mapping is installed.
    pub active: bool,
    /// Its external address.
    pub external: Option<SocketAddr>,
    /// Its protocol.
    pub protocol: Option<Protocol>,
    /// Successful renewals since install (reset on install).
    pub renewals: u64,
    /// Gateway reboots seen.
    pub gateway_reboots: u64,
}

/// Why a mapping went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemovedReason {
    /// [`PortMapper::shutdown`].
    Shutdown,
    /// Three renewals in a row failed.
    RenewalsFailed,
}

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MapperEvent {
    /// A mapping exists.
    Installed(Lease),
    /// It was renewed.
    Renewed {
        /// The lease now.
        lease: Lease,
        /// The external address differs from before.
        external_changed: bool,
    },
    /// A renewal failed (retry scheduled).
    RenewalFailed {
        /// Failures in a row.
        consecutive: u32,
    },
    /// The mapping is gone.
    Removed {
        /// Why.
        reason: RemovedReason,
        /// The gateway confirmed the delete.
        deleted: bool,
    },
}

/// The lifecycle.
pub struct PortMapper {
    config: MapperConfig,
    candidates: Vec<Box<dyn Backend>>,
    active: Option<(Box<dyn Backend>, Lease)>,
    next_renewal: Option<Instant>,
    failed_renewals: u32,
    stats: MapperStats,
}

impl std::fmt::Debug for PortMapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortMapper")
            .field("config", &self.config)
            .field("lease", &self.active.as_ref().map(|(_, l)| *l))
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn renew_interval(lifetime: Duration) -> Duration {
    (lifetime / 2)
        .min(MAX_RENEW_INTERVAL)
        .max(Duration::from_secs(1))
}

impl PortMapper {
    /// A mapper with the real backends (PCP, NAT-PMP, UPnP).
    pub fn new(config: MapperConfig) -> Self {
        let gateway = config
            .gateway
            .or_else(|| super::default_gateway().map(|ip| SocketAddrV4::new(ip, GATEWAY_PORT)));
        let mut backends: Vec<Box<dyn Backend>> = Vec::new();
        if let Some(gw) = gateway {
            backends.push(Box::new(PcpBackend::new(gw, config.pcp_schedule)));
            backends.push(Box::new(
                NatPmpBackend::new(gw, config.natpmp_schedule)
                    .with_probe_schedule(config.natpmp_probe_schedule),
            ));
        }
        backends.push(Box::new(UpnpBackend::new(
            config.ssdp_target,
            config.upnp_timeout,
        )));
        Self::with_backends(config, backends)
    }

    /// A mapper over given backends, tried in order (tests use fakes).
    pub fn with_backends(config: MapperConfig, backends: Vec<Box<dyn Backend>>) -> Self {
        Self {
            config,
            candidates: backends,
            active: None,
            next_renewal: None,
            failed_renewals: 0,
            stats: MapperStats::default(),
        }
    }

    /// The stats.
    pub fn stats(&self) -> MapperStats {
        self.stats
    }

    /// The installed lease.
    pub fn lease(&self) -> Option<Lease> {
        self.active.as_ref().map(|(_, l)| *l)
    }

    /// When [`tick`](Self::tick) has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.next_renewal
    }

    /// Probes the backends in order and installs the first mapping granted.
    ///
    /// # Errors
    /// [`PortMapError::Disabled`], [`PortMapError::NoPort`],
    /// [`PortMapError::Unavailable`] with each backend's failure.
    pub fn start(&mut self, now: Instant) -> Result<MapperEvent, PortMapError> {
        if !self.config.enabled {
            return Err(PortMapError::Disabled);
        }
        if self.config.internal_port == 0 {
            return Err(PortMapError::NoPort);
        }
        if let Some((_, lease)) = &self.active {
            return Ok(MapperEvent::Installed(*lease));
        }
        let mut failures = Vec::new();
        let candidates = std::mem::take(&mut self.candidates);
        let mut remaining = Vec::new();
        let mut iter = candidates.into_iter();
        for mut backend in iter.by_ref() {
            match backend.map(self.config.internal_port, None, self.config.lease) {
                Ok(lease) => {
                    self.install(backend, lease, now);
                    remaining.extend(iter);
                    self.candidates = remaining;
                    return Ok(MapperEvent::Installed(lease));
                }
                Err(e) => {
                    failures.push((backend.protocol(), e.to_string()));
                    remaining.push(backend);
                }
            }
        }
        self.candidates = remaining;
        Err(PortMapError::Unavailable(failures))
    }

    fn install(&mut self, backend: Box<dyn Backend>, lease: Lease, now: Instant) {
        self.stats = MapperStats {
            active: true,
            external: Some(lease.external),
            protocol: Some(lease.protocol),
            renewals: 0,
            gateway_reboots: self.stats.gateway_reboots,
        };
        self.next_renewal = Some(now + renew_interval(lease.lifetime));
        self.failed_renewals = 0;
        self.active = Some((backend, lease));
    }

    /// Renews when due. Blocks for at most the backend's deadlines plus
    /// the retry delay.
    pub fn tick(&mut self, now: Instant) -> Option<MapperEvent> {
        if self.next_renewal.is_none_or(|due| now < due) {
            return None;
        }
        let internal_port = self.config.internal_port;
        let lifetime = self.config.lease;
        let retry_delay = self.config.renew_retry_delay;
        let (backend, lease) = self.active.as_mut()?;
        let mut result = backend.map(internal_port, Some(lease), lifetime);
        if result.is_err() {
            std::thread::sleep(retry_delay);
            result = backend.map(internal_port, Some(lease), lifetime);
        }
        if backend.take_reboot() {
            self.stats.gateway_reboots += 1;
        }
        match result {
            Ok(new) => {
                let external_changed = new.external != lease.external;
                *lease = new;
                self.failed_renewals = 0;
                self.stats.renewals += 1;
                self.stats.external = Some(new.external);
                self.next_renewal = Some(now + renew_interval(new.lifetime));
                Some(MapperEvent::Renewed {
                    lease: new,
                    external_changed,
                })
            }
            Err(_) => {
                self.failed_renewals += 1;
                if self.failed_renewals >= MAX_FAILED_RENEWALS {
                    return Some(self.teardown(RemovedReason::RenewalsFailed));
                }
                let interval = renew_interval(lease.lifetime);
                self.next_renewal = Some(now + (interval / 4).max(retry_delay));
                Some(MapperEvent::RenewalFailed {
                    consecutive: self.failed_renewals,
                })
            }
        }
    }

    fn teardown(&mut self, reason: RemovedReason) -> MapperEvent {
        let deleted = match self.active.take() {
            Some((mut backend, lease)) => {
                let ok = backend.unmap(&lease).is_ok();
                self.candidates.insert(0, backend);
                ok
            }
            None => false,
        };
        self.next_renewal = None;
        self.failed_renewals = 0;
        self.stats.active = false;
        self.stats.external = None;
        self.stats.protocol = None;
        MapperEvent::Removed { reason, deleted }
    }

    /// A datagram the gateway multicast to 224.0.0.1:5350 (RFC 6886
    /// §3.2.1: sent when it restarts or its external address changes).
    /// When it shows a reboot (epoch check) or another external address,
    /// the mapping is renewed at once: [`next_deadline`](Self::next_deadline)
    /// becomes `now`. Returns whether it did; garbage and announcements
    /// from other gateways' epochs that look normal change nothing.
    pub fn on_gateway_announcement(&mut self, bytes: &[u8], now: Instant) -> bool {
        let Ok(super::natpmp::Response::ExternalAddress { epoch, address }) =
            super::natpmp::decode_response(bytes)
        else {
            return false;
        };
        let Some((backend, lease)) = self.active.as_mut() else {
            return false;
        };
        let rebooted = backend.observe_epoch(epoch, now);
        let moved = lease.external.ip() != IpAddr::V4(address);
        if rebooted {
            self.stats.gateway_reboots += 1;
        }
        if rebooted || moved {
            self.next_renewal = Some(now);
        }
        rebooted || moved
    }

    /// Removes the mapping (if any). `None` when nothing was installed.
    pub fn shutdown(&mut self) -> Option<MapperEvent> {
        self.active.as_ref()?;
        Some(self.teardown(RemovedReason::Shutdown))
    }
}

/// PCP backend.
#[derive(Debug)]
pub struct PcpBackend {
    gateway: SocketAddrV4,
    schedule: Retransmit,
    client: Option<PcpClient>,
}

impl PcpBackend {
    /// For `gateway`:5351.
    pub fn new(gateway: SocketAddrV4, schedule: Retransmit) -> Self {
        Self {
            gateway,
            schedule,
            client: None,
        }
    }
}

impl Backend for PcpBackend {
    fn protocol(&self) -> Protocol {
        Protocol::Pcp
    }

    fn map(
        &mut self,
        internal_port: u16,
        previous: Option<&Lease>,
        lifetime: Duration,
    ) -> Result<Lease, PortMapError> {
        if self.client.is_none() {
            self.client = Some(PcpClient::new(self.gateway, self.schedule)?);
        }
        let Some(client) = self.client.as_mut() else {
            unreachable!("set above")
        };
        let suggested = previous.map_or(internal_port, |l| l.external.port());
        let (external, granted) = client.map_udp(internal_port, suggested, lifetime)?;
        Ok(Lease {
            protocol: Protocol::Pcp,
            internal_port,
            external,
            lifetime: granted,
        })
    }

    fn unmap(&mut self, lease: &Lease) -> Result<(), PortMapError> {
        match self.client.as_mut() {
            Some(c) => Ok(c.delete(lease.internal_port)?),
            None => Ok(()),
        }
    }

    fn take_reboot(&mut self) -> bool {
        self.client.as_mut().is_some_and(PcpClient::take_reboot)
    }
}

/// NAT-PMP backend.
#[derive(Debug)]
pub struct NatPmpBackend {
    gateway: SocketAddrV4,
    schedule: Retransmit,
    probe_schedule: Retransmit,
    client: Option<NatPmpClient>,
}

impl NatPmpBackend {
    /// For `gateway`:5351, `schedule` for every request.
    pub fn new(gateway: SocketAddrV4, schedule: Retransmit) -> Self {
        Self {
            gateway,
            schedule,
            probe_schedule: schedule,
            client: None,
        }
    }

    /// Uses `probe` for the install (before the gateway answered once).
    pub fn with_probe_schedule(mut self, probe: Retransmit) -> Self {
        self.probe_schedule = probe;
        self
    }
}

impl Backend for NatPmpBackend {
    fn protocol(&self) -> Protocol {
        Protocol::NatPmp
    }

    fn map(
        &mut self,
        internal_port: u16,
        previous: Option<&Lease>,
        lifetime: Duration,
    ) -> Result<Lease, PortMapError> {
        if self.client.is_none() {
            self.client = Some(NatPmpClient::new(self.gateway, self.probe_schedule)?);
        }
        let Some(client) = self.client.as_mut() else {
            unreachable!("set above")
        };
        // The external address is asked every time: it may have changed.
        let ip = client.external_address()?;
        // The gateway speaks NAT-PMP: the RFC's schedule from now on.
        client.set_schedule(self.schedule);
        let suggested = previous.map_or(internal_port, |l| l.external.port());
        let (port, granted) = client.map_udp(internal_port, suggested, lifetime)?;
        Ok(Lease {
            protocol: Protocol::NatPmp,
            internal_port,
            external: SocketAddr::new(IpAddr::V4(ip), port),
            lifetime: granted,
        })
    }

    fn unmap(&mut self, lease: &Lease) -> Result<(), PortMapError> {
        match self.client.as_mut() {
            Some(c) => Ok(c.delete(lease.internal_port)?),
            None => Ok(()),
        }
    }

    fn take_reboot(&mut self) -> bool {
        self.client.as_mut().is_some_and(NatPmpClient::take_reboot)
    }

    fn observe_epoch(&mut self, epoch: u32, now: Instant) -> bool {
        self.client
            .as_mut()
            .is_some_and(|c| c.observe_epoch(epoch, now))
    }
}

/// UPnP IGD backend.
#[derive(Debug)]
pub struct UpnpBackend {
    ssdp_target: SocketAddr,
    timeout: Duration,
    client: Option<IgdClient>,
}

impl UpnpBackend {
    /// Searching at `ssdp_target`.
    pub fn new(ssdp_target: SocketAddr, timeout: Duration) -> Self {
        Self {
            ssdp_target,
            timeout,
            client: None,
        }
    }
}

impl Backend for UpnpBackend {
    fn protocol(&self) -> Protocol {
        Protocol::Upnp
    }

    fn map(
        &mut self,
        internal_port: u16,
        previous: Option<&Lease>,
        lifetime: Duration,
    ) -> Result<Lease, PortMapError> {
        if self.client.is_none() {
            self.client = Some(IgdClient::discover(self.ssdp_target, self.timeout)?);
        }
        let Some(client) = self.client.as_ref() else {
            unreachable!("set above")
        };
        let ip = client.external_ip()?;
        let port = match previous {
            // Renew the mapping we hold, on its port.
            Some(l) => {
                client.add_port_mapping(l.external.port(), internal_port, lifetime)?;
                l.external.port()
            }
            None => match client.add_any_port_mapping(internal_port, internal_port, lifetime) {
                Ok(p) => p,
                // IGD 1 has no AddAnyPortMapping.
                Err(UpnpError::Fault {
                    code: UpnpErrorCode::InvalidAction,
                    ..
                }) => {
                    client.add_port_mapping(internal_port, internal_port, lifetime)?;
                    internal_port
                }
                Err(e) => return Err(e.into()),
            },
        };
        Ok(Lease {
            protocol: Protocol::Upnp,
            internal_port,
            external: SocketAddr::new(ip, port),
            lifetime,
        })
    }

    fn unmap(&mut self, lease: &Lease) -> Result<(), PortMapError> {
        match self.client.as_ref() {
            Some(c) => Ok(c.delete_port_mapping(lease.external.port())?),
            None => Ok(()),
        }
    }
}

/// An IPv4 socket address helper for configs and tests.
pub fn gateway_v4(ip: Ipv4Addr) -> SocketAddrV4 {
    SocketAddrV4::new(ip, GATEWAY_PORT)
}

#[cfg(test)]
mod tests;
