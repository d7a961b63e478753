//! Coordinating idle workers: who spins, who sleeps, who gets woken.
//!
//! See DESIGN.md, "Idle workers and wake-ups" (Go's proc.go "Worker thread parking/unparking",
//! tokio's `idle.rs`). The invariants:
//!
//! 1. At most half of the busy workers spin at once ([`Idle::try_start_spinning`]).
//! 2. A submitter wakes a sleeper only when no worker is spinning and one is asleep
//!    ([`Idle::worker_to_wake`]); the woken worker starts out counted as spinning, so a burst of
//!    submissions wakes one worker, not one per item.
//! 3. No lost wake-ups. A submitter publishes its work, issues a SeqCst fence, then reads the
//!    counters. A worker going to sleep registers itself as a sleeper (and stops counting as a
//!    spinner), issues a SeqCst fence, then re-scans every queue before it blocks. Between the two
//!    fences one of them comes first in the single SeqCst order: either the worker's re-scan sees
//!    the work, or the submitter sees the sleeper (and no spinner) and wakes it. A spinner that
//!    stops spinning without finding work goes through the same registration, so work a submitter
//!    left to "the spinner" is found by that spinner's re-scan.
//! 4. The last spinner to find work wakes another worker ([`Idle::stop_spinning`] returns `true`),
//!    because submitters may have skipped waking anyone while it was spinning.
//!
//! Modelled in `loom-tests/tests/idle.rs`.

use crate::loom::{fence, AtomicUsize, Mutex, Ordering};

/// Shared bookkeeping of idle workers. Public only so `loom-tests/` can model it.
#[derive(Debug)]
pub struct Idle {
    /// Workers currently spinning (looking for work without sleeping).
    num_spinning: AtomicUsize,
    /// Workers asleep; always equal to `sleepers.len()` but readable without the lock.
    num_sleeping: AtomicUsize,
    /// Indices of the sleeping workers, most recent last.
    sleepers: Mutex<Vec<usize>>,
    /// How many workers take part.
    num_workers: usize,
}

impl Idle {
    /// Bookkeeping for `num_workers` workers, all busy.
    pub fn new(num_workers: usize) -> Self {
        Idle {
            num_spinning: AtomicUsize::new(0),
            num_sleeping: AtomicUsize::new(0),
            sleepers: Mutex::new(Vec::with_capacity(num_workers)),
            num_workers,
        }
    }

    /// Called after new work was published. Returns the worker the caller must unpark, if any;
    /// that worker now counts as spinning.
    pub fn worker_to_wake(&self) -> Option<usize> {
        // Pairs with the fence in `sleep`: orders the publication of the work before the reads.
        fence(Ordering::SeqCst);
        if !self.should_wake() {
            return None;
        }
        let mut sleepers = self.sleepers.lock();
        if !self.should_wake() {
            return None;
        }
        let worker = sleepers.pop()?;
        self.num_sleeping.fetch_sub(1, Ordering::SeqCst);
        self.num_spinning.fetch_add(1, Ordering::SeqCst);
        Some(worker)
    }

    fn should_wake(&self) -> bool {
        self.num_spinning.load(Ordering::SeqCst) == 0
            && self.num_sleeping.load(Ordering::SeqCst) > 0
    }

