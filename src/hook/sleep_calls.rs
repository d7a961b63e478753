//! The sleep hooks: `nanosleep`, `clock_nanosleep`, `usleep`, `sleep`. In a coroutine they
//! sleep on the timer wheel (`corun::sleep`), never early, and are not interrupted (the
//! remaining time, if asked for, is zero); a runtime shutdown ends them early (see `mod.rs`).

use super::{fail, in_coroutine, real};
use libc::{c_int, c_uint, clockid_t, timespec};
use std::time::{Duration, Instant};

/// Sleeps the calling coroutine for `dur` without unwinding on a shutdown; returns whether one
/// is pending (the sleep then ends early).
pub(super) fn sleep_reporting_cancel(dur: Duration) -> bool {
    let Some(deadline) = Instant::now().checked_add(dur) else {
        // Beyond the clock's range: until the shutdown.
        loop {
            if crate::coroutine::park_reporting_cancel() {
                return true;
            }
        }
    };
    if dur.is_zero() {
        return false;
    }
    let _timer = crate::time::Timer::for_current(deadline);
    while Instant::now() < deadline {
        if crate::coroutine::park_reporting_cancel() {
            return true;
        }
    }
    false
}

/// A request as a duration: `EINVAL` for a negative or malformed one, `EFAULT` for null.
///
/// # Safety
/// `req` is null or points to a readable `timespec`.
unsafe fn requested(req: *const timespec) -> Result<Duration, c_int> {
    // SAFETY: the caller's contract.
    let Some(req) = (unsafe { req.as_ref() }) else {
        return Err(libc::EFAULT);
    };
    let secs = u64::try_from(req.tv_sec).map_err(|_| libc::EINVAL)?;
    let nanos = u32::try_from(req.tv_nsec)
        .ok()
        .filter(|&n| n < 1_000_000_000)
        .ok_or(libc::EINVAL)?;
    Ok(Duration::new(secs, nanos))
}

/// Zeroes the remaining time, if the caller asked for it.
///
/// # Safety
/// `rem` is null or points to a writable `timespec`.
unsafe fn none_remaining(rem: *mut timespec) {
    // SAFETY: the caller's contract.
    if let Some(rem) = unsafe { rem.as_mut() } {
        rem.tv_sec = 0;
        rem.tv_nsec = 0;
    }
}

/// `nanosleep(2)`.
///
/// # Safety
/// The caller's contract of `nanosleep(2)`.
#[no_mangle]
pub unsafe extern "C" fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int {
    if !in_coroutine() {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { (real().nanosleep)(req, rem) };
    }
    // SAFETY: the caller's contract.
    match unsafe { requested(req) } {
        Ok(dur) => {
            sleep_reporting_cancel(dur);
            // SAFETY: the caller's contract.
            unsafe { none_remaining(rem) };
            0
        }
        Err(e) => fail(e) as c_int,
    }
}

/// `clock_nanosleep(2)` (which returns the error instead of setting errno). Served in a
/// coroutine for the clocks that count real time (`CLOCK_REALTIME`, `CLOCK_MONOTONIC`,
/// `CLOCK_BOOTTIME`, `CLOCK_TAI`); an absolute deadline is turned into a duration from now on
/// its clock. A CPU-time clock passes through.
///
/// # Safety
/// The caller's contract of `clock_nanosleep(2)`.
#[no_mangle]
pub unsafe extern "C" fn clock_nanosleep(
    clock: clockid_t,
    flags: c_int,
    req: *const timespec,
    rem: *mut timespec,
) -> c_int {
    let wall = matches!(
        clock,
        libc::CLOCK_REALTIME | libc::CLOCK_MONOTONIC | libc::CLOCK_BOOTTIME | libc::CLOCK_TAI
    );
    if !in_coroutine() || !wall {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { (real().clock_nanosleep)(clock, flags, req, rem) };
    }
    // SAFETY: the caller's contract.
    let mut dur = match unsafe { requested(req) } {
        Ok(dur) => dur,
        Err(e) => return e,
    };
    if flags & libc::TIMER_ABSTIME != 0 {
        let mut now = timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid, writable `timespec`.
        if unsafe { libc::clock_gettime(clock, &mut now) } < 0 {
            return super::errno();
        }
        let now = Duration::new(now.tv_sec.max(0) as u64, now.tv_nsec as u32);
        dur = dur.saturating_sub(now);
    } else {
        // SAFETY: the caller's contract.
        unsafe { none_remaining(rem) };
    }
    sleep_reporting_cancel(dur);
    0
}

/// `usleep(3)`.
#[no_mangle]
pub extern "C" fn usleep(usec: c_uint) -> c_int {
    if !in_coroutine() {
        // SAFETY: no pointers.
        return unsafe { (real().usleep)(usec) };
    }
    sleep_reporting_cancel(Duration::from_micros(usec.into()));
    0
}

/// `sleep(3)`: returns 0, the seconds left (a coroutine's sleep is not interrupted).
#[no_mangle]
pub extern "C" fn sleep(seconds: c_uint) -> c_uint {
    if !in_coroutine() {
        // SAFETY: no pointers.
        return unsafe { (real().sleep)(seconds) };
    }
    sleep_reporting_cancel(Duration::from_secs(seconds.into()));
    0
}
