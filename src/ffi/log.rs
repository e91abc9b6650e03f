//! `net_log_*`: libnet's warnings and errors, pulled by the caller.
//!
//! The ABI has no callbacks into foreign code. Instead, once a caller sets a
//! level with `net_log_set_level`, libnet's log records at or above it (the
//! `tracing` events of the whole library: a free that could not finish, a
//! failed fsync, a recovery that dropped entries) are queued, and
//! `net_log_next` hands them out one at a time, blocking until one arrives.
//! The SDKs run that pull loop on a background thread and forward each record
//! to their language's logging. The queue holds at most [`QUEUE_CAPACITY`]
//! records; when nobody pulls, the oldest are dropped and the next record
//! says how many.
//!
//! Rust programs using the crate directly install their own `tracing`
//! subscriber instead; this module installs one only when asked through the
//! C ABI (and not at all if the process already has one).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Condvar, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber, span};

use super::bytes::net_bytes_t;
use super::cancel::{cancelled, net_cancel_t, net_error_t};
use super::error::FfiError;
use super::export::ffi_export;
use super::redex::NET_WAIT_FOREVER;
use super::status::net_status_t;
use crate::cancel::CancelToken;

/// Logging off (the default until a caller sets a level).
pub const NET_LOG_OFF: u32 = 0;
/// Errors only.
pub const NET_LOG_ERROR: u32 = 1;
/// Warnings and errors.
pub const NET_LOG_WARN: u32 = 2;
/// Informational records too.
pub const NET_LOG_INFO: u32 = 3;
/// Debug records too.
pub const NET_LOG_DEBUG: u32 = 4;
/// Everything.
pub const NET_LOG_TRACE: u32 = 5;

/// Records the queue keeps before dropping the oldest.
pub(crate) const QUEUE_CAPACITY: usize = 1024;

static LEVEL: AtomicU32 = AtomicU32::new(NET_LOG_OFF);

struct Record {
    level: u32,
    text: String,
}

struct Queue {
    records: Mutex<VecDeque<Record>>,
    arrived: Condvar,
    dropped: AtomicU64,
}

static QUEUE: LazyLock<Queue> = LazyLock::new(|| Queue {
    records: Mutex::new(VecDeque::new()),
    arrived: Condvar::new(),
    dropped: AtomicU64::new(0),
});

impl Queue {
    fn records(&self) -> MutexGuard<'_, VecDeque<Record>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, record: Record) {
        let mut records = self.records();
        if records.len() >= QUEUE_CAPACITY {
            records.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        records.push_back(record);
        drop(records);
        self.arrived.notify_all();
    }
}

fn level_number(level: &Level) -> u32 {
    match *level {
        Level::ERROR => NET_LOG_ERROR,
        Level::WARN => NET_LOG_WARN,
        Level::INFO => NET_LOG_INFO,
        Level::DEBUG => NET_LOG_DEBUG,
        Level::TRACE => NET_LOG_TRACE,
    }
}

/// Formats an event as `message key=value ...`.
#[derive(Default)]
struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let rest = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}");
            if !rest.is_empty() {
                self.0.push(' ');
                self.0.push_str(&rest);
            }
        } else {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            let _ = write!(self.0, "{}={value}", field.name());
        }
    }
}

/// The subscriber `net_log_set_level` installs: every enabled event becomes
/// a queued record. Spans are not tracked.
struct QueueSubscriber;

impl Subscriber for QueueSubscriber {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        // The level changes at run time, so ask `enabled` every time.
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        level_number(metadata.level()) <= LEVEL.load(Ordering::Relaxed)
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut text = Text::default();
        event.record(&mut text);
        QUEUE.push(Record {
            level: level_number(event.metadata().level()),
            text: format!("{}: {}", event.metadata().target(), text.0),
        });
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

static INSTALL: std::sync::Once = std::sync::Once::new();

/// Logs a warning from the C ABI layer (a free that could not finish).
pub(crate) fn warn(message: &str) {
    tracing::warn!(target: "net::ffi", "{message}");
}

/// Sets the level from which libnet's log records are queued for
/// `net_log_next` (`NET_LOG_OFF` .. `NET_LOG_TRACE`; the default is
/// `NET_LOG_OFF`: nothing is queued). The first call with a level other than
/// off installs libnet's log collector for the process.
///
/// Errors: `NET_ERR_INVALID_ARGUMENT` for a level above `NET_LOG_TRACE`.
#[unsafe(no_mangle)]
pub extern "C" fn net_log_set_level(level: u32) -> net_status_t {
    super::export::run(|| {
        if level > NET_LOG_TRACE {
            return Err(FfiError::invalid_argument(format!(
                "log level {level} is not one of NET_LOG_OFF..NET_LOG_TRACE"
            )));
        }
        LEVEL.store(level, Ordering::Relaxed);
        if level != NET_LOG_OFF {
            INSTALL.call_once(|| {
                // Fails only if the process already has a global subscriber
                // (a Rust host): its own then receives the records.
                let _ = tracing::subscriber::set_global_default(QueueSubscriber);
            });
            tracing::callsite::rebuild_interest_cache();
        }
        Ok(())
    })
}

/// Waits up to `timeout_ms` (`NET_WAIT_FOREVER`: no limit) for the next log
/// record: `NET_OK` with its level (`NET_LOG_ERROR` .. `NET_LOG_TRACE`) and
/// text (`target: message key=value ...`, UTF-8, release with
/// `net_bytes_free`); `NET_TIMEOUT`; or `NET_ERR_CANCELLED`. When records were
/// dropped because nobody pulled, a `NET_LOG_WARN` record saying how many
/// comes first.
///
/// # Safety
/// `cancel` is NULL or from libnet; the outputs are valid for one write;
/// `error_out` is NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_log_next(
    timeout_ms: u32,
    level_out: *mut u32,
    text_out: *mut net_bytes_t,
    cancel: *const net_cancel_t,
    error_out: *mut net_error_t,
) -> net_status_t {
    ffi_export!(error_out error_out; cancel cancel; out level_out; out text_out; {
        // No deadline: forever (also for a timeout past the clock's range).
        let deadline = (timeout_ms != NET_WAIT_FOREVER)
            .then(|| Instant::now().checked_add(Duration::from_millis(u64::from(timeout_ms))))
            .flatten();
        let queue = &*QUEUE;
        let _wake = cancel.token().map(|t| t.on_cancel(|| {
            // Take the lock so the wake-up cannot slip between the waiter's
            // check and its wait.
            drop(QUEUE.records());
            QUEUE.arrived.notify_all();
        }));
        let mut records = queue.records();
        loop {
            if cancel.token().is_some_and(CancelToken::is_cancelled) {
                return Err(cancelled());
            }
            let dropped = queue.dropped.swap(0, Ordering::Relaxed);
            if dropped > 0 {
                level_out.write(NET_LOG_WARN);
                text_out.write(net_bytes_t::from_vec(
                    format!("net::ffi: {dropped} log records were dropped (nobody pulled them)").into_bytes(),
                ));
                return Ok(net_status_t::NET_OK);
            }
            if let Some(record) = records.pop_front() {
                level_out.write(record.level);
                text_out.write(net_bytes_t::from_vec(record.text.into_bytes()));
                return Ok(net_status_t::NET_OK);
            }
            records = match deadline {
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Ok(net_status_t::NET_TIMEOUT);
                    }
                    queue
                        .arrived
                        .wait_timeout(records, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => queue.arrived.wait(records).unwrap_or_else(|e| e.into_inner()),
            };
        }
    })
}
