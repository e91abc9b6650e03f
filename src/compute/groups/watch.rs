//! Groups that follow a mesh node's failure detector themselves
//! ([`watch_failures`]), instead of waiting for the application to call
//! `on_node_failed` / `on_node_recovered` (v0.11's groups only ever learn
//! of a failure from the application, and its Go binding cannot tell
//! them; COMPUTE.md §8 item 15).
//!
//! A watch looks at the node's peers every `every`: a member's node, or
//! any peer seen alive before, that the detector reports `failed`, or
//! that has since been evicted, is reported to the group once (a group
//! told of a node without members only stops placing members there);
//! when the detector sees it alive again it is reported recovered once.
//! A member's node the watching node was never connected to is not judged
//! (it may be reachable from the members' nodes only).

use std::collections::BTreeSet;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::compute::groups::{ForkGroup, GroupError, MemberInfo, ReplicaGroup, StandbyGroup};
use crate::mesh::MeshNode;

/// A group that can be told of node failures and returns.
pub trait NodeFailures: Send {
    /// The group's members (their nodes are watched).
    fn member_nodes(&self) -> Vec<u64>;
    /// `node` failed.
    ///
    /// # Errors
    /// What the group's `on_node_failed` reports.
    fn node_failed(&mut self, node: u64) -> Result<(), GroupError>;
    /// `node` is back.
    fn node_recovered(&mut self, node: u64);
}

/// Where a watch finds its group: locks it for one look.
pub trait WatchedGroup: Send + Sync + 'static {
    /// Runs `look` on the group, locked.
    fn with_group(&self, look: &mut dyn FnMut(&mut dyn NodeFailures));
}

