//! The background fsync thread for files with a periodic fsync policy
//! (`Interval`, `IntervalOrBytes` with a period). One thread serves every
//! such file in the process; it holds only weak references, so a dropped or
//! closed file simply falls off its list. A failed fsync poisons the file
//! (see `RedexFile::sync`), it is never ignored.

use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::file::FileInner;

struct Registration {
    file: Weak<FileInner>,
    period: Duration,
    due: Instant,
}

struct Syncer {
    registrations: Mutex<Vec<Registration>>,
    changed: Condvar,
}

fn syncer() -> &'static Syncer {
    static SYNCER: OnceLock<Syncer> = OnceLock::new();
    SYNCER.get_or_init(|| {
        let started = std::thread::Builder::new()
            .name("redex-syncer".into())
            .spawn(run);
        if let Err(e) = started {
            tracing::error!(error = %e, "could not start the RedEX background fsync thread");
        }
        Syncer {
            registrations: Mutex::new(Vec::new()),
            changed: Condvar::new(),
        }
    })
}

/// Adds `file` to the background thread's list, first due one period from now.
pub(crate) fn register(file: &Arc<FileInner>) {
    let Some(period) = file.fsync_policy().period() else {
        return;
    };
    // A period too long to schedule is a period that never comes.
    let Some(due) = Instant::now().checked_add(period) else {
        return;
    };
    let s = syncer();
    s.registrations
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Registration {
            file: Arc::downgrade(file),
            period,
            due,
        });
    s.changed.notify_all();
}

fn run() {
    let s = syncer();
    let mut registrations = s.registrations.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let now = Instant::now();
        let mut due = Vec::new();
        registrations.retain_mut(|r| match r.file.upgrade() {
            Some(file) if !file.is_closed() => {
                if r.due <= now {
                    due.push(file);
                    r.due = now.checked_add(r.period).unwrap_or(now);
                }
                true
            }
            _ => false,
        });
        if !due.is_empty() {
            // Sync without holding the registration list.
            drop(registrations);
            for file in due {
                // A failure has poisoned the file and been logged; the file
                // stays registered so close() still reports it.
                let _ = file.sync_now();
            }
            registrations = s.registrations.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        let next = registrations.iter().map(|r| r.due).min();
        registrations = match next {
            Some(next) => {
                let wait = next.saturating_duration_since(Instant::now());
                s.changed
                    .wait_timeout(registrations, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => s
                .changed
                .wait(registrations)
                .unwrap_or_else(|e| e.into_inner()),
        };
    }
}
