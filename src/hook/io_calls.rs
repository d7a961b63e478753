//! The data, accept and connect hooks: `read`, `write`, `readv`, `writev`, `recv`,
//! `recvfrom`, `recvmsg`, `send`, `sendto`, `sendmsg`, `accept`, `accept4`, `connect`.
//!
//! Each is [`blocking_call`] around the real function. On a socket, the attempt is the
//! `MSG_DONTWAIT` form of the call (`read` becomes `recv`, `readv` becomes `recvmsg`, and so on:
//! for sockets, Linux defines them as the same operation with no flags). A call the caller
//! made with `MSG_DONTWAIT` itself passes through.

use super::fd_table::{self, KIND_SOCKET, OWNED, STREAM, USER_NONBLOCK};
use super::{
    blocking_call, errno, fail, in_coroutine, real, set_errno, write_all, Attempt, Call, Served,
};
use crate::io::readiness::Direction;
use crate::io::{park_on_with, Parked};
use libc::{c_int, c_void, iovec, msghdr, size_t, sockaddr, socklen_t, ssize_t};
use std::time::{Duration, Instant};

/// Defines an exported hook whose pass-through for a plain thread is checked inline; every
/// other case is `$managed`, out of line, so the hook itself stays small.
macro_rules! hook_with_fast_path {
    ($(#[$doc:meta])* fn $name:ident($fd:ident: c_int $(, $arg:ident: $ty:ty)*) => $managed:ident;) => {
        $(#[$doc])*
        #[no_mangle]
        pub unsafe extern "C" fn $name($fd: c_int $(, $arg: $ty)*) -> ssize_t {
            if super::thread_passes_through($fd) {
                // SAFETY: the caller's arguments, passed on.
                return unsafe { (real().$name)($fd $(, $arg)*) };
            }
            // SAFETY: the caller's contract.
            unsafe { $managed($fd $(, $arg)*) }
        }
    };
}

const READ: Direction = Direction::Read;

/// A read-direction call of `len` bytes (`None`: no short-transfer rule).
fn reading(len: Option<usize>) -> Call {
    Call {
        direction: READ,
        dontwait: true,
        len,
        until: None,
    }
}

/// The later parts of a `MSG_WAITALL` receive: [`reading`], within the deadline `until` of the
/// whole call.
fn reading_on(len: Option<usize>, until: Option<Instant>) -> Call {
    Call {
        until: Some(until),
        ..reading(len)
    }
}

/// A `msghdr` that carries just `iov` (for `readv` and `writev` on sockets).
fn iov_msghdr(iov: *const iovec, iovcnt: c_int) -> msghdr {
    // SAFETY: all-zero is a valid `msghdr` (null pointers, zero lengths).
    let mut msg: msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov as *mut iovec;
    msg.msg_iovlen = iovcnt as _;
    msg
}

hook_with_fast_path! {
    /// `read(2)`.
    ///
    /// # Safety
    /// The caller's contract of `read(2)`: `buf` is valid for `count` bytes of writes.
    fn read(fd: c_int, buf: *mut c_void, count: size_t) => read_managed;
}

/// [`read`] in a coroutine, or on a descriptor corun made non-blocking.
///
/// # Safety
/// As [`read`].
#[inline(never)]
unsafe fn read_managed(fd: c_int, buf: *mut c_void, count: size_t) -> ssize_t {
    let real = real();
    blocking_call(fd, reading(Some(count)), |how| match how {
        // SAFETY: the caller's arguments, passed on.
        Attempt::AsCalled => unsafe { (real.read)(fd, buf, count) },
        // SAFETY: as above; `recv` with these arguments is `read` on a socket.
        Attempt::DontWait => unsafe { (real.recv)(fd, buf, count, libc::MSG_DONTWAIT) },
    })
    .0
}

hook_with_fast_path! {
    /// `readv(2)`.
    ///
    /// # Safety
    /// The caller's contract of `readv(2)`.
    fn readv(fd: c_int, iov: *const iovec, iovcnt: c_int) => readv_managed;
}

/// [`readv`] in a coroutine, or on a descriptor corun made non-blocking.
///
/// # Safety
/// As [`readv`].
#[inline(never)]
unsafe fn readv_managed(fd: c_int, iov: *const iovec, iovcnt: c_int) -> ssize_t {
    let real = real();
    if !(0..=libc::UIO_MAXIOV).contains(&iovcnt) {
        // SAFETY: the caller's arguments, passed on (the kernel says EINVAL).
        return unsafe { (real.readv)(fd, iov, iovcnt) };
    }
    blocking_call(fd, reading(None), |how| match how {
        // SAFETY: the caller's arguments, passed on.
        Attempt::AsCalled => unsafe { (real.readv)(fd, iov, iovcnt) },
        Attempt::DontWait => {
            let mut msg = iov_msghdr(iov, iovcnt);
            // SAFETY: `msg` carries the caller's vectors and nothing else.
            unsafe { (real.recvmsg)(fd, &mut msg, libc::MSG_DONTWAIT) }
        }
    })
    .0
}

/// `recv(2)`. With `MSG_WAITALL` on a stream socket, a coroutine waits for all `len` bytes (or
/// the end of the stream, or an error), as the kernel would.
///
/// # Safety
/// The caller's contract of `recv(2)`.
#[no_mangle]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, len: size_t, flags: c_int) -> ssize_t {
    // SAFETY: the caller's contract, passed on (`recvfrom` with no address is `recv`).
    unsafe {
        recvfrom(
            fd,
            buf,
            len,
            flags,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    }
}

hook_with_fast_path! {
    /// `recvfrom(2)`; `MSG_WAITALL` as in [`recv`].
    ///
    /// # Safety
    /// The caller's contract of `recvfrom(2)`.
    fn recvfrom(
        fd: c_int,
        buf: *mut c_void,
        len: size_t,
        flags: c_int,
        addr: *mut sockaddr,
        addrlen: *mut socklen_t
    ) => recvfrom_managed;
}

/// [`recvfrom`] in a coroutine, or on a descriptor corun made non-blocking.
///
/// # Safety
/// As [`recvfrom`].
#[inline(never)]
unsafe fn recvfrom_managed(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    addrlen: *mut socklen_t,
) -> ssize_t {
    let real = real();
    if flags & libc::MSG_DONTWAIT != 0 {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { (real.recvfrom)(fd, buf, len, flags, addr, addrlen) };
    }
    let once = |offset: usize, how: Attempt| {
        let flags = match how {
            Attempt::AsCalled => flags,
            Attempt::DontWait => (flags & !libc::MSG_WAITALL) | libc::MSG_DONTWAIT,
        };
        // SAFETY: the caller's arguments, with the buffer advanced by `offset < len` bytes.
        unsafe {
            (real.recvfrom)(
                fd,
                buf.cast::<u8>().add(offset).cast(),
                len - offset,
                flags,
                addr,
                addrlen,
            )
        }
    };
    // A peek leaves the bytes queued: a short one says nothing about readiness.
    let peek = flags & libc::MSG_PEEK != 0;
    let (r, served) = blocking_call(fd, reading((!peek).then_some(len)), |how| once(0, how));
    if !waits_for_all(fd, flags, served, r, len) {
        return r;
    }
    let mut done = r as usize;
    let until = super::call_deadline(fd, READ);
    while done < len {
        let call = reading_on(Some(len - done), until);
        let (r, _) = blocking_call(fd, call, |how| once(done, how));
        if r <= 0 {
            // The end of the stream, or an error after some data: the data, as the kernel.
            break;
        }
        done += r as usize;
    }
    done as ssize_t
}

/// Whether a managed receive of `r` bytes out of `len` must go on for the rest: `MSG_WAITALL`
/// (without `MSG_PEEK`) on a stream socket; the kernel ignores it for datagrams.
fn waits_for_all(fd: c_int, flags: c_int, served: Served, r: isize, len: usize) -> bool {
    flags & libc::MSG_WAITALL != 0
        && flags & libc::MSG_PEEK == 0
        && served == Served::Managed
        && r > 0
        && (r as usize) < len
        && fd_table::get(fd).is_some_and(|entry| entry.state() & STREAM != 0)
}

hook_with_fast_path! {
    /// `recvmsg(2)`; `MSG_WAITALL` as in [`recv`] (the control data, if any, comes with the first
    /// part).
    ///
    /// # Safety
    /// The caller's contract of `recvmsg(2)`.
    fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) => recvmsg_managed;
}

/// [`recvmsg`] in a coroutine, or on a descriptor corun made non-blocking.
///
/// # Safety
/// As [`recvmsg`].
#[inline(never)]
unsafe fn recvmsg_managed(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    let real = real();
    if flags & libc::MSG_DONTWAIT != 0 || msg.is_null() {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { (real.recvmsg)(fd, msg, flags) };
    }
    let once = |msg: *mut msghdr, how: Attempt| {
        let flags = match how {
            Attempt::AsCalled => flags,
            Attempt::DontWait => (flags & !libc::MSG_WAITALL) | libc::MSG_DONTWAIT,
        };
        // SAFETY: the caller's header (or a copy with the rest of its vectors), passed on.
        unsafe { (real.recvmsg)(fd, msg, flags) }
    };
    let (r, served) = blocking_call(fd, reading(None), |how| once(msg, how));
    // SAFETY: `msg` is the caller's valid header, by its contract.
    let (iov, iovlen) = unsafe { ((*msg).msg_iov, (*msg).msg_iovlen) };
    let iovcnt = c_int::try_from(iovlen).unwrap_or(c_int::MAX);
    // SAFETY: the caller's vectors.
    let len = unsafe { total(iov, iovcnt) };
    if !waits_for_all(fd, flags, served, r, len) {
        return r;
    }
    let mut done = r as usize;
    let until = super::call_deadline(fd, READ);
    while done < len {
        // SAFETY: the caller's vectors; `done` is less than their total.
        let mut rest = unsafe { advance(iov, iovcnt, done) };
        let mut part = iov_msghdr(rest.as_mut_ptr(), rest.len() as c_int);
        let call = reading_on(None, until);
        let (r, _) = blocking_call(fd, call, |how| once(&mut part, how));
        if r <= 0 {
            break; // the end of the stream, or an error after some data: the data
        }
        done += r as usize;
    }
    done as ssize_t
}

hook_with_fast_path! {
    /// `write(2)`: in a coroutine, a stream write goes on until all `count` bytes are written.
    ///
    /// # Safety
    /// The caller's contract of `write(2)`.
    fn write(fd: c_int, buf: *const c_void, count: size_t) => write_managed;
}

/// [`write`] in a coroutine, or on a descriptor corun made non-blocking.
///
/// # Safety
/// As [`write`].
#[inline(never)]
unsafe fn write_managed(fd: c_int, buf: *const c_void, count: size_t) -> ssize_t {
    let real = real();
    write_all(fd, Direction::Write, count, |done, how| {
        // SAFETY: the caller's buffer, advanced by `done < count` bytes.
        let (buf, count) = unsafe { (buf.cast::<u8>().add(done).cast::<c_void>(), count - done) };
        match how {
            // SAFETY: the caller's arguments, passed on.
            Attempt::AsCalled => unsafe { (real.write)(fd, buf, count) },
            // SAFETY: as above; `send` with no flags is `write` on a socket.
            Attempt::DontWait => unsafe { (real.send)(fd, buf, count, libc::MSG_DONTWAIT) },
        }
    })
}

/// The vectors of `iov` after the first `done` bytes (for a write that goes on).
///
/// # Safety
/// `iov` points to `iovcnt` valid vectors.
unsafe fn advance(iov: *const iovec, iovcnt: c_int, mut done: usize) -> Vec<iovec> {
    // SAFETY: the caller's contract.
    let all = unsafe { std::slice::from_raw_parts(iov, usize::try_from(iovcnt).unwrap_or(0)) };
    let mut rest = Vec::with_capacity(all.len());
    for v in all {
        if done >= v.iov_len {
            done -= v.iov_len;
            continue;
        }
        rest.push(iovec {
            // SAFETY: `done < iov_len`, so the pointer stays in the vector.
            iov_base: unsafe { v.iov_base.cast::<u8>().add(done).cast() },
            iov_len: v.iov_len - done,
        });
        done = 0;
    }
    rest
}

/// The total length of `iov` (saturating; the kernel rejects more than `SSIZE_MAX` anyway).
///
/// # Safety
/// As [`advance`].
unsafe fn total(iov: *const iovec, iovcnt: c_int) -> usize {
    if iov.is_null() || iovcnt <= 0 {
        return 0;
    }
    // SAFETY: the caller's contract.
    let all = unsafe { std::slice::from_raw_parts(iov, iovcnt as usize) };
    all.iter()
        .fold(0usize, |sum, v| sum.saturating_add(v.iov_len))
}

hook_with_fast_path! {
    /// `writev(2)`: goes on like [`write`].
    ///
    /// # Safety
    /// The caller's contract of `writev(2)`.
    fn writev(fd: c_int, iov: *const iovec, iovcnt: c_int) => writev_managed;
}

/// [`writev`] in a coroutine, or on a descriptor corun made non-blocking.
///
/// # Safety
/// As [`writev`].
#[inline(never)]
unsafe fn writev_managed(fd: c_int, iov: *const iovec, iovcnt: c_int) -> ssize_t {
    let real = real();
    if !(0..=libc::UIO_MAXIOV).contains(&iovcnt) {
        // SAFETY: the caller's arguments, passed on (the kernel says EINVAL).
        return unsafe { (real.writev)(fd, iov, iovcnt) };
    }
    // SAFETY: the caller's contract.
    let len = unsafe { total(iov, iovcnt) };
    write_all(fd, Direction::Write, len, |done, how| {
        // After a short write, the rest of the vectors (an allocation only then).
        let rest;
        let (iov, iovcnt) = if done == 0 {
            (iov, iovcnt)
        } else {
            // SAFETY: the caller's contract; `done` is less than their total.
            rest = unsafe { advance(iov, iovcnt, done) };
            (rest.as_ptr(), rest.len() as c_int)
        };
        match how {
            // SAFETY: the caller's vectors (or their rest), passed on.
            Attempt::AsCalled => unsafe { (real.writev)(fd, iov, iovcnt) },
            Attempt::DontWait => {
                let msg = super::io_calls::iov_msghdr(iov, iovcnt);
                // SAFETY: as above.
                unsafe { (real.sendmsg)(fd, &msg, libc::MSG_DONTWAIT) }
            }
        }
    })
}

/// `send(2)`: goes on like [`write`].
///
/// # Safety
/// The caller's contract of `send(2)`.
#[no_mangle]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, len: size_t, flags: c_int) -> ssize_t {
    // SAFETY: the caller's contract (`sendto` with no address is `send`).
    unsafe { sendto(fd, buf, len, flags, std::ptr::null(), 0) }
}

