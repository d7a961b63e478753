//! Coroutines (Go's G): the task record, the switch between a coroutine and its worker, and the
//! coroutine-side API (`park`, `yield_now`, `current`).
//!
//! # Ownership of a coroutine's stack
//!
//! A [`Task`] is shared (`Arc`) by its run queue entries, the runtime's registry, join handles
//! and [`Coroutine`] handles, but its stack (the corosensei coroutine in [`Task::coro`]) is
//! touched by one party only: whoever holds the *run token*. The token is handed over by the
//! run queues (a push/pop pair is a release/acquire hand-off) and by the park protocol
//! (`state.rs`): a worker gets it by popping the task, keeps it while the coroutine runs, and
//! gives it up by pushing the task again, by committing a park, or by finishing the task.
//!
//! # Finding the current coroutine
//!
//! Code on a coroutine's stack can migrate to another OS thread at every switch, so nothing
//! thread-local may be cached across one (see DESIGN.md, "Soundness"). The worker stores a
//! pointer to a [`Context`] (on the worker's own stack) in a thread-local before each resume;
//! coroutine code reads it through [`context`], which is `#[inline(never)]` and returns a copy,
//! so the compiler can neither hoist the thread-local address across a switch nor keep a stale
//! value in a register. After a switch the code calls `context()` again.

pub(crate) mod generator;
pub(crate) mod local;
pub(crate) mod overflow;
pub mod stack;
pub mod state;

use crate::join::Waiter;
use crate::runtime::{worker::Worker, Shared};
use state::ParkState;
use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// A coroutine body on its stack.
pub(crate) type Coro = corosensei::Coroutine<Resume, Suspend, (), stack::Stack>;
pub(crate) type Yielder = corosensei::Yielder<Resume, Suspend>;

/// What a worker passes to a coroutine when it resumes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resume {
    /// Carry on.
    Run,
    /// The runtime is shutting down: unwind (see `Runtime`'s drop).
    Shutdown,
}

/// Why a coroutine switched back to its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Suspend {
    /// `yield_now`: requeue at the back.
    Yield,
    /// `park`: commit the park (see `state.rs`).
    Park,
}

/// A unique identifier of a coroutine, never reused within a process.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct CoroutineId(u64);

impl CoroutineId {
    fn next() -> CoroutineId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        CoroutineId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The id as a number (ids start at 1 and increase).
    pub fn as_u64(&self) -> u64 {
        self.0
    }
}

/// The runtime's record of one coroutine.
pub(crate) struct Task {
    pub(crate) id: CoroutineId,
    pub(crate) name: Option<Box<str>>,
    pub(crate) park: ParkState,
    pub(crate) shared: Arc<Shared>,
    /// The coroutine and its stack; `None` once finished. Run-token holder only.
    coro: UnsafeCell<Option<Coro>>,
    /// Set by the coroutine itself when it first runs; read only on its own stack.
    yielder: Cell<*const Yielder>,
    /// Coroutine-local values. Read and written only on the coroutine's own stack.
    pub(crate) locals: UnsafeCell<local::LocalMap>,
    /// Guard range and size of the stack, for overflow reports (immutable after creation).
    guard: (usize, usize),
    /// Whether the gap is a soft guard, checked after each switch-out.
    soft_guard: bool,
    stack_size: usize,
    /// Slot in the runtime's registry (written under the registry shard's lock).
    pub(crate) registry_slot: AtomicUsize,
    /// Whether the task is in the registry: it is put there the first time it parks (run-token
    /// holder only; see `runtime/registry.rs`).
    pub(crate) registered: Cell<bool>,
    /// Index of the worker that last ran it (run-token holder only), to count migrations.
    pub(crate) last_worker: Cell<usize>,
    /// Depth of `without_cancellation` sections on this coroutine (its own stack only).
    cancel_deferred: Cell<u32>,
    /// A shutdown arrived inside such a section and is raised when the section ends.
    cancel_pending: Cell<bool>,
    /// Timers this coroutine has armed (its own stack only): numbers them, from 1.
    pub(crate) timers_armed: Cell<u64>,
    /// The number of this coroutine's last timer that fired, set by the firing thread after
    /// it took the timer out of the wheel: a timer that finds its number here has nothing left
    /// to remove (`time::Timer`'s drop skips the wheel's lock).
    pub(crate) timer_fired: std::sync::atomic::AtomicU64,
}

