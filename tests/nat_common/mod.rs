//! The real-NAT test bed: Linux network namespaces joined by veth links,
//! a router namespace doing NAT with nftables, and optionally Debian's
//! `miniupnpd` (NAT-PMP, PCP, UPnP IGD) on that router.
//!
//! ```text
//!  client (192.168.77.2) ── lan │ router │ wan (11.0.0.2) ── br0 in "ix" ─┬─ inet1 (11.0.0.1)
//!                                 nft NAT                                  └─ inet2 (11.0.0.3, .4)
//! ```
//!
//! The "internet" is 11.0.0.0/24: miniupnpd refuses to map behind a private
//! or reserved external address (RFC 1918, 100.64/10, the TEST-NETs), so
//! the WAN side needs a public-looking one. None of these namespaces has a
//! link to the host's network, so nothing addressed to 11.0.0.0/24 or
//! 192.168.77.0/24 ever leaves the bed.
//!
//! - Cone: `masquerade` (Linux keeps the source port when it is free: one
//!   external endpoint for every destination, i.e. endpoint-independent
//!   mapping; conntrack filters by address and port).
//! - Full cone: the cone plus a DNAT of the home ports to the client
//!   (endpoint-independent filtering for them).
//! - Symmetric: `masquerade random` (a random external port per
//!   connection, i.e. per destination address and port).
//!
//! Every name carries the test process id and a counter, so parallel tests
//! and parallel runs never collide; interface names live inside the
//! namespaces (created there directly), so they never collide either.
//! [`Bed`]'s `Drop` kills the processes it started (by pid) and deletes
//! its namespaces (which removes their links), also when a test panics.
//!
//! Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN for `setns`), `ip`, `nft` and
//! `/usr/sbin/miniupnpd` (`scripts/ensure-system-packages.sh`, run by
//! `make setup`). Without them the tests fail with a message saying so:
//! they never skip silently.

#![allow(dead_code)]

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The router's NAT behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatKind {
    /// Endpoint-independent mapping, address-and-port-dependent filtering
    /// (a port-restricted cone).
    Cone,
    /// Endpoint-independent mapping and filtering (a full cone): the cone's
    /// masquerade plus a forward of the home ports ([`FULL_CONE_PORTS`]) to
    /// the client, so anyone may send to a mapping.
    FullCone,
    /// A new random port per destination.
    Symmetric,
}

/// The client ports a full-cone router forwards from its WAN side.
pub const FULL_CONE_PORTS: (u16, u16) = (40_000, 40_999);

pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 2);
pub const ROUTER_LAN_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 1);
pub const ROUTER_WAN_IP: Ipv4Addr = Ipv4Addr::new(11, 0, 0, 2);
/// The second home (beds with two homes): client, router LAN and WAN.
pub const CLIENT2_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 78, 2);
pub const ROUTER2_LAN_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 78, 1);
pub const ROUTER2_WAN_IP: Ipv4Addr = Ipv4Addr::new(11, 0, 0, 5);
pub const INET1_IP: Ipv4Addr = Ipv4Addr::new(11, 0, 0, 1);
pub const INET2_IP: Ipv4Addr = Ipv4Addr::new(11, 0, 0, 3);
/// A second address of inet2 that classification never probes.
pub const INET2_ALT_IP: Ipv4Addr = Ipv4Addr::new(11, 0, 0, 4);

/// Namespaces of a bed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Router,
    Inet1,
    Inet2,
    Exchange,
    /// The second home's client (beds built with two homes).
    Client2,
    /// The second home's router.
    Router2,
}

