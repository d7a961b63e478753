#![cfg(loom)]
//! Models of the park/unpark protocol of a coroutine ("commit after switch",
//! `src/coroutine/state.rs`, DESIGN.md "Parking a coroutine").
//!
//! The parking side replays `corun::park` and `Worker::run_task`: on the coroutine,
//! `try_take_token`; otherwise switch out to the worker, which calls `commit_park` and either
//! forgets the coroutine (`Parked`) or requeues it (`Notified`). The unparking side replays
//! `Coroutine::unpark`: `unpark`, and on `Schedule` queue the coroutine (`schedule_woken`).
//!
//! The coroutine's stack is a loom `UnsafeCell` that only its owner touches: the coroutine while
//! it runs, the switch that saves its registers, and whoever resumes it. loom reports any two
//! unordered accesses, so a coroutine resumed while its stack still runs, or resumed twice, fails
//! the model. So does a lost wake-up: the parked coroutine then waits on its run queue forever,
//! which loom reports as a deadlock.

use corun::__loom::{Commit, ParkState, Unparked};
use corun_loom_tests::RunQueue;
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

/// One coroutine: its park state, its stack, and the run queue it goes to when scheduled.
struct Coroutine {
    state: ParkState,
    /// Touched only by the owner of the coroutine.
    stack: UnsafeCell<usize>,
    /// Written by an unparker before it unparks; read by the coroutine once it runs again.
    message: UnsafeCell<usize>,
    /// Times the coroutine ran again after parking.
    resumes: AtomicUsize,
    /// Times an unparker got `Unparked::Schedule`.
    schedules: AtomicUsize,
    /// The run queue an unparker that got `Schedule` pushes the coroutine to.
    run_queue: RunQueue<()>,
}

impl Coroutine {
    fn new() -> Arc<Self> {
        Arc::new(Coroutine {
            state: ParkState::new(),
            stack: UnsafeCell::new(0),
            message: UnsafeCell::new(0),
            resumes: AtomicUsize::new(0),
            schedules: AtomicUsize::new(0),
            run_queue: RunQueue::new(),
        })
    }

    /// The coroutine's stack is in use: by the running coroutine, by the switch, or by a resume.
    fn touch_stack(&self) {
        self.stack.with_mut(|s| unsafe { *s += 1 });
    }

    /// `corun::park` up to the switch, then the worker's `commit_park` (`Worker::run_task`).
    /// Returns `true` when the coroutine carries on at once (token taken before or after the
    /// switch), `false` when it is parked and owned by nobody.
    fn park(&self) -> bool {
        // Running on its own stack.
        self.touch_stack();
        if self.state.try_take_token() {
            return true;
        }
        // `task.suspend(Suspend::Park)`: the switch saves the coroutine's registers on its stack.
        self.touch_stack();
        // On the worker's stack, after the switch.
        match self.state.commit_park() {
            Commit::Parked => false,
            // The worker still owns it and requeues it (`push_back`), then resumes it.
            Commit::Notified => true,
        }
    }

    /// A worker resumes the coroutine, which then reads what its unparker published.
    fn resume(&self) -> usize {
        self.touch_stack();
        self.resumes.fetch_add(1, Ordering::Relaxed);
        self.message.with(|m| unsafe { *m })
    }

    /// Park, and if parked, wait until an unparker queues the coroutine, then resume it on this
    /// thread (the worker that pops it). Returns the message the coroutine then reads.
    fn park_and_wait(&self) -> usize {
        if !self.park() {
            self.run_queue.pop_blocking();
        }
        self.resume()
    }

    /// `Coroutine::unpark`: publish `message`, unpark, and queue the coroutine on `Schedule`.
    fn unpark_with(&self, message: usize) -> Unparked {
        self.message.with_mut(|m| unsafe { *m = message });
        self.unpark()
    }

    /// `Coroutine::unpark` without a message.
    fn unpark(&self) -> Unparked {
        let outcome = self.state.unpark();
        if outcome == Unparked::Schedule {
            self.schedules.fetch_add(1, Ordering::Relaxed);
            self.run_queue.push(());
        }
        outcome
    }

    /// Once every thread is joined: it ran again exactly `expected` times, was queued no more
    /// than it was popped, and is owned (not left parked).
    fn assert_settled(&self, expected: usize) {
        assert_eq!(self.resumes.load(Ordering::Relaxed), expected);
        assert!(self.run_queue.is_empty(), "coroutine scheduled twice");
        assert!(!self.state.is_parked(), "coroutine left parked");
    }
}

/// One park racing one unpark; the parked coroutine is resumed by the worker that pops it from
/// the run queue. It runs again exactly once and sees what the unparker wrote before unparking.
#[test]
fn park_races_unpark() {
    loom::model(|| {
        let co = Coroutine::new();
        let unparker = {
            let co = co.clone();
            thread::spawn(move || {
                co.unpark_with(42);
            })
        };
        assert_eq!(co.park_and_wait(), 42);
        unparker.join().unwrap();
        co.assert_settled(1);
        assert!(co.schedules.load(Ordering::Relaxed) <= 1);
    });
}