// SAFETY: the fields that are not thread-safe by themselves (`coro`, `yielder`, `locals`,
// `last_worker`) are only accessed by the holder of the run token (see the module docs), which is
// handed between threads with release/acquire synchronisation; so at any time one thread accesses
// them, and every access happens-after the previous holder's. The corosensei coroutine is `!Send`
// because its stack may hold `!Send` values; moving a suspended one to another thread is the
// migration argued in DESIGN.md, "Soundness". The rest of the fields are `Sync` already.
unsafe impl Send for Task {}
// SAFETY: see `Send` above: shared access goes through atomics or through the run token.
unsafe impl Sync for Task {}

impl Task {
    /// Creates a task whose body is `body`, on `stack`.
    ///
    /// # Safety
    /// Everything `body` borrows must stay valid until the coroutine finishes or is dropped
    /// (`Coroutine::with_stack_unchecked`'s contract). `spawn` passes `'static` closures;
    /// `scope` and `block_on` wait for completion before the borrows end.
    pub(crate) unsafe fn new<F>(
        shared: Arc<Shared>,
        name: Option<String>,
        stack: stack::Stack,
        body: F,
    ) -> Task
    where
        F: FnOnce(Resume) + Send,
    {
        let guard = stack.guard_range();
        let soft_guard = !stack.is_guarded();
        let stack_size = stack.size();
        let entry = move |yielder: &Yielder, first: Resume| {
            // Set even when the body will not run (`Shutdown`): dropping its closure may run
            // destructors that park or yield, and those switch through the yielder.
            let task = current_task().expect("resumed by a worker or the drain");
            task.yielder.set(yielder);
            // On `Shutdown` the body must not run: it drops its closure and reports cancellation.
            // The body catches every panic of user code; one escaping here is a bug of ours, and
            // unwinding into the worker would kill it, so stop.
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(first))).is_err() {
                eprintln!("corun: internal error: a panic escaped a coroutine's body; aborting");
                std::process::abort();
            }
        };
        // SAFETY: forwarded to our caller (see above).
        let coro = unsafe { Coro::with_stack_unchecked(stack, entry) };
        Task {
            id: CoroutineId::next(),
            name: name.map(String::into_boxed_str),
            park: ParkState::new(),
            shared,
            coro: UnsafeCell::new(Some(coro)),
            yielder: Cell::new(std::ptr::null()),
            locals: UnsafeCell::new(local::LocalMap::default()),
            guard,
            soft_guard,
            stack_size,
            registry_slot: AtomicUsize::new(usize::MAX),
            registered: Cell::new(false),
            last_worker: Cell::new(usize::MAX),
            cancel_deferred: Cell::new(0),
            cancel_pending: Cell::new(false),
            timers_armed: Cell::new(0),
            timer_fired: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Resumes the coroutine on this thread with `input` until it switches back, publishing it
    /// as the running task of `ctx` (this thread's context) meanwhile. Returns `None` when it
    /// finished, in which case its stack has been released.
    ///
    /// # Safety
    /// The caller holds the run token, and `ctx` is the context installed on this thread.
    pub(crate) unsafe fn resume(&self, ctx: &Context, input: Resume) -> Option<Suspend> {
        // SAFETY: the caller holds the run token, so nobody else touches `coro`.
        let slot = unsafe { &mut *self.coro.get() };
        let coro = slot.as_mut()?;
        ctx.task.set(self);
        let result = coro.resume(input);
        ctx.task.set(std::ptr::null());
        match result {
            corosensei::CoroutineResult::Yield(why) => {
                if self.soft_guard && !stack::soft_guard_sample_intact(self.guard.0) {
                    overflow::report_and_abort(&self.overflow_info());
                }
                Some(why)
            }
            corosensei::CoroutineResult::Return(()) => {
                let coro = slot.take().expect("just returned");
                let stack = coro.into_stack();
                if !stack.soft_guard_fully_intact() {
                    overflow::report_and_abort(&self.overflow_info());
                }
                // SAFETY: `ctx.worker` is null or the live worker that installed `ctx`.
                match unsafe { ctx.worker.as_ref() } {
                    Some(w) => w.release_stack(stack),
                    None => drop(stack),
                }
                None
            }
        }
    }

    /// Whether the coroutine has finished (run-token holder, or after the runtime stopped).
    pub(crate) fn is_done(&self) -> bool {
        // SAFETY: read by the run-token holder (the shutdown drain, after all workers stopped).
        unsafe { (*self.coro.get()).is_none() }
    }

    /// Gives up on a coroutine that will not unwind: its stack is leaked on purpose, because
    /// freeing memory that live frames may still point into would be unsound.
    ///
    /// # Safety
    /// The caller holds the run token.
    pub(crate) unsafe fn abandon(&self) {
        // SAFETY: the caller holds the run token.
        if let Some(coro) = unsafe { (*self.coro.get()).take() } {
            std::mem::forget(coro);
        }
    }

    pub(crate) fn overflow_info(&self) -> overflow::Running {
        let (name_ptr, name_len) = self
            .name
            .as_deref()
            .map_or((std::ptr::null(), 0), |n| (n.as_ptr(), n.len()));
        overflow::Running {
            guard_lo: self.guard.0,
            guard_hi: self.guard.1,
            soft: self.soft_guard,
            id: self.id.0,
            stack_size: self.stack_size,
            name_ptr,
            name_len,
        }
    }

    /// A new strong reference to this task.
    pub(crate) fn to_arc(&self) -> Arc<Task> {
        let ptr = self as *const Task;
        // SAFETY: every `Task` is created inside an `Arc` (`runtime::spawn` is the only
        // constructor's caller) and `self` proves that allocation is alive, so adding a strong
        // count and materialising an `Arc` from the same pointer is what `Arc::clone` does.
        unsafe {
            Arc::increment_strong_count(ptr);
            Arc::from_raw(ptr)
        }
    }

    /// Switches from this coroutine back to its worker. Must be called on this task's stack.
    fn suspend(&self, why: Suspend) -> Resume {
        let yielder = self.yielder.get();
        debug_assert!(!yielder.is_null());
        // SAFETY: `yielder` was set by this coroutine's entry and lives as long as the coroutine
        // (it is part of its stack frame at the root); we are running on that coroutine.
        unsafe { (*yielder).suspend(why) }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        if let Some(coro) = self.coro.get_mut().take() {
            // A task that never started just drops its closure. A started one is normally driven
            // to completion, or abandoned, by the runtime before its last reference goes; if one
            // ever gets here, its stack is leaked like an abandoned one: unwinding it here would
            // run its destructors on whatever thread dropped the last reference, outside any
            // runtime context, and past the guards of `without_cancellation`.
            if coro.started() {
                std::mem::forget(coro);
            }
        }
    }
}

