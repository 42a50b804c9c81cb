//! How much memory the process has allocated, so that a runaway script is stopped before it
//! takes the host's memory: the binary installs [`Counting`] as its global allocator, and the
//! script engine checks [`allocated`] at every operation (a clear script error).
//!
//! One operation can still ask for a lot at once (a string replacement that multiplies its
//! input). So while a script runs there is also a hard limit, checked on every allocation: an
//! allocation that would cross it is not made; the process says so in one line and ends with
//! the status set for it, instead of growing further or aborting.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
/// The hard limit (0: none), the descriptor to say so on, and the exit status.
static HARD_LIMIT: AtomicUsize = AtomicUsize::new(0);
static HARD_FD: AtomicUsize = AtomicUsize::new(2);
static HARD_STATUS: AtomicUsize = AtomicUsize::new(1);

/// Ends the process because an allocation of `size` would cross the hard limit. Allocates
/// nothing: the message is written with one system call.
fn over_hard_limit() -> ! {
    const LINE: &[u8] =
        b"error: script stopped: one operation asked for more memory than the hard limit (200 MiB); nothing more was done\n";
    let fd = HARD_FD.load(Ordering::Relaxed) as libc::c_int;
    // SAFETY: writes a static buffer; _exit ends the process without running anything else.
    unsafe {
        libc::write(fd, LINE.as_ptr().cast(), LINE.len());
        libc::_exit(HARD_STATUS.load(Ordering::Relaxed) as libc::c_int);
    }
}

fn check_hard(size: usize) {
    let limit = HARD_LIMIT.load(Ordering::Relaxed);
    if limit != 0 && ALLOCATED.load(Ordering::Relaxed).saturating_add(size) > limit {
        over_hard_limit();
    }
}

/// Sets the hard limit while scripts run: `bytes` (0: none), said on descriptor `fd` (1 for the
/// hook, whose stderr xenopsd discards), ending with `status`.
pub fn set_hard_limit(bytes: usize, fd: i32, status: u8) {
    HARD_FD.store(fd as usize, Ordering::Relaxed);
    HARD_STATUS.store(usize::from(status), Ordering::Relaxed);
    HARD_LIMIT.store(bytes, Ordering::Relaxed);
}

/// The hard limit in force while a script runs.
pub const HARD_LIMIT_BYTES: usize = 200 * 1024 * 1024;

/// The system allocator, counting the bytes in use.
pub struct Counting;

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter is kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check_hard(layout.size());
        // SAFETY: the caller upholds `alloc`'s contract, passed on as it is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check_hard(layout.size());
        // SAFETY: as above.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check_hard(new_size.saturating_sub(layout.size()));
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
            ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

/// Bytes allocated now (0 when [`Counting`] is not the global allocator).
pub fn allocated() -> usize {
    ALLOCATED.load(Ordering::Relaxed)
}
