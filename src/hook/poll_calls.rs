//! `poll` and `select` (libco's `co_poll`): in a coroutine, with a timeout other than zero,
//! park until one of the descriptors is ready or the timeout passes.
//!
//! The answer always comes from the real `poll` with a zero timeout, so its semantics
//! (level-triggered, `POLLHUP`, `POLLNVAL`, the events of every kind of descriptor) are the
//! kernel's. Between two looks the coroutine waits on the readiness cells of all the
//! descriptors at once: one wait node queued on each, woken by whichever fires first. The cells
//! are cleared (tick-checked, as in `io/readiness.rs`) after a look that found nothing, so an
//! edge that arrives after the look wakes the node, and one that arrived during it makes the
//! queueing fail and the loop look again.
//!
//! A descriptor that cannot be registered (epoll refuses regular files, which `poll` reports
//! ready anyway; or it is registered already, by a `corun::net` socket) is looked at again
//! every millisecond instead.

use super::fd_table::{self, Fd};
use super::{fail, in_coroutine, real};
use crate::io::readiness::{Direction, ReadyEvent, ScheduledIo};
use crate::sync::wait_queue::WaitNode;
use libc::{c_int, fd_set, nfds_t, pollfd, timeval};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often descriptors without a readiness cell are looked at.
const UNREGISTERED_EVERY: Duration = Duration::from_millis(1);

/// `poll(2)`.
///
/// # Safety
/// The caller's contract of `poll(2)`: `fds` points to `nfds` valid entries.
#[no_mangle]
pub unsafe extern "C" fn poll(fds: *mut pollfd, nfds: nfds_t, timeout: c_int) -> c_int {
    let real = real();
    // More entries than descriptors can exist is the kernel's `EINVAL` (no slice of them).
    let too_many = nfds > fd_table::CAPACITY as nfds_t;
    let no_array = fds.is_null() && nfds > 0; // the kernel's EFAULT
    if !in_coroutine() || timeout == 0 || too_many || no_array {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { (real.poll)(fds, nfds, timeout) };
    }
    let deadline = u64::try_from(timeout)
        .ok()
        .and_then(|ms| Instant::now().checked_add(Duration::from_millis(ms)));
    let entries = if nfds == 0 {
        &mut [][..]
    } else {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(fds, nfds as usize) }
    };
    match poll_in_coroutine(entries, deadline) {
        Ok(n) => n,
        Err(e) => fail(e) as c_int,
    }
}

/// What one descriptor of a `poll` waits on.
struct Watch {
    /// Its place in the caller's array.
    index: usize,
    entry: &'static Fd,
    cell: &'static ScheduledIo,
    /// The directions asked for, with what the cell said before the look.
    seen: [Option<ReadyEvent>; 2],
}

