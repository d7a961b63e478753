//! Timed waits until the timer wheel lands (the time and I/O issue): a deadline service.
//!
//! A coroutine waiting with a deadline registers it here; one service thread sleeps until the
//! earliest deadline and unparks whoever registered it. The waiter always re-checks its own
//! state and the clock after a park, so an unpark that comes late (after the wait ended
//! otherwise) is only a spurious wake-up of a later park, which every wait loop tolerates.
//! Plain threads do not need it: they wait with `std::thread::park_timeout`.
//!
//! This is deliberately simple (a binary heap under a mutex, O(log n) per timed wait, no
//! cancellation); the timer wheel will replace it.

use crate::join::Waiter;
use parking_lot::{Condvar, Mutex};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::OnceLock;
use std::time::Instant;

struct Entry {
    at: Instant,
    seq: u64,
    waiter: Waiter,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

struct Service {
    heap: Mutex<(BinaryHeap<Reverse<Entry>>, u64)>,
    changed: Condvar,
}

fn service() -> &'static Service {
    static SERVICE: OnceLock<&'static Service> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let service: &'static Service = Box::leak(Box::new(Service {
            heap: Mutex::new((BinaryHeap::new(), 0)),
            changed: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("corun-deadlines".into())
            .spawn(move || run(service))
            .expect("failed to start corun's deadline thread");
        service
    })
}

fn run(service: &'static Service) {
    let mut heap = service.heap.lock();
    loop {
        let now = Instant::now();
        while heap.0.peek().is_some_and(|Reverse(e)| e.at <= now) {
            let Reverse(entry) = heap.0.pop().expect("peeked");
            entry.waiter.wake();
        }
        match heap.0.peek() {
            Some(Reverse(next)) => {
                let at = next.at;
                service.changed.wait_until(&mut heap, at);
            }
            None => service.changed.wait(&mut heap),
        }
    }
}

/// Makes sure the calling coroutine is unparked at `at` (or soon after).
pub(crate) fn wake_at(at: Instant, waiter: Waiter) {
    let service = service();
    let mut heap = service.heap.lock();
    heap.1 += 1;
    let seq = heap.1;
    let earliest = heap.0.peek().is_none_or(|Reverse(e)| at < e.at);
    heap.0.push(Reverse(Entry { at, seq, waiter }));
    drop(heap);
    if earliest {
        service.changed.notify_one();
    }
}

/// Parks the caller (coroutine or thread) until it is unparked or `deadline` passes. Like
/// `park`, it may return early; the caller re-checks its condition and the clock.
pub(crate) fn park_until(deadline: Instant) {
    let now = Instant::now();
    if now >= deadline {
        return;
    }
    if crate::coroutine::current_task().is_some() {
        wake_at(deadline, Waiter::current());
        crate::park();
    } else {
        std::thread::park_timeout(deadline - now);
    }
}