hook_with_fast_path! {
    /// `sendto(2)`: goes on like [`write`].
    ///
    /// # Safety
    /// The caller's contract of `sendto(2)`.
    fn sendto(
        fd: c_int,
        buf: *const c_void,
        len: size_t,
        flags: c_int,
        addr: *const sockaddr,
        addrlen: socklen_t
    ) => sendto_managed;
}

/// [`sendto`] in a coroutine, or on a descriptor corun made non-blocking.
///
/// # Safety
/// As [`sendto`].
#[inline(never)]
unsafe fn sendto_managed(
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
    addr: *const sockaddr,
    addrlen: socklen_t,
) -> ssize_t {
    let real = real();
    if flags & libc::MSG_DONTWAIT != 0 {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { (real.sendto)(fd, buf, len, flags, addr, addrlen) };
    }
    write_all(fd, Direction::Write, len, |done, how| {
        let flags = match how {
            Attempt::AsCalled => flags,
            Attempt::DontWait => flags | libc::MSG_DONTWAIT,
        };
        // SAFETY: the caller's arguments, with the buffer advanced by `done < len` bytes.
        unsafe {
            let buf = buf.cast::<u8>().add(done).cast();
            (real.sendto)(fd, buf, len - done, flags, addr, addrlen)
        }
    })
}