/// What the running coroutine can find about where it runs. A worker installs one for its
/// whole life (`install_context`) and stores the running task's pointer in it around each
/// resume; the shutdown drain installs its own for the duration of the drain.
pub(crate) struct Context {
    /// The task being resumed on this thread, or null between resumes.
    pub(crate) task: Cell<*const Task>,
    /// The worker, or null when the runtime's shutdown drain runs coroutines.
    pub(crate) worker: *const Worker,
}

thread_local! {
    static CONTEXT: Cell<*const Context> = const { Cell::new(std::ptr::null()) };
}

/// The context installed on this thread, or null on a plain thread.
///
/// `#[inline(never)]` and a copy, re-read after every switch: see the module docs.
#[inline(never)]
pub(crate) fn context() -> *const Context {
    CONTEXT.with(|c| c.get())
}

/// Installs `ctx` as this thread's context until the returned guard is dropped, which puts back
/// the previous one (the drain may run inside a coroutine of another runtime).
pub(crate) fn install_context(ctx: &Context) -> ContextGuard<'_> {
    let previous = CONTEXT.with(|c| c.replace(ctx));
    ContextGuard {
        previous,
        _ctx: std::marker::PhantomData,
    }
}

/// Restores the previous context when dropped.
pub(crate) struct ContextGuard<'a> {
    previous: *const Context,
    _ctx: std::marker::PhantomData<&'a Context>,
}

impl Drop for ContextGuard<'_> {
    fn drop(&mut self) {
        CONTEXT.with(|c| c.set(self.previous));
    }
}

/// The task running on this thread, if any. Reads the thread-local through [`context`], so it is
/// safe to call after any switch.
pub(crate) fn current_task<'a>() -> Option<&'a Task> {
    let ctx = context();
    if ctx.is_null() {
        return None;
    }
    // SAFETY: a non-null context is the live one installed on this thread (its guard outlives
    // every resume); a non-null task in it is the task being resumed right now, which the
    // resumer keeps alive. The reference is used on that coroutine's stack, which the task
    // outlives.
    unsafe { (*ctx).task.get().as_ref() }
}

/// The worker of the coroutine running on this thread, if any (`None` on plain threads and in
/// the shutdown drain). Must not be kept across a switch.
pub(crate) fn current_worker<'a>() -> Option<&'a Worker> {
    let ctx = context();
    // SAFETY: as in `current_task`; the worker outlives the context it installed. Callers use
    // the reference before any switch (documented above).
    unsafe { ctx.as_ref()?.worker.as_ref() }
}

