//! A counting semaphore on the shared wait protocol.
//!
//! The permit count and the waiters sit under one short lock. A release with waiters queued
//! hands its permit to the first of them (`GRANTED`), so permits are never lost between a
//! release and a wait, and waiters are served in order.

use super::wait_queue::{uncancellable, wake_each, WaitNode, Waiters, GRANTED};
use crate::loom::Mutex;
use std::fmt;
use std::time::Instant;

/// A counting semaphore: at most `permits` holders at once. Waiting parks the coroutine (or
/// blocks the thread); permits are released when the [`SemaphorePermit`] is dropped.
///
/// ```
/// let sem = corun::sync::Semaphore::new(2);
/// let a = sem.acquire();
/// let _b = sem.acquire();
/// assert!(sem.try_acquire().is_none());
/// drop(a);
/// assert!(sem.try_acquire().is_some());
/// ```
pub struct Semaphore {
    inner: Mutex<State>,
}

struct State {
    permits: usize,
    waiters: Waiters,
}

impl Semaphore {
    /// A semaphore with `permits` permits available.
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            inner: Mutex::new(State {
                permits,
                waiters: Waiters::new(),
            }),
        }
    }

    /// Takes a permit, waiting for one if none is available.
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        // A shutdown during the wait is raised only once the permit exists: see
        // `wait_queue::uncancellable`.
        uncancellable(|| self.acquire_inner())
    }

    fn acquire_inner(&self) -> SemaphorePermit<'_> {
        let node = {
            let mut state = self.inner.lock();
            // Waiters queued first are served first: only take a free permit if nobody waits.
            if state.permits > 0 && state.waiters.is_empty() {
                state.permits -= 1;
                return SemaphorePermit { semaphore: self };
            }
            let node = WaitNode::current(Instant::now());
            state.waiters.push_back(node.clone());
            node
        };
        let outcome = node.wait();
        debug_assert_eq!(outcome, GRANTED, "semaphore waiters are only ever granted");
        SemaphorePermit { semaphore: self }
    }

    /// Takes a permit if one is available now.
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        let mut state = self.inner.lock();
        if state.permits > 0 && state.waiters.is_empty() {
            state.permits -= 1;
            Some(SemaphorePermit { semaphore: self })
        } else {
            None
        }
    }

    /// Adds `n` permits, handing them to waiters first.
    pub fn add_permits(&self, n: usize) {
        let granted = {
            let mut state = self.inner.lock();
            let k = n.min(state.waiters.len());
            let granted: Vec<_> = state.waiters.drain(..k).collect();
            state.permits += n - k;
            granted
        };
        wake_each(granted, GRANTED);
    }

    /// Permits available right now (a racy reading).
    pub fn available_permits(&self) -> usize {
        self.inner.lock().permits
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.lock();
        f.debug_struct("Semaphore")
            .field("permits", &state.permits)
            .field("waiters", &state.waiters.len())
            .finish()
    }
}

/// One permit of a [`Semaphore`], given back when dropped.
#[must_use = "the permit is released as soon as it is dropped"]
pub struct SemaphorePermit<'a> {
    semaphore: &'a Semaphore,
}

impl SemaphorePermit<'_> {
    /// Keeps the permit taken for good (the semaphore has one permit fewer from now on).
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.semaphore.add_permits(1);
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").finish_non_exhaustive()
    }
}
