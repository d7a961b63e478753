//! A reusable barrier and a wait group, on the shared wait protocol.

use super::wait_queue::{wake_each, WaitNode, Waiters, WOKEN};
use parking_lot::Mutex;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

/// Makes `n` parties wait for each other, round after round, like `std::sync::Barrier`.
///
/// ```
/// use std::sync::Arc;
/// let barrier = Arc::new(corun::sync::Barrier::new(3));
/// let handles: Vec<_> = (0..3)
///     .map(|_| {
///         let b = barrier.clone();
///         corun::spawn(move || b.wait().is_leader())
///     })
///     .collect();
/// let leaders = handles.into_iter().map(|h| h.join().unwrap()).filter(|l| *l);
/// assert_eq!(leaders.count(), 1);
/// ```
pub struct Barrier {
    parties: usize,
    inner: Mutex<BarrierState>,
}

struct BarrierState {
    arrived: usize,
    waiters: Waiters,
}

/// What [`Barrier::wait`] returns: exactly one party per round is the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// Whether this party was the last to arrive (one per round).
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

impl Barrier {
    /// A barrier for `n` parties (0 behaves as 1, as in std).
    pub fn new(n: usize) -> Barrier {
        Barrier {
            parties: n.max(1),
            inner: Mutex::new(BarrierState {
                arrived: 0,
                waiters: Waiters::new(),
            }),
        }
    }

    /// Waits until all parties have called `wait` in this round.
    pub fn wait(&self) -> BarrierWaitResult {
        let node = {
            let mut state = self.inner.lock();
            state.arrived += 1;
            if state.arrived == self.parties {
                // The last one opens the barrier and starts the next round.
                state.arrived = 0;
                let waiters = std::mem::take(&mut state.waiters);
                drop(state);
                wake_each(waiters, WOKEN);
                return BarrierWaitResult(true);
            }
            let node = WaitNode::current(Instant::now());
            state.waiters.push_back(node.clone());
            node
        };
        node.wait();
        BarrierWaitResult(false)
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties)
            .finish_non_exhaustive()
    }
}

/// Waits for a group of coroutines or threads to finish, like crossbeam's `WaitGroup`: every
/// clone is one member; dropping a clone marks it done; [`WaitGroup::wait`] drops the caller's
/// own member and waits until all are done.
///
/// ```
/// let wg = corun::sync::WaitGroup::new();
/// for _ in 0..4 {
///     let wg = wg.clone();
///     corun::spawn(move || drop(wg));
/// }
/// wg.wait();
/// ```
pub struct WaitGroup {
    inner: Arc<WaitGroupInner>,
}

struct WaitGroupInner {
    state: Mutex<(usize, Waiters)>,
}

impl Default for WaitGroup {
    fn default() -> Self {
        Self::new()
    }
}

impl WaitGroup {
    /// A group of one member (the returned value).
    pub fn new() -> WaitGroup {
        WaitGroup {
            inner: Arc::new(WaitGroupInner {
                state: Mutex::new((1, Waiters::new())),
            }),
        }
    }

    /// Marks this member done and waits until every member is.
    pub fn wait(self) {
        let inner = self.inner.clone();
        drop(self); // our own member is done (and if it was the last, that was the wake-up)
        let node = {
            let mut state = inner.state.lock();
            if state.0 == 0 {
                return;
            }
            let node = WaitNode::current(Instant::now());
            state.1.push_back(node.clone());
            node
        };
        node.wait();
    }
}

impl Clone for WaitGroup {
    fn clone(&self) -> WaitGroup {
        self.inner.state.lock().0 += 1;
        WaitGroup {
            inner: self.inner.clone(),
        }
    }
}

impl Drop for WaitGroup {
    fn drop(&mut self) {
        let waiters = {
            let mut state = self.inner.state.lock();
            state.0 -= 1;
            if state.0 != 0 {
                return;
            }
            std::mem::take(&mut state.1)
        };
        wake_each(waiters, WOKEN);
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroup")
            .field("members", &self.inner.state.lock().0)
            .finish()
    }
}