/// What the overflow handler needs about the coroutine running on this thread. Called from a
/// signal handler: only thread-local and plain memory reads.
pub(crate) fn running_for_signal() -> Option<overflow::Running> {
    let ctx = CONTEXT.with(|c| c.get());
    // SAFETY: as in `current_task`; the task's fields read by `overflow_info` are immutable.
    unsafe { Some(ctx.as_ref()?.task.get().as_ref()?.overflow_info()) }
}

/// The payload a coroutine unwinds with when its runtime shuts down.
#[derive(Debug)]
pub struct Cancelled;

/// Switches out for `why`, then deals with a shutdown: the `Cancelled` unwind, unless the
/// coroutine was already unwinding when it switched (in the drain, see `park`) or is inside a
/// `without_cancellation` section. Whether it was unwinding is its own state, passed in: after
/// a switch, `std::thread::panicking()` describes whatever last ran on this thread.
fn switch_out(task: &Task, why: Suspend, unwinding: bool) {
    if task.cancel_pending.get() && !unwinding && task.cancel_deferred.get() == 0 {
        // A shutdown that a hooked libc call reported as an error (`park_reporting_cancel`)
        // instead of unwinding: the coroutine is back in Rust code, which can unwind.
        task.cancel_pending.set(false);
        std::panic::resume_unwind(Box::new(Cancelled));
    }
    let resume = task.suspend(why);
    if resume != Resume::Shutdown || unwinding {
        return;
    }
    if task.cancel_deferred.get() > 0 {
        task.cancel_pending.set(true);
        return;
    }
    // No panic hook, no message: this is the runtime unwinding the coroutine on purpose.
    std::panic::resume_unwind(Box::new(Cancelled));
}

/// Runs `f` with shutdown cancellation deferred: a `Shutdown` that arrives while `f` parks is
/// remembered and raised (as the [`Cancelled`] unwind) only after `f` returns. For waits that
/// protect borrows, such as `scope` waiting for its coroutines or `block_on` for its closure:
/// unwinding out of them early would free what the other coroutines still use.
pub(crate) fn without_cancellation<R>(f: impl FnOnce() -> R) -> R {
    let Some(task) = current_task() else {
        return f();
    };
    struct Section<'a>(&'a Task);
    impl Drop for Section<'_> {
        fn drop(&mut self) {
            self.0.cancel_deferred.set(self.0.cancel_deferred.get() - 1);
        }
    }
    task.cancel_deferred.set(task.cancel_deferred.get() + 1);
    let section = Section(task);
    let value = f();
    drop(section);
    if task.cancel_deferred.get() == 0
        && task.cancel_pending.replace(false)
        && !std::thread::panicking()
    {
        std::panic::resume_unwind(Box::new(Cancelled));
    }
    value
}

/// Runs `f` with shutdown cancellation deferred, like [`without_cancellation`], but never
/// raises it: for code that must not unwind, the hooked libc calls (`crate::hook`), whose
/// callers are C frames, or Rust frames that called a non-unwinding `extern "C"` function.
/// Returns whether a shutdown is pending: the caller then fails its call (`ECANCELED`), and the
/// coroutine unwinds with [`Cancelled`] at its next switch from Rust code (`switch_out`).
#[cfg_attr(not(feature = "hook"), allow(dead_code))]
pub(crate) fn deferring_cancellation<R>(f: impl FnOnce() -> R) -> (R, bool) {
    let Some(task) = current_task() else {
        return (f(), false);
    };
    task.cancel_deferred.set(task.cancel_deferred.get() + 1);
    let value = f();
    task.cancel_deferred.set(task.cancel_deferred.get() - 1);
    (value, task.cancel_pending.get())
}

/// `park` for the hooked libc calls (see [`deferring_cancellation`]): returns whether a
/// shutdown is pending.
///
/// If one was pending already, the coroutine came back into a hook after a hooked call
/// reported the shutdown, without the switch from Rust code that would unwind it: a std-only
/// loop (`loop { thread::sleep(..) }`, an accept loop that logs its errors) never makes one.
/// It still gives the shutdown's drain its turn (a yield, whatever its park token), so the
/// drain's bounded rounds go on and, at their end, abandon it, instead of the loop spinning
/// through hooked calls that fail at once, and the drain never getting control back.
#[cfg_attr(not(feature = "hook"), allow(dead_code))]
pub(crate) fn park_reporting_cancel() -> bool {
    if cancellation_pending() {
        deferring_cancellation(yield_now);
        return true;
    }
    deferring_cancellation(park).1
}

/// In a forked child (the hooks' `pthread_atfork` handler): the thread that forked, the
/// child's only thread, stops being a worker or a coroutine's thread. Whatever coroutine it
/// was running goes on as plain code (a `pre_exec` closure, say): the child has no runtime.
#[cfg_attr(not(feature = "hook"), allow(dead_code))]
pub(crate) fn forget_context_after_fork() {
    CONTEXT.with(|c| c.set(std::ptr::null()));
}

