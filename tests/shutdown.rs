//! Dropping a `Runtime`: parked coroutines unwind with `Cancelled`, unstarted ones have their
//! closures dropped, and nothing is leaked or left hanging.

mod common;

use common::{join_within, runtime, wait_until, within, DropCounter, LONG, SHORT};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn is_cancelled(result: &std::thread::Result<()>) -> bool {
    matches!(result, Err(payload) if payload.downcast_ref::<corun::Cancelled>().is_some())
}

#[test]
fn runtime_drop_unwinds_parked_coroutines_running_their_destructors() {
    within(SHORT, || {
        const N: usize = 200;
        let rt = runtime(2);
        let drops = Arc::new(AtomicUsize::new(0));
        let parking = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..N)
            .map(|_| {
                let guard = DropCounter(drops.clone());
                let parking = parking.clone();
                rt.spawn(move || {
                    let _guard = guard; // on the coroutine's stack from here on
                    parking.fetch_add(1, Ordering::SeqCst);
                    loop {
                        corun::park(); // forever: nobody unparks
                    }
                })
            })
            .collect();
        wait_until(SHORT, "every coroutine started", || {
            parking.load(Ordering::SeqCst) == N
        });
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        drop(rt);
        assert_eq!(drops.load(Ordering::SeqCst), N, "every guard was dropped");
        for handle in handles {
            assert!(handle.is_finished());
            let result = join_within(handle, SHORT);
            assert!(is_cancelled(&result), "joined with {result:?}");
        }
    });
}

#[test]
fn runtime_drop_unwinds_coroutines_parked_in_join_and_in_scope() {
    within(SHORT, || {
        let rt = runtime(2);
        let drops = Arc::new(AtomicUsize::new(0));
        let ready = Arc::new(AtomicUsize::new(0));
        let (d, r) = (drops.clone(), ready.clone());
        // A coroutine waiting in `scope` for children that park forever, and one waiting in
        // `join` for a coroutine that parks forever.
        let scoper = rt.spawn(move || {
            let guard = DropCounter(d.clone());
            corun::scope(|s| {
                for _ in 0..3 {
                    let (d, r, guard) = (d.clone(), r.clone(), &guard);
                    s.spawn(move || {
                        let _mine = DropCounter(d);
                        let _borrow = guard; // borrows the scope owner's stack
                        r.fetch_add(1, Ordering::SeqCst);
                        loop {
                            corun::park();
                        }
                    });
                }
            });
        });
        let (d, r) = (drops.clone(), ready.clone());
        let joiner = rt.spawn(move || {
            let _guard = DropCounter(d.clone());
            let child = corun::spawn(move || {
                let _guard = DropCounter(d);
                r.fetch_add(1, Ordering::SeqCst);
                loop {
                    corun::park();
                }
            });
            let _ = child.join();
        });
        wait_until(SHORT, "all the parkers started", || {
            ready.load(Ordering::SeqCst) == 4
        });
        drop(rt);
        assert_eq!(drops.load(Ordering::SeqCst), 6);
        assert!(is_cancelled(&join_within(scoper, SHORT)));
        assert!(is_cancelled(&join_within(joiner, SHORT)));
    });
}

#[test]
fn runtime_drop_unwinds_coroutines_that_were_yielding() {
    within(SHORT, || {
        let rt = runtime(2);
        let drops = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let (guard, started) = (DropCounter(drops.clone()), started.clone());
                rt.spawn(move || {
                    let _guard = guard;
                    started.fetch_add(1, Ordering::SeqCst);
                    // Bounded, but far longer than the test waits.
                    let deadline = Instant::now() + Duration::from_secs(60);
                    while Instant::now() < deadline {
                        corun::yield_now();
                    }
                })
            })
            .collect();
        wait_until(SHORT, "every yielder started", || {
            started.load(Ordering::SeqCst) == 20
        });
        drop(rt);
        assert_eq!(drops.load(Ordering::SeqCst), 20);
        for handle in handles {
            assert!(is_cancelled(&join_within(handle, SHORT)));
        }
    });
}

