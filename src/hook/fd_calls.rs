//! The hooks that keep the descriptor table true (`fd_table.rs`): `close`, `shutdown`,
//! `socket`, `socketpair`, `pipe`, `pipe2`, `dup`, `dup2`, `dup3`, `fcntl` (and `fcntl64`),
//! `ioctl`, `setsockopt`.
//!
//! They do their work on plain threads too: a descriptor a thread creates, closes or duplicates
//! may be one a coroutine uses. A program without coroutines pays a lookup per call, and a store
//! per descriptor created.
//!
//! `fcntl` and `ioctl` are variadic in C. Rust cannot define a variadic function on stable, so
//! the hooks take the optional argument as one machine word: on x86_64 and aarch64 Linux a
//! variadic integer or pointer argument travels in the same register as a fixed one, and a
//! call that passes none leaves a value the real function ignores as well.

use super::fd_table::{
    self, Fd, KIND_MASK, KIND_PIPE, KIND_SOCKET, KIND_UNKNOWN, OWNED, STREAM, SYS_NONBLOCK,
    USER_NONBLOCK,
};
use super::{errno, real, set_errno};
use crate::io::readiness::Direction;
use libc::{c_char, c_int, c_uint, c_ulong, c_void, socklen_t};

/// Records a descriptor just created by a hook, keeping errno (the caller's result stands).
pub(super) fn created(fd: c_int, state: usize, timeouts: [u64; 2]) {
    if fd < 0 {
        return;
    }
    let saved = errno();
    // On threads too: a descriptor created anywhere in the process is `OWNED`.
    if let Some(entry) = fd_table::get_or_create(fd) {
        if entry.state() != KIND_UNKNOWN || entry.cell().is_some() {
            // Left by a descriptor of the same number closed without the hooks (by glibc, or
            // the raw system call): whoever still waits on it is woken, as by a close.
            close_wait(entry, fd);
        }
        entry.reset(fd, state, timeouts);
    }
    set_errno(saved);
}

/// `close(2)`: wakes the coroutines waiting on `fd` (they fail with `EBADF`), waits for them
/// to leave, deregisters it from the netpoller, then closes it.
#[no_mangle]
pub extern "C" fn close(fd: c_int) -> c_int {
    let real = real();
    let Some(entry) = fd_table::get(fd) else {
        // SAFETY: no pointers.
        return unsafe { (real.close)(fd) };
    };
    if entry.state() == KIND_UNKNOWN && entry.cell().is_none() {
        // Nothing known, nothing registered, nobody waiting (waiters make the kind known).
        // SAFETY: no pointers.
        return unsafe { (real.close)(fd) };
    }
    close_wait(entry, fd);
    // Forgotten before the close: once closed, the number may be reused at once by another
    // thread, whose new entry must not be forgotten after the fact.
    entry.forget(fd);
    // SAFETY: no pointers.
    unsafe { (real.close)(fd) }
}

/// The first half of a close, in a section that defers a shutdown (the wait may park).
fn close_wait(entry: &Fd, fd: c_int) {
    crate::coroutine::deferring_cancellation(|| entry.begin_close(fd));
}

/// `shutdown(2)`: the kernel's events wake the coroutines waiting on the socket; corun makes
/// its cell ready as well, so they retry at once and get the kernel's answer (end of file,
/// `EPIPE`).
#[no_mangle]
pub extern "C" fn shutdown(fd: c_int, how: c_int) -> c_int {
    // SAFETY: no pointers.
    let r = unsafe { (real().shutdown)(fd, how) };
    if r == 0 {
        if let Some(cell) = fd_table::get(fd).and_then(Fd::cell) {
            cell.set_events(true, true, false, false);
        }
    }
    r
}

/// The state of a new socket of `ty` (with its `SOCK_*` flags).
fn socket_state(ty: c_int) -> usize {
    let mut state = KIND_SOCKET | OWNED;
    if ty & 0xf == libc::SOCK_STREAM {
        state |= STREAM;
    }
    if ty & libc::SOCK_NONBLOCK != 0 {
        state |= USER_NONBLOCK;
    }
    state
}

