//! Coroutine-aware synchronisation: primitives that park the coroutine (never its OS thread)
//! when they must wait, work the same from plain threads (which block), and stay correct when
//! the holder migrates to another thread while holding them. No poisoning (like parking_lot).
//!
//! Every primitive waits through the one [`wait_queue`] protocol and the one waiter abstraction
//! (a coroutine or a thread). So far: [`Mutex`] (the colock: spin, then inflate into a wait
//! queue; fair under starvation), [`Condvar`], [`RwLock`] (fair to writers and readers),
//! [`Semaphore`], [`Barrier`] and [`WaitGroup`]. Channels and `select!` follow on the same
//! queue (see the note).

mod barrier;
mod condvar;
mod mutex;
mod rwlock;
mod semaphore;
pub(crate) mod wait_queue;

pub use barrier::{Barrier, BarrierWaitResult, WaitGroup};
pub use condvar::Condvar;
pub use mutex::{Mutex, MutexGuard};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{Semaphore, SemaphorePermit};
