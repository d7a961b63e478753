//! The colock: a mutual-exclusion lock that spins, then inflates into a wait queue.
//!
//! The state is one byte: [`LOCKED`] and [`PARKED`] (someone is, or is about to be, in the wait
//! queue). Uncontended, `lock` is one CAS (`0 -> LOCKED`) and `unlock` one CAS (`LOCKED -> 0`), with
//! no allocation. Under contention (the parking_lot and Go design):
//!
//! 1. spin a little with backoff while nobody is queued, on a multi-core runtime (the holder is
//!    likely running and about to release; spinning behind queued waiters would be unfair);
//! 2. set `PARKED`, then under the queue lock validate that the state is still
//!    `LOCKED | PARKED` (an unlocker that found the queue empty clears both bits under that same
//!    lock, so a waiter that validated is sure to be seen) and enqueue; park until woken;
//! 3. `unlock` with `PARKED` set takes the slow path: under the queue lock it dequeues the first
//!    waiter and either releases the lock and wakes it to compete (normal mode: a running
//!    coroutine may barge in, which keeps throughput up; the woken waiter that loses goes back
//!    to the *front* of the queue), or, if that waiter has waited more than
//!    [`STARVATION_THRESHOLD`], hands it the lock directly, `LOCKED` staying set (Go's starvation
//!    mode), so no waiter waits forever behind a stream of fresh lockers.
//!
//! The lock belongs to whoever locked it, not to an OS thread: a coroutine may lock on one
//! worker, migrate, and unlock on another. Waiters are coroutines (parked, never blocking their
//! thread) or plain threads (blocked), through the same queue. Modelled in
//! `loom-tests/` (to come: see the issue's closing note).

use super::wait_queue::{uncancellable, WaitNode, WaitQueue, GRANTED, WOKEN};
use crate::loom::{AtomicU8, Ordering};
use crossbeam_utils::Backoff;
use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
#[cfg(not(loom))]
use std::time::Duration;
use std::time::Instant;

/// The lock is held.
const LOCKED: u8 = 0b01;
/// Waiters are (or are about to be) queued: unlock must take the slow path.
const PARKED: u8 = 0b10;
/// Rounds of backoff spinning before queueing: 1 + 2 + ... + 32 = 63 pause instructions, a few
/// microseconds (Go spins 4 rounds of 30).
const MAX_SPINS: u32 = 6;
/// A waiter that has waited this long is handed the lock directly (Go: 1 ms).
#[cfg(not(loom))]
const STARVATION_THRESHOLD: Duration = Duration::from_millis(1);

/// A mutual-exclusion lock for coroutines and threads, like `parking_lot::Mutex` (no
/// poisoning). Waiting parks the coroutine, never its OS thread.
///
/// ```
/// use std::sync::Arc;
/// let counter = Arc::new(corun::sync::Mutex::new(0u64));
/// let handles: Vec<_> = (0..8)
///     .map(|_| {
///         let counter = counter.clone();
///         corun::spawn(move || {
///             for _ in 0..1000 {
///                 *counter.lock() += 1;
///             }
///         })
///     })
///     .collect();
/// handles.into_iter().for_each(|h| h.join().unwrap());
/// assert_eq!(*counter.lock(), 8000);
/// ```
pub struct Mutex<T: ?Sized> {
    state: AtomicU8,
    queue: WaitQueue,
    data: UnsafeCell<T>,
}

