//! One M running one P: find a runnable coroutine, resume it, handle why it came back, repeat.
//!
//! The order of the search is Go's `findRunnable` (DESIGN.md, "Scheduler"):
//!
//! 1. every 61st tick, the global queue first, so it is never starved by busy local queues
//!    (and, if the local queue has work, a sleeping worker is told: yields do not wake anyone);
//! 2. the run-next slot, unless it was used [`MAX_RUNNEXT_STREAK`] times in a row (a ping-pong
//!    pair would otherwise keep the rest of the queue waiting forever): then it is demoted to the
//!    back of the local queue;
//! 3. the local queue;
//! 4. a batch from the global queue;
//! 5. spinning (at most half the busy workers at once): steal half of a random victim's queue,
//!    visiting victims in a random order, for up to [`SPIN_TIME`]; victims' run-next slots only
//!    after [`RUNNEXT_STEAL_AFTER`];
//! 6. sleep, following the idle protocol of `idle.rs`.
//!
//! The network is polled (without blocking) with step 1, before step 5, and at the end of the
//! spin, before sleeping; coroutines whose sockets are ready join the local queue (see
//! `io/driver.rs`, "Who polls").
//!
//! The worker never touches anything thread-local that a coroutine could have cached: the
//! coroutine finds this `Worker` through the context the worker publishes before each resume.

