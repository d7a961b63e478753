//! `corun::scope`: scoped coroutines that borrow from the caller, like `std::thread::scope`.

mod common;

use common::{panic_message, runtime, within, SHORT};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

#[test]
fn scoped_coroutines_borrow_local_data_that_is_mutable_after_the_scope() {
    within(SHORT, || {
        let mut data = vec![1, 2, 3];
        let mut extra = Vec::new();
        let total = AtomicUsize::new(0);
        corun::scope(|s| {
            for x in &data {
                let total = &total;
                s.spawn(move || {
                    corun::yield_now();
                    total.fetch_add(*x, Ordering::SeqCst);
                });
            }
            // One coroutine may hold the only mutable borrow of another local.
            s.spawn(|| extra.push(10));
        });
        data.push(4);
        extra.push(20);
        assert_eq!(total.into_inner(), 6);
        assert_eq!(data, [1, 2, 3, 4]);
        assert_eq!(extra, [10, 20]);
    });
}

#[test]
fn scope_returns_the_value_of_its_closure() {
    within(SHORT, || {
        let text = String::from("borrowed");
        let length = corun::scope(|s| {
            let handle = s.spawn(|| text.len());
            handle.join().unwrap() * 2
        });
        assert_eq!(length, 16);
    });
}

#[test]
fn scope_waits_for_every_coroutine_even_unjoined_ones() {
    within(SHORT, || {
        const N: usize = 200;
        let finished = AtomicUsize::new(0);
        corun::scope(|s| {
            for i in 0..N {
                let finished = &finished;
                // Handles dropped at once: nobody joins these.
                s.spawn(move || {
                    for _ in 0..(i % 5) {
                        corun::yield_now();
                    }
                    finished.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        assert_eq!(finished.load(Ordering::SeqCst), N);
    });
}

#[test]
fn scope_waits_for_coroutines_that_park_for_a_while() {
    within(SHORT, || {
        let done = AtomicBool::new(false);
        corun::scope(|s| {
            let sleeper = s.spawn(|| {
                while !done.load(Ordering::SeqCst) {
                    corun::park();
                }
            });
            let me = sleeper.coroutine().clone();
            let done = &done;
            s.spawn(move || {
                for _ in 0..10 {
                    corun::yield_now();
                }
                done.store(true, Ordering::SeqCst);
                me.unpark();
            });
        });
        assert!(done.load(Ordering::SeqCst));
    });
}

#[test]
fn a_panicking_unjoined_scoped_coroutine_makes_scope_panic() {
    within(SHORT, || {
        let other_finished = AtomicBool::new(false);
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            corun::scope(|s| {
                s.spawn(|| panic!("scoped boom"));
                s.spawn(|| {
                    corun::yield_now();
                    other_finished.store(true, Ordering::SeqCst);
                });
            })
        }));
        let payload = result.expect_err("scope panics when a coroutine's panic went unobserved");
        let message = panic_message(&*payload).unwrap_or_default();
        assert!(
            message.contains("scoped coroutine panicked"),
            "unexpected scope panic {message:?}"
        );
        // It still waited for the others first.
        assert!(other_finished.load(Ordering::SeqCst));
    });
}

#[test]
fn a_panicking_scoped_coroutine_that_was_joined_does_not_make_scope_panic() {
    within(SHORT, || {
        let outcome = corun::scope(|s| {
            let handle = s.spawn(|| -> u32 { panic!("observed") });
            let payload = handle.join().expect_err("the coroutine panicked");
            panic_message(&*payload).map(str::to_owned)
        });
        assert_eq!(outcome.as_deref(), Some("observed"));
    });
}

#[test]
fn a_panic_in_the_scope_closure_propagates_after_the_coroutines_finish() {
    within(SHORT, || {
        let finished = AtomicUsize::new(0);
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            corun::scope(|s| {
                for _ in 0..10 {
                    s.spawn(|| {
                        for _ in 0..5 {
                            corun::yield_now();
                        }
                        finished.fetch_add(1, Ordering::SeqCst);
                    });
                }
                panic!("the closure itself");
            })
        }));
        let payload = result.expect_err("the closure's panic propagates");
        assert_eq!(panic_message(&*payload), Some("the closure itself"));
        assert_eq!(finished.load(Ordering::SeqCst), 10);
    });
}

#[test]
fn a_scope_inside_a_coroutine_borrows_the_coroutines_locals() {
    within(SHORT, || {
        let rt = runtime(2);
        let result = rt.block_on(|| {
            let words = vec!["a", "bb", "ccc"];
            let lengths = Mutex::new(Vec::new());
            corun::scope(|s| {
                for w in &words {
                    let lengths = &lengths;
                    s.spawn(move || {
                        corun::yield_now();
                        lengths.lock().unwrap().push(w.len());
                    });
                }
            });
            let mut lengths = lengths.into_inner().unwrap();
            lengths.sort_unstable();
            lengths
        });
        assert_eq!(result, [1, 2, 3]);
    });
}

#[test]
fn nested_scopes_inside_scoped_coroutines_all_finish_before_the_outer_scope_returns() {
    within(SHORT, || {
        let leaves = AtomicUsize::new(0);
        corun::scope(|outer| {
            for _ in 0..4 {
                outer.spawn(|| {
                    let local = [1usize, 2, 3];
                    corun::scope(|inner| {
                        for x in &local {
                            let leaves = &leaves;
                            inner.spawn(move || {
                                corun::yield_now();
                                leaves.fetch_add(*x, Ordering::SeqCst);
                            });
                        }
                    });
                });
            }
        });
        assert_eq!(leaves.load(Ordering::SeqCst), 4 * 6);
    });
}

#[test]
fn a_scope_inside_a_coroutine_parks_only_the_caller_on_a_one_worker_runtime() {
    within(SHORT, || {
        // Waiting for the children must not block the only worker thread they run on.
        let rt = runtime(1);
        let sum = rt.block_on(|| {
            let values = [1, 2, 3, 4];
            let sum = AtomicUsize::new(0);
            corun::scope(|s| {
                for v in &values {
                    let sum = &sum;
                    s.spawn(move || {
                        corun::yield_now();
                        sum.fetch_add(*v, Ordering::SeqCst);
                    });
                }
            });
            sum.into_inner()
        });
        assert_eq!(sum, 10);
    });
}

#[test]
fn scoped_coroutines_run_on_the_runtime_of_the_coroutine_that_opened_the_scope() {
    within(SHORT, || {
        let rt = corun::runtime::Builder::new()
            .workers(1)
            .thread_name("scope-home")
            .build()
            .unwrap();
        let name = rt.block_on(|| {
            corun::scope(|s| {
                s.spawn(|| std::thread::current().name().map(str::to_owned))
                    .join()
                    .unwrap()
            })
        });
        let name = name.unwrap_or_default();
        assert!(name.starts_with("scope-home"), "ran on thread {name:?}");
    });
}

#[test]
fn a_scoped_coroutine_can_spawn_siblings_into_the_same_scope() {
    within(SHORT, || {
        let count = AtomicUsize::new(0);
        corun::scope(|s| {
            for _ in 0..10 {
                s.spawn(|| {
                    corun::yield_now();
                    for _ in 0..10 {
                        s.spawn(|| {
                            corun::yield_now();
                            count.fetch_add(1, Ordering::SeqCst);
                        });
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        assert_eq!(count.load(Ordering::SeqCst), 110);
    });
}
