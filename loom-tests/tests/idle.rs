#![cfg(loom)]
//! Models of the idle-worker hand-shake (`src/runtime/idle.rs`, DESIGN.md "Idle workers and
//! wake-ups").
//!
//! [`Worker`] replays the scheduling loop of `src/runtime/worker.rs` (`run`, `next_task`,
//! `search`, `stop_spinning`, `sleep`) and [`Runtime`] the pieces of `src/runtime/mod.rs` it
//! calls (`notify_work`, `has_stealable_work`, `is_shutdown`, the shutdown in `Drop`). The run
//! queues are a [`WorkCount`] with the orderings of `crossbeam_deque` (Release push, Acquire
//! emptiness check) so that no lock hides a missing fence, and each worker blocks on a token
//! [`Parker`] as on `crossbeam_utils::sync::Parker`.
//!
//! A lost wake-up leaves a worker blocked on its parker with work still queued; the models are
//! written so that the test thread then waits forever too, which loom reports as a deadlock.

use corun::__loom::Idle;
use corun_loom_tests::{Parker, RunQueue, WorkCount};
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;
use std::cell::Cell;

/// The shared state of the runtime that the idle protocol touches.
struct Runtime {
    idle: Idle,
    /// Every stealable queue: the global queue and the processors' local queues.
    work: WorkCount,
    /// One per worker: what `Remote::unparker` / `ProcLocal::parker` are.
    parkers: Vec<Parker>,
    shutdown: AtomicBool,
    /// Each worker reports here every item it runs.
    ran: RunQueue<usize>,
}

impl Runtime {
    fn new(num_workers: usize) -> Arc<Self> {
        Arc::new(Runtime {
            idle: Idle::new(num_workers),
            work: WorkCount::new(),
            parkers: (0..num_workers).map(|_| Parker::new()).collect(),
            shutdown: AtomicBool::new(false),
            ran: RunQueue::new(),
        })
    }

    /// `Shared::notify_work`.
    fn notify_work(&self) {
        if let Some(worker) = self.idle.worker_to_wake() {
            self.parkers[worker].unpark();
        }
    }

    /// A submitter off the workers (`schedule_woken` on a plain thread): publish, then notify.
    fn submit(&self) {
        self.work.push();
        self.notify_work();
    }

    /// `Shared::has_stealable_work`.
    fn has_stealable_work(&self) -> bool {
        self.work.has_work()
    }

    /// `Shared::is_shutdown`.
    fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// `Runtime::drop`, up to joining the workers.
    fn shut_down(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.idle.wake_all();
        for parker in &self.parkers {
            parker.unpark();
        }
    }

    /// Once every thread is joined: nobody counted as spinning or sleeping, nothing left queued.
    fn assert_settled(&self) {
        assert_eq!(self.idle.num_spinning(), 0, "spinner count leaked");
        assert_eq!(self.idle.num_sleeping(), 0, "sleeper count leaked");
        assert_eq!(self.work.remaining(), 0, "work left in the queues");
    }
}

/// One worker thread (`worker::Worker` as far as the idle protocol goes).
struct Worker {
    index: usize,
    rt: Arc<Runtime>,
    spinning: Cell<bool>,
}

impl Worker {
    fn new(rt: &Arc<Runtime>, index: usize) -> Self {
        Worker {
            index,
            rt: rt.clone(),
            spinning: Cell::new(false),
        }
    }

    /// `Worker::run`, until shutdown or until it has run `quota` items (a worker whose last item
    /// never yields keeps its thread: the model stops it there). Returns how many it ran.
    fn run(&self, quota: usize) -> usize {
        let mut ran = 0;
        while !self.rt.is_shutdown() && ran < quota {
            let found = self.next_task() || self.search();
            if !found {
                self.sleep();
                continue;
            }
            self.stop_spinning();
            // `run_task`.
            self.rt.ran.push(self.index);
            ran += 1;
        }
        self.stop_spinning();
        ran
    }

