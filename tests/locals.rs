//! Coroutine-local storage: `coroutine_local!` statics and `CoroutineLocal` slots.

mod common;

use common::{join_within, runtime, within, DropCounter, LONG, SHORT};
use std::cell::Cell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

corun::coroutine_local! {
    static COUNTER: Cell<u64> = Cell::new(0);
    static LABEL: Cell<Option<u64>> = Cell::new(None);
}

#[test]
fn each_coroutine_sees_its_own_value() {
    within(SHORT, || {
        let rt = runtime(2);
        let handles: Vec<_> = (0..100u64)
            .map(|i| {
                rt.spawn(move || {
                    let before = COUNTER.with(Cell::get);
                    COUNTER.with(|c| c.set(c.get() + i));
                    corun::yield_now();
                    (before, COUNTER.with(Cell::get))
                })
            })
            .collect();
        for (i, handle) in handles.into_iter().enumerate() {
            let (before, after) = join_within(handle, SHORT).unwrap();
            assert_eq!(before, 0, "coroutine {i} started from someone else's value");
            assert_eq!(after, i as u64);
        }
    });
}

#[test]
fn a_value_persists_across_yields_and_migrations() {
    within(LONG, || {
        const COROUTINES: u64 = 500;
        const YIELDS: usize = 200;
        let rt = runtime(2);
        let handles: Vec<_> = (0..COROUTINES)
            .map(|i| {
                rt.spawn(move || {
                    LABEL.with(|l| l.set(Some(i)));
                    let mut threads = HashSet::new();
                    threads.insert(std::thread::current().id());
                    for _ in 0..YIELDS {
                        corun::yield_now();
                        threads.insert(std::thread::current().id());
                        assert_eq!(
                            LABEL.with(Cell::get),
                            Some(i),
                            "coroutine {i} lost its label"
                        );
                    }
                    threads.len() > 1
                })
            })
            .collect();
        let migrated = handles
            .into_iter()
            .map(|h| join_within(h, LONG).unwrap())
            .filter(|&moved| moved)
            .count();
        // The property is only exercised if coroutines did change threads; in practice hundreds
        // of them do.
        assert!(migrated > 0, "no coroutine changed threads");
        println!("{migrated} of {COROUTINES} coroutines changed threads");
    });
}

#[test]
fn values_are_dropped_when_the_coroutine_ends_before_join_returns() {
    within(SHORT, || {
        corun::coroutine_local! {
            static GUARD: std::sync::Mutex<Option<DropCounter>> = std::sync::Mutex::new(None);
        }
        let drops = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..50)
            .map(|_| {
                let drops = drops.clone();
                corun::spawn(move || {
                    GUARD.with(|g| *g.lock().unwrap() = Some(DropCounter(drops)));
                    corun::yield_now();
                })
            })
            .collect();
        for handle in handles {
            join_within(handle, SHORT).unwrap();
        }
        assert_eq!(drops.load(Ordering::SeqCst), 50);
    });
}

