//! `net mesh`: run a node in the foreground (`up`) and query it through its
//! control socket (`peers`, `routes`, `stats`, `ping`, `connect`, `stop`).

pub mod agent;
mod control;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use clap::{Args, Subcommand};
use net::mesh::{MeshConfig, MeshNode};
use serde_json::{Value, json};

use crate::error::{CliError, Context, Result};
use crate::output::{Output, hex, parse_hex};
use agent::Agent;

/// The `net mesh` subcommands.
#[derive(Debug, Subcommand)]
pub enum MeshCommand {
    /// Run a node in the foreground from a JSON config file (the keys of
    /// MeshConfig::from_json), with logs on standard error, until SIGINT,
    /// SIGTERM or `net mesh stop`. Prints one "ready" line once it listens.
    Up(UpArgs),
    /// List the running node's peers (node id, address, health, cipher, ...).
    Peers(NodeArgs),
    /// List the running node's routes: destination, next hop, hops, kind
    /// (direct, relayed or learned from pingwaves).
    Routes(NodeArgs),
    /// Show the running node's counters.
    Stats(NodeArgs),
    /// Show the running node's id, address, public key and contact string.
    Info(NodeArgs),
    /// Measure round trips from the running node to a peer.
    Ping(PingArgs),
    /// Have the running node connect to a peer given by its contact string.
    Connect {
        #[command(flatten)]
        node: NodeArgs,
        /// The peer's contact string, `NODE_ID:PUBLIC_KEY_HEX@IP:PORT`.
        contact: String,
    },
    /// Stop the running node.
    Stop(NodeArgs),
}

/// Which running node to talk to.
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// The node's name (its socket is DIR/net-mesh/NAME.sock).
    #[arg(long, default_value = "default")]
    pub name: String,
    /// The directory holding the control sockets [default: $XDG_RUNTIME_DIR].
    #[arg(long)]
    pub control_dir: Option<PathBuf>,
}

/// Arguments of `net mesh up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// The node's JSON configuration (bind, psk_hex, identity_seed_hex, ...);
    /// without it, defaults (a random identity on an ephemeral loopback port).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Connect to this peer at start (repeatable): `NODE_ID:PUBLIC_KEY_HEX@IP:PORT`,
    /// the contact string another node prints.
    #[arg(long = "peer")]
    pub peers: Vec<String>,
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, default_value = "info")]
    pub log_level: tracing::Level,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// Arguments of `net mesh ping`.
#[derive(Debug, Args)]
pub struct PingArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The peer's node id (hex with 0x, or decimal).
    peer: String,
    /// How many pings.
    #[arg(long, short, default_value_t = 3)]
    count: u32,
    /// How long to wait for each answer, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
}

/// A peer to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// Its node id.
    pub node_id: u64,
    /// Its static X25519 public key.
    pub public_key: [u8; 32],
    /// Its address.
    pub addr: SocketAddr,
}

/// Parses a node id: `0x` hex or decimal.
pub fn parse_node_id(text: &str) -> Result<u64> {
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| {
        CliError::new(format!(
            "node id {text:?}: expected 0x-prefixed hex or decimal"
        ))
    })
}

impl Contact {
    /// The contact string of `node`.
    pub fn of(node: &MeshNode) -> String {
        format!(
            "{:#018x}:{}@{}",
            node.node_id(),
            hex(&node.public_key()),
            node.local_addr()
        )
    }

    /// Parses `NODE_ID:PUBLIC_KEY_HEX@IP:PORT`.
    ///
    /// # Errors
    /// Any part is malformed (the message says which).
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |what: &str| {
            CliError::new(format!(
                "contact {text:?}: {what} (expected NODE_ID:PUBLIC_KEY_HEX@IP:PORT)"
            ))
        };
        let (left, addr) = text.split_once('@').ok_or_else(|| bad("no '@'"))?;
        let (node_id, key) = left
            .split_once(':')
            .ok_or_else(|| bad("no ':' after the node id"))?;
        let node_id = parse_node_id(node_id)?;
        let public_key: [u8; 32] = parse_hex(key)
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| bad("the public key is not 64 hex digits"))?;
        let addr = addr
            .parse()
            .map_err(|_| bad("the address is not IP:PORT"))?;
        Ok(Self {
            node_id,
            public_key,
            addr,
        })
    }
}