hook_with_fast_path! {
    /// `sendmsg(2)`. A short write is returned as it is (going on would need a copy of the
    /// caller's header, and of its control data, which must not be sent twice).
    ///
    /// # Safety
    /// The caller's contract of `sendmsg(2)`.
    fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) => sendmsg_managed;
}

/// [`sendmsg`] in a coroutine, or on a descriptor corun made non-blocking.
///
/// # Safety
/// As [`sendmsg`].
#[inline(never)]
unsafe fn sendmsg_managed(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    let real = real();
    if flags & libc::MSG_DONTWAIT != 0 {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { (real.sendmsg)(fd, msg, flags) };
    }
    let call = Call {
        direction: Direction::Write,
        dontwait: true,
        len: None,
        until: None,
    };
    blocking_call(fd, call, |how| {
        let flags = match how {
            Attempt::AsCalled => flags,
            Attempt::DontWait => flags | libc::MSG_DONTWAIT,
        };
        // SAFETY: the caller's arguments, passed on.
        unsafe { (real.sendmsg)(fd, msg, flags) }
    })
    .0
}

/// `accept(2)`.
///
/// # Safety
/// The caller's contract of `accept(2)`.
#[no_mangle]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, addrlen: *mut socklen_t) -> c_int {
    // SAFETY: the caller's contract (`accept4` with no flags is `accept`).
    unsafe { accept4(fd, addr, addrlen, 0) }
}

