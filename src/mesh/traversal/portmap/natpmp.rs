//! NAT-PMP (RFC 6886): external address, MAP UDP, delete.
//!
//! Pure codecs ([`encode_external_address_request`], [`encode_map_request`],
//! [`decode_response`]) and a blocking client ([`NatPmpClient`]) that sends
//! from a UDP socket connected to the gateway (so only the gateway's
//! answers are read) with the RFC's retransmission schedule (250 ms
//! doubling, 9 tries; [`Retransmit`], configurable for tests). Every answer
//! carries the gateway's epoch; [`EpochCheck`] tells when it went backwards
//! (the gateway rebooted and lost our mappings, §3.6), and the mapper then
//! re-maps.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use super::Retransmit;

/// Protocol version.
pub const VERSION: u8 = 0;
/// Opcode: external address.
pub const OP_EXTERNAL_ADDRESS: u8 = 0;
/// Opcode: map UDP.
pub const OP_MAP_UDP: u8 = 1;
/// Opcode: map TCP.
pub const OP_MAP_TCP: u8 = 2;
/// Responses set this bit in the opcode.
pub const RESPONSE_BIT: u8 = 0x80;
/// Size of an external-address response.
pub const EXTERNAL_ADDRESS_RESPONSE_SIZE: usize = 12;
/// Size of a map response.
pub const MAP_RESPONSE_SIZE: usize = 16;
/// Size of an error response's common header.
pub const HEADER_SIZE: usize = 8;

/// A non-zero result code (RFC 6886 §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ResultCode {
    /// 1: the gateway speaks another version.
    #[error("unsupported version")]
    UnsupportedVersion,
    /// 2: refused (the gateway has NAT-PMP but mapping is disabled).
    #[error("not authorized or refused")]
    NotAuthorized,
    /// 3: the gateway has no external address yet (e.g. DHCP pending).
    #[error("network failure")]
    NetworkFailure,
    /// 4: no ports or no mappings left.
    #[error("out of resources")]
    OutOfResources,
    /// 5: the opcode is not supported.
    #[error("unsupported opcode")]
    UnsupportedOpcode,
    /// Any other code.
    #[error("result code {0}")]
    Other(u16),
}

impl ResultCode {
    /// The code for a non-zero wire value.
    pub fn from_wire(code: u16) -> Self {
        match code {
            1 => Self::UnsupportedVersion,
            2 => Self::NotAuthorized,
            3 => Self::NetworkFailure,
            4 => Self::OutOfResources,
            5 => Self::UnsupportedOpcode,
            other => Self::Other(other),
        }
    }
}

/// Why bytes are not a NAT-PMP response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Shorter than its kind needs, or longer than a success of that kind.
    #[error("length {got}, expected {expected}")]
    Length {
        /// Received.
        got: usize,
        /// Expected.
        expected: usize,
    },
    /// Version other than 0 (a PCP server answers version 2).
    #[error("version {0}")]
    Version(u8),
    /// Not a response opcode we know.
    #[error("opcode {0}")]
    Opcode(u8),
}

/// A decoded response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Response {
    /// Answer to the external address request.
    ExternalAddress {
        /// Seconds since the gateway's port-mapping table was initialised.
        epoch: u32,
        /// The gateway's external IPv4 address.
        address: Ipv4Addr,
    },
    /// Answer to a map request.
    Map {
        /// Epoch.
        epoch: u32,
        /// UDP (true) or TCP.
        udp: bool,
        /// Our port.
        internal_port: u16,
        /// The port granted.
        external_port: u16,
        /// Seconds granted.
        lifetime: u32,
    },
    /// A non-zero result code.
    Error {
        /// The request opcode it answers.
        opcode: u8,
        /// Epoch.
        epoch: u32,
        /// The code.
        code: ResultCode,
    },
}

/// `[0, 0]`.
pub fn encode_external_address_request() -> [u8; 2] {
    [VERSION, OP_EXTERNAL_ADDRESS]
}

