//! Large buffers faulted in with one call before they are filled.
//!
//! A snapshot buffer of tens of MiB is fresh memory: filling it takes one
//! page fault per 4 KiB page, and on a VM those faults cost more than the
//! copy itself (64 MiB: ~90 ms copied into fresh memory against ~50 ms
//! populated first with `MADV_POPULATE_WRITE`, then copied, under load on
//! the 2-core test VM). Linux ≥ 5.14; elsewhere, or when the call fails,
//! the pages fault in as they are written, as before.

/// Below this, faulting pages in one by one costs less than the call.
const MIN_PREFAULT: usize = 256 << 10;

/// Reserves room for `additional` more bytes in `buf` and faults the
/// reserved pages in (whole pages inside the spare capacity only).
pub(crate) fn reserve_prefaulted(buf: &mut Vec<u8>, additional: usize) {
    buf.reserve(additional);
    populate_spare(buf, additional);
}

/// Faults in the first `len` bytes of `buf`'s spare capacity (no more
/// than it has; whole pages only).
pub(crate) fn populate_spare(buf: &mut Vec<u8>, len: usize) {
    let spare = buf.spare_capacity_mut();
    let len = len.min(spare.len());
    if len >= MIN_PREFAULT {
        populate(spare.as_mut_ptr().cast(), len);
    }
}

#[cfg(target_os = "linux")]
fn populate(start: *mut u8, len: usize) {
    // SAFETY: `sysconf` has no preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    let begin = (start as usize).next_multiple_of(page);
    let end = (start as usize + len) / page * page;
    if end <= begin {
        return;
    }
    // SAFETY: [begin, end) lies inside the caller's allocation (its spare
    // capacity, whole pages only); MADV_POPULATE_WRITE only faults those
    // pages in, as a write would, without changing their contents.
    let rc = unsafe {
        libc::madvise(
            begin as *mut libc::c_void,
            end - begin,
            libc::MADV_POPULATE_WRITE,
        )
    };
    if rc != 0 {
        tracing::trace!(error = %std::io::Error::last_os_error(), "MADV_POPULATE_WRITE");
    }
}

#[cfg(not(target_os = "linux"))]
fn populate(_: *mut u8, _: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserving_keeps_the_contents_and_makes_room() {
        let mut buf = vec![7u8; 10];
        reserve_prefaulted(&mut buf, 4 << 20);
        assert!(buf.capacity() >= 10 + (4 << 20));
        assert_eq!(buf, vec![7u8; 10]);
        buf.resize(10 + (4 << 20), 1);
        assert!(buf[10..].iter().all(|&b| b == 1));
        let mut small = Vec::new();
        reserve_prefaulted(&mut small, 100);
        assert!(small.capacity() >= 100 && small.is_empty());
    }
}
