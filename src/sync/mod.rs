//! Coroutine-aware synchronisation: primitives that park the coroutine (never its OS thread)
//! when they must wait, work the same from plain threads (which block), and stay correct when
//! the holder migrates to another thread while holding them. No poisoning (like parking_lot).
//!
//! Every primitive waits through the one [`wait_queue`] protocol and the one waiter abstraction
//! (a coroutine or a thread). So far: [`Mutex`] (the colock: spin, then inflate into a wait
//! queue; fair under starvation) and [`Condvar`]. The rest of the family (`RwLock`,
//! `Semaphore`, `Barrier`, `WaitGroup`, channels, `select!`) is the subject of the same issue
//! and follows on this queue.

mod condvar;
mod mutex;
pub(crate) mod wait_queue;

pub use condvar::Condvar;
pub use mutex::{Mutex, MutexGuard};