    /// A worker out of local work asks to spin; refused when half the busy workers already do.
    pub fn try_start_spinning(&self) -> bool {
        let spinning = self.num_spinning.load(Ordering::SeqCst);
        let busy = self.num_workers - self.num_sleeping.load(Ordering::SeqCst);
        if 2 * spinning >= busy.max(1) {
            return false;
        }
        self.num_spinning.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// A spinning worker found work (or gives up). Returns `true` when it was the last spinner,
    /// in which case the caller should wake another worker if work remains.
    pub fn stop_spinning(&self) -> bool {
        self.num_spinning.fetch_sub(1, Ordering::SeqCst) == 1
    }

    /// Registers `worker` as asleep (it stops spinning if it was). The caller must then re-scan
    /// every queue, and either [`Idle::cancel_sleep`] when it finds work or block until woken.
    pub fn sleep(&self, worker: usize, was_spinning: bool) {
        let mut sleepers = self.sleepers.lock();
        if was_spinning {
            self.num_spinning.fetch_sub(1, Ordering::SeqCst);
        }
        sleepers.push(worker);
        self.num_sleeping.fetch_add(1, Ordering::SeqCst);
        drop(sleepers);
        // Pairs with the fence in `worker_to_wake`; the caller's re-scan comes after it.
        fence(Ordering::SeqCst);
    }

    /// The worker found work after registering as asleep (or was woken and wants to know its
    /// status). Removes it from the sleepers if it is still there, returning `true`; `false`
    /// means a submitter already took it out and counted it as spinning (its unpark token is
    /// set, so its next block returns at once).
    pub fn cancel_sleep(&self, worker: usize, was_spinning: bool) -> bool {
        let mut sleepers = self.sleepers.lock();
        match sleepers.iter().position(|&w| w == worker) {
            Some(i) => {
                sleepers.swap_remove(i);
                self.num_sleeping.fetch_sub(1, Ordering::SeqCst);
                if was_spinning {
                    // Go's findRunnable: a spinner whose last re-check finds work spins again,
                    // so that taking it wakes another worker for the rest (rule 4).
                    self.num_spinning.fetch_add(1, Ordering::SeqCst);
                }
                true
            }
            None => false,
        }
    }

    /// The whole of a worker's going to sleep, in one place so the loom model runs this very
    /// code: register as asleep, re-scan with `has_work` (after the fence), and either take
    /// ourselves back out or block with `park` until a waker takes us out (or `is_shutdown`).
    /// Returns whether the worker now counts as spinning: when its re-scan found work after it
    /// had been spinning (it spins again, Go's `findRunnable`, so taking the work wakes another
    /// worker for the rest), or when a submitter or the shutdown took it out of the sleepers.
    pub fn sleep_until_woken(
        &self,
        worker: usize,
        was_spinning: bool,
        has_work: impl Fn() -> bool,
        is_shutdown: impl Fn() -> bool,
        park: impl Fn(),
    ) -> bool {
        self.sleep(worker, was_spinning);
        if has_work() || is_shutdown() {
            return !self.cancel_sleep(worker, was_spinning) || was_spinning;
        }
        loop {
            park();
            if is_shutdown() {
                return !self.cancel_sleep(worker, false);
            }
            if !self.is_sleeping(worker) {
                // Taken out by `worker_to_wake`, which counted us as spinning.
                return true;
            }
        }
    }

    /// Whether `worker` is registered as asleep.
    pub fn is_sleeping(&self, worker: usize) -> bool {
        self.sleepers.lock().contains(&worker)
    }

    // Used by the loom models' assertions.
    #[cfg_attr(not(loom), allow(dead_code))]
    /// Spinners right now (a racy reading, for the monitor and statistics).
    pub fn num_spinning(&self) -> usize {
        self.num_spinning.load(Ordering::Relaxed)
    }

    /// Sleepers right now (a racy reading).
    #[cfg_attr(not(loom), allow(dead_code))]
    pub fn num_sleeping(&self) -> usize {
        self.num_sleeping.load(Ordering::Relaxed)
    }

    /// Takes every sleeper out of the list (shutdown), returning their indices.
    pub fn wake_all(&self) -> Vec<usize> {
        let mut sleepers = self.sleepers.lock();
        let woken = std::mem::take(&mut *sleepers);
        // Like `worker_to_wake`: a worker taken out of the sleepers counts as spinning until it
        // stops, which is what it assumes when it finds itself no longer registered.
        self.num_sleeping.fetch_sub(woken.len(), Ordering::SeqCst);
        self.num_spinning.fetch_add(woken.len(), Ordering::SeqCst);
        woken
    }
}
