//! The runtime: processors (P), the worker threads that run them (M), the global queue, the
//! monitor, and shutdown. See DESIGN.md, "Scheduler", for the rules and their sources.
//!
//! * `worker.rs`: the scheduling loop of one M holding one P (find a coroutine, run it, repeat).
//! * `idle.rs`: the spinning/sleeping hand-shake between idle workers and submitters.
//! * `runnext.rs`: a P's run-next slot.
//! * `monitor.rs`: the sysmon thread that rescues the queue of a P stuck in one coroutine.
//! * `registry.rs`: the coroutines that have parked, for shutdown.
//!
//! # Shutdown (dropping a [`Runtime`])
//!
//! 1. Set `shutdown`; from now on spawns fail and wake-ups schedule nothing.
//! 2. Wake every worker and the monitor; each exits at its next scheduling point (a coroutine
//!    that never yields keeps its thread, and the drop waits for it, as joining a thread would).
//! 3. Join every thread. Now no coroutine runs anywhere and this thread owns them all.
//! 4. Empty the run queues, then resume every unfinished coroutine, newest first, with
//!    `Resume::Shutdown`: its pending `park`/`yield_now` unwinds with the payload
//!    [`Cancelled`](crate::Cancelled), running its destructors on its own stack; a coroutine that
//!    never started has its closure dropped and its join handle told `Cancelled`. Newest first
//!    means the children of a [`scope`](crate::scope) unwind before the scope's owner. Waits that
//!    protect borrows (`scope`, `block_on`) are uncancellable: the `Cancelled` unwind is raised
//!    only once they are over. A coroutine still waiting (or one that catches the unwind and
//!    parks again) gets more rounds, with pauses; if it still will not finish, its stack is
//!    leaked (and reported) rather than freed under live frames or borrowers, and its joiners
//!    wait forever, as for a thread that never ends.

pub(crate) mod idle;
mod monitor;
mod registry;
pub(crate) mod runnext;
pub(crate) mod worker;

use crate::coroutine::stack::{self, Stack};
use crate::coroutine::{current_worker, install_context, Context, Coroutine, Resume, Task};
use crate::join::{JoinHandle, Packet};
use crossbeam_deque::{Injector, Stealer};
use crossbeam_utils::sync::{Parker, Unparker};
use idle::Idle;
use parking_lot::Mutex;
use registry::Registry;
use runnext::RunNext;
use std::fmt;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Duration;

/// Most threads a runtime may run coroutines on (Go's default thread limit).
const MAX_THREADS_LIMIT: usize = 10_000;
/// Capacity of a processor's local run queue; past it, half moves to the global queue.
pub(crate) const LOCAL_QUEUE_CAPACITY: usize = 256;
/// Rounds the shutdown drain gives coroutines that keep parking while they unwind (with pauses
/// doubling from 1 ms to 100 ms between rounds: about 1.2 s in all).
const SHUTDOWN_DRAIN_ROUNDS: usize = 16;

/// The parts of a processor that other threads touch.
pub(crate) struct Remote {
    /// Steals from the P's local queue.
    pub(crate) stealer: Stealer<Arc<Task>>,
    /// The P's run-next slot.
    pub(crate) runnext: RunNext<Task>,
    /// Scheduling ticks, odd while a coroutine runs: the monitor's sign of progress.
    pub(crate) tick: AtomicU64,
    /// Wakes the M holding this P when it sleeps.
    pub(crate) unparker: Unparker,
    /// Whether an M holds this P (always for the first `workers` Ps; spares come and go).
    pub(crate) active: AtomicBool,
    /// Set by the monitor when it excused this P's worker from polling the network (stuck in
    /// one coroutine: `io/pollers.rs`); cleared by the worker when it takes the excuse back.
    pub(crate) poll_excused: AtomicBool,
    /// Resumes of a coroutine that last ran on another P (statistics).
    pub(crate) migrated_in: AtomicU64,
    /// Coroutines taken from other Ps' queues (statistics).
    pub(crate) stolen: AtomicU64,
    /// Coroutines spawned by coroutines on this P, and coroutines finished here (statistics).
    pub(crate) spawned: AtomicU64,
    pub(crate) finished: AtomicU64,
}

