//! Automatic scaling: every `interval` the policy looks at the fullest
//! shard's fill ratio and the dispatch latency, and adds or removes one
//! shard — never two decisions inside one cooldown.

use std::sync::Arc;
use std::time::Duration;

use super::config::ScalingPolicy;
use super::event_bus::Inner;

/// What the policy wants now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Add a shard.
    Up,
    /// Remove a shard.
    Down,
    /// Leave the shards alone.
    Hold,
}

/// The decision for `max_fill` (0..1), `latency`, with `active` shards
/// between `min` and `max`.
pub fn decide(
    policy: &ScalingPolicy,
    max_fill: f64,
    latency: Duration,
    active: usize,
    min: usize,
    max: usize,
) -> Decision {
    let latency_limit = Duration::from_millis(policy.scale_up_latency_ms);
    if (max_fill >= policy.scale_up_fill || latency > latency_limit) && active < max {
        Decision::Up
    } else if max_fill <= policy.scale_down_fill && latency <= latency_limit / 2 && active > min {
        Decision::Down
    } else {
        Decision::Hold
    }
}

pub(crate) async fn run(inner: Arc<Inner>, policy: ScalingPolicy, handle: tokio::runtime::Handle) {
    let mut tick = tokio::time::interval(Duration::from_millis(policy.interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if inner.is_shutting_down() {
            return;
        }
        let config = inner.config();
        let decision = decide(
            &policy,
            inner.max_fill(),
            inner.latency(),
            inner.active_count(),
            usize::from(config.min_shards),
            usize::from(config.max_shards),
        );
        if decision == Decision::Hold
            || !inner.claim_cooldown(Duration::from_millis(policy.cooldown_ms))
        {
            continue;
        }
        let result = match decision {
            Decision::Up => inner.add_shard(&handle).await.map(|id| ("added", id)),
            _ => match inner.highest_active() {
                Some(id) => inner.remove_shard(id).await.map(|()| ("removed", id)),
                None => continue,
            },
        };
        match result {
            Ok((what, id)) => tracing::info!(shard = id, "scaling policy {what} a shard"),
            Err(e) => tracing::warn!(error = %e, "scaling policy could not change shards"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_on_fill_and_latency_within_bounds() {
        let p = ScalingPolicy::default();
        let ms = Duration::from_millis;
        assert_eq!(decide(&p, 0.9, ms(1), 2, 1, 4), Decision::Up);
        assert_eq!(decide(&p, 0.1, ms(500), 2, 1, 4), Decision::Up);
        assert_eq!(decide(&p, 0.9, ms(1), 4, 1, 4), Decision::Hold, "at max");
        assert_eq!(decide(&p, 0.0, ms(1), 2, 1, 4), Decision::Down);
        assert_eq!(decide(&p, 0.0, ms(1), 1, 1, 4), Decision::Hold, "at min");
        assert_eq!(
            decide(&p, 0.0, ms(80), 2, 1, 4),
            Decision::Hold,
            "latency not low"
        );
        assert_eq!(decide(&p, 0.3, ms(1), 2, 1, 4), Decision::Hold);
    }
}
