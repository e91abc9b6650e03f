//! Batched UDP I/O. On Linux: `recvmmsg` with UDP GRO (the kernel hands
//! over runs of same-sized datagrams from one sender as one buffer plus a
//! segment size) and `sendmmsg` whose messages carry runs of equal-sized
//! datagrams as one UDP GSO send (`UDP_SEGMENT`); both offloads are probed
//! at start and GSO falls back to plain datagrams by itself when the kernel
//! refuses it at send time. Elsewhere: plain `recv_from` / `send_to` loops.
//! The socket is non-blocking; these calls never wait.
//!
//! This is the only module of the mesh with `unsafe` (the syscalls, the
//! control messages and the socket-address conversions around them).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Messages per `recvmmsg` / `sendmmsg`.
pub const BATCH: usize = 32;
/// Receive buffer per datagram: one byte more than the largest datagram we
/// accept, so an oversized one is detected instead of silently truncated.
pub const RECV_BUF: usize = crate::wire::MAX_PACKET_SIZE + crate::wire::ROUTING_HEADER_SIZE + 1;
/// Receive buffer per message with GRO on: a coalesced run is at most one
/// maximal UDP payload.
const GRO_BUF: usize = 65_536;
/// Messages per `recvmmsg` with GRO on (each buffer is 64 KiB).
const GRO_BATCH: usize = 16;
/// At most this many datagrams in one GSO send (the kernel's
/// UDP_MAX_SEGMENTS).
const GSO_MAX_SEGMENTS: usize = 64;
/// At most this many bytes in one GSO send (a UDP payload over IPv4 or
/// IPv6, with room to spare).
const GSO_MAX_BYTES: usize = 65_000;

/// The kernel offloads a socket uses.
#[derive(Debug)]
pub struct Offload {
    gso: AtomicBool,
    /// Receives are GRO-coalesced (fixed at start).
    pub gro: bool,
}

impl Offload {
    /// Probes and enables what is asked for and available.
    pub fn enable(socket: &UdpSocket, gso: bool, gro: bool) -> Self {
        Self {
            gso: AtomicBool::new(gso && gso_available(socket)),
            gro: gro && enable_gro(socket),
        }
    }

    /// Whether sends use GSO now.
    pub fn gso(&self) -> bool {
        self.gso.load(Ordering::Relaxed)
    }

    /// Turns GSO off for good (the kernel refused it); true the first time.
    pub fn disable_gso(&self) -> bool {
        self.gso.swap(false, Ordering::Relaxed)
    }
}

#[cfg(target_os = "linux")]
fn gso_available(socket: &UdpSocket) -> bool {
    use std::os::fd::AsRawFd;
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a valid descriptor and an int-sized out-buffer with its length.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_SEGMENT,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    rc == 0
}

#[cfg(not(target_os = "linux"))]
fn gso_available(_socket: &UdpSocket) -> bool {
    false
}

#[cfg(target_os = "linux")]
fn enable_gro(socket: &UdpSocket) -> bool {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid descriptor and an int option value with its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_GRO,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}

#[cfg(not(target_os = "linux"))]
fn enable_gro(_socket: &UdpSocket) -> bool {
    false
}

/// The kernel's view of a route's MTU (the interface's, or a smaller path
/// MTU it learned): a UDP socket of each family, created with the node's
/// socket (so in its network namespace), `connect`ed to the peer only to
/// ask (`IP_MTU` / `IPV6_MTU`). Nothing is ever sent from it.
#[derive(Debug)]
pub struct MtuOracle {
    v4: Option<std::sync::Mutex<UdpSocket>>,
    v6: Option<std::sync::Mutex<UdpSocket>>,
}

impl MtuOracle {
    /// Sockets for both families (either may be missing).
    pub fn new() -> Self {
        let open = |addr: &str| UdpSocket::bind(addr).ok().map(std::sync::Mutex::new);
        Self {
            v4: open("0.0.0.0:0"),
            v6: open("[::]:0"),
        }
    }