/// Runs a `net mesh` subcommand.
pub fn run(command: MeshCommand, out: Output) -> Result<()> {
    let (node, request) = match command {
        MeshCommand::Up(args) => return up(&args, out),
        MeshCommand::Peers(node) => (node, json!({"cmd": "peers"})),
        MeshCommand::Routes(node) => (node, json!({"cmd": "routes"})),
        MeshCommand::Stats(node) => (node, json!({"cmd": "stats"})),
        MeshCommand::Info(node) => (node, json!({"cmd": "info"})),
        MeshCommand::Stop(node) => (node, json!({"cmd": "stop"})),
        MeshCommand::Connect { node, contact } => {
            Contact::parse(&contact)?;
            (node, json!({"cmd": "connect", "contact": contact}))
        }
        MeshCommand::Ping(args) => {
            let peer = parse_node_id(&args.peer)?;
            let request = json!({"cmd": "ping", "peer": peer, "count": args.count, "timeout_ms": args.timeout_ms});
            (args.node, request)
        }
    };
    let path = control::socket_path(node.control_dir.as_deref(), &node.name)?;
    let timeout = Duration::from_millis(request["timeout_ms"].as_u64().unwrap_or(5_000))
        * (request["count"].as_u64().unwrap_or(1) as u32).max(1)
        + Duration::from_secs(10);
    let result = control::call(&path, &request, timeout)?;
    out.emit(&result, |out| {
        print_result(out, request["cmd"].as_str().unwrap_or(""), &result)
    })
}

fn print_result(out: &Output, cmd: &str, result: &Value) -> Result<()> {
    let rows = || result.as_array().cloned().unwrap_or_default();
    match cmd {
        "peers" => {
            out.line(format!(
                "{:<18}  {:<21}  {:<9}  {:<7}  {:>7}  {:>8}  CIPHER",
                "NODE", "ADDRESS", "HEALTH", "IDENTITY", "STREAMS", "IDLE"
            ))?;
            for p in rows() {
                out.line(format!(
                    "{:#018x}  {:<21}  {:<9}  {:<8}  {:>7}  {:>6}ms  {}",
                    p["node_id"].as_u64().unwrap_or(0),
                    p["addr"].as_str().unwrap_or(""),
                    p["health"].as_str().unwrap_or(""),
                    p["identity"].as_str().unwrap_or(""),
                    p["streams"].as_u64().unwrap_or(0),
                    p["idle_ms"].as_u64().unwrap_or(0),
                    p["cipher"].as_str().unwrap_or("")
                ))?;
            }
            Ok(())
        }
        "routes" => {
            out.line(format!(
                "{:<18}  {:<18}  {:>4}  {:<21}  KIND",
                "DESTINATION", "NEXT HOP", "HOPS", "ADDRESS"
            ))?;
            for r in rows() {
                out.line(format!(
                    "{:#018x}  {:#018x}  {:>4}  {:<21}  {}",
                    r["destination"].as_u64().unwrap_or(0),
                    r["next_hop"].as_u64().unwrap_or(0),
                    r["hops"].as_u64().unwrap_or(0),
                    r["addr"].as_str().unwrap_or(""),
                    r["kind"].as_str().unwrap_or("")
                ))?;
            }
            Ok(())
        }
        "ping" => {
            for rtt in result["rtts_us"].as_array().into_iter().flatten() {
                match rtt.as_u64() {
                    Some(us) => out.line(format!(
                        "reply from {:#018x}: time={:.3} ms",
                        result["peer"].as_u64().unwrap_or(0),
                        us as f64 / 1000.0
                    ))?,
                    None => out.line("timeout")?,
                }
            }
            out.line(format!(
                "{} sent, {} received, min/avg/max = {}/{}/{} µs",
                result["sent"],
                result["received"],
                result["min_us"],
                result["avg_us"],
                result["max_us"]
            ))
        }
        "info" => {
            for key in [
                "node_id",
                "addr",
                "public_key",
                "entity_id",
                "contact",
                "socket",
            ] {
                let v = &result[key];
                let text = match v.as_u64() {
                    Some(n) => format!("{n:#018x}"),
                    None => v.as_str().unwrap_or("").to_owned(),
                };
                out.line(format!("{key:<11} {text}"))?;
            }
            Ok(())
        }
        "stats" => {
            if let Some(map) = result.as_object() {
                for (k, v) in map {
                    out.line(format!("{k:<28} {v}"))?;
                }
            }
            Ok(())
        }
        "connect" => out.line(format!(
            "connected to {:#018x}",
            result["node_id"].as_u64().unwrap_or(0)
        )),
        _ => out.line("stopping"),
    }
}

fn info(agent: &Agent, socket: &Path) -> Value {
    let node = agent.node();
    json!({
        "node_id": node.node_id(),
        "addr": node.local_addr().to_string(),
        "public_key": hex(&node.public_key()),
        "entity_id": node.entity_id().to_hex(),
        "contact": Contact::of(node),
        "socket": socket.display().to_string(),
    })
}

fn connect(agent: &Agent, contact: &Contact) -> Result<()> {
    agent
        .node()
        .connect(contact.addr, &contact.public_key, contact.node_id)
        .context(format!(
            "connecting to {:#018x} at {}",
            contact.node_id, contact.addr
        ))
}

