//! The blocking pool: where [`blocking`] runs closures that would block a worker.
//!
//! A worker thread that blocks in a system call (a file read, `getaddrinfo`, a C library's
//! wait) stops every coroutine queued on its processor until the monitor notices. `blocking`
//! avoids that: it hands the closure to a pool of plain threads and parks the coroutine, so the
//! worker goes on running the others.
//!
//! The pool is process-wide, like the netpoller, and lazily started:
//!
//! * **Growing.** A job goes to an idle thread if there is one, else to a new thread, up to
//!   [`MAX_THREADS`]; past that, jobs queue (FIFO) for the next thread that comes free.
//! * **Shrinking.** A thread that has had nothing to do for [`KEEP_ALIVE`] exits.
//! * **Hand-off without lost wake-ups.** One lock covers the queue and the counts. `idle` is the
//!   number of threads waiting that nobody has claimed; a submitter that finds one claims it
//!   (`idle -= 1`, `notified += 1`) and notifies. A waking thread that finds `notified > 0`
//!   consumes a notification and looks at the queue; one that timed out with no notification
//!   pending was not claimed, so it may leave. A notification therefore always finds the thread
//!   it was meant for or one just like it, and a queued job always has a thread coming.
//!
//! The caller's side: the job writes its result into a slot on the caller's stack, sets the
//! slot's `done` flag (Release) and then wakes the caller with a handle it took out first, so it
//! touches nothing of the slot once `done` is visible. The caller parks until it sees `done`
//! (Acquire), in a section shutdown cannot cancel: the job borrows from the caller's stack, so
//! the caller must not unwind (or return) while the job may still run.

use crate::coroutine::{current_task, without_cancellation};
use crate::join::Waiter;
use parking_lot::{Condvar, Mutex};
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::io::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::thread;
use std::time::Duration;

/// The most threads the pool runs at once (tokio's default for its blocking pool).
pub(crate) const MAX_THREADS: usize = 512;
/// How long a pool thread waits for work before it exits.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// Runs `f` on the blocking pool and parks the calling coroutine until it returns, so that a
/// blocking call (file I/O, name resolution, a C library that waits) stalls neither the worker
/// nor the other coroutines on it. A panic in `f` is resumed in the caller, as
/// [`JoinHandle::join`](crate::JoinHandle::join) would report it.
///
/// `f` may borrow from the caller: the caller waits until `f` has finished, even when its
/// runtime shuts down meanwhile (it unwinds only after). So a closure that never returns keeps
/// its caller, and that runtime's shutdown, waiting.
///
/// On a plain thread (outside any coroutine), `f` simply runs on the calling thread.
///
/// The pool grows to at most 512 threads and shrinks when they have been idle for 10 seconds;
/// past 512 running closures, further ones queue until a thread comes free.
///
/// ```
/// let size = corun::spawn(|| {
///     corun::blocking(|| std::fs::read("Cargo.toml").map(|bytes| bytes.len()))
/// })
/// .join()
/// .unwrap()
/// .unwrap();
/// assert!(size > 0);
/// ```
pub fn blocking<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    run_on_pool(f, |wait| without_cancellation(wait))
}

/// [`blocking`] for the hooked libc calls, which must not unwind: a shutdown during the wait
/// is left pending (`coroutine::deferring_cancellation`) instead of raised on return.
#[cfg(feature = "hook")]
pub(crate) fn blocking_in_hook<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    run_on_pool(f, |wait| {
        crate::coroutine::deferring_cancellation(wait);
    })
}

