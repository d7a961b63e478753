//! `Generator`: Lua-style coroutines driven by their caller on the caller's thread.

mod common;

use common::{panic_message, within, DropCounter, SHORT};
use corun::{Generator, GeneratorState};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[test]
fn values_go_in_through_resume_and_out_through_suspend() {
    let mut g = Generator::new(|y, first: i32| {
        let second = y.suspend(first * 2);
        let third = y.suspend(second + 100);
        format!("{first},{second},{third}")
    });
    assert!(!g.is_complete());
    assert_eq!(g.resume(5), GeneratorState::Yielded(10));
    assert_eq!(g.resume(1), GeneratorState::Yielded(101));
    assert!(!g.is_complete());
    assert_eq!(g.resume(-3), GeneratorState::Complete("5,1,-3".to_owned()));
    assert!(g.is_complete());
}

#[test]
fn a_body_that_returns_at_once_completes_on_the_first_resume() {
    let mut g: Generator<u8, (), u16> = Generator::new(|_, x| u16::from(x) * 300);
    assert_eq!(g.resume(2), GeneratorState::Complete(600));
    assert!(g.is_complete());
}

#[test]
fn a_unit_generator_is_an_iterator() {
    let squares: Vec<u64> = Generator::new(|y, ()| {
        for i in 1..=5u64 {
            y.suspend(i * i);
        }
    })
    .collect();
    assert_eq!(squares, [1, 4, 9, 16, 25]);
}

#[test]
fn an_exhausted_iterator_keeps_returning_none() {
    let mut g = Generator::new(|y, ()| y.suspend('a'));
    assert_eq!(g.next(), Some('a'));
    assert_eq!(g.next(), None);
    assert!(g.is_complete());
    assert_eq!(g.next(), None);
}

#[test]
fn an_infinite_generator_is_a_lazy_iterator() {
    let fib = Generator::new(|y, ()| {
        let (mut a, mut b) = (0u64, 1u64);
        loop {
            y.suspend(a);
            (a, b) = (b, a + b);
        }
    });
    let first: Vec<u64> = fib.take(10).collect();
    assert_eq!(first, [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]);
}

#[test]
fn resuming_a_completed_generator_panics() {
    let mut g: Generator<(), (), ()> = Generator::new(|_, ()| ());
    assert_eq!(g.resume(()), GeneratorState::Complete(()));
    let result = panic::catch_unwind(AssertUnwindSafe(|| g.resume(())));
    assert!(result.is_err());
}

#[test]
fn dropping_a_suspended_generator_runs_the_destructors_on_its_stack() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let mut g = Generator::new(move |y, ()| {
        let _outer = DropCounter(d.clone());
        let _inner = DropCounter(d);
        loop {
            y.suspend(());
        }
    });
    assert_eq!(g.resume(()), GeneratorState::Yielded(()));
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(g);
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

#[test]
fn dropping_a_generator_that_never_ran_drops_its_closure() {
    let drops = Arc::new(AtomicUsize::new(0));
    let guard = DropCounter(drops.clone());
    let g: Generator<(), (), ()> = Generator::new(move |_, ()| drop(guard));
    drop(g);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn a_panic_in_the_body_propagates_out_of_resume() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let mut g = Generator::new(move |y, ()| {
        let _guard = DropCounter(d);
        y.suspend(1);
        panic!("generator boom");
    });
    assert_eq!(g.resume(()), GeneratorState::Yielded(1));
    let payload = panic::catch_unwind(AssertUnwindSafe(|| g.resume(())))
        .expect_err("the body's panic comes out of resume");
    assert_eq!(panic_message(&*payload), Some("generator boom"));
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the body's stack was unwound"
    );
}

#[test]
fn with_stack_size_refuses_impossible_sizes_and_accepts_big_ones() {
    let error =
        Generator::<(), (), ()>::with_stack_size(usize::MAX, |_, ()| ()).expect_err("usize::MAX");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);

    let mut g = Generator::<(), (), u64>::with_stack_size(1 << 20, |_, ()| {
        let mut buffer = [3u8; 256 * 1024]; // four times a default stack
        std::hint::black_box(&mut buffer);
        buffer.iter().map(|&b| u64::from(b)).sum()
    })
    .unwrap();
    assert_eq!(g.resume(()), GeneratorState::Complete(3 * 256 * 1024));
}

#[test]
fn generators_nest() {
    let outer = Generator::new(|y, ()| {
        for base in [10u32, 20] {
            let inner = Generator::new(move |yi, ()| {
                for k in 0..3 {
                    yi.suspend(base + k);
                }
            });
            for v in inner {
                y.suspend(v);
            }
        }
    });
    assert_eq!(outer.collect::<Vec<_>>(), [10, 11, 12, 20, 21, 22]);
}

#[test]
fn a_generator_driven_inside_a_coroutine_survives_yields_of_that_coroutine() {
    within(SHORT, || {
        let rt = common::runtime(2);
        let handles: Vec<_> = (0..50u32)
            .map(|i| {
                rt.spawn(move || {
                    let g = Generator::new(move |y, ()| {
                        for k in 0..20 {
                            y.suspend(i * 100 + k);
                        }
                    });
                    let mut got = Vec::new();
                    for v in g {
                        got.push(v);
                        corun::yield_now(); // the coroutine, generator and all, may migrate
                    }
                    got
                })
            })
            .collect();
        for (i, handle) in handles.into_iter().enumerate() {
            let expected: Vec<u32> = (0..20).map(|k| i as u32 * 100 + k).collect();
            assert_eq!(common::join_within(handle, SHORT).unwrap(), expected);
        }
    });
}

#[test]
fn a_generator_does_not_run_until_first_resumed() {
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let mut g: Generator<(), (), ()> = Generator::new(move |_, ()| {
        r.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(g.resume(()), GeneratorState::Complete(()));
    assert_eq!(ran.load(Ordering::SeqCst), 1);
}

#[test]
fn a_generator_body_may_yield_the_coroutine_that_drives_it() {
    within(SHORT, || {
        let rt = common::runtime(2);
        let handles: Vec<_> = (0..100u32)
            .map(|i| {
                rt.spawn(move || {
                    let g = Generator::new(move |y, ()| {
                        for k in 0..50 {
                            corun::yield_now(); // switches the coroutine out from the generator's stack
                            y.suspend(i + k);
                        }
                    });
                    g.sum::<u32>()
                })
            })
            .collect();
        for (i, handle) in handles.into_iter().enumerate() {
            let expected: u32 = (0..50).map(|k| i as u32 + k).sum();
            assert_eq!(common::join_within(handle, SHORT).unwrap(), expected);
        }
    });
}
