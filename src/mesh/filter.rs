//! A packet filter on the node's outbound path, for tests (`test-util`
//! builds only): it simulates loss, duplication, reordering (random delays)
//! and partitions over real UDP. Installed with `MeshNode::set_filter`; a
//! release build has no filter and no check on its send path.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What to do with one outbound datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it.
    Pass,
    /// Lose it.
    Drop,
    /// Send it twice.
    Duplicate,
    /// Send it after this delay (later packets overtake it).
    Delay(Duration),
}

/// Decides the fate of outbound datagrams.
pub trait PacketFilter: Send + Sync + 'static {
    /// The verdict for a datagram to `to`.
    fn outbound(&self, to: SocketAddr, datagram: &[u8]) -> Verdict;
}

/// Drops every datagram to a set of addresses: one side of a partition
/// (install it on every node of the side, naming the other side's
/// addresses).
#[derive(Debug, Clone, Default)]
pub struct DropTo(pub std::collections::BTreeSet<SocketAddr>);

impl PacketFilter for DropTo {
    fn outbound(&self, to: SocketAddr, _datagram: &[u8]) -> Verdict {
        if self.0.contains(&to) {
            Verdict::Drop
        } else {
            Verdict::Pass
        }
    }
}

/// Probabilities are in [0, 1]; each datagram draws once.
#[derive(Debug)]
pub struct NetemFilter {
    loss: f64,
    duplicate: f64,
    reorder: f64,
    max_delay: Duration,
    partitioned: AtomicBool,
    rng: Mutex<u64>,
}

impl NetemFilter {
    /// A filter losing `loss`, duplicating `duplicate` and delaying (up to
    /// `max_delay`) `reorder` of the datagrams; `seed` makes runs repeatable.
    pub fn new(loss: f64, duplicate: f64, reorder: f64, max_delay: Duration, seed: u64) -> Self {
        Self {
            loss,
            duplicate,
            reorder,
            max_delay,
            partitioned: AtomicBool::new(false),
            rng: Mutex::new(seed | 1),
        }
    }

    /// Cuts (true) or heals (false) the link: while cut, everything drops.
    pub fn partition(&self, cut: bool) {
        self.partitioned.store(cut, Ordering::SeqCst);
    }

    fn draw(&self) -> f64 {
        let mut s = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        // xorshift64*
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        let v = s.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (v >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl PacketFilter for NetemFilter {
    fn outbound(&self, _to: SocketAddr, _datagram: &[u8]) -> Verdict {
        if self.partitioned.load(Ordering::SeqCst) {
            return Verdict::Drop;
        }
        let x = self.draw();
        if x < self.loss {
            return Verdict::Drop;
        }
        if x < self.loss + self.duplicate {
            return Verdict::Duplicate;
        }
        if x < self.loss + self.duplicate + self.reorder {
            let frac = self.draw();
            return Verdict::Delay(self.max_delay.mul_f64(frac.max(0.05)));
        }
        Verdict::Pass
    }
}