/// `accept4(2)`. The listening socket is made non-blocking underneath (there is no per-call
/// flag); the new socket's entry records its flags and the timeouts it inherits.
///
/// # Safety
/// The caller's contract of `accept4(2)`.
#[no_mangle]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    addrlen: *mut socklen_t,
    flags: c_int,
) -> c_int {
    let real = real();
    let call = Call {
        direction: READ,
        dontwait: false,
        len: None,
        until: None,
    };
    // SAFETY: the caller's arguments, passed on.
    let (r, _) = blocking_call(fd, call, |_| unsafe {
        (real.accept4)(fd, addr, addrlen, flags) as isize
    });
    let new = r as c_int;
    if new >= 0 {
        // Accepted sockets inherit the listener's type and timeouts (`sk_clone`). From a
        // listener the hooks never learned (inherited, say), the new socket is learned at its
        // first use instead (`learn` keeps `OWNED`).
        let (state, timeouts) = fd_table::get(fd).map_or((0, [0, 0]), |entry| entry.snapshot());
        let mut new_state = match state & fd_table::KIND_MASK {
            KIND_SOCKET => KIND_SOCKET | OWNED | (state & STREAM),
            _ => OWNED,
        };
        if flags & libc::SOCK_NONBLOCK != 0 {
            new_state |= USER_NONBLOCK;
        }
        super::fd_calls::created(new, new_state, timeouts);
    }
    new
}

