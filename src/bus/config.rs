//! Bus configuration: shards, batching, backpressure, dispatch, scaling.
//! Parsed from JSON (unknown keys rejected by name) and validated with
//! messages that name the bad key.

use std::time::Duration;

use serde::Deserialize;

use super::error::{BusError, Result};

/// What a producer's ingest does when its shard's buffer is full.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum BackpressureMode {
    /// The new event is dropped (counted in `events_dropped`) and the
    /// producer gets [`BusError::Backpressure`].
    DropNewest,
    /// The oldest queued event is dropped (counted) to make room; the
    /// ingest succeeds.
    DropOldest,
    /// The producer gets [`BusError::Backpressure`] and keeps the event
    /// (nothing is counted as dropped: the producer may retry).
    FailProducer,
    /// Above `high_water` (fill ratio 0..1) only one event in `keep_one_in`
    /// is queued; the others get [`BusError::Sampled`] and are counted in
    /// `events_sampled`. A completely full shard behaves like DropNewest.
    Sample {
        /// Keep one event in this many (≥ 2).
        keep_one_in: u32,
        /// The fill ratio where decimation starts.
        high_water: f64,
    },
}

/// How events are grouped into adapter batches.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchConfig {
    /// A batch is dispatched once it has this many events...
    pub min_size: usize,
    /// ...and never has more than this many.
    pub max_size: usize,
    /// ...or once its oldest event has waited this long (ms).
    pub max_delay_ms: u64,
    /// Grow the target size with the ingest rate (between min and max).
    pub adaptive: bool,
    /// Velocity samples kept for adaptive sizing (count cap; the time cap
    /// is one second).
    pub max_velocity_samples: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            min_size: 256,
            max_size: 8192,
            max_delay_ms: 5,
            adaptive: true,
            max_velocity_samples: 128,
        }
    }
}

impl BatchConfig {
    /// `max_delay_ms` as a duration.
    pub fn max_delay(&self) -> Duration {
        Duration::from_millis(self.max_delay_ms)
    }
}

/// When the bus adds or removes shards by itself.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScalingPolicy {
    /// Scale up when the fullest shard's buffer is at least this full (0..1).
    pub scale_up_fill: f64,
    /// Scale up when dispatch latency (ms, moving average) exceeds this.
    pub scale_up_latency_ms: u64,
    /// Scale down when every shard is below this fill ratio and latency is
    /// under half the threshold.
    pub scale_down_fill: f64,
    /// No two scaling decisions closer than this (ms).
    pub cooldown_ms: u64,
    /// How often the policy is evaluated (ms).
    pub interval_ms: u64,
}

impl Default for ScalingPolicy {
    fn default() -> Self {
        Self {
            scale_up_fill: 0.75,
            scale_up_latency_ms: 100,
            scale_down_fill: 0.05,
            cooldown_ms: 5_000,
            interval_ms: 500,
        }
    }
}

/// The bus configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    /// Shards at start.
    pub num_shards: u16,
    /// Scaling never goes below this many active shards.
    pub min_shards: u16,
    /// ...nor above this many (default: 2 × CPUs and at least `num_shards`,
    /// saturating at 65 535 — intentional: shard ids are u16).
    pub max_shards: u16,
    /// Events each shard's buffer holds.
    pub shard_capacity: usize,
    /// What a full shard does to a producer.
    pub backpressure: BackpressureMode,
    /// Batching.
    pub batch: BatchConfig,
    /// Each adapter call is bounded by this (ms).
    pub adapter_timeout_ms: u64,
    /// Dispatch attempts per batch (first try included).
    pub max_attempts: u32,
    /// Base of the jittered exponential retry backoff (ms).
    pub retry_base_ms: u64,
    /// Cap of the retry backoff (ms).
    pub retry_max_ms: u64,
    /// How long `shutdown` may take before it gives up on what is left (ms).
    pub shutdown_timeout_ms: u64,
    /// Automatic scaling (none: shards change only when asked).
    pub scaling: Option<ScalingPolicy>,
}

impl Default for BusConfig {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cpus = u16::try_from(cpus).unwrap_or(u16::MAX);
        Self {
            num_shards: cpus,
            min_shards: 1,
            max_shards: cpus.saturating_mul(2),
            shard_capacity: 1 << 16,
            backpressure: BackpressureMode::DropNewest,
            batch: BatchConfig::default(),
            adapter_timeout_ms: 5_000,
            max_attempts: 3,
            retry_base_ms: 10,
            retry_max_ms: 1_000,
            shutdown_timeout_ms: 10_000,
            scaling: None,
        }
    }
}

fn check(ok: bool, msg: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(BusError::InvalidConfig(msg()))
    }
}