// SAFETY: the mutex hands out access to `T` to one owner at a time, on whatever thread that
// owner runs, which is what `T: Send` allows (as for std's `Mutex`).
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above: shared `&Mutex<T>` only gives exclusive access to `T` through the lock.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    pub fn new(value: T) -> Mutex<T> {
        Mutex {
            state: AtomicU8::new(0),
            queue: WaitQueue::default(),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the mutex, returning the value.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Acquires the lock, parking the calling coroutine (or blocking the calling thread) until it
    /// is available. Not reentrant: locking twice from the same coroutine deadlocks.
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            // A shutdown during the wait is raised only once the guard exists (its drop then
            // hands the lock on): see `wait_queue::uncancellable`.
            return uncancellable(|| {
                self.lock_slow();
                MutexGuard { mutex: self }
            });
        }
        MutexGuard { mutex: self }
    }

    /// Acquires the lock if it is free right now.
    #[inline]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        let mut state = self.state.load(Ordering::Relaxed);
        while state & LOCKED == 0 {
            match self.state.compare_exchange_weak(
                state,
                state | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(MutexGuard { mutex: self }),
                Err(actual) => state = actual,
            }
        }
        None
    }

    /// Mutable access without locking: the borrow proves nobody else holds the lock.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    #[cold]
    fn lock_slow(&self) {
        let spin = Backoff::new();
        // Counted by hand: `Backoff::is_completed` never turns true with `spin` alone (it stops
        // counting at its spin limit), and an unbounded spin behind a holder that parks with the
        // lock would hold the worker forever.
        let mut spins = 0;
        let may_spin = may_spin();
        let mut since = None;
        let mut front = false;
        loop {
            let state = self.state.load(Ordering::Relaxed);
            // Free: take it (even with waiters queued: normal mode lets a running locker barge).
            if state & LOCKED == 0 {
                if self
                    .state
                    .compare_exchange_weak(
                        state,
                        state | LOCKED,
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    return;
                }
                continue;
            }
            // Held, nobody queued: spin a little.
            if state & PARKED == 0 && may_spin && spins < MAX_SPINS {
                spin.spin();
                spins += 1;
                continue;
            }
            // Announce a waiter before queueing.
            if state & PARKED == 0
                && self
                    .state
                    .compare_exchange_weak(
                        state,
                        state | PARKED,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    )
                    .is_err()
            {
                continue;
            }
            let since = *since.get_or_insert_with(Instant::now);
            let node = if front {
                WaitNode::requeued(since)
            } else {
                WaitNode::current(since)
            };
            {
                let mut queue = self.queue.lock();
                // Validate under the queue lock: an unlocker that found the queue empty cleared
                // the bits under this lock, and then we must retry instead of waiting.
                if self.state.load(Ordering::Relaxed) != LOCKED | PARKED {
                    continue;
                }
                if front {
                    queue.push_front(node.clone());
                } else {
                    queue.push_back(node.clone());
                }
            }
            match node.wait() {
                GRANTED => return, // handed over: LOCKED was kept set for us
                _ => {
                    // Woken to compete: if we lose, we go back to the front of the queue.
                    front = true;
                    spin.reset();
                    spins = 0;
                }
            }
        }
    }

    /// Releases the lock (what dropping a guard does).
    #[inline]
    fn unlock(&self) {
        if self
            .state
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.unlock_slow();
        }
    }

    #[cold]
    fn unlock_slow(&self) {
        let mut queue = self.queue.lock();
        // With the queue lock held and LOCKED set, only we change the state (lockers only CAS
        // it when LOCKED is clear, or set PARKED, which is already set).
        let Some(node) = queue.pop_front() else {
            self.state.store(0, Ordering::Release);
            return;
        };
        let still_parked = if queue.is_empty() { 0 } else { PARKED };
        let outcome = if starving(&node) {
            self.state.store(LOCKED | still_parked, Ordering::Release);
            GRANTED
        } else {
            self.state.store(still_parked, Ordering::Release);
            WOKEN
        };
        drop(queue);
        node.wake(outcome);
    }
}

/// Spinning pays only when the holder can be running on another core at the same time.
#[cfg(not(loom))]
fn may_spin() -> bool {
    static MULTICORE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    match crate::coroutine::current_task() {
        Some(task) => task.shared.num_workers > 1,
        None => *MULTICORE.get_or_init(|| num_cpus::get() > 1),
    }
}

/// Under loom spinning only multiplies the interleavings without changing the protocol.
#[cfg(loom)]
fn may_spin() -> bool {
    false
}

/// Whether `node` has waited long enough to be handed the lock (starvation mode).
#[cfg(not(loom))]
fn starving(node: &WaitNode) -> bool {
    node.since.elapsed() >= STARVATION_THRESHOLD
}

/// Under loom time is not modelled, and the decision must be reproducible: a waiter that was
/// already woken once and lost is treated as starving, which exercises both the barging and the
/// hand-off paths.
#[cfg(loom)]
fn starving(node: &WaitNode) -> bool {
    node.requeued
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Self {
        Mutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_lock() {
            Some(guard) => f.debug_struct("Mutex").field("data", &&*guard).finish(),
            None => f
                .debug_struct("Mutex")
                .field("data", &format_args!("<locked>"))
                .finish(),
        }
    }
}

/// Holds a [`Mutex`] locked; unlocks it when dropped. Unlike std's guard it may be dropped on
/// another thread than the one that locked (a coroutine migrates while holding it).
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
}

// SAFETY: unlocking has no thread affinity (the state is an atomic, the queue a lock), so the
// guard may move to another thread with its coroutine; it gives `&mut T` there, hence `T: Send`.
unsafe impl<T: ?Sized + Send> Send for MutexGuard<'_, T> {}
// SAFETY: a shared guard only gives `&T`.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// The mutex this guard holds (for `Condvar`).
    pub(crate) fn mutex(&self) -> &'a Mutex<T> {
        self.mutex
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Unlocks on behalf of a guard that stays alive (`Condvar::wait`), to be relocked with
    /// [`Mutex::relock`].
    pub(crate) fn unlock_for_wait(&self) {
        self.unlock();
    }

    /// Locks again for a guard that stayed alive.
    pub(crate) fn relock(&self) {
        std::mem::forget(self.lock());
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the lock is held, so nobody else accesses the data.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only access through the guard.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
