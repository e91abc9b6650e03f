//! A producer with a persisted dedup state: ingests numbered events (each
//! event is its number, 8 bytes little-endian) through the bus into
//! JetStream or Redis, flushing every `--ack-every` events and printing
//! `acked <n>` once the first n are stored. Killed and restarted with the
//! same `--state` directory, it keeps its nonce and never reuses a dedup
//! id, so the server's dedup window cannot swallow its new events.
//!
//! ```text
//! cargo run --bin net-bus-producer -- --adapter jetstream --url nats://127.0.0.1:4222 \
//!     --state /tmp/producer --first 0 --count 100000 --ack-every 1000
//! ```

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use net::bus::dedup_state::DedupStateFile;
use net::bus::{
    Adapter, BusConfig, BusError, EventBus, JetStreamAdapter, JetStreamConfig, RedisAdapter,
    RedisConfig,
};
use net::redex::storage::FsStorage;

fn main() {
    if let Err(e) = run() {
        eprintln!("bus_producer: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let mut args: HashMap<String, String> = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let key = k
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {k:?}"))?;
        let v = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
        args.insert(key.to_owned(), v);
    }
    let get = |k: &str| {
        args.get(k)
            .cloned()
            .ok_or_else(|| format!("--{k} is required"))
    };
    let number = |k: &str| -> Result<u64, String> {
        get(k)?
            .parse()
            .map_err(|_| format!("--{k} must be a number"))
    };
    let url = get("url")?;
    let first = number("first")?;
    let count = number("count")?;
    let ack_every = number("ack-every")?.max(1);
    let adapter: Arc<dyn Adapter> = match get("adapter")?.as_str() {
        "jetstream" => Arc::new(JetStreamAdapter::new(JetStreamConfig {
            url,
            ..JetStreamConfig::default()
        })?),
        "redis" => Arc::new(RedisAdapter::new(RedisConfig {
            url,
            ..RedisConfig::default()
        })?),
        other => return Err(format!("--adapter {other:?}: jetstream or redis")),
    };
    let config = BusConfig::from_json(
        r#"{"num_shards":2,"backpressure":{"mode":"fail_producer"},"batch":{"min_size":64,"max_size":512,"max_delay_ms":2},
            "max_attempts":50,"retry_base_ms":20,"retry_max_ms":500,"adapter_timeout_ms":3000}"#,
    )
    .map_err(|e| e.to_string())?;
    let state = DedupStateFile::new(Arc::new(FsStorage), get("state")?);
    let bus = EventBus::with_producer_state(config, adapter, state).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "nonce {:016x}", bus.producer_nonce());
    for i in first..first.saturating_add(count) {
        // FailProducer keeps a refused event with us: wait and retry.
        while let Err(e) = bus.ingest(i.to_le_bytes().to_vec()) {
            match e {
                BusError::Backpressure { .. } => {
                    std::thread::sleep(std::time::Duration::from_millis(1))
                }
                other => return Err(other.to_string()),
            }
        }
        let n = i - first + 1;
        if n % ack_every == 0 || n == count {
            bus.flush().map_err(|e| e.to_string())?;
            let s = bus.stats();
            if s.events_buffered != 0 || s.events_dropped != 0 {
                return Err(format!(
                    "flush left {} buffered, {} dropped",
                    s.events_buffered, s.events_dropped
                ));
            }
            let _ = writeln!(out, "acked {}", i + 1);
            let _ = out.flush();
        }
    }
    let report = bus.shutdown();
    if report.shutdown_was_lossy {
        return Err(format!("lossy shutdown: {report:?}"));
    }
    Ok(())
}
