//! PCP (RFC 6887): the MAP opcode over UDP 5351.
//!
//! A MAP request names our address (as the gateway sees it; IPv4 in the
//! IPv4-mapped IPv6 form), a random 96-bit nonce, the protocol (UDP), our
//! port, a suggested external port and a requested lifetime; lifetime 0
//! with the same nonce deletes. A response is accepted only when its nonce,
//! protocol and internal port match the request (§11.3), so a stale or
//! forged answer is ignored. A gateway that answers version 0 speaks only
//! NAT-PMP (§9): the client reports [`PcpError::SpeaksNatPmp`] and the
//! mapper falls back.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use super::Retransmit;
use super::natpmp::EpochCheck;

/// Protocol version.
pub const VERSION: u8 = 2;
/// The MAP opcode.
pub const OP_MAP: u8 = 1;
/// The R bit of a response.
pub const RESPONSE_BIT: u8 = 0x80;
/// Common header size.
pub const HEADER_SIZE: usize = 24;
/// MAP payload size.
pub const MAP_PAYLOAD_SIZE: usize = 36;
/// A MAP request or response without options.
pub const MAP_SIZE: usize = HEADER_SIZE + MAP_PAYLOAD_SIZE;
/// Largest PCP message (§7).
pub const MAX_MESSAGE: usize = 1100;
/// IANA protocol number of UDP.
pub const PROTO_UDP: u8 = 17;

/// A non-zero result code (RFC 6887 §7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ResultCode {
    /// 1.
    #[error("UNSUPP_VERSION")]
    UnsupportedVersion,
    /// 2.
    #[error("NOT_AUTHORIZED")]
    NotAuthorized,
    /// 3.
    #[error("MALFORMED_REQUEST")]
    MalformedRequest,
    /// 4.
    #[error("UNSUPP_OPCODE")]
    UnsupportedOpcode,
    /// 5.
    #[error("UNSUPP_OPTION")]
    UnsupportedOption,
    /// 6.
    #[error("MALFORMED_OPTION")]
    MalformedOption,
    /// 7: try again later.
    #[error("NETWORK_FAILURE")]
    NetworkFailure,
    /// 8: try again later.
    #[error("NO_RESOURCES")]
    NoResources,
    /// 9.
    #[error("UNSUPP_PROTOCOL")]
    UnsupportedProtocol,
    /// 10.
    #[error("USER_EX_QUOTA")]
    UserExceededQuota,
    /// 11.
    #[error("CANNOT_PROVIDE_EXTERNAL")]
    CannotProvideExternal,
    /// 12: the client address in the request is not what the gateway sees.
    #[error("ADDRESS_MISMATCH")]
    AddressMismatch,
    /// 13.
    #[error("EXCESSIVE_REMOTE_PEERS")]
    ExcessiveRemotePeers,
    /// Any other code.
    #[error("result code {0}")]
    Other(u8),
}

impl ResultCode {
    /// The code for a non-zero wire value.
    pub fn from_wire(code: u8) -> Self {
        match code {
            1 => Self::UnsupportedVersion,
            2 => Self::NotAuthorized,
            3 => Self::MalformedRequest,
            4 => Self::UnsupportedOpcode,
            5 => Self::UnsupportedOption,
            6 => Self::MalformedOption,
            7 => Self::NetworkFailure,
            8 => Self::NoResources,
            9 => Self::UnsupportedProtocol,
            10 => Self::UserExceededQuota,
            11 => Self::CannotProvideExternal,
            12 => Self::AddressMismatch,
            13 => Self::ExcessiveRemotePeers,
            other => Self::Other(other),
        }
    }
}

/// Why bytes are not a PCP MAP response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Too short, too long, or not a multiple of 4 (§7).
    #[error("length {0}")]
    Length(usize),
    /// Version 0: a NAT-PMP gateway's answer (§9).
    #[error("NAT-PMP answer")]
    NatPmp,
    /// Another version.
    #[error("version {0}")]
    Version(u8),
    /// Not a MAP response.
    #[error("opcode {0:#x}")]
    Opcode(u8),
}

