//! The real libc functions behind the hooks, found once with `dlsym(RTLD_NEXT, ..)`.
//!
//! `RTLD_NEXT` finds the next definition of a symbol after the object that asks, in the
//! global search order: the executable (where the hooks are) comes first, so the next one is
//! libc's. The table is filled by a constructor in `.init_array`, before `main` and before any
//! thread exists; a hook that runs earlier still (from another library's constructor) fills it
//! itself, through the same `OnceLock`.
//!
//! Nothing here may call a hooked function: the first call of a hook would then re-enter the
//! `OnceLock` it is initialising. `dlsym` allocates, but calls none of them, and a failure is
//! reported with the raw `write` system call.

use libc::{
    addrinfo, c_char, c_int, c_uint, c_ulong, c_void, clockid_t, fd_set, hostent, iovec, msghdr,
    nfds_t, pollfd, sigset_t, size_t, sockaddr, socklen_t, ssize_t, timespec, timeval,
};
use std::sync::OnceLock;

macro_rules! real_functions {
    ($( $name:ident : fn($($arg:ty),*) -> $ret:ty; )*) => {
        /// Pointers to the real functions, one per hook.
        pub(crate) struct Real {
            $( pub(crate) $name: unsafe extern "C" fn($($arg),*) -> $ret, )*
        }

        impl Real {
            fn resolve() -> Real {
                Real {
                    $( $name: {
                        let symbol = concat!(stringify!($name), "\0");
                        let f = find(symbol);
                        // SAFETY: `f` is libc's definition of the symbol named like the field,
                        // whose C prototype the field's type spells (checked against the libc
                        // crate's declarations); a data pointer and a function pointer have the
                        // same size and representation on the platforms the feature supports.
                        unsafe {
                            std::mem::transmute::<*mut c_void, unsafe extern "C" fn($($arg),*) -> $ret>(f)
                        }
                    }, )*
                }
            }
        }
    };
}

real_functions! {
    read: fn(c_int, *mut c_void, size_t) -> ssize_t;
    write: fn(c_int, *const c_void, size_t) -> ssize_t;
    readv: fn(c_int, *const iovec, c_int) -> ssize_t;
    writev: fn(c_int, *const iovec, c_int) -> ssize_t;
    recv: fn(c_int, *mut c_void, size_t, c_int) -> ssize_t;
    recvfrom: fn(c_int, *mut c_void, size_t, c_int, *mut sockaddr, *mut socklen_t) -> ssize_t;
    recvmsg: fn(c_int, *mut msghdr, c_int) -> ssize_t;
    send: fn(c_int, *const c_void, size_t, c_int) -> ssize_t;
    sendto: fn(c_int, *const c_void, size_t, c_int, *const sockaddr, socklen_t) -> ssize_t;
    sendmsg: fn(c_int, *const msghdr, c_int) -> ssize_t;
    accept4: fn(c_int, *mut sockaddr, *mut socklen_t, c_int) -> c_int;
    connect: fn(c_int, *const sockaddr, socklen_t) -> c_int;
    poll: fn(*mut pollfd, nfds_t, c_int) -> c_int;
    select: fn(c_int, *mut fd_set, *mut fd_set, *mut fd_set, *mut timeval) -> c_int;
    nanosleep: fn(*const timespec, *mut timespec) -> c_int;
    clock_nanosleep: fn(clockid_t, c_int, *const timespec, *mut timespec) -> c_int;
    usleep: fn(c_uint) -> c_int;
    sleep: fn(c_uint) -> c_uint;
    close: fn(c_int) -> c_int;
    shutdown: fn(c_int, c_int) -> c_int;
    socket: fn(c_int, c_int, c_int) -> c_int;
    socketpair: fn(c_int, c_int, c_int, *mut c_int) -> c_int;
    pipe2: fn(*mut c_int, c_int) -> c_int;
    dup: fn(c_int) -> c_int;
    dup2: fn(c_int, c_int) -> c_int;
    dup3: fn(c_int, c_int, c_int) -> c_int;
    // Variadic in C (and `open`'s mode below): the hooks take the one optional argument as a
    // word (see `fd_calls.rs`).
    fcntl: fn(c_int, c_int, c_ulong) -> c_int;
    fcntl64: fn(c_int, c_int, c_ulong) -> c_int;
    ioctl: fn(c_int, c_ulong, c_ulong) -> c_int;
    setsockopt: fn(c_int, c_int, c_int, *const c_void, socklen_t) -> c_int;
    open: fn(*const c_char, c_int, c_uint) -> c_int;
    open64: fn(*const c_char, c_int, c_uint) -> c_int;
    openat: fn(c_int, *const c_char, c_int, c_uint) -> c_int;
    openat64: fn(c_int, *const c_char, c_int, c_uint) -> c_int;
    creat: fn(*const c_char, c_uint) -> c_int;
    creat64: fn(*const c_char, c_uint) -> c_int;
    eventfd: fn(c_uint, c_int) -> c_int;
    epoll_create: fn(c_int) -> c_int;
    epoll_create1: fn(c_int) -> c_int;
    timerfd_create: fn(clockid_t, c_int) -> c_int;
    signalfd: fn(c_int, *const sigset_t, c_int) -> c_int;
    memfd_create: fn(*const c_char, c_uint) -> c_int;
    inotify_init: fn() -> c_int;
    inotify_init1: fn(c_int) -> c_int;
    getaddrinfo: fn(*const c_char, *const c_char, *const addrinfo, *mut *mut addrinfo) -> c_int;
    gethostbyname: fn(*const c_char) -> *mut hostent;
}

/// Finds the next definition of `symbol` (NUL-terminated); aborts with a message if there is
/// none (`fcntl64`, added in glibc 2.28, falls back to `fcntl`).
fn find(symbol: &str) -> *mut c_void {
    // SAFETY: `symbol` is NUL-terminated (the macro appends the NUL); RTLD_NEXT is a valid
    // pseudo-handle.
    let f = unsafe { libc::dlsym(libc::RTLD_NEXT, symbol.as_ptr().cast()) };
    if !f.is_null() {
        return f;
    }
    if symbol == "fcntl64\0" {
        return find("fcntl\0");
    }
    let message = format!(
        "corun: the `hook` feature found no libc definition of `{}`; aborting\n",
        symbol.trim_end_matches('\0')
    );
    // SAFETY: writes a valid buffer to standard error with the system call itself, since the
    // `write` function is hooked and the hooks have no real functions.
    unsafe {
        libc::syscall(libc::SYS_write, 2 as c_int, message.as_ptr(), message.len());
    }
    std::process::abort();
}

static REAL: OnceLock<Real> = OnceLock::new();

/// The real functions.
#[inline]
pub(crate) fn real() -> &'static Real {
    REAL.get_or_init(Real::resolve)
}

/// Resolves the table at start-up, before `main`, and arranges for a forked child to drop
/// what it inherited of corun's state (`hook::after_fork`).
extern "C" fn resolve_at_start() {
    real();
    // SAFETY: registers a plain `extern "C" fn()` to run in the child after a `fork`.
    unsafe { libc::pthread_atfork(None, None, Some(super::after_fork)) };
}

/// The constructor: the dynamic loader calls every function in `.init_array` of the executable
/// before `main`.
#[used]
#[link_section = ".init_array"]
static RESOLVE_AT_START: extern "C" fn() = resolve_at_start;
