//! Batched UDP I/O: `recvmmsg` / `sendmmsg` on Linux (one syscall for up to
//! [`BATCH`] datagrams), plain `recv_from` / `send_to` loops elsewhere. The
//! socket is non-blocking; these calls never wait.
//!
//! This is the only module of the mesh with `unsafe` (the two syscalls and
//! the socket-address conversions around them).

use std::io;
use std::net::{SocketAddr, UdpSocket};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Datagrams per batch.
pub const BATCH: usize = 32;
/// Receive buffer per datagram: one byte more than the largest datagram we
/// accept, so an oversized one is detected instead of silently truncated.
pub const RECV_BUF: usize = crate::wire::MAX_PACKET_SIZE + crate::wire::ROUTING_HEADER_SIZE + 1;

/// Reusable receive buffers.
pub struct RecvBatch {
    bufs: Vec<Box<[u8; RECV_BUF]>>,
    lens: [usize; BATCH],
    addrs: [Option<SocketAddr>; BATCH],
    truncated: [bool; BATCH],
    count: usize,
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    /// Buffers for one batch.
    pub fn new() -> Self {
        Self {
            bufs: (0..BATCH).map(|_| Box::new([0u8; RECV_BUF])).collect(),
            lens: [0; BATCH],
            addrs: [None; BATCH],
            truncated: [false; BATCH],
            count: 0,
        }
    }

    /// Datagram `i`: its bytes (mutable: opened in place), source, and
    /// whether it was longer than [`RECV_BUF`] − 1.
    pub fn get_mut(&mut self, i: usize) -> (&mut [u8], Option<SocketAddr>, bool) {
        let len = self.lens[i];
        (&mut self.bufs[i][..len], self.addrs[i], self.truncated[i])
    }

    /// Receives up to [`BATCH`] datagrams without waiting. `Ok(0)` is never
    /// returned: nothing ready is `WouldBlock`.
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.count = 0;
        let n = recv_batch(socket, self)?;
        self.count = n;
        Ok(n)
    }
}

#[cfg(target_os = "linux")]
fn recv_batch(socket: &UdpSocket, batch: &mut RecvBatch) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: zeroed sockaddr_storage / mmsghdr / iovec are valid values.
    let mut storage: [libc::sockaddr_storage; BATCH] = unsafe { std::mem::zeroed() };
    let mut iovecs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for i in 0..BATCH {
        iovecs[i].iov_base = batch.bufs[i].as_mut_ptr().cast();
        iovecs[i].iov_len = RECV_BUF;
        msgs[i].msg_hdr.msg_name = (&mut storage[i] as *mut libc::sockaddr_storage).cast();
        msgs[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as _;
        msgs[i].msg_hdr.msg_iov = &mut iovecs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: every pointer in `msgs` points into the live locals above and
    // into `batch.bufs`, each buffer RECV_BUF bytes long.
    let n = unsafe {
        libc::recvmmsg(
            socket.as_raw_fd(),
            msgs.as_mut_ptr(),
            BATCH as _,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    for i in 0..n {
        let len = msgs[i].msg_len as usize;
        batch.truncated[i] = len >= RECV_BUF || msgs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        batch.lens[i] = len.min(RECV_BUF);
        batch.addrs[i] = sockaddr_to_std(&storage[i]);
    }
    Ok(n)
}

#[cfg(not(target_os = "linux"))]
fn recv_batch(socket: &UdpSocket, batch: &mut RecvBatch) -> io::Result<usize> {
    let mut n = 0;
    while n < BATCH {
        match socket.recv_from(&mut batch.bufs[n][..]) {
            Ok((len, addr)) => {
                batch.truncated[n] = len >= RECV_BUF;
                batch.lens[n] = len.min(RECV_BUF);
                batch.addrs[n] = Some(addr);
                n += 1;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && n > 0 => break,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
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

/// Sends `datagrams` (all to `to`) without waiting; returns how many went
/// (a prefix). `WouldBlock` when not even the first could.
#[cfg(target_os = "linux")]
pub fn send_batch(socket: &UdpSocket, to: SocketAddr, datagrams: &[&[u8]]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let mut sent = 0;
    // SAFETY: zeroed sockaddr_storage / iovec / mmsghdr are valid values.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let namelen = std_to_sockaddr(&to, &mut storage);
    while sent < datagrams.len() {
        let chunk = &datagrams[sent..(sent + BATCH).min(datagrams.len())];
        let mut iovecs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (i, d) in chunk.iter().enumerate() {
            iovecs[i].iov_base = d.as_ptr() as *mut libc::c_void;
            iovecs[i].iov_len = d.len();
            msgs[i].msg_hdr.msg_name = (&mut storage as *mut libc::sockaddr_storage).cast();
            msgs[i].msg_hdr.msg_namelen = namelen;
            msgs[i].msg_hdr.msg_iov = &mut iovecs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: the headers point at `storage`, `iovecs` and the caller's
        // datagrams, all alive for the call; the kernel only reads them.
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
            return if sent > 0 { Ok(sent) } else { Err(err) };
        }
        sent += n as usize;
        if (n as usize) < chunk.len() {
            break;
        }
    }
    Ok(sent)
}

/// Sends `datagrams` (all to `to`) without waiting; returns how many went.
#[cfg(not(target_os = "linux"))]
pub fn send_batch(socket: &UdpSocket, to: SocketAddr, datagrams: &[&[u8]]) -> io::Result<usize> {
    let mut sent = 0;
    for d in datagrams {
        match socket.send_to(d, to) {
            Ok(_) => sent += 1,
            Err(e) if sent > 0 && e.kind() == io::ErrorKind::WouldBlock => break,
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
