//! Port-mapping clients against small fake gateways on 127.0.0.1: a
//! NAT-PMP/PCP responder on a UDP socket and an IGD (SSDP + HTTP/SOAP) on
//! UDP and TCP sockets. Success, result codes, retransmission, garbage,
//! timeouts, epoch resets, the PCP → NAT-PMP fallback.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use net::mesh::traversal::portmap::mapper::{MapperConfig, MapperEvent, PortMapper};
use net::mesh::traversal::portmap::natpmp::{self, NatPmpClient, NatPmpError};
use net::mesh::traversal::portmap::pcp::{self, PcpClient, PcpError};
use net::mesh::traversal::portmap::upnp::{IgdClient, UpnpError, UpnpErrorCode};
use net::mesh::traversal::portmap::{Protocol, Retransmit};

const FAST: Retransmit = Retransmit {
    initial: Duration::from_millis(40),
    tries: 4,
};

/// A UDP responder: `answer(request, n)` returns the datagrams to send
/// back for the n-th request (0-based). Stops when dropped.
struct Udp {
    addr: SocketAddrV4,
    requests: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

type Answer = dyn Fn(&[u8], usize) -> Vec<Vec<u8>> + Send;

impl Udp {
    fn start(answer: Box<Answer>) -> Udp {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let SocketAddr::V4(addr) = socket.local_addr().unwrap() else {
            unreachable!()
        };
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, flag) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !flag.load(Ordering::Relaxed) {
                if let Ok((n, from)) = socket.recv_from(&mut buf) {
                    let index = {
                        let mut log = log.lock().unwrap();
                        log.push(buf[..n].to_vec());
                        log.len() - 1
                    };
                    for reply in answer(&buf[..n], index) {
                        let _ = socket.send_to(&reply, from);
                    }
                }
            }
        });
        Udp {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn requests(&self) -> Vec<Vec<u8>> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Udp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn natpmp_external(epoch: u32) -> Vec<u8> {
    let mut b = vec![0, 128, 0, 0];
    b.extend_from_slice(&epoch.to_be_bytes());
    b.extend_from_slice(&[8, 8, 4, 4]);
    b
}

fn natpmp_map(request: &[u8], epoch: u32, external_port: u16) -> Vec<u8> {
    let mut b = vec![0, 129, 0, 0];
    b.extend_from_slice(&epoch.to_be_bytes());
    b.extend_from_slice(&request[4..6]);
    let lifetime = &request[8..12];
    let port = if lifetime == [0, 0, 0, 0] {
        0
    } else {
        external_port
    };
    b.extend_from_slice(&port.to_be_bytes());
    b.extend_from_slice(lifetime);
    b
}

/// A well-behaved NAT-PMP gateway.
fn natpmp_gateway(request: &[u8], n: usize) -> Vec<Vec<u8>> {
    let epoch = 1000 + n as u32;
    match request {
        [0, 0] => vec![natpmp_external(epoch)],
        [0, 1, ..] if request.len() == 12 => vec![natpmp_map(request, epoch, 40_001)],
        _ => vec![],
    }
}

#[test]
fn natpmp_success_and_delete() {
    let gw = Udp::start(Box::new(natpmp_gateway));
    let mut c = NatPmpClient::new(gw.addr, FAST).unwrap();
    assert_eq!(c.external_address().unwrap(), Ipv4Addr::new(8, 8, 4, 4));
    let (port, lifetime) = c.map_udp(4000, 4000, Duration::from_secs(3600)).unwrap();
    assert_eq!((port, lifetime), (40_001, Duration::from_secs(3600)));
    c.delete(4000).unwrap();
    let reqs = gw.requests();
    assert_eq!(reqs[1], natpmp::encode_map_request(4000, 4000, 3600));
    assert_eq!(reqs[2], natpmp::encode_map_request(4000, 0, 0));
    assert!(!c.take_reboot());
}

#[test]
fn natpmp_retransmits_on_the_schedule() {
    // Silent for the first two requests.
    let gw = Udp::start(Box::new(|req, n| {
        if n < 2 {
            vec![]
        } else {
            natpmp_gateway(req, n)
        }
    }));
    let mut c = NatPmpClient::new(gw.addr, FAST).unwrap();
    let started = Instant::now();
    assert_eq!(c.external_address().unwrap(), Ipv4Addr::new(8, 8, 4, 4));
    assert_eq!(gw.requests().len(), 3);
    // It waited 40 ms and then 80 ms before the third send.
    assert!(started.elapsed() >= Duration::from_millis(120));
}

#[test]
fn natpmp_times_out_after_the_last_try() {
    let gw = Udp::start(Box::new(|_, _| vec![]));
    let mut c = NatPmpClient::new(gw.addr, FAST).unwrap();
    let started = Instant::now();
    assert!(matches!(c.external_address(), Err(NatPmpError::Timeout)));
    assert_eq!(gw.requests().len(), 4);
    assert!(started.elapsed() >= FAST.total());
}

#[test]
fn natpmp_result_codes_are_typed() {
    let gw = Udp::start(Box::new(|_, _| vec![vec![0, 129, 0, 2, 0, 0, 0, 7]]));
    let mut c = NatPmpClient::new(gw.addr, FAST).unwrap();
    assert!(matches!(
        c.map_udp(4000, 4000, Duration::from_secs(60)),
        Err(NatPmpError::Refused(natpmp::ResultCode::NotAuthorized))
    ));
    let gw = Udp::start(Box::new(|_, _| vec![vec![0, 128, 0, 3, 0, 0, 0, 7]]));
    let mut c = NatPmpClient::new(gw.addr, FAST).unwrap();
    assert!(matches!(
        c.external_address(),
        Err(NatPmpError::Refused(natpmp::ResultCode::NetworkFailure))
    ));
}

#[test]
fn natpmp_ignores_garbage_and_mismatches() {
    // Garbage, a response for another opcode and another internal port,
    // then the real answer: the client keeps waiting for the real one.
    let gw = Udp::start(Box::new(|req, n| {
        let mut wrong_port = natpmp_map(req, 5, 1);
        wrong_port[8..10].copy_from_slice(&9999u16.to_be_bytes());
        vec![
            vec![0xde, 0xad],
            vec![1; 16],
            natpmp_external(5),
            wrong_port,
            natpmp_gateway(req, n).remove(0),
        ]
    }));
    let mut c = NatPmpClient::new(gw.addr, FAST).unwrap();
    assert_eq!(
        c.map_udp(4000, 4000, Duration::from_secs(60)).unwrap().0,
        40_001
    );
    // Only garbage: a timeout, not a panic or a wrong answer.
    let gw = Udp::start(Box::new(|_, _| vec![vec![0, 128, 0], vec![0xff; 1500]]));
    let mut c = NatPmpClient::new(gw.addr, FAST).unwrap();
    assert!(matches!(c.external_address(), Err(NatPmpError::Timeout)));
}

#[test]
fn natpmp_detects_a_gateway_reboot() {
    let epochs = [5000u32, 3];
    let gw = Udp::start(Box::new(move |_, n| {
        vec![natpmp_external(epochs[n.min(1)])]
    }));
    let mut c = NatPmpClient::new(gw.addr, FAST).unwrap();
    c.external_address().unwrap();
    assert!(!c.take_reboot());
    c.external_address().unwrap();
    assert!(c.take_reboot(), "epoch went from 5000 to 3");
    assert!(!c.take_reboot(), "the flag clears");
}

#[test]
fn natpmp_sees_a_pcp_gateway() {
    let gw = Udp::start(Box::new(|_, _| vec![vec![2, 128, 0, 0, 0, 0, 0, 0]]));
    let mut c = NatPmpClient::new(gw.addr, FAST).unwrap();
    assert!(matches!(c.external_address(), Err(NatPmpError::SpeaksPcp)));
}

/// A PCP gateway answering MAP with the request's nonce (or `nonce_xor`
/// applied to it), external 8.8.4.4:40002, or `result`.
fn pcp_answer(request: &[u8], result: u8, nonce_xor: u8) -> Vec<u8> {
    let mut b = request.to_vec();
    b[1] = 0x81;
    b[2] = 0;
    b[3] = result;
    b[8..12].copy_from_slice(&77u32.to_be_bytes());
    b[12..24].fill(0);
    for x in &mut b[24..36] {
        *x ^= nonce_xor;
    }
    if u32::from_be_bytes([request[4], request[5], request[6], request[7]]) != 0 {
        b[42..44].copy_from_slice(&40_002u16.to_be_bytes());
    }
    let ext: std::net::Ipv6Addr = "::ffff:8.8.4.4".parse().unwrap();
    b[44..60].copy_from_slice(&ext.octets());
    b
}

#[test]
fn pcp_success_nonce_matching_and_delete() {
    // A stale answer (another nonce) first: ignored.
    let gw = Udp::start(Box::new(|req, _| {
        if req.len() != pcp::MAP_SIZE {
            return vec![];
        }
        vec![pcp_answer(req, 0, 0xff), pcp_answer(req, 0, 0)]
    }));
    let mut c = PcpClient::new(gw.addr, FAST).unwrap();
    let (external, lifetime) = c.map_udp(4000, 4000, Duration::from_secs(3600)).unwrap();
    assert_eq!(external, "8.8.4.4:40002".parse().unwrap());
    assert_eq!(lifetime, Duration::from_secs(3600));
    c.delete(4000).unwrap();
    let reqs = gw.requests();
    assert_eq!(reqs.len(), 2);
    // Same nonce for the map and the delete; our address as client.
    assert_eq!(reqs[0][24..36], reqs[1][24..36]);
    assert_eq!(reqs[0][24..36], c.nonce());
    let client: std::net::Ipv6Addr = "::ffff:127.0.0.1".parse().unwrap();
    assert_eq!(reqs[0][8..24], client.octets());
    assert_eq!(reqs[1][4..8], [0, 0, 0, 0]);
}

#[test]
fn pcp_only_wrong_nonces_time_out() {
    let gw = Udp::start(Box::new(|req, _| vec![pcp_answer(req, 0, 1)]));
    let mut c = PcpClient::new(gw.addr, FAST).unwrap();
    assert!(matches!(
        c.map_udp(4000, 4000, Duration::from_secs(60)),
        Err(PcpError::Timeout)
    ));
    assert_eq!(gw.requests().len(), 4, "retransmitted per the schedule");
}

#[test]
fn pcp_result_codes_and_nat_pmp_fallback() {
    let gw = Udp::start(Box::new(|req, _| vec![pcp_answer(req, 2, 0)]));
    let mut c = PcpClient::new(gw.addr, FAST).unwrap();
    assert!(matches!(
        c.map_udp(4000, 4000, Duration::from_secs(60)),
        Err(PcpError::Refused(pcp::ResultCode::NotAuthorized))
    ));
    // A NAT-PMP gateway answers version 0, "unsupported version".
    let gw = Udp::start(Box::new(|_, _| vec![vec![0, 129, 0, 1, 0, 0, 0, 9]]));
    let mut c = PcpClient::new(gw.addr, FAST).unwrap();
    assert!(matches!(
        c.map_udp(4000, 4000, Duration::from_secs(60)),
        Err(PcpError::SpeaksNatPmp)
    ));
}

#[test]
fn mapper_falls_back_from_pcp_to_nat_pmp() {
    // Answers PCP with NAT-PMP's "unsupported version", NAT-PMP properly.
    let gw = Udp::start(Box::new(|req, n| {
        if req.first() == Some(&2) {
            vec![vec![0, 129, 0, 1, 0, 0, 0, 9]]
        } else {
            natpmp_gateway(req, n)
        }
    }));
    let config = MapperConfig {
        enabled: true,
        gateway: Some(gw.addr),
        pcp_schedule: FAST,
        natpmp_schedule: FAST,
        natpmp_probe_schedule: FAST,
        // No IGD on this port.
        ssdp_target: "127.0.0.1:9".parse().unwrap(),
        upnp_timeout: Duration::from_millis(100),
        ..MapperConfig::new(4000)
    };
    let mut m = PortMapper::new(config);
    let Ok(MapperEvent::Installed(lease)) = m.start(Instant::now()) else {
        panic!("no mapping")
    };
    assert_eq!(lease.protocol, Protocol::NatPmp);
    assert_eq!(lease.external, "8.8.4.4:40001".parse().unwrap());
    assert!(matches!(
        m.shutdown(),
        Some(MapperEvent::Removed { deleted: true, .. })
    ));
}

/// A fake IGD: SSDP on UDP, description and SOAP over HTTP on TCP.
struct Igd {
    ssdp: Udp,
    http_addr: SocketAddr,
    actions: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Clone, Copy)]
