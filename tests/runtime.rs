//! Spawning, joining, builders, panics, `current`, and `block_on`.

mod common;

use common::{join_within, panic_message, runtime, within, LONG, SHORT};
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

#[test]
fn spawn_returns_the_closures_value_through_join() {
    within(SHORT, || {
        let handle = corun::spawn(|| 6 * 7);
        assert_eq!(join_within(handle, SHORT).unwrap(), 42);
    });
}

#[test]
fn two_hundred_thousand_spawns_are_all_joined_with_their_values() {
    within(LONG, || {
        const N: u64 = 200_000;
        let rt = runtime(2);
        let handles: Vec<_> = (0..N).map(|i| rt.spawn(move || i * 3)).collect();
        let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, 3 * N * (N - 1) / 2);
    });
}

#[test]
fn two_hundred_thousand_spawns_from_inside_a_coroutine_are_all_joined() {
    within(LONG, || {
        const N: u64 = 200_000;
        let rt = runtime(2);
        let sum = rt.block_on(|| {
            let handles: Vec<_> = (0..N).map(|i| corun::spawn(move || i)).collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        });
        assert_eq!(sum, N * (N - 1) / 2);
    });
}

#[test]
fn join_inside_a_coroutine_parks_only_the_caller_on_a_one_worker_runtime() {
    within(SHORT, || {
        let rt = runtime(1);
        // If join blocked the worker thread, the child could never run on the single worker.
        let value = rt.block_on(|| {
            let child = corun::spawn(|| {
                corun::yield_now();
                5
            });
            child.join().unwrap() + 1
        });
        assert_eq!(value, 6);
    });
}

#[test]
fn is_finished_becomes_true_once_the_body_returns() {
    within(SHORT, || {
        let rt = runtime(2);
        let release = Arc::new(AtomicBool::new(false));
        let r = release.clone();
        let handle = rt.spawn(move || {
            while !r.load(Ordering::SeqCst) {
                corun::yield_now();
            }
            "done"
        });
        assert!(!handle.is_finished());
        release.store(true, Ordering::SeqCst);
        common::wait_until(SHORT, "the coroutine finishes", || handle.is_finished());
        assert_eq!(handle.join().unwrap(), "done");
    });
}

#[test]
fn spawn_inside_a_coroutine_uses_that_coroutines_runtime() {
    within(SHORT, || {
        let rt = corun::runtime::Builder::new()
            .workers(1)
            .thread_name("spawn-here")
            .build()
            .unwrap();
        let thread_name = rt.block_on(|| {
            corun::spawn(|| std::thread::current().name().map(str::to_owned))
                .join()
                .unwrap()
        });
        let thread_name = thread_name.expect("worker threads are named");
        assert!(
            thread_name.starts_with("spawn-here"),
            "nested spawn ran on thread {thread_name:?}"
        );
    });
}

#[test]
fn runtime_reports_its_worker_count() {
    let rt = runtime(3);
    assert_eq!(rt.workers(), 3);
    assert_eq!(rt.metrics().workers.len(), 3);
}

#[test]
fn coroutine_ids_are_unique_and_match_the_join_handle() {
    within(SHORT, || {
        let rt = runtime(2);
        let handles: Vec<_> = (0..1000)
            .map(|_| rt.spawn(|| corun::current().id()))
            .collect();
        let mut seen = std::collections::HashSet::new();
        for handle in handles {
            let outside = handle.coroutine().id();
            let inside = handle.join().unwrap();
            assert_eq!(inside, outside);
            assert!(seen.insert(inside), "id {inside:?} was handed out twice");
        }
    });
}

#[test]
fn try_current_inside_a_coroutine_is_that_coroutine() {
    within(SHORT, || {
        let handle = corun::spawn(|| corun::try_current().map(|c| c.id()));
        let expected = handle.coroutine().id();
        assert_eq!(handle.join().unwrap(), Some(expected));
    });
}

#[test]
fn current_panics_outside_a_coroutine() {
    let payload = panic::catch_unwind(corun::current).expect_err("current() outside a coroutine");
    let message = panic_message(&*payload).unwrap_or_default();
    assert!(
        message.contains("outside a coroutine"),
        "unexpected panic message {message:?}"
    );
}

#[test]
fn try_current_outside_a_coroutine_is_none() {
    assert!(corun::try_current().is_none());
    // Also on a thread that never touched corun before.
    assert!(std::thread::spawn(corun::try_current)
        .join()
        .unwrap()
        .is_none());
}

