//! The netpoller: one thread that owns `mio::Poll` and turns readiness events and expired
//! timers into wake-ups, and the workers' share of the same job.
//!
//! It is process-wide, like Go's, and started on first use. Any thread registers descriptors
//! through the shared `mio::Registry` (registration works while a poll is blocked). The poller
//! thread never runs a coroutine: a wake-up is an unpark, which queues the coroutine on its
//! runtime and wakes an idle processor if there is one.
//!
//! # Who polls
//!
//! A thread blocked in `epoll_wait` is woken by the kernel for every event, which on a busy
//! server means a context switch per packet, on a machine whose cores the workers already fill.
//! So while every worker is awake, the *workers* harvest events themselves, with a
//! non-blocking `epoll_wait`, at the points where Go's `findRunnable` polls:
//!
//! * every 61st scheduling tick (with the global-queue check), so a busy worker still sees the
//!   network;
//! * when the worker has run out of work, before it spins;
//! * when the spin ends, just before it goes to sleep;
//!
//! and the poller thread sleeps on its parker, waking once per [`BACKSTOP`] (or for the next
//! timer) to poll without blocking itself. When no worker polls (all asleep, or stuck in long
//! coroutines, which the monitor reports), the poller blocks in `epoll_wait` again.
//! `pollers.rs` counts the workers, across every runtime, and argues the hand-over.
//!
//! Several threads may be in `epoll_wait` on the one instance at once: the kernel hands each
//! edge-triggered event to one of them. The poller thread's own wake-up, an eventfd, is the one
//! *level-triggered* registration: a worker's poll that sees it leaves it there (it stays ready
//! until the poller reads it, and the kernel wakes the blocked poller for it all the same). A
//! first version kept the eventfd in a second, outer instance that also held this one; the
//! nested wake-up that costs on every event took `sock_def_readable` from 8.8% to 13.8% of
//! tcp_echo's samples (tokio's: 8.4%).
//!
//! # Readiness cells are never freed
//!
//! Each registered descriptor has a [`ScheduledIo`] cell, and the address of the cell is the
//! event's token. With several threads polling, an event taken by one of them just before its
//! descriptor is deregistered may be handled just after, so the cell it names must still be
//! there. As in Go (`pollcache`), cells are allocated once, never freed, and reused: a
//! deregistered cell goes back to a free list. A late event for a cell that now serves another
//! descriptor only makes that descriptor look ready (or wakes its waiters): a spurious
//! readiness, which the I/O loop already handles, since an attempt that would block clears it.
//! Memory stays at the peak number of registered descriptors (about 100 bytes each).

use super::pollers::Pollers;
use super::readiness::ScheduledIo;
use crate::join::Waiter;
use mio::unix::SourceFd;
use mio::{Interest, Poll, Registry, Token};
use parking_lot::Mutex;
use std::io::{self, Write as _};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, OnceLock};
use std::thread::Thread;
use std::time::Duration;

/// Events taken per `epoll_wait` by the poller thread.
const POLLER_EVENTS: usize = 1024;
/// Events taken per `epoll_wait` by a worker: a worker harvests often, and each event it takes
/// becomes work it queues locally.
const WORKER_EVENTS: usize = 128;

/// How long the poller thread leaves the network to the workers before polling itself.
const BACKSTOP: Duration = Duration::from_millis(10);

/// The longest the poller blocks in one wait, in milliseconds, even with nothing to wait for:
/// a safety net (a lost wake-up anywhere, ours or the kernel's, then costs a second, not a
/// hang), at the price of one wake-up a second when idle.
const BLOCK_AT_MOST: libc::c_int = 1000;

/// The workers awake, asleep and excused, across every runtime (`pollers.rs`).
static POLLERS: LazyLock<Pollers> = LazyLock::new(Pollers::new);

/// Descriptors registered now: workers skip their polls (a system call each) while there are
/// none.
static REGISTERED: AtomicUsize = AtomicUsize::new(0);

/// The shared half of the netpoller.
pub(crate) struct Driver {
    registry: Registry,
    /// The epoll instance the descriptors are registered with (`mio`'s), which the workers
    /// poll too.
    epoll: RawFd,
    /// An eventfd that [`Driver::unpark`] writes to interrupt the poller's blocking wait,
    /// registered level-triggered under [`WAKE`].
    wake: RawFd,
    /// The poller thread, unparked when it should look at the workers or its timers again.
    thread: OnceLock<Thread>,
    /// Cells free for reuse (see the module docs: cells are never freed).
    free: Mutex<Vec<&'static ScheduledIo>>,
}

static DRIVER: OnceLock<&'static Driver> = OnceLock::new();

