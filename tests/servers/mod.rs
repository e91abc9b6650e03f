//! Real NATS (JetStream) and Redis servers for the adapter suites, each on
//! a free 127.0.0.1 port with its data in a fresh directory, stopped when
//! dropped. `make test` installs the binaries (scripts/ensure-system-packages.sh);
//! a missing binary fails the suite with that hint rather than skipping it.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// nats-server with JetStream (file storage in the data directory).
    Nats,
    /// redis-server with an fsync-always append-only file.
    Redis,
}

/// A running server (or a stopped one that can be started again on the
/// same port and data).
pub struct Server {
    kind: Kind,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    fsync_always: bool,
}

fn find_binary(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not installed: run scripts/ensure-system-packages.sh (make test does)"
            )
        })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Server {
    /// Starts a server of `kind` on a free port (Redis with an
    /// fsync-always append-only file: acknowledged writes survive a kill).
    pub fn start(kind: Kind) -> Self {
        Self::start_with(kind, true)
    }

    /// As [`start`](Self::start), Redis fsyncing its append-only file once
    /// a second instead: for benchmarks that measure clients, not the disk.
    pub fn start_for_bench(kind: Kind) -> Self {
        Self::start_with(kind, false)
    }

    fn start_with(kind: Kind, fsync_always: bool) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "net-{}-{}-{}",
            match kind {
                Kind::Nats => "nats",
                Kind::Redis => "redis",
            },
            std::process::id(),
            free_port()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("server data directory");
        let mut s = Self {
            kind,
            port: free_port(),
            dir,
            child: None,
            fsync_always,
        };
        s.run();
        s
    }

    /// The client URL.
    pub fn url(&self) -> String {
        match self.kind {
            Kind::Nats => format!("nats://127.0.0.1:{}", self.port),
            Kind::Redis => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn run(&mut self) {
        let mut cmd = match self.kind {
            Kind::Nats => {
                let mut c = Command::new(find_binary("nats-server"));
                c.args([
                    "-a",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-js",
                    "-sd",
                ])
                .arg(self.dir.join("js"));
                c
            }
            Kind::Redis => {
                let mut c = Command::new(find_binary("redis-server"));
                c.args([
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    &self.port.to_string(),
                    "--save",
                    "",
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    if self.fsync_always {
                        "always"
                    } else {
                        "everysec"
                    },
                    "--daemonize",
                    "no",
                    "--dir",
                ])
                .arg(&self.dir);
                c
            }
        };
        let log = std::fs::File::create(self.dir.join("server.log")).expect("server log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start the server");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                // JetStream needs a moment after the port opens.
                std::thread::sleep(Duration::from_millis(200));
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "{:?} exited with {status}: {}",
                    self.kind,
                    std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "{:?} did not start", self.kind);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL: no shutdown handshake) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the server and starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.kill();
        self.run();
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the server: it keeps its
    /// connections but answers nothing while frozen.
    pub fn freeze(&self, frozen: bool) {
        if let Some(c) = &self.child {
            let sig = if frozen { libc::SIGSTOP } else { libc::SIGCONT };
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(c.id() as libc::pid_t, sig);
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.freeze(false);
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
