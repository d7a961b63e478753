//! What the hooks know about each descriptor: a table indexed by descriptor number, read
//! without locks on every hooked call.
//!
//! # Layout
//!
//! Pages of 1024 entries, allocated when a descriptor in their range is first seen and never
//! freed, under a fixed top level of 4096 page pointers (32 KiB of `.bss`): descriptors up to
//! 4 Mi. A descriptor beyond that has no entry, and its calls pass through unchanged. A lookup
//! is two dependent loads.
//!
//! # The state word
//!
//! Each entry's `state` holds:
//! * `KIND` (2 bits): not yet known, a socket, a pipe (or FIFO), or something else (regular
//!   files, terminals, eventfds, ...: the hooks leave those alone). Learned from `fstat` the
//!   first time a coroutine calls on the descriptor, or set when a hook creates it.
//! * `STREAM`: a socket of type `SOCK_STREAM` (the short-transfer rule of `io/readiness.rs`).
//! * `USER_NONBLOCK`: the user asked for non-blocking mode (`O_NONBLOCK`, `FIONBIO`,
//!   `SOCK_NONBLOCK`): calls keep plain `EAGAIN` semantics and pass through.
//! * `OWNED`: the descriptor was created in this process by a hook (`socket`, `accept`,
//!   `pipe`, ...; or duplicated from one that was), so its open file is this process's alone,
//!   as far as corun can tell. One learned from `fstat` may be shared with other processes:
//!   standard input and output are pipes shared with the shell or the test harness, a listening
//!   socket may come from systemd or a pre-forking parent.
//! * `SYS_NONBLOCK`: corun set `O_NONBLOCK` on the open file itself, because the call has no
//!   per-call non-blocking flag (`accept`, and everything on pipes). Only on `OWNED`
//!   descriptors: another process sharing the open file would see its calls fail with
//!   `EAGAIN`. (A call on a descriptor that is not owned and has no per-call flag passes
//!   through: it blocks the worker, and the monitor hands the worker's other coroutines to a
//!   spare thread.) The hooks hide the flag: `F_GETFL` leaves it out unless the user asked for
//!   it, and a plain thread's call waits in `poll(2)` where the kernel would have blocked (see
//!   `mod.rs`).
//! * `CLOSING`: a `close` (or `dup2` over it) has begun; waiters leave with `EBADF`.
//! * `USERS` (the upper bits): coroutines inside the waiting part of a hooked call. `close`
//!   waits for them to leave before it closes (Go's `fdMutex` reference count), so a waiter
//!   never touches a readiness cell, or a descriptor number, that has moved on.
//!
//! Sockets need no `SYS_NONBLOCK`: their data calls take `MSG_DONTWAIT`, which makes one call
//! non-blocking without touching the open file that other threads and processes share.
//!
//! # Keeping it true
//!
//! Every hook that creates a descriptor (`socket`, `accept`, `pipe`, `dup`, ...) resets its
//! entry, so an entry left behind by a descriptor closed without the hooks (by glibc itself, or
//! by the raw system call) does not describe the next one. `fcntl`, `ioctl(FIONBIO)` and
//! `setsockopt` keep the flags and timeouts current. The cell of a registered descriptor is
//! deregistered by `close`, or by the reset if `close` was not seen.

use super::gate;
use crate::io::driver;
use crate::io::readiness::{Direction, ScheduledIo};
use libc::c_int;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

const PAGE_BITS: u32 = 10;
const PAGE: usize = 1 << PAGE_BITS;
const PAGES: usize = 4096;
/// Descriptors with an entry: `0..CAPACITY`.
pub(crate) const CAPACITY: usize = PAGES * PAGE;

pub(crate) const KIND_MASK: usize = 0b11;
pub(crate) const KIND_UNKNOWN: usize = 0;
pub(crate) const KIND_SOCKET: usize = 1;
pub(crate) const KIND_PIPE: usize = 2;
pub(crate) const KIND_OTHER: usize = 3;
pub(crate) const STREAM: usize = 1 << 2;
pub(crate) const USER_NONBLOCK: usize = 1 << 3;
pub(crate) const SYS_NONBLOCK: usize = 1 << 4;
pub(crate) const OWNED: usize = 1 << 6;
// `gate::CLOSING` is bit 5, and the count of waiters starts at bit 8 (`gate::USER`).

