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

/// What a timed-out call reports: `EAGAIN`, as the kernel does for an expired `SO_RCVTIMEO`.
fn timed_out() -> io::Error {
    io::Error::from_raw_os_error(libc::EAGAIN)
}

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

    /// Copies the timeouts and the non-blocking mode to `other` (for `try_clone`: std's live
    /// in the socket, which a clone shares; ours live in the handle, so a clone starts with the
    /// same, and later changes to one do not reach the other).
    pub(crate) fn copy_settings_to<U: AsRawFd>(&self, other: &Source<U>) {
        for direction in [Direction::Read, Direction::Write] {
            let nanos = self.timeout_cell(direction).load(Ordering::Relaxed);
            other
                .timeout_cell(direction)
                .store(nanos, Ordering::Relaxed);
        }
        other.set_nonblocking(self.is_nonblocking());
    }

    /// Whether the handle is in non-blocking mode (`set_nonblocking(true)`).
    pub(crate) fn is_nonblocking(&self) -> bool {
        self.nonblocking.load(Ordering::Relaxed)
    }

    /// Makes blocking calls return `WouldBlock` instead of waiting (std's `set_nonblocking`).
    /// The descriptor itself is always non-blocking; this is the handle's behaviour.
    pub(crate) fn set_nonblocking(&self, nonblocking: bool) {
        self.nonblocking.store(nonblocking, Ordering::Relaxed);
    }

    fn registration(&self) -> io::Result<&'static ScheduledIo> {
        self.registration
            .get_or_init(|| {
                let fd = self.inner.as_raw_fd();
                let register = || driver::driver().register(fd);
                match register() {
                    // With the `hook` feature, a socket that was std's before it was ours may be
                    // registered by the hooks already (a hooked call on it waited once).
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) && hooks_let_go(fd) => {
                        register()
                    }
                    result => result,
                }
                .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))
            })
            .map_err(io::Error::from_raw_os_error)
    }

    /// When a call in `direction` that starts waiting now times out (its timeout from now).
    fn deadline(&self, direction: Direction) -> Option<Instant> {
        self.timeout(direction)
            .and_then(|t| Instant::now().checked_add(t))
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
        self.do_io_until(direction, || self.deadline(direction), timed_out, op)
    }

    /// [`Source::do_io`] for a read or write of `len` bytes on a *stream* socket. A transfer
    /// shorter than asked (and not empty) emptied the receive queue or filled the send buffer,
    /// so the direction is marked not ready at once, sparing the next call the attempt that
    /// would only say `WouldBlock` (tokio's rule). The clear is tick-checked like the one after
    /// `WouldBlock`: data that arrived since the attempt keeps the direction ready.
    #[inline]
    pub(crate) fn do_io_stream(
        &self,
        direction: Direction,
        len: usize,
        op: impl FnMut(&T) -> io::Result<usize>,
    ) -> io::Result<usize> {
        self.io_loop(
            direction,
            || self.deadline(direction),
            timed_out,
            None,
            |&n: &usize| n > 0 && n < len,
            op,
        )
    }

    /// [`Source::do_io`] for an operation whose readiness the kernel does not report usefully:
    /// after a `WouldBlock`, the attempt is repeated after sleeping `every` (or less, to meet
    /// the deadline), whatever the netpoller says meanwhile.
    ///
    /// For a Unix datagram sent to a full receiver (`EAGAIN`). Epoll's events for that case
    /// are both missing (an unconnected sender is not told when the receiver's queue has room)
    /// and spurious (Linux allocates the datagram's buffer before it finds the queue full, and
    /// freeing it reports the sender writable at once: waiting for events would spin through
    /// the netpoller at full speed).
    pub(crate) fn do_io_retrying<R>(
        &self,
        direction: Direction,
        every: Duration,
        op: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        self.io_loop(
            direction,
            || self.deadline(direction),
            timed_out,
            Some(every),
            |_| false,
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
        op: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        self.io_loop(direction, deadline, timed_out, None, |_| false, op)
    }

    /// The loop of [`Source::do_io_until`], [`Source::do_io_stream`] and
    /// [`Source::do_io_retrying`] (`retry_every`: sleep that long between attempts instead of
    /// waiting for readiness; `drained`: whether a successful result shows that the direction
    /// is not ready any more).
    ///
    /// The deadline is checked after every attempt that would block, not only when a wait
    /// times out: on a plain thread `poll(2)` can report the descriptor ready while the attempt
    /// still blocks (a UDP datagram with a bad checksum, a race with another reader), and the
    /// loop must not go round past its deadline.
    fn io_loop<R>(
        &self,
        direction: Direction,
        deadline: impl FnOnce() -> Option<Instant>,
        timed_out: impl FnOnce() -> io::Error,
        retry_every: Option<Duration>,
        drained: impl FnOnce(&R) -> bool,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        let in_coroutine = current_task().is_some();
        let mut deadline = Some(deadline);
        let mut until = None;
        // When retrying on a clock, every pass attempts, whatever the cell says; and so does a
        // handle in non-blocking mode: its caller learns readiness by other means (its own
        // `poll`, `corun::io::wait`), which the cell may not have heard of yet.
        let always = retry_every.is_some() || self.nonblocking.load(Ordering::Relaxed);
        loop {
            // In a coroutine, the cell (once there is one) says whether an attempt is worth it.
            let cell = match self.registration.get() {
                Some(Ok(cell)) if in_coroutine => Some(cell),
                _ => None,
            };
            let seen = cell.map(|cell| cell.readiness(direction));
            if always || seen.is_none_or(|seen| seen.is_ready()) {
                match op(&self.inner) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if let (Some(cell), Some(seen)) = (cell, seen) {
                            cell.clear(seen);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Ok(value) => {
                        if let (Some(cell), Some(seen)) = (cell, seen) {
                            if drained(&value) {
                                cell.clear_drained(seen);
                            }
                        }
                        return Ok(value);
                    }
                    result => return result,
                }
            }
            if self.nonblocking.load(Ordering::Relaxed) {
                return Err(io::Error::from_raw_os_error(libc::EAGAIN));
            }
            if let Some(deadline) = deadline.take() {
                until = deadline();
            }
            // The clock is read only when something depends on it.
            let now = (retry_every.is_some() || until.is_some()).then(Instant::now);
            if until.zip(now).is_some_and(|(until, now)| now >= until) {
                return Err(timed_out());
            }
            let (Some(every), Some(now)) = (retry_every, now) else {
                if !self.wait(direction, in_coroutine, until)? {
                    return Err(timed_out());
                }
                continue;
            };
            // A timed park in a coroutine (cancellable, like every wait), a sleep on a thread.
            crate::sleep(until.map_or(every, |until| every.min(until - now)));
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

/// Whether the hooks gave up their netpoller registration of `fd` (they do if nobody waits
/// through it).
fn hooks_let_go(fd: RawFd) -> bool {
    #[cfg(feature = "hook")]
    return crate::hook::release_registration(fd);
    #[cfg(not(feature = "hook"))]
    {
        let _ = fd;
        false
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// On a plain thread, a descriptor `poll(2)` reports ready while the attempt still says
    /// `WouldBlock` must not keep the loop going past its deadline.
    #[test]
    fn the_thread_path_honours_the_deadline_when_poll_says_ready() {
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.write_all(b"x").unwrap(); // readable for ever
        let source = Source::new(a);
        source
            .set_timeout(Direction::Read, Some(Duration::from_millis(20)))
            .unwrap();
        let start = Instant::now();
        let mut attempts = 0u64;
        let err = source
            .do_io(Direction::Read, |_| {
                attempts += 1;
                assert!(attempts < 10_000_000, "spun past the deadline");
                Err::<(), _>(io::Error::from_raw_os_error(libc::EAGAIN))
            })
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert!(start.elapsed() >= Duration::from_millis(20), "early");
        // Retrying on a clock: the same, with a sleep between attempts.
        let start = Instant::now();
        let mut attempts = 0u64;
        let err = source
            .do_io_retrying(Direction::Read, Duration::from_millis(1), |_| {
                attempts += 1;
                Err::<(), _>(io::Error::from_raw_os_error(libc::EAGAIN))
            })
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert!(start.elapsed() >= Duration::from_millis(20), "early");
        assert!(attempts <= 25, "{attempts} attempts: no sleep between them");
    }
}
