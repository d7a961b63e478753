#![cfg(loom)]
//! Models of a processor's run-next slot (`src/runtime/runnext.rs`).
//!
//! The owner replays `Worker::push_runnext` (swap a task in; what it displaces goes to its local
//! queue) and `Worker::next_task` (take its own slot); stealers replay the last round of
//! `Worker::search` and the monitor (take a victim's slot). Every task must end up with exactly
//! one party, and every task must be dropped exactly once when all is done (loom also fails a
//! model that leaks one of its `Arc`s). A task's body is a loom `UnsafeCell` that the owner
//! fills before queueing it and whoever receives it then runs: loom reports the access if the
//! slot's hand-off does not order it after the fill.

use corun::__loom::RunNext;
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

/// A coroutine as far as the slot is concerned: an id, a body only its holder touches, and a
/// drop counter.
struct Task {
    id: usize,
    body: UnsafeCell<usize>,
    drops: Arc<AtomicUsize>,
}

// SAFETY: `body` is touched only by the party that holds the task (its creator before queueing
// it, then whoever took it out of the slot); the models check exactly that with loom.
unsafe impl Sync for Task {}

impl Drop for Task {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

/// Creates a task and prepares it (the spawner writes its body before queueing it).
fn task(id: usize, drops: &Arc<AtomicUsize>) -> Arc<Task> {
    let task = Arc::new(Task {
        id,
        body: UnsafeCell::new(0),
        drops: drops.clone(),
    });
    task.body.with_mut(|b| unsafe { *b = id * 10 });
    task
}

/// Receives a task: checks it is the only handle left, then runs it (reads and writes its body).
/// Returns its id.
fn receive(task: Arc<Task>) -> usize {
    assert_eq!(Arc::strong_count(&task), 1, "task shared by two parties");
    task.body.with_mut(|b| unsafe {
        assert_eq!(*b, task.id * 10);
        *b += 1;
    });
    task.id
}

/// Checks that tasks `1..=n` were each received exactly once, across all parties.
fn assert_each_once(mut received: Vec<usize>, n: usize) {
    received.sort_unstable();
    assert_eq!(received, (1..=n).collect::<Vec<_>>());
}

/// The owner pushes two tasks (the second displaces the first unless it was stolen) while a
/// stealer takes the slot twice; then the owner takes what is left.
#[test]
fn owner_swaps_while_stealer_takes() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let slot = Arc::new(RunNext::new());
        let stealer = {
            let slot = slot.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                for _ in 0..2 {
                    got.extend(slot.take().map(receive));
                }
                got
            })
        };
        let mut received = Vec::new();
        // `push_runnext`: the displaced task goes to the local queue, i.e. stays with the owner.
        received.extend(slot.swap(task(1, &drops)).map(receive));
        received.extend(slot.swap(task(2, &drops)).map(receive));
        received.extend(stealer.join().unwrap());
        // `next_task`.
        received.extend(slot.take().map(receive));
        assert!(!slot.is_occupied());
        assert_each_once(received, 2);
        assert_eq!(drops.load(Ordering::Relaxed), 2);
    });
}

/// The owner takes its own slot (`next_task`) while a stealer takes it too: exactly one gets it.
#[test]
fn owner_take_races_stealer_take() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let slot = Arc::new(RunNext::new());
        assert!(slot.swap(task(1, &drops)).is_none());
        let stealer = {
            let slot = slot.clone();
            thread::spawn(move || slot.take().map(receive))
        };
        let mine = slot.take().map(receive);
        let stolen = stealer.join().unwrap();
        assert!(mine.is_some() != stolen.is_some(), "{mine:?} / {stolen:?}");
        assert_each_once(mine.into_iter().chain(stolen).collect(), 1);
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    });
}

/// Two stealers (three threads) take the slot while the owner pushes two tasks.
#[test]
fn two_stealers_and_owner() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let slot = Arc::new(RunNext::new());
        let stealers: Vec<_> = (0..2)
            .map(|_| {
                let slot = slot.clone();
                thread::spawn(move || slot.take().map(receive))
            })
            .collect();
        let mut received = Vec::new();
        received.extend(slot.swap(task(1, &drops)).map(receive));
        received.extend(slot.swap(task(2, &drops)).map(receive));
        for stealer in stealers {
            received.extend(stealer.join().unwrap());
        }
        received.extend(slot.take().map(receive));
        assert_each_once(received, 2);
        assert_eq!(drops.load(Ordering::Relaxed), 2);
    });
}

/// A slot dropped while it may still hold a task (a processor torn down), by whichever of the
/// owner and a racing stealer lets go of it last, drops that task: nothing leaks, nothing is
/// dropped twice.
#[test]
fn drop_with_task_inside() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let slot = Arc::new(RunNext::new());
        assert!(slot.swap(task(1, &drops)).is_none());
        let stealer = {
            let slot = slot.clone();
            thread::spawn(move || slot.take().map(receive))
        };
        drop(slot);
        let stolen = stealer.join().unwrap();
        assert!(stolen.is_none() || stolen == Some(1));
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    });
}