impl<G: NodeFailures + 'static> WatchedGroup for Mutex<G> {
    fn with_group(&self, look: &mut dyn FnMut(&mut dyn NodeFailures)) {
        look(&mut *self.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

fn nodes_of(members: &[MemberInfo]) -> Vec<u64> {
    members.iter().map(|m| m.node_id).collect()
}

/// Replica and fork groups: `on_node_failed` re-creates, never fails.
macro_rules! member_set_failures {
    ($($group:ty),*) => {$(
        impl NodeFailures for $group {
            fn member_nodes(&self) -> Vec<u64> {
                nodes_of(&self.members())
            }

            fn node_failed(&mut self, node: u64) -> Result<(), GroupError> {
                self.on_node_failed(node);
                Ok(())
            }

            fn node_recovered(&mut self, node: u64) {
                self.on_node_recovered(node);
            }
        }
    )*};
}

member_set_failures!(ReplicaGroup, ForkGroup);

impl NodeFailures for StandbyGroup {
    fn member_nodes(&self) -> Vec<u64> {
        nodes_of(&self.members())
    }

    fn node_failed(&mut self, node: u64) -> Result<(), GroupError> {
        self.on_node_failed(node).map(drop)
    }

    fn node_recovered(&mut self, node: u64) {
        self.on_node_recovered(node);
    }
}

/// What a watch remembers between looks.
#[derive(Debug, Default)]
struct Seen {
    /// Nodes seen connected and not failed at least once.
    alive_once: BTreeSet<u64>,
    /// Nodes reported failed and not yet recovered.
    reported: BTreeSet<u64>,
}

impl Seen {
    /// One look: reports the transitions of the watched nodes given the
    /// peers' health (`None`: not connected).
    fn look<G: NodeFailures + ?Sized>(
        &mut self,
        group: &mut G,
        health: impl Fn(u64) -> Option<&'static str>,
        peers: impl IntoIterator<Item = u64>,
    ) {
        for node in peers {
            if health(node).is_some_and(|h| h != "failed") {
                self.alive_once.insert(node);
            }
        }
        // Every node seen, not only the members': a failed node must not
        // be chosen for a replacement either.
        let mut watched: BTreeSet<u64> = group.member_nodes().into_iter().collect();
        watched.extend(self.reported.iter().copied());
        watched.extend(self.alive_once.iter().copied());
        for node in watched {
            let state = health(node);
            let failed = match state {
                Some(h) => h == "failed",
                // Gone: a failure only if it was there before.
                None => self.alive_once.contains(&node),
            };
            if state.is_some() && !failed {
                self.alive_once.insert(node);
            }
            if failed && self.reported.insert(node) {
                if let Err(e) = group.node_failed(node) {
                    tracing::warn!(node, error = %e, "group could not handle a failed node");
                }
            } else if !failed && state.is_some() && self.reported.remove(&node) {
                group.node_recovered(node);
            }
        }
    }
}

struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

/// A running watch; dropping it (or [`stop`](Self::stop)) ends it.
pub struct FailureWatch {
    stop: Arc<Stop>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FailureWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailureWatch").finish_non_exhaustive()
    }
}

impl FailureWatch {
    /// Ends the watch and waits for its thread.
    pub fn stop(mut self) {
        self.end();
    }

    fn end(&mut self) {
        *self
            .stop
            .stopped
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        self.stop.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for FailureWatch {
    fn drop(&mut self) {
        self.end();
    }
}

/// Watches `mesh`'s failure detector for `group` (see the module doc),
/// looking every `every` (the node's heartbeat interval is a good value);
/// the group is locked only while a transition is reported.
///
/// # Errors
/// The watch thread could not be started.
pub fn watch_failures<W: WatchedGroup>(
    mesh: Arc<MeshNode>,
    group: Arc<W>,
    every: Duration,
) -> std::io::Result<FailureWatch> {
    let stop = Arc::new(Stop {
        stopped: Mutex::new(false),
        wake: Condvar::new(),
    });
    let thread = {
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("net-group-watch".into())
            .spawn(move || {
                let mut seen = Seen::default();
                loop {
                    let peers = mesh.peers();
                    let health =
                        |node: u64| peers.iter().find(|p| p.node_id == node).map(|p| p.health);
                    group.with_group(&mut |group| {
                        seen.look(group, health, peers.iter().map(|p| p.node_id));
                    });
                    let stopped = stop.stopped.lock().unwrap_or_else(PoisonError::into_inner);
                    let (stopped, _) = stop
                        .wake
                        .wait_timeout_while(stopped, every, |s| !*s)
                        .unwrap_or_else(PoisonError::into_inner);
                    if *stopped {
                        return;
                    }
                }
            })?
    };
    Ok(FailureWatch {
        stop,
        thread: Some(thread),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what it was told.
    #[derive(Default)]
    struct Log {
        nodes: Vec<u64>,
        told: Vec<(u64, bool)>,
    }

    impl NodeFailures for Log {
        fn member_nodes(&self) -> Vec<u64> {
            self.nodes.clone()
        }

        fn node_failed(&mut self, node: u64) -> Result<(), GroupError> {
            self.told.push((node, true));
            // A member moves off the failed node, as groups do.
            self.nodes.retain(|&n| n != node);
            self.nodes.push(node + 100);
            Ok(())
        }

        fn node_recovered(&mut self, node: u64) {
            self.told.push((node, false));
        }
    }

    #[test]
    fn each_transition_is_reported_once_and_unseen_nodes_are_not_judged() {
        let mut group = Log {
            nodes: vec![1, 2, 3],
            ..Log::default()
        };
        let mut seen = Seen::default();
        // 3 was never connected here: not judged.
        seen.look(
            &mut group,
            |n| match n {
                1 | 2 => Some("alive"),
                _ => None,
            },
            [1, 2],
        );
        assert!(group.told.is_empty());
        // 1 fails (told once, however many looks), 2 is only suspected.
        for _ in 0..3 {
            seen.look(
                &mut group,
                |n| match n {
                    1 => Some("failed"),
                    2 => Some("suspected"),
                    101 => Some("alive"),
                    _ => None,
                },
                [1, 2, 101],
            );
        }
        assert_eq!(group.told, vec![(1, true)]);
        // 2 is evicted (was seen): a failure; 1 comes back: recovered.
        seen.look(
            &mut group,
            |n| match n {
                1 | 101 | 102 => Some("alive"),
                _ => None,
            },
            [1, 101, 102],
        );
        assert_eq!(group.told, vec![(1, true), (1, false), (2, true)]);
        seen.look(&mut group, |_| Some("alive"), [1, 2, 7, 101, 102]);
        assert_eq!(
            group.told,
            vec![(1, true), (1, false), (2, true), (2, false)]
        );
        // A peer that holds no member fails: told too (not to place there).
        seen.look(
            &mut group,
            |n| Some(if n == 7 { "failed" } else { "alive" }),
            [1, 2, 7, 101, 102],
        );
        assert_eq!(
            group.told,
            vec![(1, true), (1, false), (2, true), (2, false), (7, true)]
        );
    }
}