use super::{ProcLocal, Shared, LOCAL_QUEUE_CAPACITY};
use crate::coroutine::stack::{Stack, StackCache};
use crate::coroutine::state::Commit;
use crate::coroutine::{install_context, overflow, Context, Resume, Suspend, Task};
use crate::io::driver as io_driver;
use crossbeam_deque::Steal;
use std::cell::{Cell, RefCell};
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Every this many ticks the global queue is checked first (Go: 61, a prime, so the check does
/// not fall into step with a periodic workload).
const GLOBAL_QUEUE_INTERVAL: u32 = 61;
/// Consecutive run-next picks allowed before the slot yields to the local queue (tokio: 3).
const MAX_RUNNEXT_STREAK: u32 = 3;
/// How long a spinning worker looks for work before it goes to sleep. Long enough to bridge the
/// gaps of a steady stream of submissions (a spawn every few hundred ns from one thread), so the
/// submitter does not pay a futex wake for each of them; short enough not to take the core from
/// a process sharing the machine (50 µs cost http_hello, with wrk on the same two cores, 10% of
/// its throughput; the scheduler benchmarks did not change between 10 and 50).
const SPIN_TIME: Duration = Duration::from_micros(10);
/// Spinning this long before run-next slots may be stolen too.
const RUNNEXT_STEAL_AFTER: Duration = Duration::from_micros(5);
/// How long an idle spare M waits for work before it hands its P back and exits.
const SPARE_IDLE_TIMEOUT: Duration = Duration::from_millis(5);

/// The M-side state of a processor; lives on the worker thread's stack.
pub(crate) struct Worker {
    pub(crate) index: usize,
    pub(crate) shared: Arc<Shared>,
    /// `&shared.remotes[index]`, resolved once: it is read several times per switch.
    remote: *const super::Remote,
    local: ProcLocal,
    /// Ticks left until the global queue is checked first.
    global_countdown: Cell<u32>,
    runnext_streak: Cell<u32>,
    spinning: Cell<bool>,
    /// Set while this worker harvests network events: the coroutines they wake go to the back
    /// of the local queue, in order, instead of each displacing the last from run-next.
    harvesting: Cell<bool>,
    /// Coroutines queued by the harvest in progress.
    harvested: Cell<usize>,
    rng: Cell<u64>,
    stacks: RefCell<StackCache>,
    is_spare: bool,
}

/// Runs P `index` on this thread until the runtime shuts down (or, for a spare, until idle).
pub(crate) fn run(shared: Arc<Shared>, index: usize, local: ProcLocal) {
    let _alt_stack = overflow::install_for_this_thread();
    let worker = Worker {
        index,
        remote: &shared.remotes[index],
        is_spare: index >= shared.num_workers,
        stacks: RefCell::new(StackCache::new(shared.stack_pool)),
        shared,
        local,
        global_countdown: Cell::new(GLOBAL_QUEUE_INTERVAL),
        runnext_streak: Cell::new(0),
        spinning: Cell::new(false),
        harvesting: Cell::new(false),
        harvested: Cell::new(0),
        rng: Cell::new(
            0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
        ),
    };
    worker.run();
}

impl Worker {
    fn remote(&self) -> &super::Remote {
        // SAFETY: `remote` points into `shared.remotes`, a boxed slice that lives as long as
        // `shared`, which `self` keeps alive.
        unsafe { &*self.remote }
    }

    fn run(self) {
        let ctx = Context {
            task: Cell::new(std::ptr::null()),
            worker: &self,
        };
        let _installed = install_context(&ctx);
        // Counted by the netpoller until the guard drops (spares are not: they come and go).
        let _counted = (!self.is_spare).then(io_driver::worker_started);
        while !self.shared.is_shutdown() {
            let task = match self.next_task() {
                Some(task) => task,
                None if self.poll_network() => continue,
                None => match self.search() {
                    Some(task) => task,
                    None => {
                        if self.is_spare {
                            if self.spare_should_exit() {
                                break;
                            }
                        } else {
                            self.sleep();
                        }
                        continue;
                    }
                },
            };
            self.stop_spinning();
            self.run_task(&ctx, task);
        }
        self.stop_spinning();
        self.take_back_poll_excuse();
        drop(_installed);
        if self.is_spare {
            self.retire_spare();
        }
    }

    /// If the monitor excused this worker from polling while its last coroutine ran (it was
    /// stuck), tells the netpoller that it polls again.
    #[inline]
    fn take_back_poll_excuse(&self) {
        let excused = &self.remote().poll_excused;
        if excused.load(Ordering::Relaxed) && excused.swap(false, Ordering::AcqRel) {
            io_driver::worker_unexcused();
        }
    }

    /// Takes the network events ready now (if the netpoller runs) and queues the coroutines
    /// they wake; returns whether any of this runtime's were queued here.
    fn poll_network(&self) -> bool {
        let Some(driver) = io_driver::get() else {
            return false;
        };
        self.harvesting.set(true);
        driver.harvest();
        self.harvesting.set(false);
        let queued = self.harvested.replace(0);
        if queued > 1 {
            // This worker runs one; the others are for whoever is idle.
            self.shared.notify_work();
        }
        queued > 0
    }

    /// Steps 1 to 4 of the search: the P's own work and the global queue.
    fn next_task(&self) -> Option<Arc<Task>> {
        let countdown = self.global_countdown.get() - 1;
        if countdown == 0 {
            self.global_countdown.set(GLOBAL_QUEUE_INTERVAL);
            // Yields do not wake idle workers (a fence per switch is too dear), so a worker that
            // went to sleep while this queue still had work is woken here, every 61 ticks.
            if !self.local.queue.is_empty() {
                self.shared.notify_work();
            }
            self.poll_network();
            if let Some(task) = self.take_global() {
                return Some(task);
            }
        } else {
            self.global_countdown.set(countdown);
        }
        let runnext = &self.remote().runnext;
        if self.runnext_streak.get() < MAX_RUNNEXT_STREAK {
            if let Some(task) = runnext.take() {
                self.runnext_streak.set(self.runnext_streak.get() + 1);
                return Some(task);
            }
        } else if let Some(task) = runnext.take() {
            self.push_back(task);
        }
        self.runnext_streak.set(0);
        self.local.queue.pop().or_else(|| self.take_global())
    }

    /// A batch from the global queue: a fair share, at most half a local queue.
    fn take_global(&self) -> Option<Arc<Task>> {
        let injector = &self.shared.injector;
        if injector.is_empty() {
            return None;
        }
        let limit = (injector.len() / self.shared.num_workers + 1).min(LOCAL_QUEUE_CAPACITY / 2);
        loop {
            match injector.steal_batch_with_limit_and_pop(&self.local.queue, limit) {
                Steal::Success(task) => return Some(task),
                Steal::Empty => return None,
                Steal::Retry => continue,
            }
        }
    }

    /// Step 5: spin and steal, if allowed to spin.
    fn search(&self) -> Option<Arc<Task>> {
        if !self.spinning.get() {
            if self.is_spare || self.shared.idle.try_start_spinning() {
                self.spinning.set(!self.is_spare);
            } else {
                return None;
            }
        }
        let remotes = self.shared.remotes_in_use();
        let started = Instant::now();
        let mut pause = 1;
        loop {
            let spun = started.elapsed();
            // Run-next slots only after a while: their owner is about to run them (Go backs off
            // ~3 µs before stealing one, for the same reason).
            let take_runnext = spun >= RUNNEXT_STEAL_AFTER;
            let n = remotes.len();
            let start = self.random() as usize % n;
            for i in 0..n {
                let victim = (start + i) % n;
                if victim == self.index || !remotes[victim].active.load(Ordering::Acquire) {
                    continue;
                }
                if let Some(task) = self.steal_from(&remotes[victim]) {
                    return Some(task);
                }
                if take_runnext {
                    if let Some(task) = remotes[victim].runnext.take() {
                        self.count_stolen(1);
                        return Some(task);
                    }
                }
            }
            if let Some(task) = self.take_global() {
                return Some(task);
            }
            if spun >= SPIN_TIME {
                // The network was polled just before the spin began; once more before giving
                // up (a poll per round would be a system call per round, on cores that a
                // client sharing the machine may need).
                if self.poll_network() {
                    return self.local.queue.pop();
                }
                return None;
            }
            for _ in 0..pause {
                std::hint::spin_loop();
            }
            pause = (pause * 2).min(64);
        }
    }

    /// Steals half (rounded up) of `victim`'s local queue.
    fn steal_from(&self, victim: &super::Remote) -> Option<Arc<Task>> {
        loop {
            let len = victim.stealer.len();
            if len == 0 {
                return None;
            }
            let before = self.local.queue.len();
            match victim
                .stealer
                .steal_batch_with_limit_and_pop(&self.local.queue, len.div_ceil(2))
            {
                Steal::Success(task) => {
                    self.count_stolen((self.local.queue.len() - before + 1) as u64);
                    return Some(task);
                }
                Steal::Empty => return None,
                Steal::Retry => continue,
            }
        }
    }

    /// Counts a coroutine spawned by a coroutine running on this P (statistics).
    pub(crate) fn count_spawn(&self) {
        let spawned = &self.remote().spawned;
        spawned.store(spawned.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    fn count_stolen(&self, n: u64) {
        let stolen = &self.remote().stolen;
        stolen.store(stolen.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }

    fn stop_spinning(&self) {
        if self.spinning.replace(false) && self.shared.idle.stop_spinning() {
            // We were the last spinner: submitters may have skipped waking anyone because of
            // us, so make sure someone else looks for the work that may remain.
            self.shared.notify_work();
        }
    }

    /// Step 6: sleep until woken (the idle protocol, `Idle::sleep_until_woken`).
    fn sleep(&self) {
        let shared = &self.shared;
        let spinning = shared.idle.sleep_until_woken(
            self.index,
            self.spinning.replace(false),
            || shared.has_stealable_work(),
            || shared.is_shutdown(),
            || {
                // Asleep, this worker polls nothing: the netpoller covers for it.
                io_driver::worker_asleep();
                self.local.parker.park();
                io_driver::worker_woke();
            },
        );
        self.spinning.set(spinning);
    }

    fn spare_should_exit(&self) -> bool {
        self.local.parker.park_timeout(SPARE_IDLE_TIMEOUT);
        !self.shared.has_stealable_work()
    }

    /// A spare P goes back to the pool. Its queue is empty (it found nothing to do) and only its
    /// M pushes to it, so nothing is stranded.
    fn retire_spare(self) {
        let remote = self.remote();
        if let Some(task) = remote.runnext.take() {
            self.shared.injector.push(task);
        }
        while let Some(task) = self.local.queue.pop() {
            self.shared.injector.push(task);
        }
        remote.active.store(false, Ordering::Release);
        let shared = self.shared.clone();
        let index = self.index;
        *shared.locals[index].lock() = Some(self.local);
        shared.spares_active.fetch_sub(1, Ordering::AcqRel);
        shared.notify_work();
    }

    fn run_task(&self, ctx: &Context, task: Arc<Task>) {
        let last = task.last_worker.replace(self.index);
        let remote = self.remote();
        if last != usize::MAX && last != self.index {
            let m = &remote.migrated_in;
            m.store(m.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
        // Odd tick while the coroutine runs: what the monitor watches.
        let tick = remote.tick.load(Ordering::Relaxed);
        remote.tick.store(tick + 1, Ordering::Relaxed);
        // SAFETY: we popped `task` from a queue (or took it from a run-next slot), which hands
        // us its run token.
        let why = unsafe { task.resume(ctx, Resume::Run) };
        remote.tick.store(tick + 2, Ordering::Relaxed);
        self.take_back_poll_excuse();
        match why {
            Some(Suspend::Yield) => self.push_back(task),
            Some(Suspend::Park) => self.commit_park(task),
            None => {
                let finished = &remote.finished;
                finished.store(finished.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                if task.registered.get() {
                    self.shared.registry.remove(&task);
                }
            }
        }
    }

    /// The coroutine switched out to park: publish it as parked (commit after switch, see
    /// `coroutine/state.rs`), or run it again if a wake-up raced in.
    fn commit_park(&self, task: Arc<Task>) {
        // Registered before the commit: once committed, a waker may run it on another worker,
        // and it could finish (and be unregistered) before we got to registering it.
        if !task.registered.replace(true) {
            self.shared.registry.insert(&task);
        }
        match task.park.commit_park() {
            Commit::Parked => {}
            Commit::Notified => self.push_back(task),
        }
    }

    /// Queues a woken or spawned coroutine in the run-next slot; what it displaces goes to the
    /// back of the local queue, where others can steal it, so that is when idle workers are told.
    pub(crate) fn push_runnext(&self, task: Arc<Task>) {
        if self.harvesting.get() {
            self.harvested.set(self.harvested.get() + 1);
            self.push_back(task);
            return;
        }
        if let Some(displaced) = self.remote().runnext.swap(task) {
            self.push_back(displaced);
            self.shared.notify_work();
        }
    }

    /// Queues a coroutine at the back of the local queue; when the queue is full, half of it
    /// moves to the global queue (Go's `runqputslow`).
    fn push_back(&self, task: Arc<Task>) {
        let queue = &self.local.queue;
        if queue.len() >= LOCAL_QUEUE_CAPACITY {
            for _ in 0..LOCAL_QUEUE_CAPACITY / 2 {
                match queue.pop() {
                    Some(t) => self.shared.injector.push(t),
                    None => break,
                }
            }
            self.shared.injector.push(task);
            self.shared.notify_work();
        } else {
            queue.push(task);
        }
    }

    pub(crate) fn take_stack(&self, size: usize) -> io::Result<Stack> {
        self.stacks.borrow_mut().take(size)
    }

    pub(crate) fn release_stack(&self, stack: Stack) {
        self.stacks.borrow_mut().put(stack);
    }

    /// xorshift64*: victim order only needs to be cheap and different per worker.
    fn random(&self) -> u64 {
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}
