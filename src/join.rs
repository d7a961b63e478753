//! Join handles: the result slot a coroutine fills and its joiner waits on.
//!
//! [`Waiter`] is the one abstraction for "someone blocked": a coroutine (woken with
//! [`Coroutine::unpark`]) or a plain thread (woken with `Thread::unpark`). Both have token
//! semantics, so the protocol here is the classic one: the joiner registers itself, then parks
//! in a loop until the `done` flag is set; the finisher sets `done` and wakes whoever registered.
//! A wake that comes before the park is kept in the token.

use crate::coroutine::Coroutine;
use crate::scope::ScopeData;
use parking_lot::Mutex;
use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

/// Somebody blocked until an event: a coroutine or an OS thread.
#[derive(Debug, Clone)]
pub(crate) enum Waiter {
    Coroutine(Coroutine),
    Thread(thread::Thread),
}

impl Waiter {
    /// Wakes the waiter (its token is set if it is not parked yet).
    pub(crate) fn wake(self) {
        self.wake_by_ref();
    }

    /// [`Waiter::wake`] without giving up the handle (a coroutine's is cloned only if the wake
    /// schedules it).
    pub(crate) fn wake_by_ref(&self) {
        match self {
            Waiter::Coroutine(c) => c.unpark(),
            Waiter::Thread(t) => t.unpark(),
        }
    }
}

/// Parks the caller (coroutine or thread) until `done` returns true.
pub(crate) fn park_until(done: impl Fn() -> bool) {
    while !done() {
        crate::park();
    }
}

/// Where a coroutine's result goes.
pub(crate) struct Packet<T> {
    done: AtomicBool,
    result: UnsafeCell<Option<thread::Result<T>>>,
    waiter: Mutex<Option<Waiter>>,
    /// The scope the coroutine was spawned in, told when the packet goes (see `Drop`).
    scope: Option<Arc<ScopeData>>,
}

// SAFETY: `result` is written once by the finishing coroutine before `done` is set (Release) and
// read by the joiner only after it observes `done` (Acquire); the joiner is unique (`join` takes
// the handle by value). So the cell is never accessed by two threads at once, and a `T` crosses
// threads once, which needs `T: Send`.
unsafe impl<T: Send> Sync for Packet<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for Packet<T> {}

impl<T> Packet<T> {
    pub(crate) fn new(scope: Option<Arc<ScopeData>>) -> Arc<Self> {
        Arc::new(Packet {
            done: AtomicBool::new(false),
            result: UnsafeCell::new(None),
            waiter: Mutex::new(None),
            scope,
        })
    }

    /// Stores the result and wakes the joiner. Called once, by the coroutine.
    pub(crate) fn complete(&self, result: thread::Result<T>) {
        // SAFETY: only the finishing coroutine writes, once, before publishing `done`; the
        // joiner does not read until it sees `done`.
        unsafe { *self.result.get() = Some(result) };
        let waiter = {
            let mut waiter = self.waiter.lock();
            self.done.store(true, Ordering::Release);
            waiter.take()
        };
        if let Some(w) = waiter {
            w.wake();
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Waits for the result and takes it. Called once, by the joiner.
    pub(crate) fn wait(&self) -> thread::Result<T> {
        if !self.is_done() {
            let mut waiter = self.waiter.lock();
            if !self.is_done() {
                *waiter = Some(Waiter::current());
            }
            drop(waiter);
            park_until(|| self.is_done());
        }
        // SAFETY: `done` was observed with Acquire, so the write in `complete` happened-before;
        // the joiner is unique and takes the value once.
        unsafe { (*self.result.get()).take() }.expect("a finished coroutine stored its result")
    }
}

impl<T> Drop for Packet<T> {
    fn drop(&mut self) {
        // The last reference is gone: both the coroutine (its body finished, or was dropped
        // unstarted) and the handle. As in std, a panic nobody joined is reported to the scope,
        // and the result (which may borrow from the scope's environment) is dropped *before* the
        // scope is told, because the scope may return as soon as it is.
        let result = self.result.get_mut().take();
        let unhandled_panic = matches!(result, Some(Err(_)));
        // A result (or panic payload) whose destructor panics has nobody to report to: this may
        // run at the end of a coroutine, where unwinding would escape it. std aborts in the same
        // case ("thread result panicked on drop"); so do we.
        if panic::catch_unwind(AssertUnwindSafe(|| drop(result))).is_err() {
            eprintln!("corun: a coroutine's result panicked on drop; aborting");
            std::process::abort();
        }
        if let Some(scope) = self.scope.take() {
            scope.coroutine_done(unhandled_panic);
        }
    }
}

/// An owned permission to join a coroutine (wait for it to finish and take its result).
///
/// Dropping it detaches the coroutine, which then runs to completion on its own.
pub struct JoinHandle<T> {
    pub(crate) packet: Arc<Packet<T>>,
    pub(crate) coroutine: Coroutine,
}

impl<T> JoinHandle<T> {
    /// Waits for the coroutine to finish. Returns its result, or `Err` with the panic payload if
    /// it panicked (or the payload [`Cancelled`](crate::Cancelled) if its runtime shut down first).
    ///
    /// Inside a coroutine this parks only the caller; on a plain thread it blocks the thread.
    pub fn join(self) -> thread::Result<T> {
        self.packet.wait()
    }

    /// Whether the coroutine has finished running its body.
    pub fn is_finished(&self) -> bool {
        self.packet.is_done()
    }

    /// The handle of the coroutine.
    pub fn coroutine(&self) -> &Coroutine {
        &self.coroutine
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("coroutine", &self.coroutine)
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// A handle to a coroutine spawned in a [`Scope`](crate::Scope); joinable while the scope lives.
pub struct ScopedJoinHandle<'scope, T> {
    pub(crate) inner: JoinHandle<T>,
    pub(crate) _scope: PhantomData<&'scope ()>,
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the coroutine to finish; see [`JoinHandle::join`].
    pub fn join(self) -> thread::Result<T> {
        self.inner.join()
    }

    /// Whether the coroutine has finished running its body.
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }

    /// The handle of the coroutine.
    pub fn coroutine(&self) -> &Coroutine {
        self.inner.coroutine()
    }
}

impl<T> fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedJoinHandle")
            .field("inner", &self.inner)
            .finish()
    }
}
