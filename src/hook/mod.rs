//! Transparent hooks (feature `hook`): the blocking libc calls, made inside a coroutine, park
//! the coroutine instead of its worker thread.
//!
//! With the feature on, corun defines `read`, `write`, `recv`, `accept`, `connect`, `poll`,
//! `nanosleep` and the rest (the `*_calls.rs` files) as exported C functions. The executable's
//! definitions come first in the dynamic linker's search order, so calls from Rust's std and
//! from shared libraries reach them; the real functions are found once with
//! `dlsym(RTLD_NEXT, ..)` (`real.rs`). DESIGN.md ("Hooks") explains the linking and what cannot
//! be hooked.
//!
//! # The rule of every hook
//!
//! * **Outside a coroutine, pass through.** Plain threads and corun's own threads (workers
//!   between coroutines, the netpoller, the monitor, the blocking pool) get the real call, errno
//!   and all. The one exception is a descriptor corun itself made non-blocking (a pipe or a
//!   listening socket a coroutine waited on, `SYS_NONBLOCK` in `fd_table.rs`): there a call
//!   that says `EAGAIN` although the user never asked for non-blocking mode waits in `poll(2)`
//!   and retries, so the thread sees the blocking behaviour it would have seen.
//! * **Inside a coroutine, on a socket or pipe the user left blocking:** make the call
//!   non-blocking (`MSG_DONTWAIT` for socket data calls; `O_NONBLOCK` set once on the file for
//!   pipes and `accept`, if the process created the descriptor), try it, and on `EAGAIN` park on the descriptor's readiness cell (the
//!   netpoller's, `io/readiness.rs`) until it is ready, then retry. `SO_RCVTIMEO` and
//!   `SO_SNDTIMEO` are honoured: the call fails with `EAGAIN` when they pass, as the kernel's
//!   would. Stream writes go on until everything is written, as a blocking write does.
//! * **Everything else passes through:** descriptors the user made non-blocking (plain
//!   `EAGAIN`), regular files, terminals, eventfds.
//!
//! # Close while others wait
//!
//! A coroutine that waits holds a count on the descriptor's entry (`Fd::enter`). `close` marks
//! the entry `CLOSING`, then makes the cell ready in both directions, which wakes the waiters
//! and makes any queueing that races it fail; it waits for the count to drop to zero, and only
//! then deregisters and closes. A waiter checks `CLOSING` after each wake and before each
//! queueing, and leaves with `EBADF`. Order: the closer's `fetch_or(CLOSING)` precedes its
//! `set_events`; a waiter that queues after the `set_events` sees READY, retries, and meets
//! `CLOSING` (the tick it read with Acquire is the one `set_events` published after the flag);
//! a waiter that queued before is woken by it. So no waiter sleeps through a close, and no
//! waiter touches the cell or the descriptor number after the close: Go's `fdMutex` rule.
//!
//! # Shutdown
//!
//! A hooked call cannot unwind (its caller is C, or a Rust frame that called an `extern "C"`
//! function that cannot), so its waits defer the runtime's `Cancelled` unwind: a call that is
//! waiting when the runtime shuts down fails with `ECANCELED` (a sleep returns early), and the
//! coroutine unwinds at its next switch from Rust code.

mod dns_calls;
mod fd_calls;
mod fd_table;
pub(crate) mod gate;
mod io_calls;
mod poll_calls;
mod real;
mod sleep_calls;

use crate::coroutine::{current_task, park_reporting_cancel};
use crate::io::readiness::Direction;
use crate::io::{park_on_with, poll_fd, Parked};
use fd_table::{
    Fd, KIND_MASK, KIND_OTHER, KIND_SOCKET, OWNED, STREAM, SYS_NONBLOCK, USER_NONBLOCK,
};
use libc::c_int;
use real::real;
use std::time::{Duration, Instant};

/// For `corun::net` taking over a descriptor that a hooked call once waited on (a std socket
/// converted with `From`): drops the hooks' netpoller registration of `fd`, so that the socket
/// type can make its own, unless a coroutine waits through it now. Returns whether it did.
pub(crate) fn release_registration(fd: c_int) -> bool {
    fd_table::get(fd).is_some_and(|entry| entry.release_registration(fd))
}

/// In a forked child, before anything else runs there (registered with `pthread_atfork` at
/// start-up): the child has no runtime, so every hook passes through from now on. The thread
/// that forked forgets it was a coroutine's thread (a `pre_exec` closure runs on that
/// coroutine's stack, and its `read` must not park into a copy of the parent's scheduler),
/// and the descriptor table forgets the parent's cells and waiter counts
/// (`fd_table::after_fork`).
extern "C" fn after_fork() {
    crate::coroutine::forget_context_after_fork();
    fd_table::after_fork();
}

