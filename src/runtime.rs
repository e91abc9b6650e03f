//! The tokio runtime every [`EventBus`](crate::bus::EventBus) and
//! [`MeshNode`](crate::mesh::MeshNode) of a process runs on.
//!
//! One multi-thread runtime, created lazily by the first bus or node and
//! never shut down (its worker threads end with the process), with a small
//! pool: `max(2, available_parallelism)` workers named `net-rt`. Buses and
//! nodes spawn their tasks on it and end those tasks when they shut down,
//! so closing one never disturbs another. Rust users who already run a
//! multi-thread runtime pass its [`Handle`](tokio::runtime::Handle) instead
//! (`EventBus::builder(..).runtime(handle)`,
//! `MeshNode::with_runtime(config, handle)`); a current-thread runtime is
//! refused, since its only thread may be the one a blocking call parks.
//!
//! The synchronous API waits through [`block_on`](crate::runtime::block_on),
//! which never calls `Handle::block_on` on a runtime thread: from inside a
//! runtime it runs the future on the target runtime from a helper thread
//! (under `block_in_place` on a multi-thread worker, so the worker's other
//! tasks move to another thread). A blocking call made from async code
//! therefore works — it blocks its caller, as any synchronous call does —
//! and never panics.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

use tokio::runtime::{Handle, Runtime, RuntimeFlavor};

/// Name of the shared runtime's worker threads.
pub const THREAD_NAME: &str = "net-rt";

static SHARED: OnceLock<Runtime> = OnceLock::new();

/// Worker threads of the shared runtime: at least two (one may be parked
/// in a blocking adapter call), at most one per core beyond that.
pub fn worker_threads() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2)
        .max(2)
}

/// A handle to the shared runtime, creating it on first use.
///
/// # Errors
/// The OS error when its threads cannot be started (then the next call
/// tries again).
pub fn shared() -> io::Result<Handle> {
    if let Some(rt) = SHARED.get() {
        return Ok(rt.handle().clone());
    }
    // One builder at a time: a losing racer would otherwise start (and
    // drop) a whole thread pool.
    static BUILDING: Mutex<()> = Mutex::new(());
    let _building = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(rt) = SHARED.get() {
        return Ok(rt.handle().clone());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads())
        .thread_name(THREAD_NAME)
        .enable_all()
        .build()?;
    Ok(SHARED.get_or_init(|| rt).handle().clone())
}

/// Checks a runtime handed in by a Rust user: it must be multi-threaded
/// and have its I/O and time drivers enabled (checked when used: tokio
/// panics without them, so we say so up front).
///
/// # Errors
/// A message naming the problem.
pub fn check_injected(handle: &Handle) -> Result<(), String> {
    match handle.runtime_flavor() {
        RuntimeFlavor::MultiThread => Ok(()),
        other => Err(format!(
            "the runtime must be a multi-thread tokio runtime (with enable_all), not {other:?}: \
             a blocking call could otherwise park the only thread its tasks run on"
        )),
    }
}

/// Runs `fut` to completion on `handle` from synchronous code.
///
/// Outside any runtime this is `handle.block_on(fut)`. Inside one (the
/// caller is async code, or a thread with a runtime entered), it runs the
/// future from a helper thread — never `block_on` on a runtime thread,
/// which tokio forbids — and, on a multi-thread worker, inside
/// `block_in_place` so that worker's queued tasks keep running elsewhere.
pub fn block_on<F>(handle: &Handle, fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    let Ok(current) = Handle::try_current() else {
        return handle.block_on(fut);
    };
    let wait = move || {
        // The future stays here if the helper never starts.
        let slot = Mutex::new(Some(fut));
        let take = || slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        let helped = std::thread::scope(|s| {
            std::thread::Builder::new()
                .name("net-block-on".into())
                .spawn_scoped(s, || take().map(|fut| handle.block_on(fut)))
                .map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
        });
        match (helped, take()) {
            (Ok(Some(out)), _) => out,
            // Out of threads: poll it here instead (still no block_on).
            (_, Some(fut)) => poll_here(handle, fut),
            (_, None) => unreachable!("the helper took the future and returned its output"),
        }
    };
    // block_in_place panics on a current-thread runtime and outside a
    // task: a task id proves we are in one, the flavor that it may leave
    // its worker.
    if current.runtime_flavor() == RuntimeFlavor::MultiThread && tokio::task::try_id().is_some() {
        tokio::task::block_in_place(wait)
    } else {
        wait()
    }
}

/// Polls `fut` on this thread, parking between wake-ups, with `handle`
/// entered (its timers and sockets are driven by its own workers) and
/// outside tokio's cooperative budget of whatever task we are in.
fn poll_here<F: Future>(handle: &Handle, fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let _enter = handle.enter();
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(tokio::task::unconstrained(fut));
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_shared_runtime_is_one_multi_thread_runtime() {
        let a = shared().unwrap();
        let b = shared().unwrap();
        assert_eq!(a.id(), b.id());
        assert_eq!(a.runtime_flavor(), RuntimeFlavor::MultiThread);
        assert!(worker_threads() >= 2);
    }

    #[test]
    fn block_on_works_outside_and_inside_runtimes() {
        let shared = shared().unwrap();
        let sleep = || async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            7
        };
        assert_eq!(block_on(&shared, sleep()), 7);
        // From a task on a multi-thread runtime (block_in_place path).
        let outer = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let h = shared.clone();
        assert_eq!(
            outer
                .block_on(outer.spawn(async move { block_on(&h, sleep()) }))
                .unwrap(),
            7
        );
        // From a multi-thread runtime's block_on (not a task).
        assert_eq!(outer.block_on(async { block_on(&shared, sleep()) }), 7);
        // From a current-thread runtime, on itself too.
        let current = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        assert_eq!(current.block_on(async { block_on(&shared, sleep()) }), 7);
        // From our own runtime's worker.
        let h = shared.clone();
        assert_eq!(
            block_on(&shared, shared.spawn(async move { block_on(&h, sleep()) })).unwrap(),
            7
        );
    }

    #[test]
    fn the_fallback_polls_on_the_calling_thread() {
        let shared = shared().unwrap();
        let current = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let v = current.block_on(async {
            poll_here(&shared, async {
                tokio::time::sleep(Duration::from_millis(2)).await;
                tokio::spawn(async { 5 }).await.unwrap()
            })
        });
        assert_eq!(v, 5);
    }

    #[test]
    fn only_multi_thread_runtimes_are_accepted() {
        let current = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let err = check_injected(current.handle()).unwrap_err();
        assert!(err.contains("multi-thread"), "{err}");
        assert!(check_injected(&shared().unwrap()).is_ok());
    }
}
