//! A minimal HTTP/1.1 client for talking to an IGD on the local network:
//! `http://` URLs with an IP-literal host (what SSDP answers carry), one
//! request per connection (`Connection: close`), bodies by Content-Length,
//! chunked encoding or end of stream, every step under one deadline, and
//! responses bounded by [`MAX_RESPONSE`]. [`parse_head`] and
//! [`parse_response`] are pure (and fuzzed); SSDP reuses [`parse_head`].

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Largest response read (header and body).
pub const MAX_RESPONSE: usize = 256 * 1024;
/// Most header lines accepted.
pub const MAX_HEADERS: usize = 64;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// Not an `http://IP[:port]/path` URL.
    #[error("HTTP: bad URL {0:?}")]
    Url(String),
    /// Socket trouble.
    #[error("HTTP: {0}")]
    Io(#[from] io::Error),
    /// The deadline passed.
    #[error("HTTP: timed out")]
    Timeout,
    /// The response is not HTTP/1.x, or is malformed.
    #[error("HTTP: malformed response ({0})")]
    Malformed(&'static str),
    /// Larger than [`MAX_RESPONSE`].
    #[error("HTTP: response too large")]
    TooLarge,
}

/// A parsed `http://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// The server.
    pub addr: SocketAddr,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Url {
    /// Parses `http://IP[:port][/path]` (IPv6 in brackets).
    ///
    /// # Errors
    /// [`HttpError::Url`].
    pub fn parse(s: &str) -> Result<Self, HttpError> {
        let bad = || HttpError::Url(s.chars().take(200).collect());
        let rest = s
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case("http://"))
            .map(|_| &s[7..])
            .ok_or_else(bad)?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6.find(']').ok_or_else(bad)?;
            let port = match &v6[end + 1..] {
                "" => 80,
                p => p
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(bad)?,
            };
            (&v6[..end], port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, p.parse().map_err(|_| bad())?),
                None => (authority, 80),
            }
        };
        let ip: IpAddr = host.parse().map_err(|_| bad())?;
        if path.chars().any(|c| c.is_control() || c == ' ') {
            return Err(bad());
        }
        Ok(Self {
            addr: SocketAddr::new(ip, port),
            path: path.to_owned(),
        })
    }

    /// Resolves `reference` (absolute URL, absolute path, or relative
    /// path) against this URL.
    ///
    /// # Errors
    /// [`HttpError::Url`].
    pub fn join(&self, reference: &str) -> Result<Self, HttpError> {
        let reference = reference.trim();
        if reference.len() >= 7 && reference[..7].eq_ignore_ascii_case("http://") {
            return Self::parse(reference);
        }
        if reference.chars().any(|c| c.is_control() || c == ' ') || reference.contains("://") {
            return Err(HttpError::Url(reference.chars().take(200).collect()));
        }
        let path = if reference.starts_with('/') {
            reference.to_owned()
        } else {
            let dir = match self.path.rfind('/') {
                Some(i) => &self.path[..=i],
                None => "/",
            };
            format!("{dir}{reference}")
        };
        Ok(Self {
            addr: self.addr,
            path,
        })
    }

    /// The Host header value.
    pub fn host_header(&self) -> String {
        self.addr.to_string()
    }
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header lines, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A header's value, name matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// A header's value in `headers`, name matched case-insensitively.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The parsed head of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Bytes the head took (up to and including the empty line).
    pub len: usize,
}

/// Parses a status line and headers. `Ok(None)` when the head is not
/// complete yet.
///
/// # Errors
/// [`HttpError::Malformed`].
pub fn parse_head(bytes: &[u8]) -> Result<Option<Head>, HttpError> {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        if bytes.len() > MAX_RESPONSE {
            return Err(HttpError::TooLarge);
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&bytes[..end]).map_err(|_| HttpError::Malformed("not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().ok_or(HttpError::Malformed("empty"))?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(HttpError::Malformed("status line"));
    }
    let code = parts.next().unwrap_or("");
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HttpError::Malformed("status code"));
    }
    let status: u16 = code
        .parse()
        .map_err(|_| HttpError::Malformed("status code"))?;
    let mut headers = Vec::new();
    for line in lines {
        if headers.len() >= MAX_HEADERS {
            return Err(HttpError::Malformed("too many headers"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(HttpError::Malformed("header line"))?;
        if name.is_empty()
            || name
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(HttpError::Malformed("header name"));
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    Ok(Some(Head {
        status,
        headers,
        len: end + 4,
    }))
}

/// Decodes a chunked body; `Ok(None)` when incomplete.
fn dechunk(mut bytes: &[u8]) -> Result<Option<Vec<u8>>, HttpError> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = bytes.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text =
            std::str::from_utf8(&bytes[..eol]).map_err(|_| HttpError::Malformed("chunk size"))?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| HttpError::Malformed("chunk size"))?;
        if size > MAX_RESPONSE || out.len() + size > MAX_RESPONSE {
            return Err(HttpError::TooLarge);
        }
        bytes = &bytes[eol + 2..];
        if size == 0 {
            // Trailers are not used by IGDs; accept only an empty one.
            return if bytes.starts_with(b"\r\n") {
                Ok(Some(out))
            } else if bytes.len() < 2 {
                Ok(None)
            } else {
                Err(HttpError::Malformed("chunk trailer"))
            };
        }
        if bytes.len() < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&bytes[..size]);
        if &bytes[size..size + 2] != b"\r\n" {
            return Err(HttpError::Malformed("chunk end"));
        }
        bytes = &bytes[size + 2..];
    }
}

