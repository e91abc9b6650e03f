//! The bus's errors: one structured enum, no stringly-typed catch-all.
//! Adapter failures carry their cause and say whether a retry can help.

use std::fmt;
use std::sync::Arc;

/// Why an adapter call failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AdapterError {
    /// A retry may succeed (connection lost, timeout, server busy).
    #[error("{adapter}: transient failure: {cause}")]
    Transient {
        /// The adapter's name.
        adapter: &'static str,
        /// What went wrong underneath.
        cause: Cause,
    },
    /// Retrying cannot help (malformed remote data, an id that does not
    /// fit, a closed log).
    #[error("{adapter}: fatal failure: {cause}")]
    Fatal {
        /// The adapter's name.
        adapter: &'static str,
        /// What went wrong underneath.
        cause: Cause,
    },
    /// The adapter has no connection to its server right now.
    #[error("{adapter}: not connected")]
    NotConnected {
        /// The adapter's name.
        adapter: &'static str,
    },
}

impl AdapterError {
    /// A transient failure of `adapter` caused by `cause`.
    pub fn transient(adapter: &'static str, cause: impl Into<Cause>) -> Self {
        Self::Transient {
            adapter,
            cause: cause.into(),
        }
    }

    /// A fatal failure of `adapter` caused by `cause`.
    pub fn fatal(adapter: &'static str, cause: impl Into<Cause>) -> Self {
        Self::Fatal {
            adapter,
            cause: cause.into(),
        }
    }

    /// Whether retrying the same call may succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Fatal { .. })
    }
}

/// The underlying error of an adapter failure: shared so that the error,
/// its per-attempt record and the stats can all hold it.
#[derive(Clone)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync>);

impl Cause {
    /// The underlying error.
    pub fn source(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Cause {
    fn from(e: E) -> Self {
        Self(Arc::new(e))
    }
}

/// A plain-text cause for failures that have no error value underneath
/// (a malformed field, an out-of-range id).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Reason(pub String);

/// A failed bus operation.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The shard's buffer is full (FailProducer or DropNewest): the event
    /// was not queued. Retry later, or ingest more slowly.
    #[error("shard {shard} is full")]
    Backpressure {
        /// The shard that refused the event.
        shard: u16,
    },
    /// The Sample policy decimated the event on purpose (its shard is above
    /// the high-water mark). Retrying is pointless.
    #[error("event sampled out by the backpressure policy")]
    Sampled,
    /// No shard is active to take the event (a topology change in
    /// progress). Retry once scaling settles.
    #[error("no active shard to route the event to")]
    Unrouted,
    /// The adapter is not connected to its server.
    #[error("adapter not connected")]
    NotConnected,
    /// The bus is shutting down or shut down.
    #[error("bus is shutting down")]
    ShuttingDown,
    /// The call's [`CancelToken`](crate::cancel::CancelToken) was cancelled.
    #[error("the call was cancelled through its token while it waited")]
    Cancelled,
    /// The adapter failed.
    #[error(transparent)]
    Adapter(#[from] AdapterError),
    /// A configuration value is invalid; the message names the key.
    #[error("invalid bus configuration: {0}")]
    InvalidConfig(String),
    /// A poll request is invalid (bad cursor, filter or limit).
    #[error("invalid poll request: {0}")]
    InvalidRequest(String),
    /// The shard does not exist (or is not in the state the call needs).
    #[error("unknown shard {0}")]
    UnknownShard(u16),
    /// The producer state file could not be read or written.
    #[error("producer state: {0}")]
    ProducerState(String),
    /// Scaling is refused: the limit named in the message was reached.
    #[error("cannot scale: {0}")]
    ScalingLimit(String),
}

/// A `Result` with [`BusError`].
pub type Result<T, E = BusError> = std::result::Result<T, E>;
