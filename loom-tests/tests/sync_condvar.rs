#![cfg(loom)]
//! Models of `corun::sync::Condvar` (`src/sync/condvar.rs`) with `corun::sync::Mutex`, from loom
//! threads standing in for coroutines.
//!
//! `wait` enqueues the waiter on the condvar *before* unlocking the mutex, and a notifier changes
//! the condition under the mutex, so a notification cannot fall between the waiter's check and
//! its wait. A lost notification leaves the waiter parked forever, which loom reports as a
//! deadlock. (Timed waits are not modelled.)

use corun::sync::{Condvar, Mutex};
use loom::sync::Arc;
use loom::thread;

/// A condition (a count, so several notifications can be told apart) and its condvar.
#[derive(Default)]
struct Pair {
    count: Mutex<usize>,
    cond: Condvar,
}

impl Pair {
    fn new() -> Arc<Self> {
        Arc::new(Pair::default())
    }

    /// Waits until the count is at least `at_least`.
    fn wait_for(&self, at_least: usize) {
        let mut guard = self.count.lock();
        while *guard < at_least {
            self.cond.wait(&mut guard);
        }
    }

    /// Waits until the count is positive and takes one (a consumer).
    fn take_one(&self) {
        let mut guard = self.count.lock();
        while *guard == 0 {
            self.cond.wait(&mut guard);
        }
        *guard -= 1;
    }

    /// Adds one to the count under the mutex, then notifies one waiter (outside it).
    fn add_and_notify_one(&self) {
        *self.count.lock() += 1;
        self.cond.notify_one();
    }
}

/// One waiter racing one `notify_one`: the notification may come before the waiter checks,
/// between its enqueue and its unlock, or while it is parked. The waiter always returns.
#[test]
fn wait_races_notify_one() {
    loom::model(|| {
        let pair = Pair::new();
        let waiter = {
            let pair = pair.clone();
            thread::spawn(move || pair.wait_for(1))
        };
        pair.add_and_notify_one();
        waiter.join().unwrap();
        assert_eq!(*pair.count.lock(), 1);
        // Nobody is left queued: a notification now finds no waiter.
        assert!(!pair.cond.notify_one());
    });
}

/// The notifier also holds the mutex while it notifies (the other common discipline): the woken
/// waiter then competes for the mutex with the notifier still holding it, and must still return.
#[test]
fn notify_one_under_the_mutex() {
    loom::model(|| {
        let pair = Pair::new();
        let waiter = {
            let pair = pair.clone();
            thread::spawn(move || pair.wait_for(1))
        };
        {
            let mut guard = pair.count.lock();
            *guard = 1;
            pair.cond.notify_one();
        }
        waiter.join().unwrap();
        assert!(!pair.cond.notify_one());
    });
}

/// Two waiters and one `notify_all`: both return, whether each was queued before the
/// notification or checked the condition after it.
#[test]
fn notify_all_wakes_two_waiters() {
    loom::model(|| {
        let pair = Pair::new();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let pair = pair.clone();
                thread::spawn(move || pair.wait_for(1))
            })
            .collect();
        *pair.count.lock() = 1;
        pair.cond.notify_all();
        for waiter in waiters {
            waiter.join().unwrap();
        }
        assert_eq!(pair.cond.notify_all(), 0);
    });
}

/// Two consumers and two `notify_one`s, one per item: each notification wakes a different
/// waiter (or finds the consumer not yet waiting, and then it sees the item), so both consumers
/// get an item and return. A notification spent on nobody, or twice on the same node, leaves a
/// consumer parked.
#[test]
fn two_notify_one_for_two_consumers() {
    loom::model(|| {
        let pair = Pair::new();
        let consumer = {
            let pair = pair.clone();
            thread::spawn(move || pair.take_one())
        };
        let producer = {
            let pair = pair.clone();
            thread::spawn(move || {
                pair.add_and_notify_one();
                pair.add_and_notify_one();
            })
        };
        pair.take_one();
        consumer.join().unwrap();
        producer.join().unwrap();
        assert_eq!(*pair.count.lock(), 0);
    });
}