/// A MAP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapRequest {
    /// Our address as the gateway sees it.
    pub client: IpAddr,
    /// The mapping nonce.
    pub nonce: [u8; 12],
    /// Our port.
    pub internal_port: u16,
    /// Suggested external port (0: any).
    pub suggested_external_port: u16,
    /// Suggested external address (unspecified: any).
    pub suggested_external_ip: IpAddr,
    /// Seconds (0 deletes).
    pub lifetime: u32,
}

/// A decoded MAP response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapResponse {
    /// 0 for success, else the code.
    pub result: Option<ResultCode>,
    /// Seconds granted (on error: how long the error is likely to last).
    pub lifetime: u32,
    /// The server's epoch.
    pub epoch: u32,
    /// The nonce echoed.
    pub nonce: [u8; 12],
    /// Protocol.
    pub protocol: u8,
    /// Our port.
    pub internal_port: u16,
    /// The port granted.
    pub external_port: u16,
    /// The address granted.
    pub external_ip: IpAddr,
}

fn to_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => Ipv4Addr::UNSPECIFIED.to_ipv6_mapped(),
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

fn from_v6(octets: [u8; 16]) -> IpAddr {
    let v6 = Ipv6Addr::from(octets);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

impl MapRequest {
    /// The 60 bytes.
    pub fn encode(&self) -> [u8; MAP_SIZE] {
        let mut b = [0u8; MAP_SIZE];
        b[0] = VERSION;
        b[1] = OP_MAP;
        b[4..8].copy_from_slice(&self.lifetime.to_be_bytes());
        b[8..24].copy_from_slice(&to_v6(self.client).octets());
        b[24..36].copy_from_slice(&self.nonce);
        b[36] = PROTO_UDP;
        b[40..42].copy_from_slice(&self.internal_port.to_be_bytes());
        b[42..44].copy_from_slice(&self.suggested_external_port.to_be_bytes());
        b[44..60].copy_from_slice(&to_v6(self.suggested_external_ip).octets());
        b
    }
}

/// Decodes a gateway datagram as a MAP response. Options after the MAP
/// payload are skipped (their length must keep the message 4-aligned and
/// within 1100 bytes); an error response may be header-only.
///
/// # Errors
/// [`DecodeError`].
pub fn decode_map_response(bytes: &[u8]) -> Result<MapResponse, DecodeError> {
    if bytes.len() < 2 {
        return Err(DecodeError::Length(bytes.len()));
    }
    match bytes[0] {
        VERSION => {}
        0 => return Err(DecodeError::NatPmp),
        v => return Err(DecodeError::Version(v)),
    }
    if bytes.len() < HEADER_SIZE || bytes.len() > MAX_MESSAGE || !bytes.len().is_multiple_of(4) {
        return Err(DecodeError::Length(bytes.len()));
    }
    if bytes[1] != (RESPONSE_BIT | OP_MAP) {
        return Err(DecodeError::Opcode(bytes[1]));
    }
    let result = match bytes[3] {
        0 => None,
        code => Some(ResultCode::from_wire(code)),
    };
    let lifetime = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    let epoch = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if bytes.len() < MAP_SIZE {
        if result.is_none() {
            return Err(DecodeError::Length(bytes.len()));
        }
        return Ok(MapResponse {
            result,
            lifetime,
            epoch,
            nonce: [0; 12],
            protocol: 0,
            internal_port: 0,
            external_port: 0,
            external_ip: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        });
    }
    let p = &bytes[HEADER_SIZE..MAP_SIZE];
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&p[0..12]);
    let mut ip = [0u8; 16];
    ip.copy_from_slice(&p[20..36]);
    Ok(MapResponse {
        result,
        lifetime,
        epoch,
        nonce,
        protocol: p[12],
        internal_port: u16::from_be_bytes([p[16], p[17]]),
        external_port: u16::from_be_bytes([p[18], p[19]]),
        external_ip: from_v6(ip),
    })
}