/// `socket(2)`.
#[no_mangle]
pub extern "C" fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    // SAFETY: no pointers.
    let fd = unsafe { (real().socket)(domain, ty, protocol) };
    created(fd, socket_state(ty), [0, 0]);
    fd
}

/// `socketpair(2)`.
///
/// # Safety
/// The caller's contract of `socketpair(2)`: `sv` has room for two descriptors.
#[no_mangle]
pub unsafe extern "C" fn socketpair(
    domain: c_int,
    ty: c_int,
    protocol: c_int,
    sv: *mut c_int,
) -> c_int {
    // SAFETY: the caller's arguments, passed on.
    let r = unsafe { (real().socketpair)(domain, ty, protocol, sv) };
    if r == 0 {
        // SAFETY: the call succeeded, so it wrote both descriptors.
        let [a, b] = unsafe { [*sv, *sv.add(1)] };
        created(a, socket_state(ty), [0, 0]);
        created(b, socket_state(ty), [0, 0]);
    }
    r
}

/// `pipe(2)`.
///
/// # Safety
/// The caller's contract of `pipe(2)`.
#[no_mangle]
pub unsafe extern "C" fn pipe(fds: *mut c_int) -> c_int {
    // SAFETY: the caller's contract (`pipe2` with no flags is `pipe`).
    unsafe { pipe2(fds, 0) }
}

/// `pipe2(2)`.
///
/// # Safety
/// The caller's contract of `pipe2(2)`.
#[no_mangle]
pub unsafe extern "C" fn pipe2(fds: *mut c_int, flags: c_int) -> c_int {
    // SAFETY: the caller's arguments, passed on.
    let r = unsafe { (real().pipe2)(fds, flags) };
    if r == 0 {
        let mut state = KIND_PIPE | OWNED;
        if flags & libc::O_NONBLOCK != 0 {
            state |= USER_NONBLOCK;
        }
        // SAFETY: the call succeeded, so it wrote both descriptors.
        let [a, b] = unsafe { [*fds, *fds.add(1)] };
        created(a, state, [0, 0]);
        created(b, state, [0, 0]);
    }
    r
}

/// Records `new` as a duplicate of `old` (same open file: same kind, flags and timeouts).
fn duplicated(old: c_int, new: c_int) {
    let (state, timeouts) = fd_table::get(old).map_or((KIND_UNKNOWN, [0, 0]), Fd::snapshot);
    created(new, state, timeouts);
}

/// `dup(2)`.
#[no_mangle]
pub extern "C" fn dup(old: c_int) -> c_int {
    // SAFETY: no pointers.
    let new = unsafe { (real().dup)(old) };
    duplicated(old, new);
    new
}

/// `dup2(2)`: closes `new` first if it is open, as `close` does.
#[no_mangle]
pub extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    // SAFETY: no pointers.
    dup_over(old, new, || unsafe { (real().dup2)(old, new) })
}

/// `dup3(2)`: as `dup2`.
#[no_mangle]
pub extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    // SAFETY: no pointers.
    dup_over(old, new, || unsafe { (real().dup3)(old, new, flags) })
}

fn dup_over(old: c_int, new: c_int, call: impl FnOnce() -> c_int) -> c_int {
    // SAFETY: F_GETFD reads no memory.
    let old_is_open = unsafe { (real().fcntl)(old, libc::F_GETFD, 0) } >= 0;
    if old != new && old_is_open {
        // (With `old` not open the call fails, and `new` must stay as it is.)
        if let Some(entry) = fd_table::get(new) {
            // `new` is closed by the call: as in `close` (if the call fails, `new` stays open,
            // forgotten, and is learned afresh).
            close_wait(entry, new);
            entry.forget(new);
        }
    }
    let r = call();
    if r >= 0 && old != new {
        duplicated(old, r);
    }
    r
}

