//! `corun::sync::{RwLock, Semaphore, Barrier, WaitGroup}`.

mod common;

use common::{join_within, runtime, within, SHORT};
use corun::sync::{Barrier, RwLock, Semaphore, WaitGroup};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn rwlock_readers_share_while_writers_exclude() {
    within(SHORT, || {
        let rt = runtime(2);
        let lock = Arc::new(RwLock::new(0usize));
        let readers_in = Arc::new(AtomicUsize::new(0));
        let writer_in = Arc::new(AtomicBool::new(false));
        let max_readers = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..32)
            .map(|i| {
                let (lock, readers_in, writer_in, max_readers) = (
                    lock.clone(),
                    readers_in.clone(),
                    writer_in.clone(),
                    max_readers.clone(),
                );
                rt.spawn(move || {
                    for _ in 0..200 {
                        if i % 8 == 0 {
                            let mut g = lock.write();
                            assert!(!writer_in.swap(true, Ordering::SeqCst), "two writers");
                            assert_eq!(readers_in.load(Ordering::SeqCst), 0, "reader with writer");
                            *g += 1;
                            corun::yield_now();
                            writer_in.store(false, Ordering::SeqCst);
                        } else {
                            let g = lock.read();
                            let n = readers_in.fetch_add(1, Ordering::SeqCst) + 1;
                            max_readers.fetch_max(n, Ordering::SeqCst);
                            assert!(!writer_in.load(Ordering::SeqCst), "writer with reader");
                            let _ = *g;
                            corun::yield_now(); // held across a switch: others read meanwhile
                            readers_in.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(*lock.read(), 4 * 200);
        assert!(
            max_readers.load(Ordering::SeqCst) > 1,
            "readers never shared"
        );
    });
}

#[test]
fn rwlock_writers_are_not_starved_by_a_stream_of_readers() {
    within(SHORT, || {
        let rt = runtime(2);
        let lock = Arc::new(RwLock::new(0u32));
        let stop = Arc::new(AtomicBool::new(false));
        // Overlapping readers: the lock is never free of readers unless new ones are held back.
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (lock, stop) = (lock.clone(), stop.clone());
                rt.spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let _g = lock.read();
                        corun::yield_now();
                    }
                })
            })
            .collect();
        let l = lock.clone();
        let writer = rt.spawn(move || {
            for _ in 0..50 {
                *l.write() += 1;
            }
        });
        join_within(writer, Duration::from_secs(20)).expect("the writer got in");
        stop.store(true, Ordering::Relaxed);
        readers.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(*lock.read(), 50);
    });
}

#[test]
fn a_semaphore_bounds_concurrency() {
    within(SHORT, || {
        const PERMITS: usize = 3;
        let rt = runtime(2);
        let sem = Arc::new(Semaphore::new(PERMITS));
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..40)
            .map(|_| {
                let (sem, inside, most) = (sem.clone(), inside.clone(), most.clone());
                let started = started.clone();
                rt.spawn(move || {
                    // All start together, so they really compete for the permits.
                    started.fetch_add(1, Ordering::SeqCst);
                    while started.load(Ordering::SeqCst) < 40 {
                        corun::yield_now();
                    }
                    for _ in 0..50 {
                        let _permit = sem.acquire();
                        let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(n, Ordering::SeqCst);
                        corun::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
        let most = most.load(Ordering::SeqCst);
        assert!(most <= PERMITS, "{most} holders at once");
        assert_eq!(most, PERMITS, "the permits were never all in use");
        assert_eq!(sem.available_permits(), PERMITS);
    });
}

#[test]
fn semaphore_try_acquire_and_add_permits() {
    let sem = Semaphore::new(0);
    assert!(sem.try_acquire().is_none());
    sem.add_permits(2);
    let a = sem.try_acquire().expect("one");
    let b = sem.try_acquire().expect("two");
    assert!(sem.try_acquire().is_none());
    drop(a);
    b.forget();
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn a_waiting_acquire_is_granted_by_add_permits() {
    within(SHORT, || {
        let rt = runtime(1);
        let sem = Arc::new(Semaphore::new(0));
        let s = sem.clone();
        let waiter = rt.spawn(move || {
            let _p = s.acquire();
        });
        std::thread::sleep(Duration::from_millis(20));
        assert!(!waiter.is_finished());
        sem.add_permits(1);
        waiter.join().unwrap();
        assert_eq!(
            sem.available_permits(),
            1,
            "the permit came back when dropped"
        );
    });
}

#[test]
fn a_barrier_holds_every_party_until_all_arrive_round_after_round() {
    within(SHORT, || {
        const PARTIES: usize = 8;
        const ROUNDS: usize = 50;
        let rt = runtime(2);
        let barrier = Arc::new(Barrier::new(PARTIES));
        let arrived = Arc::new(AtomicUsize::new(0));
        let leaders = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..PARTIES)
            .map(|_| {
                let (barrier, arrived, leaders) =
                    (barrier.clone(), arrived.clone(), leaders.clone());
                rt.spawn(move || {
                    for round in 0..ROUNDS {
                        arrived.fetch_add(1, Ordering::SeqCst);
                        if barrier.wait().is_leader() {
                            leaders.fetch_add(1, Ordering::SeqCst);
                        }
                        // Everyone of this round has arrived before anyone gets past.
                        assert!(arrived.load(Ordering::SeqCst) >= (round + 1) * PARTIES);
                        // And nobody runs into the next round's wait before all left this one.
                        barrier.wait();
                    }
                })
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(
            leaders.load(Ordering::SeqCst),
            ROUNDS,
            "one leader per round"
        );
    });
}

#[test]
fn a_wait_group_waits_for_every_member_from_a_thread_or_a_coroutine() {
    within(SHORT, || {
        let rt = runtime(2);
        let done = Arc::new(AtomicUsize::new(0));
        let wg = WaitGroup::new();
        for _ in 0..100 {
            let (wg, done) = (wg.clone(), done.clone());
            rt.spawn(move || {
                corun::yield_now();
                done.fetch_add(1, Ordering::SeqCst);
                drop(wg);
            });
        }
        wg.wait(); // a plain thread
        assert_eq!(done.load(Ordering::SeqCst), 100);

        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        let total = rt.block_on(move || {
            let wg = WaitGroup::new();
            for _ in 0..100 {
                let (wg, d) = (wg.clone(), d.clone());
                corun::spawn(move || {
                    d.fetch_add(1, Ordering::SeqCst);
                    drop(wg);
                });
            }
            wg.wait(); // a coroutine
            d.load(Ordering::SeqCst)
        });
        assert_eq!(total, 100);
        assert_eq!(done.load(Ordering::SeqCst), 100);
    });
}

#[test]
fn sync_types_are_send_sync_and_debug() {
    fn send_sync<T: Send + Sync + std::fmt::Debug>() {}
    send_sync::<corun::sync::Mutex<u8>>();
    send_sync::<corun::sync::Condvar>();
    send_sync::<RwLock<u8>>();
    send_sync::<Semaphore>();
    send_sync::<Barrier>();
    fn send<T: Send + std::fmt::Debug>() {}
    send::<WaitGroup>();
    send::<corun::sync::MutexGuard<'static, u8>>();
}
