//! loom models live in `tests/`; this crate holds only the small mocks they share, standing in
//! for the parts of the runtime around the modelled protocols (run queues, the worker's parker).
//! Everything here is built from loom primitives, so loom explores it like the protocols.

#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Condvar, Mutex};
use std::collections::VecDeque;

/// A run queue someone can block on: a `Mutex<VecDeque<T>>` plus a condition variable. Stands in
/// for the real run queues when a model needs to wait until something was queued. Waiting for an
/// item that never comes blocks forever, which loom reports as a deadlock (a lost wake-up).
#[derive(Debug, Default)]
pub struct RunQueue<T> {
    items: Mutex<VecDeque<T>>,
    ready: Condvar,
}

impl<T> RunQueue<T> {
    /// An empty queue.
    pub fn new() -> Self {
        RunQueue {
            items: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
        }
    }

    /// Queues `item` and wakes a waiter.
    pub fn push(&self, item: T) {
        self.items.lock().unwrap().push_back(item);
        self.ready.notify_one();
    }

    /// Takes the oldest item, if any.
    pub fn pop(&self) -> Option<T> {
        self.items.lock().unwrap().pop_front()
    }

    /// Takes the oldest item, blocking until there is one.
    pub fn pop_blocking(&self) -> T {
        let mut items = self.items.lock().unwrap();
        loop {
            if let Some(item) = items.pop_front() {
                return item;
            }
            items = self.ready.wait(items).unwrap();
        }
    }

    /// How many items are queued.
    pub fn len(&self) -> usize {
        self.items.lock().unwrap().len()
    }

    /// Whether the queue is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A thread parker with token semantics, as `crossbeam_utils::sync::Parker` (what a worker
/// blocks on when it sleeps): `unpark` sets the token, `park` consumes it or blocks until it is
/// set. An unpark that comes before the park is kept.
#[derive(Debug, Default)]
pub struct Parker {
    token: Mutex<bool>,
    cond: Condvar,
}

impl Parker {
    /// A parker without a token.
    pub fn new() -> Self {
        Parker {
            token: Mutex::new(false),
            cond: Condvar::new(),
        }
    }

    /// Blocks until the token is set, then consumes it.
    pub fn park(&self) {
        let mut token = self.token.lock().unwrap();
        while !*token {
            token = self.cond.wait(token).unwrap();
        }
        *token = false;
    }

    /// Sets the token and wakes the parked thread, if any.
    pub fn unpark(&self) {
        *self.token.lock().unwrap() = true;
        self.cond.notify_one();
    }
}

/// The stealable run queues of the runtime (the global injector and the P's local queues), as a
/// count of queued items with the orderings of `crossbeam_deque`: a push publishes with Release,
/// the emptiness check (`has_stealable_work`) is a plain Acquire load, and a take checks with a
/// load before it claims with a CAS. No stronger synchronisation than the real queues give, so
/// the idle protocol's SeqCst fences are what the models actually exercise.
#[derive(Debug, Default)]
pub struct WorkCount {
    queued: AtomicUsize,
}

impl WorkCount {
    /// No work queued.
    pub fn new() -> Self {
        WorkCount {
            queued: AtomicUsize::new(0),
        }
    }

    /// Publishes one item.
    pub fn push(&self) {
        self.queued.fetch_add(1, Ordering::Release);
    }

    /// The pre-sleep re-scan: whether any item is visible.
    pub fn has_work(&self) -> bool {
        self.queued.load(Ordering::Acquire) != 0
    }

    /// Takes one item, if one is visible.
    pub fn try_take(&self) -> bool {
        let mut n = self.queued.load(Ordering::Acquire);
        loop {
            if n == 0 {
                return false;
            }
            match self
                .queued
                .compare_exchange(n, n - 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(actual) => n = actual,
            }
        }
    }

    /// Items still queued (use once every thread is joined).
    pub fn remaining(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

/// Data that only the holder of a lock (a `corun::sync::Mutex`, a semaphore permit) may touch,
/// for the `sync_*` models. Entering checks mutual exclusion twice: a count of parties inside
/// (asserted to be 0 on entry), and a loom `UnsafeCell` written inside, so that loom also reports
/// two accesses the lock does not order (an acquire that does not synchronise with the previous
/// release). `corun::sync::Mutex` keeps its own data in a `std` cell that loom does not track,
/// hence this stand-in.
#[derive(Debug)]
pub struct Exclusive {
    inside: AtomicUsize,
    entries: UnsafeCell<usize>,
}

impl Default for Exclusive {
    fn default() -> Self {
        Exclusive::new()
    }
}

impl Exclusive {
    /// Nobody inside, never entered.
    pub fn new() -> Self {
        Exclusive {
            inside: AtomicUsize::new(0),
            entries: UnsafeCell::new(0),
        }
    }

    /// The caller got the lock: checks it is alone, and counts the entry.
    pub fn enter(&self) {
        let others = self.inside.fetch_add(1, Ordering::Relaxed);
        assert_eq!(others, 0, "two holders at once");
        self.entries.with_mut(|n| unsafe { *n += 1 });
    }

    /// The caller is about to release the lock.
    pub fn leave(&self) {
        self.inside.fetch_sub(1, Ordering::Relaxed);
    }

    /// `enter` then `leave`: one short critical section.
    pub fn visit(&self) {
        self.enter();
        self.leave();
    }

    /// How many times a holder entered (use once every thread is joined, or under the lock).
    pub fn entries(&self) -> usize {
        self.entries.with(|n| unsafe { *n })
    }
}