/// The parts of a processor only its M touches: taken by the M when it starts running the P.
pub(crate) struct ProcLocal {
    pub(crate) queue: crossbeam_deque::Worker<Arc<Task>>,
    pub(crate) parker: Parker,
}

/// State shared by all threads of one runtime.
pub(crate) struct Shared {
    /// The global run queue.
    pub(crate) injector: Injector<Arc<Task>>,
    /// Every P: the first `num_workers` are the runtime's workers, the rest spares that the
    /// monitor brings up while workers are stuck.
    pub(crate) remotes: Box<[Remote]>,
    pub(crate) locals: Box<[Mutex<Option<ProcLocal>>]>,
    /// One past the highest P slot ever activated: loops over the Ps stop there, so the spare
    /// slots that were never used cost nothing.
    pub(crate) slots_in_use: AtomicUsize,
    pub(crate) idle: Idle,
    pub(crate) num_workers: usize,
    /// Default usable stack size of a coroutine (rounded).
    pub(crate) stack_size: usize,
    /// The pool of stacks of that size.
    pub(crate) stack_pool: &'static stack::SizePool,
    pub(crate) shutdown: AtomicBool,
    pub(crate) registry: Registry,
    /// Coroutines spawned from outside the runtime's workers (statistics).
    pub(crate) spawned_elsewhere: AtomicU64,
    /// Spare threads running now, and their handles for joining at shutdown.
    pub(crate) spares_active: AtomicUsize,
    pub(crate) spare_threads: Mutex<Vec<thread::JoinHandle<()>>>,
    pub(crate) thread_name: String,
}

impl Shared {
    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// Queues a coroutine that was just spawned or woken. On a worker of this runtime it goes to
    /// that P's run-next slot (it inherits the rest of the time slice, as in Go's `ready`);
    /// anywhere else, to the global queue.
    pub(crate) fn schedule_woken(&self, task: Arc<Task>) {
        if self.is_shutdown() {
            // Nobody will run it. It was parked, so the shutdown drain finds it in the registry.
            return;
        }
        self.schedule_new(task);
    }

    /// Queues a coroutine just spawned: like `schedule_woken`, but always queued, even during
    /// shutdown. Only this runtime's coroutines can spawn on it while it shuts down, and they run
    /// either on its workers (which are joined before the drain empties the queues, so the drain
    /// finds it there) or in the drain (where the spawn fails before getting here).
    pub(crate) fn schedule_new(&self, task: Arc<Task>) {
        match current_worker() {
            Some(w) if std::ptr::eq(&*w.shared, self) => w.push_runnext(task),
            _ => {
                self.injector.push(task);
                self.notify_work();
            }
        }
    }

    /// New work was published: wake a sleeping worker if nobody is looking for work.
    #[inline]
    pub(crate) fn notify_work(&self) {
        if let Some(worker) = self.idle.worker_to_wake() {
            self.remotes[worker].unparker.unpark();
        }
    }

    /// The P slots that have ever been active.
    pub(crate) fn remotes_in_use(&self) -> &[Remote] {
        &self.remotes[..self.slots_in_use.load(Ordering::Acquire)]
    }

    /// Spawned and not finished (a racy count, from per-worker counters).
    fn live_coroutines(&self) -> usize {
        let (spawned, finished) = self.remotes.iter().fold((0, 0), |(s, f), r| {
            (
                s + r.spawned.load(Ordering::Relaxed),
                f + r.finished.load(Ordering::Relaxed),
            )
        });
        let spawned = spawned + self.spawned_elsewhere.load(Ordering::Relaxed);
        spawned.saturating_sub(finished) as usize
    }

    /// Whether any queue another worker could take from holds work (the pre-sleep re-scan).
    pub(crate) fn has_stealable_work(&self) -> bool {
        !self.injector.is_empty()
            || self
                .remotes_in_use()
                .iter()
                .any(|r| r.active.load(Ordering::Acquire) && !r.stealer.is_empty())
    }

