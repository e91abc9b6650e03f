//! Handing batches to the adapter: every call bounded by the adapter
//! timeout, retries with jittered exponential backoff (per shard and per
//! attempt, so shards that fail together do not retry together), and a
//! structured reason recorded for every failed attempt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::adapter::{Adapter, Batch};
use super::error::AdapterError;

/// Why one dispatch attempt failed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AttemptReason {
    /// The adapter returned an error.
    Adapter(AdapterError),
    /// The adapter did not answer within the timeout.
    Timeout(Duration),
}

impl std::fmt::Display for AttemptReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Adapter(e) => write!(f, "{e}"),
            Self::Timeout(d) => write!(f, "timed out after {d:?}"),
        }
    }
}

/// One failed attempt.
#[derive(Debug, Clone)]
pub struct FailedAttempt {
    /// 0 for the first try.
    pub attempt: u32,
    /// What went wrong.
    pub reason: AttemptReason,
}

/// A batch that could not be dispatched: every attempt's reason.
#[derive(Debug, Clone)]
pub struct DispatchFailure {
    /// The shard.
    pub shard_id: u16,
    /// The batch's first sequence number.
    pub sequence_start: u64,
    /// Events lost with it.
    pub events: usize,
    /// Each failed attempt, in order.
    pub attempts: Vec<FailedAttempt>,
}

/// The retry policy.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts per batch, the first included.
    pub max_attempts: u32,
    /// Backoff base.
    pub base: Duration,
    /// Backoff cap.
    pub max: Duration,
    /// Per-call timeout.
    pub timeout: Duration,
    /// Per-bus jitter seed.
    pub seed: u64,
}

/// The sleep before retry number `attempt + 1` of `shard`: `base · 2^attempt`
/// (saturating, capped at `max`) scaled by a jitter factor in [0.5, 1.0)
/// derived from (seed, shard, attempt).
pub fn retry_backoff(policy: &RetryPolicy, shard: u16, attempt: u32) -> Duration {
    let exp = policy
        .base
        .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
        .min(policy.max);
    let mut key = [0u8; 14];
    key[..8].copy_from_slice(&policy.seed.to_le_bytes());
    key[8..10].copy_from_slice(&shard.to_le_bytes());
    key[10..].copy_from_slice(&attempt.to_le_bytes());
    let unit = (xxhash_rust::xxh3::xxh3_64(&key) >> 11) as f64 / (1u64 << 53) as f64;
    exp.mul_f64(0.5 + unit / 2.0)
}

/// Dispatches `batch` under `policy`. Returns the time the successful call
/// took and how many attempts failed before it, or every attempt's failure.
pub async fn dispatch(
    adapter: &Arc<dyn Adapter>,
    policy: &RetryPolicy,
    batch: &Batch,
) -> Result<(Duration, u32), DispatchFailure> {
    let mut attempts = Vec::new();
    for attempt in 0..policy.max_attempts {
        let started = Instant::now();
        let reason = match tokio::time::timeout(policy.timeout, adapter.on_batch(batch)).await {
            Ok(Ok(())) => return Ok((started.elapsed(), attempt)),
            Ok(Err(e)) => AttemptReason::Adapter(e),
            Err(_) => AttemptReason::Timeout(policy.timeout),
        };
        let fatal = matches!(&reason, AttemptReason::Adapter(e) if !e.is_retryable());
        tracing::warn!(
            adapter = adapter.name(),
            shard = batch.shard_id,
            sequence_start = batch.sequence_start,
            attempt,
            reason = %reason,
            "batch dispatch attempt failed"
        );
        attempts.push(FailedAttempt { attempt, reason });
        if fatal || attempt + 1 == policy.max_attempts {
            break;
        }
        tokio::time::sleep(retry_backoff(policy, batch.shard_id, attempt)).await;
    }
    Err(DispatchFailure {
        shard_id: batch.shard_id,
        sequence_start: batch.sequence_start,
        events: batch.events.len(),
        attempts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(10),
            max: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            seed: 42,
        }
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered_per_shard() {
        let p = policy();
        for attempt in 0..40 {
            let d = retry_backoff(&p, 1, attempt);
            let exp = p
                .base
                .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
                .min(p.max);
            assert!(d >= exp / 2 && d <= exp, "attempt {attempt}: {d:?}");
        }
        // Shards failing together spread their retries out.
        let delays: std::collections::HashSet<_> =
            (0..16u16).map(|s| retry_backoff(&p, s, 2)).collect();
        assert!(delays.len() >= 4, "{} distinct delays of 16", delays.len());
        // Deterministic for one (seed, shard, attempt).
        assert_eq!(retry_backoff(&p, 3, 1), retry_backoff(&p, 3, 1));
    }
}