/// A MAP UDP request; lifetime 0 (with suggested external 0) deletes.
pub fn encode_map_request(internal_port: u16, suggested_external: u16, lifetime: u32) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[0] = VERSION;
    b[1] = OP_MAP_UDP;
    b[4..6].copy_from_slice(&internal_port.to_be_bytes());
    b[6..8].copy_from_slice(&suggested_external.to_be_bytes());
    b[8..12].copy_from_slice(&lifetime.to_be_bytes());
    b
}

/// Decodes a gateway's datagram.
///
/// # Errors
/// [`DecodeError`] on anything that is not exactly a NAT-PMP response.
pub fn decode_response(bytes: &[u8]) -> Result<Response, DecodeError> {
    if bytes.len() < HEADER_SIZE {
        return Err(DecodeError::Length {
            got: bytes.len(),
            expected: HEADER_SIZE,
        });
    }
    if bytes[0] != VERSION {
        return Err(DecodeError::Version(bytes[0]));
    }
    let opcode = bytes[1];
    if opcode & RESPONSE_BIT == 0 || opcode & !RESPONSE_BIT > OP_MAP_TCP {
        return Err(DecodeError::Opcode(opcode));
    }
    let request_op = opcode & !RESPONSE_BIT;
    let result = u16::from_be_bytes([bytes[2], bytes[3]]);
    let epoch = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    let success_len = if request_op == OP_EXTERNAL_ADDRESS {
        EXTERNAL_ADDRESS_RESPONSE_SIZE
    } else {
        MAP_RESPONSE_SIZE
    };
    if result != 0 {
        // Error answers may stop after the header or be full size.
        if bytes.len() != HEADER_SIZE && bytes.len() != success_len {
            return Err(DecodeError::Length {
                got: bytes.len(),
                expected: success_len,
            });
        }
        return Ok(Response::Error {
            opcode: request_op,
            epoch,
            code: ResultCode::from_wire(result),
        });
    }
    if bytes.len() != success_len {
        return Err(DecodeError::Length {
            got: bytes.len(),
            expected: success_len,
        });
    }
    if request_op == OP_EXTERNAL_ADDRESS {
        return Ok(Response::ExternalAddress {
            epoch,
            address: Ipv4Addr::new(bytes[8], bytes[9], bytes[10], bytes[11]),
        });
    }
    Ok(Response::Map {
        epoch,
        udp: request_op == OP_MAP_UDP,
        internal_port: u16::from_be_bytes([bytes[8], bytes[9]]),
        external_port: u16::from_be_bytes([bytes[10], bytes[11]]),
        lifetime: u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]),
    })
}

/// Tracks the gateway's epoch (RFC 6886 §3.6).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EpochCheck {
    last: Option<(u32, Instant)>,
}

impl EpochCheck {
    /// Records an epoch seen at `now`; returns `true` when it shows the
    /// gateway lost its state: the epoch is more than 2 s behind what it
    /// should be (previous + 7/8 of the time elapsed, allowing for clock
    /// drift), or went backwards.
    pub fn observe(&mut self, epoch: u32, now: Instant) -> bool {
        let rebooted = match self.last {
            None => false,
            Some((prev, at)) => {
                let elapsed = now.saturating_duration_since(at).as_secs();
                let expected = u64::from(prev) + elapsed * 7 / 8;
                epoch < prev || u64::from(epoch) + 2 < expected
            }
        };
        self.last = Some((epoch, now));
        rebooted
    }
}

/// A client error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NatPmpError {
    /// Socket trouble (no route to the gateway, …).
    #[error("NAT-PMP socket: {0}")]
    Io(#[from] io::Error),
    /// No valid answer within the retransmission schedule.
    #[error("NAT-PMP: no answer from the gateway")]
    Timeout,
    /// The gateway refused.
    #[error("NAT-PMP: {0}")]
    Refused(ResultCode),
    /// The gateway answered version 2 (it speaks PCP).
    #[error("NAT-PMP: the gateway speaks PCP")]
    SpeaksPcp,
    /// The answer does not fit the request (e.g. another internal port).
    #[error("NAT-PMP: answer does not match the request")]
    Mismatch,
}