/// Withdraws the node from every cell and leaves every entry when dropped.
struct Watching {
    watches: Vec<Watch>,
    node: Option<Arc<WaitNode>>,
    queued: Vec<(&'static ScheduledIo, Direction)>,
}

impl Drop for Watching {
    fn drop(&mut self) {
        if let Some(node) = &self.node {
            for (cell, direction) in self.queued.drain(..) {
                cell.withdraw(direction, node);
            }
        }
        for watch in &self.watches {
            watch.entry.leave();
        }
    }
}

/// The body of the `poll` hook: the ready count, or an errno.
fn poll_in_coroutine(fds: &mut [pollfd], deadline: Option<Instant>) -> Result<c_int, c_int> {
    let real = real();
    let mut watching = Watching {
        watches: Vec::with_capacity(fds.len()),
        node: None,
        queued: Vec::new(),
    };
    // Descriptors that cannot be waited on through a cell: look again every millisecond.
    let mut unwatched = false;
    // Descriptors closed (by another coroutine or thread) while this poll waited on them.
    let mut closed = Vec::new();
    for (index, pfd) in fds.iter().enumerate() {
        if pfd.fd < 0 {
            continue; // ignored by poll
        }
        // A look that finds nothing clears the cell's directions the poll asked about, which
        // is right only for ordinary data: "no urgent data" (`POLLPRI`) or "no hang-up"
        // (`POLLRDHUP`) says nothing of the bytes a reader on the same socket relies on the
        // cell for. Those are looked at every millisecond instead, unless ordinary reading is
        // asked for too (then its event comes with theirs).
        let wants_read = pfd.events & (libc::POLLIN | libc::POLLRDNORM) != 0;
        let wants_write = pfd.events & (libc::POLLOUT | libc::POLLWRNORM) != 0;
        let others = libc::POLLPRI | libc::POLLRDHUP | libc::POLLRDBAND | libc::POLLWRBAND;
        if pfd.events & others != 0 && !wants_read {
            unwatched = true;
        }
        if !(wants_read || wants_write) {
            continue; // only errors asked for (reported without asking), or the above
        }
        let Some(entry) = fd_table::get_or_create(pfd.fd) else {
            unwatched = true;
            continue;
        };
        entry.known_state(pfd.fd);
        if !entry.enter() {
            closed.push(index); // being closed
            continue;
        }
        let cell = match entry.register(pfd.fd) {
            Ok(cell) => cell,
            Err(_) => {
                entry.leave();
                if entry.closing() {
                    closed.push(index);
                } else {
                    unwatched = true;
                }
                continue;
            }
        };
        let mut seen = [None, None];
        if wants_read {
            seen[0] = Some(cell.readiness(Direction::Read));
        }
        if wants_write {
            seen[1] = Some(cell.readiness(Direction::Write));
        }
        watching.watches.push(Watch {
            index,
            entry,
            cell,
            seen,
        });
    }
    loop {
        // SAFETY: `fds` is the caller's array, valid for its length.
        let mut n = unsafe { (real.poll)(fds.as_mut_ptr(), fds.len() as nfds_t, 0) };
        if n < 0 {
            return Err(super::errno());
        }
        for &i in &closed {
            // Closed under the poll: `POLLNVAL`, whatever its number has become since (the
            // look may already see a new descriptor there).
            let pfd: &mut pollfd = &mut fds[i];
            if pfd.revents == 0 {
                n += 1;
            }
            pfd.revents = libc::POLLNVAL;
        }
        if n != 0 {
            return Ok(n);
        }
        let now = Instant::now();
        if deadline.is_some_and(|deadline| now >= deadline) {
            return Ok(0);
        }
        // Nothing ready: clear what the cells said before the look, queue one node on all.
        let node = WaitNode::current(crate::time::origin());
        let mut raced = false;
        for watch in &watching.watches {
            if watch.entry.closing() {
                // After the clear would be too late: see `gate.rs` (the check before queueing).
                raced = true;
                break;
            }
            for (i, seen) in watch.seen.iter().enumerate() {
                let Some(seen) = seen else { continue };
                watch.cell.clear(*seen);
                let direction = if i == 0 {
                    Direction::Read
                } else {
                    Direction::Write
                };
                if !watch.cell.enqueue(direction, &node) {
                    raced = true;
                    break;
                }
                watching.queued.push((watch.cell, direction));
            }
            if raced {
                break;
            }
        }
        watching.node = Some(node.clone());
        let mut cancelled = false;
        if !raced {
            let wake_at = match (deadline, unwatched) {
                (Some(deadline), true) => Some(deadline.min(now + UNREGISTERED_EVERY)),
                (None, true) => Some(now + UNREGISTERED_EVERY),
                (deadline, false) => deadline,
            };
            let _timer = wake_at.map(crate::time::Timer::for_current);
            while node.is_waiting() && wake_at.is_none_or(|at| Instant::now() < at) && !cancelled {
                cancelled = crate::coroutine::park_reporting_cancel();
            }
        }
        // Withdraw before the next round; re-read every cell before the next look.
        for (cell, direction) in watching.queued.drain(..) {
            cell.withdraw(direction, &node);
        }
        if cancelled {
            return Err(libc::ECANCELED);
        }
        // A descriptor being closed: stop holding its count (its `close` waits for that), and
        // report it `POLLNVAL`.
        watching.watches.retain(|watch| {
            let closing = watch.entry.closing();
            if closing {
                watch.entry.leave();
                closed.push(watch.index);
            }
            !closing
        });
        for watch in &mut watching.watches {
            for (i, seen) in watch.seen.iter_mut().enumerate() {
                if seen.is_some() {
                    let direction = if i == 0 {
                        Direction::Read
                    } else {
                        Direction::Write
                    };
                    *seen = Some(watch.cell.readiness(direction));
                }
            }
        }
    }
}

/// `select(2)`, served by the `poll` hook's loop in a coroutine. As on Linux, `timeout` is
/// updated to the time not slept.
///
/// # Safety
/// The caller's contract of `select(2)`.
#[no_mangle]
pub unsafe extern "C" fn select(
    nfds: c_int,
    readfds: *mut fd_set,
    writefds: *mut fd_set,
    exceptfds: *mut fd_set,
    timeout: *mut timeval,
) -> c_int {
    let real = real();
    // SAFETY: the caller's contract: `timeout` is null or valid.
    let limit = unsafe { timeout.as_ref() }
        .map(|tv| super::timeval_duration(*tv).unwrap_or(Duration::ZERO));
    if !in_coroutine()
        || limit == Some(Duration::ZERO)
        || !(0..=libc::FD_SETSIZE as c_int).contains(&nfds)
    {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { (real.select)(nfds, readfds, writefds, exceptfds, timeout) };
    }
    let start = Instant::now();
    let deadline = limit.and_then(|limit| start.checked_add(limit));
    // SAFETY (the set accesses): each set is null or a valid `fd_set`, by the caller's
    // contract, and every descriptor looked at is below `nfds <= FD_SETSIZE`.
    let is_set = |set: *mut fd_set, fd: c_int| !set.is_null() && unsafe { libc::FD_ISSET(fd, set) };
    let mut fds = Vec::new();
    for fd in 0..nfds {
        let mut events = 0;
        if is_set(readfds, fd) {
            events |= libc::POLLIN;
        }
        if is_set(writefds, fd) {
            events |= libc::POLLOUT;
        }
        if is_set(exceptfds, fd) {
            events |= libc::POLLPRI;
        }
        if events != 0 {
            fds.push(pollfd {
                fd,
                events,
                revents: 0,
            });
        }
    }
    // What select reports of each descriptor's `revents`.
    let reported = |p: pollfd| {
        [
            (readfds, libc::POLLIN | libc::POLLHUP | libc::POLLERR),
            (writefds, libc::POLLOUT | libc::POLLERR),
            (exceptfds, libc::POLLPRI),
        ]
        .into_iter()
        .filter(move |&(set, mask)| !set.is_null() && p.events & mask != 0 && p.revents & mask != 0)
        .map(|(set, _)| set)
    };
    let result = loop {
        if fds.is_empty() {
            // A sleep.
            let dur = limit.unwrap_or(Duration::MAX);
            break match super::sleep_calls::sleep_reporting_cancel(dur) {
                true => Err(libc::ECANCELED),
                false => Ok(()),
            };
        }
        fds.iter_mut().for_each(|p| p.revents = 0);
        match poll_in_coroutine(&mut fds, deadline) {
            Err(e) => break Err(e),
            Ok(0) => break Ok(()),
            Ok(_) if fds.iter().any(|p| p.revents & libc::POLLNVAL != 0) => break Err(libc::EBADF),
            Ok(_) if fds.iter().any(|&p| reported(p).next().is_some()) => break Ok(()),
            Ok(_) => {
                // Only what select does not report (a hang-up of a descriptor watched for
                // urgent data alone), which stays: look again in a millisecond.
                if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                    fds.iter_mut().for_each(|p| p.revents = 0);
                    break Ok(());
                }
                if super::sleep_calls::sleep_reporting_cancel(Duration::from_millis(1)) {
                    break Err(libc::ECANCELED);
                }
            }
        }
    };
    // SAFETY: the caller's contract: `timeout` is null or valid.
    if let Some(tv) = unsafe { timeout.as_mut() } {
        let left = limit.unwrap_or_default().saturating_sub(start.elapsed());
        tv.tv_sec = left.as_secs() as libc::time_t;
        tv.tv_usec = left.subsec_micros() as libc::suseconds_t;
    }
    if let Err(e) = result {
        return fail(e) as c_int;
    }
    for set in [readfds, writefds, exceptfds] {
        if !set.is_null() {
            // SAFETY: as above.
            unsafe { libc::FD_ZERO(set) };
        }
    }
    let mut count = 0;
    for p in &fds {
        for set in reported(*p) {
            // SAFETY: as above.
            unsafe { libc::FD_SET(p.fd, set) };
            count += 1;
        }
    }
    count
}

extern "C" {
    /// glibc's report of a buffer overflow caught by `_FORTIFY_SOURCE`: prints and aborts.
    fn __chk_fail() -> !;
}

/// `__poll_chk`: `poll` under `_FORTIFY_SOURCE` (`fdslen` is the array's size in bytes as the
/// compiler knows it). As glibc's, then [`poll`].
///
/// # Safety
/// The caller's contract of `poll(2)`.
#[no_mangle]
pub unsafe extern "C" fn __poll_chk(
    fds: *mut pollfd,
    nfds: nfds_t,
    timeout: c_int,
    fdslen: libc::size_t,
) -> c_int {
    if (fdslen / std::mem::size_of::<pollfd>()) < nfds as usize {
        // SAFETY: aborts the process.
        unsafe { __chk_fail() };
    }
    // SAFETY: the caller's contract.
    unsafe { poll(fds, nfds, timeout) }
}
