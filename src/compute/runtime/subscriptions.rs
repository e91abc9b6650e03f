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
//! logged. Every change — on a thread or in the caller's — takes a ticket
//! when it is decided and runs in ticket order: a daemon that leaves and
//! comes back before the release of its departure ran is not unsubscribed
//! by that late release (threads alone would run in any order).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::{ComputeError, ComputeRuntime, Inbound, MigrationTransport, Shared};
use crate::cancel::CancelToken;
use crate::compute::DaemonError;
use crate::compute::ledger::SubscriptionLedger;
use crate::identity::{ChannelName, PermissionToken};
use crate::mesh::{ChannelError, MeshError};

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

/// Told a daemon's whole ledger when [`ComputeRuntime::follow_ledger`]
/// begins and after each change of it on that node.
pub type LedgerFollower = Arc<dyn Fn(&SubscriptionLedger) + Send + Sync>;

/// The daemons holding each (publisher, channel) this node subscribed to
/// for them.
#[derive(Default)]
pub(crate) struct Subscriptions {
    state: Mutex<State>,
    /// Signalled when the turn passes to the next ticket.
    turn_passed: Condvar,
    /// Per daemon, who is told of its ledger. Held while a follower is
    /// told (after the daemon's lock is let go), so followers hear the
    /// ledgers in the order they were read and the last one is current.
    followers: Mutex<HashMap<u64, LedgerFollower>>,
}

#[derive(Default)]
struct State {
    holders: HashMap<(u64, ChannelName), BTreeSet<u64>>,
    /// Tickets issued so far; the next one is `issued`.
    issued: u64,
    /// The ticket whose turn it is.
    serving: u64,
    /// Tickets given up before their turn came (skipped when it does).
    abandoned: BTreeSet<u64>,
    /// Callers waiting for their turn (tests watch it).
    #[cfg(test)]
    waiting: usize,
}

impl State {
    /// The turn moves past `ticket` and every abandoned ticket behind it.
    fn pass(&mut self, ticket: u64) {
        debug_assert_eq!(self.serving, ticket);
        self.serving = ticket + 1;
        while self.abandoned.remove(&self.serving) {
            self.serving += 1;
        }
    }
}

/// A place in the order of subscription changes, taken when the change is
/// decided. Dropped unused, it gives its turn up.
pub(crate) struct Ticket {
    subscriptions: Arc<Subscriptions>,
    number: u64,
    used: bool,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.used {
            return;
        }
        let mut state = self.subscriptions.lock();
        if state.serving == self.number {
            state.pass(self.number);
            drop(state);
            self.subscriptions.turn_passed.notify_all();
        } else {
            state.abandoned.insert(self.number);
        }
    }
}

/// The turn of one ticket: changes run while it is held (the publisher's
/// answer awaited without the lock); dropping it passes the turn on.
struct Turn<'a> {
    subscriptions: &'a Subscriptions,
    number: u64,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.subscriptions.lock().pass(self.number);
        self.subscriptions.turn_passed.notify_all();
    }
}

impl Subscriptions {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A ticket for a change decided now.
    pub(crate) fn ticket(self: &Arc<Self>) -> Ticket {
        let mut state = self.lock();
        let number = state.issued;
        state.issued += 1;
        Ticket {
            subscriptions: Arc::clone(self),
            number,
            used: false,
        }
    }

