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

/// The only worker goes to sleep while an event arrives: the worker takes it, or the poller
/// (blocked in `epoll_wait`, or parked and sent back by the worker's unpark) does.
#[test]
fn an_event_is_taken_when_the_only_worker_sleeps() {
    loom::model(|| {
        let world = world();
        world.pollers.worker_started();
        let poller_thread = {
            let world = world.clone();
            thread::spawn(move || poller(&world))
        };
        let event = {
            let world = world.clone();
            thread::spawn(move || world.epoll.arrive())
        };
        worker_goes_to_sleep(&world, poller_thread.thread());
        event.join().unwrap();
        // If the worker took the event, a poller blocked in `epoll_wait` is still there: the
        // next event (here, a stop) wakes it, as a later packet would.
        world.epoll.arrive();
        poller_thread.join().unwrap();
        assert!(world.taken.load(Ordering::SeqCst));
    });
}

/// Two workers go to sleep in either order while an event arrives: the last one to sleep
/// sends the poller to `epoll_wait`, and its unpark is not lost.
#[test]
fn an_event_is_taken_when_two_workers_sleep() {
    loom::model(|| {
        let world = world();
        world.pollers.worker_started();
        world.pollers.worker_started();
        let poller_thread = {
            let world = world.clone();
            thread::spawn(move || poller(&world))
        };
        let other = {
            let world = world.clone();
            let poller = poller_thread.thread().clone();
            thread::spawn(move || worker_goes_to_sleep(&world, &poller))
        };
        world.epoll.arrive();
        worker_goes_to_sleep(&world, poller_thread.thread());
        other.join().unwrap();
        world.epoll.arrive();
        poller_thread.join().unwrap();
        assert!(world.taken.load(Ordering::SeqCst));
    });
}

/// One worker exits while the other goes to sleep, in either order, with an event arriving:
/// whichever of them changes the poller's mode unparks it.
#[test]
fn an_event_is_taken_when_a_worker_exits_and_the_other_sleeps() {
    loom::model(|| {
        let world = world();
        world.pollers.worker_started();
        world.pollers.worker_started();
        let poller_thread = {
            let world = world.clone();
            thread::spawn(move || poller(&world))
        };
        let exiting = {
            let world = world.clone();
            let poller = poller_thread.thread().clone();
            thread::spawn(move || {
                if world.pollers.worker_exited() {
                    poller.unpark();
                }
            })
        };
        world.epoll.arrive();
        worker_goes_to_sleep(&world, poller_thread.thread());
        exiting.join().unwrap();
        world.epoll.arrive();
        poller_thread.join().unwrap();
        assert!(world.taken.load(Ordering::SeqCst));
    });
}

/// One worker is stuck in a long coroutine (it never polls here) while the other goes to sleep
/// and an event arrives: the monitor excuses the stuck one, which sends the poller to
/// `epoll_wait` if nobody else polls.
#[test]
fn an_event_is_taken_when_the_awake_worker_is_stuck() {
    loom::model(|| {
        let world = world();
        world.pollers.worker_started(); // stuck: neither polls nor sleeps in this model
        world.pollers.worker_started();
        let poller_thread = {
            let world = world.clone();
            thread::spawn(move || poller(&world))
        };
        let monitor = {
            let world = world.clone();
            let poller = poller_thread.thread().clone();
            thread::spawn(move || {
                if world.pollers.worker_excused() {
                    poller.unpark();
                }
            })
        };
        world.epoll.arrive();
        worker_goes_to_sleep(&world, poller_thread.thread());
        monitor.join().unwrap();
        world.epoll.arrive();
        poller_thread.join().unwrap();
        assert!(world.taken.load(Ordering::SeqCst));
    });
}