impl Role {
    fn suffix(self) -> &'static str {
        match self {
            Role::Client => "c",
            Role::Router => "r",
            Role::Inet1 => "i1",
            Role::Inet2 => "i2",
            Role::Exchange => "ix",
            Role::Client2 => "c2",
            Role::Router2 => "r2",
        }
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Fails the test, with the reason, when this machine cannot build a bed.
pub fn require_bed() {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false);
    assert!(
        root,
        "the NAT test bed needs root: it creates network namespaces, veth links and nftables rules"
    );
    let have = |cmd: &str, arg: &str| {
        Command::new(cmd)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(
        have("ip", "-V")
            && have("nft", "--version")
            && std::path::Path::new("/usr/sbin/miniupnpd").exists(),
        "the NAT test bed needs iproute2, nftables and miniupnpd: run scripts/ensure-system-packages.sh (make setup)"
    );
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn output(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// One bed; everything it made goes away on drop.
pub struct Bed {
    prefix: String,
    made: Vec<String>,
    children: Vec<Child>,
    dir: PathBuf,
    pub kind: NatKind,
    /// The second home's NAT, when there is one.
    pub kind2: Option<NatKind>,
}

impl Bed {
    /// Builds a bed with a `kind` router, with miniupnpd when asked.
    pub fn new(kind: NatKind, miniupnpd: bool) -> Bed {
        Self::build_bed(kind, None, miniupnpd)
    }

    /// Builds a bed with two homes behind `kind` and `kind2` routers
    /// (the second home's roles are `Client2` and `Router2`).
    pub fn two_homes(kind: NatKind, kind2: NatKind) -> Bed {
        Self::build_bed(kind, Some(kind2), false)
    }

    fn build_bed(kind: NatKind, kind2: Option<NatKind>, miniupnpd: bool) -> Bed {
        require_bed();
        let prefix = format!(
            "nb{}x{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(&prefix);
        let mut bed = Bed {
            prefix,
            made: Vec::new(),
            children: Vec::new(),
            dir,
            kind,
            kind2,
        };
        if let Err(e) = bed.build(miniupnpd) {
            // `bed` drops here and removes what was made.
            panic!("building the NAT test bed: {e}");
        }
        bed
    }

    /// The namespace name of `role`.
    pub fn ns(&self, role: Role) -> String {
        format!("{}-{}", self.prefix, role.suffix())
    }

    fn ip(&self, role: Role, args: &str) -> Result<(), String> {
        let ns = self.ns(role);
        let mut full = vec!["ip", "-n", ns.as_str()];
        full.extend(args.split_whitespace());
        run(&full)
    }

    fn roles(&self) -> Vec<Role> {
        let mut roles = vec![
            Role::Exchange,
            Role::Router,
            Role::Client,
            Role::Inet1,
            Role::Inet2,
        ];
        if self.kind2.is_some() {
            roles.extend([Role::Router2, Role::Client2]);
        }
        roles
    }

    fn build(&mut self, miniupnpd: bool) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| e.to_string())?;
        for role in self.roles() {
            let ns = self.ns(role);
            run(&["ip", "netns", "add", &ns])?;
            self.made.push(ns);
            self.ip(role, "link set lo up")?;
        }
        // Links are created inside their namespaces, never in the host's.
        self.ip(Role::Exchange, "link add br0 type bridge")?;
        self.ip(Role::Exchange, "link set br0 up")?;
        for (role, ip, port) in [
            (Role::Inet1, vec![INET1_IP], "p-i1"),
            (Role::Inet2, vec![INET2_IP, INET2_ALT_IP], "p-i2"),
        ] {
            self.link(role, "eth0", Role::Exchange, port)?;
            self.bridge(port)?;
            for ip in ip {
                self.ip(role, &format!("addr add {ip}/24 dev eth0"))?;
            }
            self.ip(role, "link set eth0 up")?;
        }
        self.home(
            Role::Router,
            Role::Client,
            ROUTER_WAN_IP,
            ROUTER_LAN_IP,
            CLIENT_IP,
            self.kind,
            "p-r",
        )?;
        if let Some(kind2) = self.kind2 {
            self.home(
                Role::Router2,
                Role::Client2,
                ROUTER2_WAN_IP,
                ROUTER2_LAN_IP,
                CLIENT2_IP,
                kind2,
                "p-r2",
            )?;
        }
        if miniupnpd {
            self.start_miniupnpd()?;
        }
        Ok(())
    }

    fn link(&self, a: Role, a_name: &str, b: Role, b_name: &str) -> Result<(), String> {
        run(&[
            "ip",
            "link",
            "add",
            a_name,
            "netns",
            &self.ns(a),
            "type",
            "veth",
            "peer",
            "name",
            b_name,
            "netns",
            &self.ns(b),
        ])
    }

    fn bridge(&self, port: &str) -> Result<(), String> {
        self.ip(Role::Exchange, &format!("link set {port} master br0"))?;
        self.ip(Role::Exchange, &format!("link set {port} up"))
    }

    /// A home: a client behind a `kind` router whose WAN is on the bridge.
    #[allow(clippy::too_many_arguments)]
    fn home(
        &self,
        router: Role,
        client: Role,
        wan_ip: Ipv4Addr,
        lan_ip: Ipv4Addr,
        client_ip: Ipv4Addr,
        kind: NatKind,
        bridge_port: &str,
    ) -> Result<(), String> {
        self.link(router, "wan", Role::Exchange, bridge_port)?;
        self.bridge(bridge_port)?;
        self.link(router, "lan", client, "eth0")?;
        self.ip(router, &format!("addr add {wan_ip}/24 dev wan"))?;
        self.ip(router, &format!("addr add {lan_ip}/24 dev lan"))?;
        self.ip(router, "link set wan up")?;
        self.ip(router, "link set lan up")?;
        self.ip(client, &format!("addr add {client_ip}/24 dev eth0"))?;
        self.ip(client, "link set eth0 up")?;
        self.ip(client, &format!("route add default via {lan_ip}"))?;
        let r = self.ns(router);
        run(&[
            "ip",
            "netns",
            "exec",
            &r,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ])?;
        let masquerade = match kind {
            NatKind::Cone | NatKind::FullCone => "masquerade",
            NatKind::Symmetric => "masquerade random",
        };
        // A full cone: the WAN side's home ports reach the client (same
        // port, which masquerade keeps), and the forward chain lets them.
        let (full_cone_dnat, full_cone_accept) = match kind {
            NatKind::FullCone => (
                format!(
                    "iifname \"wan\" udp dport {}-{} dnat ip to {client_ip};",
                    FULL_CONE_PORTS.0, FULL_CONE_PORTS.1
                ),
                "ct status dnat accept".to_owned(),
            ),
            _ => (String::new(), String::new()),
        };
        // The chains miniupnpd fills (its nftables defaults: table inet
        // filter; miniupnpd, prerouting_miniupnpd, postrouting_miniupnpd).
        // Like a home router, it drops unsolicited input on the WAN side:
        // the drop also keeps conntrack from confirming an entry for it,
        // which would otherwise steal the port a later outgoing packet
        // needs (and break hole punching, as with a real router that
        // remembered the stray packet).
        let ruleset = format!(
            "table inet filter {{
  chain forward {{ type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname \"lan\" accept
    {full_cone_accept}
    jump miniupnpd
  }}
  chain input {{ type filter hook input priority 0; policy drop;
    ct state established,related accept
    iifname {{ \"lan\", \"lo\" }} accept
  }}
  chain miniupnpd {{}}
  chain prerouting {{ type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; {full_cone_dnat} }}
  chain postrouting {{ type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; oifname \"wan\" {masquerade}; }}
  chain prerouting_miniupnpd {{}}
  chain postrouting_miniupnpd {{}}
}}
"
        );
        let rules = self.dir.join(format!("{}.nft", router.suffix()));
        std::fs::write(&rules, ruleset).map_err(|e| e.to_string())?;
        run(&[
            "ip",
            "netns",
            "exec",
            &r,
            "nft",
            "-f",
            rules.to_str().unwrap_or_default(),
        ])
    }

    fn start_miniupnpd(&mut self) -> Result<(), String> {
        let conf = self.dir.join("miniupnpd.conf");
        let leases = self.dir.join("leases");
        std::fs::write(
            &conf,
            format!(
                "ext_ifname=wan\nlistening_ip=lan\nhttp_port=5555\n\
                 enable_natpmp=yes\nenable_upnp=yes\nsecure_mode=yes\nsystem_uptime=no\n\
                 uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07d\nlease_file={}\n\
                 allow 1024-65535 192.168.77.0/24 1024-65535\n\
                 deny 0-65535 0.0.0.0/0 0-65535\n",
                leases.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let log = File::create(self.dir.join("miniupnpd.log")).map_err(|e| e.to_string())?;
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns(Role::Router),
                "/usr/sbin/miniupnpd",
                "-d",
                "-f",
            ])
            .arg(&conf)
            // Its own pid file: with the default one a second bed's
            // miniupnpd exits ("already running").
            .arg("-P")
            .arg(self.dir.join("miniupnpd.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("miniupnpd: {e}"))?;
        self.children.push(child);
        // Ready when its NAT-PMP/PCP and HTTP sockets are bound.
        let r = self.ns(Role::Router);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let udp = output(&["ip", "netns", "exec", &r, "ss", "-lnu"]).unwrap_or_default();
            let tcp = output(&["ip", "netns", "exec", &r, "ss", "-lnt"]).unwrap_or_default();
            if udp.contains(":5351") && tcp.contains(":5555") {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "miniupnpd did not come up: {}",
                    std::fs::read_to_string(self.dir.join("miniupnpd.log")).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The router's miniupnpd log (for failure messages).
    pub fn miniupnpd_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("miniupnpd.log")).unwrap_or_default()
    }

    /// The router's NAT rules that miniupnpd manages.
    pub fn upnp_rules(&self) -> String {
        output(&[
            "ip",
            "netns",
            "exec",
            &self.ns(Role::Router),
            "nft",
            "list",
            "chain",
            "inet",
            "filter",
            "prerouting_miniupnpd",
        ])
        .unwrap_or_else(|e| e)
    }

    /// Runs `f` on a thread inside `role`'s namespace; sockets it creates
    /// belong to that namespace (and keep it when handed to other threads).
    pub fn run_in<T: Send + 'static>(
        &self,
        role: Role,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        let path = format!("/run/netns/{}", self.ns(role));
        std::thread::spawn(move || {
            enter_netns(&path);
            f()
        })
    }

    /// Runs `f` inside `role` and waits for it.
    pub fn in_ns<T: Send + 'static>(
        &self,
        role: Role,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        match self.run_in(role, f).join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Binds a UDP socket in `role`.
    pub fn udp(&self, role: Role, addr: SocketAddrV4) -> UdpSocket {
        self.in_ns(role, move || {
            UdpSocket::bind(addr).expect("bind in namespace")
        })
    }
}

fn enter_netns(path: &str) {
    let file = File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // SAFETY: setns(2) on a file descriptor we own and keep open for the
    // call; CLONE_NEWNET moves only this thread to the namespace and
    // touches no memory of ours.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
}

impl Drop for Bed {
    fn drop(&mut self) {
        for child in &mut self.children {
            // `ip netns exec` execs miniupnpd, so this is its pid.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        for ns in self.made.iter().rev() {
            let _ = run(&["ip", "netns", "del", ns]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A "what address do you see" UDP echo: answers each datagram with the
/// sender's address as text. Stops when dropped (bounded: it polls a flag
/// every 50 ms and answers at most 10 000 datagrams).
pub struct Echo {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Echo {
    pub fn start(bed: &Bed, role: Role, addr: SocketAddrV4) -> Echo {
        let socket = bed.udp(role, addr);
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let mut answered = 0;
            while !flag.load(Ordering::Relaxed) && answered < 10_000 {
                if let Ok((_, from)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(from.to_string().as_bytes(), from);
                    answered += 1;
                }
            }
        });
        Echo {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Asks an echo at `server` what address it sees `socket` at (a few tries,
/// each waiting up to 1 s).
pub fn observed(socket: &UdpSocket, server: SocketAddr) -> SocketAddr {
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    let mut buf = [0u8; 128];
    for _ in 0..5 {
        socket.send_to(b"who am i", server).expect("send");
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            if from == server {
                let text = std::str::from_utf8(&buf[..n]).expect("utf8");
                return text.parse().expect("an address");
            }
        }
    }
    panic!("no answer from the echo at {server}");
}

/// Waits up to `wait` for a datagram equal to `payload` on `socket`;
/// returns where it came from.
pub fn receive(socket: &UdpSocket, payload: &[u8], wait: Duration) -> Option<SocketAddr> {
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        if left.is_zero() {
            return None;
        }
        socket.set_read_timeout(Some(left)).expect("timeout");
        match socket.recv_from(&mut buf) {
            Ok((n, from)) if &buf[..n] == payload => return Some(from),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}