/// Whether a shutdown has been deferred on the calling coroutine (it will unwind with
/// [`Cancelled`] when its `without_cancellation` sections end).
pub(crate) fn cancellation_pending() -> bool {
    current_task().is_some_and(|task| task.cancel_pending.get())
}

/// `park` for a coroutine that is unwinding a panic on a worker: it must not switch, because
/// std keeps the panic count per OS thread, and another coroutine resumed on this thread (or
/// this one resumed on another) would see, and later corrupt, the wrong count. So it blocks its
/// thread, polling its token; the monitor sees the stuck processor and hands its queue to
/// another thread meanwhile. (The shutdown drain runs every coroutine on its one thread, where
/// switching keeps the counts consistent, so there `park` switches as usual.)
#[cold]
fn park_while_unwinding(task: &Task) {
    let backoff = crossbeam_utils::Backoff::new();
    let mut sleep = std::time::Duration::from_micros(10);
    while !task.park.try_take_token() && !task.shared.is_shutdown() {
        if backoff.is_completed() {
            std::thread::sleep(sleep);
            sleep = (sleep * 2).min(std::time::Duration::from_millis(1));
        } else {
            backoff.snooze();
        }
    }
}

/// Blocks the current coroutine until its token is made available (like `std::thread::park`).
///
/// Each coroutine has a token, initially absent. `park` consumes it if present and returns at
/// once; otherwise it suspends the coroutine (never the OS thread) until [`Coroutine::unpark`]
/// supplies it. An `unpark` that comes before the `park` is therefore not lost. As with threads,
/// `park` may also return spuriously, so call it in a loop that checks a condition.
///
/// Called from a plain thread (outside any coroutine) it is `std::thread::park`. Called by a
/// coroutine that is unwinding a panic (from a destructor), it blocks the OS thread instead of
/// switching, because the panic state std keeps is per thread (see DESIGN.md, "Panics").
pub fn park() {
    let Some(task) = current_task() else {
        std::thread::park();
        return;
    };
    if task.park.try_take_token() {
        return;
    }
    let unwinding = std::thread::panicking();
    if unwinding && current_worker().is_some() {
        park_while_unwinding(task);
        return;
    }
    switch_out(task, Suspend::Park, unwinding);
}

/// Gives up the worker to other runnable coroutines; this one goes to the back of its
/// processor's run queue. Called from a plain thread, it is `std::thread::yield_now`.
pub fn yield_now() {
    let Some(task) = current_task() else {
        std::thread::yield_now();
        return;
    };
    let unwinding = std::thread::panicking();
    if unwinding && current_worker().is_some() {
        // Never switch while unwinding on a worker (see `park_while_unwinding`).
        std::thread::yield_now();
        return;
    }
    switch_out(task, Suspend::Yield, unwinding);
}

/// A handle to a coroutine, like `std::thread::Thread`: cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct Coroutine {
    pub(crate) task: Arc<Task>,
}

impl Coroutine {
    /// The coroutine's unique id.
    pub fn id(&self) -> CoroutineId {
        self.task.id
    }

    /// The name given with [`Builder::name`](crate::Builder::name), if any.
    pub fn name(&self) -> Option<&str> {
        self.task.name.as_deref()
    }

    /// Makes the coroutine's park token available: wakes it if it is parked, or makes its next
    /// [`park`] return at once. Callable from any thread or coroutine.
    pub fn unpark(&self) {
        if self.task.park.unpark() == state::Unparked::Schedule {
            self.task.shared.schedule_woken(self.task.clone());
        }
    }
}

impl fmt::Debug for Coroutine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coroutine")
            .field("id", &self.task.id)
            .field("name", &self.task.name)
            .finish_non_exhaustive()
    }
}

/// The handle of the coroutine that calls it.
///
/// # Panics
/// When called outside a coroutine; use [`try_current`] in code that runs in both worlds.
pub fn current() -> Coroutine {
    try_current().expect("corun::current() called outside a coroutine")
}

/// The handle of the calling coroutine, or `None` on a plain thread.
pub fn try_current() -> Option<Coroutine> {
    let task = current_task()?;
    Some(Coroutine {
        task: task.to_arc(),
    })
}

impl Waiter {
    /// The waiter for whoever is calling: the current coroutine, or this thread.
    pub(crate) fn current() -> Waiter {
        match try_current() {
            Some(c) => Waiter::Coroutine(c),
            None => Waiter::Thread(std::thread::current()),
        }
    }
}
