#![cfg(loom)]
//! Models of `corun::sync::Semaphore` (`src/sync/semaphore.rs`), from loom threads standing in
//! for coroutines.
//!
//! The permits and the waiters sit under one short lock, and a release with waiters queued hands
//! its permit to the first of them (`GRANTED`). So no more holders than permits at any time (an
//! [`Exclusive`] section for a one-permit semaphore), no permit lost between a release and a
//! wait (a lost one leaves a waiter parked forever, which loom reports as a deadlock), and the
//! permit count is back where it started once everyone is done.

use corun::sync::Semaphore;
use corun_loom_tests::Exclusive;
use loom::sync::Arc;
use loom::thread;

/// A semaphore and the section its permits guard (meant for one permit).
struct Guarded {
    sem: Semaphore,
    data: Exclusive,
}

impl Guarded {
    fn new(permits: usize) -> Arc<Self> {
        Arc::new(Guarded {
            sem: Semaphore::new(permits),
            data: Exclusive::new(),
        })
    }

    /// Acquires, holds the permit through the section, releases.
    fn acquire_and_visit(&self) {
        let permit = self.sem.acquire();
        self.data.visit();
        drop(permit);
    }
}

/// Two threads on a one-permit semaphore, each acquiring twice: at most one holder at a time,
/// every release reaches the other thread if it waits, and both finish.
#[test]
fn one_permit_two_threads_twice() {
    loom::model(|| {
        let g = Guarded::new(1);
        let other = {
            let g = g.clone();
            thread::spawn(move || {
                g.acquire_and_visit();
                g.acquire_and_visit();
            })
        };
        g.acquire_and_visit();
        g.acquire_and_visit();
        other.join().unwrap();
        assert_eq!(g.data.entries(), 4);
        assert_eq!(g.sem.available_permits(), 1);
    });
}

/// Three threads on a one-permit semaphore, each acquiring once: up to two waiters queue, each
/// release hands the permit to the first, and all finish.
#[test]
fn one_permit_three_threads() {
    loom::model(|| {
        let g = Guarded::new(1);
        let others: Vec<_> = (0..2)
            .map(|_| {
                let g = g.clone();
                thread::spawn(move || g.acquire_and_visit())
            })
            .collect();
        g.acquire_and_visit();
        for other in others {
            other.join().unwrap();
        }
        assert_eq!(g.data.entries(), 3);
        assert_eq!(g.sem.available_permits(), 1);
    });
}

/// The main thread holds the only permit while two others queue behind it; its release goes to
/// the first waiter, whose release goes to the second. A `try_acquire` right after the release
/// races both (it only succeeds once nobody is queued): still at most one holder, everyone
/// finishes, and the permit is back at the end.
#[test]
fn release_to_two_queued() {
    loom::model(|| {
        let g = Guarded::new(1);
        let permit = g.sem.acquire();
        let others: Vec<_> = (0..2)
            .map(|_| {
                let g = g.clone();
                thread::spawn(move || g.acquire_and_visit())
            })
            .collect();
        g.data.visit();
        drop(permit);
        if let Some(permit) = g.sem.try_acquire() {
            g.data.visit();
            drop(permit);
        }
        for other in others {
            other.join().unwrap();
        }
        assert!((3..=4).contains(&g.data.entries()));
        assert_eq!(g.sem.available_permits(), 1);
    });
}

/// From zero permits, `add_permits(1)` in one thread races `acquire` in another: the acquirer
/// gets the permit whether it queued first or came after, and keeps it (`forget`), so none is
/// left over.
#[test]
fn add_permits_races_acquire_from_zero() {
    loom::model(|| {
        let g = Guarded::new(0);
        let acquirer = {
            let g = g.clone();
            thread::spawn(move || {
                let permit = g.sem.acquire();
                g.data.visit();
                permit.forget();
            })
        };
        g.sem.add_permits(1);
        acquirer.join().unwrap();
        assert_eq!(g.data.entries(), 1);
        assert_eq!(g.sem.available_permits(), 0);
    });
}

/// From zero permits, `add_permits(2)` races two acquirers: one release of two permits must
/// grant both waiters (or leave the rest for whoever comes after), and every acquirer finishes.
#[test]
fn add_two_permits_races_two_acquirers() {
    loom::model(|| {
        let sem = Arc::new(Semaphore::new(0));
        let acquirers: Vec<_> = (0..2)
            .map(|_| {
                let sem = sem.clone();
                thread::spawn(move || sem.acquire().forget())
            })
            .collect();
        sem.add_permits(2);
        for acquirer in acquirers {
            acquirer.join().unwrap();
        }
        assert_eq!(sem.available_permits(), 0);
    });
}
