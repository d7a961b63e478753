//! Reporting stack overflows: a SIGSEGV/SIGBUS handler on an alternate signal stack.
//!
//! While a worker resumes a coroutine, the coroutine is reachable from the thread's context
//! (`coroutine::running_for_signal`: one thread-local load and plain reads of immutable task
//! fields). A fault inside the gap page of any of our stacks is an overflow
//! (`stack::stack_overflowed_at` looks the address up in the slabs, which are recorded for this
//! and never unmapped): of the running coroutine if it is its gap, else of a generator, which no
//! worker publishes (nothing else runs on a stack that is not the running coroutine's). So is any
//! fault taken while the stack pointer is below the running coroutine's stack (a soft-guarded
//! stack that ran past its gap). The handler writes one line with `write(2)` (async-signal-safe,
//! no allocation) and aborts. Any other fault is passed to the handler that was installed before
//! ours (std's own, or the default action), so we never swallow a real segfault. The handler runs
//! on an alternate signal stack, because the faulting stack has no room left: each worker's own,
//! and on a plain thread that makes a guarded generator, std's (or ours, if it has none).
//!
//! Soft-guarded stacks (see `stack.rs`: older kernels only, past the mapping budget) are checked
//! by the worker after each switch; [`report_and_abort`] is the shared way out for both.

use std::sync::Once;

thread_local! {
    /// Whether [`prepare_for_generators`] has looked at this thread, and the alternate signal
    /// stack it gave the thread if it had none.
    static PREPARED: std::cell::RefCell<Option<Option<AltStack>>> = const { std::cell::RefCell::new(None) };
}

/// Makes an overflow of a generator's stack on this thread reportable: installs the handlers
/// (once per process) and, once per thread, gives the thread an alternate signal stack if it has
/// none (the handler cannot run on the stack that overflowed). Threads that std started, and
/// workers, have one already; a thread that C code started may not.
pub(crate) fn prepare_for_generators() {
    install_handlers();
    let _ = PREPARED.try_with(|prepared| {
        let mut prepared = prepared.borrow_mut();
        if prepared.is_none() {
            *prepared = Some((!has_alt_stack()).then(AltStack::new));
        }
    });
}

/// Whether this thread has an alternate signal stack.
fn has_alt_stack() -> bool {
    // SAFETY: a query only (no new stack); `old` is written by the kernel.
    unsafe {
        let mut old: libc::stack_t = std::mem::zeroed();
        libc::sigaltstack(std::ptr::null(), &mut old) == 0 && old.ss_flags & libc::SS_DISABLE == 0
    }
}

/// What a report says about a generator's stack (generators have no id or name of their own).
pub(crate) fn generator_report(gap: usize, stack_size: usize, soft: bool) -> Running {
    const NAME: &str = "Generator";
    Running {
        guard_lo: gap,
        guard_hi: gap + crate::coroutine::stack::page_size(),
        soft,
        id: 0,
        stack_size,
        name_ptr: NAME.as_ptr(),
        name_len: NAME.len(),
    }
}

/// What an overflow report says about the coroutine: plain integers and a borrowed name.
#[derive(Clone, Copy)]
pub(crate) struct Running {
    pub guard_lo: usize,
    pub guard_hi: usize,
    /// Whether the guard is a soft one (see `stack.rs`).
    pub soft: bool,
    pub id: u64,
    pub stack_size: usize,
    pub name_ptr: *const u8,
    pub name_len: usize,
}

/// The previous handlers, to chain to for faults that are not ours.
static mut PREVIOUS_SEGV: std::mem::MaybeUninit<libc::sigaction> = std::mem::MaybeUninit::uninit();
static mut PREVIOUS_BUS: std::mem::MaybeUninit<libc::sigaction> = std::mem::MaybeUninit::uninit();
static INSTALL: Once = Once::new();

/// Size of each worker's alternate signal stack.
const ALT_STACK_SIZE: usize = 64 * 1024;

/// Installs the process-wide handlers (once) and an alternate signal stack for this thread.
/// Returns a guard that removes the alternate stack when the worker exits.
pub(crate) fn install_for_this_thread() -> AltStack {
    install_handlers();
    AltStack::new()
}

/// Installs the process-wide handlers, once.
fn install_handlers() {
    INSTALL.call_once(|| {
        // SAFETY: runs once, before any worker resumes a coroutine, so nobody reads the
        // PREVIOUS_* statics concurrently with these writes (readers run later, in the handler,
        // ordered after this by the Once). `sigaction` with a zeroed, then filled, struct is the
        // documented way to install a SA_SIGINFO handler.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler
                as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)
                as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(
                libc::SIGSEGV,
                &action,
                std::ptr::addr_of_mut!(PREVIOUS_SEGV).cast(),
            );
            libc::sigaction(
                libc::SIGBUS,
                &action,
                std::ptr::addr_of_mut!(PREVIOUS_BUS).cast(),
            );
        }
    });
}

/// A per-thread alternate signal stack, removed on drop.
pub(crate) struct AltStack {
    mem: *mut libc::c_void,
}

