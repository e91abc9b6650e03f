//! Daemons' channel subscriptions on a node (COMPUTE.md §1.8).
//!
//! A daemon subscribes to a channel through its runtime
//! ([`ComputeRuntime::subscribe_channel`]): the node subscribes at the
//! publisher and the subscription is recorded in the daemon's ledger, which
//! travels in its snapshot. When the daemon migrates, the target subscribes
//! to every ledger entry **before** it answers RestoreComplete, and the
//! source lets go at cut-over, which comes after that answer: there is no
//! moment at which neither node receives the channel (v0.11 re-subscribes
//! asynchronously after the restore, unordered with the source's
//! unsubscribe).
//!
//! The node counts which daemons hold each (publisher, channel) and
//! unsubscribes only when the last one lets go — a daemon that leaves or
//! stops no longer tears down the subscription of another daemon here (§8
//! item 17). Subscriptions the application makes itself through the mesh
//! are not counted: a channel both use should be subscribed through the
//! runtime only, or the runtime's last release ends the application's too.
//!
//! Releases that follow a departure or a stop run on a thread of their own
//! (an unsubscribe waits for the publisher's answer); their errors are
//! logged.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{ComputeError, ComputeRuntime, Inbound, MigrationTransport, Shared};
use crate::cancel::CancelToken;
use crate::compute::DaemonError;
use crate::compute::ledger::SubscriptionLedger;
use crate::identity::{ChannelName, PermissionToken};
use crate::mesh::ChannelError;