enum IgdMode {
    Good,
    /// AddAnyPortMapping answers fault 718.
    Conflict,
    /// SOAP bodies are garbage.
    Garbage,
    /// Accepts and never answers.
    Silent,
}

const DESCRIPTION: &str = r#"<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><device><deviceList><device><deviceList><device><serviceList>
<service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType><controlURL>/ctl/IPConn</controlURL></service>
</serviceList></device></deviceList></device></deviceList></device></root>"#;

fn soap_ok(action: &str, inner: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><u:{action}Response xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:2\">{inner}</u:{action}Response></s:Body></s:Envelope>"
    )
}

const FAULT_718: &str = "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns=\"urn:schemas-upnp-org:control-1-0\"><errorCode>718</errorCode><errorDescription>ConflictInMappingEntry</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>";

impl Igd {
    fn start(mode: IgdMode) -> Igd {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let http_addr = listener.local_addr().unwrap();
        let location = format!("http://{http_addr}/rootDesc.xml");
        let ssdp = Udp::start(Box::new(move |req, _| {
            if !req.starts_with(b"M-SEARCH") {
                return vec![];
            }
            let text = String::from_utf8_lossy(req);
            let st = text
                .lines()
                .find_map(|l| l.strip_prefix("ST: "))
                .unwrap_or("")
                .to_owned();
            vec![
                format!(
                    "HTTP/1.1 200 OK\r\nST: {st}\r\nLOCATION: {location}\r\nUSN: uuid:x\r\n\r\n"
                )
                .into_bytes(),
            ]
        }));
        let actions = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, flag) = (actions.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(2)))
                    .unwrap();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head, then Content-Length bytes.
                let (head_len, body_len) = loop {
                    let Ok(n) = stream.read(&mut chunk) else {
                        break (0, 0);
                    };
                    if n == 0 {
                        break (0, 0);
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_string();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .and_then(|v| v.parse::<usize>().ok())
                            .unwrap_or(0);
                        break (end + 4, len);
                    }
                };
                while buf.len() < head_len + body_len {
                    match stream.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&buf).to_string();
                let action = text
                    .lines()
                    .find_map(|l| l.strip_prefix("SOAPAction: "))
                    .and_then(|v| v.trim_matches('"').split('#').nth(1))
                    .unwrap_or("")
                    .to_owned();
                let (status, body) = if text.starts_with("GET /rootDesc.xml") {
                    (200, DESCRIPTION.to_owned())
                } else {
                    log.lock().unwrap().push(action.clone());
                    match (mode, action.as_str()) {
                        (IgdMode::Silent, _) => {
                            std::thread::sleep(Duration::from_millis(600));
                            continue;
                        }
                        (IgdMode::Garbage, _) => (200, "<html>not soap".to_owned()),
                        (_, "GetExternalIPAddress") => (
                            200,
                            soap_ok(
                                action.as_str(),
                                "<NewExternalIPAddress>8.8.4.4</NewExternalIPAddress>",
                            ),
                        ),
                        (IgdMode::Conflict, "AddAnyPortMapping") => (500, FAULT_718.to_owned()),
                        (_, "AddAnyPortMapping") => (
                            200,
                            soap_ok(action.as_str(), "<NewReservedPort>40003</NewReservedPort>"),
                        ),
                        (_, a) => (200, soap_ok(a, "")),
                    }
                };
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes());
            }
        });
        Igd {
            ssdp,
            http_addr,
            actions,
            stop,
            thread: Some(thread),
        }
    }

    fn ssdp_target(&self) -> SocketAddr {
        SocketAddr::V4(self.ssdp.addr)
    }

    fn actions(&self) -> Vec<String> {
        self.actions.lock().unwrap().clone()
    }
}

