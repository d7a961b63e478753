//! Scoped coroutines, like `std::thread::scope`: spawned coroutines may borrow from the caller,
//! because `scope` does not return until every one of them has finished.
//!
//! As in std, each scoped coroutine's result packet counts itself out of the scope when it is
//! dropped (after the coroutine's body has finished and its handle is gone), and reports a panic
//! that nobody observed through [`ScopedJoinHandle::join`].

use crate::join::{park_until, ScopedJoinHandle, Waiter};
use crate::runtime::{self, Shared};
use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// A scope to spawn coroutines that borrow from outside it; see [`scope`].
pub struct Scope<'scope, 'env: 'scope> {
    data: Arc<ScopeData>,
    shared: Arc<Shared>,
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

/// What a scope and its coroutines share.
pub(crate) struct ScopeData {
    running: AtomicUsize,
    a_coroutine_panicked: AtomicBool,
    /// Whoever called `scope`, woken when `running` reaches zero.
    owner: Waiter,
}

impl ScopeData {
    /// A coroutine of the scope is completely gone; `panicked` if its panic went unobserved.
    pub(crate) fn coroutine_done(&self, panicked: bool) {
        if panicked {
            self.a_coroutine_panicked.store(true, Ordering::Relaxed);
        }
        // Clone the owner before the decrement: once `running` is zero `scope` may return, and
        // only our own `Arc` keeps `self` alive then.
        let owner = self.owner.clone();
        if self.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            owner.wake();
        }
    }
}

/// Creates a scope for spawning coroutines that borrow non-`'static` data, like
/// `std::thread::scope`. Every coroutine spawned in it has finished before `scope` returns; if
/// any of them panicked and was not joined, `scope` then panics.
///
/// Inside a coroutine the scope's coroutines run on the same runtime and waiting parks only the
/// caller; on a plain thread they run on the default runtime and the thread blocks.
///
/// ```
/// let mut data = vec![1, 2, 3];
/// let total = std::sync::atomic::AtomicI32::new(0);
/// corun::scope(|s| {
///     for x in &data {
///         s.spawn(|| total.fetch_add(*x, std::sync::atomic::Ordering::Relaxed));
///     }
/// });
/// data.push(4);
/// assert_eq!(total.into_inner(), 6);
/// ```
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let scope = Scope {
        data: Arc::new(ScopeData {
            running: AtomicUsize::new(0),
            a_coroutine_panicked: AtomicBool::new(false),
            owner: Waiter::current(),
        }),
        shared: runtime::current_shared(),
        scope: PhantomData,
        env: PhantomData,
    };
    let result = panic::catch_unwind(AssertUnwindSafe(|| f(&scope)));
    // Wait for every coroutine, even if `f` panicked: they may borrow from our caller. Not even
    // a runtime shutdown may cut this short (see `without_cancellation`).
    crate::coroutine::without_cancellation(|| {
        park_until(|| scope.data.running.load(Ordering::Acquire) == 0)
    });
    match result {
        Err(payload) => panic::resume_unwind(payload),
        Ok(_) if scope.data.a_coroutine_panicked.load(Ordering::Relaxed) => {
            panic!("a scoped coroutine panicked")
        }
        Ok(value) => value,
    }
}

impl<'scope> Scope<'scope, '_> {
    /// Spawns a coroutine that may borrow anything that outlives the scope.
    ///
    /// # Panics
    /// If the coroutine cannot be created (see [`crate::spawn`]).
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        self.data.running.fetch_add(1, Ordering::AcqRel);
        // SAFETY: `scope` does not return before `running` is back to zero, which happens only
        // when this coroutine's packet is dropped: after the body has returned or unwound (or the
        // unstarted closure was dropped at shutdown) and the handle, bounded by `'scope`, is gone.
        // So every borrow in `F` and `T` outlives the coroutine's use of it.
        let result = unsafe {
            runtime::spawn_unchecked(&self.shared, None, None, Some(self.data.clone()), f)
        };
        match result {
            Ok(inner) => ScopedJoinHandle {
                inner,
                _scope: PhantomData,
            },
            Err(e) => {
                // No packet was made, so nothing else will count this one out.
                self.data.running.fetch_sub(1, Ordering::AcqRel);
                panic!("failed to spawn a coroutine: {e}")
            }
        }
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("running", &self.data.running.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
