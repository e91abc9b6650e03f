//! UPnP IGD: SSDP search, the device description, and SOAP control of the
//! WAN connection service (WANIPConnection:2, :1, or WANPPPConnection:1):
//! GetExternalIPAddress, AddPortMapping, AddAnyPortMapping (IGD 2),
//! DeletePortMapping.
//!
//! Pure parts ([`encode_msearch`], [`parse_ssdp_response`],
//! [`parse_description`], [`soap_request`], [`parse_soap_response`]) are
//! fuzzed; [`IgdClient`] does the blocking I/O with deadlines.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use super::http::{self, HttpError, Url};
use super::xml::{self, XmlError};

/// The SSDP multicast group and port.
pub const SSDP_MULTICAST: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 255, 255, 250), 1900);
/// Search targets, most capable first.
pub const SEARCH_TARGETS: [&str; 2] = [
    "urn:schemas-upnp-org:device:InternetGatewayDevice:2",
    "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
];
/// WAN connection services we can drive, preferred first.
pub const SERVICE_TYPES: [&str; 3] = [
    "urn:schemas-upnp-org:service:WANIPConnection:2",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
];
/// The description v0.11 used for its mappings (kept for compatibility
/// with operators' router UIs).
pub const MAPPING_DESCRIPTION: &str = "cyberdeck-mesh";

/// UPnP error codes (UPnP IGD WANIPConnection spec, §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UpnpErrorCode {
    /// 401.
    InvalidAction,
    /// 402.
    InvalidArgs,
    /// 501.
    ActionFailed,
    /// 606.
    NotAuthorized,
    /// 714.
    NoSuchEntry,
    /// 718: the external port is taken by another client.
    ConflictInMappingEntry,
    /// 724.
    SamePortValuesRequired,
    /// 725: retry with lease 0.
    OnlyPermanentLeasesSupported,
    /// 726.
    RemoteHostOnlySupportsWildcard,
    /// 727.
    ExternalPortOnlySupportsWildcard,
    /// 728.
    NoPortMapsAvailable,
    /// 729.
    ConflictWithOtherMechanisms,
    /// Anything else.
    Other(u32),
}

