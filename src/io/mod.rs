//! Readiness-based I/O: the netpoller, and [`wait`] for arbitrary file descriptors.
//!
//! A coroutine never blocks its worker on I/O. Descriptors are non-blocking; an attempt that
//! would block parks the coroutine until the netpoller (one process-wide thread, see
//! `driver.rs`) reports the descriptor ready, and is then repeated. The socket types of
//! [`corun::net`](crate::net) do this inside every call, so user code reads like blocking code.
//! On a plain thread the same calls block the thread in `poll(2)`, so one code base serves both.
//!
//! The pieces:
//! * `readiness.rs`: the per-descriptor cell the poller and the coroutines race on, and its
//!   lost-wake-up argument;
//! * `driver.rs`: the netpoller thread, which also fires the timers (`crate::time`);
//! * `source.rs`: a descriptor with its lazily made registration and its timeouts, and the
//!   attempt-park-retry loop every socket method goes through.

pub(crate) mod driver;
mod pollers;
pub(crate) mod readiness;
pub(crate) mod source;

use crate::coroutine::current_task;
use crate::sync::wait_queue::WaitNode;
use readiness::{Direction, ScheduledIo};
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to wait for in [`wait`]: readability, writability, or either (`READABLE | WRITABLE`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interest(u8);

impl Interest {
    /// Readable: data (or a connection, or end of file, or an error) is waiting.
    pub const READABLE: Interest = Interest(1);
    /// Writable: there is room to write (or an error).
    pub const WRITABLE: Interest = Interest(2);

    /// Whether it includes readability.
    pub const fn is_readable(self) -> bool {
        self.0 & 1 != 0
    }

    /// Whether it includes writability.
    pub const fn is_writable(self) -> bool {
        self.0 & 2 != 0
    }

    fn poll_events(self) -> libc::c_short {
        let mut events = 0;
        if self.is_readable() {
            events |= libc::POLLIN;
        }
        if self.is_writable() {
            events |= libc::POLLOUT;
        }
        events
    }
}

impl std::ops::BitOr for Interest {
    type Output = Interest;
    fn bitor(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.is_readable(), self.is_writable()) {
            (true, true) => f.write_str("READABLE | WRITABLE"),
            (true, false) => f.write_str("READABLE"),
            _ => f.write_str("WRITABLE"),
        }
    }
}

impl From<Direction> for Interest {
    fn from(direction: Direction) -> Interest {
        match direction {
            Direction::Read => Interest::READABLE,
            Direction::Write => Interest::WRITABLE,
        }
    }
}

/// Parks the calling coroutine until `fd` is ready for `interest` or `timeout` passes (libco's
/// `co_poll` for one descriptor), so that C libraries and raw descriptors can be driven from
/// coroutines. Returns `Ok(())` when ready (an error or hang-up condition counts as ready: the
/// next operation reports it), and an error of kind [`TimedOut`](io::ErrorKind::TimedOut) when
/// the timeout passes first. On a plain thread it blocks the thread in `poll(2)`.
///
/// `fd` stays the caller's: it is never closed, and its flags are not changed. Readiness is
/// level-style: a descriptor that is ready already returns at once. Regular files, which are
/// always ready, return at once. An invalid descriptor is an error (`EBADF`).
///
/// ```
/// use corun::io::Interest;
/// use std::os::fd::AsRawFd;
/// use std::time::Duration;
/// let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
/// corun::spawn(move || {
///     // Nothing to read yet: times out.
///     let e = corun::io::wait(a.as_raw_fd(), Interest::READABLE, Some(Duration::from_millis(10)));
///     assert_eq!(e.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
///     std::io::Write::write_all(&mut &b, b"x").unwrap();
///     corun::io::wait(a.as_raw_fd(), Interest::READABLE, None).unwrap();
/// })
/// .join()
/// .unwrap();
/// ```
pub fn wait(fd: RawFd, interest: Interest, timeout: Option<Duration>) -> io::Result<()> {
    if fd < 0 {
        // poll(2) would ignore it (and wait for the timeout alone) on a thread.
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "corun::io::wait timed out");
    // Ready already? One non-blocking poll(2) answers without touching the netpoller.
    if poll_fd(fd, interest, Some(Instant::now()))? {
        return Ok(());
    }
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    if current_task().is_none() {
        return match poll_fd(fd, interest, deadline)? {
            true => Ok(()),
            false => Err(timed_out()),
        };
    }
    // The descriptor is the caller's and may be registered elsewhere (even by corun), so
    // register a duplicate: epoll keys registrations by descriptor and open file, and the
    // duplicate shares the open file, hence its readiness.
    // SAFETY: F_DUPFD_CLOEXEC reads no memory; an invalid `fd` is reported as EBADF.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `dup` was just created and is owned by nobody else.
    let dup = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(dup) };
    let dup_fd = std::os::fd::AsRawFd::as_raw_fd(&dup);
    let driver = driver::driver();
    let io = match driver.register(dup_fd) {
        Ok(io) => io,
        // epoll refuses regular files and directories: they are always ready.
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => return Ok(()),
        Err(e) => return Err(e),
    };
    struct Registered<'a>(&'a driver::Driver, RawFd, Option<&'static ScheduledIo>);
    impl Drop for Registered<'_> {
        fn drop(&mut self) {
            if let Some(io) = self.2.take() {
                self.0.deregister(self.1, io);
            }
        }
    }
    let registered = Registered(driver, dup_fd, Some(io));
    let cell = registered.2.expect("just registered");
    let mut directions = [None, None];
    if interest.is_readable() {
        directions[0] = Some(Direction::Read);
    }
    if interest.is_writable() {
        directions[1] = Some(Direction::Write);
    }
    let ready = park_on(cell, &directions, deadline);
    drop(registered); // deregister before `dup` closes
    drop(dup);
    match ready {
        true => Ok(()),
        false => Err(timed_out()),
    }
}

