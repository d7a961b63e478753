//! The run-next slot of a processor (Go's `runnext`, tokio's LIFO slot).
//!
//! Holds the coroutine most recently woken or spawned by the running one, so a producer and its
//! consumer run back to back on a warm cache. The owner replaces it with [`RunNext::swap`];
//! stealers and the monitor may empty it with [`RunNext::take`] (Go steals run-next only on its
//! last pass; so do we). Each value is owned by exactly one party at a time because every
//! transfer is a single atomic swap. Modelled in `loom-tests/tests/runnext.rs`.

use crate::loom::{AtomicPtr, Ordering};
use std::ptr;

/// A slot holding at most one `Arc<T>`, emptied or refilled with one atomic swap.
#[derive(Debug)]
pub struct RunNext<T> {
    slot: AtomicPtr<T>,
}

// SAFETY: the slot owns at most one `Arc<T>` (stored as a raw pointer), which it hands to exactly
// one caller; sending or sharing the slot is sending an `Arc<T>`, which requires `T: Send + Sync`.
unsafe impl<T: Send + Sync> Send for RunNext<T> {}
// SAFETY: as above; all access to the pointer is through atomic swaps.
unsafe impl<T: Send + Sync> Sync for RunNext<T> {}

impl<T> Default for RunNext<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> RunNext<T> {
    /// An empty slot.
    pub fn new() -> Self {
        RunNext {
            slot: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Puts `value` in the slot and returns what it displaced.
    pub fn swap(&self, value: crate::loom::Arc<T>) -> Option<crate::loom::Arc<T>> {
        let new = crate::loom::Arc::into_raw(value) as *mut T;
        let old = self.slot.swap(new, Ordering::AcqRel);
        // SAFETY: a non-null pointer in the slot came from `Arc::into_raw` in this function and
        // the swap made us its only owner.
        (!old.is_null()).then(|| unsafe { crate::loom::Arc::from_raw(old) })
    }

    /// Empties the slot.
    pub fn take(&self) -> Option<crate::loom::Arc<T>> {
        if self.slot.load(Ordering::Relaxed).is_null() {
            return None;
        }
        let old = self.slot.swap(ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: as in `swap`: the pointer came from `Arc::into_raw`; the swap transferred it
        // to us alone.
        (!old.is_null()).then(|| unsafe { crate::loom::Arc::from_raw(old) })
    }

    // Used by the loom models' assertions.
    #[cfg_attr(not(loom), allow(dead_code))]
    /// Whether the slot holds a value (a racy hint).
    pub fn is_occupied(&self) -> bool {
        !self.slot.load(Ordering::Acquire).is_null()
    }
}

impl<T> Drop for RunNext<T> {
    fn drop(&mut self) {
        drop(self.take());
    }
}
