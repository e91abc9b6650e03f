//! Zenoh's two roles: a peer-mode session per process (no scouting), the
//! receiver listening on 127.0.0.1 over TLS or TCP, the sender connecting
//! to it; one `put` per message on a publisher with blocking congestion
//! control (so, like Net's `send_blocking`, nothing is dropped), and a
//! callback subscriber counting what arrives.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use zenoh::Wait;
use zenoh::bytes::ZBytes;
use zenoh::pubsub::Publisher;
use zenoh::qos::CongestionControl;

use crate::child::{Control, emit, rtt_summary};
use crate::workload::{PING_SIZE, System, Workload};

const DATA_KEY: &str = "mesh2p/data";
const PONG_KEY: &str = "mesh2p/pong";
/// How long the sender waits for the receiver's subscriber to be known.
const MATCH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the pinger waits for a pong before sending the next ping.
const PONG_TIMEOUT: Duration = Duration::from_millis(500);

/// The files of the run-time CA and the receiver's certificate.
pub struct Certs {
    dir: PathBuf,
}

impl Certs {
    /// The directory given to children with `--certs`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A fresh CA and a leaf for `127.0.0.1` / `localhost` signed by it,
    /// written as PEM into `dir` (created).
    pub fn generate(dir: PathBuf) -> Result<Self, String> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let err = |e: rcgen::Error| format!("rcgen: {e}");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "mesh2p benchmark CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().map_err(err)?;
        let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let mut leaf_params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .map_err(err)?;
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        leaf_params.use_authority_key_identifier_extension = true;
        leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf_params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let leaf_key = KeyPair::generate().map_err(err)?;
        let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer).map_err(err)?;

        let certs = Self { dir };
        for (name, pem) in [
            ("ca.pem", ca_cert.pem()),
            ("cert.pem", leaf_cert.pem()),
            ("key.pem", leaf_key.serialize_pem()),
        ] {
            let path = certs.dir.join(name);
            std::fs::write(&path, pem).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(certs)
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A peer-mode configuration: no scouting, the given endpoints, and the
/// TLS files when `certs` is set.
fn config(
    listen: &[String],
    connect: &[String],
    certs: Option<&Path>,
) -> Result<zenoh::Config, String> {
    let mut config = json!({
        "mode": "peer",
        "scouting": {"multicast": {"enabled": false}},
        "listen": {"endpoints": listen},
        "connect": {"endpoints": connect},
    });
    if let Some(dir) = certs {
        let path = |name: &str| dir.join(name).display().to_string();
        config["transport"] = json!({"link": {"tls": {
            "root_ca_certificate": path("ca.pem"),
            "listen_private_key": path("key.pem"),
            "listen_certificate": path("cert.pem"),
        }}});
    }
    zenoh::Config::from_json5(&config.to_string()).map_err(|e| format!("zenoh config: {e}"))
}

fn open(config: zenoh::Config) -> Result<zenoh::Session, String> {
    zenoh::open(config)
        .wait()
        .map_err(|e| format!("zenoh::open: {e}"))
}

fn publisher<'a>(session: &'a zenoh::Session, key: &'a str) -> Result<Publisher<'a>, String> {
    session
        .declare_publisher(key)
        .congestion_control(CongestionControl::Block)
        .wait()
        .map_err(|e| format!("declare_publisher: {e}"))
}

fn scheme(system: System) -> &'static str {
    if system == System::ZenohTls {
        "tls"
    } else {
        "tcp"
    }
}