/// Whether the caller is a coroutine (hooks act only then).
#[inline]
fn in_coroutine() -> bool {
    current_task().is_some()
}

#[inline]
fn errno() -> c_int {
    // SAFETY: `__errno_location` returns the calling thread's errno, always valid.
    unsafe { *libc::__errno_location() }
}

#[inline]
fn set_errno(value: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = value };
}

/// Fails a call with `value` in errno: returns -1.
#[inline]
fn fail(value: c_int) -> isize {
    set_errno(value);
    -1
}

/// A `timeval` as a duration (`None` for zero, which means "no timeout" to the kernel, or for a
/// negative or malformed one).
fn timeval_duration(tv: libc::timeval) -> Option<Duration> {
    let secs = u64::try_from(tv.tv_sec).ok()?;
    let micros = u32::try_from(tv.tv_usec)
        .ok()
        .filter(|&us| us < 1_000_000)?;
    let dur = Duration::new(secs, micros * 1000);
    (!dur.is_zero()).then_some(dur)
}

/// How a hooked data call makes its attempt.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// The call as the caller made it (its descriptor is non-blocking already, or it passes
    /// through).
    AsCalled,
    /// A socket call with `MSG_DONTWAIT` added (`read` and `write` become `recv` and `send`).
    DontWait,
}

/// What a hooked call is, for [`blocking_call`].
#[derive(Clone, Copy)]
struct Call {
    direction: Direction,
    /// The call has a `MSG_DONTWAIT` form on sockets (false for `accept`).
    dontwait: bool,
    /// The bytes asked for, for the short-transfer rule of stream sockets (`None`: the rule
    /// does not apply, as for datagrams and vectored calls).
    len: Option<usize>,
    /// For the later parts of a call that goes on (a stream write, a `MSG_WAITALL` receive):
    /// the deadline of the whole call, computed once ([`call_deadline`]). `None` for a call's
    /// first part, which computes its own when it first waits.
    until: Option<Option<Instant>>,
}

/// The deadline of a call on `fd` in `direction` that starts waiting now: its timeout
/// (`SO_RCVTIMEO`, `SO_SNDTIMEO`) from now, if it has one.
fn call_deadline(fd: c_int, direction: Direction) -> Option<Instant> {
    fd_table::get(fd)
        .and_then(|entry| entry.timeout(direction))
        .and_then(|t| Instant::now().checked_add(t))
}

/// How a [`blocking_call`] was served.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Served {
    /// Passed through: the result is the real call's.
    Passed,
    /// Made non-blocking and waited for by corun, in a coroutine or on a thread (a write then
    /// goes on after a short one, as a blocking write would).
    Managed,
}

/// Whether a call on `fd` from a plain thread passes straight through (unless corun made the
/// descriptor non-blocking): checked first by the busiest hooks, whose other paths are out of
/// line, so that a thread's call costs a thread-local read, a table lookup and the call.
/// (A coroutine's call takes the full [`route`] in any case.)
#[inline(always)]
fn thread_passes_through(fd: c_int) -> bool {
    !in_coroutine()
        && fd_table::get(fd)
            .is_none_or(|entry| entry.state() & (SYS_NONBLOCK | USER_NONBLOCK) != SYS_NONBLOCK)
}

/// How a call on a descriptor is served (see the module docs).
enum Route {
    /// The real call, as made.
    Real,
    /// A plain thread's call on a descriptor corun made non-blocking: waits in `poll(2)`.
    ThreadWaits,
    /// A coroutine's call, made non-blocking (`how`), waited for on the readiness cell.
    Managed {
        entry: &'static Fd,
        how: Attempt,
        stream: bool,
    },
}

/// Decides the [`Route`] of a call on `fd` (`dontwait`: the call has a `MSG_DONTWAIT` form).
/// Always inlined: the hook then branches on the route instead of building it in memory.
#[inline(always)]
fn route(fd: c_int, dontwait: bool) -> Route {
    if !in_coroutine() {
        return match fd_table::get(fd) {
            Some(entry) if entry.state() & (SYS_NONBLOCK | USER_NONBLOCK) == SYS_NONBLOCK => {
                Route::ThreadWaits
            }
            _ => Route::Real,
        };
    }
    let Some(entry) = fd_table::get_or_create(fd) else {
        return Route::Real;
    };
    let state = entry.known_state(fd);
    let kind = state & KIND_MASK;
    if state & USER_NONBLOCK != 0 || kind == KIND_OTHER {
        return Route::Real;
    }
    let how = if kind == KIND_SOCKET && dontwait {
        Attempt::DontWait
    } else if state & SYS_NONBLOCK != 0 || (state & OWNED != 0 && make_nonblocking(fd, entry)) {
        Attempt::AsCalled
    } else {
        // Not this process's alone (see `fd_table.rs`), or the user had made it non-blocking
        // already, behind the hooks' back.
        return Route::Real;
    };
    Route::Managed {
        entry,
        how,
        stream: state & STREAM != 0,
    }
}

