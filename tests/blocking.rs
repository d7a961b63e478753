//! `corun::blocking`: closures that block run on the pool while the worker runs the others.

mod common;

use common::{runtime, within, LONG, SHORT};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

#[test]
fn a_blocking_closure_does_not_stall_a_single_worker() {
    within(SHORT, || {
        let rt = runtime(1);
        rt.block_on(|| {
            let (release_tx, release_rx) = mpsc::channel::<()>();
            let ticks = Arc::new(AtomicU64::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let ticker = {
                let (ticks, stop) = (ticks.clone(), stop.clone());
                corun::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        ticks.fetch_add(1, Ordering::SeqCst);
                        corun::yield_now();
                    }
                })
            };
            let blocked = corun::spawn(move || {
                // Blocks its thread until the ticker has ticked: on the one worker that would
                // never happen, so this returns only if it runs elsewhere.
                corun::blocking(move || release_rx.recv().unwrap());
                "released"
            });
            while ticks.load(Ordering::SeqCst) < 1000 {
                corun::yield_now();
            }
            release_tx.send(()).unwrap();
            assert_eq!(blocked.join().unwrap(), "released");
            stop.store(true, Ordering::SeqCst);
            ticker.join().unwrap();
        });
    });
}

#[test]
fn the_closure_may_borrow_and_its_panic_reaches_the_caller() {
    within(SHORT, || {
        let rt = runtime(2);
        rt.block_on(|| {
            let data = [1u64, 2, 3];
            let sum: u64 = corun::blocking(|| data.iter().sum());
            assert_eq!(sum, 6);

            let caught = corun::spawn(|| corun::blocking(|| -> u8 { panic!("in the pool") }))
                .join()
                .unwrap_err();
            assert_eq!(caught.downcast_ref::<&str>(), Some(&"in the pool"));
        });
    });
}

#[test]
fn many_coroutines_block_at_once() {
    within(LONG, || {
        let rt = runtime(2);
        let total: u64 = rt.block_on(|| {
            let handles: Vec<_> = (0..2000u64)
                .map(|i| {
                    corun::spawn(move || {
                        corun::blocking(move || {
                            std::thread::sleep(Duration::from_millis(2));
                            i
                        })
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(total, (0..2000).sum::<u64>());
    });
}

#[test]
fn on_a_plain_thread_the_closure_runs_in_place() {
    let me = std::thread::current().id();
    assert_eq!(corun::blocking(|| std::thread::current().id()), me);
}

#[test]
fn shutdown_waits_for_a_borrowing_closure_before_unwinding_its_caller() {
    within(SHORT, || {
        let rt = runtime(1);
        let (started_tx, started_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let finished = Arc::new(AtomicBool::new(false));
        let seen_finished = Arc::new(AtomicBool::new(false));
        {
            let (finished, seen_finished) = (finished.clone(), seen_finished.clone());
            rt.spawn(move || {
                // Dropped when the coroutine unwinds (with `Cancelled`, the runtime being shut
                // down): that must come after the job, which borrows this stack, has finished.
                struct Unwound(Arc<AtomicBool>, Arc<AtomicBool>);
                impl Drop for Unwound {
                    fn drop(&mut self) {
                        self.1
                            .store(self.0.load(Ordering::SeqCst), Ordering::SeqCst);
                    }
                }
                let _unwound = Unwound(finished.clone(), seen_finished);
                let mut local = [0u8; 64];
                let borrowed = &mut local; // on the coroutine's stack, borrowed by the job
                corun::blocking(move || {
                    started_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    borrowed.fill(7);
                    finished.store(true, Ordering::SeqCst);
                });
                corun::park(); // not reached if the unwind came first; parks if it did not
            });
        }
        started_rx.recv().unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            release_tx.send(()).unwrap();
        });
        drop(rt); // shuts down while the coroutine waits for the pool
        releaser.join().unwrap();
        assert!(finished.load(Ordering::SeqCst));
        assert!(
            seen_finished.load(Ordering::SeqCst),
            "the caller resumed after the job"
        );
    });
}