/// A port free on 127.0.0.1 now (the listener is closed before zenoh binds
/// it; nothing else on this machine races for it in practice).
fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// Listens, subscribes, counts (and echoes pings) until `stop`.
pub fn receiver(
    system: System,
    workload: Workload,
    certs: Option<&Path>,
    control: &'static Control,
) -> Result<Value, String> {
    let endpoint = format!("{}/127.0.0.1:{}", scheme(system), free_port()?);
    // Leaked: the pong publisher borrows the session from inside a
    // callback that must be 'static (the process ends after the run).
    let session: &'static zenoh::Session = Box::leak(Box::new(open(config(
        std::slice::from_ref(&endpoint),
        &[],
        certs,
    )?)?));
    let subscriber = match workload {
        Workload::Stream { .. } => session
            .declare_subscriber(DATA_KEY)
            .callback(move |_sample| control.add(1))
            .wait(),
        Workload::PingPong => {
            let pong = publisher(session, PONG_KEY)?;
            session
                .declare_subscriber(DATA_KEY)
                .callback(move |ping| {
                    if pong.put(ping.payload().clone()).wait().is_ok() {
                        control.add(1);
                    }
                })
                .wait()
        }
    }
    .map_err(|e| format!("declare_subscriber: {e}"))?;
    emit(&json!({"ready": {"peer": endpoint}}));
    control.wait_stop();
    drop(subscriber);
    let _ = session.close().wait();
    Ok(json!({"count": control.count.load(std::sync::atomic::Ordering::Relaxed)}))
}

/// Connects to `endpoint`, waits until the receiver's subscriber is known,
/// then puts from `go` until `stop`.
pub fn sender(
    workload: Workload,
    endpoint: &str,
    certs: Option<&Path>,
    control: &Control,
) -> Result<Value, String> {
    let session = open(config(&[], &[endpoint.to_string()], certs)?)?;
    let data = publisher(&session, DATA_KEY)?;
    let started = Instant::now();
    while !data
        .matching_status()
        .wait()
        .map_err(|e| format!("matching_status: {e}"))?
        .matching()
    {
        if started.elapsed() > MATCH_TIMEOUT {
            return Err(format!("no subscriber matched within {MATCH_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let pongs = match workload {
        Workload::PingPong => Some(
            session
                .declare_subscriber(PONG_KEY)
                .wait()
                .map_err(|e| format!("declare_subscriber: {e}"))?,
        ),
        Workload::Stream { .. } => None,
    };
    emit(&json!({"ready": {}}));
    let mut pong_timeouts = 0u64;
    let put = |payload: ZBytes| data.put(payload).wait().map_err(|e| format!("put: {e}"));
    if control.wait_go() {
        match (workload, &pongs) {
            (Workload::Stream { size, per_call }, _) => {
                // One shared buffer, cloned by reference count per put, as
                // zenoh's own throughput example does.
                let payload = ZBytes::from(vec![0xa5u8; size]);
                while !control.stopped() {
                    for _ in 0..per_call {
                        put(payload.clone())?;
                    }
                    control.add(per_call as u64);
                }
            }
            (Workload::PingPong, Some(pongs)) => {
                let mut seq = 0u64;
                while !control.stopped() {
                    seq += 1;
                    let mut ping = vec![0u8; PING_SIZE];
                    ping[..8].copy_from_slice(&seq.to_le_bytes());
                    let sent = Instant::now();
                    put(ZBytes::from(ping))?;
                    let deadline = sent + PONG_TIMEOUT;
                    let mut answered = false;
                    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                        match pongs.recv_timeout(left) {
                            Ok(Some(pong)) => {
                                if pong.payload().to_bytes().get(..8)
                                    == Some(&seq.to_le_bytes()[..])
                                {
                                    answered = true;
                                    break;
                                }
                            }
                            Ok(None) => break,
                            Err(e) => return Err(format!("recv pong: {e}")),
                        }
                    }
                    if answered {
                        control.record_rtt(sent.elapsed());
                        control.add(1);
                    } else {
                        pong_timeouts += 1;
                    }
                }
            }
            (Workload::PingPong, None) => unreachable!("ping-pong declares its pong subscriber"),
        }
    }
    control.stopped_then_wait_close();
    drop(pongs);
    drop(data);
    let _ = session.close().wait();
    Ok(json!({
        "count": control.count.load(std::sync::atomic::Ordering::Relaxed),
        "pong_timeouts": pong_timeouts,
        "rtt": rtt_summary(control),
    }))
}