/// One park racing one unpark, where the unparker that gets `Schedule` runs the coroutine itself
/// at once (it pushed it to its own run-next slot and popped it): the parking worker has moved
/// on. The coroutine is never resumed while its stack is still in use by the switch, and runs
/// again exactly once.
#[test]
fn unparker_resumes_parked_coroutine() {
    loom::model(|| {
        let co = Coroutine::new();
        let unparker = {
            let co = co.clone();
            thread::spawn(move || {
                co.message.with_mut(|m| unsafe { *m = 7 });
                if co.state.unpark() == Unparked::Schedule {
                    assert_eq!(co.resume(), 7);
                }
            })
        };
        if co.park() {
            assert_eq!(co.resume(), 7);
        }
        unparker.join().unwrap();
        co.assert_settled(1);
    });
}

/// An unpark that comes before the park is kept as the token: the park returns at once, without
/// switching out.
#[test]
fn unpark_before_park_is_kept() {
    loom::model(|| {
        let co = Coroutine::new();
        let unparker = {
            let co = co.clone();
            thread::spawn(move || co.unpark_with(1))
        };
        assert_eq!(unparker.join().unwrap(), Unparked::TokenSet);
        co.touch_stack();
        assert!(co.state.try_take_token());
        assert_eq!(co.resume(), 1);
        co.assert_settled(1);
        assert_eq!(co.schedules.load(Ordering::Relaxed), 0);
    });
}

/// An unpark that lands between the coroutine's token check and the worker's commit is not lost:
/// the commit finds the token and the coroutine runs again.
#[test]
fn unpark_between_check_and_commit_is_kept() {
    loom::model(|| {
        let co = Coroutine::new();
        assert!(!co.state.try_take_token());
        let unparker = {
            let co = co.clone();
            thread::spawn(move || co.unpark_with(3))
        };
        assert_eq!(unparker.join().unwrap(), Unparked::TokenSet);
        assert_eq!(co.state.commit_park(), Commit::Notified);
        assert_eq!(co.resume(), 3);
        // The token was consumed: the next park really parks.
        assert_eq!(co.state.commit_park(), Commit::Parked);
        assert_eq!(co.state.unpark(), Unparked::Schedule);
        assert!(!co.state.is_parked());
    });
}

/// Two unparkers race one park (three threads). The coroutine is scheduled at most once, exactly
/// once if it committed as parked, runs again exactly once, and sees the write of at least one
/// unparker (the one whose unpark it consumed).
#[test]
fn two_unparkers_one_park() {
    loom::model(|| {
        let co = Coroutine::new();
        let flags = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
        let unparkers: Vec<_> = (0..2)
            .map(|i| {
                let co = co.clone();
                let flags = flags.clone();
                thread::spawn(move || {
                    flags[i].store(true, Ordering::Relaxed);
                    co.unpark();
                })
            })
            .collect();
        let parked = !co.park();
        if parked {
            co.run_queue.pop_blocking();
        }
        co.resume();
        assert!(
            flags[0].load(Ordering::Relaxed) || flags[1].load(Ordering::Relaxed),
            "resumed without seeing any unparker's write"
        );
        for unparker in unparkers {
            unparker.join().unwrap();
        }
        co.assert_settled(1);
        let schedules = co.schedules.load(Ordering::Relaxed);
        assert!(schedules <= 1, "scheduled {schedules} times");
        assert_eq!(schedules == 1, parked);
    });
}

/// The join pattern (`join.rs`: `park_until(|| done)`; the finisher sets `done` with Release,
/// then unparks), with a stray unpark from someone else racing it (three threads). Token
/// semantics promise that a park loop checking a flag cannot miss the flag's wake-up, whatever
/// other unparks come and go: every unpark that precedes the consumption of the token must be
/// visible to the coroutine, or it parks again with nobody left to wake it.
#[test]
fn park_until_flag_with_stray_unpark() {
    loom::model(|| {
        let co = Coroutine::new();
        let done = Arc::new(AtomicBool::new(false));
        let stray = {
            let co = co.clone();
            thread::spawn(move || {
                co.unpark();
            })
        };
        let finisher = {
            let co = co.clone();
            let done = done.clone();
            thread::spawn(move || {
                done.store(true, Ordering::Release);
                co.unpark();
            })
        };
        // `park_until(|| done.load(Acquire))`.
        while !done.load(Ordering::Acquire) {
            co.park_and_wait();
        }
        stray.join().unwrap();
        finisher.join().unwrap();
        assert!(co.run_queue.is_empty(), "coroutine scheduled twice");
        assert!(!co.state.is_parked());
    });
}

/// Two park/unpark rounds in a row: the state returns to "owned, no token" after each, and each
/// round's unpark wakes that round's park, with its write visible.
#[test]
fn two_rounds() {
    loom::model(|| {
        let co = Coroutine::new();
        // The coroutine tells the unparker it ran again, so the next unpark is for the next park.
        let ack = Arc::new(RunQueue::new());
        let unparker = {
            let co = co.clone();
            let ack = ack.clone();
            thread::spawn(move || {
                co.unpark_with(1);
                ack.pop_blocking();
                co.unpark_with(2);
            })
        };
        assert_eq!(co.park_and_wait(), 1);
        ack.push(());
        assert_eq!(co.park_and_wait(), 2);
        unparker.join().unwrap();
        co.assert_settled(2);
    });
}