/// Spins, never yielding, until its runtime shuts down: the one way to hold the only worker of a
/// runtime while its drop begins. Probes with an impossible spawn: refused as `InvalidInput`
/// while the runtime runs, and with another error once it is shut down. Returns whether an
/// ordinary spawn was then refused too.
fn hold_the_worker_until_shutdown(started: Arc<AtomicBool>) -> impl FnOnce() -> bool + Send {
    move || {
        started.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match corun::Builder::new().stack_size(usize::MAX).spawn(|| ()) {
                Err(e) if e.kind() == io::ErrorKind::InvalidInput => std::hint::spin_loop(),
                Err(_) => return corun::Builder::new().spawn(|| ()).is_err(),
                Ok(_) => panic!("a stack of usize::MAX bytes was accepted"),
            }
        }
        panic!("the runtime was not dropped within 60 s");
    }
}

/// A one-thread runtime (no spare threads) whose worker is held by a coroutine until shutdown,
/// so that anything spawned now stays queued and never starts.
fn runtime_with_a_held_worker() -> (corun::Runtime, corun::JoinHandle<bool>) {
    let rt = corun::runtime::Builder::new()
        .workers(1)
        .max_threads(1)
        .build()
        .unwrap();
    let started = Arc::new(AtomicBool::new(false));
    let holder = rt.spawn(hold_the_worker_until_shutdown(started.clone()));
    wait_until(SHORT, "the holder runs", || started.load(Ordering::SeqCst));
    (rt, holder)
}

