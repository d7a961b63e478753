//! The monitor thread (Go's sysmon): rescues the queue of a processor stuck in one coroutine.
//!
//! Coroutines are not preempted. One that computes for a long time without yielding, or makes a
//! blocking system call, holds its worker thread, and the coroutines queued on that processor
//! would wait behind it. The monitor wakes every 20 µs while it has something to do, backing off
//! to 10 ms when it has not (Go's rhythm), and reads each processor's tick. A processor whose
//! tick is odd (a coroutine is running) and has not moved for [`HOG_THRESHOLD`] is *stuck*.
//! The monitor then:
//!
//! 1. moves the stuck processor's run-next slot and local queue to the global queue (through the
//!    stealer: safe while the owner runs, as any steal is);
//! 2. wakes a sleeping worker if there is one;
//! 3. excuses the stuck worker from polling the network (`io/pollers.rs`), so that the
//!    netpoller thread does not leave events to a worker that will not look at them;
//! 4. if every active processor is stuck, starts a spare M with a spare P (bounded by
//!    `Builder::max_threads`), which runs the rescued work and exits after 5 ms without any.
//!
//! The stuck coroutine keeps its thread (nothing can take a running stack away) and keeps its
//! processor; when it yields, its worker carries on normally.

use super::Shared;
use crossbeam_utils::sync::{Parker, Unparker};
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// A coroutine running this long without a switch makes its processor stuck.
pub(crate) const HOG_THRESHOLD: Duration = Duration::from_millis(10);
const MIN_DELAY: Duration = Duration::from_micros(20);
const MAX_DELAY: Duration = Duration::from_millis(10);

/// The running monitor thread.
pub(crate) struct Monitor {
    handle: thread::JoinHandle<()>,
    unparker: Unparker,
}

impl Monitor {
    /// Stops the monitor (the runtime's shutdown flag is already set) and joins it.
    pub(crate) fn stop(self) {
        self.unparker.unpark();
        let _ = self.handle.join();
    }
}

pub(crate) fn start(shared: Arc<Shared>, name: &str) -> io::Result<Monitor> {
    let parker = Parker::default();
    let unparker = parker.unparker().clone();
    let handle = thread::Builder::new()
        .name(format!("{name}-monitor"))
        .spawn(move || run(&shared, &parker))?;
    Ok(Monitor { handle, unparker })
}

/// What the monitor remembers of one processor.
#[derive(Clone, Copy)]
struct Seen {
    tick: u64,
    since: Instant,
}

fn run(shared: &Arc<Shared>, parker: &Parker) {
    let now = Instant::now();
    let mut seen = vec![
        Seen {
            tick: 0,
            since: now
        };
        shared.remotes.len()
    ];
    let mut delay = MIN_DELAY;
    let mut last_trim = Instant::now();
    while !shared.is_shutdown() {
        parker.park_timeout(delay);
        if shared.is_shutdown() {
            break;
        }
        delay = if check(shared, &mut seen) {
            MIN_DELAY
        } else {
            (delay * 2).min(MAX_DELAY)
        };
        // Free stacks beyond the pools' dirty limit that stayed cold for a whole interval go back
        // to the kernel here, in batches, not on the release path (see `coroutine::stack`).
        if last_trim.elapsed() >= crate::coroutine::stack::TRIM_INTERVAL {
            crate::coroutine::stack::trim();
            last_trim = Instant::now();
        }
    }
}

/// One look at every processor. Returns whether it rescued any work (then the monitor looks
/// again soon; a processor that stays stuck with nothing queued behind it lets the monitor back
/// off).
fn check(shared: &Arc<Shared>, seen: &mut [Seen]) -> bool {
    let now = Instant::now();
    let mut any_stuck = false;
    let mut moved = false;
    let mut unstuck = 0;
    for (index, (remote, seen)) in shared
        .remotes_in_use()
        .iter()
        .zip(seen.iter_mut())
        .enumerate()
    {
        if !remote.active.load(Ordering::Acquire) {
            continue;
        }
        let tick = remote.tick.load(Ordering::Relaxed);
        if tick != seen.tick {
            *seen = Seen { tick, since: now };
        }
        let stuck = tick % 2 == 1 && now.duration_since(seen.since) >= HOG_THRESHOLD;
        if !stuck {
            unstuck += 1;
            continue;
        }
        any_stuck = true;
        // A stuck worker polls nothing: excuse it, so that the netpoller does not count on it
        // (`io/pollers.rs`). Counted first, then flagged: the worker takes the excuse back
        // only after it sees the flag. Spares are not counted by the netpoller at all.
        if index < shared.num_workers && !remote.poll_excused.load(Ordering::Acquire) {
            crate::io::driver::worker_excused();
            remote.poll_excused.store(true, Ordering::Release);
        }
        if let Some(task) = remote.runnext.take() {
            shared.injector.push(task);
            moved = true;
        }
        while let Some(task) = remote.stealer.steal().success() {
            shared.injector.push(task);
            moved = true;
        }
    }
    if !any_stuck || shared.injector.is_empty() {
        return moved;
    }
    shared.notify_work();
    if unstuck == 0 {
        shared.start_spare();
    }
    true
}
