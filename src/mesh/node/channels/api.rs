//! The channel calls of [`MeshNode`]: registration, subscribe and
//! unsubscribe, publish, introspection. The glue they drive is in the
//! parent module.

use super::super::MeshNode;
use super::{ChannelError, NodeDirectory, PublishReport, Request, channel_now, log_eviction};
use crate::cancel::CancelToken;
use crate::identity::{ChannelName, PermissionToken};
use crate::mesh::channels::ChannelConfig;

impl MeshNode {
    /// Registers the channel `name` with `config`, or replaces its config;
    /// a replaced config applies at once: subscribers that no longer
    /// qualify are evicted (their number is returned). Until a channel is
    /// registered, Subscribes for it are refused with UnknownChannel.
    ///
    /// # Errors
    /// [`ChannelError::Registry`] when another registered name has the
    /// same 16-bit hash (nothing changes); [`MeshError::ShuttingDown`](crate::mesh::MeshError::ShuttingDown).
    pub fn register_channel(
        &self,
        name: &ChannelName,
        config: ChannelConfig,
    ) -> Result<usize, ChannelError> {
        let inner = &self.inner;
        inner.check_running()?;
        let evictions = {
            let plane = inner.capabilities.plane();
            let directory = NodeDirectory {
                inner,
                plane: &plane,
            };
            inner
                .channels
                .hub()
                .register(name.clone(), config, &directory, channel_now())?
        };
        for eviction in &evictions {
            log_eviction(eviction);
        }
        Ok(evictions.len())
    }

    /// De-registers `name`: every subscriber is evicted (their number is
    /// returned) and new Subscribes get UnknownChannel.
    ///
    /// # Errors
    /// [`MeshError::ShuttingDown`](crate::mesh::MeshError::ShuttingDown).
    pub fn deregister_channel(&self, name: &ChannelName) -> Result<usize, ChannelError> {
        self.inner.check_running()?;
        let evictions = self.inner.channels.hub().deregister(name);
        for eviction in &evictions {
            log_eviction(eviction);
        }
        Ok(evictions.len())
    }

    /// Keeps `token` for authorization checks — typically a delegation
    /// parent that subscribers' tokens chain through (a Subscribe carries
    /// one token). It goes when it expires.
    ///
    /// # Errors
    /// [`MeshError::ShuttingDown`](crate::mesh::MeshError::ShuttingDown).
    pub fn install_channel_token(&self, token: PermissionToken) -> Result<(), ChannelError> {
        self.inner.check_running()?;
        self.inner.channels.hub().install_token(token);
        Ok(())
    }

    /// Subscribes to the channel `name` at `publisher` (a peer, direct or
    /// relayed), presenting `token` if given, and waits for the
    /// publisher's Ack (at most `membership_ack_timeout`). Re-subscribing
    /// is idempotent. Events then arrive through `recv` with
    /// [`InboundEvent::channel`](crate::mesh::InboundEvent::channel) set.
    ///
    /// # Errors
    /// [`ChannelError::Rejected`] with the publisher's reason;
    /// [`ChannelError::HashCollision`] when we hold another name with the
    /// same hash at this publisher (nothing is sent);
    /// [`ChannelError::TooManyPending`]; [`MeshError::UnknownPeer`](crate::mesh::MeshError::UnknownPeer) (no
    /// session, or it went away while waiting), [`MeshError::Timeout`](crate::mesh::MeshError::Timeout),
    /// [`MeshError::Cancelled`](crate::mesh::MeshError::Cancelled), [`MeshError::ShuttingDown`](crate::mesh::MeshError::ShuttingDown).
    pub fn subscribe(
        &self,
        publisher: u64,
        name: &ChannelName,
        token: Option<&PermissionToken>,
        cancel: Option<&CancelToken>,
    ) -> Result<(), ChannelError> {
        self.inner
            .membership_request(publisher, name, Request::Subscribe(token), cancel)
    }

    /// Unsubscribes from `name` at `publisher` and waits for the Ack
    /// (always accepted by the publisher, even if we were not subscribed).
    ///
    /// # Errors
    /// As [`subscribe`](Self::subscribe), without `HashCollision`.
    pub fn unsubscribe(
        &self,
        publisher: u64,
        name: &ChannelName,
        cancel: Option<&CancelToken>,
    ) -> Result<(), ChannelError> {
        self.inner
            .membership_request(publisher, name, Request::Unsubscribe, cancel)
    }

    /// Publishes `events` on our registered channel `name` to every
    /// authorized subscriber (subscribers that no longer qualify are
    /// evicted first), on stream `0x0001_0000_0000_0000 | channel_hash`.
    /// With `reliable` (or a `reliable` channel), Net subscribers get the
    /// retransmitting reliable stream (in order, exactly once) and v0.11
    /// subscribers the RELIABLE header bit, as v0.11 sends. Relayed
    /// subscribers get it routed. Never waits: a subscriber whose window is
    /// spent is reported with [`MeshError::Backpressure`](crate::mesh::MeshError::Backpressure) and the others
    /// are sent to.
    ///
    /// # Errors
    /// [`ChannelError::Publish`] (unknown channel, not authorized to
    /// publish, rate limited; nothing sent);
    /// [`MeshError::EventTooLarge`](crate::mesh::MeshError::EventTooLarge), [`MeshError::ShuttingDown`](crate::mesh::MeshError::ShuttingDown).
    pub fn publish<E: AsRef<[u8]>>(
        &self,
        name: &ChannelName,
        events: &[E],
        reliable: bool,
    ) -> Result<PublishReport, ChannelError> {
        self.inner.publish(name, events, reliable)
    }

    /// Channels as JSON: `channels` (registered here: `name`, `hash`,
    /// `subscribers`, `visibility`, `require_token`, `reliable`,
    /// `priority`, `max_rate_pps`), `subscriptions` (ours: `publisher`,
    /// `channel`, including requests in flight) and `counters`
    /// (`malformed`, `accepted`, `refused`, `unmatched_acks`, `evicted`).
    pub fn channels_json(&self) -> String {
        self.inner.channels_json().to_string()
    }
}
