//! `getaddrinfo` and `gethostbyname`: in a coroutine, run on the blocking pool
//! (`corun::blocking`), since glibc's resolver blocks in system calls the hooks never see (its
//! internal `__poll`, `__recvfrom`).

use super::{in_coroutine, real};
use libc::{addrinfo, c_char, c_int, hostent};

/// Pointers handed to a pool thread, which uses them while the caller waits.
struct Pass<T>(T);
// SAFETY: the caller of `blocking_in_hook` waits until the job is done (it cannot return or
// unwind before), so what these pointers point to outlives the job, and the caller does not
// touch it meanwhile.
unsafe impl<T> Send for Pass<T> {}

/// `getaddrinfo(3)`.
///
/// # Safety
/// The caller's contract of `getaddrinfo(3)`.
#[no_mangle]
pub unsafe extern "C" fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
) -> c_int {
    let real = real().getaddrinfo;
    if !in_coroutine() {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real(node, service, hints, res) };
    }
    let args = Pass((node, service, hints, res));
    let (result, errno) = crate::blocking::blocking_in_hook(move || {
        let args = args; // the whole wrapper, not its fields (it is what is `Send`)
        let Pass((node, service, hints, res)) = args;
        // SAFETY: the caller's arguments, valid while it waits (see `Pass`).
        let r = unsafe { real(node, service, hints, res) };
        (r, super::errno())
    });
    // EAI_SYSTEM leaves its cause in errno, which was the pool thread's.
    super::set_errno(errno);
    result
}

extern "C" {
    fn __h_errno_location() -> *mut c_int;
}

/// `gethostbyname(3)` (obsolete, not thread-safe: its result is one static buffer, as ever).
/// Its error, in `h_errno`, is carried back from the pool thread.
///
/// # Safety
/// The caller's contract of `gethostbyname(3)`.
#[no_mangle]
pub unsafe extern "C" fn gethostbyname(name: *const c_char) -> *mut hostent {
    let real = real().gethostbyname;
    if !in_coroutine() {
        // SAFETY: the caller's argument, passed on.
        return unsafe { real(name) };
    }
    let args = Pass(name);
    let (result, h_errno) = crate::blocking::blocking_in_hook(move || {
        let args = args; // the whole wrapper, as above
        let Pass(name) = args;
        // SAFETY: the caller's argument, valid while it waits (see `Pass`); `h_errno` is the
        // pool thread's own.
        unsafe { (Pass(real(name)), *__h_errno_location()) }
    });
    // SAFETY: the calling thread's `h_errno`.
    unsafe { *__h_errno_location() = h_errno };
    result.0
}