/// Runs a call that may block on `fd`, following the rule of the module docs. `attempt` makes
/// one attempt; it returns the call's result, with errno set when negative.
///
/// The first attempt is made here, inline; only a call that would block goes on to the
/// out-of-line waiting loop ([`coroutine_waits`]), so a call that does not block costs the
/// route and the call.
#[inline]
fn blocking_call(
    fd: c_int,
    call: Call,
    mut attempt: impl FnMut(Attempt) -> isize,
) -> (isize, Served) {
    let (entry, how, stream) = match route(fd, call.dontwait) {
        Route::Real => return (attempt(Attempt::AsCalled), Served::Passed),
        Route::ThreadWaits => {
            let r = thread_waits(fd, call, &mut attempt);
            return (r, Served::Managed);
        }
        Route::Managed { entry, how, stream } => (entry, how, stream),
    };
    let r = match try_once(entry, call, how, stream, &mut attempt) {
        Some(r) if r < 0 && how == Attempt::DontWait && errno() == libc::ENOTSOCK => {
            // The entry said socket, the kernel says not: it was left by a socket of the same
            // number closed behind the hooks' back, and the descriptor was made by a call they
            // do not see. Forget it, and make the call as it was made.
            fd_calls::created(fd, fd_table::KIND_UNKNOWN, [0, 0]);
            return (attempt(Attempt::AsCalled), Served::Passed);
        }
        Some(r) => r,
        None => coroutine_waits(fd, entry, call, how, stream, &mut attempt),
    };
    (r, Served::Managed)
}

/// One managed attempt, unless the readiness cell says it would block: the result, or `None`
/// if it would block (the cell then cleared, tick-checked). A short transfer on a stream socket
/// clears the cell too (`io/readiness.rs`).
#[inline]
fn try_once(
    entry: &Fd,
    call: Call,
    how: Attempt,
    stream: bool,
    attempt: &mut impl FnMut(Attempt) -> isize,
) -> Option<isize> {
    let cell = entry.cell();
    let seen = cell.map(|cell| cell.readiness(call.direction));
    if seen.is_some_and(|seen| !seen.is_ready()) {
        return None;
    }
    let r = attempt(how);
    if r >= 0 {
        if let (Some(cell), Some(seen), Some(len), true) = (cell, seen, call.len, stream) {
            if r > 0 && (r as usize) < len {
                cell.clear_drained(seen);
            }
        }
        return Some(r);
    }
    if errno() != libc::EAGAIN {
        return Some(r);
    }
    if let (Some(cell), Some(seen)) = (cell, seen) {
        cell.clear(seen);
    }
    None
}

/// Sets `O_NONBLOCK` on `fd`'s open file for corun's sake (`SYS_NONBLOCK`); false if the user
/// had set it already (recorded as theirs then).
#[cold]
fn make_nonblocking(fd: c_int, entry: &Fd) -> bool {
    let real = real();
    // SAFETY: F_GETFL and F_SETFL read no memory.
    let flags = unsafe { (real.fcntl)(fd, libc::F_GETFL, 0) };
    if flags < 0 {
        return false; // the attempt will report the error
    }
    if flags & libc::O_NONBLOCK != 0 {
        entry.set_flag(USER_NONBLOCK, true);
        return false;
    }
    // SAFETY: as above.
    let set = unsafe {
        (real.fcntl)(
            fd,
            libc::F_SETFL,
            (flags | libc::O_NONBLOCK) as libc::c_ulong,
        )
    };
    if set < 0 {
        return false;
    }
    entry.set_flag(SYS_NONBLOCK, true);
    true
}