    /// Starts a spare M on a free spare P, if the thread budget allows. Called by the monitor.
    pub(crate) fn start_spare(self: &Arc<Self>) -> bool {
        for index in self.num_workers..self.remotes.len() {
            let Some(local) = self.locals[index].lock().take() else {
                continue;
            };
            self.slots_in_use.fetch_max(index + 1, Ordering::AcqRel);
            self.remotes[index].active.store(true, Ordering::Release);
            self.spares_active.fetch_add(1, Ordering::AcqRel);
            let shared = self.clone();
            let spawned = thread::Builder::new()
                .name(format!(
                    "{}-spare-{}",
                    self.thread_name,
                    index - self.num_workers
                ))
                .spawn(move || worker::run(shared, index, local));
            match spawned {
                Ok(handle) => {
                    let mut spares = self.spare_threads.lock();
                    // Join the spares that have exited since (an exited thread that is never
                    // joined keeps its stack mapped), then keep the new one.
                    let (done, running): (Vec<_>, Vec<_>) =
                        spares.drain(..).partition(|h| h.is_finished());
                    *spares = running;
                    spares.push(handle);
                    drop(spares);
                    for handle in done {
                        let _ = handle.join();
                    }
                    return true;
                }
                Err(_) => {
                    // The OS refused a thread. The closure, and the P's queue with it, is gone
                    // (it was empty: a spare hands its P back only when idle); a stealer cannot
                    // be re-pointed at a new queue, so this P slot stays out of service.
                    self.remotes[index].active.store(false, Ordering::Release);
                    self.spares_active.fetch_sub(1, Ordering::AcqRel);
                    return false;
                }
            }
        }
        false
    }
}

/// Configures and builds a [`Runtime`], like `std::thread::Builder` (by value).
#[derive(Debug, Clone)]
pub struct Builder {
    workers: Option<usize>,
    stack_size: usize,
    max_threads: Option<usize>,
    thread_name: String,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// A builder with the defaults: one worker per CPU, 64 KiB stacks, up to 64 spare threads.
    pub fn new() -> Builder {
        Builder {
            workers: None,
            stack_size: stack::DEFAULT_STACK_SIZE,
            max_threads: None,
            thread_name: "corun".to_owned(),
        }
    }

    /// Number of processors (worker threads running coroutines in parallel). Default: the
    /// number of CPUs.
    pub fn workers(mut self, n: usize) -> Builder {
        self.workers = Some(n);
        self
    }

