//! The netpoller: one thread that owns `mio::Poll`, blocks in `epoll_wait`, and turns readiness
//! events and expired timers into wake-ups.
//!
//! It is process-wide, like Go's, and started on first use. Any thread registers descriptors
//! through the shared `mio::Registry` (registration works while `poll` is blocked). The thread
//! never runs a coroutine: a wake-up is an unpark, which puts the coroutine on its runtime's
//! global queue and wakes an idle processor if there is one.
//!
//! Each registered descriptor has a [`ScheduledIo`] cell, and the address of the cell is the
//! event's token. A token is a raw pointer, so the cell must outlive every event that can name
//! it. **Rule:** a deregistered cell is not freed by its owner but handed to the poller
//! (`released`), which frees it only *after* handling the events of the poll in progress. Any
//! later poll began after the descriptor was deregistered (the owner deregisters, then hands
//! over; the poller frees, then polls again), so no later event names it.
//!
//! The loop: fire due timers (they say how long to block), poll, set the readiness of every
//! cell named by an event (which wakes its waiters), free the released cells.

use super::readiness::ScheduledIo;
use crate::join::Waiter;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use parking_lot::Mutex;
use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, OnceLock};

/// The token of the poller's own waker (a cell's address is never 0).
const WAKER: Token = Token(0);

/// Released cells at which the poller is woken to free them (otherwise they wait for the next
/// event or timer: a batch, not a wake per close).
const RELEASE_BATCH: usize = 256;

/// The shared half of the netpoller.
pub(crate) struct Driver {
    registry: Registry,
    waker: Waker,
    /// Cells deregistered since the poller last freed them (see the module docs).
    released: Mutex<Vec<Arc<ScheduledIo>>>,
}

/// The netpoller, started on first use.
pub(crate) fn driver() -> &'static Driver {
    static DRIVER: OnceLock<&'static Driver> = OnceLock::new();
    DRIVER.get_or_init(|| {
        let poll = Poll::new().expect("corun: failed to create the netpoller's epoll instance");
        let driver: &'static Driver = Box::leak(Box::new(Driver {
            registry: poll
                .registry()
                .try_clone()
                .expect("corun: failed to share the netpoller's registry"),
            waker: Waker::new(poll.registry(), WAKER)
                .expect("corun: failed to create the netpoller's waker"),
            released: Mutex::new(Vec::new()),
        }));
        std::thread::Builder::new()
            .name("corun-netpoll".into())
            .spawn(move || run(poll, driver))
            .expect("corun: failed to start the netpoller thread");
        driver
    })
}

impl Driver {
    /// Registers `fd` for both directions, edge-triggered, once for its lifetime; returns its
    /// readiness cell. The caller must [`deregister`](Driver::deregister) it before closing it.
    pub(crate) fn register(&self, fd: RawFd) -> io::Result<Arc<ScheduledIo>> {
        let io = Arc::new(ScheduledIo::new());
        let token = Token(Arc::as_ptr(&io) as usize);
        self.registry.register(
            &mut SourceFd(&fd),
            token,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        Ok(io)
    }

    /// Deregisters `fd` and hands its cell to the poller to free (see the module docs).
    pub(crate) fn deregister(&self, fd: RawFd, io: Arc<ScheduledIo>) {
        // It can only fail if the descriptor was closed already (the kernel then removed it
        // itself, unless a duplicate keeps it open, which is the owner's bug to own).
        let _ = self.registry.deregister(&mut SourceFd(&fd));
        let mut released = self.released.lock();
        released.push(io);
        let wake = released.len() == RELEASE_BATCH;
        drop(released);
        if wake {
            self.unpark();
        }
    }

    /// Makes the poller return from `poll` and look at its timers again.
    pub(crate) fn unpark(&self) {
        if let Err(e) = self.waker.wake() {
            // An eventfd write fails only if its counter is full, i.e. a wake is pending anyway.
            debug_assert!(false, "corun: waking the netpoller failed: {e}");
        }
    }
}

fn run(mut poll: Poll, driver: &'static Driver) {
    let mut events = Events::with_capacity(1024);
    let mut fired: Vec<Waiter> = Vec::new();
    loop {
        let timeout = crate::time::process(&mut fired);
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                // Cannot happen with a valid epoll descriptor and buffer; do not spin if it does.
                eprintln!("corun: netpoller: epoll_wait failed: {e}");
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            continue;
        }
        for event in events.iter() {
            if event.token() == WAKER {
                continue;
            }
            // SAFETY: every other token is the address of a cell registered by
            // `Driver::register`, which is kept alive by its owner until it is deregistered, and
            // by `released` after that until the loop below, i.e. until the events of this poll
            // are handled (module docs: no later poll can name it).
            let io = unsafe { &*(event.token().0 as *const ScheduledIo) };
            // Errors and hang-ups make both directions "ready": the next attempt reports them.
            let failed = event.is_error();
            io.set_ready(
                failed || event.is_readable() || event.is_read_closed(),
                failed || event.is_writable() || event.is_write_closed(),
            );
        }
        let released = std::mem::take(&mut *driver.released.lock());
        drop(released);
    }
}
