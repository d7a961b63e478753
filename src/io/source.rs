//! A non-blocking descriptor that behaves like a blocking one: the loop under every socket
//! method.
//!
//! [`Source`] owns an I/O object (a std socket set non-blocking) plus what corun adds: its
//! netpoller registration, made the first time a coroutine would block on it (sockets only
//! ever used by threads never touch the netpoller), and its read and write timeouts.
//!
//! [`Source::do_io`] is the loop: attempt; on `WouldBlock`, wait, then attempt again. In a
//! coroutine, "wait" is [`park_on`] the readiness cell; and once registered, an attempt is
//! skipped while the cell says the direction is not ready (the kernel would only say
//! `WouldBlock` again). On a plain thread, "wait" is `poll(2)`. A timeout ends the loop with
//! the error the kernel gives for `SO_RCVTIMEO`: `EAGAIN` (`WouldBlock`), as std does.

use super::readiness::{Direction, ScheduledIo};
use super::{driver, park_on, poll_fd};
use crate::coroutine::current_task;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// An I/O object that parks coroutines instead of blocking threads.
pub(crate) struct Source<T: AsRawFd> {
    inner: ManuallyDrop<T>,
    /// Made on first need; an error is remembered as its errno (registration fails only when
    /// the kernel is out of memory or of epoll watches).
    registration: OnceLock<Result<&'static ScheduledIo, i32>>,
    /// Timeouts in nanoseconds; 0 for none.
    read_timeout: AtomicU64,
    write_timeout: AtomicU64,
    /// Set by the user (`set_nonblocking(true)`): report `WouldBlock` instead of waiting.
    nonblocking: AtomicBool,
}

impl<T: AsRawFd> Source<T> {
    /// Wraps `inner`, which must be non-blocking already.
    pub(crate) fn new(inner: T) -> Source<T> {
        Source {
            inner: ManuallyDrop::new(inner),
            registration: OnceLock::new(),
            read_timeout: AtomicU64::new(0),
            write_timeout: AtomicU64::new(0),
            nonblocking: AtomicBool::new(false),
        }
    }

    /// The wrapped object (for calls that cannot block).
    pub(crate) fn get_ref(&self) -> &T {
        &self.inner
    }

    /// Unwraps the object, deregistered (still non-blocking).
    pub(crate) fn into_inner(mut self) -> T {
        self.deregister();
        // SAFETY: `inner` is taken once, and `self` is forgotten right after, so its `Drop`
        // (the only other place that touches `inner`) never runs. The rest of `self` holds
        // nothing to free: the registration was taken by `deregister`.
        let inner = unsafe { ManuallyDrop::take(&mut self.inner) };
        std::mem::forget(self);
        inner
    }

    fn deregister(&mut self) {
        if let Some(Ok(io)) = self.registration.take() {
            driver::driver().deregister(self.inner.as_raw_fd(), io);
        }
    }

    fn timeout_cell(&self, direction: Direction) -> &AtomicU64 {
        match direction {
            Direction::Read => &self.read_timeout,
            Direction::Write => &self.write_timeout,
        }
    }