    /// The MTU of the route to `to`, if the kernel says.
    pub fn path_mtu(&self, to: SocketAddr) -> Option<usize> {
        let socket = match to {
            SocketAddr::V4(_) => self.v4.as_ref()?,
            SocketAddr::V6(_) => self.v6.as_ref()?,
        };
        let socket = socket.lock().unwrap_or_else(|e| e.into_inner());
        socket.connect(to).ok()?;
        route_mtu(&socket, to.is_ipv6())
    }
}

impl Default for MtuOracle {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(target_os = "linux")]
fn route_mtu(socket: &UdpSocket, v6: bool) -> Option<usize> {
    use std::os::fd::AsRawFd;
    let (level, name) = if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_MTU)
    } else {
        (libc::IPPROTO_IP, libc::IP_MTU)
    };
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a valid descriptor and an int-sized out-buffer with its length.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (rc == 0 && value > 0).then_some(value as usize)
}

#[cfg(not(target_os = "linux"))]
fn route_mtu(_socket: &UdpSocket, _v6: bool) -> Option<usize> {
    None
}

/// One received datagram inside a message buffer.
#[derive(Debug, Clone, Copy, Default)]
struct Segment {
    msg: usize,
    offset: usize,
    len: usize,
    oversized: bool,
}

/// Reusable receive buffers.
pub struct RecvBatch {
    bufs: Vec<Vec<u8>>,
    addrs: Vec<Option<SocketAddr>>,
    segments: Vec<Segment>,
    gro: bool,
    /// The longest datagram accepted; longer ones are flagged oversized.
    limit: usize,
    /// Datagrams of the last `recv` that came in GRO-coalesced messages.
    pub coalesced: usize,
}

impl RecvBatch {
    /// Buffers for one batch: [`BATCH`] of [`RECV_BUF`] bytes, or with GRO
    /// 16 of 64 KiB. With `large` (the node takes datagrams of up to
    /// `MAX_LARGE_PACKET_SIZE` from Net peers), buffers are 64 KiB either
    /// way.
    pub fn new(gro: bool, large: bool) -> Self {
        let (n, size) = match (gro, large) {
            (true, _) => (GRO_BATCH, GRO_BUF),
            (false, true) => (BATCH, GRO_BUF),
            (false, false) => (BATCH, RECV_BUF),
        };
        let limit = if large {
            crate::wire::MAX_LARGE_PACKET_SIZE + crate::wire::ROUTING_HEADER_SIZE
        } else {
            RECV_BUF - 1
        };
        Self {
            bufs: (0..n).map(|_| vec![0u8; size]).collect(),
            addrs: vec![None; n],
            segments: Vec::with_capacity(n),
            gro,
            limit,
            coalesced: 0,
        }
    }

    /// Datagram `i`: its bytes (mutable: opened in place), source, and
    /// whether it was longer than the batch accepts.
    pub fn get_mut(&mut self, i: usize) -> (&mut [u8], Option<SocketAddr>, bool) {
        let s = self.segments[i];
        (
            &mut self.bufs[s.msg][s.offset..s.offset + s.len],
            self.addrs[s.msg],
            s.oversized,
        )
    }

    /// Receives what is ready without waiting; returns the number of
    /// datagrams (a GRO message counts for each datagram it holds). `Ok(0)`
    /// is never returned: nothing ready is `WouldBlock`.
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.segments.clear();
        self.coalesced = 0;
        recv_batch(socket, self)?;
        Ok(self.segments.len())
    }

    /// Records message `msg` of `len` bytes, split into `segment`-sized
    /// datagrams when the kernel coalesced it (`segment` > 0).
    fn push_message(&mut self, msg: usize, len: usize, truncated: bool, segment: usize) {
        let limit = self.limit;
        if segment == 0 || segment >= len {
            self.segments.push(Segment {
                msg,
                offset: 0,
                len: len.min(limit),
                oversized: truncated || len > limit,
            });
            return;
        }
        let mut offset = 0;
        while offset < len {
            let l = segment.min(len - offset);
            self.segments.push(Segment {
                msg,
                offset,
                len: l.min(limit),
                oversized: l > limit || (truncated && offset + l == len),
            });
            self.coalesced += 1;
            offset += l;
        }
    }
}