    /// Waits for `ticket`'s turn (without a cancel it always comes).
    fn wait_turn(&self, mut ticket: Ticket) -> Turn<'_> {
        loop {
            match self.turn(ticket, None) {
                Ok(turn) => return turn,
                Err((_, back)) => ticket = back,
            }
        }
    }

    /// Waits for `ticket`'s turn; a cancel gives the ticket back.
    fn turn(
        &self,
        mut ticket: Ticket,
        cancel: Option<&CancelToken>,
    ) -> Result<Turn<'_>, (ChannelError, Ticket)> {
        let mut state = self.lock();
        while state.serving != ticket.number {
            if cancel.is_some_and(CancelToken::is_cancelled) {
                return Err((MeshError::Cancelled.into(), ticket));
            }
            // Polled for the cancel: a turn rarely waits on another's
            // round trip to a publisher.
            #[cfg(test)]
            {
                state.waiting += 1;
            }
            state = self
                .turn_passed
                .wait_timeout(state, Duration::from_millis(20))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            #[cfg(test)]
            {
                state.waiting -= 1;
            }
        }
        ticket.used = true;
        Ok(Turn {
            subscriptions: self,
            number: ticket.number,
        })
    }

    /// In its turn: subscribes the node (again: it is idempotent at the
    /// publisher, and the token is refreshed) and counts `origin` as a
    /// holder.
    fn hold(
        &self,
        _turn: &Turn<'_>,
        transport: &dyn MigrationTransport,
        origin: u64,
        (publisher, channel, token): (u64, &ChannelName, Option<&PermissionToken>),
        cancel: Option<&CancelToken>,
    ) -> Result<(), ChannelError> {
        transport.subscribe_channel(publisher, channel, token, cancel)?;
        self.lock()
            .holders
            .entry((publisher, channel.clone()))
            .or_default()
            .insert(origin);
        Ok(())
    }

    /// In its turn: `origin` lets go; the node unsubscribes once nobody
    /// holds the channel (nothing is sent for a channel `origin` alone
    /// never held).
    fn release(
        &self,
        _turn: &Turn<'_>,
        transport: &dyn MigrationTransport,
        origin: u64,
        publisher: u64,
        channel: &ChannelName,
        cancel: Option<&CancelToken>,
    ) -> Result<(), ChannelError> {
        {
            let mut state = self.lock();
            let key = (publisher, channel.clone());
            let Some(held) = state.holders.get_mut(&key) else {
                return Ok(());
            };
            if !held.remove(&origin) || !held.is_empty() {
                return Ok(());
            }
            state.holders.remove(&key);
        }
        transport.unsubscribe_channel(publisher, channel, cancel)
    }

    /// The daemons holding (`publisher`, `channel`) here.
    pub(crate) fn holders(&self, publisher: u64, channel: &ChannelName) -> Vec<u64> {
        self.lock()
            .holders
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
        let ticket = subscriptions.ticket();
        let bind = move || {
            let turn = subscriptions.wait_turn(ticket);
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
                if let Err(e) = subscriptions.hold(&turn, &*transport, origin, binding, None) {
                    tracing::warn!(origin, publisher, %channel, error = %e, "a daemon's channel not subscribed");
                }
            }
            drop(turn);
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
        let ticket = subscriptions.ticket();
        let release = move || {
            let turn = subscriptions.wait_turn(ticket);
            for (publisher, channel, _) in &bindings {
                if let Err(e) =
                    subscriptions.release(&turn, &*transport, origin, *publisher, channel, None)
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
        let ticket = shared.subscriptions.ticket();
        // Dropped on a cancel, the ticket gives its turn up.
        let turn = shared
            .subscriptions
            .turn(ticket, cancel)
            .map_err(|(e, _)| e)?;
        shared.subscriptions.hold(
            &turn,
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
                self.ledger_changed(origin);
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
        let removed = shared
            .registry
            .with_host(origin, |host| host.ledger_mut().remove(publisher, channel))?;
        if removed {
            self.ledger_changed(origin);
        }
        let ticket = shared.subscriptions.ticket();
        // Dropped on a cancel, the ticket gives its turn up.
        let turn = shared
            .subscriptions
            .turn(ticket, cancel)
            .map_err(|(e, _)| e)?;
        shared.subscriptions.release(
            &turn,
            &*shared.transport,
            origin,
            publisher,
            channel,
            cancel,
        )?;
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

    /// Tells `follower` daemon `origin`'s ledger now and after every
    /// change made to it on this node (a subscribe or unsubscribe through
    /// this runtime), replacing the daemon's earlier follower. A standby
    /// group follows its active's ledger so that a promotion subscribes
    /// what the active held when it died, not only what it held at the
    /// last sync. The follower is called on the changing thread, with no
    /// daemon lock held; it must not call back into this runtime's ledger
    /// methods. It ends with [`unfollow_ledger`](Self::unfollow_ledger) or
    /// when the daemon stops here (not when it leaves: it may come back).
    ///
    /// # Errors
    /// [`DaemonError::NotFound`] if the daemon does not run here (nothing
    /// registered).
    pub fn follow_ledger(&self, origin: u64, follower: LedgerFollower) -> Result<(), ComputeError> {
        let mut followers = self.followers();
        let ledger = self
            .shared
            .registry
            .with_host(origin, |host| host.ledger().clone())?;
        follower(&ledger);
        followers.insert(origin, follower);
        Ok(())
    }

    /// Ends [`follow_ledger`](Self::follow_ledger) for `origin`.
    pub fn unfollow_ledger(&self, origin: u64) {
        self.followers().remove(&origin);
    }

    /// Replaces daemon `origin`'s ledger without subscribing or
    /// unsubscribing anything (a standby's, told what its active holds;
    /// [`bind_channels`](Self::bind_channels) subscribes it).
    ///
    /// # Errors
    /// [`DaemonError::NotFound`] if the daemon does not run here.
    pub fn set_ledger(&self, origin: u64, ledger: &SubscriptionLedger) -> Result<(), ComputeError> {
        self.shared
            .registry
            .with_host(origin, |host| *host.ledger_mut() = ledger.clone())?;
        self.ledger_changed(origin);
        Ok(())
    }

    fn followers(&self) -> MutexGuard<'_, HashMap<u64, LedgerFollower>> {
        self.shared
            .subscriptions
            .followers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells `origin`'s follower, if any, its ledger as it is now.
    fn ledger_changed(&self, origin: u64) {
        let followers = self.followers();
        let Some(follower) = followers.get(&origin) else {
            return;
        };
        if let Ok(ledger) = self
            .shared
            .registry
            .with_host(origin, |host| host.ledger().clone())
        {
            follower(&ledger);
        }
    }

    /// Stops daemon `origin`: it leaves the registry, and the channels
    /// only it held here are unsubscribed (in the background).
    ///
    /// # Errors
    /// [`DaemonError::NotFound`] / [`DaemonError::Stale`] as
    /// [`DaemonRegistry::unregister`](crate::compute::DaemonRegistry::unregister).
    pub fn stop(&self, origin: u64) -> Result<(), ComputeError> {
        self.unfollow_ledger(origin);
        if let Some(host) = self.shared.registry.unregister(origin)? {
            self.shared
                .release_bindings(origin, bindings(host.ledger()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records the subscription calls it gets.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<&'static str>>);

    impl MigrationTransport for Recorder {
        fn local_node(&self) -> u64 {
            1
        }
        fn send(&self, _to: u64, _message: &[u8]) -> Result<(), MeshError> {
            Ok(())
        }
        fn subscribe_channel(
            &self,
            _publisher: u64,
            _channel: &ChannelName,
            _token: Option<&PermissionToken>,
            _cancel: Option<&CancelToken>,
        ) -> Result<(), ChannelError> {
            self.0.lock().unwrap().push("subscribe");
            Ok(())
        }
        fn unsubscribe_channel(
            &self,
            _publisher: u64,
            _channel: &ChannelName,
            _cancel: Option<&CancelToken>,
        ) -> Result<(), ChannelError> {
            self.0.lock().unwrap().push("unsubscribe");
            Ok(())
        }
    }

    const DAEMON: u64 = 0xD;
    const PUBLISHER: u64 = 2;

    fn waiting(subscriptions: &Subscriptions) -> usize {
        subscriptions.lock().waiting
    }

    fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
        let until = std::time::Instant::now() + Duration::from_secs(20);
        while !f() {
            assert!(std::time::Instant::now() < until, "timed out: {what}");
            std::thread::yield_now();
        }
    }

    /// A daemon left (its release decided) and came back (its hold
    /// decided) before the release ran: the late release must not undo the
    /// new hold. Without the order, the hold ran first and the release
    /// then unsubscribed the node under the returned daemon.
    #[test]
    fn a_late_release_does_not_undo_a_later_hold() {
        let channel = ChannelName::new("news").unwrap();
        let subscriptions = Arc::new(Subscriptions::default());
        let transport = Arc::new(Recorder::default());
        let binding = (PUBLISHER, &channel, None);
        let turn = subscriptions.wait_turn(subscriptions.ticket());
        subscriptions
            .hold(&turn, &*transport, DAEMON, binding, None)
            .unwrap();
        drop(turn);

        let release = subscriptions.ticket();
        let hold = subscriptions.ticket();
        let returning = {
            let (subscriptions, transport, channel) = (
                Arc::clone(&subscriptions),
                Arc::clone(&transport),
                channel.clone(),
            );
            std::thread::spawn(move || {
                let turn = subscriptions.wait_turn(hold);
                subscriptions
                    .hold(
                        &turn,
                        &*transport,
                        DAEMON,
                        (PUBLISHER, &channel, None),
                        None,
                    )
                    .unwrap();
            })
        };
        wait_for("the hold waits for the release's turn", || {
            waiting(&subscriptions) == 1
        });
        assert_eq!(*transport.0.lock().unwrap(), ["subscribe"]);
        let turn = subscriptions.wait_turn(release);
        subscriptions
            .release(&turn, &*transport, DAEMON, PUBLISHER, &channel, None)
            .unwrap();
        drop(turn);
        returning.join().unwrap();
        assert_eq!(
            *transport.0.lock().unwrap(),
            ["subscribe", "unsubscribe", "subscribe"]
        );
        assert_eq!(subscriptions.holders(PUBLISHER, &channel), [DAEMON]);
    }

    /// A ticket given up — dropped unused, or its wait cancelled — passes
    /// its turn on; the tickets behind it are not stuck.
    #[test]
    fn given_up_tickets_pass_their_turn() {
        let subscriptions = Arc::new(Subscriptions::default());
        let first = subscriptions.ticket();
        let cancelled = subscriptions.ticket();
        let dropped = subscriptions.ticket();
        let last = subscriptions.ticket();
        let token = CancelToken::new();
        token.cancel();
        let Err((e, ticket)) = subscriptions.turn(cancelled, Some(&token)) else {
            panic!("a cancelled wait gets no turn");
        };
        assert!(matches!(e, ChannelError::Mesh(MeshError::Cancelled)));
        drop(ticket);
        drop(dropped);
        let behind = {
            let subscriptions = Arc::clone(&subscriptions);
            std::thread::spawn(move || drop(subscriptions.wait_turn(last)))
        };
        wait_for("the last ticket waits", || waiting(&subscriptions) == 1);
        drop(subscriptions.wait_turn(first));
        behind.join().unwrap();
        assert_eq!(subscriptions.lock().serving, 4);
        assert!(subscriptions.lock().abandoned.is_empty());
    }
}