/// The coroutine's loop, after a first attempt that would block: park on the readiness cell,
/// and attempt again, until the call completes, fails, times out (`EAGAIN`), is closed under it
/// (`EBADF`) or cancelled by a shutdown (`ECANCELED`).
#[inline(never)]
fn coroutine_waits(
    fd: c_int,
    entry: &Fd,
    call: Call,
    how: Attempt,
    stream: bool,
    attempt: &mut dyn FnMut(Attempt) -> isize,
) -> isize {
    let direction = call.direction;
    // A socket the user set non-blocking through a path the hooks did not see (a duplicate,
    // a raw system call) keeps its `EAGAIN`. Asked of the kernel the first time the socket
    // would wait only (one `F_GETFL`, not one per wait); later changes made that way are not
    // seen.
    if how == Attempt::DontWait && entry.cell().is_none() && user_set_nonblocking(fd, entry) {
        return fail(libc::EAGAIN);
    }
    let deadline = call.until.unwrap_or_else(|| call_deadline(fd, direction));
    if !entry.enter() {
        return fail(libc::EBADF);
    }
    let result = loop {
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            break fail(libc::EAGAIN);
        }
        match wait(fd, entry, direction, deadline) {
            Ok(Parked::Ready) => {}
            Ok(Parked::TimedOut) => break fail(libc::EAGAIN),
            Ok(Parked::Cancelled) => break fail(libc::ECANCELED),
            Err(e) => break fail(e),
        }
        if let Some(r) = try_once(entry, call, how, stream, &mut &mut *attempt) {
            break r;
        }
    };
    entry.leave();
    result
}

/// Whether `fd`'s open file is in non-blocking mode although the entry says the user left it
/// blocking; records it if so.
#[cold]
fn user_set_nonblocking(fd: c_int, entry: &Fd) -> bool {
    // SAFETY: F_GETFL reads no memory.
    let flags = unsafe { (real().fcntl)(fd, libc::F_GETFL, 0) };
    let nonblocking = flags >= 0 && flags & libc::O_NONBLOCK != 0;
    if nonblocking {
        entry.set_flag(USER_NONBLOCK, true);
    }
    nonblocking
}

/// Parks until `fd` may be ready in `direction`, `deadline` passes, or a shutdown; an errno if
/// it cannot wait (`EBADF` once a close has begun, or a registration failure).
fn wait(
    fd: c_int,
    entry: &Fd,
    direction: Direction,
    deadline: Option<Instant>,
) -> Result<Parked, c_int> {
    if entry.closing() {
        return Err(libc::EBADF);
    }
    let cell = entry
        .register(fd)
        .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    if cell.readiness(direction).is_ready() {
        return Ok(Parked::Ready);
    }
    let parked = park_on_with(cell, &[Some(direction)], deadline, park_reporting_cancel);
    if entry.closing() {
        return Err(libc::EBADF);
    }
    Ok(parked)
}

/// A plain thread's call on a descriptor corun made non-blocking: where the kernel would have
/// blocked, wait in `poll(2)` (for no longer than the descriptor's timeout) and retry.
#[cold]
#[inline(never)]
fn thread_waits(fd: c_int, call: Call, attempt: &mut dyn FnMut(Attempt) -> isize) -> isize {
    let direction = call.direction;
    let mut deadline = call.until;
    loop {
        let r = attempt(Attempt::AsCalled);
        if r >= 0 || errno() != libc::EAGAIN {
            return r;
        }
        let until = *deadline.get_or_insert_with(|| call_deadline(fd, direction));
        match poll_fd(fd, direction.into(), until) {
            Ok(true) => continue,
            Ok(false) => return fail(libc::EAGAIN),
            Err(e) => return fail(e.raw_os_error().unwrap_or(libc::EIO)),
        }
    }
}

/// A stream write that goes on until everything is written, as a blocking one does:
/// `attempt(done, how)` writes what remains after `done` bytes. Returns the total, or the
/// error if nothing was written. Only calls that corun manages go on after a short write.
#[inline]
fn write_all(
    fd: c_int,
    direction: Direction,
    len: usize,
    mut attempt: impl FnMut(usize, Attempt) -> isize,
) -> isize {
    let call = Call {
        direction,
        dontwait: true,
        len: Some(len),
        until: None,
    };
    let (r, served) = blocking_call(fd, call, |how| attempt(0, how));
    if served == Served::Passed || r <= 0 || r as usize >= len {
        return r;
    }
    write_rest(fd, direction, len, r as usize, &mut attempt)
}

/// The rest of [`write_all`] after a short write of `done` bytes (out of line: the common
/// write is written whole at once).
#[inline(never)]
fn write_rest(
    fd: c_int,
    direction: Direction,
    len: usize,
    mut done: usize,
    attempt: &mut dyn FnMut(usize, Attempt) -> isize,
) -> isize {
    // One deadline for the rest of the call (from the first short part on: reading the clock
    // before the first part would cost every write).
    let until = Some(call_deadline(fd, direction));
    while done < len {
        let call = Call {
            direction,
            dontwait: true,
            len: Some(len - done),
            until,
        };
        let (r, _) = blocking_call(fd, call, |how| attempt(done, how));
        if r <= 0 {
            break; // an error after some data: the data, as the kernel
        }
        done += r as usize;
    }
    done as isize
}