#[cfg(target_os = "linux")]
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct CmsgBuf([u8; 64]);

#[cfg(target_os = "linux")]
fn recv_batch(socket: &UdpSocket, batch: &mut RecvBatch) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let n_msgs = batch.bufs.len();
    // SAFETY: zeroed sockaddr_storage / mmsghdr / iovec are valid values.
    let mut storage: [libc::sockaddr_storage; BATCH] = unsafe { std::mem::zeroed() };
    let mut iovecs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    let mut control = [CmsgBuf([0; 64]); BATCH];
    for i in 0..n_msgs {
        iovecs[i].iov_base = batch.bufs[i].as_mut_ptr().cast();
        iovecs[i].iov_len = batch.bufs[i].len();
        msgs[i].msg_hdr.msg_name = (&mut storage[i] as *mut libc::sockaddr_storage).cast();
        msgs[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as _;
        msgs[i].msg_hdr.msg_iov = &mut iovecs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        if batch.gro {
            msgs[i].msg_hdr.msg_control = control[i].0.as_mut_ptr().cast();
            msgs[i].msg_hdr.msg_controllen = control[i].0.len() as _;
        }
    }
    // SAFETY: every pointer in `msgs` points into the live locals above and
    // into `batch.bufs`, each iovec giving its buffer's true length.
    let n = unsafe {
        libc::recvmmsg(
            socket.as_raw_fd(),
            msgs.as_mut_ptr(),
            n_msgs as _,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    for i in 0..n as usize {
        let len = msgs[i].msg_len as usize;
        let truncated = msgs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        batch.addrs[i] = sockaddr_to_std(&storage[i]);
        let segment = if batch.gro {
            gro_segment(&msgs[i].msg_hdr)
        } else {
            0
        };
        batch.push_message(i, len, truncated, segment);
    }
    Ok(())
}

/// The segment size of a GRO-coalesced message (0: a single datagram).
#[cfg(target_os = "linux")]
fn gro_segment(hdr: &libc::msghdr) -> usize {
    // SAFETY: the kernel filled `msg_control` / `msg_controllen` with
    // well-formed control messages; CMSG_* walk them within those bounds.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(hdr);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_UDP && (*cmsg).cmsg_type == libc::UDP_GRO {
                let value = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::c_int);
                return value.max(0) as usize;
            }
            cmsg = libc::CMSG_NXTHDR(hdr, cmsg);
        }
    }
    0
}