#[test]
fn a_panicking_coroutines_join_returns_its_str_payload() {
    within(SHORT, || {
        let handle = corun::spawn(|| -> u32 { panic!("boom") });
        let payload = join_within(handle, SHORT).expect_err("the coroutine panicked");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
    });
}

#[test]
fn a_panicking_coroutines_join_returns_its_formatted_payload() {
    within(SHORT, || {
        let handle = corun::spawn(|| -> u32 {
            let n = std::hint::black_box(7); // not a constant, so the payload is a `String`
            panic!("boom number {n}")
        });
        let payload = join_within(handle, SHORT).expect_err("the coroutine panicked");
        assert_eq!(
            payload.downcast_ref::<String>().map(String::as_str),
            Some("boom number 7")
        );
    });
}

#[test]
fn a_panic_with_a_custom_payload_is_returned_as_is() {
    within(SHORT, || {
        #[derive(Debug, PartialEq)]
        struct Custom(u32);
        let handle = corun::spawn(|| panic::panic_any(Custom(9)));
        let payload = join_within(handle, SHORT).expect_err("the coroutine panicked");
        assert_eq!(payload.downcast_ref::<Custom>(), Some(&Custom(9)));
    });
}

#[test]
fn the_worker_survives_panicking_coroutines() {
    within(SHORT, || {
        let rt = runtime(1);
        for i in 0..20 {
            let handle = rt.spawn(move || {
                corun::yield_now();
                if i % 2 == 0 {
                    panic!("panic {i}");
                }
                i
            });
            match join_within(handle, SHORT) {
                Ok(v) => assert_eq!(v, i),
                Err(payload) => {
                    assert_eq!(i % 2, 0);
                    assert_eq!(panic_message(&*payload), Some(&*format!("panic {i}")));
                }
            }
        }
        // The single worker still runs coroutines afterwards.
        let ran = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..100)
            .map(|_| {
                let ran = ran.clone();
                rt.spawn(move || {
                    corun::yield_now();
                    ran.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        for handle in handles {
            join_within(handle, SHORT).unwrap();
        }
        assert_eq!(ran.load(Ordering::SeqCst), 100);
    });
}

#[test]
fn a_panic_unwinds_the_coroutines_stack() {
    within(SHORT, || {
        let drops = Arc::new(AtomicUsize::new(0));
        let guard = common::DropCounter(drops.clone());
        let handle = corun::spawn(move || {
            let _guard = guard;
            corun::yield_now();
            panic!("unwind me");
        });
        assert!(join_within(handle, SHORT).is_err());
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn block_on_returns_the_value_and_may_borrow_from_the_callers_stack() {
    within(SHORT, || {
        let rt = runtime(2);
        let mut numbers = vec![1u64, 2, 3];
        let total = rt.block_on(|| {
            corun::yield_now();
            numbers.push(4); // a mutable borrow of the caller's local
            numbers.iter().sum::<u64>()
        });
        assert_eq!(total, 10);
        assert_eq!(numbers, [1, 2, 3, 4]);
    });
}

#[test]
fn block_on_propagates_a_panic_to_the_caller() {
    within(SHORT, || {
        let rt = runtime(2);
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(|| -> u32 {
                corun::yield_now();
                panic!("from block_on")
            })
        }));
        let payload = result.expect_err("the panic crosses block_on");
        assert_eq!(panic_message(&*payload), Some("from block_on"));
        // The runtime is still usable.
        assert_eq!(rt.block_on(|| 3), 3);
    });
}

#[test]
fn block_on_inside_a_coroutine_parks_only_the_caller() {
    within(SHORT, || {
        let rt = runtime(1);
        let rt_ref = &rt;
        // With one worker, blocking the thread in the inner block_on would deadlock.
        let value = rt.block_on(|| rt_ref.block_on(|| 20) + 1);
        assert_eq!(value, 21);
    });
}

#[test]
fn builder_name_is_visible_through_current() {
    within(SHORT, || {
        let handle = corun::Builder::new()
            .name("visible-name".into())
            .spawn(|| corun::current().name().map(str::to_owned))
            .unwrap();
        assert_eq!(handle.coroutine().name(), Some("visible-name"));
        assert_eq!(
            join_within(handle, SHORT).unwrap().as_deref(),
            Some("visible-name")
        );
    });
}

#[test]
fn unnamed_coroutines_have_no_name() {
    within(SHORT, || {
        let handle = corun::spawn(|| corun::current().name().map(str::to_owned));
        assert_eq!(join_within(handle, SHORT).unwrap(), None);
    });
}

#[test]
fn builder_spawn_on_runs_on_the_given_runtime_with_the_given_stack_size() {
    within(SHORT, || {
        let rt = corun::runtime::Builder::new()
            .workers(1)
            .thread_name("spawn-on")
            .build()
            .unwrap();
        let handle = corun::Builder::new()
            .name("big".into())
            .stack_size(1 << 20)
            .spawn_on(&rt, || {
                // Four times what a default 64 KiB stack holds.
                let mut buffer = [7u8; 256 * 1024];
                std::hint::black_box(&mut buffer);
                let sum: u64 = buffer.iter().map(|&b| u64::from(b)).sum();
                (std::thread::current().name().map(str::to_owned), sum)
            })
            .unwrap();
        let (thread, sum) = join_within(handle, SHORT).unwrap();
        assert!(thread.unwrap().starts_with("spawn-on"));
        assert_eq!(sum, 7 * 256 * 1024);
    });
}

#[test]
fn builder_stack_size_usize_max_is_invalid_input_not_a_panic() {
    let error = corun::Builder::new()
        .stack_size(usize::MAX)
        .spawn(|| ())
        .expect_err("a stack of usize::MAX bytes cannot be made");
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn builder_stack_size_above_one_gib_is_invalid_input() {
    let rt = runtime(1);
    let error = corun::Builder::new()
        .stack_size((1 << 30) + 1)
        .spawn_on(&rt, || ())
        .expect_err("stacks above 1 GiB are refused");
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn builder_tiny_stack_size_is_rounded_up_and_works() {
    within(SHORT, || {
        let handle = corun::Builder::new()
            .stack_size(1)
            .spawn(|| {
                corun::yield_now();
                1 + 1
            })
            .unwrap();
        assert_eq!(join_within(handle, SHORT).unwrap(), 2);
    });
}

#[test]
fn runtime_builder_with_zero_workers_is_an_error() {
    let error = corun::runtime::Builder::new()
        .workers(0)
        .build()
        .expect_err("zero workers");
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn runtime_builder_with_fewer_max_threads_than_workers_is_an_error() {
    let error = corun::runtime::Builder::new()
        .workers(2)
        .max_threads(1)
        .build()
        .expect_err("max_threads below workers");
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn runtime_builder_with_more_threads_than_the_limit_is_an_error() {
    for builder in [
        corun::runtime::Builder::new()
            .workers(1)
            .max_threads(1_000_000),
        corun::runtime::Builder::new().workers(20_000),
    ] {
        let error = builder.build().expect_err("over the thread limit");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }
}

#[test]
fn runtime_builder_with_a_huge_default_stack_size_is_an_error() {
    let error = corun::runtime::Builder::new()
        .workers(1)
        .stack_size(usize::MAX)
        .build()
        .expect_err("impossible default stack size");
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn runtime_builder_stack_size_applies_to_its_coroutines() {
    within(SHORT, || {
        let rt = corun::runtime::Builder::new()
            .workers(1)
            .stack_size(1 << 20)
            .build()
            .unwrap();
        let sum = rt.block_on(|| {
            let mut buffer = [1u8; 256 * 1024];
            std::hint::black_box(&mut buffer);
            buffer.iter().map(|&b| u64::from(b)).sum::<u64>()
        });
        assert_eq!(sum, 256 * 1024);
    });
}

#[test]
fn a_coroutine_can_join_a_coroutine_of_another_runtime() {
    within(SHORT, || {
        let one = runtime(1);
        let two = runtime(1);
        let release = Arc::new(AtomicBool::new(false));
        let r = release.clone();
        let far = two.spawn(move || {
            while !r.load(Ordering::SeqCst) {
                corun::yield_now();
            }
            "from the other runtime"
        });
        let near = one.spawn(move || far.join().unwrap());
        release.store(true, Ordering::SeqCst);
        assert_eq!(join_within(near, SHORT).unwrap(), "from the other runtime");
    });
}

#[test]
fn unpark_after_the_coroutine_finished_is_harmless() {
    within(SHORT, || {
        let rt = runtime(1);
        let handle = rt.spawn(|| 1);
        let coroutine = handle.coroutine().clone();
        assert_eq!(join_within(handle, SHORT).unwrap(), 1);
        for _ in 0..3 {
            coroutine.unpark();
        }
        // The runtime carries on.
        assert_eq!(rt.block_on(|| 2), 2);
    });
}

#[test]
fn the_result_of_a_detached_coroutine_is_dropped() {
    within(SHORT, || {
        let drops = Arc::new(AtomicUsize::new(0));
        let d = drops.clone();
        drop(corun::spawn(move || {
            corun::yield_now();
            common::DropCounter(d)
        }));
        common::wait_until(SHORT, "the unjoined result is dropped", || {
            drops.load(Ordering::SeqCst) == 1
        });
    });
}

#[test]
fn handles_are_send_and_sync_like_std_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<corun::Coroutine>();
    send_sync::<corun::CoroutineId>();
    send_sync::<corun::Runtime>();
    send_sync::<corun::JoinHandle<u32>>();
    send::<corun::JoinHandle<std::cell::Cell<u32>>>();
}

#[test]
fn many_runtimes_can_be_created_used_and_dropped_in_turn() {
    within(LONG, || {
        for round in 0..30usize {
            let rt = runtime(1 + round % 3);
            let handles: Vec<_> = (0..100usize)
                .map(|i| {
                    rt.spawn(move || {
                        corun::yield_now();
                        i + round
                    })
                })
                .collect();
            let sum: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
            assert_eq!(sum, 4950 + 100 * round);
        }
    });
}

#[test]
fn block_on_from_many_threads_at_once() {
    within(LONG, || {
        let rt = runtime(2);
        std::thread::scope(|threads| {
            for t in 0..8u64 {
                let rt = &rt;
                threads.spawn(move || {
                    for i in 0..200u64 {
                        let v = rt.block_on(|| {
                            corun::yield_now();
                            t * 1000 + i
                        });
                        assert_eq!(v, t * 1000 + i);
                    }
                });
            }
        });
    });
}

#[test]
fn thread_panicking_is_false_in_a_coroutine_while_another_is_suspended_mid_unwind() {
    within(SHORT, || {
        // `std::thread::panicking()` is per OS thread in std. A coroutine whose destructor
        // parks while it unwinds must not make the other coroutines that run on its worker
        // meanwhile look as if they were panicking (that also decides mutex poisoning).
        struct ParksOnDrop {
            in_drop: Arc<AtomicBool>,
            release: Arc<AtomicBool>,
        }
        impl Drop for ParksOnDrop {
            fn drop(&mut self) {
                self.in_drop.store(true, Ordering::SeqCst);
                // Say, waiting for a child to finish: suspended in the middle of unwinding.
                while !self.release.load(Ordering::SeqCst) {
                    corun::park();
                }
            }
        }
        // One worker. A coroutine never switches while it unwinds (std's panic count is per OS
        // thread), so the panicker's `park` holds the worker's thread; the monitor hands the
        // queue to a spare thread, where the bystander runs. (With `max_threads(1)` there is no
        // spare and this would wait forever: the documented cost of that rule.)
        let rt = corun::runtime::Builder::new().workers(1).build().unwrap();
        let (panicker, bystander_saw) = rt.block_on(|| {
            let in_drop = Arc::new(AtomicBool::new(false));
            let release = Arc::new(AtomicBool::new(false));
            let guard = ParksOnDrop {
                in_drop: in_drop.clone(),
                release: release.clone(),
            };
            let panicker = corun::spawn(move || {
                let _guard = guard;
                panic!("unwinding through a destructor that parks");
            });
            let p = panicker.coroutine().clone();
            let bystander = corun::spawn(move || {
                let mut rounds = 0;
                while !in_drop.load(Ordering::SeqCst) && rounds < 1_000_000 {
                    corun::yield_now();
                    rounds += 1;
                }
                let saw = std::thread::panicking();
                release.store(true, Ordering::SeqCst);
                p.unpark();
                assert!(rounds < 1_000_000, "the panicker never reached its drop");
                saw
            });
            (panicker.join(), bystander.join().unwrap())
        });
        assert!(panicker.is_err());
        assert!(
            !bystander_saw,
            "std::thread::panicking() was true in a coroutine that was not panicking"
        );
    });
}

#[test]
fn live_coroutines_in_metrics_falls_back_to_zero() {
    within(SHORT, || {
        let rt = runtime(2);
        let handles: Vec<_> = (0..500).map(|_| rt.spawn(corun::yield_now)).collect();
        for handle in handles {
            join_within(handle, SHORT).unwrap();
        }
        common::wait_until(SHORT, "finished coroutines leave the registry", || {
            rt.metrics().live_coroutines == 0
        });
    });
}