#[test]
fn runtime_drop_drops_the_closures_of_coroutines_that_never_started() {
    within(SHORT, || {
        const N: usize = 50;
        let (rt, holder) = runtime_with_a_held_worker();
        let drops = Arc::new(AtomicUsize::new(0));
        let ran = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..N)
            .map(|_| {
                let (guard, ran) = (DropCounter(drops.clone()), ran.clone());
                rt.spawn(move || {
                    let _guard = guard;
                    ran.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        drop(rt);
        assert_eq!(
            ran.load(Ordering::SeqCst),
            0,
            "queued coroutines ran after all"
        );
        assert_eq!(drops.load(Ordering::SeqCst), N, "every closure was dropped");
        assert!(join_within(holder, SHORT).unwrap());
        drop(handles);
    });
}

#[test]
fn joining_a_coroutine_that_never_started_returns_cancelled_after_runtime_drop() {
    within(SHORT, || {
        let (rt, holder) = runtime_with_a_held_worker();
        let never = rt.spawn(|| ());
        drop(rt);
        assert!(join_within(holder, SHORT).unwrap());
        // `JoinHandle::join` documents `Err(Cancelled)` for a coroutine whose runtime shut down
        // first; one that never started must not leave its joiner waiting forever.
        assert!(
            never.is_finished(),
            "the join handle of a never-started coroutine is not finished after runtime drop"
        );
        let result = join_within(never, Duration::from_secs(5));
        assert!(is_cancelled(&result), "joined with {result:?}");
    });
}

#[test]
fn spawning_on_a_runtime_from_its_coroutine_after_it_began_shutting_down_fails_cleanly() {
    within(SHORT, || {
        // The holder sees the shutdown as a spawn error (not InvalidInput), then checks that an
        // ordinary spawn is refused too, rather than panicking or queueing work nobody runs.
        let (rt, holder) = runtime_with_a_held_worker();
        drop(rt);
        assert!(
            join_within(holder, SHORT).unwrap(),
            "a spawn after shutdown succeeded"
        );
    });
}

#[test]
fn dropping_an_idle_runtime_returns_promptly_and_repeatedly() {
    within(SHORT, || {
        for workers in 1..=4 {
            let rt = runtime(workers);
            assert_eq!(rt.block_on(|| workers * 2), workers * 2);
            drop(rt);
        }
    });
}

#[test]
fn dropping_a_runtime_with_detached_finished_coroutines_is_clean() {
    within(SHORT, || {
        let rt = runtime(2);
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..1000 {
            let done = done.clone();
            drop(rt.spawn(move || {
                corun::yield_now();
                done.fetch_add(1, Ordering::SeqCst);
            }));
        }
        wait_until(SHORT, "detached coroutines finish", || {
            done.load(Ordering::SeqCst) == 1000
        });
        drop(rt);
    });
}

#[test]
fn runtime_drop_wakes_a_thread_blocked_in_join() {
    within(SHORT, || {
        let rt = runtime(2);
        let started = Arc::new(AtomicBool::new(false));
        let s = started.clone();
        let parker = rt.spawn(move || {
            s.store(true, Ordering::SeqCst);
            loop {
                corun::park();
            }
        });
        wait_until(SHORT, "the parker starts", || {
            started.load(Ordering::SeqCst)
        });
        let joiner = std::thread::spawn(move || is_cancelled(&parker.join()));
        std::thread::sleep(Duration::from_millis(20)); // most likely blocked in join by now
        drop(rt);
        wait_until(SHORT, "the joining thread returns", || joiner.is_finished());
        assert!(joiner.join().unwrap(), "join did not return Cancelled");
    });
}

#[test]
fn runtime_drop_returns_even_if_a_coroutine_keeps_parking_after_cancellation() {
    within(SHORT, || {
        let rt = runtime(1);
        let started = Arc::new(AtomicBool::new(false));
        let s = started.clone();
        // Catches every cancellation and parks again: the drain gives up on it after a few
        // rounds (leaking its stack) instead of looping forever.
        let _stubborn = rt.spawn(move || {
            s.store(true, Ordering::SeqCst);
            loop {
                let _ = std::panic::catch_unwind(corun::park);
            }
        });
        wait_until(SHORT, "the stubborn coroutine starts", || {
            started.load(Ordering::SeqCst)
        });
        drop(rt);
    });
}

/// Sets its flag when dropped: stands for data on a coroutine's stack that others borrow.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A destructor that needs the scheduler once (say, to flush through a coroutine-aware socket),
/// and then reports whether `lender` (data it may still borrow) was already gone.
struct YieldsOnDrop {
    lender_dropped: Arc<AtomicBool>,
    outlived_lender: Arc<AtomicBool>,
    finished: Arc<AtomicBool>,
}

impl Drop for YieldsOnDrop {
    fn drop(&mut self) {
        corun::yield_now();
        if self.lender_dropped.load(Ordering::SeqCst) {
            self.outlived_lender.store(true, Ordering::SeqCst);
        }
        self.finished.store(true, Ordering::SeqCst);
    }
}

#[test]
fn runtime_drop_does_not_unwind_a_scope_owner_while_its_coroutines_still_unwind() {
    within(SHORT, || {
        let rt = runtime(1);
        let lender_dropped = Arc::new(AtomicBool::new(false));
        let outlived_lender = Arc::new(AtomicBool::new(false));
        let child_finished = Arc::new(AtomicBool::new(false));
        let ready = Arc::new(AtomicBool::new(false));
        let (ld, ol, cf, r) = (
            lender_dropped.clone(),
            outlived_lender.clone(),
            child_finished.clone(),
            ready.clone(),
        );
        let owner = rt.spawn(move || {
            let lent = SetOnDrop(ld.clone()); // on the owner's stack, borrowed by the child
            corun::scope(|s| {
                s.spawn(|| {
                    let _borrow = &lent;
                    let _slow = YieldsOnDrop {
                        lender_dropped: ld,
                        outlived_lender: ol,
                        finished: cf,
                    };
                    r.store(true, Ordering::SeqCst);
                    loop {
                        corun::park();
                    }
                });
            });
        });
        // One worker: the owner reached the scope's wait before the child first ran.
        wait_until(SHORT, "the scoped coroutine parks", || {
            ready.load(Ordering::SeqCst)
        });
        drop(rt);
        assert!(
            child_finished.load(Ordering::SeqCst),
            "the child never finished unwinding"
        );
        assert!(
            !outlived_lender.load(Ordering::SeqCst),
            "the scope's owner unwound (dropping what its coroutine borrowed) while that \
             coroutine was still unwinding"
        );
        assert!(is_cancelled(&join_within(owner, SHORT)));
    });
}

#[test]
fn runtime_drop_does_not_unwind_a_coroutine_out_of_block_on_on_another_runtime() {
    within(SHORT, || {
        // `a`'s coroutine lends its stack to a `block_on` on runtime `b`, which outlives `a`.
        let b = Arc::new(runtime(1));
        let a = runtime(1);
        let lender_dropped = Arc::new(AtomicBool::new(false));
        let outlived_lender = Arc::new(AtomicBool::new(false));
        let borrower_done = Arc::new(AtomicBool::new(false));
        let borrowing = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let (ld, ol, bd, bg, rl, b2) = (
            lender_dropped.clone(),
            outlived_lender.clone(),
            borrower_done.clone(),
            borrowing.clone(),
            release.clone(),
            b.clone(),
        );
        let lender = a.spawn(move || {
            let lent = SetOnDrop(ld.clone()); // on the lender's stack
            let lent = &lent;
            // Everything else is moved in, so that only `lent` is borrowed from this stack.
            b2.block_on(move || {
                let _borrow = lent;
                bg.store(true, Ordering::SeqCst);
                let deadline = Instant::now() + Duration::from_secs(20);
                while !rl.load(Ordering::SeqCst) && Instant::now() < deadline {
                    corun::yield_now();
                }
                // Only the flag is read: dereferencing `_borrow` now could be a use after free.
                if ld.load(Ordering::SeqCst) {
                    ol.store(true, Ordering::SeqCst);
                }
                bd.store(true, Ordering::SeqCst);
            });
        });
        wait_until(SHORT, "the block_on closure runs on b", || {
            borrowing.load(Ordering::SeqCst)
        });
        drop(a); // the lender is parked in `block_on`'s join
        release.store(true, Ordering::SeqCst);
        wait_until(SHORT, "the borrower on b finishes", || {
            borrower_done.load(Ordering::SeqCst)
        });
        assert!(
            !outlived_lender.load(Ordering::SeqCst),
            "block_on returned (by unwinding) while its closure still ran on the other runtime, \
             so the closure outlived the stack data it borrows"
        );
        drop(lender);
        drop(b);
    });
}

#[test]
fn runtime_drop_does_not_unwind_a_scope_owner_while_a_coroutine_that_caught_cancelled_runs() {
    within(SHORT, || {
        // The drain gives a coroutine that catches `Cancelled` and parks again more rounds; its
        // scope's owner must keep waiting for it meanwhile, as it borrows the owner's stack.
        let rt = runtime(1);
        let lender_dropped = Arc::new(AtomicBool::new(false));
        let outlived_lender = Arc::new(AtomicBool::new(false));
        let cancellations = Arc::new(AtomicUsize::new(0));
        let ready = Arc::new(AtomicBool::new(false));
        let (ld, ol, cn, r) = (
            lender_dropped.clone(),
            outlived_lender.clone(),
            cancellations.clone(),
            ready.clone(),
        );
        let owner = rt.spawn(move || {
            let lent = SetOnDrop(ld.clone()); // on the owner's stack, borrowed by the child
            let lent = &lent;
            corun::scope(|s| {
                // Everything else is moved in, so that only `lent` is borrowed from the owner.
                s.spawn(move || {
                    let _borrow = lent;
                    r.store(true, Ordering::SeqCst);
                    // Catch the first three cancellations (a supervisor loop would), then give up.
                    while cn.load(Ordering::SeqCst) < 3 {
                        if std::panic::catch_unwind(corun::park).is_err() {
                            cn.fetch_add(1, Ordering::SeqCst);
                            // Only the flag is read: `_borrow` may dangle if the bug is present.
                            if ld.load(Ordering::SeqCst) {
                                ol.store(true, Ordering::SeqCst);
                            }
                        }
                    }
                });
            });
        });
        wait_until(SHORT, "the scoped coroutine parks", || {
            ready.load(Ordering::SeqCst)
        });
        drop(rt);
        assert_eq!(cancellations.load(Ordering::SeqCst), 3);
        assert!(
            !outlived_lender.load(Ordering::SeqCst),
            "the scope's owner unwound (dropping what its coroutine borrowed) while that \
             coroutine still ran"
        );
        assert!(is_cancelled(&join_within(owner, SHORT)));
    });
}

#[test]
fn a_runtime_dropped_inside_a_coroutine_of_another_runtime_unwinds_its_coroutines() {
    within(SHORT, || {
        let outer = runtime(1);
        let inner = runtime(2);
        let drops = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..10)
            .map(|_| {
                let (guard, started) = (DropCounter(drops.clone()), started.clone());
                inner.spawn(move || {
                    let _guard = guard;
                    started.fetch_add(1, Ordering::SeqCst);
                    loop {
                        corun::park();
                    }
                })
            })
            .collect();
        wait_until(SHORT, "the inner coroutines start", || {
            started.load(Ordering::SeqCst) == 10
        });
        let d = drops.clone();
        let (me, after) = outer.block_on(move || {
            let me = corun::current().id();
            drop(inner); // the drain runs on this coroutine's stack
                         // The coroutine still knows who it is afterwards.
            (me, (corun::current().id(), d.load(Ordering::SeqCst)))
        });
        assert_eq!(after, (me, 10));
        for handle in handles {
            assert!(is_cancelled(&join_within(handle, SHORT)));
        }
    });
}

#[test]
fn runtime_drop_in_the_middle_of_heavy_traffic_unwinds_or_drops_everything() {
    within(LONG, || {
        let rt = runtime(2);
        let drops = Arc::new(AtomicUsize::new(0));
        let guards = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        const CHATTY: usize = 50;
        let handles: Vec<_> = (0..CHATTY)
            .map(|_| {
                let (drops, guards, started) = (drops.clone(), guards.clone(), started.clone());
                let guard = DropCounter(drops.clone());
                guards.fetch_add(1, Ordering::SeqCst);
                rt.spawn(move || {
                    let _guard = guard;
                    started.fetch_add(1, Ordering::SeqCst);
                    let deadline = Instant::now() + Duration::from_secs(60);
                    let mut children = Vec::new();
                    while Instant::now() < deadline {
                        // Children that yield, park a little and end; some still queued,
                        // some parked, some running when the runtime goes.
                        let child_guard = DropCounter(drops.clone());
                        // Counted when made: a failed spawn drops it too.
                        guards.fetch_add(1, Ordering::SeqCst);
                        let spawn = corun::Builder::new().spawn(move || {
                            let _guard = child_guard;
                            corun::yield_now();
                            corun::current().unpark();
                            corun::park();
                        });
                        match spawn {
                            Ok(handle) => children.push(handle),
                            Err(_) => break, // shutting down
                        }
                        if children.len() > 20 {
                            let _ = children.remove(0).join();
                        }
                        corun::yield_now();
                    }
                })
            })
            .collect();
        wait_until(SHORT, "the chatty coroutines start", || {
            started.load(Ordering::SeqCst) == CHATTY
        });
        std::thread::sleep(Duration::from_millis(50));
        drop(rt);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            guards.load(Ordering::SeqCst),
            "every coroutine's captures were dropped, whether it finished, unwound or never ran"
        );
        for handle in handles {
            // Cancelled, or finished on its own after a spawn was refused by the shutdown.
            let result = join_within(handle, SHORT);
            assert!(result.is_ok() || is_cancelled(&result), "{result:?}");
        }
    });
}

#[test]
fn a_never_started_coroutine_whose_captures_yield_in_drop_is_cancelled_cleanly() {
    within(SHORT, || {
        // Dropping an unstarted coroutine's closure at shutdown runs on its own stack; a
        // destructor in it that yields must switch through a valid yielder.
        struct YieldsOnDrop(Arc<AtomicBool>);
        impl Drop for YieldsOnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
                // During shutdown this yield is where `Cancelled` is raised, ending the drop.
                corun::yield_now();
            }
        }
        let rt = corun::runtime::Builder::new()
            .workers(1)
            .max_threads(1)
            .build()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        // Holds the only thread (a blocking OS call, on purpose) so the next one never starts.
        let started = Arc::new(AtomicBool::new(false));
        let s = started.clone();
        let blocker = rt.spawn(move || {
            s.store(true, Ordering::SeqCst);
            let _ = rx.recv();
        });
        wait_until(SHORT, "the blocker holds the worker", || {
            started.load(Ordering::SeqCst)
        });
        let dropped = Arc::new(AtomicBool::new(false));
        let guard = YieldsOnDrop(dropped.clone());
        let never_started = rt.spawn(move || drop(guard));
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            let _ = tx.send(());
        });
        drop(rt);
        release.join().unwrap();
        assert!(blocker.join().is_ok());
        assert!(
            dropped.load(Ordering::SeqCst),
            "the captured value was dropped"
        );
        assert!(is_cancelled(&never_started.join()));
    });
}