/// The body of [`blocking`]: `section` runs the wait with cancellation deferred.
fn run_on_pool<F, T>(f: F, section: impl FnOnce(&mut dyn FnMut())) -> T
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    if current_task().is_none() {
        return f();
    }
    let slot = Slot {
        done: AtomicBool::new(false),
        result: UnsafeCell::new(None),
    };
    let slot_ref = SlotRef(&slot);
    let waiter = Waiter::current();
    let job = move || {
        let slot_ref = slot_ref; // the whole wrapper, not its field (it is what is `Send`)
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        // SAFETY: the caller reads `result` only after it sees `done`, which is set below,
        // after this write; nothing else touches the cell. The slot is alive: the caller does
        // not leave `blocking` until `done` is set (see the wait below).
        unsafe { *slot_ref.0.result.get() = Some(result) };
        slot_ref.0.done.store(true, Ordering::Release);
        // From here on the slot may be gone: only the owned `waiter` is used.
        waiter.wake();
    };
    let job: Box<dyn FnOnce() + Send + '_> = Box::new(job);
    // SAFETY: the job borrows `f`'s captures and `slot`, which live until this function
    // returns or unwinds. It does not return before the job has set `done` (the loop below,
    // which a shutdown cannot cut short: `section` defers cancellation), and it does not
    // unwind from the submission on (`AbortOnUnwind`: nothing there is meant to panic, and if
    // something did, aborting is the sound way out). The job uses neither once it has set
    // `done`. So extending the box's lifetime bound to `'static` is never observed.
    let job: Job = unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + '_>, Job>(job) };
    let mut job = Some(job);
    section(&mut || {
        let abort_on_unwind = AbortOnUnwind;
        pool().submit(job.take().expect("the wait runs once"));
        while !slot.done.load(Ordering::Acquire) {
            crate::park();
        }
        std::mem::forget(abort_on_unwind);
    });
    // SAFETY: `done` was observed with Acquire after the job's Release store, which follows its
    // write of `result`; the job is finished with the slot.
    match unsafe { (*slot.result.get()).take() } {
        Some(Ok(value)) => value,
        Some(Err(payload)) => panic::resume_unwind(payload),
        None => unreachable!("a finished job stored its result"),
    }
}

/// Aborts the process if dropped, i.e. if the caller of `blocking` unwinds while its job may
/// still run and use its stack (forgotten on the normal path).
struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        let _ = writeln!(
            std::io::stderr(),
            "corun: a coroutine unwound while its blocking job could still use its stack; aborting"
        );
        std::process::abort();
    }
}

/// Where a job leaves its outcome for the coroutine that waits for it.
struct Slot<T> {
    done: AtomicBool,
    result: UnsafeCell<Option<thread::Result<T>>>,
}

/// The job's pointer to the caller's [`Slot`].
struct SlotRef<'a, T>(&'a Slot<T>);

// SAFETY: the job on a pool thread writes `result` (a `T: Send` crossing threads once) before
// setting `done`; the caller reads it only after seeing `done`. The two never access the cell
// at the same time, so sharing `&Slot<T>` with the pool thread needs only `T: Send`.
unsafe impl<T: Send> Send for SlotRef<'_, T> {}

type Job = Box<dyn FnOnce() + Send + 'static>;

fn pool() -> &'static Arc<Pool> {
    static POOL: LazyLock<Arc<Pool>> = LazyLock::new(|| Pool::new(MAX_THREADS, KEEP_ALIVE));
    &POOL
}

/// A growing and shrinking thread pool (see the module doc for the protocol).
pub(crate) struct Pool {
    state: Mutex<State>,
    /// Signalled once per claimed idle thread.
    work: Condvar,
    max_threads: usize,
    keep_alive: Duration,
}

struct State {
    queue: VecDeque<Job>,
    /// Threads alive (running a job, or waiting for one).
    threads: usize,
    /// Threads waiting for work that no submitter has claimed yet.
    idle: usize,
    /// Notifications sent to claimed threads and not consumed yet.
    notified: usize,
    /// Names the threads.
    spawned: u64,
}

