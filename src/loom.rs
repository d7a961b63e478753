//! The one place the modelled concurrency protocols import their primitives from.
//!
//! The protocols other threads race against (the park/unpark state of a coroutine in
//! `coroutine/state.rs`, the run-next slot in `runtime/runnext.rs`, the idle-worker hand-shake in
//! `runtime/idle.rs`) are written against this facade. In a normal build it maps to `std` and
//! `parking_lot`; compiled with `RUSTFLAGS="--cfg loom"` it maps to [loom](https://docs.rs/loom),
//! so the `loom-tests/` crate explores every interleaving of the very code that ships (the tokio
//! habit: `crate::loom::sync::...`).

#[cfg(not(loom))]
mod imp {
    pub(crate) use std::sync::atomic::{fence, AtomicPtr, AtomicU8, AtomicUsize, Ordering};
    pub(crate) use std::sync::Arc;

    /// A mutex whose `lock` cannot fail (no poisoning), as `parking_lot` provides.
    pub(crate) type Mutex<T> = parking_lot::Mutex<T>;
    pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

    /// Who waits in a `sync` primitive: a coroutine or a thread (`join::Waiter`).
    pub(crate) use crate::join::Waiter;

    /// Parks the caller until its token is available (`corun::park`).
    pub(crate) fn park() {
        crate::park();
    }
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::sync::atomic::{fence, AtomicPtr, AtomicU8, AtomicUsize, Ordering};
    pub(crate) use loom::sync::Arc;
    pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    /// Under loom, the parties of a model are loom threads standing in for coroutines.
    #[derive(Debug, Clone)]
    pub(crate) struct Waiter(loom::thread::Thread);

    impl Waiter {
        pub(crate) fn current() -> Waiter {
            Waiter(loom::thread::current())
        }
        pub(crate) fn wake_by_ref(&self) {
            self.0.unpark();
        }
    }

    /// Parks the calling loom thread until unparked (token semantics).
    pub(crate) fn park() {
        loom::thread::park();
    }

    /// loom's mutex behind `parking_lot`'s infallible `lock`.
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }
        pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
            self.0.lock().unwrap()
        }
    }
}

pub(crate) use imp::*;
