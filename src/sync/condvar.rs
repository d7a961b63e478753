//! Condition variables on the same wait queue as the mutex.
//!
//! `wait` enqueues the caller *before* unlocking the mutex. A notifier that changed the
//! condition did so holding the mutex (the usual discipline), so it cannot notify between our
//! check of the condition and our enqueue: no lost notification. Spurious wake-ups are possible,
//! as with every condvar; wait in a loop.
//!
//! Timed waits (`wait_for`, `wait_until`) use the deadline service (`deadline.rs`) until the
//! timer wheel lands.

use super::mutex::MutexGuard;
use super::wait_queue::{cancellation_pending, remove, uncancellable, WaitNode, WaitQueue, WOKEN};
use std::fmt;
use std::time::{Duration, Instant};

/// Whether a timed wait on a [`Condvar`] ended because its time ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// Whether the wait timed out (rather than being notified).
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

/// A condition variable for coroutines and threads (no poisoning), used with
/// [`Mutex`](super::Mutex).
///
/// ```
/// use corun::sync::{Condvar, Mutex};
/// use std::sync::Arc;
/// let pair = Arc::new((Mutex::new(false), Condvar::new()));
/// let pair2 = pair.clone();
/// corun::spawn(move || {
///     *pair2.0.lock() = true;
///     pair2.1.notify_one();
/// });
/// let mut ready = pair.0.lock();
/// while !*ready {
///     pair.1.wait(&mut ready);
/// }
/// ```
#[derive(Default)]
pub struct Condvar {
    queue: WaitQueue,
}

impl Condvar {
    /// A condition variable with no waiters.
    pub fn new() -> Condvar {
        Condvar::default()
    }

    /// Releases the guard's mutex, parks until notified (or spuriously woken), and locks it
    /// again before returning.
    pub fn wait<T: ?Sized>(&self, guard: &mut MutexGuard<'_, T>) {
        // Uncancellable from the unlock to the relock: a shutdown unwinds the caller only with
        // the mutex held again, so the caller's guard unlocks a lock it holds.
        uncancellable(|| {
            let node = WaitNode::current(Instant::now());
            self.queue.lock().push_back(node.clone());
            let mutex = guard.mutex();
            mutex.unlock_for_wait();
            node.wait();
            mutex.relock();
            self.pass_on_if_cancelled();
        })
    }

    /// A coroutine that will unwind at shutdown right after this wait does not act on the
    /// notification it consumed: hand it to another waiter.
    fn pass_on_if_cancelled(&self) {
        if cancellation_pending() {
            self.notify_one();
        }
    }

    /// Like [`Condvar::wait`], but gives up after `timeout` (never earlier).
    pub fn wait_for<T: ?Sized>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        timeout: Duration,
    ) -> WaitTimeoutResult {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.wait_until(guard, deadline),
            None => {
                self.wait(guard);
                WaitTimeoutResult(false)
            }
        }
    }

    /// Like [`Condvar::wait`], but gives up at `deadline` (never earlier).
    pub fn wait_until<T: ?Sized>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        deadline: Instant,
    ) -> WaitTimeoutResult {
        // As in `wait`: uncancellable from the unlock to the relock.
        uncancellable(|| {
            let node = WaitNode::current(Instant::now());
            self.queue.lock().push_back(node.clone());
            let mutex = guard.mutex();
            mutex.unlock_for_wait();
            // Timed out only if we take our node back ourselves: a notifier that dequeued it
            // first spent its notification on us, and we count as notified.
            let timed_out =
                node.wait_until(deadline).is_none() && remove(&mut self.queue.lock(), &node);
            mutex.relock();
            if !timed_out {
                self.pass_on_if_cancelled();
            }
            WaitTimeoutResult(timed_out)
        })
    }

    /// Wakes one waiter. Returns whether there was one.
    pub fn notify_one(&self) -> bool {
        let node = self.queue.lock().pop_front();
        match node {
            Some(node) => {
                node.wake(WOKEN);
                true
            }
            None => false,
        }
    }

    /// Wakes every waiter. Returns how many there were.
    pub fn notify_all(&self) -> usize {
        self.queue.wake_all(WOKEN)
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}