impl Pool {
    pub(crate) fn new(max_threads: usize, keep_alive: Duration) -> Arc<Pool> {
        assert!(max_threads > 0, "a pool needs at least one thread");
        Arc::new(Pool {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                threads: 0,
                idle: 0,
                notified: 0,
                spawned: 0,
            }),
            work: Condvar::new(),
            max_threads,
            keep_alive,
        })
    }

    /// Runs `job` on a pool thread, starting one if none is free and the bound allows.
    pub(crate) fn submit(self: &Arc<Self>, job: Job) {
        let mut state = self.state.lock();
        state.queue.push_back(job);
        if state.idle > 0 {
            state.idle -= 1;
            state.notified += 1;
            drop(state);
            self.work.notify_one();
            return;
        }
        if state.threads == self.max_threads {
            return; // a busy thread takes it when it comes free
        }
        state.threads += 1;
        state.spawned += 1;
        let name = format!("corun-blocking-{}", state.spawned);
        drop(state);
        let pool = Arc::clone(self);
        if let Err(error) = thread::Builder::new().name(name).spawn(move || pool.run()) {
            // Out of threads: run the queue here rather than lose a job, if no other thread
            // will (one that exists takes the queue before it goes idle).
            let mut state = self.state.lock();
            state.threads -= 1;
            if state.threads == 0 {
                // Not `eprintln!`, which panics if stderr is gone: the caller's stack is
                // borrowed by a queued job, so nothing here may unwind.
                let _ = writeln!(
                    std::io::stderr(),
                    "corun: cannot start a blocking-pool thread ({error}); running inline"
                );
                while let Some(job) = state.queue.pop_front() {
                    drop(state);
                    job();
                    state = self.state.lock();
                }
            }
        }
    }

    /// A pool thread: runs jobs until it has been idle for `keep_alive`.
    fn run(&self) {
        let mut state = self.state.lock();
        loop {
            while let Some(job) = state.queue.pop_front() {
                drop(state);
                // Jobs catch their own panics (see `blocking`); should one escape, the thread
                // carries on, so the jobs queued behind it are not stranded.
                let _ = panic::catch_unwind(AssertUnwindSafe(job));
                state = self.state.lock();
            }
            state.idle += 1;
            loop {
                let timed_out = self.work.wait_for(&mut state, self.keep_alive).timed_out();
                if state.notified > 0 {
                    state.notified -= 1; // claimed: a submitter took us off `idle`
                    break;
                }
                if timed_out {
                    state.idle -= 1;
                    state.threads -= 1;
                    return;
                }
            }
        }
    }

    /// Threads alive (for tests).
    #[cfg(test)]
    fn threads(&self) -> usize {
        self.state.lock().threads
    }

    /// Whether every thread alive is waiting, unclaimed, for work (for tests).
    #[cfg(test)]
    fn all_idle(&self) -> bool {
        let state = self.state.lock();
        state.idle == state.threads
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc;
    use std::time::Instant;

    /// Polls `cond` for up to 10 s (generous: the machine may be loaded).
    fn eventually(cond: impl Fn() -> bool) -> bool {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if cond() {
                return true;
            }
            thread::sleep(Duration::from_millis(5));
        }
        cond()
    }

    #[test]
    fn grows_to_the_bound_queues_past_it_and_shrinks_when_idle() {
        let pool = Pool::new(4, Duration::from_millis(50));
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Arc::new(std::sync::Mutex::new(release_rx));
        let started = Arc::new(AtomicUsize::new(0));
        let (done_tx, done_rx) = mpsc::channel();
        for _ in 0..10 {
            let (release_rx, started, done_tx) =
                (release_rx.clone(), started.clone(), done_tx.clone());
            pool.submit(Box::new(move || {
                started.fetch_add(1, Ordering::SeqCst);
                release_rx.lock().unwrap().recv().unwrap();
                done_tx.send(()).unwrap();
            }));
        }
        assert!(eventually(|| started.load(Ordering::SeqCst) == 4));
        assert_eq!(pool.threads(), 4, "the bound holds");
        for _ in 0..10 {
            release_tx.send(()).unwrap();
        }
        for _ in 0..10 {
            done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        }
        assert_eq!(started.load(Ordering::SeqCst), 10, "queued jobs all ran");
        assert!(eventually(|| pool.threads() == 0), "idle threads exit");
        // And it grows again after shrinking to nothing.
        let (tx, rx) = mpsc::channel();
        pool.submit(Box::new(move || tx.send(7).unwrap()));
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), 7);
    }

    #[test]
    fn an_idle_thread_takes_the_next_job() {
        let pool = Pool::new(8, Duration::from_secs(60));
        for round in 0..200 {
            assert!(eventually(|| pool.all_idle()));
            let (tx, rx) = mpsc::channel();
            pool.submit(Box::new(move || tx.send(round).unwrap()));
            assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), round);
        }
        // Jobs one at a time, each submitted once the last thread was back waiting: that one
        // thread did them all.
        assert_eq!(pool.threads(), 1);
    }
}