impl Drop for Igd {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn upnp_discovery_and_control() {
    let igd = Igd::start(IgdMode::Good);
    let c = IgdClient::discover(igd.ssdp_target(), Duration::from_secs(2)).unwrap();
    assert_eq!(
        c.service().service_type,
        "urn:schemas-upnp-org:service:WANIPConnection:2"
    );
    assert_eq!(c.service().control_url.addr, igd.http_addr);
    assert_eq!(
        c.external_ip().unwrap(),
        "8.8.4.4".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(
        c.add_any_port_mapping(4000, 4000, Duration::from_secs(3600))
            .unwrap(),
        40_003
    );
    c.add_port_mapping(40_003, 4000, Duration::from_secs(3600))
        .unwrap();
    c.delete_port_mapping(40_003).unwrap();
    assert_eq!(
        igd.actions(),
        [
            "GetExternalIPAddress",
            "AddAnyPortMapping",
            "AddPortMapping",
            "DeletePortMapping"
        ]
    );
}

#[test]
fn upnp_faults_are_typed() {
    let igd = Igd::start(IgdMode::Conflict);
    let c = IgdClient::discover(igd.ssdp_target(), Duration::from_secs(2)).unwrap();
    match c.add_any_port_mapping(4000, 4000, Duration::from_secs(60)) {
        Err(UpnpError::Fault { code, .. }) => {
            assert_eq!(code, UpnpErrorCode::ConflictInMappingEntry)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn upnp_garbage_and_silence_are_errors_within_the_deadline() {
    let igd = Igd::start(IgdMode::Garbage);
    let c = IgdClient::discover(igd.ssdp_target(), Duration::from_secs(2)).unwrap();
    assert!(matches!(c.external_ip(), Err(UpnpError::Xml(_))));

    let igd = Igd::start(IgdMode::Silent);
    let c = IgdClient::discover(igd.ssdp_target(), Duration::from_millis(300)).unwrap();
    let started = Instant::now();
    assert!(matches!(
        c.external_ip(),
        Err(UpnpError::Http(
            net::mesh::traversal::portmap::http::HttpError::Timeout
        ))
    ));
    assert!(started.elapsed() < Duration::from_secs(5));

    // Nobody answers the search.
    let quiet = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let target = quiet.local_addr().unwrap();
    assert!(matches!(
        IgdClient::discover(target, Duration::from_millis(150)),
        Err(UpnpError::NotFound)
    ));
}

#[test]
fn mapper_with_upnp_renews_on_the_same_port() {
    let igd = Igd::start(IgdMode::Good);
    let config = MapperConfig {
        enabled: true,
        // No NAT-PMP/PCP gateway: a closed local port.
        gateway: Some(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9)),
        pcp_schedule: FAST,
        natpmp_schedule: FAST,
        natpmp_probe_schedule: FAST,
        ssdp_target: igd.ssdp_target(),
        upnp_timeout: Duration::from_secs(2),
        ..MapperConfig::new(4000)
    };
    let mut m = PortMapper::new(config);
    let Ok(MapperEvent::Installed(lease)) = m.start(Instant::now()) else {
        panic!("no mapping")
    };
    assert_eq!(lease.protocol, Protocol::Upnp);
    assert_eq!(lease.external, "8.8.4.4:40003".parse().unwrap());
    let due = m.next_deadline().unwrap();
    assert!(matches!(
        m.tick(due),
        Some(MapperEvent::Renewed {
            external_changed: false,
            ..
        })
    ));
    m.shutdown();
    // Renewal used AddPortMapping on the granted port, never a second
    // AddAnyPortMapping (which could leak a mapping).
    let actions = igd.actions();
    assert_eq!(
        actions.iter().filter(|a| *a == "AddAnyPortMapping").count(),
        1,
        "{actions:?}"
    );
    assert_eq!(
        actions.last().map(String::as_str),
        Some("DeletePortMapping")
    );
}

#[test]
fn pcp_detects_a_gateway_reboot() {
    let epochs = [5000u32, 3];
    let gw = Udp::start(Box::new(move |req, n| {
        let mut b = pcp_answer(req, 0, 0);
        b[8..12].copy_from_slice(&epochs[n.min(1)].to_be_bytes());
        vec![b]
    }));
    let mut c = PcpClient::new(gw.addr, FAST).unwrap();
    c.map_udp(4000, 4000, Duration::from_secs(60)).unwrap();
    assert!(!c.take_reboot());
    c.map_udp(4000, 4000, Duration::from_secs(60)).unwrap();
    assert!(c.take_reboot(), "epoch went from 5000 to 3");
}
