//! `net mesh` end to end: two `net mesh up` processes on loopback, queried
//! through their control sockets. Every wait is on a readiness line or a
//! process exit, with a deadline; nothing sleeps and hopes.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "cli_common/mod.rs"]
mod cli_common;
use cli_common::{Running, net, temp_dir};

const READY: Duration = Duration::from_secs(30);

fn query(control: &str, name: &str, args: &[&str]) -> Value {
    let output = net()
        .args(["--json", "mesh"])
        .args(args)
        .args(["--name", name, "--control-dir", control])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "net mesh {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn wait_exit(running: &mut Running, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = running.child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::park_timeout(Duration::from_millis(20));
    }
    panic!("the node did not exit within {within:?}");
}

#[test]
fn a_pair_on_loopback_answers_peers_ping_and_stop() {
    let dir = temp_dir("mesh");
    let control = dir.join("run");
    fs::create_dir_all(&control).unwrap();
    let control_s = control.to_str().unwrap();
    let config = dir.join("node.json");
    fs::write(
        &config,
        format!(
            r#"{{"psk_hex":"{}","bind":"127.0.0.1:0"}}"#,
            "3c".repeat(32)
        ),
    )
    .unwrap();
    let config_s = config.to_str().unwrap();

    let (mut a, a_lines) = Running::spawn(&[
        "--json",
        "mesh",
        "up",
        "--config",
        config_s,
        "--name",
        "a",
        "--control-dir",
        control_s,
    ]);
    let ready: Value =
        serde_json::from_str(&a_lines.wait_for(READY, |l| l.contains("\"ready\""))).unwrap();
    let a_id = ready["node_id"].as_u64().unwrap();
    let contact = ready["contact"].as_str().unwrap().to_owned();
    let socket = control.join("net-mesh/a.sock");
    assert_eq!(
        fs::metadata(&socket).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(control.join("net-mesh"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );

    let (mut b, b_lines) = Running::spawn(&[
        "--json",
        "mesh",
        "up",
        "--config",
        config_s,
        "--name",
        "b",
        "--control-dir",
        control_s,
        "--peer",
        &contact,
    ]);
    let ready_b: Value =
        serde_json::from_str(&b_lines.wait_for(READY, |l| l.contains("\"ready\""))).unwrap();
    let b_id = ready_b["node_id"].as_u64().unwrap();

    // `ready` is printed after the connect returned: both sides have the session.
    let peers = query(control_s, "b", &["peers"]);
    assert_eq!(peers[0]["node_id"], a_id, "{peers}");
    let peers = query(control_s, "a", &["peers"]);
    assert_eq!(peers[0]["node_id"], b_id, "{peers}");
    let routes = query(control_s, "a", &["routes"]);
    assert_eq!(routes[0]["destination"], b_id);

    let ping = query(
        control_s,
        "b",
        &["ping", &format!("{a_id:#x}"), "--count", "3"],
    );
    assert_eq!(ping["received"], 3, "{ping}");
    assert!(ping["max_us"].as_u64().unwrap() > 0);
    let stats = query(control_s, "a", &["stats"]);
    assert!(stats["events_received"].as_u64().unwrap() >= 3, "{stats}");

    // A peer without a session is one clear error.
    let output = net()
        .args([
            "mesh",
            "ping",
            "12345",
            "--name",
            "a",
            "--control-dir",
            control_s,
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("no session"), "{stderr}");

    query(control_s, "b", &["stop"]);
    assert_eq!(wait_exit(&mut b, Duration::from_secs(20)), Some(0));
    assert!(!control.join("net-mesh/b.sock").exists());
    query(control_s, "a", &["stop"]);
    assert_eq!(wait_exit(&mut a, Duration::from_secs(20)), Some(0));
    let output = net()
        .args(["mesh", "peers", "--name", "a", "--control-dir", control_s])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn a_bad_config_is_one_error_naming_the_key() {
    let dir = temp_dir("mesh-bad");
    let config = dir.join("bad.json");
    fs::write(&config, r#"{"num_shards":0}"#).unwrap();
    let output = net()
        .args([
            "mesh",
            "up",
            "--config",
            config.to_str().unwrap(),
            "--control-dir",
            dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("num_shards"), "{stderr}");
}

#[test]
fn bench_runs_between_two_processes() {
    let output = net()
        .args([
            "--json", "bench", "--events", "3000", "--size", "100", "--pings", "20",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["events"], 3000);
    assert!(result["events_per_sec"].as_f64().unwrap() > 0.0);
    assert!(result["rtt_p50_us"].as_u64().unwrap() > 0);
}