    /// Sets the timeout of blocking calls in `direction`; as in std, a zero duration is an
    /// error.
    pub(crate) fn set_timeout(
        &self,
        direction: Direction,
        dur: Option<Duration>,
    ) -> io::Result<()> {
        let nanos = match dur {
            Some(dur) if dur.is_zero() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "cannot set a 0 duration timeout",
                ))
            }
            Some(dur) => u64::try_from(dur.as_nanos()).unwrap_or(u64::MAX),
            None => 0,
        };
        self.timeout_cell(direction).store(nanos, Ordering::Relaxed);
        Ok(())
    }

    /// The timeout of blocking calls in `direction`.
    pub(crate) fn timeout(&self, direction: Direction) -> Option<Duration> {
        match self.timeout_cell(direction).load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    /// Copies the timeouts to `other` (for `try_clone`: std's timeouts live in the socket,
    /// which a clone shares; ours live in the handle, so a clone starts with the same).
    pub(crate) fn copy_timeouts_to<U: AsRawFd>(&self, other: &Source<U>) {
        for direction in [Direction::Read, Direction::Write] {
            let nanos = self.timeout_cell(direction).load(Ordering::Relaxed);
            other
                .timeout_cell(direction)
                .store(nanos, Ordering::Relaxed);
        }
    }

    /// Makes blocking calls return `WouldBlock` instead of waiting (std's `set_nonblocking`).
    /// The descriptor itself is always non-blocking; this is the handle's behaviour.
    pub(crate) fn set_nonblocking(&self, nonblocking: bool) {
        self.nonblocking.store(nonblocking, Ordering::Relaxed);
    }

    fn registration(&self) -> io::Result<&'static ScheduledIo> {
        self.registration
            .get_or_init(|| {
                driver::driver()
                    .register(self.inner.as_raw_fd())
                    .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))
            })
            .map_err(io::Error::from_raw_os_error)
    }

    /// Runs `op` until it does not fail with `WouldBlock`, waiting for `direction` between
    /// attempts, and for no longer than the direction's timeout in total (then: `WouldBlock`,
    /// as the kernel reports an expired `SO_RCVTIMEO`). `Interrupted` is retried.
    #[inline]
    pub(crate) fn do_io<R>(
        &self,
        direction: Direction,
        op: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        self.do_io_until(
            direction,
            || {
                self.timeout(direction)
                    .and_then(|t| Instant::now().checked_add(t))
            },
            || io::Error::from_raw_os_error(libc::EAGAIN),
            op,
        )
    }

    /// [`Source::do_io`] with the deadline computed by `deadline` when the first attempt would
    /// block, and `timed_out` the error for it.
    pub(crate) fn do_io_until<R>(
        &self,
        direction: Direction,
        deadline: impl FnOnce() -> Option<Instant>,
        timed_out: impl FnOnce() -> io::Error,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        let in_coroutine = current_task().is_some();
        let mut deadline = Some(deadline);
        let mut until = None;
        loop {
            // In a coroutine, the cell (once there is one) says whether an attempt is worth it.
            let cell = match self.registration.get() {
                Some(Ok(cell)) if in_coroutine => Some(cell),
                _ => None,
            };
            let seen = cell.map(|cell| cell.readiness(direction));
            if seen.is_none_or(|seen| seen.is_ready()) {
                match op(&self.inner) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if let (Some(cell), Some(seen)) = (cell, seen) {
                            cell.clear(seen);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    result => return result,
                }
            }
            if self.nonblocking.load(Ordering::Relaxed) {
                return Err(io::Error::from_raw_os_error(libc::EAGAIN));
            }
            if let Some(deadline) = deadline.take() {
                until = deadline();
            }
            if !self.wait(direction, in_coroutine, until)? {
                return Err(timed_out());
            }
        }
    }

    /// Waits until `direction` may be ready (true) or `deadline` passes (false).
    fn wait(
        &self,
        direction: Direction,
        in_coroutine: bool,
        deadline: Option<Instant>,
    ) -> io::Result<bool> {
        if !in_coroutine {
            return poll_fd(self.inner.as_raw_fd(), direction.into(), deadline);
        }
        let cell = self.registration()?;
        let seen = cell.readiness(direction);
        if seen.is_ready() {
            return Ok(true);
        }
        Ok(park_on(cell, &[Some(direction)], deadline))
    }
}

impl<T: AsRawFd> Drop for Source<T> {
    fn drop(&mut self) {
        // Deregister before the descriptor closes (a duplicate of it would keep it registered).
        self.deregister();
        // SAFETY: dropped once, here; `into_inner` (the only other taker) forgets `self`.
        unsafe { ManuallyDrop::drop(&mut self.inner) };
    }
}

impl<T: AsRawFd> AsRawFd for Source<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}