/// A blocking NAT-PMP client for one gateway.
#[derive(Debug)]
pub struct NatPmpClient {
    socket: UdpSocket,
    schedule: Retransmit,
    epoch: EpochCheck,
    reboot_seen: bool,
}

impl NatPmpClient {
    /// A client talking to `gateway` (normally gateway IP:5351).
    ///
    /// # Errors
    /// Socket creation or connect failures.
    pub fn new(gateway: SocketAddrV4, schedule: Retransmit) -> Result<Self, NatPmpError> {
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        socket.connect(SocketAddr::V4(gateway))?;
        Ok(Self {
            socket,
            schedule,
            epoch: EpochCheck::default(),
            reboot_seen: false,
        })
    }

    /// Changes the retransmission schedule of later requests.
    pub fn set_schedule(&mut self, schedule: Retransmit) {
        self.schedule = schedule;
    }

    /// Whether any answer since the last call showed a gateway reboot
    /// (clears the flag).
    pub fn take_reboot(&mut self) -> bool {
        std::mem::take(&mut self.reboot_seen)
    }

    /// Feeds an epoch heard outside a request (the gateway's multicast
    /// announcement, RFC 6886 §3.2.1); returns whether it shows a reboot.
    pub fn observe_epoch(&mut self, epoch: u32, now: Instant) -> bool {
        self.epoch.observe(epoch, now)
    }

    /// Sends `request` per the schedule until `accept` takes an answer.
    fn transact(
        &mut self,
        request: &[u8],
        request_op: u8,
        accept: impl Fn(&Response) -> bool,
    ) -> Result<Response, NatPmpError> {
        let mut buf = [0u8; 64];
        for attempt in 0..self.schedule.tries {
            self.socket.send(request)?;
            let until = Instant::now() + self.schedule.wait(attempt);
            while let Some(n) = super::recv_until(&self.socket, until, &mut buf)? {
                let response = match decode_response(&buf[..n]) {
                    Ok(r) => r,
                    Err(DecodeError::Version(2)) => return Err(NatPmpError::SpeaksPcp),
                    Err(_) => continue,
                };
                let (op, epoch) = match response {
                    Response::ExternalAddress { epoch, .. } => (OP_EXTERNAL_ADDRESS, epoch),
                    Response::Map { epoch, udp, .. } => {
                        (if udp { OP_MAP_UDP } else { OP_MAP_TCP }, epoch)
                    }
                    Response::Error { opcode, epoch, .. } => (opcode, epoch),
                };
                if op != request_op {
                    continue;
                }
                if self.epoch.observe(epoch, Instant::now()) {
                    self.reboot_seen = true;
                }
                if let Response::Error { code, .. } = response {
                    return Err(NatPmpError::Refused(code));
                }
                if accept(&response) {
                    return Ok(response);
                }
            }
        }
        Err(NatPmpError::Timeout)
    }

    /// The gateway's external IPv4 address.
    ///
    /// # Errors
    /// [`NatPmpError`].
    pub fn external_address(&mut self) -> Result<Ipv4Addr, NatPmpError> {
        match self.transact(
            &encode_external_address_request(),
            OP_EXTERNAL_ADDRESS,
            |_| true,
        )? {
            Response::ExternalAddress { address, .. } => Ok(address),
            _ => Err(NatPmpError::Mismatch),
        }
    }

    /// Maps UDP `internal_port`, suggesting `suggested_external`, for
    /// `lifetime`. Returns (external port, granted lifetime).
    ///
    /// # Errors
    /// [`NatPmpError`]; [`NatPmpError::Mismatch`] for internal port 0 or
    /// lifetime 0 (use [`delete`](Self::delete)).
    pub fn map_udp(
        &mut self,
        internal_port: u16,
        suggested_external: u16,
        lifetime: Duration,
    ) -> Result<(u16, Duration), NatPmpError> {
        let secs = u32::try_from(lifetime.as_secs()).unwrap_or(u32::MAX);
        if internal_port == 0 || secs == 0 {
            return Err(NatPmpError::Mismatch);
        }
        let req = encode_map_request(internal_port, suggested_external, secs);
        let accept = move |r: &Response| {
            matches!(r, Response::Map { internal_port: p, external_port: e, lifetime: l, .. }
                if *p == internal_port && *e != 0 && *l != 0)
        };
        match self.transact(&req, OP_MAP_UDP, accept)? {
            Response::Map {
                external_port,
                lifetime,
                ..
            } => Ok((external_port, Duration::from_secs(u64::from(lifetime)))),
            _ => Err(NatPmpError::Mismatch),
        }
    }