/// A client error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PcpError {
    /// Socket trouble.
    #[error("PCP socket: {0}")]
    Io(#[from] io::Error),
    /// No matching answer within the schedule.
    #[error("PCP: no answer from the gateway")]
    Timeout,
    /// The gateway refused.
    #[error("PCP: {0}")]
    Refused(ResultCode),
    /// The gateway answered NAT-PMP (version 0): fall back (§9).
    #[error("PCP: the gateway speaks NAT-PMP only")]
    SpeaksNatPmp,
}

/// A blocking PCP client for one gateway.
#[derive(Debug)]
pub struct PcpClient {
    socket: UdpSocket,
    client_ip: IpAddr,
    schedule: Retransmit,
    nonce: [u8; 12],
    epoch: EpochCheck,
    reboot_seen: bool,
}

impl PcpClient {
    /// A client for `gateway` (gateway IP:5351). The mapping nonce is drawn
    /// once per client, so renewals and the delete refer to the same
    /// mapping (§11.2).
    ///
    /// # Errors
    /// Socket failures.
    pub fn new(gateway: SocketAddrV4, schedule: Retransmit) -> Result<Self, PcpError> {
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        socket.connect(SocketAddr::V4(gateway))?;
        let client_ip = socket.local_addr()?.ip();
        let mut nonce = [0u8; 12];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
        Ok(Self {
            socket,
            client_ip,
            schedule,
            nonce,
            epoch: EpochCheck::default(),
            reboot_seen: false,
        })
    }

    /// Whether an answer since the last call showed the gateway lost its
    /// state (its epoch went backwards, RFC 6887 §8.5); clears the flag.
    pub fn take_reboot(&mut self) -> bool {
        std::mem::take(&mut self.reboot_seen)
    }

    /// The nonce of this client's mapping.
    pub fn nonce(&self) -> [u8; 12] {
        self.nonce
    }

    fn transact(&mut self, request: &MapRequest) -> Result<MapResponse, PcpError> {
        let bytes = request.encode();
        let mut buf = [0u8; MAX_MESSAGE];
        for attempt in 0..self.schedule.tries {
            self.socket.send(&bytes)?;
            let until = Instant::now() + self.schedule.wait(attempt);
            while let Some(n) = super::recv_until(&self.socket, until, &mut buf)? {
                let response = match decode_map_response(&buf[..n]) {
                    Ok(r) => r,
                    Err(DecodeError::NatPmp) => return Err(PcpError::SpeaksNatPmp),
                    Err(_) => continue,
                };
                if let Some(code) = response.result {
                    // Header-only errors cannot be matched by nonce; full
                    // ones must match like successes.
                    if response.protocol == 0 || response.nonce == request.nonce {
                        if code == ResultCode::UnsupportedVersion {
                            return Err(PcpError::SpeaksNatPmp);
                        }
                        return Err(PcpError::Refused(code));
                    }
                    continue;
                }
                if response.nonce != request.nonce
                    || response.protocol != PROTO_UDP
                    || response.internal_port != request.internal_port
                {
                    continue;
                }
                if self.epoch.observe(response.epoch, Instant::now()) {
                    self.reboot_seen = true;
                }
                return Ok(response);
            }
        }
        Err(PcpError::Timeout)
    }

    /// Maps UDP `internal_port` for `lifetime`, suggesting
    /// `suggested_external`. Returns (external address, lifetime granted).
    ///
    /// # Errors
    /// [`PcpError`].
    pub fn map_udp(
        &mut self,
        internal_port: u16,
        suggested_external: u16,
        lifetime: Duration,
    ) -> Result<(SocketAddr, Duration), PcpError> {
        let request = MapRequest {
            client: self.client_ip,
            nonce: self.nonce,
            internal_port,
            suggested_external_port: suggested_external,
            suggested_external_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            lifetime: u32::try_from(lifetime.as_secs()).unwrap_or(u32::MAX).max(1),
        };
        let r = self.transact(&request)?;
        if r.external_port == 0 || r.lifetime == 0 {
            return Err(PcpError::Refused(ResultCode::CannotProvideExternal));
        }
        Ok((
            SocketAddr::new(r.external_ip, r.external_port),
            Duration::from_secs(u64::from(r.lifetime)),
        ))
    }

