//! The one place concurrent code imports its primitives from.
//!
//! Every protocol that other threads race against (the park/unpark state of a coroutine, the
//! run-next slot, the idle-worker hand-shake) is written against this facade. In a normal build
//! it maps to `std`, `parking_lot` and `crossbeam-utils`; compiled with `RUSTFLAGS="--cfg loom"`
//! it maps to [loom](https://docs.rs/loom), so the `loom-tests/` crate can explore every
//! interleaving of the very code that ships (the tokio habit: `crate::loom::sync::...`).

#[cfg(not(loom))]
mod imp {
    pub(crate) use std::sync::atomic::{fence, AtomicPtr, AtomicUsize, Ordering};
    pub(crate) use std::sync::Arc;

    /// A mutex whose `lock` cannot fail (no poisoning), as `parking_lot` provides.
    pub(crate) type Mutex<T> = parking_lot::Mutex<T>;

    /// Blocks an OS thread until its [`Unparker`] is called; token semantics like
    /// `std::thread::park` (an unpark that comes first is not lost).
    pub(crate) use crossbeam_utils::sync::{Parker, Unparker};

    /// Hint that we are spinning on a condition another thread will change.
    #[inline]
    pub(crate) fn spin_hint() {
        std::hint::spin_loop();
    }
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::sync::atomic::{fence, AtomicPtr, AtomicUsize, Ordering};
    pub(crate) use loom::sync::Arc;

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

    /// A thread parker with a token, built from loom's mutex and condvar.
    #[derive(Debug)]
    pub(crate) struct Parker {
        unparker: Unparker,
    }

    /// Wakes the thread owning the matching [`Parker`].
    #[derive(Debug, Clone)]
    pub(crate) struct Unparker {
        inner: Arc<(loom::sync::Mutex<bool>, loom::sync::Condvar)>,
    }

    impl Default for Parker {
        fn default() -> Self {
            let inner = Arc::new((loom::sync::Mutex::new(false), loom::sync::Condvar::new()));
            Parker {
                unparker: Unparker { inner },
            }
        }
    }

    impl Parker {
        pub(crate) fn park(&self) {
            let (lock, cvar) = &*self.unparker.inner;
            let mut token = lock.lock().unwrap();
            while !*token {
                token = cvar.wait(token).unwrap();
            }
            *token = false;
        }
        pub(crate) fn unparker(&self) -> &Unparker {
            &self.unparker
        }
    }

    impl Unparker {
        pub(crate) fn unpark(&self) {
            let (lock, cvar) = &*self.inner;
            *lock.lock().unwrap() = true;
            cvar.notify_one();
        }
    }

    /// Under loom a spin must yield, or the model never lets the other thread run.
    pub(crate) fn spin_hint() {
        loom::thread::yield_now();
    }
}

pub(crate) use imp::*;