/// The netpoller, started on first use.
pub(crate) fn driver() -> &'static Driver {
    DRIVER.get_or_init(|| {
        let poll = Poll::new().expect("corun: failed to create the netpoller's epoll instance");
        let wake = wake_fd(poll.as_raw_fd())
            .expect("corun: failed to create the netpoller's wake-up eventfd");
        let driver: &'static Driver = Box::leak(Box::new(Driver {
            registry: poll
                .registry()
                .try_clone()
                .expect("corun: failed to share the netpoller's registry"),
            epoll: poll.as_raw_fd(),
            wake,
            thread: OnceLock::new(),
            free: Mutex::new(Vec::new()),
        }));
        let handle = std::thread::Builder::new()
            .name("corun-netpoll".into())
            .spawn(move || run(poll, driver))
            .expect("corun: failed to start the netpoller thread");
        let _ = driver.thread.set(handle.thread().clone());
        driver
    })
}

/// The token of the poller's eventfd (a cell's address is never 0).
const WAKE: u64 = 0;

/// Creates the poller's wake-up eventfd and registers it, level-triggered, with `epoll` (never
/// closed: the driver lives as long as the process).
fn wake_fd(epoll: RawFd) -> io::Result<RawFd> {
    // SAFETY: plain system calls on descriptors we own; `event` is a valid, initialised struct
    // that `epoll_ctl` only reads.
    unsafe {
        let wake = libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK);
        if wake < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: WAKE,
        };
        if libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, wake, &mut event) < 0 {
            let e = io::Error::last_os_error();
            libc::close(wake);
            return Err(e);
        }
        Ok(wake)
    }
}

impl Driver {
    /// Registers `fd` for both directions, edge-triggered, once for its lifetime; returns its
    /// readiness cell. The caller must [`deregister`](Driver::deregister) it before closing it.
    pub(crate) fn register(&self, fd: RawFd) -> io::Result<&'static ScheduledIo> {
        let io = match self.free.lock().pop() {
            // A late event for its last descriptor may have set bits since it was freed.
            Some(io) => {
                io.reset();
                io
            }
            // Never freed: see the module docs.
            None => Box::leak(Box::new(ScheduledIo::new())),
        };
        let token = Token(io as *const ScheduledIo as usize);
        let registered = self.registry.register(
            &mut SourceFd(&fd),
            token,
            Interest::READABLE | Interest::WRITABLE,
        );
        if let Err(e) = registered {
            self.free.lock().push(io);
            return Err(e);
        }
        REGISTERED.fetch_add(1, Ordering::Relaxed);
        Ok(io)
    }

    /// Deregisters `fd` and puts its cell back for reuse. Nobody may be waiting on the cell
    /// (its owner is done with it).
    pub(crate) fn deregister(&self, fd: RawFd, io: &'static ScheduledIo) {
        // It can only fail if the descriptor was closed already (the kernel then removed it
        // itself, unless a duplicate keeps it open, which is the owner's bug to own).
        let _ = self.registry.deregister(&mut SourceFd(&fd));
        io.reset();
        self.free.lock().push(io);
        REGISTERED.fetch_sub(1, Ordering::Relaxed);
    }

    /// Makes the poller thread look at its timers again, whether it is blocked in
    /// `epoll_wait` (the eventfd) or parked while the workers poll (the parker).
    pub(crate) fn unpark(&self) {
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid `u64` to the driver's eventfd. It fails only if
        // the counter is full (EAGAIN), i.e. a wake-up is pending anyway.
        unsafe { libc::write(self.wake, (&one as *const u64).cast(), 8) };
    }

    /// Takes the events ready now, without blocking, and wakes their waiters; returns how many
    /// there were. For workers (see the module docs).
    pub(crate) fn harvest(&self) -> usize {
        if REGISTERED.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        let mut events = [MaybeUninit::uninit(); WORKER_EVENTS];
        poll(self.epoll, &mut events, 0, None)
    }
}

/// The running netpoller, if one was started (nobody harvests before the first registration).
#[inline]
pub(crate) fn get() -> Option<&'static Driver> {
    DRIVER.get().copied()
}

/// A worker thread started (see `pollers.rs`). Its exit is reported by dropping the guard,
/// so that a worker that dies of a panic is not counted as awake for ever.
pub(crate) fn worker_started() -> WorkerExit {
    POLLERS.worker_started();
    WorkerExit(())
}

/// Reports its worker's exit when dropped (see [`worker_started`]).
pub(crate) struct WorkerExit(());

impl Drop for WorkerExit {
    fn drop(&mut self) {
        if POLLERS.worker_exited() {
            unpark_poller();
        }
    }
}