    /// Deletes the mapping of `internal_port` (lifetime 0, same nonce).
    ///
    /// # Errors
    /// [`PcpError`].
    pub fn delete(&mut self, internal_port: u16) -> Result<(), PcpError> {
        let request = MapRequest {
            client: self.client_ip,
            nonce: self.nonce,
            internal_port,
            suggested_external_port: 0,
            suggested_external_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            lifetime: 0,
        };
        self.transact(&request).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> MapRequest {
        MapRequest {
            client: "10.0.0.2".parse().unwrap(),
            nonce: [9; 12],
            internal_port: 4000,
            suggested_external_port: 4000,
            suggested_external_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            lifetime: 3600,
        }
    }

    #[test]
    fn request_layout() {
        let b = request().encode();
        assert_eq!(&b[0..4], &[2, 1, 0, 0]);
        assert_eq!(&b[4..8], &3600u32.to_be_bytes());
        assert_eq!(
            &b[8..24],
            &"::ffff:10.0.0.2".parse::<Ipv6Addr>().unwrap().octets()
        );
        assert_eq!(&b[24..36], &[9; 12]);
        assert_eq!(&b[36..40], &[17, 0, 0, 0]);
        assert_eq!(&b[40..44], &[0x0f, 0xa0, 0x0f, 0xa0]);
        assert_eq!(
            &b[44..60],
            &"::ffff:0.0.0.0".parse::<Ipv6Addr>().unwrap().octets()
        );
    }

    fn response(result: u8) -> Vec<u8> {
        let mut b = request().encode().to_vec();
        b[1] = 0x81;
        b[3] = result;
        b[8..12].copy_from_slice(&77u32.to_be_bytes());
        b[12..24].fill(0);
        b[42..44].copy_from_slice(&4001u16.to_be_bytes());
        b[44..60].copy_from_slice(&"::ffff:8.8.4.4".parse::<Ipv6Addr>().unwrap().octets());
        b
    }

    #[test]
    fn decodes_a_success() {
        let r = decode_map_response(&response(0)).unwrap();
        assert_eq!(r.result, None);
        assert_eq!(r.lifetime, 3600);
        assert_eq!(r.epoch, 77);
        assert_eq!(r.nonce, [9; 12]);
        assert_eq!(r.protocol, 17);
        assert_eq!(r.internal_port, 4000);
        assert_eq!(r.external_port, 4001);
        assert_eq!(r.external_ip, "8.8.4.4".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn result_codes_are_typed() {
        for code in 1..=14u8 {
            let r = decode_map_response(&response(code)).unwrap();
            assert_eq!(r.result, Some(ResultCode::from_wire(code)));
        }
        assert_eq!(ResultCode::from_wire(12), ResultCode::AddressMismatch);
        assert_eq!(ResultCode::from_wire(200), ResultCode::Other(200));
        // A header-only error.
        let mut short = response(8);
        short.truncate(HEADER_SIZE);
        assert_eq!(
            decode_map_response(&short).unwrap().result,
            Some(ResultCode::NoResources)
        );
    }

    #[test]
    fn rejects_garbage_and_detects_nat_pmp() {
        assert_eq!(
            decode_map_response(&[0, 129, 0, 1, 0, 0, 0, 0]),
            Err(DecodeError::NatPmp)
        );
        assert_eq!(decode_map_response(&[]), Err(DecodeError::Length(0)));
        assert_eq!(decode_map_response(&[3; 60]), Err(DecodeError::Version(3)));
        let mut b = response(0);
        b.push(0);
        assert_eq!(decode_map_response(&b), Err(DecodeError::Length(61)));
        let mut b = response(0);
        b[1] = 0x01;
        assert_eq!(decode_map_response(&b), Err(DecodeError::Opcode(1)));
        let mut b = response(0);
        b.truncate(HEADER_SIZE);
        assert_eq!(decode_map_response(&b), Err(DecodeError::Length(24)));
        assert_eq!(
            decode_map_response(&vec![2u8; 1104]),
            Err(DecodeError::Length(1104))
        );
    }
}