#[test]
fn values_are_dropped_when_the_coroutine_panics() {
    within(SHORT, || {
        let drops = Arc::new(AtomicUsize::new(0));
        let local = Arc::new(corun::CoroutineLocal::new(|| {
            Cell::new(None::<DropCounter>)
        }));
        let (d, l) = (drops.clone(), local.clone());
        let handle = corun::spawn(move || {
            l.with(|v| v.set(Some(DropCounter(d))));
            panic!("with a local set");
        });
        assert!(join_within(handle, SHORT).is_err());
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn coroutine_local_instances_are_independent() {
    within(SHORT, || {
        let a = Arc::new(corun::CoroutineLocal::new(|| Cell::new(1u32)));
        let b = Arc::new(corun::CoroutineLocal::new(|| Cell::new(1u32)));
        let (a2, b2) = (a.clone(), b.clone());
        let (seen_a, seen_b) = join_within(
            corun::spawn(move || {
                a2.with(|v| v.set(100));
                corun::yield_now();
                (a2.with(Cell::get), b2.with(Cell::get))
            }),
            SHORT,
        )
        .unwrap();
        assert_eq!((seen_a, seen_b), (100, 1));
    });
}

#[test]
fn a_coroutine_local_starts_from_init_in_every_coroutine() {
    within(SHORT, || {
        let made = Arc::new(AtomicUsize::new(0));
        let m = made.clone();
        let local = Arc::new(corun::CoroutineLocal::new(move || {
            m.fetch_add(1, Ordering::SeqCst);
            Cell::new(7u32)
        }));
        let handles: Vec<_> = (0..10)
            .map(|i| {
                let local = local.clone();
                corun::spawn(move || {
                    let first = local.with(Cell::get);
                    local.with(|v| v.set(i));
                    corun::yield_now();
                    (first, local.with(Cell::get))
                })
            })
            .collect();
        for (i, handle) in handles.into_iter().enumerate() {
            assert_eq!(join_within(handle, SHORT).unwrap(), (7, i as u32));
        }
        // Initialised once per coroutine, on first use, not on every access.
        assert_eq!(made.load(Ordering::SeqCst), 10);
    });
}

#[test]
fn values_are_dropped_with_their_coroutine_even_if_the_slot_was_dropped_first() {
    within(SHORT, || {
        let drops = Arc::new(AtomicUsize::new(0));
        let d = drops.clone();
        let handle = corun::spawn(move || {
            let local = corun::CoroutineLocal::new(|| Cell::new(None::<DropCounter>));
            local.with(|v| v.set(Some(DropCounter(d))));
            drop(local);
            corun::yield_now();
        });
        join_within(handle, SHORT).unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn a_local_used_by_another_locals_destructor_does_not_leak_or_hang() {
    within(SHORT, || {
        struct TouchesCounterOnDrop(Arc<AtomicUsize>);
        impl Drop for TouchesCounterOnDrop {
            fn drop(&mut self) {
                // Re-creates COUNTER during teardown, which must be dropped in turn.
                COUNTER.with(|c| c.set(c.get() + 1));
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        corun::coroutine_local! {
            static TOUCHER: Cell<Option<TouchesCounterOnDrop>> = Cell::new(None);
        }
        let drops = Arc::new(AtomicUsize::new(0));
        let d = drops.clone();
        let handle = corun::spawn(move || TOUCHER.with(|t| t.set(Some(TouchesCounterOnDrop(d)))));
        join_within(handle, SHORT).unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn local_key_outside_a_coroutine_is_per_thread() {
    COUNTER.with(|c| c.set(41));
    COUNTER.with(|c| c.set(c.get() + 1));
    assert_eq!(COUNTER.with(Cell::get), 42);
    let other = std::thread::spawn(|| COUNTER.with(Cell::get))
        .join()
        .unwrap();
    assert_eq!(other, 0, "another thread has its own value");
    assert_eq!(COUNTER.with(Cell::get), 42);
}

#[test]
fn coroutine_local_outside_a_coroutine_is_per_thread() {
    let local = Arc::new(corun::CoroutineLocal::new(|| Cell::new(0u32)));
    local.with(|v| v.set(5));
    let l = local.clone();
    let other = std::thread::spawn(move || l.with(Cell::get))
        .join()
        .unwrap();
    assert_eq!(other, 0);
    assert_eq!(local.with(Cell::get), 5);
}

#[test]
fn a_coroutine_does_not_see_the_value_of_the_thread_that_spawned_it() {
    within(SHORT, || {
        COUNTER.with(|c| c.set(99));
        let inside = join_within(corun::spawn(|| COUNTER.with(Cell::get)), SHORT).unwrap();
        assert_eq!(inside, 0);
        assert_eq!(COUNTER.with(Cell::get), 99);
    });
}