    /// Default usable stack size of the coroutines spawned on this runtime (rounded up to whole
    /// pages, at least 16 KiB). Default 64 KiB.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = bytes;
        self
    }

    /// Upper bound on the threads that run coroutines: the workers plus the spares the monitor
    /// starts when every worker is stuck in a coroutine that does not yield. Default: workers
    /// + 64. Must be at least `workers` and at most 10,000.
    pub fn max_threads(mut self, n: usize) -> Builder {
        self.max_threads = Some(n);
        self
    }

    /// Prefix of the runtime's thread names (default `"corun"`).
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Builder {
        self.thread_name = prefix.into();
        self
    }

    /// Starts the runtime's threads.
    pub fn build(self) -> io::Result<Runtime> {
        let workers = self.workers.unwrap_or_else(num_cpus::get);
        if workers == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a runtime needs at least one worker",
            ));
        }
        if workers > MAX_THREADS_LIMIT {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{workers} workers is more than the limit of {MAX_THREADS_LIMIT} threads"),
            ));
        }
        let max_threads = self
            .max_threads
            .unwrap_or((workers + 64).min(MAX_THREADS_LIMIT));
        if !(workers..=MAX_THREADS_LIMIT).contains(&max_threads) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "max_threads ({max_threads}) must be between workers ({workers}) and \
                     {MAX_THREADS_LIMIT}"
                ),
            ));
        }
        let stack_size = stack::round_size(self.stack_size)?;
        let mut remotes = Vec::with_capacity(max_threads);
        let mut locals = Vec::with_capacity(max_threads);
        for index in 0..max_threads {
            let queue = crossbeam_deque::Worker::new_fifo();
            let parker = Parker::default();
            remotes.push(Remote {
                stealer: queue.stealer(),
                runnext: RunNext::new(),
                tick: AtomicU64::new(0),
                unparker: parker.unparker().clone(),
                active: AtomicBool::new(index < workers),
                poll_excused: AtomicBool::new(false),
                migrated_in: AtomicU64::new(0),
                stolen: AtomicU64::new(0),
                spawned: AtomicU64::new(0),
                finished: AtomicU64::new(0),
            });
            locals.push(Mutex::new(Some(ProcLocal { queue, parker })));
        }
        let shared = Arc::new(Shared {
            injector: Injector::new(),
            remotes: remotes.into_boxed_slice(),
            locals: locals.into_boxed_slice(),
            slots_in_use: AtomicUsize::new(workers),
            idle: Idle::new(workers),
            num_workers: workers,
            stack_size,
            stack_pool: stack::SizePool::get(stack_size),
            shutdown: AtomicBool::new(false),
            registry: Registry::new(workers),
            spawned_elsewhere: AtomicU64::new(0),
            spares_active: AtomicUsize::new(0),
            spare_threads: Mutex::new(Vec::new()),
            thread_name: self.thread_name.clone(),
        });
        let mut runtime = Runtime {
            shared: shared.clone(),
            threads: Vec::with_capacity(workers + 1),
            monitor: None,
        };
        for index in 0..workers {
            let local = shared.locals[index].lock().take().expect("fresh P");
            let shared = shared.clone();
            let handle = thread::Builder::new()
                .name(format!("{}-worker-{index}", self.thread_name))
                .spawn(move || worker::run(shared, index, local))?;
            runtime.threads.push(handle);
        }
        runtime.monitor = Some(monitor::start(shared, &self.thread_name)?);
        Ok(runtime)
    }
}

/// A multithreaded runtime of stackful coroutines: one processor per worker thread, work
/// stealing between them, and a monitor thread. Dropping it shuts it down (see the module docs).
pub struct Runtime {
    shared: Arc<Shared>,
    threads: Vec<thread::JoinHandle<()>>,
    monitor: Option<monitor::Monitor>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.shared.num_workers)
            .field("stack_size", &self.shared.stack_size)
            .finish_non_exhaustive()
    }
}

/// Per-worker counters, for demos and diagnostics (see [`Runtime::metrics`]).
#[derive(Debug, Clone, Default)]
pub struct WorkerMetrics {
    /// Coroutine resumes on this processor.
    pub resumed: u64,
    /// Resumes of coroutines that last ran on another processor.
    pub migrated_in: u64,
    /// Coroutines this processor stole from others.
    pub stolen: u64,
}

/// A snapshot of a runtime's counters.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// One entry per processor (workers first, then spares).
    pub workers: Vec<WorkerMetrics>,
    /// Coroutines spawned and not yet finished.
    pub live_coroutines: usize,
    /// Spare threads running now.
    pub spare_threads: usize,
}

impl Runtime {
    /// A runtime with the default configuration ([`Builder::new`]).
    pub fn new() -> io::Result<Runtime> {
        Builder::new().build()
    }