/// `connect(2)`. In a coroutine, on a blocking socket: starts the connection non-blocking and
/// parks until it completes, for no longer than `SO_SNDTIMEO` (then `EINPROGRESS`, as the
/// kernel). The socket's mode is put back at once: only the one call is non-blocking.
///
/// # Safety
/// The caller's contract of `connect(2)`.
#[no_mangle]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    let real = real();
    // SAFETY: the caller's arguments, passed on.
    let pass = || unsafe { (real.connect)(fd, addr, len) };
    if !in_coroutine() {
        return pass();
    }
    let Some(entry) = fd_table::get_or_create(fd) else {
        return pass();
    };
    let state = entry.known_state(fd);
    if state & super::fd_table::KIND_MASK != KIND_SOCKET || state & USER_NONBLOCK != 0 {
        return pass();
    }
    // Inside the close gate from before the mode changes until it is put back: a close
    // meanwhile waits for this call to leave, so the number cannot go to another descriptor
    // under it.
    if !entry.enter() {
        return fail(libc::EBADF) as c_int;
    }
    let r = connect_in_gate(fd, entry, &pass);
    entry.leave();
    r
}

/// The body of [`connect`], between `enter` and `leave`.
fn connect_in_gate(fd: c_int, entry: &fd_table::Fd, pass: &dyn Fn() -> c_int) -> c_int {
    let real = real();
    // SAFETY: F_GETFL and F_SETFL read no memory.
    let flags = unsafe { (real.fcntl)(fd, libc::F_GETFL, 0) };
    if flags < 0 || flags & libc::O_NONBLOCK != 0 {
        return pass();
    }
    // SAFETY: as above.
    let set = |flags: c_int| unsafe { (real.fcntl)(fd, libc::F_SETFL, flags as libc::c_ulong) };
    if set(flags | libc::O_NONBLOCK) < 0 {
        return pass();
    }
    let deadline = entry
        .timeout(Direction::Write)
        .and_then(|t| Instant::now().checked_add(t));
    let mut r = pass();
    let mut e = errno();
    // A Unix socket whose listener's backlog is full says EAGAIN (a blocking one would wait
    // for room, of which epoll says nothing): try again every millisecond.
    while r < 0 && e == libc::EAGAIN {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if super::sleep_calls::sleep_reporting_cancel(Duration::from_millis(1)) {
            e = libc::ECANCELED;
            break;
        }
        if entry.closing() {
            e = libc::EBADF;
            break;
        }
        r = pass();
        e = errno();
    }
    set(flags);
    // EALREADY: an earlier connect (one that timed out, say) is still in progress; the
    // kernel's blocking connect would wait for it, and so does this one.
    if r == 0 || !(e == libc::EINPROGRESS || e == libc::EALREADY) {
        set_errno(e);
        return r;
    }
    match wait_connected(fd, entry, deadline) {
        Ok(()) => {
            let error = fd_table::socket_option::<c_int>(fd, libc::SO_ERROR).unwrap_or(libc::EIO);
            if error == 0 {
                0
            } else {
                fail(error) as c_int
            }
        }
        Err(e) => fail(e) as c_int,
    }
}

