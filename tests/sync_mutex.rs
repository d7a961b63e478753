//! `corun::sync::Mutex` and `Condvar`: exclusion, hand-off, fairness, and migration while held.

mod common;

use common::{runtime, within, SHORT};
use corun::sync::{Condvar, Mutex};
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn counts_are_exact_under_mixed_contention_with_the_lock_held_across_yields() {
    within(SHORT, || {
        const COROUTINES: usize = 64;
        const THREADS: usize = 2;
        const ROUNDS: usize = 500;
        let rt = runtime(2);
        // The plain value is only ever touched with the lock held; a second counter checks that
        // nobody else was inside at the same time.
        let state = Arc::new(Mutex::new((0usize, 0usize)));
        let inside = Arc::new(AtomicUsize::new(0));
        let work = |state: Arc<Mutex<(usize, usize)>>, inside: Arc<AtomicUsize>, yields: bool| {
            move || {
                for i in 0..ROUNDS {
                    let mut guard = state.lock();
                    assert_eq!(
                        inside.fetch_add(1, Ordering::SeqCst),
                        0,
                        "two holders at once"
                    );
                    guard.0 += 1;
                    if yields && i % 7 == 0 {
                        // Held across a switch: the others must park, not get in.
                        corun::yield_now();
                    }
                    guard.1 += 1;
                    inside.fetch_sub(1, Ordering::SeqCst);
                }
            }
        };
        let coroutines: Vec<_> = (0..COROUTINES)
            .map(|_| rt.spawn(work(state.clone(), inside.clone(), true)))
            .collect();
        let threads: Vec<_> = (0..THREADS)
            .map(|_| std::thread::spawn(work(state.clone(), inside.clone(), false)))
            .collect();
        coroutines.into_iter().for_each(|h| h.join().unwrap());
        threads.into_iter().for_each(|h| h.join().unwrap());
        let total = (COROUTINES + THREADS) * ROUNDS;
        assert_eq!(*state.lock(), (total, total));
    });
}

#[test]
fn a_lock_taken_on_one_worker_is_released_after_migrating_to_another() {
    within(SHORT, || {
        let rt = runtime(2);
        let lock = Arc::new(Mutex::new(0u32));
        let l = lock.clone();
        let (before, after) = rt.block_on(move || {
            let before = std::thread::current().id();
            let guard = l.lock();
            // Yield (with the lock held) until the scheduler has moved us to the other worker.
            let mut after = before;
            for _ in 0..100_000 {
                corun::yield_now();
                after = std::thread::current().id();
                if after != before {
                    break;
                }
                // Keep the other worker busy with something to steal.
                corun::spawn(corun::yield_now);
            }
            drop(guard); // unlocked on `after`'s thread
            (before, after)
        });
        assert_ne!(before, after, "the coroutine never migrated");
        // The lock is free again, for anyone.
        assert!(lock.try_lock().is_some());
        let l = lock.clone();
        std::thread::spawn(move || *l.lock() += 1).join().unwrap();
        assert_eq!(*lock.lock(), 1);
    });
}

#[test]
fn a_waiting_coroutine_gets_the_lock_when_it_is_released() {
    within(SHORT, || {
        let rt = runtime(1);
        let lock = Arc::new(Mutex::new(Vec::new()));
        let guard = lock.lock(); // held by this plain thread
        let l = lock.clone();
        let waiter = rt.spawn(move || l.lock().push("coroutine"));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "got in while the lock was held");
        drop(guard);
        waiter.join().unwrap();
        assert_eq!(*lock.lock(), ["coroutine"]);
    });
}

#[test]
fn waiting_parks_the_coroutine_not_the_worker() {
    within(SHORT, || {
        // One worker: if waiting for the lock blocked the thread, the ticker could not run.
        let rt = runtime(1);
        let lock = Arc::new(Mutex::new(()));
        let guard = lock.lock();
        let l = lock.clone();
        let waiter = rt.spawn(move || drop(l.lock()));
        let ticks = Arc::new(AtomicUsize::new(0));
        let t = ticks.clone();
        let ticker = rt.spawn(move || {
            for _ in 0..100 {
                t.fetch_add(1, Ordering::SeqCst);
                corun::yield_now();
            }
        });
        ticker.join().unwrap();
        assert_eq!(ticks.load(Ordering::SeqCst), 100);
        drop(guard);
        waiter.join().unwrap();
    });
}

#[test]
fn no_waiter_starves_behind_a_stream_of_fresh_lockers() {
    within(SHORT, || {
        // Two coroutines re-lock in a tight loop; a third must still get in (starvation mode
        // hands it the lock once it has waited over a millisecond).
        let rt = runtime(2);
        let lock = Arc::new(Mutex::new(0u64));
        let stop = Arc::new(AtomicBool::new(false));
        let hogs: Vec<_> = (0..2)
            .map(|_| {
                let (lock, stop) = (lock.clone(), stop.clone());
                rt.spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let mut g = lock.lock();
                        *g += 1;
                        corun::yield_now();
                    }
                })
            })
            .collect();
        let l = lock.clone();
        let latecomer = rt.spawn(move || {
            for _ in 0..100 {
                *l.lock() += 1;
            }
        });
        common::join_within(latecomer, Duration::from_secs(20)).expect("the latecomer got in");
        stop.store(true, Ordering::Relaxed);
        hogs.into_iter().for_each(|h| h.join().unwrap());
    });
}