impl BusConfig {
    /// Parses JSON (empty: all defaults) and validates it.
    ///
    /// # Errors
    /// [`BusError::InvalidConfig`] naming the key (unknown keys included).
    pub fn from_json(json: &str) -> Result<Self> {
        if json.trim().is_empty() {
            return Ok(Self::default());
        }
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| BusError::InvalidConfig(e.to_string()))?;
        Self::from_value(value)
    }

    /// As [`from_json`](Self::from_json), from a parsed JSON value. When
    /// `max_shards` is not given it is at least `num_shards` (a bus asked
    /// for 16 shards on a 2-CPU machine gets them).
    ///
    /// # Errors
    /// [`BusError::InvalidConfig`] naming the key (unknown keys included).
    pub fn from_value(value: serde_json::Value) -> Result<Self> {
        // serde would also read a struct from an array, field by field.
        let Some(map) = value.as_object() else {
            return Err(BusError::InvalidConfig(format!(
                "expected a JSON object, got {value}"
            )));
        };
        let max_given = map.contains_key("max_shards");
        let mut config: Self =
            serde_json::from_value(value).map_err(|e| BusError::InvalidConfig(e.to_string()))?;
        if !max_given {
            config.max_shards = config.max_shards.max(config.num_shards);
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks every value's range and their consistency.
    ///
    /// # Errors
    /// [`BusError::InvalidConfig`] naming the key.
    pub fn validate(&self) -> Result<()> {
        check(self.num_shards >= 1, || {
            "num_shards: must be at least 1".into()
        })?;
        check(self.min_shards >= 1, || {
            "min_shards: must be at least 1".into()
        })?;
        check(self.min_shards <= self.max_shards, || {
            format!(
                "min_shards ({}) is above max_shards ({})",
                self.min_shards, self.max_shards
            )
        })?;
        check(
            (self.min_shards..=self.max_shards).contains(&self.num_shards),
            || {
                format!(
                    "num_shards: {} is outside min_shards..=max_shards ({}..={})",
                    self.num_shards, self.min_shards, self.max_shards
                )
            },
        )?;
        check((2..=1 << 24).contains(&self.shard_capacity), || {
            format!(
                "shard_capacity: {} is out of range (2..=16777216)",
                self.shard_capacity
            )
        })?;
        let b = &self.batch;
        check(b.min_size >= 1 && b.min_size <= b.max_size, || {
            format!(
                "batch.min_size ({}) must be 1..=batch.max_size ({})",
                b.min_size, b.max_size
            )
        })?;
        check(b.max_size <= 1 << 20, || {
            format!("batch.max_size: {} is above 1048576", b.max_size)
        })?;
        check((1..=60_000).contains(&b.max_delay_ms), || {
            format!(
                "batch.max_delay_ms: {} is out of range (1..=60000)",
                b.max_delay_ms
            )
        })?;
        check((1..=1 << 16).contains(&b.max_velocity_samples), || {
            "batch.max_velocity_samples: out of range (1..=65536)".into()
        })?;
        if let BackpressureMode::Sample {
            keep_one_in,
            high_water,
        } = self.backpressure
        {
            check(keep_one_in >= 2, || {
                "backpressure.keep_one_in: must be at least 2".into()
            })?;
            check(high_water > 0.0 && high_water < 1.0, || {
                "backpressure.high_water: must be between 0 and 1".into()
            })?;
        }
        check((1..=600_000).contains(&self.adapter_timeout_ms), || {
            "adapter_timeout_ms: out of range (1..=600000)".into()
        })?;
        check((1..=100).contains(&self.max_attempts), || {
            "max_attempts: out of range (1..=100)".into()
        })?;
        check(
            self.retry_base_ms >= 1 && self.retry_base_ms <= self.retry_max_ms,
            || "retry_base_ms: must be 1..=retry_max_ms".into(),
        )?;
        check(self.retry_max_ms <= 600_000, || {
            "retry_max_ms: above 600000".into()
        })?;
        check((1..=3_600_000).contains(&self.shutdown_timeout_ms), || {
            "shutdown_timeout_ms: out of range (1..=3600000)".into()
        })?;
        if let Some(s) = &self.scaling {
            check(
                s.scale_down_fill >= 0.0
                    && s.scale_down_fill < s.scale_up_fill
                    && s.scale_up_fill <= 1.0,
                || "scaling: need 0 <= scale_down_fill < scale_up_fill <= 1".into(),
            )?;
            check(s.interval_ms >= 10, || {
                "scaling.interval_ms: at least 10".into()
            })?;
        }
        Ok(())
    }

    /// `adapter_timeout_ms` as a duration.
    pub fn adapter_timeout(&self) -> Duration {
        Duration::from_millis(self.adapter_timeout_ms)
    }

    /// `shutdown_timeout_ms` as a duration.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_validates_and_names_bad_keys() {
        let c = BusConfig::from_json(
            r#"{"num_shards":4,"max_shards":8,"backpressure":{"mode":"sample","keep_one_in":4,"high_water":0.5},
                "batch":{"min_size":10,"max_size":100,"max_delay_ms":2}}"#,
        )
        .unwrap();
        assert_eq!(c.num_shards, 4);
        assert_eq!(
            c.backpressure,
            BackpressureMode::Sample {
                keep_one_in: 4,
                high_water: 0.5
            }
        );
        let err = |j: &str| BusConfig::from_json(j).unwrap_err().to_string();
        assert!(err(r#"{"shards":4}"#).contains("unknown field `shards`"));
        assert!(err(r#"{"num_shards":0}"#).contains("num_shards"));
        assert!(err(r#"{"batch":{"min_size":10,"max_size":5}}"#).contains("batch.min_size"));
        assert!(
            err(r#"{"backpressure":{"mode":"sample","keep_one_in":1,"high_water":0.5}}"#)
                .contains("keep_one_in")
        );
        assert!(err(r#"{"backpressure":{"mode":"bogus"}}"#).contains("bogus"));
        assert!(BusConfig::from_json("").is_ok());
        assert!(err("[1]").contains("expected a JSON object"));
    }

    #[test]
    fn max_shards_follows_num_shards_unless_given() {
        let c = BusConfig::from_json(r#"{"num_shards":300}"#).unwrap();
        assert_eq!((c.num_shards, c.max_shards), (300, c.max_shards.max(300)));
        assert!(c.max_shards >= 300);
        let err = BusConfig::from_json(r#"{"num_shards":300,"max_shards":8}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("num_shards: 300 is outside"), "{err}");
    }
}