/// One descriptor's entry.
pub(crate) struct Fd {
    state: AtomicUsize,
    /// The readiness cell, once a coroutine has had to wait on the descriptor; null before.
    io: AtomicPtr<ScheduledIo>,
    /// `SO_RCVTIMEO` and `SO_SNDTIMEO` in nanoseconds (0: none).
    read_timeout: AtomicU64,
    write_timeout: AtomicU64,
}

struct Page([Fd; PAGE]);

static TABLE: [AtomicPtr<Page>; PAGES] = [const { AtomicPtr::new(std::ptr::null_mut()) }; PAGES];

/// Registrations are made under this lock (once per descriptor that ever waits), so that two
/// coroutines waiting on a new descriptor at once do not both register it.
static REGISTERING: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

fn split(fd: c_int) -> Option<(usize, usize)> {
    let fd = usize::try_from(fd).ok()?;
    let page = fd >> PAGE_BITS;
    (page < PAGES).then_some((page, fd & (PAGE - 1)))
}

/// The entry of `fd`, if its page exists (`None` for a negative or huge `fd` too).
#[inline]
pub(crate) fn get(fd: c_int) -> Option<&'static Fd> {
    let (page, slot) = split(fd)?;
    let page = TABLE[page].load(Ordering::Acquire);
    // SAFETY: a non-null page pointer was published (Release) by `get_or_create`, initialised,
    // and pages are never freed.
    unsafe { page.as_ref() }.map(|page| &page.0[slot])
}

/// The entry of `fd`, allocating its page if need be (`None` for a negative or huge `fd`).
#[inline]
pub(crate) fn get_or_create(fd: c_int) -> Option<&'static Fd> {
    match get(fd) {
        Some(entry) => Some(entry),
        None => create(fd),
    }
}

/// Allocates the page of `fd` (out of line: once per 1024 descriptors).
#[cold]
#[inline(never)]
fn create(fd: c_int) -> Option<&'static Fd> {
    let (page, slot) = split(fd)?;
    // Zeroed on the heap directly (32 KiB would not fit on a small coroutine stack): all
    // zeros is an empty entry (kind unknown, no cell, no timeouts).
    let layout = std::alloc::Layout::new::<Page>();
    // SAFETY: the layout is not zero-sized.
    let fresh = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<Page>();
    if fresh.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    let page = match TABLE[page].compare_exchange(
        std::ptr::null_mut(),
        fresh,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => fresh,
        Err(theirs) => {
            // SAFETY: `fresh` was allocated above with this layout and never published.
            unsafe { std::alloc::dealloc(fresh.cast(), layout) };
            theirs
        }
    };
    // SAFETY: `page` is published, leaked and never freed.
    Some(unsafe { &(*page).0[slot] })
}

fn nanos(dur: Option<Duration>) -> u64 {
    dur.map_or(0, |d| {
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
    })
}

impl Fd {
    /// The state word.
    #[inline]
    pub(crate) fn state(&self) -> usize {
        self.state.load(Ordering::Acquire)
    }

    /// The state, learned from the kernel first if the kind is not known yet.
    #[inline]
    pub(crate) fn known_state(&self, fd: c_int) -> usize {
        let state = self.state();
        if state & KIND_MASK != KIND_UNKNOWN {
            return state;
        }
        self.learn(fd)
    }