    /// Deletes our UDP mapping of `internal_port` (RFC 6886 §3.4: lifetime
    /// 0, suggested external 0).
    ///
    /// # Errors
    /// [`NatPmpError`].
    pub fn delete(&mut self, internal_port: u16) -> Result<(), NatPmpError> {
        let req = encode_map_request(internal_port, 0, 0);
        let accept = move |r: &Response| matches!(r, Response::Map { internal_port: p, lifetime: 0, .. } if *p == internal_port);
        self.transact(&req, OP_MAP_UDP, accept).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_match_the_rfc_layout() {
        assert_eq!(encode_external_address_request(), [0, 0]);
        assert_eq!(
            encode_map_request(0x1234, 0x5678, 3600),
            [0, 1, 0, 0, 0x12, 0x34, 0x56, 0x78, 0, 0, 0x0e, 0x10]
        );
    }

    #[test]
    fn decodes_success_and_errors() {
        let ext = [0, 128, 0, 0, 0, 0, 1, 0, 8, 8, 4, 4];
        assert_eq!(
            decode_response(&ext),
            Ok(Response::ExternalAddress {
                epoch: 256,
                address: Ipv4Addr::new(8, 8, 4, 4)
            })
        );
        let map = [
            0, 129, 0, 0, 0, 0, 0, 5, 0x0f, 0xa0, 0x0f, 0xa1, 0, 0, 0x0e, 0x10,
        ];
        assert_eq!(
            decode_response(&map),
            Ok(Response::Map {
                epoch: 5,
                udp: true,
                internal_port: 4000,
                external_port: 4001,
                lifetime: 3600
            })
        );
        for (code, want) in [
            (1, ResultCode::UnsupportedVersion),
            (2, ResultCode::NotAuthorized),
            (3, ResultCode::NetworkFailure),
            (4, ResultCode::OutOfResources),
            (5, ResultCode::UnsupportedOpcode),
            (77, ResultCode::Other(77)),
        ] {
            let short = [0, 129, 0, code, 0, 0, 0, 9];
            assert_eq!(
                decode_response(&short),
                Ok(Response::Error {
                    opcode: 1,
                    epoch: 9,
                    code: want
                })
            );
        }
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            decode_response(&[]),
            Err(DecodeError::Length { .. })
        ));
        assert_eq!(
            decode_response(&[2, 129, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::Version(2))
        );
        assert_eq!(
            decode_response(&[0, 1, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::Opcode(1))
        );
        assert_eq!(
            decode_response(&[0, 131, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::Opcode(131))
        );
        // A success must have its exact size.
        assert!(decode_response(&[0, 128, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(decode_response(&[0u8, 129, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        // An error of an odd size.
        assert!(decode_response(&[0, 129, 0, 3, 0, 0, 0, 0, 1]).is_err());
    }

    #[test]
    fn epoch_reboot_detection() {
        let t0 = Instant::now();
        let mut e = EpochCheck::default();
        assert!(!e.observe(1000, t0));
        // 100 s later the epoch advanced ~100 s: fine.
        assert!(!e.observe(1099, t0 + Duration::from_secs(100)));
        // Slightly slow gateway clock (7/8 rule): fine.
        assert!(!e.observe(1099 + 88, t0 + Duration::from_secs(200)));
        // Went backwards: reboot.
        assert!(e.observe(3, t0 + Duration::from_secs(201)));
        // Stalled while time passed: reboot.
        let mut e = EpochCheck::default();
        e.observe(500, t0);
        assert!(e.observe(500, t0 + Duration::from_secs(60)));
    }
}
