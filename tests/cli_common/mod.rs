//! Helpers of the `net` command's end-to-end tests.

#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// The `net` binary built for these tests.
pub fn net() -> assert_cmd::Command {
    assert_cmd::Command::new(env!("CARGO_BIN_EXE_net"))
}

/// The `net` binary as a plain process (for long-running commands).
pub fn net_process() -> Command {
    Command::new(env!("CARGO_BIN_EXE_net"))
}

/// A fresh directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("net-cli-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `net --json ARGS`, expects success, parses standard output.
pub fn json(args: &[&str]) -> Value {
    let output = net().arg("--json").args(args).output().unwrap();
    assert!(
        output.status.success(),
        "net {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Runs `net --json ARGS` whose output is JSON Lines.
pub fn json_lines(args: &[&str]) -> Vec<Value> {
    let output = net().arg("--json").args(args).output().unwrap();
    assert!(
        output.status.success(),
        "net {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The lines a child prints, delivered from a reader thread so a test can
/// wait for one with a deadline instead of blocking forever.
pub struct Lines {
    rx: mpsc::Receiver<String>,
}

impl Lines {
    /// Reads `stdout` on a thread.
    pub fn new(stdout: ChildStdout) -> Self {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { rx }
    }

    /// The next line that satisfies `want`, within `timeout`.
    pub fn wait_for(&self, timeout: Duration, want: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) if want(&line) => return line,
                Ok(_) => {}
                Err(e) => panic!("no expected line within {timeout:?}: {e}"),
            }
        }
    }
}

/// A child process killed when the test ends, however it ends.
pub struct Running {
    pub child: Child,
}

impl Running {
    /// Starts `net ARGS` with standard output piped.
    pub fn spawn(args: &[&str]) -> (Self, Lines) {
        let mut child = net_process()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let lines = Lines::new(child.stdout.take().unwrap());
        (Self { child }, lines)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a RedEX vector's tree (`tests/vectors/redex_disk.json`) under `dir`.
pub fn materialise(scenario: &Value, dir: &Path) {
    for item in scenario["tree"].as_array().unwrap() {
        let path = dir.join(item["path"].as_str().unwrap());
        if item["kind"] == "dir" {
            fs::create_dir_all(&path).unwrap();
        } else {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, hex::decode(item["hex"].as_str().unwrap()).unwrap()).unwrap();
        }
    }
}

/// The RedEX vectors.
pub fn redex_vectors() -> Value {
    let path = format!(
        "{}/tests/vectors/redex_disk.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}