/// Blocks the calling thread in `poll(2)` until `fd` is ready for `interest` or `deadline`
/// passes (`None`: no deadline; a past deadline: just look). Returns whether it was ready.
/// Never returns early: the timeout is rounded up to whole milliseconds.
pub(crate) fn poll_fd(
    fd: RawFd,
    interest: Interest,
    deadline: Option<Instant>,
) -> io::Result<bool> {
    loop {
        let timeout_ms = match deadline {
            None => -1,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                let ms =
                    left.as_millis() + u128::from(!left.subsec_nanos().is_multiple_of(1_000_000));
                libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
            }
        };
        let mut pollfd = libc::pollfd {
            fd,
            events: interest.poll_events(),
            revents: 0,
        };
        // SAFETY: one valid, exclusively borrowed `pollfd`, and a count of 1.
        let n = unsafe { libc::poll(&mut pollfd, 1, timeout_ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if pollfd.revents & libc::POLLNVAL != 0 {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        if n > 0 {
            return Ok(true);
        }
        if timeout_ms == 0 {
            return Ok(false);
        }
        // poll(2) may wake a little before the rounded-up timeout on a clock that disagrees
        // with `Instant` by a hair: go round, and the remaining time decides.
    }
}

/// Parks the calling coroutine until `cell` reports one of `directions` ready (or a spurious
/// wake-up of the cell's waiters) or `deadline` passes. Returns false on the deadline.
///
/// Cancellable: if the runtime shuts down meanwhile, `park` unwinds with `Cancelled` and the
/// node is withdrawn on the way out.
pub(crate) fn park_on(
    cell: &ScheduledIo,
    directions: &[Option<Direction>],
    deadline: Option<Instant>,
) -> bool {
    let park = || {
        crate::park();
        false
    };
    park_on_with(cell, directions, deadline, park) == Parked::Ready
}

/// How [`park_on_with`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parked {
    /// Woken by the cell (or the cell was ready already).
    Ready,
    /// The deadline passed.
    TimedOut,
    /// `park` reported a shutdown (the hooks' park, which does not unwind).
    Cancelled,
}

/// [`park_on`] with the parking step given: `park` parks once and returns whether the wait
/// must end because the runtime is shutting down.
#[inline]
pub(crate) fn park_on_with(
    cell: &ScheduledIo,
    directions: &[Option<Direction>],
    deadline: Option<Instant>,
    mut park: impl FnMut() -> bool,
) -> Parked {
    // `since` serves the starvation checks of `sync`, not I/O: no clock read for it here.
    let node = WaitNode::current(crate::time::origin());
    struct Queued<'a> {
        cell: &'a ScheduledIo,
        node: &'a Arc<WaitNode>,
        directions: [Option<Direction>; 2],
    }
    impl Drop for Queued<'_> {
        fn drop(&mut self) {
            let queued = self.directions.iter().flatten();
            if queued.clone().count() == 1 && !self.node.is_waiting() {
                // Queued for one direction and woken: the poller took the node out of that
                // queue to wake it, so there is nothing to withdraw (and no lock to take).
                return;
            }
            for direction in queued {
                self.cell.withdraw(*direction, self.node);
            }
        }
    }
    let mut queued = Queued {
        cell,
        node: &node,
        directions: [None, None],
    };
    for (i, direction) in directions.iter().enumerate() {
        let Some(direction) = *direction else {
            continue;
        };
        if !cell.enqueue(direction, &node) {
            return Parked::Ready; // ready already; `queued` withdraws the other direction
        }
        queued.directions[i] = Some(direction);
    }
    let _timer = deadline.map(crate::time::Timer::for_current);
    loop {
        if !node.is_waiting() {
            return Parked::Ready;
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Parked::TimedOut;
        }
        if park() {
            return Parked::Cancelled;
        }
    }
}
