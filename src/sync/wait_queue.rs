//! The wait queue under every `corun::sync` primitive.
//!
//! A [`WaitNode`] is one blocked party: a coroutine or an OS thread behind the one [`Waiter`]
//! abstraction, plus what it was told when woken. A primitive keeps a [`WaitQueue`] of nodes
//! behind a short lock (never held across a switch or a park) and follows one protocol:
//!
//! * the waiter builds its node, and under the queue lock validates the primitive's state (is it
//!   still worth waiting?) and enqueues the node; then it parks until the node's state leaves
//!   [`WAITING`], checking it in a loop (park may return spuriously);
//! * the waker, under the queue lock, dequeues a node and publishes the outcome in it
//!   ([`WOKEN`]: try again; [`GRANTED`]: ownership was handed over), releases the lock, and only
//!   then wakes the waiter. The park token keeps a wake that comes before the park.
//!
//! Because the node's state is written before the wake and the waiter re-checks it after every
//! park, a wake-up is never lost, and a waiter never acts on a stale decision.

use crate::loom::{AtomicU8, Mutex, MutexGuard, Ordering, Waiter};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

/// The node is queued; its waiter must keep parking.
pub(crate) const WAITING: u8 = 0;
/// The waiter was woken to try again.
pub(crate) const WOKEN: u8 = 1;
/// What the waiter waited for was handed to it (say, a locked mutex).
pub(crate) const GRANTED: u8 = 2;

/// One blocked party.
pub(crate) struct WaitNode {
    waiter: Waiter,
    state: AtomicU8,
    /// When it first started waiting (kept across retries), for starvation checks.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) since: Instant,
    /// Whether the waiter was woken before and lost the race (a retry).
    #[cfg_attr(not(loom), allow(dead_code))]
    pub(crate) requeued: bool,
}

impl WaitNode {
    /// A node for the caller, first queued at `since`.
    pub(crate) fn current(since: Instant) -> Arc<WaitNode> {
        Arc::new(WaitNode {
            waiter: Waiter::current(),
            state: AtomicU8::new(WAITING),
            since,
            requeued: false,
        })
    }

    /// A node for a caller that was woken before and is queueing again.
    pub(crate) fn requeued(since: Instant) -> Arc<WaitNode> {
        Arc::new(WaitNode {
            waiter: Waiter::current(),
            state: AtomicU8::new(WAITING),
            since,
            requeued: true,
        })
    }

    /// Parks the caller until a waker decided, then returns the decision.
    ///
    /// Uncancellable: a runtime shutdown that arrives meanwhile is raised (as the `Cancelled`
    /// unwind) only after the wait is decided and the primitive's caller has finished with it.
    /// Unwinding out of the middle would leave the node queued, or a lock or permit handed to
    /// a waiter that is gone: other waiters (plain threads among them) would wait forever.
    pub(crate) fn wait(&self) -> u8 {
        uncancellable(|| loop {
            let state = self.state.load(Ordering::Acquire);
            if state != WAITING {
                return state;
            }
            crate::loom::park();
        })
    }

    /// Like [`WaitNode::wait`], but gives up at `deadline`: returns `None` then. A waker may
    /// still decide for this node after that; the caller, on `None`, takes its lock, removes
    /// the node if it is still queued, and re-checks its condition once before reporting a
    /// timeout, so a decision that raced the deadline is not lost.
    pub(crate) fn wait_until(&self, deadline: Instant) -> Option<u8> {
        uncancellable(|| {
            // One registration for the whole wait, withdrawn when it ends.
            let _registered = super::deadline::register(deadline);
            loop {
                let state = self.state.load(Ordering::Acquire);
                if state != WAITING {
                    return Some(state);
                }
                if Instant::now() >= deadline {
                    return None;
                }
                super::deadline::park_until(deadline);
            }
        })
    }

    /// Whether no waker has decided for the node yet (for waiters that park in their own loop,
    /// such as the netpoller's, which must stay cancellable).
    pub(crate) fn is_waiting(&self) -> bool {
        self.state.load(Ordering::Acquire) == WAITING
    }

    /// Publishes `outcome` and wakes the waiter. Call after releasing the queue lock.
    pub(crate) fn wake(&self, outcome: u8) {
        self.state.store(outcome, Ordering::Release);
        self.waiter.wake_by_ref();
    }
}

/// Runs `f` with shutdown cancellation deferred (see [`WaitNode::wait`]). Primitives wrap the
/// whole of an acquisition in it, up to the creation of the guard or permit, so that when the
/// deferred `Cancelled` is raised the guard already exists and its drop hands the lock on.
#[cfg(not(loom))]
pub(crate) fn uncancellable<R>(f: impl FnOnce() -> R) -> R {
    crate::coroutine::without_cancellation(f)
}

/// Whether the caller will unwind with `Cancelled` once its waits are over (a waiter that used a
/// wake-up meant for one party, like a notification, passes it on then).
#[cfg(not(loom))]
pub(crate) fn cancellation_pending() -> bool {
    crate::coroutine::cancellation_pending()
}

/// Under loom there are no coroutines to cancel.
#[cfg(loom)]
pub(crate) fn cancellation_pending() -> bool {
    false
}

/// Under loom there are no coroutines to cancel.
#[cfg(loom)]
pub(crate) fn uncancellable<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Waiters kept beside a primitive's own state, under the primitive's lock (when the decision to
/// wait or to wake depends on more than the queue). The same protocol applies: decide and
/// dequeue under the lock, [`WaitNode::wake`] after releasing it.
pub(crate) type Waiters = VecDeque<Arc<WaitNode>>;

/// Wakes every node in `nodes` with `outcome`; call after releasing the lock they came from.
pub(crate) fn wake_each(nodes: impl IntoIterator<Item = Arc<WaitNode>>, outcome: u8) -> usize {
    let mut n = 0;
    for node in nodes {
        node.wake(outcome);
        n += 1;
    }
    n
}

/// Removes `node` from `nodes` if it is still there (a waiter that timed out). Returns whether
/// it was.
pub(crate) fn remove(nodes: &mut VecDeque<Arc<WaitNode>>, node: &Arc<WaitNode>) -> bool {
    match nodes.iter().position(|n| Arc::ptr_eq(n, node)) {
        Some(i) => {
            nodes.remove(i);
            true
        }
        None => false,
    }
}

/// A FIFO of blocked parties behind a short lock.
pub(crate) struct WaitQueue {
    nodes: Mutex<VecDeque<Arc<WaitNode>>>,
}

impl Default for WaitQueue {
    fn default() -> Self {
        WaitQueue {
            nodes: Mutex::new(VecDeque::new()),
        }
    }
}

impl WaitQueue {
    /// Locks the queue. Never hold the guard across a park or a switch.
    pub(crate) fn lock(&self) -> MutexGuard<'_, VecDeque<Arc<WaitNode>>> {
        self.nodes.lock()
    }

    /// Dequeues every waiter and wakes each with `outcome`. Returns how many there were.
    pub(crate) fn wake_all(&self, outcome: u8) -> usize {
        let nodes = std::mem::take(&mut *self.lock());
        wake_each(nodes, outcome)
    }
}
