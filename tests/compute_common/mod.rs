//! Shared daemons of the compute integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use net::compute::{CausalEvent, DaemonError, DaemonHost, MeshDaemon};

/// Counts events, refusing any that is not its producer's next sequence.
#[derive(Default)]
pub struct Counter {
    pub last: BTreeMap<u64, u64>,
    pub count: u64,
}

impl MeshDaemon for Counter {
    fn name(&self) -> &str {
        "counter"
    }

    fn is_stateful(&self) -> bool {
        true
    }

    fn process(&mut self, event: &CausalEvent) -> Result<Vec<Vec<u8>>, DaemonError> {
        let last = self.last.get(&event.producer()).copied().unwrap_or(0);
        if event.sequence() != last + 1 {
            return Err(DaemonError::ProcessFailed(format!(
                "sequence {} after {last}",
                event.sequence()
            )));
        }
        self.last.insert(event.producer(), event.sequence());
        self.count += 1;
        Ok(vec![self.count.to_le_bytes().to_vec()])
    }

    fn snapshot(&self) -> Result<Vec<u8>, DaemonError> {
        let mut out = self.count.to_le_bytes().to_vec();
        for (producer, seq) in &self.last {
            out.extend_from_slice(&producer.to_le_bytes());
            out.extend_from_slice(&seq.to_le_bytes());
        }
        Ok(out)
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), DaemonError> {
        let bad = || DaemonError::RestoreFailed("bad counter state".into());
        if state.len() < 8 || !(state.len() - 8).is_multiple_of(16) {
            return Err(bad());
        }
        let u64_at = |at: usize| u64::from_le_bytes(state[at..at + 8].try_into().unwrap());
        self.count = u64_at(0);
        self.last = (8..state.len())
            .step_by(16)
            .map(|at| (u64_at(at), u64_at(at + 8)))
            .collect();
        Ok(())
    }
}

/// A daemon that is its state: each event flips the byte at its sequence
/// (modulo the length), so a lost or repeated event shows in the bytes.
pub struct Blob(pub Vec<u8>);

impl MeshDaemon for Blob {
    fn name(&self) -> &str {
        "blob"
    }

    fn is_stateful(&self) -> bool {
        true
    }

    fn process(&mut self, event: &CausalEvent) -> Result<Vec<Vec<u8>>, DaemonError> {
        if let Some(len) = std::num::NonZeroUsize::new(self.0.len()) {
            self.0[event.sequence() as usize % len] ^= 0xff;
        }
        Ok(vec![])
    }

    fn snapshot(&self) -> Result<Vec<u8>, DaemonError> {
        Ok(self.0.clone())
    }

    fn snapshot_len(&self) -> Option<usize> {
        Some(self.0.len())
    }

    fn snapshot_into(&self, out: &mut dyn FnMut(&[u8])) -> Result<(), DaemonError> {
        // In two writes, as a daemon whose state is in parts would.
        let (first, rest) = self.0.split_at(self.0.len() / 3);
        out(first);
        out(rest);
        Ok(())
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), DaemonError> {
        self.0 = state.to_vec();
        Ok(())
    }

    fn restore_owned(&mut self, state: Vec<u8>) -> Result<(), DaemonError> {
        self.0 = state;
        Ok(())
    }
}

/// The count in a [`Counter`]'s (or any daemon's) state: its first 8 bytes.
pub fn count_of(host: &DaemonHost) -> u64 {
    let state = host.daemon().snapshot().unwrap();
    u64::from_le_bytes(state[..8].try_into().unwrap())
}

/// A daemon whose `process` says it has begun, then waits (up to a minute)
/// to be let go: a daemon busy for as long as a test needs.
pub struct Gate {
    entered: std::sync::mpsc::Sender<()>,
    release: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl Gate {
    /// `entered` hears of every `process` call; each waits for one message
    /// on `release`.
    pub fn new(
        entered: std::sync::mpsc::Sender<()>,
        release: std::sync::mpsc::Receiver<()>,
    ) -> Self {
        Self {
            entered,
            release: std::sync::Mutex::new(release),
        }
    }
}

impl MeshDaemon for Gate {
    fn name(&self) -> &str {
        "gate"
    }

    fn process(&mut self, _event: &CausalEvent) -> Result<Vec<Vec<u8>>, DaemonError> {
        let _ = self.entered.send(());
        let release = self.release.lock().unwrap();
        release
            .recv_timeout(std::time::Duration::from_secs(60))
            .map_err(|e| DaemonError::ProcessFailed(e.to_string()))?;
        Ok(Vec::new())
    }

    fn snapshot(&self) -> Result<Vec<u8>, DaemonError> {
        Ok(Vec::new())
    }

    fn restore(&mut self, _state: &[u8]) -> Result<(), DaemonError> {
        Ok(())
    }
}