/// Why a daemon's subscription change failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubscriptionError {
    /// The daemon does not run here, or the runtime is shut down (nothing
    /// was sent).
    #[error(transparent)]
    Compute(#[from] ComputeError),
    /// The publisher's refusal, or the mesh's failure (no session, no
    /// answer, cancelled).
    #[error(transparent)]
    Channel(#[from] ChannelError),
}

impl From<DaemonError> for SubscriptionError {
    fn from(e: DaemonError) -> Self {
        Self::Compute(e.into())
    }
}

/// One ledger entry: publisher, channel, token bytes.
pub(crate) type Binding = (u64, ChannelName, Option<Vec<u8>>);

/// The daemons holding each (publisher, channel) this node subscribed to
/// for them.
#[derive(Default)]
pub(crate) struct Subscriptions {
    /// Held across the publisher's answer, so subscription changes on a
    /// node are serialized: a release never unsubscribes under a hold that
    /// is being made.
    holders: Mutex<HashMap<(u64, ChannelName), BTreeSet<u64>>>,
}

impl Subscriptions {
    fn lock(&self) -> MutexGuard<'_, HashMap<(u64, ChannelName), BTreeSet<u64>>> {
        self.holders.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Subscribes the node (again: it is idempotent at the publisher, and
    /// the token is refreshed) and counts `origin` as a holder.
    fn hold(
        &self,
        transport: &dyn MigrationTransport,
        origin: u64,
        (publisher, channel, token): (u64, &ChannelName, Option<&PermissionToken>),
        cancel: Option<&CancelToken>,
    ) -> Result<(), ChannelError> {
        let mut holders = self.lock();
        transport.subscribe_channel(publisher, channel, token, cancel)?;
        holders
            .entry((publisher, channel.clone()))
            .or_default()
            .insert(origin);
        Ok(())
    }

    /// `origin` lets go; the node unsubscribes once nobody holds the
    /// channel (nothing is sent for a channel `origin` alone never held).
    fn release(
        &self,
        transport: &dyn MigrationTransport,
        origin: u64,
        publisher: u64,
        channel: &ChannelName,
        cancel: Option<&CancelToken>,
    ) -> Result<(), ChannelError> {
        let mut holders = self.lock();
        let key = (publisher, channel.clone());
        let Some(held) = holders.get_mut(&key) else {
            return Ok(());
        };
        if !held.remove(&origin) || !held.is_empty() {
            return Ok(());
        }
        holders.remove(&key);
        transport.unsubscribe_channel(publisher, channel, cancel)
    }

    /// The daemons holding (`publisher`, `channel`) here.
    pub(crate) fn holders(&self, publisher: u64, channel: &ChannelName) -> Vec<u64> {
        self.lock()
            .get(&(publisher, channel.clone()))
            .map(|held| held.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// A ledger's entries, owned.
pub(crate) fn bindings(ledger: &SubscriptionLedger) -> Vec<Binding> {
    ledger
        .iter()
        .map(|(publisher, channel, token)| (publisher, channel.clone(), token.map(<[u8]>::to_vec)))
        .collect()
}

/// `bindings` less those (publisher, channel) in `keep`.
pub(crate) fn without(bindings: Vec<Binding>, keep: &[Binding]) -> Vec<Binding> {
    bindings
        .into_iter()
        .filter(|(p, c, _)| !keep.iter().any(|(kp, kc, _)| kp == p && kc == c))
        .collect()
}

impl Shared {
    /// Subscribes an arriving daemon to its ledger's channels on a thread
    /// of its own (each waits for the publisher), then tells the worker
    /// ([`Inbound::Rebound`]), which answers RestoreComplete. A binding that
    /// fails is logged: the daemon arrives all the same.
    pub(super) fn rebind_arriving(&self, origin: u64, payload_hash: u64, bindings: Vec<Binding>) {
        let inbox = self
            .inbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        self.hold_bindings(origin, bindings, move |bindings| {
            let _ = inbox.send(Inbound::Rebound {
                origin,
                payload_hash,
                bindings,
            });
        });
    }

    /// `origin` holds `bindings` here from now on, subscribed on a thread
    /// of its own (a binding that fails is logged); `then` runs once every
    /// one was tried.
    fn hold_bindings(
        &self,
        origin: u64,
        bindings: Vec<Binding>,
        then: impl FnOnce(Vec<Binding>) + Send + 'static,
    ) {
        let transport = Arc::clone(&self.transport);
        let subscriptions = Arc::clone(&self.subscriptions);
        let bind = move || {
            for (publisher, channel, token) in &bindings {
                let token = match token
                    .as_deref()
                    .map(PermissionToken::from_bytes)
                    .transpose()
                {
                    Ok(token) => token,
                    Err(e) => {
                        tracing::warn!(origin, publisher, %channel, error = %e, "a daemon's channel token is unreadable; not subscribed");
                        continue;
                    }
                };
                let binding = (*publisher, channel, token.as_ref());
                if let Err(e) = subscriptions.hold(&*transport, origin, binding, None) {
                    tracing::warn!(origin, publisher, %channel, error = %e, "a daemon's channel not subscribed");
                }
            }
            then(bindings);
        };
        if let Err(e) = std::thread::Builder::new()
            .name("net-compute-bind".into())
            .spawn(bind)
        {
            tracing::warn!(origin, error = %e, "no thread to subscribe a daemon's channels");
        }
    }

    /// `origin` lets go of `bindings` (it left, stopped, or its arrival
    /// was aborted), on a thread of its own.
    pub(super) fn release_bindings(&self, origin: u64, bindings: Vec<Binding>) {
        if bindings.is_empty() {
            return;
        }
        let transport = Arc::clone(&self.transport);
        let subscriptions = Arc::clone(&self.subscriptions);
        let release = move || {
            for (publisher, channel, _) in &bindings {
                if let Err(e) =
                    subscriptions.release(&*transport, origin, *publisher, channel, None)
                {
                    tracing::warn!(origin, publisher, %channel, error = %e, "channel not unsubscribed");
                }
            }
        };
        if let Err(e) = std::thread::Builder::new()
            .name("net-compute-unbind".into())
            .spawn(release)
        {
            tracing::warn!(origin, error = %e, "no thread to release a daemon's channels");
        }
    }
}

impl ComputeRuntime {
    /// Subscribes daemon `origin` (running here) to `channel` at
    /// `publisher`, presenting `token` if given, and waits for the
    /// publisher's answer; `cancel` gives up the wait. The subscription is
    /// recorded in the daemon's ledger: it follows the daemon when it
    /// migrates (module doc). Subscribing again replaces the token. Channel
    /// events reach this node's mesh; the application delivers them to the
    /// daemon, as any event.
    ///
    /// # Errors
    /// [`DaemonError::NotFound`] if the daemon does not run here (nothing
    /// sent); the subscription's [`ChannelError`];
    /// [`ComputeError::ShuttingDown`].
    pub fn subscribe_channel(
        &self,
        origin: u64,
        publisher: u64,
        channel: &ChannelName,
        token: Option<&PermissionToken>,
        cancel: Option<&CancelToken>,
    ) -> Result<(), SubscriptionError> {
        self.check_running()?;
        let shared = &self.shared;
        if !shared.registry.contains(origin) {
            return Err(DaemonError::NotFound(origin).into());
        }
        shared.subscriptions.hold(
            &*shared.transport,
            origin,
            (publisher, channel, token),
            cancel,
        )?;
        let bytes = token.map(|t| t.to_bytes().to_vec());
        let recorded = shared.registry.with_host(origin, |host| {
            host.ledger_mut().record(publisher, channel.clone(), bytes)
        });
        match recorded {
            Ok(recorded) => {
                // A token is 159 bytes: a ledger takes up to 65 535.
                debug_assert!(recorded.is_ok(), "{recorded:?}");
                Ok(())
            }
            // It left or stopped meanwhile: let go of what it held.
            Err(e) => {
                shared.release_bindings(origin, vec![(publisher, channel.clone(), None)]);
                Err(e.into())
            }
        }
    }

    /// Unsubscribes daemon `origin` (running here) from `channel` at
    /// `publisher`: the entry leaves its ledger, and the node unsubscribes
    /// once no daemon here holds the channel (waiting for the publisher's
    /// answer; `cancel` gives up the wait). Unsubscribing a channel the
    /// daemon does not hold does nothing.
    ///
    /// # Errors
    /// [`DaemonError::NotFound`] if the daemon does not run here; the
    /// unsubscribe's [`ChannelError`]; [`ComputeError::ShuttingDown`].
    pub fn unsubscribe_channel(
        &self,
        origin: u64,
        publisher: u64,
        channel: &ChannelName,
        cancel: Option<&CancelToken>,
    ) -> Result<(), SubscriptionError> {
        self.check_running()?;
        let shared = &self.shared;
        shared
            .registry
            .with_host(origin, |host| host.ledger_mut().remove(publisher, channel))?;
        shared
            .subscriptions
            .release(&*shared.transport, origin, publisher, channel, cancel)?;
        Ok(())
    }

    /// The channels daemon `origin` (running here) is subscribed to:
    /// (publisher, channel), ordered.
    ///
    /// # Errors
    /// [`DaemonError::NotFound`] if the daemon does not run here.
    pub fn channel_subscriptions(
        &self,
        origin: u64,
    ) -> Result<Vec<(u64, ChannelName)>, ComputeError> {
        let listed = self.shared.registry.with_host(origin, |host| {
            host.ledger()
                .iter()
                .map(|(publisher, channel, _)| (publisher, channel.clone()))
                .collect()
        })?;
        Ok(listed)
    }

    /// The daemons of this node holding (`publisher`, `channel`).
    pub fn channel_holders(&self, publisher: u64, channel: &ChannelName) -> Vec<u64> {
        self.shared.subscriptions.holders(publisher, channel)
    }

    /// Daemon `origin` (running here) now stands for its group on this
    /// node (a promoted standby, whose ledger came with its last sync):
    /// the node subscribes the ledger's channels, in the background.
    ///
    /// # Errors
    /// [`DaemonError::NotFound`] if the daemon does not run here.
    pub fn bind_channels(&self, origin: u64) -> Result<(), ComputeError> {
        let held = self
            .shared
            .registry
            .with_host(origin, |host| bindings(host.ledger()))?;
        self.shared.hold_bindings(origin, held, drop);
        Ok(())
    }

    /// Daemon `origin` (running here) no longer stands for its group on
    /// this node (a demoted active): the node lets go of its ledger's
    /// channels, in the background.
    ///
    /// # Errors
    /// [`DaemonError::NotFound`] if the daemon does not run here.
    pub fn release_channels(&self, origin: u64) -> Result<(), ComputeError> {
        let held = self
            .shared
            .registry
            .with_host(origin, |host| bindings(host.ledger()))?;
        self.shared.release_bindings(origin, held);
        Ok(())
    }

    /// Stops daemon `origin`: it leaves the registry, and the channels
    /// only it held here are unsubscribed (in the background).
    ///
    /// # Errors
    /// [`DaemonError::NotFound`] / [`DaemonError::Stale`] as
    /// [`DaemonRegistry::unregister`](crate::compute::DaemonRegistry::unregister).
    pub fn stop(&self, origin: u64) -> Result<(), ComputeError> {
        if let Some(host) = self.shared.registry.unregister(origin)? {
            self.shared
                .release_bindings(origin, bindings(host.ledger()));
        }
        Ok(())
    }
}