    /// Spawns a coroutine on this runtime.
    ///
    /// # Panics
    /// If no stack can be allocated; use [`crate::Builder::spawn_on`] to get the error instead.
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        crate::Builder::new()
            .spawn_on(self, f)
            .expect("failed to spawn a coroutine")
    }

    /// Number of worker threads (processors).
    pub fn workers(&self) -> usize {
        self.shared.num_workers
    }

    /// Runs `f` as a coroutine on this runtime and blocks the calling thread until it returns
    /// (inside a coroutine, parks only the caller). `f` may borrow from the caller's stack.
    /// A panic in `f` is resumed on the caller.
    pub fn block_on<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        // SAFETY: we join before returning, so whatever `f` borrows outlives the coroutine. This
        // runtime cannot shut down meanwhile (we borrow it). If the caller is a coroutine of
        // another runtime that shuts down, the join is uncancellable: the caller keeps waiting,
        // and if it is given up on, its stack (and the borrows) is leaked, never freed.
        let handle = unsafe { spawn_unchecked(&self.shared, None, None, None, f) }
            .expect("failed to spawn a coroutine");
        match crate::coroutine::without_cancellation(|| handle.join()) {
            Ok(value) => value,
            Err(payload) => panic::resume_unwind(payload),
        }
    }

    /// A snapshot of the per-processor counters.
    pub fn metrics(&self) -> Metrics {
        Metrics {
            workers: self
                .shared
                .remotes
                .iter()
                .enumerate()
                .filter(|(i, r)| *i < self.shared.num_workers || r.tick.load(Ordering::Relaxed) > 0)
                .map(|(_, r)| WorkerMetrics {
                    resumed: r.tick.load(Ordering::Relaxed).div_ceil(2),
                    migrated_in: r.migrated_in.load(Ordering::Relaxed),
                    stolen: r.stolen.load(Ordering::Relaxed),
                })
                .collect(),
            live_coroutines: self.shared.live_coroutines(),
            spare_threads: self.shared.spares_active.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let shared = &self.shared;
        shared.shutdown.store(true, Ordering::SeqCst);
        shared.idle.wake_all();
        for remote in shared.remotes.iter() {
            remote.unparker.unpark();
        }
        if let Some(monitor) = self.monitor.take() {
            monitor.stop();
        }
        if current_worker().is_some_and(|w| Arc::ptr_eq(&w.shared, shared)) {
            // Dropped from one of its own coroutines: joining our own thread would deadlock.
            eprintln!("corun: a Runtime was dropped from one of its own coroutines; its threads stop but its coroutines are leaked");
            return;
        }
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
        loop {
            let spares: Vec<_> = std::mem::take(&mut *shared.spare_threads.lock());
            if spares.is_empty() {
                break;
            }
            for handle in spares {
                let _ = handle.join();
            }
        }
        // On a thread of its own: std's panic count is per thread, and the drain must start from
        // zero even if this drop runs while the dropping thread unwinds a panic (otherwise every
        // coroutine's `park` would look like a park during unwinding).
        let drained = thread::scope(|s| {
            thread::Builder::new()
                .name(format!("{}-shutdown", shared.thread_name))
                .spawn_scoped(s, || drain(shared))
                .map(|handle| handle.join())
        });
        if drained.is_err() {
            // No thread to be had: drain here.
            drain(shared);
        }
    }
}