#[cfg(not(target_os = "linux"))]
fn recv_batch(socket: &UdpSocket, batch: &mut RecvBatch) -> io::Result<()> {
    for n in 0..batch.bufs.len() {
        match socket.recv_from(&mut batch.bufs[n][..]) {
            Ok((len, addr)) => {
                batch.addrs[n] = Some(addr);
                batch.push_message(n, len, false, 0);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && n > 0 => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn sockaddr_to_std(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let sin: &libc::sockaddr_in =
                unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let sin6: &libc::sockaddr_in6 =
                unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(target_os = "linux")]
fn std_to_sockaddr(addr: &SocketAddr, storage: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sin: &mut libc::sockaddr_in =
                unsafe { &mut *(storage as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as _;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            std::mem::size_of::<libc::sockaddr_in>() as _
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6: &mut libc::sockaddr_in6 =
                unsafe { &mut *(storage as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as _;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>() as _
        }
    }
}

/// What one [`send_batch`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    /// Datagrams handed to the kernel (a prefix of those given).
    pub datagrams: usize,
    /// Of the messages that carried them, how many were GSO sends.
    pub gso_sends: usize,
}

/// Consecutive runs of `datagrams` that can travel as one GSO send: the
/// same destination (`dest_of`, one index per datagram; all the same when
/// empty), equal sizes, optionally ending with one shorter datagram, within
/// the kernel's limits. Without `gso` every run is one datagram.
fn gso_runs(datagrams: &[&[u8]], dest_of: &[usize], gso: bool) -> Vec<std::ops::Range<usize>> {
    let dest = |i: usize| dest_of.get(i).copied().unwrap_or(0);
    let mut runs = Vec::new();
    let mut i = 0;
    while i < datagrams.len() {
        let size = datagrams[i].len();
        let mut end = i + 1;
        if gso && size > 0 {
            let mut total = size;
            while end < datagrams.len()
                && end - i < GSO_MAX_SEGMENTS
                && dest(end) == dest(i)
                && total + datagrams[end].len() <= GSO_MAX_BYTES
                && datagrams[end].len() <= size
                && !datagrams[end].is_empty()
            {
                total += datagrams[end].len();
                end += 1;
                if datagrams[end - 1].len() < size {
                    break; // a shorter datagram can only end a run
                }
            }
        }
        runs.push(i..end);
        i = end;
    }
    runs
}

/// Whether a failed send is the kernel refusing GSO (the caller then
/// resends plainly and stops asking for it).
pub fn is_gso_refusal(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO | libc::EINVAL | libc::EOPNOTSUPP | libc::ENOPROTOOPT)
    )
}

/// Sends `datagrams` (all to `to`) without waiting, runs of equal-sized
/// ones as single GSO sends when `gso`; returns how many went (a prefix).
/// `WouldBlock` when not even the first could; with `gso`, an error
/// [`is_gso_refusal`] says when the kernel refused the offload.
#[cfg(test)]
pub fn send_batch(
    socket: &UdpSocket,
    to: SocketAddr,
    datagrams: &[&[u8]],
    gso: bool,
) -> io::Result<Sent> {
    send_batch_to(socket, &[to], datagrams, &[], gso)
}

/// As `send_batch` (tests), datagram `i` going to `dests[dest_of[i]]` (all to
/// `dests[0]` when `dest_of` is empty): one `sendmmsg` carries datagrams
/// for many peers (a publish to its subscribers, the writer draining
/// several outboxes); GSO runs never span two destinations.
#[cfg(target_os = "linux")]
pub fn send_batch_to(
    socket: &UdpSocket,
    dests: &[SocketAddr],
    datagrams: &[&[u8]],
    dest_of: &[usize],
    gso: bool,
) -> io::Result<Sent> {
    use std::os::fd::AsRawFd;
    debug_assert!(dest_of.is_empty() || dest_of.len() == datagrams.len());
    let runs = gso_runs(datagrams, dest_of, gso);
    let mut sent = Sent::default();
    let names: Vec<(libc::sockaddr_storage, libc::socklen_t)> = dests
        .iter()
        .map(|to| {
            // SAFETY: a zeroed sockaddr_storage is a valid value.
            let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            let len = std_to_sockaddr(to, &mut storage);
            (storage, len)
        })
        .collect();
    let mut iovecs: Vec<libc::iovec> = datagrams
        .iter()
        .map(|d| libc::iovec {
            iov_base: d.as_ptr() as *mut libc::c_void,
            iov_len: d.len(),
        })
        .collect();
    let mut control = vec![CmsgBuf([0; 64]); runs.len().min(BATCH)];
    let mut r = 0;
    while r < runs.len() {
        let chunk = &runs[r..(r + BATCH).min(runs.len())];
        // SAFETY: zeroed mmsghdrs are valid values.
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (k, run) in chunk.iter().enumerate() {
            let (storage, namelen) = &names[dest_of.get(run.start).copied().unwrap_or(0)];
            let hdr = &mut msgs[k].msg_hdr;
            // The kernel only reads the name (sendmmsg takes it through a
            // mutable pointer all the same).
            hdr.msg_name = (storage as *const libc::sockaddr_storage).cast_mut().cast();
            hdr.msg_namelen = *namelen;
            hdr.msg_iov = iovecs[run.clone()].as_mut_ptr();
            hdr.msg_iovlen = run.len() as _;
            if run.len() > 1 {
                set_segment_size(hdr, &mut control[k], datagrams[run.start].len() as u16);
            }
        }
        // SAFETY: the headers point at `names`, `iovecs` (which point at
        // the caller's datagrams) and `control`, all alive for the call;
        // the kernel only reads them.
        let n = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                msgs.as_mut_ptr(),
                chunk.len() as _,
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return if sent.datagrams > 0 {
                Ok(sent)
            } else {
                Err(err)
            };
        }
        for run in &chunk[..n as usize] {
            sent.datagrams += run.len();
            sent.gso_sends += usize::from(run.len() > 1);
        }
        r += n as usize;
        if (n as usize) < chunk.len() {
            break;
        }
    }
    Ok(sent)
}

/// Attaches a `UDP_SEGMENT` control message of `size` to `hdr`.
#[cfg(target_os = "linux")]
fn set_segment_size(hdr: &mut libc::msghdr, buf: &mut CmsgBuf, size: u16) {
    // SAFETY: CMSG_SPACE(2) fits the 64-byte, 8-aligned buffer; the header
    // points at that buffer, so CMSG_FIRSTHDR returns its start and the
    // data written stays inside it.
    unsafe {
        let space = libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) as usize;
        hdr.msg_control = buf.0.as_mut_ptr().cast();
        hdr.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(hdr);
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = libc::UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut u16, size);
    }
}