    /// Asks the kernel what `fd` is (`fstat`), and for a socket or pipe its flags and, for a
    /// socket, its type and timeouts; records them unless another thread did first.
    #[cold]
    fn learn(&self, fd: c_int) -> usize {
        let real = super::real::real();
        // SAFETY: `stat` is written by `fstat` before it is read, and only if it succeeds.
        let mode = unsafe {
            let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
            if libc::fstat(fd, stat.as_mut_ptr()) < 0 {
                // Not open (EBADF): learn nothing; the call itself reports the error.
                return KIND_OTHER;
            }
            stat.assume_init().st_mode & libc::S_IFMT
        };
        let mut learned = match mode {
            libc::S_IFSOCK => KIND_SOCKET,
            libc::S_IFIFO => KIND_PIPE,
            _ => KIND_OTHER,
        };
        if learned != KIND_OTHER {
            // SAFETY: F_GETFL reads no memory.
            let flags = unsafe { (real.fcntl)(fd, libc::F_GETFL, 0) };
            if flags >= 0 && flags & libc::O_NONBLOCK != 0 {
                learned |= USER_NONBLOCK;
            }
        }
        if learned & KIND_MASK == KIND_SOCKET {
            if socket_option::<c_int>(fd, libc::SO_TYPE) == Some(libc::SOCK_STREAM) {
                learned |= STREAM;
            }
            let timeout = |option| {
                socket_option::<libc::timeval>(fd, option).and_then(super::timeval_duration)
            };
            self.read_timeout
                .store(nanos(timeout(libc::SO_RCVTIMEO)), Ordering::Relaxed);
            self.write_timeout
                .store(nanos(timeout(libc::SO_SNDTIMEO)), Ordering::Relaxed);
        }
        let mut result = learned;
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
                if state & KIND_MASK != KIND_UNKNOWN {
                    result = state;
                    return None;
                }
                result = state | learned;
                Some(result)
            });
        result
    }

    /// Makes the entry describe a descriptor just created with `state` (kind and flags) and
    /// the given timeouts, dropping whatever a previous descriptor of the same number left.
    pub(crate) fn reset(&self, fd: c_int, state: usize, timeouts: [u64; 2]) {
        self.drop_registration(fd);
        self.read_timeout.store(timeouts[0], Ordering::Relaxed);
        self.write_timeout.store(timeouts[1], Ordering::Relaxed);
        self.state.store(state, Ordering::Release);
    }

    /// Forgets everything: the next call learns the descriptor afresh.
    pub(crate) fn forget(&self, fd: c_int) {
        self.reset(fd, KIND_UNKNOWN, [0, 0]);
    }

    /// The kind, flags and timeouts, for a duplicate (`dup`, `F_DUPFD`): it shares the open
    /// file, hence all of them.
    pub(crate) fn snapshot(&self) -> (usize, [u64; 2]) {
        let state = self.state() & (KIND_MASK | STREAM | USER_NONBLOCK | SYS_NONBLOCK | OWNED);
        let timeouts = [
            self.read_timeout.load(Ordering::Relaxed),
            self.write_timeout.load(Ordering::Relaxed),
        ];
        (state, timeouts)
    }

    fn drop_registration(&self, fd: c_int) {
        let io = self.io.swap(std::ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: a non-null `io` is a cell from `Driver::register` (never freed), and nobody
        // waits on it: the caller is `close` after the users left, or the creation of a new
        // descriptor under this number, which no call can have waited on yet.
        if let Some(io) = unsafe { io.as_ref() } {
            driver::driver().deregister(fd, io);
        }
    }

    /// Sets or clears `flag` (one of the flag bits).
    pub(crate) fn set_flag(&self, flag: usize, on: bool) {
        if on {
            self.state.fetch_or(flag, Ordering::AcqRel);
        } else {
            self.state.fetch_and(!flag, Ordering::AcqRel);
        }
    }

    /// The timeout of `direction` (`SO_RCVTIMEO` or `SO_SNDTIMEO`).
    pub(crate) fn timeout(&self, direction: Direction) -> Option<Duration> {
        let nanos = match direction {
            Direction::Read => self.read_timeout.load(Ordering::Relaxed),
            Direction::Write => self.write_timeout.load(Ordering::Relaxed),
        };
        (nanos != 0).then(|| Duration::from_nanos(nanos))
    }

    /// Records a new timeout for `direction` (from a hooked `setsockopt`).
    pub(crate) fn set_timeout(&self, direction: Direction, dur: Option<Duration>) {
        let cell = match direction {
            Direction::Read => &self.read_timeout,
            Direction::Write => &self.write_timeout,
        };
        cell.store(nanos(dur), Ordering::Relaxed);
    }

    /// The readiness cell, if the descriptor is registered.
    #[inline]
    pub(crate) fn cell(&self) -> Option<&'static ScheduledIo> {
        // SAFETY: cells come from `Driver::register` and are never freed.
        unsafe { self.io.load(Ordering::Acquire).as_ref() }
    }

    /// The readiness cell, registering `fd` with the netpoller first if need be. `EBADF` if a
    /// close has begun: a first registration races the close's look for a cell to wake (see
    /// [`Fd::begin_close`]), so it is settled under the registration lock.
    pub(crate) fn register(&self, fd: c_int) -> std::io::Result<&'static ScheduledIo> {
        if let Some(cell) = self.cell() {
            return Ok(cell);
        }
        let _registering = REGISTERING.lock();
        if self.closing() {
            return Err(std::io::Error::from_raw_os_error(libc::EBADF));
        }
        if let Some(cell) = self.cell() {
            return Ok(cell);
        }
        let cell = driver::driver().register(fd)?;
        self.io.store(
            cell as *const ScheduledIo as *mut ScheduledIo,
            Ordering::Release,
        );
        Ok(cell)
    }

    /// Drops the registration, unless somebody waits through it (see
    /// `hook::release_registration`); whether it did.
    pub(crate) fn release_registration(&self, fd: c_int) -> bool {
        let _registering = REGISTERING.lock();
        if gate::occupied(&self.state) || self.cell().is_none() {
            return false;
        }
        self.drop_registration(fd);
        true
    }

    /// Enters the waiting part of a call, unless a close has begun (false): see `gate.rs`.
    pub(crate) fn enter(&self) -> bool {
        gate::enter(&self.state)
    }

    /// Leaves the waiting part of a call.
    pub(crate) fn leave(&self) {
        gate::leave(&self.state);
    }

    /// Whether a close has begun.
    pub(crate) fn closing(&self) -> bool {
        gate::closing(&self.state)
    }

    /// The first half of a close (`gate.rs`): marks the entry closing, wakes every coroutine
    /// waiting on the descriptor, and waits until they have left. Then deregisters the
    /// descriptor, so the caller can close it once it has [forgotten](Fd::forget) the entry.
    pub(crate) fn begin_close(&self, fd: c_int) {
        if gate::close(&self.state) {
            // Under the registration lock: a waiter registering for the first time either
            // stored its cell before (and is woken through it) or finds `CLOSING` after (and
            // does not wait).
            let cell = {
                let _registering = REGISTERING.lock();
                self.cell()
            };
            if let Some(cell) = cell {
                // A spurious readiness in both directions: wakes the waiters, and makes a
                // queueing that races this fail.
                cell.set_events(true, true, false, false);
            }
            let mut spins = 0u32;
            while gate::occupied(&self.state) {
                // They are awake and on their way out; each needs a turn on some worker.
                spins += 1;
                if spins < 64 {
                    crate::yield_now();
                } else {
                    crate::sleep(Duration::from_micros(100));
                }
            }
        }
        self.drop_registration(fd);
    }
}

