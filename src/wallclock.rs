//! The wall clock, nanoseconds since the UNIX epoch, for paths that stamp
//! every event (a daemon's outputs, RedEX appends).
//!
//! `clock_gettime(CLOCK_REALTIME)` costs ~25 ns in a VM (the vDSO orders
//! its TSC read with a fence and walks the kernel's time data). Where the
//! kernel itself keeps time by the TSC (clocksource `tsc`: constant, in
//! step on every CPU), [`now_ns`] reads the TSC (~10 ns) and scales it from
//! an anchor — a (TSC, wall time) pair re-read every [`REANCHOR_NS`] — by
//! a rate measured against `CLOCK_MONOTONIC_RAW`, which the kernel derives
//! from the same TSC. Between anchors the reading drifts from
//! `clock_gettime` only by NTP's slew over that span (≤ 500 ppm: ≤ 10 µs),
//! and a stepped clock is followed at the next anchor. Elsewhere, and until
//! the rate is measured (the first [`CALIBRATE_NS`]), it is
//! `clock_gettime`. The reading is not monotonic (an anchor may set it back
//! by the drift); use `Instant` for intervals.

/// The wall clock in nanoseconds since the UNIX epoch (0 before it).
pub(crate) fn now_ns() -> u64 {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    if let Some(ns) = tsc::now_ns() {
        return ns;
    }
    system_ns(libc::CLOCK_REALTIME)
}

/// How long an anchor serves before the clock is read again.
pub(crate) const REANCHOR_NS: u64 = 20_000_000;

/// The span over which the TSC's rate is first measured.
pub(crate) const CALIBRATE_NS: u64 = 5_000_000;

/// `clock_gettime(clock)` in nanoseconds (0 on failure or before 1970).
fn system_ns(clock: libc::clockid_t) -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to write.
    if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
        return 0;
    }
    let (Ok(secs), Ok(nanos)) = (u64::try_from(now.tv_sec), u64::try_from(now.tv_nsec)) else {
        return 0;
    };
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// `ticks` at `scale` nanoseconds per tick (32.32 fixed point).
fn scaled(ticks: u64, scale: u64) -> u64 {
    u64::try_from((u128::from(ticks) * u128::from(scale)) >> 32).unwrap_or(u64::MAX)
}