/// Parks until the connection in progress on `fd` is decided (writable, which includes
/// failed); errno `EINPROGRESS` on the deadline, as the kernel's connect timeout.
/// Called inside the close gate.
fn wait_connected(fd: c_int, entry: &fd_table::Fd, deadline: Option<Instant>) -> Result<(), c_int> {
    let cell = entry
        .register(fd)
        .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    loop {
        let seen = cell.readiness(Direction::Write);
        if seen.is_ready() {
            // Level-check what the edge said: a late event of the cell's last descriptor
            // could have set it.
            let mut pollfd = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one valid `pollfd`, no timeout.
            if unsafe { (real().poll)(&mut pollfd, 1, 0) } != 0 {
                return Ok(());
            }
            cell.clear(seen);
        }
        // After the clear, before queueing: see `gate.rs`.
        if entry.closing() {
            return Err(libc::EBADF);
        }
        let park = crate::coroutine::park_reporting_cancel;
        match park_on_with(cell, &[Some(Direction::Write)], deadline, park) {
            _ if entry.closing() => return Err(libc::EBADF),
            Parked::Ready => continue,
            Parked::TimedOut => return Err(libc::EINPROGRESS),
            Parked::Cancelled => return Err(libc::ECANCELED),
        }
    }
}

extern "C" {
    /// glibc's report of a buffer overflow caught by `_FORTIFY_SOURCE`: prints and aborts.
    fn __chk_fail() -> !;
}

/// `__read_chk`: what C code built with `_FORTIFY_SOURCE` calls for `read` (`buflen` is the
/// buffer's size as the compiler knows it). As glibc's, then [`read`].
///
/// # Safety
/// The caller's contract of `read(2)`.
#[no_mangle]
pub unsafe extern "C" fn __read_chk(
    fd: c_int,
    buf: *mut c_void,
    count: size_t,
    buflen: size_t,
) -> ssize_t {
    if count > buflen {
        // SAFETY: aborts the process.
        unsafe { __chk_fail() };
    }
    // SAFETY: the caller's contract.
    unsafe { read(fd, buf, count) }
}

/// `__recv_chk`: `recv` under `_FORTIFY_SOURCE`, as [`__read_chk`].
///
/// # Safety
/// The caller's contract of `recv(2)`.
#[no_mangle]
pub unsafe extern "C" fn __recv_chk(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    buflen: size_t,
    flags: c_int,
) -> ssize_t {
    if len > buflen {
        // SAFETY: aborts the process.
        unsafe { __chk_fail() };
    }
    // SAFETY: the caller's contract.
    unsafe { recv(fd, buf, len, flags) }
}

/// `__recvfrom_chk`: `recvfrom` under `_FORTIFY_SOURCE`, as [`__read_chk`].
///
/// # Safety
/// The caller's contract of `recvfrom(2)`.
#[no_mangle]
pub unsafe extern "C" fn __recvfrom_chk(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    buflen: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    addrlen: *mut socklen_t,
) -> ssize_t {
    if len > buflen {
        // SAFETY: aborts the process.
        unsafe { __chk_fail() };
    }
    // SAFETY: the caller's contract.
    unsafe { recvfrom(fd, buf, len, flags, addr, addrlen) }
}