    /// `Worker::next_task`: the worker's own queues and the global queue.
    fn next_task(&self) -> bool {
        self.rt.work.try_take()
    }

    /// `Worker::search`: spin, if allowed, and steal (one attempt: more only find more).
    fn search(&self) -> bool {
        if !self.spinning.get() {
            if self.rt.idle.try_start_spinning() {
                self.spinning.set(true);
            } else {
                return false;
            }
        }
        self.rt.work.try_take()
    }

    /// `Worker::stop_spinning`: the last spinner to stop wakes another worker.
    fn stop_spinning(&self) {
        if self.spinning.replace(false) && self.rt.idle.stop_spinning() {
            self.rt.notify_work();
        }
    }

    /// `Worker::sleep`: the runtime's own `Idle::sleep_until_woken`, with this model's queues
    /// and parker.
    fn sleep(&self) {
        let rt = &self.rt;
        let spinning = rt.idle.sleep_until_woken(
            self.index,
            self.spinning.replace(false),
            || rt.has_stealable_work(),
            || rt.is_shutdown(),
            || rt.parkers[self.index].park(),
        );
        self.spinning.set(spinning);
    }
}

/// Spawns worker `index`, running until shutdown or `quota` items.
fn spawn_worker(rt: &Arc<Runtime>, index: usize, quota: usize) -> thread::JoinHandle<usize> {
    let worker = Worker::new(rt, index);
    thread::spawn(move || worker.run(quota))
}

/// One worker, one submission: the worker goes through spin, register, re-scan, block while the
/// item is published and the submitter decides whether to wake it. The item is always run (or
/// the worker blocks forever: loom's deadlock), and the counters return to zero.
#[test]
fn one_worker_one_item() {
    loom::model(|| {
        let rt = Runtime::new(1);
        let worker = spawn_worker(&rt, 0, 1);
        rt.submit();
        assert_eq!(worker.join().unwrap(), 1);
        rt.assert_settled();
    });
}

/// One worker, two submissions in a row: the worker sleeps and wakes twice, possibly with a
/// stale parker token from a wake-up it had already cancelled.
#[test]
fn one_worker_two_items() {
    loom::model(|| {
        let rt = Runtime::new(1);
        let worker = spawn_worker(&rt, 0, 2);
        rt.submit();
        rt.submit();
        assert_eq!(worker.join().unwrap(), 2);
        rt.assert_settled();
    });
}

/// Two workers and a submitter (three threads): the item is run by one of them, whatever each
/// is doing (spinning, refused spinning, registering, blocked) when it is published. The
/// submitter waits for it to run, then shuts down as `Runtime::drop` does; the counters are
/// back to zero afterwards.
#[test]
fn two_workers_one_item() {
    loom::model(|| {
        let rt = Runtime::new(2);
        let workers = [
            spawn_worker(&rt, 0, usize::MAX),
            spawn_worker(&rt, 1, usize::MAX),
        ];
        rt.submit();
        // A lost wake-up blocks here forever.
        rt.ran.pop_blocking();
        rt.shut_down();
        let ran: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
        assert_eq!(ran, 1);
        rt.assert_settled();
    });
}

/// Rule 4, the last spinner to find work wakes another worker. Two workers each run one item
/// that then keeps their thread (quota 1), and two items are submitted. While one worker spins,
/// submitters wake nobody; when that spinner takes the first item, only its `stop_spinning`
/// wake-up gets the second item to the other worker, possibly asleep by then. Both items run,
/// one per worker.
#[test]
fn last_spinner_wakes_another() {
    loom::model(|| {
        let rt = Runtime::new(2);
        let workers = [spawn_worker(&rt, 0, 1), spawn_worker(&rt, 1, 1)];
        rt.submit();
        rt.submit();
        for worker in workers {
            assert_eq!(worker.join().unwrap(), 1);
        }
        rt.assert_settled();
    });
}