/// `fcntl(2)`. `F_GETFL` hides the `O_NONBLOCK` corun set for itself; `F_SETFL` records the
/// user's `O_NONBLOCK` and keeps corun's; `F_DUPFD` and `F_DUPFD_CLOEXEC` record the duplicate.
///
/// # Safety
/// The caller's contract of `fcntl(2)` for `cmd`.
#[no_mangle]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    // SAFETY: the caller's contract.
    unsafe { fcntl_hook(fd, cmd, arg, real().fcntl) }
}

/// `fcntl64`, which C code built with `_FILE_OFFSET_BITS=64` calls on glibc 2.28 and later: as
/// [`fcntl`].
///
/// # Safety
/// As [`fcntl`].
#[no_mangle]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    // SAFETY: the caller's contract.
    unsafe { fcntl_hook(fd, cmd, arg, real().fcntl64) }
}

unsafe fn fcntl_hook(
    fd: c_int,
    cmd: c_int,
    arg: c_ulong,
    real_fcntl: unsafe extern "C" fn(c_int, c_int, c_ulong) -> c_int,
) -> c_int {
    // SAFETY (every call below): the caller's arguments, passed on under the caller's
    // contract, or with `arg` changed to another flags word (F_SETFL reads no memory).
    match cmd {
        libc::F_GETFL => {
            let flags = unsafe { real_fcntl(fd, cmd, arg) };
            match fd_table::get(fd) {
                Some(entry)
                    if flags >= 0
                        && entry.state() & (SYS_NONBLOCK | USER_NONBLOCK) == SYS_NONBLOCK =>
                {
                    flags & !libc::O_NONBLOCK
                }
                _ => flags,
            }
        }
        libc::F_SETFL => {
            let wants_nonblock = arg & libc::O_NONBLOCK as c_ulong != 0;
            let entry = fd_table::get(fd);
            let ours = entry.is_some_and(|entry| entry.state() & SYS_NONBLOCK != 0);
            let arg = if ours {
                arg | libc::O_NONBLOCK as c_ulong
            } else {
                arg
            };
            let r = unsafe { real_fcntl(fd, cmd, arg) };
            if let (0, Some(entry)) = (r, entry) {
                if entry.state() & KIND_MASK != KIND_UNKNOWN {
                    entry.set_flag(USER_NONBLOCK, wants_nonblock);
                }
            }
            r
        }
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
            let new = unsafe { real_fcntl(fd, cmd, arg) };
            duplicated(fd, new);
            new
        }
        _ => unsafe { real_fcntl(fd, cmd, arg) },
    }
}

/// `ioctl(2)`. `FIONBIO` is recorded like `F_SETFL`'s `O_NONBLOCK`.
///
/// # Safety
/// The caller's contract of `ioctl(2)` for `request`.
#[no_mangle]
pub unsafe extern "C" fn ioctl(fd: c_int, request: c_ulong, arg: c_ulong) -> c_int {
    let real = real();
    if request != libc::FIONBIO {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { (real.ioctl)(fd, request, arg) };
    }
    // The kernel reads the argument first: a bad pointer is its `EFAULT`, not a fault here.
    // SAFETY: the caller's arguments, passed on.
    let r = unsafe { (real.ioctl)(fd, request, arg) };
    if r != 0 {
        return r;
    }
    // SAFETY: the kernel has just read an int through `arg`: it points to one.
    let on = unsafe { *(arg as *const c_int) } != 0;
    if let Some(entry) = fd_table::get(fd) {
        let state = entry.state();
        if state & KIND_MASK != KIND_UNKNOWN {
            entry.set_flag(USER_NONBLOCK, on);
        }
        if !on && state & SYS_NONBLOCK != 0 {
            // The user's blocking mode is corun's to provide: the file stays non-blocking.
            let one: c_int = 1;
            // SAFETY: a pointer to a live int.
            unsafe { (real.ioctl)(fd, request, &one as *const c_int as c_ulong) };
        }
    }
    0
}