/// Parses a whole response. `eof`: the stream ended (a body without
/// length runs to it). `Ok(None)` when more bytes are needed.
///
/// # Errors
/// [`HttpError::Malformed`], [`HttpError::TooLarge`].
pub fn parse_response(bytes: &[u8], eof: bool) -> Result<Option<Response>, HttpError> {
    let Some(head) = parse_head(bytes)? else {
        return if eof {
            Err(HttpError::Malformed("truncated head"))
        } else {
            Ok(None)
        };
    };
    let rest = &bytes[head.len..];
    let body = if header(&head.headers, "Transfer-Encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        match dechunk(rest)? {
            Some(b) => b,
            None if eof => return Err(HttpError::Malformed("truncated chunks")),
            None => return Ok(None),
        }
    } else if let Some(len) = header(&head.headers, "Content-Length") {
        let len: usize = len
            .parse()
            .map_err(|_| HttpError::Malformed("content length"))?;
        if len > MAX_RESPONSE {
            return Err(HttpError::TooLarge);
        }
        if rest.len() < len {
            return if eof {
                Err(HttpError::Malformed("truncated body"))
            } else {
                Ok(None)
            };
        }
        rest[..len].to_vec()
    } else if eof {
        rest.to_vec()
    } else {
        return Ok(None);
    };
    Ok(Some(Response {
        status: head.status,
        headers: head.headers,
        body,
    }))
}

/// Sends one request and reads the response, all within `timeout`.
///
/// # Errors
/// [`HttpError`].
pub fn request(
    method: &str,
    url: &Url,
    extra_headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<Response, HttpError> {
    let deadline = Instant::now() + timeout;
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(HttpError::Timeout)
    };
    let mut stream = TcpStream::connect_timeout(&url.addr, left()?).map_err(|e| {
        if e.kind() == io::ErrorKind::TimedOut {
            HttpError::Timeout
        } else {
            HttpError::Io(e)
        }
    })?;
    let mut req = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        url.path,
        url.host_header(),
        body.len()
    );
    for (name, value) in extra_headers {
        req.push_str(name);
        req.push_str(": ");
        req.push_str(value);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    stream.set_write_timeout(Some(left()?))?;
    stream.write_all(req.as_bytes())?;
    stream.write_all(body)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        stream.set_read_timeout(Some(left()?))?;
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(HttpError::Timeout);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_RESPONSE {
            return Err(HttpError::TooLarge);
        }
        if let Some(response) = parse_response(&buf, n == 0)? {
            return Ok(response);
        }
        if n == 0 {
            return Err(HttpError::Malformed("truncated"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("http://10.0.0.1:5000/rootDesc.xml").unwrap();
        assert_eq!(u.addr, "10.0.0.1:5000".parse().unwrap());
        assert_eq!(u.path, "/rootDesc.xml");
        assert_eq!(Url::parse("HTTP://10.0.0.1").unwrap().path, "/");
        assert_eq!(
            Url::parse("http://[fe80::1]:80/x").unwrap().addr,
            "[fe80::1]:80".parse().unwrap()
        );
        for bad in [
            "https://10.0.0.1/",
            "http://router.local/",
            "http://10.0.0.1:99999/",
            "http://10.0.0.1/a b",
            "ftp://x",
            "",
            "http://[::1/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(u.join("/ctl/IPConn").unwrap().path, "/ctl/IPConn");
        assert_eq!(u.join("ctl").unwrap().path, "/ctl");
        let deep = Url::parse("http://10.0.0.1/a/b.xml").unwrap();
        assert_eq!(deep.join("c").unwrap().path, "/a/c");
        assert_eq!(
            deep.join("http://10.0.0.2:1/z").unwrap().addr,
            "10.0.0.2:1".parse().unwrap()
        );
        assert!(deep.join("https://x/").is_err());
    }

    #[test]
    fn responses() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef", false)
            .unwrap()
            .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"abc"[..]));
        assert_eq!(r.header("content-length"), Some("3"));
        // Incomplete until the body arrives.
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab", false).unwrap(),
            None
        );
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab", true).is_err());
        // Chunked.
        let r = parse_response(
            b"HTTP/1.1 500 X\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (500, &b"abcde"[..]));
        // To EOF.
        let r = parse_response(b"HTTP/1.0 200 OK\r\n\r\nxyz", true)
            .unwrap()
            .unwrap();
        assert_eq!(r.body, b"xyz");
    }

    #[test]
    fn garbage() {
        for bad in [
            &b"HTTP/2 200 OK\r\n\r\n"[..],
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"SIP/2.0 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nnocolon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
            b"HTTP/1.1 200 OK\r\n\xff: x\r\n\r\n",
        ] {
            assert!(
                parse_response(bad, true).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let many = format!(
            "HTTP/1.1 200 OK\r\n{}\r\n",
            "a: b\r\n".repeat(MAX_HEADERS + 1)
        );
        assert!(parse_response(many.as_bytes(), true).is_err());
    }
}