/// The rate, nanoseconds per tick in 32.32 fixed point, of `ns` over
/// `ticks`; `None` unless plausible for a TSC (0.1–10 GHz).
fn rate(ns: u64, ticks: u64) -> Option<u64> {
    if ticks == 0 {
        return None;
    }
    let scale = (u128::from(ns) << 32) / u128::from(ticks);
    let plausible = (1u128 << 32) / 10..=(10u128 << 32);
    plausible
        .contains(&scale)
        .then(|| u64::try_from(scale).ok())
        .flatten()
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod tsc {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering, fence};

    use super::{CALIBRATE_NS, REANCHOR_NS, rate, scaled, system_ns};

    /// Whether the kernel keeps time by the TSC (read once).
    static USABLE: OnceLock<bool> = OnceLock::new();

    /// The anchor, under a sequence lock: `SEQ` is odd while one thread
    /// writes it. `SCALE` 0: the rate is not known yet.
    static SEQ: AtomicU64 = AtomicU64::new(0);
    static BASE_TSC: AtomicU64 = AtomicU64::new(0);
    static BASE_NS: AtomicU64 = AtomicU64::new(0);
    static BASE_RAW: AtomicU64 = AtomicU64::new(0);
    static SCALE: AtomicU64 = AtomicU64::new(0);
    /// Ticks an anchor serves (`REANCHOR_NS` at `SCALE`).
    static SPAN: AtomicU64 = AtomicU64::new(0);

    fn kernel_uses_tsc() -> bool {
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .is_ok_and(|source| source.trim() == "tsc")
    }

    fn rdtsc() -> u64 {
        // SAFETY: RDTSC exists on every x86_64 CPU and only reads the
        // counter.
        unsafe { core::arch::x86_64::_rdtsc() }
    }

    /// The wall clock from the TSC; `None` where the kernel does not keep
    /// time by it.
    pub(super) fn now_ns() -> Option<u64> {
        if !*USABLE.get_or_init(kernel_uses_tsc) {
            return None;
        }
        let tsc = rdtsc();
        let seq = SEQ.load(Ordering::Acquire);
        let base_tsc = BASE_TSC.load(Ordering::Relaxed);
        let base_ns = BASE_NS.load(Ordering::Relaxed);
        let scale = SCALE.load(Ordering::Relaxed);
        let span = SPAN.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        let steady = seq & 1 == 0 && SEQ.load(Ordering::Relaxed) == seq;
        if steady
            && scale != 0
            && let Some(ticks) = tsc.checked_sub(base_tsc)
            && ticks < span
        {
            return Some(base_ns.saturating_add(scaled(ticks, scale)));
        }
        Some(reanchor(seq))
    }

    /// The system's wall clock, re-anchoring on the way when the anchor is
    /// due (one thread does; the others just read the system clock).
    fn reanchor(seq: u64) -> u64 {
        let tsc = rdtsc();
        let raw = system_ns(libc::CLOCK_MONOTONIC_RAW);
        let ns = system_ns(libc::CLOCK_REALTIME);
        if seq & 1 == 1 {
            return ns; // another thread is writing the anchor
        }
        let base_tsc = BASE_TSC.load(Ordering::Relaxed);
        let base_raw = BASE_RAW.load(Ordering::Relaxed);
        let scale = SCALE.load(Ordering::Relaxed);
        let since = raw.wrapping_sub(base_raw);
        if scale == 0 && base_tsc != 0 && since < CALIBRATE_NS {
            return ns; // measuring the rate: not long enough yet
        }
        if SEQ
            .compare_exchange(seq, seq + 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return ns;
        }
        fence(Ordering::Release);
        // The rate over the last anchor's span (raw time is NTP-free); a
        // first anchor, or one gone backwards, measures it afresh.
        let measured = (base_tsc != 0 && tsc > base_tsc && raw > base_raw)
            .then(|| rate(since, tsc - base_tsc))
            .flatten()
            .unwrap_or(0);
        BASE_TSC.store(tsc, Ordering::Relaxed);
        BASE_NS.store(ns, Ordering::Relaxed);
        BASE_RAW.store(raw, Ordering::Relaxed);
        SCALE.store(measured, Ordering::Relaxed);
        let span = if measured == 0 {
            0
        } else {
            u64::try_from((u128::from(REANCHOR_NS) << 32) / u128::from(measured)).unwrap_or(0)
        };
        SPAN.store(span, Ordering::Relaxed);
        SEQ.store(seq + 2, Ordering::Release);
        ns
    }

    #[cfg(test)]
    pub(super) fn is_used() -> bool {
        *USABLE.get_or_init(kernel_uses_tsc) && SCALE.load(Ordering::Relaxed) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system() -> u64 {
        system_ns(libc::CLOCK_REALTIME)
    }

    #[test]
    fn scaling_is_fixed_point_nanoseconds_per_tick() {
        // 2.5 GHz: 0.4 ns per tick.
        let scale = rate(400, 1000).unwrap();
        assert_eq!(scaled(1000, scale), 399); // rounded down
        assert_eq!(scaled(2_500_000_000, scale), 999_999_999);
        assert_eq!(scaled(0, scale), 0);
        assert_eq!(rate(1, 0), None);
        assert_eq!(rate(1, 1000), None, "1 THz is no TSC");
        assert_eq!(rate(100_000, 1), None, "10 kHz is no TSC");
        assert!(scaled(u64::MAX, u64::MAX) == u64::MAX);
    }

    /// Every reading lies within a millisecond of the system clock read
    /// around it, across the calibration and several anchors.
    #[test]
    fn the_clock_follows_the_system_clock() {
        let start = std::time::Instant::now();
        let (mut reads, mut off) = (0u64, 0u64);
        while start.elapsed().as_nanos() < u128::from(3 * REANCHOR_NS + CALIBRATE_NS) {
            let before = system();
            let now = now_ns();
            let after = system();
            assert!(
                before.saturating_sub(1_000_000) <= now && now <= after + 1_000_000,
                "{before} <= {now} <= {after} (±1 ms)"
            );
            off = off
                .max(before.saturating_sub(now))
                .max(now.saturating_sub(after));
            reads += 1;
        }
        assert!(reads > 100);
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        eprintln!(
            "TSC clock in use: {}; {reads} reads, at most {off} ns outside the system clock's",
            tsc::is_used()
        );
    }
}