#[test]
fn try_lock_fails_while_held_and_succeeds_after() {
    let lock = Mutex::new(5);
    let guard = lock.lock();
    assert!(lock.try_lock().is_none());
    drop(guard);
    assert_eq!(*lock.try_lock().unwrap(), 5);
    let mut lock = lock;
    *lock.get_mut() += 1;
    assert_eq!(lock.into_inner(), 6);
}

#[test]
fn a_bounded_queue_on_a_condvar_delivers_every_item_exactly_once() {
    within(SHORT, || {
        const PRODUCERS: usize = 4;
        const CONSUMERS: usize = 4;
        const ITEMS: usize = 2_000;
        const CAPACITY: usize = 8;
        struct Queue {
            items: Mutex<(VecDeque<usize>, usize)>, // (queue, producers done)
            not_full: Condvar,
            not_empty: Condvar,
        }
        let rt = runtime(2);
        let q = Arc::new(Queue {
            items: Mutex::new((VecDeque::new(), 0)),
            not_full: Condvar::new(),
            not_empty: Condvar::new(),
        });
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let q = q.clone();
                rt.spawn(move || {
                    for i in 0..ITEMS {
                        let mut g = q.items.lock();
                        while g.0.len() == CAPACITY {
                            q.not_full.wait(&mut g);
                        }
                        g.0.push_back(p * ITEMS + i);
                        q.not_empty.notify_one();
                    }
                    q.items.lock().1 += 1;
                    q.not_empty.notify_all();
                })
            })
            .collect();
        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|_| {
                let q = q.clone();
                rt.spawn(move || {
                    let mut got = Vec::new();
                    loop {
                        let mut g = q.items.lock();
                        while g.0.is_empty() && g.1 < PRODUCERS {
                            q.not_empty.wait(&mut g);
                        }
                        match g.0.pop_front() {
                            Some(item) => {
                                got.push(item);
                                q.not_full.notify_one();
                            }
                            None => return got,
                        }
                    }
                })
            })
            .collect();
        producers.into_iter().for_each(|h| h.join().unwrap());
        let mut seen = HashSet::new();
        for h in consumers {
            for item in h.join().unwrap() {
                assert!(seen.insert(item), "item {item} delivered twice");
            }
        }
        assert_eq!(seen.len(), PRODUCERS * ITEMS, "items lost");
    });
}

#[test]
fn notify_reports_how_many_it_woke() {
    within(SHORT, || {
        let rt = runtime(2);
        let pair = Arc::new((Mutex::new(0usize), Condvar::new()));
        assert!(!pair.1.notify_one(), "nobody waits yet");
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let pair = pair.clone();
                rt.spawn(move || {
                    let mut g = pair.0.lock();
                    *g += 1;
                    pair.1.wait(&mut g);
                })
            })
            .collect();
        common::wait_until(SHORT, "three waiters", || *pair.0.lock() == 3);
        // All three are queued once they released the lock inside `wait`.
        let mut woken = 0;
        while woken < 3 {
            woken += pair.1.notify_all();
            std::thread::yield_now();
        }
        assert_eq!(woken, 3);
        waiters.into_iter().for_each(|h| h.join().unwrap());
    });
}

#[test]
fn a_thread_waiting_on_a_lock_held_by_a_cancelled_coroutine_gets_it_at_shutdown() {
    within(SHORT, || {
        // A coroutine holds the lock and parks forever; another coroutine and a plain thread
        // wait for the lock. Dropping the runtime unwinds the holder (releasing the lock) and
        // the coroutine waiter (which must pass the lock on, not strand it): the thread gets in.
        let rt = runtime(2);
        let lock = Arc::new(Mutex::new(0u32));
        let held = Arc::new(AtomicBool::new(false));
        let (l, h) = (lock.clone(), held.clone());
        let holder = rt.spawn(move || {
            let _guard = l.lock();
            h.store(true, Ordering::SeqCst);
            loop {
                corun::park();
            }
        });
        common::wait_until(SHORT, "the holder has the lock", || {
            held.load(Ordering::SeqCst)
        });
        let l = lock.clone();
        let waiter = rt.spawn(move || *l.lock() += 1);
        let l = lock.clone();
        let thread = std::thread::spawn(move || *l.lock() += 10);
        std::thread::sleep(Duration::from_millis(50)); // both queued (the waiter starving)
        drop(rt);
        thread.join().unwrap();
        assert!(holder.join().is_err());
        let _ = waiter.join();
        assert!(*lock.lock() >= 10, "the thread got the lock");
    });
}

#[test]
fn a_condvar_wait_cancelled_at_shutdown_never_unlocks_a_mutex_it_does_not_hold() {
    within(SHORT, || {
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let rt = runtime(1);
        let p = pair.clone();
        rt.spawn(move || {
            let mut g = p.0.lock();
            while !*g {
                p.1.wait(&mut g);
            }
        });
        std::thread::sleep(Duration::from_millis(50)); // parked on the condvar
        let dropper = std::thread::spawn(move || drop(rt));
        std::thread::sleep(Duration::from_millis(10)); // the drain has told it to unwind
        let p = pair.clone();
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            let mut g = p.0.lock();
            *g = true;
            p.1.notify_one();
            held_tx.send(()).unwrap();
            let _ = release_rx.recv_timeout(Duration::from_millis(300)); // keeps holding
            drop(g);
        });
        held_rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(100)); // the coroutine unwinds meanwhile
        assert!(
            pair.0.try_lock().is_none(),
            "the mutex was unlocked under the holder's feet"
        );
        release_tx.send(()).unwrap();
        holder.join().unwrap();
        dropper.join().unwrap();
    });
}