/// Sends `datagrams` (all to `to`) without waiting; returns how many went.
#[cfg(not(target_os = "linux"))]
pub fn send_batch_to(
    socket: &UdpSocket,
    dests: &[SocketAddr],
    datagrams: &[&[u8]],
    dest_of: &[usize],
    _gso: bool,
) -> io::Result<Sent> {
    let mut sent = Sent::default();
    for (i, d) in datagrams.iter().enumerate() {
        let to = dests[dest_of.get(i).copied().unwrap_or(0)];
        match socket.send_to(d, to) {
            Ok(_) => sent.datagrams += 1,
            Err(e) if sent.datagrams > 0 && e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(sent)
}

/// Sets the socket's kernel buffer sizes (best effort: the kernel may clamp).
pub fn set_buffers(socket: &UdpSocket, recv: usize, send: usize) -> io::Result<()> {
    let s = socket2::SockRef::from(socket);
    s.set_recv_buffer_size(recv)?;
    s.set_send_buffer_size(send)?;
    Ok(())
}

/// Waits until the socket is writable or `timeout` passes (for a send that
/// got `WouldBlock` on a caller's thread).
#[cfg(unix)]
pub fn wait_writable(socket: &UdpSocket, timeout: std::time::Duration) -> bool {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut pfd, 1, ms) > 0 }
}

/// Waits until the socket is writable or `timeout` passes.
#[cfg(not(unix))]
pub fn wait_writable(_socket: &UdpSocket, timeout: std::time::Duration) -> bool {
    std::thread::sleep(timeout.min(std::time::Duration::from_millis(1)));
    true
}