/// In a forked child (from `hook::after_fork`): forgets every readiness
/// cell and every waiter count the child inherited. The cells belong to the parent's netpoller,
/// whose epoll instance the child shares: deregistering a descriptor there (`EPOLL_CTL_DEL`,
/// keyed by descriptor and open file) would take the *parent's* registration with it. And the
/// waiters counted are the parent's coroutines, which the child does not have: a close would
/// wait for them for ever. Plain stores only: the child of a multi-threaded process may call
/// nothing that takes a lock.
pub(crate) fn after_fork() {
    for page in &TABLE {
        // SAFETY: as in `get`.
        let Some(page) = (unsafe { page.load(Ordering::Acquire).as_ref() }) else {
            continue;
        };
        for entry in &page.0 {
            entry.io.store(std::ptr::null_mut(), Ordering::Relaxed);
            let state = entry.state.load(Ordering::Relaxed);
            // The kind and flags stay (the open files are the same); the count and CLOSING go.
            let kept = state & (gate::USER - 1) & !gate::CLOSING;
            entry.state.store(kept, Ordering::Relaxed);
        }
    }
}

/// Reads a socket option of type `T`.
pub(crate) fn socket_option<T: Copy>(fd: c_int, option: c_int) -> Option<T> {
    let mut value = std::mem::MaybeUninit::<T>::uninit();
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` has room for `len` bytes, and is read only if the call succeeded and
    // filled all of them.
    unsafe {
        let r = libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            value.as_mut_ptr().cast(),
            &mut len,
        );
        (r == 0 && len as usize == std::mem::size_of::<T>()).then(|| value.assume_init())
    }
}
