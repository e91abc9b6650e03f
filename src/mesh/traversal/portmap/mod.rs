//! Port mapping (MESH2.md §4.6): clients for the three protocols a home
//! gateway speaks, and the lease lifecycle that drives them.
//!
//! - [`natpmp`]: NAT-PMP (RFC 6886) with the RFC's retransmission schedule
//!   and epoch checks.
//! - [`pcp`]: PCP (RFC 6887) MAP over UDP 5351 with nonce matching; a
//!   version-0 answer means "speak NAT-PMP" (RFC 6887 §9).
//! - [`upnp`]: UPnP IGD — SSDP search, device description, SOAP control
//!   (WANIPConnection:1/2, WANPPPConnection:1) over a minimal HTTP/1.1
//!   client ([`http`]) and a strict minimal XML reader ([`xml`]).
//! - [`mapper`]: probe order PCP → NAT-PMP → UPnP, install, renew, refresh
//!   the external address, tear down; stats. Off by default.
//!
//! The clients do blocking I/O on std sockets, every call bounded by a
//! deadline, so the node runs them on a blocking task. Every decoder of
//! gateway bytes is pure, returns a typed error on garbage, and has a fuzz
//! target (`fuzz/checks/portmap_decode.rs`).
//!
//! Better than v0.11 (MESH2.md §7 item 23): NAT-PMP retransmits per the
//! RFC instead of sending one datagram; a gateway reboot (epoch going
//! backwards) re-maps; the external address is refreshed on each renewal;
//! UPnP renewals re-use the port they were granted (no leaked mappings);
//! a bind port of 0 is refused instead of mapping port 0; PCP exists.

pub mod http;
pub mod mapper;
pub mod natpmp;
pub mod pcp;
pub mod upnp;
pub mod xml;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// The port NAT-PMP and PCP servers listen on (RFC 6886, RFC 6887).
pub const GATEWAY_PORT: u16 = 5351;

/// Which protocol installed a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// RFC 6887.
    Pcp,
    /// RFC 6886.
    NatPmp,
    /// UPnP IGD.
    Upnp,
}

/// A mapping a gateway granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The protocol that installed it.
    pub protocol: Protocol,
    /// Our local port.
    pub internal_port: u16,
    /// The public address and port peers can send to.
    pub external: SocketAddr,
    /// How long the gateway keeps it.
    pub lifetime: Duration,
}

/// A retransmission schedule: the first wait, doubled after each try, for
/// at most `tries` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retransmit {
    /// Wait after the first send.
    pub initial: Duration,
    /// Number of sends.
    pub tries: u32,
}

impl Retransmit {
    /// RFC 6886 §3.1: 250 ms, doubling, 9 tries (about 64 s in all).
    pub const NAT_PMP: Self = Self {
        initial: Duration::from_millis(250),
        tries: 9,
    };

    /// The wait after send number `n` (0-based).
    pub fn wait(&self, n: u32) -> Duration {
        self.initial.saturating_mul(1u32 << n.min(20))
    }

    /// The whole time the schedule may take.
    pub fn total(&self) -> Duration {
        (0..self.tries).map(|n| self.wait(n)).sum()
    }
}

/// Waits for one datagram on a connected UDP socket until `until`;
/// `Ok(None)` once it passes. An ICMP "port unreachable" from an earlier
/// send (the gateway's daemon is not up yet) waits out the time instead
/// of failing, so the retransmission schedule still runs.
fn recv_until(socket: &UdpSocket, until: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
    let Some(left) = until
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
    else {
        return Ok(None);
    };
    socket.set_read_timeout(Some(left))?;
    match socket.recv(buf) {
        Ok(n) => Ok(Some(n)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(None)
        }
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            std::thread::sleep(until.saturating_duration_since(Instant::now()));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Reads the IPv4 default gateway from `/proc/net/route` text: the first
/// default route (destination 0, mask 0) with a non-zero gateway. Pure;
/// `None` on anything else.
pub fn gateway_from_proc_route(text: &str) -> Option<Ipv4Addr> {
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(dest), Some(gw), Some(mask)) = (fields.get(1), fields.get(2), fields.get(7))
        else {
            continue;
        };
        let parse = |s: &str| u32::from_str_radix(s, 16).ok();
        if parse(dest) != Some(0) || parse(mask) != Some(0) {
            continue;
        }
        match parse(gw) {
            // The kernel prints the address in host byte order of a
            // little-endian u32 read of network-order bytes.
            Some(g) if g != 0 => return Some(Ipv4Addr::from(g.to_le_bytes())),
            _ => continue,
        }
    }
    None
}

/// The IPv4 default gateway of this host (Linux; `None` elsewhere or when
/// there is none).
pub fn default_gateway() -> Option<Ipv4Addr> {
    // The calling thread's network namespace (`/proc/net` is the thread
    // group leader's, which differs for a thread that entered another).
    let text = std::fs::read_to_string("/proc/thread-self/net/route")
        .or_else(|_| std::fs::read_to_string("/proc/net/route"))
        .ok()?;
    gateway_from_proc_route(&text)
}

/// The local address the OS would use towards `gateway` (nothing is sent).
pub fn local_ip_towards(gateway: IpAddr) -> Option<IpAddr> {
    let socket = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect((gateway, GATEWAY_PORT)).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nat_pmp_schedule_is_the_rfc_one() {
        let s = Retransmit::NAT_PMP;
        assert_eq!(s.wait(0), Duration::from_millis(250));
        assert_eq!(s.wait(8), Duration::from_secs(64));
        assert_eq!(s.total(), Duration::from_millis(250 * 511));
    }

    #[test]
    fn proc_route_gateway() {
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
            eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert_eq!(
            gateway_from_proc_route(text),
            Some(Ipv4Addr::new(192, 168, 0, 1))
        );
        assert_eq!(gateway_from_proc_route("junk\nx y z"), None);
        assert_eq!(gateway_from_proc_route(""), None);
        let no_gw = "h\nlo\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert_eq!(gateway_from_proc_route(no_gw), None);
    }
}
