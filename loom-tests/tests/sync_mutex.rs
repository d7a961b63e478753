#![cfg(loom)]
//! Models of the colock, `corun::sync::Mutex` (`src/sync/mutex.rs`, DESIGN.md
//! "Synchronisation"), run from loom threads standing in for coroutines (`crate::loom::Waiter`).
//!
//! Under loom the mutex never spins, and its starvation rule is deterministic: a waiter that was
//! woken once and lost the race to a barging locker is requeued at the front and, on the next
//! unlock, handed the lock directly (`GRANTED`, `LOCKED` kept set). So the models explore the
//! fast paths, the barging path, the requeue and the hand-off.
//!
//! Each holder enters an [`Exclusive`] section: two holders at once, or an acquire that does not
//! synchronise with the previous release, fail the model. A lost hand-off (an unlock that leaves
//! a queued waiter parked with nobody left to wake it) leaves that thread parked forever, which
//! loom reports as a deadlock.

use corun::sync::Mutex;
use corun_loom_tests::Exclusive;
use loom::sync::Arc;
use loom::thread;

/// A `corun::sync::Mutex` and the data it protects.
#[derive(Default)]
struct Shared {
    lock: Mutex<()>,
    data: Exclusive,
}

impl Shared {
    fn new() -> Arc<Self> {
        Arc::new(Shared::default())
    }

    /// Locks, enters the critical section `rounds` times in a row, unlocking in between.
    fn lock_and_visit(&self, rounds: usize) {
        for _ in 0..rounds {
            let guard = self.lock.lock();
            self.data.visit();
            drop(guard);
        }
    }
}

/// Spawns a thread that locks and visits `rounds` times.
fn spawn_locker(shared: &Arc<Shared>, rounds: usize) -> thread::JoinHandle<()> {
    let shared = shared.clone();
    thread::spawn(move || shared.lock_and_visit(rounds))
}

/// Two threads, each locking twice: one may park while the other holds the lock, be woken, lose
/// to the other's second lock (barging), requeue at the front and be handed the lock. Every
/// critical section runs, exclusively, and both threads finish.
#[test]
fn two_threads_lock_twice() {
    loom::model(|| {
        let shared = Shared::new();
        let other = spawn_locker(&shared, 2);
        shared.lock_and_visit(2);
        other.join().unwrap();
        assert_eq!(shared.data.entries(), 4);
        // Unlocked at the end: the state was left clean (no stale `LOCKED`).
        assert!(shared.lock.try_lock().is_some());
    });
}

/// Three threads, each locking once: up to two waiters queue behind one holder, and each unlock
/// must wake the next one. Every critical section runs, exclusively, and all threads finish.
#[test]
fn three_threads_lock_once() {
    loom::model(|| {
        let shared = Shared::new();
        let a = spawn_locker(&shared, 1);
        let b = spawn_locker(&shared, 1);
        shared.lock_and_visit(1);
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(shared.data.entries(), 3);
        assert!(shared.lock.try_lock().is_some());
    });
}

/// The main thread holds the lock while two others queue behind it, then unlocks and locks
/// again at once: the unlock must wake the first waiter (with the second still queued, so
/// `PARKED` stays set), the main thread's relock may barge in ahead of it, and the woken waiter
/// that lost is requeued at the front and then handed the lock directly by the next unlock. Every
/// thread finishes and the lock ends up free.
#[test]
fn holder_releases_to_two_queued() {
    loom::model(|| {
        let shared = Shared::new();
        let guard = shared.lock.lock();
        shared.data.enter();
        let a = spawn_locker(&shared, 1);
        let b = spawn_locker(&shared, 1);
        shared.data.leave();
        drop(guard);
        // Barges in ahead of a woken waiter, or queues behind the others.
        shared.lock_and_visit(1);
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(shared.data.entries(), 4);
        assert!(shared.lock.try_lock().is_some());
    });
}

/// `try_lock` racing a locker and an unlock: it never succeeds while the lock is held, and a
/// failed `try_lock` disturbs nobody (the waiter still gets the lock).
#[test]
fn try_lock_races_lock_and_unlock() {
    loom::model(|| {
        let shared = Shared::new();
        let guard = shared.lock.lock();
        let other = spawn_locker(&shared, 1);
        let tryer = {
            let shared = shared.clone();
            thread::spawn(move || {
                if let Some(guard) = shared.lock.try_lock() {
                    shared.data.visit();
                    drop(guard);
                    true
                } else {
                    false
                }
            })
        };
        shared.data.visit();
        drop(guard);
        other.join().unwrap();
        let tried = tryer.join().unwrap();
        assert_eq!(shared.data.entries(), 2 + usize::from(tried));
        assert!(shared.lock.try_lock().is_some());
    });
}
