//! Who polls the network: the hand-over between awake workers and the poller thread.
//!
//! A thread blocked in `epoll_wait` is woken by the kernel for every event. While workers are
//! awake they poll without blocking at their scheduling points, so the poller thread does not
//! block in `epoll_wait` then (it would only be woken, a context switch per packet, to do what
//! the workers do anyway); it parks instead. While no worker is awake, it blocks in
//! `epoll_wait`. [`Pollers`] counts the awake workers and says which mode the poller is in.
//!
//! **No event is lost in the hand-over.** The kernel keeps an event in the epoll instance's
//! ready list until an `epoll_wait` takes it, so the question is only whether somebody will
//! call `epoll_wait` after it arrived:
//!
//! * A worker polls, then announces it sleeps ([`Pollers::worker_asleep`]); if it was the last
//!   awake, it unparks the poller thread. An event that arrived after its last poll is taken by
//!   another awake worker, or (none left) by the poller, which that unpark sends back to its
//!   loop.
//! * The poller reads the count after every wake-up ([`Pollers::poller_may_block`]) and then
//!   either blocks in `epoll_wait` (none awake: any event wakes it) or parks (some awake: they
//!   poll). The count and the unpark are ordered by the one atomic read-modify-write of the
//!   count and the park token, so a poller that read "some awake" just before the last worker
//!   went to sleep finds that worker's unpark token and goes round again.
//!
//! The poller also parks with a timeout (its backstop, for workers stuck in long coroutines),
//! which the argument does not need.
//!
//! Modelled in `loom-tests/tests/io_pollers.rs`.

use crate::loom::{AtomicUsize, Ordering};

/// The number of awake workers, across every runtime (the netpoller is process-wide).
#[derive(Debug, Default)]
pub struct Pollers {
    awake: AtomicUsize,
}

impl Pollers {
    /// No worker awake.
    pub fn new() -> Pollers {
        Pollers::default()
    }

    /// A worker woke up (or started): it will poll at its scheduling points from now on.
    pub fn worker_awake(&self) {
        self.awake.fetch_add(1, Ordering::SeqCst);
    }

    /// A worker goes to sleep (or exits), after polling one last time. Returns true if it was
    /// the last one awake: the caller must then unpark the poller thread, which takes over.
    #[must_use = "the last worker to sleep must unpark the poller"]
    pub fn worker_asleep(&self) -> bool {
        self.awake.fetch_sub(1, Ordering::SeqCst) == 1
    }

    /// The poller thread's question after each wake-up: may it block in `epoll_wait` (no
    /// worker awake), or should it park and leave polling to the workers?
    pub fn poller_may_block(&self) -> bool {
        self.awake.load(Ordering::SeqCst) == 0
    }
}