/// A worker thread goes to sleep, having harvested just before: if no other worker polls, the
/// poller thread takes over blocking in `epoll_wait` (`pollers.rs`).
pub(crate) fn worker_asleep() {
    if POLLERS.worker_asleep() {
        unpark_poller();
    }
}

/// A sleeping worker thread woke up.
pub(crate) fn worker_woke() {
    POLLERS.worker_woke();
}

/// The monitor found a worker stuck in one coroutine: it polls nothing meanwhile, so if it was
/// the only one polling, the poller thread takes over blocking in `epoll_wait`.
pub(crate) fn worker_excused() {
    if POLLERS.worker_excused() {
        unpark_poller();
    }
}

/// An excused worker scheduled again.
pub(crate) fn worker_unexcused() {
    POLLERS.worker_unexcused();
}

/// Sends the poller thread round its loop (it re-reads the counts), if it runs.
fn unpark_poller() {
    if let Some(thread) = get().and_then(|d| d.thread.get()) {
        thread.unpark();
    }
}

/// One `epoll_wait` on `epoll` (timeout in milliseconds, -1: none), then the readiness of every
/// cell an event names is set, which wakes its waiters. The poller's wake-up event is consumed
/// by the poller (`wake`: its eventfd) and left alone by anyone else. Returns the number of
/// events.
fn poll(
    epoll: RawFd,
    events: &mut [MaybeUninit<libc::epoll_event>],
    timeout_ms: libc::c_int,
    wake: Option<RawFd>,
) -> usize {
    let capacity = libc::c_int::try_from(events.len()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `events` is a valid, exclusively borrowed buffer of `capacity` entries, which
    // `epoll_wait` only writes; `epoll` is the driver's epoll instance, which is never closed
    // (the driver is leaked).
    let n = unsafe { libc::epoll_wait(epoll, events.as_mut_ptr().cast(), capacity, timeout_ms) };
    let Ok(n) = usize::try_from(n) else {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            // Cannot happen with a valid instance and buffer; do not spin if it does.
            let _ = writeln!(io::stderr(), "corun: netpoller: epoll_wait failed: {e}");
            std::thread::sleep(Duration::from_millis(1));
        }
        return 0;
    };
    for event in &events[..n] {
        // SAFETY: `epoll_wait` wrote the first `n` entries.
        let event = unsafe { event.assume_init() };
        let (flags, token) = (event.events as libc::c_int, event.u64);
        if token == WAKE {
            if let Some(wake) = wake {
                let mut count: u64 = 0;
                // SAFETY: reads 8 bytes into a valid `u64` from the non-blocking eventfd.
                unsafe { libc::read(wake, (&mut count as *mut u64).cast(), 8) };
            }
            continue;
        }
        // SAFETY: every other token is the address of a cell made by `Driver::register`, and
        // cells are never freed (module docs), so the address is valid even if the
        // descriptor was deregistered since the event was queued.
        let io = unsafe { &*(token as usize as *const ScheduledIo) };
        // Errors make both directions ready (the next attempt reports them); a hang-up or the
        // peer's shutdown also marks them closed, which outlasts a short read (`clear_drained`).
        let failed = flags & libc::EPOLLERR != 0;
        let hung_up = flags & libc::EPOLLHUP != 0;
        io.set_events(
            failed || flags & (libc::EPOLLIN | libc::EPOLLPRI) != 0,
            failed || flags & libc::EPOLLOUT != 0,
            hung_up || flags & libc::EPOLLRDHUP != 0,
            hung_up,
        );
    }
    n
}

/// The poller thread (see the module docs for when it blocks and when it leaves polling to the
/// workers).
fn run(owner: Poll, driver: &'static Driver) {
    let _owner = owner; // the epoll instance lives as long as the process
    let mut events = vec![MaybeUninit::uninit(); POLLER_EVENTS];
    let mut fired: Vec<Waiter> = Vec::new();
    loop {
        let timeout = crate::time::process(&mut fired);
        if POLLERS.poller_may_block() {
            // Never longer than a second: a safety net, not a need (see `BLOCK_AT_MOST`).
            let ms = timeout.map_or(BLOCK_AT_MOST, |t| {
                // Rounded up: the wheel's tick must have begun when we look again.
                let ms = t.as_millis() + u128::from(!t.subsec_nanos().is_multiple_of(1_000_000));
                libc::c_int::try_from(ms).map_or(BLOCK_AT_MOST, |ms| ms.min(BLOCK_AT_MOST))
            });
            poll(driver.epoll, &mut events, ms, Some(driver.wake));
        } else {
            // Unparked when no worker polls any more or a timer is due sooner.
            std::thread::park_timeout(timeout.map_or(BACKSTOP, |t| t.min(BACKSTOP)));
            poll(driver.epoll, &mut events, 0, Some(driver.wake));
        }
    }
}