impl AltStack {
    fn new() -> AltStack {
        let page = crate::coroutine::stack::page_size();
        // SAFETY: a fresh anonymous mapping; nothing else refers to it.
        let mem = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ALT_STACK_SIZE + page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if mem == libc::MAP_FAILED {
            return AltStack {
                mem: std::ptr::null_mut(),
            };
        }
        // SAFETY: `mem` is our mapping of ALT_STACK_SIZE + one page; the lowest page becomes a
        // guard, the rest the signal stack of this thread, which we own until `drop`.
        unsafe {
            libc::mprotect(mem, page, libc::PROT_NONE);
            let stack = libc::stack_t {
                ss_sp: mem.cast::<u8>().add(page).cast(),
                ss_flags: 0,
                ss_size: ALT_STACK_SIZE,
            };
            libc::sigaltstack(&stack, std::ptr::null_mut());
        }
        AltStack { mem }
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        if self.mem.is_null() {
            return;
        }
        // SAFETY: disabling this thread's alternate stack before unmapping it; we are not running
        // on it (destructors do not run inside signal handlers).
        unsafe {
            let disable = libc::stack_t {
                ss_sp: std::ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: 0,
            };
            libc::sigaltstack(&disable, std::ptr::null_mut());
            libc::munmap(
                self.mem,
                ALT_STACK_SIZE + crate::coroutine::stack::page_size(),
            );
        }
    }
}

extern "C" fn handler(signum: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers; `si_addr` is the fault
    // address for SIGSEGV and SIGBUS.
    let addr = unsafe { (*info).si_addr() } as usize;
    let running = crate::coroutine::running_for_signal();
    // A fault in the gap page of any of our stacks: the running coroutine's, or else a
    // generator's (nothing else runs on a stack that is not the running coroutine's).
    if let Some((gap, stack_size)) = crate::coroutine::stack::stack_overflowed_at(addr) {
        match running {
            Some(running) if running.guard_lo == gap => report_and_abort(&running),
            _ => report_and_abort(&generator_report(gap, stack_size, false)),
        }
    }
    if let Some(running) = running {
        // Ours if the fault is in the guard page, or if the stack pointer is already below the
        // stack's limit: a soft-guarded stack overflowed past its gap and the fault happened
        // further down (in a neighbour's guard page, or outside the slab).
        // Only for soft guards: a guarded stack faults precisely in its guard page, and a stack
        // pointer elsewhere may legitimately be on a generator's stack nested in this coroutine.
        let below_limit =
            running.soft && stack_pointer(ctx).is_some_and(|sp| sp < running.guard_hi);
        if (addr >= running.guard_lo && addr < running.guard_hi) || below_limit {
            report_and_abort(&running);
        }
    }
    // Not ours: hand the fault to whoever had it before.
    // SAFETY: PREVIOUS_* were written once by INSTALL before this handler could run.
    let previous = unsafe {
        if signum == libc::SIGBUS {
            (*std::ptr::addr_of!(PREVIOUS_BUS)).assume_init_ref()
        } else {
            (*std::ptr::addr_of!(PREVIOUS_SEGV)).assume_init_ref()
        }
    };
    if previous.sa_sigaction == libc::SIG_DFL || previous.sa_sigaction == libc::SIG_IGN {
        // Restore the default action and return: the faulting instruction runs again and the
        // kernel applies that action (core dump), as if we had never been installed.
        // SAFETY: `previous` is a valid sigaction saved by the kernel.
        unsafe { libc::sigaction(signum, previous, std::ptr::null_mut()) };
    } else if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the saved handler is a SA_SIGINFO handler with this signature; we call it with
        // the arguments the kernel gave us.
        unsafe {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(previous.sa_sigaction);
            f(signum, info, ctx);
        }
    } else {
        // SAFETY: a plain (non-SA_SIGINFO) handler takes only the signal number.
        unsafe {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(previous.sa_sigaction);
            f(signum);
        }
    }
}

/// The interrupted stack pointer, from the signal's machine context.
fn stack_pointer(ctx: *mut libc::c_void) -> Option<usize> {
    if ctx.is_null() {
        return None;
    }
    // SAFETY: for SA_SIGINFO handlers the kernel passes a valid `ucontext_t` as the third
    // argument; we only read the saved stack pointer register from it.
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    return Some(unsafe {
        (*(ctx as *const libc::ucontext_t)).uc_mcontext.gregs[libc::REG_RSP as usize]
    } as usize);
    // SAFETY: as above (aarch64 keeps `sp` as a field of `mcontext_t`).
    #[cfg(all(target_os = "linux", target_arch = "aarch64"))]
    return Some(unsafe { (*(ctx as *const libc::ucontext_t)).uc_mcontext.sp } as usize);
    #[allow(unreachable_code)]
    None
}

/// Writes "stack overflow in coroutine ..." to stderr with async-signal-safe calls, then aborts.
pub(crate) fn report_and_abort(running: &Running) -> ! {
    let mut buf = [0u8; 512];
    let mut w = Writer {
        buf: &mut buf,
        len: 0,
    };
    w.put(b"\ncorun: stack overflow in coroutine ");
    if !running.name_ptr.is_null() {
        // SAFETY: the name points into the running coroutine's `Box<str>`, alive while it runs.
        let name = unsafe { std::slice::from_raw_parts(running.name_ptr, running.name_len) };
        w.put(b"'");
        w.put(&name[..name.len().min(200)]);
        w.put(b"' ");
    }
    w.put(b"(id ");
    w.num(running.id as usize);
    w.put(b"): its stack of ");
    w.num(running.stack_size);
    w.put(b" bytes is exhausted; give it a larger stack (corun::Builder::stack_size, or Generator::with_stack_size)\n");
    let len = w.len;
    // SAFETY: the write(2) system call and abort(3) are async-signal-safe; `buf[..len]` is
    // initialised. The system call itself, not libc's `write`: with the `hook` feature, that
    // is corun's hook, which is not async-signal-safe (it may allocate, or park).
    unsafe {
        libc::syscall(libc::SYS_write, 2 as libc::c_int, buf.as_ptr(), len);
        libc::abort();
    }
}

struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }

    fn num(&mut self, mut n: usize) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.put(&digits[i..]);
    }
}