/// `setsockopt(2)`. `SO_RCVTIMEO` and `SO_SNDTIMEO` are recorded: coroutines honour them.
///
/// # Safety
/// The caller's contract of `setsockopt(2)`.
#[no_mangle]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    value: *const c_void,
    len: socklen_t,
) -> c_int {
    // SAFETY: the caller's arguments, passed on.
    let r = unsafe { (real().setsockopt)(fd, level, name, value, len) };
    let timeout = level == libc::SOL_SOCKET
        && (name == libc::SO_RCVTIMEO || name == libc::SO_SNDTIMEO)
        && len as usize >= std::mem::size_of::<libc::timeval>();
    if r == 0 && timeout {
        if let Some(entry) = fd_table::get(fd) {
            if entry.state() & KIND_MASK != KIND_UNKNOWN {
                // SAFETY: the kernel read a `timeval` from `value` successfully.
                let tv = unsafe { value.cast::<libc::timeval>().read_unaligned() };
                let direction = if name == libc::SO_RCVTIMEO {
                    Direction::Read
                } else {
                    Direction::Write
                };
                entry.set_timeout(direction, super::timeval_duration(tv));
            }
        }
    }
    r
}

/// Defines hooks for calls that create a descriptor the other hooks otherwise leave alone
/// (files, eventfds, epoll and timer descriptors, ...): each resets the new descriptor's entry,
/// so that one left by a descriptor of the same number closed behind the hooks' back (by
/// glibc's `fclose`, say) does not describe it. The descriptor is learned afresh if a
/// coroutine ever calls on it; not `OWNED` (a FIFO opened by name is shared by nature).
macro_rules! creating_calls {
    ($( $(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*); )*) => {$(
        $(#[$doc])*
        ///
        /// # Safety
        /// The caller's contract of the C function.
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> c_int {
            // SAFETY: the caller's arguments, passed on.
            let fd = unsafe { (real().$name)($($arg),*) };
            created(fd, KIND_UNKNOWN, [0, 0]);
            fd
        }
    )*};
}

creating_calls! {
    /// `open(2)` (`mode`, variadic in C, as `fcntl`'s argument).
    fn open(path: *const c_char, flags: c_int, mode: c_uint);
    /// `open64`, which Rust's std calls on glibc: as [`open`].
    fn open64(path: *const c_char, flags: c_int, mode: c_uint);
    /// `openat(2)`.
    fn openat(dir: c_int, path: *const c_char, flags: c_int, mode: c_uint);
    /// `openat64`: as [`openat`].
    fn openat64(dir: c_int, path: *const c_char, flags: c_int, mode: c_uint);
    /// `creat(2)`.
    fn creat(path: *const c_char, mode: c_uint);
    /// `creat64`: as [`creat`].
    fn creat64(path: *const c_char, mode: c_uint);
    /// `eventfd(2)`.
    fn eventfd(initval: c_uint, flags: c_int);
    /// `epoll_create(2)`.
    fn epoll_create(size: c_int);
    /// `epoll_create1(2)`.
    fn epoll_create1(flags: c_int);
    /// `timerfd_create(2)`.
    fn timerfd_create(clock: libc::clockid_t, flags: c_int);
    /// `memfd_create(2)`.
    fn memfd_create(name: *const c_char, flags: c_uint);
    /// `inotify_init(2)`.
    fn inotify_init();
    /// `inotify_init1(2)`.
    fn inotify_init1(flags: c_int);
}

/// `signalfd(2)`: creates a descriptor when `fd` is -1 (then as the calls above); otherwise it
/// changes the mask of an existing one.
///
/// # Safety
/// The caller's contract of `signalfd(2)`.
#[no_mangle]
pub unsafe extern "C" fn signalfd(fd: c_int, mask: *const libc::sigset_t, flags: c_int) -> c_int {
    // SAFETY: the caller's arguments, passed on.
    let new = unsafe { (real().signalfd)(fd, mask, flags) };
    if fd == -1 {
        created(new, KIND_UNKNOWN, [0, 0]);
    }
    new
}