#[test]
fn runtime_drop_returns_when_a_cancelled_coroutine_joins_an_older_one_while_unwinding() {
    within(SHORT, || {
        // Newest first: the newer coroutine unwinds first, and its guard joins the older one,
        // which the drain has not cancelled yet. The join must wait for it, not spin forever.
        struct JoinOnDrop(Option<corun::JoinHandle<()>>);
        impl Drop for JoinOnDrop {
            fn drop(&mut self) {
                let result = self.0.take().unwrap().join();
                assert!(is_cancelled(&result));
            }
        }
        let rt = runtime(2);
        let parked = Arc::new(AtomicUsize::new(0));
        let p1 = parked.clone();
        let older = rt.spawn(move || {
            p1.fetch_add(1, Ordering::SeqCst);
            loop {
                corun::park();
            }
        });
        let p2 = parked.clone();
        let newer = rt.spawn(move || {
            let _guard = JoinOnDrop(Some(older));
            p2.fetch_add(1, Ordering::SeqCst);
            loop {
                corun::park();
            }
        });
        wait_until(SHORT, "both coroutines park", || {
            parked.load(Ordering::SeqCst) == 2
        });
        drop(rt);
        assert!(is_cancelled(&newer.join()));
    });
}

#[test]
fn runtime_dropped_while_its_owner_unwinds_a_panic_still_cancels_its_coroutines() {
    within(SHORT, || {
        struct Owner(#[allow(dead_code)] corun::Runtime);
        let rt = runtime(1);
        let parked = Arc::new(AtomicBool::new(false));
        let p = parked.clone();
        let h = rt.spawn(move || {
            p.store(true, Ordering::SeqCst);
            loop {
                corun::park();
            }
        });
        wait_until(SHORT, "the coroutine parks", || {
            parked.load(Ordering::SeqCst)
        });
        let owner = Owner(rt);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _owner = owner; // dropped while this thread unwinds
            std::panic::resume_unwind(Box::new("an unrelated panic"));
        }));
        assert!(result.is_err());
        assert!(is_cancelled(&h.join()));
    });
}

#[test]
fn spawn_from_a_thread_local_destructor_works() {
    within(SHORT, || {
        struct SpawnOnDrop(std::sync::mpsc::Sender<std::thread::Result<u8>>);
        impl Drop for SpawnOnDrop {
            fn drop(&mut self) {
                let result = std::panic::catch_unwind(|| corun::spawn(|| 7u8).join().unwrap());
                let _ = self.0.send(result);
            }
        }
        thread_local! {
            static S: std::cell::RefCell<Option<SpawnOnDrop>> = const { std::cell::RefCell::new(None) };
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            S.with(|s| *s.borrow_mut() = Some(SpawnOnDrop(tx)));
            // Registers the spawning thread's stack cache after `S`, so it is destroyed first.
            let _ = corun::spawn(|| 0u8).join();
        })
        .join()
        .unwrap();
        let result = rx.recv_timeout(LONG).expect("the destructor ran");
        assert_eq!(result.expect("spawn from a TLS destructor"), 7);
    });
}
