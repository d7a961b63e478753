//! Who polls the network: the hand-over between the workers and the poller thread.
//!
//! A thread blocked in `epoll_wait` is woken by the kernel for every event. While a worker is
//! awake and scheduling, it polls without blocking at its scheduling points, so the poller
//! thread does not block in `epoll_wait` then (it would only be woken, a context switch per
//! packet, to do what that worker does anyway, on cores the workers already fill); it parks
//! instead. When no worker polls (all asleep, none started, or every awake one *excused*), the
//! poller blocks in `epoll_wait`.
//!
//! A worker is excused while it is stuck in one coroutine: awake, but polling nothing. The
//! runtime's monitor, which already watches for such workers (10 ms in one coroutine), excuses
//! them, and a worker takes its excuse back when the coroutine switches out. Without it, one
//! coroutine computing for a second would leave the events of every other (sleeping) worker, in
//! every runtime, to the poller's backstop; with it, they wait at most until the monitor notices.
//! (Go's rule is stricter, an idle M always blocks in the netpoller; it cost http_hello, with
//! its load generator on the same two cores, 16% here, the poller taking each event and waking
//! a worker for it that an awake worker would have found in microseconds.)
//!
//! [`Pollers`] keeps the three counts (awake, asleep, excused) in one word, across every
//! runtime (the netpoller is process-wide), and says which mode the poller is in.
//!
//! **No event is lost in the hand-over.** The kernel keeps an event in the epoll instance's
//! ready list until an `epoll_wait` takes it, so the question is only whether somebody will
//! call `epoll_wait` after it arrived:
//!
//! * While the poller parks, some worker is awake, not excused, and polls at its next
//!   scheduling point.
//! * A change that leaves no such worker (the last one goes to sleep after its last poll,
//!   exits, or is excused) is made by one read-modify-write of the word, which tells its maker
//!   that the mode changed; the maker then unparks the poller thread, which goes back to its
//!   loop and blocks in `epoll_wait`.
//! * The poller reads the word after every wake-up ([`Pollers::poller_may_block`]). The word
//!   and the park token order the two sides, so a poller that read "someone polls" just
//!   before that changed finds the unpark token and goes round again.
//!
//! The poller also parks with a timeout (its backstop), which the argument does not need.
//!
//! Modelled in `loom-tests/tests/io_pollers.rs`.

use crate::loom::{AtomicUsize, Ordering};

/// Field width: 21 bits each for the awake, asleep and excused counts.
const FIELD: u32 = 21;
const AWAKE: usize = 1;
const ASLEEP: usize = 1 << FIELD;
const EXCUSED: usize = 1 << (2 * FIELD);
const MASK: usize = (1 << FIELD) - 1;

/// The workers awake, asleep and excused, across every runtime, in one word.
#[derive(Debug, Default)]
pub struct Pollers {
    counts: AtomicUsize,
}

/// Whether the poller may block, given the counts: no worker is awake without an excuse.
fn may_block(counts: usize) -> bool {
    let awake = counts & MASK;
    let excused = (counts >> (2 * FIELD)) & MASK;
    awake <= excused
}

impl Pollers {
    /// No worker yet.
    pub fn new() -> Pollers {
        Pollers::default()
    }

    /// Applies `add` (wrapping: a subtraction is the addition of its negation) and returns
    /// whether the poller must be unparked: it may block now and could not before.
    fn change(&self, add: usize) -> bool {
        let before = self.counts.fetch_add(add, Ordering::SeqCst);
        !may_block(before) && may_block(before.wrapping_add(add))
    }

    /// A worker started: it is awake and will poll at its scheduling points.
    pub fn worker_started(&self) {
        self.counts.fetch_add(AWAKE, Ordering::SeqCst);
    }

    /// A worker goes to sleep, after polling one last time. Returns true if the caller must
    /// unpark the poller thread (see the module docs).
    #[must_use = "a worker that changes the poller's mode must unpark it"]
    pub fn worker_asleep(&self) -> bool {
        self.change(ASLEEP.wrapping_sub(AWAKE))
    }

    /// A sleeping worker woke up.
    pub fn worker_woke(&self) {
        self.counts
            .fetch_add(AWAKE.wrapping_sub(ASLEEP), Ordering::SeqCst);
    }

    /// A worker exits (awake). Returns true if the caller must unpark the poller thread.
    #[must_use = "a worker that changes the poller's mode must unpark it"]
    pub fn worker_exited(&self) -> bool {
        self.change(AWAKE.wrapping_neg())
    }

    /// The monitor excuses a worker stuck in one coroutine (it polls nothing until the
    /// coroutine switches out). Returns true if the caller must unpark the poller thread.
    #[must_use = "a change of the poller's mode must unpark it"]
    pub fn worker_excused(&self) -> bool {
        self.change(EXCUSED)
    }

    /// An excused worker scheduled again (its coroutine switched out): it polls again.
    pub fn worker_unexcused(&self) {
        self.counts
            .fetch_add(EXCUSED.wrapping_neg(), Ordering::SeqCst);
    }

    /// The poller thread's question after each wake-up: may it block in `epoll_wait` (no
    /// worker awake without an excuse), or should it park and leave polling to the workers?
    pub fn poller_may_block(&self) -> bool {
        may_block(self.counts.load(Ordering::SeqCst))
    }
}
