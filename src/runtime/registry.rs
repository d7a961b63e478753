//! The coroutines of a runtime that have ever parked, so that shutdown can find them.
//!
//! A parked coroutine sits in no run queue; only its waker (if any) refers to it. The registry
//! keeps one strong reference to each coroutine from its first park until it finishes, so a
//! coroutine nobody will ever wake is still found, unwound and freed when the runtime is dropped
//! (Go keeps `allgs` for the same reason). A coroutine that never parks is always in a run queue
//! or running, and shutdown finds it in the queues, so it never pays for a registry lock: the
//! worker registers a coroutine when it first commits a park, before the commit, while it still
//! holds the run token. Sharded by id.

use crate::coroutine::Task;
use parking_lot::Mutex;
use slab::Slab;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The live coroutines of one runtime.
pub(crate) struct Registry {
    shards: Box<[Mutex<Slab<Arc<Task>>>]>,
}

impl Registry {
    pub(crate) fn new(workers: usize) -> Registry {
        let n = (workers * 4).next_power_of_two();
        Registry {
            shards: (0..n).map(|_| Mutex::new(Slab::new())).collect(),
        }
    }

    fn shard(&self, task: &Task) -> &Mutex<Slab<Arc<Task>>> {
        &self.shards[task.id.as_u64() as usize & (self.shards.len() - 1)]
    }

    pub(crate) fn insert(&self, task: &Arc<Task>) {
        let mut shard = self.shard(task).lock();
        let key = shard.insert(task.clone());
        task.registry_slot.store(key, Ordering::Relaxed);
    }

    pub(crate) fn remove(&self, task: &Task) {
        let mut shard = self.shard(task).lock();
        let key = task.registry_slot.load(Ordering::Relaxed);
        if shard.get(key).is_some_and(|t| std::ptr::eq(&**t, task)) {
            drop(shard.remove(key));
        }
    }

    /// Empties the registry, returning every coroutine it held.
    pub(crate) fn take_all(&self) -> Vec<Arc<Task>> {
        let mut all = Vec::new();
        for shard in self.shards.iter() {
            all.extend(shard.lock().drain());
        }
        all
    }
}