fn ping(agent: &Agent, request: &Value) -> Result<Value> {
    let peer = request["peer"]
        .as_u64()
        .ok_or_else(|| CliError::new("ping: no peer"))?;
    let count = request["count"].as_u64().unwrap_or(3).clamp(1, 10_000);
    let timeout = Duration::from_millis(request["timeout_ms"].as_u64().unwrap_or(2000).max(1));
    if !agent.node().peers().iter().any(|p| p.node_id == peer) {
        return Err(CliError::new(format!("no session with {peer:#018x}")));
    }
    let mut rtts = Vec::new();
    for i in 0..count {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(100));
        }
        rtts.push(agent.ping(peer, timeout).ok().map(|d| d.as_micros() as u64));
    }
    let got: Vec<u64> = rtts.iter().flatten().copied().collect();
    let avg = (!got.is_empty()).then(|| got.iter().sum::<u64>() / got.len() as u64);
    Ok(json!({
        "peer": peer,
        "sent": count,
        "received": got.len(),
        "rtts_us": rtts,
        "min_us": got.iter().min(),
        "avg_us": avg,
        "max_us": got.iter().max(),
    }))
}

/// The routing table's routes (`MeshNode::routes_json`), each with the
/// address of its next hop.
fn routes(node: &MeshNode) -> Result<Value> {
    let snapshot: Value = serde_json::from_str(&node.routes_json()).context("routes")?;
    let addrs: std::collections::HashMap<u64, String> = node
        .peers()
        .iter()
        .map(|p| (p.node_id, p.addr.to_string()))
        .collect();
    let routes = snapshot["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|route| {
            let mut route = route.clone();
            let hop = route["next_hop"].as_u64().unwrap_or(0);
            route["addr"] = json!(addrs.get(&hop));
            route
        })
        .collect();
    Ok(Value::Array(routes))
}

/// Answers one control request.
fn handle(
    agent: &Agent,
    socket: &Path,
    stop: &mpsc::Sender<()>,
    request: &Value,
) -> Result<control::Answer> {
    let node = agent.node();
    let result = match request["cmd"].as_str().unwrap_or("") {
        "info" => Ok(info(agent, socket)),
        "peers" => serde_json::from_str(&node.peers_json()).context("peers"),
        "stats" => serde_json::from_str(&node.stats_json()).context("stats"),
        "routes" => routes(node),
        "ping" => ping(agent, request),
        "connect" => {
            let contact = Contact::parse(request["contact"].as_str().unwrap_or(""))?;
            connect(agent, &contact)?;
            Ok(json!({"node_id": contact.node_id}))
        }
        "stop" => {
            // Stop once the answer is written (control::Answer).
            let stop = stop.clone();
            return Ok(control::Answer {
                result: json!({"stopping": true}),
                after: Some(Box::new(move || {
                    let _ = stop.send(());
                })),
            });
        }
        other => Err(CliError::new(format!("unknown request {other:?}"))),
    };
    result.map(control::Answer::from)
}

/// Reads a node configuration file.
///
/// # Errors
/// It cannot be read, or MeshConfig refuses it (the message names the key).
pub fn read_config(path: Option<&Path>) -> Result<MeshConfig> {
    let text = match path {
        Some(path) => {
            std::fs::read_to_string(path).context(format!("reading {}", path.display()))?
        }
        None => String::new(),
    };
    let source = path.map_or_else(
        || "default configuration".to_owned(),
        |p| p.display().to_string(),
    );
    MeshConfig::from_json(&text).context(source)
}

fn up(args: &UpArgs, out: Output) -> Result<()> {
    let config = read_config(args.config.as_deref())?;
    let contacts = args
        .peers
        .iter()
        .map(|p| Contact::parse(p))
        .collect::<Result<Vec<_>>>()?;
    let socket = control::socket_path(args.node.control_dir.as_deref(), &args.node.name)?;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_max_level(args.log_level)
        .try_init();
    let listener = control::bind(&socket)?;
    let node = MeshNode::new(config).context("starting the node")?;
    node.start().context("starting the node")?;
    let agent = Agent::start(node);
    for contact in &contacts {
        connect(&agent, contact)?;
        tracing::info!(peer = format_args!("{:#018x}", contact.node_id), addr = %contact.addr, "connected");
    }
    let (stop_tx, stop_rx) = mpsc::channel();
    {
        let agent = agent.clone();
        let socket = socket.clone();
        let stop_tx = stop_tx.clone();
        std::thread::spawn(move || {
            control::serve(listener, move |r| handle(&agent, &socket, &stop_tx, r))
        });
    }
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .context("installing signal handlers")?;
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            let _ = stop_tx.send(());
        }
    });
    let ready = info(&agent, &socket);
    tracing::info!(node_id = format_args!("{:#018x}", agent.node().node_id()), addr = %agent.node().local_addr(), socket = %socket.display(), "node up");
    if out.is_json() {
        let mut line = ready.clone();
        line["event"] = json!("ready");
        out.json_line(&line)?;
    } else {
        out.line(format!(
            "ready: node {:#018x} on {}; control socket {}; contact {}",
            agent.node().node_id(),
            agent.node().local_addr(),
            socket.display(),
            ready["contact"].as_str().unwrap_or("")
        ))?;
    }
    let _ = stop_rx.recv();
    tracing::info!("stopping");
    let _ = std::fs::remove_file(&socket);
    agent.stop();
    Ok(())
}
