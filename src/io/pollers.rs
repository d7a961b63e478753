//! Who polls the network: the hand-over between the workers and the poller thread.
//!
//! A thread blocked in `epoll_wait` is woken by the kernel for every event. While *every*
//! worker is awake, the workers poll without blocking at their scheduling points, and the
//! poller thread does not block in `epoll_wait` (it would only be woken, a context switch per
//! packet, to do what the workers do anyway, on cores they already fill); it parks instead.
//! As soon as one worker sleeps, or none exists, the poller blocks in `epoll_wait`: a worker
//! that is awake may be stuck in a long coroutine or a system call and poll nothing for a long
//! time, and a sleeping one should be woken for an event without delay (Go's rule: an idle M
//! blocks in the netpoller). [`Pollers`] counts the workers awake and asleep, across every
//! runtime (the netpoller is process-wide), and says which mode the poller is in.
//!
//! **No event is lost in the hand-over.** The kernel keeps an event in the epoll instance's
//! ready list until an `epoll_wait` takes it, so the question is only whether somebody will
//! call `epoll_wait` after it arrived:
//!
//! * While the poller parks, every worker is awake and polls at its next scheduling point.
//! * A worker that goes to sleep ([`Pollers::worker_asleep`]) or exits
//!   ([`Pollers::worker_exited`]) after its last poll, and so makes the poller's mode change,
//!   unparks the poller thread, which goes back to its loop and blocks in `epoll_wait`.
//! * The poller reads the counts after every wake-up ([`Pollers::poller_may_block`]). The
//!   counts and the unpark are ordered by the one atomic read-modify-write of the counts and by
//!   the park token, so a poller that read "all awake" just before a worker went to sleep finds
//!   that worker's unpark token and goes round again.
//!
//! The poller also parks with a timeout (its backstop), which the argument does not need.
//!
//! Modelled in `loom-tests/tests/io_pollers.rs`.

use crate::loom::{AtomicUsize, Ordering};

/// One worker asleep, in the upper half of the count word (the lower half counts the awake).
const ASLEEP: usize = 1 << (usize::BITS / 2);
const AWAKE: usize = 1;
const AWAKE_MASK: usize = ASLEEP - 1;

/// The workers awake and asleep, across every runtime, in one word.
#[derive(Debug, Default)]
pub struct Pollers {
    counts: AtomicUsize,
}

impl Pollers {
    /// No worker yet.
    pub fn new() -> Pollers {
        Pollers::default()
    }

    /// A worker started: it is awake and will poll at its scheduling points.
    pub fn worker_started(&self) {
        self.counts.fetch_add(AWAKE, Ordering::SeqCst);
    }

    /// A worker goes to sleep, after polling one last time. Returns true if the poller must
    /// be unparked: it was parked because every worker was awake.
    #[must_use = "a worker that changes the poller's mode must unpark it"]
    pub fn worker_asleep(&self) -> bool {
        // Awake down, asleep up, in one step.
        let before = self.counts.fetch_add(ASLEEP - AWAKE, Ordering::SeqCst);
        before < ASLEEP // nobody was asleep
    }

    /// A sleeping worker woke up.
    pub fn worker_woke(&self) {
        self.counts.fetch_sub(ASLEEP - AWAKE, Ordering::SeqCst);
    }

    /// A worker exits (awake). Returns true if the poller must be unparked: it was the last
    /// worker, and nobody was asleep.
    #[must_use = "a worker that changes the poller's mode must unpark it"]
    pub fn worker_exited(&self) -> bool {
        self.counts.fetch_sub(AWAKE, Ordering::SeqCst) == AWAKE
    }

    /// The poller thread's question after each wake-up: may it block in `epoll_wait` (a
    /// worker sleeps, or there is none), or should it park and leave polling to the workers?
    pub fn poller_may_block(&self) -> bool {
        let counts = self.counts.load(Ordering::SeqCst);
        counts >= ASLEEP || counts & AWAKE_MASK == 0
    }
}
