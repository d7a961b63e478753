//! Coroutine-aware synchronisation: primitives that park the coroutine (never its OS thread)
//! when they must wait, work the same from plain threads (which block), and stay correct when
//! the holder migrates to another thread while holding them. No poisoning (like parking_lot).
//!
//! Every primitive waits through the one `wait_queue` protocol (`sync/wait_queue.rs`) and the
//! one waiter abstraction (a coroutine or a thread). So far: [`Mutex`] (the colock: spin, then
//! inflate into a wait queue; fair under starvation), [`Condvar`], [`RwLock`] (fair to writers
//! and readers), [`Semaphore`], [`Barrier`], [`WaitGroup`], the channels [`mpsc`], [`mpmc`] and
//! [`oneshot`], and [`select!`](crate::select) over channel operations. Timed waits register a
//! timer on the process-wide timing wheel for the length of the wait.

mod barrier;
mod channel;
mod condvar;
/// Timed waits: the timer of the [time](crate::time) module, for coroutines (a thread parks
/// with the kernel's timeout and needs none).
#[cfg(not(loom))]
mod deadline {
    pub(crate) use crate::time::park_until;
    use std::time::Instant;

    /// A timer that unparks the calling coroutine at `deadline`, for as long as it lives.
    pub(crate) fn register(deadline: Instant) -> Option<crate::time::Timer> {
        crate::coroutine::current_task()
            .is_some()
            .then(|| crate::time::Timer::for_current(deadline))
    }
}
/// Under loom timed waits are not modelled: a "timed" park just lets the others run.
#[cfg(loom)]
mod deadline {
    pub(crate) struct Registration;
    pub(crate) fn register(_: std::time::Instant) -> Registration {
        Registration
    }
    pub(crate) fn park_until(_: std::time::Instant) {
        loom::thread::yield_now();
    }
}
mod mutex;
mod rwlock;
mod semaphore;
pub(crate) mod wait_queue;

#[doc(hidden)]
#[path = "select.rs"]
pub mod __select;
pub mod mpmc;
pub mod mpsc;
pub mod oneshot;

pub use barrier::{Barrier, BarrierWaitResult, WaitGroup};
pub use condvar::{Condvar, WaitTimeoutResult};
pub use mutex::{Mutex, MutexGuard};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{Semaphore, SemaphorePermit};
