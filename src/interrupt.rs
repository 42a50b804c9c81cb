//! SIGINT, SIGTERM and SIGHUP (an SSH session dropping).
//!
//! Outside a critical section a signal ends the process at once with status 128 + the signal,
//! as the default action would. Inside one — a change being applied to a VM, a confirmation
//! prompt, a recovery — it is only recorded: the work in hand finishes its step, puts the VM's
//! power state back and then stops, saying what it did. A second signal while the first is
//! being handled ends the process at once (the change journal lets the next run finish it).
//! In the shell every section is critical, so that a signal ends the command, not the session.

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

/// The signal received and not yet handled (0: none).
static PENDING: AtomicI32 = AtomicI32::new(0);
/// How many critical sections are open (the shell keeps one open for its whole run).
static CRITICAL: AtomicUsize = AtomicUsize::new(0);

/// The signals handled.
const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

extern "C" fn on_signal(signal: libc::c_int) {
    let first = PENDING
        .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok();
    if !first || CRITICAL.load(Ordering::SeqCst) == 0 {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(128 + signal) };
    }
}

/// Installs the handlers (once, at the start of the process).
pub fn install() {
    for signal in SIGNALS {
        // SAFETY: `on_signal` only touches atomics and calls _exit, which are async-signal-safe;
        // the sigaction struct is fully initialised.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            // No SA_RESTART: a read waiting for an answer returns, and sees the signal.
            action.sa_flags = 0;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// A critical section: while it lives, a signal is recorded instead of ending the process.
pub struct Critical(());

impl Critical {
    /// Opens a critical section.
    pub fn enter() -> Critical {
        CRITICAL.fetch_add(1, Ordering::SeqCst);
        Critical(())
    }
}

impl Drop for Critical {
    fn drop(&mut self) {
        CRITICAL.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The signal received and not handled yet, if any.
pub fn pending() -> Option<i32> {
    match PENDING.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// Forgets a handled signal (the shell, after ending the command it interrupted).
pub fn clear() {
    PENDING.store(0, Ordering::SeqCst);
}

/// `SIGINT`, `SIGTERM`, `SIGHUP`.
pub fn name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}