/// Step 4 of shutdown (see the module docs): unwind every coroutine that has not finished.
fn drain(shared: &Shared) {
    // Every unfinished coroutine is in a run queue or, having parked, in the registry (or both:
    // parked once, then woken and queued).
    let mut tasks = shared.registry.take_all();
    while let Some(task) = shared.injector.steal().success() {
        tasks.push(task);
    }
    for (remote, local) in shared.remotes.iter().zip(shared.locals.iter()) {
        tasks.extend(remote.runnext.take());
        while let Some(task) = remote.stealer.steal().success() {
            tasks.push(task);
        }
        if let Some(local) = &*local.lock() {
            while let Some(task) = local.queue.pop() {
                tasks.push(task);
            }
        }
    }
    tasks.sort_unstable_by_key(|t| std::cmp::Reverse(t.id));
    tasks.dedup_by(|a, b| Arc::ptr_eq(a, b));
    let ctx = Context {
        task: std::cell::Cell::new(std::ptr::null()),
        worker: std::ptr::null(),
    };
    let _installed = install_context(&ctx);
    let mut pause = Duration::from_millis(1);
    for round in 0..SHUTDOWN_DRAIN_ROUNDS {
        if round > 0 {
            // What is left waits for something: typically a coroutine of another runtime that
            // it borrowed into (`block_on`, `scope`). Give that time before the next round.
            thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
        // SAFETY: every thread of the runtime has been joined, so this thread holds the run
        // token of every coroutine (none is running, queued entries were just dropped).
        tasks.retain(|task| unsafe {
            task.resume(&ctx, Resume::Shutdown);
            !task.is_done()
        });
        if tasks.is_empty() {
            return;
        }
    }
    for task in tasks {
        eprintln!(
            "corun: coroutine {:?} kept running after being cancelled at shutdown; its stack is leaked",
            task.name.as_deref().map_or_else(|| format!("{:?}", task.id), str::to_owned)
        );
        // SAFETY: as above, we hold the run token.
        unsafe { task.abandon() };
    }
    // A wake-up that raced the shutdown flag may have queued a coroutine after we emptied the
    // queues; drop those references too, or they would keep `Shared` alive through a cycle.
    while shared.injector.steal().success().is_some() {}
}

/// The error a spawn on a stopped runtime returns.
fn shutdown_error() -> io::Error {
    io::Error::other("the runtime is shut down")
}

/// Spawns `f` on `shared`.
///
/// # Safety
/// Whatever `f` and `T` borrow must outlive the coroutine: the caller either passes `'static`
/// values or waits for the coroutine to finish before the borrows end.
pub(crate) unsafe fn spawn_unchecked<F, T>(
    shared: &Arc<Shared>,
    name: Option<String>,
    stack_size: Option<usize>,
    scope: Option<Arc<crate::scope::ScopeData>>,
    f: F,
) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    if shared.is_shutdown() {
        return Err(shutdown_error());
    }
    let size = match stack_size {
        Some(bytes) => stack::round_size(bytes)?,
        None => shared.stack_size,
    };
    let stack = match current_worker() {
        Some(w) if Arc::ptr_eq(&w.shared, shared) => w.take_stack(size)?,
        None if size == shared.stack_size && crate::coroutine::current_task().is_none() => {
            stack::take_on_plain_thread(shared.stack_pool)?
        }
        _ => Stack::new(size)?,
    };
    let packet = Packet::new(scope);
    let their_packet = packet.clone();
    let body = move |first: Resume| {
        if first == Resume::Shutdown {
            // Never started: drop the closure (its captures may borrow from a scope), then tell
            // the joiner. The captures' destructors may panic, or park and be cancelled.
            let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(f)));
            their_packet.complete(Err(Box::new(crate::Cancelled)));
            return;
        }
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        // Coroutine-locals go before the joiner is told, so `join` returning means they are gone.
        let _ = panic::catch_unwind(crate::coroutine::local::drop_all);
        their_packet.complete(result);
    };
    // SAFETY: forwarded from our caller.
    let task = Arc::new(unsafe { Task::new(shared.clone(), name, stack, body) });
    match current_worker() {
        Some(w) if Arc::ptr_eq(&w.shared, shared) => w.count_spawn(),
        _ => {
            shared.spawned_elsewhere.fetch_add(1, Ordering::Relaxed);
        }
    }
    let handle = JoinHandle {
        packet,
        coroutine: Coroutine { task: task.clone() },
    };
    shared.schedule_new(task);
    Ok(handle)
}

/// The runtime `spawn` uses outside any coroutine: started on first use with
/// `CORUN_WORKERS` workers (default: one per CPU), and never shut down.
pub(crate) fn default_runtime() -> &'static Runtime {
    static DEFAULT: OnceLock<Runtime> = OnceLock::new();
    DEFAULT.get_or_init(|| {
        let mut builder = Builder::new().thread_name("corun-default");
        if let Some(n) = std::env::var("CORUN_WORKERS")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
        {
            if n > 0 {
                builder = builder.workers(n);
            }
        }
        builder
            .build()
            .expect("failed to start corun's default runtime")
    })
}

/// The runtime to spawn on from here: the current coroutine's, or the default one.
pub(crate) fn current_shared() -> Arc<Shared> {
    match crate::coroutine::current_task() {
        Some(task) => task.shared.clone(),
        None => default_runtime().shared.clone(),
    }
}