impl UpnpErrorCode {
    /// From the `errorCode` value.
    pub fn from_code(code: u32) -> Self {
        match code {
            401 => Self::InvalidAction,
            402 => Self::InvalidArgs,
            501 => Self::ActionFailed,
            606 => Self::NotAuthorized,
            714 => Self::NoSuchEntry,
            718 => Self::ConflictInMappingEntry,
            724 => Self::SamePortValuesRequired,
            725 => Self::OnlyPermanentLeasesSupported,
            726 => Self::RemoteHostOnlySupportsWildcard,
            727 => Self::ExternalPortOnlySupportsWildcard,
            728 => Self::NoPortMapsAvailable,
            729 => Self::ConflictWithOtherMechanisms,
            other => Self::Other(other),
        }
    }
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpnpError {
    /// Socket trouble.
    #[error("UPnP: {0}")]
    Io(#[from] io::Error),
    /// No IGD answered the search in time.
    #[error("UPnP: no gateway found")]
    NotFound,
    /// The HTTP exchange failed.
    #[error("UPnP: {0}")]
    Http(#[from] HttpError),
    /// A body is not the XML we need.
    #[error("UPnP: {0}")]
    Xml(#[from] XmlError),
    /// An SSDP answer is malformed.
    #[error("UPnP: malformed SSDP answer ({0})")]
    Ssdp(&'static str),
    /// The description has no WAN connection service we can drive.
    #[error("UPnP: no WANIPConnection/WANPPPConnection service")]
    NoService,
    /// A SOAP answer lacks what the action returns.
    #[error("UPnP: malformed SOAP answer ({0})")]
    Soap(&'static str),
    /// The gateway returned a UPnP error.
    #[error("UPnP error {code:?}: {description}")]
    Fault {
        /// The code.
        code: UpnpErrorCode,
        /// Its text.
        description: String,
    },
}

/// An M-SEARCH request for `target`, answers within `mx` seconds.
pub fn encode_msearch(target: &str, mx: u8) -> String {
    format!(
        "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: {mx}\r\nST: {target}\r\n\r\n"
    )
}

/// An SSDP search answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsdpResponse {
    /// The device description URL.
    pub location: Url,
    /// The search target it answers.
    pub st: String,
}

/// Parses an SSDP answer (an HTTP 200 head with LOCATION and ST).
///
/// # Errors
/// [`UpnpError::Ssdp`], [`UpnpError::Http`].
pub fn parse_ssdp_response(bytes: &[u8]) -> Result<SsdpResponse, UpnpError> {
    let head = http::parse_head(bytes)?.ok_or(UpnpError::Ssdp("incomplete"))?;
    if head.status != 200 {
        return Err(UpnpError::Ssdp("status"));
    }
    let location = http::header(&head.headers, "LOCATION").ok_or(UpnpError::Ssdp("no LOCATION"))?;
    let st = http::header(&head.headers, "ST").ok_or(UpnpError::Ssdp("no ST"))?;
    Ok(SsdpResponse {
        location: Url::parse(location)?,
        st: st.to_owned(),
    })
}

/// The WAN connection service found in a description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgdService {
    /// Its serviceType (one of [`SERVICE_TYPES`]).
    pub service_type: String,
    /// Where to POST SOAP.
    pub control_url: Url,
}

/// Finds the preferred WAN connection service in a device description
/// fetched from `location` (URLBase, when present, is the base).
///
/// # Errors
/// [`UpnpError::Xml`], [`UpnpError::NoService`], [`UpnpError::Http`] for
/// a bad control URL.
pub fn parse_description(doc: &[u8], location: &Url) -> Result<IgdService, UpnpError> {
    let root = xml::parse(doc)?;
    let base = match root.child_text("URLBase").filter(|s| !s.is_empty()) {
        Some(b) => Url::parse(b)?,
        None => location.clone(),
    };
    let mut services = Vec::new();
    root.descendants("service", &mut services);
    for wanted in SERVICE_TYPES {
        for s in &services {
            if s.child_text("serviceType") == Some(wanted) {
                let control = s
                    .child_text("controlURL")
                    .filter(|c| !c.is_empty())
                    .ok_or(UpnpError::NoService)?;
                return Ok(IgdService {
                    service_type: wanted.to_owned(),
                    control_url: base.join(control)?,
                });
            }
        }
    }
    Err(UpnpError::NoService)
}

/// The SOAP envelope for `action` with `args` (escaped).
pub fn soap_request(service_type: &str, action: &str, args: &[(&str, String)]) -> String {
    let mut body = format!(
        "<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body><u:{action} xmlns:u=\"{service_type}\">"
    );
    for (name, value) in args {
        body.push_str(&format!("<{name}>{}</{name}>", xml::escape(value)));
    }
    body.push_str(&format!("</u:{action}></s:Body></s:Envelope>\r\n"));
    body
}

/// Reads a SOAP answer to `action`: its output arguments, or the UPnP
/// fault it carries.
///
/// # Errors
/// [`UpnpError::Fault`] for a UPnP error; [`UpnpError::Soap`] or
/// [`UpnpError::Xml`] when the body is not the answer.
pub fn parse_soap_response(
    status: u16,
    body: &[u8],
    action: &str,
) -> Result<Vec<(String, String)>, UpnpError> {
    let root = xml::parse(body)?;
    if root.local_name() != "Envelope" {
        return Err(UpnpError::Soap("not an envelope"));
    }
    let soap_body = root.child("Body").ok_or(UpnpError::Soap("no Body"))?;
    if let Some(fault) = soap_body.child("Fault") {
        let mut errs = Vec::new();
        fault.descendants("UPnPError", &mut errs);
        let err = errs
            .first()
            .ok_or(UpnpError::Soap("fault without UPnPError"))?;
        let code = err
            .child_text("errorCode")
            .and_then(|c| c.parse::<u32>().ok())
            .ok_or(UpnpError::Soap("errorCode"))?;
        return Err(UpnpError::Fault {
            code: UpnpErrorCode::from_code(code),
            description: err
                .child_text("errorDescription")
                .unwrap_or("")
                .chars()
                .take(200)
                .collect(),
        });
    }
    if status != 200 {
        return Err(UpnpError::Soap("non-200 status without a fault"));
    }
    let want = format!("{action}Response");
    let response = soap_body
        .child(&want)
        .ok_or(UpnpError::Soap("no action response"))?;
    Ok(response
        .children
        .iter()
        .map(|c| (c.local_name().to_owned(), c.text.trim().to_owned()))
        .collect())
}

fn arg<'a>(args: &'a [(String, String)], name: &str) -> Option<&'a str> {
    args.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Sends M-SEARCHes for every target in [`SEARCH_TARGETS`] to `to`
/// (normally [`SSDP_MULTICAST`]; a unicast address works for tests) and
/// collects distinct description URLs until `timeout`.
///
/// # Errors
/// [`UpnpError::Io`]; [`UpnpError::NotFound`] when nothing answered.
pub fn search(to: SocketAddr, timeout: Duration) -> Result<Vec<Url>, UpnpError> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    socket.set_multicast_ttl_v4(2)?;
    let mx = u8::try_from(timeout.as_secs().clamp(1, 5)).unwrap_or(1);
    for target in SEARCH_TARGETS {
        socket.send_to(encode_msearch(target, mx).as_bytes(), to)?;
    }
    let mut deadline = Instant::now() + timeout;
    let mut found: Vec<Url> = Vec::new();
    let mut buf = [0u8; 2048];
    while let Some(left) = deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
    {
        socket.set_read_timeout(Some(left))?;
        match socket.recv_from(&mut buf) {
            Ok((n, _)) => {
                if let Ok(r) = parse_ssdp_response(&buf[..n])
                    && SEARCH_TARGETS.contains(&r.st.as_str())
                    && !found.contains(&r.location)
                {
                    found.push(r.location);
                    // One gateway answers every target in a burst: a short
                    // grace period collects the rest, then we stop.
                    deadline = deadline.min(Instant::now() + Duration::from_millis(100));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    if found.is_empty() {
        Err(UpnpError::NotFound)
    } else {
        Ok(found)
    }
}

/// A blocking client for one IGD's WAN connection service.
#[derive(Debug, Clone)]
pub struct IgdClient {
    service: IgdService,
    timeout: Duration,
}

impl IgdClient {
    /// Fetches the description at `location` and picks the service.
    ///
    /// # Errors
    /// [`UpnpError`].
    pub fn from_location(location: &Url, timeout: Duration) -> Result<Self, UpnpError> {
        let r = http::request("GET", location, &[], &[], timeout)?;
        if r.status != 200 {
            return Err(UpnpError::Http(HttpError::Malformed("description status")));
        }
        Ok(Self {
            service: parse_description(&r.body, location)?,
            timeout,
        })
    }

    /// Searches (see [`search`]) and takes the first gateway whose
    /// description has a usable service.
    ///
    /// # Errors
    /// [`UpnpError`]; the last failure when none works.
    pub fn discover(ssdp_to: SocketAddr, timeout: Duration) -> Result<Self, UpnpError> {
        let mut last = UpnpError::NotFound;
        for location in search(ssdp_to, timeout)? {
            match Self::from_location(&location, timeout) {
                Ok(c) => return Ok(c),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The service in use.
    pub fn service(&self) -> &IgdService {
        &self.service
    }

    fn call(
        &self,
        action: &str,
        args: &[(&str, String)],
    ) -> Result<Vec<(String, String)>, UpnpError> {
        let body = soap_request(&self.service.service_type, action, args);
        let soap_action = format!("\"{}#{action}\"", self.service.service_type);
        let r = http::request(
            "POST",
            &self.service.control_url,
            &[
                ("Content-Type", "text/xml; charset=\"utf-8\""),
                ("SOAPAction", &soap_action),
            ],
            body.as_bytes(),
            self.timeout,
        )?;
        parse_soap_response(r.status, &r.body, action)
    }

    /// The gateway's external address.
    ///
    /// # Errors
    /// [`UpnpError`]; [`UpnpError::Soap`] when the answer is not an IP.
    pub fn external_ip(&self) -> Result<IpAddr, UpnpError> {
        let out = self.call("GetExternalIPAddress", &[])?;
        arg(&out, "NewExternalIPAddress")
            .and_then(|s| s.parse().ok())
            .ok_or(UpnpError::Soap("NewExternalIPAddress"))
    }

    /// Our address as seen on the way to the gateway.
    fn internal_client(&self) -> Result<IpAddr, UpnpError> {
        super::local_ip_towards(self.service.control_url.addr.ip())
            .ok_or(UpnpError::Io(io::Error::other("no route to the gateway")))
    }

    fn mapping_args(
        &self,
        external_port: u16,
        internal_port: u16,
        lease: Duration,
    ) -> Result<Vec<(&'static str, String)>, UpnpError> {
        Ok(vec![
            ("NewRemoteHost", String::new()),
            ("NewExternalPort", external_port.to_string()),
            ("NewProtocol", "UDP".to_owned()),
            ("NewInternalPort", internal_port.to_string()),
            ("NewInternalClient", self.internal_client()?.to_string()),
            ("NewEnabled", "1".to_owned()),
            ("NewPortMappingDescription", MAPPING_DESCRIPTION.to_owned()),
            ("NewLeaseDuration", lease.as_secs().min(604_800).to_string()),
        ])
    }

    /// AddPortMapping of UDP `external_port` → us:`internal_port`.
    ///
    /// # Errors
    /// [`UpnpError`] (e.g. [`UpnpErrorCode::ConflictInMappingEntry`]).
    pub fn add_port_mapping(
        &self,
        external_port: u16,
        internal_port: u16,
        lease: Duration,
    ) -> Result<(), UpnpError> {
        let args = self.mapping_args(external_port, internal_port, lease)?;
        self.call("AddPortMapping", &args).map(|_| ())
    }

    /// AddAnyPortMapping (IGD 2): the gateway picks the external port when
    /// `external_port` is taken. Returns the port reserved.
    ///
    /// # Errors
    /// [`UpnpError`]; [`UpnpErrorCode::InvalidAction`] on IGD 1.
    pub fn add_any_port_mapping(
        &self,
        external_port: u16,
        internal_port: u16,
        lease: Duration,
    ) -> Result<u16, UpnpError> {
        let args = self.mapping_args(external_port, internal_port, lease)?;
        let out = self.call("AddAnyPortMapping", &args)?;
        arg(&out, "NewReservedPort")
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p != 0)
            .ok_or(UpnpError::Soap("NewReservedPort"))
    }

    /// DeletePortMapping of UDP `external_port`.
    ///
    /// # Errors
    /// [`UpnpError`] ([`UpnpErrorCode::NoSuchEntry`] when it is gone).
    pub fn delete_port_mapping(&self, external_port: u16) -> Result<(), UpnpError> {
        self.call(
            "DeletePortMapping",
            &[
                ("NewRemoteHost", String::new()),
                ("NewExternalPort", external_port.to_string()),
                ("NewProtocol", "UDP".to_owned()),
            ],
        )
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msearch_and_answer() {
        let m = encode_msearch(SEARCH_TARGETS[1], 2);
        assert!(m.starts_with("M-SEARCH * HTTP/1.1\r\n"));
        assert!(m.contains("MAN: \"ssdp:discover\"\r\n"));
        assert!(m.ends_with("\r\n\r\n"));
        let answer = b"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nUSN: uuid:x\r\nEXT:\r\nLocation: http://10.0.0.1:5000/rootDesc.xml\r\n\r\n";
        let r = parse_ssdp_response(answer).unwrap();
        assert_eq!(
            r.location,
            Url::parse("http://10.0.0.1:5000/rootDesc.xml").unwrap()
        );
        assert_eq!(r.st, SEARCH_TARGETS[1]);
        for bad in [
            &b"HTTP/1.1 404 No\r\nST: a\r\nLOCATION: http://1.2.3.4/\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nST: a\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nLOCATION: http://1.2.3.4/\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nST: a\r\nLOCATION: http://gw.local/\r\n\r\n",
            b"NOTIFY * HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n",
        ] {
            assert!(parse_ssdp_response(bad).is_err());
        }
    }

    const DESC: &str = r#"<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major></specVersion>
<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType><controlURL>/ctl/L3F</controlURL></service></serviceList>
<deviceList><device><deviceList><device><serviceList>
<service><serviceType>urn:schemas-upnp-org:service:WANPPPConnection:1</serviceType><controlURL>/ctl/PPP</controlURL></service>
<service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><controlURL>/ctl/IPConn</controlURL></service>
</serviceList></device></deviceList></device></deviceList></device></root>"#;

    #[test]
    fn description_picks_the_preferred_service() {
        let loc = Url::parse("http://10.0.0.1:5000/rootDesc.xml").unwrap();
        let s = parse_description(DESC.as_bytes(), &loc).unwrap();
        assert_eq!(s.service_type, SERVICE_TYPES[1]);
        assert_eq!(
            s.control_url,
            Url::parse("http://10.0.0.1:5000/ctl/IPConn").unwrap()
        );
        // URLBase wins over the location.
        let with_base = DESC.replace(
            "<specVersion>",
            "<URLBase>http://10.0.0.9:80/</URLBase><specVersion>",
        );
        let s = parse_description(with_base.as_bytes(), &loc).unwrap();
        assert_eq!(s.control_url.addr, "10.0.0.9:80".parse().unwrap());
        // PPP only.
        let ppp = DESC.replace("WANIPConnection", "Other");
        assert_eq!(
            parse_description(ppp.as_bytes(), &loc)
                .unwrap()
                .service_type,
            SERVICE_TYPES[2]
        );
        let none = ppp.replace("WANPPPConnection", "Other2");
        assert!(matches!(
            parse_description(none.as_bytes(), &loc),
            Err(UpnpError::NoService)
        ));
        assert!(parse_description(b"<root>", &loc).is_err());
    }

    #[test]
    fn soap_round_trip_and_faults() {
        let req = soap_request(
            SERVICE_TYPES[0],
            "AddPortMapping",
            &[("A", "x<y".to_owned())],
        );
        let parsed = xml::parse(req.as_bytes()).unwrap();
        let call = parsed
            .child("Body")
            .unwrap()
            .child("AddPortMapping")
            .unwrap();
        assert_eq!(call.child_text("A"), Some("x<y"));

        let ok = br#"<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:AddAnyPortMappingResponse xmlns:u="x"><NewReservedPort>4001</NewReservedPort></u:AddAnyPortMappingResponse></s:Body></s:Envelope>"#;
        let out = parse_soap_response(200, ok, "AddAnyPortMapping").unwrap();
        assert_eq!(arg(&out, "NewReservedPort"), Some("4001"));
        assert!(parse_soap_response(200, ok, "GetExternalIPAddress").is_err());
        assert!(parse_soap_response(500, ok, "AddAnyPortMapping").is_err());

        let fault = br#"<s:Envelope xmlns:s="x"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>718</errorCode><errorDescription>ConflictInMappingEntry</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>"#;
        match parse_soap_response(500, fault, "AddPortMapping") {
            Err(UpnpError::Fault { code, description }) => {
                assert_eq!(code, UpnpErrorCode::ConflictInMappingEntry);
                assert_eq!(description, "ConflictInMappingEntry");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(UpnpErrorCode::from_code(999), UpnpErrorCode::Other(999));
        for bad in [
            &b"<a/>"[..],
            b"<s:Envelope/>",
            b"junk",
            b"<s:Envelope><s:Body><s:Fault/></s:Body></s:Envelope>",
        ] {
            assert!(parse_soap_response(200, bad, "X").is_err());
        }
    }
}
