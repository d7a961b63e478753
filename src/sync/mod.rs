//! Coroutine-aware synchronisation: primitives that park the coroutine (never its OS thread)
//! when they must wait, work the same from plain threads (which block), and stay correct when
//! the holder migrates to another thread while holding them. No poisoning (like parking_lot).
//!
//! Every primitive waits through the one [`wait_queue`] protocol and the one waiter abstraction
//! (a coroutine or a thread). So far: [`Mutex`] (the colock: spin, then inflate into a wait
//! queue; fair under starvation), [`Condvar`], [`RwLock`] (fair to writers and readers),
//! [`Semaphore`], [`Barrier`], [`WaitGroup`], the channels [`mpsc`], [`mpmc`] and [`oneshot`],
//! and [`select!`](crate::select) over channel operations. Timed waits use a small deadline
//! service until the timer wheel lands.

mod barrier;
mod channel;
mod condvar;
#[cfg(not(loom))]
mod deadline;
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