/// Registers `socket` with the current tokio reactor for readability only.
/// (A socket registered for writability too would wake the runtime on every
/// datagram the kernel frees after sending — EPOLLOUT — stealing the
/// sending thread's core.) Must run inside a runtime.
pub fn register_readable(socket: UdpSocket) -> io::Result<AsyncFd<UdpSocket>> {
    // SAFETY: a std `UdpSocket` owns its descriptor: it stays open, and
    // `as_raw_fd` returns that same descriptor, for as long as the socket
    // (now owned by the `AsyncFd`) lives.
    unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }.map_err(|e| e.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(lens: &[usize], gso: bool) -> Vec<std::ops::Range<usize>> {
        let bufs: Vec<Vec<u8>> = lens.iter().map(|&l| vec![0; l]).collect();
        let refs: Vec<&[u8]> = bufs.iter().map(|b| b.as_slice()).collect();
        gso_runs(&refs, &[], gso)
    }

    #[test]
    fn gso_runs_are_equal_sizes_ending_with_at_most_one_shorter() {
        assert_eq!(
            sizes(&[1200, 1200, 1200, 700, 1200], true),
            vec![0..4, 4..5]
        );
        assert_eq!(sizes(&[500, 900, 900], true), vec![0..1, 1..3]);
        assert_eq!(sizes(&[1200; 3], false), vec![0..1, 1..2, 2..3]);
        // At most 64 segments and 65 000 bytes per send.
        assert_eq!(sizes(&[100; 130], true), vec![0..64, 64..128, 128..130]);
        assert_eq!(sizes(&[8192; 10], true), vec![0..7, 7..10]);
    }

    #[test]
    fn gso_and_gro_carry_every_datagram_over_loopback() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        tx.set_nonblocking(true).unwrap();
        let off_rx = Offload::enable(&rx, true, true);
        let off_tx = Offload::enable(&tx, true, true);
        let data: Vec<Vec<u8>> = (0..40u8)
            .map(|i| vec![i; if i == 39 { 300 } else { 1200 }])
            .collect();
        let refs: Vec<&[u8]> = data.iter().map(|d| d.as_slice()).collect();
        let sent = send_batch(&tx, rx.local_addr().unwrap(), &refs, off_tx.gso()).unwrap();
        assert_eq!(sent.datagrams, 40);
        if cfg!(target_os = "linux") {
            assert_eq!(sent.gso_sends, 1, "40 datagrams in one GSO send");
        }
        let mut batch = RecvBatch::new(off_rx.gro, false);
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while got.len() < 40 && std::time::Instant::now() < deadline {
            match batch.recv(&rx) {
                Ok(n) => {
                    for i in 0..n {
                        let (buf, from, oversized) = batch.get_mut(i);
                        assert_eq!(from, Some(tx.local_addr().unwrap()));
                        assert!(!oversized);
                        got.push(buf.to_vec());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    wait_readable(&rx);
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, data);
    }

    #[test]
    fn gso_runs_never_span_two_destinations() {
        let bufs: Vec<Vec<u8>> = (0..6).map(|_| vec![0; 1200]).collect();
        let refs: Vec<&[u8]> = bufs.iter().map(|b| b.as_slice()).collect();
        assert_eq!(
            gso_runs(&refs, &[0, 0, 1, 1, 1, 0], true),
            vec![0..2, 2..5, 5..6]
        );
    }

    #[test]
    fn one_send_reaches_several_destinations_in_order() {
        let rxs: Vec<UdpSocket> = (0..3)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.set_nonblocking(true).unwrap();
        let gso = Offload::enable(&tx, true, false).gso();
        let dests: Vec<SocketAddr> = rxs.iter().map(|r| r.local_addr().unwrap()).collect();
        // Interleaved destinations; equal sizes per destination.
        let dest_of = [0, 0, 1, 2, 2, 2, 1];
        let data: Vec<Vec<u8>> = dest_of
            .iter()
            .enumerate()
            .map(|(i, &d)| vec![i as u8; 500 + d * 100])
            .collect();
        let refs: Vec<&[u8]> = data.iter().map(|d| d.as_slice()).collect();
        let sent = send_batch_to(&tx, &dests, &refs, &dest_of, gso).unwrap();
        assert_eq!(sent.datagrams, 7);
        for (d, rx) in rxs.iter().enumerate() {
            rx.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            let want: Vec<&Vec<u8>> = data
                .iter()
                .zip(dest_of)
                .filter(|&(_, of)| of == d)
                .map(|(x, _)| x)
                .collect();
            for w in want {
                let mut buf = [0u8; 2048];
                let (n, from) = rx.recv_from(&mut buf).unwrap();
                assert_eq!(from, tx.local_addr().unwrap());
                assert_eq!(&buf[..n], &w[..], "destination {d}");
            }
        }
    }

    fn wait_readable(socket: &UdpSocket) {
        use std::os::fd::AsRawFd;
        let mut pfd = libc::pollfd {
            fd: socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe { libc::poll(&mut pfd, 1, 1000) };
    }
}

#[cfg(all(test, target_os = "linux"))]
mod mtu_tests {
    use super::*;

    #[test]
    fn the_loopback_route_carries_64_kib() {
        let oracle = MtuOracle::new();
        let mtu = oracle.path_mtu("127.0.0.1:9".parse().unwrap()).unwrap();
        assert!(mtu >= 65_535, "{mtu}");
    }
}
