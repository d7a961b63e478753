#![cfg(loom)]
//! Models of the hand-over between awake workers and the poller thread
//! (`src/io/pollers.rs`): an event that arrives at any moment is taken by somebody.
//!
//! The "kernel" is an epoll instance: a count of ready events and whether a thread is blocked
//! in `epoll_wait`, under one lock, as the kernel's ready list is. Adding an event wakes the
//! blocked thread, if any; a non-blocking poll takes what is there. The poller's backstop
//! timeout is left out, so an event nobody polls for leaves the poller parked for ever, which
//! loom reports as a deadlock.

use corun::__loom::Pollers;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

struct Epoll {
    /// (ready events, the poller is blocked in `epoll_wait`)
    list: Mutex<(usize, bool)>,
    /// The poller thread, woken by the kernel when it is blocked and an event arrives.
    poller: Mutex<Option<thread::Thread>>,
}

impl Epoll {
    /// A non-blocking `epoll_wait`: takes the ready events.
    fn poll(&self) -> usize {
        std::mem::take(&mut self.list.lock().unwrap().0)
    }

    /// An event arrives: it joins the ready list, and a blocked poller is woken.
    fn arrive(&self) {
        let mut list = self.list.lock().unwrap();
        list.0 += 1;
        if std::mem::take(&mut list.1) {
            self.poller.lock().unwrap().as_ref().unwrap().unpark();
        }
    }

    /// A blocking `epoll_wait` (by the poller thread): returns the events, waiting for one if
    /// there are none. A stray unpark (meant for the poller's parker) may end the wait early
    /// with none, which only adds behaviours.
    fn wait(&self) -> usize {
        {
            let mut list = self.list.lock().unwrap();
            if list.0 > 0 {
                return std::mem::take(&mut list.0);
            }
            list.1 = true;
        }
        thread::park();
        let mut list = self.list.lock().unwrap();
        list.1 = false;
        std::mem::take(&mut list.0)
    }
}

struct World {
    pollers: Pollers,
    epoll: Epoll,
    /// The one event of the model was taken.
    taken: AtomicBool,
}

impl World {
    fn take(&self, n: usize) {
        if n > 0 {
            self.taken.store(true, Ordering::SeqCst);
        }
    }
}

/// The poller thread's loop (`driver::run`), until the event was taken by anyone.
fn poller(world: &World) {
    *world.epoll.poller.lock().unwrap() = Some(thread::current());
    while !world.taken.load(Ordering::SeqCst) {
        if world.pollers.poller_may_block() {
            world.take(world.epoll.wait());
        } else {
            thread::park(); // the backstop timeout is left out on purpose
            world.take(world.epoll.poll());
        }
    }
}

/// A worker that polls once more and goes to sleep, possibly before the event arrives.
fn worker_goes_to_sleep(world: &World, poller: &thread::Thread) {
    world.take(world.epoll.poll());
    if world.pollers.worker_asleep() {
        poller.unpark();
    }
}

fn world() -> Arc<World> {
    Arc::new(World {
        pollers: Pollers::new(),
        epoll: Epoll {
            list: Mutex::new((0, false)),
            poller: Mutex::new(None),
        },
        taken: AtomicBool::new(false),
    })
}

/// A worker goes to sleep (one last poll, then the count).
fn sleeps(world: &World, poller: &thread::Thread) {
    worker_goes_to_sleep(world, poller);
}

/// A worker exits.
fn exits(world: &World, poller: &thread::Thread) {
    if world.pollers.worker_exited() {
        poller.unpark();
    }
}

/// The monitor excuses a worker stuck in a long coroutine (which neither polls nor sleeps).
fn excuses_a_stuck_one(world: &World, poller: &thread::Thread) {
    if world.pollers.worker_excused() {
        poller.unpark();
    }
}

/// One model: `workers` started, the poller thread running, each of `actors` on a thread of
/// its own while the main thread lets the event arrive. Then a stop event (a poller blocked in
/// `epoll_wait` after a worker took the event is woken by the next packet, as in life), and
/// the event must have been taken.
fn model(workers: usize, actors: &'static [fn(&World, &thread::Thread)]) {
    loom::model(move || {
        let world = world();
        for _ in 0..workers {
            world.pollers.worker_started();
        }
        let poller_thread = {
            let world = world.clone();
            thread::spawn(move || poller(&world))
        };
        let actors: Vec<_> = actors
            .iter()
            .map(|&actor| {
                let world = world.clone();
                let poller = poller_thread.thread().clone();
                thread::spawn(move || actor(&world, &poller))
            })
            .collect();
        world.epoll.arrive();
        for actor in actors {
            actor.join().unwrap();
        }
        world.epoll.arrive();
        poller_thread.join().unwrap();
        assert!(world.taken.load(Ordering::SeqCst));
    });
}

/// The only worker goes to sleep while the event arrives: the worker takes it, or the poller
/// (blocked in `epoll_wait`, or parked and sent back by the worker's unpark) does.
#[test]
fn an_event_is_taken_when_the_only_worker_sleeps() {
    model(1, &[sleeps]);
}

/// Two workers go to sleep in either order while the event arrives: the last one to sleep
/// sends the poller to `epoll_wait`, and its unpark is not lost.
#[test]
fn an_event_is_taken_when_two_workers_sleep() {
    model(2, &[sleeps, sleeps]);
}

/// One worker exits while the other goes to sleep, in either order: whichever of them leaves
/// nobody polling unparks the poller.
#[test]
fn an_event_is_taken_when_a_worker_exits_and_the_other_sleeps() {
    model(2, &[exits, sleeps]);
}

/// One worker is stuck in a long coroutine while the other goes to sleep: the monitor excuses
/// the stuck one, which sends the poller to `epoll_wait` if nobody else polls.
#[test]
fn an_event_is_taken_when_the_awake_worker_is_stuck() {
    model(2, &[excuses_a_stuck_one, sleeps]);
}
